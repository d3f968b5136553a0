"""1/f correction (tsocontainer.cleaning.onef, correct_one_over_f)."""
from __future__ import annotations

import numpy as np

from tsocontainer.errors import StaleProductError
import pytest

from test_outliers import make_cube
from tsocontainer.cleaning.onef import ONEF_METHODS, background_line_series, line_psd

METHODS = [m for m in ONEF_METHODS]


def onef_power(g, data, truth_model):
    """Column-to-column power of good background pixels in ``data - truth`` (PSD sum, f > 0)."""
    band = g._trace_band()
    series = background_line_series(data - truth_model, g.mask, band, 0)
    freq, power = line_psd(series)
    return power[freq > 0].sum()


@pytest.mark.parametrize("method", METHODS)
def test_onef_power_drops(method):
    # 1/f rms 6 DN/s per column vs white noise 5.5 DN/s per pixel: the white
    # part of a background column mean (24 rows) is 1.3 (DN/s)^2 of ~37
    g, tr = make_cube(N=30, onef=6.0, ncr=0, nbad=0)
    before = onef_power(g, g.sci, tr["model"])
    g.correct_one_over_f(method=method)
    after = onef_power(g, g.data, tr["model"])
    drop = 1 - after / before
    # acceptance: >= 90 % for masked-median and scale-achromatic; the
    # unmasked median and the chromatic/solve variants reach it too here
    assert drop >= 0.9, (method, drop)
    assert g.aux["onef"].shape == (g.N, g.sh[1]) and g.meta["ONEFCORR"] == method


@pytest.mark.parametrize("method", ["masked-median", "scale-achromatic", "scale-chromatic",
                                    "solve"])
def test_onef_does_not_bias_trace_flux(method):
    # noiseless + 1/f, no sky (a column-constant sky would be removed with the 1/f)
    g, tr = make_cube(N=30, onef=6.0, ncr=0, nbad=0, noise=False, bkg=0.0)
    ap = np.abs(np.arange(g.sh[0])[:, None] - tr["yc"]) <= 8       # simple box aperture
    true_white = (tr["model"] * ap).sum(axis=(1, 2))
    g.correct_one_over_f(method=method)
    white = (g.data * ap).sum(axis=(1, 2))
    # acceptance: < 0.1 % bias of the white light (noiseless + 1/f)
    assert np.max(np.abs(white / true_white - 1)) < 1e-3
    # the time-variable 1/f left in the aperture is < 2 % of the injected one
    # (scale-* and solve keep a static column pattern, harmless in relative
    # light curves, so the per-column median over time is removed first)
    resid = ((g.data - tr["model"]) * ap).sum(axis=1)
    resid -= np.median(resid, axis=0)
    injected = (tr["onef"][:, None, :] * ap).sum(axis=1)
    assert np.abs(resid).mean() < 0.02 * np.abs(injected).mean()


def test_unmasked_median_biases_the_trace():
    # documented limitation: the notebook's column median sees the trace
    g, tr = make_cube(N=10, onef=6.0, ncr=0, nbad=0, noise=False, bkg=0.0)
    ap = np.abs(np.arange(g.sh[0])[:, None] - tr["yc"]) <= 8
    g.correct_one_over_f(method="median")
    white = (g.data * ap).sum(axis=(1, 2))
    assert np.all(white < (tr["model"] * ap).sum(axis=(1, 2)))


def test_onef_variance_added_and_sci_kept():
    g, _ = make_cube(N=10, onef=3.0)
    sci0 = g.sci.copy()
    g.correct_one_over_f()
    data, var = g.working_block()
    assert np.array_equal(g.sci, sci0)
    assert np.allclose(data, sci0 - g.aux["onef"][:, None, :], atol=1e-4)
    assert np.all(var >= g.var) and np.any(var > g.var)
    sub = g[2:6]
    assert np.array_equal(sub.working_block()[0], g.working_block(2, 6)[0])


