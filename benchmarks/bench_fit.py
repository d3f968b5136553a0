"""Benchmark of the light-curve fits: speed, accuracy and the fit verdicts.

Light curves are simulated directly with batman (quadratic limb darkening, a
level, slope, ramp and regressors, Gaussian noise; ``--red`` adds red noise) and
fitted at the default sampler settings. Cases (``--case``):

``channels`` (issue 6)
    100 channels x 500 points: white-light fit, then every channel with the
    geometry fixed to it on ``--workers`` processes; depth pulls. Goal: < 5 min.
``prism`` (issue 19)
    A 1200-integration PRISM-like visit: white light + 20 channels, model
    ``poly 1 + ramp + a trace-width regressor`` (the shipped NIRSpec recipe's).
    Goal: < 30 s on 2 cores.
``miri`` (issue 19)
    One 4000-point white light with a ramp and two regressors. Goal: < 20 s.
``common`` (issue 19)
    ``--nseed`` visits whose white-light geometry is weak (impact parameter 0.88,
    20 noisy channels): channel pulls with and without the common-mode error
    of the fixed geometry (goal: std 0.8-1.2 with it).
``verdicts`` (issue 14)
    ``--nseed`` quick white-light fits of normal simulated visits, and of broken
    ones (t0 prior a fraction of the duration off, a prior excluding the true
    depth, red noise): the fraction marked suspect (expected 0 and 1).

Every case prints its wall times, the load average before and after (the
machine may be shared: compare paired runs of two versions back to back) and,
for ``prism``/``miri``, the medians and errors of the depth and the orbit so
that two versions can be compared within chain noise.

    python benchmarks/bench_fit.py --case miri [--seed 1] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import time
import warnings

import numpy as np

from tsocontainer.lightcurves.container import LightCurves
from tsocontainer.lightcurves.fit import fit_channels, fit_white

T0, PER, A_RS, INC = 2460000.5, 3.0, 10.0, 87.0


def _batman(t, rp, u, t0=T0, per=PER, a=A_RS, inc=INC):  # noqa: PLR0913
    import batman

    p = batman.TransitParams()
    p.t0, p.per, p.a, p.inc, p.ecc, p.w, p.limb_dark = t0, per, a, inc, 0.0, 90.0, "quadratic"
    p.rp, p.u = rp, list(u)
    return batman.TransitModel(p, t).light_curve(p)


def _red(rng, n, amp, scale):
    """Red noise: a random walk smoothed over ``scale`` points, scaled to rms ``amp``."""
    from scipy.ndimage import gaussian_filter1d

    r = gaussian_filter1d(rng.normal(size=n + 4 * scale), scale)[2 * scale: 2 * scale + n]
    return amp * (r - r.mean()) / r.std()


def simulate(nchan: int, npoints: int, seed: int):
    """100-channel case: light curves and the injected depths (batman + Gaussian noise)."""
    rng = np.random.default_rng(seed)
    t = T0 + np.linspace(-0.15, 0.15, npoints)
    x = (t - T0) / 0.15
    wave = np.linspace(3.0, 5.0, nchan + 1)
    centre = 0.5 * (wave[1:] + wave[:-1])
    depth = 0.01 + 4e-4 * np.sin(2 * np.pi * centre / 0.7)  # a "spectral feature"
    u1 = 0.35 - 0.1 * (centre - 3.0)
    sigma = 800e-6 * (1 + 0.5 * (centre - 3.0))            # noisier to the red
    flux = np.empty((nchan, npoints))
    for c in range(nchan):
        level = 1 + rng.normal(0, 1e-3)
        flux[c] = _batman(t, np.sqrt(depth[c]), (u1[c], 0.2)) * (level + rng.normal(0, 3e-4) * x)
        flux[c] += rng.normal(0, sigma[c], npoints)
    err = np.broadcast_to(sigma[:, None], flux.shape)
    return LightCurves(t, flux, err, wave[:-1], wave[1:]), depth, u1


def simulate_visit(nchan: int, npoints: int, nreg: int, seed: int, sigma_white: float,
                   span: float = 0.3, red: float = 0.0):
    """A visit with a ramp and ``nreg`` regressors: light curves, depths, white depth.

    Channels share the ramp and regressor signals with chromatic amplitudes;
    ``sigma_white`` is the white-light noise per point (channels: x sqrt(nchan)).
    """
    rng = np.random.default_rng(seed)
    t = T0 + np.linspace(-span / 2, span / 2, npoints)
    wave = np.linspace(1.0, 5.0, nchan + 1)
    centre = 0.5 * (wave[1:] + wave[:-1])
    depth = 0.0100 + 3e-4 * np.sin(2 * np.pi * centre / 1.3)
    u1 = 0.40 - 0.06 * (centre - 1.0)
    regs = {}
    for j, name in enumerate(["fwhm", "xshift"][:nreg]):
        regs[name] = np.cumsum(rng.normal(size=npoints)) + 3 * np.sin(2 * np.pi * (t - t[0]) / (0.05 + j * 0.03))
    sig_c = sigma_white * np.sqrt(nchan)
    flux = np.empty((nchan, npoints))
    for c in range(nchan):
        sys_ = 1 + 2e-3 * np.exp(-(t - t[0]) / 0.015) + 2e-4 * (t - T0) / span
        for r in regs.values():
            sys_ += 1.5e-4 * (r - r.mean()) / r.std()
        flux[c] = _batman(t, np.sqrt(depth[c]), (u1[c], 0.2)) * sys_ + rng.normal(0, sig_c, npoints)
        if red:
            flux[c] += _red(rng, npoints, red * np.sqrt(nchan), 20)
    lc = LightCurves(t, flux, np.full(flux.shape, sig_c), wave[:-1], wave[1:], regressors=regs)
    wdepth = float(np.mean(depth))  # equal weights: every channel has the same flux and noise
    return lc, depth, wdepth


def _priors(t0_shift=0.0, rp=None):
    pri = {"t0": {"uniform": [T0 + t0_shift - 0.02, T0 + t0_shift + 0.02]}, "per": PER,
           "a_rs": {"uniform": [0.7 * A_RS, 1.3 * A_RS]}, "inc": {"uniform": [80.0, 90.0]}}
    if rp is not None:
        pri["rp_rs"] = {"uniform": list(rp)}
    return pri


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the channel workers)."""
    me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def _summary(res) -> dict:
    out = {}
    for n in ("depth", "t0", "a_rs", "inc", "rp_rs"):
        if n in res.median and res.status[n] != "fixed":
            out[n] = [res.median[n], res.err_lo[n], res.err_hi[n]]
    d = res.diagnostics
    out["nsteps"], out["nwalkers"] = d.get("nsteps"), d.get("nwalkers")
    out["suspect"] = getattr(res, "suspect", None)
    return out


