"""Shared machinery of tracing and extraction: orientation, windows, blocks, reference frames.

Orientation: tracing and extraction work in the *dispersion-major* view of a
frame, where the last axis runs along the dispersion ("columns", ``x``) and
the axis before it across the dispersion ("rows", ``y``). Modes that disperse
along rows (MIRI LRS, ``dispersion_axis == 0``) are transposed here, once, by
:func:`dispersion_major` (a view, no copy).

Windows: :func:`window_rows` gives the rows and fractional-edge weights of a
window ``[centre - hw, centre + hw]`` per column; :func:`gather` reads values
at those rows (one flat ``take``).

Blocks: :func:`iter_blocks` yields a cube's working data block by block of
integrations; :func:`reference_frames` builds the visit-average frame and
variance frame used as trace reference, extraction profile and weights.
"""
from __future__ import annotations

import logging

import numpy as np

from tsocontainer._disk import release
from tsocontainer.arrays.views import default_block_size, dispersion_major, progress_bar

__all__ = ["iter_blocks", "reference_frames"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ blocks
def iter_blocks(cube, fill=None, desc: str = "", finite: bool = True, ranges=None,
                var: bool = True):
    """Working data of ``cube`` by blocks of integrations, dispersion-major.

    Blocks hold ``cube.block_size`` integrations (default: about 64 MB of
    float32 per block); a tqdm bar is shown if ``cube.progress`` (default:
    when stderr is a terminal).

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry.
    fill : ndarray, shape (ny, nx) dispersion-major, optional
        Reference frame; bad pixels are replaced by it times the
        integration's white-light scale (in a copy).
    desc : str
        Progress-bar label.
    finite : bool
        Also mark non-finite data or variance as bad (else only ``cube.mask``).
    ranges : sequence of (int, int), optional
        Integration ranges to visit (default: all, in blocks of ``block_size``).
    var : bool
        Read the variance (False: ``var`` is None, and ``finite`` checks the data
        only; the variance block is neither copied nor corrected).

    Yields
    ------
    i0, i1 : int
        Integration range.
    data, var : ndarray, shape (i1 - i0, ny', nx')
        Working data and variance (dispersion-major). Without corrections and
        without ``fill`` these may be read-only views of the input cubes.
    good : ndarray of bool, same shape
        Usable pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> src = CubeSource.from_arrays(np.ones((5, 3, 4)), np.ones((5, 3, 4)), block_size=2)
    >>> [(i0, i1, d.shape) for i0, i1, d, v, g in iter_blocks(src)]
    [(0, 2, (2, 3, 4)), (2, 4, (2, 3, 4)), (4, 5, (1, 3, 4))]
    """
    with progress_bar(cube.N if ranges is None else sum(b - a for a, b in ranges), desc,
                      cube.progress) as bar:
        for i0, i1 in _block_list(cube, ranges):
            data, v, good = _read_block(cube, i0, i1, fill, finite, var)
            yield i0, i1, data, v, good
            release()   # streaming mode: drop the mapped pages of the block
            bar.update(i1 - i0)


def for_blocks(cube, func, fill=None, desc: str = "", finite: bool = True,
               var: bool = True) -> list:
    """``func(i0, i1, data, var, good)`` for every block of :func:`iter_blocks`, on threads.

    The blocks (reading and corrections included) run on the worker threads of
    :func:`tsocontainer.arrays.numerics.run_blocks` (numpy releases the GIL), each
    thread on blocks of 16 MB of float32 (``32 MB / THREADS``) unless ``cube.block_size``
    is set: the copies, corrections and temporaries of the blocks in flight (several
    times a block each) are what the extraction adds to the visit's memory, and
    smaller blocks cost no time. ``func`` must write only into
    its own integrations ``i0:i1`` of preallocated outputs; the results are
    identical to the serial loop.

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry.
    func : callable
        ``func(i0, i1, data, var, good)`` (arguments as yielded by :func:`iter_blocks`).
    fill, desc, finite, var
        As :func:`iter_blocks`.

    Returns
    -------
    list
        ``func``'s return values in block order.

    Examples
    --------
    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> src = CubeSource.from_arrays(np.ones((5, 3, 4)), np.ones((5, 3, 4)), block_size=2)
    >>> for_blocks(src, lambda i0, i1, d, v, g: (i0, i1, float(d.sum())))
    [(0, 2, 24.0), (2, 4, 24.0), (4, 5, 12.0)]
    """
    from tsocontainer.arrays.numerics import THREADS, run_blocks

    size = cube.block_size or default_block_size(cube.shape, 32.0 / THREADS)
    blocks = [(a, min(cube.N, a + size)) for a in range(0, cube.N, size)]

    def one(i0, i1):
        data, v, good = _read_block(cube, i0, i1, fill, finite, var)
        return func(i0, i1, data, v, good)

    return run_blocks(one, blocks, desc, show=cube.progress)


def _block_list(cube, ranges=None) -> list:
    bs = cube.block_size or default_block_size(cube.shape)
    if ranges is None:
        ranges = [(0, cube.N)]
    return [(a, min(b, a + bs)) for r0, r1 in ranges for a in range(r0, r1, bs) for b in (r1,)]


def _read_block(cube, i0, i1, fill, finite, need_var=True):
    """Working data, variance (None unless ``need_var``) and good pixels of ``i0:i1``,
    dispersion-major."""
    axis = cube.geometry.dispersion_axis
    data, var = cube.read_block(i0, i1, var=need_var)
    if fill is not None and not cube.corrected:
        data = data.copy()
    data = dispersion_major(data, axis)
    var = None if var is None else dispersion_major(var, axis)
    good = dispersion_major(cube.mask[i0:i1], axis)
    if fill is not None:
        good = good & np.isfinite(data)
        _fill_bad(data, good, fill)
    elif finite:
        good = good & np.isfinite(data)
        if var is not None:
            good &= np.isfinite(var)
    return data, var, good


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


def _unclipped(data, v, good, ref, vref, scale, nsigma):
    """``good`` and within ``nsigma`` of ``ref * scale`` (variance ``max(v, vref)``), a few
    rows at a time: the same values without block-sized float temporaries."""
    out = np.empty(good.shape, bool)
    step = max(1, int(1e6 // max(data.shape[0] * data.shape[2], 1)))
    for r0 in range(0, data.shape[1], step):
        r = slice(r0, r0 + step)
        resid = data[:, r] - ref[None, r] * scale
        np.square(resid, out=resid)
        out[:, r] = good[:, r] & (resid <= (nsigma**2) * np.maximum(v[:, r], vref[None, r]))
    return out


def reference_frames(cube, nsigma: float = 6.0, max_integrations: int = 128):
    """Visit-average frame and variance frame, dispersion-major, in two passes.

    Pass 1 takes the masked mean of the working data and of the variance;
    pass 2 repeats it without pixels deviating by more than ``nsigma`` from
    the mean scaled by the integration's white-light level (cosmic rays not
    flagged yet). Long visits use ``max_integrations`` of them, in 8
    contiguous chunks spread over the visit. The variance frame is noise-free
    enough to be used as weights.

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry (and the block size and
        progress setting).
    nsigma : float
        Clipping threshold of pass 2.
    max_integrations : int
        Largest number of integrations averaged.

    Returns
    -------
    frame, var : ndarray of float64, shape (ny', nx')
        NaN where a pixel is never good.

    Examples
    --------
    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> sci = np.full((6, 3, 4), 2.0)
    >>> sci[2, 1, 1] = 500.0            # an unflagged cosmic ray
    >>> frame, var = reference_frames(CubeSource.from_arrays(sci, np.ones_like(sci)))
    >>> float(frame[1, 1]), frame.shape
    (2.0, (3, 4))
    """
    ranges = None
    if cube.N > max_integrations:
        length = max(1, max_integrations // 8)
        starts = np.linspace(0, cube.N - length, 8).round().astype(int)
        ranges = [(int(a), int(a) + length) for a in np.unique(starts)]
    ref = vref = mean1 = None
    level = np.ones(cube.N)
    for clip in (False, True):
        s = np.zeros(cube.geometry.dm_shape)
        sv = np.zeros_like(s)
        n = np.zeros_like(s)
        top = np.full(s.shape, -np.inf)
        tot = np.zeros(cube.N)
        for i0, i1, data, v, good in iter_blocks(cube, desc="reference frame", ranges=ranges):
            if clip:
                scale = level[i0:i1].astype(np.float32)[:, None, None]
                good = _unclipped(data, v, good, ref, vref, scale, nsigma)
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
