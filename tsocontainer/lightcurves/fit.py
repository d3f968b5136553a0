"""Fit transit/eclipse light curves: least squares, then emcee; channels in parallel.

Workflow::

    white = fit_white(lc, priors)                       # geometry, depth, LD, trend
    fits = fit_channels(lc, white=white, workers=4)     # geometry fixed to white
    fits.spectrum.plot()

Each fit starts with a least-squares solution (scipy ``least_squares``, with
the linear systematics solved at every step), initialises emcee walkers from
its covariance and runs the default stretch move until the chain is
``tau_factor`` (50) integrated autocorrelation times long after burn-in
(checked every ``check_every`` steps, at most ``max_steps``). A fit that stops
short of that, or whose acceptance fraction is outside
[``min_acceptance``, ``max_acceptance``], emits a :class:`ConvergenceWarning`.
The model and the priors are described in :mod:`tsocontainer.lightcurves.model` and
:mod:`tsocontainer.lightcurves.priors`.
"""
from __future__ import annotations

import logging
import sys
import time as _time
import warnings
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from tsocontainer.lightcurves.model import LightCurveModel, ModelSpec
from tsocontainer.lightcurves.priors import parse_prior, parse_priors
from tsocontainer.lightcurves.results import FitResult, TransmissionSpectrum
from tsocontainer._util import check_option
from tsocontainer.lightcurves.tools import write_table_atomic

__all__ = ["ConvergenceWarning", "SamplerSettings", "ChannelFits", "fit_lightcurve",
           "fit_white", "fit_channels", "GEOMETRY_MODES"]

if TYPE_CHECKING:  # for type hints only
    from astropy.table import Table

log = logging.getLogger(__name__)

GEOMETRY_MODES = ("fixed", "free")


class ConvergenceWarning(UserWarning):
    """An MCMC chain too short for its autocorrelation time, or a bad acceptance fraction."""


@dataclass
class SamplerSettings:
    """Settings of the emcee run.

    Parameters
    ----------
    nwalkers : int, optional
        Walkers; default ``max(16, 4 * ndim)`` (even).
    nsteps : int, optional
        Fixed number of steps. Default: run in blocks of ``check_every`` until
        converged or ``max_steps``.
    burn : int, optional
        Steps discarded; default ``5 tau`` (at most half the chain).
    check_every : int
        Block length of the adaptive run.
    max_steps : int
        Upper limit of the adaptive run.
    tau_factor : float
        Converged when post-burn steps >= ``tau_factor * max(tau)``.
    min_acceptance, max_acceptance : float
        Allowed mean acceptance fraction.
    max_samples : int
        Maximum number of thinned posterior samples kept.
    seed : int, optional
        Seed of the walker initialisation and of emcee.
    keep_chain : bool
        Keep the full chain in the result.
    """

    nwalkers: int | None = None
    nsteps: int | None = None
    burn: int | None = None
    check_every: int = 500
    max_steps: int = 20000
    tau_factor: float = 50.0
    min_acceptance: float = 0.1
    max_acceptance: float = 0.9
    max_samples: int = 20000
    seed: int | None = None
    keep_chain: bool = False

    def __post_init__(self):
        for name in ("nwalkers", "nsteps", "burn"):
            v = getattr(self, name)
            if v is not None and (int(v) != v or v < 0):
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if self.nsteps is not None and self.burn is not None and self.burn >= self.nsteps:
            raise ValueError(f"burn ({self.burn}) must be smaller than nsteps ({self.nsteps})")
        if self.check_every < 1 or self.max_steps < self.check_every:
            raise ValueError("need check_every >= 1 and max_steps >= check_every")

    @classmethod
    def coerce(cls, obj) -> "SamplerSettings":
        """Return settings from None, a dict of fields or a SamplerSettings.

        Parameters
        ----------
        obj : None, dict or SamplerSettings

        Returns
        -------
        SamplerSettings

        Raises
        ------
        ValueError
            On unknown fields.
        """
        if obj is None:
            return cls()
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, dict):
            allowed = [f.name for f in fields(cls)]
            unknown = set(obj) - set(allowed)
            if unknown:
                raise ValueError(f"unknown sampler option(s) {sorted(unknown)}; allowed: {allowed}")
            return cls(**obj)
        raise ValueError(f"sampler must be a dict or SamplerSettings, got {type(obj).__name__}")


