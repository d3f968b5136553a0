"""Two-point-difference jump detection, vectorised over whole blocks of ramps.

The method (the one stcal's jump step implements, written here in numpy over whole
blocks so that it is fast and runs on several cores):

* The first differences of each ramp, ``d = r[k+1] - r[k]`` (DN), are usable when neither
  group is ``DO_NOT_USE`` or ``SATURATED``.
* For each pixel, the median ``m`` of its usable differences over all integrations and
  groups of the block is the expected difference (the signal per group; over a block
  it is hardly moved by a few jumps). With only two usable differences, ``m`` is the
  smaller one (as in stcal: a jump in one of two would move their median by half).
* A difference's expected noise is ``sqrt(|m| / gain + cds**2 / nframes)`` DN (Poisson
  plus read noise of a group difference) times ``sqrt(1 + pi / (2 k))`` for the noise of
  the median of the pixel's ``k >= 3`` usable differences itself (so that a short block
  does not over-flag; stcal has no such allowance).
* A difference is a jump when ``|d - m|`` exceeds ``threshold`` times that noise; the
  threshold is raised to ``few_thresholds`` for pixels with only 3 or 2 usable
  differences in the block (as stcal does, ``5`` and ``6`` sigma).
* Iteration: the differences found are left out, and the median and noise of the pixels
  that had new jumps are recomputed, until no new jump is found (several jumps per ramp).
* Neighbours: for jumps between ``neighbor_range`` sigma (default 10-1000), the four
  neighbouring pixels are flagged in the same group (unless saturated or do-not-use),
  as stcal's ``flag_4_neighbors``.

Jumps are marked ``JUMP_DET`` on the group after the difference. Rows are processed in
chunks on a pool of threads (numpy's sorts and ufuncs release the GIL), so a block uses
all the cores it is given; the result does not depend on the chunking or the number of
threads.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tsocontainer.arrays.numerics import dask_worker_cap

__all__ = ["twopoint_jumps", "default_workers"]
_JUMP = np.uint8(4)
_BAD = np.uint8(1 | 2)
_CHUNK = 1_500_000        # differences per row chunk (a few MB per temporary)


def default_workers() -> int:
    """Threads of the stage-1 pools: the cores this process may use (at most 8), and no
    more than the threads of the dask worker running it (a batch's LocalCluster has
    single-threaded worker processes, one per core: more would oversubscribe the cores).

    Returns
    -------
    int

    Examples
    --------
    >>> default_workers() >= 1
    True
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:                        # pragma: no cover (not Linux)
        n = os.cpu_count() or 1
    return max(1, min(8, dask_worker_cap(n)))


