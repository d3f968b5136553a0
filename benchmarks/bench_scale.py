"""Scale benchmark (issue 18): a 1 GB SOSS visit to light curves, where the time and
memory go, streaming (memory-mapped) vs in memory, and a dask batch.

Sub-commands (each measurement in a fresh child process; the 1-minute load
average is recorded with every timing because the machine is shared)::

    python benchmarks/bench_scale.py simulate --nint 500 --out DIR   # 250 ints per segment
    python benchmarks/bench_scale.py steps DIR [--memmap MMDIR]      # per-step wall, CPU, peak RSS
    python benchmarks/bench_scale.py cli DIR --run RUNDIR [--memmap MMDIR] [--plots]
                                                                     # `tsocontainer run` end to end
    python benchmarks/bench_scale.py compare RUN_A RUN_B             # products equal?
    python benchmarks/bench_scale.py scaling --nints 500,1000,2500 [--tmp DIR] [--out JSON]
                                                                     # streaming vs in memory table

``steps`` runs the shipped SOSS recipe step by step without the fits (as the runner
does, products not written) and prints one row per step. ``cli`` runs the command
line in a child process under a memory sampler and splits its wall time into
interpreter start + imports, the runner's stages (from ``run.log``), state writes and
the rest. ``scaling`` simulates each visit straight to disk (segments of 250
integrations), runs ``cli`` in memory and streaming on it, then deletes it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import child_env, load1  # noqa: E402

GB = 1e9
SEG = 250   # integrations per simulated segment: a 256 x 2048 segment is 0.5 GB of SCI


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load1():.1f}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ simulate
def simulate(nint: int, out: str, seed: int = 0) -> dict:
    """SOSS visit of ``nint`` integrations, written segment by segment (250 per file)."""
    nseg = max(1, -(-nint // SEG))
    code = ("import json, sys; sys.path.insert(0, %r); from _common import simulate; "
            "print('RESULT ' + json.dumps(simulate('soss', %d, %d, %r, seed=%d)))"
            % (str(HERE), nint, nseg, out, seed))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                          env=child_env())
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1][7:])
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    return res


# ------------------------------------------------------------------ steps (in a child)
def steps_child(folder: str, memmap: str | None) -> dict:
    """The SOSS recipe without fits, step by step, under the benchmark's Monitor."""
    import glob

    from _common import Monitor, quiet, step_kind

    quiet()
    from tsocontainer.group import read_segments
    from tsocontainer.pipeline.recipe import load_recipe
    from tsocontainer.pipeline.runner import stage_of

    files = sorted(glob.glob(f"{folder}/*_rateints.fits"))
    rec = load_recipe("soss")
    mon = Monitor()
    kw = {"memmap": memmap} if memmap else {}
    g = mon.run("read", lambda: read_segments(files, progress=False, **kw))
    sci_bytes = int(g.sci.nbytes)
    sp = lc = None
    for name, kwargs in rec.steps:
        stage = stage_of(name)
        if stage == "state":
            mon.run(name, lambda: getattr(g, name)(**kwargs))
        elif name == "extract":
            sp = mon.run("extract " + kwargs.get("method", "box"), lambda: g.extract(**kwargs))
        elif name == "to_lightcurves":
            lc = mon.run(name, lambda: sp.to_lightcurves(**kwargs))
        elif stage == "lightcurves":
            mon.run(name, lambda: getattr(lc, name)(**kwargs))
    with tempfile.TemporaryDirectory(dir=memmap if memmap else None) as tmp:
        mon.run("write state.fits", lambda: g.write(Path(tmp) / "state.fits"))
    total = sum(r["seconds"] for r in mon.records if step_kind(r["step"]) != "fits"
                and r["step"] != "write state.fits")
    return {"steps": mon.records, "nint": int(g.N), "sci_bytes": sci_bytes,
            "to_lc_s": round(total, 2), "peak_rss": mon.overall_peak()}


def run_child(args: list) -> dict:
    proc = subprocess.run([sys.executable, __file__] + args, capture_output=True, text=True,
                          env=child_env())
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr or proc.stdout)[-2000:]}


def print_steps(res: dict) -> None:
    print(f"SOSS {res['nint']} integrations, SCI {res['sci_bytes'] / GB:.2f} GB")
    print(f"{'step':28s} {'wall s':>7s} {'CPU s':>6s} {'peak GB':>8s} {'peak/SCI':>8s} {'load':>5s}")
    for r in res["steps"]:
        print(f"{r['step']:28s} {r['seconds']:7.2f} {r['cpu_s']:6.1f} {r['peak_rss'] / GB:8.2f} "
              f"{r['peak_rss'] / res['sci_bytes']:8.2f} {r['load1']:5.1f}")
    print(f"{'read -> light curves':28s} {res['to_lc_s']:7.2f} {'':6s} {res['peak_rss'] / GB:8.2f} "
          f"{res['peak_rss'] / res['sci_bytes']:8.2f}")