# --------------------------------------------------------------- one fit
def _least_squares(m: LightCurveModel):
    """Least-squares start: best sampled vector, its covariance and the result."""
    from scipy.optimize import least_squares

    names = m.lay.sampled
    start = m.start()
    free = [i for i, n in enumerate(names) if n != "jitter"]
    scale = np.array([m.priors[names[i]].scale for i in free])
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    lo = np.array([(m.priors[names[i]].lo - start[i]) / s for i, s in zip(free, scale)])
    hi = np.array([(m.priors[names[i]].hi - start[i]) / s for i, s in zip(free, scale)])

    def vec(z):
        th = start.copy()
        th[free] = start[free] + z * scale
        return th

    res = least_squares(lambda z: m.lsq_residuals(vec(z)), np.zeros(len(free)),
                        bounds=(lo, hi), x_scale="jac", method="trf")
    theta = vec(res.x)
    cov = np.full((len(names), len(names)), np.nan)
    try:
        cz = np.linalg.pinv(res.jac.T @ res.jac)
        cov[np.ix_(free, free)] = cz * np.outer(scale, scale)
    except np.linalg.LinAlgError:
        pass
    if "jitter" in names:
        j = names.index("jitter")
        arr = m.model_arrays(np.where(np.arange(len(names)) == j, 0.0, theta))
        excess = np.var(m.y - arr["model"]) - np.mean(m.err**2)
        pj = m.priors["jitter"]
        theta[j] = np.clip(np.sqrt(max(excess, (0.1 * np.median(m.err)) ** 2)), pj.lo, pj.hi)
        cov[j, :] = cov[:, j] = 0.0
        cov[j, j] = (0.2 * theta[j]) ** 2
    return theta, cov, res


def _init_walkers(m: LightCurveModel, theta0, cov, nwalkers: int, rng) -> np.ndarray:
    """Walkers drawn from N(theta0, cov) inside the priors (tiny ball as fallback)."""
    ndim = theta0.size
    scale = np.array([m.priors[n].scale for n in m.lay.sampled])
    sd = np.sqrt(np.diag(cov))
    bad = ~np.isfinite(sd) | (sd <= 0)
    fallback = np.where(np.isfinite(scale) & (scale > 0), 1e-3 * scale, 1e-6 * np.abs(theta0) + 1e-8)
    sd = np.where(bad, fallback, sd)
    has_scale = np.isfinite(scale) & (scale > 0)
    sd = np.where(has_scale, np.minimum(sd, scale), sd)
    # A parameter pinned at a prior bound (e.g. q1 = 0, where q2 has no effect)
    # gets a least-squares spread of ~1e-12: the walkers are then nearly linearly
    # dependent and emcee refuses them (condition number > 1e8). Measured in
    # units of each prior's width, no spread may fall below 1e-3 of the widest:
    # that bounds the condition number near 1e6 and leaves any parameter the data
    # constrain within a factor 1000 of the others untouched.
    rel = np.where(has_scale, sd / np.where(has_scale, scale, 1.0), np.nan)
    floor = 1e-3 * np.nanmax(rel) * scale if np.isfinite(rel).any() else np.zeros_like(sd)
    floored = has_scale & (sd < floor)
    sd = np.where(floored, floor, sd)
    c = np.where(np.isfinite(cov), cov, 0.0)
    use_cov = not (bad.any() or floored.any())
    if use_cov:
        corr = c / np.outer(np.sqrt(np.diag(c)), np.sqrt(np.diag(c)))
        c = corr * np.outer(sd, sd)
        use_cov = np.all(np.linalg.eigvalsh(c) > 0)
    p = np.empty((nwalkers, ndim))
    todo = np.ones(nwalkers, bool)
    for _ in range(100):
        n = int(todo.sum())
        draw = (rng.multivariate_normal(theta0, c, n) if use_cov
                else theta0 + sd * rng.standard_normal((n, ndim)))
        p[todo] = draw
        todo[todo] = ~np.isfinite(m.log_prob(draw))
        if not todo.any():
            return p
    n = int(todo.sum())
    p[todo] = theta0 + 1e-4 * sd * rng.standard_normal((n, ndim))
    return p


