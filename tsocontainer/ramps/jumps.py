"""Jump (cosmic-ray) detection: two-point differences within ramps plus a check in time.

Within ramps, the default is this package's vectorised two-point-difference detector
(:func:`tsocontainer.ramps.twopoint.twopoint_jumps`); stcal's is kept as an option:

* :func:`stcal_jumps` calls ``stcal.jump.jump.detect_jumps_data`` on a block of ramps
  with the settings the jwst pipeline's ``JumpStep`` uses by default (rejection
  thresholds 4, 6 and 5 sigma for ramps of more than 4, 3 and 4 groups, the four
  neighbours of jumps between 10 and 1000 sigma flagged, no snowball or shower
  flagging, no groups flagged after a jump). One difference: stcal switches to
  sigma-clipping across integrations when it is given at least 100 integrations at
  once; this module streams blocks of fewer, and sets that switch out of reach so that
  the result does not depend on the block size (the check in time below does the
  across-integration part).
* :func:`time_outliers` compares each group difference of a pixel with its own time
  series: the running median over ``window`` integrations of the same pixel and
  difference (which follows a transit, slow drifts and the trace's jitter). A difference
  is an outlier when it departs from it by more than ``threshold`` times its expected
  noise, ``sqrt(max(median, 0) / gain + cds**2)`` DN (Poisson plus CDS read noise), times
  ``sqrt(1 + pi / (2 window))`` for the running median's own noise.

Jumps are marked ``JUMP_DET`` on the group after the difference, as stcal does; the
ramp fit then fits the ramp's segments separately. The detection within ramps runs on
ramps of three groups or more (the jwst JumpStep skips ramps of two); the check in time
works on two-group ramps too, where it is the only jump detection.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from tsocontainer.arrays.numerics import (middle_values, nanmedian0, reflect_index,
                                          window_median)

__all__ = ["stcal_jumps", "time_outliers", "group_differences", "JUMP_DEFAULTS", "JUMP_METHODS"]

log = logging.getLogger(__name__)

#: jwst JumpStep defaults this module uses (its other switches are off)
JUMP_DEFAULTS = {"rejection_threshold": 4.0, "three_group_rejection_threshold": 6.0,
                 "four_group_rejection_threshold": 5.0, "flag_4_neighbors": True,
                 "max_jump_to_flag_neighbors": 1000.0, "min_jump_to_flag_neighbors": 10.0,
                 "minimum_groups": 3, "maximum_cores": "1"}
#: jump detection within ramps: ours (:mod:`tsocontainer.ramps.twopoint`) or stcal's
JUMP_METHODS = ("twopoint", "stcal")
_JUMP = np.uint8(4)
_BAD = np.uint8(1 | 2)
#: values (integrations x pixels) per piece of the check in time
_TIME_CHUNK = 1 << 18


def stcal_jumps(data, gdq, pdq, gain, readnoise, *, threshold: float = 4.0,
                flag_neighbors: bool = True, sigclip_ints: int = 10 ** 9,
                group_time: float = 1.0, nframes: int = 1):
    """Flag jumps in a block of ramps with stcal's two-point difference method.

    Parameters
    ----------
    data : ndarray of float32, shape (n, ngroups, ny, nx)
        Calibrated ramps (DN); not changed.
    gdq : ndarray of uint8
        Group DQ (a copy is returned with ``JUMP_DET`` added).
    pdq : ndarray of uint32, shape (ny, nx)
        Pixel DQ.
    gain, readnoise : ndarray of float32, shape (ny, nx)
        Gain (e-/DN) and CDS read noise (DN).
    threshold : float
        Rejection threshold (sigma) for ramps of more than 4 groups (jwst: 4).
    flag_neighbors : bool
        Flag the four neighbours of jumps between 10 and 1000 sigma.
    sigclip_ints : int
        stcal's ``minimum_sigclip_groups`` (integrations from which it sigma-clips across
        integrations; the jwst default is 100).
    group_time : float
        Group time (s).
    nframes : int
        Frames per group.

    Returns
    -------
    gdq : ndarray of uint8
        Group DQ with the jumps.
    pdq : ndarray of uint32
        Pixel DQ from stcal.
    n_jumps : int
        Primary jumps found (stcal's count; -99 when stcal skipped the block).
    """
    from stcal.jump.jump import detect_jumps_data
    from stcal.jump.jump_class import JumpData
    from stdatamodels.jwst.datamodels import dqflags

    jd = JumpData(gain2d=np.asarray(gain, np.float32), rnoise2d=np.asarray(readnoise, np.float32),
                  dqflags=dqflags.pixel)
    jd.init_arrays_from_arrays(np.ascontiguousarray(data, np.float32), gdq.copy(),
                               np.ascontiguousarray(pdq, np.uint32))
    jd.nframes = int(nframes)
    jd.dt_group = np.ones(1)
    jd.n_reads_groupdiff = np.ones(1) * 2 * int(nframes)
    d = JUMP_DEFAULTS
    jd.set_detection_settings(float(threshold), d["three_group_rejection_threshold"],
                              d["four_group_rejection_threshold"],
                              d["max_jump_to_flag_neighbors"], d["min_jump_to_flag_neighbors"],
                              bool(flag_neighbors))
    jd.set_after_jump(0.0, 0, 0.0, 0)
    jd.set_snowball_info(False, 5.0, 1.0, 2.0, True, 2.5, 4, 25)
    jd.set_shower_info(False, 1.2, 90, 1.0, 2.6, 1.1, 10, 400)
    jd.set_sigma_clipping_info(d["minimum_groups"], int(sigclip_ints), True)
    jd.max_cores = d["maximum_cores"]
    jd.grps_masked_after_shower = int(15.0 // group_time)
    jd.mask_persist_grps_next_int = True
    jd.persist_grps_flagged = int(4000.0 // group_time)
    jd.max_shower_amplitude = jd.max_shower_amplitude * group_time
    with warnings.catch_warnings():
        # stcal's nan-medians of all-flagged pixels (e.g. reference pixels)
        warnings.simplefilter("ignore", RuntimeWarning)
        new_gdq, new_pdq, n_jumps, _ = detect_jumps_data(jd)
    return new_gdq.astype(np.uint8), new_pdq.astype(np.uint32), int(n_jumps)


def group_differences(data, gdq, out=None):
    """First differences along the groups, NaN where either group is unusable or a jump.

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Ramps.
    gdq : ndarray of uint8
        Group DQ.
    out : ndarray of float32, shape (n, ngroups - 1, ny, nx), optional
        Where to write them (one integration at a time: no block-sized temporary).

    Returns
    -------
    ndarray of float32, shape (n, ngroups - 1, ny, nx)

    Examples
    --------
    >>> ramps = np.array([0.0, 10.0, 25.0, 30.0], np.float32).reshape(1, 4, 1, 1)
    >>> gdq = np.array([0, 0, 4, 0], np.uint8).reshape(1, 4, 1, 1)
    >>> group_differences(ramps, gdq).ravel().tolist()
    [10.0, nan, 5.0]
    """
    if out is None:
        out = np.empty((data.shape[0], data.shape[1] - 1) + data.shape[2:], np.float32)
    for j in range(data.shape[0]):
        np.subtract(data[j, 1:], data[j, :-1], out=out[j])
        bad = (gdq[j] & _BAD) != 0
        bad = bad[1:] | bad[:-1] | ((gdq[j, 1:] & _JUMP) != 0)
        np.copyto(out[j], np.float32(np.nan), where=bad)
    return out


def time_outliers(diffs, gain, readnoise, core, threshold: float = 5.0, window: int = 11):
    """Group differences that depart from their own time series (see the module docstring).

    Parameters
    ----------
    diffs : ndarray of float32, shape (nb, ngroups - 1, ny, nx)
        Differences of consecutive integrations (:func:`group_differences`; NaN = not
        usable), including ``window // 2`` integrations on each side of ``core`` where
        the visit has them.
    gain, readnoise : ndarray, shape (ny, nx)
        Gain (e-/DN) and CDS read noise (DN).
    core : slice
        The integrations of ``diffs`` to test.
    threshold : float
        Outlier threshold (sigma).
    window : int
        Running-median length (integrations, odd).

    Returns
    -------
    ndarray of bool, shape (len(core), ngroups - 1, ny, nx)
        True at outlying differences (never at NaN ones).

    Examples
    --------
    >>> d = np.full((9, 1, 1, 1), 100.0, np.float32); d[4] = 300.0
    >>> out = time_outliers(d, np.ones((1, 1)), np.full((1, 1), 5.0), slice(0, 9), 5.0, 5)
    >>> np.flatnonzero(out.ravel()).tolist()
    [4]
    """
    nb = diffs.shape[0]
    window = max(1, min(int(window) | 1, nb if nb % 2 else nb - 1))
    ncore = len(range(*core.indices(nb)))
    out = np.zeros((ncore,) + diffs.shape[1:], bool)
    if ncore == 0 or out.size == 0:
        return out
    gain = np.broadcast_to(np.asarray(gain, np.float32), diffs.shape[-2:])
    readnoise = np.broadcast_to(np.asarray(readnoise, np.float32), diffs.shape[-2:])
    # pieces of a few rows of one difference (cache-sized); the differences the screen
    # cannot clear are tested together at the end (one call for all pieces)
    rows = max(1, _TIME_CHUNK // max(1, nb * diffs.shape[-1]))
    todo = []
    for lead in np.ndindex(diffs.shape[1:-2]):
        for r0 in range(0, diffs.shape[-2], rows):
            sl = (slice(None),) + lead + (slice(r0, r0 + rows),)
            todo.append((sl,) + _screen(diffs[sl], gain[r0:r0 + rows],
                                        readnoise[r0:r0 + rows], core, threshold, window))
    if todo and any(t[1].size for t in todo):
        found = _exact_outliers(*(np.concatenate([t[k] for t in todo], axis=-1)
                                  for k in (2, 3, 4)), core, threshold, window)
        start = 0
        for sl, maybe, *_ in todo:
            piece = np.zeros((ncore, out[sl][0].size), bool)
            piece[:, maybe] = found[:, start:start + maybe.size]
            out[sl] = piece.reshape(out[sl].shape)
            start += maybe.size
    return out


def _screen(diffs, gain, readnoise, core, threshold, window):
    """The series of a piece that may fail the test of :func:`time_outliers`: their flat
    indices, values ``(nb, m)``, gain and squared read noise.

    The median of a window of ``2h + 1`` values lies between the smallest and the largest
    of any ``h + 1`` of them (at most ``h`` values are below it, at most ``h`` above), and
    the noise grows with the median: a difference within ``[L, U]``'s reach of
    ``threshold`` times the noise at ``L`` (less 1 % for rounding) cannot be an outlier.
    Only the others (about 1 %: outliers, wide windows, series with gaps) need their
    median; the result is the same as testing every difference."""
    nb = diffs.shape[0]
    flat = diffs.reshape(nb, -1)
    g = np.broadcast_to(gain, diffs.shape[1:]).ravel()
    r2 = np.broadcast_to(readnoise, diffs.shape[1:]).ravel() ** 2
    half = window // 2
    if half == 0 or nb == 1:
        maybe = np.arange(flat.shape[1])
    else:
        views = _window_views(flat, window, core)
        low, high = views[0], views[0]
        for v in views[1:half + 1]:
            low, high = np.minimum(low, v), np.maximum(high, v)
        d = flat[core]                          # one of the h + 1: low <= d <= high
        k = (0.99 * threshold) ** 2 * (1.0 + np.pi / (2.0 * window))
        with np.errstate(invalid="ignore", divide="ignore"):
            reach = np.maximum(d - low, high - d)
            sure = reach * reach <= np.maximum(low, 0) * (k / g) + k * r2
        maybe = np.flatnonzero(~(sure.all(axis=0) & (g > 0)))     # NaN (gaps) included
    return maybe, flat[:, maybe], g[maybe], r2[maybe]


def _exact_outliers(flat, g, r2, core, threshold, window):
    """The test of :func:`time_outliers` on series ``flat`` (nb, m), with their gain and
    squared read noise (m,)."""
    nb = flat.shape[0]
    # series with a NaN (a NaN or inf sum; a finite series whose float32 sum overflowed
    # would only be refilled with its own values)
    gaps = np.flatnonzero(~np.isfinite(flat.sum(axis=0, dtype=np.float32)))
    with np.errstate(invalid="ignore"):
        med = _running_median_at(flat, window, core)       # NaN where a series has gaps
    if gaps.size:           # those series with NaN filled with the pixel's own median
        sub = flat[:, gaps]
        fill = np.nan_to_num(nanmedian0(sub))
        filled = np.where(np.isfinite(sub), sub, fill[None])
        med[:, gaps] = _running_median_at(filled, window, core)
    var = np.maximum(med, 0) / g + r2
    var *= 1.0 + np.pi / (2.0 * window)
    d = flat[core]
    with np.errstate(invalid="ignore"):
        return (np.abs(d - med) > threshold * np.sqrt(var)) & np.isfinite(d)


def _window_at(filled, window):
    """``at(start, count, step)``: ``filled`` at the mirrored positions ``start - window // 2``,
    every ``step``, ``count`` of them (a view where they are regular)."""
    idx = reflect_index(filled.shape[0], window // 2).tolist()

    def at(start, count, step=1):
        i = idx[start:start + step * count:step]
        if i == list(range(i[0], i[0] + step * len(i), step)):
            return filled[i[0]:i[0] + step * (len(i) - 1) + 1:step]
        return filled[i]

    return at


def _window_views(filled, window, core):
    """The ``window`` values of each ``core`` position of a running median (edges
    mirrored), as arrays ``(ncore, ...)``."""
    c0, c1, _ = core.indices(filled.shape[0])
    at = _window_at(filled, window)
    return [at(c0 + k, c1 - c0) for k in range(2 * (window // 2) + 1)]


def _running_median_at(filled, window, core):
    """``running_median(filled, window)[core]``, computing only the ``core`` positions.

    Two neighbouring positions share ``window - 1`` values: their two middle values ``lo``
    and ``hi`` are found once, and each median is its own extra value clipped to
    ``[lo, hi]`` (the same values as a sorting network per position, at about half the
    cost)."""
    nb = filled.shape[0]
    half = window // 2
    if half == 0 or nb == 1:
        return filled[core].copy()
    c0, c1, _ = core.indices(nb)
    at = _window_at(filled, window)
    ncore = c1 - c0
    npair = ncore // 2
    out = np.empty((ncore,) + filled.shape[1:], filled.dtype)
    if npair:
        lo, hi = middle_values([at(c0 + 1 + k, npair, 2) for k in range(2 * half)])
        out[0:2 * npair:2] = np.minimum(np.maximum(at(c0, npair, 2), lo), hi)
        out[1:2 * npair:2] = np.minimum(np.maximum(at(c0 + 2 * half + 1, npair, 2), lo), hi)
    if ncore % 2:
        out[-1] = window_median([at(c1 - 1 + k, 1) for k in range(2 * half + 1)])[0]
    return out
