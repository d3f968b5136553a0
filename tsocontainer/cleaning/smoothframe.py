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

from tsocontainer.arrays.numerics import disp_view, dispersion_median

__all__ = ["profile_smooth", "neighbour_median", "edge_line_median"]


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


def neighbour_median(p, window: int, scale=None, max_ratio: float = 4.0) -> np.ndarray:
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

    Returns
    -------
    ndarray of float64, shape (ny, m)
    """
    from tsocontainer.arrays.numerics import window_median

    half = max(1, int(window) // 2)
    p = np.asarray(p, np.float64)
    m = p.shape[-1]
    if m < 2 * half + 1:
        return dispersion_median(p, window)
    out = np.empty_like(p)
    inner = slice(half, m - half)
    ks = [k for k in range(-half, half + 1) if k]
    shifted = [p[:, half + k:m - half + k] for k in ks]
    out[:, inner] = window_median(shifted)
    out[:, :half], out[:, -half:] = edge_line_median(p, half)
    if scale is not None:
        sc = np.asarray(scale, np.float64)
        mid = sc[:, inner]
        with np.errstate(all="ignore"):
            usable = np.stack([(sc[:, half + k:m - half + k] < max_ratio * mid)
                               & (sc[:, half + k:m - half + k] > mid / max_ratio) for k in ks])
        n_use = usable.sum(axis=0)
        # a line through two or three noisy neighbours extrapolates badly
        need = min(len(ks), max(2, half))
        fix = n_use < len(ks)
        out[:, inner][fix & (n_use < need)] = np.nan
        fit = fix & (n_use >= need)
        if fit.any():
            vals = np.stack(shifted)[:, fit]
            vals[~usable[:, fit]] = np.nan
            out[:, inner][fit] = _theil_sen_at_zero(np.asarray(ks, np.float64), vals)
    return out


def _theil_sen_at_zero(k, vals) -> np.ndarray:
    """Theil-Sen line through the finite ``vals`` (n, npix) at offsets ``k``, evaluated at 0.

    NaN where fewer than two values are finite.
    """
    import warnings

    i, j = np.triu_indices(k.size, 1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns give NaN
        slope = np.nanmedian((vals[j] - vals[i]) / (k[j] - k[i])[:, None], axis=0)
        return np.nanmedian(vals - slope[None] * k[:, None], axis=0)


def _line_median(p, window: int) -> np.ndarray:
    """Running median along the last axis (value included) with straight-line ends."""
    half = int(window) // 2
    out = dispersion_median(np.asarray(p, np.float64), window)
    if half and p.shape[-1] >= 2 * half + 1:
        out[:, :half], out[:, -half:] = edge_line_median(p, half)
    return out


def profile_smooth(frame, dispersion_axis: int = 1, filter_size: int = 7, half_height: int = 3,
                   noise=None, clip: float = 5.0, clip_rel: float = 0.002, niter: int = 3,
                   min_snr: float = 10.0, sky_percentile: float = 25.0):
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
        Noise of ``frame``; with it, a pixel more than ``clip * noise +
        clip_rel * |model|`` off the model, and the most deviant of its
        cross-dispersion box and dispersion neighbours, is replaced by its
        prediction from the rest of the box before the local flux and the
        profile are recomputed (``niter`` passes).
    clip, clip_rel : float
        Clipping limit (see ``noise``).
    niter : int
        Passes (the first one without clipping).
    min_snr : float
        With ``noise``: the profile model is used where the local flux is
        above ``min_snr`` times its noise and at least two neighbours have
        a local flux within a factor 4 of it, the frame's running median
        elsewhere.

    sky_percentile : float
        Percentile across dispersion taken as each line's sky, removed before
        the profile is formed (the traces must cover less than the rest).

    Returns
    -------
    ndarray of float32, shape (ny, nx)
        The model; where the local flux is not significant (sky), the
        frame's running median along dispersion (it keeps steps).
    """
    f = np.asarray(disp_view(frame, dispersion_axis), np.float64)
    nz = None if noise is None else np.asarray(disp_view(noise, dispersion_axis), np.float64)
    plain = _line_median(f, filter_size)   # keeps steps (light onset, gaps)
    # the star's local profile: the sky (a low percentile of each line across dispersion)
    # would otherwise make the profile follow the spectrum where the two are comparable
    sky = np.percentile(f, sky_percentile, axis=0, keepdims=True)
    g = f - sky
    model = plain - sky
    box = 2 * int(half_height) + 1
    floor = 0.0   # the local flux must be significant, or its ratio is noise
    if nz is not None:
        floor = min_snr * np.sqrt(uniform_filter1d(nz * nz, box, axis=0, mode="constant") * box)
    clipped = np.zeros(f.shape, bool)
    gc, pm, local, ok = g, None, None, None
    for it in range(max(1, int(niter))):
        if it and nz is not None:
            # the local flux without the defects: a pixel off the model by more than the
            # limit, and the most deviant of its box and neighbours (a defect also moves
            # their model, by less), is from now on replaced by its prediction from the
            # rest of its box, pm * (local - itself) / (1 - pm)
            dev = np.abs(gc - model) / (clip * nz + clip_rel * np.abs(model + sky))
            clipped |= (dev > 1) & (dev >= maximum_filter(dev, (box, filter_size), mode="nearest"))
            with np.errstate(all="ignore"):
                pred = pm * (local - gc) / (1.0 - pm)
            # (off the light, its running median along dispersion)
            gc = np.where(clipped, np.where(ok & (pm < 0.9), pred, model), g)
        local = uniform_filter1d(gc, box, axis=0, mode="constant") * box   # edges: fewer rows
        ok = local > floor
        with np.errstate(all="ignore"):
            prof = np.where(ok, gc / np.where(ok, local, 1.0), 0.0)   # defects: predicted
        pm = neighbour_median(prof, filter_size, scale=np.where(ok, local, np.nan))
        # a profile predicted from neighbours with similar light, else the plain median
        ok &= np.isfinite(pm)
        model = np.where(ok, pm * local, plain - sky)
    model = model + sky
    return np.ascontiguousarray(disp_view(model.astype(np.float32), dispersion_axis))