def twopoint_jumps(data, gdq, gain, readnoise, *, threshold: float = 4.0,
                   few_thresholds=(5.0, 6.0), flag_neighbors: bool = True,
                   neighbor_range=(10.0, 1000.0),
                   nframes: int = 1, workers=None):
    """Flag jumps in a block of ramps with the two-point difference method (module doc).

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Calibrated ramps (DN); not changed.
    gdq : ndarray of uint8, same shape
        Group DQ (``DO_NOT_USE`` = 1 and ``SATURATED`` = 2 groups are not used); not
        changed.
    gain, readnoise : float or ndarray, shape (ny, nx)
        Gain (e-/DN) and CDS read noise (DN).
    threshold : float
        Threshold (sigma) for pixels with at least 4 usable differences in the block.
    few_thresholds : tuple of float
        Thresholds for pixels with 3 and with 2 usable differences in the block (none
        are looked for below 2).
    flag_neighbors : bool
        Flag the four neighbours of jumps within ``neighbor_range`` sigma.
    neighbor_range : tuple of float
        Jumps (sigma) whose neighbours are flagged: above the first, below the second.
    nframes : int
        Frames averaged per group (read noise of a difference: ``cds**2 / nframes``).
    workers : int, optional
        Threads (default: :func:`default_workers`).

    Returns
    -------
    gdq : ndarray of uint8
        A copy of ``gdq`` with ``JUMP_DET`` (4) on the group after each jump and on the
        flagged neighbours.
    n_jumps : int
        Jumps found (differences; neighbours not counted).

    Examples
    --------
    Ramps of 10 DN per group with 5 DN of CDS read noise and a 200 DN jump before group 5
    of the pixel (1, 2) of integration 0:

    >>> rng = np.random.default_rng(1)
    >>> ramps = 10.0 * np.arange(8)[None, :, None, None] + rng.normal(0, 3.5, (2, 8, 4, 4))
    >>> ramps[0, 5:, 1, 2] += 200.0
    >>> gdq, n = twopoint_jumps(ramps.astype(np.float32), np.zeros(ramps.shape, np.uint8),
    ...                         1.0, 5.0, flag_neighbors=False)
    >>> n, np.argwhere(gdq & 4).tolist()
    (1, [[0, 5, 1, 2]])
    """
    data = np.asarray(data)
    n, ng, ny, nx = data.shape
    out = np.array(gdq, np.uint8, copy=True)
    if ng < 2 or n == 0:
        return out, 0
    gain = np.broadcast_to(np.asarray(gain, np.float32), (ny, nx))
    rn2 = np.broadcast_to(np.asarray(readnoise, np.float32) ** 2 / float(nframes), (ny, nx))
    thresholds = (float(threshold),) + tuple(float(t) for t in few_thresholds)
    lo, hi = (float(v) for v in neighbor_range)
    rows = max(1, _CHUNK // max(1, n * (ng - 1) * nx))

    def work(r0):
        sl = slice(r0, min(ny, r0 + rows))
        found, ratio = _detect_rows(data[:, :, sl], gdq[:, :, sl], gain[sl], rn2[sl],
                                    thresholds)
        at = np.nonzero(found)                   # few: their coordinates
        out[:, 1:, sl][at] |= _JUMP
        r = ratio[at]
        large = (r > lo) & (r < hi)              # (NaN ratios compare False)
        return at[0].size, tuple(c[large] for c in at[:2]) + (at[2][large] + r0,
                                                                at[3][large])

    starts = range(0, ny, rows)
    nworkers = min(len(starts), int(workers or default_workers()))
    if nworkers > 1:
        with ThreadPoolExecutor(nworkers) as pool:
            parts = list(pool.map(work, starts))
    else:
        parts = list(map(work, starts))
    if flag_neighbors:
        large = tuple(np.concatenate([p[1][j] for p in parts]) for j in range(4))
        if large[0].size:
            _flag_neighbours(out, large, (ny, nx))
    return out, int(sum(p[0] for p in parts))


def _flag_neighbours(gdq, large, shape):
    """``JUMP_DET`` on the four neighbours of the ``large`` jumps (their coordinates
    ``(integration, difference, y, x)``; not on SAT/DNU groups)."""
    i, k, y, x = large
    ny, nx = shape
    parts = [(y, x)]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        yy, xx = y + dy, x + dx
        inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
        parts.append((yy[inside], xx[inside], inside))
    ii = np.concatenate([i] + [i[p[2]] for p in parts[1:]])
    kk = np.concatenate([k] + [k[p[2]] for p in parts[1:]]) + 1
    yy = np.concatenate([p[0] for p in parts])
    xx = np.concatenate([p[1] for p in parts])
    value = gdq[ii, kk, yy, xx]
    gdq[ii, kk, yy, xx] = np.where((value & _BAD) == 0, value | _JUMP, value)


def _detect_rows(data, gdq, gain, rn2, thresholds):
    """Jumps (bool, shape of the differences) and their ratios (NaN where not usable) for
    a chunk of rows."""
    n, ng, ny, nx = data.shape
    use = (gdq & _BAD) == 0
    valid = (use[:, 1:] & use[:, :-1]).reshape(n * (ng - 1), ny * nx)
    d = np.diff(data.astype(np.float32, copy=False), axis=1).reshape(valid.shape)
    d[~valid] = np.nan                              # (differences, pixels)
    g = gain.reshape(-1).astype(np.float32)
    r2 = rn2.reshape(-1).astype(np.float32)
    found = np.zeros(d.shape, bool)
    ratio = None
    first = True
    idx = np.arange(d.shape[1])
    while idx.size:
        sub = d if first else d[:, idx]
        if not first:
            sub[found[:, idx]] = np.nan
        med, k = _reference(sub)
        with np.errstate(invalid="ignore", divide="ignore"):
            sig = np.sqrt(np.abs(med) / g[idx] + r2[idx])
            sig *= np.where(k >= 3, np.sqrt(1.0 + np.pi / (2.0 * k)), 1.0).astype(np.float32)
            sig[~(sig > 0)] = np.nan                   # zero read noise: never flagged
            rat = np.abs(sub - med) / sig
        thr = _thresholds(k, thresholds)
        new = rat > thr                                # NaN (unusable, flagged) -> False
        if first:
            ratio = rat
        else:
            ratio[:, idx] = np.where(found[:, idx], ratio[:, idx], rat)
        hit = new.any(axis=0)
        found[:, idx[hit]] |= new[:, hit]
        idx = idx[hit]
        first = False
    shape = (n, ng - 1, ny, nx)
    return found.reshape(shape), ratio.reshape(shape)


def _thresholds(k, thresholds):
    """Threshold of each pixel from its count of usable differences (none below 2)."""
    t4, t3, t2 = thresholds
    return np.where(k >= 4, t4, np.where(k == 3, t3, np.where(k == 2, t2, np.inf))
                    ).astype(np.float32)


def _reference(a):
    """Expected difference of each pixel (column): the median of its finite values, or
    with two, the one of smaller size (a jump in one of two cannot move it); and their
    count."""
    med, k = _nanmedian0(a)
    two = np.flatnonzero(k == 2)
    if two.size:
        v = a[:, two]
        pick = np.argmin(np.where(np.isfinite(v), np.abs(v), np.inf), axis=0)
        med[two] = v[pick, np.arange(two.size)]
    return med, k


def _nanmedian0(a):
    """Median along axis 0 of the finite values of ``a`` and their count.

    Columns without finite values give NaN (count 0); ``a`` is not changed (numpy's
    ``nanmedian`` goes through masked arrays on such short axes and is much slower).
    """
    s = np.sort(np.ascontiguousarray(a.T), axis=-1).T    # NaN sorts last; along rows: faster
    k = np.add.reduce(np.isfinite(a), axis=0, dtype=np.int32)
    lo = np.take_along_axis(s, (np.maximum(k - 1, 0) // 2)[None], 0)[0]
    hi = np.take_along_axis(s, np.minimum(k // 2, a.shape[0] - 1)[None], 0)[0]
    with np.errstate(invalid="ignore"):
        med = np.where(k > 0, 0.5 * (lo + hi), np.nan).astype(np.float32)
    return med, k
