"""Sky and 1/f that do not see the transit, on the SOSS scene built from a real frame (issue 16).

The scene (:mod:`tsocontainer.sim.soss_scene`) keeps the real frame's wings,
which reach every pixel and transit with the star. The shipped SOSS recipe is
run up to its light curves; each channel is then fitted with its exact injected
shape (:func:`tsocontainer.sim.soss_truth.shape_pulls`), which measures what the
reduction does to the depth without the transit model (limb darkening, orbit)
and with errors several times smaller than the recipe's fits, so a bias shows
sooner. The 500-integration full-frame numbers with the recipe's own fits are
in ``benchmarks/bench_soss_real.py``.

Small scene: columns 1000-1512 (1.53-2.05 micron, one side of the background
step, the wings bright), 100 integrations, 10 channels; ~12 s per reduction
(each scene is made and reduced once per module: the fixtures).
"""
from __future__ import annotations

import numpy as np
import pytest

from tsocontainer import TSOGroup
from tsocontainer.modes import MODES, Mode

COLUMNS = (1000, 1512)
NINT = 100
NCHAN = 10
#: the recipe's sky and 1/f before issue 16
LEGACY = {"estimate_sky": {"scale_by": "ratio"}, "correct_one_over_f": {"star_model": "deep"}}


def reduce(vis, legacy=False):
    """The shipped SOSS recipe up to its (clipped) light curves."""
    from tsocontainer.group import read_segments
    from tsocontainer.pipeline.recipe import load_recipe
    from tsocontainer.pipeline.runner import stage_of

    g = read_segments(vis.files, progress=False)
    lcs = spectra = None
    for name, kwargs in load_recipe("soss").steps:
        kwargs = dict(kwargs, **(LEGACY.get(name, {}) if legacy else {}))
        if stage_of(name) == "state":
            getattr(g, name)(**kwargs)
        elif name == "extract":
            spectra = g.extract(**kwargs)
        elif name == "to_lightcurves":
            lcs = spectra.to_lightcurves(**dict(kwargs, bins=NCHAN))
        elif name == "clip_outliers":
            lcs.clip_outliers(**kwargs)
    centre = np.nanmedian(np.asarray(g.traces[1], float), axis=0)
    return g, lcs, centre


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    from tsocontainer.sim.soss_scene import simulate_soss_scene

    vis = simulate_soss_scene(NINT, tmp_path_factory.mktemp("clean"), seed=11, columns=COLUMNS)
    return vis, reduce(vis)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    from tsocontainer.sim.soss_scene import CR_RATE, ONEF_RMS, simulate_soss_scene

    vis = simulate_soss_scene(NINT, tmp_path_factory.mktemp("onef"), seed=12, columns=COLUMNS,
                              noise={"one_over_f": ONEF_RMS, "cosmic_rays": CR_RATE})
    return vis, reduce(vis)


def _check_background(vis, g, lcs, centre):
    """The depth bias of the sky + 1/f corrections, per channel, over the depth's error.

    Fit-free: what the corrections leave in the box beyond the truth (its own noise,
    from the 1/f offsets, is ~0.15 of a channel's depth error here). The mean over the
    10 channels must stay below 0.15 of the error (0.34 sigma at 500 integrations,
    whose errors are sqrt(5) smaller), every channel below 0.6 (3x its noise).
    """
    from tsocontainer.sim.soss_truth import background_bias, shape_pulls

    edges = np.append(np.asarray(lcs.wave_lo, float), lcs.wave_hi[-1] * (1 + 1e-9))
    bb = background_bias(vis, g, edges, centre, 20.0)
    r = shape_pulls(vis, lcs, centre, 20.0)
    depth_err = r["alpha_err"] * vis.truth["white_light_depth_ppm"]
    ratio = bb["bias_ppm"] / depth_err
    return ratio, bb


def _check_pulls(vis, lcs, centre):
    from tsocontainer.sim.soss_truth import shape_pulls

    r = shape_pulls(vis, lcs, centre, 20.0)
    # 10 independent channels: the mean of 10 unit-normal pulls has sigma 0.32 and their
    # standard deviation sigma 0.24, chi^2/N sigma 0.45; the limits are 3 sigma
    assert abs(r["mean"]) < 0.95, r
    assert 0.3 < r["std"] < 1.7, r
    assert r["chi2_n"] < 2.35, r
    assert np.all(np.abs(r["pulls"]) < 4), r
    return r


