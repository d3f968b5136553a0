"""Stage 1 from uncal ramps: time, peak memory and 1/f precision.

Usage::

    python benchmarks/bench_ramps.py [--part speed,precision] [--nint 24] [--nseg 2]
                                     [--columns 0 2048] [--nint-precision 200] [--keep DIR [--reuse]]

``speed``: a SOSS SUBSTRIP256 visit (``--columns``, default the full 2048 columns, 9
groups, ``--nint`` integrations in ``--nseg`` segments) is simulated (not measured), then
each of these runs in a fresh Python process whose time and peak RSS (``ru_maxrss``) are
reported:

* ``ours``: :func:`tsocontainer.ramps.run_stage1` with every step (saturation and mask
  references, bias from the data, reference pixels, group 1/f, stcal jumps plus the check
  in time, OLS_C fit with exact variances), streamed in blocks;
* ``ours-min``: the same reader and fit with only what the stcal run below does (the bias
  reference, stcal's jumps, OLS_C), to separate tsocontainer's steps from stcal's;
* ``stcal``: stcal called the way the jwst pipeline's ``JumpStep`` and ``RampFitStep``
  call it: every segment opened whole as a ``RampModel`` (float32), the bias reference
  subtracted, ``detect_jumps_data`` on a ``JumpData`` built from the model with the
  JumpStep defaults, then ``ramp_fit.ramp_fit(model, ...)`` with OLS_C, optimal weighting,
  one core (no CRDS: the simulated gain and read-noise references).

The rates of ``ours-min`` and ``stcal`` are compared (same ramps, same stcal code).

``precision``: a SOSS visit of ``--nint-precision`` integrations x 64 columns with a faint
star (5 % of saturation at the peak) and injected group-level 1/f; white-light and
per-column scatter over the photon + read-noise expectation for no 1/f correction,
rate-level ``correct_one_over_f`` (masked-median) and group-level ``correct_group_onef``,
each with and without the reference-pixel step.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SIMULATE = r"""
import sys, json, time
from tsocontainer.sim.ramps import simulate_ramps
out, nint, nseg, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t0 = time.perf_counter()
v = simulate_ramps("soss", nint=nint, nseg=nseg, out=out, seed=1, columns=(lo, hi),
                   save_rates=False)
print(json.dumps({"files": v.files, "seconds": time.perf_counter() - t0}))
"""

COMMON = r"""
import sys, json, time, resource, glob, warnings
import numpy as np
warnings.simplefilter("ignore")
folder, which = sys.argv[1], sys.argv[2]
truth = json.load(open(folder + "/truth.json"))
refs = {k: folder + "/" + p for k, p in truth["references"].items()}
files = sorted(glob.glob(folder + "/*_uncal.fits"))
"""

OURS = COMMON + r"""
from tsocontainer.ramps import run_stage1
import stcal.jump.jump, stcal.ramp_fitting.ramp_fit   # imported outside the timing, as below
t0 = time.perf_counter()
if which == "ours":
    steps = [("use_detector", {"gain": refs["gain"], "readnoise": refs["readnoise"]}),
             ("flag_saturation", {"level": refs["saturation"], "dq": refs["mask"]}),
             ("subtract_superbias", {}), ("correct_reference_pixels", {}),
             ("correct_group_onef", {}), ("detect_jumps", {}), ("fit_ramps", {})]
else:
    steps = [("use_detector", {"gain": refs["gain"], "readnoise": refs["readnoise"]}),
             ("subtract_superbias", {"reference": refs["superbias"]}),
             ("detect_jumps", {"time_threshold": None}), ("fit_ramps", {})]
g = run_stage1(files, steps)
dt = time.perf_counter() - t0
np.save(folder + f"/rates_{which}.npy", g.sci)
print(json.dumps({"seconds": dt, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "rates_bytes": g.sci.nbytes, "N": g.N,
                  "steps": {h["step"]: h["summary"].get("seconds") for h in g.history}}))
