"""Stage 1 from uncal ramps: time, peak memory and 1/f precision.

Usage::

    python benchmarks/bench_ramps.py [--part speed,profile,precision,fit,jumps,run] [--nint 24]
                                     [--nseg 2] [--columns 0 2048] [--nint-precision 200]
                                     [--modes soss,nirspec-prism] [--keep DIR [--reuse]]

``speed``: a SOSS SUBSTRIP256 visit (``--columns``, default the full 2048 columns, 9
groups, ``--nint`` integrations in ``--nseg`` segments) is simulated (not measured), then
each of these runs in a fresh Python process whose time and peak RSS (``ru_maxrss``) are
reported:

* ``ours``: :func:`tsocontainer.ramps.run_stage1` with every step (saturation and mask
  references, bias from the data, reference pixels, group 1/f, jumps within ramps with
  our two-point-difference detector plus the check in time, OLS_C fit with exact
  variances), streamed in blocks; ``ours-stcal``: the same with stcal's jump detection;
* ``ours-min-stcal``: the same reader and fit with only what the stcal run below does (the
  bias reference, stcal's jumps, OLS_C), to separate tsocontainer's steps from stcal's;
  ``ours-min``: the same with our jump detection;
* ``stcal``: stcal called the way the jwst pipeline's ``JumpStep`` and ``RampFitStep``
  call it: every segment opened whole as a ``RampModel`` (float32), the bias reference
  subtracted, ``detect_jumps_data`` on a ``JumpData`` built from the model with the
  JumpStep defaults, then ``ramp_fit.ramp_fit(model, ...)`` with OLS_C, optimal weighting,
  one core (no CRDS: the simulated gain and read-noise references).

The rates of ``ours-min-stcal`` and ``stcal`` are compared (same ramps, same stcal code),
and those of ``ours-min`` and ``stcal`` (same ramps, our jump detection). Every run
reports its wall time, its CPU time (user + system, all threads) and the 1-minute load
average before and after it (the machine may be shared: then the CPU time is the steadier
number, and wall time on two free cores is at best CPU time / 2).

``profile``: the ``ours`` run on the same visit (simulated unless ``--reuse``), with every
thread pool of stage 1 run serially in the main thread, so that ``time.thread_time()``
around each step is its CPU time: CPU seconds per integration of each streamed step
(reading, saturation, bias, reference pixels, group 1/f, jumps within ramps, check in
time, ramp fit, buffer, storing, the rest of the fit pass) and the one-off set-up (bias
and deep ramp from the data, read-noise check). ``--part profile --keep DIR --reuse``
after a ``speed`` run reproduces the per-step breakdown of that visit.

``precision``: a SOSS visit of ``--nint-precision`` integrations x 64 columns with a faint
star (5 % of saturation at the peak) and injected group-level 1/f; white-light and
per-column scatter over the photon + read-noise expectation for no 1/f correction,
rate-level ``correct_one_over_f`` (masked-median) and group-level ``correct_group_onef``,
each with and without the reference-pixel step.

``fit`` (acceptance: rates and variances): a clean SOSS visit (photon + read noise only,
40 integrations x 256 rows x columns 1000-1256, 2.6 million ramps, up to ~2000 DN/s) fitted with OLS_C: pooled
scatter of the rates about the noiseless truth over the textbook unweighted-OLS noise,
and the mean and standard deviation of the normalised residuals; then stcal's LIKELY
against OLS_C on a second visit (12 integrations x 128 columns) through the same steps.

``jumps``: a SOSS visit with all default noise, cosmic rays at 3e-5 hits/pixel/s and a
transit (80 integrations x columns 1000-1128, the bright part of the trace), every step plus jumps: the fraction of usable
injected hits >= 5 sigma flagged, false flags (not on or beside a charged pixel) per
usable pixel-integration, and the flag rates in and out of transit with their binomial
difference in sigma.

``run``: for each of ``--modes``, ``tsocontainer simulate --level uncal`` then
``tsocontainer run`` (default recipe, the simulator's ``planet.yaml`` priors, 2 workers,
no plots) from the command line; the white depth against the injected one, in sigma.
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
cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
t0 = time.perf_counter()
method = "stcal" if which.endswith("-stcal") else "twopoint"
if which.startswith("ours-min"):
    steps = [("use_detector", {"gain": refs["gain"], "readnoise": refs["readnoise"]}),
             ("subtract_superbias", {"reference": refs["superbias"]}),
             ("detect_jumps", {"time_threshold": None, "method": method}), ("fit_ramps", {})]
else:
    steps = [("use_detector", {"gain": refs["gain"], "readnoise": refs["readnoise"]}),
             ("flag_saturation", {"level": refs["saturation"], "dq": refs["mask"]}),
             ("subtract_superbias", {}), ("correct_reference_pixels", {}),
             ("correct_group_onef", {}), ("detect_jumps", {"method": method}),
             ("fit_ramps", {})]
g = run_stage1(files, steps)
dt = time.perf_counter() - t0
np.save(folder + f"/rates_{which}.npy", g.sci)
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": dt, "peak_rss": ru.ru_maxrss * 1024, "cpu_s": ru.ru_utime + ru.ru_stime - cpu0,
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
cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
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
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": dt, "peak_rss": ru.ru_maxrss * 1024, "cpu_s": ru.ru_utime + ru.ru_stime - cpu0,
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


FIT = r"""
import sys, json, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from tsocontainer.ramps import read_uncal
from tsocontainer.sim.ramps import simulate_ramps
folder = sys.argv[1]
clean = dict(one_over_f=0, cosmic_rays=0, reference_drift=0, odd_even=0, ktc=0, bad_pixels=False)
def start(v):
    r = {k: str(v.folder) + "/" + p for k, p in v.truth["references"].items()}
    g = read_uncal(v.files).use_detector(gain=r["gain"], readnoise=r["readnoise"])
    return g.flag_saturation(level=r["saturation"], dq=r["mask"]).subtract_superbias()
