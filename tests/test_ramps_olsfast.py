"""The numpy OLS_C fit of clean ramps (tsocontainer.ramps.olsfast) against stcal's."""
from __future__ import annotations

import numpy as np
import pytest

from tsocontainer.ramps import olsfast
from tsocontainer.ramps.fitting import stcal_fit
from tsocontainer.ramps.olsfast import clean_pixels, fast_ols_fit

pytest.importorskip("stcal")
TG = 5.5


def _block(n, ng, ny, nx, seed, nframes=1):
    """Ramps spanning every signal-to-noise class of stcal's weights (0.01-3000 DN/s),
    gain 1.6, CDS 12 DN, with jumps, saturated tails, a do-not-use group and flagged
    pixels."""
    rng = np.random.default_rng(seed)
    rate = 10 ** rng.uniform(-2, 3.5, (ny, nx))
    gain = rng.uniform(1.4, 1.8, (ny, nx)).astype(np.float32)
    cds = np.full((ny, nx), 12.0, np.float32)
    e = rng.poisson(np.broadcast_to(rate * TG * gain, (n, ng, ny, nx)))
    read = rng.normal(0, 12.0 / np.sqrt(2 * nframes), e.shape)
    data = (np.cumsum(e, axis=1) / gain + read).astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    pdq = np.zeros((ny, nx), np.uint32)
    for _ in range(20):                                   # jumps
        i, k, y, x = rng.integers(0, n), rng.integers(1, ng), rng.integers(ny), rng.integers(nx)
        data[i, k:, y, x] += 800.0
        gdq[i, k, y, x] |= 4
    gdq[0, max(1, ng - 3):, 1, 2] |= 2                     # saturated tail
    gdq[1, ng - 1, 3, 4] |= 1                             # a do-not-use group
    pdq[5, 5] = 1                                         # a do-not-use pixel
    pdq[6, :] = 1 << 31                                   # reference pixels
    return data, gdq, pdq, gain, cds


@pytest.mark.parametrize("ng,nframes", [(9, 1), (5, 4), (3, 1), (2, 1)])
def test_same_rates_variances_and_dq_as_stcal(ng, nframes):
    data, gdq, pdq, gain, cds = _block(3, ng, 16, 24, seed=ng, nframes=nframes)
    readout = {"group_time": TG, "nframes": nframes, "instrument": "NIRISS"}
    ref = stcal_fit(data, gdq, pdq, gain, cds, readout)
    out = fast_ols_fit(data, gdq, pdq, gain, cds, readout)
    clean = clean_pixels(gdq, pdq)
    assert 0.5 < clean.mean() < 1.0                       # both paths are exercised
    for key in ("slope", "var_poisson", "var_rnoise"):
        assert (np.isfinite(out[key]) == np.isfinite(ref[key])).all(), key
        np.testing.assert_allclose(out[key], ref[key], rtol=2e-6, atol=1e-9, err_msg=key)
    assert (out["dq"] == ref["dq"]).all()
    assert (out["exact"] == ref["exact"]).all()


def test_every_weighting_power_is_met():
    """The test ramps reach all six signal-to-noise classes of stcal's weights, so a
    wrong power table would fail the comparison above."""
    data, gdq, pdq, gain, cds = _block(3, 9, 16, 24, seed=9)
    s = (data[:, -1] - data[:, 0]) * gain
    rn_e = cds * gain / np.sqrt(2.0)
    snr = s / np.sqrt(rn_e ** 2 + np.maximum(s, 0))
    classes = np.searchsorted([5.0, 10.0, 20.0, 50.0, 100.0], snr, side="right")
    assert set(np.unique(classes)) == set(range(6))


def test_variance_stcal_sends_everything_to_stcal(monkeypatch):
    data, gdq, pdq, gain, cds = _block(2, 6, 8, 8, seed=3)
    calls = []
    monkeypatch.setattr(olsfast, "_clean_part", lambda *a: calls.append(a))
    out = fast_ols_fit(data, gdq, pdq, gain, cds, {"group_time": TG}, variance="stcal")
    ref = stcal_fit(data, gdq, pdq, gain, cds, {"group_time": TG}, variance="stcal")
    assert not calls
    np.testing.assert_array_equal(out["slope"], ref["slope"])
