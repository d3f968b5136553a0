"""The static-frame model of the hot/cold pixel flag (``_smoothframe``)."""
import numpy as np

from tsocontainer.cleaning.smoothframe import edge_line_median, neighbour_median, profile_smooth


def gaussian_trace(ny=40, nx=120, slope=0.04, sigma=1.6, seed=0):
    """Noiseless sloped Gaussian trace with a spectrum full of lines, on a 5 DN/s sky."""
    y = np.arange(ny)[:, None]
    x = np.arange(nx)[None, :]
    centre = 15 + slope * x
    spec = 400 * (1 + 0.5 * np.sin(x / 3.0)) * (1 - 0.6 * (np.abs(x - 60) < 2))
    return 5.0 + spec * np.exp(-0.5 * ((y - centre) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def test_neighbour_median_exact_on_lines_and_edges():
    x = np.arange(50, dtype=float)
    rows = np.stack([3.0 + 0.7 * x, 10 - 2.5 * x, np.full(50, 4.0)])
    for w in (3, 5, 7):
        np.testing.assert_allclose(neighbour_median(rows, w), rows, rtol=0, atol=1e-9)
    left, right = edge_line_median(rows, 3)
    np.testing.assert_allclose(left, rows[:, :3], atol=1e-9)
    np.testing.assert_allclose(right, rows[:, -3:], atol=1e-9)


def test_neighbour_median_leaves_the_value_out():
    # on a climbing row a running median returns the value itself, defect included
    row = np.arange(30, dtype=float)[None, :] * 2.0
    row[0, 15] += 1.5
    assert abs(neighbour_median(row, 7)[0, 15] - 30.0) < 1e-9
    # one defective neighbour does not move it; two on one side of a 7-span do not either
    row[0, 16] += 100.0
    row[0, 13] -= 100.0
    assert abs(neighbour_median(row, 7)[0, 15] - 30.0) < 1.0 + 1e-9


def test_profile_smooth_follows_spectrum_and_sloped_trace():
    frame = gaussian_trace()
    model = profile_smooth(frame, 1, noise=np.full(frame.shape, 0.01))
    star = frame - 5.0
    on = star > 0.05 * star.max()
    # stellar lines (one 60 % deep) and the slope are in the model to ~0.1 % of the flux
    # (measured 0.10 %; the hot/cold flag tolerates 0.2 %), the straight-line ends to 0.2 %
    rel = np.where(on, np.abs(model - frame) / frame, 0)
    assert rel[:, 3:-3].max() < 1.5e-3
    assert rel.max() < 3e-3
    # transposed frame (dispersion along rows) gives the transposed model
    np.testing.assert_allclose(profile_smooth(frame.T.copy(), 0, noise=np.full(frame.T.shape, 0.01)),
                               model.T, rtol=1e-6)


def test_profile_smooth_isolates_a_defect():
    frame = gaussian_trace()
    noise = np.full(frame.shape, 0.05)
    clean = profile_smooth(frame, 1, noise=noise)
    hot = frame.copy()
    y, x = np.unravel_index(np.argmax(frame[:, 50:70]), (frame.shape[0], 20))
    x += 50
    hot[y + 1, x] += 500.0          # next to the trace peak: lifts the column's local flux
    hot[3, 90] = 0.0                # a dead sky pixel
    model = profile_smooth(hot, 1, noise=noise)
    resid = (hot - model) / noise
    assert resid[y + 1, x] > 0.9 * 500 / 0.05
    assert resid[3, 90] < -0.9 * 5 / 0.05
    others = np.ones(frame.shape, bool)
    others[y + 1, x] = others[3, 90] = False
    # the neighbours' model is that of the clean frame (within the noise)
    assert np.max(np.abs(model - clean)[others]) < 0.05


def test_profile_smooth_keeps_the_end_of_the_light():
    frame = gaussian_trace()
    frame[:, 80:] = 5.0             # the spectrum ends: sky only beyond column 80
    model = profile_smooth(frame, 1, noise=np.full(frame.shape, 0.01))
    # a flux step is not a defect: no residual above 1 % anywhere
    assert np.max(np.abs(model - frame) / frame) < 1e-2


def test_neighbour_median_follows_a_steep_trace():
    from tsocontainer.cleaning.smoothframe import trace_slopes

    # a narrow (sigma 1.5 px) trace climbing 0.5 line per column: neighbours along the
    # line cross it; along the trace (cubic across lines) they predict it to 1 % of its peak
    yy, xx = np.mgrid[0:30, 0:20].astype(float)
    centre = 8 + 0.5 * xx[0]
    p = np.exp(-0.5 * ((yy - centre) / 1.5) ** 2)
    slope = trace_slopes(p.shape, 1, {1: centre})
    assert np.allclose(slope[np.abs(yy - centre) < 40], 0.5)
    plain = np.abs(neighbour_median(p, 7) - p)[:, 3:-3].max()
    along = np.abs(neighbour_median(p, 7, slope=slope) - p)[:, 3:-3].max()
    assert plain > 0.15 and along < 0.015
    # slope 0 is exactly the plain median; along the other axis too
    assert np.array_equal(neighbour_median(p, 7, slope=np.zeros_like(p)), neighbour_median(p, 7))
    tr = trace_slopes(p.T.shape, 0, {1: centre})
    assert np.allclose(tr.T, slope)


def test_trace_slopes_take_the_nearest_order_within_reach():
    from tsocontainer.cleaning.smoothframe import trace_slopes

    x = np.arange(100.0)
    centres = {1: np.full(100, 10.0), 2: 60 + 0.002 * (x - 50) ** 2,
               3: np.where(x < 50, 90.0, np.nan)}
    s = trace_slopes((120, 100), 1, centres, reach=15.0)
    assert abs(s[12, 70]) < 1e-12                       # order 1: flat
    assert np.isclose(s[62, 80], 0.004 * 30, atol=1e-6)  # order 2's local derivative
    assert abs(s[90, 20]) < 1e-12 and s[40, 80] == 0.0   # order 3 flat; beyond every reach


def test_quadratic_slope_matches_savitzky_golay():
    """The numpy derivative of trace_slopes is the Savitzky-Golay one (quadratic, fitted ends)."""
    from scipy.signal import savgol_filter

    from tsocontainer.cleaning.smoothframe import _quadratic_slope

    rng = np.random.default_rng(3)
    for n, span in ((500, 11), (11, 11), (12, 11), (3, 3), (40, 5)):
        y = 80 + np.cumsum(rng.normal(0, 1, n)) + 1e-3 * np.arange(n) ** 2
        ref = savgol_filter(y, span, 2, deriv=1, mode="interp")
        np.testing.assert_allclose(_quadratic_slope(y, span), ref, rtol=0, atol=1e-9)


def test_neighbour_median_same_in_line_chunks_and_with_stencils():
    """Lines worked on in parallel chunks and stencils made once give the one-pass result."""
    from tsocontainer.cleaning.smoothframe import _neighbour_rows, _stencil, along_stencils

    rng = np.random.default_rng(4)
    p = gaussian_trace(ny=96, nx=150, slope=0.3) * (1 + 0.01 * rng.normal(size=(96, 150)))
    scale = np.where(rng.random(p.shape) < 0.05, 50.0, 1.0) * p
    slope = np.full(p.shape, 0.3)
    slope[:, :20] = np.nan
    got = neighbour_median(p, 7, scale=scale, slope=slope)
    one = np.empty_like(got)
    tilt = slope[:, 3:-3]
    sts = [_stencil(tilt, k, 3, 96, 150) for k in (-3, -2, -1, 1, 2, 3)]
    _neighbour_rows(p, scale, 3, 4.0, sts, (0, 96), one)
    np.testing.assert_array_equal(got, one)
    reused = neighbour_median(p, 7, scale=scale, slope=slope,
                              stencils=along_stencils(slope, 7, p.shape))
    np.testing.assert_array_equal(reused, got)


def test_profile_follows_a_steep_trace_into_dark_reference_rows():
    """A trace climbing ~0.8 line per column leaves the frame through four dark reference
    rows. The pixels near them have local-flux boxes cut by those rows differently from
    their neighbours along the trace; with the boxes moved by the same lines the model
    holds to the last rows (noiseless: 0.15 % up to the second-last row, 0.18 % on it; it
    was off by up to 47 % and 72 % there, and by 0.08 % in the rest of the frame)."""
    from tsocontainer.cleaning.smoothframe import trace_slopes

    ny, nx = 128, 256
    x = np.arange(nx, dtype=float)
    yc = 23.1 + 0.8 * x - 0.0008 * (x - 128) ** 2
    d = (np.arange(ny)[:, None] - yc[None]) / 3.0
    frame = 20 + 2000 * (np.exp(-0.5 * (d - 1.2) ** 2) + np.exp(-0.5 * (d + 1.2) ** 2)) * (
        1 + 0.2 * np.sin(x / 9))
    good = np.zeros((ny, nx), bool)
    good[:-4, 4:-4] = True
    frame[~good] = 0.0
    slope = trace_slopes(frame.shape, 1, {1: yc})
    model = profile_smooth(frame, 1, 7, 3, noise=np.full(frame.shape, 0.5), slope=slope,
                           good=good)
    err = np.abs(model / np.where(good, frame, 1.0) - 1)
    lit = good & (frame > 100)
    assert np.max(err[8:116][lit[8:116]]) < 2e-3
    assert np.max(err[116:123][lit[116:123]]) < 3e-3    # the last 7 rows before the dark ones
    # the transpose (dispersion along axis 0) gives the same model
    model_t = profile_smooth(frame.T.copy(), 0, 7, 3, noise=np.full(frame.T.shape, 0.5),
                             slope=slope.T.copy(), good=good.T.copy())
    np.testing.assert_allclose(model_t.T, model, rtol=1e-6)


def test_hot_pixel_on_sky_beside_a_wing_leaves_the_model_of_its_row_alone():
    """A hot pixel on the sky line just above a trace's steep wing (SOSS simulation: row 23
    of seed 5, 5 DN/s of sky, +8.4 DN/s; the column below is that frame's). Neighbours along
    a gently sloped trace (0.05 line per column) read the line above through the
    interpolation's taps, where the local flux is under the noise floor; those neighbours
    were dropped, the hot pixel was left as one of three on one side, and the model of its
    row went to 15-79 DN/s (the hot pixel itself then hidden by the local spread). Too
    little light now predicts a profile of 0."""
    column = np.r_[np.full(24, 5.1), 5.9, 13.7, 28.3, 56.7, 77.3, 113.3, 156.4, 198.1, 272.9,
                   409.6, 529.6, 562.0, 518.9, 536.0, 651.1, 663.4]
    ny, nx = column.size, 90
    x = np.arange(nx, dtype=float)
    rows = np.arange(ny, dtype=float)[:, None] - 0.05 * (x[None] - 45)
    frame = np.interp(rows, np.arange(ny), column) * (1 + 0.1 * np.sin(x / 7))
    frame[:24] = 5.1 + 0.02 * np.sin(x / 3)        # the sky lines, flat
    frame[23, 45] += 8.4
    slope = np.full(frame.shape, 0.05)
    model = profile_smooth(frame, 1, 7, 3, noise=np.full(frame.shape, 0.1), slope=slope,
                           niter=5)
    sky = np.ones(nx, bool)
    sky[[45]] = False
    assert np.max(np.abs(model[23][sky] - frame[23][sky])) < 0.2, model[23, 38:52]
    assert frame[23, 45] - model[23, 45] > 8.0
