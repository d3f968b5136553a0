"""Run a recipe end to end into a run directory, resuming exactly where it stopped.

The recipe's steps fall into stages (each step's stage is declared in the registry),
each with its output files:

=============  ===========================================  ===========================
stage          recipe steps                                 output
=============  ===========================================  ===========================
state          reading + every TSOGroup step before extract ``state.fits``
spectra        ``extract``                                  ``spectra_x1dints.fits``,
                                                            ``state.fits`` (with it)
lightcurves    ``to_lightcurves``, ``normalize``,           ``lightcurves.ecsv``
               ``clip_outliers``
fit_white      ``fit_white``                                ``fit_white.json``
fit_channels   ``fit_channels``                             ``fit_channels.ecsv``,
                                                            ``transmission_spectrum.ecsv``
plots, report  (always)                                     ``plots/*.png``, ``report.html``
=============  ===========================================  ===========================

Everything a run can check is checked before any data is read: the recipe (names,
keyword types, stage order), the priors (read from their file, one-line errors with the
file and line), the worker count, the input files' headers. Resume uses the manifest
(:mod:`tsocontainer.pipeline.manifest`): a stage is skipped only when its inputs, its
recipe section and (for fits) the priors are unchanged and its outputs are exactly the
files it wrote; a changed recipe section reruns that stage and the ones after it. Fits
without a sampler seed get seed 1, so reruns give the same numbers. Every stage writes
one ``STEP <stage>: ...`` line to ``run.log``. Inputs are never written.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tsocontainer._util import write_text_atomic
from tsocontainer.errors import TSOReadError, TSOValueError
from tsocontainer.pipeline.manifest import Manifest, clean_stale_temporaries, digest
from tsocontainer.pipeline.recipe import Recipe, RecipeError, load_recipe

__all__ = ["run_recipe", "RunResult", "STAGES", "stage_of", "load_priors_file", "verdict_line"]

log = logging.getLogger(__name__)

#: stage name -> output files (relative to the run directory)
STAGES = {
    "ramps": ("rates.fits",),
    "state": ("state.fits",),
    "spectra": ("spectra_x1dints.fits", "state.fits"),
    "lightcurves": ("lightcurves.ecsv",),
    "fit_white": ("fit_white.json",),
    "fit_channels": ("fit_channels.ecsv", "transmission_spectrum.ecsv"),
}
_ORDER = list(STAGES)
#: sampler seed of run fits that give none (reruns reproduce the numbers)
DEFAULT_SEED = 1


def stage_of(step: str) -> str:
    """Stage a recipe step belongs to, from its registry entry.

    Examples
    --------
    >>> stage_of("detect_jumps"), stage_of("flag_dq"), stage_of("extract")
    ('ramps', 'state', 'spectra')
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
    inputs : list of str
        The input segment files (empty for a group given directly).
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
    inputs: list = field(default_factory=list)


def _split(recipe: Recipe) -> dict:
    """Steps of each stage (the recipe's stage order was checked when it was loaded)."""
    by_stage = {s: [] for s in _ORDER}
    for name, kwargs in recipe.steps:
        if name.startswith("jwst."):
            raise RecipeError(f"{recipe.source or recipe.name}: {name}: STScI steps run on "
                              "datamodels before reading; run them with "
                              "tsocontainer.pipeline.recipe.run_jwst_step and pass the outputs")
        by_stage[stage_of(name)].append((name, kwargs))
    return by_stage


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


