"""Fit transit/eclipse light curves: least squares, then emcee; channels in parallel.

Workflow::

    white = fit_white(lc, priors)                       # geometry, depth, LD, trend
    fits = fit_channels(lc, white=white, workers=4)     # geometry fixed to white
    fits.spectrum.plot()

Each fit starts with a least-squares solution (scipy ``least_squares``, with
the linear systematics solved at every step), initialises emcee walkers from
its covariance and runs emcee (differential-evolution and stretch moves, all
walkers of a half-ensemble in one vectorised model call) until the chain is
``tau_factor`` (20) integrated autocorrelation times long after burn-in and
holds ``min_ess`` (1000) effective samples (at most ``max_steps``; see
:mod:`tsocontainer.lightcurves.sampler`). A fit that stops short of that, or whose
acceptance fraction is outside [``min_acceptance``, ``max_acceptance``], emits a
:class:`ConvergenceWarning`.
The model and the priors are described in :mod:`tsocontainer.lightcurves.model` and
:mod:`tsocontainer.lightcurves.priors`.

Before any fit, the priors' times are put in the data's convention
(:func:`~tsocontainer.lightcurves.priors.align_time_system`) and the predicted
event is checked against the data (:func:`~tsocontainer.lightcurves.window.check_event_window`):
a ``TSOValueError`` stops a fit that cannot find its event. After it, every
:class:`FitResult` carries a quality record and is marked ``suspect`` when it
fails a check (:mod:`tsocontainer.lightcurves.quality`); suspect fits are logged
as warnings and marked in every table. ``fit_white``/``fit_channels`` without
``model`` use the shipped recipe's model of the light curves' mode
(:mod:`tsocontainer.lightcurves.defaults`).
"""
from __future__ import annotations

from tsocontainer._util import interactive

import logging
import time as _time
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from tsocontainer.lightcurves.batch import single_threaded_blas
from tsocontainer.lightcurves.common import depth_shifts, geometry_axes, posterior_cov
from tsocontainer.lightcurves.model import LightCurveModel, ModelSpec
from tsocontainer.lightcurves.model_start import BOUND_SIGMAS
from tsocontainer.lightcurves.spec import orbit_names
from tsocontainer.lightcurves.priors import align_time_system, parse_prior, parse_priors
from tsocontainer.lightcurves.quality import assess
from tsocontainer.lightcurves.results import FitResult, TransmissionSpectrum
from tsocontainer.lightcurves.sampler import (ConvergenceWarning, SamplerSettings, _init_walkers,
                                              _least_squares, _run_emcee, _summarise)
from tsocontainer.lightcurves.window import check_event_window
from tsocontainer._util import check_option
from tsocontainer.lightcurves.tools import write_table_atomic

__all__ = ["ConvergenceWarning", "SamplerSettings", "ChannelFits", "fit_lightcurve",
           "fit_white", "fit_channels", "GEOMETRY_MODES"]

if TYPE_CHECKING:  # for type hints only
    from astropy.table import Table

log = logging.getLogger(__name__)

GEOMETRY_MODES = ("fixed", "free")


# --------------------------------------------------------------- one fit
def _prepare(time, flux, err, priors, spec, regressors, label: str, warn: bool = True):
    """Priors in the data's time system, the model, and the event-in-window check.

    Returns the :class:`LightCurveModel` and the record of both checks.
    """
    pri, notes = align_time_system(parse_priors(priors), time, warn=warn)
    if notes and warn:
        for note in notes:
            log.warning("%s: %s", label, note)
    m = LightCurveModel(time, flux, err, pri, spec, regressors)
    window = check_event_window(m.t, m.priors, m.spec, label, notes)
    return m, {"time_system": notes, "window": window, "given": sorted(pri)}


def _fit_core(m: LightCurveModel, st: SamplerSettings, checks: dict) -> FitResult:
    """One fit without warnings (messages are in ``diagnostics``), with its quality record."""
    with single_threaded_blas():
        return _fit_one(m, st, checks)


