"""Shared helpers of ``benchmarks/run.py`` and ``benchmarks/peers.py``.

* :class:`Monitor` times a step and measures its peak memory: the process's
  high-water mark (``VmHWM``, reset before every step through
  ``/proc/self/clear_refs``, so each step gets its own peak) plus a sampling
  thread for the RSS of child processes (the channel-fit workers).
* :func:`simulate` writes a simulated visit; :func:`run_pipeline` runs a
  recipe's steps one by one on its files (what ``tsocontainer.pipeline.runner.run_recipe``
  does, without writing the products) and records every step.
* :func:`precision` compares the products with the simulator's truth (through
  ``tsocontainer.pipeline.demo.summarize``) and :func:`white_metric` is the common
  white-light scatter used for the comparison with the peer pipelines.
* Every measurement runs in a fresh child process (``python _job.py JSON``,
  see :func:`job`) so that one step's memory does not leak into the next
  measurement; the child prints ``RESULT <json>`` as its last line.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def child_env(env: dict | None = None) -> dict:
    """Environment of a benchmark's child process: this checkout's package first.

    An editable install points at one checkout, and ``python -c`` / ``-m`` put the working
    directory first on ``sys.path``: with this ``PYTHONPATH`` and ``python -P`` (Python
    3.11: no working directory on the path) a benchmark started from another checkout (a
    git worktree) measures its own code.
    """
    base = dict(os.environ if env is None else env)
    base["PYTHONPATH"] = str(REPO) + os.pathsep + base.get("PYTHONPATH", "")
    base.setdefault("MPLBACKEND", "Agg")
    return base


# ------------------------------------------------------------------ memory and time
def _status_kb(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss_now() -> int:
    """Resident set size of this process (bytes)."""
    return _status_kb("VmRSS")


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def load1() -> float:
    return round(os.getloadavg()[0], 2)


class Monitor:
    """Time and peak memory of each step run through :meth:`run`.

    Parameters
    ----------
    interval : float
        Seconds between samples of the child processes' RSS (and of this
        process's RSS where VmHWM cannot be reset).
    """

    def __init__(self, interval: float = 0.05):
        import psutil

        self.interval = interval
        self.records: list[dict] = []
        self._proc = psutil.Process()
        self._psutil = psutil
        self.hwm_reset = reset_peak()

    def run(self, name: str, func, **extra):
        """Run ``func()`` as step ``name``; return its result and append a record."""
        rss0 = rss_now()
        self.hwm_reset = reset_peak()
        peak = {"self": rss0, "children": 0}
        stop = threading.Event()

        def sample():
            while not stop.wait(self.interval):
                try:
                    peak["self"] = max(peak["self"], self._proc.memory_info().rss)
                    kids = self._proc.children(recursive=True)
                    peak["children"] = max(peak["children"], sum(k.memory_info().rss for k in kids))
                except self._psutil.Error:
                    continue

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        ld = load1()
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            out = func()
        finally:
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            stop.set()
            thread.join()
        hwm = _status_kb("VmHWM") if self.hwm_reset else peak["self"]
        rec = dict(step=name, seconds=round(dt, 3), cpu_s=round(cpu, 2), load1=ld,
                   rss_before=rss0, peak_rss=max(hwm, rss0), children_peak_rss=peak["children"],
                   **extra)
        self.records.append(rec)
        logging.getLogger("bench").info("%-34s %8.2f s  peak %.2f GB  load %.1f", name, dt,
                                        rec["peak_rss"] / 1e9, ld)
        return out

    def overall_peak(self) -> int:
        """Largest peak RSS of this process over all steps (bytes)."""
        return max([r["peak_rss"] for r in self.records], default=0)


# ------------------------------------------------------------------ environment
def quiet() -> None:
    """No plots on screen, no warnings or INFO logs from the package in the output."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("bench").setLevel(logging.INFO)
    for name in ("tsocontainer", "stpipe", "jwst", "CRDS", "exotic_miri"):
        logging.getLogger(name).setLevel(logging.ERROR)


