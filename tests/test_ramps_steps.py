"""The stage-1 algorithms on plain arrays, and the RampGroup plan and steps (fast)."""
from __future__ import annotations

import numpy as np
import pytest

from test_ramps_sims import refs, visit
from tsocontainer.errors import TSOValueError
from tsocontainer.ramps import RampGroup, read_uncal, run_stage1
from tsocontainer.ramps.calib import (apply_linearity, estimate_noise, flag_plateaus,
                                      flag_saturated, zero_level)
from tsocontainer.ramps.detector import DETECTOR_DEFAULTS, load_map
from tsocontainer.ramps.fitting import exact_ols_variance, stcal_fit
from tsocontainer.ramps.jumps import group_differences, stcal_jumps, time_outliers
from tsocontainer.ramps.onef import apply_group_onef, group_onef_offsets, line_trimmed_mean
from tsocontainer.ramps.refpix import correct_refpix, refpix_layout
from tsocontainer.registry import StepKeywordError

TG = 5.0


def _ramps(rate, n=4, ngroups=6, bias=1000.0):
    """Noiseless ramps ``(n, ngroups, ny, nx)`` of ``rate`` (DN/s) on a bias."""
    k = np.arange(1, ngroups + 1)[None, :, None, None]
    return (bias + np.asarray(rate, float)[None, None] * TG * k + np.zeros((n, 1, 1, 1))).astype(
        np.float32)


# ---------------------------------------------------------------- calibrations
def test_saturation_flags_the_group_and_all_later_ones():
    d = _ramps(np.full((2, 3), 1000.0))             # 1000 + 5000 k DN
    g = np.zeros(d.shape, np.uint8)
    assert flag_saturated(d, g, np.full((2, 3), 21000.0)) == 4 * 6
    assert g[0, :, 0, 0].tolist() == [0, 0, 0, 2, 2, 2]
    d[0, 0, 0, 0] = 0                               # the A/D floor
    flag_saturated(d, g, None)
    assert g[0, 0, 0, 0] == 64 | 1


def test_plateaus_are_flagged_only_above_the_floor():
    d = _ramps(np.full((1, 2), 8000.0), n=1, ngroups=8)   # 41 000 .. 321 000 DN
    d = np.minimum(d, 60000.0)                            # clipped from group 1 on
    d[:, :, 0, 1] = 1000.0                                # a flat, faint pixel
    g = np.zeros(d.shape, np.uint8)
    assert flag_plateaus(d, g, 10.0, floor=30000.0) == 1
    assert g[0, :, 0, 0].tolist() == [0, 2, 2, 2, 2, 2, 2, 2]
    assert not g[0, :, 0, 1].any()


def test_zero_level_extrapolates_to_the_reset():
    d = _ramps(np.array([[3.0, 100.0]]), bias=500.0)
    z = zero_level(d, np.zeros(d.shape, np.uint8))
    assert np.allclose(z, 500.0)


def test_linearity_polynomial():
    d = np.full((1, 2, 1, 1), 1000.0, np.float32)
    apply_linearity(d, np.array([1.0, 1.0, 2e-6, 1e-9]).reshape(4, 1, 1))
    assert float(d[0, 0, 0, 0]) == pytest.approx(1 + 1000 + 2 + 1)


# ---------------------------------------------------------------- reference pixels
def test_refpix_removes_amplifier_offsets_and_side_drift():
    """SOSS-like: reference columns (lines) give even/odd offsets, top rows a line drift."""
    rng = np.random.default_rng(1)
    ny, nx, n, ng = 40, 24, 2, 3
    ref = np.zeros((ny, nx), bool)
    ref[:, :4] = True                       # reference lines (fast axis 0: columns)
    ref[-4:, :] = True                      # side pixels at the end of every column
    off = rng.normal(0, 5, (n, ng, 2))      # even / odd rows
    drift = np.cumsum(rng.normal(0, 1, (n, ng, nx)), axis=2) * 0.1   # smooth along columns
    truth = rng.normal(0, 1, (n, ng, ny, nx))
    data = truth + off[:, :, np.arange(ny) % 2][..., None] + drift[:, :, None, :]
    data = data.astype(np.float32)
    lay = refpix_layout(ref, 0, np.zeros(ny, int))
    assert lay.ref_lines.sum() == 4 and lay.side.sum() == 4 * (nx - 4)
    before = np.std((data - truth)[:, :, ~ref])
    got, _ = correct_refpix(data, lay, odd_even=True, side=True, smoothing=3)
    # offsets: medians of 4 x 20 pixels of unit noise (error ~ 0.15)
    assert np.allclose(got[:, :, 0, :], off + drift[:, :, :4].mean(axis=2)[..., None], atol=0.6)
    # left: the error of the side drift (means of 4 pixels smoothed over 3 columns,
    # ~0.3) and of the offsets (~0.15)
    after = np.std((data - truth)[:, :, ~ref])
    assert after < 0.6 and after < 0.15 * before