def _start(m: LightCurveModel):
    """Least-squares start; marginalised coefficients whose bounds the data reach are
    re-built as sampled ones (see :meth:`LightCurveModel.binding_bounds`)."""
    theta0, cov, lsq = _least_squares(m)
    binding = m.binding_bounds(theta0)
    if binding:
        log.info("sampling %s instead of marginalising: the data reach their prior bounds "
                 "(within %g conditional sigma at the least-squares solution)",
                 ", ".join(binding), BOUND_SIGMAS)
        m = m.with_sampled_linear(binding)
        theta0, cov, lsq = _least_squares(m)
    return m, theta0, cov, lsq, binding


def _fit_one(m: LightCurveModel, st: SamplerSettings, checks: dict) -> FitResult:
    t_start = _time.perf_counter()
    if m.ndim == 0:
        raise ValueError("no free non-linear parameter to sample; free at least one of "
                         f"{[n for n in m.priors if n not in m.lay.linear]}")
    seed = st.seed if st.seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
    rng = np.random.default_rng(seed)
    m, theta0, cov, lsq, binding = _start(m)
    nw = st.nwalkers or max(32, 4 * m.ndim)
    nw += nw % 2
    if st.engine == "dynesty":
        from tsocontainer.lightcurves.nested import run_dynesty

        sampler, diag = run_dynesty(m, st, seed)
        nw = 0
    else:
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
                 "lsq_status": int(lsq.status), "seed": int(seed), "sampled_linear": binding,
                 "regressors_used": [n[4:] for n in m.lay.linear + m._reg_names if n.startswith("reg_")],
                 "time_system": list(checks.get("time_system", [])),
                 "window": dict(checks.get("window", {})), "masked": int(checks.get("masked", 0))})
    diag.setdefault("engine", "emcee")
    res = FitResult(names=names, status=status, median=med, err_lo=lo, err_hi=hi,
                    map={n: best["params"][n] for n in names}, priors=m.describe_priors(),
                    model=m.spec.to_dict(), diagnostics=diag, samples=samples,
                    sample_names=snames, chain=chain if st.keep_chain and nw else None,
                    time=m.t.copy(), flux=m.y.copy(), err=m.err.copy(),
                    model_flux=best["model"], astro=best["astro"], systematics=best["systematics"])
    diag["posterior_cov"] = posterior_cov(res)
    given = set(checks.get("given", m.priors))
    res.quality = assess(res, m.priors, defaults=set(m.priors) - given, marginalised=m.lay.marg)
    diag["runtime"] = _time.perf_counter() - t_start
    return res


def _warn(result: FitResult, label: str) -> None:
    for msg in result.diagnostics.get("messages", []):
        warnings.warn(f"{label}: {msg}", ConvergenceWarning, stacklevel=3)
    if result.suspect:
        log.warning("%s: %s", label, result.verdict)


def usable_points(time, flux, err, regressors=None, mask=None):
    """The points a fit can use: drop masked ones, and those with a non-finite value.

    Parameters
    ----------
    time, flux, err : array_like, shape (n,)
    regressors : dict of str to array_like (n,), optional
    mask : array_like of bool (n,), optional
        True where a point is good.

    Returns
    -------
    time, flux, err : ndarray
        The kept points.
    regressors : dict
        The kept values of each.
    dropped : int
        Number of points left out.

    Raises
    ------
    ValueError
        On inconsistent shapes, a kept point with a zero or negative error, or
        no point left.

    Examples
    --------
    >>> t, f, e, r, n = usable_points([0.0, 1.0, 2.0], [1.0, np.nan, 1.0], [0.1, 0.1, 0.1])
    >>> t.tolist(), n
    ([0.0, 2.0], 1)
    """
    t = np.asarray(time, dtype=float)
    f, e = np.asarray(flux, dtype=float), np.asarray(err, dtype=float)
    if t.ndim != 1 or f.shape != t.shape or e.shape != t.shape:
        raise ValueError(f"time, flux and err must be 1D of one length, got {t.shape}, {f.shape}, {e.shape}")
    keep = np.isfinite(t) & np.isfinite(f) & np.isfinite(e)
    if mask is not None:
        mk = np.asarray(mask)
        if mk.dtype != bool or mk.shape != t.shape:
            raise ValueError(f"mask must be a boolean array of shape {t.shape}, got {mk.dtype} {mk.shape}")
        keep &= mk
    regs = {}
    for name, arr in (regressors or {}).items():
        a = np.asarray(arr, dtype=float)
        if a.shape != t.shape:
            raise ValueError(f"regressor {name!r} has shape {a.shape}, not {t.shape}")
        regs[name] = a
        keep &= np.isfinite(a)
    bad = keep & ~(e > 0)
    if bad.any():
        raise ValueError(f"err has {int(bad.sum())} zero or negative value(s) at unmasked points, "
                         f"first at index {int(np.flatnonzero(bad)[0])}")
    if not keep.any():
        raise ValueError("no usable point: every point is masked or non-finite")
    return t[keep], f[keep], e[keep], {k: v[keep] for k, v in regs.items()}, int(keep.size - keep.sum())