def job(spec: dict, timeout: float | None = None) -> dict:
    """Run one measurement in a fresh Python process; return its JSON result.

    ``spec["job"]`` names a function of this module (``simulate``, ``pipeline``)
    or ``peers.<function>``.
    """
    env = child_env(dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1"))
    proc = subprocess.run([sys.executable, str(HERE / "_job.py"), json.dumps(spec)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    sys.stderr.write(proc.stderr[-4000:] if proc.returncode else "")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout)[-3000:]
    return {"error": f"{spec['job']} exited {proc.returncode}: {tail.strip().splitlines()[-1:]}",
            "stderr_tail": tail}


# ------------------------------------------------------------------ simulated visits
def simulate(mode: str, nint: int, nseg: int, out: str, seed: int = 0, **options) -> dict:
    """Write a simulated visit (default noise and systematics); return files and sizes."""
    from tsocontainer.sim.simulate import simulate_visit

    t0 = time.perf_counter()
    vis = simulate_visit(mode, nint=nint, nseg=nseg, seed=seed, out=out, progress=False, **options)
    shape = vis.truth["instrument"]["shape"]
    return {"files": [str(f) for f in vis.files], "folder": str(out), "mode": mode, "nint": nint,
            "nseg": nseg, "shape": list(shape), "sci_bytes": int(nint * np.prod(shape) * 4),
            "file_bytes": int(sum(os.path.getsize(f) for f in vis.files)),
            "seconds": round(time.perf_counter() - t0, 2), "load1": load1()}


def load_visit(folder):
    """The :class:`SimulatedVisit` of a folder written by :func:`simulate`."""
    from tsocontainer.sim.truth import SimulatedVisit, load_truth

    truth = load_truth(folder)
    files = sorted(str(p) for p in Path(folder).glob("*_rateints.fits"))
    return SimulatedVisit(files=files, truth=truth, folder=str(folder))


# ------------------------------------------------------------------ the pipeline, step by step
TRACING = ("fit_all_traces", "measure_shifts", "detect_tilt_events")


def step_kind(name: str) -> str:
    """Group of a recipe step in the tables: read, cleaning, tracing, extraction, ..."""
    if name == "read":
        return "read"
    if name in TRACING:
        return "tracing"
    if name.startswith("extract"):
        return "extraction"
    if name in ("to_lightcurves", "normalize", "clip_outliers"):
        return "light curves"
    if name.startswith("fit_"):
        return "fits"
    return "cleaning"


def run_pipeline(files, recipe, *, priors=None, workers: int = 2, optimal: bool = False,
                 fits: bool = True, sampler=None, bins=None, extra_widths=(), monitor=None,
                 retry_bins=None, skip=()):
    """Run the steps of ``recipe`` on ``files`` one at a time, timing each one.

    Follows ``tsocontainer.pipeline.runner.run_recipe`` (TSOGroup steps, ``extract``,
    the light-curve steps, ``fit_white`` then ``fit_channels`` with the white
    fit, priors given to both) without writing products.

    Parameters
    ----------
    optimal : bool
        Also time an optimal extraction of the recipe's orders (its spectra
        are not used further: the recipe's extraction feeds the light curves).
    fits : bool
        Run the fit steps.
    sampler : dict, optional
        Sampler settings of the channel fits (``--quick`` caps their steps); the
        white-light fit always runs at the recipe's settings.
    bins : int, optional
        Channel count instead of the recipe's.
    extra_widths : sequence of float
        Extra box extractions at these widths (for the peer comparison).
    skip : sequence of str
        Recipe steps not to run (the profile skips ``fit_channels``).
    retry_bins : callable, optional
        When the light-curve or fit steps fail, they are run once more with
        the channel edges this returns (the error is kept in
        ``default_recipe_failed``).

    Returns
    -------
    dict
        ``group``, ``spectra``, ``lightcurves``, ``white``, ``channels``,
        ``spectrum``, ``extra`` (width -> Spectra) and ``monitor``.
    """
    from tsocontainer.group import read_segments
    from tsocontainer.pipeline.recipe import load_recipe
    from tsocontainer.pipeline.runner import stage_of

    rec = load_recipe(recipe)
    mon = monitor or Monitor()
    g = mon.run("read", lambda: read_segments(files, progress=False))
    out = {"group": g, "monitor": mon, "extra": {}, "spectra": None, "optimal": None,
           "default_recipe_failed": None, "lightcurves": None,
           "white": None, "channels": None, "spectrum": None, "sci_bytes": int(g.sci.nbytes),
           "nint": int(g.N)}
    later = []
    for name, kwargs in rec.steps:
        kwargs = dict(kwargs)
        stage = stage_of(name)
        if name in skip and stage in ("state", "spectra"):
            raise ValueError(f"cannot skip {name}: later steps need it")
        if stage == "state":
            mon.run(name, lambda: getattr(g, name)(**kwargs))
        elif name == "extract":
            label = f"extract {kwargs.get('method', 'box')}"
            out["spectra"] = mon.run(label, lambda: g.extract(**kwargs))
            if optimal:
                okw = {k: v for k, v in kwargs.items() if k in ("orders",)}
                out["optimal"] = mon.run("extract optimal", lambda: g.extract("optimal", **okw))
            for w in extra_widths:
                okw = {k: v for k, v in kwargs.items() if k in ("orders",)}
                out["extra"][float(w)] = mon.run(f"extract box width {w:g}", lambda: g.extract(
                    "box", width=float(w), **okw))
        elif name not in skip:
            later.append((name, kwargs))
    try:
        _light_curves_and_fits(out, later, mon, bins, fits, priors, workers, sampler)
    except Exception as e:  # noqa: BLE001 - reported, then retried once
        if retry_bins is None:
            raise
        edges = retry_bins()
        out["default_recipe_failed"] = {
            "error": f"{type(e).__name__}: {e}"[:300],
            "retry": f"channels limited to the lit columns ({edges[0]:.3f}-{edges[-1]:.3f} um)"}
        logging.getLogger("bench").warning("light curves/fits failed (%s); retry with %s",
                                           out["default_recipe_failed"]["error"],
                                           out["default_recipe_failed"]["retry"])
        _light_curves_and_fits(out, later, mon, list(edges), fits, priors, workers, sampler)
    return out


def _light_curves_and_fits(out, steps, mon, bins, fits, priors, workers, sampler) -> None:
    lc = None
    for name, kwargs in steps:
        kwargs = dict(kwargs)
        if name == "to_lightcurves":
            if bins is not None:
                kwargs["bins"] = bins
            lc = mon.run(name, lambda: out["spectra"].to_lightcurves(**kwargs))
            out["lightcurves"] = lc
        elif name in ("normalize", "clip_outliers"):
            mon.run(name, lambda: getattr(lc, name)(**kwargs))
        elif not fits:
            continue
        elif name == "fit_white":
            kwargs.setdefault("priors", priors)
            out["white"] = mon.run(name, lambda: lc.fit_white(**kwargs))
        elif name == "fit_channels":
            kwargs.setdefault("priors", priors)
            kwargs.setdefault("workers", workers)
            kwargs.setdefault("progress", False)
            if sampler:
                kwargs["sampler"] = dict(sampler)
            out["channels"] = mon.run(name, lambda: lc.fit_channels(white=out["white"], **kwargs))
            out["spectrum"] = out["channels"].spectrum


# ------------------------------------------------------------------ precision
def white_metric(wave, flux, vis, lo: float, hi: float, width: float) -> dict:
    """White-light scatter of any package's per-integration spectra, the same way for all.

    The white light curve is the sum of the pixels with ``lo <= wave <= hi``
    that are finite in every integration. It is regressed on the injected
    signal (the simulator's white transit light curve times its systematic
    flux factor, whose scale is free, so that a diluted depth costs nothing)
    and a quadratic in time; the scatter is the residual RMS relative to the
    mean flux, in ppm, next to the photon + read limit of an aperture of the
    same full ``width``.
    """
    from tsocontainer.sim.truth import noise_limit

    wave = np.asarray(wave, float)
    flux = np.asarray(flux, float)
    sel = np.isfinite(wave) & (wave >= lo) & (wave <= hi) & np.all(np.isfinite(flux), axis=0)
    white = flux[:, sel].sum(axis=1)
    sh = vis.truth_arrays()["SHIFTS"]
    model = np.asarray(sh["white_lc"], float) * np.asarray(sh["flux"], float)
    tau = np.linspace(-1, 1, white.size)
    basis = np.vstack([np.ones_like(tau), model - 1, tau, tau ** 2]).T
    coef, *_ = np.linalg.lstsq(basis, white, rcond=None)
    resid = white - basis @ coef
    rms = 1e6 * np.std(resid, ddof=basis.shape[1]) / np.mean(white)
    limit = float(noise_limit(vis, [lo, hi], aperture=0.5 * width)[0])
    return {"rms_ppm": round(float(rms), 2), "limit_ppm": round(limit, 2),
            "over_limit": round(float(rms / limit), 3), "pixels": int(sel.sum()),
            "width": float(width)}


def precision(vis, prod: dict) -> dict:
    """White-light and channel scatter against the photon + read limit; depth pulls."""
    from types import SimpleNamespace

    from tsocontainer.pipeline.demo import summarize
    from tsocontainer.sim.truth import noise_limit

    res = SimpleNamespace(white=prod["white"], spectra=prod["spectra"], spectrum=prod["spectrum"],
                          out=Path(vis.folder))
    s = summarize(vis, res)
    width = prod["spectra"].meta.get("WIDTH1")
    aperture = None if width is None else 0.5 * float(width)
    ratios = []
    for r in prod["channels"]:
        lo, hi = float(r.wave_lo), float(r.wave_hi)
        lim = float(noise_limit(vis, [lo, hi * (1 + 1e-9)], aperture=aperture)[0])
        rms = 1e6 * np.std(np.asarray(r.flux) / np.asarray(r.model_flux) - 1.0)
        ratios.append(rms / lim)
    pulls = np.asarray(s.channel_pulls, float)
    pulls = pulls[np.isfinite(pulls)]
    return {"white_rms_ppm": round(s.white_rms_ppm, 2), "white_limit_ppm": round(s.white_limit_ppm, 2),
            "white_over_limit": round(s.white_rms_ppm / s.white_limit_ppm, 3),
            "channel_over_limit_median": round(float(np.nanmedian(ratios)), 3),
            "channels": len(ratios), "pull_mean": round(float(np.mean(pulls)), 3),
            "pull_std": round(float(np.std(pulls, ddof=1)), 3) if pulls.size > 1 else None,
            "white_depth_ppm": round(s.recovered_white_ppm, 1),
            "white_depth_err_ppm": round(s.recovered_white_err_ppm, 1),
            "injected_white_ppm": round(s.injected_white_ppm, 1),
            "white_pull": round(s.white_pull, 2), "box_width": width,
            "white_wave": [float(prod["white"].wave_lo), float(prod["white"].wave_hi)]}


# ------------------------------------------------------------------ jobs (child processes)
def job_simulate(spec: dict) -> dict:
    return simulate(spec["mode"], spec["nint"], spec["nseg"], spec["out"], seed=spec.get("seed", 0),
                    **spec.get("options", {}))


def job_pipeline(spec: dict) -> dict:
    """Run a recipe on a simulated visit; steps, totals and (optionally) precision."""
    from tsocontainer.sim.truth import priors_from_truth

    vis = load_visit(spec["folder"])
    kw = dict(priors=priors_from_truth(vis.truth), workers=spec.get("workers", 2),
              optimal=spec.get("optimal", False), fits=spec.get("fits", True),
              sampler=spec.get("sampler"), extra_widths=spec.get("extra_widths", ()),
              skip=tuple(spec.get("skip", ())))
    retry = None
    if spec.get("precision"):
        def retry():
            return lit_edges(vis, spec.get("bins") or recipe_bins(spec["recipe"]))
    prod = run_pipeline(vis.files, spec["recipe"], bins=spec.get("bins"), retry_bins=retry, **kw)
    mon = prod["monitor"]
    out = {"steps": mon.records, "nint": prod["nint"], "sci_bytes": prod["sci_bytes"],
           "hwm_reset": mon.hwm_reset, "peak_rss": mon.overall_peak()}
    if prod.get("default_recipe_failed"):
        out["default_recipe_failed"] = prod["default_recipe_failed"]
    if spec.get("precision") and prod["channels"] is not None:
        out["precision"] = precision(vis, prod)
    if spec.get("white_for_peers"):
        lo, hi = (out.get("precision", {}).get("white_wave") or spec.get("white_wave")
                  or _lc_range(prod["lightcurves"]))
        comp = {}
        sp = prod["spectra"]
        o = sorted(sp.flux)[0]
        comp[str(float(sp.meta.get("WIDTH1", 0)))] = white_metric(
            sp.wave[o], sp.flux[o], vis, lo, hi, float(sp.meta.get("WIDTH1")))
        for w, spx in prod["extra"].items():
            comp[str(float(w))] = white_metric(spx.wave[o], spx.flux[o], vis, lo, hi, w)
        if prod["optimal"] is not None:
            op = prod["optimal"]
            width = float(min(prod["extra"]) if prod["extra"] else sp.meta.get("WIDTH1"))
            comp["optimal"] = white_metric(op.wave[o], op.flux[o], vis, lo, hi, width)
        out["white_common"] = comp
        out["white_wave"] = [lo, hi]
    return out


def recipe_bins(recipe) -> int:
    """Channel count of a recipe's ``to_lightcurves`` step (30 when not given)."""
    from tsocontainer.pipeline.recipe import load_recipe

    for name, kwargs in load_recipe(recipe).steps:
        if name == "to_lightcurves" and isinstance(kwargs.get("bins"), int):
            return kwargs["bins"]
    return 30


def lit_edges(vis, nbins: int) -> np.ndarray:
    """Equal channels over the wavelengths of the columns the star lights (> 1 % of the peak)."""
    a = vis.truth_arrays()
    axis = 0 if vis.truth["instrument"]["dispersion_axis"] == 1 else 1
    col = np.asarray(a["MODEL"][0], float).sum(axis=axis)
    wave = np.asarray(a["WAVE"][0], float)
    lit = np.isfinite(wave) & (col > 0.01 * col.max())
    return np.linspace(wave[lit].min(), wave[lit].max(), int(nbins) + 1)


def job_attribution(spec: dict) -> dict:
    """White-light scatter of the extracted spectra (vs the truth) after every cleaning step.

    Reads the visit, then after reading and after each TSOGroup step of the
    recipe extracts with the recipe's extraction and measures
    :func:`white_metric`: the step after which the scatter jumps is the one
    that adds the noise.
    """
    from tsocontainer.group import read_segments
    from tsocontainer.pipeline.recipe import load_recipe
    from tsocontainer.pipeline.runner import stage_of

    vis = load_visit(spec["folder"])
    lo, hi = spec["white_wave"]
    rec = load_recipe(spec["recipe"])
    ext = next((dict(kw) for n, kw in rec.steps if n == "extract"), {})
    g = read_segments(vis.files, progress=False)
    rows = []

    def measure(label):
        sp = g.extract(**ext)
        o = sorted(sp.flux)[0]
        m = white_metric(sp.wave[o], sp.flux[o], vis, lo, hi, float(sp.meta.get(f"WIDTH{o}")))
        rows.append({"after": label, "over_limit": m["over_limit"], "rms_ppm": m["rms_ppm"]})

    measure("read")
    for name, kwargs in rec.steps:
        if stage_of(name) != "state":
            break
        getattr(g, name)(**kwargs)
        if name not in ("detect_tilt_events",):
            measure(name)
    return {"rows": rows}


def _lc_range(lc) -> list:
    """Wavelength range covered by the channels of a LightCurves."""
    return [float(np.min(lc.wave_lo)), float(np.max(lc.wave_hi))]
