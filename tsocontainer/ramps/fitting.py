"""Ramp fitting with stcal on plain arrays: per-integration rates and their variances.

:func:`stcal_fit` builds stcal's ``RampData`` from arrays and calls
``stcal.ramp_fitting.ramp_fit.ramp_fit_data`` as the jwst pipeline's ``RampFitStep``
does (optimal weighting, ``suppress_one_group`` on, one core), with:

* ``OLS_C``: stcal's C ordinary-least-squares fit with the optimal (signal-to-noise
  dependent) weights of Fixsen et al. (2000), ramps split at jumps;
* ``LIKELY``: stcal's maximum-likelihood fit of the group differences (Brandt 2024),
  which needs at least 4 groups (with fewer, stcal falls back to ``OLS_C`` and this
  module says so).

Read noise is the CDS read noise in DN (stcal divides it by ``sqrt(2 nframes)``); stcal
multiplies the array it is given in place, so it gets a copy.

**Variances.** stcal's ``OLS_C`` reports the read-noise variance of an *unweighted* fit
(``12 RN**2 / (L**3 - L)``) and the Poisson variance of a first-to-last difference
(``rate / (gain (L - 1) tgroup)``) whatever weights it used. Measured here on simulated
ramps (9 groups, 51 200 ramps per level), the normalised residuals of its rates have a
standard deviation of 1.02-1.034 between 1 and 30 DN/s (signal-to-noise 5-50 per ramp,
where its weights are neither uniform nor end-point): its variances are too small by up
to 7 %. With ``variance="exact"`` (default) the variances of every ramp fitted as one
segment (no jump; saturated groups at the end allowed) are replaced by the exact
variances of stcal's own estimator: the weights ``|(k - mid) / mid| ** P`` with the power
``P`` stcal picks from the segment's signal-to-noise (same table, same data), then
``VAR_RNOISE = RN_read**2 sum(a_k**2) / tgroup**2`` and ``VAR_POISSON = max(rate, 0)
sum_jk(a_j a_k min(j, k)) / (gain tgroup)`` for the slope ``sum(a_k y_k) / tgroup``.
On the same ramps the normalised residuals then have a standard deviation of
0.997-1.012. Ramps with jumps keep stcal's values. ``LIKELY``'s variances are stcal's
(normalised residuals 1.004-1.005 on the same test).
"""
from __future__ import annotations

import logging
import warnings
from functools import lru_cache

import numpy as np

from tsocontainer._util import check_option

__all__ = ["FIT_ALGORITHMS", "VARIANCES", "stcal_fit", "exact_ols_variance", "weight_factor_tables",
           "LIKELY_MIN_GROUPS"]

log = logging.getLogger(__name__)

FIT_ALGORITHMS = ("OLS_C", "LIKELY")
VARIANCES = ("exact", "stcal")
#: stcal OLS_C: segment signal-to-noise edges and the weighting power of each interval
#: (``snr_power`` in stcal's ``slope_fitter.c``)
_SNR_EDGES = (5.0, 10.0, 20.0, 50.0, 100.0)
_POWERS = (0.0, 0.4, 1.0, 3.0, 6.0, 10.0)
#: fewest groups of stcal's likelihood fit
LIKELY_MIN_GROUPS = 4


