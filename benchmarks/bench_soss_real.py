"""NIRISS/SOSS depth bias on a scene built from the real SUBSTRIP256 frame (issue 16).

The scene (:func:`tsocontainer.sim.soss_scene.simulate_soss_scene`) keeps the real
frame's wings, zodiacal step and field contaminant; the star's whole PSF transits.
The shipped SOSS recipe is run step by step (``_common.run_pipeline``, priors from
the truth) and compared with the injected depths of the recipe's own box:

* *white*: fitted white-light depth minus the injected one (ppm and sigma); the
  injected depths count the light the extraction keeps: with ``decontaminate``
  (the shipped recipe) order 1's own pixels only, in the columns it did not mask
  (:func:`truth_selection`);
* *pulls*: (channel depth - injected) / error over the order-1 channels: mean,
  standard deviation, chi^2/N = mean(pull^2);
* *shape-fit pulls*: the same light curves fitted with their exact injected shape
  (:func:`tsocontainer.sim.soss_truth.shape_pulls`): the reduction alone, without the
  transit model's limb darkening and orbit (and with much smaller errors);
* *background diagnostics* (no fit involved,
  :func:`tsocontainer.sim.soss_truth.background_bias`): per channel, the depth bias that
  the subtracted sky + 1/f offsets put in the box (``bkg in-out ppm``, with the error
  of the offsets), their out-of-transit excess over the truth as a fraction of the
  box's starlight (``bkg out %``), and the dilution by the scene's hot pixels
  (real-frame structure, non-transiting) that the recipe left unflagged in the box
  (``hot ppm``).

Usage::

    python benchmarks/bench_soss_real.py                       # 500 integrations, both cases
    python benchmarks/bench_soss_real.py --nint 100 --cases clean --columns 700 1212
    python benchmarks/bench_soss_real.py --sampler quick       # short emcee chains
    python benchmarks/bench_soss_real.py --seeds 1,2,3         # pooled channel statistics
    python benchmarks/bench_soss_real.py --legacy              # sky and 1/f before issue 16

Cases: ``clean`` (photon + read noise), ``onef_cr`` (plus 1/f columns of
``ONEF_RMS`` DN/s and residual cosmic rays at ``CR_RATE``). Results are printed
and written to ``benchmarks/results/soss_real-<date>[-tag].json``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tsocontainer.sim.soss_truth import background_bias, box_depths, shape_pulls

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CASES = {"clean": {}, "onef_cr": {"one_over_f": "ONEF_RMS", "cosmic_rays": "CR_RATE"}}
#: the recipe's sky and 1/f as they were before issue 16 (``--legacy``): sky scaled by the
#: data/model ratio, 1/f star model = median deep frame x white light
LEGACY = {"estimate_sky": {"scale_by": "ratio"}, "correct_one_over_f": {"star_model": "deep"}}
#: short chains for a quick look (the recipe's adaptive emcee otherwise)
QUICK_SAMPLER = {"nsteps": 1500, "burn": 500, "check_every": 500}


def _noise(case: str) -> dict:
    from tsocontainer.sim import soss_scene

    return {k: getattr(soss_scene, v) for k, v in CASES[case].items()}


def truth_selection(spectra, order: int = 1) -> dict:
    """The light a box extraction of ``order`` keeps, as ``box_depths`` keywords.

    Decontaminated spectra (``meta["DECONTAM"]``) had the other orders' light
    removed from the box: only ``order``'s own pixels count (``owners``). The
    columns never good in the spectra (masked by the decontamination where
    order 3 or too much other light falls in the box) are absent from the
    light curves, so from the truth too (``columns``).
    """
    columns = np.isfinite(np.asarray(spectra.wave[order], float)) & spectra.mask[order].any(0)
    owners = order if spectra.meta.get("DECONTAM") else None
    return {"owners": owners, "columns": columns}


def measure(vis, prod) -> dict:
    """Depth bias, pulls and background diagnostics of one run."""
    g, spec, white = prod["group"], prod["spectrum"], prod["white"]
    centre = np.nanmedian(np.asarray(g.traces[1], float), axis=0)
    hw = 0.5 * float(prod["spectra"].meta.get("WIDTH1", 40))
    sel = truth_selection(prod["spectra"])
    d, elo, ehi = white.depth_ppm
    tw = float(box_depths(vis, [white.wave_lo, white.wave_hi * (1 + 1e-9)], centre, hw, **sel)[0])
    tw_all = float(box_depths(vis, [white.wave_lo, white.wave_hi * (1 + 1e-9)], centre, hw)[0])
    edges = list(spec.wave_lo) + [spec.wave_hi[-1] * (1 + 1e-9)]
    truth = np.array([box_depths(vis, [lo, hi * (1 + 1e-9)], centre, hw, **sel)[0]
                      for lo, hi in zip(spec.wave_lo, spec.wave_hi)])
    truth_all = np.array([box_depths(vis, [lo, hi * (1 + 1e-9)], centre, hw)[0]
                          for lo, hi in zip(spec.wave_lo, spec.wave_hi)])
    pulls = (np.asarray(spec.depth) - truth) / np.asarray(spec.err)
    ok = np.isfinite(pulls)
    # with the common-mode error of the fixed white-light geometry (shared by all channels)
    common = (np.zeros(pulls.size) if spec.err_common is None
              else np.nan_to_num(np.asarray(spec.err_common, float)))
    pulls_tot = (np.asarray(spec.depth) - truth) / np.hypot(np.asarray(spec.err), common)
    out = {"white_fit_ppm": round(float(d), 1), "white_err_ppm": round(0.5 * (elo + ehi), 1),
           "white_truth_ppm": round(tw, 1), "white_bias_ppm": round(float(d) - tw, 1),
           "white_truth_all_light_ppm": round(tw_all, 1),
           "truth_owners": sel["owners"], "truth_columns_masked": int((~sel["columns"]).sum()),
           "white_pull": round((float(d) - tw) / (0.5 * (elo + ehi)), 2),
           "channels": int(ok.sum()), "pull_mean": round(float(np.mean(pulls[ok])), 3),
           "pull_std": round(float(np.std(pulls[ok], ddof=1)), 3),
           "chi2_n": round(float(np.mean(pulls[ok] ** 2)), 3),
           "err_common_ppm": np.round(common, 1).tolist(),
           "pull_mean_total": round(float(np.mean(pulls_tot[ok])), 3),
           "pull_std_total": round(float(np.std(pulls_tot[ok], ddof=1)), 3),
           "pulls_total": np.round(pulls_tot, 2).tolist(),
           "pulls": np.round(pulls, 2).tolist(), "depth_ppm": np.round(spec.depth, 1).tolist(),
           "err_ppm": np.round(spec.err, 1).tolist(), "truth_ppm": np.round(truth, 1).tolist(),
           "truth_all_light_ppm": np.round(truth_all, 1).tolist(),
           "pull_mean_all_light": round(float(np.nanmean((np.asarray(spec.depth) - truth_all)
                                                         / np.asarray(spec.err))), 3),
           "wave_lo": np.round(spec.wave_lo, 4).tolist(), "wave_hi": np.round(spec.wave_hi, 4).tolist()}
    bb = background_bias(vis, g, edges, centre, hw)
    out.update({key: np.round(bb[name], nd).tolist() for key, name, nd in (
        ("bkg_out_pct", "out_pct", 3), ("bkg_in_out_ppm", "bias_ppm", 1),
        ("bkg_in_out_err_ppm", "err_ppm", 1), ("hot_dilution_ppm", "hot_ppm", 1))})
    sp = shape_pulls(vis, prod["lightcurves"], centre, hw, **sel)
    out.update(shape_pull_mean=round(sp["mean"], 3), shape_pull_std=round(sp["std"], 3),
               shape_chi2_n=round(sp["chi2_n"], 3), shape_pulls=np.round(sp["pulls"], 2).tolist(),
               lc_reduced_chi2=np.round(sp["reduced_chi2"], 3).tolist())
    return out


def recipe_steps(legacy: bool) -> list:
    """The shipped SOSS recipe's steps, with the :data:`LEGACY` keywords if asked."""
    from tsocontainer.pipeline.recipe import load_recipe

    steps = []
    for name, kwargs in load_recipe("soss").steps:
        kwargs = dict(kwargs)
        if legacy:
            kwargs.update(LEGACY.get(name, {}))
        steps.append({name: kwargs})
    return steps


