"""stcal's OLS_C ramp fit, vectorised in numpy for clean ramps; stcal for the others.

stcal's ``OLS_C`` fits each ramp segment (the groups between jumps and flagged groups)
by weighted least squares in the group index ``k`` with the weights
``|(k - mid) / mid| ** P`` (``mid`` the segment's centre), the power ``P`` picked from
the segment's signal-to-noise ``S = s g / sqrt((rn g)**2 + s g)`` (``s`` last minus first
group in DN, ``g`` the gain, ``rn`` the read noise of one read) by the table
``S < 5: 0, < 10: 0.4, < 20: 1, < 50: 3, < 100: 6, else 10``; the slope is divided by
the group time. Two-group segments are the difference over the group time.

For a pixel whose ramps in the block are all *clean* (no group flagged, no pixel DQ)
every integration is one segment of all groups, so the slope is a fixed linear
combination of the groups for each of the six powers: :func:`fast_ols_fit` computes it
for all such pixels at once, in float64 as stcal does, and hands the others (jumps,
saturation, flagged pixels: a few per cent) to stcal on a compacted array. The result
is stcal's to float32 precision (tested); the variances are those of
:func:`tsocontainer.ramps.fitting.exact_ols_variance` for one-segment ramps, as the
``variance="exact"`` default of :func:`~tsocontainer.ramps.fitting.stcal_fit` gives.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tsocontainer.ramps.fitting import _POWERS, _SNR_EDGES, stcal_fit, weight_factor_tables
from tsocontainer.ramps.twopoint import default_workers

__all__ = ["fast_ols_fit", "clean_pixels"]

_CHUNK = 1_000_000        # group values per row chunk


def clean_pixels(gdq, pdq):
    """Pixels whose ramps in the block have no group flag and no pixel DQ.

    Parameters
    ----------
    gdq : ndarray of uint8, shape (n, ngroups, ny, nx)
        Group DQ.
    pdq : ndarray of uint32, shape (ny, nx)
        Pixel DQ.

    Returns
    -------
    ndarray of bool, shape (ny, nx)

    Examples
    --------
    >>> gdq = np.zeros((2, 3, 1, 2), np.uint8); gdq[1, 2, 0, 1] = 4
    >>> clean_pixels(gdq, np.zeros((1, 2), np.uint32)).tolist()
    [[True, False]]
    """
    return ~np.bitwise_or.reduce(gdq, axis=(0, 1)).astype(bool) & (np.asarray(pdq) == 0)


def _coefficients(ngroups: int):
    """Slope coefficients ``a[p, k]`` (per group index) of the six weightings."""
    k = np.arange(ngroups, dtype=float)
    mid = (ngroups - 1) / 2.0
    out = np.zeros((len(_POWERS), ngroups))
    for j, p in enumerate(_POWERS):
        w = np.abs((k - mid) / mid) ** p if p > 0 else np.ones(ngroups)
        xbar = (w * k).sum() / w.sum()
        out[j] = w * (k - xbar) / (w * (k - xbar) ** 2).sum()
    return out


def _clean_slopes(y, gain, rn_read, group_time):
    """stcal's OLS_C slopes (DN/s, float64) of one-segment ramps ``y`` (n, ngroups, ...)."""
    ng = y.shape[1]
    first = y[:, 0].astype(np.float64)
    if ng == 2:
        return (y[:, 1] - first) / group_time
    s = (y[:, -1] - first) * gain
    den = (rn_read * gain) ** 2 + s
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(den > 0, s / np.sqrt(np.where(den > 0, den, 1.0)), 0.0)
    pidx = np.searchsorted(np.asarray(_SNR_EDGES), np.maximum(snr, 0.0), side="right")
    a = _coefficients(ng)
    slope = a[pidx, 0] * first
    for k in range(1, ng):
        slope += a[pidx, k] * y[:, k]
    return slope / group_time


