"""Smooth model of a static (time-averaged) frame, to find single-pixel defects on it.

A hot pixel is constant in time, so only a spatial test can find it: its value
in a deep frame stands out from what the neighbouring pixels predict. On the
trace the prediction has to be good to a fraction of a per cent of the star's
flux, and a running median along dispersion is not: the spectrum (stellar
lines, throughput) and the trace's slow drift across rows change a row's value
from column to column.

:func:`profile_smooth` separates the two. Each pixel is divided by the sum of
the ``2 h + 1`` pixels around it across dispersion (the local flux ``L``), which
removes the spectrum; the ratio ``P`` (the local profile) changes only as the
trace moves across the row, and is predicted at each column from its
neighbours along dispersion, the value itself left out (:func:`neighbour_median`);
the model is that prediction times ``L``. Near the ends of the dispersion axis
a robust straight line takes over. Pixels far off the model are replaced by
their prediction before ``L`` is recomputed, so a hot pixel does not raise the
model of its neighbours in the same column.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter, uniform_filter1d

from tsocontainer.arrays.numerics import (block_ranges, disp_view, dispersion_median,
                                          run_blocks)
from tsocontainer.arrays.views import nanmedian_quiet

__all__ = ["profile_smooth", "neighbour_median", "along_stencils", "edge_line_median",
           "trace_slopes"]


def edge_line_median(p, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Robust straight-line estimates of the first and last ``half`` columns of ``p``.

    Each end uses the ``2 half + 1`` columns nearest to it: the slope is the
    median of the pairwise slopes of those columns, and the value at a column
    the median of the columns' values carried to it along that slope. One bad
    value among them moves neither.

    Parameters
    ----------
    p : ndarray, shape (ny, m)
        Values along the last axis (finite).
    half : int
        Half-window of the estimate they replace.

    Returns
    -------
    left, right : ndarray, shape (ny, half)
        Estimates of columns ``0 .. half - 1`` and ``m - half .. m - 1``.
    """
    w = 2 * half + 1
    k = np.arange(w, dtype=np.float64)
    i, j = np.triu_indices(w, 1)
    out = []
    for block, cols in ((p[:, :w], np.arange(half)),
                        (p[:, -w:], np.arange(w - half, w))):
        b = np.asarray(block, np.float64)
        slope = np.median((b[:, j] - b[:, i]) / (k[j] - k[i]), axis=1)
        # value at column c: median over the window of b_k + slope (c - k)
        carried = b[:, None, :] + slope[:, None, None] * (cols[None, :, None] - k[None, None, :])
        out.append(np.median(carried, axis=2))
    return out[0], out[1]


def _stencil(tilt, k: int, half: int, ny: int, m: int, row0: int = 0):
    """Flat indices and weights with which :func:`_along` reads the point ``tilt * k`` lines
    away, ``k`` columns from the inner columns of a ``(ny, m)`` frame, for the lines
    ``row0 .. row0 + len(tilt) - 1`` (they depend on the tilt only: one stencil serves
    every frame and pass)."""
    r = np.arange(row0, row0 + tilt.shape[0], dtype=np.float64)[:, None] + tilt * k
    with np.errstate(all="ignore"):
        r0 = np.floor(r)
        f = r - r0
        r0 = r0.astype(np.intp)
        f2, f3 = f * f, f * f * f
        weights = ((-f3 + 2 * f2 - f) / 2, (3 * f3 - 5 * f2 + 2) / 2,
                   (-3 * f3 + 4 * f2 + f) / 2, (f3 - f2) / 2)
    at = (half + k) + np.arange(r.shape[1])      # columns of the inner columns in the frame

    small = np.int32 if ny * m < 2**31 else np.intp   # indices kept for every pass: compact

    def flat(j):
        idx = np.clip(r0 + j, 0, ny - 1)
        idx *= m
        idx += at
        return idx.astype(small, copy=False)

    frac = f > 0                                 # off the line: four taps, where needed only
    taps = [(w[frac], flat(j)[frac]) for j, w in zip((-1, 0, 1, 2), weights)] if (
        frac.any()) else None
    return flat(0), frac, taps, (r < 0) | (r > ny - 1)