def ols_var(t, rate):
    n, tg, gain, rn = t["ngroups"], t["group_time"], t["gain"], t["read_noise_dn_per_read"]
    return (12 * rn ** 2 / (n * (n * n - 1) * tg ** 2)
            + 6 * (n * n + 1) / (5 * n * (n * n - 1)) * rate / (tg * gain))
out = {}
v = simulate_ramps("soss", nint=40, columns=(1000, 1256), seed=31, out=folder + "/fit",
                   systematics=False, noise=clean)
rate = v.truth_arrays()["RATE"].astype(float)
t0 = time.perf_counter(); g = start(v).fit_ramps(); dt = time.perf_counter() - t0
ok = g.mask & np.isfinite(g.sci)
res = g.sci - rate
norm = res[ok] / np.sqrt(g.var[ok])
levels = {}
for lo, hi in ((0, 20), (20, 200), (200, 2000), (2000, 1e9)):
    sel = ok & (rate >= lo) & (rate < hi)
    if sel.sum() > 1000:
        levels[f"{lo:g}-{hi:g} DN/s"] = {
            "n": int(sel.sum()),
            "scatter_over_ols": round(float(np.sqrt(np.sum(res[sel] ** 2) / np.sum(ols_var(v.truth["ramps"], rate)[sel]))), 4),
            "norm_std": round(float(np.std(res[sel] / np.sqrt(g.var[sel]))), 4)}
out["ols"] = {"n_rates": int(ok.sum()), "seconds": round(dt, 1),
              "scatter_over_ols": round(float(np.sqrt(np.sum(res[ok] ** 2) / np.sum(ols_var(v.truth["ramps"], rate)[ok]))), 4),
              "norm_std": round(float(np.std(norm)), 4), "norm_std_error": round(float(1 / np.sqrt(2 * ok.sum())), 4),
              "norm_mean": round(float(np.mean(norm)), 4), "levels": levels}
v2 = simulate_ramps("soss", nint=12, columns=(1256, 1384), seed=32, out=folder + "/likely",
                    systematics=False, noise=clean)