def case_channels(args) -> dict:
    lc, depth, u1 = simulate(args.nchan, args.npoints, args.seed)
    priors = {"t0": {"uniform": [T0 - 0.01, T0 + 0.01]}, "per": PER,
              "a_rs": {"uniform": [5, 20]}, "inc": {"uniform": [80, 90]}}
    t0 = time.perf_counter()
    white = fit_white(lc, priors, model={"poly": 1}, sampler={"seed": args.seed})
    t_white = time.perf_counter() - t0
    fixed = ({"t0": T0, "per": PER, "a_rs": A_RS, "inc": INC} if args.geometry == "truth" else priors)
    load0 = _load()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    t0 = time.perf_counter()
    ld = {"u1": list(u1), "u2": [0.2] * lc.nchan} if args.ld == "fixed" else None
    fits = fit_channels(lc, fixed, white=white if args.geometry == "white" else None,
                        model={"poly": 1}, channel_priors=ld, workers=args.workers,
                        sampler={"seed": args.seed})
    t_chan = time.perf_counter() - t0
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - cpu0
    ts = fits.spectrum
    truth = depth * 1e6
    side = np.where(ts.depth < truth, ts.err_hi, ts.err_lo)
    pulls = (ts.depth - truth) / side
    d = [r.diagnostics for r in fits]
    print(f"white-light fit: {t_white:.1f} s, a/Rs {white['a_rs']:.3f} "
          f"(truth {A_RS}), inc {white['inc']:.3f} (truth {INC})")
    print(f"{args.nchan} channels x {args.npoints} points, {args.workers} workers: "
          f"{t_chan:.1f} s wall ({t_chan / 60:.2f} min; goal < 5 min); worker CPU {cpu:.1f} s "
          f"(load average {load0} -> {_load()} on {os.cpu_count()} cores)")
    print(f"per channel: {np.mean([x['runtime'] for x in d]):.2f} s, steps "
          f"{int(np.min([x['nsteps'] for x in d]))}-{int(np.max([x['nsteps'] for x in d]))}, "
          f"walkers {d[0]['nwalkers']}, converged {int(fits.converged.sum())}/{len(fits)}, "
          f"acceptance {np.mean([x['acceptance'] for x in d]):.2f}")
    offset = np.median(ts.depth - truth)
    rel = (ts.depth - offset - truth) / side
    print(f"depth pulls (geometry {args.geometry}, limb darkening {args.ld}): mean {pulls.mean():+.3f}, std "
          f"{pulls.std(ddof=1):.3f} (n = {pulls.size}); median depth error {np.median(ts.err):.0f} ppm")
    print(f"common offset {offset:+.1f} ppm (shared by all channels through the fixed geometry); "
          f"pulls of the spectral shape: mean {rel.mean():+.3f}, std {rel.std(ddof=1):.3f}")
    return {"t_white": t_white, "t_channels": t_chan, "pull_std": float(pulls.std(ddof=1))}