# ------------------------------------------------------------------ the command line
class _PeakSampler:
    """Peak RSS of a process tree, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.05):
        import psutil

        self.proc, self.peak, self.interval = psutil.Process(pid), 0, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import psutil

        while not self._stop.wait(self.interval):
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                continue

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def cli(folder: str, run: str, memmap: str | None = None, plots: bool = False,
        extra: tuple = ()) -> dict:
    """``tsocontainer run`` (SOSS recipe without fits) timed from outside, split by stage."""
    from tsocontainer.pipeline.recipe import load_recipe

    rec = load_recipe("soss")
    steps = [{n: k} for n, k in rec.steps if not n.startswith("fit_")]
    recipe = Path(run).with_suffix(".recipe.yaml")
    import yaml

    recipe.write_text(yaml.safe_dump({"name": "soss-nofit", "mode": "soss", "steps": steps}))
    shutil.rmtree(run, ignore_errors=True)
    files = sorted(str(p) for p in Path(folder).glob("*_rateints.fits"))
    cmd = [sys.executable, "-P", "-m", "tsocontainer.pipeline.cli", "-q", "run", *files,
           "--recipe", str(recipe), "--out", run] + ([] if plots else ["--no-plots"])
    if memmap:
        cmd += ["--memmap", memmap]
    cmd += list(extra)
    ld = load1()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env())
    sampler = _PeakSampler(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    peak = sampler.stop()
    if proc.returncode:
        return {"error": err[-2000:], "wall_s": wall}
    stages = {}
    text = (Path(run) / "run.log").read_text()
    for m in re.finditer(r"STEP (\w+): done \(([\d.]+) s", text):
        stages[m.group(1)] = float(m.group(2))
    for m in re.finditer(r"STEP plots: wrote \d+ plot\(s\) and report.html \(([\d.]+) s\)", text):
        stages["plots"] = float(m.group(1))
    writes = [float(x) for x in re.findall(r"wrote state to .* \(([\d.]+) s\)", text)]
    sci = sum(_sci_bytes(f) for f in files)
    return {"wall_s": round(wall, 2), "peak_rss": peak, "sci_bytes": sci, "load1": ld,
            "load1_end": load1(), "stages": stages, "stage_sum_s": round(sum(stages.values()), 2),
            "state_writes_s": writes, "memmap": bool(memmap)}


def _sci_bytes(path) -> int:
    from astropy.io import fits

    h = fits.getheader(path, "SCI")
    return int(h["NAXIS1"] * h["NAXIS2"] * h["NAXIS3"] * 4)


def import_seconds() -> float:
    """Interpreter start plus the imports of a run (the CLI and the runner's stages)."""
    code = ("import tsocontainer.pipeline.cli, tsocontainer.pipeline.runner, "
            "tsocontainer.group, tsocontainer.spectra.extract, tsocontainer.lightcurves.container, "
            "astropy.io.fits, astropy.time, scipy.ndimage")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-P", "-c", code], check=True, env=child_env())
    return round(time.perf_counter() - t0, 2)


# ------------------------------------------------------------------ compare products
def compare(run_a: str, run_b: str) -> dict:
    """Largest differences between the products of two run directories.

    Every image extension of the two state files (flag planes, DQ, aux products:
    traces, shifts, corrections, replacement values; SCI and VAR unless stripped),
    the spectra and the light curves.
    """
    import numpy as np
    from astropy.io import fits
    from astropy.table import Table

    from tsocontainer.spectra.container import Spectra

    out = {"state": {}}
    fa, fb = (_state_file(run_a), _state_file(run_b))
    with fits.open(fa, memmap=False) as ha, fits.open(fb, memmap=False) as hb:
        na = [h.name for h in ha if h.name not in ("PRIMARY", "TIME", "STATE")]
        nb = [h.name for h in hb if h.name not in ("PRIMARY", "TIME", "STATE")]
        stripped = {"SCI", "VAR"} - (set(na) & set(nb))   # strip_state removed them
        out["extensions_same"] = sorted(set(na) - stripped) == sorted(set(nb) - stripped)
        for name in na:
            if name in nb:
                out["state"][name] = _maxdiff(np.asarray(ha[name].data), np.asarray(hb[name].data))
    out["flags_equal"] = all(v == "equal" for k, v in out["state"].items()
                             if k.startswith("FLAG_"))
    sa = Spectra.read(Path(run_a) / "spectra_x1dints.fits")
    sb = Spectra.read(Path(run_b) / "spectra_x1dints.fits")
    out["spectra"] = {f"order{o}": {"flux": _maxdiff(sa.flux[o], sb.flux[o]),
                                    "var": _maxdiff(sa.var[o], sb.var[o])} for o in sa.flux}
    ta = Table.read(Path(run_a) / "lightcurves.ecsv")
    tb = Table.read(Path(run_b) / "lightcurves.ecsv")
    out["lightcurves"] = {c: _maxdiff(np.asarray(ta[c]), np.asarray(tb[c])) for c in ta.colnames
                          if ta[c].dtype.kind == "f"}
    out["all_equal"] = out["extensions_same"] and all(
        v == "equal" for v in list(out["state"].values()) + list(out["lightcurves"].values())
        + [x for o in out["spectra"].values() for x in o.values()])
    return out


def _state_file(run) -> Path:
    light = Path(run) / "state-light.fits"
    return light if light.is_file() else Path(run) / "state.fits"


def strip_state(run) -> None:
    """Replace a run's state.fits by a copy without SCI and VAR (disk is shared)."""
    from astropy.io import fits

    src = Path(run) / "state.fits"
    with fits.open(src, memmap=False, lazy_load_hdus=True) as h:
        fits.HDUList([x for x in h if x.name not in ("SCI", "VAR")]).writeto(
            Path(run) / "state-light.fits", overwrite=True)
    src.unlink()


def _maxdiff(x, y):
    import numpy as np

    if x.shape != y.shape:
        return f"shapes {x.shape} vs {y.shape}"
    if x.dtype.kind not in "fc":
        return "equal" if np.array_equal(x, y) else f"{int(np.count_nonzero(x != y))} differ"
    x, y = x.astype(float), y.astype(float)
    same_nan = np.array_equal(np.isnan(x), np.isnan(y))
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return "equal" if same_nan else "NaN patterns differ"
    d = np.abs(x - y)[ok]
    rel = d / np.maximum(np.abs(x[ok]), 1e-30)
    if d.max() == 0 and same_nan:
        return "equal"
    return {"max_abs": float(d.max()), "max_rel": float(rel.max()), "nan_same": bool(same_nan)}


# ------------------------------------------------------------------ scaling
def scaling(nints, tmp_parent, modes=("memory", "memmap")) -> list:
    rows = []
    for n in nints:
        tmp = tempfile.mkdtemp(prefix=f"tsoc-scale-{n}-", dir=tmp_parent)
        try:
            log(f"simulate {n} integrations")
            sim = simulate(n, f"{tmp}/visit")
            for mode in modes:
                log(f"cli {n} {mode}")
                mm = f"{tmp}/mm" if mode == "memmap" else None
                if mm:
                    os.makedirs(mm, exist_ok=True)
                r = cli(f"{tmp}/visit", f"{tmp}/run-{mode}", memmap=mm)
                r.update(nint=n, mode=mode, simulate_s=sim["wall_s"])
                if "error" not in r:
                    strip_state(f"{tmp}/run-{mode}")
                rows.append(r)
                log(f"  {r.get('wall_s')} s, peak {r.get('peak_rss', 0) / GB:.2f} GB")
            if len(modes) == 2 and all("error" not in r for r in rows[-2:]):
                rows[-1]["compare"] = compare(f"{tmp}/run-memory", f"{tmp}/run-memmap")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows


def print_scaling(rows) -> None:
    print("| ints | SCI GB | mode | wall s | peak RSS GB | peak / SCI | stages (s) | products "
          "= in memory | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['nint']} | | {r['mode']} | error: {r['error'][-200:]} ||||")
            continue
        st = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
        same = ("" if "compare" not in r else
                "identical" if r["compare"]["all_equal"] else "DIFFER (see JSON)")
        print(f"| {r['nint']} | {r['sci_bytes'] / GB:.2f} | {r['mode']} | {r['wall_s']:.1f} | "
              f"{r['peak_rss'] / GB:.2f} | {r['peak_rss'] / r['sci_bytes']:.2f} | {st} | "
              f"{same} | {r['load1']:.1f}-{r['load1_end']:.1f} |")


# ------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("simulate")
    p.add_argument("--nint", type=int, default=500)
    p.add_argument("--out", required=True)
    p = sub.add_parser("steps")
    p.add_argument("folder")
    p.add_argument("--memmap", default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p = sub.add_parser("cli")
    p.add_argument("folder")
    p.add_argument("--run", required=True)
    p.add_argument("--memmap", default=None)
    p.add_argument("--plots", action="store_true")
    p = sub.add_parser("compare")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p = sub.add_parser("scaling")
    p.add_argument("--nints", default="500,1000,2500")
    p.add_argument("--tmp", default=None)
    p.add_argument("--out", default=None, help="JSON file for the rows")
    args = ap.parse_args(argv)
    if args.cmd == "simulate":
        print(json.dumps(simulate(args.nint, args.out)))
    elif args.cmd == "steps":
        if args.child:
            print("RESULT " + json.dumps(steps_child(args.folder, args.memmap), default=float))
            return 0
        res = run_child(["steps", args.folder, "--child"]
                        + (["--memmap", args.memmap] if args.memmap else []))
        if "error" in res:
            print(res["error"], file=sys.stderr)
            return 1
        print_steps(res)
    elif args.cmd == "cli":
        res = cli(args.folder, args.run, args.memmap, args.plots)
        res["imports_s"] = import_seconds()
        print(json.dumps(res, indent=1))
    elif args.cmd == "compare":
        print(json.dumps(compare(args.run_a, args.run_b), indent=1))
    elif args.cmd == "scaling":
        rows = scaling([int(x) for x in args.nints.split(",")], args.tmp)
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1, default=float) + "\n")
        print_scaling(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
