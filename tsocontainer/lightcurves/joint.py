"""Joint fits of several light curves (visits, instruments) with shared parameters.

``fit_joint([lc1, lc2], priors, shared=["t0", "per", "a_rs", "inc"])`` fits
every light curve with its own model (its own systematics, noise and, unless
shared, depth and limb darkening) and one set of the ``shared`` parameters.
The log likelihood is the sum of the light curves' (each marginal over its own
linear systematics); the prior of a shared parameter counts once. Parameters
that are not shared are named ``<name>@<label>`` (labels ``"0"``, ``"1"``,
... unless given), shared ones keep their name; a derived quantity that is the
same in every light curve (``b`` from a shared orbit, ``u1`` fixed alike) is
reported once under its plain name.

A shared ``t0`` with a shared ``per`` is one ephemeris: each visit sees its
event at ``t0 + n per``. A shared parameter must have the same prior in every
light curve (after the time-system alignment of ``t0``), must be non-linear
(systematics coefficients are per light curve) and the light curves must be
in one time convention.

The result is a :class:`~tsocontainer.lightcurves.results.FitResult` of the
joint posterior whose ``parts`` hold one FitResult per light curve (its
points, MAP curves and parameters under their plain names); each part gets the
quality checks of its own residuals, and the joint result is suspect when the
sampler's checks fail or any part is suspect. ``fit_joint`` works with both
engines (``sampler={"engine": "dynesty"}`` gives the joint evidence).
"""
from __future__ import annotations

import logging

import numpy as np

from tsocontainer.lightcurves.priors import PriorVector, parse_priors
from tsocontainer.lightcurves.sampler import SamplerSettings
from tsocontainer.lightcurves.quality import assess

__all__ = ["JointModel", "fit_joint"]

log = logging.getLogger(__name__)


class _JointSpec:
    """What ``FitResult.model`` records of a joint fit."""

    def __init__(self, models, labels, shared):
        self.kind = models[0].spec.kind
        self._d = {"kind": self.kind, "joint": True, "labels": list(labels), "shared": list(shared),
                   "parts": [m.spec.to_dict() for m in models]}

    def to_dict(self) -> dict:
        return dict(self._d)


class _Lay:
    def __init__(self, sampled, marg, linear):
        self.sampled, self.marg, self.linear = sampled, marg, linear