def test_refpix_without_reference_pixels_does_nothing():
    data = np.ones((1, 2, 6, 5), np.float32)
    lay = refpix_layout(np.zeros((6, 5), bool), 1, np.zeros(5, int))
    off, drift = correct_refpix(data, lay)
    assert not off.any() and not drift.any() and np.all(data == 1)


# ---------------------------------------------------------------- group 1/f
def test_trimmed_mean_matches_numpy():
    rng = np.random.default_rng(2)
    b = rng.normal(size=(3, 7, 50)).astype(np.float32)
    good = rng.uniform(size=b.shape) > 0.2
    got = line_trimmed_mean(b, good, axis=1, trim=0.1)
    for i in range(3):
        for j in range(7):
            v = np.sort(b[i, j][good[i, j]])
            k = int(np.floor(0.1 * v.size))
            assert got[i, j] == pytest.approx(v[k:v.size - k].mean(), rel=1e-5)


@pytest.mark.parametrize("fast_axis", [0, 1])
def test_group_onef_recovers_line_offsets(fast_axis):
    rng = np.random.default_rng(3)
    n, ng, ny, nx = 2, 4, 30, 20
    scene = _ramps(rng.uniform(1, 50, (ny, nx)), n=n, ngroups=ng)
    nlines = nx if fast_axis == 0 else ny
    onef = rng.normal(0, 8, (n, ng, nlines))
    band = np.zeros((ny, nx), bool)
    band[10:14, 5:12] = True                            # a bright patch, masked
    scene[:, :, band] *= 3
    deep = scene.mean(axis=0)
    data = scene.copy()
    apply_group_onef(data, -onef[..., None], fast_axis, np.zeros(ny if fast_axis == 0 else nx,
                                                                 int))
    off = group_onef_offsets("masked-median", data, np.zeros(data.shape, np.uint8), deep, band,
                             np.zeros((ny, nx), bool), fast_axis,
                             np.zeros(ny if fast_axis == 0 else nx, int))
    assert np.allclose(off[..., 0], onef, atol=1e-3)


@pytest.mark.parametrize("fast_axis", [0, 1])
def test_group_onef_solve_recovers_offsets_of_lines_that_run_along_the_trace(fast_axis):
    """NIRCam-like: the trace band covers whole lines (the 1/f runs along it). The masked
    statistic has no pixel there (offset 0: the 1/f stays); ``solve`` fits each such line
    as a scaled deep ramp plus an offset, through photon and read noise and a transit."""
    rng = np.random.default_rng(5)
    n, ng, nl, npx, gain, cds = 40, 8, 24, 400, 2.0, 12.0
    # DN/s: a trace along the lines whose spectrum covers 60 % of them (the rest sky)
    spec = np.where(np.abs(np.arange(npx) - npx / 2) < 0.3 * npx, 1.0, 0.0)
    prof = 400 * np.exp(-0.5 * ((np.arange(nl) - 12.0) / 2.5) ** 2)[:, None] * \
        spec[None] * (0.5 + rng.uniform(0, 1, (1, npx))) + 3.0
    white = 1 - 0.02 * (np.abs(np.arange(n) - n / 2) < 8)   # a transit
    k = np.arange(1, ng + 1)[None, :, None, None]
    signal = white[:, None, None, None] * prof[None, None] * TG * k
    # cumulative photons in DN plus one read's noise per group
    steps = rng.poisson(np.diff(signal, axis=1, prepend=0) * gain) / gain
    data = np.cumsum(steps, axis=1) + rng.normal(0, cds / np.sqrt(2), signal.shape)
    onef = rng.normal(0, 8, (n, ng, nl))
    data = data + onef[..., None]
    band = np.zeros((nl, npx), bool)
    band[6:19] = True                                       # whole lines on the trace
    if fast_axis == 0:
        data, band = np.swapaxes(data, -1, -2), band.T
    data = data.astype(np.float32)
    deep = data.mean(axis=0)
    amp = np.zeros(npx, int)
    zeros = np.zeros(data.shape, np.uint8)
    refmask = np.zeros(band.shape, bool)
    want = onef - onef.mean(axis=0)                         # the deep ramp keeps the mean
    args = (data, zeros, deep, band, refmask, fast_axis, amp)
    masked = group_onef_offsets("masked-median", *args)[..., 0]
    solve = group_onef_offsets("solve", *args, noise=(np.full(band.shape, gain),
                                                      np.full(band.shape, cds)))[..., 0]
    on = np.zeros(nl, bool)
    on[6:19] = True
    assert np.all(masked[:, :, on] == 0)                    # nothing to take the offset from
    err = solve[:, :, on] - want[:, :, on]
    # the fit's error: ~one read's noise (8.5 DN) over sqrt(160 sky pixels), the trace's
    # photon-noisy pixels down-weighted: measured rms 0.82 DN; 8 DN injected
    assert np.std(err) < 1.0, np.std(err)
    # lines with pixels off the band are the masked statistic's, unchanged
    np.testing.assert_array_equal(solve[:, :, ~on], masked[:, :, ~on])