def case_prism(args) -> dict:
    lc, depth, wdepth = simulate_visit(20, 1200, 1, args.seed, 150e-6, span=0.3)
    model = {"poly": 1, "ramp": True, "regressors": ["fwhm"]}
    load0, cpu0 = _load(), _cpu()
    t0 = time.perf_counter()
    white = fit_white(lc, _priors(), model=model, sampler={"seed": args.seed})
    t_white, cpu_white = time.perf_counter() - t0, _cpu() - cpu0
    fits = fit_channels(lc, white=white, model=model, workers=args.workers, sampler={"seed": args.seed})
    t_all, cpu_all = time.perf_counter() - t0, _cpu() - cpu0
    ts = fits.spectrum
    pulls = (ts.depth - depth * 1e6) / ts.err
    print(f"prism: white {t_white:.1f} s, white + 20 channels {t_all:.1f} s wall (goal < 30 s; load "
          f"{load0} -> {_load()}, {args.workers} workers); CPU white {cpu_white:.1f} s, "
          f"total {cpu_all:.1f} s")
    print(f"  white depth {1e6 * white['depth']:.1f} -{1e6 * white.err_lo['depth']:.1f} "
          f"+{1e6 * white.err_hi['depth']:.1f} ppm (truth {1e6 * wdepth:.1f}); steps "
          f"{white.diagnostics['nsteps']}, channel steps "
          f"{min(r.diagnostics['nsteps'] for r in fits)}-{max(r.diagnostics['nsteps'] for r in fits)}")
    print(f"  channel pulls: mean {pulls.mean():+.2f} std {pulls.std(ddof=1):.2f}; median error "
          f"{np.median(ts.err):.0f} ppm")
    return {"t_white": t_white, "t_total": t_all, "cpu_white": cpu_white, "cpu_total": cpu_all,
            "white": _summary(white),
            "channels": {"depth": ts.depth.tolist(), "err": ts.err.tolist()}}


def case_miri(args) -> dict:
    lc, _, wdepth = simulate_visit(1, 4000, 2, args.seed, 400e-6, span=0.36)
    model = {"poly": 1, "ramp": True, "regressors": ["fwhm", "xshift"]}
    load0, cpu0 = _load(), _cpu()
    t0 = time.perf_counter()
    white = fit_white(lc, _priors(), model=model, sampler={"seed": args.seed})
    t_white, cpu = time.perf_counter() - t0, _cpu() - cpu0
    s = _summary(white)
    print(f"miri: 4000-point white light, ramp + 2 regressors: {t_white:.1f} s wall, {cpu:.1f} s CPU "
          f"(goal < 20 s; load {load0} -> {_load()}); {s['nwalkers']} walkers x {s['nsteps']} steps")
    for n in ("depth", "t0", "a_rs", "inc"):
        m, lo, hi = s[n]
        print(f"  {n:6s} {m:.7f} -{lo:.2g} +{hi:.2g}")
    print(f"  (truth depth {wdepth:.6f}, t0 {T0}, a_rs {A_RS}, inc {INC})")
    return {"t_white": t_white, "cpu": cpu, "white": s}


