"""Numerical kernels of the cleaning steps: exact running medians by sorting networks,
masked medians along lines, robust scales, and the threaded block loop.

Private helpers of :mod:`tsocontainer.cleaning.outliers`, :mod:`tsocontainer.cleaning.background`
and :mod:`tsocontainer.cleaning.onef` (re-exported there where they are public).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from tsocontainer._disk import release
from tsocontainer._util import interactive


__all__ = ["THREADS", "dask_worker_cap", "progress", "run_blocks", "reflect_index", "block_ranges",
           "median_network", "window_median", "middle_values", "running_median", "dispersion_median",
           "robust_factor", "residual_scale", "disp_view", "masked_row_median", "nanmedian0",
           "small_pages"]

#: worker threads for block loops (numpy releases the GIL in its ufuncs)
THREADS = max(1, min(2, os.cpu_count() or 1))


_PAGES = {"depth": 0, "before": None}
_PAGES_LOCK = threading.Lock()


def _hugepage_switch():
    """numpy's switch of huge-page advice for new arrays (None where it has none)."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = __import__(name, fromlist=["_set_madvise_hugepage"])
        except ImportError:
            continue
        return getattr(module, "_set_madvise_hugepage", None)
    return None


@contextmanager
def small_pages():
    """New numpy arrays get ordinary pages inside the block (numpy's huge-page advice off).

    numpy advises the kernel to back every array of 4 MB or more with transparent huge
    pages. Under the kernel's default THP policy (``defrag=madvise``) a fault on such an
    array may stall in direct memory compaction when memory is fragmented (a busy
    machine, a full page cache); stage 1 makes GBs of short-lived block-sized
    temporaries, and on this project's shared test machine the system time of a
    48-integration SOSS visit was 9-12 s with the advice and 4 s without. Threads and
    nesting are counted: the advice is restored when the last block exits.

    Examples
    --------
    >>> with small_pages():
    ...     a = np.zeros(2_000_000)
    >>> float(a.sum())
    0.0
    """
    switch = _hugepage_switch()
    if switch is None:                            # pragma: no cover (older numpy)
        yield
        return
    with _PAGES_LOCK:
        if _PAGES["depth"] == 0:
            _PAGES["before"] = switch(False)
        _PAGES["depth"] += 1
    try:
        yield
    finally:
        with _PAGES_LOCK:
            _PAGES["depth"] -= 1
            if _PAGES["depth"] == 0:
                switch(bool(_PAGES["before"]))


def dask_worker_cap(n: int) -> int:
    """``n`` threads, but no more than the dask worker running this code has.

    A batch's LocalCluster runs single-threaded worker processes, one per core:
    thread pools of the cores' size inside each would oversubscribe the cores.
    Outside a dask worker (or without ``distributed`` imported) ``n`` itself.

    Parameters
    ----------
    n : int
        Threads wanted.

    Returns
    -------
    int

    Examples
    --------
    >>> dask_worker_cap(2) <= 2
    True
    """
    import sys

    distributed = sys.modules.get("distributed")   # only where a worker could be running
    if distributed is not None:
        try:
            worker = distributed.get_worker()
        except ValueError:                         # not in a dask worker
            worker = None
        if worker is not None:
            n = min(n, int(worker.state.nthreads))
    return max(1, int(n))
#: elements per cache-sized chunk of the sorting-network medians
_CHUNK = 1 << 17


# ---------------------------------------------------------------- helpers


def progress(total: int, desc: str, show: bool | None = None):
    """A tqdm bar over ``total`` blocks, shown if ``show`` (None: in a terminal or notebook)."""
    from tqdm import tqdm

    show = interactive() if show is None else bool(show)
    return tqdm(total=total, desc=desc, unit="block", disable=not show, leave=False)