def fast_ols_fit(data, gdq, pdq, gain, readnoise, readout: dict, *,
                 variance: str = "exact") -> dict:
    """OLS_C fit of a block: numpy for clean pixels, stcal for the rest (module doc).

    Parameters
    ----------
    data, gdq, pdq, gain, readnoise, readout
        As :func:`tsocontainer.ramps.fitting.stcal_fit`.
    variance : {"exact", "stcal"}
        With ``"stcal"`` every pixel goes to stcal (its variances of clean ramps are
        approximations, which this fit does not reproduce).

    Returns
    -------
    dict
        As :func:`~tsocontainer.ramps.fitting.stcal_fit` (``algorithm`` ``"OLS_C"``).

    Examples
    --------
    >>> ramp = (np.arange(1, 6) * 10.0)[None, :, None, None] + np.zeros((2, 5, 3, 4))
    >>> out = fast_ols_fit(ramp.astype(np.float32), np.zeros(ramp.shape, np.uint8),
    ...                    np.zeros((3, 4), np.uint32), np.ones((3, 4), np.float32),
    ...                    np.full((3, 4), 5.0, np.float32), {"group_time": 2.0})
    >>> round(float(out["slope"][0, 1, 1]), 3), bool(out["exact"].all())
    (5.0, True)
    """
    n, ng, ny, nx = data.shape
    pdq = np.broadcast_to(np.asarray(pdq, np.uint32), (ny, nx))
    clean = clean_pixels(gdq, pdq) if variance == "exact" and ng >= 2 else np.zeros((ny, nx), bool)
    gain = np.broadcast_to(np.asarray(gain, np.float32), (ny, nx))
    readnoise = np.broadcast_to(np.asarray(readnoise, np.float32), (ny, nx))
    shape = (n, ny, nx)
    out = {"slope": np.full(shape, np.nan, np.float32),
           "var_poisson": np.full(shape, np.nan, np.float32),
           "var_rnoise": np.full(shape, np.nan, np.float32),
           "dq": np.zeros(shape, np.uint32), "exact": np.zeros(shape, bool),
           "algorithm": "OLS_C"}
    if clean.any():          # whole rows: the other pixels' values are replaced next
        _clean_part(out, clean, data, gain, readnoise, readout)
    rest = np.flatnonzero(~clean.ravel())
    if rest.size:
        _stcal_part(out, rest, data, gdq, pdq, gain, readnoise, readout, variance)
    return out


def _columns(a, idx):
    """``a[..., y, x]`` of the flattened pixel indices ``idx``, as ``(..., 1, len(idx))``."""
    return a.reshape(a.shape[:-2] + (-1,))[..., idx][..., None, :]


def _stcal_part(out, rest, data, gdq, pdq, gain, readnoise, readout, variance):
    fit = stcal_fit(np.ascontiguousarray(_columns(data, rest)),
                    np.ascontiguousarray(_columns(gdq, rest)),
                    np.ascontiguousarray(_columns(pdq, rest)),
                    np.ascontiguousarray(_columns(gain, rest)),
                    np.ascontiguousarray(_columns(readnoise, rest)), readout,
                    algorithm="OLS_C", variance=variance)
    n = data.shape[0]
    fit.setdefault("exact", np.zeros(fit["slope"].shape, bool))    # stcal skipped all
    for key in ("slope", "var_poisson", "var_rnoise", "dq", "exact"):
        flat = out[key].reshape(n, -1)
        flat[:, rest] = fit[key].reshape(n, -1)


def _clean_variances(y, slope, gain, readnoise, group_time, nframes):
    """:func:`~tsocontainer.ramps.fitting.exact_ols_variance` of one-segment ramps of
    all groups (the same arithmetic, without looking for their length)."""
    fr, fp = weight_factor_tables(y.shape[1])
    rn_read = readnoise / np.sqrt(2.0 * nframes)
    sig = (y[:, -1] - y[:, 0]) * gain
    den = (rn_read * gain) ** 2 + sig
    snr = np.where((den > 0) & (sig > 0), sig / np.sqrt(den), 0.0)
    pidx = np.searchsorted(np.asarray(_SNR_EDGES), snr, side="right")
    vr = rn_read ** 2 * fr[-1][pidx] / group_time ** 2
    vp = np.maximum(np.nan_to_num(slope), 0) * fp[-1][pidx] / (gain * group_time)
    return vp.astype(np.float32), vr.astype(np.float32)


def _clean_part(out, clean, data, gain, readnoise, readout):
    """Slopes and exact variances of the rows with clean pixels, row chunks on a thread
    pool; every pixel of those rows is written (the others are then replaced)."""
    n, ng, ny, nx = data.shape
    group_time = float(readout["group_time"])
    nframes = int(readout.get("nframes") or 1)
    g = gain.astype(np.float64)
    rn = readnoise.astype(np.float64)
    rows = max(1, _CHUNK // max(1, n * ng * nx))

    def work(r0):
        sl = slice(r0, min(ny, r0 + rows))
        if not clean[sl].any():
            return
        y = data[:, :, sl]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            slope = _clean_slopes(y, g[sl], rn[sl] / np.sqrt(2.0 * nframes), group_time)
            slope = slope.astype(np.float32)
            vp, vr = _clean_variances(y, slope, g[sl], rn[sl], group_time, nframes)
        out["slope"][:, sl], out["var_poisson"][:, sl], out["var_rnoise"][:, sl] = slope, vp, vr
        out["exact"][:, sl] = True

    starts = range(0, ny, rows)
    with ThreadPoolExecutor(max(1, min(len(starts), default_workers()))) as pool:
        list(pool.map(work, starts))
