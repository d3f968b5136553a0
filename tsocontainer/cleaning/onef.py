"""1/f noise correction at the integration level, along the mode's readout axis.

1/f noise is (nearly) constant along the fast-read direction, so it is an
offset per integration and *line* (a column for SOSS and NIRSpec, a row for
NIRCam and MIRI: ``mode.spec.onef_axis``). Every method estimates these
offsets, an array ``(N, nlines)`` stored in the group's ``aux["onef"]`` and
subtracted by :func:`apply_onef` when the working data are made; ``sci`` is
never changed.

Methods:

* ``median``: median of all good pixels of the line (the JWebbinar
  notebook's column median; it also removes any sky level and, where the
  trace fills much of a line, biases the trace flux);
* ``masked-median``: the same with the trace masked (a band of ``width``
  pixels around the fitted or nominal trace);
* ``scale-achromatic``: the deep frame scaled by the smoothed light curve
  is subtracted first, then the masked median of the residual (exoTEDRF's
  scale-achromatic). The curve must be the *star's*: with the plain white
  light, light that does not transit dilutes it (a fraction ``r``), and the
  residual of a background pixel of level ``D`` then holds ``-r D (1 - L)``
  -- the offsets see the transit, and the depth of a box of ``n`` pixels
  with starlight ``S`` is off by ``r n D / S`` of itself (on a scene built
  from a real SOSS frame, with the wing-biased sky of the data/model ratio:
  up to 300 ppm). With ``star_model="reference"``, :func:`clean_light_curves`
  measures the star's curve in the trace band with each line's background
  median removed -- whatever leftover background is uniform along a line
  then transits with the star in the corrected data and leaves the depth
  alone -- and the frame it scales is :func:`reference_frame`, the mean of
  the frames divided by that curve (a median over evenly spaced frames mixes
  in the transit and its per-pixel noise leaks into the offsets);
* ``scale-chromatic``: the same with a light curve per dispersion bin
  (exoTEDRF's scale-chromatic, with light curves measured from the data).
  With ``star_model="reference"`` the curves are measured, cleaned as above,
  in the first order's band alone -- the extraction box -- so each line's
  star model follows the box's own transit: leftover sky then cancels in the
  depth exactly, where the white light leaves the chromatic part (the leftover
  times the difference between the box's depth and the white light's: tens of
  ppm when 1/f noise leaves the sky scale uncertain by tens of per cent);
* ``solve``: per line, weighted least squares ``d = a * deep + c`` over all
  good pixels (trace included); ``c`` is the offset (exoTEDRF's solve).
"""
from __future__ import annotations

import logging

import numpy as np

from tsocontainer.cleaning.background import line_median
from tsocontainer.arrays.numerics import THREADS, _sigma, block_ranges, run_blocks, running_median
from tsocontainer._util import check_option
from tsocontainer.arrays.numerics import disp_view as _disp_view

__all__ = ["ONEF_METHODS", "onef_offsets", "chromatic_light_curves", "clean_light_curves",
           "reference_frame",
           "apply_onef", "onef_points", "background_line_series", "line_psd", "onef_psd"]

log = logging.getLogger(__name__)

ONEF_METHODS = ("median", "masked-median", "scale-achromatic", "scale-chromatic", "solve")


def _lines(arr, onef_axis):
    """Broadcast ``(n, nlines)`` to a cube: lines are constant along ``onef_axis``."""
    return arr[:, None, :] if onef_axis == 0 else arr[:, :, None]


def line_pixels(good, base, outside, onef_axis, min_fraction: float = 0.5):
    """Background pixels of every integration and line, robust to wholesale flags.

    ``good & outside``; but where a line keeps fewer than ``min_fraction`` of
    the pixels it has under ``base & outside`` (the static good pixels), the
    flags of that integration hit the whole line -- a large 1/f offset taken
    for outliers -- and the line falls back to ``base & outside`` (its median
    is robust to the few real outliers).

    Parameters
    ----------
    good : ndarray of bool, shape (n, ny, nx)
        Usable pixels (step flags included).
    base : ndarray of bool, shape (ny, nx) or (n, ny, nx)
        Static good pixels.
    outside : ndarray of bool, shape (ny, nx)
        Background region (outside the trace band).
    onef_axis : int
        Frame axis along which 1/f is constant.
    min_fraction : float
        Smallest kept fraction before the fallback.

    Returns
    -------
    ndarray of bool, shape (n, ny, nx)

    Examples
    --------
    >>> good = np.ones((2, 4, 3), bool); good[1, :, 0] = False   # a whole line flagged
    >>> line_pixels(good, np.ones((4, 3), bool), np.ones((4, 3), bool), 0)[:, :, 0].all()
    np.True_
    """
    use = good & outside[None]
    ref = np.broadcast_to(base & outside, good.shape)
    red = 1 if onef_axis == 0 else 2
    low = use.sum(axis=red) < min_fraction * ref.sum(axis=red)
    if not low.any():
        return use
    return np.where(_lines(low, onef_axis), ref, use)