def run_blocks(func, ranges, desc: str, show: bool | None = None, collect=None) -> list:
    """Call ``func(a, b)`` for every ``(a, b)`` in ``ranges`` on worker threads.

    Parameters
    ----------
    func : callable
        Works on one block, writing into preallocated outputs; returns anything.
    ranges : list of (int, int)
        Block bounds.
    desc : str
        Progress-bar label.
    show : bool, optional
        Show the bar (None: when stderr is a terminal).
    collect : callable, optional
        ``collect(result)`` is called with every block's return value, in block
        order, as soon as it is there; the values are then not kept (blocks that
        return large partial sums do not pile up: only those in flight are held).

    Returns
    -------
    list
        ``func``'s return values in block order (all None with ``collect``).

    Examples
    --------
    >>> run_blocks(lambda a, b: b - a, [(0, 3), (3, 5)], "demo", show=False)
    [3, 2]
    >>> total = []
    >>> run_blocks(lambda a, b: b - a, [(0, 3), (3, 5)], "demo", show=False, collect=total.append)
    [None, None]
    >>> total
    [3, 2]
    """
    out = [None] * len(ranges)
    bar = progress(len(ranges), desc, show)

    def keep(k, value):
        if collect is None:
            out[k] = value
        else:
            collect(value)

    def call(a, b):
        try:
            return func(a, b)
        finally:   # streaming mode: drop the mapped pages the block read (in the worker,
            release()   # which may run ahead of the thread collecting the results)

    threads = dask_worker_cap(THREADS)   # block sizes keep THREADS: the same results
    if threads == 1 or len(ranges) == 1:
        for k, (a, b) in enumerate(ranges):
            keep(k, call(a, b))
            bar.update()
    else:
        with ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(call, a, b) for a, b in ranges]
            for k in range(len(futures)):
                keep(k, futures[k].result())
                futures[k] = None   # a finished future holds its result
                bar.update()
    bar.close()
    return out


def reflect_index(n: int, half: int) -> np.ndarray:
    """Indices ``-half .. n + half - 1`` mirrored at the ends without repeating the edge.

    (``d c b | a b c d | c b a``), so that an outlier at an edge appears only
    once in the windows that reach past it.
    """
    idx = np.abs(np.arange(-half, n + half))
    idx = np.where(idx > n - 1, 2 * (n - 1) - idx, idx)
    return np.clip(idx, 0, max(n - 1, 0))


def block_ranges(n: int, size: int) -> list:
    """Split ``range(n)`` into consecutive ``(start, stop)`` blocks of ``size``."""
    size = max(1, int(size))
    return [(a, min(n, a + size)) for a in range(0, n, size)]