# ------------------------------------------------------------ checks before work
def load_priors_file(priors):
    """Priors as a dict, read from a YAML file when a path is given; checked.

    Parameters
    ----------
    priors : dict, str, path-like or None
        A mapping, a YAML file, or YAML text.

    Returns
    -------
    dict or None

    Raises
    ------
    TSOReadError
        A path that does not exist or cannot be read (names it).
    TSOValueError
        Invalid YAML (file and line) or invalid priors (file and parameter).

    Examples
    --------
    >>> load_priors_file({"per": 4.05})
    {'per': 4.05}
    >>> load_priors_file("nope.yaml")
    Traceback (most recent call last):
    ...
    tsocontainer.errors.TSOReadError: nope.yaml: no such priors file
    """
    import yaml

    from tsocontainer.lightcurves.priors import parse_priors

    if priors is None:
        return None
    where = "priors"
    if isinstance(priors, (str, os.PathLike)):
        text, path = str(priors), Path(priors)
        looks_like_path = path.suffix.lower() in (".yaml", ".yml", ".json") or os.sep in text
        if path.is_file():
            where = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise TSOReadError(f"{path}: cannot read the priors file ({exc})", path=path) from None
        elif looks_like_path or "\n" not in text and ":" not in text:
            raise TSOReadError(f"{text}: no such priors file", path=text)
        try:
            priors = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise TSOValueError(f"{where}{line}: not valid YAML ({problem})", path=where) from None
    if not isinstance(priors, dict):
        raise TSOValueError(f"{where}: priors must be a mapping of parameter name to prior, got "
                            f"{type(priors).__name__}", path=None if where == "priors" else where)
    for name, value in priors.items():
        try:
            parse_priors({name: value})
        except (ValueError, TypeError) as exc:
            raise TSOValueError(f"{where}: prior of {name!r}: {exc}",
                                path=None if where == "priors" else where) from None
    return priors


def _check_workers(workers) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise TSOValueError(f"workers must be a whole number >= 1, got {workers!r}")
    return workers


def _first_mode(group_or_files):
    """Mode of the visit from the first segment's header (through the reader's checks)."""
    from tsocontainer.io.segments import find_segments, open_fits
    from tsocontainer.modes import detect_mode

    first = find_segments(group_or_files)[0]
    hdul = open_fits(first)
    try:
        return detect_mode(hdul[0].header, str(first))
    finally:
        hdul.close()


def _resolve_recipe(recipe, group_or_files):
    if recipe not in (None, "default"):
        return load_recipe(recipe)
    from tsocontainer.group.container import TSOGroup
    from tsocontainer.pipeline.recipe import default_recipe, recipe_name_of

    mode = group_or_files.mode if isinstance(group_or_files, TSOGroup) else \
        _first_mode(group_or_files)
    if mode is None:
        raise RecipeError("the group has no mode: name a recipe explicitly")
    return default_recipe(recipe_name_of(mode))


def _input_fingerprint(group_or_files) -> list:
    """What the state stage is made from: the input files (name, size, mtime) or the group."""
    from tsocontainer.group.container import TSOGroup

    if isinstance(group_or_files, TSOGroup):
        import hashlib

        g = group_or_files
        h = hashlib.sha256(g.sci.tobytes())
        h.update(g.var.tobytes())
        return ["group", h.hexdigest(), g.steps]
    from tsocontainer.io.segments import find_segments

    out = []
    for f in find_segments(group_or_files):
        st = os.stat(f)
        out.append([str(Path(f).resolve()), st.st_size, st.st_mtime_ns])
    return out


def _frame_rows(group_or_files) -> tuple:
    """``(where, SUBSTRT2 or None, rows, EXP_TYPE)`` of the group or the first input file."""
    from tsocontainer.group.container import TSOGroup

    if isinstance(group_or_files, TSOGroup):
        g = group_or_files
        return "the group", g.meta.get("SUBSTRT2"), g.sh[0], g.meta.get("EXP_TYPE")
    from astropy.io import fits

    from tsocontainer.io.segments import find_segments

    where = str(find_segments(group_or_files)[0])
    with fits.open(where) as hdul:
        h = hdul[0].header
        return where, h.get("SUBSTRT2"), int(hdul["SCI"].header["NAXIS2"]), h.get("EXP_TYPE")


