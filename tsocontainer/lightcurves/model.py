"""Light-curve model: the astrophysical light curve times systematics, for a walker batch.

The model of the flux at time ``t`` is ``A(t) * S(t)`` (plus, with a Gaussian
process, correlated noise; see :mod:`tsocontainer.lightcurves.spec` for every
option): ``A`` the batman transit (``1`` out of transit), eclipse (``1 +
fp_fs`` out of eclipse) or phase curve
(:mod:`tsocontainer.lightcurves.phasecurve`), and ``S`` the systematics. In
the default ``systematics="sum"`` form ``S`` is linear in its coefficients::

    S(t) = sum_k c_k x^k + ramp_amp * exp(-(t - t[0]) / ramp_tau) + sum_j reg_<j> r_j(t)

with ``x = (t - t_mid) / (half the time span)`` in [-1, 1] and ``r_j`` each
regressor standardised to zero mean and unit standard deviation (so ``c0`` is
the out-of-event flux level and the other coefficients are in flux units).
With ``systematics="product"``, ``S = (sum_k c_k x^k) * (1 + ramp_amp
exp(...)) * prod_j (1 + reg_<j> r_j)``: the ramp and regressor amplitudes are
relative and sampled, the polynomial stays linear. The noise is Gaussian with
variance ``(err_scale * err)**2 + jitter**2`` (each term optional).

The linear coefficients with uniform or normal priors are marginalised
analytically (``ModelSpec.marginalize=True``, the default): the likelihood of
the non-linear parameters is the Gaussian integral over them; their posterior
samples are drawn from the conditional Gaussian. This makes the sampled problem
smaller (a channel fit with fixed geometry and limb darkening samples only
``rp_rs``). Log-uniform (or other non-Gaussian) linear priors, or
``marginalize=False``, sample them.

Bounds of marginalised coefficients are honoured: the Gaussian integral runs
over all values, which equals the integral within uniform (or truncated
normal) bounds only when the bounds lie far outside what the data allow (the
default priors, +/- the flux level, do). The fit checks this at its
least-squares solution (:meth:`LightCurveModel.binding_bounds`): a coefficient
whose conditional optimum lies within
:data:`~tsocontainer.lightcurves.model_start.BOUND_SIGMAS` (5) conditional
standard deviations of a bound is sampled by emcee with its exact prior
instead (logged, and listed in ``diagnostics["sampled_linear"]``); beyond 5
sigma the two integrals differ by less than 3e-7 of the probability. The
quality check still flags marginalised draws that reach a bound
(:mod:`tsocontainer.lightcurves.quality`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tsocontainer.lightcurves.batch import BatchLightCurve
from tsocontainer.lightcurves.model_start import ModelStart
from tsocontainer.lightcurves.priors import PriorVector, parse_prior, parse_priors
from tsocontainer.lightcurves.spec import (GEOMETRIES, KINDS, LD_LAWS, ModelSpec, event_time_name,
                                           orbit_names)

__all__ = ["ModelSpec", "LightCurveModel", "KINDS", "LD_LAWS", "GEOMETRIES"]

_REQUIRED_MSG = "no default: give a value or a prior"

#: Longest default ``ramp_tau``, as a fraction of the data's time span. A ramp that
#: decays more slowly is a curvature across the whole visit, which trades against the
#: depth; with the log-uniform prior's weight on long time constants it biased a short
#: visit's depth (100 points, a ramp at 1.7 sigma per point, exact model) by +0.37
#: sigma with the whole span allowed, +0.14 with a quarter (+0.03 with the true
#: ``ramp_tau`` fixed; ``benchmarks/bench_models.py --cases shortld``). Trends longer
#: than this are the polynomial's; a ramp that wants more is flagged by the quality
#: check (prior edge) and needs its own ``ramp_tau`` prior.
RAMP_TAU_SPAN = 0.25


def _ld_names(spec: ModelSpec, given: set) -> list[str]:
    if spec.kind == "eclipse":
        return []
    if spec.limb_darkening == "nonlinear":
        return ["u1", "u2", "u3", "u4"]
    nu = 1 if spec.limb_darkening == "linear" else 2
    us, qs = [f"u{i + 1}" for i in range(nu)], [f"q{i + 1}" for i in range(nu)]
    if given & set(us) and given & set(qs):
        raise ValueError("give limb darkening either as u coefficients or as Kipping q1/q2, not both")
    return us if given & set(us) else qs


@dataclass
class _Solution:
    """What :meth:`LightCurveModel._solve` returns for a batch."""

    p: dict             # every parameter value (nb,)
    T: np.ndarray       # astrophysical model (times any product-form factor) (nb, n)
    w: np.ndarray       # weights 1/var, (n,) or (nb, n)
    resid: np.ndarray | None  # data minus model at the conditional optimum (nb, n)
    beta: np.ndarray    # marginalised linear coefficients, conditional mean (nb, km)
    L: np.ndarray | None  # Cholesky factor of their precision (nb, km, km)
    chi2: np.ndarray    # chi2 incl. normal priors of the linear terms (nb,)
    loglike: np.ndarray  # marginal log likelihood (nb,)


@dataclass
class _Layout:
    names: list = field(default_factory=list)      # every model parameter
    sampled: list = field(default_factory=list)    # sampled by emcee
    linear: list = field(default_factory=list)     # linear coefficients, basis order
    marg: list = field(default_factory=list)       # marginalised linear coefficients


class LightCurveModel(ModelStart):
    """Log posterior of one light curve under a :class:`ModelSpec` and priors.

    Parameters
    ----------
    time, flux, err : array_like, shape (n,)
        Times (BJD_TDB), fluxes and positive errors of the used points.
    priors : dict
        Priors by parameter name (see :mod:`tsocontainer.lightcurves.priors`).
    spec : ModelSpec or dict, optional
        The model.
    regressors : dict of str to array_like (n,), optional
        Regressor values at the same points.
    sample_linear : collection of str, optional
        Linear coefficients to sample rather than marginalise (see
        :meth:`binding_bounds`).

    Raises
    ------
    ValueError
        On non-finite flux, non-positive errors, an unknown parameter name, a
        missing prior, a constant regressor or fewer points than parameters.

    Examples
    --------
    >>> t = np.linspace(-0.1, 0.1, 100)
    >>> m = LightCurveModel(t, np.ones(100), np.full(100, 1e-3),
    ...                     {"t0": 0.0, "per": 3.0, "a_rs": 10.0, "inc": 89.0, "u1": 0.3, "u2": 0.2})
    >>> m.lay.sampled, m.lay.marg
    (['rp_rs'], ['c0', 'c1'])
    """

    def __init__(self, time, flux, err, priors=None, spec=None, regressors=None, sample_linear=()):
        self.spec = ModelSpec.coerce(spec)
        self.t = np.ascontiguousarray(time, dtype=float)
        self.y = np.asarray(flux, dtype=float)
        self.err = np.asarray(err, dtype=float)
        if self.y.shape != self.t.shape or self.err.shape != self.t.shape or self.t.ndim != 1:
            raise ValueError(f"time, flux and err must be 1D of one length, got "
                             f"{self.t.shape}, {self.y.shape}, {self.err.shape}")
        if not np.all(np.isfinite(self.y)):
            raise ValueError(f"flux has {np.sum(~np.isfinite(self.y))} non-finite value(s)")
        if not np.all(np.isfinite(self.err) & (self.err > 0)):
            raise ValueError(f"err has {np.sum(~(np.isfinite(self.err) & (self.err > 0)))} zero, "
                             "negative or non-finite value(s)")
        self._sample_linear = set(sample_linear)
        self._regressors_in = regressors
        self._product = self.spec.systematics == "product"
        self._set_basis(regressors or {})
        self.priors = self._complete_priors(parse_priors(priors))
        self.lay = self._layout()
        nfree = len(self.lay.sampled) + len(self.lay.marg)
        if self.t.size <= nfree:
            raise ValueError(f"{self.t.size} points for {nfree} free parameters: need more points")
        self._prior_arrays()
        self._init_batman()

    # ------------------------------------------------------------ set-up
    def _set_basis(self, regressors: dict) -> None:
        t = self.t
        half = 0.5 * (t.max() - t.min()) if t.size > 1 else 1.0
        x = (t - 0.5 * (t.max() + t.min())) / (half if half > 0 else 1.0)
        cols, names = [x**k for k in range(self.spec.poly + 1)], [f"c{k}" for k in range(self.spec.poly + 1)]
        rcols, rnames = [], []
        for rname in self.spec.regressors:
            optional = rname.endswith("?")  # "tilt?": use it when present and not constant
            rname = rname.rstrip("?")
            if rname not in regressors:
                if optional:
                    continue
                raise ValueError(f"regressor {rname!r} not found; available: {sorted(regressors)}")
            r = np.asarray(regressors[rname], dtype=float)
            if r.shape != t.shape or not np.all(np.isfinite(r)):
                raise ValueError(f"regressor {rname!r} must have {t.size} finite values")
            if np.std(r) == 0:
                if optional:
                    continue
                raise ValueError(f"regressor {rname!r} is constant")
            rcols.append((r - r.mean()) / r.std())
            rnames.append(f"reg_{rname}")
        if not self._product:  # regressors are linear columns of the basis
            cols, names, rcols, rnames = cols + rcols, names + rnames, [], []
        self._basis_static = np.stack(cols, axis=1)       # (n, k) without the ramp column
        self._static_names = names
        self._reg_cols = np.stack(rcols, axis=1) if rcols else np.zeros((t.size, 0))
        self._reg_names = rnames                          # product form: relative factors
        self._ramp_t = t - t.min()

    def _defaults(self) -> dict:
        level = float(np.median(self.y))
        if level <= 0:
            raise ValueError(f"median flux {level} is not positive")
        me = float(np.median(self.err))
        d = {"ecc": 0.0, "w": 90.0, "q1": {"uniform": [0, 1]}, "q2": {"uniform": [0, 1]},
             "rp_rs": {"uniform": [0, 0.5]}, "fp_fs": {"uniform": [-0.1, 0.1]},
             "c0": {"uniform": [0.5 * level, 1.5 * level]},
             "ramp_amp": {"uniform": [-level, level]}, "ramp_tau": {"loguniform": self._tau_range(RAMP_TAU_SPAN)},
             "jitter": {"uniform": [0, 10 * me]},
             "secosw": {"uniform": [-1, 1]}, "sesinw": {"uniform": [-1, 1]},
             "err_scale": {"loguniform": [0.1, 10.0]},
             "pc_amp": {"uniform": [0, 0.1]}, "pc_offset": {"uniform": [-180, 180]},
             "gp_sigma": {"loguniform": [0.01 * me, 100 * me]},
             "gp_rho": {"loguniform": self._tau_range()}, "gp_q": float(1 / np.sqrt(2))}
        for name in self._static_names[1:]:
            d[name] = {"uniform": [-level, level]}
        if self._product:  # relative amplitudes of the factors
            d["ramp_amp"] = {"uniform": [-1, 1]}
            for name in self._reg_names:
                d[name] = {"uniform": [-1, 1]}
        return d

    def _tau_range(self, longest: float = 1.0) -> list:
        """Default time constants (days): one cadence to ``longest`` times the span of the
        data. A shorter ramp only moves the first point; allowing it leaves the chains
        wandering over decades of equal likelihood. For the ramp ``longest`` is
        :data:`RAMP_TAU_SPAN` (see there); for the GP's ``gp_rho`` the whole span."""
        span = float(np.ptp(self.t)) if self.t.size > 1 else 1.0
        cadence = float(np.median(np.diff(np.sort(self.t)))) if self.t.size > 1 else span
        hi = max(longest * span, 1e-3)
        return [min(max(cadence, 1e-5), 0.5 * hi), hi]

    def _all_names(self, given: set) -> list[str]:
        s = self.spec
        names = orbit_names(s) + ["rp_rs"]
        if s.kind in ("eclipse", "phasecurve"):
            names.append("fp_fs")
        if s.kind == "phasecurve":
            names += ["pc_amp", "pc_offset"]
        names += _ld_names(s, given)
        names += self._static_names + self._reg_names
        if s.ramp:
            names += ["ramp_amp", "ramp_tau"]
        if s.jitter:
            names.append("jitter")
        if s.err_scale:
            names.append("err_scale")
        if s.gp:
            names += ["gp_sigma", "gp_rho"] + (["gp_q"] if s.gp == "sho" else [])
        return names

    def _complete_priors(self, given: dict) -> dict:
        names = self._all_names(set(given))
        unknown = [k for k in given if k not in names]
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for this model; allowed: {names}")
        defaults = self._defaults()
        if self.spec.kind == "eclipse":
            defaults.pop("rp_rs")
        out = {}
        for name in names:
            if name in given:
                out[name] = given[name]
            elif name in defaults:
                out[name] = parse_prior(name, defaults[name])
            else:
                raise ValueError(f"parameter {name!r} has {_REQUIRED_MSG}")
        return out

    def _layout(self) -> _Layout:
        lay = _Layout(names=list(self.priors))
        lin = list(self._static_names) + (["ramp_amp"] if self.spec.ramp and not self._product else [])
        lay.linear = lin
        for name, pr in self.priors.items():
            if pr.fixed:
                continue
            if (name in lin and self.spec.marginalize and pr.kind in ("uniform", "normal")
                    and name not in self._sample_linear):
                lay.marg.append(name)
            else:
                lay.sampled.append(name)
        return lay

    def _prior_arrays(self) -> None:
        lay = self.lay
        self._lin_marg_idx = [lay.linear.index(n) for n in lay.marg]
        self._lin_known = [n for n in lay.linear if n not in lay.marg]
        self._lin_known_idx = [lay.linear.index(n) for n in self._lin_known]
        prec = np.zeros(len(lay.marg))
        mu = np.zeros(len(lay.marg))
        for i, n in enumerate(lay.marg):
            pr = self.priors[n]
            if pr.kind == "normal":
                prec[i], mu[i] = 1.0 / pr.b**2, pr.a
        self._prec, self._mu = prec, mu
        self._prec_mat = np.diag(prec)[None]
        self._prec_mu = (prec * mu)[None]
        self._sumlog = float(np.sum(np.log(self.err**2)))
        self._w = 1.0 / self.err**2
        self._fixed = {n: p.a for n, p in self.priors.items() if p.fixed}
        self._fixed_arrays = {}
        self._pv = PriorVector([self.priors[n] for n in lay.sampled])
        #: sampled parameters the sampler walks in log x (log-uniform, log-normal, 1/x-uniform)
        self.log_walk_idx = list(self._pv.log_idx)
        self._noisy = self.spec.jitter or self.spec.err_scale
        # columns that are the same for every walker: the static basis, and the ramp when its
        # time constant is fixed (channel fits); a free ramp_tau makes one ramp column per walker
        cols = self._basis_static
        ramp_lin = self.spec.ramp and not self._product
        self._ramp_free = ramp_lin and not self.priors["ramp_tau"].fixed
        if ramp_lin and not self._ramp_free:
            cols = np.column_stack([cols, np.exp(-self._ramp_t / self.priors["ramp_tau"].a)])
        ks = cols.shape[1]
        self._cols = cols
        self._ms = [i for i in self._lin_marg_idx if i < ks]          # marginalised common columns
        self._ramp_marg = self._ramp_free and "ramp_amp" in lay.marg  # ramp column (last) marginalised
        self._ks_known = [i for i in self._lin_known_idx if i < ks]
        self._ramp_known = self._ramp_free and "ramp_amp" in self._lin_known
        self._Bm = np.ascontiguousarray(cols[:, self._ms])
        # products of the marginalised static columns, (n, m*m): C = (T^2 w) @ P in one GEMM
        self._P = (self._Bm[:, :, None] * self._Bm[:, None, :]).reshape(self.t.size, -1)
        self._has_factor = self._product and (self.spec.ramp or bool(self._reg_names))
        self._cums = None
        if (self._ms and not self._ks_known and not self._ramp_known and not self._noisy
                and not self.spec.gp and not self._has_factor and self.spec.kind != "phasecurve"):
            self._cums = self._window_sums()

    def _window_sums(self) -> dict:
        """Running sums over the points for the solution restricted to the event window.

        Outside the window the astrophysical model of every walker is a constant
        ``a`` (1, or ``1 + fp``), so the sums there are fixed: cumulative sums
        give them for any window in O(1). The chi2 outside uses data centred on
        a baseline fit (``y' = y - B beta_ref``) so that its quadratic form does
        not cancel large numbers.
        """
        w, y, B = self._w, self.y, self._Bm
        beta_ref = np.linalg.lstsq(B * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
        yc = y - B @ beta_ref
        zero = lambda a: np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)])  # noqa: E731
        # per-point columns the ramp (one column per walker) is multiplied with outside
        self._ramp_cols = np.column_stack([w[:, None] * B, w * y, w * yc])
        return {"P": zero(w[:, None] * self._P), "yB": zero((w * y)[:, None] * B),
                "ycB": zero((w * yc)[:, None] * B), "ycyc": zero(w * yc * yc), "beta_ref": beta_ref}

    def _outside(self, key: str, sl: slice):
        c = self._cums[key]
        return c[-1] - (c[sl.stop] - c[sl.start])

    def _init_batman(self) -> None:
        start = self.expand(np.array([[self.priors[n].start for n in self.lay.sampled]]))
        v = {k: float(a[0]) for k, a in start.items()}
        smear = {}
        if self.spec.supersample > 1:
            smear = {"supersample_factor": self.spec.supersample, "exp_time": self.spec.exp_time}
        fixed = all(self.priors[n].fixed for n in orbit_names(self.spec))
        tname = event_time_name(self.spec)
        if self.spec.kind == "phasecurve":
            from tsocontainer.lightcurves.phasecurve import PhaseCurveBatch

            tr = self._batman_batch("transit", v, tname, smear, fixed)
            bm, bp = tr.bm, tr.bp
            t_sec = float(bm.get_t_secondary(bp)) if v["ecc"] else v["t0"] + 0.5 * v["per"]
            ecl = self._batman_batch("eclipse", {**v, "t_sec": t_sec, "fp_fs": 1.0}, "t_sec", smear, fixed)
            self._batch = PhaseCurveBatch(tr, ecl)
        else:
            self._batch = self._batman_batch(self.spec.kind, v, tname, smear, fixed)
        if self._valid(start)[0]:
            self._batch.self_check(start)

    def _batman_batch(self, kind: str, v: dict, tname: str, smear: dict, fixed: bool) -> BatchLightCurve:
        """A :class:`BatchLightCurve` of ``kind`` started at the values ``v``."""
        import batman

        p = batman.TransitParams()
        p.t0 = p.t_secondary = v[tname]
        p.per, p.a, p.rp, p.ecc, p.w = v["per"], v["a_rs"], v["rp_rs"], v["ecc"], v["w"]
        p.inc = v["inc"]
        p.fp = v.get("fp_fs", 0.0)
        if kind == "eclipse":
            p.limb_dark, p.u = "uniform", []
            bm = batman.TransitModel(p, self.t, transittype="secondary", **smear)
        else:
            p.limb_dark = self.spec.limb_darkening
            nu = {"linear": 1, "quadratic": 2, "nonlinear": 4}[p.limb_dark]
            p.u = [v[f"u{k + 1}"] for k in range(nu)]  # batman's step size uses u
            bm = batman.TransitModel(p, self.t, **smear)
        fixed_orbit = None
        if fixed:
            fixed_orbit = {n: v[n] for n in (tname, "per", "a_rs", "inc", "ecc", "w")}
        return BatchLightCurve(self.t, kind, self.spec.limb_darkening, bm, p, fixed_orbit,
                               rp_max=float(self.priors["rp_rs"].hi))

    # -------------------------------------------------------- evaluation
    @property
    def ndim(self) -> int:
        """Number of sampled parameters."""
        return len(self.lay.sampled)

    def expand(self, theta) -> dict:
        """All parameter values (sampled and fixed) for a batch of sampled vectors.

        Parameters
        ----------
        theta : array_like, shape (nb, ndim)

        Returns
        -------
        dict of str to ndarray (nb,)
            Includes the limb-darkening ``u`` from ``q``, both ``inc`` and ``b``
            (the transit's impact parameter, ``a cos(i) (1 - e^2) / (1 + e sin w)``;
            an eclipse's for kind ``eclipse``), and ``ecc``, ``w`` (degrees)
            from ``secosw``, ``sesinw``.
        """
        theta = np.atleast_2d(theta)
        nb = theta.shape[0]
        if nb not in self._fixed_arrays:  # batches have few sizes: build the constants once
            self._fixed_arrays[nb] = {n: np.full(nb, v) for n, v in self._fixed.items()}
        p = dict(self._fixed_arrays[nb])
        for i, n in enumerate(self.lay.sampled):
            p[n] = theta[:, i]
        if "secosw" in p:
            p["ecc"] = p["secosw"] ** 2 + p["sesinw"] ** 2
            p["w"] = np.degrees(np.arctan2(p["sesinw"], p["secosw"]))
        a = p["a_rs"]
        if np.any(p["ecc"] != 0):  # impact parameter of the event on an eccentric orbit
            esw = p["ecc"] * np.sin(np.radians(p["w"]))
            a = a * (1 - p["ecc"] ** 2) / (1 - esw if self.spec.kind == "eclipse" else 1 + esw)
        with np.errstate(invalid="ignore"):
            if "b" in p:
                p["inc"] = np.degrees(np.arccos(p["b"] / a))
            else:
                p["b"] = a * np.cos(np.radians(p["inc"]))
        if "q1" in p:
            sq = np.sqrt(p["q1"])
            if "q2" in p:
                p["u1"], p["u2"] = 2 * sq * p["q2"], sq * (1 - 2 * p["q2"])
            else:
                p["u1"] = p["q1"]
        return p

    def astro(self, p: dict) -> np.ndarray:
        """Batman light curves for a parameter batch.

        Parameters
        ----------
        p : dict of str to ndarray (nb,)
            From :meth:`expand`.

        Returns
        -------
        ndarray, shape (nb, n)
        """
        return self._batch(p)

    def factor(self, p: dict) -> np.ndarray | None:
        """Product-form systematics factor ``(1 + ramp) * prod_j (1 + reg_j r_j)``.

        Parameters
        ----------
        p : dict of str to ndarray (nb,)

        Returns
        -------
        ndarray (nb, n) or None
            None when the model has no such factor.
        """
        if not self._has_factor:
            return None
        nb = len(p["per"])
        F = np.ones((nb, self.t.size))
        for j, name in enumerate(self._reg_names):
            F *= 1.0 + p[name][:, None] * self._reg_cols[None, :, j]
        if self.spec.ramp:
            F *= 1.0 + p["ramp_amp"][:, None] * self._ramp(p)
        return F

    def basis(self, p: dict) -> np.ndarray:
        """Linear systematics basis functions.

        Parameters
        ----------
        p : dict of str to ndarray (nb,)
            From :meth:`expand` (``ramp_tau`` sets the ramp column).

        Returns
        -------
        ndarray, shape (nb, n, k)
            Columns in the order of ``lay.linear``.
        """
        nb = len(next(iter(p.values())))
        B = np.broadcast_to(self._basis_static, (nb,) + self._basis_static.shape)
        if self.spec.ramp and not self._product:
            ramp = np.exp(-self._ramp_t[None, :] / p["ramp_tau"][:, None])
            B = np.concatenate([B, ramp[..., None]], axis=2)
        return B

    def _valid(self, p: dict) -> np.ndarray:
        ok = np.isfinite(p["inc"]) & (p["b"] < p["a_rs"])
        if np.any(p["ecc"] != 0):  # bound orbit that does not graze the star
            ok &= (p["ecc"] <= 0.999) & (p["a_rs"] * (1 - p["ecc"]) > 1)
        return ok

    def _ramp(self, p: dict) -> np.ndarray:
        """Ramp column of every walker, (nb, n)."""
        return np.exp(-self._ramp_t[None, :] / p["ramp_tau"][:, None])

    def _variance(self, p: dict, white: bool = False) -> np.ndarray | None:
        """White-noise variance per walker (nb, n), or None for the input errors alone."""
        if white or not self._noisy:
            return None
        var = self.err**2 if "err_scale" not in p else (p["err_scale"][:, None] * self.err) ** 2
        if "jitter" in p:
            var = var + p["jitter"][:, None] ** 2
        return var

    def _solve_window(self, p: dict, T: np.ndarray, R, win: slice, sumlog) -> _Solution:
        """:meth:`_solve` with the sums outside the event window from running sums.

        Outside ``win`` the model of walker ``b`` is ``a_b (B beta_s + beta_r R_b)``
        with ``a_b`` constant; the static products come from running sums, those
        with a free ramp column ``R_b`` from one matrix product over the outside
        points.
        """
        nb, ms, km = T.shape[0], len(self._ms), len(self.lay.marg)
        lo, hi = win.start, win.stop
        a = (1.0 + p["fp_fs"]) if self.spec.kind == "eclipse" else np.ones(nb)
        a2 = a * a
        Tw, w, y, B = T[:, lo:hi], self._w[lo:hi], self.y[lo:hi], self._Bm[lo:hi]
        tw = Tw * w
        t2w = Tw * tw
        twy = tw * y
        Pout = self._outside("P", win)
        C = np.empty((nb, km, km))
        rhs = np.empty((nb, km))
        C[:, :ms, :ms] = (a2[:, None] * Pout[None] + t2w @ self._P[lo:hi]).reshape(nb, ms, ms)
        rhs[:, :ms] = a[:, None] * self._outside("yB", win)[None] + twy @ B
        if R is not None:  # ramp column: inside directly, outside one product over the points
            Rin, cols = R[:, lo:hi], self._ramp_cols
            G = R[:, :lo] @ cols[:lo] + R[:, hi:] @ cols[hi:]          # (nb, ms + 2)
            Q = (R[:, :lo] ** 2) @ self._w[:lo] + (R[:, hi:] ** 2) @ self._w[hi:]
            t2wr = t2w * Rin
            c_sr = a2[:, None] * G[:, :ms] + t2wr @ B
            C[:, :ms, ms], C[:, ms, :ms] = c_sr, c_sr
            C[:, ms, ms] = a2 * Q + np.einsum("ij,ij->i", t2wr, Rin)
            rhs[:, ms] = a * G[:, ms] + np.einsum("ij,ij->i", twy, Rin)
        C += self._prec_mat
        rhs += self._prec_mu
        L = np.linalg.cholesky(C)
        beta = np.linalg.solve(C, rhs[..., None])[..., 0]
        fitted = beta[:, :ms] @ B.T
        if R is not None:
            fitted += beta[:, ms:ms + 1] * Rin
        r = y - Tw * fitted
        d = a[:, None] * beta[:, :ms] - self._cums["beta_ref"]
        chi2 = ((r * r) @ w + self._outside("ycyc", win) - 2 * d @ self._outside("ycB", win)
                + np.einsum("bi,ij,bj->b", d, Pout.reshape(ms, ms), d))
        if R is not None:  # cross and square terms of the ramp outside
            ab = a * beta[:, ms]
            chi2 += -2 * ab * (G[:, ms + 1] - np.einsum("bi,bi->b", d, G[:, :ms])) + ab * ab * Q
        chi2 += np.sum(self._prec * (beta - self._mu) ** 2, axis=1)
        logdet = 2 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
        return _Solution(p, T, self._w, None, beta, L, chi2, -0.5 * chi2 - 0.5 * logdet - 0.5 * sumlog)

    def _solve(self, theta, p=None, full: bool = False, white: bool = False) -> _Solution:
        """Core: astro model, conditional linear solution and log likelihood.

        Every product over the data points is one matrix product over the
        batch (``(nb, n) @ (n, k)``), never a stack of small ones. When the
        astrophysical model is constant outside an event window (see
        :class:`BatchLightCurve`), the sums outside come from running sums
        (:meth:`_window_sums`) unless ``full`` (the residuals are then not
        computed: ``resid`` is None). ``white`` uses the input errors alone
        (no jitter, error scale or GP: the least-squares start).
        """
        if p is None:
            p = self.expand(theta)
        T = self.astro(p)
        F = self.factor(p)
        if F is not None:
            T = T * F
        nb = T.shape[0]
        R = self._ramp(p) if self._ramp_free else None
        if self._ks_known or self._ramp_known:
            sys_known = np.zeros_like(T)
            if self._ks_known:
                known = np.stack([p[self.lay.linear[i]] for i in self._ks_known], axis=1)
                sys_known += known @ self._cols[:, self._ks_known].T
            if self._ramp_known:
                sys_known += p["ramp_amp"][:, None] * R
            ypr = self.y[None, :] - T * sys_known
        else:  # data, broadcast against the batch
            ypr = self.y
        var = self._variance(p, white)
        if self.spec.gp and not white:
            from tsocontainer.lightcurves.gp import gp_solve

            v = self.err**2 if var is None else var
            beta, L, chi2, ll, r = gp_solve(self, p, T, ypr, R, v)
            return _Solution(p, T, 1.0 / v, r, beta, L, chi2, ll)
        if var is not None:
            sumlog = np.sum(np.log(var), axis=1)
            w = 1.0 / var
        else:  # weights (n,) broadcast against the batch
            w, sumlog = self._w, np.full(nb, self._sumlog)
        km = len(self.lay.marg)
        if not km:
            ypr = np.broadcast_to(ypr, T.shape)
            chi2 = np.sum(ypr**2 * w, axis=1)
            return _Solution(p, T, w, ypr, np.zeros((nb, 0)), None, chi2, -0.5 * chi2 - 0.5 * sumlog)
        ms = len(self._ms)
        win = self._batch.window if self._cums is not None and not full else None
        if win is not None:
            return self._solve_window(p, T, R, win, sumlog)
        tw = T * w
        t2w = T * tw
        C = np.empty((nb, km, km))
        rhs = np.empty((nb, km))
        C[:, :ms, :ms] = (t2w @ self._P).reshape(nb, ms, ms)
        twy = tw * ypr
        rhs[:, :ms] = twy @ self._Bm
        if self._ramp_marg:
            t2wr = t2w * R
            c_sr = t2wr @ self._Bm
            C[:, :ms, ms], C[:, ms, :ms] = c_sr, c_sr
            C[:, ms, ms] = np.einsum("ij,ij->i", t2wr, R)
            rhs[:, ms] = np.einsum("ij,ij->i", twy, R)
        C += self._prec_mat
        rhs += self._prec_mu
        L = np.linalg.cholesky(C)
        beta = np.linalg.solve(C, rhs[..., None])[..., 0]
        fitted = beta[:, :ms] @ self._Bm.T
        if self._ramp_marg:
            fitted += beta[:, ms:ms + 1] * R
        r = ypr - T * fitted
        chi2 = np.sum(r**2 * w, axis=1) + np.sum(self._prec * (beta - self._mu) ** 2, axis=1)
        logdet = 2 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
        return _Solution(p, T, w, r, beta, L, chi2, -0.5 * chi2 - 0.5 * logdet - 0.5 * sumlog)

    @property
    def prior_vector(self):
        """The :class:`~tsocontainer.lightcurves.priors.PriorVector` of the sampled parameters."""
        return self._pv

    def log_prior(self, theta) -> np.ndarray:
        """Sum of the log priors of the sampled parameters.

        Parameters
        ----------
        theta : array_like, shape (nb, ndim)

        Returns
        -------
        ndarray, shape (nb,)
        """
        return self._pv.logp(np.atleast_2d(theta))

    def log_like(self, theta) -> np.ndarray:
        """Log likelihood, marginal over the analytic linear terms, vectorised.

        Parameters
        ----------
        theta : array_like, shape (nb, ndim)
            Inside the priors' support.

        Returns
        -------
        ndarray, shape (nb,)
            ``-inf`` for impossible geometries.
        """
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        out = np.full(theta.shape[0], -np.inf)
        if not theta.shape[0]:
            return out
        p = self.expand(theta)
        ok = self._valid(p)
        if not ok.all():
            p = {k: v[ok] for k, v in p.items()}
        if ok.any():
            try:
                ll = self._solve(theta[ok], p).loglike
            except np.linalg.LinAlgError:
                ll = np.array([self._safe_ll(th) for th in theta[ok]])
            out[ok] = np.where(np.isfinite(ll), ll, -np.inf)
        return out

    def log_prob(self, theta) -> np.ndarray:
        """Log posterior (marginal over the analytic linear terms), vectorised.

        Parameters
        ----------
        theta : array_like, shape (nb, ndim) or (ndim,)

        Returns
        -------
        ndarray, shape (nb,)
            ``-inf`` outside the priors or for impossible geometries.
        """
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        out = self.log_prior(theta)
        ok = np.isfinite(out)
        if ok.any():
            out[ok] += self.log_like(theta[ok])
        out[~ok] = -np.inf
        return out

    def _safe_ll(self, th) -> float:
        try:
            return float(self._solve(th[None]).loglike[0])
        except np.linalg.LinAlgError:
            return -np.inf

    def conditional(self, theta, rng=None) -> dict:
        """All parameters for sampled vectors ``theta``, with the linear terms.

        Parameters
        ----------
        theta : array_like, shape (nb, ndim)
        rng : numpy.random.Generator, optional
            With it, marginalised linear coefficients are drawn from their
            conditional Gaussian; without, they are its mean (best fit).

        Returns
        -------
        dict of str to ndarray (nb,)
            Every parameter plus ``depth`` (``rp_rs**2`` of a transit, else
            ``fp_fs``), ``fp_night`` of a phase curve, and ``u``, ``b``/``inc``,
            ``ecc``/``w`` derived.
        """
        theta = np.atleast_2d(theta)
        sol = self._solve(theta)
        p, beta, L = sol.p, sol.beta, sol.L
        if L is not None and rng is not None:
            z = rng.standard_normal(beta.shape)
            beta = beta + np.linalg.solve(np.swapaxes(L, 1, 2), z[..., None])[..., 0]
        out = dict(p)
        for i, n in enumerate(self.lay.marg):
            out[n] = beta[:, i]
        out["depth"] = p["rp_rs"] ** 2 if self.spec.kind == "transit" else p["fp_fs"]
        if self.spec.kind == "phasecurve":
            out["fp_night"] = p["fp_fs"] - p["pc_amp"] * (1 + np.cos(np.radians(p["pc_offset"])))
        return out

    def model_arrays(self, theta) -> dict:
        """Model, astrophysical and systematics curves at one sampled vector.

        Parameters
        ----------
        theta : array_like, shape (ndim,)

        Returns
        -------
        dict with ``model``, ``astro``, ``systematics`` (n,; ``model = astro *
        systematics``, a GP's conditional mean folded into the systematics),
        the parameters (floats), ``chi2`` and ``loglike``.
        """
        th = np.atleast_2d(theta)[:1]
        vals = self.conditional(th)
        p = self.expand(th)
        T = self.astro(p)[0]
        B = self.basis(p)[0]
        coef = np.array([vals[n][0] for n in self.lay.linear])
        S = B @ coef
        F = self.factor(p)
        if F is not None:
            S = S * F[0]
        model = T * S
        var = self._variance(p)
        var = self.err**2 if var is None else var[0]
        if self.spec.gp:
            from tsocontainer.lightcurves.gp import gp_predict

            g = gp_predict(self, p, self.y - model, var)
            model = model + g
            S = model / T
        chi2 = float(np.sum((self.y - model) ** 2 / var))
        return {"model": model, "astro": T, "systematics": S, "chi2": chi2,
                "params": {k: float(v[0]) for k, v in vals.items()},
                "loglike": float(self._solve(th).loglike[0])}

    def with_sampled_linear(self, names) -> "LightCurveModel":
        """The same model with the linear coefficients ``names`` sampled, not marginalised.

        Parameters
        ----------
        names : collection of str

        Returns
        -------
        LightCurveModel
        """
        return LightCurveModel(self.t, self.y, self.err, self.priors, self.spec,
                               self._regressors_in, sample_linear=set(names) | self._sample_linear)

    def describe_priors(self) -> dict:
        """Text form of every prior, by name."""
        return {n: p.describe() for n, p in self.priors.items()}
