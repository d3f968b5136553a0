"""The sampler of the light-curve fits: least-squares start, emcee, diagnostics, summary.

A fit starts with a least-squares solution (scipy ``least_squares``, with the
linear systematics solved at every step; with a free eccentricity, the best
of several starts spread over the orbit, see ``_orbit_search``), initialises
emcee walkers from its covariance and runs emcee, all walkers of a half-ensemble evaluated in one
vectorised call. The proposal is a mixture of differential-evolution (80 %) and
stretch (20 %) moves: on the transit posteriors here the differential-evolution
move mixes ~3x faster than the stretch move alone (autocorrelation times of
25-35 instead of 80-100 steps for 7 parameters of a 4000-point white light;
medians and errors agreed within chain noise), and the stretch share keeps the
affine-invariant scale adaptation (emcee's DESnookerMove is avoided: it is broken
in emcee 3.1.6, see the ecosystem notes). The chain grows in blocks until it is
``tau_factor`` autocorrelation times long after burn-in *and* holds ``min_ess``
effective samples (see :class:`SamplerSettings`). ``_summarise`` turns the chain
into posterior samples of every parameter (the marginalised linear terms drawn
from their conditional Gaussian), percentiles and the best fit.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from tsocontainer.lightcurves.model import LightCurveModel

__all__ = ["ConvergenceWarning", "SamplerSettings", "MOVES", "ENGINES"]

MOVES = ("de-stretch", "de", "stretch")
ENGINES = ("emcee", "dynesty")
#: steps of the first block of an adaptive run: enough for a first estimate of tau of the
#: transit posteriors here (10-40 steps); later blocks follow the estimate
_FIRST_BLOCK = 100


class ConvergenceWarning(UserWarning):
    """An MCMC chain too short for its autocorrelation time, or a bad acceptance fraction."""


@dataclass
class SamplerSettings:
    """Settings of the emcee run.

    Parameters
    ----------
    nwalkers : int, optional
        Walkers; default ``max(32, 4 * ndim)`` (even). With the
        differential-evolution move more walkers mix faster per step, and the
        model is evaluated for half of them in one call: 32 walkers needed ~20 %
        less CPU than 16 for a 3-parameter channel fit at the same effective
        sample size (the per-call overhead is shared by more walkers).
    nsteps : int, optional
        Fixed number of steps. Default: run in blocks until converged or
        ``max_steps``.
    burn : int, optional
        Steps discarded; default ``5 tau`` (at most half the chain).
    check_every : int
        Longest block of the adaptive run: the first block is 100 steps; after
        each block the autocorrelation time is measured and the next block is
        the estimated remainder (x 1.2, at least 50 steps, at most ``check_every``).
    max_steps : int
        Upper limit of the adaptive run.
    tau_factor : float
        Converged when post-burn steps >= ``tau_factor * max(tau)`` (20: with
        16 or more walkers averaged, tau itself is then known to ~10-20 %) ...
    min_ess : float
        ... and the effective sample size ``nwalkers * (steps - burn) / max(tau)``
        is at least ``min_ess`` (1000: the 16th/84th percentiles then scatter
        by ~5 % of sigma, the median by ~4 %).
    moves : str
        ``"de-stretch"`` (80 % differential evolution + 20 % stretch, the
        default), ``"de"`` or ``"stretch"`` (emcee's default move).
    min_acceptance, max_acceptance : float
        Allowed mean acceptance fraction.
    max_samples : int
        Maximum number of thinned posterior samples kept.
    seed : int, optional
        Seed of the walker initialisation and of emcee.
    keep_chain : bool
        Keep the full chain in the result.
    engine : str
        ``"emcee"`` (the default) or ``"dynesty"``: nested sampling, which
        also returns the evidence (``diagnostics["logz"]``; see
        :mod:`tsocontainer.lightcurves.nested`). Needs dynesty installed.
    nlive : int
        Live points of dynesty.
    dlogz : float
        dynesty stops when the evidence of the remaining prior volume is
        below this (in log units).
    maxcall : int, optional
        Upper limit of dynesty's likelihood calls.

    Examples
    --------
    >>> SamplerSettings.coerce({"engine": "dynesty", "nlive": 200}).nlive
    200
    """

    nwalkers: int | None = None
    nsteps: int | None = None
    burn: int | None = None
    check_every: int = 500
    max_steps: int = 20000
    tau_factor: float = 20.0
    min_ess: float = 1000.0
    moves: str = "de-stretch"
    min_acceptance: float = 0.1
    max_acceptance: float = 0.9
    max_samples: int = 20000
    seed: int | None = None
    keep_chain: bool = False
    engine: str = "emcee"
    nlive: int = 500
    dlogz: float = 0.1
    maxcall: int | None = None

    def __post_init__(self):
        for name in ("nwalkers", "nsteps", "burn"):
            v = getattr(self, name)
            if v is not None and (int(v) != v or v < 0):
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if self.nsteps is not None and self.burn is not None and self.burn >= self.nsteps:
            raise ValueError(f"burn ({self.burn}) must be smaller than nsteps ({self.nsteps})")
        if self.check_every < 1 or self.max_steps < self.check_every:
            raise ValueError("need check_every >= 1 and max_steps >= check_every")
        if self.moves not in MOVES:
            raise ValueError(f"moves must be one of {', '.join(MOVES)}, got {self.moves!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.engine == "dynesty" and importlib.util.find_spec("dynesty") is None:
            raise ValueError("sampler engine 'dynesty' needs dynesty, which is not installed: "
                             "pip install 'tsocontainer[nested]' (or dynesty)")
        if int(self.nlive) != self.nlive or self.nlive < 2:
            raise ValueError(f"nlive must be an integer >= 2, got {self.nlive!r}")
        if not self.dlogz > 0:
            raise ValueError(f"dlogz must be positive, got {self.dlogz!r}")
        if self.maxcall is not None and (int(self.maxcall) != self.maxcall or self.maxcall < 1):
            raise ValueError(f"maxcall must be a positive integer, got {self.maxcall!r}")

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
        from tsocontainer._util import coerce_dataclass

        return coerce_dataclass(cls, obj, "sampler")


def _least_squares(m: LightCurveModel, start=None, hold=(), max_nfev=None):
    """Least-squares start: best sampled vector, its covariance and the result.

    ``start`` (default :meth:`~LightCurveModel.start`) is the first guess,
    ``hold`` names of sampled parameters kept at it, ``max_nfev`` caps the
    evaluations; with the best of :meth:`~LightCurveModel.orbit_starts` when
    the start is the default (see :func:`_orbit_search`).
    """
    from scipy.optimize import least_squares

    names = m.lay.sampled
    if start is None:
        start = _orbit_search(m)
    noise = set(m.noise_names)
    free = [i for i, n in enumerate(names) if n not in noise and n not in hold]
    scale = np.array([m.priors[names[i]].scale for i in free])
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    lo = np.array([(m.priors[names[i]].lo - start[i]) / s for i, s in zip(free, scale)])
    hi = np.array([(m.priors[names[i]].hi - start[i]) / s for i, s in zip(free, scale)])

    def vec(z):
        th = start.copy()
        th[free] = start[free] + z * scale
        return th

    res = least_squares(lambda z: m.lsq_residuals(vec(z)), np.zeros(len(free)),
                        bounds=(lo, hi), x_scale="jac", method="trf", max_nfev=max_nfev)
    theta = vec(res.x)
    cov = np.full((len(names), len(names)), np.nan)
    try:
        cz = np.linalg.pinv(res.jac.T @ res.jac)
        cov[np.ix_(free, free)] = cz * np.outer(scale, scale)
    except np.linalg.LinAlgError:
        pass
    theta, sd = m.init_noise(theta)   # jitter, error scale, GP: from the residuals
    for n, s in sd.items():
        j = names.index(n)
        cov[j, :] = cov[:, j] = 0.0
        cov[j, j] = s**2
    return theta, cov, res


def _orbit_search(m: LightCurveModel, nbest: int = 8) -> np.ndarray:
    """The least-squares start of a fit, searched over the eccentricity when it is free.

    Without :meth:`~LightCurveModel.orbit_starts` this is
    :meth:`~LightCurveModel.start`. Otherwise each of those starts (and the
    circular one) is first improved with its eccentricity held (at most 10
    evaluations: the eclipse, the phase curve and the transit adjust to the
    orbit), then full least squares runs from the ``nbest`` best of them and
    the start of the best solution is returned. The ranking after the short
    held step is rough (in ``bench_models`` draws the true orbit's start ranked
    up to 6th), hence 8 full runs.
    """
    # a joint model (several visits) has only start(): its visits share the orbit prior's start
    starts = m.orbit_starts() if hasattr(m, "orbit_starts") else []
    if not starts:
        return m.start()
    names = m.lay.sampled
    hold = [n for n in ("secosw", "sesinw", "ecc", "w") if n in names]
    cands = []
    for th in [m.start()] + starts:
        th1, _, r = _least_squares(m, th, hold, max_nfev=10)
        cands.append((r.cost, th1))
    cands.sort(key=lambda c: c[0])
    best, best_cost = None, np.inf
    for _, th in cands[:nbest]:
        th2, _, r = _least_squares(m, th)
        if r.cost < best_cost:
            best, best_cost = th2, r.cost
    return best


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
    ess = chain.shape[1] * n_tau
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
    elif ess < st.min_ess:
        messages.append(f"effective sample size {ess:.0f} (need {st.min_ess:g}); max tau "
                        f"{np.max(tau):.1f} steps ({names[int(np.argmax(tau))]})")
    if not st.min_acceptance <= acc <= st.max_acceptance:
        messages.append(f"mean acceptance fraction {acc:.2f} outside "
                        f"[{st.min_acceptance}, {st.max_acceptance}]")
    return {"nsteps": int(nsteps), "burn": int(burn), "acceptance": acc,
            "tau": {n: float(t) for n, t in zip(names, tau)}, "n_tau": float(n_tau),
            "ess": float(ess), "converged": not messages, "messages": messages}


class _LogSpace:
    """emcee's view of a model whose log-uniform parameters it walks in log space.

    A parameter with a log-uniform prior over decades (``ramp_tau``, ``jitter``)
    is flat in its logarithm (log-normal and 1/x-uniform priors are walked the
    same way: positive and spread over a range of scales); the stretch move mixes it far better there (a
    linear walk across three decades gave autocorrelation times of ~1000
    steps). ``log_prob`` adds the Jacobian, so the posterior is unchanged.
    """

    def __init__(self, m: LightCurveModel):
        self.m, self.idx = m, list(m.log_walk_idx)

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


def _moves(name: str):
    import emcee

    if name == "stretch":
        return None  # emcee's default StretchMove
    if name == "de":
        return [(emcee.moves.DEMove(), 1.0)]
    return [(emcee.moves.DEMove(), 0.8), (emcee.moves.StretchMove(), 0.2)]


def _next_block(diag: dict, total: int, nwalkers: int, st: SamplerSettings) -> int:
    """Steps still needed by the current estimate of tau (x 1.2), within [50, check_every]."""
    tau = max(diag["tau"].values())
    need = diag["burn"] + max(st.tau_factor * tau, st.min_ess * tau / nwalkers) - total
    n = int(np.clip(1.2 * need, 50, st.check_every))
    return max(1, min(n, st.max_steps - total))


def _run_emcee(m: LightCurveModel, p0, st: SamplerSettings, seed: int):
    import emcee

    space = _LogSpace(m)
    sampler = emcee.EnsembleSampler(p0.shape[0], p0.shape[1], space.log_prob, vectorize=True,
                                    moves=_moves(st.moves))
    sampler.random_state = np.random.RandomState(seed % 2**32).get_state()
    u0 = space.to_walk(p0)
    if st.nsteps is not None:
        sampler.run_mcmc(u0, st.nsteps)
        return _ThetaView(sampler, space), _diagnose(sampler, st.nsteps, st, m.lay.sampled)
    total, state, n = 0, u0, min(st.check_every, st.max_steps, _FIRST_BLOCK)
    while True:
        sampler.run_mcmc(state, n)
        state, total = None, total + n
        diag = _diagnose(sampler, total, st, m.lay.sampled)   # mixing where the walk is
        if diag["converged"] or total >= st.max_steps:
            return _ThetaView(sampler, space), diag
        n = _next_block(diag, total, p0.shape[0], st)


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
    rank = {n: i for i, n in enumerate(("depth", "b", "inc", "u1", "u2", "ecc", "w", "fp_night"))}
    derived = sorted((n for n in vals if n not in status),   # joint fits: "depth@<label>", ...
                     key=lambda n: (rank.get(n.partition("@")[0], len(rank)), n))
    status.update({n: "derived" for n in derived})
    names = list(status)
    med, lo, hi = {}, {}, {}
    for n in names:
        q = np.percentile(vals[n], [15.865525393145708, 50, 84.13447460685429])
        med[n], lo[n], hi[n] = float(q[1]), float(q[1] - q[0]), float(q[2] - q[1])
    sample_names = [n for n in names if status[n] != "fixed"]
    samples = np.stack([vals[n] for n in sample_names], axis=1)
    return names, status, med, lo, hi, best, samples, sample_names, chain