rate2 = v2.truth_arrays()["RATE"].astype(float)
fits = {}
for alg in ("OLS_C", "LIKELY"):
    t0 = time.perf_counter(); fits[alg] = start(v2).fit_ramps(algorithm=alg)
    fits[alg].seconds = time.perf_counter() - t0
ok2 = fits["OLS_C"].mask & fits["LIKELY"].mask & np.isfinite(fits["OLS_C"].sci) & np.isfinite(fits["LIKELY"].sci)
for alg, f in fits.items():
    r = (f.sci - rate2)[ok2]
    out[alg + " (likely visit)"] = {"n_rates": int(ok2.sum()), "seconds": round(f.seconds, 1),
        "rms": round(float(np.sqrt(np.mean(r ** 2))), 5),
        "scatter_over_ols": round(float(np.sqrt(np.sum(r ** 2) / np.sum(ols_var(v2.truth["ramps"], rate2)[ok2]))), 4),
        "norm_std": round(float(np.std(r / np.sqrt(f.var[ok2]))), 4),
        "algorithm": f.history[-1]["summary"]["algorithm"]}
out["LIKELY rms / OLS_C rms"] = round(out["LIKELY (likely visit)"]["rms"] / out["OLS_C (likely visit)"]["rms"], 4)
print(json.dumps(out))
"""

JUMPS = r"""
import sys, json, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from tsocontainer.ramps import read_uncal
from tsocontainer.sim.ramps import jump_zone, simulate_ramps
folder, nint, methods = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
v = simulate_ramps("soss", nint=nint, columns=(1000, 1128), seed=22, out=folder,
                   systematics=False, noise=dict(cosmic_rays=3e-5))
a = v.truth_arrays()
r = {k: str(v.folder) + "/" + p for k, p in v.truth["references"].items()}
def metrics(g, dt):
    jump = g.dqs.any(4); usable = ~g.dqs.any(1 | 2)
    J = a["JUMPS"]; i, y, x = J.integration - 1, J.y, J.x
    hit = (J.group >= 1) & usable[i, y, x]
    big = hit & (J.amplitude_dn >= 5 * J.sigma_dn)
    mid = hit & (J.amplitude_dn >= 3 * J.sigma_dn) & ~big
    false = jump & ~jump_zone(J, jump.shape) & usable
    intransit = a["SHIFTS"]["white_lc"] < 1 - 1e-5
    k = [int(jump[s].sum()) for s in (intransit, ~intransit)]
    n = [int(usable[s].sum()) for s in (intransit, ~intransit)]
    kf = [int(false[s].sum()) for s in (intransit, ~intransit)]
    p = sum(k) / sum(n); sig = np.sqrt(p * (1 - p) * (1 / n[0] + 1 / n[1]))
    pf = sum(kf) / sum(n); sigf = np.sqrt(pf * (1 - pf) * (1 / n[0] + 1 / n[1]))
    on_trace = np.abs(np.arange(jump.shape[1])[:, None] - np.nanmean(a["TRACE"][0], axis=0)[None]) <= 15
    return {"nint": nint, "seconds": round(dt, 1), "hits_usable": int(hit.sum()),
        "hits_ge_5sigma": int(big.sum()), "found_ge_5sigma": round(float(jump[i[big], y[big], x[big]].mean()), 5),
        "found_3_5sigma": round(float(jump[i[mid], y[mid], x[mid]].mean()), 4) if mid.any() else None,
        "missed_ge_5sigma": int((~jump[i[big], y[big], x[big]]).sum()),
        "false_flags": int(false.sum()), "usable": int(usable.sum()),
        "false_fraction": float(false.sum() / usable.sum()),
        "false_fraction_on_trace": float((false & on_trace[None]).sum() / (usable & on_trace[None]).sum()),
        "in_transit_ints": int(intransit.sum()),
        "flag_rate_in": k[0] / n[0], "flag_rate_out": k[1] / n[1],
        "flag_rate_diff_sigma": round(float((k[0] / n[0] - k[1] / n[1]) / sig), 2),
        "false_rate_in": kf[0] / n[0], "false_rate_out": kf[1] / n[1],
        "false_rate_diff_sigma": round(float((kf[0] / n[0] - kf[1] / n[1]) / sigf), 2) if sigf > 0 else None}
