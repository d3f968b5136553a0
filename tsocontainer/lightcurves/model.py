"""Light-curve model: batman transit or eclipse times linear systematics.

The model of the flux at time ``t`` is ``A(t) * S(t)``: ``A`` the batman
transit (``1`` out of transit) or eclipse (``1 + fp_fs`` out of eclipse) light
curve, and ``S`` the systematics, linear in its coefficients::

    S(t) = sum_k c_k x^k + ramp_amp * exp(-(t - t[0]) / ramp_tau) + sum_j reg_<j> r_j(t)

with ``x = (t - t_mid) / (half the time span)`` in [-1, 1] and ``r_j`` each
regressor standardised to zero mean and unit standard deviation (so ``c0`` is
the out-of-event flux level and the other coefficients are in flux units).
The noise is Gaussian with variance ``err**2 + jitter**2``.

The linear coefficients with uniform or normal priors are marginalised
analytically (``ModelSpec.marginalize=True``, the default): the likelihood of
the non-linear parameters is the Gaussian integral over them, exact for normal
priors and for uniform priors whose bounds lie far outside the range the data
allow (the default priors are +/- the flux level); their posterior samples are
drawn from the conditional Gaussian. This makes the sampled problem smaller
(a channel fit with fixed geometry and limb darkening samples only
``rp_rs``). Log-uniform linear priors, or ``marginalize=False``, sample them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from tsocontainer.lightcurves.batch import BatchLightCurve
from tsocontainer.lightcurves.priors import parse_prior, parse_priors
from tsocontainer._util import check_option

__all__ = ["ModelSpec", "LightCurveModel", "KINDS", "LD_LAWS", "GEOMETRIES"]

KINDS = ("transit", "eclipse")
LD_LAWS = ("linear", "quadratic", "nonlinear")
GEOMETRIES = ("inc", "b")
_REQUIRED_MSG = "no default: give a value or a prior"


@dataclass
class ModelSpec:
    """What the light-curve model contains.

    Parameters
    ----------
    kind : str
        ``"transit"`` (parameters ``t0``, ``rp_rs``) or ``"eclipse"``
        (``t_sec``, ``fp_fs``; ``rp_rs`` must be given).
    limb_darkening : str
        ``"linear"``, ``"quadratic"`` or ``"nonlinear"`` (transit only).
        Coefficients ``u1..`` fixed or with a prior; for linear/quadratic, when
        no ``u`` is given, Kipping's ``q1, q2`` are free with uniform priors.
    geometry : str
        Impact parametrisation: ``"inc"`` (degrees) or ``"b"``.
    poly : int
        Degree of the polynomial in time (0 = a constant level).
    ramp : bool
        Add an exponential ramp (``ramp_amp``, ``ramp_tau`` in days; default
        ``ramp_tau`` prior log-uniform from one cadence to the span of the data).
    regressors : tuple of str
        Names of regressors of the light curves used linearly (``reg_<name>``).
        A name ending in ``?`` (e.g. ``"tilt?"``) is optional: used when the
        light curves have it and it is not constant, skipped otherwise.
    jitter : bool
        Fit a white-noise jitter added in quadrature to the errors.
    marginalize : bool
        Marginalise linear coefficients analytically (see module docstring).
    exp_time : float
        Integration duration (days) over which the model is averaged when
        ``supersample > 1`` (batman's supersampling).
    supersample : int
        Number of sub-exposure points per integration (1: none).
    """

    kind: str = "transit"
    limb_darkening: str = "quadratic"
    geometry: str = "inc"
    poly: int = 1
    ramp: bool = False
    regressors: tuple = ()
    jitter: bool = False
    marginalize: bool = True
    exp_time: float = 0.0
    supersample: int = 1

    def __post_init__(self):
        check_option(self.kind, KINDS, "kind")
        check_option(self.limb_darkening, LD_LAWS, "limb_darkening")
        check_option(self.geometry, GEOMETRIES, "geometry")
        if int(self.poly) != self.poly or self.poly < 0:
            raise ValueError(f"poly must be a non-negative integer, got {self.poly!r}")
        self.poly = int(self.poly)
        if isinstance(self.regressors, str):
            self.regressors = (self.regressors,)
        self.regressors = tuple(str(r) for r in self.regressors)
        if int(self.supersample) != self.supersample or self.supersample < 1:
            raise ValueError(f"supersample must be a positive integer, got {self.supersample!r}")
        self.supersample = int(self.supersample)
        if self.supersample > 1 and not self.exp_time > 0:
            raise ValueError("supersample > 1 needs exp_time > 0 (days)")

    @classmethod
    def coerce(cls, obj) -> "ModelSpec":
        """Return a ModelSpec from None, a dict of its fields, or a ModelSpec.

        Parameters
        ----------
        obj : None, dict or ModelSpec

        Returns
        -------
        ModelSpec

        Raises
        ------
        ValueError
            On unknown fields or values.
        """
        if obj is None:
            return cls()
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, dict):
            allowed = [f.name for f in fields(cls)]
            unknown = set(obj) - set(allowed)
            if unknown:
                raise ValueError(f"unknown model option(s) {sorted(unknown)}; allowed: {allowed}")
            return cls(**obj)
        raise ValueError(f"model must be a dict or a ModelSpec, got {type(obj).__name__}")

    def to_dict(self) -> dict:
        """Plain-dict form (JSON-ready)."""
        d = asdict(self)
        d["regressors"] = list(self.regressors)
        return d


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
    T: np.ndarray       # astrophysical model (nb, n)
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


class LightCurveModel:
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

    Raises
    ------
    ValueError
        On non-finite flux, non-positive errors, an unknown parameter name, a
        missing prior, a constant regressor or fewer points than parameters.
    """

    def __init__(self, time, flux, err, priors=None, spec=None, regressors=None):
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
            cols.append((r - r.mean()) / r.std())
            names.append(f"reg_{rname}")
        self._basis_static = np.stack(cols, axis=1)       # (n, k) without the ramp column
        self._static_names = names
        self._ramp_t = t - t.min()

    def _defaults(self) -> dict:
        level = float(np.median(self.y))
        if level <= 0:
            raise ValueError(f"median flux {level} is not positive")
        d = {"ecc": 0.0, "w": 90.0, "q1": {"uniform": [0, 1]}, "q2": {"uniform": [0, 1]},
             "rp_rs": {"uniform": [0, 0.5]}, "fp_fs": {"uniform": [-0.1, 0.1]},
             "c0": {"uniform": [0.5 * level, 1.5 * level]},
             "ramp_amp": {"uniform": [-level, level]}, "ramp_tau": {"loguniform": self._tau_range()},
             "jitter": {"uniform": [0, 10 * float(np.median(self.err))]}}
        for name in self._static_names[1:]:
            d[name] = {"uniform": [-level, level]}
        return d

    def _tau_range(self) -> list:
        """Default ramp time constants (days): one cadence to the visit's span. A shorter
        ramp only moves the first point, a longer one is the polynomial trend; allowing
        them leaves the chains wandering over decades of equal likelihood."""
        span = float(np.ptp(self.t)) if self.t.size > 1 else 1.0
        cadence = float(np.median(np.diff(np.sort(self.t)))) if self.t.size > 1 else span
        hi = max(span, 1e-3)
        return [min(max(cadence, 1e-5), 0.5 * hi), hi]

    def _all_names(self, given: set) -> list[str]:
        s = self.spec
        tname = "t0" if s.kind == "transit" else "t_sec"
        names = [tname, "per", "a_rs", s.geometry, "ecc", "w", "rp_rs"]
        if s.kind == "eclipse":
            names.append("fp_fs")
        names += _ld_names(s, given)
        names += self._static_names
        if s.ramp:
            names += ["ramp_amp", "ramp_tau"]
        if s.jitter:
            names.append("jitter")
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
        lin = list(self._static_names) + (["ramp_amp"] if self.spec.ramp else [])
        lay.linear = lin
        for name, pr in self.priors.items():
            if pr.fixed:
                continue
            if (name in lin and self.spec.marginalize and pr.kind in ("uniform", "normal")):
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
        pri = [self.priors[n] for n in lay.sampled]
        self._lo = np.array([p.lo for p in pri])
        self._hi = np.array([p.hi for p in pri])
        self._norm_idx = [i for i, p in enumerate(pri) if p.kind == "normal"]
        self._norm_mu = np.array([pri[i].a for i in self._norm_idx])
        self._norm_sd = np.array([pri[i].b for i in self._norm_idx])
        self._logu_idx = [i for i, p in enumerate(pri) if p.kind == "loguniform"]
        # columns that are the same for every walker: the static basis, and the ramp when its
        # time constant is fixed (channel fits); a free ramp_tau makes one ramp column per walker
        cols = self._basis_static
        self._ramp_free = self.spec.ramp and not self.priors["ramp_tau"].fixed
        if self.spec.ramp and not self._ramp_free:
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
        self._cums = None
        if self._ms and not self._ks_known and not self._ramp_known and not self.spec.jitter:
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
        import batman

        p = batman.TransitParams()
        v = {n: self.priors[n].start for n in self.priors}
        tname = "t0" if self.spec.kind == "transit" else "t_sec"
        p.t0 = v[tname]
        p.t_secondary = v[tname]
        p.per, p.a, p.rp, p.ecc, p.w = v["per"], v["a_rs"], v["rp_rs"], v["ecc"], v["w"]
        p.inc = v["inc"] if "inc" in v else float(np.degrees(np.arccos(min(v["b"] / v["a_rs"], 1))))
        p.fp = v.get("fp_fs", 0.0)
        smear = {}
        if self.spec.supersample > 1:
            smear = {"supersample_factor": self.spec.supersample, "exp_time": self.spec.exp_time}
        start = self.expand(np.array([[self.priors[n].start for n in self.lay.sampled]]))
        if self.spec.kind == "eclipse":
            p.limb_dark, p.u = "uniform", []
            self._bm = batman.TransitModel(p, self.t, transittype="secondary", **smear)
        else:
            p.limb_dark = self.spec.limb_darkening
            nu = {"linear": 1, "quadratic": 2, "nonlinear": 4}[p.limb_dark]
            p.u = [float(start[f"u{k + 1}"][0]) for k in range(nu)]  # batman's step size uses u
            self._bm = batman.TransitModel(p, self.t, **smear)
        self._bp = p
        tname = "t0" if self.spec.kind == "transit" else "t_sec"
        orbit = [tname, "per", "a_rs", self.spec.geometry, "ecc", "w"]
        fixed_orbit = None
        if all(self.priors[n].fixed for n in orbit):
            fixed_orbit = {n: float(start[n][0]) for n in (tname, "per", "a_rs", "inc", "ecc", "w")}
        self._batch = BatchLightCurve(self.t, self.spec.kind, self.spec.limb_darkening, self._bm, p,
                                      fixed_orbit, rp_max=float(self.priors["rp_rs"].hi))
        if self._valid(start)[0]:
            self._batch.self_check(start)

    # -------------------------------------------------------- evaluation
    @property
    def ndim(self) -> int:
        """Number of sampled parameters."""
        return len(self.lay.sampled)

    def start(self) -> np.ndarray:
        """Starting values of the sampled parameters.

        ``init`` when given, else the prior's centre, except (transit only):
        ``rp_rs`` starts from the depth of the median-filtered data, and
        ``inc`` from an impact parameter of 0.5 when the prior centre would
        give no transit (least squares cannot leave a flat model).
        """
        vals = {n: self.priors[n].start for n in self.priors}
        free = {n for n in self.lay.sampled if self.priors[n].init is None}
        if self.spec.kind == "transit" and "inc" in free:
            if vals["a_rs"] * np.cos(np.radians(vals["inc"])) > 0.8:
                vals["inc"] = float(np.degrees(np.arccos(min(0.5 / vals["a_rs"], 1.0))))
        if self.spec.kind == "transit" and "rp_rs" in free and self.t.size >= 10:
            from scipy.ndimage import median_filter

            smooth = median_filter(self.y, size=max(3, self.t.size // 20), mode="mirror")
            depth = 1.0 - smooth.min() / np.median(self.y)
            vals["rp_rs"] = float(np.sqrt(max(depth, 1e-6)))
        for n in free:
            pr = self.priors[n]
            vals[n] = float(np.clip(vals[n], pr.lo, pr.hi))
        return np.array([vals[n] for n in self.lay.sampled])

    def expand(self, theta) -> dict:
        """All parameter values (sampled and fixed) for a batch of sampled vectors.

        Parameters
        ----------
        theta : array_like, shape (nb, ndim)

        Returns
        -------
        dict of str to ndarray (nb,)
            Includes the limb-darkening ``u`` from ``q`` and both ``inc`` and ``b``.
        """
        theta = np.atleast_2d(theta)
        nb = theta.shape[0]
        if nb not in self._fixed_arrays:  # batches have few sizes: build the constants once
            self._fixed_arrays[nb] = {n: np.full(nb, v) for n, v in self._fixed.items()}
        p = dict(self._fixed_arrays[nb])
        for i, n in enumerate(self.lay.sampled):
            p[n] = theta[:, i]
        with np.errstate(invalid="ignore"):
            if "b" in p:
                p["inc"] = np.degrees(np.arccos(p["b"] / p["a_rs"]))
            else:
                p["b"] = p["a_rs"] * np.cos(np.radians(p["inc"]))
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

    def basis(self, p: dict) -> np.ndarray:
        """Systematics basis functions.

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
        if self.spec.ramp:
            ramp = np.exp(-self._ramp_t[None, :] / p["ramp_tau"][:, None])
            B = np.concatenate([B, ramp[..., None]], axis=2)
        return B

    def _valid(self, p: dict) -> np.ndarray:
        return np.isfinite(p["inc"]) & (p["b"] < p["a_rs"])

    def _ramp(self, p: dict) -> np.ndarray:
        """Ramp column of every walker, (nb, n)."""
        return np.exp(-self._ramp_t[None, :] / p["ramp_tau"][:, None])

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

    def _solve(self, theta, p=None, full: bool = False) -> _Solution:
        """Core: astro model, conditional linear solution and log likelihood.

        Every product over the data points is one matrix product over the
        batch (``(nb, n) @ (n, k)``), never a stack of small ones. When the
        astrophysical model is constant outside an event window (see
        :class:`BatchLightCurve`), the sums outside come from running sums
        (:meth:`_window_sums`) unless ``full`` (the residuals are then not
        computed: ``resid`` is None).
        """
        if p is None:
            p = self.expand(theta)
        T = self.astro(p)
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
        if "jitter" in p:
            var = self.err**2 + p["jitter"][:, None] ** 2
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

    def log_prior(self, theta) -> np.ndarray:
        """Sum of the log priors of the sampled parameters.

        Parameters
        ----------
        theta : array_like, shape (nb, ndim)

        Returns
        -------
        ndarray, shape (nb,)
        """
        theta = np.atleast_2d(theta)
        inside = np.all((theta >= self._lo) & (theta <= self._hi), axis=1)
        lp = np.zeros(theta.shape[0])
        if self._norm_idx:
            lp -= 0.5 * np.sum(((theta[:, self._norm_idx] - self._norm_mu) / self._norm_sd) ** 2, axis=1)
        if self._logu_idx:
            with np.errstate(divide="ignore", invalid="ignore"):
                lp -= np.sum(np.log(theta[:, self._logu_idx]), axis=1)
        lp[~inside] = -np.inf
        return lp

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
        p = self.expand(theta[ok]) if ok.any() else None
        if p is not None:
            valid = self._valid(p)
            if not valid.all():
                ok[ok] = valid
                p = {k: v[valid] for k, v in p.items()}
        if ok.any():
            try:
                ll = self._solve(theta[ok], p).loglike
            except np.linalg.LinAlgError:
                ll = np.array([self._safe_ll(th) for th in theta[ok]])
            out[ok] += np.where(np.isfinite(ll), ll, -np.inf)
        out[~ok] = -np.inf
        return out

    def _safe_ll(self, th) -> float:
        try:
            return float(self._solve(th[None]).loglike[0])
        except np.linalg.LinAlgError:
            return -np.inf

    def lsq_residuals(self, theta, jitter: float = 0.0) -> np.ndarray:
        """Normalised residuals for least squares.

        Parameters
        ----------
        theta : array_like, shape (ndim,)
            Sampled parameters (a jitter among them is replaced by ``jitter``).
        jitter : float
            Jitter used during least squares.

        Returns
        -------
        ndarray
            Data residuals over their errors, then those of the normal priors;
            a large constant vector outside the priors.
        """
        th = np.asarray(theta, dtype=float)[None]
        p = self.expand(th)
        if not self._valid(p)[0] or not np.isfinite(self.log_prior(th)[0]):
            return np.full(self.t.size, 1e6)
        if "jitter" in self.lay.sampled:
            th = th.copy()
            th[0, self.lay.sampled.index("jitter")] = jitter
        sol = self._solve(th, full=True)
        km = len(self.lay.marg)
        extra = [np.sqrt(self._prec) * (sol.beta[0] - self._mu)] if km else []
        for i, n in enumerate(self.lay.sampled):
            pr = self.priors[n]
            if pr.kind == "normal" and n != "jitter":
                extra.append(np.atleast_1d((th[0, i] - pr.a) / pr.b))
        return np.concatenate([sol.resid[0] * np.sqrt(np.broadcast_to(sol.w, sol.T.shape)[0])] + extra)

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
            Every parameter plus ``depth`` (and ``u``, ``b``/``inc`` derived).
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
        out["depth"] = p["fp_fs"] if self.spec.kind == "eclipse" else p["rp_rs"] ** 2
        return out

    def model_arrays(self, theta) -> dict:
        """Model, astrophysical and systematics curves at one sampled vector.

        Parameters
        ----------
        theta : array_like, shape (ndim,)

        Returns
        -------
        dict with ``model``, ``astro``, ``systematics`` (n,), the parameters
        (floats), ``chi2`` and ``loglike``.
        """
        th = np.atleast_2d(theta)[:1]
        vals = self.conditional(th)
        p = self.expand(th)
        T = self.astro(p)[0]
        B = self.basis(p)[0]
        coef = np.array([vals[n][0] for n in self.lay.linear])
        S = B @ coef
        model = T * S
        var = self.err**2 + (vals["jitter"][0] ** 2 if "jitter" in vals else 0.0)
        chi2 = float(np.sum((self.y - model) ** 2 / var))
        return {"model": model, "astro": T, "systematics": S, "chi2": chi2,
                "params": {k: float(v[0]) for k, v in vals.items()},
                "loglike": float(self._solve(th).loglike[0])}

    def describe_priors(self) -> dict:
        """Text form of every prior, by name."""
        return {n: p.describe() for n, p in self.priors.items()}

