"""Shared machinery of tracing and extraction: orientation, windows, blocks, reference frames.

Orientation: tracing and extraction work in the *dispersion-major* view of a
frame, where the last axis runs along the dispersion ("columns", ``x``) and
the axis before it across the dispersion ("rows", ``y``). Modes that disperse
along rows (MIRI LRS, ``dispersion_axis == 0``) are transposed here, once, by
:func:`dispersion_major` (a view, no copy).

Windows: :func:`window_rows` gives the rows and fractional-edge weights of a
window ``[centre - hw, centre + hw]`` per column; :func:`gather` reads values
at those rows (one flat ``take``).

Blocks: :func:`iter_blocks` yields a group's working data block by block of
integrations; :func:`reference_frames` builds the visit-average frame and
variance frame used as trace reference, extraction profile and weights.
"""
from __future__ import annotations

import logging

import numpy as np

from ._util import check_option  # noqa: F401  (re-exported for the extraction modules)

__all__ = ["check_option", "dispersion_major", "window_rows", "gather", "default_block_size",
           "iter_blocks", "reference_frames", "nanmedian_quiet"]

log = logging.getLogger(__name__)




def nanmedian_quiet(a, axis=None):
    """``np.nanmedian`` without the all-NaN-slice warning (those slices give NaN)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=axis)


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
    lo, hi = (c - hw)[..., None, :], (c + hw)[..., None, :]
    first = np.floor(lo + 0.5)
    offs = np.arange(k, dtype=float)[:, None]
    rowf = first + offs
    w = np.minimum(rowf + 0.5, hi)
    w -= np.maximum(rowf - 0.5, lo)
    np.clip(w, 0.0, 1.0, out=w)
    w *= (rowf >= 0) & (rowf <= ny - 1)
    rows = first.astype(np.intp) + np.arange(k, dtype=np.intp)[:, None]
    np.clip(rows, 0, ny - 1, out=rows)
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
        flat = rows * nx + np.arange(nx)
        if frames.ndim == 3:
            nb = frames.shape[0]
            if rows.ndim == 2:
                flat = np.broadcast_to(flat, (nb,) + flat.shape)
            elif rows.shape[0] != nb:
                raise ValueError(f"cannot gather {rows.shape} rows from {frames.shape} frames")
            flat = flat + (np.arange(nb) * (ny * nx)).reshape(nb, 1, 1)
        return np.take(frames.ravel(), flat)
    if rows.ndim < frames.ndim:
        rows = rows.reshape((1,) * (frames.ndim - rows.ndim) + rows.shape)
    elif frames.ndim < rows.ndim:
        frames = frames.reshape((1,) * (rows.ndim - frames.ndim) + frames.shape)
    return np.take_along_axis(frames, rows, axis=-2)


# ------------------------------------------------------------------ blocks
def _progress(total, desc, progress):
    import sys

    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else bool(progress)
    return tqdm(total=total, desc=desc, unit="int", disable=not show, leave=False)


def default_block_size(shape, megabytes: float = 64.0) -> int:
    """Integrations per block so that one float32 block is about ``megabytes``."""
    return int(max(1, min(shape[0], megabytes * 2**20 // (4 * shape[1] * shape[2]))))


def iter_blocks(group, block_size: int | None = None, fill=None, desc: str = "",
                progress: bool | None = None, finite: bool = True, ranges=None):
    """Working data of ``group`` by blocks of integrations, dispersion-major.

    Parameters
    ----------
    group : TSOGroup
        The visit.
    block_size : int, optional
        Integrations per block (default: about 64 MB of float32 per block).
    fill : ndarray, shape (ny, nx) dispersion-major, optional
        Reference frame; bad pixels are replaced by it times the
        integration's white-light scale (in a copy).
    desc : str
        Progress-bar label.
    progress : bool, optional
        Show a tqdm bar (default: when stderr is a terminal).
    finite : bool
        Also mark non-finite data or variance as bad (else only ``group.mask``).
    ranges : sequence of (int, int), optional
        Integration ranges to visit (default: all, in blocks of ``block_size``).

    Yields
    ------
    i0, i1 : int
        Integration range.
    data, var : ndarray, shape (i1 - i0, ny', nx')
        Working data and variance (dispersion-major). Without corrections and
        without ``fill`` these are read-only views of ``group.sci``/``group.var``.
    good : ndarray of bool, same shape
        Usable pixels.
    """
    axis = _disp_axis(group)
    bs = block_size or default_block_size(group.shape)
    mask = group.mask
    if ranges is None:
        ranges = [(0, group.N)]
    blocks = [(a, min(b, a + bs)) for r0, r1 in ranges for a in range(r0, r1, bs)
              for b in (r1,)]
    with _progress(sum(b - a for a, b in blocks), desc, progress) as bar:
        for i0, i1 in blocks:
            if group.corrections:
                data, var = group.working_block(i0, i1)
            else:
                data, var = group.sci[i0:i1], group.var[i0:i1]
                if fill is not None:
                    data = data.copy()
            data, var = dispersion_major(data, axis), dispersion_major(var, axis)
            good = dispersion_major(mask[i0:i1], axis)
            if fill is not None:
                good = good & np.isfinite(data)
                _fill_bad(data, good, fill)
            elif finite:
                good = good & np.isfinite(data) & np.isfinite(var)
            yield i0, i1, data, var, good
            bar.update(i1 - i0)


def _fill_bad(data, good, fill) -> None:
    """Replace ``data[~good]`` by ``fill`` times each frame's white-light scale (in place)."""
    ref = np.nan_to_num(fill).astype(data.dtype)
    tot = np.add.reduce(data, axis=(1, 2), where=good, dtype=np.float64)
    rtot = np.add.reduce(np.broadcast_to(ref, data.shape), axis=(1, 2), where=good, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(rtot != 0, tot / rtot, 1.0)
    scale = np.where(np.isfinite(scale), scale, 1.0)
    idx = np.nonzero(~good)
    data[idx] = ref[idx[1], idx[2]] * scale[idx[0]].astype(data.dtype)


def _disp_axis(group) -> int:
    return group.mode.spec.dispersion_axis if group.mode is not None else 1


def reference_frames(group, block_size: int | None = None, nsigma: float = 6.0,
                     max_integrations: int = 128, progress: bool | None = None):
    """Visit-average frame and variance frame, dispersion-major, in two passes.

    Pass 1 takes the masked mean of the working data and of the variance;
    pass 2 repeats it without pixels deviating by more than ``nsigma`` from
    the mean scaled by the integration's white-light level (cosmic rays not
    flagged yet). Long visits use ``max_integrations`` of them, in 8
    contiguous chunks spread over the visit. The variance frame is noise-free
    enough to be used as weights.

    Parameters
    ----------
    group : TSOGroup
        The visit.
    block_size : int, optional
        Integrations per block.
    nsigma : float
        Clipping threshold of pass 2.
    max_integrations : int
        Largest number of integrations averaged.
    progress : bool, optional
        Show progress bars.

    Returns
    -------
    frame, var : ndarray of float64, shape (ny', nx')
        NaN where a pixel is never good.
    """
    ranges = None
    if group.N > max_integrations:
        length = max(1, max_integrations // 8)
        starts = np.linspace(0, group.N - length, 8).round().astype(int)
        ranges = [(int(a), int(a) + length) for a in np.unique(starts)]
    ref = vref = mean1 = None
    level = np.ones(group.N)
    for clip in (False, True):
        s = np.zeros(_dm_shape(group))
        sv = np.zeros_like(s)
        n = np.zeros_like(s)
        top = np.full(s.shape, -np.inf)
        tot = np.zeros(group.N)
        for i0, i1, data, v, good in iter_blocks(group, block_size, desc="reference frame",
                                                 progress=progress, ranges=ranges):
            if clip:
                scale = level[i0:i1].astype(np.float32)[:, None, None]
                resid = data - ref[None] * scale
                np.square(resid, out=resid)
                good = good & (resid <= (nsigma**2) * np.maximum(v, vref[None]))
            else:
                tot[i0:i1] = np.add.reduce(data, axis=(1, 2), where=good, dtype=np.float64)
                np.maximum(top, np.max(data, axis=0, where=good, initial=-np.inf), out=top)
            s += np.add.reduce(data, axis=0, where=good, dtype=np.float64)
            sv += np.add.reduce(v, axis=0, where=good, dtype=np.float64)
            n += good.sum(0)
        nmean = n
        if not clip:
            # pass 1 leaves out each pixel's largest value: one unflagged cosmic ray
            # cannot drag the reference that pass 2 clips against
            many = n > 2
            s = np.where(many, s - np.where(np.isfinite(top), top, 0.0), s)
            nmean = np.where(many, n - 1, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean, var = s / nmean, sv / n
        mean[n == 0] = np.nan
        var[n == 0] = np.nan
        if not clip:
            mean1, var1 = mean, var
            # white-light level of each integration relative to the mean frame
            ok = np.isfinite(tot) & (tot > 0)
            level = np.where(ok, tot / np.mean(tot[ok]) if ok.any() else 1.0, 1.0)
        ref, vref = np.nan_to_num(mean).astype(np.float32), np.nan_to_num(var).astype(np.float32)
    lost = ~np.isfinite(mean) & np.isfinite(mean1)
    mean[lost], var[lost] = mean1[lost], var1[lost]
    return mean, var


def _dm_shape(group):
    ny, nx = group.sh
    return (ny, nx) if _disp_axis(group) == 1 else (nx, ny)


#: nominal first pixel (SUBSTRT) along the dispersion of each mode's subarrays
_NOMINAL_START = {"miri": 529}


def _x_offset(group) -> int:
    """Mode coordinate of dispersion pixel 0 (non-zero for cropped subarrays).

    From ``SUBSTRT1`` (``SUBSTRT2`` when the dispersion runs along rows)
    minus the subarray's nominal start; looked up in ``meta`` and, when the
    reader did not keep it, in the first input file's primary header.
    """
    key = "SUBSTRT1" if _disp_axis(group) == 1 else "SUBSTRT2"
    start = group.meta.get(key)
    if start is None and group.files:
        try:
            from astropy.io import fits

            start = fits.getheader(group.files[0]).get(key)
        except OSError:
            start = None
    if start is None:
        return 0
    nominal = _NOMINAL_START.get(getattr(group.mode, "key", None), 1)
    return int(start) - nominal