def fit_lightcurve(time, flux, err, priors=None, *, model=None, sampler=None,
                   regressors=None, mask=None) -> FitResult:
    """Fit one light curve: least squares, then emcee (or dynesty).

    Parameters
    ----------
    time, flux, err : array_like, shape (n,)
        Times (BJD_TDB), fluxes and 1-sigma errors. Points with a non-finite
        time, flux, error or regressor value are left out of the fit (counted
        in ``diagnostics["masked"]``), as are points where ``mask`` is False.
    priors : dict, str or path-like, optional
        Priors by parameter name (dict, YAML file or YAML text; see
        :mod:`tsocontainer.lightcurves.priors`). Orbital parameters have no default.
    model : ModelSpec or dict, optional
        Model options (kind, limb_darkening, geometry, poly, ramp, regressors,
        jitter, err_scale, systematics, ecc_param, gp, marginalize; see
        :mod:`tsocontainer.lightcurves.spec`).
    sampler : SamplerSettings or dict, optional
        emcee settings, or ``{"engine": "dynesty", ...}``.
    regressors : dict of str to array_like (n,), optional
        Regressor values (those named in ``model["regressors"]`` are used).
    mask : array_like of bool (n,), optional
        True where a point is good.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        On zero or negative errors at used points, fewer points than
        parameters, a prior outside its bounds, an unknown parameter or option.
    TSOValueError
        (a ValueError) When the predicted event is not in the data or the
        baseline is too short for the model (see
        :func:`~tsocontainer.lightcurves.window.check_event_window`).

    Warns
    -----
    ConvergenceWarning
        If the chain is shorter than ``tau_factor`` autocorrelation times or
        the acceptance fraction is out of range.
    TimeSystemWarning
        When a ``t0``/``t_sec`` prior was converted between MJD-based and full
        BJD_TDB to match ``time``.

    Examples
    --------
    A fixed-geometry transit with a masked (NaN) point:

    >>> import batman
    >>> t = np.linspace(-0.1, 0.1, 120)
    >>> bp = batman.TransitParams()
    >>> bp.t0, bp.per, bp.rp, bp.a, bp.inc, bp.ecc, bp.w = 0.0, 3.0, 0.1, 10.0, 89.0, 0.0, 90.0
    >>> bp.u, bp.limb_dark = [0.3, 0.2], "quadratic"
    >>> f = batman.TransitModel(bp, t).light_curve(bp) + np.random.default_rng(1).normal(0, 5e-4, 120)
    >>> f[7] = np.nan
    >>> geo = {"t0": 0.0, "per": 3.0, "a_rs": 10.0, "inc": 89.0, "u1": 0.3, "u2": 0.2,
    ...        "rp_rs": {"uniform": [0.05, 0.15]}}
    >>> res = fit_lightcurve(t, f, np.full(120, 5e-4), geo, model={"poly": 0},
    ...                      sampler={"seed": 1})
    >>> res.diagnostics["masked"], bool(abs(res["rp_rs"] - 0.1) < 0.005)
    (1, True)
    """
    st, spec = SamplerSettings.coerce(sampler), ModelSpec.coerce(model)
    used = {r.rstrip("?") for r in spec.regressors}   # a regressor the model does not use masks nothing
    t, f, e, regs, dropped = usable_points(time, flux, err, {k: v for k, v in (regressors or {}).items()
                                                             if k in used}, mask)
    if dropped:
        log.info("fit_lightcurve: %d masked or non-finite point(s) left out of %d", dropped, t.size + dropped)
    m, checks = _prepare(t, f, e, priors, spec, regs, "fit_lightcurve")
    checks["masked"] = dropped
    res = _fit_core(m, st, checks)
    d = res.diagnostics
    log.info("fit_lightcurve: %d points, %d sampled + %d analytic parameters, %s, chi2 %.1f, "
             "%s (%.1f s)", d["npoints"], len(d["tau"]), d["nfree"] - len(d["tau"]),
             _describe_run(d), d["chi2"], res.verdict, d["runtime"])
    _warn(res, "fit")
    return res