def _check_read_window(group_or_files, read: dict, uncal: bool) -> None:
    """Refuse, before any work, a reading window the inputs cannot honour.

    Rates files are read in the window. A group, or the rates stage 1 makes from
    ramps, keep their frames: a window that would cut them is an error here, not a
    failure of a later step (the SOSS background model needs SUBSTRIP256's rows).
    """
    from tsocontainer.group.container import TSOGroup

    rows = read.get("detector_rows")
    if rows is None or not (uncal or isinstance(group_or_files, TSOGroup)):
        return
    where, start, ny, _ = _frame_rows(group_or_files)
    if start is None:      # frames that are not placed on the detector: nothing to check
        return
    start = int(start)
    if start < rows[0] or start + ny - 1 > rows[1]:
        raise TSOValueError(
            f"{where}: the recipe reads detector rows {rows[0]}-{rows[1]} (read: detector_rows) "
            f"but the frames hold rows {start}-{start + ny - 1}, and "
            f"{'stage 1 reads whole frames' if uncal else 'a group keeps its frames'}: crop the "
            f"{'rates' if uncal else 'group'} with read_segments(..., detector_rows=...) or use a "
            "recipe without the window")


def _check_soss_sky_rows(group_or_files, stages: dict, read: dict) -> None:
    """The shipped SOSS background model covers SUBSTRIP256's rows (1793-2048) only: a
    frame reaching outside them (a FULL frame read whole) would fail in ``estimate_sky``
    after the cleaning steps; say so before reading."""
    sky = [kw for name, kw in stages["state"] if name == "estimate_sky"]
    if not sky or sky[0].get("model") is not None or sky[0].get("method") not in (None, "model"):
        return
    where, start, ny, exp_type = _frame_rows(group_or_files)
    if exp_type != "NIS_SOSS" or start is None:
        return
    first, last = int(start), int(start) + ny - 1
    win = read.get("detector_rows")
    if win is not None:
        first, last = max(first, win[0]), min(last, win[1])
    if first < 1793 or last > 2048:
        raise TSOValueError(
            f"{where}: estimate_sky's SOSS background model covers detector rows 1793-2048 "
            f"(SUBSTRIP256) but the frames read hold rows {first}-{last}: add "
            "'read: {detector_rows: [1793, 2048]}' to the recipe (the shipped SOSS recipe has "
            "it) or give estimate_sky a model")


def _input_files(group_or_files) -> list:
    from tsocontainer.group.container import TSOGroup

    if isinstance(group_or_files, TSOGroup):
        return list(group_or_files.files)
    from tsocontainer.io.segments import find_segments

    return [str(Path(f).resolve()) for f in find_segments(group_or_files)]


def _write_run_info(out: Path, recipe, inputs) -> None:
    """``run.json``: what the report needs to describe the run (title, inputs, truth)."""
    import json

    info = {"recipe": recipe.name, "inputs": inputs}
    if inputs:
        from astropy.io import fits

        try:
            h = fits.getheader(inputs[0])
            info.update({k.lower(): h.get(k) for k in ("TARGNAME", "INSTRUME", "EXP_TYPE",
                                                       "FILTER", "GRATING", "PUPIL", "SUBARRAY",
                                                       "DATE-OBS", "PROGRAM")
                         if h.get(k) is not None})
        except OSError:
            pass
        truth = Path(inputs[0]).parent / "truth.json"
        if truth.is_file():
            info["truth"] = str(truth)
    write_text_atomic(out / "run.json", json.dumps(info, indent=1, default=str) + "\n")


def _with_fit_defaults(stages: dict, priors) -> None:
    """Recipe priors else ``priors``; a fixed sampler seed unless one is given."""
    for stage in ("fit_white", "fit_channels"):
        for i, (name, kwargs) in enumerate(stages[stage]):
            kwargs = dict(kwargs)
            if kwargs.get("priors") is None and priors is not None:
                kwargs["priors"] = priors
            elif kwargs.get("priors") is not None:
                kwargs["priors"] = load_priors_file(kwargs["priors"])
            sampler = dict(kwargs.get("sampler") or {})
            sampler.setdefault("seed", DEFAULT_SEED)
            kwargs["sampler"] = sampler
            stages[stage][i] = (name, kwargs)


