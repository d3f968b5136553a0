"""Speed of tracing and extraction on a full-size SOSS visit (issue 5).

Builds a 500 x 256 x 2048 SUBSTRIP256 visit in memory from the real SOSS
median frame shipped in ../shared/data (pastasoss demo, PWCPOS 245.7787) with
Poisson + read noise and sub-pixel y jitter, then times:

* the reference (visit-average) frames;
* ``fit_all_traces`` (orders 1 and 2, every integration);
* ``extract('box')`` and ``extract('optimal')`` of orders 1 and 2.

Targets on 2 cores: box < 10 s, optimal < 60 s, tracing < 20 s. The load of
the machine (other users) is printed with the numbers.

With ``--accuracy`` it instead measures the issue-5 acceptance numbers on
simulated visits (``tsocontainer.sim.simulate``; several seeds): box and optimal
white-light scatter on moving traces (PRISM, NIRCam, SOSS with the default
systematics) and their 20-channel error honesty, trace and y-shift
errors against the truth on realistic noisy visits (all noise sources and
systematics on; raw and after the cleaning steps), the noiseless full-aperture
box flux, error honesty and the optimal/box S/N on Poisson + read noise visits.

Usage::

    python benchmarks/bench_extract.py [--nint 500] [--block-size N]
    python benchmarks/bench_extract.py --accuracy [--seeds 3]
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
    from tsocontainer.group.container import TSOGroup
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


# ------------------------------------------------------------------ accuracy
CLEAN = dict(noise={"one_over_f": 0, "cosmic_rays": 0, "bad_pixels": False}, contaminants=0,
             systematics=False)
COLUMNS = {"soss": None, "nirspec-prism": None, "nircam-f322w2": (300, 1800), "miri-lrs": None}


def _simulate(folder, mode, **kw):
    from astropy.io import fits

    from tsocontainer.group import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    vis = simulate_visit(mode, out=folder, **kw)
    with fits.open(f"{folder}/truth.fits") as hdul:
        arrays = {h.name: np.array(h.data) for h in hdul[1:] if h.data is not None}
    return read_segments(vis.files, progress=False), arrays


def _no_background(g, arrays):
    from tsocontainer.group.container import TSOGroup

    out = TSOGroup(g.sci - arrays["BACKGROUND"][None].astype(np.float32), g.var, g.dqs, g.time,
                   mode=g.mode, meta=dict(g.meta), files=list(g.files))
    out.progress = g.progress
    return out


def _trace_errors(g, arrays):
    out = {}
    axis = g.mode.spec.dispersion_axis
    for k, o in enumerate(sorted(g.traces)[: arrays["TRACE"].shape[0]]):
        err = g.traces[o] - arrays["TRACE"][k]
        ok = np.isfinite(arrays["TRACE"][k]) & np.isfinite(err)
        flux = arrays["MODEL"][k].sum(axis=0 if axis == 1 else 1)
        lit = ok & (flux > 0.02 * flux.max())[None]
        out[o] = (np.sqrt(np.mean(err[ok] ** 2)), np.sqrt(np.mean(err[lit] ** 2)))
    dy = arrays["SHIFTS"]["dy"]
    sy = g.regressors["shift_y"]
    return out, float(np.std((sy - np.median(sy)) - (dy - np.median(dy))))


def _accuracy_traces(tmp, seeds):
    print("\n# traces and y shifts, realistic noisy visits (30 integrations, all noise and "
          "systematics on); rms px: all columns / lit columns")
    for mode in COLUMNS:
        for seed in range(seeds):
            g, arrays = _simulate(f"{tmp}/{mode}-{seed}", mode, nint=30, seed=seed + 1,
                                  columns=COLUMNS[mode])
            for label in ("raw", "cleaned"):
                h = g.copy().flag_dq()
                if label == "cleaned":
                    h.flag_time_outliers().estimate_sky().correct_one_over_f()
                h.fit_all_traces().measure_shifts()
                errs, dy = _trace_errors(h, arrays)
                parts = "  ".join(f"o{o} {a:.4f}/{b:.4f}" for o, (a, b) in errs.items())
                print(f"{mode:14s} seed {seed + 1} {label:8s} {parts}  dy {dy:.4f}")


def _accuracy_extraction(tmp):
    print("\n# noiseless full-aperture box: max |flux / injected - 1| over lit columns")
    for mode, cols in (("nircam-f322w2", (800, 1056)), ("nirspec-prism", None), ("miri-lrs", None),
                       ("soss", (1000, 1256))):
        opts = dict(CLEAN, background=0, **({"orders": (1,)} if mode == "soss" else {}))
        g, arrays = _simulate(f"{tmp}/nl-{mode}", mode, nint=6, columns=cols, noiseless=True, **opts)
        g = g.copy().flag_dq()
        g.fit_all_traces(orders=1)
        axis = g.mode.spec.dispersion_axis
        model = arrays["MODEL"][0]
        extent = np.flatnonzero((model > 0).any(axis=1 if axis == 1 else 0))
        c = np.nanmedian(arrays["TRACE"][0])
        spec = g.extract("box", width=2 * max(c - extent[0], extent[-1] - c) + 3, orders=1)
        inj = arrays["LIGHTCURVE"][0] * model.sum(axis=0 if axis == 1 else 1)[None]
        lit = inj > 1e-3 * inj.max()
        print(f"{mode:14s} {np.max(np.abs(spec.flux[1][lit] / inj[lit] - 1)):.2e}")
    print("\n# Poisson + read noise visits (60 integrations, background subtracted): "
          "median scatter/error, optimal/box S/N")
    for mode, cols, order in (("nirspec-prism", None, 1), ("nircam-f322w2", (800, 1056), 1),
                              ("miri-lrs", None, 1), ("soss", (0, 700), 2),
                              ("soss", (1000, 1512), 1)):
        opts = dict(CLEAN, **({"orders": (order,)} if mode == "soss" else {}))
        g, arrays = _simulate(f"{tmp}/pr-{mode}-{order}-{cols}", mode, nint=60, seed=5,
                              columns=cols, **opts)
        g = _no_background(g, arrays).flag_dq()
        g.fit_all_traces(orders=order)
        rel = arrays["LIGHTCURVE"][0]
        oot = np.flatnonzero(np.all(rel >= rel.max(0) - 1e-9, axis=1))
        res = {}
        for method in ("box", "optimal"):
            sp = g.extract(method, orders=order)
            f, v = sp.flux[order][oot], sp.var[order][oot]
            res[method] = (np.median(f, 0), np.std(f, 0, ddof=1), np.sqrt(np.median(v, 0)))
        (fb, sb, pb), (fo, so, po) = res["box"], res["optimal"]
        lit = fb > 5 * pb
        wave = sp.wave[order]
        red = lit & (wave >= np.percentile(wave[lit], 75))
        print(f"{mode:14s} o{order} honesty box {np.median((sb / pb)[lit]):.3f} optimal "
              f"{np.median((so / po)[lit]):.3f}; predicted S/N gain min {np.min(((fo / po) / (fb / pb))[lit]):.3f}"
              f" median {np.median(((fo / po) / (fb / pb))[lit]):.3f}; measured gain red end "
              f"{np.median(((fo / so) / (fb / sb))[red]):.3f}")


#: moving-trace visits: mode -> (integrations, column crop)
MOVING = {"nirspec-prism": (300, None), "nircam-f322w2": (300, None), "soss": (200, (512, 1536))}


def _white_oot_rms(spec, n_oot: int = 60) -> float:
    """White light (good columns of order 1), first and last ``n_oot`` integrations, quadratic
    detrend in time: rms (ppm)."""
    f = spec.flux[1][:, spec.mask[1].all(0)].sum(1)
    oot = np.r_[0:n_oot, f.size - n_oot:f.size]
    t = np.arange(f.size, dtype=float)[oot]
    return float(1e6 * np.std(f[oot] / np.polyval(np.polyfit(t, f[oot], 2), t) - 1))


def _channel_honesty(spec, n_oot: int = 60, nchan: int = 20):
    """Scatter / predicted error of ``nchan`` channels (OOT, quadratic detrend)."""
    f, v = spec.flux[1], spec.var[1]
    cols = np.flatnonzero(spec.mask[1].all(0) & (np.median(f, 0) > 5 * np.sqrt(np.median(v, 0))))
    oot = np.r_[0:n_oot, f.shape[0] - n_oot:f.shape[0]]
    t = np.arange(f.shape[0], dtype=float)[oot]
    out = []
    for ch in np.array_split(cols, nchan):
        lc, err = f[oot][:, ch].sum(1), np.sqrt(np.median(v[oot][:, ch].sum(1)))
        out.append(np.std(lc - np.polyval(np.polyfit(t, lc, 2), t), ddof=3) / err)
    return np.array(out)


def _accuracy_moving(tmp):
    from tsocontainer.group import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    print("\n# moving traces (default noise and systematics; flag_dq, time outliers, masked-median "
          "1/f, traces, bad pixels): white-light OOT rms (ppm)")
    for mode, (nint, cols) in MOVING.items():
        vis = simulate_visit(mode, nint=nint, nseg=2, seed=0, out=f"{tmp}/mv-{mode}", columns=cols)
        g = read_segments(vis.files, progress=False)
        g.flag_dq(bits=["DO_NOT_USE"]).flag_time_outliers().correct_one_over_f(method="masked-median")
        g.fit_all_traces().replace_bad_pixels()
        box, opt = (_white_oot_rms(g.extract(m, orders=1)) for m in ("box", "optimal"))
        print(f"{mode:14s} box {box:6.0f} optimal {opt:6.0f} (x{opt / box:.3f}); photon + read "
              f"limit {float(vis.noise_limit()[0]):.0f}")
    print("\n# Poisson + read noise only (no systematics), background from the truth: 20 channels, "
          "median [range] of OOT scatter / predicted error")
    for mode, (nint, cols) in MOVING.items():
        opts = dict(CLEAN, **({"orders": (1,)} if mode == "soss" else {}))
        g, arrays = _simulate(f"{tmp}/hon-{mode}", mode, nint=nint, columns=cols, **opts)
        g = _no_background(g, arrays).flag_dq()
        g.fit_all_traces(orders=1)
        parts = []
        for m in ("box", "optimal"):
            r = _channel_honesty(g.extract(m, orders=1))
            parts.append(f"{m} {np.median(r):.3f} [{r.min():.2f}-{r.max():.2f}]")
        print(f"{mode:14s} " + "  ".join(parts))


def accuracy(seeds: int = 3) -> None:
    """Print the issue-5 acceptance numbers measured on simulated visits."""
    import tempfile
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)
    with tempfile.TemporaryDirectory(prefix="tsoc-acc-") as tmp:
        _accuracy_moving(tmp)
        _accuracy_extraction(tmp)
        _accuracy_traces(tmp, seeds)


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
    parser.add_argument("--accuracy", action="store_true", help="acceptance numbers instead of speed")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.accuracy:
        return accuracy(args.seeds)
    if not (SHARED / FRAME).is_file():
        raise SystemExit(f"needs {SHARED / FRAME}")
    from tsocontainer.spectra.blocks import reference_frames

    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()}")
    g, dy = build_visit(args.nint)
    print(f"visit: {g.shape}, {g.sci.nbytes / 2**30:.2f} GB per cube")
    g.block_size, g.progress = args.block_size, False
    _, t_ref = timed("reference frames", lambda: reference_frames(g.as_source()))
    _, t_trace = timed("fit_all_traces (1, 2)", lambda: g.fit_all_traces(orders=(1, 2)))
    err = g.aux["trace_order1"] - np.nanmedian(g.aux["trace_order1"], 0)
    rms_dy = np.std(np.nanmedian(err, 1) - (dy - dy.mean()))
    print(f"  y jitter recovered to {rms_dy:.4f} px rms")
    spec, t_box = timed("extract box (1, 2)", lambda: g.extract("box", orders=(1, 2)))
    _, t_opt = timed("extract optimal (1, 2)", lambda: g.extract("optimal", orders=(1, 2)))
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"load average after: {os.getloadavg()}; peak memory {peak:.2f} GB "
          f"(the visit itself: {2 * g.sci.nbytes / 2**30:.2f} GB for sci + var)")
    print(f"targets: box {t_box:.1f} < 10 s: {t_box < 10}; optimal {t_opt:.1f} < 60 s: {t_opt < 60}; "
          f"tracing {t_trace:.1f} < 20 s: {t_trace < 20} (reference frames {t_ref:.1f} s, "
          "cached across steps)")


if __name__ == "__main__":
    main()
