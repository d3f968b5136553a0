"""Outlier flags and pixel replacement (tsocontainer.cleaning.outliers, cleaning steps)."""
from __future__ import annotations

import numpy as np
import pytest

from tsocontainer import TSOGroup
from tsocontainer.modes import MODES, Mode
from tsocontainer._util import check_option
from tsocontainer.arrays.numerics import (median_network, nanmedian0, reflect_index,
                                          residual_scale, running_median, window_median)

READ_VAR = 25.0   # read-noise variance per pixel (DN/s)^2, gain 1
FLAG_STEPS = {
    "hot_cold": lambda g: g.flag_hot_cold_pixels(),
    "outliers_2d": lambda g: g.flag_2d_outliers(),
    "percentile": lambda g: g.flag_percentile_outliers(),
    "time_outliers": lambda g: g.flag_time_outliers(),
    "profile": lambda g: g.flag_from_profile(),
    "trace_outliers": lambda g: g.flag_trace_outliers(),
}


def make_cube(N=40, ny=64, nx=256, seed=0, depth=0.03, ncr=200, onef=0.0, bkg=5.0, noise=True,
              nbad=20, cr_snr=(8.0, 60.0)):
    """A small SOSS-like visit: curved Gaussian trace, transit, CRs, hot/dead pixels, 1/f.

    Returns the group and a truth dict. Variance is Poisson (gain 1) + read
    noise and matches the injected noise exactly (1/f excepted, as in real data).
    """
    rng = np.random.default_rng(seed)
    y = np.arange(ny)[:, None]
    x = np.arange(nx)[None]
    yc = 30 + 5 * np.sin(x / 80.0)
    star = 2000 * np.exp(-0.5 * ((y - yc) / 3.0) ** 2) * (1 + 0.3 * np.cos(x / 30.0))
    t = np.linspace(-0.1, 0.1, N)
    lc = np.where(np.abs(t) < 0.04, 1 - depth, 1.0)
    model = lc[:, None, None] * star[None] + bkg
    var = (model + READ_VAR).astype(np.float32)
    sci = model + (rng.standard_normal(model.shape) * np.sqrt(var) if noise else 0)
    off = onef_noise(rng, N, nx, onef) if onef else np.zeros((N, nx))
    sci = sci + off[:, None, :]
    ci, cy, cx = rng.integers(0, N, ncr), rng.integers(0, ny, ncr), rng.integers(0, nx, ncr)
    keep = np.unique(np.stack([ci, cy, cx]), axis=1)   # one CR per pixel and integration
    ci, cy, cx = keep
    amp = rng.uniform(*cr_snr, ci.size) * np.sqrt(var[ci, cy, cx])
    sci[ci, cy, cx] += amp
    flat = rng.choice(ny * nx, nbad, replace=False)
    by, bx = np.divmod(flat, nx)
    kind = np.where(np.arange(nbad) % 2 == 0, "hot", "dead")
    hot = kind == "hot"
    sci[:, by[hot], bx[hot]] += 300.0
    sci[:, by[~hot], bx[~hot]] = rng.normal(0, np.sqrt(READ_VAR), (N, (~hot).sum()))
    g = TSOGroup(sci, var, mode=Mode(spec=MODES["soss"], subarray="SUBSTRIP256"))
    g.set_aux("trace_order1", np.broadcast_to(yc, (N, nx)).astype(np.float32),
              per_integration=True)
    truth = dict(cr=(ci, cy, cx), cr_amp=amp, bad=(by, bx, kind), onef=off, model=model,
                 star=star, lc=lc, yc=yc)
    return g, truth


def onef_noise(rng, n, nlines, rms):
    """Offsets (n, nlines) with a 1/f power spectrum along the lines, rms ``rms``."""
    f = np.fft.rfftfreq(nlines)
    amp = np.zeros_like(f)
    amp[1:] = 1 / np.sqrt(f[1:])
    spec = amp * (rng.standard_normal((n, f.size)) + 1j * rng.standard_normal((n, f.size)))
    off = np.fft.irfft(spec, n=nlines, axis=1)
    return off / off.std() * rms


def cr_mask(g, truth):
    m = np.zeros(g.shape, bool)
    m[truth["cr"]] = True
    return m