def _is_uncal(group_or_files) -> bool:
    """True when the inputs are ramps (``*_uncal.fits``, 4D SCI) rather than rates."""
    from tsocontainer.group.container import TSOGroup

    if isinstance(group_or_files, TSOGroup):
        return False
    from tsocontainer.io.segments import find_segments

    first = find_segments(group_or_files)[0]
    if "_uncal" in Path(first).name:
        return True
    from astropy.io import fits

    try:
        return fits.getheader(first, "SCI").get("NAXIS") == 4
    except (OSError, KeyError):
        return False


def _stage1_steps(stages: dict, uncal: bool, rlog=None) -> None:
    """Ramps in: the recipe's stage-1 steps, or the default ones; rates in: none."""
    if uncal and not stages["ramps"]:
        from tsocontainer.ramps import DEFAULT_STAGE1

        stages["ramps"] = [(n, dict(k)) for n, k in DEFAULT_STAGE1]
    elif not uncal and stages["ramps"]:
        log.info("the inputs are rates: the recipe's %d stage-1 step(s) do not apply",
                 len(stages["ramps"]))
        stages["ramps"] = []


def _stage_keys(stages: dict, inputs, read=None) -> dict:
    keys, parent = {}, digest(inputs)
    for stage in _ORDER:
        if not stages[stage] and stage != "state":
            continue
        what = (stages[stage], read) if stage == "state" and read else stages[stage]
        keys[stage] = (digest(parent, stage, what), parent)
        parent = keys[stage][0]
    return keys


