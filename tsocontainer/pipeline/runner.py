"""Run a recipe end to end into a run directory, resuming where it stopped.

The recipe's steps fall into stages, each with its output file:

=============  ===========================================  ===========================
stage          recipe steps                                 output
=============  ===========================================  ===========================
state          reading + every TSOGroup step before extract ``state.fits``
spectra        ``extract``                                  ``spectra_x1dints.fits``
lightcurves    ``to_lightcurves``, ``normalize``,           ``lightcurves.ecsv``
               ``clip_outliers``
fit_white      ``fit_white``                                ``fit_white.json``
fit_channels   ``fit_channels``                             ``fit_channels.ecsv``,
                                                            ``transmission_spectrum.ecsv``
plots, report  (always)                                     ``plots/*.png``, ``report.html``
=============  ===========================================  ===========================

A stage whose outputs exist is skipped (its products are read back) unless
``force`` is given, so an interrupted run resumes. Every stage writes one
``STEP <stage>: ...`` line to ``run.log``. Inputs are never written; outputs
are written atomically by the products' own ``write`` methods.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from tsocontainer.pipeline.recipe import Recipe, RecipeError, load_recipe

__all__ = ["run_recipe", "RunResult", "STAGES", "stage_of"]

log = logging.getLogger(__name__)

#: stage name -> output files (relative to the run directory)
STAGES = {
    "state": ("state.fits",),
    "spectra": ("spectra_x1dints.fits",),
    "lightcurves": ("lightcurves.ecsv",),
    "fit_white": ("fit_white.json",),
    "fit_channels": ("fit_channels.ecsv", "transmission_spectrum.ecsv"),
}
_ORDER = list(STAGES)


def stage_of(step: str) -> str:
    """Stage a recipe step belongs to, from its registry entry.

    Examples
    --------
    >>> stage_of("flag_dq"), stage_of("extract"), stage_of("fit_channels")
    ('state', 'spectra', 'fit_channels')
    """
    from tsocontainer.pipeline.recipe import registered_steps

    if step.startswith("jwst."):
        return "state"
    return registered_steps()[step].stage


@dataclass
class RunResult:
    """What a run produced.

    Attributes
    ----------
    out : Path
        Run directory.
    group : TSOGroup or None
        The group (None when its stage was skipped and not needed).
    spectra, lightcurves, white, channels, spectrum
        Products of the later stages (None when not part of the recipe).
    ran, skipped : list of str
        Stages run and stages resumed from existing outputs.
    """

    out: Path
    group: object = None
    spectra: object = None
    lightcurves: object = None
    white: object = None
    channels: object = None
    spectrum: object = None
    ran: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


def _split(recipe: Recipe) -> dict:
    """Steps of each stage, checking that stages come in order."""
    by_stage = {s: [] for s in _ORDER}
    last = 0
    for i, (name, kwargs) in enumerate(recipe.steps, start=1):
        stage = stage_of(name)
        pos = _ORDER.index(stage)
        if pos < last:
            raise RecipeError(f"{recipe.source or recipe.name}: step {i} {name!r} ({stage} stage) comes "
                              f"after a {_ORDER[last]} step; stages run in the order {', '.join(_ORDER)}")
        last = pos
        by_stage[stage].append((name, kwargs))
    return by_stage


def _done(out: Path, stage: str) -> bool:
    return all((out / f).is_file() for f in STAGES[stage])


class _RunLog:
    """Attach a file handler for run.log and write STEP lines."""

    def __init__(self, path: Path):
        self.handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.handler.setLevel(logging.INFO)
        self.logger = logging.getLogger("tsocontainer")
        self.old_level = self.logger.level

    def __enter__(self):
        self.logger.addHandler(self.handler)
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)
        return self

    def step(self, stage: str, what: str) -> None:
        self.handler.stream.write(f"STEP {stage}: {what}\n")
        self.handler.flush()

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.old_level)
        self.handler.close()


def _resolve_recipe(recipe, group_or_files):
    if recipe not in (None, "default"):
        return load_recipe(recipe)
    from tsocontainer.group.container import TSOGroup
    from tsocontainer.pipeline.recipe import default_recipe

    if isinstance(group_or_files, TSOGroup):
        key = group_or_files.mode.key if group_or_files.mode is not None else None
    else:
        from astropy.io import fits

        from tsocontainer.io.segments import find_segments
        from tsocontainer.modes import detect_mode

        first = find_segments(group_or_files)[0]
        key = detect_mode(fits.getheader(first), str(first)).key
    if key is None:
        raise RecipeError("the group has no mode: name a recipe explicitly")
    return default_recipe(key)


def run_recipe(group_or_files, recipe="default", out=None, *, priors=None, force: bool = False,
               workers: int = 1, plots: bool = True, progress: bool | None = None) -> RunResult:
    """Run ``recipe`` on a visit and write every product into ``out``.

    Parameters
    ----------
    group_or_files : TSOGroup, str, path-like or sequence
        A group, or segment files / a glob for :func:`~tsocontainer.group.read_segments`.
    recipe : str, path-like, dict or Recipe
        ``"default"`` (the shipped recipe of the visit's mode), a shipped
        recipe name, a YAML file, or a recipe object. Validated before any
        data is read.
    out : str or path-like
        Run directory (created).
    priors : dict, str or path-like, optional
        Fit priors (see :mod:`tsocontainer.lightcurves.priors`) used by ``fit_white``
        and ``fit_channels`` when the recipe gives none; the orbit has no
        default, so a recipe with fits needs them from one or the other.
    force : bool
        Re-run stages whose outputs exist.
    workers : int
        Processes for the channel fits.
    plots : bool
        Write diagnostic plots and ``report.html``.
    progress : bool, optional
        Progress bars (default: when on a terminal).

    Returns
    -------
    RunResult

    Raises
    ------
    RecipeError
        Unknown steps or keywords, or stages out of order (before reading).
    """
    if out is None:
        raise ValueError("run_recipe needs an output directory (out=...)")
    recipe = _resolve_recipe(recipe, group_or_files)
    stages = _split(recipe)
    for stage in ("fit_white", "fit_channels"):
        for i, (name, kwargs) in enumerate(stages[stage]):
            if kwargs.get("priors") is None and priors is not None:
                stages[stage][i] = (name, dict(kwargs, priors=priors))
    if stages["fit_white"] and stages["fit_white"][0][1].get("priors") is None:
        raise RecipeError("fit_white needs priors for the orbit (t0, per, a_rs, inc or b): give "
                          "them in the recipe or with priors=... (--priors FILE)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "recipe.yaml", recipe.to_yaml())
    res = RunResult(out=out)
    with _RunLog(out / "run.log") as rlog:
        rlog.step("run", f"start recipe {recipe.name} ({len(recipe.steps)} steps), force={force}")
        ctx = _Context(group_or_files, out, rlog, force, res, progress)
        ctx.state(stages["state"])
        if stages["spectra"]:
            ctx.spectra(stages["spectra"])
        if stages["lightcurves"]:
            ctx.lightcurves(stages["lightcurves"])
        if stages["fit_white"]:
            ctx.fit_white(stages["fit_white"])
        if stages["fit_channels"]:
            ctx.fit_channels(stages["fit_channels"], workers)
        if plots:
            from tsocontainer.pipeline.runplots import write_plots

            t0 = time.perf_counter()
            n = write_plots(res, out / "plots")
            from tsocontainer.pipeline.report import build_report

            build_report(out)
            rlog.step("plots", f"wrote {n} plot(s) and report.html ({time.perf_counter() - t0:.1f} s)")
        rlog.step("run", "finished")
    return res


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class _Context:
    """State shared by the stages of one run."""

    def __init__(self, source, out, rlog, force, res, progress):
        self.source, self.out, self.rlog = source, out, rlog
        self.force, self.res, self.progress = force, res, progress

    def _skip(self, stage: str) -> bool:
        if not self.force and _done(self.out, stage):
            self.rlog.step(stage, "skipped (outputs exist)")
            self.res.skipped.append(stage)
            return True
        self.rlog.step(stage, "started")
        return False

    def _ran(self, stage: str, t0: float) -> None:
        self.rlog.step(stage, f"done ({time.perf_counter() - t0:.1f} s)")
        self.res.ran.append(stage)

    def group(self):
        """The group: from the run (state stage) or read back from state.fits."""
        if self.res.group is None:
            from tsocontainer.group.container import TSOGroup

            self.res.group = TSOGroup.read(self.out / "state.fits")
        return self.res.group

    def state(self, steps) -> None:
        if self._skip("state"):
            return
        t0 = time.perf_counter()
        from tsocontainer.group.container import TSOGroup
        from tsocontainer.group import read_segments

        src = self.source
        g = src.copy() if isinstance(src, TSOGroup) else read_segments(src, progress=self.progress)
        if self.progress is not None:   # the run's setting, for every step of the group
            g.progress = self.progress
        for name, kwargs in steps:
            if name.startswith("jwst."):
                raise RecipeError(f"{name}: STScI steps run on datamodels before reading; "
                                  "run them with tsocontainer.pipeline.recipe.run_jwst_step and pass the outputs")
            log.info("step %s %s", name, kwargs)
            getattr(g, name)(**kwargs)
        g.write(self.out / "state.fits", overwrite=True)
        self.res.group = g
        self._ran("state", t0)

    def spectra(self, steps) -> None:
        from tsocontainer.spectra.container import Spectra

        if self._skip("spectra"):
            self.res.spectra = Spectra.read(self.out / "spectra_x1dints.fits")
            return
        t0 = time.perf_counter()
        g = self.group()
        (name, kwargs), = steps
        g.extract(**kwargs)
        self.res.spectra = g.spectra
        self.res.spectra.write_x1dints(self.out / "spectra_x1dints.fits", overwrite=True)
        g.write(self.out / "state.fits", overwrite=True)  # the state now holds the extraction
        self._ran("spectra", t0)

    def lightcurves(self, steps) -> None:
        from tsocontainer.lightcurves.container import LightCurves

        if self._skip("lightcurves"):
            self.res.lightcurves = LightCurves.read(self.out / "lightcurves.ecsv")
            return
        t0 = time.perf_counter()
        lc = None
        for name, kwargs in steps:
            if name == "to_lightcurves":
                lc = self.res.spectra.to_lightcurves(**kwargs)
            else:
                if lc is None:
                    raise RecipeError(f"{name} needs to_lightcurves before it in the recipe")
                getattr(lc, name)(**kwargs)
        lc.write(self.out / "lightcurves.ecsv", overwrite=True)
        self.res.lightcurves = lc
        self._ran("lightcurves", t0)

    def fit_white(self, steps) -> None:
        from tsocontainer.lightcurves.results import FitResult

        if self._skip("fit_white"):
            self.res.white = FitResult.read(self.out / "fit_white.json")
            self.res.lightcurves.fit_result = self.res.white
            return
        t0 = time.perf_counter()
        (name, kwargs), = steps
        self.res.white = self.res.lightcurves.fit_white(**kwargs)
        self.res.white.write(self.out / "fit_white.json", overwrite=True)
        self._ran("fit_white", t0)

    def fit_channels(self, steps, workers: int) -> None:
        from tsocontainer.lightcurves.results import TransmissionSpectrum

        if self._skip("fit_channels"):
            self.res.spectrum = TransmissionSpectrum.read(self.out / "transmission_spectrum.ecsv")
            return
        t0 = time.perf_counter()
        (name, kwargs), = steps
        kwargs = dict(kwargs)
        kwargs.setdefault("workers", workers)
        kwargs.setdefault("progress", self.progress)
        cf = self.res.lightcurves.fit_channels(white=self.res.white, **kwargs)
        self.res.channels = cf
        cf.write(self.out / "fit_channels.ecsv", overwrite=True)
        self.res.spectrum = cf.spectrum
        self.res.spectrum.write(self.out / "transmission_spectrum.ecsv", overwrite=True)
        self._ran("fit_channels", t0)

