"""SOSS order 2 and the decontamination of orders 1 and 2 (issue 16, item 2).

Two visits of the package simulator (``simulate_visit("soss")``, SUBSTRIP256, all
columns): orders 1-3 drawn from profiles of the real frame along the real traces,
each transiting with the depth of its own wavelength; photon + read noise only.
The injected depth spectrum has a step (2 % below 1.6 um, 1 % above) so that
order 2's light in order 1's box (order 2 at 1.1-1.4 um under order 1 at
2.1-2.8 um) transits twice as deep as order 1: a box that keeps it is visibly
biased. One visit is noisy, its twin noiseless (same light curves).

Measured (the extraction alone: the light curves are compared with the exact
injected shape of each channel, ``flux = a (1 + b x)`` with ``x`` the true
relative light curve minus one, ``b = 1`` for the true depth):

* order 2, channels over 0.6-0.95 um: scatter / photon + read limit of the same
  40 px box (``SimulatedVisit.noise_limit``), depth pulls and the white light;
* order 1, the shipped recipe's 20 channels: OOT-free noise ratio
  decontaminated / order-1-only box (the residual scatter about the true
  shape), and the depth pulls against the true order-1-only light of both;
* contamination residual (noiseless twin): ``(b - 1) / sigma_b`` per order-1
  channel with ``sigma_b`` the channel error of a 500-integration visit;
* time of the two-order extraction per integration (the decontaminated
  extraction minus the box alone, and the joint fit alone), with the load.

Optionally (``--scene``) the same noise ratio on the real-frame scene
(:func:`tsocontainer.sim.soss_scene.simulate_soss_scene`, columns 0-1100), where
order 2 puts up to ~12 % of order 1's box light (its truth per order is a
nearest-trace split, so only the noise and the depth *change* are reported).

Usage::

    python benchmarks/bench_soss_order2.py                 # 300 integrations
    python benchmarks/bench_soss_order2.py --nint 150 --scene

Results are printed and written to ``benchmarks/results/soss_order2-<date>.json``.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STEP = ([0.5, 1.6, 1.6001, 3.0], [20000.0, 20000.0, 10000.0, 10000.0])
CLEAN = dict(noise={"one_over_f": 0, "cosmic_rays": 0, "bad_pixels": False}, contaminants=0,
             systematics=False, background=0)


def _visit(nint, folder, seed, noiseless=False):
    from tsocontainer.group import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    vis = simulate_visit("soss", nint=nint, out=folder, seed=seed, noiseless=noiseless,
                         depth_spectrum=(np.array(STEP[0]), np.array(STEP[1])), **CLEAN)
    g = read_segments(sorted(glob.glob(f"{folder}/*rateints.fits"))).flag_dq()
    g.fit_all_traces()
    return vis, g, vis.truth_arrays()


def _channels(spec, order, arrays, edges):
    k = order - 1
    wave = spec.wave[order]
    true_col = arrays["MODEL"][k].sum(0)[None] * arrays["LIGHTCURVE"][k]
    used = spec.mask[order].all(0) & np.isfinite(wave) & np.isfinite(true_col).all(0)
    idx = np.searchsorted(edges, wave, side="right") - 1
    out = []
    for c in range(len(edges) - 1):
        sel = used & (idx == c)
        out.append((spec.flux[order][:, sel].sum(1), true_col[:, sel].sum(1),
                    spec.var[order][:, sel].sum(1), int(sel.sum())))
    return out


def _shape_fit(flux, true):
    x = true / true.max() - 1
    A = np.stack([np.ones_like(x), x], 1)
    coef, *_ = np.linalg.lstsq(A, flux, rcond=None)
    resid = (flux - A @ coef) / coef[0]
    return coef[1] / coef[0], resid, np.sum((x - x.mean()) ** 2)


def _pulls(chans, var_scale=None):
    """Per channel: b, its error from the residuals, the pull, the residual scatter (ppm)."""
    rows = []
    for flux, true, var, n in chans:
        if n == 0:
            continue
        b, resid, sxx = _shape_fit(flux, true)
        if var_scale is None:
            sig = np.std(resid, ddof=2)
        else:   # noiseless: the predicted relative error, for ``var_scale`` x the integrations
            sig = np.sqrt(np.mean(var)) / flux.max() / np.sqrt(var_scale)
        rows.append(dict(b=float(b), sigma_b=float(sig / np.sqrt(sxx)),
                         pull=float((b - 1) / (sig / np.sqrt(sxx))),
                         scatter_ppm=float(1e6 * np.std(resid, ddof=2)), ncol=n))
    return rows


def _timing(g):
    from tsocontainer.arrays.numerics import THREADS
    from tsocontainer.spectra.decontaminate import _centres, build_overlap_model, fit_amplitudes

    t0 = time.perf_counter()
    g.extract("box", orders=[1, 2], exclude_overlap=False)
    t_box = time.perf_counter() - t0
    t0 = time.perf_counter()
    g.extract("box", decontaminate=True)
    t_dec = time.perf_counter() - t0
    src = g.as_source()
    frame, var = g._reference()
    model = build_overlap_model(frame, var, _centres(src, g.traces, (frame, var)),
                                {1: 40.0, 2: 40.0, 3: 40.0})
    nb = min(g.N, 50)
    sci = np.ascontiguousarray(g.sci[:nb])
    vv = np.ascontiguousarray(g.var[:nb])
    good = np.ones(sci.shape, bool)
    t0 = time.perf_counter()
    fit_amplitudes(sci, vv, good, model)
    t_fit = (time.perf_counter() - t0) / nb
    return {"threads": THREADS, "load1": round(os.getloadavg()[0], 2),
            "box_two_orders_s": t_box, "decontaminated_s": t_dec,
            "two_order_extraction_s_per_int": t_dec / g.N,
            "added_by_decontamination_s_per_int": (t_dec - t_box) / g.N,
            "joint_fit_s_per_int_one_thread": t_fit, "overlap_columns": int(model.columns.size)}


def _summary(rows):
    p = np.array([r["pull"] for r in rows])
    return {"mean_pull": float(p.mean()), "std_pull": float(p.std(ddof=1)) if p.size > 1 else 0.0,
            "chi2_n": float(np.mean(p**2)), "max_abs_pull": float(np.max(np.abs(p)))}


def run_package(nint: int, tmp: Path, seed: int) -> dict:
    vis, g, arrays = _visit(nint, tmp / "noisy", seed)
    out = {"nint": nint, "seed": seed}
    box = g.extract("box", orders=[1], exclude_overlap=False)
    dec = g.extract("box", decontaminate=True)
    # order 2 over 0.6-0.95 um, 10 channels, and its white light
    e2 = np.linspace(0.6, 0.95, 11)
    limit = vis.noise_limit(wave_bins=e2, aperture=20.0, order=2)
    o2 = _pulls(_channels(dec, 2, arrays, e2))
    for r, lim in zip(o2, limit):
        r["limit_ppm"] = float(lim)
        r["scatter_over_limit"] = r["scatter_ppm"] / float(lim)
    out["order2_channels"] = o2
    out["order2_summary"] = dict(_summary(o2), max_scatter_over_limit=max(
        r["scatter_over_limit"] for r in o2), median_scatter_over_limit=float(np.median(
            [r["scatter_over_limit"] for r in o2])))
    white = _pulls(_channels(dec, 2, arrays, e2[[0, -1]]))[0]
    white["limit_ppm"] = float(vis.noise_limit(wave_bins=e2[[0, -1]], aperture=20.0, order=2)[0])
    out["order2_white"] = white
    # order 1: the recipe's 20 channels
    w1 = dec.wave[1][dec.mask[1].any(0)]
    e1 = np.linspace(np.nanmin(w1), np.nanmax(w1) * (1 + 1e-9), 21)
    pb, pd = _pulls(_channels(box, 1, arrays, e1)), _pulls(_channels(dec, 1, arrays, e1))
    ratio = [d["scatter_ppm"] / b["scatter_ppm"] for b, d in zip(pb, pd)]
    out["order1_noise_ratio"] = ratio
    out["order1_noise_ratio_max"] = float(max(ratio))
    out["order1_box_pulls"], out["order1_dec_pulls"] = _summary(pb), _summary(pd)
    out["order1_channels"] = [dict(lo=float(e1[i]), hi=float(e1[i + 1]), box=b, dec=d)
                              for i, (b, d) in enumerate(zip(pb, pd))]
    out["order1_contamination_max"] = float(np.max(dec.columns[1]["contamination"]))
    out["flagged_columns"] = {o: int(dec.columns[o]["flagged"].sum()) for o in dec.orders}
    out["timing"] = _timing(g)
    del g
    # noiseless twin: what is left of order 2's transit in order 1's channels
    vis0, g0, arrays0 = _visit(min(nint, 100), tmp / "noiseless", seed, noiseless=True)
    scale = 500 / g0.N
    rb = _pulls(_channels(g0.extract("box", orders=[1], exclude_overlap=False), 1, arrays0, e1),
                var_scale=scale)
    rd = _pulls(_channels(g0.extract("box", decontaminate=True), 1, arrays0, e1), var_scale=scale)
    out["order1_residual_box_sigma500"] = [r["pull"] for r in rb]
    out["order1_residual_dec_sigma500"] = [r["pull"] for r in rd]
    return out


def run_scene(nint: int, tmp: Path, seed: int) -> dict:
    from tsocontainer.group import read_segments
    from tsocontainer.sim.soss_scene import simulate_soss_scene

    simulate_soss_scene(nint, tmp / "scene", seed=seed, columns=(0, 1100))
    g = read_segments(sorted(glob.glob(f"{tmp}/scene/*rateints.fits"))).flag_dq()
    g.estimate_sky(method="model")
    g.fit_all_traces()
    box = g.extract("box", orders=[1], exclude_overlap=False)
    dec = g.extract("box", decontaminate=True)
    w1 = dec.wave[1][dec.mask[1].any(0)]
    e1 = np.linspace(np.nanmin(w1), np.nanmax(w1) * (1 + 1e-9), 11)
    out = {"nint": nint, "columns": [0, 1100], "edges": e1.tolist()}
    lb, ld = box.to_lightcurves(bins=e1, order=1), dec.to_lightcurves(bins=e1, order=1)
    t = np.arange(g.N)
    rows = []
    for c in range(min(lb.nchan, ld.nchan)):
        fb, fd = lb.flux[:, c], ld.flux[:, c]
        # the transit is common: the ratio of the two light curves carries the depth change;
        # the noise is the point-to-point scatter (differences of neighbours / sqrt 2)
        sb, sd = (np.std(np.diff(f / np.median(f))) / np.sqrt(2) for f in (fb, fd))
        rows.append(dict(lo=float(lb.wave_lo[c]), hi=float(lb.wave_hi[c]),
                         noise_ratio=float(sd / sb), cont=float(np.mean(
                             dec.columns[1]["contamination"][(dec.wave[1] >= e1[c])
                                                             & (dec.wave[1] < e1[c + 1])]))))
    out["channels"] = rows
    out["flagged_columns"] = {o: int(dec.columns[o]["flagged"].sum()) for o in dec.orders}
    del t
    return out


def run_scene_order2(nint: int, tmp: Path, seed: int) -> dict:
    """Order 2 over 0.6-0.95 um on the real-frame scene (columns 1000-1800) through the
    shipped recipe's state steps and its extraction: scatter about the injected shape of the
    box's light (``soss_truth.box_light_curves``) against the photon + read limit."""
    from tsocontainer.group import read_segments
    from tsocontainer.pipeline.recipe import load_recipe
    from tsocontainer.pipeline.runner import stage_of
    from tsocontainer.sim.soss_scene import simulate_soss_scene
    from tsocontainer.sim.soss_truth import box_light_curves

    vis = simulate_soss_scene(nint, tmp / "scene2", seed=seed, columns=(1000, 1800))
    g = read_segments(sorted(glob.glob(f"{tmp}/scene2/*rateints.fits")), progress=False)
    steps = load_recipe("soss").steps
    for name, kwargs in steps:
        if stage_of(name) == "state":
            getattr(g, name)(**kwargs)
    spec = g.extract(**dict(steps)["extract"])
    centre = np.asarray(spec.columns[2]["trace"], float)
    edges = np.linspace(0.6, 0.95, 11)
    truth = box_light_curves(vis, edges, centre, 20.0, order=2)
    limit = vis.noise_limit(wave_bins=edges, aperture=20.0, order=2)
    wave, used = spec.wave[2], spec.mask[2].all(0)
    idx = np.searchsorted(edges, wave, side="right") - 1
    rows = []
    for c in range(edges.size - 1):
        sel = used & (idx == c)
        if sel.sum() == 0 or not np.isfinite(limit[c]):
            continue
        b, resid, sxx = _shape_fit(spec.flux[2][:, sel].sum(1), truth[c])
        sig = np.std(resid, ddof=2)
        rows.append(dict(lo=float(edges[c]), hi=float(edges[c + 1]), ncol=int(sel.sum()),
                         pull=float((b - 1) / (sig / np.sqrt(sxx))),
                         scatter_over_limit=float(1e6 * sig / limit[c])))
    return {"nint": nint, "columns": [1000, 1800], "channels": rows}


