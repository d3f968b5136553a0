"""Truth helpers: binned injected depths and priors derived from the truth."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tsocontainer.sim.truth import binned_depth, noise_limit, priors_from_truth
from tsocontainer.sim.simulate import simulate_visit


@pytest.fixture(scope="module")
def prism(tmp_path_factory):
    out = tmp_path_factory.mktemp("prism")
    return simulate_visit("nirspec-prism", nint=6, seed=3, out=out, noiseless=True)


def test_white_binned_depth_equals_truth(prism):
    # one bin over the whole order: the same flux weighting the simulator uses
    # for white_light_depth_ppm (agreement limited by float rounding, << 1 ppm)
    white = binned_depth(prism, None)
    assert white.shape == (1,)
    assert abs(white[0] - prism.truth["white_light_depth_ppm"]) < 0.5


def test_flat_spectrum_gives_flat_bins(tmp_path):
    wave = np.linspace(0.5, 6.0, 50)
    vis = simulate_visit("nirspec-prism", nint=4, seed=1, out=tmp_path, noiseless=True,
                         depth_spectrum=(wave, np.full(wave.size, 12345.0)))
    d = binned_depth(vis, 7)
    assert np.allclose(d[np.isfinite(d)], 12345.0, rtol=0, atol=1e-6)
    assert noise_limit(vis, 7).shape == (7,)


def test_binned_depth_is_weighted_mean(prism):
    edges = np.array(prism.truth["channel_limits"]["bin_edges_um"])
    d = binned_depth(prism, edges)
    ds = prism.truth["depth_spectrum"]
    lo, hi = np.nanmin(ds["depth_ppm"]), np.nanmax(ds["depth_ppm"])
    assert np.all((d >= lo - 1e-9) & (d <= hi + 1e-9))  # a weighted mean lies inside the range


def test_priors_from_truth(prism):
    # the truth's t0 is BJD_TDB, as the priors and light-curve times (INT_TIMES + 2400000.5)
    from astropy.io import fits

    truth = prism.truth["params"]
    assert truth["time_scale"] == "BJD_TDB"
    with fits.open(prism.files[0]) as hdul:
        mid = np.asarray(hdul["INT_TIMES"].data["int_mid_BJD_TDB"], float) + 2400000.5
    assert mid[0] < truth["t0"] < mid[-1]  # the default transit is centred on the visit
    p = priors_from_truth(prism.truth)
    assert p["per"] == truth["per"]
    lo, hi = p["t0"]["uniform"]
    assert lo < truth["t0"] < hi and p["t0"]["init"] == truth["t0"]
    # a truth written in the older BJD_TDB - 2400000.5 convention gives the same priors
    old = {"params": dict(truth, t0=truth["t0"] - 2400000.5, time_scale="BJD_TDB - 2400000.5")}
    t_old = priors_from_truth(old)["t0"]
    assert t_old["init"] == pytest.approx(truth["t0"], abs=1e-7)  # 1e-7 d ~ 0.01 s: rounding
    assert np.allclose(t_old["uniform"], [lo, hi], rtol=0, atol=1e-7)


def test_planet_yaml_beside_truth_parses_as_the_priors(prism):
    from tsocontainer.lightcurves.priors import parse_priors

    path = Path(prism.folder) / "planet.yaml"
    got = parse_priors(str(path))
    want = parse_priors(priors_from_truth(prism.truth))
    assert set(got) == set(want)
    for name in want:
        assert (got[name].kind, got[name].lo, got[name].hi, got[name].init) == (
            want[name].kind, want[name].lo, want[name].hi, want[name].init), name


def test_eclipse_priors_use_the_secondary_time(tmp_path):
    vis = simulate_visit("miri-lrs", nint=6, seed=2, out=tmp_path, noiseless=True,
                         event="eclipse")
    p = priors_from_truth(vis.truth)
    ts = vis.truth["params"]["t_secondary"]
    assert "t0" not in p and p["t_sec"]["init"] == ts and p["rp_rs"] == vis.truth["params"]["rp_rs"]


def test_binned_depth_needs_arrays(prism):
    with pytest.raises(TypeError, match="truth arrays"):
        binned_depth(prism.truth, 3)


def test_crop_narrower_than_a_channel():
    # 256 G395H columns span less than one default channel width
    vis = simulate_visit("nirspec-g395h", 4, columns=(500, 756), noiseless=True)
    edges = vis.truth["channel_limits"]["bin_edges_um"]
    assert len(edges) == 2 and edges[0] < edges[1]
    assert np.isfinite(vis.truth["channel_limits"]["limit_ppm"][0])
