"""Outlier and bad-pixel flags (the pixel replacement is in :mod:`tsocontainer.cleaning.replacement`).

Pure functions on cubes ``(n, ny, nx)``; the TSOGroup methods in
:mod:`tsocontainer.group.cleaning` apply them. Everything is vectorised over whole cubes or
blocks of integrations: the only Python loops run over blocks (a few MB each, to
stay in cache) or over the comparators of a fixed sorting network.

Shared design rules of the cleaning flags
-----------------------------------------
* A flag step looks at the *detection data*: the working data with the sky and
  1/f corrections but **without** the pixel replacement (otherwise re-running a
  step after replacement could not find its own pixels again), and at the
  pipeline ``DO_NOT_USE`` bit and non-finite values. It does not look at other
  steps' flags, so flags do not depend on the order in which flag steps run and
  flag / unflag / re-flag gives the same mask.
* Per-pixel noise comes from the pipeline variance averaged over the deep
  frame's integrations (one frame: the variance cube is not read again),
  multiplied by a robust empirical factor (``>= 1``) measured on the same
  data, so an underestimated variance does not turn into a flood of flags.
* Running medians use sorting networks (:func:`median_network`) evaluated with
  numpy on cache-sized chunks: exact medians at a fraction of the cost of
  ``scipy.ndimage.median_filter``.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from tsocontainer._disk import read_across, write_across

from tsocontainer.arrays.numerics import (block_ranges, dispersion_median, residual_scale, robust_factor,
                                          run_blocks, running_median)
from tsocontainer.arrays.numerics import _finite_fill, _sigma  # noqa: F401
from tsocontainer.arrays.numerics import disp_view as _disp_view
from tsocontainer.arrays.numerics import masked_row_median as _masked_row_median

__all__ = [
    "white_light", "deep_frame",
    "HotColdOptions", "hot_cold_pixels", "spatial_outliers", "time_outliers", "profile_model",
    "profile_outliers",
]

log = logging.getLogger(__name__)

# ------------------------------------------------------ group quantities
def white_light(cube, good2d, window: int = 1):
    """Normalised white-light curve of ``cube`` over the static good pixels.

    Parameters
    ----------
    cube : ndarray, shape (N, ny, nx)
        Data.
    good2d : ndarray of bool, shape (ny, nx)
        Pixels to sum (non-finite values are skipped too).
    window : int
        Length of a running median applied to the curve (1: none).

    Returns
    -------
    ndarray of float64, shape (N,)
        Curve divided by its median (ones if it has no flux).

    Examples
    --------
    >>> import numpy as np
    >>> cube = np.ones((4, 3, 5)) * np.array([1.0, 1.0, 0.99, 1.0])[:, None, None]
    >>> white_light(cube, np.ones((3, 5), bool)).round(4)
    array([1.  , 1.  , 0.99, 1.  ])
    """
    n = cube.shape[0]
    flat_good = good2d.reshape(-1)
    wl = np.zeros(n)

    def work(a, b):
        blk = cube[a:b].reshape(b - a, -1)
        ok = np.isfinite(blk)
        ok &= flat_good
        wl[a:b] = np.add.reduce(blk, axis=1, where=ok, dtype=np.float64)

    run_blocks(work, block_ranges(n, max(1, 2_000_000 // max(flat_good.size, 1))), "white light")
    med = np.median(wl)
    if not np.isfinite(med) or med <= 0:
        return np.ones(n)
    wl /= med
    if window > 1 and n > 2:
        wl = running_median(wl[:, None], window)[:, 0]
    return wl


def deep_frame(cube, var, max_frames: int = 31):
    """Median frame of up to ``max_frames`` evenly spaced integrations, and its variance.

    A median of a subsample is robust to cosmic rays and costs a fraction of a
    full median over time; it serves as the spatial reference of the flags.
    Non-finite values are ignored.

    Parameters
    ----------
    cube : ndarray or block source, shape (N, ny, nx)
        Data (anything that ``cube[i:i + 1]`` slices).
    var : ndarray, shape (N, ny, nx)
        Variance.
    max_frames : int
        Largest number of integrations used.

    Returns
    -------
    frame : ndarray of float32, shape (ny, nx)
        NaN where no finite value.
    frame_var : ndarray of float32, shape (ny, nx)
        Mean variance of one integration at each pixel.

    Examples
    --------
    >>> import numpy as np
    >>> cube = np.random.default_rng(4).normal(100.0, 1.0, (9, 10, 30)).astype(np.float32)
    >>> cube[4, 5, 12] += 50.0                                  # a cosmic ray
    >>> frame, frame_var = deep_frame(cube, np.ones_like(cube))
    >>> round(float(frame[5, 12]), 1), float(frame_var[5, 12])
    (99.7, 1.0)
    """
    n, ny, nx = cube.shape
    idx = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    frames = np.concatenate([np.asarray(cube[i:i + 1], np.float32) for i in idx])
    frame = np.empty((ny, nx), np.float32)
    frame_var = np.empty((ny, nx), np.float32)

    def work(r0, r1):
        # pixels x frames, contiguous: partitioning along the last axis is cache friendly
        sub = np.ascontiguousarray(frames[:, r0:r1].reshape(idx.size, -1).T)
        frame[r0:r1] = _masked_row_median(sub).reshape(r1 - r0, nx)
        v = var[idx, r0:r1]
        ok = np.isfinite(v)
        frame_var[r0:r1] = (np.add.reduce(v, axis=0, where=ok, dtype=np.float64)
                            / np.maximum(ok.sum(axis=0), 1))

    run_blocks(work, block_ranges(ny, max(1, 1_000_000 // max(idx.size * nx, 1))), "deep frame")
    return frame, frame_var


# ------------------------------------------------------------------ flags
@dataclass(frozen=True)
class HotColdOptions:
    """Thresholds and windows of :func:`hot_cold_pixels`.

    Parameters
    ----------
    filter_size : int
        Span along dispersion (pixels) of the neighbours that predict a pixel.
    nsigma : float
        Threshold on the significance.
    clip : float
        Per-integration clipping (sigmas) about the pixel's median residual.
    rel_tol : float
        Fractional tolerance of the smooth model (structure of the trace).
    half_height : int
        Half-height of the cross-dispersion box of the local flux.

    Examples
    --------
    >>> HotColdOptions(nsigma=6.0)
    HotColdOptions(filter_size=7, nsigma=6.0, clip=5.0, rel_tol=0.002, half_height=3)
    """

    filter_size: int = 7
    nsigma: float = 5.0
    clip: float = 5.0
    rel_tol: float = 0.002
    half_height: int = 3


def hot_cold_pixels(cube, var, deep, wl, dispersion_axis: int = 1,
                    options: HotColdOptions | None = None, *, good=None, slope=None):
    """Pixels consistently above (hot) or below (cold) their smooth neighbourhood.

    Each integration's deviation from the deep frame (scaled by the white-light
    curve) is clipped at ``+-clip`` sigma, so cosmic rays weigh little but a
    steady offset is kept whole; the mean over time gives a clipped mean frame
    ``M`` with noise ``sigma / sqrt(n)``. ``M`` is compared with ``S``, its
    smooth model from :func:`tsocontainer.cleaning.smoothframe.profile_smooth` (the
    local cross-dispersion profile predicted from its neighbours along
    dispersion within ``filter_size`` pixels, times the local flux): the significance is
    ``(M - S)`` over the noise plus ``rel_tol`` times the star's part of ``S``
    (``S`` above the median of its line across dispersion; the tolerance for
    the trace's own structure), rescaled by its robust spread over the frame
    and by its local spread (9 x 5 pixels: a trace the model cannot follow;
    neither below 1). Where a steep trace (``slope``) meets an edge across
    dispersion (reference rows, dark in real data, or the frame's end), the model
    moves the local-flux boxes off the edge (``good``); on the last line before it the
    model is a running median (:func:`_cut_boxes`) and the tolerance there is
    :data:`CUT_TOL` of the pixel's own light. On the trace, an excess below ~``nsigma * rel_tol`` of
    the star's flux cannot be told from the trace's own structure by a spatial
    test (the pipeline DQ flags such pixels); static sharp sources (SOSS
    order-0 contaminants) are flagged as hot.

    Parameters
    ----------
    cube : ndarray or block source, shape (N, ny, nx)
        Detection data (sliced ``cube[a:b]``).
    var : ndarray, shape (ny, nx)
        Variance of one integration per pixel (time-averaged).
    deep : ndarray, shape (ny, nx)
        Deep (median) frame of ``cube``.
    wl : ndarray, shape (N,)
        Normalised (smoothed) white-light curve.
    dispersion_axis : int
        Frame axis of the dispersion.
    options : HotColdOptions, optional
        Window along dispersion, threshold, per-integration clipping,
        tolerance and local-flux box (default :class:`HotColdOptions`).
    good : ndarray of bool, shape (ny, nx), optional
        Light-sensitive pixels (reference pixels excluded): the others are
        neither flagged nor part of the local spread.
    slope : ndarray, shape (ny, nx), optional
        Local trace direction (cross-dispersion pixels per dispersion pixel,
        :func:`tsocontainer.cleaning.smoothframe.trace_slopes`): the smooth
        model predicts each pixel from its neighbours along the trace, so a
        steep trace (SOSS orders 2 and 3) is followed instead of crossed.

    Returns
    -------
    hot, cold : ndarray of bool, shape (ny, nx)
    significance : ndarray of float32, shape (ny, nx)

    Examples
    --------
    A flat scene with one pixel 30 % brighter in every integration:

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> cube = rng.normal(1000.0, 10.0, (8, 20, 40)).astype(np.float32)
    >>> cube[:, 7, 21] *= 1.3
    >>> deep = np.median(cube, axis=0)
    >>> hot, cold, signif = hot_cold_pixels(cube, np.full((20, 40), 100.0), deep, np.ones(8))
    >>> [(int(y), int(x)) for y, x in np.argwhere(hot)], int(cold.sum())
    ([(7, 21)], 0)
    """
    from tsocontainer.cleaning.smoothframe import profile_smooth

    opts = options or HotColdOptions()
    filter_size, nsigma, rel_tol = opts.filter_size, opts.nsigma, opts.rel_tol

    fill = np.nan_to_num(deep, nan=float(np.nanmedian(deep)) if np.isfinite(deep).any() else 0.0)
    n, ny, nx = cube.shape
    sig = _sigma(var)
    lim = (opts.clip * sig).astype(np.float32)
    usum = np.zeros((ny, nx), np.float64)
    count = np.zeros((ny, nx), np.int64)
    lock = threading.Lock()

    def work(a, b):
        # u_i = d_i - wl_i deep, clipped to +- clip sig about the deep frame: cosmic rays
        # weigh little, a steady offset is kept whole
        u = np.asarray(cube[a:b], np.float32) - wl[a:b, None, None].astype(np.float32) * fill
        ok = np.isfinite(u)
        np.clip(u, -lim, lim, out=u)
        parts = np.add.reduce(u, axis=0, where=ok), ok.sum(axis=0)
        with lock:   # accumulate the block's sums over time
            usum.__iadd__(parts[0])
            count.__iadd__(parts[1])

    run_blocks(work, block_ranges(n, max(1, 2_000_000 // max(ny * nx, 1))), "hot/cold")
    wl_mean = float(np.mean(wl))
    with np.errstate(all="ignore"):
        # the clipped mean frame at white light 1 and its noise
        mean = fill + usum / count / wl_mean
        noise = sig / np.sqrt(count) / abs(wl_mean)
    plain = _disp_view(dispersion_median(_disp_view(fill, dispersion_axis), filter_size),
                       dispersion_axis)
    mean = np.where(np.isfinite(mean), mean, plain)
    noise = np.where(np.isfinite(noise), noise, np.nanmedian(np.where(np.isfinite(noise), noise, np.nan)))
    smooth = profile_smooth(mean, dispersion_axis, filter_size, opts.half_height, noise=noise,
                            slope=slope, good=good, niter=SMOOTH_PASSES)
    cut = None if good is None else _cut_boxes(good, slope, opts, dispersion_axis)
    with np.errstate(all="ignore"):
        # structure tolerance on the star only: the smooth model above its line's median
        base = np.median(_disp_view(smooth, dispersion_axis), axis=0)
        star = np.abs(_disp_view(smooth, dispersion_axis) - base[None])
        tol = rel_tol * _disp_view(star, dispersion_axis)
        if cut is not None:
            # there the model is a running median along the line: tolerate CUT_TOL of the
            # data's own light (above its line's median), so dead pixels still stand out
            light = np.abs(mean - _disp_view(np.median(_disp_view(mean, dispersion_axis),
                                                       axis=0)[None], dispersion_axis))
            tol = np.where(cut, np.hypot(tol, CUT_TOL * light), tol)
        signif = (mean - smooth) / np.sqrt(noise ** 2 + tol ** 2)
    signif = signif.astype(np.float32)
    if good is not None:
        signif[~good] = np.nan
    signif /= robust_factor(signif, stride=1)
    # where the model cannot follow the scene (a steep trace with sharp structure) its
    # neighbours miss it as well: the local spread of their significances (a median
    # over 9 pixels along dispersion, then over 5 across) raises the scale there
    a = np.abs(np.nan_to_num(_disp_view(signif, dispersion_axis), nan=0.0))
    local = running_median(dispersion_median(a, 9), 5) * np.float32(1.4826)
    signif /= np.maximum(_disp_view(local, dispersion_axis), 1.0)
    good = np.isfinite(signif)
    hot = good & (signif > nsigma)
    cold = good & (signif < -nsigma)
    return hot, cold, signif


#: Passes of the static-frame model in :func:`hot_cold_pixels`: each clipping pass replaces
#: only the most deviant pixel of a box, so clustered hot pixels need more than the
#: default two clipping passes, or the ones left raise their box-mates' model and these
#: are flagged cold (steep-trace scene, 8 frames: 63 such false flags with 3 passes, 8 with 5).
SMOOTH_PASSES = 5

#: Tolerance of :func:`hot_cold_pixels` on the last line before an edge where a steep trace
#: leaves the light-sensitive region (:func:`_cut_boxes`), as a fraction of the pixel's
#: light: there the model is a running median along the line (4 % off on a noiseless
#: steep trace; 70 false flags on that line in 8 frames without it, 0-1 with it); a
#: pixel there must be off by ~75 % of its light: dead pixels are still found.
CUT_TOL = 0.15


def _cut_boxes(good, slope, opts, dispersion_axis):
    """Pixels of a steep trace on the last line before an edge of the light-sensitive region
    (the frame's end or one of
    :func:`tsocontainer.cleaning.smoothframe.reference_lines`).

    Elsewhere the smooth model moves cut boxes off such edges
    (:func:`tsocontainer.cleaning.smoothframe.profile_smooth` with ``good``); on that line
    the neighbours along a trace with ``|slope| * filter_size // 2 >= 0.5`` lie partly
    beyond the edge and the model falls back to a running median. On a flat trace all
    are alike (no pixel is returned). None without ``slope``.
    """
    if slope is None:
        return None
    from tsocontainer.cleaning.smoothframe import reference_lines

    g = _disp_view(np.asarray(good, bool), dispersion_axis)        # lines along dispersion
    reach = np.abs(np.nan_to_num(_disp_view(np.asarray(slope, float), dispersion_axis))) * (
        opts.filter_size // 2)
    edge = np.flatnonzero(np.r_[True, reference_lines(g), True]) - 1   # frame ends: -1, n
    dist = np.min(np.abs(np.arange(g.shape[0])[:, None] - edge[None, :]), axis=1)
    cut = (reach >= 0.5) & (dist[:, None] <= 1) & g
    return _disp_view(cut, dispersion_axis)


def spatial_residual(d, v, deep_block, smooth_deep, wl, dispersion_axis, filter_size,
                     nref):
    """Normalised residual of integrations against their own running median along dispersion.

    The static structure of the trace (deep frame minus its running median)
    is subtracted too, so only what changes between integrations remains.

    Parameters
    ----------
    d : ndarray, shape (n, ny, nx)
        Data of a block of integrations.
    v : ndarray, shape (ny, nx)
        Variance of one integration per pixel.
    deep_block : ndarray, shape (ny, nx)
        Deep frame (finite).
    smooth_deep : ndarray, shape (ny, nx)
        Its running median along dispersion.
    wl : ndarray, shape (n,)
        White-light scale of the integrations.
    dispersion_axis : int
        0 or 1.
    filter_size : int
        Running-median window.
    nref : int
        Frames in the deep frame (its noise enters the residual).

    Returns
    -------
    z : ndarray of float32
        Residual / expected sigma (before the robust rescaling).
    bad : ndarray of bool
        Non-finite input values.

    Examples
    --------
    A spike of 300 DN on the wing of a trace stands out of its column's residuals:

    >>> import numpy as np
    >>> rows = np.arange(20.0)[:, None]
    >>> deep = (1000 * np.exp(-0.5 * ((rows - 9.6) / 1.5) ** 2)).repeat(40, 1)
    >>> d = np.random.default_rng(4).normal(deep, np.sqrt(deep + 25), (2, 20, 40))
    >>> d[1, 12, 7] += 300.0
    >>> z, bad = spatial_residual(d, deep + 25, deep, deep, np.ones(2), 1, 5, 64)
    >>> np.unravel_index(np.argmax(np.abs(z)), z.shape) == (1, 12, 7), bool(bad.any())
    (True, False)
    """
    wl3 = wl.astype(np.float32)[:, None, None]
    dd, bad = _finite_fill(d, wl3 * deep_block)
    med = _disp_view(dispersion_median(_disp_view(dd, dispersion_axis), filter_size),
                     dispersion_axis)
    dd -= med
    dd -= wl3 * (deep_block - smooth_deep)
    dd /= _sigma(v) * residual_scale(filter_size, nref)
    return dd, bad


def spatial_outliers(cube, var, deep, wl, dispersion_axis: int = 1, filter_size: int = 5,
                     nsigma: float = 5.0, percentile: float | None = None, nref: int = 64):
    """Per-integration spatial outliers against a running median along dispersion.

    Parameters
    ----------
    cube : ndarray or block source, shape (N, ny, nx)
        Detection data (sliced ``cube[a:b]``).
    var : ndarray, shape (ny, nx)
        Variance of one integration per pixel (time-averaged).
    deep : ndarray, shape (ny, nx)
        Deep frame (see :func:`deep_frame`).
    wl : ndarray, shape (N,)
        Normalised white-light curve.
    dispersion_axis : int
        0 or 1.
    filter_size : int
        Window (pixels along dispersion) of the local median model.
    nsigma : float
        Threshold in robust sigmas; with ``percentile`` the lower bound of the
        threshold.
    percentile : float, optional
        If given, each integration's threshold is the larger of ``nsigma`` and
        this percentile of its ``|z|`` (the percentile model).
    nref : int
        Frames in the deep frame.

    Returns
    -------
    ndarray of bool, shape (N, ny, nx)

    Examples
    --------
    >>> import numpy as np
    >>> cube = np.random.default_rng(4).normal(100.0, 1.0, (9, 10, 30)).astype(np.float32)
    >>> cube[4, 5, 12] += 50.0                                  # a cosmic ray
    >>> frame, _ = deep_frame(cube, np.ones_like(cube))
    >>> flags = spatial_outliers(cube, np.ones((10, 30)), frame, np.ones(9))
    >>> np.argwhere(flags).tolist()
    [[4, 5, 12]]
    """
    n, ny, nx = cube.shape
    fill = np.nan_to_num(deep, nan=float(np.nanmedian(deep)) if np.isfinite(deep).any() else 0.0)
    smooth = _disp_view(dispersion_median(_disp_view(fill, dispersion_axis), filter_size),
                        dispersion_axis)
    flags = np.zeros(cube.shape, bool)

    def work(a, b):
        z, bad = spatial_residual(cube[a:b], var, fill, smooth, wl[a:b], dispersion_axis,
                                  filter_size, nref)
        z = np.abs(z, out=z)
        z /= robust_factor(z)
        thr = np.full((b - a, 1, 1), nsigma, np.float32)
        if percentile is not None:
            sample = z.reshape(b - a, -1)[:, ::3]
            sample = np.where(np.isfinite(sample), sample, 0)
            thr[:, 0, 0] = np.maximum(nsigma, np.percentile(sample, percentile, axis=1))
        flags[a:b] = (z > thr) & ~bad

    run_blocks(work, block_ranges(n, max(1, 2_000_000 // (ny * nx))), "spatial outliers")
    return flags


def time_outliers(cube, var, wl, fill, window: int = 5, nsigma: float = 4.0, onef_axis=None,
                  shift=None, out=None):
    """Per-pixel outliers in time against a running median of the normalised series.

    Each integration is divided by the smoothed white-light curve ``wl`` (so
    a transit or a trend is not an outlier) and a running median over
    ``window`` integrations is the reference. From the residuals are removed,
    when given, the common offset of each integration and detector line
    (1/f: clipped mean along ``onef_axis``) and each pixel's linear response
    to the image motion in ``shift`` (jitter and breathing on steep PSF
    edges).
    ``|residual|`` above ``nsigma`` sigmas is flagged. The sigma is the
    pipeline variance (time-averaged per pixel), rescaled by the larger of
    the residuals' robust spread over the block and the pixel's own scatter
    over time (mean ``|z|`` clipped at 5, where it exceeds 1 by more than
    twice its error ``0.755 / sqrt(N)``).

    Parameters
    ----------
    cube : ndarray, shape (N, ny, nx)
        Detection data.
    var : ndarray, shape (ny, nx)
        Variance of one integration per pixel (time-averaged).
    wl : ndarray, shape (N,)
        Smoothed, normalised white-light curve.
    fill : ndarray, shape (ny, nx)
        Values used in place of non-finite data (the deep frame).
    window : int
        Running-median length in integrations (rounded up to odd).
    nsigma : float
        Threshold.
    onef_axis : int, optional
        Frame axis along which 1/f offsets are constant (None: not removed).
    shift : ndarray, shape (N,) or (N, K), optional
        Motion regressors per integration: the cross-dispersion trace
        position (pixels), or ``K`` motion modes (position, width, ...).
    out : ndarray of bool, shape (N, ny, nx), optional
        Zero-filled output (e.g. a memory-mapped file); default: a new array.

    Returns
    -------
    ndarray of bool, shape (N, ny, nx)
        ``out`` when given.

    Examples
    --------
    >>> import numpy as np
    >>> cube = np.random.default_rng(4).normal(100.0, 1.0, (9, 10, 30)).astype(np.float32)
    >>> cube[4, 5, 12] += 50.0                                  # a cosmic ray
    >>> frame, _ = deep_frame(cube, np.ones_like(cube))
    >>> flags = time_outliers(cube, np.ones((10, 30)), np.ones(9), frame)
    >>> np.argwhere(flags).tolist()
    [[4, 5, 12]]
    """
    n, ny, nx = cube.shape
    flags = np.zeros(cube.shape, bool) if out is None else out
    inv_wl = (1.0 / wl).astype(np.float32)[:, None, None]
    fill = np.nan_to_num(fill).astype(np.float32)
    scale = residual_scale(window)
    wl3 = wl.astype(np.float32)[:, None, None]
    dshift = None
    if shift is not None and n > 2:   # the part of the motion the running median misses
        s = np.asarray(shift, np.float64).reshape(n, -1)
        dshift = s - running_median(s, window)
        dshift = dshift[:, np.any(dshift != 0, axis=0)]
        if dshift.shape[1] == 0:
            dshift = None
        else:   # least squares of each pixel on the modes: (D^T D)^-1 D^T y
            proj = np.linalg.pinv(dshift).astype(np.float32)    # (K, n)
            dshift = dshift.astype(np.float32)
    col_blocks = onef_axis == 0        # blocks must hold whole 1/f lines

    def work(c0, c1):
        sl = np.s_[:, :, c0:c1] if col_blocks else np.s_[:, c0:c1]
        y, bad = _finite_fill(read_across(cube, sl), fill[sl[1:]], wl3[:, 0, 0])
        y *= inv_wl
        y -= running_median(y, window)
        y *= wl3   # back to data units: the noise of a pixel does not follow the transit
        sig = _sigma(var[sl[1:]]) * scale
        if onef_axis is not None or dshift is not None:
            yc = np.clip(y, -3 * sig, 3 * sig)   # outliers must not drive these fits
            if onef_axis is not None:      # common offset of each integration and line
                off = yc.mean(axis=1 + onef_axis, keepdims=True)
                y -= off
                yc -= off
            if dshift is not None:         # each pixel's response to the trace motion
                coef = np.tensordot(proj, yc, axes=(1, 0))              # (K, ...)
                y -= np.tensordot(dshift, coef, axes=(1, 0))
            del yc
        y /= sig
        np.abs(y, out=y)
        emp = np.sqrt(np.pi / 2) * np.minimum(y, 5).mean(axis=0) - 2 * 0.755 / np.sqrt(n)
        y /= np.maximum(robust_factor(y), emp)[None]
        write_across(flags, sl, (y > nsigma) & ~bad)

    size = max(64 if col_blocks else 1, 2_000_000 // max(n * (ny if col_blocks else nx), 1))
    run_blocks(work, block_ranges(nx if col_blocks else ny, size), "time outliers")
    return flags


def profile_model(deep, band, dispersion_axis: int = 1, window: int = 1, deg: int = 2):
    """Smooth normalised spatial profile of the trace (Horne 1986 style).

    The deep frame, cleaned by a 5-pixel running median along dispersion and
    normalised per dispersion pixel to unit sum inside ``band``, is smoothed
    along dispersion with polynomial windows
    (Savitzky-Golay, ``window`` pixels, degree ``deg``; 1 = no smoothing)
    and clipped at zero.

    Parameters
    ----------
    deep : ndarray, shape (ny, nx)
        Deep frame.
    band : ndarray of bool, shape (ny, nx)
        Trace aperture.
    dispersion_axis : int
        0 or 1.
    window, deg : int
        Smoothing window (odd, pixels) and polynomial degree.

    Returns
    -------
    ndarray of float32, shape (ny, nx)
        Zero outside ``band``; columns sum to 1 where the trace has flux.

    Examples
    --------
    >>> import numpy as np
    >>> rows = np.arange(20.0)[:, None]
    >>> deep = (1000 * np.exp(-0.5 * ((rows - 9.6) / 1.5) ** 2)).repeat(40, 1)
    >>> band = np.broadcast_to(np.abs(rows - 9.6) <= 5, deep.shape)
    >>> prof = profile_model(deep, band)
    >>> prof.sum(0)[:3].round(6), bool((prof[~band] == 0).all())
    (array([1., 1., 1.], dtype=float32), True)
    """
    from scipy.signal import savgol_filter

    d = _disp_view(np.nan_to_num(deep), dispersion_axis).astype(np.float64)
    d = dispersion_median(d, 5)  # static hot/cold pixels must not shape the profile
    b = _disp_view(band, dispersion_axis)
    tot = (d * b).sum(axis=0)
    with np.errstate(all="ignore"):
        prof = np.where(tot > 0, d * b / tot, 0.0)
    window = min(int(window) | 1, (prof.shape[1] - 1) | 1 if prof.shape[1] > 2 else 1)
    if window > deg + 1:
        prof = savgol_filter(prof, window, deg, axis=1, mode="interp")
    prof = np.clip(prof, 0, None) * b
    with np.errstate(all="ignore"):
        s = prof.sum(axis=0)
        prof = np.where(s > 0, prof / s, 0)
    return _disp_view(prof.astype(np.float32), dispersion_axis)


def _profile_fit(d, w, b0, b1, axis=1):
    """Weighted least squares of ``d = a * b0 + s * b1`` along the cross-dispersion ``axis``.

    ``b1`` is the profile's derivative, so ``s`` absorbs a small shift of the
    trace (jitter). Returns the model, same shape as ``d``.
    """
    wd = w * d
    a00 = (w * b0 * b0).sum(axis)
    a01 = (w * b0 * b1).sum(axis)
    a11 = (w * b1 * b1).sum(axis)
    r0 = (wd * b0).sum(axis)
    r1 = (wd * b1).sum(axis)
    det = a00 * a11 - a01 * a01
    with np.errstate(all="ignore"):
        ok = det > 1e-6 * np.maximum(a00 * a11, 1e-30)
        amp = np.where(ok, (a11 * r0 - a01 * r1) / det, np.where(a00 > 0, r0 / a00, 0))
        shift = np.where(ok, (a00 * r1 - a01 * r0) / det, 0)
    amp, shift = np.nan_to_num(amp), np.nan_to_num(shift)
    return (np.expand_dims(amp, axis) * b0 + np.expand_dims(shift, axis) * b1).astype(np.float32)


def profile_outliers(cube, var, prof, band, dispersion_axis: int = 1, nsigma: float = 5.0,
                     niter: int = 2, rel_tol: float = 0.02):
    """Pixels of the trace that deviate from the fitted smooth profile.

    Per integration and dispersion pixel, the profile's amplitude and a small
    shift (its derivative as a second basis: pointing jitter) are fitted by
    weighted least squares (weights 1/var; flagged pixels dropped on the next
    iteration) and ``|d - model|`` above ``nsigma`` robust sigmas inside the
    aperture is flagged; the sigma includes ``rel_tol * model`` for what a
    static profile cannot follow (PSF width changes).

    Parameters
    ----------
    cube : ndarray or block source, shape (N, ny, nx)
        Detection data (sliced ``cube[a:b]``).
    var : ndarray, shape (ny, nx)
        Variance of one integration per pixel (time-averaged).
    prof : ndarray, shape (ny, nx)
        Profile from :func:`profile_model`.
    band : ndarray of bool, shape (ny, nx)
        Aperture.
    dispersion_axis : int
        0 or 1.
    nsigma : float
        Threshold.
    niter : int
        1: one fit; 2: the lines with flags are refitted without them and
        flagged again (default).
    rel_tol : float
        Fractional model uncertainty added in quadrature to the noise.

    Returns
    -------
    ndarray of bool, shape (N, ny, nx)

    Examples
    --------
    >>> import numpy as np
    >>> rows = np.arange(20.0)[:, None]
    >>> deep = (1000 * np.exp(-0.5 * ((rows - 9.6) / 1.5) ** 2)).repeat(40, 1)
    >>> band = np.broadcast_to(np.abs(rows - 9.6) <= 5, deep.shape)
    >>> prof = profile_model(deep, band)
    >>> cube = np.random.default_rng(4).normal(deep, np.sqrt(deep + 25), (6, 20, 40))
    >>> cube[2, 12, 7] += 300.0                                 # on the wing of the profile
    >>> np.argwhere(profile_outliers(cube, deep + 25, prof, band)).tolist()
    [[2, 12, 7]]
    """
    n, ny, nx = cube.shape
    flags = np.zeros(cube.shape, bool)
    p = _disp_view(prof, dispersion_axis)
    inband = _disp_view(band, dispersion_axis) & (p > 0)
    rows = np.flatnonzero(inband.any(axis=1))  # cross-dispersion lines used
    if rows.size == 0:
        return flags
    dp = np.ascontiguousarray(np.gradient(p, axis=0)[rows])   # shift basis (jitter)
    p = np.ascontiguousarray(p[rows])
    inb = inband[rows]
    v = _disp_view(np.asarray(var, np.float32), dispersion_axis)[rows]
    with np.errstate(all="ignore"):
        ivar = np.where(inb & (v > 0), np.float32(1) / v, np.float32(0))
    vinv = np.where(v > 0, v, np.inf).astype(np.float32)[None]

    def work(a, b):
        d = _disp_view(np.asarray(cube[a:b]), dispersion_axis)[:, rows]
        d, bad = _finite_fill(d, 0)
        w = np.where(bad, np.float32(0), ivar[None])   # inverse variance, 0 where not used
        model = _profile_fit(d, w, p[None], dp[None])
        r = d - model
        z2 = r * r / (vinv + (rel_tol * model) ** 2) * (w > 0)   # w = 0: not in the test
        sample = z2.reshape(-1)[:: max(1, z2.size // 50_000)]
        thr = (nsigma * robust_factor(np.sqrt(sample[sample > 0]), stride=1)) ** 2
        flag = z2 > thr
        if niter > 1:   # refit only the (integration, dispersion pixel) lines that had flags
            ii, kk = np.nonzero(flag.any(axis=1))
            if ii.size:
                dl = d[ii, :, kk]                        # (nlines, ncross)
                wl_ = np.where(flag[ii, :, kk], 0, w[ii, :, kk])
                ml = _profile_fit(dl, wl_, p[:, kk].T, dp[:, kk].T)
                vl = vinv[0][:, kk].T + (rel_tol * ml) ** 2
                flag[ii, :, kk] = ((dl - ml) ** 2 / vl * (w[ii, :, kk] > 0)) > thr
        out = _disp_view(flags[a:b], dispersion_axis)
        out[:, rows] = flag

    run_blocks(work, block_ranges(n, max(1, 2_000_000 // (ny * nx))), "profile outliers")
    return flags
