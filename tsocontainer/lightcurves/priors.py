"""Priors and parameter bounds of the light-curve fits.

A prior is declared per parameter in a dict (or a YAML file or string with the
same content)::

    t0:    {normal: [2460000.512, 0.002]}
    per:   3.0957                     # a bare number is fixed
    a_rs:  {uniform: [5, 20]}
    inc:   {uniform: [80, 90], init: 87}
    rp_rs: {uniform: [0, 0.3]}
    jitter: {loguniform: [1.0e-6, 1.0e-2]}

Kinds (:data:`PRIOR_KINDS`):

``fixed v``
    The parameter is held at ``v`` (a bare number means the same).
``uniform [lo, hi]``
    Flat in the parameter.
``normal [mu, sigma]``
    Gaussian, truncated to the parameter's physical bounds (``inc <= 90``,
    ``rp_rs >= 0``, ...) and to ``bounds: [lo, hi]`` when given.
``truncnormal [mu, sigma, lo, hi]``
    The same as ``{normal: [mu, sigma], bounds: [lo, hi]}``.
``loguniform [lo, hi]``
    Flat in ``log x`` (``lo > 0``): a scale over decades (jitter, error scale).
``lognormal [mu, sigma]``
    ``log x`` is Gaussian with mean ``mu`` and standard deviation ``sigma``
    (median ``exp(mu)``); optionally ``bounds``.
``invuniform [lo, hi]``
    Flat in ``1 / x`` for ``x`` in ``[lo, hi]`` (``lo > 0``), density
    ``~ 1 / x**2``: the usual prior of a ramp's time constant, flat in its
    decay rate, which weighs short and long time constants as the data
    resolve them rather than per decade.

``init`` sets the starting value of the fit. Every kind is a proper
(normalisable) distribution on its support, so the nested-sampling engine
(:mod:`tsocontainer.lightcurves.nested`) maps the unit cube onto it with
:meth:`PriorVector.transform`.

Time system
-----------
``t0`` (mid-transit) and ``t_sec`` (mid-eclipse) are BJD_TDB in the convention
of the light curves' own times. :class:`~tsocontainer.lightcurves.container.LightCurves`
hold full BJD_TDB (about 2.46e6 for JWST), so priors are full BJD_TDB too.
JWST's ``INT_TIMES`` and many ephemeris tables (and ``truth.json`` of the
simulator) give BJD_TDB - 2400000.5 ("MJD-based", about 6e4).
:func:`align_time_system` recognises that mismatch from the values alone (an
MJD-based time lies in [4e4, 1e5], a full one in 2400000.5 + [4e4, 1e5]) and
shifts the prior by exactly 2400000.5 days, with a :class:`TimeSystemWarning`
that states the conversion (it is also recorded in the fit's diagnostics).

Why convert rather than refuse: the offset is the fixed convention of JWST's
own products, so an MJD-based ephemeris is the common and unambiguous case; the
direction is decided by the data's time axis, never guessed; and the fits check
the converted ephemeris against the data before fitting (the event must fall in
the data with baseline around it), so a value in another convention
(BJD - 2450000, TESS BTJD = BJD - 2457000, or a reduced JD = BJD - 2400000 that
the conversion would put half a day off) ends in an error naming the likely
cause, not in a fit. Values in any other range are never changed.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace

import numpy as np

from tsocontainer._util import check_option

__all__ = ["Prior", "PriorVector", "PRIOR_KINDS", "physical_bounds", "parse_prior", "parse_priors",
           "TimeSystemWarning", "MJD_OFFSET", "time_system", "align_time_system"]

PRIOR_KINDS = ("fixed", "uniform", "normal", "loguniform", "truncnormal", "lognormal", "invuniform")
#: kinds on positive parameters that the sampler walks in log x (see sampler._LogSpace)
LOG_KINDS = ("loguniform", "lognormal", "invuniform")

_INF = np.inf

#: physical bounds (inclusive) of the model parameters
_BOUNDS = {
    "t0": (-_INF, _INF), "t_sec": (-_INF, _INF), "per": (0.0, _INF), "a_rs": (1.0, _INF),
    "inc": (0.0, 90.0), "b": (0.0, 2.0), "rp_rs": (0.0, 1.0), "fp_fs": (-1.0, 1.0),
    "ecc": (0.0, 0.999), "w": (-360.0, 360.0), "q1": (0.0, 1.0), "q2": (0.0, 1.0),
    "u1": (-3.0, 3.0), "u2": (-3.0, 3.0), "u3": (-3.0, 3.0), "u4": (-3.0, 3.0),
    "ramp_tau": (0.0, _INF), "jitter": (0.0, _INF), "err_scale": (0.0, _INF),
    "secosw": (-1.0, 1.0), "sesinw": (-1.0, 1.0), "pc_offset": (-180.0, 180.0),
    "gp_sigma": (0.0, _INF), "gp_rho": (0.0, _INF), "gp_q": (0.0, _INF),
}


def physical_bounds(name: str) -> tuple[float, float]:
    """Inclusive physical bounds of parameter ``name`` (unbounded if unknown).

    Parameters
    ----------
    name : str
        Parameter name (``c0``, ``reg_x`` ... are unbounded).

    Returns
    -------
    (float, float)
    """
    return _BOUNDS.get(name, (-_INF, _INF))


@dataclass(frozen=True)
class Prior:
    """Prior of one parameter.

    Parameters
    ----------
    kind : str
        One of :data:`PRIOR_KINDS`.
    a, b : float
        ``fixed``: value, unused; ``uniform``/``loguniform``/``invuniform``:
        lower and upper bound; ``normal``: mean and standard deviation;
        ``lognormal``: mean and standard deviation of ``log x``.
    lo, hi : float
        Support (the uniform range, or the physical/explicit truncation of a
        normal prior).
    init : float, optional
        Starting value of the fit.
    bounded : bool
        A normal or log-normal prior truncated by explicit ``bounds`` (shown in
        :meth:`describe`).
    """

    kind: str
    a: float
    b: float = np.nan
    lo: float = -_INF
    hi: float = _INF
    init: float | None = None
    bounded: bool = False

    @property
    def fixed(self) -> bool:
        """True for a fixed parameter."""
        return self.kind == "fixed"

    @property
    def start(self) -> float:
        """Starting value: ``init``, else the value, mean or centre of the prior."""
        if self.init is not None:
            return float(self.init)
        if self.kind in ("fixed", "normal"):
            return float(self.a)
        if self.kind == "loguniform":
            return float(np.sqrt(self.a * self.b))
        if self.kind == "lognormal":
            return float(np.clip(np.exp(self.a), self.lo, self.hi))
        if self.kind == "invuniform":
            return float(2.0 / (1.0 / self.a + 1.0 / self.b))
        return 0.5 * (self.a + self.b)

    @property
    def scale(self) -> float:
        """A typical width: sigma, or the standard deviation of the uniform range."""
        if self.kind == "normal":
            return float(self.b)
        if self.kind == "fixed":
            return 0.0
        if self.kind == "lognormal":
            return float(self.start * self.b)
        return float(self.b - self.a) / np.sqrt(12.0)

    def logp(self, x: np.ndarray) -> np.ndarray:
        """Log density, -inf outside the support.

        Parameters
        ----------
        x : array_like
            Values.

        Returns
        -------
        ndarray
            Unnormalised for normal priors (constants dropped).
        """
        x = np.asarray(x, dtype=float)
        flat = PriorVector([self]).logp(x.reshape(-1, 1)) if not self.fixed else \
            np.where(x.reshape(-1) == self.a, 0.0, -np.inf)
        return flat.reshape(x.shape)

    def describe(self) -> str:
        """Short text form, e.g. ``uniform(0, 0.3)``; a normal or log-normal prior
        with bounds of its own reads ``truncnormal(mu, sigma, lo, hi)`` or
        ``lognormal(mu, sigma, lo, hi)``."""
        if self.kind == "fixed":
            return f"fixed({self.a:.10g})"
        if self.bounded:
            name = "truncnormal" if self.kind == "normal" else self.kind
            return f"{name}({self.a:.10g}, {self.b:.10g}, {self.lo:.10g}, {self.hi:.10g})"
        return f"{self.kind}({self.a:.10g}, {self.b:.10g})"


class PriorVector:
    """The priors of a parameter vector, evaluated for a batch at once.

    Parameters
    ----------
    priors : sequence of Prior
        One per element of the vector (none fixed).

    Examples
    --------
    >>> pv = PriorVector([parse_prior("a", {"uniform": [0, 2]}),
    ...                   parse_prior("b", {"invuniform": [0.5, 1.0]})])
    >>> pv.transform(np.array([[0.5, 0.0], [0.5, 1.0]])).tolist()
    [[1.0, 0.5], [1.0, 1.0]]
    >>> bool(np.isinf(pv.logp(np.array([[3.0, 0.7]]))[0]))
    True
    """

    def __init__(self, priors):
        self.priors = list(priors)
        pri = self.priors
        self.lo = np.array([p.lo for p in pri], dtype=float)
        self.hi = np.array([p.hi for p in pri], dtype=float)
        self.idx = {k: [i for i, p in enumerate(pri) if p.kind == k] for k in PRIOR_KINDS}
        self.a = np.array([p.a for p in pri], dtype=float)
        self.b = np.array([p.b for p in pri], dtype=float)
        #: elements walked in log x by the sampler (positive parameters with log-type priors)
        self.log_idx = [i for i, p in enumerate(pri) if p.kind in LOG_KINDS]

    def logp(self, theta) -> np.ndarray:
        """Log prior density of each row (constants dropped; -inf outside the support).

        Parameters
        ----------
        theta : ndarray, shape (nb, n)

        Returns
        -------
        ndarray, shape (nb,)
        """
        theta = np.atleast_2d(theta)
        inside = np.all((theta >= self.lo) & (theta <= self.hi), axis=1)
        lp = np.zeros(theta.shape[0])
        i = self.idx["normal"]
        if i:
            lp -= 0.5 * np.sum(((theta[:, i] - self.a[i]) / self.b[i]) ** 2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            i = self.idx["loguniform"]
            if i:
                lp -= np.sum(np.log(theta[:, i]), axis=1)
            i = self.idx["invuniform"]
            if i:
                lp -= 2 * np.sum(np.log(theta[:, i]), axis=1)
            i = self.idx["lognormal"]
            if i:
                lx = np.log(theta[:, i])
                lp -= np.sum(lx + 0.5 * ((lx - self.a[i]) / self.b[i]) ** 2, axis=1)
        lp[~inside] = -np.inf
        return lp

    def transform(self, u) -> np.ndarray:
        """Map points of the unit cube onto the priors (inverse CDF, for nested sampling).

        Parameters
        ----------
        u : ndarray, shape (nb, n) or (n,)
            Values in [0, 1].

        Returns
        -------
        ndarray, same shape
        """
        from scipy.special import ndtr, ndtri

        u = np.asarray(u, dtype=float)
        x = np.empty_like(u)
        lo, hi = self.lo, self.hi
        i = self.idx["uniform"]
        x[..., i] = lo[i] + u[..., i] * (hi[i] - lo[i])
        i = self.idx["loguniform"]
        x[..., i] = np.exp(np.log(lo[i]) + u[..., i] * np.log(hi[i] / lo[i]))
        i = self.idx["invuniform"]
        x[..., i] = 1.0 / (1.0 / lo[i] - u[..., i] * (1.0 / lo[i] - 1.0 / hi[i]))
        for kind in ("normal", "lognormal"):
            i = self.idx[kind]
            if not i:
                continue
            a, b = self.a[i], self.b[i]
            with np.errstate(divide="ignore"):
                zl = (lo[i] if kind == "normal" else np.log(lo[i])) - a
                zh = (hi[i] if kind == "normal" else np.log(hi[i])) - a
            cl, ch = ndtr(zl / b), ndtr(zh / b)   # truncation: the CDF between the bounds
            z = a + b * ndtri(np.clip(cl + u[..., i] * (ch - cl), 1e-300, 1 - 1e-16))
            x[..., i] = np.clip(z if kind == "normal" else np.exp(z), lo[i], hi[i])
        return x


def _spec_kind(spec):
    """Split a prior spec into (kind, values, extras)."""
    if isinstance(spec, Prior):
        return spec.kind, None, {}
    if np.isscalar(spec) and not isinstance(spec, str):
        return "fixed", [spec], {}
    if isinstance(spec, (tuple, list)) and spec and isinstance(spec[0], str):
        return spec[0], list(spec[1:]), {}
    if isinstance(spec, dict):
        kinds = [k for k in spec if k in PRIOR_KINDS]
        extras = {k: v for k, v in spec.items() if k not in PRIOR_KINDS}
        unknown = set(extras) - {"init", "bounds"}
        if len(kinds) != 1 or unknown:
            raise ValueError(f"prior {spec!r} needs exactly one of {PRIOR_KINDS} and only "
                             f"'init'/'bounds' besides")
        values = spec[kinds[0]]
        return kinds[0], list(np.atleast_1d(values)), extras
    raise ValueError(f"cannot read prior {spec!r}: use a number, {{kind: values}} or (kind, values...)")


def parse_prior(name: str, spec) -> Prior:
    """Build and check the :class:`Prior` of parameter ``name``.

    Parameters
    ----------
    name : str
        Parameter name (its physical bounds apply).
    spec : float, dict, tuple or Prior
        ``0.1`` (fixed), ``{"uniform": [lo, hi]}``, ``{"normal": [mu, sd],
        "bounds": [lo, hi]}``, ``{"truncnormal": [mu, sd, lo, hi]}``,
        ``{"loguniform": [lo, hi]}``, ``{"lognormal": [mu, sd]}`` (of ``log x``),
        ``{"invuniform": [lo, hi]}`` (flat in ``1/x``), ``{"fixed": v}``,
        ``("normal", mu, sd)``; any dict may add ``init``.

    Returns
    -------
    Prior

    Raises
    ------
    ValueError
        On an unknown kind, wrong number of values, a range outside the
        parameter's physical bounds, a non-positive sigma or an ``init``
        outside the support.

    Examples
    --------
    >>> parse_prior("ramp_tau", {"invuniform": [0.01, 0.2]}).describe()
    'invuniform(0.01, 0.2)'
    >>> parse_prior("inc", {"truncnormal": [88, 1, 85, 90]}).describe()
    'truncnormal(88, 1, 85, 90)'
    >>> round(parse_prior("err_scale", {"lognormal": [0.0, 0.1]}).start, 3)
    1.0
    """
    kind, values, extras = _spec_kind(spec)
    check_option(kind, PRIOR_KINDS, f"prior kind for {name!r}")
    if isinstance(spec, Prior):
        values, extras = [spec.a, spec.b][: 1 if kind == "fixed" else 2], {"init": spec.init}
        if spec.bounded:
            extras["bounds"] = [spec.lo, spec.hi]
    if kind == "truncnormal":  # [mu, sigma, lo, hi]: a normal prior with bounds
        if len(values) != 4:
            raise ValueError(f"truncnormal prior of {name!r} needs 4 values [mu, sigma, lo, hi], "
                             f"got {values!r}")
        kind, values, extras = "normal", values[:2], {**extras, "bounds": values[2:]}
    need = 1 if kind == "fixed" else 2
    if len(values) != need:
        raise ValueError(f"{kind} prior of {name!r} needs {need} value(s), got {values!r}")
    vals = [float(v) for v in values]
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"prior of {name!r} has non-finite values {vals}")
    plo, phi = physical_bounds(name)
    if kind == "fixed":
        v = vals[0]
        if not plo <= v <= phi:
            raise ValueError(f"fixed {name}={v} is outside its bounds [{plo}, {phi}]")
        return Prior("fixed", v, lo=v, hi=v)
    a, b = vals
    bounded = False
    if kind in ("normal", "lognormal"):
        lo, hi, bounded = _normal_support(name, kind, a, b, extras.get("bounds"), (plo, phi))
    else:
        if not a < b:
            raise ValueError(f"{kind} prior of {name!r} needs lower < upper, got [{a}, {b}]")
        if kind in ("loguniform", "invuniform") and a <= 0:
            raise ValueError(f"{kind} prior of {name!r} needs a positive lower bound, got {a}")
        if a < plo or b > phi:
            raise ValueError(f"{kind} prior of {name!r} [{a}, {b}] is outside its bounds "
                             f"[{plo}, {phi}]")
        lo, hi = a, b
    init = extras.get("init")
    if init is not None and not lo <= float(init) <= hi:
        raise ValueError(f"init {init} of {name!r} is outside its prior [{lo}, {hi}]")
    return Prior(kind, a, b, lo, hi, None if init is None else float(init), bounded)


def _normal_support(name, kind, a, b, bounds, physical) -> tuple:
    """Support ``(lo, hi, explicit)`` of a normal or log-normal prior, checked."""
    plo, phi = physical
    if b <= 0:
        raise ValueError(f"{kind} prior of {name!r} needs sigma > 0, got {b}")
    if kind == "lognormal":
        plo = max(plo, 0.0)  # log x needs x > 0
    lo, hi = bounds if bounds is not None else (plo, phi)
    lo, hi = max(float(lo), plo), min(float(hi), phi)
    if not lo < hi:
        raise ValueError(f"{kind} prior of {name!r}: empty bounds [{lo}, {hi}]")
    centre = a if kind == "normal" else np.exp(a)
    if kind == "normal" and not lo <= centre <= hi:
        raise ValueError(f"normal prior of {name!r}: mean {a} is outside its bounds [{lo}, {hi}]")
    return lo, hi, bounds is not None


def parse_priors(priors) -> dict[str, Prior]:
    """Read priors from a dict, a YAML file or a YAML string.

    Parameters
    ----------
    priors : dict, str, path-like or None
        ``{name: spec}`` (see :func:`parse_prior`), a path to a YAML file, or
        YAML text with the same mapping.

    Returns
    -------
    dict of str to Prior

    Raises
    ------
    ValueError
        If the content is not a mapping or a prior is invalid.
    """
    if priors is None:
        return {}
    if isinstance(priors, (str, os.PathLike)):
        import yaml

        text = priors
        if os.path.isfile(priors):
            with open(priors) as fh:
                text = fh.read()
        priors = yaml.safe_load(text)
        if not isinstance(priors, dict):
            raise ValueError("YAML priors must be a mapping of parameter name to prior")
    if not isinstance(priors, dict):
        raise ValueError(f"priors must be a dict, a YAML file or YAML text, got {type(priors).__name__}")
    return {str(k): parse_prior(str(k), v) for k, v in priors.items()}


# ------------------------------------------------------------------ time system
#: JWST's INT_TIMES and MJD: BJD_TDB - MJD_OFFSET
MJD_OFFSET = 2400000.5
#: times of the JWST era and well around it (1968-2132) as MJD
_MJD_RANGE = (4.0e4, 1.0e5)
#: time-like parameters (days, BJD_TDB)
TIME_PARAMS = ("t0", "t_sec")


class TimeSystemWarning(UserWarning):
    """A time prior was converted between MJD-based and full BJD_TDB."""


def time_system(value: float) -> str:
    """Convention of a BJD_TDB time from its value alone.

    Parameters
    ----------
    value : float
        A time (days).

    Returns
    -------
    str
        ``"bjd"`` (full BJD_TDB, 2400000.5 + [4e4, 1e5]), ``"mjd"``
        (BJD_TDB - 2400000.5 in [4e4, 1e5]) or ``"other"`` (relative times,
        BJD - 2450000, TESS BTJD, ...).

    Examples
    --------
    >>> time_system(2460000.5), time_system(60000.0), time_system(0.3)
    ('bjd', 'mjd', 'other')
    """
    lo, hi = _MJD_RANGE
    if lo <= value <= hi:
        return "mjd"
    if lo <= value - MJD_OFFSET <= hi:
        return "bjd"
    return "other"


def _shift(prior: Prior, offset: float) -> Prior:
    init = None if prior.init is None else prior.init + offset
    if prior.kind == "normal":
        return replace(prior, a=prior.a + offset, lo=prior.lo + offset, hi=prior.hi + offset, init=init)
    b = prior.b if prior.kind == "fixed" else prior.b + offset
    return replace(prior, a=prior.a + offset, b=b, lo=prior.lo + offset, hi=prior.hi + offset, init=init)


def align_time_system(priors: dict, time, warn: bool = True) -> tuple[dict, list]:
    """Put the ``t0``/``t_sec`` priors in the time convention of the data.

    See the module docstring ("Time system"): a prior that is MJD-based while
    the data times are full BJD_TDB is shifted by +2400000.5 days (and the
    reverse by -2400000.5); anything else is returned unchanged.

    Parameters
    ----------
    priors : dict of str to Prior
        Parsed priors (:func:`parse_priors`).
    time : array_like
        Times of the data (days).
    warn : bool
        Emit a :class:`TimeSystemWarning` per conversion.

    Returns
    -------
    priors : dict of str to Prior
        A new dict (the input is not changed).
    notes : list of str
        One sentence per conversion (empty if none).

    Warns
    -----
    TimeSystemWarning
        For every converted prior.

    Examples
    --------
    >>> pri, notes = align_time_system(parse_priors({"t0": 60000.25}), [2460000.3, 2460000.4],
    ...                                warn=False)
    >>> pri["t0"].a, len(notes)
    (2460000.75, 1)
    """
    t = np.asarray(time, dtype=float)
    if t.size == 0:
        return dict(priors), []
    data = time_system(float(np.median(t)))
    out, notes = dict(priors), []
    for name in TIME_PARAMS:
        pr = priors.get(name)
        if pr is None:
            continue
        mine = time_system(pr.start)
        if {mine, data} != {"mjd", "bjd"}:
            continue
        offset = MJD_OFFSET if data == "bjd" else -MJD_OFFSET
        out[name] = _shift(pr, offset)
        src, dst = (("MJD-based (BJD_TDB - 2400000.5)", "full BJD_TDB") if data == "bjd"
                    else ("full BJD_TDB", "MJD-based (BJD_TDB - 2400000.5)"))
        note = (f"{name} prior {pr.describe()} is {src} while the data times are {dst}: "
                f"converted by {offset:+.1f} d to {out[name].describe()}")
        notes.append(note)
        if warn:
            warnings.warn(note, TimeSystemWarning, stacklevel=3)
    return out, notes