def test_group_onef_solve_never_adds_noise_on_lines_of_bright_pixels_only():
    """Lines whose every pixel is bright pin the offset worse than the 1/f it would remove
    (c and the scale are degenerate without faint pixels): the offset is shrunk by its
    error, so the line keeps (at most) its 1/f rather than gaining photon noise."""
    rng = np.random.default_rng(6)
    n, ng, nl, npx, gain, cds = 30, 6, 20, 300, 2.0, 12.0
    prof = 4000 * (0.8 + 0.4 * rng.uniform(0, 1, (nl, npx)))
    k = np.arange(1, ng + 1)[None, :, None, None]
    signal = prof[None, None] * TG * k * np.ones((n, 1, 1, 1))
    steps = rng.poisson(np.diff(signal, axis=1, prepend=0) * gain) / gain
    onef = rng.normal(0, 8, (n, ng, nl))
    data = (np.cumsum(steps, axis=1) + rng.normal(0, cds / np.sqrt(2), signal.shape)
            + onef[..., None]).astype(np.float32)
    band = np.zeros((nl, npx), bool)
    band[4:16] = True
    shape = band.shape
    off = group_onef_offsets("solve", data, np.zeros(data.shape, np.uint8), data.mean(axis=0),
                             band, np.zeros(shape, bool), 1, np.zeros(npx, int),
                             noise=(np.full(shape, gain), np.full(shape, cds)))[..., 0]
    want = (onef - onef.mean(axis=0))[:, :, 4:16]
    # unshrunk, the fitted offsets were off by 94 DN rms against 7.8 DN of 1/f; shrunk
    # 8.0 DN: the line keeps its 1/f, with at most a few per cent added
    assert np.std(off[:, :, 4:16] - want) <= 1.05 * np.std(want), (
        np.std(off[:, :, 4:16] - want), np.std(want))


# ---------------------------------------------------------------- jumps and fit
def test_time_outliers_follow_a_transit_but_catch_a_jump():
    n = 60
    depth = np.where((np.arange(n) > 20) & (np.arange(n) < 40), 0.98, 1.0)
    d = (5000.0 * depth)[:, None, None, None] * np.ones((n, 3, 4, 4))
    d += np.random.default_rng(4).normal(0, np.sqrt(5000 / 2.0 + 100), d.shape)
    d[30, 1, 2, 2] += 800.0                        # ~ 15 sigma
    out = time_outliers(d.astype(np.float32), np.full((4, 4), 2.0), np.full((4, 4), 10.0),
                        slice(0, n), threshold=5.0, window=11)
    assert out[30, 1, 2, 2]
    assert out.sum() == 1


def test_check_in_time_computes_the_running_median_of_the_core_only():
    """The check in time computes its running median only at the integrations it tests:
    the same outliers as the running median of the whole buffer (mirrored edges) with the
    pixel's own median in gaps, at the start, middle and end of a buffer."""
    from tsocontainer.arrays.numerics import nanmedian0, running_median

    rng = np.random.default_rng(11)
    d = rng.normal(300.0, 20.0, (14, 3, 5, 6)).astype(np.float32)
    d[rng.random(d.shape) < 0.05] = np.nan
    d[2, 1, 3, 3] += 400.0
    gain, rn = np.full((5, 6), 2.0), np.full((5, 6), 15.0)
    for core in (slice(0, 4), slice(5, 9), slice(10, 14)):
        filled = np.where(np.isfinite(d), d, np.nan_to_num(nanmedian0(d))[None])
        med = running_median(filled, 11)[core]
        sig = np.sqrt((np.maximum(med, 0) / gain + rn ** 2) * (1 + np.pi / 22))
        with np.errstate(invalid="ignore"):
            ref = (np.abs(d[core] - med) > 5.0 * sig) & np.isfinite(d[core])
        out = time_outliers(d, gain, rn, core, 5.0, 11)
        assert (out == ref).all()
    assert time_outliers(d, gain, rn, slice(0, 4), 5.0, 11)[2, 1, 3, 3]