"""

STCAL = COMMON + r"""
from astropy.io import fits
from stcal.jump.jump import detect_jumps_data
from stcal.jump.jump_class import JumpData
from stcal.ramp_fitting import ramp_fit
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags
t0 = time.perf_counter()
gain = fits.getdata(refs["gain"], "SCI").astype(np.float32)
rn = fits.getdata(refs["readnoise"], "SCI").astype(np.float32)
bias = fits.getdata(refs["superbias"], "SCI").astype(np.float32)
rates = []
for f in files:
    model = datamodels.RampModel(f)
    model.data = model.data - bias[None, None]
    jd = JumpData(model, gain, rn, dqflags.pixel)      # JumpStep defaults from here on
    jd.set_detection_settings(4.0, 6.0, 5.0, 1000.0, 10.0, True)
    jd.set_after_jump(0.0, 0, 0.0, 0)
    jd.set_snowball_info(False, 5.0, 1.0, 2.0, True, 2.5, 4, 25)
    jd.set_shower_info(False, 1.2, 90, 1.0, 2.6, 1.1, 10, 400)
    jd.set_sigma_clipping_info(3, 100, True)
    gt = model.meta.exposure.group_time
    jd.max_cores = "1"
    jd.grps_masked_after_shower = int(15 // gt)
    jd.mask_persist_grps_next_int = True
    jd.persist_grps_flagged = int(4000 // gt)
    jd.max_shower_amplitude = jd.max_shower_amplitude * gt
    gdq, pdq, ncr, _ = detect_jumps_data(jd)
    model.groupdq, model.pixeldq = gdq, pdq
    _, integ, _ = ramp_fit.ramp_fit(model, False, rn.copy(), gain, "OLS_C", "optimal", "1",
                                    dqflags.pixel, suppress_one_group=True)
    rates.append(integ["slope"])
    model.close()
    del model, jd, gdq, integ
rates = np.concatenate(rates)
dt = time.perf_counter() - t0
np.save(folder + "/rates_stcal.npy", rates)
print(json.dumps({"seconds": dt, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "N": int(rates.shape[0])}))
"""

PRECISION = r"""
import sys, json, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from tsocontainer.ramps import read_uncal
from tsocontainer.sim.ramps import simulate_ramps
folder, nint = sys.argv[1], int(sys.argv[2])
v = simulate_ramps("soss", nint=nint, out=folder, columns=(1000, 1064), seed=4,
                   systematics=False, peak_fraction=0.05, noise=dict(cosmic_rays=0, bad_pixels=False))
a = v.truth_arrays()
refs = {k: folder + "/" + p for k, p in v.truth["references"].items()}
rate = a["RATE"].astype(float)
centre = np.nanmean(a["TRACE"][0], axis=0)
ap = np.abs(np.arange(rate.shape[1])[:, None] - centre[None]) <= 15
lc = a["SHIFTS"]["white_lc"]
def metrics(data, var, mask):
    m = mask & ap[None]
    f = np.where(m, data, 0).sum(axis=1); d = f - np.where(m, rate, 0).sum(axis=1)
    vc = np.where(m, var, 0).sum(axis=1); n = d.shape[0]
    col = np.std((d - d.mean(axis=0)) / np.sqrt(vc)) * np.sqrt(n / (n - 1))
    w = f.sum(axis=1); design = np.vstack([np.ones(n), lc]).T
    coef, *_ = np.linalg.lstsq(design, w, rcond=None)
    white = np.std(w - design @ coef) / np.sqrt(vc.sum(axis=1).mean()) * np.sqrt(n / (n - 2))
    return {"column": round(float(col), 4), "white": round(float(white), 4),
            "white_error": round(float(white / np.sqrt(2 * (n - 2))), 4)}
out = {"nint": nint, "limit_ppm_truth": v.truth["white_light_limit_ppm"]}
for refpix in (False, True):
    def start():
        g = read_uncal(v.files).use_detector(gain=refs["gain"], readnoise=refs["readnoise"])
        g.flag_saturation(level=refs["saturation"]).subtract_superbias()
        return g.correct_reference_pixels() if refpix else g
    key = "refpix" if refpix else "no-refpix"
    none = start().fit_ramps()
    out[key + ":none"] = metrics(none.sci, none.var, none.mask)
    r = none.copy().correct_one_over_f(method="masked-median")
    out[key + ":rate-level"] = metrics(r.data, r.var, r.mask)
    gr = start().correct_group_onef().fit_ramps()
    out[key + ":group-level"] = metrics(gr.sci, gr.var, gr.mask)
print(json.dumps(out))
"""


def _run(code: str, *args, timeout=600) -> dict:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get(
        "PYTHONPATH", ""), MPLBACKEND="Agg")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"child failed ({proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    return out


def speed(folder: Path, args) -> dict:
    if (folder / "truth.json").is_file() and args.reuse:
        res = {"simulate": "reused " + str(folder)}
        truth = json.loads((folder / "truth.json").read_text())
        args.nint, args.columns = truth["nint"], truth["instrument"]["crop"]
    else:
        sim = _run(SIMULATE, folder, args.nint, args.nseg, *args.columns)
        res = {"simulate": {"seconds": round(sim["seconds"], 1), "files": len(sim["files"])}}
    for which in ("ours", "ours-min"):
        res[which] = _run(OURS, folder, which)
    res["stcal"] = _run(STCAL, folder, "stcal")
    import numpy as np

    a, b = (np.load(folder / f"rates_{w}.npy") for w in ("ours-min", "stcal"))
    ok = np.isfinite(a) & np.isfinite(b) & (np.abs(b) > 1)
    res["ours-min vs stcal"] = {"median ratio": float(np.median(a[ok] / b[ok])),
                                "identical fraction": float(np.mean(np.isclose(a[ok], b[ok],
                                                                                rtol=1e-5)))}
    ny, nx = 256, args.columns[1] - args.columns[0]
    res["rateints_bytes"] = args.nint * ny * nx * 4
    return res


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", default="speed,precision")
    p.add_argument("--nint", type=int, default=24)
    p.add_argument("--nseg", type=int, default=2)
    p.add_argument("--columns", type=int, nargs=2, default=(0, 2048))
    p.add_argument("--nint-precision", type=int, default=200)
    p.add_argument("--keep", default=None, help="keep the simulated files here")
    p.add_argument("--reuse", action="store_true",
                   help="with --keep: reuse the speed visit simulated there before")
    args = p.parse_args(argv)
    parts = args.part.split(",")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-ramps-"))
    root.mkdir(parents=True, exist_ok=True)
    results = {"load1": os.getloadavg()[0], "cpus": os.cpu_count()}
    try:
        if "speed" in parts:
            results["speed"] = speed(root / "speed", args)
        if "precision" in parts:
            results["precision"] = _run(PRECISION, root / "precision", args.nint_precision)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