def test_rerun_onef_drops_replacement():
    g, _ = make_cube(N=10, onef=3.0)
    g.correct_one_over_f().flag_time_outliers().replace_bad_pixels()
    with pytest.warns(UserWarning, match=r"\['replace'\] stale"):
        g.correct_one_over_f(method="solve")
    assert g.corrections == ["onef", "replace"] and g.meta["ONEFCORR"] == "solve"
    assert list(g.stale) == ["replace"]
    with pytest.raises(StaleProductError, match="replace_bad_pixels"):
        g.working_block(0, 1)
    g.rerun_stale()
    assert not g.stale and g.working_block(0, 1)[0].shape[0] == 1
    with pytest.raises(ValueError, match="allowed: median, masked-median"):
        g.correct_one_over_f(method="fft")


def test_onef_axis_rows():
    # NIRCam-like: 1/f constant along rows (onef_axis=1), one offset per row
    from tsocontainer import TSOGroup
    from tsocontainer.modes import MODES, Mode

    rng = np.random.default_rng(4)
    N, ny, nx = 10, 64, 256
    y = np.arange(ny)[:, None]
    star = 1000 * np.exp(-0.5 * ((y - 34) / 2.0) ** 2) + np.zeros((ny, nx))
    off = rng.normal(0, 5, (N, ny))
    sci = star[None] + off[:, :, None] + rng.normal(0, 1, (N, ny, nx))
    g = TSOGroup(sci, np.ones((N, ny, nx)), mode=Mode(spec=MODES["nircam"], filter="F322W2",
                                                        subarray="SUBGRISM64"))
    g.correct_one_over_f(method="scale-achromatic")
    assert g.aux["onef"].shape == (N, ny)
    # rows outside the trace: the time-variable part of the offsets is recovered
    # to the noise of a 256-pixel median (1.25 / 16 = 0.08): 0.4 is a 5-sigma bound
    far = ~g._trace_band().any(axis=1)       # rows outside the 34-pixel NIRCam band
    assert far.sum() > 20
    est = g.aux["onef"][:, far] - g.aux["onef"][:, far].mean(axis=0)
    true = off[:, far] - off[:, far].mean(axis=0)
    assert np.abs(est - true).max() < 0.4


def test_plot_one_over_f_psd():
    import matplotlib.axes

    g, _ = make_cube(N=8, onef=4.0, nbad=0, ncr=0)
    freq, before, after = g.one_over_f_psd()
    assert after is None and before.shape == freq.shape
    g.correct_one_over_f()
    freq, before, after = g.one_over_f_psd()
    assert after[1:].sum() < 0.2 * before[1:].sum()
    ax = g.plot_one_over_f_psd()
    assert isinstance(ax, matplotlib.axes.Axes) and len(ax.get_lines()) == 2
    assert ax.get_xlabel().startswith("frequency")


# ------------------------------------------- acceptance on simulated visits
@pytest.fixture(scope="module")
def soss_pair(tmp_path_factory):
    """A noisy SOSS visit (default 1/f, CRs, bad pixels) and its noiseless twin."""
    from test_outliers import SIM_COLUMNS
    from tsocontainer import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    noisy = simulate_visit("soss", 20, seed=4, out=tmp_path_factory.mktemp("noisy"),
                           columns=SIM_COLUMNS)
    clean = simulate_visit("soss", 20, seed=4, out=tmp_path_factory.mktemp("clean"),
                           columns=SIM_COLUMNS, noiseless=True)
    g = read_segments(noisy.files)
    g.flag_dq().flag_time_outliers().flag_hot_cold_pixels().estimate_sky(method="model")
    truth = read_segments(clean.files).sci - noisy.truth_arrays()["BACKGROUND"][None]
    return g, truth


