"""Fit verdicts: the quality record of a light-curve fit and when it is *suspect*.

Every :class:`~tsocontainer.lightcurves.results.FitResult` made by the fitter
carries ``quality`` (a JSON-ready dict, see :func:`assess`). A fit is marked
``suspect`` when any of these checks fails; each failure adds one reason
(``"<check>: <what>"``). The thresholds and why:

convergence
    The sampler's own checks passed (chain >= ``tau_factor`` autocorrelation
    times after burn-in, acceptance fraction in range, no stuck walker) and the
    chain is at least :data:`MIN_N_TAU` = 10 tau long with an effective sample
    size of at least :data:`MIN_ESS` = 100. Below 10 tau the tau estimate itself
    is unreliable; with fewer than 100 independent samples the 16th/84th
    percentiles scatter by >= 15 % of sigma (binomial error of a quantile), so
    the quoted error bar is not known.
noise
    Residual scatter of the best fit over the predicted noise within [1/1.5, 1.5]
    and reduced chi^2 below 1.5^2, both with the fit's white-noise model: the
    input errors, times ``err_scale`` and with ``jitter`` in quadrature when the
    model fits them (a fit that scales its errors quotes errors from the scaled
    noise, so the input errors being off is not a reason to doubt it; the ratio
    to the input errors is kept as ``scatter_ratio_input``). JWST light curves
    reach 1.0-1.3x their photon + read-noise prediction (README, Performance);
    1.5x means errors wrong by half or systematics the model does not
    describe, and the quoted errors are then too small by that factor.
red noise
    Correlated residuals by the time-averaging method (Winn et al. 2008, ApJ 683,
    1076): ``beta`` is the mean over bin sizes of the rms of binned normalised
    residuals over its white-noise expectation ``sigma_1 / sqrt(N) *
    sqrt(M / (M - 1))``; bins span half to twice the ingress duration (the
    timescale that sets the depth and timing), with at least 2 points and 8
    bins. Suspect when ``beta`` exceeds both :data:`BETA_FLOOR` = 1.25 (errors
    on the event's timescale 25 % too small) and the 99.5 % quantile of
    ``beta`` for white noise of the same length and binning (400 seeded
    Monte-Carlo draws; a 0.5 % false-alarm rate per fit by construction).
prior edge
    A free parameter whose posterior piles against a bound of its prior: more
    than :data:`MAX_EDGE_MASS` = 5 % of the samples within :data:`EDGE_WIDTH`
    = 1 % of the prior range from the bound (a flat posterior puts 1 % there;
    a posterior pressed against the bound with a width of 5 % of the range puts
    16 %). Measured in the variable in which the prior is uniform (log for
    log-uniform and log-normal, ``-1/x`` for 1/x-uniform). Physical bounds (inclination 90, b 0, q1/q2 in [0, 1],
    eccentricity 0, ...) and zero bounds of amplitudes (``rp_rs``, ``fp_fs``,
    ``ramp_amp``, ``jitter``, ``pc_amp``, ``gp_sigma``: an upper limit, not a
    wrong answer) are exempt,
    as is the lower end of the default ``ramp_tau`` range (one cadence: a shorter
    ramp moves one point); its upper end (a quarter of the span,
    :data:`~tsocontainer.lightcurves.model.RAMP_TAU_SPAN`) is checked: a ramp that
    wants longer is a trend the model lacks. A marginalised linear coefficient
    whose draws leave its uniform bounds (the analytic marginalisation ignores
    them) fails the same check.
"""
from __future__ import annotations

import numpy as np

from tsocontainer.lightcurves.priors import physical_bounds
from tsocontainer.lightcurves.window import event_durations

__all__ = ["assess", "beta_factor", "beta_bin_sizes", "beta_null_limit", "edge_masses",
           "MIN_N_TAU", "MIN_ESS", "MAX_SCATTER_RATIO", "EDGE_WIDTH", "MAX_EDGE_MASS",
           "BETA_FLOOR", "BETA_QUANTILE"]