def case_verdicts(args) -> dict:
    """Fraction of quick white-light fits marked suspect, normal and broken."""
    # quick chains (10 tau, 300 effective samples), at most 3000 steps: a broken fit whose
    # chain does not mix must still be marked, and should not take the benchmark's hour
    quick = {"tau_factor": 10, "min_ess": 300, "check_every": 250, "max_steps": 3000}
    dur = 0.0927  # transit duration of the simulated orbit (d), see simulate_visit
    cases = {"normal": {}, "t0 off 0.3 duration": {"t0_fixed": T0 + 0.3 * dur},
             "t0 off 0.1 duration": {"t0_fixed": T0 + 0.1 * dur},
             "prior excludes truth": {"rp": (0.5, 0.9)}, "red noise": {"red": 600e-6}}
    out = {}
    for name, kw in cases.items():
        if args.cases and name not in args.cases.split(","):
            continue
        flags, reasons = [], {}
        t0 = time.perf_counter()
        for seed in range(args.nseed):
            lc, _, _ = simulate_visit(1, 400, 0, 100 + seed, 600e-6, span=0.3, red=kw.get("red", 0.0))
            pri = _priors(rp=kw.get("rp"))
            if "t0_fixed" in kw:
                pri["t0"] = kw["t0_fixed"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = fit_white(lc, pri, model={"poly": 1, "ramp": True},
                                sampler={**quick, "seed": seed})
            flags.append(bool(res.suspect))
            for r in res.quality.get("reasons", []):
                key = r.split(":")[0]
                reasons[key] = reasons.get(key, 0) + 1
        frac = float(np.mean(flags))
        print(f"verdicts: {name:22s} suspect {frac:5.0%} of {args.nseed} fits "
              f"({time.perf_counter() - t0:.1f} s); reasons {reasons}")
        out[name] = {"suspect_fraction": frac, "reasons": reasons}
    return out


def weak_visit(seed: int, nchan: int = 20, n: int = 300, sigma_c: float = 5e-3, b: float = 0.88):
    """A visit whose white-light geometry is weak: a grazing-ish orbit, noisy channels."""
    rng = np.random.default_rng(500 + seed)
    inc = float(np.degrees(np.arccos(b / A_RS)))
    t = T0 + np.linspace(-0.15, 0.15, n)
    depth = 0.01 + 5e-4 * rng.standard_normal(nchan)
    flux = np.array([_batman(t, np.sqrt(d), (0.3, 0.2), inc=inc) for d in depth])
    flux += rng.normal(0, sigma_c, flux.shape)
    edges = np.arange(nchan + 1) + 1.0
    return LightCurves(t, flux, np.full(flux.shape, sigma_c), edges[:-1], edges[1:]), depth, inc


def case_common(args) -> dict:
    """Channel pulls with and without the common-mode error over visits with a weak white fit."""
    quick = {"tau_factor": 10, "min_ess": 300, "check_every": 250}
    with_c, without, ratio = [], [], []
    t0 = time.perf_counter()
    for seed in range(args.nseed):
        lc, depth, inc = weak_visit(seed)
        pri = {"t0": {"uniform": [T0 - 0.02, T0 + 0.02]}, "per": PER, "a_rs": {"uniform": [5, 20]},
               "inc": {"uniform": [75, 90]}, "u1": 0.3, "u2": 0.2}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            white = fit_white(lc, pri, model={"poly": 1}, sampler={**quick, "seed": seed})
            fits = fit_channels(lc, {"u1": 0.3, "u2": 0.2}, white=white, model={"poly": 1},
                                workers=args.workers, sampler={**quick, "seed": seed})
        ts = fits.spectrum
        d = ts.depth - 1e6 * depth
        without += list(d / ts.err)
        with_c += list(d / np.hypot(ts.err, ts.err_common))
        ratio += list(ts.err_common / ts.err)
    pw, pc = np.array(without), np.array(with_c)
    print(f"common: {args.nseed} visits x {lc.nchan} channels ({time.perf_counter() - t0:.0f} s): pulls with "
          f"the channel errors only: mean {pw.mean():+.2f} std {pw.std(ddof=1):.2f}; with the "
          f"common-mode error in quadrature: mean {pc.mean():+.2f} std {pc.std(ddof=1):.2f}; "
          f"median err_common / err {np.median(ratio):.2f}")
    return {"std_without": float(pw.std(ddof=1)), "std_with": float(pc.std(ddof=1)),
            "median_ratio": float(np.median(ratio))}


CASES = {"channels": case_channels, "prism": case_prism, "miri": case_miri, "verdicts": case_verdicts,
         "common": case_common}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=list(CASES), default="channels")
    ap.add_argument("--nchan", type=int, default=100)
    ap.add_argument("--npoints", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nseed", type=int, default=20, help="fits per verdict case")
    ap.add_argument("--cases", default="", help="verdicts case: comma-separated subset of its cases")
    ap.add_argument("--geometry", choices=["white", "truth"], default="white",
                    help="channels case: fix the orbit to the white-light fit or to the truth")
    ap.add_argument("--ld", choices=["free", "fixed"], default="free",
                    help="channels case: limb darkening free (Kipping q1/q2) or fixed to the truth")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    out = CASES[args.case](args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
