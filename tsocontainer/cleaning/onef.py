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
* ``scale-achromatic``: the deep frame scaled by the smoothed white-light
  curve is subtracted first, then the masked median of the residual
  (exoTEDRF's scale-achromatic);
* ``scale-chromatic``: the same with a light curve per dispersion bin
  (exoTEDRF's scale-chromatic, with light curves measured from the data);
* ``solve``: per line, weighted least squares ``d = a * deep + c`` over all
  good pixels (trace included); ``c`` is the offset (exoTEDRF's solve).
"""
from __future__ import annotations

import logging

import numpy as np

from tsocontainer.cleaning.background import line_median
from tsocontainer.arrays.numerics import _sigma, block_ranges, run_blocks, running_median
from tsocontainer._util import check_option
from tsocontainer.arrays.numerics import disp_view as _disp_view

__all__ = ["ONEF_METHODS", "onef_offsets", "chromatic_light_curves", "apply_onef", "onef_points",
           "background_line_series", "line_psd", "onef_psd"]

log = logging.getLogger(__name__)

ONEF_METHODS = ("median", "masked-median", "scale-achromatic", "scale-chromatic", "solve")


def _lines(arr, onef_axis):
    """Broadcast ``(n, nlines)`` to a cube: lines are constant along ``onef_axis``."""
    return arr[:, None, :] if onef_axis == 0 else arr[:, :, None]


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


def onef_offsets(method, cube, var, good, band, onef_axis, deep=None, scale=None,
                 dispersion_axis=1):
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

    Returns
    -------
    offsets, offsets_var : ndarray of float32, shape (n, nlines)
    """
    check_option(method, ONEF_METHODS, "1/f method")
    use = good & np.isfinite(cube)
    if method == "solve":
        return _solve(cube, var, use, np.nan_to_num(deep), onef_axis)
    if method != "median":
        use = use & ~band[None]
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