class JointModel:
    """Log posterior of several light curves with shared parameters.

    Parameters
    ----------
    models : list of LightCurveModel
        One per light curve (its priors in its data's time system).
    labels : list of str
        Suffixes of the non-shared names.
    shared : list of str
        Parameters shared by all.

    Raises
    ------
    ValueError
        When a shared name is not a parameter of every model, is a linear
        systematics coefficient, or has different priors in different models.

    Examples
    --------
    >>> from tsocontainer.lightcurves.model import LightCurveModel
    >>> t = np.linspace(-0.1, 0.1, 50)
    >>> pri = {"t0": 0.0, "per": 3.0, "a_rs": {"uniform": [5, 20]}, "inc": 89.0, "u1": 0.3,
    ...        "u2": 0.2, "c1": 0.0}
    >>> models = [LightCurveModel(t, np.ones(50), np.full(50, 1e-3), pri) for _ in range(2)]
    >>> JointModel(models, ["a", "b"], ["a_rs"]).lay.sampled
    ['a_rs', 'rp_rs@a', 'rp_rs@b']
    """

    def __init__(self, models, labels, shared):
        self.models, self.labels, self.shared = list(models), [str(x) for x in labels], list(shared)
        self._check_shared()
        first = self.models[0].priors   # fixed alike in every light curve: one plain name
        self._plain = {n for n, pr in first.items() if pr.fixed and all(m.priors.get(n) == pr
                                                                          for m in self.models[1:])}
        names, index = [], []
        for m, lab in zip(self.models, self.labels):
            idx = []
            for n in m.lay.sampled:
                jn = self.jname(n, lab)
                if jn not in names:
                    names.append(jn)
                idx.append(names.index(jn))
            index.append(np.array(idx, dtype=int))
        self.index = index
        marg = [self.jname(n, lab) for m, lab in zip(self.models, self.labels) for n in m.lay.marg]
        linear = [self.jname(n, lab) for m, lab in zip(self.models, self.labels) for n in m.lay.linear]
        self.lay = _Lay(names, marg, linear)
        self.priors = {}
        for m, lab in zip(self.models, self.labels):
            for n, pr in m.priors.items():
                self.priors.setdefault(self.jname(n, lab), pr)
        self._pv = PriorVector([self.priors[n] for n in names])
        self.log_walk_idx = list(self._pv.log_idx)
        self.t = np.concatenate([m.t for m in self.models])
        self.y = np.concatenate([m.y for m in self.models])
        self.err = np.concatenate([m.err for m in self.models])
        self.spec = _JointSpec(self.models, self.labels, self.shared)
        self._reg_names = [self.jname(n, lab) for m, lab in zip(self.models, self.labels)
                           for n in m._reg_names]

    def _check_shared(self) -> None:
        for n in self.shared:
            missing = [lab for m, lab in zip(self.models, self.labels) if n not in m.priors]
            if missing:
                raise ValueError(f"shared parameter {n!r} is not a parameter of light curve(s) {missing}")
            if any(n in m.lay.linear for m in self.models):
                raise ValueError(f"shared parameter {n!r} is a linear systematics coefficient: "
                                 "those belong to each light curve")
            pri = [m.priors[n] for m in self.models]
            if any(p != pri[0] for p in pri[1:]):
                raise ValueError(f"shared parameter {n!r} has different priors in the light curves: "
                                 f"{[p.describe() for p in pri]}")

    def jname(self, name: str, label: str) -> str:
        """Joint name of a model's parameter: plain when shared, else ``name@label``."""
        return name if name in self.shared or name in self._plain else f"{name}@{label}"

    @property
    def ndim(self) -> int:
        """Number of sampled parameters."""
        return len(self.lay.sampled)

    @property
    def noise_names(self) -> list:
        """Sampled noise parameters of every light curve (joint names)."""
        return [self.jname(n, lab) for m, lab in zip(self.models, self.labels) for n in m.noise_names]

    @property
    def prior_vector(self) -> PriorVector:
        """Priors of the sampled parameters (shared ones once)."""
        return self._pv

    def _split(self, theta):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        return [theta[:, idx] for idx in self.index]

    def start(self) -> np.ndarray:
        """Starting vector: each parameter from the first model that has it."""
        out = np.empty(self.ndim)
        for m, idx in zip(self.models, self.index):
            out[idx] = m.start()
        return out

    def log_prior(self, theta) -> np.ndarray:
        """Log prior of the joint vectors (shared priors once), (nb,)."""
        return self._pv.logp(np.atleast_2d(theta))

    def log_like(self, theta) -> np.ndarray:
        """Sum of the light curves' marginal log likelihoods, (nb,)."""
        parts = self._split(theta)
        out = np.zeros(parts[0].shape[0])
        for m, th in zip(self.models, parts):
            ok = np.isfinite(out)
            if ok.any():
                out[ok] += m.log_like(th[ok])
        return out

    def log_prob(self, theta) -> np.ndarray:
        """Joint log posterior, (nb,)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        out = self.log_prior(theta)
        ok = np.isfinite(out)
        if ok.any():
            out[ok] += self.log_like(theta[ok])
        out[~ok] = -np.inf
        return out

    def evidence_constant(self) -> float:
        """Sum of the light curves' constants (see :meth:`LightCurveModel.evidence_constant`)."""
        return float(sum(m.evidence_constant() for m in self.models))

    def lsq_residuals(self, theta) -> np.ndarray:
        """Residuals of every light curve, then those of the normal priors (once)."""
        th = np.asarray(theta, dtype=float)
        res = [m.lsq_residuals(th[idx], with_priors=False) for m, idx in zip(self.models, self.index)]
        for i, n in enumerate(self.lay.sampled):
            pr = self.priors[n]
            if pr.kind == "normal" and n not in self.noise_names:
                res.append(np.atleast_1d((th[i] - pr.a) / pr.b))
            elif pr.kind == "lognormal" and n not in self.noise_names:
                res.append(np.atleast_1d((np.log(th[i]) - pr.a) / pr.b))
        return np.concatenate(res)

    def init_noise(self, theta):
        """Noise starting values of every light curve (see :meth:`LightCurveModel.init_noise`)."""
        theta = np.array(theta, dtype=float, copy=True)
        sd = {}
        for m, idx, lab in zip(self.models, self.index, self.labels):
            th, s = m.init_noise(theta[idx])
            theta[idx] = th
            sd.update({self.jname(n, lab): v for n, v in s.items()})
        return theta, sd

    def binding_bounds(self, theta) -> list:
        """Marginalised coefficients whose bounds the data reach (joint names)."""
        th = np.asarray(theta, dtype=float)
        return [self.jname(n, lab) for m, idx, lab in zip(self.models, self.index, self.labels)
                for n in m.binding_bounds(th[idx])]

    def with_sampled_linear(self, names) -> "JointModel":
        """The joint model with the coefficients ``names`` (joint names) sampled."""
        models = []
        for m, lab in zip(self.models, self.labels):
            mine = [n for n in m.lay.marg if self.jname(n, lab) in set(names)]
            models.append(m.with_sampled_linear(mine) if mine else m)
        return JointModel(models, self.labels, self.shared)

    def _merge(self, dicts: list) -> dict:
        """Per-model dicts of values under joint names; identical derived values once."""
        out = {}
        keys = []
        for d in dicts:
            keys += [k for k in d if k not in keys]
        for k in keys:
            have = [d for d in dicts if k in d]
            same = len(have) == len(dicts) and all(np.array_equal(have[0][k], d[k]) for d in have[1:])
            if k in self.shared or k in self._plain or (
                    same and not any(k in m.priors for m in self.models)):
                out[k] = have[0][k]
            else:
                for d, lab in zip(dicts, self.labels):
                    if k in d:
                        out[f"{k}@{lab}"] = d[k]
        return out

    def conditional(self, theta, rng=None) -> dict:
        """Every parameter of every light curve (joint names), (nb,) each."""
        return self._merge([m.conditional(th, rng) for m, th in zip(self.models, self._split(theta))])

    def model_arrays(self, theta) -> dict:
        """MAP curves of every light curve, concatenated, with ``parts`` (one dict each)."""
        parts = [m.model_arrays(th[0]) for m, th in zip(self.models, self._split(theta))]
        out = {k: np.concatenate([p[k] for p in parts]) for k in ("model", "astro", "systematics")}
        out["chi2"] = float(sum(p["chi2"] for p in parts))
        out["loglike"] = float(sum(p["loglike"] for p in parts))
        out["params"] = {k: float(np.asarray(v).ravel()[0]) for k, v in
                         self._merge([{k: np.atleast_1d(v) for k, v in p["params"].items()}
                                      for p in parts]).items()}
        out["parts"] = parts
        return out

    def describe_priors(self) -> dict:
        """Text form of every prior (joint names)."""
        return {n: p.describe() for n, p in self.priors.items()}


