"""The streaming pass of :meth:`RampGroup.fit_ramps`: calibrate, find jumps, fit, collect.

Blocks of integrations are read and calibrated in order. The check of jumps in time needs
``window // 2`` integrations on each side of the ones it tests, so the calibrated ramps
of the last integrations of a block wait in a small buffer until the next block has been
read (no integration is read or calibrated twice). Memory: one block plus that buffer,
plus the output cubes (rates and variances, float32) -- the size of the rateints.
"""
from __future__ import annotations

from tsocontainer._util import interactive

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tsocontainer.arrays.numerics import block_ranges, small_pages
from tsocontainer.ramps.fitting import stcal_fit
from tsocontainer.ramps.olsfast import fast_ols_fit
from tsocontainer.ramps.jumps import group_differences, stcal_jumps, time_outliers
from tsocontainer.ramps.twopoint import default_workers, twopoint_jumps

__all__ = ["fit_visit", "DIAGNOSTICS"]

log = logging.getLogger(__name__)

#: ``aux`` arrays a fit pass (re)makes
DIAGNOSTICS = ("n_saturated", "sat_count", "refpix_offsets", "onef_offsets", "n_jumps_ramp",
               "n_jumps_time", "jump_count", "white")
_JUMP = np.uint8(4)


class _Ring:
    """Per-integration arrays of a sliding range of integrations, in ``cap`` slots (a
    range is written and read where it lies, without moving the others)."""

    def __init__(self, cap, shape, dtype):
        self.cap = max(1, int(cap))
        self.arr = np.empty((self.cap,) + tuple(shape), dtype)

    def _parts(self, a, b):
        lo = a % self.cap
        first = min(b - a, self.cap - lo)
        return [(lo, lo + first, 0), (0, b - a - first, first)] if first < b - a else \
            [(lo, lo + first, 0)]

    def contiguous(self, a, b) -> bool:
        """Whether integrations ``a:b`` lie in one piece (``get`` gives a view)."""
        return len(self._parts(a, b)) == 1

    def get(self, a, b, sl=(Ellipsis,)):
        """Integrations ``a:b`` (a view unless they wrap round the ring)."""
        parts = [self.arr[(slice(p, q),) + sl] for p, q, _ in self._parts(a, b)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def put(self, a, values):
        """Write ``values`` as integrations ``a:a + len(values)``."""
        for p, q, k in self._parts(a, a + values.shape[0]):
            dst = self.arr[p:q]
            if not np.shares_memory(dst, values):
                dst[...] = values[k:k + q - p]


class _Buffer:
    """Calibrated ramps of the integrations ``next_fit .. end`` and the group differences
    (:func:`~tsocontainer.ramps.jumps.group_differences`, kept up to date as jumps are
    flagged) of ``start .. end``: each integration's differences are made once."""

    def __init__(self, n, shape, block, half, diffs=True):
        ng, ny, nx = shape
        self.start = self.end = 0
        self.data = _Ring(min(n, block + half), shape, np.float32)
        self.gdq = _Ring(min(n, block + half), shape, np.uint8)
        self.diffs = (_Ring(min(n, block + 2 * half), (ng - 1, ny, nx), np.float32) if diffs
                      else None)

    def append(self, i0, data, gdq):
        if self.end - self.start == 0:
            self.start = self.end = i0
        n = data.shape[0]
        self.data.put(i0, data)
        self.gdq.put(i0, gdq)
        if self.diffs is not None:
            if self.diffs.contiguous(i0, i0 + n):      # made where they are kept
                group_differences(data, gdq, out=self.diffs.get(i0, i0 + n))
            else:
                self.diffs.put(i0, group_differences(data, gdq))
        self.end = i0 + n

    def keep_from(self, i):
        self.start = max(self.start, min(i, self.end))
class _Outputs:
    """The output cubes and per-integration counts of a fit pass."""

    def __init__(self, rg, keep_variances):
        shape = (rg.N,) + rg.sh
        self.sci = np.empty(shape, np.float32)
        self.var = np.empty(shape, np.float32)
        self.vp = np.empty(shape, np.float32) if keep_variances else None
        self.vr = np.empty(shape, np.float32) if keep_variances else None
        self.dq_parts, self.invalid = [], []
        self.npix = rg.sh[0] * rg.sh[1]
        self.algorithm = None
        self.n_exact = 0

    def store(self, a, b, fit, pdq):
        from tsocontainer.flags import SparseDQ

        self.sci[a:b] = fit["slope"]
        np.add(fit["var_poisson"], fit["var_rnoise"], out=self.var[a:b])
        if self.vp is not None:
            self.vp[a:b], self.vr[a:b] = fit["var_poisson"], fit["var_rnoise"]
        dq = fit["dq"] | pdq[None]
        self.dq_parts.append(SparseDQ.from_dense(dq))
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(self.sci[a:b]) | ~(self.var[a:b] > 0)
        self.invalid.append(np.flatnonzero(bad) + a * self.npix)
        self.algorithm = fit["algorithm"]
        self.n_exact += int(fit["exact"].sum())


def _jumps(rg, buf, a, b, pdq, gain, rn, params):
    """Jumps within ramps, then the check in time, on integrations ``a:b`` of the buffer."""
    nframes = int(rg.meta.get("NFRAMES") or 1)
    if rg.ngroups > 2:       # 3 groups at least (jwst's JumpStep skips fewer)
        data, old = buf.data.get(a, b), buf.gdq.get(a, b)
        if params.get("method", "stcal") == "stcal":
            gdq, _, _ = stcal_jumps(data, old, pdq, gain, rn, threshold=params["threshold"],
                                    flag_neighbors=params["flag_neighbors"],
                                    group_time=rg.group_time, nframes=nframes)
            if buf.diffs is not None:
                buf.diffs.put(a, group_differences(data, gdq))
        else:
            gdq, _ = twopoint_jumps(data, old, gain, rn, threshold=params["threshold"],
                                    flag_neighbors=params["flag_neighbors"], nframes=nframes)
            if buf.diffs is not None:   # only JUMP_DET added: those differences leave
                d = buf.diffs.get(a, b)
                d[(gdq[:, 1:] & _JUMP) != 0] = np.nan
                buf.diffs.put(a, d)
        new = ((gdq & _JUMP) != 0) & ((old & _JUMP) == 0)
        rg._diag("n_jumps_ramp", (rg.N,), np.int64)[a:b] = new.sum(axis=(1, 2, 3))
        buf.gdq.put(a, gdq)
    if params["time_threshold"] is not None and rg.ngroups > 1:
        count = rg._diag("n_jumps_time", (rg.N,), np.int64)
        count[a:b] += _time_check(buf, a, b, gain, rn, params)
    flagged = ((buf.gdq.get(a, b) & _JUMP) != 0).any(axis=1)
    rg._diag("jump_count", rg.sh, np.int32)[...] += flagged.sum(axis=0).astype(np.int32)


def _time_check(buf, a, b, gain, rn, params):
    """The check in time on row chunks of the buffer, on a thread pool; new flags per
    integration of ``a:b`` (their JUMP_DET set, their differences made NaN)."""
    ng1, ny, nx = buf.diffs.arr.shape[1:]
    nb = buf.end - buf.start
    core = slice(a - buf.start, b - buf.start)
    rows = max(1, int(2e6 // max(1, nb * (ng1 + 1) * nx)))
    gdq = buf.gdq.get(a, b)

    def chunk(r0):                       # row chunks: no buffer-sized temporaries
        sl = (slice(None), slice(r0, r0 + rows))
        diffs = buf.diffs.get(buf.start, buf.end, sl)
        out = time_outliers(diffs, gain[r0:r0 + rows], rn[r0:r0 + rows], core,
                            params["time_threshold"], params["time_window"])
        tail = gdq[:, 1:, r0:r0 + rows]
        extra = out & ((tail & _JUMP) == 0)
        tail[extra] |= _JUMP
        for j in np.flatnonzero(extra.any(axis=(1, 2, 3))):
            buf.diffs.get(a + j, a + j + 1, sl)[0][extra[j]] = np.nan     # one: a view
        return extra.sum(axis=(1, 2, 3))

    starts = range(0, ny, rows)
    with ThreadPoolExecutor(max(1, min(len(starts), default_workers()))) as pool:
        counts = sum(pool.map(chunk, starts))
    buf.gdq.put(a, gdq)
    return counts


def _fit_core(rg, buf, a, b, pdq, noise, fit_opts, out):
    gain, rn = noise
    params = rg.plan.get("jumps", {}).get("params")
    if params is not None and rg.ngroups > 1:
        _jumps(rg, buf, a, b, pdq, gain, rn, params)
    readout = {"group_time": rg.group_time, "frame_time": rg.meta.get("TFRAME"),
               "nframes": rg.meta.get("NFRAMES"), "groupgap": rg.meta.get("GROUPGAP"),
               "instrument": rg.instrument}
    args = (buf.data.get(a, b), buf.gdq.get(a, b), pdq, gain, rn, readout)
    if fit_opts["algorithm"] == "OLS_C":      # stcal's estimator, numpy for clean ramps
        fit = fast_ols_fit(*args, variance=fit_opts["variance"])
    else:
        fit = stcal_fit(*args, **fit_opts)
    out.store(a, b, fit, pdq)
    use = ~rg.refmask
    if "onef_band" in rg.aux and rg.aux["onef_band"].any():
        use = use & rg.aux["onef_band"]
    rg._diag("white", (rg.N,), np.float64)[a:b] = np.nansum(fit["slope"][:, use], axis=1)


def _calibrated_blocks(rg, ranges):
    """``(i0, i1, (data, gdq, pdq))`` of each block; with more than one core the next block
    is read and calibrated on a thread while this one goes through the jumps and the fit
    (reading and most calibrations are serial: they then overlap with the threaded steps).
    Each block is calibrated as it would be alone: the results do not change."""
    if default_workers() < 2 or len(ranges) < 2:
        for i0, i1 in ranges:
            yield i0, i1, rg._calibrated(i0, i1, record=True)
        return
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(rg._calibrated, *ranges[0], record=True)
        for k, (i0, i1) in enumerate(ranges):
            block = ahead.result()
            if k + 1 < len(ranges):
                ahead = pool.submit(rg._calibrated, *ranges[k + 1], record=True)
            yield i0, i1, block
            del block


def _want_progress(progress) -> bool:
    return interactive() if progress is None else bool(progress)


def _group(rg, out, params, summary):
    """The rates as a TSOGroup laid out like one read from rateints."""
    from tsocontainer.flags import FlagStore, SparseDQ
    from tsocontainer.group.container import TSOGroup

    meta = {k: v for k, v in rg.meta.items() if v is not None}
    meta.update({"BUNIT": "DN/s", "WAVESRC": "none", "STAGE1": "tsocontainer.ramps",
                 "RAMPFIT": out.algorithm, "NGROUPS": rg.ngroups})
    meta.setdefault("TIMESRC", "none" if rg.time is None else "given")
    if rg.mode is not None:
        meta["MODE"] = rg.mode.name
    g = TSOGroup(out.sci, out.var, SparseDQ.concatenate(out.dq_parts), rg.time, wave=None,
                 mode=rg.mode, meta=meta, int_numbers=rg.int_numbers, files=rg.files)
    flags = FlagStore(out.sci.shape)
    invalid = np.concatenate(out.invalid) if out.invalid else np.zeros(0, np.int64)
    flags.set_indices("invalid", invalid)
    history = [dict(h, step=f"ramps:{h['step']}") for h in rg.history]
    g._restore(history=history, flags=flags)
    if out.vp is not None:
        g.set_aux("var_poisson", out.vp, per_integration=True)
        g.set_aux("var_rnoise", out.vr, per_integration=True)
    summary["invalid"] = int(invalid.size)
    g._record("fit_ramps", params, summary)
    return g


def fit_visit(rg, algorithm="OLS_C", block_size=None, keep_variances=False, progress=None,
              variance="exact"):
    """Stream the visit through the plan, the jump detection and the fit (see the module).

    Parameters
    ----------
    rg : RampGroup
        The ramps and their plan.
    algorithm : {'OLS_C', 'LIKELY'}
        stcal's fit.
    block_size : int, optional
        Integrations per block.
    keep_variances : bool
        Keep VAR_POISSON and VAR_RNOISE as ``aux`` cubes.
    progress : bool, optional
        Progress bar.
    variance : {'exact', 'stcal'}
        OLS_C variances (:mod:`tsocontainer.ramps.fitting`).

    Returns
    -------
    TSOGroup
    """
    with small_pages():          # GBs of block-sized temporaries (see small_pages)
        return _fit_visit(rg, algorithm, block_size, keep_variances, progress, variance)


def _fit_visit(rg, algorithm, block_size, keep_variances, progress, variance):
    from tqdm import tqdm

    t0 = time.perf_counter()
    rg._refresh()
    noise = rg._noise()
    for key in DIAGNOSTICS:
        rg.aux.pop(key, None)
    jp = rg.plan.get("jumps", {}).get("params")
    half = jp["time_window"] // 2 if jp and jp["time_threshold"] is not None else 0
    out = _Outputs(rg, keep_variances)
    block = rg._block_ints(block_size)
    buf = _Buffer(rg.N, (rg.ngroups,) + rg.sh, block, half, diffs=half > 0 and rg.ngroups > 1)
    next_fit = 0
    bar = tqdm(total=rg.N, unit="int", desc="fit ramps", disable=not _want_progress(progress))
    for i0, i1, (data, gdq, pdq) in _calibrated_blocks(rg, block_ranges(rg.N, block)):
        buf.append(i0, data, gdq)
        ready = rg.N if i1 == rg.N else max(next_fit, i1 - half)
        while next_fit < ready:          # at most one block at a time into stcal
            stop = min(ready, next_fit + block)
            _fit_core(rg, buf, next_fit, stop, pdq, noise,
                      {"algorithm": algorithm, "variance": variance}, out)
            bar.update(stop - next_fit)
            next_fit = stop
        buf.keep_from(max(buf.start, ready - half))
    bar.close()
    dt = time.perf_counter() - t0
    params = {"algorithm": algorithm, "block_size": block_size,
              "keep_variances": keep_variances, "variance": variance}
    summary = {"N": rg.N, "algorithm": out.algorithm, "seconds": round(dt, 3),
               "exact_variances": out.n_exact,
               "jumps_ramp": int(rg.aux.get("n_jumps_ramp", np.zeros(1)).sum()),
               "jumps_time": int(rg.aux.get("n_jumps_time", np.zeros(1)).sum())}
    g = _group(rg, out, params, dict(summary))
    rg._record("fit_ramps", params, summary)
    log.info("fit_ramps (%s): %d integrations of %s, %d + %d jumps (ramps + time), %.1f s",
             out.algorithm, rg.N, rg.sh, summary["jumps_ramp"], summary["jumps_time"], dt)
    return g