def _along(p, k: int, half: int, tilt=None, outside=None, stencil=None, rows=None) -> np.ndarray:
    """Values ``k`` columns away from the inner columns ``half .. m - half - 1`` of ``p``.

    Without ``tilt``, the same line. With it (shape of the inner columns:
    cross-dispersion shift per dispersion pixel), the point ``tilt * k`` lines
    away, interpolated by the cubic convolution kernel (Keys 1981, ``a =
    -0.5``: exact on quadratics, four lines) across lines; points beyond the
    first or last line take that line's value, or ``outside`` when given.
    ``rows`` ``(a, b)``: for the lines ``a:b`` only (default all); ``stencil`` is
    ``_stencil(tilt[a:b], k, half, *p.shape, a)`` when already made.
    """
    ny, m = p.shape
    a, b = (0, ny) if rows is None else rows
    if tilt is None and stencil is None:
        return p[a:b, half + k:m - half + k]
    line, frac, taps, off = stencil or _stencil(tilt[a:b], k, half, ny, m, a)
    flat = np.ascontiguousarray(p).ravel()
    val = np.take(flat, line)                    # f = 0: the line itself
    if taps is not None:
        with np.errstate(all="ignore"):
            val[frac] = sum(w * np.take(flat, idx) for w, idx in taps)
    if outside is not None:
        val[off] = outside
    return val