@pytest.mark.slow
def test_sky_scale_is_the_light_that_does_not_transit(clean):
    vis, (g, _, _) = clean
    truth = vis.truth["background"]["scales"][1]   # the scene's zodiacal scale right of the step
    assert g.meta["SKYSCAL"] == "light-curve"
    scale = float(np.median(g.aux["sky_params"]))
    # the light curve separates the sky from the wings: within 2 % (its error here ~0.5 %)
    assert abs(scale / truth - 1) < 0.02, (scale, truth)
    # the data/model ratio over pixels outside the 40 px band takes the wings for sky
    with pytest.warns(UserWarning, match="stale"):   # (the later corrections of the copy)
        ratio = g.copy().estimate_sky(scale_by="ratio")
    assert np.median(ratio.aux["sky_params"]) / truth > 1.5


@pytest.mark.slow
def test_sky_and_onef_do_not_see_the_transit(clean):
    vis, (g, lcs, centre) = clean
    ratio, bb = _check_background(vis, g, lcs, centre)
    assert abs(ratio.mean()) < 0.15 and np.abs(ratio).max() < 0.6, (ratio, bb)
    assert np.all(np.abs(bb["out_pct"]) < 0.1)       # and the sky is right: < 0.1 % of the star


@pytest.mark.slow
def test_reduction_keeps_the_depth(clean):
    vis, (g, lcs, centre) = clean
    _check_pulls(vis, lcs, centre)
    star_model = [h["params"].get("star_model") for h in g.history
                  if h["step"] == "correct_one_over_f"]
    assert star_model == ["reference"]


@pytest.mark.slow
def test_reduction_keeps_the_depth_with_onef_and_cosmic_rays(noisy):
    vis, (g, lcs, centre) = noisy
    r = _check_pulls(vis, lcs, centre)
    # the 1/f offsets are recovered: after the correction the background of a column is
    # flat to the offsets' own noise (1.4 DN/s injected)
    off = np.asarray(g.aux["onef"], float) - vis.truth_arrays()["ONE_OVER_F"]
    resid = off - off.mean(axis=0)          # the visit-mean pattern per column is harmless
    assert np.std(resid) < 0.1, np.std(resid)
    assert np.isfinite(r["mean"])
    ratio, bb = _check_background(vis, g, lcs, centre)
    # with 1/f the offsets' in-out noise is correlated across columns (1/f spectrum) and
    # larger than their stated error: over seeds 12, 13, 14 the mean ratio was +0.18,
    # -0.17, -0.15 (its scatter ~0.2), the largest |ratio| 0.53, 0.45, 0.39; limits at
    # ~2.5 times that scatter
    assert abs(ratio.mean()) < 0.45 and np.abs(ratio).max() < 0.9, (ratio, bb)
    # the reference rows take the 1/f out of the sky's light-curve fit: the sky is right
    assert g.meta["SKYSCAL"] == "light-curve"
    truth = vis.truth["background"]["scales"][1]
    assert abs(float(np.median(g.aux["sky_params"])) / truth - 1) < 0.03


@pytest.mark.slow
def test_legacy_sky_and_onef_see_the_transit(clean):
    """The same check fails with the sky and 1/f of before issue 16: the test can fail
    (measured: mean +0.36, largest +1.06 of the depth error on this scene)."""
    vis, _ = clean
    g, lcs, centre = reduce(vis, legacy=True)
    ratio, bb = _check_background(vis, g, lcs, centre)
    assert ratio.mean() > 0.25 and np.abs(ratio).max() > 0.6, (ratio, bb)
    assert np.all(bb["out_pct"] > 0.5)               # the ratio sky takes the wings for sky


# ------------------------------------------------ units of the new pieces
def test_separate_recovers_starlight_and_constant():
    from tsocontainer.cleaning.timemodel import light_curve_sums, separate, separation_error

    rng = np.random.default_rng(3)
    n = 400
    wl = np.ones(n)
    wl[150:270] = 0.98
    a_true, b_true = rng.uniform(5, 50, (4, 5)), rng.uniform(2, 8, (4, 5))
    cube = wl[:, None, None] * a_true + b_true + rng.normal(0, 0.3, (n, 4, 5))
    a, b, b_var = separate(light_curve_sums(cube, np.ones(cube.shape, bool), wl))
    z = (b - b_true) / np.sqrt(b_var)
    # 20 pixels: unit pulls within 4 sigma each, error as predicted (0.3 x separation error)
    assert np.all(np.abs(z) < 4)
    assert np.allclose(np.sqrt(b_var), 0.3 * separation_error(wl), rtol=0.25)
    a2, b2, _ = separate(light_curve_sums(cube, np.ones(cube.shape, bool), np.ones(n)))
    assert np.all(np.isnan(b2))                       # a flat light curve separates nothing


