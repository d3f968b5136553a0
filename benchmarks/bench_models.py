"""Injection-recovery benchmark of the fit models of issue 19: pulls over many seeded draws.

Each case simulates ``--nseed`` light curves (batman plus Gaussian noise and the
case's systematics, truth drawn per seed), fits them at the default sampler
settings and prints, per parameter, the pulls ``(median - truth) / sigma`` (sigma
the posterior's half-width on the side of the truth): their mean and standard
deviation (expected 0 and 1), the 1-sigma coverage (expected 0.68), and the mean
and standard deviation of the posterior rank of the truth (the fraction of
samples below it; expected 0.5 and 0.289 for a calibrated posterior, the right
measure where a posterior is not Gaussian). Cases:

``errscale``  transit with the errors given half too small; ``err_scale`` free.
``eclipse``   secondary eclipse with a free mid-eclipse time and depth.
``product``   transit times (level) (1 + regressor) (1 + ramp): product systematics.
``phasecurve`` sinusoidal phase curve with transit and eclipse.
``eccentric`` phase curve on an eccentric orbit in (sqrt(e) cos w, sqrt(e) sin w).
``gp``        transit plus a Matern-3/2 process (drawn from its dense covariance).
``joint``     two visits 10 orbits apart sharing t0, per, a_rs, inc.
``dynesty``   transit fitted with nested sampling (also prints logz and its error).
``shortld``   a short visit's channel: geometry known, free limb darkening, tilt at egress.

    python benchmarks/bench_models.py --cases errscale,product --nseed 50 [--workers 1]

With ``--out FILE`` the per-draw numbers are written as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np

T0, PER, A_RS, INC = 2460000.5, 3.0, 10.0, 87.0
GEOM = {"t0": T0, "per": PER, "a_rs": A_RS, "inc": INC, "u1": 0.3, "u2": 0.2}


def _batman(t, rp=0.1, ecc=0.0, w=90.0, per=PER, a=A_RS, inc=INC):  # noqa: PLR0913
    import batman

    p = batman.TransitParams()
    p.t0, p.per, p.rp, p.a, p.inc, p.ecc, p.w = T0, per, rp, a, inc, ecc, w
    p.u, p.limb_dark = [0.3, 0.2], "quadratic"
    return batman.TransitModel(p, t).light_curve(p)


def _phase(t, rng, rp, fp, amp, off, ecc=0.0, w=90.0):  # noqa: PLR0913
    """Transit + sinusoidal planet flux hidden in eclipse, per = 1 d, a = 4, inc = 85."""
    import batman

    from tsocontainer.lightcurves.phasecurve import planet_flux

    star = _batman(t, rp=rp, ecc=ecc, w=w, per=1.0, a=4.0, inc=85.0)
    p = batman.TransitParams()
    p.t0, p.per, p.rp, p.a, p.inc, p.ecc, p.w = T0, 1.0, rp, 4.0, 85.0, ecc, w
    p.fp, p.limb_dark, p.u = 1.0, "uniform", []
    p.t_secondary = batman.TransitModel(p, t[:2]).get_t_secondary(p) if ecc else T0 + 0.5
    vis = batman.TransitModel(p, t, transittype="secondary").light_curve(p) - 1.0
    fpl = planet_flux(t, np.array([p.t_secondary]), np.array([1.0]), np.array([fp]),
                      np.array([amp]), np.array([off]))[0]
    return star + fpl * vis


def _matern(t, sigma, rho, rng):
    d = np.abs(t[:, None] - t[None, :]) * np.sqrt(3) / rho
    K = sigma**2 * (1 + d) * np.exp(-d)
    return np.linalg.cholesky(K + 1e-12 * sigma**2 * np.eye(t.size)) @ rng.standard_normal(t.size)


# ------------------------------------------------------------------ cases
def case_errscale(seed):
    from tsocontainer.lightcurves.fit import fit_lightcurve

    rng = np.random.default_rng(seed)
    t = T0 + np.linspace(-0.12, 0.12, 300)
    rp, scale = rng.uniform(0.09, 0.11), rng.uniform(1.5, 2.5)
    f = _batman(t, rp) + rng.normal(0, 1e-3 * scale, t.size)
    res = fit_lightcurve(t, f, np.full(t.size, 1e-3), GEOM, model={"err_scale": True}, sampler={"seed": seed})
    return res, {"rp_rs": rp, "err_scale": scale}


def case_eclipse(seed):
    import batman

    from tsocontainer.lightcurves.fit import fit_lightcurve

    rng = np.random.default_rng(seed)
    ts = T0 + PER / 2
    t = ts + np.linspace(-0.15, 0.15, 400)
    truth = {"fp_fs": rng.uniform(5e-4, 2e-3), "t_sec": ts + rng.normal(0, 2e-3)}
    p = batman.TransitParams()
    p.per, p.rp, p.a, p.inc, p.ecc, p.w = PER, 0.1, A_RS, INC, 0.0, 90.0
    p.t0, p.t_secondary, p.fp, p.limb_dark, p.u = T0, truth["t_sec"], truth["fp_fs"], "uniform", []
    f = batman.TransitModel(p, t, transittype="secondary").light_curve(p) + rng.normal(0, 3e-4, t.size)
    pri = {"t_sec": {"uniform": [ts - 0.02, ts + 0.02]}, "per": PER, "a_rs": A_RS, "inc": INC, "rp_rs": 0.1}
    res = fit_lightcurve(t, f, np.full(t.size, 3e-4), pri, model={"kind": "eclipse"}, sampler={"seed": seed})
    return res, truth


def case_product(seed):
    from tsocontainer.lightcurves.fit import fit_lightcurve

    rng = np.random.default_rng(seed)
    t = T0 + np.linspace(-0.12, 0.12, 400)
    reg = rng.normal(size=t.size)
    r = (reg - reg.mean()) / reg.std()
    truth = {"rp_rs": rng.uniform(0.09, 0.11), "reg_x": rng.uniform(1e-3, 5e-3),
             "ramp_amp": rng.uniform(2e-3, 8e-3), "ramp_tau": rng.uniform(0.01, 0.03),
             "c0": 1 + rng.normal(0, 1e-3)}
    f = (_batman(t, truth["rp_rs"]) * truth["c0"] * (1 + truth["reg_x"] * r)
         * (1 + truth["ramp_amp"] * np.exp(-(t - t[0]) / truth["ramp_tau"]))
         + rng.normal(0, 1e-3, t.size))
    res = fit_lightcurve(t, f, np.full(t.size, 1e-3), GEOM,
                         model={"systematics": "product", "poly": 0, "ramp": True, "regressors": ["x"]},
                         regressors={"x": reg}, sampler={"seed": seed})
    return res, truth


def _phase_case(seed, ecc_case: bool):
    from tsocontainer.lightcurves.fit import fit_lightcurve

    rng = np.random.default_rng(seed)
    truth = {"rp_rs": rng.uniform(0.09, 0.11), "fp_fs": rng.uniform(5e-4, 1.5e-3),
             "pc_amp": rng.uniform(1e-4, 4e-4), "pc_offset": rng.uniform(-40, 40)}
    model = {"kind": "phasecurve", "poly": 0}
    pri = {"t0": T0, "per": 1.0, "a_rs": 4.0, "inc": 85.0, "u1": 0.3, "u2": 0.2,
           "rp_rs": {"uniform": [0, 0.3]}}
    ecc, w = 0.0, 90.0
    if ecc_case:
        ecc, w = rng.uniform(0.02, 0.2), rng.uniform(0, 360) - 180
        truth.update({"secosw": np.sqrt(ecc) * np.cos(np.radians(w)),
                      "sesinw": np.sqrt(ecc) * np.sin(np.radians(w)), "ecc": ecc, "t0": T0})
        model["ecc_param"] = "sqrt_e"
        pri["t0"] = {"uniform": [T0 - 0.01, T0 + 0.01]}
        t = T0 + np.linspace(-0.1, 0.75, 600)     # transit, then the eclipse
    else:
        t = T0 + np.linspace(0.3, 1.15, 700)      # eclipse, then the next transit
    f = _phase(t, rng, truth["rp_rs"], truth["fp_fs"], truth["pc_amp"], truth["pc_offset"], ecc, w)
    f = f + rng.normal(0, 2e-4, t.size)
    res = fit_lightcurve(t, f, np.full(t.size, 2e-4), pri, model=model, sampler={"seed": seed})
    return res, truth


def case_phasecurve(seed):
    return _phase_case(seed, False)


def case_eccentric(seed):
    return _phase_case(seed, True)


def case_gp(seed):
    from tsocontainer.lightcurves.fit import fit_lightcurve

    rng = np.random.default_rng(seed)
    t = T0 + np.linspace(-0.12, 0.12, 300)
    truth = {"rp_rs": rng.uniform(0.09, 0.11), "gp_sigma": rng.uniform(3e-4, 1.5e-3),
             "gp_rho": rng.uniform(0.01, 0.05)}
    f = (_batman(t, truth["rp_rs"]) + _matern(t, truth["gp_sigma"], truth["gp_rho"], rng)
         + rng.normal(0, 5e-4, t.size))
    res = fit_lightcurve(t, f, np.full(t.size, 5e-4), GEOM, model={"gp": "matern32", "poly": 0},
                         sampler={"seed": seed})
    return res, truth


def case_joint(seed):
    from tsocontainer.lightcurves.container import LightCurves
    from tsocontainer.lightcurves.joint import fit_joint

    rng = np.random.default_rng(seed)
    truth = {"a_rs": rng.uniform(9, 11), "inc": rng.uniform(86, 88.5), "rp_rs@0": rng.uniform(0.09, 0.11),
             "rp_rs@1": rng.uniform(0.09, 0.11), "t0": T0, "per": PER}
    lcs = []
    for k, (n, sig) in enumerate([(300, 1e-3), (250, 1.5e-3)]):
        t = T0 + 10 * k * PER + np.linspace(-0.12, 0.12, n)
        f = _batman(t, truth[f"rp_rs@{k}"], a=truth["a_rs"], inc=truth["inc"]) + rng.normal(0, sig, n)
        lcs.append(LightCurves.from_arrays(t, f, sig))
    pri = {"t0": {"uniform": [T0 - 0.01, T0 + 0.01]}, "per": {"normal": [PER, 1e-3]},
           "a_rs": {"uniform": [5, 20]}, "inc": {"uniform": [80, 90]}, "u1": 0.3, "u2": 0.2}
    res = fit_joint(lcs, pri, sampler={"seed": seed})
    return res, truth


def case_dynesty(seed):
    from tsocontainer.lightcurves.fit import fit_lightcurve

    rng = np.random.default_rng(seed)
    t = T0 + np.linspace(-0.12, 0.12, 300)
    truth = {"rp_rs": rng.uniform(0.09, 0.11), "a_rs": rng.uniform(9, 11)}
    f = _batman(t, truth["rp_rs"], a=truth["a_rs"]) + rng.normal(0, 1e-3, t.size)
    pri = {**GEOM, "a_rs": {"uniform": [5, 20]}}
    res = fit_lightcurve(t, f, np.full(t.size, 1e-3), pri, sampler={"engine": "dynesty", "seed": seed})
    return res, truth


def case_shortld(seed):
    """A SOSS-like channel of a short visit: 100 points, 40 in transit, geometry known,
    limb darkening free (q1, q2), poly 1 + ramp + a mirror-tilt step one point after
    egress (the recipe's channel model), 230 ppm per point."""
    import batman

    from tsocontainer.lightcurves.fit import fit_lightcurve

    rng = np.random.default_rng(seed)
    per, a, inc = 0.822, 11.4, 88.49
    t = T0 + (np.arange(100) - 49.5) * 6.4e-4
    truth = {"rp_rs": rng.uniform(0.14, 0.15), "u1": 0.17, "u2": 0.27}
    p = batman.TransitParams()
    p.t0, p.per, p.rp, p.a, p.inc, p.ecc, p.w = T0, per, truth["rp_rs"], a, inc, 0.0, 90.0
    p.u, p.limb_dark = [truth["u1"], truth["u2"]], "quadratic"
    tilt = (np.arange(100) >= 70).astype(float)
    sys_ = (1 + 3e-4 * (t - T0) / 0.03 - 4e-4 * np.exp(-(t - t[0]) / 0.004) - 2e-4 * tilt)
    f = batman.TransitModel(p, t).light_curve(p) * sys_ + rng.normal(0, 2.3e-4, t.size)
    pri = {"t0": T0, "per": per, "a_rs": a, "inc": inc, "rp_rs": {"uniform": [0, 0.3]}}
    res = fit_lightcurve(t, f, np.full(t.size, 2.3e-4), pri,
                         model={"poly": 1, "ramp": True, "regressors": ["tilt"]},
                         regressors={"tilt": tilt}, sampler={"seed": seed})
    return res, truth


CASES = {"errscale": case_errscale, "eclipse": case_eclipse, "product": case_product, "phasecurve": case_phasecurve,
         "eccentric": case_eccentric, "gp": case_gp, "joint": case_joint, "dynesty": case_dynesty,
         "shortld": case_shortld}


# --------------------------------------------------------------- running
def _one(job):
    case, seed = job
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    res, truth = CASES[case](seed)
    out = {"seed": seed, "runtime": time.perf_counter() - t0, "converged": res.converged,
           "suspect": res.suspect, "reasons": res.reasons, "params": {}}
    for name, value in truth.items():
        m, lo, hi = res.median[name], res.err_lo[name], res.err_hi[name]
        rank = float(np.mean(res.sample(name) < value)) if res.samples is not None else None
        out["params"][name] = {"truth": float(value), "median": m, "err_lo": lo, "err_hi": hi,
                               "pull": float((m - value) / (hi if m < value else lo)), "rank": rank}
    if res.diagnostics.get("engine") == "dynesty":
        out["logz"], out["logz_err"] = res.diagnostics["logz"], res.diagnostics["logz_err"]
    return out


def summarise(case: str, draws: list) -> list:
    lines = [f"{case}: {len(draws)} draws, {np.mean([d['runtime'] for d in draws]):.1f} s per fit "
             f"(median {np.median([d['runtime'] for d in draws]):.1f}), converged "
             f"{sum(d['converged'] for d in draws)}/{len(draws)}, suspect {sum(d['suspect'] for d in draws)}"]
    for name in draws[0]["params"]:
        p = np.array([d["params"][name]["pull"] for d in draws])
        r = np.array([d["params"][name]["rank"] for d in draws], dtype=float)
        lines.append(f"  {name:>10s}: pull mean {p.mean():+.3f} +/- {p.std(ddof=1) / np.sqrt(p.size):.3f}, "
                     f"std {p.std(ddof=1):.3f} +/- {p.std(ddof=1) / np.sqrt(2 * (p.size - 1)):.3f}, "
                     f"|pull| < 1: {np.mean(np.abs(p) < 1):.2f}; rank mean {np.nanmean(r):.3f}, "
                     f"std {np.nanstd(r, ddof=1):.3f}")
    if "logz_err" in draws[0]:
        lines.append(f"  logz error (dynesty's estimate): median {np.median([d['logz_err'] for d in draws]):.3f}")
    reasons = [r for d in draws for r in d["reasons"]]
    if reasons:
        lines.append(f"  suspect reasons, e.g.: {reasons[:3]}")
    return lines


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--nseed", type=int, default=50)
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    results = {}
    for case in args.cases.split(","):
        jobs = [(case, args.seed0 + i) for i in range(args.nseed)]
        t0 = time.perf_counter()
        load = os.getloadavg()[0]
        if args.workers > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(args.workers) as pool:
                draws = list(pool.map(_one, jobs))
        else:
            draws = [_one(j) for j in jobs]
        results[case] = draws
        for line in summarise(case, draws):
            print(line, flush=True)
        print(f"  wall {time.perf_counter() - t0:.0f} s, load {load:.1f} -> {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