MIN_N_TAU = 10.0
MIN_ESS = 100.0
MAX_SCATTER_RATIO = 1.5
EDGE_WIDTH = 0.01
MAX_EDGE_MASS = 0.05
BETA_FLOOR = 1.25
BETA_QUANTILE = 0.995
BETA_DRAWS = 400
_NULL_CACHE: dict = {}
#: amplitudes whose zero bound means "no signal" (an upper limit, not a wrong answer)
_ZERO_OK = ("rp_rs", "fp_fs", "ramp_amp", "jitter", "pc_amp", "gp_sigma")


def beta_factor(z: np.ndarray, sizes) -> float:
    """Time-averaging red-noise factor of normalised residuals ``z``.

    Parameters
    ----------
    z : ndarray, shape (n,) or (ndraw, n)
        Residuals divided by their errors (in time order).
    sizes : sequence of int
        Bin sizes (points).

    Returns
    -------
    float or ndarray
        Mean over the bin sizes of ``rms(binned) / (rms(z) / sqrt(N) * sqrt(M / (M - 1)))``.

    Examples
    --------
    >>> z = np.random.default_rng(0).standard_normal(2000)
    >>> 0.8 < beta_factor(z, [5, 10, 20]) < 1.2
    True
    """
    z = np.atleast_2d(np.asarray(z, dtype=float))
    n = z.shape[1]
    sigma1 = np.sqrt(np.mean(z**2, axis=1))
    out = []
    for s in sizes:
        m = n // int(s)
        means = z[:, : m * s].reshape(z.shape[0], m, s).mean(axis=2)
        expected = sigma1 / np.sqrt(s) * np.sqrt(m / (m - 1))
        out.append(np.sqrt(np.mean(means**2, axis=1)) / expected)
    beta = np.mean(out, axis=0)
    return float(beta[0]) if beta.size == 1 else beta


def beta_bin_sizes(n: int, cadence: float, timescale: float) -> list:
    """Bin sizes (points) from half to twice ``timescale``, at least 2 points and 8 bins.

    Parameters
    ----------
    n : int
        Number of points.
    cadence : float
        Time between points (days).
    timescale : float
        Ingress duration (days).

    Returns
    -------
    list of int
        Up to 6 sizes; empty when the data are too short for 8 bins of 2 points.

    Examples
    --------
    >>> beta_bin_sizes(400, 0.001, 0.01)
    [5, 7, 9, 11, 15, 20]
    """
    hi_cap = n // 8
    if hi_cap < 2 or not cadence > 0:
        return []
    lo = max(2, int(round(0.5 * timescale / cadence)))
    hi = min(hi_cap, max(lo, int(round(2.0 * timescale / cadence))))
    lo = min(lo, hi)
    return sorted({int(round(v)) for v in np.geomspace(lo, hi, 6)})


def beta_null_limit(n: int, sizes, quantile: float = BETA_QUANTILE, draws: int = BETA_DRAWS) -> float:
    """Quantile of ``beta`` for white noise of ``n`` points (seeded Monte Carlo).

    Parameters
    ----------
    n : int
    sizes : sequence of int
    quantile : float
    draws : int

    Returns
    -------
    float
    """
    key = (int(n), tuple(int(s) for s in sizes), float(quantile), int(draws))
    if key not in _NULL_CACHE:  # channel fits share n and the bin sizes
        rng = np.random.default_rng(20080601)  # fixed: the same limit for the same data shape
        b = np.concatenate([beta_factor(rng.standard_normal((min(100, draws - i), n)), sizes)
                            for i in range(0, draws, 100)])
        _NULL_CACHE[key] = float(np.quantile(b, quantile))
    return _NULL_CACHE[key]


def _exempt(name: str, side: str, bound: float, prior, default: bool) -> bool:
    plo, phi = physical_bounds(name)
    if bound == (plo if side == "lower" else phi):
        return True
    if side == "lower" and name in _ZERO_OK and (bound == 0 or prior.kind == "loguniform"):
        return True
    if name.startswith("q") and name[1:].isdigit():
        return True
    return name == "ramp_tau" and default and side == "lower"


