"""Mid-integration times of TSO segments: INT_TIMES, or derived from the headers; checked.

JWST writes ``INT_TIMES.int_mid_BJD_TDB`` as BJD_TDB - 2400000.5 (MJD-based); the
times returned here are astropy ``Time`` objects in TDB. The time axis is checked
before any cube is read (:func:`check_time_axis`):

* every value finite and in JWST's era (MJD 59500-80000, i.e. 2021-2078);
* a table holding full Julian dates (values near 2.46e6, not MJD) is converted with a
  warning and the conversion is recorded in ``meta["TIMECONV"]``: the numbers are
  unambiguous (a JWST MJD cannot exceed 1e5), so refusing would only make users edit
  files;
* strictly increasing across all segments in segment order, with a uniform cadence
  (every step within 25 % of the median: shuffled, duplicated or out-of-order segments
  break this), and a median cadence consistent with the exposure's integration time
  (``TGROUP * (NGROUPS + NRESETS)``, within a factor 2) when the header gives it.

A failed check raises :class:`~tsocontainer.errors.TSOValueError` naming the file, the
integration and the values.
"""
from __future__ import annotations

import logging

import numpy as np

from tsocontainer.errors import TSOReadError, TSOValueError

__all__ = ["times_from_segments", "check_time_axis", "MJD_RANGE"]

#: plausible MJD of a JWST exposure (launch 2021-12-25 is MJD 59573)
MJD_RANGE = (59500.0, 80000.0)
#: offset between Julian dates and MJD
_JD_MJD = 2400000.5

log = logging.getLogger(__name__)


def _table_mids(info) -> np.ndarray | None:
    """The INT_TIMES mid-times of a segment's integrations (MJD-based), or None if incomplete."""
    it = info["int_times"]
    if it is None:
        return None
    n0, n = info["int_start"], info["shape"][0]
    num, mid = it
    lookup = {}
    for k, v in zip(num.tolist(), mid.tolist()):
        if k in lookup and lookup[k] != v:
            raise TSOValueError(f"{info['path']}: INT_TIMES lists integration {k} twice with "
                                f"different times ({lookup[k]!r}, {v!r})", path=info["path"])
        lookup[k] = v
    want = [lookup.get(k) for k in range(n0, n0 + n)]
    if any(w is None for w in want):
        return None
    want = np.array(want, float)
    if not np.all(np.isfinite(want)):
        bad = int(np.flatnonzero(~np.isfinite(want))[0]) + n0
        raise TSOValueError(f"{info['path']}: INT_TIMES int_mid_BJD_TDB of integration {bad} is "
                            "not finite", path=info["path"])
    return want


def _as_mjd(info, mids: np.ndarray):
    """``mids`` as MJD: full Julian dates are converted (returned note), others checked."""
    lo, hi = MJD_RANGE
    if np.all((mids > lo + _JD_MJD) & (mids < hi + _JD_MJD)):
        log.warning("%s: INT_TIMES int_mid_BJD_TDB holds full Julian dates (%.5f, ...), not "
                    "BJD_TDB - 2400000.5 as JWST files do; converted", info["path"].name, mids[0])
        return mids - _JD_MJD, "INT_TIMES held JD; converted to MJD"
    if not np.all((mids > lo) & (mids < hi)):
        bad = mids[~((mids > lo) & (mids < hi))][0]
        raise TSOValueError(
            f"{info['path']}: INT_TIMES int_mid_BJD_TDB = {bad!r} is not a JWST-era MJD "
            f"({lo:.0f}-{hi:.0f}) nor a Julian date: wrong column or units", path=info["path"])
    return mids, ""


def times_from_segments(infos, int_numbers):
    """BJD_TDB mid-times: INT_TIMES when complete, else derived from headers; checked.

    Parameters
    ----------
    infos : list of dict
        Segment descriptions from the reader, in segment order.
    int_numbers : ndarray of int
        Integration numbers of the whole visit.

    Returns
    -------
    time : astropy.time.Time
        Mid-integration times (TDB).
    source : str
        Where they came from (``INT_TIMES``, ``header:...``; with a conversion noted).

    Raises
    ------
    TSOValueError
        When the time axis fails :func:`check_time_axis` or holds impossible values.
    """
    from astropy.time import Time

    mids, notes = [], set()
    for info in infos:
        want = _table_mids(info)
        if want is None:
            break
        want, note = _as_mjd(info, want)
        if note:
            notes.add(note)
        mids.append(want)
    else:
        check_time_axis(infos, mids)
        src = "INT_TIMES" + (f" ({'; '.join(sorted(notes))})" if notes else "")
        return Time(np.concatenate(mids), format="mjd", scale="tdb"), src
    mid, src = _header_times(infos[0], int_numbers)
    check_time_axis(infos, np.split(np.asarray(mid.mjd, float),
                                    np.cumsum([i["shape"][0] for i in infos])[:-1]))
    log.warning("%s: INT_TIMES is empty or incomplete; times derived from the header (%s)",
                infos[0]["path"].name, src)
    return mid, src