def run_recipe_timing(nint: int, tmp: Path, seed: int) -> dict:
    """The shipped SOSS recipe's steps up to the light curves on the full real-frame scene,
    timed step by step; the extraction both ways (order-1 box, two orders decontaminated)."""
    from tsocontainer.group import read_segments
    from tsocontainer.pipeline.recipe import load_recipe
    from tsocontainer.pipeline.runner import stage_of
    from tsocontainer.sim.soss_scene import simulate_soss_scene

    simulate_soss_scene(nint, tmp / "full", seed=seed)
    g = read_segments(sorted(glob.glob(f"{tmp}/full/*rateints.fits")), progress=False)
    steps, times = load_recipe("soss").steps, {}
    for name, kwargs in steps:
        if stage_of(name) == "state":
            t0 = time.perf_counter()
            getattr(g, name)(**kwargs)
            times[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    box = g.extract("box", orders=[1])
    times["extract order 1 (box)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dec = g.extract(**dict(steps)["extract"])
    times["extract orders 1+2 decontaminated"] = time.perf_counter() - t0
    state = sum(v for k, v in times.items() if not k.startswith("extract"))
    t_box, t_dec = times["extract order 1 (box)"], times["extract orders 1+2 decontaminated"]
    lb = box.to_lightcurves(bins=20, order=1)
    ld = dec.to_lightcurves(bins=20, order=1)
    noise = [float(np.std(np.diff(ld.flux[:, c] / np.median(ld.flux[:, c])))
                   / np.std(np.diff(lb.flux[:, c] / np.median(lb.flux[:, c]))))
             for c in range(min(lb.nchan, ld.nchan))]
    return {"nint": nint, "load1": round(os.getloadavg()[0], 2), "steps_s": times,
            "to_spectra_ratio": (state + t_dec) / (state + t_box),
            "order1_p2p_noise_ratio": noise,
            "flagged_columns": {o: int(dec.columns[o]["flagged"].sum()) for o in dec.orders}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nint", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scene", action="store_true", help="also the real-frame scene")
    ap.add_argument("--recipe-timing", action="store_true",
                    help="the shipped recipe's steps on the full real-frame scene, timed")
    ap.add_argument("--scene-order2", action="store_true",
                    help="order 2 through the recipe on the real-frame scene (columns 1000-1800)")
    ap.add_argument("--skip-package", action="store_true")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-order2-", dir=args.tmp))
    try:
        res = {"date": datetime.date.today().isoformat()}
        if not args.skip_package:
            res["package"] = run_package(args.nint, tmp, args.seed)
        if args.scene:
            res["scene"] = run_scene(args.nint, tmp, args.seed)
        if args.recipe_timing:
            res["recipe_timing"] = run_recipe_timing(args.nint, tmp, args.seed)
        if args.scene_order2:
            res["scene_order2"] = run_scene_order2(args.nint, tmp, args.seed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _print(res)
    _print_scene(res)
    name = f"soss_order2-{res['date']}{'-' + args.tag if args.tag else ''}.json"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / name).write_text(json.dumps(res, indent=1))
    print("written", HERE / "results" / name)
    return res


def _print(res):
    if "recipe_timing" in res:
        r = res["recipe_timing"]
        print("recipe timing", {k: round(v, 2) for k, v in r["steps_s"].items()},
              f"to spectra x{r['to_spectra_ratio']:.3f} (load {r['load1']})",
              "order-1 p2p noise ratio", np.round(r["order1_p2p_noise_ratio"], 3).tolist(),
              "flagged", r["flagged_columns"])
    if "package" not in res:
        return
    p = res["package"]
    s2, w = p["order2_summary"], p["order2_white"]
    print(f"order 2 (0.6-0.95 um, 10 channels, {p['nint']} integrations): scatter / limit "
          f"median {s2['median_scatter_over_limit']:.3f} max {s2['max_scatter_over_limit']:.3f}; "
          f"pulls mean {s2['mean_pull']:+.2f} std {s2['std_pull']:.2f} chi2/N {s2['chi2_n']:.2f}; "
          f"white pull {w['pull']:+.2f}, scatter {w['scatter_ppm']:.0f} ppm "
          f"(limit {w['limit_ppm']:.0f})")
    print("order 1 noise ratio decontaminated / box per channel:",
          np.round(p["order1_noise_ratio"], 3).tolist())
    for k in ("order1_box_pulls", "order1_dec_pulls"):
        print(k, {a: round(b, 2) for a, b in p[k].items()})
    print("order 1 residual (noiseless, sigma of 500 ints): box",
          np.round(p["order1_residual_box_sigma500"], 2).tolist())
    print("                                               dec",
          np.round(p["order1_residual_dec_sigma500"], 2).tolist())
    print("timing", {k: (round(v, 4) if isinstance(v, float) else v)
                     for k, v in p["timing"].items()})
    print("flagged columns", p["flagged_columns"])


def _print_scene(res):
    if "scene_order2" in res:
        rows = res["scene_order2"]["channels"]
        print("scene order 2: scatter / limit", [round(r["scatter_over_limit"], 3) for r in rows],
              "pulls", [round(r["pull"], 2) for r in rows])
    if "scene" in res:
        print("scene: noise ratio per channel",
              [(round(r["lo"], 2), round(r["noise_ratio"], 3), round(r["cont"], 3))
               for r in res["scene"]["channels"]], "flagged", res["scene"]["flagged_columns"])


if __name__ == "__main__":
    main()