def chromatic_light_curves(cube, deep, band, dispersion_axis=1, bin_size=16, window=11):
    """Light curve per dispersion pixel, from the trace, binned and smoothed in time.

    Parameters
    ----------
    cube : ndarray or block source, shape (N, ny, nx)
        Data (sliced as ``cube[a:b]``).
    deep : ndarray, shape (ny, nx)
        Deep frame.
    band : ndarray of bool, shape (ny, nx)
        Trace aperture.
    dispersion_axis : int
        0 or 1.
    bin_size : int
        Dispersion pixels per bin.
    window : int
        Running-median length in time.

    Returns
    -------
    ndarray of float32, shape (N, ndisp)
        Flux of each bin relative to the deep frame.
    """
    b = _disp_view(band, dispersion_axis)
    m = _disp_view(np.nan_to_num(deep), dispersion_axis)
    n, ndisp = cube.shape[0], b.shape[1]
    flux = np.empty((n, ndisp), np.float64)
    bf = b.astype(np.float32)

    def work(a, c):
        blk = np.nan_to_num(_disp_view(np.asarray(cube[a:c]), dispersion_axis))
        flux[a:c] = np.einsum("icl,cl->il", blk, bf)

    run_blocks(work, block_ranges(n, 8), "chromatic light curves")
    ref = (m * b).sum(axis=0)
    nb = max(1, ndisp // bin_size)
    edges = np.linspace(0, ndisp, nb + 1).round().astype(int)
    fb = np.add.reduceat(flux, edges[:-1], axis=1)
    rb = np.add.reduceat(ref, edges[:-1])
    with np.errstate(all="ignore"):
        lc = np.where(rb > 0, fb / rb, 1.0)
    if window > 1 and n > 2:
        lc = running_median(lc, window)
    return np.repeat(lc, np.diff(edges), axis=1).astype(np.float32)


def clean_light_curves(cube, good, band, onef_axis, dispersion_axis=1, bin_size=None,
                       window: int = 1, base=None):
    """The star's light curve(s): trace-band flux minus each line's background median.

    Per integration, the median of the good pixels outside ``band`` of every
    detector line (along ``onef_axis``) is subtracted from that line's band
    pixels before they are summed. The median holds the line's sky, its 1/f
    offset and the star's far wings (which transit with it), so the sum is
    proportional to the star's own light curve: neither the sky (which would
    dilute the transit) nor 1/f noise (~0.4 % per integration on a SOSS
    white light with 1.4 DN/s column offsets) gets in.

    Parameters
    ----------
    cube : ndarray or block source, shape (N, ny, nx)
        Data (sliced ``cube[a:b]``).
    good : ndarray or block source of bool, shape (N, ny, nx)
        Usable pixels.
    band : ndarray of bool, shape (ny, nx)
        Trace band.
    onef_axis : int
        Frame axis along which 1/f is constant.
    dispersion_axis : int
        0 or 1 (for ``bin_size``).
    bin_size : int, optional
        None: one curve (the white light); else one curve per bin of
        ``bin_size`` dispersion pixels, repeated over its pixels.
    window : int
        Running-median length applied to the curves (1: none).
    base : ndarray of bool, shape (ny, nx), optional
        Static good pixels: lines whose background is mostly flagged fall back
        to them (:func:`line_pixels`).

    Returns
    -------
    ndarray of float64, shape (N,) or (N, ndisp)
        Each curve normalised to its median (ones without flux).

    Examples
    --------
    >>> cube = np.ones((4, 6, 3)); cube[:, 2:4] += 10.0; cube[2] *= 0.5
    >>> cube += np.arange(4)[:, None, None] * 0.1          # a 1/f-like offset per frame
    >>> band = np.zeros((6, 3), bool); band[2:4] = True
    >>> np.round(clean_light_curves(cube, np.ones(cube.shape, bool), band, 0), 6).tolist()
    [1.0, 1.0, 0.5, 1.0]
    """
    n = cube.shape[0]
    outside = ~np.asarray(band, bool)
    flux = np.zeros((n, _disp_view(band, dispersion_axis).shape[1]))

    def work(a, b):
        d = np.asarray(cube[a:b], np.float32)
        fin = np.isfinite(d)
        g = np.asarray(good[a:b], bool) & fin
        bg = g & outside[None] if base is None else line_pixels(g, base & fin, outside, onef_axis)
        med, _ = line_median(d, bg, onef_axis)
        resid = np.where(g & band[None], d - _lines(np.nan_to_num(med), onef_axis), 0)
        flux[a:b] = _disp_view(resid, dispersion_axis).sum(axis=1, dtype=np.float64)

    run_blocks(work, block_ranges(n, 8), "clean light curves")
    if bin_size is None:
        curves, widths = flux.sum(axis=1, keepdims=True), None
    else:
        nb = max(1, flux.shape[1] // int(bin_size))
        edges = np.linspace(0, flux.shape[1], nb + 1).round().astype(int)
        curves, widths = np.add.reduceat(flux, edges[:-1], axis=1), np.diff(edges)
    med = np.median(curves, axis=0)
    with np.errstate(all="ignore"):
        curves = np.where(med > 0, curves / np.where(med > 0, med, 1.0), 1.0)
    if window > 1 and n > 2:
        curves = running_median(curves, window)
    return curves[:, 0] if widths is None else np.repeat(curves, widths, axis=1)


def reference_frame(cube, good, wl, fraction: float = 1.0, dispersion_axis: int = 1):
    """Mean frame of the star per unit light curve: the mean of ``cube[i] / wl[i]``.

    Over the integrations with ``wl`` at or above its ``1 - fraction``
    quantile (all by default), each pixel's good values divided by the
    light curve are averaged; ``frame * wl[i]`` is then the star model of
    integration ``i``. A *median* frame over evenly spaced integrations (the
    ``deep`` model) mixes in-transit values non-linearly and its per-pixel
    noise, times the transit, leaks into medians of background pixels (on a
    SOSS scene: +0.005 DN/s per column in transit, 30 ppm of depth); the mean
    is linear, and it keeps only ``1/N`` of the 1/f pattern's power.

    Parameters
    ----------
    cube : ndarray or block source, shape (N, ny, nx)
        Data (sliced ``cube[a:b]``).
    good : ndarray or block source of bool, shape (N, ny, nx)
        Usable values.
    wl : ndarray, shape (N,) or (N, ndisp)
        The star's light curve (or one per dispersion pixel).
    fraction : float
        Fraction of the integrations used (the brightest in the mean curve).
    dispersion_axis : int
        0 or 1 (for curves per dispersion pixel).

    Returns
    -------
    frame : ndarray of float32, shape (ny, nx)
        NaN where a pixel has no good value.
    used : ndarray of bool, shape (N,)
        The integrations averaged.

    Examples
    --------
    >>> wl = np.array([1.0, 1.0, 0.98, 1.0])
    >>> cube = 10.0 * wl[:, None, None] * np.ones((4, 2, 2))
    >>> frame, used = reference_frame(cube, np.ones(cube.shape, bool), wl)
    >>> np.round(frame, 5).tolist(), int(used.sum())
    ([[10.0, 10.0], [10.0, 10.0]], 4)
    """
    wl = np.asarray(wl, np.float64)
    level = wl if wl.ndim == 1 else wl.mean(axis=1)
    used = level >= np.quantile(level, 1.0 - fraction) if fraction < 1 else np.ones(level.size,
                                                                                    bool)
    idx = np.flatnonzero(used & (level > 0))
    if wl.ndim == 1:
        def per(sel):
            return wl[sel, None, None]
    else:
        def per(sel):
            w = np.where(wl[sel] > 0, wl[sel], np.nan)
            return w[:, None, :] if dispersion_axis == 1 else w[:, :, None]
    total = np.zeros(cube.shape[1:])
    count = np.zeros(cube.shape[1:])
    groups = [idx[a:a + 8] for a in range(0, idx.size, 8)]

    def part(k, _):   # sums of one group of 8 integrations
        sel = groups[k]
        d = np.asarray(_rows_of(cube, sel), np.float64)
        g = np.asarray(_rows_of(good, sel), bool) & np.isfinite(d)
        q = d / per(sel)
        g &= np.isfinite(q)
        return np.where(g, q, 0.0).sum(axis=0), g.sum(axis=0)

    # groups in parallel, a wave of THREADS at a time, added in their order (the same sums)
    for w in range(0, len(groups), THREADS):
        for t, c in run_blocks(part, [(k, k + 1) for k in range(w, min(w + THREADS, len(groups)))],
                               "reference frame"):
            total += t
            count += c
    with np.errstate(all="ignore"):
        frame = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return frame.astype(np.float32), used


def _rows_of(cube, sel):
    """``cube`` at the integrations ``sel``: one slice when they are consecutive."""
    if sel.size and sel[-1] - sel[0] == sel.size - 1:
        return np.asarray(cube[int(sel[0]):int(sel[-1]) + 1])
    return np.concatenate([np.asarray(cube[i:i + 1]) for i in sel])


def onef_offsets(method, cube, var, good, band, onef_axis, deep=None, scale=None,
                 dispersion_axis=1, base=None):
    """1/f offset of every integration and line of a block.

    Parameters
    ----------
    method : str
        One of :data:`ONEF_METHODS`.
    cube, var : ndarray, shape (n, ny, nx)
        Data (with the corrections made before 1/f) and variance.
    good : ndarray of bool, shape (n, ny, nx)
        Usable pixels.
    band : ndarray of bool, shape (ny, nx)
        Trace region, masked by all methods except ``median`` and ``solve``.
    onef_axis : int
        Frame axis along which 1/f is constant.
    deep : ndarray, shape (ny, nx), optional
        Deep frame (``scale-*``, ``solve``).
    scale : ndarray, shape (n,) or (n, ndisp), optional
        Light curve of the block (``scale-achromatic``: white light;
        ``scale-chromatic``: per dispersion pixel).
    dispersion_axis : int
        0 or 1.
    base : ndarray of bool, shape (ny, nx), optional
        Static good pixels: a line whose background pixels are mostly flagged
        in an integration uses them instead (:func:`line_pixels`); without
        it, such a line has too few pixels and its offset may be 0.

    Returns
    -------
    offsets, offsets_var : ndarray of float32, shape (n, nlines)
    """
    check_option(method, ONEF_METHODS, "1/f method")
    use = good & np.isfinite(cube)
    if method == "solve":
        return _solve(cube, var, use, np.nan_to_num(deep), onef_axis)
    if method != "median":
        use = (use & ~band[None] if base is None else
               line_pixels(use, base & np.isfinite(cube), ~band, onef_axis))
    if method.startswith("scale"):
        deep = np.nan_to_num(deep)
        if scale.ndim == 1:
            model = scale.astype(np.float32)[:, None, None] * deep[None]
        else:
            s = scale.astype(np.float32)
            model = (s[:, None, :] if dispersion_axis == 1 else s[:, :, None]) * deep[None]
        resid = cube - model
    else:
        resid = cube
    off, count = line_median(resid, use, onef_axis)
    red = 1 if onef_axis == 0 else 2
    v = np.where(use, var, 0)
    with np.errstate(all="ignore"):
        ovar = np.pi / 2 * v.sum(axis=red, dtype=np.float64) / np.maximum(count, 1) ** 2
    return np.nan_to_num(off), np.where(count > 0, ovar, 0).astype(np.float32)


def _solve(cube, var, use, deep, onef_axis):
    red = 1 if onef_axis == 0 else 2
    w = np.where(use, 1.0 / _sigma(var) ** 2, 0).astype(np.float64)
    m = deep[None].astype(np.float64)
    d = np.where(use, cube, 0).astype(np.float64)
    sw = w.sum(red)
    swm = (w * m).sum(red)
    swmm = (w * m * m).sum(red)
    swd = (w * d).sum(red)
    swmd = (w * m * d).sum(red)
    det = sw * swmm - swm ** 2
    with np.errstate(all="ignore"):
        c = np.where(det > 0, (swmm * swd - swm * swmd) / det, 0)
        cvar = np.where(det > 0, swmm / det, 0)
    return c.astype(np.float32), cvar.astype(np.float32)


def apply_onef(model, data, var, i0, i1) -> None:
    """Working-data correction ``onef``: subtract the stored offsets, add their variance.

    Parameters
    ----------
    model : CorrectionModel
        ``aux["onef"]``, ``aux["onef_var"]``, ``meta["ONEFAXIS"]``.
    data : ndarray, shape (i1 - i0, ny, nx)
        Block edited in place.
    var : ndarray or None
        Its variance, edited in place (skipped if None).
    i0, i1 : int
        Integration range of the block.
    """
    if "onef" not in model.aux:
        return
    axis = int(model.meta.get("ONEFAXIS", 0))
    data -= _lines(model.aux["onef"][i0:i1], axis)
    if var is not None:
        var += _lines(model.aux["onef_var"][i0:i1], axis)


def onef_points(model, ints, pix):
    """The stored 1/f offsets at integrations ``ints`` and flat pixel indices ``pix``.

    Parameters
    ----------
    model : CorrectionModel
        The 1/f model.
    ints, pix : ndarray of int
        Integration indices and flat pixel indices ``y * nx + x``.

    Returns
    -------
    ndarray of float32
    """
    y, x = np.divmod(pix, model.sh[1])
    line = x if int(model.meta.get("ONEFAXIS", 0)) == 0 else y
    return model.aux["onef"][ints, line]


def background_line_series(cube, good, band, onef_axis):
    """Mean of the background pixels of every line, minus each integration's mean.

    Parameters
    ----------
    cube : ndarray, shape (n, ny, nx)
        Data.
    good : ndarray of bool, broadcastable to ``cube``
        Usable pixels.
    band : ndarray of bool, shape (ny, nx)
        Trace region (excluded).
    onef_axis : int
        Frame axis along which 1/f is constant.

    Returns
    -------
    ndarray of float64, shape (n, nlines)
        Zero where a line has no background pixel.
    """
    use = np.broadcast_to(good, cube.shape) & ~band[None] & np.isfinite(cube)
    red = 1 if onef_axis == 0 else 2
    s = np.where(use, cube, 0).sum(axis=red, dtype=np.float64)
    k = use.sum(axis=red)
    with np.errstate(all="ignore"):
        mean = np.where(k > 0, s / k, np.nan)
    mean -= np.nanmean(mean, axis=1, keepdims=True)
    return np.nan_to_num(mean)


def line_psd(series):
    """Mean power spectrum (over integrations) of line series ``(n, nlines)``.

    Parameters
    ----------
    series : ndarray, shape (n, nlines)
        From :func:`background_line_series`.

    Returns
    -------
    freq : ndarray
        Frequency (cycles per line).
    power : ndarray
        Mean ``|FFT|^2 / nlines`` (its sum over all frequencies is the variance
        of the series between lines, by Parseval).
    """
    nl = series.shape[1]
    f = np.fft.rfft(series, axis=1)
    power = (np.abs(f) ** 2).mean(axis=0) / nl
    return np.fft.rfftfreq(nl), power


def onef_psd(before, after, good, band, onef_axis: int = 0):
    """PSD of the background line means of frames before and after a 1/f correction.

    Parameters
    ----------
    before : ndarray, shape (n, ny, nx)
        Frames without the 1/f correction.
    after : ndarray or None
        The same frames with it.
    good : ndarray of bool, shape (n, ny, nx)
        Usable pixels.
    band : ndarray of bool, shape (ny, nx)
        Trace region excluded.
    onef_axis : int
        Frame axis along which 1/f is constant.

    Returns
    -------
    freq, p_before, p_after : ndarray
        ``p_after`` is None when ``after`` is None.
    """
    freq, p0 = line_psd(background_line_series(before, good, band, onef_axis))
    p1 = None
    if after is not None:
        p1 = line_psd(background_line_series(after, good, band, onef_axis))[1]
    return freq, p0, p1
