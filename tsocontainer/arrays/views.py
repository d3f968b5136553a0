"""Array views and helpers shared by every stage: orientation, windows, blocks, quiet medians.

Orientation: tracing and extraction work in the *dispersion-major* view of a
frame, where the last axis runs along the dispersion ("columns", ``x``) and
the axis before it across the dispersion ("rows", ``y``). Modes that disperse
along rows (MIRI LRS, ``dispersion_axis == 0``) are transposed by
:func:`dispersion_major` (a view, no copy).

Windows: :func:`window_rows` gives the rows and fractional-edge weights of a
window ``[centre - hw, centre + hw]`` per column; :func:`gather` reads values
at those rows (one flat ``take``).
"""
from __future__ import annotations

from tsocontainer._util import interactive

import numpy as np

__all__ = ["dispersion_major", "window_rows", "gather", "default_block_size", "progress_bar",
           "nanmedian_quiet", "nanmedian_short"]


def nanmedian_quiet(a, axis=None):
    """``np.nanmedian`` without the all-NaN-slice warning (those slices give NaN).

    The same values (:func:`nanmedian_short`), without ``warnings.catch_warnings``,
    which is not thread-safe: on the block runner's worker threads one thread's exit
    from it restores the filters while another is inside (under ``filterwarnings =
    error`` the other thread's warning then raises).

    Examples
    --------
    >>> nanmedian_quiet(np.array([[1.0, np.nan, 3.0], [np.nan] * 3]), axis=1)
    array([ 2., nan])
    >>> float(nanmedian_quiet(np.array([[4.0, np.nan], [1.0, 2.0]])))
    2.0
    """
    a = np.asarray(a)
    if axis is None:
        return nanmedian_short(a.reshape(-1))[()]
    return nanmedian_short(a, axis=axis)