def _diagnose(sampler, nsteps: int, st: SamplerSettings, names) -> dict:
    """Autocorrelation times, burn-in, acceptance and the convergence verdict."""
    from emcee.autocorr import integrated_time

    chain = sampler.get_chain()
    with np.errstate(invalid="ignore", divide="ignore"):  # a stuck walker has a zero ACF
        tau0 = integrated_time(chain[nsteps // 4:], tol=0, quiet=True)
        tau0 = np.where(np.isfinite(tau0), tau0, nsteps)
        burn = st.burn if st.burn is not None else int(min(np.ceil(5 * np.max(tau0)), nsteps // 2))
        tau = integrated_time(chain[burn:], tol=0, quiet=True)
    tau = np.where(np.isfinite(tau), tau, float(nsteps))
    n_tau = (nsteps - burn) / np.max(tau)
    acc = float(np.mean(sampler.acceptance_fraction))
    messages = []
    last = sampler.get_log_prob()[-1]
    stuck = int(np.sum(last < np.median(last) - 25.0))  # e^-25: a walker left far behind
    if stuck:
        messages.append(f"{stuck} walker(s) stuck far below the others in log posterior "
                        "(bad starting point or a second mode)")
    if n_tau < st.tau_factor:
        messages.append(f"chain is {n_tau:.1f} autocorrelation times long after burn-in "
                        f"(need {st.tau_factor:g}); max tau {np.max(tau):.1f} steps "
                        f"({names[int(np.argmax(tau))]})")
    if not st.min_acceptance <= acc <= st.max_acceptance:
        messages.append(f"mean acceptance fraction {acc:.2f} outside "
                        f"[{st.min_acceptance}, {st.max_acceptance}]")
    return {"nsteps": int(nsteps), "burn": int(burn), "acceptance": acc,
            "tau": {n: float(t) for n, t in zip(names, tau)}, "n_tau": float(n_tau),
            "converged": not messages, "messages": messages}


class _LogSpace:
    """emcee's view of a model whose log-uniform parameters it walks in log space.

    A parameter with a log-uniform prior over decades (``ramp_tau``, ``jitter``)
    is flat in its logarithm; the stretch move mixes it far better there (a
    linear walk across three decades gave autocorrelation times of ~1000
    steps). ``log_prob`` adds the Jacobian, so the posterior is unchanged.
    """

    def __init__(self, m: LightCurveModel):
        self.m, self.idx = m, list(m._logu_idx)

    def to_walk(self, theta):
        u = np.array(theta, dtype=float, copy=True)
        u[..., self.idx] = np.log(u[..., self.idx])
        return u

    def to_theta(self, u):
        theta = np.array(u, dtype=float, copy=True)
        theta[..., self.idx] = np.exp(theta[..., self.idx])
        return theta

    def jacobian(self, u):
        return np.sum(np.asarray(u)[..., self.idx], axis=-1)

    def log_prob(self, u):
        u = np.atleast_2d(u)
        return self.m.log_prob(self.to_theta(u)) + self.jacobian(u)


class _ThetaView:
    """The sampler's chain and log posterior back in the model's parameters."""

    def __init__(self, sampler, space: _LogSpace):
        chain = sampler.get_chain()
        self._chain = space.to_theta(chain)
        self._lnp = sampler.get_log_prob() - space.jacobian(chain)
        self.acceptance_fraction = sampler.acceptance_fraction

    def get_chain(self):
        return self._chain

    def get_log_prob(self):
        return self._lnp


def _run_emcee(m: LightCurveModel, p0, st: SamplerSettings, seed: int):
    import emcee

    space = _LogSpace(m)
    sampler = emcee.EnsembleSampler(p0.shape[0], p0.shape[1], space.log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(seed % 2**32).get_state()
    u0 = space.to_walk(p0)
    if st.nsteps is not None:
        sampler.run_mcmc(u0, st.nsteps)
        return _ThetaView(sampler, space), _diagnose(sampler, st.nsteps, st, m.lay.sampled)
    total, state = 0, u0
    while True:
        n = min(st.check_every, st.max_steps - total)
        sampler.run_mcmc(state, n)
        state, total = None, total + n
        diag = _diagnose(sampler, total, st, m.lay.sampled)   # mixing where the walk is
        if diag["converged"] or total >= st.max_steps:
            return _ThetaView(sampler, space), diag


def _summarise(m: LightCurveModel, sampler, diag: dict, st: SamplerSettings, rng):
    """Posterior samples of every parameter, percentiles and the MAP."""
    chain = sampler.get_chain()
    lnp = sampler.get_log_prob()
    thin = max(1, int(0.5 * max(diag["tau"].values())))
    flat = chain[diag["burn"]::thin].reshape(-1, m.ndim)
    if flat.shape[0] > st.max_samples:
        flat = flat[np.linspace(0, flat.shape[0] - 1, st.max_samples).astype(int)]
    parts = [m.conditional(flat[i:i + 2000], rng) for i in range(0, flat.shape[0], 2000)]
    vals = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    i, j = np.unravel_index(np.argmax(lnp), lnp.shape)
    best = m.model_arrays(chain[i, j])
    status = {n: ("fixed" if m.priors[n].fixed else "marginalised" if n in m.lay.marg else "free")
              for n in m.priors}
    derived = ["depth"] + [n for n in ("b", "inc", "u1", "u2") if n in vals and n not in status]
    status.update({n: "derived" for n in derived})
    names = list(status)
    med, lo, hi = {}, {}, {}
    for n in names:
        q = np.percentile(vals[n], [15.865525393145708, 50, 84.13447460685429])
        med[n], lo[n], hi[n] = float(q[1]), float(q[1] - q[0]), float(q[2] - q[1])
    sample_names = [n for n in names if status[n] != "fixed"]
    samples = np.stack([vals[n] for n in sample_names], axis=1)
    return names, status, med, lo, hi, best, samples, sample_names, chain


def _fit_core(time, flux, err, priors, spec, st: SamplerSettings, regressors=None) -> FitResult:
    """One fit without warnings (messages are in ``diagnostics``)."""
    t_start = _time.perf_counter()
    m = LightCurveModel(time, flux, err, priors, spec, regressors)
    if m.ndim == 0:
        raise ValueError("no free non-linear parameter to sample; free at least one of "
                         f"{[n for n in m.priors if n not in m.lay.linear]}")
    seed = st.seed if st.seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
    rng = np.random.default_rng(seed)
    theta0, cov, lsq = _least_squares(m)
    nw = st.nwalkers or max(16, 4 * m.ndim)
    nw += nw % 2
    if nw < 2 * m.ndim:
        raise ValueError(f"need at least {2 * m.ndim} walkers for {m.ndim} free parameters, got {nw}")
    p0 = _init_walkers(m, theta0, cov, nw, rng)
    sampler, diag = _run_emcee(m, p0, st, seed)
    names, status, med, lo, hi, best, samples, snames, chain = _summarise(m, sampler, diag, st, rng)
    lsq_vals = m.model_arrays(theta0)["params"]
    diag.update({"nwalkers": nw, "chi2": best["chi2"], "npoints": int(m.t.size),
                 "nfree": m.ndim + len(m.lay.marg), "loglike_map": best["loglike"],
                 "lsq": {n: lsq_vals[n] for n in m.lay.sampled + m.lay.marg},
                 "lsq_err": {n: float(np.sqrt(cov[i, i])) if np.isfinite(cov[i, i]) else None
                             for i, n in enumerate(m.lay.sampled)},
                 "lsq_status": int(lsq.status), "seed": int(seed),
                 "runtime": _time.perf_counter() - t_start})
    return FitResult(names=names, status=status, median=med, err_lo=lo, err_hi=hi,
                     map={n: best["params"][n] for n in names}, priors=m.describe_priors(),
                     model=m.spec.to_dict(), diagnostics=diag, samples=samples,
                     sample_names=snames, chain=chain if st.keep_chain else None,
                     time=m.t.copy(), flux=m.y.copy(), err=m.err.copy(),
                     model_flux=best["model"], astro=best["astro"], systematics=best["systematics"])


def _warn(result: FitResult, label: str) -> None:
    for msg in result.diagnostics.get("messages", []):
        warnings.warn(f"{label}: {msg}", ConvergenceWarning, stacklevel=3)


def fit_lightcurve(time, flux, err, priors=None, *, model=None, sampler=None,
                   regressors=None) -> FitResult:
    """Fit one light curve: least squares, then emcee.

    Parameters
    ----------
    time, flux, err : array_like, shape (n,)
        Times (BJD_TDB), fluxes and 1-sigma errors.
    priors : dict, str or path-like, optional
        Priors by parameter name (dict, YAML file or YAML text; see
        :mod:`tsocontainer.lightcurves.priors`). Orbital parameters have no default.
    model : ModelSpec or dict, optional
        Model options (kind, limb_darkening, geometry, poly, ramp, regressors,
        jitter, marginalize).
    sampler : SamplerSettings or dict, optional
        emcee settings.
    regressors : dict of str to array_like (n,), optional
        Regressor values (those named in ``model["regressors"]`` are used).

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        On NaNs in flux, non-positive errors, fewer points than parameters,
        a prior outside its bounds, an unknown parameter or option.

    Warns
    -----
    ConvergenceWarning
        If the chain is shorter than ``tau_factor`` autocorrelation times or
        the acceptance fraction is out of range.
    """
    st = SamplerSettings.coerce(sampler)
    res = _fit_core(time, flux, err, priors, ModelSpec.coerce(model), st, regressors)
    d = res.diagnostics
    log.info("fit_lightcurve: %d points, %d sampled + %d analytic parameters, %d walkers x %d "
             "steps, max tau %.1f, acceptance %.2f, chi2 %.1f (%.1f s)", d["npoints"],
             len(d["tau"]), d["nfree"] - len(d["tau"]), d["nwalkers"], d["nsteps"],
             max(d["tau"].values()), d["acceptance"], d["chi2"], d["runtime"])
    _warn(res, "fit")
    return res


def _points(lc, c: int):
    u = ~lc.clipped[c]
    return lc.time[u], lc.flux[c, u], lc.err[c, u], {k: v[u] for k, v in lc.regressors.items()}


def fit_white(lc, priors=None, *, model=None, sampler=None, wave_range=None) -> FitResult:
    """Fit the white-light curve of ``lc``.

    Parameters
    ----------
    lc : LightCurves
        A single channel is fitted as it is; several are summed with
        :meth:`LightCurves.white` over ``wave_range``.
    priors, model, sampler
        See :func:`fit_lightcurve`.
    wave_range : (float, float), optional
        Wavelength range of the white light (micron).

    Returns
    -------
    FitResult
    """
    wl = lc if lc.nchan == 1 and wave_range is None else lc.white(wave_range)
    t, f, e, regs = _points(wl, 0)
    res = _fit_core(t, f, e, priors, ModelSpec.coerce(model), SamplerSettings.coerce(sampler), regs)
    res.wave_lo, res.wave_hi = float(wl.wave_lo[0]), float(wl.wave_hi[0])
    d = res.diagnostics
    log.info("fit_white: %.3f-%.3f um, %d points, depth %.1f +/- %.1f ppm, max tau %.1f, "
             "acceptance %.2f, %d steps (%.1f s)", res.wave_lo, res.wave_hi, d["npoints"],
             res.depth_ppm[0], 0.5 * (res.depth_ppm[1] + res.depth_ppm[2]),
             max(d["tau"].values()), d["acceptance"], d["nsteps"], d["runtime"])
    _warn(res, "fit_white")
    return res


# ----------------------------------------------------------- channels
@dataclass
class ChannelFits:
    """Fits of every spectroscopic channel.

    Attributes
    ----------
    results : list of FitResult
        One per channel, in channel order.
    spectrum : TransmissionSpectrum
        Depths (ppm) per channel.
    geometry : str
        ``"fixed"`` (to the white-light fit) or ``"free"``.
    """

    results: list
    spectrum: TransmissionSpectrum
    geometry: str = "fixed"

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int) -> FitResult:
        return self.results[i]

    def __iter__(self):
        return iter(self.results)

    @property
    def converged(self) -> np.ndarray:
        """Convergence flag per channel."""
        return np.array([r.converged for r in self.results])

    def model_array(self, time) -> np.ndarray:
        """MAP models of all channels on the time grid of the light curves.

        Parameters
        ----------
        time : array_like, shape (nint,)
            Times of the fitted :class:`LightCurves`.

        Returns
        -------
        ndarray, shape (nchan, nint)
            NaN at points a fit did not use (clipped); usable as ``model`` in
            :meth:`LightCurves.sensitivity` and :meth:`LightCurves.rms_vs_bin`.
        """
        time = np.asarray(time, dtype=float)
        out = np.full((len(self.results), time.size), np.nan)
        for c, r in enumerate(self.results):
            idx = np.searchsorted(time, r.time)
            if np.any(idx >= time.size) or not np.array_equal(time[idx], r.time):
                raise ValueError(f"channel {c}: fitted times are not on this time grid")
            out[c, idx] = r.model_flux
        return out

    def to_table(self) -> "Table":
        """One row per channel: wavelengths and median/err_lo/err_hi of every non-fixed parameter.

        Returns
        -------
        astropy.table.Table
        """
        from astropy.table import Table

        t = Table()
        t["wave_lo"] = [r.wave_lo for r in self.results]
        t["wave_hi"] = [r.wave_hi for r in self.results]
        for n in self.results[0].names:
            if self.results[0].status[n] == "fixed":
                continue
            t[n] = [r.median[n] for r in self.results]
            t[f"{n}_err_lo"] = [r.err_lo[n] for r in self.results]
            t[f"{n}_err_hi"] = [r.err_hi[n] for r in self.results]
        t["converged"] = self.converged
        t.meta["geometry"] = self.geometry
        return t

    def write(self, path, overwrite: bool = False) -> str:
        """Write :meth:`to_table` as ECSV (atomically).

        Parameters
        ----------
        path : str or path-like
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        str
            The path written.
        """
        return write_table_atomic(self.to_table(), path, overwrite)


def _fit_task(task: dict) -> FitResult:
    """Worker: fit one channel (module level so that processes can pickle it)."""
    try:
        res = _fit_core(task["time"], task["flux"], task["err"], task["priors"], task["model"],
                        task["sampler"], task["regressors"])
    except ValueError as exc:
        raise ValueError(f"channel {task['index']}: {exc}") from exc
    res.wave_lo, res.wave_hi = task["wave_lo"], task["wave_hi"]
    return res


def _channel_priors(lc, priors, channel_priors, white, geometry: str, spec: ModelSpec) -> list:
    base = parse_priors(priors)
    tname = "t0" if spec.kind == "transit" else "t_sec"
    geo = [tname, "per", "a_rs", spec.geometry, "ecc", "w"]
    if geometry == "fixed":
        if white is not None:
            for n in geo:
                if n not in white.median:
                    raise ValueError(f"white-light result has no {n!r} to fix")
                base[n] = parse_prior(n, white.median[n])
        missing = [n for n in geo if n not in base or not base[n].fixed]
        missing = [n for n in missing if n not in ("ecc", "w") or n in base]
        if missing:
            raise ValueError(f"geometry='fixed' needs white= (a fit_white result) or fixed "
                             f"priors for {missing}")
        # the ramp's time constant is the detector's, not the planet's: fixed to the white
        # light's like the orbit (its amplitude stays free in every channel). Free, it is
        # ill-constrained per channel and its chains did not mix (tau ~1000 steps).
        if spec.ramp and white is not None and "ramp_tau" in white.median \
                and "ramp_tau" not in base:
            base["ramp_tau"] = parse_prior("ramp_tau", white.median["ramp_tau"])
    depth = "rp_rs" if spec.kind == "transit" else "fp_fs"
    if white is not None and depth in white.median and depth not in base:
        base[depth] = parse_prior(depth, {"uniform": [0, 0.5] if depth == "rp_rs" else [-0.1, 0.1],
                                          "init": white.median[depth]})
    out = []
    for c in range(lc.nchan):
        pc = dict(base)
        for name, specs in (channel_priors or {}).items():
            if len(specs) != lc.nchan:
                raise ValueError(f"channel_priors[{name!r}] has {len(specs)} entries for {lc.nchan} channels")
            pc[name] = parse_prior(name, specs[c])
        out.append(pc)
    return out


def _run_tasks(tasks: list, workers: int, client, progress):
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else not progress
    results = [None] * len(tasks)
    if client is not None:
        futures = {client.submit(_fit_task, task): i for i, task in enumerate(tasks)}
    elif workers > 1:  # processes start before the progress bar's thread exists
        pool = ProcessPoolExecutor(max_workers=workers)
        futures = {pool.submit(_fit_task, task): i for i, task in enumerate(tasks)}
    else:
        futures = None
    with tqdm(total=len(tasks), desc="fit_channels", unit="ch", disable=disable) as bar:
        if futures is None:
            for i, task in enumerate(tasks):
                results[i] = _fit_task(task)
                bar.update()
        else:
            done = futures if client is not None else as_completed(futures)
            try:
                for fut in done:
                    results[futures[fut]] = fut.result()
                    bar.update()
            finally:
                if client is None:
                    pool.shutdown(cancel_futures=True)
    return results


def fit_channels(lc, priors=None, *, white=None, geometry: str = "fixed", model=None,
                 sampler=None, channel_priors=None, workers: int = 1, client=None,
                 progress: bool | None = None) -> ChannelFits:
    """Fit every channel of ``lc``, in parallel processes or on a dask cluster.

    Parameters
    ----------
    lc : LightCurves
        Spectroscopic light curves.
    priors : dict, str or path-like, optional
        Priors shared by all channels (see :func:`fit_lightcurve`).
    white : FitResult, optional
        White-light fit; with ``geometry="fixed"`` its medians fix the orbit
        (t0/t_sec, per, a_rs, inc/b, ecc, w) and, with a ramp in the model, the
        ramp's time constant ``ramp_tau`` (unless ``priors`` set it; the ramp
        amplitude stays free per channel), and its depth starts each fit.
    geometry : str
        ``"fixed"`` or ``"free"`` (orbit fitted per channel with ``priors``).
    model, sampler
        See :func:`fit_lightcurve`. The sampler seed (if given) seeds one
        independent stream per channel, so results do not depend on workers.
    channel_priors : dict of str to sequence, optional
        Per-channel priors (e.g. limb darkening from stellar models): one
        spec per channel for each name.
    workers : int
        Processes (``concurrent.futures``); 1 runs in this process.
    client : dask.distributed.Client, optional
        Submit the channel fits to this client instead (anything with
        ``submit(fn, arg)`` returning futures with ``result()``).
    progress : bool, optional
        Progress bar; default on when stderr is a terminal.

    Returns
    -------
    ChannelFits
        Per-channel results and the :class:`TransmissionSpectrum`.

    Warns
    -----
    ConvergenceWarning
        Once, listing the channels whose chains did not pass the checks.
    """
    check_option(geometry, GEOMETRY_MODES, "geometry")
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    spec, st = ModelSpec.coerce(model), SamplerSettings.coerce(sampler)
    t_start = _time.perf_counter()
    cpriors = _channel_priors(lc, priors, channel_priors, white, geometry, spec)
    seeds = np.random.SeedSequence(st.seed).generate_state(lc.nchan)
    tasks = []
    for c in range(lc.nchan):
        t, f, e, regs = _points(lc, c)
        tasks.append({"index": c, "time": t, "flux": f, "err": e, "regressors": regs,
                      "priors": cpriors[c], "model": spec, "sampler": replace(st, seed=int(seeds[c])),
                      "wave_lo": float(lc.wave_lo[c]), "wave_hi": float(lc.wave_hi[c])})
    results = _run_tasks(tasks, int(workers), client, progress)
    meta = {"geometry": geometry}
    if white is not None:
        meta["white"] = {n: white.median[n] for n in white.names if white.status[n] != "derived"}
    fits = ChannelFits(results, TransmissionSpectrum.from_fits(results, spec.kind, meta), geometry)
    bad = np.flatnonzero(~fits.converged)
    log.info("fit_channels: %d channels, geometry %s, %d worker(s)%s, %d not converged (%.1f s)",
             lc.nchan, geometry, workers, " on a dask client" if client is not None else "",
             bad.size, _time.perf_counter() - t_start)
    if bad.size:
        first = results[bad[0]].diagnostics["messages"][0]
        warnings.warn(f"fit_channels: {bad.size} of {lc.nchan} channel(s) did not pass the "
                      f"convergence checks: {bad.tolist()[:20]} (e.g. {first})",
                      ConvergenceWarning, stacklevel=2)
    return fits