def edge_masses(samples: dict, priors: dict, defaults=(), marginalised=()) -> dict:
    """Posterior mass near each checked bound of a uniform or log-uniform prior.

    Parameters
    ----------
    samples : dict of str to ndarray
        Posterior samples by name.
    priors : dict of str to Prior
    defaults : collection of str
        Names whose priors are the package defaults.
    marginalised : collection of str
        Linear coefficients marginalised analytically (their draws may leave
        the bounds, which also counts).

    Returns
    -------
    dict
        ``{name: {"side": "lower"|"upper", "bound": float, "mass": float}}``
        for every checked bound (the larger of the two sides per name).
    """
    out = {}
    for name, pr in priors.items():
        if pr.fixed or name not in samples:
            continue
        if pr.kind == "normal" and not (np.isfinite(pr.lo) or np.isfinite(pr.hi)):
            continue
        x = np.asarray(samples[name], dtype=float)
        lo, hi = pr.lo, pr.hi
        if pr.kind in ("loguniform", "lognormal"):
            with np.errstate(divide="ignore"):
                x, lo, hi = np.log(np.clip(x, 1e-300, None)), np.log(lo), np.log(hi)
        elif pr.kind == "invuniform":  # flat in 1/x: measured in -1/x (same order as x)
            x, lo, hi = -1.0 / x, -1.0 / lo, -1.0 / hi
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        width = EDGE_WIDTH * (hi - lo)
        best = None
        for side, bound, near in (("lower", pr.lo, x <= lo + width), ("upper", pr.hi, x >= hi - width)):
            if _exempt(name, side, bound, pr, name in defaults):
                continue
            mass = float(np.mean(near))
            if best is None or mass > best["mass"]:
                best = {"side": side, "bound": float(bound), "mass": mass,
                        "marginalised": name in marginalised}
        if best is not None:
            out[name] = best
    return out


def _timescale(med: dict, kind: str) -> float:
    """Ingress duration (days) at the posterior medians (NaN without an orbit)."""
    try:
        k = med.get("rp_rs", 0.1)
        t14, t23 = event_durations(med["per"], med["a_rs"], med["b"], k, med.get("ecc", 0.0),
                                   med.get("w", 90.0), kind)
    except (KeyError, ValueError):
        return np.nan
    return 0.5 * (t14 - t23) if t14 > 0 else np.nan


def _convergence(diag: dict) -> tuple[dict, list]:
    if diag.get("engine") == "dynesty":  # independent weighted samples: their ESS counts
        ess = float(diag.get("ess", 0.0))
        rec = {"ess": ess, "sampler_converged": bool(diag.get("converged", False)),
               "logz": diag.get("logz"), "logz_err": diag.get("logz_err")}
        reasons = [f"convergence: {m}" for m in diag.get("messages", [])[:1]]
        if ess < MIN_ESS and not reasons:
            reasons.append(f"convergence: effective sample size {ess:.0f} (need {MIN_ESS:g})")
        rec["ok"] = not reasons
        return rec, reasons
    tau = max(diag.get("tau", {}).values(), default=np.nan)
    n_tau = float(diag.get("n_tau", np.nan))
    nw = diag.get("nwalkers", 0)
    ess = float(nw * (diag.get("nsteps", 0) - diag.get("burn", 0)) / tau) if tau > 0 else 0.0
    rec = {"tau_max": float(tau), "n_tau": n_tau, "ess": ess,
           "sampler_converged": bool(diag.get("converged", False))}
    reasons = []
    if not rec["sampler_converged"]:
        msgs = diag.get("messages") or ["sampler checks failed"]
        reasons.append(f"convergence: {msgs[0]}")
    elif not n_tau >= MIN_N_TAU:
        reasons.append(f"convergence: chain {n_tau:.1f} tau long after burn-in (need {MIN_N_TAU:g})")
    if ess < MIN_ESS:
        reasons.append(f"convergence: effective sample size {ess:.0f} (need {MIN_ESS:g})")
    rec["ok"] = not reasons
    return rec, reasons


def _noise_var(result) -> np.ndarray:
    """Variance of the MAP's white-noise model: ``(err_scale * err)**2 + jitter**2``."""
    return ((float(result.map.get("err_scale", 1.0)) * result.err) ** 2
            + float(result.map.get("jitter", 0.0)) ** 2)