def _header_times(info, int_numbers):
    from astropy.time import Time

    h = info["header"]
    if h.get("EXPSTART") is None:
        raise TSOReadError(f"{info['path']}: no INT_TIMES and no EXPSTART: cannot derive times", path=info['path'])
    tgroup, ngroups = h.get("TGROUP"), h.get("NGROUPS")
    nresets = h.get("NRESETS")
    nresets = 1 if nresets is None else int(nresets)
    dt = None
    if tgroup and ngroups:
        dt = float(tgroup) * (int(ngroups) + nresets) / 86400.0
    elif h.get("EFFINTTM"):
        dt = float(h["EFFINTTM"]) / 86400.0
    nints = h.get("NINTS")
    if h.get("EXPEND") and nints and int(int_numbers.max()) <= int(nints):
        span = (float(h["EXPEND"]) - float(h["EXPSTART"])) / int(nints)
        if dt is None or abs(span - dt) < 0.2 * dt:
            dt = span
    if dt is None:
        raise TSOReadError(f"{info['path']}: no INT_TIMES and no TGROUP/NGROUPS/EFFINTTM: cannot derive times", path=info['path'])
    if h.get("BSTRTIME"):
        mjd = float(h["BSTRTIME"]) + (int_numbers - 0.5) * dt
        return Time(mjd, format="mjd", scale="tdb"), "header:BSTRTIME"
    utc = Time(float(h["EXPSTART"]) + (int_numbers - 0.5) * dt, format="mjd", scale="utc")
    ra, dec = h.get("TARG_RA"), h.get("TARG_DEC")
    if ra is None or dec is None:
        return utc.tdb, "header:EXPSTART (TDB, no barycentric correction: no TARG_RA/TARG_DEC)"
    from astropy.coordinates import EarthLocation, SkyCoord
    import astropy.units as u

    geocenter = EarthLocation.from_geocentric(0, 0, 0, unit=u.m)
    ltt = utc.light_travel_time(SkyCoord(float(ra), float(dec), unit="deg"),
                                kind="barycentric", location=geocenter)
    return (utc.tdb + ltt), "header:EXPSTART+geocentric barycentric correction"


def _cadence(info) -> float | None:
    """Expected time between integrations (days) from the header, or None."""
    h = info["header"]
    tgroup, ngroups = h.get("TGROUP"), h.get("NGROUPS")
    if not tgroup or not ngroups:
        return None
    nresets = h.get("NRESETS")
    try:
        return float(tgroup) * (int(ngroups) + (1 if nresets is None else int(nresets))) / 86400.0
    except (TypeError, ValueError):
        return None


def check_time_axis(infos, mids) -> None:
    """Check that the segments' mid-times form one uniform, increasing time axis.

    Parameters
    ----------
    infos : list of dict
        Segment descriptions (``path``, ``int_start``, ``header``), in segment order.
    mids : list of ndarray
        MJD mid-times of each segment's integrations.

    Raises
    ------
    TSOValueError
        Naming the file and integration where time goes backwards, repeats or jumps,
        or where the cadence contradicts the header's integration time.

    Examples
    --------
    >>> from pathlib import Path
    >>> seg = {"path": Path("seg1.fits"), "int_start": 1, "header": {}}
    >>> check_time_axis([seg], [np.array([60000.0, 60000.001, 60000.002])])
    >>> check_time_axis([seg], [np.array([60000.0, 60000.002, 60000.001])])
    Traceback (most recent call last):
    ...
    tsocontainer.errors.TSOValueError: seg1.fits: time goes backwards or repeats at integration 3 (60000.00100000 after 60000.00200000 MJD): shuffled or duplicated times, or segments out of order
    """
    t = np.concatenate(mids) if mids else np.zeros(0)
    if t.size < 2:
        return
    owner = np.concatenate([np.full(len(m), k) for k, m in enumerate(mids)])
    local = np.concatenate([np.arange(len(m)) + (infos[k]["int_start"] or 1)
                            for k, m in enumerate(mids)])
    d = np.diff(t)
    if np.any(d <= 0):
        i = int(np.flatnonzero(d <= 0)[0]) + 1
        info = infos[owner[i]]
        raise TSOValueError(
            f"{info['path']}: time goes backwards or repeats at integration {local[i]} "
            f"({t[i]:.8f} after {t[i - 1]:.8f} MJD): shuffled or duplicated times, or segments "
            "out of order", path=info["path"])
    med = float(np.median(d))
    off = np.abs(d / med - 1) > 0.25
    if np.any(off):
        i = int(np.flatnonzero(off)[0]) + 1
        info = infos[owner[i]]
        raise TSOValueError(
            f"{info['path']}: the time step before integration {local[i]} is "
            f"{d[i - 1] * 86400:.3f} s, the visit's median is {med * 86400:.3f} s: missing, "
            "shuffled or out-of-order integrations or segments", path=info["path"])
    expect = _cadence(infos[0])
    if expect is not None and not 0.5 < med / expect < 2.0:
        raise TSOValueError(
            f"{infos[0]['path']}: integrations are {med * 86400:.3f} s apart but TGROUP x "
            f"(NGROUPS + NRESETS) is {expect * 86400:.3f} s: times in the wrong unit or column",
            path=infos[0]["path"])

