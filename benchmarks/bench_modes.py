"""Every mode as a user runs it: ``simulate`` then ``run --priors planet.yaml``; verdicts.

For each simulated mode and seed: the simulator writes segments with real subarray
corners and a ``planet.yaml``; the shipped recipe of the mode is run on them exactly as
``tsocontainer run FILES --priors planet.yaml`` does (one subprocess per run). Reported
per run: the white-light depth against the injected one (pull), the channel pulls (mean,
std), white scatter over the photon + read limit, and whether the white fit or any
channel was marked suspect. A second, deliberately broken run per mode uses priors whose
t0 is off by 0.3 transit durations (still inside the data, so the run is not refused):
its white fit should be marked suspect.

Usage::

    python benchmarks/bench_modes.py [--modes soss,miri-lrs] [--seeds 0,1] [--nint 200]
        [--out benchmarks/results/<date>-modes.md]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODES = ("soss", "nirspec-prism", "nirspec-g395h", "nircam-f322w2", "miri-lrs")


def _run(args: list, env=None) -> subprocess.CompletedProcess:
    from _common import child_env

    return subprocess.run([sys.executable, "-P", "-m", "tsocontainer.pipeline.cli", *args],
                          capture_output=True, text=True, env=child_env(env))


def _broken_priors(planet: Path, out: Path) -> Path:
    """planet.yaml with t0 fixed 0.3 transit durations away from the truth (a wrong ephemeris)."""
    import yaml

    from tsocontainer.sim.truth import load_truth

    pri = yaml.safe_load(planet.read_text())
    truth = load_truth(planet.parent)
    p = truth["params"]
    inc = np.radians(p["inc"])
    b = p["a_rs"] * np.cos(inc)
    dur = p["per"] / np.pi * np.arcsin(np.sqrt((1 + p["rp_rs_white"]) ** 2 - b**2)
                                       / (p["a_rs"] * np.sin(inc)))
    shift = float(0.3 * dur)
    t0 = pri["t0"]
    centre = t0.get("init", np.mean(next(iter(v for v in t0.values() if isinstance(v, list))))) \
        if isinstance(t0, dict) else t0
    pri["t0"] = float(centre) + shift   # fixed at a wrong ephemeris: a bare number is fixed
    out.write_text(yaml.safe_dump(pri))
    return out


def _summary(sim: Path, run: Path) -> dict:
    from tsocontainer.lightcurves.results import FitResult, TransmissionSpectrum
    from tsocontainer.sim.truth import recovery

    w = FitResult.read(run / "fit_white.json")
    s = TransmissionSpectrum.read(run / "transmission_spectrum.ecsv")
    rec = recovery(sim, w, s)
    pulls = rec["pulls"]
    return {"white_ppm": rec["depth"], "white_err": rec["err"], "injected": rec["injected"],
            "white_pull": rec["pull"], "pull_mean": float(np.mean(pulls)),
            "pull_std": float(np.std(pulls)), "white_suspect": bool(w.suspect),
            "channels_suspect": int(np.sum(s.suspect)), "nchan": len(s),
            "verdict": w.verdict}


def one(mode: str, seed: int, nint: int, tmp: Path) -> dict:
    """Simulate, run, run with broken priors; the numbers of both."""
    sim, run, bad = tmp / f"{mode}-{seed}", tmp / f"{mode}-{seed}-run", tmp / f"{mode}-{seed}-bad"
    t0 = time.perf_counter()
    p = _run(["-q", "simulate", "--mode", mode, "--nint", str(nint), "--nseg", "2", "--seed",
              str(seed), "--out", str(sim)])
    if p.returncode:
        return {"mode": mode, "seed": seed, "error": p.stderr.strip()[-300:]}
    files = sorted(str(f) for f in sim.glob("*rateints.fits"))
    t1 = time.perf_counter()
    p = _run(["-q", "run", *files, "--priors", str(sim / "planet.yaml"), "--out", str(run),
              "--no-plots", "--workers", "2"])
    row = {"mode": mode, "seed": seed, "nint": nint, "simulate_s": t1 - t0,
           "run_s": time.perf_counter() - t1, "exit": p.returncode,
           "last_line": p.stdout.strip().splitlines()[-1] if p.stdout.strip() else p.stderr[-300:]}
    if p.returncode == 0:
        row.update(_summary(sim, run))
    broken = _broken_priors(sim / "planet.yaml", tmp / f"{mode}-{seed}-broken.yaml")
    p = _run(["-q", "run", *files, "--priors", str(broken), "--out", str(bad), "--no-plots",
              "--workers", "2", "--recipe", _white_only(mode, tmp)])
    row["broken_exit"] = p.returncode
    row["broken_last_line"] = (p.stdout.strip().splitlines() or [p.stderr.strip()])[-1]
    if p.returncode == 0:
        from tsocontainer.lightcurves.results import FitResult

        row["broken_suspect"] = bool(FitResult.read(bad / "fit_white.json").suspect)
    for d in (run, bad):
        shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(sim, ignore_errors=True)
    return row


def _white_only(mode: str, tmp: Path) -> str:
    """The mode's recipe without the channel fits (the broken case needs the white fit only)."""
    from tsocontainer.pipeline.recipe import default_recipe

    r = default_recipe(mode)
    path = tmp / f"{mode}-white-only.yaml"
    r.steps = [(n, k) for n, k in r.steps if n != "fit_channels"]
    path.write_text(r.to_yaml())
    return str(path)


def table(rows: list) -> str:
    """Markdown table of the rows."""
    head = ("| mode | seed | white pull | channel pulls mean / std | suspect (white, channels) "
            "| broken run: white suspect | run time |\n|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if "white_pull" not in r:
            lines.append(f"| {r['mode']} | {r['seed']} | failed: {r.get('last_line', r.get('error'))} "
                         "| | | | |")
            continue
        broken = r.get("broken_suspect", f"exit {r['broken_exit']}: {r['broken_last_line'][:60]}")
        lines.append(f"| {r['mode']} | {r['seed']} | {r['white_pull']:+.2f} "
                     f"({r['white_ppm']:.0f} vs {r['injected']:.0f} ppm) | "
                     f"{r['pull_mean']:+.2f} / {r['pull_std']:.2f} | {r['white_suspect']}, "
                     f"{r['channels_suspect']}/{r['nchan']} | {broken} | {r['run_s']:.0f} s |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--nint", type=int, default=200)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-modes-"))
    rows = []
    try:
        for mode in args.modes.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                rows.append(one(mode, seed, args.nint, tmp))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = (f"# Modes as a user runs them ({dt.date.today()}, load {os.getloadavg()[0]:.1f})\n\n"
            + table(rows) + "\n")
    out = Path(args.out or Path(__file__).parent / "results" / f"{dt.date.today()}-modes.md")
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1, default=float))
    print(text)


if __name__ == "__main__":
    main()