def run_case(case, nint, columns, seed, folder, sampler, workers, legacy=False):
    from _common import run_pipeline

    from tsocontainer.sim.soss_scene import simulate_soss_scene
    from tsocontainer.sim.truth import priors_from_truth

    t0 = time.perf_counter()
    vis = simulate_soss_scene(nint, folder, nseg=2, seed=seed, columns=columns,
                              noise=_noise(case))
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    prod = run_pipeline(vis.files, recipe_steps(legacy), priors=priors_from_truth(vis.truth),
                        workers=workers, sampler=sampler)
    res = measure(vis, prod)
    res.update(case=case, legacy=legacy, nint=nint, columns=columns, seed=seed,
               simulate_s=round(t_sim, 1),
               recipe_s=round(time.perf_counter() - t0, 1),
               steps={r["step"]: r["seconds"] for r in prod["monitor"].records},
               sky_params=np.round(np.median(np.asarray(prod["group"].aux["sky_params"], float),
                                             axis=0), 4).tolist())
    return res


def table(results) -> str:
    lines = []
    for r in results:
        lines.append(f"case {r['case']}{' (legacy sky and 1/f)' if r['legacy'] else ''}: "
                     f"{r['nint']} integrations, columns {r['columns']}, seed {r['seed']}, "
                     f"recipe {r['recipe_s']} s, sky scales {r['sky_params']}")
        lines.append(f"  white depth  fit {r['white_fit_ppm']:.1f} +- {r['white_err_ppm']:.1f}  "
                     f"truth {r['white_truth_ppm']:.1f}  bias {r['white_bias_ppm']:+.1f} ppm "
                     f"({r['white_pull']:+.2f} sigma)")
        lines.append(f"  truth: light of orders {r['truth_owners'] or 'all'} in the box, "
                     f"{r['truth_columns_masked']} columns masked (all light: "
                     f"{r['white_truth_all_light_ppm']:.1f} ppm, channel pull mean "
                     f"{r['pull_mean_all_light']:+.3f})")
        lines.append(f"  channels {r['channels']}: pull mean {r['pull_mean']:+.3f}  std "
                     f"{r['pull_std']:.3f}  chi2/N {r['chi2_n']:.3f}; with the common-mode "
                     f"error ({np.median(r['err_common_ppm']):.1f} ppm median): mean "
                     f"{r['pull_mean_total']:+.3f} std {r['pull_std_total']:.3f}")
        lines.append(f"  shape-fit pulls: mean {r['shape_pull_mean']:+.3f}  std "
                     f"{r['shape_pull_std']:.3f}  chi2/N {r['shape_chi2_n']:.3f}")
        lines.append("  wave_lo  fit-truth   err  pull  shape-pull  lc chi2  bkg out %  "
                     "bkg in-out ppm  hot ppm")
        for i, lo in enumerate(r["wave_lo"]):
            lines.append(f"  {lo:7.3f} {r['depth_ppm'][i] - r['truth_ppm'][i]:+8.1f} "
                         f"{r['err_ppm'][i]:6.1f} {r['pulls'][i]:+6.2f}  "
                         f"{r['shape_pulls'][i]:+6.2f}   {r['lc_reduced_chi2'][i]:6.3f}  "
                         f"{r['bkg_out_pct'][i]:+8.3f}  {r['bkg_in_out_ppm'][i]:+7.1f} +- "
                         f"{r['bkg_in_out_err_ppm'][i]:4.1f}  {r['hot_dilution_ppm'][i]:+6.1f}")
    return "\n".join(lines)