def stcal_fit(data, gdq, pdq, gain, readnoise, readout: dict, *, algorithm: str = "OLS_C",
              variance: str = "exact") -> dict:
    """Fit the ramps of a block of integrations with stcal.

    Parameters
    ----------
    data : ndarray of float32, shape (n, ngroups, ny, nx)
        Calibrated ramps (DN).
    gdq : ndarray of uint8
        Group DQ (saturated, do-not-use and jump groups).
    pdq : ndarray of uint32, shape (ny, nx)
        Pixel DQ.
    gain, readnoise : ndarray of float32, shape (ny, nx)
        Gain (e-/DN) and CDS read noise (DN).
    readout : dict
        ``group_time`` (``TGROUP``, s) and optionally ``frame_time`` (``TFRAME``, default
        the group time), ``nframes``, ``groupgap`` and ``instrument`` (``INSTRUME``; stcal
        treats MIRI's first frames differently).
    algorithm : {"OLS_C", "LIKELY"}
        Fit.
    variance : {"exact", "stcal"}
        ``OLS_C`` variances (see the module docstring).

    Returns
    -------
    dict
        ``slope``, ``var_poisson``, ``var_rnoise`` (float32, ``(n, ny, nx)``), ``dq``
        (uint32) and ``algorithm`` (the one used).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ramp = (np.arange(1, 6) * 10.0)[None, :, None, None] + np.zeros((2, 5, 3, 4))
    >>> out = stcal_fit(ramp.astype(np.float32), np.zeros(ramp.shape, np.uint8),
    ...                 np.zeros((3, 4), np.uint32), np.ones((3, 4), np.float32),
    ...                 np.full((3, 4), 5.0, np.float32), {"group_time": 2.0})
    >>> round(float(out["slope"][0, 1, 1]), 3)
    5.0
    """
    from stcal.ramp_fitting import ramp_fit, ramp_fit_class
    from stdatamodels.jwst.datamodels import dqflags

    check_option(algorithm, FIT_ALGORITHMS, "ramp-fit algorithm")
    check_option(variance, VARIANCES, "ramp-fit variance")
    ny, nx = data.shape[2:]
    if algorithm == "LIKELY" and data.shape[1] < LIKELY_MIN_GROUPS:
        log.warning("LIKELY needs >= %d groups (have %d): fitting with OLS_C",
                    LIKELY_MIN_GROUPS, data.shape[1])
        algorithm = "OLS_C"
    rd = ramp_fit_class.RampData()
    rd.set_arrays(np.ascontiguousarray(data, np.float32), np.ascontiguousarray(gdq, np.uint8),
                  np.ascontiguousarray(pdq, np.uint32), np.zeros((ny, nx), np.float32))
    group_time = float(readout["group_time"])
    nframes = int(readout.get("nframes") or 1)
    rd.set_meta(name=str(readout.get("instrument") or "NIRISS").upper(),
                frame_time=float(readout.get("frame_time") or group_time), group_time=group_time,
                groupgap=int(readout.get("groupgap") or 0), nframes=nframes, drop_frames1=None)
    rd.set_dqflags(dqflags.pixel)
    rd.algorithm = algorithm
    rd.start_row, rd.num_rows = 0, ny
    rd.suppress_one_group_ramps = data.shape[1] > 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # stcal's all-flagged pixels
        _, integ, _ = ramp_fit.ramp_fit_data(rd, False, np.array(readnoise, np.float32),
                                             np.asarray(gain, np.float32), algorithm,
                                             "optimal", "1")
    if integ is None:
        nan = np.full((data.shape[0], ny, nx), np.nan, np.float32)
        return {"slope": nan, "var_poisson": nan.copy(), "var_rnoise": nan.copy(),
                "dq": np.ones(nan.shape, np.uint32), "algorithm": algorithm}
    out = {"slope": np.asarray(integ["slope"], np.float32),
           "var_poisson": np.array(integ["var_poisson"], np.float32),
           "var_rnoise": np.array(integ["var_rnoise"], np.float32),
           "dq": np.asarray(integ["dq"], np.uint32), "algorithm": algorithm}
    out["exact"] = np.zeros(out["slope"].shape, bool)
    if algorithm == "OLS_C" and variance == "exact":
        vp, vr, ok = exact_ols_variance(data, gdq, out["slope"], gain, readnoise,
                                        group_time=group_time, nframes=nframes)
        out["var_poisson"][ok] = vp[ok]
        out["var_rnoise"][ok] = vr[ok]
        out["exact"] = ok & np.isfinite(out["slope"])
    return out