def test_stcal_jumps_flag_the_group_after_a_jump():
    rng = np.random.default_rng(5)
    d = _ramps(np.full((8, 8), 20.0), n=3, ngroups=8) + rng.normal(0, 5, (3, 8, 8, 8))
    d[1, 5:, 3, 4] += 500.0
    gdq, _, n = stcal_jumps(d.astype(np.float32), np.zeros(d.shape, np.uint8),
                            np.zeros((8, 8), np.uint32), np.ones((8, 8), np.float32),
                            np.full((8, 8), 7.0, np.float32), group_time=TG)
    assert n >= 1 and gdq[1, 5, 3, 4] & 4
    assert not (gdq[1, :5, 3, 4] & 4).any()
    diffs = group_differences(d.astype(np.float32), gdq)
    assert np.isnan(diffs[1, 4, 3, 4])


def test_stcal_fit_on_noiseless_ramps_and_exact_variances():
    rate = np.array([[0.5, 10.0], [200.0, 3000.0]])
    d = _ramps(rate, n=2, ngroups=9)
    gdq = np.zeros(d.shape, np.uint8)
    gain, rn = np.full((2, 2), 2.0, np.float32), np.full((2, 2), 10.0, np.float32)
    out = stcal_fit(d, gdq, np.zeros((2, 2), np.uint32), gain, rn, {"group_time": TG})
    assert np.allclose(out["slope"], rate[None], rtol=1e-5)
    assert out["exact"].all()
    # uniform weights (signal-to-noise < 5): the textbook OLS read-noise variance
    vp, vr, ok = exact_ols_variance(d, gdq, out["slope"], gain, rn, group_time=TG)
    sig_read = 10.0 / np.sqrt(2)
    assert vr[0, 0, 0] == pytest.approx(12 * sig_read ** 2 / (9 * 80 * TG ** 2), rel=1e-5)
    # a saturated tail shortens the ramp; a jump leaves stcal's value
    gdq[0, 6:, 1, 1] = 2
    gdq[1, 4, 0, 1] = 4
    _, _, ok = exact_ols_variance(d, gdq, out["slope"], gain, rn, group_time=TG)
    assert ok[0, 1, 1] and not ok[1, 0, 1] and ok[1, 1, 1]


def test_estimate_noise_by_photon_transfer():
    rng = np.random.default_rng(6)
    rate = np.repeat(np.geomspace(0.5, 2000, 40), 25).reshape(40, 25)    # DN/s
    gain, sig = 1.8, 8.0
    e = rng.poisson(np.broadcast_to(rate * TG * gain, (12, 9, 40, 25)))
    d = np.cumsum(e, axis=1) / gain + rng.normal(0, sig, e.shape)
    g, cds = estimate_noise(d.astype(np.float32), np.zeros(d.shape, np.uint8),
                            np.zeros((40, 25), bool))
    # 1000 pixels x 12 ramps: the fit is good to a few per cent
    assert g == pytest.approx(gain, rel=0.05)
    assert cds == pytest.approx(np.sqrt(2) * sig, rel=0.05)
    g2, cds2 = estimate_noise(d.astype(np.float32), np.zeros(d.shape, np.uint8),
                              np.zeros((40, 25), bool), gain=gain)
    assert g2 == gain and cds2 == pytest.approx(np.sqrt(2) * sig, rel=0.03)


