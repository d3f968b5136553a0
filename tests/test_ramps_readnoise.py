"""The read-noise check of stage 1: the read noise in use against the ramps' own.

The simulated MIRI detector has a CDS read noise of 14.1 DN (10 DN per read, gain 3.1)
where the documented default is 6 DN (gain 4): with the default, stcal's jump detection
flags about 10 % of the group differences of a visit without cosmic rays.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

from tsocontainer.ramps import read_uncal
from tsocontainer.ramps.calib import measure_read_noise
from tsocontainer.sim.ramps import simulate_ramps

#: photon and read noise, reset noise, reference drift, odd/even and IPC as simulated by
#: default; no cosmic rays (every flag is a false one) and no bad pixels
NOISE = {"cosmic_rays": 0, "bad_pixels": False}


@pytest.fixture(scope="module")
def miri(tmp_path_factory):
    return simulate_ramps("miri-lrs", nint=3, ngroups=20, seed=2, systematics=False,
                          noise=NOISE, references=False,
                          out=tmp_path_factory.mktemp("rn") / "miri")


def _stage1(v, **detector):
    """Default stage 1 (no user references); the rates and the jump flag rate."""
    g = read_uncal(v.files)
    if detector:
        g.use_detector(**detector)
    g.flag_saturation().subtract_superbias().correct_reference_pixels()
    g.correct_group_onef().detect_jumps()
    rates = g.fit_ramps()
    n = int(g.aux["n_jumps_ramp"].sum() + g.aux["n_jumps_time"].sum())
    return g, rates, n / (g.N * g.sh[0] * g.sh[1] * (g.ngroups - 1))


def test_measure_read_noise_on_arrays():
    """Second differences of 2000 pixels x 4 ramps x 8 groups, 1 % of the ramps with a
    jump: within 2 % of the truth (the statistical precision is ~0.3 %), and a gain
    30 % wrong moves it by under 2 % (the Poisson share of the pixels used is <= 10 %)."""
    rng = np.random.default_rng(11)
    gain, cds, tg = 2.0, 12.0, 5.0
    rate = np.geomspace(0.01, 300, 2000).reshape(40, 50)               # DN/s
    e = rng.poisson(np.broadcast_to(rate * tg * gain, (4, 8, 40, 50)))
    d = np.cumsum(e, axis=1) / gain + rng.normal(0, cds / np.sqrt(2), e.shape)
    hit = rng.random((4, 40, 50)) < 0.01
    d[:, 4:][np.broadcast_to(hit[:, None], d[:, 4:].shape)] += 500.0
    gdq = np.zeros(d.shape, np.uint8)
    none = np.zeros((40, 50), bool)
    got, err, npix = measure_read_noise(d.astype(np.float32), gdq, none, gain)
    assert got == pytest.approx(cds, rel=0.02) and err < 0.01 and 200 < npix < 2000
    wrong, _, _ = measure_read_noise(d.astype(np.float32), gdq, none, gain * 1.3)
    assert wrong == pytest.approx(got, rel=0.02)
    with pytest.raises(ValueError, match="at least 3 groups"):
        measure_read_noise(d[:, :2], gdq[:, :2], none, gain)


def test_default_read_noise_replaced_by_the_measured_one(miri, caplog):
    """Old behaviour (no check): > 5 % of the differences flagged. With the check: the
    default 6 DN is replaced by the measured value, within 10 % of the simulated 14.1 DN
    (the estimator is within 1 % on photon + read noise only; the residual correlated
    noise left by the calibrations adds ~4 % here, and it is noise the jump detection
    sees), and <= 0.1 % of the differences are flagged."""
    truth = miri.truth["ramps"]["read_noise_cds_dn"]
    _, _, before = _stage1(miri, check_readnoise=None)
    assert before > 0.05
    with caplog.at_level(logging.WARNING, logger="tsocontainer.ramps.steps"):
        g, rates, after = _stage1(miri)
    assert after <= 1e-3
    check = [h for h in g.history if h["step"] == "check_readnoise"]
    assert len(check) == 1 and check[0]["summary"]["action"] == "replaced"
    measured = check[0]["summary"]["measured_dn"]
    assert measured == pytest.approx(truth, rel=0.10)
    assert np.all(g.aux["readnoise"] == np.float32(measured))
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "mirimage_uncal.fits" in msg and "default 6 DN" in msg and f"{measured:.4g}" in msg
    # the products show it
    assert rates.meta["RNCHECK"].startswith("replaced: 6 DN in use")
    assert rates.meta["RNSRC"].startswith("data (3 integrations)")
    assert "ramps:check_readnoise" in [h["step"] for h in rates.history]


def test_given_read_noise_is_checked_but_kept(miri, caplog):
    truth = miri.truth["ramps"]["read_noise_cds_dn"]
    with caplog.at_level(logging.WARNING, logger="tsocontainer.ramps.steps"):
        g, rates, _ = _stage1(miri, readnoise=6.0)
    assert rates.meta["RNCHECK"].startswith("kept (given)")
    assert np.all(g.aux["readnoise"] == np.float32(6.0))
    assert "keeping the given value" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tsocontainer.ramps.steps"):
        g, rates, _ = _stage1(miri, readnoise=truth)
    assert rates.meta["RNCHECK"].startswith("kept:") and "read noise" not in caplog.text