# ----------------------------------------------------------- primitives
@pytest.mark.parametrize("n", range(1, 14))
def test_median_network_is_exact(n):
    rng = np.random.default_rng(n)
    vals = rng.normal(size=(n, 500)).astype(np.float32)
    vals[:, :50] = np.round(vals[:, :50])  # ties
    got = window_median(list(vals))
    assert np.allclose(got, np.median(vals, axis=0), rtol=0, atol=1e-6)
    assert len(median_network(n)) <= n * n  # pruned, never more than a bubble sort


def test_running_median_matches_windows():
    rng = np.random.default_rng(3)
    cube = rng.normal(size=(23, 3, 4)).astype(np.float32)
    for window in (3, 5, 10, 11):
        half = window // 2
        idx = reflect_index(23, half)
        ref = np.stack([np.median(cube[idx[i:i + 2 * half + 1]], axis=0) for i in range(23)])
        assert np.allclose(running_median(cube, window), ref, atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 5, 18])
def test_nanmedian0_equals_numpy(n):
    """Same values as ``np.nanmedian(axis=0)``, odd and even counts, all-NaN columns."""
    import warnings

    rng = np.random.default_rng(n)
    a = rng.normal(size=(n, 7, 40)).astype(np.float32)
    a[rng.random(a.shape) < 0.3] = np.nan
    a[:, 0, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmedian(a, axis=0)
    got = nanmedian0(a)
    assert got.dtype == a.dtype and np.isnan(got[0, 0])
    assert np.array_equal(got, ref, equal_nan=True)


def test_medians_of_transposed_views():
    # dispersion along rows (MIRI) filters swapped, non-contiguous views
    from tsocontainer.arrays.numerics import dispersion_median

    rng = np.random.default_rng(8)
    a = rng.normal(size=(3, 17, 11)).astype(np.float32)
    view = np.swapaxes(a, -1, -2)
    assert np.array_equal(dispersion_median(view, 5), dispersion_median(view.copy(), 5))
    assert np.array_equal(running_median(view, 3), running_median(view.copy(), 3))


def test_reflect_index_never_repeats_the_edge():
    assert reflect_index(5, 2).tolist() == [2, 1, 0, 1, 2, 3, 4, 3, 2]


def test_residual_scale_is_tail_calibrated():
    # independent draws: |x - med5| / scale beyond 3.5 as often as a Gaussian (4.65e-4);
    # 2e6 draws give ~930 events, Poisson 1-sigma 3.3 %, so 15 % is > 4 sigma.
    rng = np.random.default_rng(99)
    x = rng.standard_normal((5, 2_000_000)).astype(np.float32)
    r = np.abs(x[2] - window_median(list(x))) / residual_scale(5)
    assert abs((r > 3.5).mean() / 4.6527e-4 - 1) < 0.15


def test_check_option_lists_allowed():
    with pytest.raises(ValueError, match="unknown thing 'x'; allowed: a, b"):
        check_option("x", ("a", "b"), "thing")


# ------------------------------------------------------------ time flags
def test_time_outliers_find_crs_without_false_positives():
    g, tr = make_cube(onef=0.0)
    g.flag_time_outliers(window=5, nsigma=5.0)
    f = g.flagged("time_outliers")
    crs = cr_mask(g, tr)
    found = f[crs].mean()
    fp = (f & ~crs).sum() / f.size
    # CRs are 8-60 sigma: the residual scale is ~1.08 sigma, so the weakest is
    # ~7.4 sigma over a 5 sigma threshold (> 2.3 sigma margin -> >= 99 %).
    assert found >= 0.99, found
    assert fp <= 1e-3, fp   # acceptance: <= 0.1 % of pixels


def test_time_outliers_ignore_a_deep_transit():
    # noiseless 3 % transit with a sharp ingress: nothing to flag at all.
    g, _ = make_cube(noise=False, ncr=0, nbad=0, depth=0.03)
    g.flag_time_outliers(window=5, nsigma=5.0)
    assert g.flagged("time_outliers").sum() == 0
    # with noise, flags are not more common in transit than outside it
    # (three seeds, ~1 flag per integration at 4 sigma: Poisson 3-sigma margin)
    n_in = n_out = f_in = f_out = 0
    for seed in (5, 6, 7):
        g, tr = make_cube(ncr=0, nbad=0, depth=0.03, seed=seed)
        g.flag_time_outliers(window=5, nsigma=4.0)
        per_int = g.flagged("time_outliers").sum(axis=(1, 2))
        assert per_int.sum() <= 1e-3 * g.sci.size
        tin = tr["lc"] < 1
        f_in, n_in = f_in + per_int[tin].sum(), n_in + tin.sum()
        f_out, n_out = f_out + per_int[~tin].sum(), n_out + (~tin).sum()
    rate_out = f_out / n_out
    assert f_in / n_in <= rate_out + 3 * np.sqrt(rate_out / n_in)


def test_time_outliers_window_validation():
    g, _ = make_cube(N=8, ncr=0, nbad=0)
    with pytest.raises(ValueError, match="window"):
        g.flag_time_outliers(window=1)
    with pytest.raises(TypeError):
        g.flag_time_outliers(windw=5)


# --------------------------------------------------------- spatial flags
def test_hot_cold_pixels_recovered():
    g, tr = make_cube(bkg=50.0)  # dead pixels on a 50 DN/s sky are 7 sigma low per integration
    g.flag_hot_cold_pixels()
    hc = g.flagged("hot_cold")
    by, bx, _ = tr["bad"]
    assert hc[:, by, bx].all()           # flagged in every integration
    assert hc[0].sum() <= len(by) + 2    # at most two others in the whole frame


def test_2d_and_percentile_outliers_find_crs():
    g, tr = make_cube()
    crs = cr_mask(g, tr)
    g.flag_2d_outliers(filter_size=5, threshold=5.0)
    f = g.flagged("outliers_2d")
    # neighbours of the same integration carry the model: CRs 8-60 sigma, threshold 5
    assert f[crs].mean() >= 0.98
    assert (f & ~crs).sum() <= 1e-3 * f.size
    g.flag_percentile_outliers(percentile=99.9, nsigma=4.0)
    p = g.flagged("percentile")
    assert p[crs].mean() >= 0.9
    # at most the top 0.1 % of every integration (plus ties)
    assert p.sum(axis=(1, 2)).max() <= 0.001 * g.sh[0] * g.sh[1] + 2
    with pytest.raises(ValueError, match="percentile"):
        g.flag_percentile_outliers(percentile=100)


def test_profile_flags_crs_on_trace_only():
    g, tr = make_cube()
    g.flag_from_profile(nsigma=5.0)
    f = g.flagged("profile")
    band = g._trace_band()
    crs = cr_mask(g, tr) & band[None]
    assert f[crs].mean() >= 0.98
    assert not (f & ~band[None]).any()
    by, bx, _ = tr["bad"]
    static = np.zeros(g.sh, bool)
    static[by, bx] = True
    # false positives: only the static bad pixels, flagged in every integration
    assert ((f & ~cr_mask(g, tr)).any(axis=0) & ~static).sum() <= 2


def test_trace_outliers_flag_bright_sky_pixels():
    g, tr = make_cube()
    g.flag_trace_outliers(nsigma=5.0)
    f = g.flagged("trace_outliers")
    band = g._trace_band()
    crs = cr_mask(g, tr) & ~band[None]
    assert f[crs].mean() >= 0.98
    assert not (f & band[None]).any()


def test_order0_mask():
    g, _ = make_cube(N=6, ncr=0, nbad=0)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[: g.sh[0], : g.sh[1]]
    f277 = 3.0 + rng.normal(0, 0.3, g.sh)
    for y0, x0 in [(6, 20), (60, 200), (30, 128)]:   # the last one sits on the trace
        f277 += 50 * np.exp(-0.5 * ((yy - y0) ** 2 + (xx - x0) ** 2) / 1.5 ** 2)
    g.make_order0_mask(f277, nsigma=5, grow=1)
    m = g.flagged("order0")
    assert m[:, 6, 20].all() and m[:, 60, 200].all()
    assert not m[:, 30, 128].any()                   # exclude_trace=True
    # nothing else: every flag lies within 6 px of the two off-trace blobs
    # (a 50/0.3 blob of sigma 1.5 px is above 5 sigma out to r = 4 px, plus grow=1)
    fy, fx = np.nonzero(m[0])
    near = np.minimum(np.hypot(fy - 6, fx - 20), np.hypot(fy - 60, fx - 200))
    assert near.max() <= 6
    with pytest.raises(ValueError, match="shape"):
        g.make_order0_mask(np.zeros((3, 3)))


# ------------------------------------------------- flag bookkeeping
@pytest.mark.parametrize("name", sorted(FLAG_STEPS))
def test_flag_unflag_reflag_keeps_mask_and_sci(name):
    g, _ = make_cube(N=20)
    sci0 = g.sci.copy()
    mask0 = g.mask.copy()
    FLAG_STEPS[name](g)
    mask1 = g.mask.copy()
    assert g.flagged(name).any()
    g.unflag(name)
    assert np.array_equal(g.mask, mask0)
    FLAG_STEPS[name](g)
    assert np.array_equal(g.mask, mask1)
    FLAG_STEPS[name](g)   # re-running replaces its own plane
    assert np.array_equal(g.mask, mask1)
    assert np.array_equal(g.sci, sci0)
    assert g.steps[-1] == f"flag:{name}" and "seconds" in g.history[-1]["summary"]


def test_flags_do_not_depend_on_order():
    g1, _ = make_cube(N=20)
    g2 = g1.copy()
    g1.flag_time_outliers().flag_hot_cold_pixels().flag_2d_outliers()
    g2.flag_2d_outliers().flag_hot_cold_pixels().flag_time_outliers()
    assert np.array_equal(g1.mask, g2.mask)


# ----------------------------------------------------------- replacement
@pytest.mark.parametrize("method", ["spatial", "temporal", "profile"])
def test_replace_bad_pixels(method):
    g, tr = make_cube(noise=False, onef=0.0)
    sci0 = g.sci.copy()
    g.flag_time_outliers().flag_hot_cold_pixels()
    mask = g.mask.copy()
    g.replace_bad_pixels(method=method, var_inflation=4.0)
    data, var = g.working_block()
    bad = ~mask
    truth = tr["model"]
    err = np.abs(data[bad] - truth[bad]) / np.sqrt(g.var[bad])
    # noiseless smooth scene: replaced values are within 1 sigma of the truth for
    # 95 % of the pixels (the curved trace's edges limit the spatial estimate)
    assert np.quantile(err, 0.95) < 1.0, np.quantile(err, 0.95)
    assert np.array_equal(data[mask], g.sci[mask])           # good pixels untouched
    assert np.all(var[bad] >= 3.9 * np.minimum(g.var[bad], var[bad] / 4))
    assert np.array_equal(g.flagged("replaced"), bad)
    assert np.array_equal(g.mask, mask)                      # informational flag only
    assert np.array_equal(g.sci, sci0)
    sub = g[7:13]                                            # slicing keeps replacements right
    assert np.array_equal(sub.working_block()[0], g.working_block(7, 13)[0])


def test_replacement_variance_inflated():
    g, _ = make_cube(N=20)
    g.flag_time_outliers()
    bad = ~g.mask
    g.replace_bad_pixels(var_inflation=4.0)
    _, var = g.working_block()
    # the replaced variance is 4x the pixel's typical variance, which for CRs
    # (that do not change VAR here) equals g.var to within the deep-frame noise
    assert np.allclose(var[bad], 4 * g.var[bad], rtol=0.05)
    with pytest.raises(ValueError, match="var_inflation"):
        g.replace_bad_pixels(var_inflation=0.5)
    with pytest.raises(ValueError, match="allowed: spatial, temporal, profile"):
        g.replace_bad_pixels(method="nearest")


def test_reflag_after_replacement_finds_the_same_pixels():
    g, _ = make_cube(N=20)
    g.flag_time_outliers()
    f0 = g.flagged("time_outliers")
    g.replace_bad_pixels()
    g.flag_time_outliers()
    assert np.array_equal(g.flagged("time_outliers"), f0)


def test_flag_plots_return_axes():
    import matplotlib.axes

    g, _ = make_cube(N=8)
    g.flag_time_outliers().flag_hot_cold_pixels().replace_bad_pixels()
    for name in ("plot_time_outliers", "plot_hot_cold_pixels", "plot_replaced", "plot_flag_rate"):
        ax = getattr(g, name)()
        assert isinstance(ax, matplotlib.axes.Axes)
        assert ax.get_title()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert g.plot_flags("time_outliers", ax=ax) is ax


# ------------------------------------------- acceptance on simulated visits
SIM_COLUMNS = (1000, 1256)   # a 256-column crop of SUBSTRIP256 keeps the tests fast


@pytest.fixture(scope="module")
def soss_sim(tmp_path_factory):
    """30-integration noisy SOSS visit (default noise: CRs, bad pixels, 1/f) and its truth."""
    from tsocontainer import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    vis = simulate_visit("soss", 30, seed=3, out=tmp_path_factory.mktemp("soss"),
                         columns=SIM_COLUMNS)
    return read_segments(vis.files), vis.truth_arrays()


@pytest.mark.slow
def test_sim_time_outliers_acceptance(tmp_path):
    from tsocontainer import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    # 120 integrations hold ~600 CRs above 5 sigma: enough to measure a 99 % rate to
    # +-0.3 % (the 30-integration fixture's ~165 give +-0.8 %)
    vis = simulate_visit("soss", 120, seed=3, out=tmp_path, columns=SIM_COLUMNS)
    g, truth = read_segments(vis.files), vis.truth_arrays()
    g.flag_time_outliers()                 # defaults: window 5, nsigma 4
    f = g.flagged("time_outliers")
    cr = truth["COSMIC_RAYS"]
    ci, cy, cx = cr["integration"] - 1, cr["y"], cr["x"]
    strong = cr["amplitude"] / np.sqrt(g.var[ci, cy, cx]) > 5
    found = f[ci[strong], cy[strong], cx[strong]].mean()
    crs = np.zeros(g.shape, bool)
    crs[ci, cy, cx] = True
    bad = np.zeros(g.sh, bool)
    bad[truth["BADPIX"]["y"], truth["BADPIX"]["x"]] = True
    fp = (f & ~crs & ~bad[None]).mean()
    # acceptance: >= 99 % of the CRs above 5 sigma, <= 0.1 % false positives. A CR just
    # above 5 sigma on a noise dip falls under any threshold that keeps the false ones
    # below 0.1 %, so this holds for the population, not for every CR (measured here
    # 620 of 621, 99.8 %, false 0.015 %; 30-integration seeds 3-6: 660 of 666)
    assert strong.sum() > 500
    assert found >= 0.99, found
    assert fp <= 1e-3, fp


@pytest.mark.slow
def test_sim_deep_transit_causes_no_flags(tmp_path):
    from tsocontainer import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    # noiseless (systematics on) visit with a 3 % transit: no time outlier at all
    vis = simulate_visit("soss", 20, seed=5, out=tmp_path, noiseless=True, columns=SIM_COLUMNS,
                         params={"rp_rs": 0.1732})
    assert vis.truth["white_light_depth_ppm"] > 29000
    g = read_segments(vis.files)
    g.flag_time_outliers()
    assert g.flagged("time_outliers").sum() == 0


@pytest.mark.slow
def test_sim_hot_dead_pixels(soss_sim):
    g0, truth = soss_sim
    g = g0.copy()
    g.flag_hot_cold_pixels()
    hc = g.flagged("hot_cold")[0]
    bp = truth["BADPIX"]
    sigma = np.sqrt(g.var.mean(axis=0))[bp["y"], bp["x"]]
    hot, dead = bp["kind"] == "hot", bp["kind"] == "dead"
    detectable = hot & (bp["value"] / sigma * np.sqrt(g.N) >= 10)   # 10-sigma in the visit
    # every dead pixel and >= 99 % of the hot ones above 10 sigma in the visit, from the
    # data alone (measured: 100 % of 54; seeds 3-5: 170 of 170; the rest are below
    # 10 sigma in 30 integrations, e.g. 0.5 DN/s on the trace)
    assert hc[bp["y"][dead], bp["x"][dead]].all()
    assert hc[bp["y"][detectable], bp["x"][detectable]].mean() >= 0.99
    # flags without a defect, away from the order-0 contaminants (static sharp sources,
    # flagged by design): <= 0.05 % of the frame (measured 6 pixels, 0.009 %; seeds 4, 5:
    # 10 and 4)
    from scipy.ndimage import binary_dilation

    bad = np.zeros(g.sh, bool)
    bad[bp["y"], bp["x"]] = True
    cont = binary_dilation(truth["CONTAMINANTS"] > 0.05 * np.sqrt(g.var.mean(axis=0)),
                           iterations=2)
    assert (hc & ~bad & ~cont).mean() <= 5e-4
    # with the pipeline's HOT/DEAD bits as well: still all of them
    g.flag_dq(["HOT", "DEAD"])
    known = g.flagged("dq")[0] | hc
    sel = detectable | dead
    assert known[bp["y"][sel], bp["x"][sel]].mean() >= 0.99


@pytest.mark.slow
@pytest.mark.parametrize("mode,columns", [("miri-lrs", None), ("nirspec-prism", None),
                                          ("nirspec-g395h", None), ("nircam-f322w2", (600, 856))])
def test_sim_all_modes_false_flags(tmp_path, mode, columns):
    from tsocontainer import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    vis = simulate_visit(mode, 12, seed=2, out=tmp_path, columns=columns)
    truth = vis.truth_arrays()
    g = read_segments(vis.files)
    sci0 = g.sci.copy()
    known = np.zeros(g.shape, bool)
    cr = truth["COSMIC_RAYS"]
    known[cr["integration"] - 1, cr["y"], cr["x"]] = True
    known[:, truth["BADPIX"]["y"], truth["BADPIX"]["x"]] = True
    for name, step in FLAG_STEPS.items():
        step(g)
        # measured 0.000-0.095 % of the pixels are flagged without a known
        # defect (PSF-edge pixels under jitter, faint low-QE neighbours): 0.2 %
        assert (g.flagged(name) & ~known).mean() <= 2e-3, name
    # hot pixels >= 10 sigma in the visit and dead pixels on >= 10 sigma of light, found
    # from the data alone (measured: MIRI 24/24, PRISM 5/5, G395H 53/53, NIRCam 7/7)
    bp, hc = truth["BADPIX"], g.flagged("hot_cold")[0]
    sigma = np.sqrt(g.var.mean(axis=0))[bp["y"], bp["x"]] / np.sqrt(g.N)
    light = truth["MODEL"].reshape((-1,) + g.sh).sum(axis=0)[bp["y"], bp["x"]]   # all orders
    det = g._light_sensitive()[bp["y"], bp["x"]] & (
        ((bp["kind"] == "hot") & (bp["value"] >= 10 * sigma))
        | ((bp["kind"] == "dead") & (light >= 10 * sigma)))
    assert det.sum() >= 5
    assert hc[bp["y"][det], bp["x"][det]].mean() >= 0.99
    g.estimate_sky().correct_one_over_f().replace_bad_pixels()
    assert np.isfinite(g.data).all()      # every masked pixel (NaN SCI too) was replaced
    assert np.array_equal(g.sci, sci0)


@pytest.mark.slow
def test_sim_time_outliers_ignore_psf_breathing(tmp_path):
    from tsocontainer import read_segments
    from tsocontainer.cleaning.outliers import time_outliers
    from tsocontainer.sim.simulate import simulate_visit

    # seed 0: the PSF is 0.6 % wider in integration 68 (mid-egress); the steep edges of
    # the red end of order 1 answer to that. Without the width mode ~720 pixels of that
    # one integration were flagged (a cosmic-ray-free frame has ~15); with it <= 100.
    vis = simulate_visit("soss", 100, seed=0, out=tmp_path, columns=(1400, 1912))
    g, truth = read_segments(vis.files), vis.truth_arrays()
    assert abs(truth["SHIFTS"]["width"][68] - 1) > 0.005
    cr = truth["COSMIC_RAYS"]
    crs = np.zeros(g.shape, bool)
    crs[cr["integration"] - 1, cr["y"], cr["x"]] = True
    deep, dvar = g._deep()
    _, onef = g._axes()
    shift_only = time_outliers(g._detection_cube(), dvar, g._white_light(5), deep, 5, 4.0, onef,
                               g._motion_modes()[:, 0])
    assert (shift_only & ~crs)[68].sum() > 500        # the problem is there without the mode
    g.flag_time_outliers()
    false = (g.flagged("time_outliers") & ~crs).sum(axis=(1, 2))
    assert false.max() <= 100, (false.max(), false.argmax())   # measured 80
    assert g._motion_modes().shape == (100, 3)


def steep_trace_visit(seed, n=20, ny=128, nx=256, nbad=80):
    """A trace climbing 0.8 line per column (SOSS order 2 near x = 1700), two-horned
    profile, 2000 DN/s peaks on 20 DN/s of sky, hot pixels on it at 10-30 sigma."""
    rng = np.random.default_rng(seed)
    x = np.arange(nx, dtype=float)
    yc = 23.1 + 0.8 * x - 0.0008 * (x - 128) ** 2
    yy = np.arange(ny)[:, None]
    d = (yy - yc[None]) / 3.0
    star = 2000 * (np.exp(-0.5 * (d - 1.2) ** 2) + np.exp(-0.5 * (d + 1.2) ** 2)) * (
        1 + 0.2 * np.sin(x / 9))
    var = (star + 20.0) / 50 + 4.0
    cube = rng.normal(star + 20.0, np.sqrt(var), (n, ny, nx)).astype(np.float32)
    good = np.zeros((ny, nx), bool)
    good[:-4, 4:-4] = True                # reference pixels, as SOSS
    # within 8 px of the centre, where the 7-line local-flux box lies on the frame
    cand = np.argwhere((np.abs(yy - yc[None]) < 8) & good & (yy >= 8) & (yy < ny - 12))
    y, xx = cand[rng.choice(len(cand), nbad, replace=False)].T
    # sigma of the test: the clipped mean's noise and its 0.2 % structure tolerance
    amp = rng.uniform(10, 30, nbad) * np.hypot(np.sqrt(var[y, xx] / n), 0.002 * star[y, xx])
    cube[:, y, xx] += amp.astype(np.float32)
    return cube, var, yc, (y, xx), good


@pytest.mark.parametrize("dark_reference", [False, True], ids=["lit", "dark-reference"])
def test_hot_pixels_on_a_steep_trace_are_found_along_it(dark_reference):
    """The trace leaves the frame through its top rows, which are reference pixels: dark in
    real data (``dark_reference``). Where that edge cuts a pixel's local-flux box, or its
    neighbours', the boxes are moved off it by the same lines (before any handling: 53
    false flags per frame with dark reference rows, a whole row); the last row keeps a
    tolerance of 15 % of the light."""
    from tsocontainer.cleaning.outliers import hot_cold_pixels
    from tsocontainer.cleaning.smoothframe import trace_slopes

    found, false, found_plain = 0, 0, 0
    for seed in range(3):
        cube, var, yc, (y, x), good = steep_trace_visit(seed)
        if dark_reference:
            rng = np.random.default_rng(100 + seed)
            cube[:, ~good] = rng.normal(0.0, 2.0, (cube.shape[0], int((~good).sum())))
        deep = np.median(cube, axis=0)
        bad = np.zeros(deep.shape, bool)
        bad[y, x] = True
        hot, cold, _ = hot_cold_pixels(cube, var, deep, np.ones(len(cube)), good=good,
                                       slope=trace_slopes(deep.shape, 1, {1: yc}))
        found += hot[bad].sum()
        false += ((hot | cold) & ~bad).sum()
        plain = hot_cold_pixels(cube, var, deep, np.ones(len(cube)), good=good)[0]
        found_plain += plain[bad].sum()
    # measured over seeds 0-7: 640 of 640 found along the trace, 2 (dark: 4) of 640 along
    # the lines (the line crosses the trace in ~10 columns: the model cannot follow it and
    # the local spread hides the pixel). False flags per 32768-pixel frame: lit reference
    # pixels 1-12 (0.023 %; seeds 0-2: 20), dark 1-13 (0.023 %; seeds 0-2: 19), mostly
    # beside hot pixels by the left reference columns, where only one side predicts. Before
    # the boxes moved off the dark rows (and 5 model passes, not 3): lit 3-17 (0.030 %),
    # dark 13-24 (0.059 %; seeds 0-2: 49); before the cut boxes' tolerance, dark 38-63.
    # Limit: issue 16's 0.05 % of a frame, both
    assert found >= 0.99 * 240, found
    assert found_plain <= 0.05 * 240, found_plain
    assert false <= 5e-4 * 3 * 128 * 256, false
