"""Mid-integration times of TSO segments: INT_TIMES, or derived from the headers.

JWST writes ``INT_TIMES.int_mid_BJD_TDB`` as BJD_TDB - 2400000.5 (MJD-based);
the times returned here are astropy ``Time`` objects in TDB.
"""
from __future__ import annotations

import logging

import numpy as np

from tsocontainer.errors import TSOReadError

__all__ = ["times_from_segments"]

log = logging.getLogger(__name__)


def times_from_segments(infos, int_numbers):
    """BJD_TDB mid-times: INT_TIMES when complete, else derived from headers."""
    from astropy.time import Time

    mids = []
    for info in infos:
        it = info["int_times"]
        n0, n = info["int_start"], info["shape"][0]
        if it is None:
            break
        num, mid = it
        lookup = dict(zip(num.tolist(), mid.tolist()))
        want = [lookup.get(k) for k in range(n0, n0 + n)]
        if any(w is None or not np.isfinite(w) or w <= 0 for w in want):
            break
        mids.append(np.array(want))
    else:
        return Time(np.concatenate(mids), format="mjd", scale="tdb"), "INT_TIMES"
    mid, src = _header_times(infos[0], int_numbers)
    log.warning("%s: INT_TIMES is empty or incomplete; times derived from the header (%s)",
                infos[0]["path"].name, src)
    return mid, src


def _header_times(info, int_numbers):
    from astropy.time import Time

    h = info["header"]
    if h.get("EXPSTART") is None:
        raise TSOReadError(f"{info['path']}: no INT_TIMES and no EXPSTART: cannot derive times")
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
        raise TSOReadError(f"{info['path']}: no INT_TIMES and no TGROUP/NGROUPS/EFFINTTM: cannot derive times")
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