def run(method, time_threshold):
    g = read_uncal(v.files).use_detector(gain=r["gain"], readnoise=r["readnoise"])
    g = g.flag_saturation(level=r["saturation"], dq=r["mask"]).subtract_superbias()
    t0 = time.perf_counter()
    g = g.correct_reference_pixels().correct_group_onef()
    g = g.detect_jumps(method=method, time_threshold=time_threshold).fit_ramps()
    return g, time.perf_counter() - t0
def overlap(x, y):
    return {"both": int((x & y).sum()), "only_" + methods[0]: int((x & ~y).sum()),
            "only_" + methods[1]: int((~x & y).sum()),
            "jaccard": round(float((x & y).sum() / max(1, (x | y).sum())), 4)}
out, flags = {}, {}
for method in methods:
    g, dt = run(method, 5.0)
    out[method] = metrics(g, dt)
    flags[method] = g.dqs.any(4)
    if len(methods) > 1:
        g, dt = run(method, None)
        out[method + " (within ramps only)"] = metrics(g, dt)
        flags[method + ":ramps"] = g.dqs.any(4)
if len(methods) > 1:
    m0, m1 = methods[:2]
    out["overlap (with the check in time)"] = overlap(flags[m0], flags[m1])
    out["overlap (within ramps only)"] = overlap(flags[m0 + ":ramps"], flags[m1 + ":ramps"])
print(json.dumps(out))
"""

RUNMODE = r"""
import sys, json, glob, warnings
import numpy as np
warnings.simplefilter("ignore")
from tsocontainer.pipeline.runner import run_recipe
from tsocontainer.sim.truth import SimulatedVisit, load_truth, recovery
sim, run = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(sim + "/*_uncal.fits"))
vis = SimulatedVisit(folder=sim, files=files, truth=load_truth(sim))
res = run_recipe(files, "default", out=run, priors=sim + "/planet.yaml", plots=False)  # reloads
w = res.white
rec = recovery(vis, w, res.spectrum)
pulls = rec["pulls"]
print(json.dumps({"ran_again": res.ran, "injected_ppm": rec["injected"],
    "recovered_ppm": rec["depth"], "err_ppm": rec["err"], "pull": rec["pull"], "verdict": w.verdict,
    "channels": int(pulls.size), "channel_pull_mean": float(np.mean(pulls)),
    "channel_pull_std": float(np.std(pulls))}))
"""
PROFILE = COMMON + r"""
# per-step CPU of the 'ours' run, every thread pool run serially in this thread so that
# time.thread_time() is the CPU of the step (exclusive: a step's sub-steps are taken out)
import concurrent.futures, time as _t
import tsocontainer.ramps.fitpass as fp, tsocontainer.ramps.container as ct
from tsocontainer.ramps import run_stage1
import stcal.jump.jump, stcal.ramp_fitting.ramp_fit   # imported outside the timing, as in OURS

class Serial:
    def __init__(self, *a, **k): pass
    def __enter__(self): return self
    def __exit__(self, *a): return False
    def map(self, f, *its): return list(map(f, *its))
    def submit(self, f, *a, **k):
        fut = concurrent.futures.Future(); fut.set_result(f(*a, **k)); return fut
import tsocontainer.ramps.twopoint as tp, tsocontainer.ramps.onef as of, tsocontainer.ramps.olsfast as ol
for m in (fp, tp, of, ol, ct):
    m.ThreadPoolExecutor = Serial
cpu, stack = {}, []
def timed(label, f):
    def g(*a, **k):
        if any(s[0].startswith("setup") for s in stack):
            return f(*a, **k)
        stack.append([label, _t.thread_time(), 0.0])
        try:
            return f(*a, **k)
        finally:
            name, t0, child = stack.pop()
            dt = _t.thread_time() - t0
            cpu[name] = cpu.get(name, 0.0) + dt - child
            if stack:
                stack[-1][2] += dt
    return g