def _describe_run(d: dict) -> str:
    if d.get("engine") == "dynesty":
        return (f"dynesty {d['nlive']} live points, {d['ncall']} calls, ESS {d['ess']:.0f}, "
                f"logz {d['logz']:.2f} +/- {d['logz_err']:.2f}")
    return (f"{d['nwalkers']} walkers x {d['nsteps']} steps, max tau {max(d['tau'].values()):.1f}, "
            f"acceptance {d['acceptance']:.2f}")


def _points(lc, c: int):
    u = ~lc.clipped[c]
    return lc.time[u], lc.flux[c, u], lc.err[c, u], {k: v[u] for k, v in lc.regressors.items()}


def _default_model(lc, model, step: str) -> ModelSpec:
    """``model``, or the shipped recipe's model of the light curves' mode (logged)."""
    if model is not None:
        return ModelSpec.coerce(model)
    from tsocontainer.lightcurves.defaults import recipe_model

    spec, source = recipe_model(lc.meta, step)
    spec = ModelSpec.coerce(spec)
    have = [r for r in spec.regressors if r.rstrip("?") in lc.regressors]
    log.info("%s: no model given: %s from %s (regressors present: %s)", step,
             _describe_model(spec), source, ", ".join(have) or "none")
    return spec


def _describe_model(spec: ModelSpec) -> str:
    parts = [spec.kind, f"poly {spec.poly}"] + (["ramp"] if spec.ramp else []) \
        + (["jitter"] if spec.jitter else [])
    if spec.regressors:
        parts.append("regressors " + " ".join(spec.regressors))
    return ", ".join(parts)