def _noise(result) -> tuple[dict, list]:
    resid = result.flux - result.model_flux
    var = _noise_var(result)
    dof = max(int(result.diagnostics.get("npoints", resid.size))
              - int(result.diagnostics.get("nfree", 0)), 1)
    chi2 = float(np.sum(resid**2 / var))
    ratio = float(np.std(resid) / np.sqrt(np.mean(var)))
    rec = {"chi2_red": chi2 / dof, "dof": dof, "scatter_ratio": ratio,
           "scatter_ratio_input": float(np.std(resid) / np.sqrt(np.mean(result.err**2)))}
    reasons = []
    if not 1 / MAX_SCATTER_RATIO <= ratio <= MAX_SCATTER_RATIO:
        reasons.append(f"noise: residual scatter {ratio:.2f}x the predicted noise "
                       f"(allowed {1 / MAX_SCATTER_RATIO:.2f}-{MAX_SCATTER_RATIO:g})")
    if rec["chi2_red"] > MAX_SCATTER_RATIO**2:
        reasons.append(f"noise: reduced chi2 {rec['chi2_red']:.2f} > {MAX_SCATTER_RATIO**2:g}")
    rec["ok"] = not reasons
    return rec, reasons


def _red(result, med: dict, kind: str) -> tuple[dict, list]:
    t = result.time
    n = t.size
    z = (result.flux - result.model_flux) / np.sqrt(_noise_var(result))
    cadence = float(np.median(np.diff(t))) if n > 1 else np.nan
    scale = _timescale(med, kind)
    if not np.isfinite(scale):
        scale = 10.0 / 1440.0  # 10 min, the low end of Winn et al.'s 10-30 min bins
    sizes = beta_bin_sizes(n, cadence, scale)
    if not sizes:
        return {"beta": None, "beta_limit": None, "bin_sizes": [], "ok": True}, []
    beta = beta_factor(z, sizes)
    limit = max(BETA_FLOOR, beta_null_limit(n, sizes))
    rec = {"beta": beta, "beta_limit": limit, "bin_sizes": sizes, "timescale": float(scale),
           "ok": beta <= limit}
    reasons = [] if rec["ok"] else [f"red noise: beta {beta:.2f} > {limit:.2f} (bins of "
                                    f"{sizes[0]}-{sizes[-1]} points)"]
    return rec, reasons


def assess(result, priors: dict, defaults=(), marginalised=()) -> dict:
    """Quality record and verdict of a fit.

    Parameters
    ----------
    result : FitResult
        With samples, data and the best-fit model (``time``, ``flux``, ``err``,
        ``model_flux``) and the sampler diagnostics.
    priors : dict of str to Prior
        The priors the fit used.
    defaults : collection of str
        Parameters whose priors are the package defaults.
    marginalised : collection of str
        Linear coefficients marginalised analytically.

    Returns
    -------
    dict
        ``suspect`` (bool), ``reasons`` (list of str), ``convergence``,
        ``noise``, ``red_noise``, ``prior_edges`` (records with their values and
        ``ok``) and ``thresholds``.
    """
    med = dict(result.median)
    kind = result.model.get("kind", "transit")
    kind = "transit" if kind == "phasecurve" else kind  # its ingress: the transit's
    conv, r1 = _convergence(result.diagnostics)
    noise, r2 = _noise(result)
    red, r3 = _red(result, med, kind)
    samples = {n: result.sample(n) for n in (result.sample_names or [])}
    edges = edge_masses(samples, priors, defaults, marginalised)
    r4 = []
    for name, e in edges.items():
        e["ok"] = e["mass"] <= MAX_EDGE_MASS
        if not e["ok"]:
            what = "draws reach" if e["marginalised"] else "piled at"
            r4.append(f"prior edge: {name} {what} its {e['side']} bound {e['bound']:.6g} "
                      f"({100 * e['mass']:.0f} % of the posterior within {100 * EDGE_WIDTH:g} % "
                      f"of the range)")
    reasons = r1 + r2 + r3 + r4
    return {"suspect": bool(reasons), "reasons": reasons, "convergence": conv, "noise": noise,
            "red_noise": red, "prior_edges": edges,
            "thresholds": {"min_n_tau": MIN_N_TAU, "min_ess": MIN_ESS,
                           "max_scatter_ratio": MAX_SCATTER_RATIO, "edge_width": EDGE_WIDTH,
                           "max_edge_mass": MAX_EDGE_MASS, "beta_floor": BETA_FLOOR,
                           "beta_quantile": BETA_QUANTILE}}