def _weight_factors(length: int, power: float):
    """Read and Poisson variance factors of stcal's weighted slope over ``length`` groups."""
    k = np.arange(length, dtype=float)
    mid = (length - 1) / 2.0
    w = np.abs((k - mid) / mid) ** power if power > 0 else np.ones(length)
    xbar = (w * k).sum() / w.sum()
    a = w * (k - xbar) / (w * (k - xbar) ** 2).sum()
    return float((a * a).sum()), float((a[:, None] * a[None] * np.minimum.outer(k, k)).sum())


@lru_cache(maxsize=None)
def weight_factor_tables(ngroups: int):
    """Read and Poisson variance factors ``[length, power index]`` of stcal's weighted
    slope, for segment lengths 0..``ngroups`` (zero below 2).

    Parameters
    ----------
    ngroups : int
        Groups per integration.

    Returns
    -------
    fr, fp : ndarray, shape (ngroups + 1, 6)
        Read (``sum(a_k**2)``) and Poisson (``sum_jk(a_j a_k min(j, k))``) factors.

    Examples
    --------
    >>> fr, fp = weight_factor_tables(3)
    >>> round(float(fr[3, 0]), 3), round(float(fp[2, 0]), 3)
    (0.5, 1.0)
    """
    fr = np.zeros((ngroups + 1, len(_POWERS)))
    fp = np.zeros((ngroups + 1, len(_POWERS)))
    for L in range(2, ngroups + 1):
        for j, p in enumerate(_POWERS):
            fr[L, j], fp[L, j] = _weight_factors(L, p)
    fr.flags.writeable = fp.flags.writeable = False
    return fr, fp


def exact_ols_variance(data, gdq, slope, gain, readnoise, *, group_time: float,
                       nframes: int = 1):
    """Exact variances of stcal's OLS_C rate for ramps fitted as one segment.

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        The ramps given to stcal (DN).
    gdq : ndarray of uint8
        Their group DQ.
    slope : ndarray, shape (n, ny, nx)
        stcal's rates (DN/s).
    gain, readnoise : ndarray, shape (ny, nx)
        Gain (e-/DN), CDS read noise (DN).
    group_time : float
        ``TGROUP`` (s).
    nframes : int
        Frames per group.

    Returns
    -------
    var_poisson, var_rnoise : ndarray of float32, shape (n, ny, nx)
    ok : ndarray of bool
        Ramps whose usable groups are one run from group 0 (at least 2, no jump): where
        the values apply.
    """
    n, ng = data.shape[:2]
    bad = (gdq & np.uint8(1 | 2)) != 0
    jump = (gdq & np.uint8(4)) != 0
    length = np.argmax(np.concatenate([bad, np.ones((n, 1) + bad.shape[2:], bool)], axis=1),
                       axis=1)                                   # leading usable groups
    k = np.arange(ng)[None, :, None, None]
    inside = k < length[:, None]
    ok = (length >= 2) & ~(jump & inside & (k >= 1)).any(axis=1) & ~(~bad & ~inside).any(axis=1)
    last = np.take_along_axis(data, np.maximum(length - 1, 0)[:, None], axis=1)[:, 0]
    g = np.asarray(gain, np.float64)
    rn_read = np.asarray(readnoise, np.float64) / np.sqrt(2.0 * nframes)
    sig = (last - data[:, 0]) * g
    den = (rn_read * g) ** 2 + sig
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where((den > 0) & (sig > 0), sig / np.sqrt(den), 0.0)
    pidx = np.searchsorted(np.asarray(_SNR_EDGES), snr, side="right")
    fr, fp = weight_factor_tables(ng)
    vr = rn_read ** 2 * fr[length, pidx] / group_time ** 2
    vp = np.maximum(np.nan_to_num(slope), 0) * fp[length, pidx] / (g * group_time)
    return vp.astype(np.float32), vr.astype(np.float32), ok