def test_nonvarying_scales_carry_the_column_noise():
    from tsocontainer.cleaning.background import nonvarying_scales

    rng = np.random.default_rng(5)
    ncol, per = 400, 30
    col = np.repeat(np.arange(ncol), per)
    m = rng.uniform(4, 6, col.size)
    mean = rng.uniform(5, 40, col.size)
    r = 0.05
    shift = rng.normal(0, 2.0, ncol)[col]             # 1/f: one shift per column
    b = 0.6 * m / (1 - r) - r / (1 - r) * mean + shift + rng.normal(0, 0.1, col.size)
    groups = (np.arange(ncol) >= 200).astype(int)[col]
    s, svar, gamma, _ = nonvarying_scales(b, np.full(col.size, 0.01), mean, m, groups, col)
    assert abs(gamma + r / (1 - r)) < 0.002          # within columns: free of the shifts
    z = (s - 0.6) / np.sqrt(svar)
    assert np.all(np.abs(z) < 4), (s, svar)
    # the error holds the column shifts (2 / 5 / sqrt(200) ~ 0.03), not the pixel noise
    assert np.all(np.sqrt(svar) > 0.02)


def test_clean_light_curve_ignores_sky_and_onef():
    from tsocontainer.cleaning.onef import clean_light_curves
    from tsocontainer.cleaning.outliers import white_light

    rng = np.random.default_rng(7)
    n, ny, nx = 60, 40, 50
    lc = np.ones(n)
    lc[20:40] = 0.98
    y = np.arange(ny)[:, None]
    star = 1000 * np.exp(-0.5 * ((y - 20) / 3.0) ** 2) * np.ones((1, nx))
    sky = 50.0
    onef = rng.normal(0, 2.0, (n, 1, nx))
    cube = lc[:, None, None] * star + sky + onef
    band = np.abs(y - 20) <= 8 * np.ones((1, nx), bool)
    good = np.ones(cube.shape, bool)
    clean = clean_light_curves(cube, good, band, 0)
    assert np.allclose(clean, lc, atol=1e-4)          # the star's own curve
    plain = white_light(cube, np.ones((ny, nx), bool))
    # the white light is diluted by the sky: per column the star holds 1000 x 3 sqrt(2 pi)
    # of the frame's 1000 x 3 sqrt(2 pi) + 50 x 40, so the plain depth is 0.02 x 0.79 ...
    stars = 1000 * 3 * np.sqrt(2 * np.pi)
    diluted = 0.02 * stars / (stars + sky * ny)
    exact = white_light(cube - onef, np.ones((ny, nx), bool))
    assert abs((1 - exact[20:40].mean()) - diluted) < 1e-6
    # ... and the 1/f noise scatters it (within 4 sigma of the out-of-transit scatter of
    # the means of 20 in- and 40 out-of-transit points)
    oot = np.r_[0:20, 40:60]
    tol = 4 * np.std(plain[oot]) * np.sqrt(1 / 20 + 1 / 40)
    depth = plain[oot].mean() - plain[20:40].mean()
    assert abs(depth - diluted) < tol and np.std(plain[oot]) > 1e-4, (depth, diluted, tol)
    curves = clean_light_curves(cube, good, band, 0, 1, bin_size=10)
    assert curves.shape == (n, nx) and np.allclose(curves, lc[:, None], atol=1e-4)


def test_onef_offsets_survive_a_flagged_line():
    from tsocontainer.cleaning.onef import onef_offsets

    rng = np.random.default_rng(2)
    cube = 5.0 + rng.normal(0, 0.1, (2, 30, 4))
    cube[1, :, 2] += 3.0                              # a large 1/f offset ...
    good = np.ones(cube.shape, bool)
    good[1, :, 2] = False                             # ... flagged wholesale as outliers
    band = np.zeros((30, 4), bool)
    off, _ = onef_offsets("masked-median", cube, np.ones(cube.shape), good, band, 0)
    assert off[1, 2] == 0                             # no pixel left: silently no offset
    off, _ = onef_offsets("masked-median", cube, np.ones(cube.shape), good, band, 0,
                          base=np.ones((30, 4), bool))
    assert abs(off[1, 2] - 8.0) < 0.1


def test_scale_by_options():
    mode = Mode(spec=MODES["soss"], subarray="SUBSTRIP96")
    rng = np.random.default_rng(1)
    g = TSOGroup(5 + rng.normal(0, 0.1, (4, 96, 2048)).astype(np.float32),
                 np.full((4, 96, 2048), 0.01, np.float32), mode=mode)
    g.estimate_sky(method="model")                    # flat light curve: the ratio
    assert g.meta["SKYSCAL"] == "ratio"
    with pytest.raises(ValueError, match="too little contrast"):
        g.estimate_sky(method="model", scale_by="light-curve")
    with pytest.raises(ValueError, match="per_integration must be False"):
        g.estimate_sky(method="model", scale_by="light-curve", per_integration=True)
    with pytest.raises(ValueError, match="allowed: auto, light-curve, ratio"):
        g.estimate_sky(method="model", scale_by="wings")
    with pytest.raises(ValueError, match="allowed: reference, deep"):
        g.correct_one_over_f(method="scale-achromatic", star_model="white")
