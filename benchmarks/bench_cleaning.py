"""Benchmark: all cleaning steps on a 500 x 256 x 2048 SOSS-like visit.

Goal (issue 4): all cleaning steps together < 30 s on 2 cores.

The visit is synthetic (built here in a few seconds, not timed): a curved
Gaussian trace at the nominal SOSS order-1 position, the shipped stepped
background, Poisson + read noise, 1/f column offsets, cosmic rays and hot
pixels. ``--sim`` uses ``tsocontainer.sim.simulate.simulate_visit`` instead (slower
to build). Prints the time of every step, the total and the peak memory.

Usage::

    python benchmarks/bench_cleaning.py [--nint 500] [--nx 2048] [--sim]
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np


def synthetic_visit(nint: int, nx: int, seed: int = 0):
    from tsocontainer import TSOGroup
    from tsocontainer.cleaning.background import soss_background_model
    from tsocontainer.modes import MODES, Mode

    mode = Mode(spec=MODES["soss"], subarray="SUBSTRIP256")
    ny = 256
    rng = np.random.default_rng(seed)
    yc = mode.trace_guess(1)[:nx]
    y = np.arange(ny, dtype=np.float32)[:, None]
    star = (3000 * np.exp(-0.5 * ((y - yc[None]) / 4.0) ** 2)).astype(np.float32)
    sky = soss_background_model("SUBSTRIP256", (ny, 2048))[:, :nx]
    frame = star + sky
    sci = np.empty((nint, ny, nx), np.float32)
    var = np.empty((nint, ny, nx), np.float32)
    lc = np.where(np.abs(np.arange(nint) - nint / 2) < nint / 6, 0.97, 1.0).astype(np.float32)
    for i in range(nint):  # building the input only
        var[i] = lc[i] * frame + 25.0
        sci[i] = lc[i] * frame + rng.standard_normal((ny, nx), np.float32) * np.sqrt(var[i])
        sci[i] += rng.normal(0, 3, nx).astype(np.float32)[None]       # 1/f offsets per column
    ncr = nint * 200
    ci, cy, cx = rng.integers(0, nint, ncr), rng.integers(0, ny, ncr), rng.integers(0, nx, ncr)
    sci[ci, cy, cx] += rng.uniform(50, 2000, ncr).astype(np.float32)
    hy, hx = rng.integers(0, ny, 300), rng.integers(0, nx, 300)
    sci[:, hy, hx] += 500
    g = TSOGroup(sci, var, mode=mode)
    return g


def simulated_visit(nint: int):
    from tsocontainer import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    out = f"/tmp/bench_cleaning_sim_{nint}"
    sim = simulate_visit("soss", nint, nseg=2, seed=1, out=out)
    return read_segments(sim.files)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nint", type=int, default=500)
    parser.add_argument("--nx", type=int, default=2048)
    parser.add_argument("--sim", action="store_true", help="use the simulator")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    g = simulated_visit(args.nint) if args.sim else synthetic_visit(args.nint, args.nx)
    print(f"visit {g.shape} built in {time.perf_counter() - t0:.1f} s; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rng = np.random.default_rng(1)
    f277 = rng.normal(3, 0.3, g.sh)
    f277[40:44, 300:304] += 100
    steps = [
        ("flag_dq", lambda: g.flag_dq()),
        ("flag_hot_cold_pixels", lambda: g.flag_hot_cold_pixels()),
        ("flag_time_outliers", lambda: g.flag_time_outliers(window=5, nsigma=5)),
        ("flag_2d_outliers", lambda: g.flag_2d_outliers()),
        ("flag_percentile_outliers", lambda: g.flag_percentile_outliers()),
        ("flag_from_profile", lambda: g.flag_from_profile()),
        ("flag_trace_outliers", lambda: g.flag_trace_outliers()),
        ("make_order0_mask", lambda: g.make_order0_mask(f277)),
        ("estimate_sky(model)", lambda: g.estimate_sky(method="model")),
        ("correct_one_over_f(scale-achromatic)",
         lambda: g.correct_one_over_f(method="scale-achromatic")),
        ("replace_bad_pixels(spatial)", lambda: g.replace_bad_pixels()),
        ("working data (g.data)", lambda: g.data),
    ]
    total = cleaning = 0.0
    cpu0 = time.process_time()
    for name, func in steps:
        t = time.perf_counter()
        func()
        dt = time.perf_counter() - t
        total += dt
        cleaning += dt if not name.startswith("working data") else 0.0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
        print(f"{name:40s} {dt:7.2f} s   peak RSS so far {peak:.2f} GB")
    cpu = time.process_time() - cpu0
    print(f"{'cleaning steps':40s} {cleaning:7.2f} s   (goal < 30 s)")
    print(f"{'total with the working data':40s} {total:7.2f} s   CPU {cpu:.1f} s; "
          f"load average {os.getloadavg()[0]:.2f}; input {g.sci.nbytes / 1e9:.2f} GB float32")
    return cleaning


if __name__ == "__main__":
    main()
