"""Is the event in the data? Predicted transit/eclipse times against the time axis.

Before a fit starts, :func:`check_event_window` predicts the mid-times of the
transits (``t0 + n per``) or eclipses (``t_sec + n per``) from the priors and
checks them against the data:

* some mid-time the priors allow must put at least one data point inside the
  event (its full duration ``T14``, from ``a_rs``, ``inc``/``b``, ``rp_rs``,
  ``ecc``, ``w`` at their starting values);
* at the starting mid-time, enough points must lie out of the event to fix the
  baseline the model asks for: ``2 m`` (at least 5) for the ``m = poly + 1
  (+ 2 with a ramp)`` terms that only out-of-event data separate from the depth
  (one point per term is an exact fit; two leave at least as many points as
  unknowns to measure the noise); with a time trend (``poly >= 1``) at least 3
  points on both sides of an event (a slope measured on one side only is
  extrapolated under the event and trades off against the depth), and with a
  ramp at least 3 points before the first event (the ramp decays at the start).

A phase curve (``kind="phasecurve"``) needs its transit or its eclipse in the
data, with no baseline rule (the orbit is its baseline).

Otherwise a :class:`~tsocontainer.errors.TSOValueError` is raised whose one-line
message gives the data span, the predicted mid-times and the likely cause
(a time in another convention, a wrong epoch or period, a partial event).
"""
from __future__ import annotations

import numpy as np

from tsocontainer.errors import TSOValueError
from tsocontainer.lightcurves.priors import Prior, time_system

__all__ = ["event_durations", "prior_support", "check_event_window"]

#: at most this many events are enumerated across the data (a period typo in hours)
_MAX_EVENTS = 100000


def event_durations(per: float, a_rs: float, b: float, rp_rs: float, ecc: float = 0.0,
                    w: float = 90.0, kind: str = "transit") -> tuple[float, float]:
    """Total (T14) and full (T23) durations of a transit or eclipse (days).

    Parameters
    ----------
    per, a_rs : float
        Period (days) and scaled semi-major axis.
    b : float
        Impact parameter of the event.
    rp_rs : float
        Radius ratio.
    ecc, w : float
        Eccentricity and argument of periastron (degrees).
    kind : str
        ``"transit"`` or ``"eclipse"`` (sets the sign of the eccentric factor).

    Returns
    -------
    (float, float)
        ``T14`` and ``T23`` (0 for a grazing event and no event at all).

    Examples
    --------
    >>> t14, t23 = event_durations(3.0, 10.0, 0.0, 0.1)
    >>> round(t14 * 24, 2), round(t23 * 24, 2)
    (2.53, 2.07)
    """
    esw = ecc * np.sin(np.radians(w))
    factor = np.sqrt(1 - ecc**2) / (1 + esw if kind == "transit" else 1 - esw)
    sin_i = np.sqrt(max(1 - (b / a_rs * (1 + esw if kind == "transit" else 1 - esw)
                             / (1 - ecc**2)) ** 2, 1e-12))

    def dur(k):
        x = (k**2 - b**2)
        if x <= 0:
            return 0.0
        return float(per / np.pi * np.arcsin(min(np.sqrt(x) / (a_rs * sin_i), 1.0)) * factor)

    return dur(1 + rp_rs), dur(1 - rp_rs)


def prior_support(prior: Prior, nsigma: float = 5.0) -> tuple[float, float]:
    """Range of values a prior allows (a normal prior: ``nsigma`` around its mean).

    Parameters
    ----------
    prior : Prior
    nsigma : float

    Returns
    -------
    (float, float)

    Examples
    --------
    >>> from tsocontainer.lightcurves.priors import parse_prior
    >>> prior_support(parse_prior("t0", {"normal": [10.0, 0.1]}))
    (9.5, 10.5)
    """
    if prior.kind == "normal":
        return max(prior.a - nsigma * prior.b, prior.lo), min(prior.a + nsigma * prior.b, prior.hi)
    return float(prior.lo), float(prior.hi)


def _ecc_w(priors: dict) -> tuple[float, float]:
    """Starting eccentricity and argument of periastron (degrees), from ``ecc``/``w`` or
    ``secosw``/``sesinw``."""
    if "secosw" in priors:
        c, s = float(priors["secosw"].start), float(priors["sesinw"].start)
        return min(c * c + s * s, 0.999), float(np.degrees(np.arctan2(s, c)))
    return float(priors["ecc"].start), float(priors["w"].start)


def _impact(priors: dict, geometry: str, kind: str) -> float:
    a = priors["a_rs"].start
    if geometry == "b":
        return float(priors["b"].start)
    ecc, w = _ecc_w(priors)
    esw = ecc * np.sin(np.radians(w))
    return float(a * np.cos(np.radians(priors["inc"].start)) * (1 - ecc**2)
                 / (1 + esw if kind == "transit" else 1 - esw))


