"""Priors and parameter bounds of the light-curve fits.

A prior is declared per parameter in a dict (or a YAML file or string with the
same content)::

    t0:    {normal: [2460000.512, 0.002]}
    per:   3.0957                     # a bare number is fixed
    a_rs:  {uniform: [5, 20]}
    inc:   {uniform: [80, 90], init: 87}
    rp_rs: {uniform: [0, 0.3]}
    jitter: {loguniform: [1.0e-6, 1.0e-2]}

Kinds: ``fixed``, ``uniform [lo, hi]``, ``normal [mu, sigma]`` (truncated to
the parameter's physical bounds, optionally ``bounds: [lo, hi]``) and
``loguniform [lo, hi]``. ``init`` sets the starting value of the fit.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from tsocontainer._util import check_option

__all__ = ["Prior", "PRIOR_KINDS", "physical_bounds", "parse_prior", "parse_priors"]

PRIOR_KINDS = ("fixed", "uniform", "normal", "loguniform")

_INF = np.inf

#: physical bounds (inclusive) of the model parameters
_BOUNDS = {
    "t0": (-_INF, _INF), "t_sec": (-_INF, _INF), "per": (0.0, _INF), "a_rs": (1.0, _INF),
    "inc": (0.0, 90.0), "b": (0.0, 2.0), "rp_rs": (0.0, 1.0), "fp_fs": (-1.0, 1.0),
    "ecc": (0.0, 0.999), "w": (-360.0, 360.0), "q1": (0.0, 1.0), "q2": (0.0, 1.0),
    "u1": (-3.0, 3.0), "u2": (-3.0, 3.0), "u3": (-3.0, 3.0), "u4": (-3.0, 3.0),
    "ramp_tau": (0.0, _INF), "jitter": (0.0, _INF),
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
        ``fixed``: value, unused; ``uniform``/``loguniform``: lower and upper
        bound; ``normal``: mean and standard deviation.
    lo, hi : float
        Support (the uniform range, or the physical/explicit truncation of a
        normal prior).
    init : float, optional
        Starting value of the fit.
    """

    kind: str
    a: float
    b: float = np.nan
    lo: float = -_INF
    hi: float = _INF
    init: float | None = None

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
        return 0.5 * (self.a + self.b)

    @property
    def scale(self) -> float:
        """A typical width: sigma, or the standard deviation of the uniform range."""
        if self.kind == "normal":
            return float(self.b)
        if self.kind == "fixed":
            return 0.0
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
        inside = (x >= self.lo) & (x <= self.hi)
        if self.kind == "normal":
            val = -0.5 * ((x - self.a) / self.b) ** 2
        elif self.kind == "loguniform":
            with np.errstate(divide="ignore", invalid="ignore"):
                val = -np.log(x)
        else:
            val = np.zeros_like(x)
        return np.where(inside, val, -np.inf)

    def describe(self) -> str:
        """Short text form, e.g. ``uniform(0, 0.3)``."""
        if self.kind == "fixed":
            return f"fixed({self.a:.10g})"
        return f"{self.kind}({self.a:.10g}, {self.b:.10g})"


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
        "bounds": [lo, hi]}``, ``{"loguniform": [lo, hi]}``,
        ``{"fixed": v}``, ``("normal", mu, sd)``; any dict may add ``init``.

    Returns
    -------
    Prior

    Raises
    ------
    ValueError
        On an unknown kind, wrong number of values, a range outside the
        parameter's physical bounds, a non-positive sigma or an ``init``
        outside the support.
    """
    kind, values, extras = _spec_kind(spec)
    check_option(kind, PRIOR_KINDS, f"prior kind for {name!r}")
    plo, phi = physical_bounds(name)
    if isinstance(spec, Prior):
        values, extras = [spec.a, spec.b][: 1 if kind == "fixed" else 2], {"init": spec.init}
        if kind == "normal":
            extras["bounds"] = [spec.lo, spec.hi]
    need = 1 if kind == "fixed" else 2
    if len(values) != need:
        raise ValueError(f"{kind} prior of {name!r} needs {need} value(s), got {values!r}")
    vals = [float(v) for v in values]
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"prior of {name!r} has non-finite values {vals}")
    if kind == "fixed":
        v = vals[0]
        if not plo <= v <= phi:
            raise ValueError(f"fixed {name}={v} is outside its bounds [{plo}, {phi}]")
        return Prior("fixed", v, lo=v, hi=v)
    a, b = vals
    if kind == "normal":
        if b <= 0:
            raise ValueError(f"normal prior of {name!r} needs sigma > 0, got {b}")
        lo, hi = extras.get("bounds") or (plo, phi)
        lo, hi = max(float(lo), plo), min(float(hi), phi)
        if not lo <= a <= hi:
            raise ValueError(f"normal prior of {name!r}: mean {a} is outside its bounds [{lo}, {hi}]")
    else:
        if not a < b:
            raise ValueError(f"{kind} prior of {name!r} needs lower < upper, got [{a}, {b}]")
        if kind == "loguniform" and a <= 0:
            raise ValueError(f"loguniform prior of {name!r} needs a positive lower bound, got {a}")
        if a < plo or b > phi:
            raise ValueError(f"{kind} prior of {name!r} [{a}, {b}] is outside its bounds "
                             f"[{plo}, {phi}]")
        lo, hi = a, b
    init = extras.get("init")
    if init is not None and not lo <= float(init) <= hi:
        raise ValueError(f"init {init} of {name!r} is outside its prior [{lo}, {hi}]")
    return Prior(kind, a, b, lo, hi, None if init is None else float(init))


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