def neighbour_median(p, window: int, scale=None, max_ratio: float = 4.0,
                     slope=None, stencils=None) -> np.ndarray:
    """Median along the last axis of the ``window - 1`` neighbours of each value, itself left out.

    With an even count the median is the mean of the two middle neighbours,
    so it is exact on a straight line, wherever it climbs (a running median
    that includes the value returns the value itself on a monotonic row,
    defect included), and robust to up to ``window // 2 - 1`` defective
    neighbours. The first and last ``window // 2`` columns take the robust
    straight line of :func:`edge_line_median`.

    Parameters
    ----------
    p : ndarray, shape (ny, m)
        Values along the last axis (finite).
    window : int
        Span of the neighbours (odd, >= 3).
    scale : ndarray, shape (ny, m), optional
        Positive scale of each value (the local flux): a neighbour whose scale
        differs from the value's by more than ``max_ratio`` (where a spectrum
        starts or ends, light gives way to sky) or is NaN is left out, and a
        robust (Theil-Sen) line through the others gives the value; with
        fewer than ``window // 2`` neighbours left (two at least) the result is
        NaN.
    max_ratio : float
        See ``scale``.
    slope : ndarray, shape (ny, m), optional
        Local direction of the structure (a trace): cross-dispersion pixels
        per dispersion pixel. The neighbour ``k`` columns away is then taken
        ``slope * k`` lines away (linear interpolation between lines), so the
        prediction follows a steep trace instead of crossing it. Zero or None:
        the same line. (The edge columns keep the straight line of their own
        line.)
    stencils : list, optional
        The interpolation stencils of ``slope`` (:func:`along_stencils`), when
        made once for several calls with the same slope, window and shape.

    Returns
    -------
    ndarray of float64, shape (ny, m)

    Examples
    --------
    A ramp that runs one line down per column is predicted along it, not across it:

    >>> import numpy as np
    >>> yy, xx = np.mgrid[0:30, 0:20].astype(float)
    >>> p = np.exp(-0.5 * ((yy - 8 - 0.5 * xx) / 1.5) ** 2)
    >>> err = [np.abs(neighbour_median(p, 7, slope=s) - p)[:, 3:-3].max()
    ...        for s in (None, np.full(p.shape, 0.5))]
    >>> [round(float(e), 3) for e in err]
    [0.199, 0.012]
    """
    half = max(1, int(window) // 2)
    p = np.asarray(p, np.float64)
    m = p.shape[-1]
    if m < 2 * half + 1:
        return dispersion_median(p, window)
    out = np.empty_like(p)
    chunks = _row_chunks(p.shape[0])
    if stencils is None and slope is not None:
        stencils = along_stencils(slope, window, p.shape)
    sc = None if scale is None else np.asarray(scale, np.float64)

    def work(a, b):   # every output value depends on its own line's inputs only
        sts = None if stencils is None else stencils[(a, b)]
        _neighbour_rows(p, sc, half, max_ratio, sts, (a, b), out)

    run_blocks(work, chunks, "neighbour median", show=False)
    return out


def _row_chunks(ny: int) -> list:
    """Line ranges that :func:`neighbour_median` works on in parallel (32 lines: its
    ~100 line-sized temporaries stay small)."""
    return block_ranges(ny, 32 if ny >= 64 else ny)


def _neighbour_rows(p, sc, half, max_ratio, sts, rows, out) -> None:
    """:func:`neighbour_median` of the lines ``rows`` (a, b) into ``out``."""
    from tsocontainer.arrays.numerics import window_median

    a, b = rows
    m = p.shape[-1]
    inner = slice(half, m - half)
    ks = [k for k in range(-half, half + 1) if k]
    sts = [None] * len(ks) if sts is None else sts
    shifted = [_along(p, k, half, stencil=st, rows=rows) for k, st in zip(ks, sts)]
    res = out[a:b]
    res[:, inner] = window_median(shifted)
    res[:, :half], res[:, -half:] = edge_line_median(p[a:b], half)
    if sc is None:
        return
    mid = sc[a:b, inner]
    with np.errstate(all="ignore"):
        near = [_along(sc, k, half, outside=np.nan, stencil=st, rows=rows)
                for k, st in zip(ks, sts)]
        usable = np.stack([(s < max_ratio * mid) & (s > mid / max_ratio) for s in near])
    n_use = usable.sum(axis=0)
    # a line through two or three noisy neighbours extrapolates badly
    need = min(len(ks), max(2, half))
    fix = n_use < len(ks)
    res[:, inner][fix & (n_use < need)] = np.nan
    fit = fix & (n_use >= need)
    if fit.any():
        vals = np.stack(shifted)[:, fit]
        vals[~usable[:, fit]] = np.nan
        res[:, inner][fit] = _theil_sen_at_zero(np.asarray(ks, np.float64), vals)


def along_stencils(slope, window: int, shape) -> dict:
    """Interpolation stencils of :func:`neighbour_median` along ``slope``.

    Parameters
    ----------
    slope : ndarray, shape (ny, m), or None
        Local direction, as for :func:`neighbour_median`.
    window : int
        Span of the neighbours.
    shape : tuple (ny, m)
        Shape of the values.

    Returns
    -------
    dict or None
        Line range ``(a, b)`` -> one stencil per neighbour offset ``k``
        (``-half .. half``, 0 left out); None without ``slope`` or when the
        lines are shorter than the window (no interpolation then).
    """
    half = max(1, int(window) // 2)
    ny, m = shape
    if slope is None or m < 2 * half + 1:
        return None
    tilt = np.asarray(slope, np.float64)[:, half:m - half]
    return {(a, b): [_stencil(tilt[a:b], k, half, ny, m, a) for k in range(-half, half + 1) if k]
            for a, b in _row_chunks(ny)}


def _theil_sen_at_zero(k, vals) -> np.ndarray:
    """Theil-Sen line through the finite ``vals`` (n, npix) at offsets ``k``, evaluated at 0.

    NaN where fewer than two values are finite.
    """
    i, j = np.triu_indices(k.size, 1)
    with np.errstate(all="ignore"):   # all-NaN columns give NaN (no catch_warnings: threads)
        slope = nanmedian_quiet((vals[j] - vals[i]) / (k[j] - k[i])[:, None], axis=0)
        return nanmedian_quiet(vals - slope[None] * k[:, None], axis=0)


def _line_median(p, window: int) -> np.ndarray:
    """Running median along the last axis (value included) with straight-line ends."""
    half = int(window) // 2
    out = dispersion_median(np.asarray(p, np.float64), window)
    if half and p.shape[-1] >= 2 * half + 1:
        out[:, :half], out[:, -half:] = edge_line_median(p, half)
    return out


#: Percentile across dispersion taken as each line's sky in :func:`profile_smooth`, removed
#: before the profile is formed (the traces must cover less than the rest of a line).
SKY_PERCENTILE = 25.0


def profile_smooth(frame, dispersion_axis: int = 1, filter_size: int = 7, half_height: int = 3,
                   noise=None, clip: tuple = (5.0, 0.002), niter: int = 3,
                   min_snr: float = 10.0, slope=None, good=None):
    """Model of a static frame: the local profile predicted along dispersion times the local flux.

    Parameters
    ----------
    frame : ndarray, shape (ny, nx)
        Finite frame (fill bad pixels before).
    dispersion_axis : int
        Frame axis of the dispersion.
    filter_size : int
        Span along dispersion of the neighbours that predict a value
        (pixels, odd; see :func:`neighbour_median`).
    half_height : int
        Half-height ``h`` of the cross-dispersion box of the local flux.
    noise : ndarray, shape (ny, nx), optional
        Noise of ``frame``; with it, a pixel more than ``clip[0] * noise +
        clip[1] * |model|`` off the model, and the most deviant of its
        cross-dispersion box and dispersion neighbours, is replaced by its
        prediction from the rest of the box before the local flux and the
        profile are recomputed (``niter`` passes).
    clip : (float, float)
        Clipping limit: sigmas and fraction of the model (see ``noise``).
    niter : int
        Passes (the first one without clipping).
    min_snr : float
        With ``noise``: the profile model is used where the local flux is
        above ``min_snr`` times its noise and at least two neighbours have
        a local flux within a factor 4 of it, the frame's running median
        elsewhere. Each line's sky (:data:`SKY_PERCENTILE` across dispersion)
        is removed before the profile is formed.
    slope : ndarray, shape (ny, nx), optional
        Local trace direction at each pixel (cross-dispersion pixels per
        dispersion pixel, see :func:`trace_slopes`): the profile is then
        predicted from its neighbours along the trace, not along the line
        (:func:`neighbour_median`), which a steep trace crosses within a few
        pixels. Near the frame's ends and lines of reference pixels, where
        the boxes of a pixel and of its neighbours along the trace are cut
        differently, both boxes are then moved by the same lines
        (:func:`_shifted_profile`).
    good : ndarray of bool, shape (ny, nx), optional
        Light-sensitive pixels: the others (reference pixels, dark in real
        data) never predict a neighbour, and lines along dispersion that are
        mostly not light-sensitive are edges for the boxes (with ``slope``).

    Returns
    -------
    ndarray of float32, shape (ny, nx)
        The model; where the local flux is not significant (sky), the
        frame's running median along dispersion (it keeps steps).
    """
    f = np.asarray(disp_view(frame, dispersion_axis), np.float64)
    tilt = None if slope is None else np.asarray(disp_view(slope, dispersion_axis), np.float64)
    nz = None if noise is None else np.asarray(disp_view(noise, dispersion_axis), np.float64)
    plain = _line_median(f, filter_size)   # keeps steps (light onset, gaps)
    # the star's local profile: the sky (a low percentile of each line across dispersion)
    # would otherwise make the profile follow the spectrum where the two are comparable
    sky = np.percentile(f, SKY_PERCENTILE, axis=0, keepdims=True)
    g = f - sky
    model = plain - sky
    box = 2 * int(half_height) + 1
    floor = 0.0   # the local flux must be significant, or its ratio is noise
    if nz is not None:
        floor = min_snr * np.sqrt(uniform_filter1d(nz * nz, box, axis=0, mode="constant") * box)
    clipped = np.zeros(f.shape, bool)
    gc, pm, local, ok = g, None, None, None
    stencils = along_stencils(tilt, filter_size, f.shape)   # made once for all passes
    usable = None if good is None else np.asarray(disp_view(good, dispersion_axis), bool)
    whole = _whole_boxes(usable, f.shape[0], int(half_height)) if tilt is not None else None
    # lines whose neighbours' boxes an edge may cut: the trace's reach plus the four taps
    reach = 0 if tilt is None else int(np.ceil(np.nanmax(np.abs(tilt), initial=0) * (
        filter_size // 2))) + 2 + int(half_height)

    cache = {(0, f.shape[0]): stencils}   # stencils of line ranges: one per range

    def predict(q, sc, rows):
        if rows not in cache:
            cache[rows] = along_stencils(tilt[rows[0]:rows[1]], filter_size, q.shape)
        return neighbour_median(q, filter_size, scale=sc, stencils=cache[rows],
                                slope=None if tilt is None else tilt[rows[0]:rows[1]])

    for it in range(max(1, int(niter))):
        if it and nz is not None:
            # the local flux without the defects: a pixel off the model by more than the
            # limit, and the most deviant of its box and neighbours (a defect also moves
            # their model, by less), is from now on replaced by its prediction from the
            # rest of its box, pm * (local - itself) / (1 - pm) (pm * local when its box
            # was moved off it)
            dev = np.abs(gc - model) / (clip[0] * nz + clip[1] * np.abs(model + sky))
            clipped |= (dev > 1) & (dev >= maximum_filter(dev, (box, filter_size), mode="nearest"))
            with np.errstate(all="ignore"):
                pred = np.where(inbox, pm * (local - gc) / (1.0 - pm), pm * local)
            # (off the light, its running median along dispersion)
            gc = np.where(clipped, np.where(ok & (pm < 0.9), pred, model), g)
        local = uniform_filter1d(gc, box, axis=0, mode="constant") * box   # edges: fewer rows
        if whole is None:   # no steep trace: every box is cut alike along a line
            ok = (local > floor) if usable is None else (local > floor) & usable
            with np.errstate(all="ignore"):
                prof = np.where(ok, gc / np.where(ok, local, 1.0), 0.0)   # defects: predicted
            pm = predict(prof, np.where(ok, local, np.nan), (0, f.shape[0]))
            ok &= np.isfinite(pm)
            inbox = True
        else:
            pm, local, ok, inbox = _shifted_profile(gc, local, floor, whole, usable, predict,
                                                    int(half_height), reach)
        # a profile predicted from neighbours with similar light, else the plain median
        model = np.where(ok, pm * local, plain - sky)
    model = model + sky
    return np.ascontiguousarray(disp_view(model.astype(np.float32), dispersion_axis))


def reference_lines(good) -> np.ndarray:
    """Lines along dispersion that are reference pixels: more than half not light-sensitive.

    Single bad pixels do not make a line one; the frame's rows of reference pixels do.

    Parameters
    ----------
    good : ndarray of bool, shape (ny, nx)
        Light-sensitive pixels, dispersion along axis 1.

    Returns
    -------
    ndarray of bool, shape (ny,)

    Examples
    --------
    >>> import numpy as np
    >>> good = np.ones((6, 10), bool)
    >>> good[-2:] = False          # two reference rows
    >>> good[1, 3] = False         # one bad pixel
    >>> np.flatnonzero(reference_lines(good)).tolist()
    [4, 5]
    """
    return (~np.asarray(good, bool)).mean(axis=1) > 0.5


def _whole_boxes(good, ny: int, half: int):
    """Lines across dispersion whose box ``[y - half, y + half]`` is whole: inside the
    frame and off :func:`reference_lines`. None when no box is whole (a frame narrower
    than one box)."""
    out = np.zeros(ny, bool) if good is None else reference_lines(good)
    out = np.r_[np.ones(half, bool), out, np.ones(half, bool)]      # the frame's ends
    whole = np.convolve(out, np.ones(2 * half + 1), "valid") == 0
    return whole if whole.any() else None


def _shifted_profile(gc, local, floor, whole, good, predict, half: int, reach: int):
    """The local profile ``gc / L`` predicted from the neighbours (``predict(values, scale,
    rows)``), with boxes moved where an edge cuts them.

    A neighbour predicts only where its box is whole (:func:`_whole_boxes`) and it is
    light-sensitive. A pixel whose prediction fails that way (its box or its
    neighbours' cut by an edge within ``reach`` lines) moves its box and its neighbours'
    by the same ``s`` lines (smallest ``|s|`` first, up to ``half + 2`` so that the
    interpolation's four taps fit too): both then sum the same lines relative to
    themselves. Returns the predicted profile, the pixels' own (moved) local flux, where
    the model holds and where the pixel is in its own box.
    """
    ny = gc.shape[0]
    fl = np.broadcast_to(floor, gc.shape)
    lines = np.arange(ny)
    pm, own = np.full(gc.shape, np.nan), local.copy()
    near = np.convolve(~whole, np.ones(2 * reach + 1), "same") > 0   # lines by an edge
    shift = np.zeros(gc.shape, np.int8)
    for s in sorted(range(-half - 2, half + 3), key=abs):
        src = np.clip(lines + s, 0, ny - 1)
        moved = whole[src] & (lines + s >= 0) & (lines + s < ny)    # box moved by s whole
        todo = moved & (near | (s == 0)) & np.isnan(pm).any(axis=1)
        for a, b in (_runs(todo, reach) if s else [(0, ny)]) if todo.any() else []:
            loc_s = local[src[a:b]]
            # a neighbour off the light-sensitive region or with a cut box must not predict,
            # not even through the interpolation's taps: NaN scale; one with too little
            # light predicts a profile of 0 (sky), as in the flat case
            valid = moved[a:b, None] if good is None else moved[a:b, None] & good[a:b]
            ok_s = valid & (loc_s > fl[src[a:b]])
            with np.errstate(all="ignore"):
                prof = np.where(ok_s, gc[a:b] / np.where(ok_s, loc_s, 1.0), 0.0)   # defects: predicted
            p_s = predict(prof, np.where(valid, loc_s, np.nan), (a, b))
            take = np.isnan(pm[a:b]) & np.isfinite(p_s) & todo[a:b, None]
            pm[a:b][take], own[a:b][take] = p_s[take], loc_s[take]
            shift[a:b][take] = s
    return pm, own, (own > fl) & np.isfinite(pm), np.abs(shift) <= half


def _runs(mask, margin: int) -> list:
    """Line ranges ``(a, b)`` around the runs of ``mask``, widened by ``margin`` lines."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    out = []
    for a, b in zip(edges[::2], edges[1::2]):
        a, b = max(0, a - margin), min(mask.size, b + margin)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _quadratic_slope(y, span: int) -> np.ndarray:
    """Derivative of least-squares quadratics through ``span`` (odd) neighbouring values.

    Centred windows inside; the first and last ``span // 2`` values take the
    quadratic through the first or last ``span`` values (Savitzky-Golay, first
    derivative, with fitted ends; numpy only: ``scipy.signal`` costs ~0.5 s to import).
    On a centred window the quadratic term is orthogonal to the offsets, so the
    derivative is that of the straight-line fit, ``sum(k y_k) / sum(k^2)``.
    """
    h = span // 2
    k = np.arange(-h, h + 1, dtype=np.float64)
    out = np.empty(y.size)
    out[h:y.size - h] = np.correlate(y, k, mode="valid") / (k @ k)
    x = np.arange(span, dtype=np.float64)
    for part, at, sl in ((y[:span], x[:h], slice(0, h)), (y[-span:], x[span - h:], slice(-h, None))):
        c2, c1, _ = np.polyfit(x, part, 2)
        out[sl] = 2 * c2 * at + c1
    return out


def trace_slopes(shape, dispersion_axis: int, centres: dict, reach: float = 40.0,
                 smooth: int = 11) -> np.ndarray:
    """Local direction of the nearest trace at every pixel of a frame.

    Parameters
    ----------
    shape : tuple (ny, nx)
        Frame shape.
    dispersion_axis : int
        Frame axis of the dispersion.
    centres : dict
        order -> cross-dispersion centre per dispersion pixel (NaN where the
        order is off the frame), e.g. from
        :func:`tsocontainer.cleaning.background.trace_centres`.
    reach : float
        Pixels farther than this from every centre get slope 0.
    smooth : int
        Span (dispersion pixels, odd) of the local quadratic fits that give
        the centres' derivative (fitted traces carry noise).

    Returns
    -------
    ndarray of float64, shape (ny, nx)
        Cross-dispersion pixels per dispersion pixel of the nearest order's
        centre at that dispersion pixel.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(50.0)
    >>> s = trace_slopes((40, 50), 1, {1: 5 + 0.5 * x, 2: np.full(50, np.nan)})
    >>> round(float(s[15, 20]), 6), round(float(s[39, 0]), 6)   # on order 1; 34 px from it
    (0.5, 0.5)
    >>> float(trace_slopes((40, 50), 1, {1: 5 + 0.5 * x}, reach=20.0)[39, 0])
    0.0
    """
    n_cross, n_disp = (shape[0], shape[1]) if dispersion_axis == 1 else shape[::-1]
    best = np.full((n_cross, n_disp), np.inf)
    out = np.zeros((n_cross, n_disp))
    rows = np.arange(n_cross, dtype=np.float64)[:, None]
    for c in centres.values():
        c = np.asarray(c, np.float64)
        if c.shape != (n_disp,) or not np.isfinite(c).any():
            continue
        ok = np.isfinite(c)
        filled = np.interp(np.arange(n_disp), np.flatnonzero(ok), c[ok])
        span = min(int(smooth) | 1, (n_disp - 1) | 1 if n_disp > 1 else 1)
        if span >= 3:   # local quadratic fits: exact on a straight or bending trace
            grad = _quadratic_slope(filled, span)
        else:
            grad = np.gradient(filled) if n_disp > 1 else np.zeros(n_disp)
        dist = np.where(ok[None], np.abs(rows - c[None]), np.inf)
        near = (dist < best) & (dist <= reach)
        out = np.where(near, grad[None], out)
        best = np.where(near, dist, best)
    return np.ascontiguousarray(disp_view(out, dispersion_axis))