def _epochs(c0: float, per: float, tmin: float, tmax: float) -> np.ndarray:
    n0 = int(np.floor((tmin - c0) / per)) - 1
    n1 = int(np.ceil((tmax - c0) / per)) + 1
    n1 = min(n1, n0 + _MAX_EVENTS)
    return np.arange(n0, n1 + 1)


def _cause(c0, p0, t, notes, event) -> str:
    """The likely reason why no event falls in the data."""
    tmid = float(np.median(t))
    data_sys, mine = time_system(tmid), time_system(c0)
    if data_sys == "bjd" and mine == "mjd":
        return "t0 looks MJD-based (BJD_TDB - 2400000.5) while the data are full BJD_TDB"
    if data_sys == "mjd" and mine == "bjd":
        return "t0 looks like a full BJD_TDB while the data are MJD-based (BJD_TDB - 2400000.5)"
    if data_sys == "bjd" and 0 < c0 < 4e4:
        return ("t0 looks like BJD - 2450000 or TESS BTJD (BJD - 2457000) while the data are "
                "full BJD_TDB")
    d = c0 - tmid
    n = np.round((tmid - c0) / p0)
    near = c0 + n * p0
    miss = max(t[0] - near, near - t[-1], 0.0)
    if miss == 0.0:   # inside the span, yet no point in the event: a gap
        k = int(np.searchsorted(t, near))
        gap = t[k] - t[k - 1] if 0 < k < t.size else 0.0
        return (f"the predicted {event} falls in a {gap * 24:.2f} h gap of the usable points "
                f"(points masked or clipped there? or a wrong t0)")
    side = "before" if near < t[0] else "after"
    rjd = ""
    if notes and abs(miss - 0.5) < 0.1:
        rjd = (" (it was converted from MJD-based by +2400000.5 d: a reduced JD, BJD - 2400000, "
               "would now be 0.5 d late)")
    if abs(d) < p0:
        return (f"the predicted {event} falls {miss * 24:.1f} h {side} the data: wrong t0?{rjd}")
    return (f"t0 is {abs(d):.1f} days ({abs(d) / p0:.1f} periods) from the data and the nearest "
            f"predicted {event} (epoch {int(n):+d}) misses it by {miss * 24:.1f} h: wrong epoch "
            f"or period?{rjd}")


def _sides(t: np.ndarray, inside: np.ndarray) -> tuple[int, int, bool]:
    """Out-of-event points before the first and after the last event, and whether some
    event has at least 3 out-of-event points on both sides."""
    idx = np.flatnonzero(inside)
    blocks = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    runs = ([int(blocks[0][0])] + [int(b2[0] - b1[-1] - 1) for b1, b2 in zip(blocks[:-1], blocks[1:])]
            + [int(t.size - 1 - blocks[-1][-1])])
    both = any(min(runs[k], runs[k + 1]) >= 3 for k in range(len(blocks)))
    return runs[0], runs[-1], both