R = ct.RampGroup
for name in ("saturation", "superbias", "refpix", "onef", "linearity"):
    setattr(R, f"_apply_{name}", timed(name, getattr(R, f"_apply_{name}")))
    setattr(R, f"_setup_{name}", timed("setup " + name, getattr(R, f"_setup_{name}")))
R._check_readnoise = timed("setup readnoise check", R._check_readnoise)
R._calibrated = timed("read", R._calibrated)          # what is left: reading + DQ
fp.twopoint_jumps = timed("jumps within ramps", fp.twopoint_jumps)
fp._time_check = timed("check in time", fp._time_check)
fp.fast_ols_fit = timed("ramp fit", fp.fast_ols_fit)
fp._Buffer.append = timed("buffer", fp._Buffer.append)
fp._Buffer.keep_from = timed("buffer", fp._Buffer.keep_from)
fp._Outputs.store = timed("store", fp._Outputs.store)
fp.fit_visit = timed("fit pass (rest)", fp.fit_visit)
steps = [("use_detector", {"gain": refs["gain"], "readnoise": refs["readnoise"]}),
         ("flag_saturation", {"level": refs["saturation"], "dq": refs["mask"]}),
         ("subtract_superbias", {}), ("correct_reference_pixels", {}),
         ("correct_group_onef", {}), ("detect_jumps", {"method": "twopoint"}), ("fit_ramps", {})]
c0 = _t.thread_time()
g = run_stage1(files, steps)
total = _t.thread_time() - c0
np.save(folder + "/rates_profile.npy", g.sci)
cpu["other"] = total - sum(cpu.values())
setup = sum(v for k, v in cpu.items() if k.startswith("setup") or k == "other")
print(json.dumps({"N": g.N, "cpu_s_total": total, "cpu_s_setup": setup,
                  "cpu_s_per_int": {k: v / g.N for k, v in sorted(cpu.items(), key=lambda x: -x[1])
                                    if not (k.startswith("setup") or k == "other")},
                  "cpu_s_setup_steps": {k: v for k, v in cpu.items() if k.startswith("setup") or k == "other"}}))
