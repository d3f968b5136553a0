"""``tsocontainer demo``: simulate a visit, run the default recipe, compare with the truth.

The demo is the shortest honest answer to "does it work here?": it injects a
known transmission spectrum with the simulator, reduces the files with the
shipped recipe of the mode exactly as ``tsocontainer run`` would, and prints
what was recovered next to what was injected.
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DEMO_MODES", "DemoSummary", "run_demo", "summarize"]

log = logging.getLogger(__name__)

#: simulator mode -> (recipe, integrations, segments); small enough for ~1-2 minutes
DEMO_MODES = {
    "soss": ("soss", 100, 2),
    "nirspec-prism": ("nirspec-prism", 300, 2),
    "nirspec-g395h": ("nirspec-g395h", 300, 2),
    "nircam-f322w2": ("nircam-f322w2", 200, 2),
    "miri-lrs": ("miri-lrs", 300, 2),
}


@dataclass
class DemoSummary:
    """Injected versus recovered numbers of a demo run (all depths in ppm)."""

    mode: str
    nint: int
    injected_white_ppm: float
    recovered_white_ppm: float
    recovered_white_err_ppm: float
    white_rms_ppm: float
    white_limit_ppm: float
    channel_pulls: np.ndarray
    report: str
    seconds: float
    folder: str = ""
    bytes_written: int = 0
    kept: bool = True
    verdict: str = ""

    @property
    def white_pull(self) -> float:
        """(recovered - injected) / error of the white-light depth."""
        return (self.recovered_white_ppm - self.injected_white_ppm) / self.recovered_white_err_ppm

    def table(self) -> str:
        """The summary as a fixed-width text table."""
        pulls = self.channel_pulls[np.isfinite(self.channel_pulls)]
        rows = [
            ("white-light depth (ppm)", f"{self.injected_white_ppm:10.1f}",
             f"{self.recovered_white_ppm:10.1f} +/- {self.recovered_white_err_ppm:.1f}"
             f"  ({self.white_pull:+.2f} sigma)"),
            ("channel pulls (fit-truth)/err", f"{len(pulls):10d} ch",
             f"median {np.median(pulls):+.2f}, std {np.std(pulls):.2f}"),
            ("white-light scatter (ppm/int)", f"{self.white_limit_ppm:10.1f}",
             f"{self.white_rms_ppm:10.1f}  (x{self.white_rms_ppm / self.white_limit_ppm:.2f} of "
             "the photon+read limit)"),
        ]
        width = max(len(r[0]) for r in rows)
        lines = [f"tsocontainer demo: {self.mode}, {self.nint} simulated integrations, "
                 f"{self.seconds:.0f} s",
                 f"{'':{width}}   {'injected':>10}   recovered"]
        lines += [f"{a:{width}}   {b}   {c}" for a, b, c in rows]
        size = f"{self.bytes_written / 1e9:.2f} GB" if self.bytes_written >= 1e8 else \
            f"{self.bytes_written / 1e6:.0f} MB"
        if self.kept:
            lines.append(f"files: {size} in {self.folder} (simulated visit in sim/, products "
                         "in run/)")
        else:
            lines.append(f"files: {size} of simulated segments and products removed "
                         "(--out DIR keeps them)")
        if self.verdict:
            lines.append(self.verdict)
        lines.append(f"report: {self.report}")
        return "\n".join(lines)


def summarize(vis, res, seconds: float = 0.0) -> DemoSummary:
    """Compare the products of a run with the truth of the simulated visit.

    Parameters
    ----------
    vis : SimulatedVisit
        The simulated visit.
    res : RunResult
        The run on its files.
    seconds : float
        Wall time to report.

    Returns
    -------
    DemoSummary
    """
    from tsocontainer.sim.truth import binned_depth, noise_limit

    white = res.white
    lo, hi = white.wave_lo, white.wave_hi
    depth, err_lo, err_hi = white.depth_ppm
    injected = float(binned_depth(vis, [lo, hi * (1 + 1e-9)])[0])
    resid = white.flux / white.model_flux - 1.0
    width = res.spectra.meta.get("WIDTH1")
    aperture = None if width is None else 0.5 * float(width)
    limit = float(noise_limit(vis, [lo, hi * (1 + 1e-9)], aperture=aperture)[0])
    spec = res.spectrum
    truth = np.array([binned_depth(vis, [a, b])[0] for a, b in zip(spec.wave_lo, spec.wave_hi)])
    pulls = (np.asarray(spec.depth) - truth) / np.asarray(spec.err)
    return DemoSummary(mode=vis.truth["mode"], nint=int(vis.truth["nint"]),
                       injected_white_ppm=injected, recovered_white_ppm=float(depth),
                       recovered_white_err_ppm=float(0.5 * (err_lo + err_hi)),
                       white_rms_ppm=float(1e6 * np.std(resid)), white_limit_ppm=limit,
                       channel_pulls=pulls, report=str(Path(res.out) / "report.html"),
                       seconds=seconds)


def run_demo(mode: str = "soss", out=None, *, seed: int = 0, nint: int | None = None,
             workers: int = 2, progress: bool | None = None, keep: bool | None = None) -> DemoSummary:
    """Simulate a visit, run the mode's default recipe and compare with the truth.

    Parameters
    ----------
    mode : str
        Simulator mode: ``soss``, ``nirspec-prism``, ``nirspec-g395h``,
        ``nircam-f322w2`` or ``miri-lrs``.
    out : str or path-like, optional
        Folder for ``sim/`` and ``run/`` (default: a new temporary folder).
    seed : int
        Simulation seed.
    nint : int, optional
        Integrations (default: the mode's demo size in :data:`DEMO_MODES`).
    workers : int
        Processes for the channel fits.
    progress : bool, optional
        Progress bars (default: when on a terminal).
    keep : bool, optional
        Keep the simulated segments and run products (default: when ``out`` is given).
        Otherwise only ``report.html`` stays, in the temporary folder.

    Returns
    -------
    DemoSummary

    Raises
    ------
    ValueError
        For an unknown mode (lists the allowed ones).
    """
    from tsocontainer.pipeline.runner import run_recipe
    from tsocontainer.sim.truth import priors_from_truth
    from tsocontainer.sim.simulate import simulate_visit

    if mode not in DEMO_MODES:
        raise ValueError(f"unknown demo mode {mode!r}; allowed: {', '.join(DEMO_MODES)}")
    recipe, n_default, nseg = DEMO_MODES[mode]
    given = out is not None
    out = Path(out) if given else Path(tempfile.mkdtemp(prefix="tsocontainer-demo-"))
    keep = given if keep is None else keep
    t0 = time.perf_counter()
    vis = simulate_visit(mode, nint=nint or n_default, nseg=nseg, seed=seed, out=out / "sim",
                         progress=progress)
    log.info("demo: simulated %s in %.1f s", mode, time.perf_counter() - t0)
    res = run_recipe(vis.files, recipe, out=out / "run", priors=priors_from_truth(vis.truth),
                     workers=workers, force=True, progress=progress)
    from tsocontainer.pipeline.runner import verdict_line

    summary = summarize(vis, res, seconds=time.perf_counter() - t0)
    summary.verdict = verdict_line(res)[0]
    summary.folder = str(out)
    summary.bytes_written = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    summary.kept = keep
    if not summary.kept:   # 1-2 GB of segments: keep only the self-contained report
        import shutil

        report = out / "report.html"
        shutil.copyfile(res.out / "report.html", report)
        shutil.rmtree(out / "sim", ignore_errors=True)
        shutil.rmtree(out / "run", ignore_errors=True)
        summary.report = str(report)
    return summary