def nanmedian_short(a, axis: int = -1):
    """``np.nanmedian`` along a short axis, by one sort (the same values, NaN where all-NaN).

    ``np.nanmedian`` goes through masked arrays for axes shorter than 600
    values, which is several times slower than sorting (NaN sort last) and
    picking the middle of the non-NaN values.

    Examples
    --------
    >>> a = np.array([[1.0, np.nan, 3.0, 2.0], [np.nan] * 4])
    >>> nanmedian_short(a, axis=1)
    array([ 2., nan])
    """
    s = np.sort(np.moveaxis(np.asarray(a), axis, -1), axis=-1)
    n = s.shape[-1] - np.count_nonzero(np.isnan(s), axis=-1)
    lo = np.take_along_axis(s, (np.maximum(n - 1, 0) // 2)[..., None], -1)[..., 0]
    hi = np.take_along_axis(s, np.minimum(n // 2, max(s.shape[-1] - 1, 0))[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", over="ignore"):
        med = (lo + hi) / 2
    return np.where(n > 0, med, np.nan).astype(med.dtype, copy=False)


def dispersion_major(array, dispersion_axis: int):
    """View of ``array`` (``(..., ny, nx)``) with the dispersion along the last axis.

    Parameters
    ----------
    array : ndarray
        Frame or cube in detector orientation.
    dispersion_axis : int
        Frame axis along which wavelength changes (1: columns, 0: rows).

    Returns
    -------
    ndarray
        ``array`` itself or its last two axes swapped (a view, no copy).
    """
    if dispersion_axis not in (0, 1):
        raise ValueError(f"dispersion_axis must be 0 or 1, got {dispersion_axis!r}")
    return array if dispersion_axis == 1 else np.swapaxes(array, -1, -2)


def window_rows(centre, halfwidth, ny: int):
    """Rows and fractional weights of the window ``[centre - hw, centre + hw]``.

    Pixel ``r`` spans ``[r - 0.5, r + 0.5]``; its weight is the length of its
    overlap with the window (1 inside, fractional at the edges, 0 outside or
    off the detector, or where ``centre`` is not finite).

    Parameters
    ----------
    centre : array_like, shape (..., nx)
        Window centres (row coordinate) per column.
    halfwidth : float or array_like broadcastable to ``centre``
        Window half-width (px).
    ny : int
        Number of rows of the frame.

    Returns
    -------
    rows : ndarray of intp, shape (..., K, nx)
        Row indices (clipped into the frame).
    weights : ndarray of float, shape (..., K, nx)
    """
    centre = np.asarray(centre, dtype=float)
    hw = np.broadcast_to(np.asarray(halfwidth, dtype=float), centre.shape)
    ok = np.isfinite(centre) & np.isfinite(hw)
    c = np.where(ok, centre, -1e6)
    k = int(np.ceil(2 * np.nanmax(hw, initial=0.0))) + 2
    lo, hi = c - hw, c + hw
    first = np.floor(lo + 0.5)
    shape = centre.shape[:-1] + (k, centre.shape[-1])
    w, rows = np.empty(shape), np.empty(shape, np.intp)
    ifirst = first.astype(np.intp)      # whole numbers: first + offset exactly
    # one offset at a time (frame-sized temporaries stay in cache). Row 0 is
    # min(r + .5, hi) - max(r - .5, lo); from row 1 on r - .5 > lo, so the same
    # arithmetic is min(r + .5, hi) - (r - .5), i.e. hi - (r - .5) clipped at 1
    # (bit for bit: r +- .5 are exact)
    np.subtract(np.minimum(first + 0.5, hi), np.maximum(first - 0.5, lo), out=w[..., 0, :])
    for j in range(k):
        wj, rj = w[..., j, :], rows[..., j, :]
        if j:
            np.subtract(hi, first + (j - 0.5), out=wj)
        np.clip(wj, 0.0, 1.0, out=wj)
        np.add(ifirst, j, out=rj)
        wj *= (rj >= 0) & (rj <= ny - 1)
        np.clip(rj, 0, ny - 1, out=rj)
    return rows, w


def gather(frames, rows):
    """Values of ``frames`` (``(..., ny, nx)``) at ``rows`` (``(..., K, nx)``).

    Leading axes broadcast (a 2D frame can be gathered at per-integration
    rows). C-contiguous inputs use one flat ``take`` (much faster than
    ``take_along_axis``).
    """
    frames = np.asarray(frames)
    ny, nx = frames.shape[-2:]
    if frames.flags.c_contiguous and frames.ndim <= 3 and rows.ndim <= 3:
        flat = np.multiply(rows, nx, dtype=np.intp)   # flat indices built in place
        flat += np.arange(nx)
        if frames.ndim == 3:
            nb = frames.shape[0]
            start = (np.arange(nb) * (ny * nx)).reshape(nb, 1, 1)
            if rows.ndim == 2:
                flat = flat + start
            elif rows.shape[0] != nb:
                raise ValueError(f"cannot gather {rows.shape} rows from {frames.shape} frames")
            else:
                flat += start
        return np.take(frames.ravel(), flat)
    if rows.ndim < frames.ndim:
        rows = rows.reshape((1,) * (frames.ndim - rows.ndim) + rows.shape)
    elif frames.ndim < rows.ndim:
        frames = frames.reshape((1,) * (rows.ndim - frames.ndim) + frames.shape)
    return np.take_along_axis(frames, rows, axis=-2)



def progress_bar(total, desc, progress):
    """A tqdm bar over integrations, shown when ``progress`` (default: a terminal or notebook)."""

    from tqdm import tqdm

    show = interactive() if progress is None else bool(progress)
    return tqdm(total=total, desc=desc, unit="int", disable=not show, leave=False)


def default_block_size(shape, megabytes: float = 64.0) -> int:
    """Integrations per block so that one float32 block is about ``megabytes``."""
    return int(max(1, min(shape[0], megabytes * 2**20 // (4 * shape[1] * shape[2]))))


