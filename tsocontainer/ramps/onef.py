"""Group-level 1/f correction of ramps: masked line medians per group and amplifier.

1/f noise is (nearly) constant along the fast-read axis of a read, so every *group* of
every integration has its own offset per line (a column for SOSS and NIRSpec, a row for
NIRCam and MIRI) and amplifier. Removing it from the groups, before the ramp fit, takes
out what the rate-level correction (:mod:`tsocontainer.cleaning.onef`) cannot: the
part of 1/f that differs from group to group inside a ramp, which the fit turns into
slope noise.

The offsets are line statistics (a trimmed mean by default, or the median) of the
*residual* of each group from a model of the scene,
over pixels outside the trace (the band of :func:`tsocontainer.cleaning.background.trace_mask`,
the same as the rate-level step's) and outside the reference pixels:

* ``median``: residual from the deep ramp, no trace mask;
* ``masked-median``: residual from the deep ramp, trace masked;
* ``solve`` (the default): ``masked-median``'s statistic on every line that has at least
  a quarter of its pixels (:data:`MIN_FREE_FRACTION`) outside the trace band; a line
  with fewer (NIRCam, whose rows run
  along the trace: ~36 of SUBGRISM64's 64 rows have no pixel off the trace in an
  amplifier) is *solved* instead: each group of the line is fitted as
  ``alpha * (deep ramp's group) + c`` over all its pixels (inverse-variance weights from
  one read's noise and the deep ramp's signal, one 5-sigma clip), and ``c``, shrunk by
  ``tau^2 / (tau^2 + var(c))`` (``tau^2`` the 1/f variance of the masked lines), is the
  offset (the group-level form of the rate-level ``solve``; a line whose pixels are all
  bright pins ``c`` poorly and keeps its 1/f rather than gaining noise). Without it,
  those lines kept their group 1/f; the ramp fit's signal-dependent weighting then turns
  it into rate offsets that differ from pixel to pixel along the line, which no rate-level
  line fit removes (NIRCam from uncal: white-light residual 2.3x the photon + read noise).
* ``scale-achromatic``: residual from the deep ramp scaled by the integration's own
  white-light level (the signal of the trace pixels relative to the deep ramp's), trace
  masked (exoTEDRF's scale-achromatic, applied to groups). The scaling also scales the
  sky, which does not transit: where the sky is bright the offsets then follow the
  transit (``(scale - 1) * sky``); on a simulated SOSS visit this made the white-light
  scatter 3-4 times worse than ``masked-median``.

The *deep ramp* is the mean of the calibrated groups over a sample of integrations spread
over the visit (:func:`deep_ramp`): subtracting it removes the bias structure, the star
and the sky (which the line medians would otherwise take as 1/f), so the sky's own
count rate is kept. What the deep ramp carries of 1/f is common to all integrations and
changes no relative flux.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tsocontainer._util import check_option
from tsocontainer.cleaning.background import line_median
from tsocontainer.ramps.twopoint import default_workers

__all__ = ["GROUP_ONEF_METHODS", "LINE_STATISTICS", "deep_ramp", "white_scale",
           "group_onef_offsets", "apply_group_onef", "line_trimmed_mean"]

GROUP_ONEF_METHODS = ("solve", "median", "masked-median", "scale-achromatic")
#: a line (of an amplifier) with less than this fraction of its pixels off the trace band
#: is solved (``solve``). Lines are short where amplifiers interleave (MIRI: 18 pixels of a
#: row per amplifier, 12 off the band): their masked statistic is kept
MIN_FREE_FRACTION = 0.25
#: the statistic of a line's residuals: its median, or its mean after dropping the lowest and
#: highest 10 % (a Gaussian's trimmed mean has ~1.5 times less variance than its median:
#: the error of a group's offset is common to the whole line, so it matters)
LINE_STATISTICS = ("trimmed-mean", "median")
_TRIM = 0.1
_BAD = np.uint8(1 | 2)   # DO_NOT_USE | SATURATED


def deep_ramp(blocks):
    """Mean ramp ``(ngroups, ny, nx)`` over blocks of calibrated ramps (bad groups left out).

    Parameters
    ----------
    blocks : iterable of (data, gdq)
        Calibrated ramps ``(n, ngroups, ny, nx)`` and their group DQ.

    Returns
    -------
    ndarray of float32
        NaN where a group was never usable.
    """
    total = count = None
    for data, gdq in blocks:
        if total is None:
            total = np.zeros(data.shape[1:], np.float64)
            count = np.zeros(data.shape[1:], np.int64)
        for one, dq in zip(data, gdq):     # in place, one integration at a time
            ok = (dq & _BAD) == 0
            np.add(total, one, out=total, where=ok)
            count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def white_scale(data, gdq, deep, band):
    """Signal of each integration's trace pixels relative to the deep ramp's.

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Calibrated ramps.
    gdq : ndarray of uint8
        Group DQ.
    deep : ndarray, shape (ngroups, ny, nx)
        Deep ramp.
    band : ndarray of bool, shape (ny, nx)
        Trace pixels.

    Returns
    -------
    ndarray of float, shape (n,)
        1 where it cannot be measured.
    """
    if data.shape[1] < 2 or not band.any():
        return np.ones(data.shape[0])
    ok = ((gdq[:, -1] | gdq[:, 0]) & _BAD) == 0
    ok &= band[None] & np.isfinite(deep[-1] - deep[0])[None]
    sig = np.where(ok, data[:, -1] - data[:, 0], 0).sum(axis=(1, 2), dtype=np.float64)
    ref = np.where(ok, (deep[-1] - deep[0])[None], 0).sum(axis=(1, 2), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(ref > 0, sig / ref, 1.0)
    return np.where(np.isfinite(s), s, 1.0)


def line_trimmed_mean(block, good, axis: int, trim: float = _TRIM):
    """Mean of the ``good`` values of each line after dropping the ``trim`` lowest and highest.

    Parameters
    ----------
    block : ndarray, shape (n, ny, nx)
        Values.
    good : ndarray of bool, broadcastable to ``block``
        Values to use.
    axis : int
        Frame axis along which the lines run (0: one value per column; 1: per row).
    trim : float
        Fraction dropped at each end (0 <= trim < 0.5).

    Returns
    -------
    ndarray of float32, shape (n, nlines)
        NaN where a line has no good value.

    Examples
    --------
    >>> b = np.array([[[1.0, 2.0, 3.0, 4.0, 100.0]]])
    >>> line_trimmed_mean(b, np.ones(b.shape, bool), 1, 0.2).tolist()
    [[3.0]]
    """
    good = np.broadcast_to(good, block.shape)
    ok = good & np.isfinite(block)
    count = ok.sum(axis=-1 if axis == 1 else 1)
    a = np.where(ok, block, np.float32(np.inf)).astype(np.float32, copy=False)
    if axis == 0:                # lines along the last axis, contiguous, for the sort
        a = _transposed(a)
    a.sort(axis=-1)              # the bad values sit at the end: never summed
    csum = np.zeros(a.shape[:-1] + (a.shape[-1] + 1,), np.float32)
    np.cumsum(a, axis=-1, out=csum[..., 1:])
    lo = np.floor(trim * count).astype(np.int64)
    hi = count - lo
    total = np.take_along_axis(csum, hi[..., None], -1)[..., 0] - \
        np.take_along_axis(csum, lo[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hi > lo, total / np.maximum(hi - lo, 1), np.nan).astype(np.float32)


def _transposed(a):
    """``swapaxes(a, 1, 2)`` of a 3D array as a C-contiguous copy, frame by frame."""
    out = np.empty((a.shape[0], a.shape[2], a.shape[1]), a.dtype)
    for f in range(a.shape[0]):
        out[f] = a[f].T
    return out


def group_onef_offsets(method, data, gdq, deep, band, refmask, fast_axis: int, amp,
                       statistic: str = "trimmed-mean", noise=None):
    """1/f offset of every integration, group, line and amplifier of a block.

    Parameters
    ----------
    method : str
        One of :data:`GROUP_ONEF_METHODS`.
    data : ndarray, shape (n, ngroups, ny, nx)
        Calibrated ramps (bias and reference pixels done).
    gdq : ndarray of uint8
        Group DQ (saturated and do-not-use groups are left out).
    deep : ndarray, shape (ngroups, ny, nx)
        Deep ramp.
    band : ndarray of bool, shape (ny, nx)
        Trace pixels (left out except by ``median``).
    refmask : ndarray of bool, shape (ny, nx)
        Reference pixels (always left out).
    fast_axis : int
        Frame axis along which 1/f is constant.
    amp : ndarray of int
        Amplifier of each position along the fast axis.
    statistic : {'trimmed-mean', 'median'}
        Statistic of a line's residuals (:data:`LINE_STATISTICS`).
    noise : (gain, cds) maps, optional
        Gain (e/DN) and CDS read noise (DN) of every pixel, for the weights of the
        ``solve`` lines (default: equal weights).

    Returns
    -------
    ndarray of float32, shape (n, ngroups, nlines, namp)
        Offsets (0 where a line of an amplifier has no usable pixel).
    """
    check_option(method, GROUP_ONEF_METHODS, "group 1/f method")
    check_option(statistic, LINE_STATISTICS, "line statistic")
    n, ng, ny, nx = data.shape
    finite = np.isfinite(deep)
    use_static = ~refmask & finite.all(axis=0)
    if method != "median":
        use_static &= ~band
    model = (deep if finite.all() else np.nan_to_num(deep))[None]
    if method == "scale-achromatic":
        model = white_scale(data, gdq, deep, band).astype(np.float32)[:, None, None, None] * model
    resid = data - model
    good = ((gdq & _BAD) == 0) & use_static[None, None]
    resid = resid.reshape(n * ng, ny, nx)
    good = good.reshape(n * ng, ny, nx)
    namp = int(np.max(amp)) + 1
    nlines = ny if fast_axis == 1 else nx
    out = np.zeros((n * ng, nlines, namp), np.float32)
    for a in range(namp):
        pick = _positions(np.asarray(amp), a)   # a slice (a view) where contiguous
        if pick is None:
            continue
        cols = np.flatnonzero(np.asarray(amp) == a)
        sub = (slice(None), slice(None), pick) if fast_axis == 1 else (slice(None), pick)
        out[:, :, a] = np.nan_to_num(_lines_by_frames(statistic, resid[sub], good[sub],
                                                      fast_axis))
        if method == "solve":
            free = use_static[sub[1:]].sum(axis=fast_axis)
            usable = (~refmask)[sub[1:]].sum(axis=fast_axis)
            lines = np.flatnonzero(((free == 0) & (usable > 0))
                                   | (free < MIN_FREE_FRACTION * usable))
            if lines.size:
                c, var_c = _solve_lines(data, gdq, deep, refmask, fast_axis, cols, lines, noise)
                view = out.reshape(n, ng, nlines, namp)
                others = np.setdiff1d(np.flatnonzero(free > 0), lines)
                tau2 = (float(np.mean(view[:, :, others, a] ** 2)) if others.size else
                        max(float(np.mean(c ** 2) - np.mean(var_c)), 0.0))
                # shrink each fitted offset by its error against the 1/f variance (Wiener):
                # a line of bright pixels only pins its offset poorly, and an offset known
                # worse than the 1/f it removes would add noise instead
                with np.errstate(invalid="ignore", divide="ignore"):
                    keep = np.where(tau2 + var_c > 0, tau2 / (tau2 + var_c), 0.0)
                view[:, :, lines, a] = (c * keep).astype(np.float32)
    return out.reshape(n, ng, nlines, namp)


def _solve_lines(data, gdq, deep, refmask, fast_axis, cols, lines, noise):
    """Offsets ``(n, ngroups, len(lines))`` of lines fitted as ``alpha * deep + c`` per
    group over all their pixels in ``cols`` (see ``solve``), and their variances."""
    def pick(a):     # (..., ny, nx) -> (..., line, pixel along the line)
        a = a[..., cols] if fast_axis == 1 else a[..., cols, :]
        a = a if fast_axis == 1 else np.swapaxes(a, -1, -2)
        return a[..., lines, :]

    y = pick(data).astype(np.float64)
    ok = (pick(gdq) & _BAD) == 0
    x = np.nan_to_num(pick(deep)).astype(np.float64)
    ok &= ~pick(refmask)[None, None] & np.isfinite(pick(deep))[None] & np.isfinite(y)
    y = np.where(ok, y - x[None], 0.0)           # residual of each group from the deep's
    if noise is None:
        var = np.ones(x.shape)
    else:   # one read's noise plus the group's photons (groups, not differences: the
        # offsets' errors stay independent from group to group where read noise rules)
        gain, cds = (pick(np.asarray(m, np.float64)) for m in noise)
        var = 0.5 * cds[None] ** 2 + np.clip(x, 0, None) / np.maximum(gain[None], 1e-3)
    w = np.where(ok, 1.0 / np.maximum(var, 1e-12)[None], 0.0)
    for _ in range(2):                           # fit, clip at 5 sigma, fit again
        s1, sx, sxx = w.sum(-1), (w * x).sum(-1), (w * x * x).sum(-1)
        sy, sxy = (w * y).sum(-1), (w * x * y).sum(-1)
        det = s1 * sxx - sx * sx
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = np.where(det > 0, (s1 * sxy - sx * sy) / det, 0.0)
            c = np.where(det > 0, (sxx * sy - sx * sxy) / det,
                         np.where(s1 > 0, sy / np.maximum(s1, 1e-300), 0.0))
        r = y - alpha[..., None] * x - c[..., None]
        w = np.where(r * r * w <= 25.0, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_c = np.where(det > 0, sxx / det, np.inf)
        if noise is None:        # equal weights: the variance from the residuals
            k = np.maximum((w > 0).sum(-1) - 2, 1)
            var_c = np.where(det > 0, var_c * (w * r * r).sum(-1) / k, np.inf)
    return np.nan_to_num(c), var_c


def _lines_by_frames(statistic, block, good, axis):
    """The line statistic of each frame of ``block``, frame chunks on a thread pool (each
    frame's lines are independent: the result does not depend on the chunks)."""
    def lines(sl):
        if statistic == "median":
            return line_median(block[sl], good[sl], axis)[0]
        return line_trimmed_mean(block[sl], good[sl], axis)

    n = block.shape[0]
    nchunk = max(1, min(n, 4 * default_workers()))
    bounds = np.linspace(0, n, nchunk + 1).astype(int)
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if len(slices) == 1:
        return lines(slices[0])
    with ThreadPoolExecutor(min(len(slices), default_workers())) as pool:
        return np.concatenate(list(pool.map(lines, slices)))


def apply_group_onef(data, offsets, fast_axis: int, amp) -> None:
    """Subtract the offsets of :func:`group_onef_offsets` from the ramps (in place).

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Ramps, edited in place.
    offsets : ndarray, shape (n, ngroups, nlines, namp)
        Offsets.
    fast_axis : int
        Frame axis along which 1/f is constant.
    amp : ndarray of int
        Amplifier along the fast axis.

    Examples
    --------
    >>> d = np.zeros((1, 1, 2, 3), np.float32)
    >>> apply_group_onef(d, np.array([1., 2.]).reshape(1, 1, 2, 1), 1, np.zeros(3, int))
    >>> d[0, 0].tolist()
    [[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]]
    """
    amp = np.asarray(amp)
    for a in range(offsets.shape[-1]):                 # each amplifier's positions: a
        pos = _positions(amp, a)                       # slice where contiguous
        if pos is None:
            continue
        if fast_axis == 1:                             # lines are rows
            data[..., pos] -= offsets[:, :, :, a, None]
        else:                                          # lines are columns
            data[:, :, pos, :] -= offsets[:, :, None, :, a]


def _positions(amp, a):
    """Positions along the fast axis read by amplifier ``a``: a slice where they are
    contiguous, else their indices; None when there are none."""
    cols = np.flatnonzero(amp == a)
    if cols.size == 0:
        return None
    return slice(cols[0], cols[-1] + 1) if cols[-1] - cols[0] + 1 == cols.size else cols