"""


def _env() -> dict:
    from _common import child_env

    return child_env(dict(os.environ, MPLBACKEND="Agg"))


def _run(code: str, *args, timeout=3600) -> dict:
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    # -P: ``python -c`` would put the working directory first on sys.path, before
    # PYTHONPATH: run from another checkout, it would measure that checkout's package
    proc = subprocess.run([sys.executable, "-P", "-c", code, *map(str, args)],
                          capture_output=True, text=True, env=_env(), timeout=timeout)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"child failed ({proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    out["load1_before"], out["load1_after"] = load, os.getloadavg()[0]
    return out


def speed(folder: Path, args) -> dict:
    if (folder / "truth.json").is_file() and args.reuse:
        res = {"simulate": "reused " + str(folder)}
        truth = json.loads((folder / "truth.json").read_text())
        args.nint, args.columns = truth["nint"], truth["instrument"]["crop"]
    else:
        sim = _run(SIMULATE, folder, args.nint, args.nseg, *args.columns)
        res = {"simulate": {"seconds": round(sim["seconds"], 1), "files": len(sim["files"])}}
    for which in args.speed_runs.split(","):
        res[which] = _run(STCAL if which == "stcal" else OURS, folder, which)
    import numpy as np

    for which in ("ours-min-stcal", "ours-min"):
        if which not in res or "stcal" not in res:
            continue
        a, b = (np.load(folder / f"rates_{w}.npy") for w in (which, "stcal"))
        ok = np.isfinite(a) & np.isfinite(b) & (np.abs(b) > 1)
        res[which + " vs stcal"] = {
            "median ratio": float(np.median(a[ok] / b[ok])),
            "identical fraction": float(np.mean(np.isclose(a[ok], b[ok], rtol=1e-5)))}
    ny, nx = 256, args.columns[1] - args.columns[0]
    res["rateints_bytes"] = args.nint * ny * nx * 4
    for which in args.speed_runs.split(","):
        res[which]["s_per_int"] = res[which]["seconds"] / args.nint
        res[which]["s_per_500_full_ints"] = res[which]["seconds"] / args.nint * 500 * 2048 / nx
        res[which]["cpu_s_per_int"] = res[which]["cpu_s"] / args.nint
    return res


def _profile(folder: Path, args) -> dict:
    """Per-step CPU of the ``ours`` run (threads run serially) on the speed visit."""
    if not ((folder / "truth.json").is_file() and args.reuse):
        _run(SIMULATE, folder, args.nint, args.nseg, *args.columns)
    return _run(PROFILE, folder, "profile")


def run_modes(root: Path, modes, nint: dict) -> dict:
    """``tsocontainer simulate --level uncal`` + ``tsocontainer run`` per mode, timed."""
    out = {}
    for mode in modes:
        sim, run = root / mode / "sim", root / mode / "run"
        n = nint.get(mode, 100)
        t0 = time.perf_counter()
        subprocess.run(["tsocontainer", "simulate", "--mode", mode, "--level", "uncal",
                        "--nint", str(n), "--nseg", "2", "--seed", "5", "--out", str(sim)],
                       check=True, capture_output=True, env=_env())
        t1 = time.perf_counter()
        load = os.getloadavg()[0]
        files = sorted(str(f) for f in sim.glob("*_uncal.fits"))
        proc = subprocess.run(["tsocontainer", "run", *files, "--out", str(run), "--priors",
                               str(sim / "planet.yaml"), "--workers", "2", "--no-plots"],
                              capture_output=True, text=True, env=_env())
        t2 = time.perf_counter()
        if proc.returncode:
            out[mode] = {"error": proc.stderr[-1500:], "nint": n}
            continue
        row = _run(RUNMODE, sim, run)
        row.update({"nint": n, "simulate_s": round(t1 - t0, 1), "run_s": round(t2 - t1, 1),
                    "load1_before_run": load, "last_line": proc.stdout.strip().splitlines()[-1]})
        out[mode] = row
        shutil.rmtree(sim, ignore_errors=True)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", default="speed,precision")
    p.add_argument("--nint", type=int, default=24)
    p.add_argument("--nseg", type=int, default=2)
    p.add_argument("--columns", type=int, nargs=2, default=(0, 2048))
    p.add_argument("--nint-precision", type=int, default=200)
    p.add_argument("--nint-jumps", type=int, default=80)
    p.add_argument("--speed-runs", default="ours,ours-stcal,ours-min,ours-min-stcal,stcal",
                   help="runs of part 'speed' (see the module docstring)")
    p.add_argument("--jump-methods", default="twopoint,stcal",
                   help="detect_jumps methods of part 'jumps' (the first two are compared)")
    p.add_argument("--modes", default="soss,nirspec-prism",
                   help="modes of part 'run' (simulator names)")
    p.add_argument("--nint-run", default="soss:100,nirspec-prism:300",
                   help="integrations per mode of part 'run' (mode:n,...; default 100)")
    p.add_argument("--out", default=None, help="also write the results to this JSON file")
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
        if "profile" in parts:
            results["profile"] = _profile(root / "speed", args)
        if "precision" in parts:
            results["precision"] = _run(PRECISION, root / "precision", args.nint_precision)
        if "fit" in parts:
            results["fit"] = dict(_run(FIT, root / "fit"), load1=os.getloadavg()[0])
        if "jumps" in parts:
            load = os.getloadavg()[0]
            results["jumps"] = dict(_run(JUMPS, root / "jumps", args.nint_jumps,
                                         args.jump_methods), load1_start=load,
                                    load1=os.getloadavg()[0])
        if "run" in parts:
            nint = {k: int(n) for k, n in (x.split(":") for x in args.nint_run.split(","))}
            results["run"] = run_modes(root / "run", args.modes.split(","), nint)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    results["load1_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