def _parts(res, jm: JointModel) -> list:
    """One FitResult per light curve from the joint result."""
    from tsocontainer.lightcurves.results import FitResult

    parts, start = [], 0
    for m, lab in zip(jm.models, jm.labels):
        n = m.t.size
        sl = slice(start, start + n)
        start += n
        pick = {}
        for k in res.names:   # plain names are shared or the same in every light curve
            base, _, own = k.partition("@")
            if not own or own == lab:
                pick[base] = k
        names = list(pick)
        status = {k: res.status[pick[k]] for k in names}
        diag = {k: v for k, v in res.diagnostics.items() if k in ("converged", "messages", "nsteps",
                "burn", "tau", "n_tau", "ess", "nwalkers", "acceptance", "engine")}
        var = (res.map.get(pick.get("err_scale"), 1.0) * m.err) ** 2 + res.map.get(pick.get("jitter"), 0.0) ** 2
        diag.update({"npoints": n, "nfree": sum(1 for k in names if status[k] in ("free", "marginalised")),
                     "label": lab, "chi2": float(np.sum((m.y - res.model_flux[sl]) ** 2 / var))})
        snames = [k for k in (res.sample_names or []) if k in pick.values()]
        samples = None if res.samples is None else \
            res.samples[:, [res.sample_names.index(k) for k in snames]]
        part = FitResult(names=names, status=status,
                         **{c: {k: getattr(res, c)[pick[k]] for k in names}
                            for c in ("median", "err_lo", "err_hi", "map")},
                         priors={k: res.priors.get(pick[k], "") for k in names if pick[k] in res.priors},
                         model=m.spec.to_dict(), diagnostics=diag, samples=samples,
                         sample_names=[k.split("@")[0] for k in snames],
                         time=m.t.copy(), flux=m.y.copy(), err=m.err.copy(),
                         model_flux=res.model_flux[sl], astro=res.astro[sl], systematics=res.systematics[sl])
        part.quality = assess(part, m.priors, marginalised=m.lay.marg)
        parts.append(part)
    return parts