def fit_white(lc, priors=None, *, model=None, sampler=None, wave_range=None) -> FitResult:
    """Fit the white-light curve of ``lc``.

    Parameters
    ----------
    lc : LightCurves
        A single channel is fitted as it is; several are summed with
        :meth:`LightCurves.white` over ``wave_range``.
    priors, sampler
        See :func:`fit_lightcurve`.
    model : ModelSpec or dict, optional
        See :func:`fit_lightcurve`. Default: the ``fit_white`` model of the
        shipped recipe of the light curves' mode (``lc.meta["MODE"]``, e.g.
        ``poly 1 + ramp + regressors tilt?, fwhm?``), else
        :data:`~tsocontainer.lightcurves.defaults.GENERIC_MODEL`; one INFO log
        line names it (see :mod:`tsocontainer.lightcurves.defaults`).
    wave_range : (float, float), optional
        Wavelength range of the white light (micron).

    Returns
    -------
    FitResult
        With its quality record (``suspect``, ``quality``).

    Raises
    ------
    TSOValueError
        When the predicted event is not in the data or the baseline is too
        short for the model.
    """
    spec = _default_model(lc, model, "fit_white")
    wl = lc if lc.nchan == 1 and wave_range is None else lc.white(wave_range)
    t, f, e, regs = _points(wl, 0)
    m, checks = _prepare(t, f, e, priors, spec, regs, "fit_white")
    res = _fit_core(m, SamplerSettings.coerce(sampler), checks)
    if wl.has_wavelengths:
        res.wave_lo, res.wave_hi = float(wl.wave_lo[0]), float(wl.wave_hi[0])
    d = res.diagnostics
    log.info("fit_white: %s, %d points, depth %.1f +/- %.1f ppm, %s, regressors %s, %s (%.1f s)",
             wl._wave_text(), d["npoints"], res.depth_ppm[0], 0.5 * (res.depth_ppm[1] + res.depth_ppm[2]),
             _describe_run(d), ", ".join(d["regressors_used"]) or "none", res.verdict, d["runtime"])
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

    @property
    def suspect(self) -> np.ndarray:
        """Suspect flag per channel (see :attr:`FitResult.quality`)."""
        return np.array([r.suspect for r in self.results], dtype=bool)

    @property
    def verdict(self) -> str:
        """One line: ``"ok"`` or ``"SUSPECT: k of n channels (...)"`` with the first reasons."""
        bad = np.flatnonzero(self.suspect)
        if not bad.size:
            return "ok"
        first = self.results[bad[0]].reasons[0]
        return (f"SUSPECT: {bad.size} of {len(self)} channel(s) {bad.tolist()[:10]}"
                f"{'...' if bad.size > 10 else ''} (e.g. channel {bad[0]}: {first})")

    def __repr__(self) -> str:
        ts = self.spectrum
        return (f"<ChannelFits {len(self)} channels {ts.wave_lo.min():.3f}-{ts.wave_hi.max():.3f} um, "
                f"geometry {self.geometry}, converged {int(self.converged.sum())}/{len(self)}, "
                f"verdict: {self.verdict}>")

    def _repr_html_(self) -> str:
        """Verdict and the spectrum of depths, as tables, for notebooks."""
        from tsocontainer._util import html_table

        head = html_table(f"ChannelFits: {len(self)} channels",
                          [("geometry", self.geometry), ("verdict", self.verdict),
                           ("converged", f"{int(self.converged.sum())} / {len(self)}")])
        return head + self.spectrum._repr_html_()

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
        """One row per channel: wavelengths, median/err_lo/err_hi of every non-fixed parameter,
        ``converged``, ``suspect`` and ``suspect_reasons`` (``"; "``-joined).

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
        t["suspect"] = self.suspect
        t["suspect_reasons"] = ["; ".join(r.reasons) for r in self.results]
        if self.spectrum.err_common is not None:
            t["depth_err_common"] = 1e-6 * self.spectrum.err_common
        t.meta["geometry"] = self.geometry
        t.meta["n_suspect"] = int(self.suspect.sum())
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
    """Worker: fit one channel (module level so that processes can pickle it).

    The priors are already in the data's time system and the event was checked
    (in the parent, before any fit started).
    """
    try:
        m = LightCurveModel(task["time"], task["flux"], task["err"], task["priors"], task["model"],
                            task["regressors"])
        res = _fit_core(m, task["sampler"], task["checks"])
        axes = task.get("axes")
        if axes is not None:
            with single_threaded_blas():
                start = {n: res.median[n] for n in m.lay.sampled}
                shifts = depth_shifts(task["time"], task["flux"], task["err"], m.priors, m.spec,
                                      task["regressors"], axes, start)
            res.diagnostics["common_mode"] = {"names": list(axes["names"]), "shifts": shifts.tolist(),
                                              "err": float(np.sqrt(np.sum(shifts**2)))}
    except ValueError as exc:
        raise ValueError(f"channel {task['index']}: {exc}") from exc
    res.wave_lo, res.wave_hi = task["wave_lo"], task["wave_hi"]
    return res


def _channel_priors(lc, priors, channel_priors, white, geometry: str, spec: ModelSpec) -> list:
    base = parse_priors(priors)
    geo = orbit_names(spec)
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
    if channel_priors is not None and not isinstance(channel_priors, dict):  # a limb-darkening table
        from tsocontainer.lightcurves.limbdark import ld_priors

        channel_priors = ld_priors(channel_priors, lc.wave_lo, lc.wave_hi)
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

    disable = (not interactive()) if progress is None else not progress
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
        amplitude stays free per channel), and its depth starts each fit. The
        uncertainty of what it fixes is propagated into each depth as a
        separate common-mode error (``spectrum.err_common``, ppm; see
        :mod:`tsocontainer.lightcurves.common`).
    geometry : str
        ``"fixed"`` or ``"free"`` (orbit fitted per channel with ``priors``).
    model : ModelSpec or dict, optional
        See :func:`fit_lightcurve`. Default: the model of ``white`` (the
        white-light fit's, so that a fixed ramp time constant and the
        regressors match), else the ``fit_channels`` model of the shipped
        recipe of the light curves' mode (see :func:`fit_white`).
    sampler : SamplerSettings or dict, optional
        See :func:`fit_lightcurve`. The sampler seed (if given) seeds one
        independent stream per channel, so results do not depend on workers.
    channel_priors : dict of str to sequence, Table, str or path-like, optional
        Per-channel priors (e.g. limb darkening from stellar models): one
        spec per channel for each name; or a limb-darkening table (or its
        file) mapped onto the channels by
        :func:`~tsocontainer.lightcurves.limbdark.ld_priors` (fixed, or
        normal where it has errors).
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
        Per-channel results (each with its quality record) and the
        :class:`TransmissionSpectrum`.

    Raises
    ------
    TSOValueError
        Before any fit, when the predicted event is not in a channel's data or
        its baseline is too short for the model.

    Warns
    -----
    ConvergenceWarning
        Once, listing the channels whose chains did not pass the checks.
    TimeSystemWarning
        Once, when a ``t0``/``t_sec`` prior was converted to the data's time system.
    """
    check_option(geometry, GEOMETRY_MODES, "geometry")
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if model is None and white is not None and white.model:
        model = dict(white.model)
        log.info("fit_channels: no model given: the white-light fit's (%s)",
                 _describe_model(ModelSpec.coerce(model)))
    spec, st = _default_model(lc, model, "fit_channels"), SamplerSettings.coerce(sampler)
    t_start = _time.perf_counter()
    cpriors = _channel_priors(lc, priors, channel_priors, white, geometry, spec)
    seeds = np.random.SeedSequence(st.seed).generate_state(lc.nchan)
    axes = None
    if geometry == "fixed" and white is not None:
        held = orbit_names(spec)
        if spec.ramp and cpriors and cpriors[0].get("ramp_tau") is not None \
                and "ramp_tau" not in parse_priors(priors):
            held.append("ramp_tau")
        axes = geometry_axes(white, held)
    tasks = []
    for c in range(lc.nchan):
        t, f, e, regs = _points(lc, c)
        m, checks = _prepare(t, f, e, cpriors[c], spec, regs, f"fit_channels: channel {c}",
                             warn=c == 0)
        tasks.append({"index": c, "time": t, "flux": f, "err": e, "regressors": regs,
                      "priors": m.priors, "model": spec, "sampler": replace(st, seed=int(seeds[c])),
                      "checks": checks, "axes": axes,
                      "wave_lo": float(lc.wave_lo[c]) if lc.has_wavelengths else None,
                      "wave_hi": float(lc.wave_hi[c]) if lc.has_wavelengths else None})
    results = _run_tasks(tasks, int(workers), client, progress)
    meta = {"geometry": geometry}
    if white is not None:
        meta["white"] = {n: white.median[n] for n in white.names if white.status[n] != "derived"}
    if axes is not None:
        meta["common_mode"] = {"names": list(axes["names"]), "method": "linearised: channel "
                               "depths re-solved at the white medians +/- 1 sigma along the "
                               "principal axes of the white posterior (err_common)"}
    kind = "transit" if spec.kind == "transit" else "eclipse"  # a phase curve's depth: fp_fs
    fits = ChannelFits(results, TransmissionSpectrum.from_fits(results, kind, meta), geometry)
    bad = np.flatnonzero(~fits.converged)
    log.info("fit_channels: %d channels, geometry %s, %d worker(s)%s, %d not converged, "
             "%d suspect (%.1f s)", lc.nchan, geometry, workers,
             " on a dask client" if client is not None else "", bad.size,
             int(fits.suspect.sum()), _time.perf_counter() - t_start)
    if fits.suspect.any():
        log.warning("fit_channels: %s", fits.verdict)
    if bad.size:
        first = results[bad[0]].diagnostics["messages"][0]
        warnings.warn(f"fit_channels: {bad.size} of {lc.nchan} channel(s) did not pass the "
                      f"convergence checks: {bad.tolist()[:20]} (e.g. {first})",
                      ConvergenceWarning, stacklevel=2)
    return fits