# ---------------------------------------------------------------- detector numbers
def test_load_map_sources(tmp_path):
    m, src = load_map(None, "gain", (4, 5), detector="NRCALONG")
    assert np.all(m == np.float32(1.84)) and "nircam-detector-performance" in src
    full = np.arange(2048 * 2048, dtype=np.float32).reshape(2048, 2048) + 1
    cut, _ = load_map(full, "gain", (4, 5), substrt=(11, 21))
    assert cut[0, 0] == full[20, 10]
    with pytest.raises(TSOValueError, match="no documented default readnoise"):
        load_map(None, "readnoise", (4, 5), detector="NRS1")
    with pytest.raises(TSOValueError, match="no positive"):
        load_map(0.0, "gain", (4, 5))
    with pytest.raises(TSOValueError, match="neither the subarray"):
        load_map(np.ones((3, 3)), "gain", (4, 5))
    v = visit("miri")
    r, src = load_map(refs(v)["readnoise"], "readnoise", (416, 72), substrt=(1, 529))
    assert src == "reference sim_mirimage_readnoise.fits"
    assert np.allclose(r, v.truth["ramps"]["read_noise_cds_dn"])
    for det, entry in DETECTOR_DEFAULTS.items():
        assert entry["source"] or all(entry[k] is None for k in ("gain", "readnoise",
                                                                  "saturation")), det


# ---------------------------------------------------------------- the container
def _small():
    rng = np.random.default_rng(7)
    data = _ramps(rng.uniform(1, 100, (16, 12)), n=5, ngroups=5) + rng.normal(0, 5, (5, 5, 16, 12))
    return RampGroup.from_arrays(data, TG, meta={"INSTRUME": "NIRCAM", "DETECTOR": "NRCALONG",
                                                 "SUBSTRT1": 1, "SUBSTRT2": 1})


def test_steps_chain_record_and_return_self():
    g = _small()
    assert g.flag_saturation() is g
    assert g.subtract_superbias() is g
    assert g.correct_reference_pixels() is g
    assert g.detect_jumps() is g
    assert g.steps == ["flag_saturation", "subtract_superbias", "correct_reference_pixels",
                       "detect_jumps"]
    assert "saturation, superbias, refpix" in repr(g)
    out = g.fit_ramps()
    assert out.sh == (16, 12) and out.N == 5
    assert out.steps[-1] == "fit_ramps" and out.steps[0] == "ramps:flag_saturation"


def test_plan_order_does_not_depend_on_the_call_order():
    a, b = _small(), _small()
    a.subtract_superbias(reference=1000.0).correct_reference_pixels()
    b.correct_reference_pixels().subtract_superbias(reference=1000.0)
    da, _, _ = a.block(0, 2)
    db, _, _ = b.block(0, 2)
    assert np.array_equal(da, db)


def test_context_is_recomputed_when_an_earlier_step_changes():
    g = _small().subtract_superbias()
    first = g.plan["superbias"]["id"]
    g.flag_saturation(level=1e9)               # an earlier step: the bias from data is redone
    g.block(0, 1)
    assert g.plan["superbias"]["id"] != first


def test_bad_keywords_raise_before_any_work():
    g = _small()
    with pytest.raises(TypeError, match="unexpected keyword argument 'metod'"):
        g.correct_group_onef(metod="median")
    with pytest.raises(StepKeywordError, match="out of range"):
        g.subtract_superbias(nsample=0)
    with pytest.raises(StepKeywordError, match="not a choice"):
        g.fit_ramps(algorithm="OLS")
    with pytest.raises(TSOValueError, match="needs subtract_superbias first"):
        g.correct_linearity(np.zeros((2, 16, 12)))
    with pytest.raises(TSOValueError, match="not a ramps step"):
        run_stage1([], [("flag_dq", {})])


def test_plots_return_their_axes():
    import matplotlib.pyplot as plt

    v = visit("miri")
    r = refs(v)
    g = read_uncal(v.files).use_detector(gain=r["gain"], readnoise=r["readnoise"])
    g.flag_saturation(level=r["saturation"]).subtract_superbias().correct_reference_pixels()
    g.correct_group_onef().correct_linearity(r["linearity"]).detect_jumps()
    g.fit_ramps()
    for name in ("plot_noise_model", "plot_saturation", "plot_superbias",
                 "plot_reference_pixels", "plot_group_onef", "plot_linearity", "plot_jumps",
                 "plot_rates"):
        fig, ax = plt.subplots()
        assert getattr(g, name)(ax=ax) is ax, name
        assert ax.get_title(), name
    ax = g.plot_ramp(200, 40, 1)
    assert ax.get_xlabel() == "group"
    from tsocontainer.registry import STEPS

    for spec in STEPS.values():
        if spec.stage == "ramps":
            assert hasattr(g, spec.plot), spec.name