def _inputs(lcs, priors, priors_each, model, labels):
    """Per light curve: points, priors (base + own), model; and the labels."""
    from tsocontainer.lightcurves.fit import _default_model, _points

    if isinstance(lcs, (str, bytes)) or len(lcs) < 2:
        raise ValueError("fit_joint needs a list of at least two LightCurves")
    k = len(lcs)
    labels = [str(i) for i in range(k)] if labels is None else [str(x) for x in labels]
    if len(labels) != k or len(set(labels)) != k or any("@" in x for x in labels):
        raise ValueError(f"labels must be {k} distinct strings without '@', got {labels}")
    each = list(priors_each) if priors_each is not None else [None] * k
    models = list(model) if isinstance(model, (list, tuple)) else [model] * k
    if len(each) != k or len(models) != k:
        raise ValueError(f"priors_each and a list of models need one entry per light curve ({k})")
    out = []
    for i, lc in enumerate(lcs):
        wl = lc if lc.nchan == 1 else lc.white()
        t, f, e, regs = _points(wl, 0)
        spec = _default_model(wl, models[i], "fit_white")
        pri = {**parse_priors(priors), **parse_priors(each[i])}
        out.append((t, f, e, regs, pri, spec))
    return out, labels


def fit_joint(lcs, priors=None, *, shared=("t0", "per", "a_rs", "inc"), model=None, sampler=None,
              priors_each=None, labels=None):
    """Fit several light curves at once with shared parameters.

    Parameters
    ----------
    lcs : sequence of LightCurves
        Two or more; a light curve of several channels is fitted as its white light.
    priors : dict, str or path-like, optional
        Priors that apply to every light curve (see
        :func:`~tsocontainer.lightcurves.fit.fit_lightcurve`).
    shared : sequence of str
        Parameters shared by all light curves (same prior in each).
    model : ModelSpec, dict or list of them, optional
        One model for all, or one per light curve (default: as
        :func:`~tsocontainer.lightcurves.fit.fit_white`).
    sampler : SamplerSettings or dict, optional
        emcee or dynesty settings.
    priors_each : list of dict, optional
        Per light curve priors, over ``priors`` (e.g. a per-visit limb darkening).
    labels : list of str, optional
        Names of the light curves in the parameter names (default "0", "1", ...).

    Returns
    -------
    FitResult
        The joint posterior (``names`` under joint names, see the module
        docstring), with ``parts``: one FitResult per light curve.

    Raises
    ------
    ValueError
        On fewer than two light curves, a shared name that is not a shared
        non-linear parameter with one prior, light curves in different time
        conventions, or anything :func:`fit_lightcurve` refuses.
    TSOValueError
        When a light curve's event is not in its data.

    Examples
    --------
    >>> from tsocontainer.lightcurves.container import LightCurves
    >>> fit_joint([LightCurves.from_arrays([0.0, 1.0], [1.0, 1.0], 1e-3)], {})
    Traceback (most recent call last):
    ...
    ValueError: fit_joint needs a list of at least two LightCurves
    """
    from tsocontainer.lightcurves.fit import _fit_core, _prepare, _warn
    from tsocontainer.lightcurves.priors import time_system

    inputs, labels = _inputs(lcs, priors, priors_each, model, labels)
    systems = {time_system(float(np.median(t))) for t, *_ in inputs}
    if len(systems) > 1:
        raise ValueError(f"the light curves' times are in different conventions {sorted(systems)}: "
                         "put them in one (e.g. all full BJD_TDB) before a joint fit")
    models, checks = [], {"time_system": [], "window": {}, "given": set()}
    for (t, f, e, regs, pri, spec), lab in zip(inputs, labels):
        m, ck = _prepare(t, f, e, pri, spec, regs, f"fit_joint: light curve {lab}")
        models.append(m)
        checks["time_system"] += ck["time_system"]
        checks["window"][lab] = ck["window"]
        checks["given"] |= {n if n in shared else f"{n}@{lab}" for n in ck["given"]}
    jm = JointModel(models, labels, list(shared))
    res = _fit_core(jm, SamplerSettings.coerce(sampler), checks)
    res.parts = _parts(res, jm)
    bad = [(p.diagnostics["label"], r) for p in res.parts for r in p.reasons]
    conv = [r for r in res.reasons if r.startswith("convergence")]
    reasons = conv + [f"light curve {lab}: {r}" for lab, r in bad]
    res.quality = {**res.quality, "suspect": bool(reasons), "reasons": reasons,
                   "parts": {p.diagnostics["label"]: p.quality for p in res.parts}}
    d = res.diagnostics
    log.info("fit_joint: %d light curves (%s), %d points, shared %s, %d sampled parameters, %s (%.1f s)",
             len(models), ", ".join(labels), d["npoints"], ", ".join(shared) or "none", jm.ndim,
             res.verdict, d["runtime"])
    _warn(res, "fit_joint")
    return res