def check_event_window(time, priors: dict, spec, label: str = "fit", notes=()) -> dict:
    """Check that the predicted event(s) fall in the data with enough baseline.

    Parameters
    ----------
    time : array_like
        Times of the data (days, same convention as the priors).
    priors : dict of str to Prior
        Complete priors of the model (``LightCurveModel.priors``).
    spec : ModelSpec
        The model (``kind``, ``geometry``, ``poly``, ``ramp``).
    label : str
        Prefix of the error message (``fit_white``, ...).
    notes : sequence of str
        Time-system conversions already applied (they refine the cause).

    Returns
    -------
    dict
        ``mid_times`` (predicted at the starting values, within the data
        span +/- one duration), ``duration`` (T14, days), ``n_in``, ``n_before``,
        ``n_after`` (points in the event and out of it before/after).

    Raises
    ------
    TSOValueError
        When no allowed mid-time puts a data point in the event, or the
        baseline is too short for the model (see the module docstring).

    Examples
    --------
    >>> from tsocontainer.lightcurves.model import ModelSpec
    >>> from tsocontainer.lightcurves.priors import parse_priors
    >>> pri = parse_priors({"t0": 10.0, "per": 3.0, "a_rs": 10.0, "inc": 90.0, "rp_rs": 0.1,
    ...                     "ecc": 0.0, "w": 90.0})
    >>> info = check_event_window(np.linspace(9.8, 10.2, 100), pri, ModelSpec(poly=1))
    >>> info["n_in"] > 0
    True
    """
    t = np.sort(np.asarray(time, dtype=float))
    if spec.kind == "phasecurve":
        return _check_phasecurve(t, priors, spec, label, notes)
    event = "transit" if spec.kind == "transit" else "eclipse"
    tname = "t0" if spec.kind == "transit" else "t_sec"
    c0, p0 = float(priors[tname].start), float(priors["per"].start)
    clo, chi = prior_support(priors[tname])
    plo, phi = prior_support(priors["per"])
    k = float(priors["rp_rs"].start)
    b = _impact(priors, spec.geometry, spec.kind)
    if b >= 1 + k:  # the start would give no event: the fit starts from b = 0.5 (model.start)
        b = 0.5
    ecc, w = _ecc_w(priors)
    t14, _ = event_durations(p0, float(priors["a_rs"].start), b, k, ecc, w, spec.kind)
    half = 0.5 * t14
    span = (f"data span {t[0]:.5f}-{t[-1]:.5f} ({t[-1] - t[0]:.3f} d, {t.size} points)")
    if not half > 0:
        raise TSOValueError(f"{label}: the priors' starting geometry gives no {event} "
                            f"(a_rs {priors['a_rs'].start:g}, b {b:.3g}); {span}")
    ep = _epochs(c0, p0, t[0] - (chi - clo) - t14, t[-1] + (chi - clo) + t14)
    mlo = np.where(ep >= 0, clo + ep * plo, clo + ep * phi)
    mhi = np.where(ep >= 0, chi + ep * phi, chi + ep * plo)
    hits = np.searchsorted(t, mhi + half, side="right") - np.searchsorted(t, mlo - half, side="left")
    mids = c0 + ep * p0
    shown = mids[(mids > t[0] - t14) & (mids < t[-1] + t14)]
    if not np.any(hits > 0):
        near = c0 + np.round((np.median(t) - c0) / p0) * p0
        raise TSOValueError(
            f"{label}: no {event} in the data: {span}, BJD_TDB; predicted mid-time {near:.5f} "
            f"({tname} {priors[tname].describe()}, per {priors['per'].describe()}, duration "
            f"{t14 * 24:.2f} h); {_cause(c0, p0, t, notes, event)}")
    inside = np.zeros(t.size, bool)
    for m in shown:
        inside |= np.abs(t - m) < half
    info = {"mid_times": [float(m) for m in shown], "duration": float(t14),
            "n_in": int(inside.sum()), "n_before": 0, "n_after": 0}
    if not inside.any():
        return info  # the priors allow an event in the data, just not at their centre
    pre, post, both = _sides(t, inside)
    info.update(n_before=pre, n_after=post)
    nterm = spec.poly + 1 + (2 if spec.ramp else 0)
    n_out = int(t.size - inside.sum())
    model = f"poly {spec.poly}" + (" + ramp" if spec.ramp else "")
    where = (f"{span}; predicted mid-time(s) {', '.join(f'{m:.5f}' for m in shown[:4])}, "
             f"duration {t14 * 24:.2f} h")
    if n_out < max(5, 2 * nterm):
        raise TSOValueError(f"{label}: only {n_out} out-of-{event} points for a baseline of "
                            f"{nterm} terms ({model}): {where}; a longer baseline, a simpler "
                            f"model or a wrong t0/duration?")
    if spec.poly >= 1 and not both:
        raise TSOValueError(f"{label}: out-of-{event} baseline on one side only ({pre} points "
                            f"before, {post} after) cannot separate the {model} trend from the "
                            f"depth: {where}; use poly 0 for a partial event, or check t0")
    if spec.ramp and pre < 3:
        raise TSOValueError(f"{label}: {pre} points before the {event}: the ramp at the start "
                            f"cannot be separated from the {event}: {where}; drop the ramp or "
                            f"check t0")
    return info


def _check_phasecurve(t, priors: dict, spec, label: str, notes) -> dict:
    """A phase curve needs its transit or its eclipse in the data (no baseline checks: the
    orbit is the baseline). The eclipse is predicted at ``t0 + per / 2`` (plus the
    first-order eccentric shift ``per / pi * 2 e cos w``)."""
    from dataclasses import replace as _replace

    from tsocontainer.lightcurves.priors import _shift

    plain = _replace(spec, kind="transit", poly=0, ramp=False)
    try:
        return {**check_event_window(t, priors, plain, label, notes), "event": "transit"}
    except TSOValueError as exc:
        first = str(exc)
    ecc, w = _ecc_w(priors)
    shift = 0.5 * float(priors["per"].start) * (1 + 4 / np.pi * ecc * np.cos(np.radians(w)))
    pri = {k: v for k, v in priors.items() if k != "t0"}
    pri["t_sec"] = _shift(priors["t0"], shift)
    try:
        info = check_event_window(t, pri, _replace(plain, kind="eclipse"), label, notes)
    except TSOValueError:
        raise TSOValueError(f"{first}; no eclipse either (predicted at t0 + {shift:.4f} d)") from None
    return {**info, "event": "eclipse"}