# ------------------------------------------------------------------ the run
def run_recipe(group_or_files, recipe="default", out=None, *, priors=None, force: bool = False,
               workers: int = 1, plots: bool = True, progress: bool | None = None,
               memmap=None, spill=True) -> RunResult:
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
        Re-run every stage.
    workers : int
        Processes for the channel fits (at most one per channel is used).
    plots : bool
        Write diagnostic plots and ``report.html``.
    progress : bool, optional
        Progress bars (default: when on a terminal).
    memmap : str, path-like or True, optional
        Streaming mode: the visit's cubes live in memory-mapped files in this
        folder (True: the temporary folder), see
        :func:`~tsocontainer.group.read_segments`. Same products; peak memory
        independent of the number of integrations.
    spill : bool, str or path-like
        Without ``memmap``: ``var``, the mask, flag planes and large products
        in unlinked memory-mapped files of this folder (True: the temporary
        folder), ``sci`` in memory; False: all in memory (see
        :func:`~tsocontainer.group.read_segments`). Same products.

    Returns
    -------
    RunResult

    Raises
    ------
    RecipeError
        Unknown steps or keywords, bad values, or stages out of order (before reading).
    TSOInputError
        Bad priors, workers or input files (before reading the data).
    """
    if out is None:
        raise TSOValueError("run_recipe needs an output directory (out=...)")
    workers = _check_workers(workers)
    priors = load_priors_file(priors)
    recipe = _resolve_recipe(recipe, group_or_files)
    stages = _split(recipe)
    uncal = _is_uncal(group_or_files)
    _stage1_steps(stages, uncal)
    _check_read_window(group_or_files, recipe.read, uncal)
    _check_soss_sky_rows(group_or_files, stages, recipe.read)
    _with_fit_defaults(stages, priors)
    if stages["fit_white"] and stages["fit_white"][0][1].get("priors") is None:
        raise RecipeError("fit_white needs priors for the orbit (t0, per, a_rs, inc or b): give "
                          "them in the recipe or with priors=... (--priors FILE)")
    keys = _stage_keys(stages, _input_fingerprint(group_or_files), recipe.read)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    removed = clean_stale_temporaries(out)
    write_text_atomic(out / "recipe.yaml", recipe.to_yaml())
    res = RunResult(out=out, inputs=_input_files(group_or_files))
    _write_run_info(out, recipe, res.inputs)
    with _RunLog(out / "run.log") as rlog:
        rlog.step("run", f"start recipe {recipe.name} ({len(recipe.steps)} steps), force={force}")
        if removed:
            rlog.step("run", f"removed {len(removed)} temporary file(s) of an interrupted run")
        ctx = _Context(group_or_files, out, rlog, force, res, progress, keys)
        ctx.memmap, ctx.spill, ctx.read = memmap, spill, dict(recipe.read)
        for stage in _ORDER:
            if stage in keys:
                run = getattr(ctx, "stage1" if stage == "ramps" else stage)
                run(stages[stage], workers) if stage == "fit_channels" else run(stages[stage])
        if plots:
            _plots(res, out, rlog)
        rlog.step("run", "finished")
    return res


def _plots(res, out: Path, rlog) -> None:
    from tsocontainer.pipeline.report import build_report
    from tsocontainer.pipeline.runplots import write_plots

    t0 = time.perf_counter()
    n = write_plots(res, out / "plots")
    build_report(out)
    rlog.step("plots", f"wrote {n} plot(s) and report.html ({time.perf_counter() - t0:.1f} s)")


class _Context:
    """State shared by the stages of one run."""

    def __init__(self, source, out, rlog, force, res, progress, keys):
        self.source, self.out, self.rlog = source, out, rlog
        self.force, self.res, self.progress, self.keys = force, res, progress, keys
        self.manifest = Manifest(out)
        #: seconds of a state stage whose state.fits the spectra stage writes (None: none)
        self.deferred_state = None
        #: streaming folder for read_segments (None: in memory)
        self.memmap = None
        #: spill folder for read_segments (in memory: var, mask, flags on disk)
        self.spill = True
        #: the recipe's reading options (``detector_rows``)
        self.read = {}

    def _skip(self, stage: str) -> bool:
        key = self.keys[stage][0]
        if not self.force and self.manifest.done(stage, key):
            self.rlog.step(stage, "skipped (inputs, recipe and outputs unchanged)")
            self.res.skipped.append(stage)
            return True
        later = _ORDER[_ORDER.index(stage):]
        self.manifest.forget_from(later)
        self.rlog.step(stage, "started")
        return False

    def _staging(self) -> Path:
        folder = self.out / f".staging-{os.getpid()}"
        folder.mkdir(exist_ok=True)
        return folder

    def _commit(self, stage: str, staged: dict, t0: float) -> None:
        key, parent = self.keys[stage]
        self.manifest.commit(stage, key, parent, staged)
        shutil.rmtree(self.out / f".staging-{os.getpid()}", ignore_errors=True)
        self.rlog.step(stage, f"done ({time.perf_counter() - t0:.1f} s)")
        self.res.ran.append(stage)

    def group(self):
        """The group: from the run (state stage) or read back from state.fits."""
        if self.res.group is None:
            from tsocontainer.group.container import TSOGroup

            self.res.group = TSOGroup.read(self.out / "state.fits")
        return self.res.group

    def stage1(self, steps) -> None:
        """Ramps to rates (``rates.fits``, a TSOGroup state), the input of the state stage."""
        if self._skip("ramps"):
            return
        t0 = time.perf_counter()
        from tsocontainer.ramps import run_stage1

        g = run_stage1(self.source, steps)
        path = self._staging() / "rates.fits"
        g.write(path, overwrite=True)
        self._commit("ramps", {"rates.fits": path}, t0)

    def state(self, steps) -> None:
        if self._skip("state"):
            return
        t0 = time.perf_counter()
        from tsocontainer.group import read_segments
        from tsocontainer.group.container import TSOGroup

        src = self.source
        if "ramps" in self.keys:
            g = TSOGroup.read(self.out / "rates.fits")
        elif isinstance(src, TSOGroup):
            g = src.copy()
        else:
            g = read_segments(src, progress=self.progress, memmap=self.memmap,
                              detector_rows=self.read.get("detector_rows"), spill=self.spill)
        if self.progress is not None:   # the run's setting, for every step of the group
            g.progress = self.progress
        for name, kwargs in steps:
            log.info("step %s %s", name, kwargs)
            getattr(g, name)(**kwargs)
        self.res.group = g
        if "spectra" in self.keys:   # state.fits is written once, with the extraction
            self.deferred_state = time.perf_counter() - t0
            return
        path = self._staging() / "state.fits"
        g.write(path, overwrite=True)
        self._commit("state", {"state.fits": path}, t0)

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
        stage = self._staging()
        self.res.spectra.write_x1dints(stage / "spectra_x1dints.fits", overwrite=True)
        g.write(stage / "state.fits", overwrite=True)   # the state now holds the extraction
        if self.deferred_state is not None:
            # the state stage ran in this run: its output is this same state.fits (a
            # second copy of sci and var would cost seconds per GB). Both stages are
            # recorded by the one manifest write of the commit below; a kill before it
            # reruns both.
            key, parent = self.keys["state"]
            self.manifest.record("state", key, parent, {"state.fits": stage / "state.fits"})
            self.rlog.step("state", f"done ({self.deferred_state:.1f} s, state.fits written "
                                    "with the spectra stage)")
            self.res.ran.append("state")
            self.deferred_state = None
        self._commit("spectra", {"spectra_x1dints.fits": stage / "spectra_x1dints.fits",
                                 "state.fits": stage / "state.fits"}, t0)

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
        path = self._staging() / "lightcurves.ecsv"
        lc.write(path, overwrite=True)
        self.res.lightcurves = lc
        self._commit("lightcurves", {"lightcurves.ecsv": path}, t0)

    def fit_white(self, steps) -> None:
        from tsocontainer.lightcurves.results import FitResult

        if self._skip("fit_white"):
            self.res.white = FitResult.read(self.out / "fit_white.json")
            self.res.lightcurves.fit_result = self.res.white
            return
        t0 = time.perf_counter()
        (name, kwargs), = steps
        self.res.white = self.res.lightcurves.fit_white(**kwargs)
        path = self._staging() / "fit_white.json"
        self.res.white.write(path, overwrite=True)
        self._commit("fit_white", {"fit_white.json": path}, t0)

    def fit_channels(self, steps, workers: int) -> None:
        from tsocontainer.lightcurves.results import TransmissionSpectrum

        if self._skip("fit_channels"):
            self.res.spectrum = TransmissionSpectrum.read(self.out / "transmission_spectrum.ecsv")
            return
        t0 = time.perf_counter()
        (name, kwargs), = steps
        kwargs = dict(kwargs)
        nchan = getattr(self.res.lightcurves, "nchan", workers)
        kwargs.setdefault("workers", max(1, min(workers, nchan, os.cpu_count() or 1)))
        kwargs.setdefault("progress", self.progress)
        cf = self.res.lightcurves.fit_channels(white=self.res.white, **kwargs)
        self.res.channels = cf
        self.res.spectrum = cf.spectrum
        stage = self._staging()
        cf.write(stage / "fit_channels.ecsv", overwrite=True)
        self.res.spectrum.write(stage / "transmission_spectrum.ecsv", overwrite=True)
        self._commit("fit_channels", {"fit_channels.ecsv": stage / "fit_channels.ecsv",
                                      "transmission_spectrum.ecsv":
                                          stage / "transmission_spectrum.ecsv"}, t0)


def verdict_line(res) -> tuple[str, bool]:
    """The run's last line: the fit verdicts (white light, channels), and whether any is suspect.

    Parameters
    ----------
    res : RunResult
        A finished run.

    Returns
    -------
    line : str
        ``"fits: white ok; channels ok"`` or the SUSPECT reasons ('' without fits).
    suspect : bool
    """
    parts, bad = [], False
    if res.white is not None:
        parts.append(f"white {res.white.verdict}")
        bad |= bool(res.white.suspect)
    if res.channels is not None:
        parts.append(f"channels {res.channels.verdict}")
        bad |= bool(res.channels.suspect.any())
    elif res.spectrum is not None and getattr(res.spectrum, "suspect", None) is not None:
        n = int(sum(bool(x) for x in res.spectrum.suspect))
        parts.append("channels ok" if not n else f"channels SUSPECT: {n} channel(s)")
        bad |= n > 0
    return ("fits: " + "; ".join(parts)) if parts else "", bad
