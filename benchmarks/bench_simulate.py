"""Benchmark: simulate a full SOSS visit (500 integrations, 2 segments, 256x2048).

Acceptance (issue 3): < 3 minutes and peak memory < 3 GB on 2 cores.

Run::

    python benchmarks/bench_simulate.py [--nint 500] [--nseg 2] [--mode soss] [--out DIR]

Prints wall time, CPU time, peak resident memory (``ru_maxrss`` of this
process, which includes the interpreter and all imports) and the file sizes,
and exits 1 when a limit is exceeded. The output folder is a temporary one
(deleted) unless ``--out`` is given.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def main(argv=None) -> int:
    """Run the benchmark; return 0 when within the limits."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="soss")
    ap.add_argument("--nint", type=int, default=500)
    ap.add_argument("--nseg", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="keep the files here")
    ap.add_argument("--max-seconds", type=float, default=180.0)
    ap.add_argument("--max-gb", type=float, default=3.0)
    args = ap.parse_args(argv)

    t0, c0 = time.perf_counter(), time.process_time()
    from tsocontainer.sim.simulate import simulate_visit

    base = _rss_mb()
    out = args.out or tempfile.mkdtemp(prefix="bench-simulate-")
    try:
        vis = simulate_visit(args.mode, nint=args.nint, nseg=args.nseg, seed=args.seed, out=out)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        sizes = [os.path.getsize(f) / 2 ** 30 for f in vis.files]
        print(f"mode={args.mode} nint={args.nint} nseg={args.nseg} shape="
              f"{vis.truth['instrument']['shape']}")
        print(f"wall time      {wall:8.1f} s   (limit {args.max_seconds:.0f} s)")
        print(f"cpu time       {cpu:8.1f} s")
        print(f"peak RSS       {peak_gb:8.2f} GB  (limit {args.max_gb:.1f} GB; after imports "
              f"{base / 1024:.2f} GB)")
        print(f"files          {len(sizes)} x {sizes[0]:.2f} GB")
        print(f"white-light depth {vis.truth['white_light_depth_ppm']:.1f} ppm, "
              f"limit {vis.truth['white_light_limit_ppm']:.1f} ppm per integration")
        ok = wall < args.max_seconds and peak_gb < args.max_gb
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
