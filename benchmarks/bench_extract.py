"""Speed of tracing and extraction on a full-size SOSS visit (issue 5).

Builds a 500 x 256 x 2048 SUBSTRIP256 visit in memory from the real SOSS
median frame shipped in ../shared/data (pastasoss demo, PWCPOS 245.7787) with
Poisson + read noise and sub-pixel y jitter, then times:

* the reference (visit-average) frames;
* ``fit_all_traces`` (orders 1 and 2, every integration);
* ``extract('box')`` and ``extract('optimal')`` of orders 1 and 2.

Targets on 2 cores: box < 10 s, optimal < 60 s, tracing < 20 s. The load of
the machine (other users) is printed with the numbers.

Usage::

    python benchmarks/bench_extract.py [--nint 500] [--block-size N]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "soss"
FRAME = "jw01512001001_03102_00001_nis_demo_pwcpos_245.778671.npy"


def build_visit(nint: int, seed: int = 0):
    """A SOSS group: real median frame, jitter by whole-frame interpolation, noise."""
    from tsocontainer.group import TSOGroup
    from tsocontainer.modes import Mode, get_mode

    frame = np.load(SHARED / FRAME).astype(np.float32)
    frame = np.nan_to_num(frame)
    frame[frame < 0] = 0
    rng = np.random.default_rng(seed)
    dy = rng.normal(0, 0.02, nint).astype(np.float32)
    grad = np.gradient(frame, axis=0)
    sci = np.empty((nint,) + frame.shape, np.float32)
    var = np.empty_like(sci)
    gain_time = 50.0  # effective electrons per DN/s for the noise level
    for i in range(nint):
        model = frame - dy[i] * grad
        var[i] = np.maximum(model, 0) / gain_time + 0.5**2
        sci[i] = model + rng.standard_normal(frame.shape, dtype=np.float32) * np.sqrt(var[i])
    mode = Mode(spec=get_mode("soss"), filter="CLEAR", pupil="GR700XD", detector="NIS",
                subarray="SUBSTRIP256")
    return TSOGroup(sci, var, mode=mode, meta={"PWCPOS": 245.778671, "BUNIT": "DN/s"}), dy


def timed(label, func):
    t0 = time.perf_counter()
    out = func()
    dt = time.perf_counter() - t0
    print(f"{label:<28s} {dt:7.2f} s")
    return out, dt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nint", type=int, default=500)
    parser.add_argument("--block-size", type=int, default=None)
    args = parser.parse_args(argv)
    if not (SHARED / FRAME).is_file():
        raise SystemExit(f"needs {SHARED / FRAME}")
    from tsocontainer.trace import reference_frames

    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()}")
    g, dy = build_visit(args.nint)
    print(f"visit: {g.shape}, {g.sci.nbytes / 2**30:.2f} GB per cube")
    _, t_ref = timed("reference frames", lambda: reference_frames(g, block_size=args.block_size,
                                                                    progress=False))
    _, t_trace = timed("fit_all_traces (1, 2)", lambda: g.fit_all_traces(
        orders=(1, 2), block_size=args.block_size, progress=False))
    err = g.aux["trace_order1"] - np.nanmedian(g.aux["trace_order1"], 0)
    rms_dy = np.std(np.nanmedian(err, 1) - (dy - dy.mean()))
    print(f"  y jitter recovered to {rms_dy:.4f} px rms")
    spec, t_box = timed("extract box (1, 2)", lambda: g.extract("box", orders=(1, 2),
                                                              block_size=args.block_size,
                                                              progress=False))
    _, t_opt = timed("extract optimal (1, 2)", lambda: g.extract("optimal", orders=(1, 2),
                                                                 block_size=args.block_size,
                                                                 progress=False))
    print(f"load average after: {os.getloadavg()}")
    print(f"targets: box {t_box:.1f} < 10 s: {t_box < 10}; optimal {t_opt:.1f} < 60 s: {t_opt < 60}; "
          f"tracing {t_trace:.1f} < 20 s: {t_trace < 20} (reference frames {t_ref:.1f} s, "
          "cached across steps)")


if __name__ == "__main__":
    main()