# ------------------------------------------------------- sorting networks
@lru_cache(maxsize=None)
def median_network(n: int) -> tuple:
    """Comparators of a sorting network pruned to the median of ``n`` values.

    Batcher's odd-even merge sort for ``n`` inputs, keeping only comparators
    that influence the middle output(s).

    Parameters
    ----------
    n : int
        Number of inputs (>= 1).

    Returns
    -------
    tuple of (i, j, need_min, need_max)
        Compare-exchange steps (``i < j``; afterwards ``x[i] <= x[j]``) and
        which of the two results is used later.
    """
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    needed = {n // 2} if n % 2 else {n // 2 - 1, n // 2}
    kept = []
    for i, j in reversed(pairs):
        need_min, need_max = i in needed, j in needed
        if need_min or need_max:
            kept.append((i, j, need_min, need_max))
            needed |= {i, j}
    return tuple(reversed(kept))


def window_median(values):
    """Elementwise median of a list of equally shaped arrays (no NaN).

    Parameters
    ----------
    values : list of ndarray
        ``n`` arrays (views are fine: they are not modified).

    Returns
    -------
    ndarray
        The median (mean of the two middle values when ``n`` is even).
    """
    vals = list(values)
    n = len(vals)
    lower, upper = middle_values(vals)
    if n % 2:
        return np.array(lower, copy=True)
    return 0.5 * (lower + upper)


def middle_values(values):
    """Elementwise middle value(s) of a list of equally shaped arrays (no NaN).

    Parameters
    ----------
    values : list of ndarray
        ``n`` arrays (not modified).

    Returns
    -------
    lower, upper : ndarray
        The ``(n - 1) // 2``-th and ``n // 2``-th smallest (the same array when ``n`` is
        odd; it may be one of ``values`` when ``n`` is 1).

    Examples
    --------
    >>> lo, hi = middle_values([np.array([4.0]), np.array([1.0]), np.array([3.0]), np.array([2.0])])
    >>> lo.tolist(), hi.tolist()
    ([2.0], [3.0])
    """
    vals = list(values)
    n = len(vals)
    for i, j, need_min, need_max in median_network(n):
        a, b = vals[i], vals[j]
        if need_min:
            vals[i] = np.minimum(a, b)
        if need_max:
            vals[j] = np.maximum(a, b)
    return vals[(n - 1) // 2], vals[n // 2]


def running_median(cube, window: int, out=None):
    """Running median along axis 0 of ``cube`` (edges: mirrored, see :func:`reflect_index`).

    Parameters
    ----------
    cube : ndarray, shape (n, ...)
        Finite values.
    window : int
        Window length; even values are rounded up to the next odd one.
    out : ndarray, optional
        Output array (may not be ``cube``).

    Returns
    -------
    ndarray
        Same shape as ``cube``.
    """
    half = int(window) // 2
    n = cube.shape[0]
    target = out
    out = np.empty(cube.shape, cube.dtype)   # C order, so that reshape is a view
    if half == 0 or n == 1:
        out[...] = cube
    else:
        _running_median_into(cube, out, half, n)
    if target is not None:
        target[...] = out
        return target
    return out


def _running_median_into(cube, out, half, n):
    flat = cube.reshape(n, -1)
    res = out.reshape(n, -1)
    step = max(8, _CHUNK // max(n, 1))
    idx = reflect_index(n, half)
    for c0 in range(0, flat.shape[1], step):
        padded = flat[idx, c0:c0 + step]
        res[:, c0:c0 + step] = window_median([padded[k:k + n] for k in range(2 * half + 1)])


def dispersion_median(block, window: int, out=None):
    """Running median along the last axis of ``block`` (edges: mirrored).

    Parameters
    ----------
    block : ndarray, shape (..., m)
        Finite values, the last axis being the one to filter along.
    window : int
        Window length (rounded up to odd).
    out : ndarray, optional
        Output array.

    Returns
    -------
    ndarray
    """
    half = int(window) // 2
    m = block.shape[-1]
    target = out
    out = np.empty(block.shape, block.dtype)   # C order, so that reshape is a view
    if half == 0:
        out[...] = block
    else:
        _dispersion_median_into(block, out, half, m)
    if target is not None:
        target[...] = out
        return target
    return out


def _dispersion_median_into(block, out, half, m):
    lead = block.reshape(-1, m)
    res = out.reshape(-1, m)
    idx = reflect_index(m, half)
    step = max(1, _CHUNK // m)
    for r0 in range(0, lead.shape[0], step):
        padded = lead[r0:r0 + step][:, idx]
        res[r0:r0 + step] = window_median([padded[:, k:k + m] for k in range(2 * half + 1)])


def robust_factor(z, floor: float = 1.0, stride: int = 7) -> float:
    """Noise-scale correction ``max(floor, 1.4826 * median|z|)`` of normalised residuals.

    Parameters
    ----------
    z : ndarray
        Residuals divided by their expected sigma.
    floor : float
        Minimum factor (1: the variance is never assumed too large).
    stride : int
        Use every ``stride``-th finite value (a sample is enough for a scale).

    Returns
    -------
    float
    """
    flat = z.reshape(-1)
    stride = max(int(stride), flat.size // 50_000)   # ~50 000 values are enough for a scale
    sample = np.abs(flat[::stride])
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return float(floor)
    return float(max(floor, 1.4826 * np.median(sample)))


# ---------------------------------------------------------------- views
def disp_view(arr, dispersion_axis: int):
    """View of ``arr`` (..., ny, nx) with the dispersion axis last."""
    return arr if dispersion_axis == 1 else np.swapaxes(arr, -1, -2)


def masked_row_median(a):
    """Median of the finite values of each row of a 2D array (NaN if none); ``a`` is modified."""
    bad = ~np.isfinite(a)
    if not bad.any():
        m = a.shape[1]
        k = [(m - 1) // 2, m // 2]
        a.partition(k, axis=1)
        return 0.5 * (a[:, k[0]] + a[:, k[1]])
    a[bad] = np.inf
    a.sort(axis=1)
    count = (~bad).sum(axis=1)
    lo = np.take_along_axis(a, (np.maximum(count - 1, 0) // 2)[:, None], 1)[:, 0]
    hi = np.take_along_axis(a, np.minimum(count // 2, a.shape[1] - 1)[:, None], 1)[:, 0]
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, 0.5 * (lo + hi), np.nan)


def nanmedian0(a):
    """Median along axis 0 of the finite values of ``a`` (NaN where none), as ``np.nanmedian``.

    ``np.nanmedian`` over a short first axis goes through masked arrays and is ~20x slower
    than this sort (NaN sorts last, so the finite values lead each column).

    Parameters
    ----------
    a : ndarray, shape (n, ...)
        Values (NaN = missing); not modified.

    Returns
    -------
    ndarray, shape ``a.shape[1:]``

    Examples
    --------
    >>> nanmedian0(np.array([[1.0, np.nan], [5.0, np.nan], [2.0, 3.0]])).tolist()
    [2.0, 3.0]
    """
    s = np.moveaxis(a, 0, -1).copy()              # sorted along contiguous rows: faster
    s.sort(axis=-1)
    count = np.isfinite(a).sum(axis=0)
    lo = np.take_along_axis(s, (np.maximum(count - 1, 0) // 2)[..., None], -1)[..., 0]
    hi = np.take_along_axis(s, np.minimum(count // 2, a.shape[0] - 1)[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, 0.5 * (lo + hi), np.nan).astype(a.dtype, copy=False)


@lru_cache(maxsize=None)
def residual_scale(window: int, reference_frames: int = 0) -> float:
    """Tail-calibrated sigma of ``x - median(window values including x)`` for unit Gaussian noise.

    The residual against a median that includes ``x`` is not Gaussian: its
    core is narrower than its tails. The scale returned makes ``|r| / scale``
    exceed 3.5 as often as a unit Gaussian does (seeded Monte Carlo of
    400 000 draws on the same sorting network, ~2 % precision), so that
    thresholds in sigmas mean what they say in the tails, where flags are set.
    ``reference_frames > 0`` adds the noise of a subtracted static reference
    (a median of that many frames, variance ``pi / 2 / n``).

    Parameters
    ----------
    window : int
        Median window (rounded up to odd).
    reference_frames : int
        Frames in the subtracted deep reference (0: none).

    Returns
    -------
    float
    """
    half = int(window) // 2
    rng = np.random.default_rng(12345)
    x = rng.standard_normal((2 * half + 1, 400_000)).astype(np.float32)
    r = np.abs(x[half] - window_median(list(x)))
    scale = float(np.quantile(r, 1 - 4.6527e-4)) / 3.5
    if reference_frames:
        scale *= np.sqrt(1 + np.pi / 2 / reference_frames)
    return scale


def _finite_fill(block, fill, scale=None):
    """Copy of ``block`` with non-finite values replaced by ``fill`` (broadcast), or by
    ``fill * scale[:, None, None]`` (float32, computed at those values only) when ``scale``
    is given."""
    bad = ~np.isfinite(block)
    out = np.array(block, dtype=np.float32, copy=True)
    if bad.any():
        if scale is None:
            out[bad] = np.broadcast_to(fill, block.shape)[bad]
        else:
            i, y, x = np.nonzero(bad)
            out[i, y, x] = np.asarray(fill, np.float32)[y, x] * np.asarray(scale, np.float32)[i]
    return out, bad


def _sigma(var):
    """sqrt of variance; non-finite / non-positive variance gives +inf (never flagged)."""
    v = np.asarray(var, np.float32)
    with np.errstate(invalid="ignore"):
        sig = np.sqrt(v)
        bad = ~(v > 0)
    if bad.any():
        sig[bad] = np.inf
    return sig