def pooled(results) -> str:
    """Channel pulls pooled over the runs of each case (more channels: tighter statistics)."""
    lines = ["pooled over seeds:"]
    for case in dict.fromkeys(r["case"] for r in results):
        rs = [r for r in results if r["case"] == case]
        p = np.concatenate([np.asarray(r["pulls"], float) for r in rs])
        pt = np.concatenate([np.asarray(r["pulls_total"], float) for r in rs])
        w = np.array([r["white_pull"] for r in rs])
        lines.append(f"  {case}: {len(rs)} runs, white pulls {np.round(w, 2).tolist()} (mean "
                     f"{w.mean():+.2f} +- {w.std(ddof=1) / np.sqrt(w.size) if w.size > 1 else np.nan:.2f}), "
                     f"{p.size} channel pulls: mean {p.mean():+.3f} std {p.std(ddof=1):.3f} "
                     f"chi2/N {np.mean(p ** 2):.3f}; with the common-mode error: mean "
                     f"{pt.mean():+.3f} std {pt.std(ddof=1):.3f} chi2/N {np.mean(pt ** 2):.3f}")
    return "\n".join(lines)


def main(argv=None) -> list:
    from _common import quiet

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nint", type=int, default=500)
    ap.add_argument("--cases", default="clean,onef_cr")
    ap.add_argument("--columns", type=int, nargs=2, default=None)
    ap.add_argument("--seeds", default="1", help="comma-separated seeds (one run each)")
    ap.add_argument("--legacy", action="store_true", help="the sky and 1/f before issue 16")
    ap.add_argument("--sampler", choices=("recipe", "quick"), default="recipe")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tmp", default=None, help="parent folder of the simulated visits")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    quiet()
    sampler = QUICK_SAMPLER if args.sampler == "quick" else None
    results = []
    for seed in (int(v) for v in args.seeds.split(",")):
        for case in args.cases.split(","):
            folder = Path(tempfile.mkdtemp(prefix=f"soss-real-{case}-", dir=args.tmp))
            try:
                results.append(run_case(case, args.nint, args.columns, seed, folder, sampler,
                                        args.workers, args.legacy))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            print(table(results[-1:]), flush=True)
    if len(results) > 1:
        print(pooled(results))
    stamp = datetime.date.today().isoformat() + (f"-{args.tag}" if args.tag else "")
    path = HERE / "results" / f"soss_real-{stamp}.json"
    path.write_text(json.dumps(results, indent=1, default=float))
    print(f"written {path}")
    return results


if __name__ == "__main__":
    main()