@pytest.mark.slow
@pytest.mark.parametrize("method,minimum", [("masked-median", 0.9), ("scale-achromatic", 0.9),
                                            ("solve", 0.9), ("scale-chromatic", 0.9),
                                            ("median", 0.8)])
def test_sim_onef_power_drops(soss_pair, method, minimum):
    g0, truth = soss_pair
    g = g0.copy()
    before = onef_power(g, g.data, truth)
    g.correct_one_over_f(method=method)
    drop = 1 - onef_power(g, g.data, truth) / before
    # acceptance: >= 90 % for masked-median and scale-achromatic (measured 97 %
    # and 92 %: scale-* keep the visit's median 1/f pattern, 1/N of the power;
    # the unmasked median is limited by the trace in the columns: 86 %)
    assert drop >= minimum, (method, drop)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["masked-median", "scale-achromatic", "scale-chromatic",
                                    "solve"])
def test_sim_onef_trace_flux_unbiased(tmp_path_factory, method):
    from test_outliers import SIM_COLUMNS
    from tsocontainer import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    key = "onef_bias"
    cache = test_sim_onef_trace_flux_unbiased.__dict__.setdefault(key, {})
    if not cache:   # noiseless + 1/f only, and the noiseless twin (simulated once)
        quiet = dict(poisson=False, read=False, cosmic_rays=0, bad_pixels=False)
        a = simulate_visit("soss", 20, seed=5, out=tmp_path_factory.mktemp("f1"),
                           columns=SIM_COLUMNS, noise=quiet)
        b = simulate_visit("soss", 20, seed=5, out=tmp_path_factory.mktemp("f0"),
                           columns=SIM_COLUMNS, noiseless=True)
        cache.update(g=read_segments(a.files), clean=read_segments(b.files).sci,
                     truth=a.truth_arrays())
    g, clean, truth = cache["g"].copy(), cache["clean"], cache["truth"]
    y = np.arange(g.sh[0])[:, None]
    ap = np.abs(y[None] - truth["TRACE"][0][:, None, :]) <= 15        # box aperture, order 1
    g.estimate_sky(method="model").correct_one_over_f(method=method)
    white = (g.data * ap).sum(axis=(1, 2))
    true_white = ((clean - truth["BACKGROUND"][None]) * ap).sum(axis=(1, 2))
    # acceptance: the white light is not biased by more than 0.1 % (measured:
    # < 3e-5 for masked-median and scale-*, 3e-4 for solve)
    assert np.max(np.abs(white / true_white - 1)) < 1e-3


@pytest.mark.slow
def test_sim_onef_along_nircam_trace_rows(tmp_path):
    """NIRCam reads along the dispersion: the 1/f offset of a trace row cannot be
    measured beside the trace, only by fitting the row as ``a * median frame + c``."""
    from tsocontainer import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    quiet = dict(poisson=False, read=False, cosmic_rays=0, bad_pixels=False)
    a = simulate_visit("nircam-f322w2", 20, seed=5, out=tmp_path / "f1", noise=quiet)
    b = simulate_visit("nircam-f322w2", 20, seed=5, out=tmp_path / "f0", noiseless=True)
    g0, truth = read_segments(a.files), a.truth_arrays()
    clean = read_segments(b.files).sci
    y = np.arange(g0.sh[0])[:, None]
    ap = np.abs(y[None] - truth["TRACE"][0][:, None, :]) <= 5
    true_white = (clean * ap).sum(axis=(1, 2))

    def white_error(method):
        g = g0.copy()
        if method:
            g.correct_one_over_f(method=method)
        return np.std((g.data * ap).sum(axis=(1, 2)) / true_white - 1)

    before = white_error(None)
    assert before > 5e-4                          # the 1/f is in the white light (~1000 ppm)
    assert white_error("masked-median") > 0.9 * before    # every trace row is masked
    # measured 29 ppm rms after `solve` (1005 before): the recipe's method for NIRCam
    assert white_error("solve") < 0.1 * before