def test_group_onef_per_amplifier():
    """Two amplifiers along the fast axis: each line has one offset per amplifier."""
    rng = np.random.default_rng(8)
    n, ng, ny, nx = 1, 3, 12, 40
    amp = np.repeat([0, 1], 20)
    onef = rng.normal(0, 5, (n, ng, ny, 2))
    data = _ramps(rng.uniform(1, 10, (ny, nx)), n=n, ngroups=ng)
    deep = data.mean(axis=0)
    apply_group_onef(data, -onef, 1, amp)
    off = group_onef_offsets("median", data, np.zeros(data.shape, np.uint8), deep,
                             np.zeros((ny, nx), bool), np.zeros((ny, nx), bool), 1, amp)
    assert off.shape == (1, 3, 12, 2) and np.allclose(off, onef, atol=1e-3)


def test_check_in_time_finds_jumps_in_two_group_ramps():
    """Two-group ramps (bright targets): stcal cannot look for jumps in one difference (the
    jwst JumpStep skips them); the check in time compares it with the same pixel's other
    integrations. 30 integrations x 400 pixels, one 8-12 sigma jump in each of 40 pixels:
    >= 95 % found (the threshold is 5 x 1.07 = 5.35 sigma with the running median's noise;
    a jump of A sigma is found with probability Phi(A - 5.35) >= 99.6 %), and at most 2
    flags elsewhere (12 000 differences at a two-sided 5.35 sigma: 0.001 expected)."""
    rng = np.random.default_rng(9)
    n, ny, nx = 30, 20, 20
    sigma = np.sqrt(50.0 * TG / 2.0 + 10.0 ** 2)     # a difference: gain 2, CDS 10 DN
    e = rng.poisson(50.0 * TG * 2.0, (n, 2, ny, nx))
    data = 1000.0 + np.cumsum(e, axis=1) / 2.0 + rng.normal(0, 10 / np.sqrt(2), (n, 2, ny, nx))
    hits = rng.choice(ny * nx, 40, replace=False)
    ints = rng.integers(0, n, 40)
    y, x = np.divmod(hits, nx)
    data[ints, 1, y, x] += rng.uniform(8, 12, 40) * sigma
    found = {}
    for thr in (None, 5.0):
        g = RampGroup.from_arrays(data.astype(np.float32), TG,
                                  meta={"INSTRUME": "NIRISS", "DETECTOR": "NIS"})
        g.use_detector(gain=2.0, readnoise=10.0).detect_jumps(time_threshold=thr)
        jumps = g.fit_ramps().dqs.any(4)
        found[thr] = (jumps[ints, y, x].mean(), jumps.sum() - jumps[ints, y, x].sum())
    assert found[None] == (0.0, 0)
    assert found[5.0][0] >= 0.95 and found[5.0][1] <= 2


@pytest.mark.parametrize("statistic", ["trimmed-mean", "median"])
def test_group_onef_offsets_do_not_depend_on_the_threads(monkeypatch, statistic):
    """The line statistics run on frame chunks in threads; one thread gives the same."""
    from tsocontainer.ramps import onef

    rng = np.random.default_rng(12)
    data = rng.normal(0, 5, (3, 4, 16, 40)).astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[1, 2:, 3, 7] = 2
    args = ("masked-median", data, gdq, np.zeros((4, 16, 40), np.float32),
            np.zeros((16, 40), bool), np.zeros((16, 40), bool), 1, np.arange(40) // 20)
    two = group_onef_offsets(*args, statistic=statistic)
    monkeypatch.setattr(onef, "default_workers", lambda: 1)
    one = group_onef_offsets(*args, statistic=statistic)
    assert two.shape == (3, 4, 16, 2) and np.array_equal(one, two)


def test_small_pages_restores_numpy_huge_page_advice_after_nested_and_threaded_use():
    """Stage 1 turns numpy's huge-page advice off while it runs; the caller's setting comes
    back when the last (nested, or concurrent) user leaves, whatever it was."""
    import threading

    from tsocontainer.arrays.numerics import _hugepage_switch, small_pages

    switch = _hugepage_switch()
    if switch is None:
        pytest.skip("this numpy has no huge-page switch")
    before = switch(True)
    try:
        gate, inside = threading.Event(), []

        def worker():
            with small_pages():
                inside.append(switch(False))     # reads (and keeps) the value inside
                gate.wait(5)

        with small_pages():
            t = threading.Thread(target=worker)
            t.start()
            with small_pages():
                assert switch(False) is False
        assert switch(True) is False             # the thread still inside: still off
        switch(False)
        gate.set()
        t.join()
        assert inside == [False]
        assert switch(True) is True              # restored by the last one out
        switch(False)
        with small_pages():
            pass
        assert switch(False) is False            # restores what the caller had: off
    finally:
        switch(before)
