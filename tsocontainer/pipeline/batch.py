"""Batches of visits: one run directory per visit, the visits run as dask tasks.

A batch file (YAML) names the visits and, for all of them or per visit, the recipe,
the priors and the options of :func:`~tsocontainer.pipeline.runner.run_recipe`::

    out: runs                 # parent of the run directories (default: <batch stem>-runs)
    recipe: default           # for every visit unless it names its own
    priors: planet.yaml
    workers: 1                # channel-fit processes inside each visit
    visits:
      - name: visit1          # run directory out/visit1 (default: the first file's stem)
        files: visit1/*_rateints.fits
      - files: [v2/seg001_rateints.fits, v2/seg002_rateints.fits]
        recipe: my_soss.yaml

Relative paths are relative to the batch file. Everything is checked before any visit
runs (the file, the visits' files, names, recipes, priors), as for one run. Each visit
is one call of ``run_recipe`` into its own folder, so a batch is resumable exactly as a
run is: rerunning it skips the stages whose inputs, recipe and outputs are unchanged.
The visits run as tasks of a dask.distributed cluster (a ``LocalCluster`` on this
machine, or an existing scheduler by address), or one after the other (``serial``);
the products are the same either way.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from tsocontainer._util import write_text_atomic
from tsocontainer.errors import TSOReadError, TSOValueError

__all__ = ["Batch", "load_batch", "run_batch", "connect"]

log = logging.getLogger(__name__)

_KEYS = {"out", "recipe", "priors", "workers", "memmap", "plots", "visits"}
_VISIT_KEYS = {"name", "files", "recipe", "priors", "workers", "memmap"}


@dataclass
class Batch:
    """Visits of a batch, checked, with absolute paths.

    Attributes
    ----------
    out : Path
        Parent folder of the run directories.
    visits : list of dict
        Per visit: ``name``, ``files`` (list of str), ``recipe``, ``priors``,
        ``workers``, ``memmap``.
    source : str
        The batch file.
    """

    out: Path
    visits: list = field(default_factory=list)
    source: str = ""


def _abs(base: Path, value):
    if isinstance(value, str) and value and not Path(value).is_absolute():
        return str(base / value)
    return value


def _recipe_ref(base: Path, recipe):
    """A recipe file relative to the batch file, else the name or mapping as given."""
    if isinstance(recipe, str) and recipe.endswith((".yaml", ".yml")):
        return _abs(base, recipe)
    return recipe


def load_batch(path) -> Batch:
    """Read and check a batch file (see the module docstring for its layout).

    Parameters
    ----------
    path : str or path-like
        The YAML file.

    Returns
    -------
    Batch

    Raises
    ------
    TSOReadError
        The file is missing or unreadable, or a visit's files do not exist.
    TSOValueError
        Invalid YAML, unknown keys, no visits, repeated names, a bad recipe or bad
        priors (each message names the file and the visit).

    Examples
    --------
    >>> load_batch("nope.yaml")
    Traceback (most recent call last):
    ...
    tsocontainer.errors.TSOReadError: nope.yaml: no such batch file
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise TSOReadError(f"{path}: no such batch file", path=path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TSOReadError(f"{path}: cannot read the batch file ({exc})", path=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise TSOValueError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})",
                            path=path) from None
    if not isinstance(doc, dict) or not doc.get("visits"):
        raise TSOValueError(f"{path}: a batch file needs a 'visits' list", path=path)
    unknown = set(doc) - _KEYS
    if unknown:
        raise TSOValueError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}",
                            path=path)
    base = p.resolve().parent
    out = Path(_abs(base, doc.get("out") or f"{p.stem}-runs"))
    visits = [_visit(p, base, doc, k, v) for k, v in enumerate(doc["visits"])]
    names = [v["name"] for v in visits]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TSOValueError(f"{path}: repeated visit name(s) {dup}: give each visit a 'name'",
                            path=path)
    return Batch(out=out, visits=visits, source=str(p))


def _visit(path, base, doc, k, v) -> dict:
    from tsocontainer.io.segments import find_segments
    from tsocontainer.pipeline.recipe import load_recipe
    from tsocontainer.pipeline.runner import load_priors_file

    where = f"{path}: visit {k + 1}"
    if isinstance(v, (str, list)):
        v = {"files": v}
    if not isinstance(v, dict) or "files" not in v:
        raise TSOValueError(f"{where}: needs 'files' (a glob or a list of segment files)",
                            path=path)
    unknown = set(v) - _VISIT_KEYS
    if unknown:
        raise TSOValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: "
                            f"{sorted(_VISIT_KEYS)}", path=path)
    files = v["files"] if isinstance(v["files"], list) else [v["files"]]
    files = [_abs(base, str(f)) for f in files]
    try:
        found = [str(f) for f in find_segments(files if len(files) > 1 else files[0])]
    except (OSError, ValueError) as exc:
        raise TSOReadError(f"{where}: {exc}", path=path) from None
    name = str(v.get("name") or Path(found[0]).name.split("_rateints")[0].split(".fits")[0])
    recipe = _recipe_ref(base, v.get("recipe", doc.get("recipe", "default")))
    priors = _abs(base, v.get("priors", doc.get("priors")))
    try:
        if recipe not in (None, "default"):
            load_recipe(recipe)   # checked now, before any visit runs
        load_priors_file(priors)
    except (OSError, ValueError) as exc:
        raise TSOValueError(f"{where} ({name}): {exc}", path=path) from None
    memmap = v.get("memmap", doc.get("memmap"))
    return {"name": name, "files": found, "recipe": recipe, "priors": priors,
            "workers": int(v.get("workers", doc.get("workers", 1))),
            "memmap": _abs(base, memmap) if isinstance(memmap, str) else memmap,
            "plots": bool(doc.get("plots", True))}


def connect(scheduler=None, n_workers: int = 2, timeout: float = 3.0):
    """A dask.distributed client: to ``scheduler`` (an address) or a new LocalCluster.

    Parameters
    ----------
    scheduler : str, optional
        Scheduler address (``tcp://host:port``); None starts a LocalCluster of
        ``n_workers`` single-threaded worker processes on this machine.
    n_workers : int
        Workers of the LocalCluster.
    timeout : float
        Seconds to wait for the scheduler.

    Returns
    -------
    distributed.Client

    Raises
    ------
    TSOValueError
        dask.distributed is not installed, or no scheduler answers at the
        address within ``timeout`` seconds.

    Examples
    --------
    >>> connect("tcp://127.0.0.1:9")          # doctest: +SKIP
    Traceback (most recent call last):
    ...
    tsocontainer.errors.TSOValueError: scheduler tcp://127.0.0.1:9: no dask scheduler answered ...
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise TSOValueError("dask.distributed is not installed: pip install "
                            "'tsocontainer[dask]', or run the batch with --serial") from None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        client._tsoc_cluster = cluster
        return client
    try:
        return Client(scheduler, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise TSOValueError(f"scheduler {scheduler}: no dask scheduler answered within "
                            f"{timeout:g} s ({type(exc).__name__}: {' '.join(str(exc).split())})"
                            ) from None


def _run_visit(visit: dict, out: str, force: bool, plots: bool) -> dict:
    """One visit into ``out/<name>`` (a task; returns a summary, never raises)."""
    import warnings

    from tsocontainer.pipeline.runner import run_recipe

    t0 = time.perf_counter()
    folder = Path(out) / visit["name"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = run_recipe(visit["files"], visit["recipe"], out=folder, priors=visit["priors"],
                             force=force, workers=visit["workers"], plots=plots and visit["plots"],
                             progress=False, memmap=visit["memmap"])
        return {"name": visit["name"], "out": str(folder), "ran": res.ran,
                "skipped": res.skipped, "seconds": round(time.perf_counter() - t0, 1)}
    except Exception as exc:   # noqa: BLE001 - one failed visit must not stop the others
        return {"name": visit["name"], "out": str(folder), "error":
                f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                "seconds": round(time.perf_counter() - t0, 1)}


def run_batch(batch, *, scheduler=None, n_workers: int = 2, serial: bool = False,
              force: bool = False, plots: bool = True) -> list:
    """Run every visit of ``batch`` into its own run directory.

    Parameters
    ----------
    batch : Batch, str or path-like
        A loaded batch or a batch file (:func:`load_batch`).
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:port``).
    n_workers : int
        Worker processes of the LocalCluster started when no scheduler is given.
    serial : bool
        Run the visits one after the other in this process (no dask).
    force : bool
        Re-run every stage of every visit.
    plots : bool
        Plots and report.html of every visit.

    Returns
    -------
    list of dict
        Per visit: ``name``, ``out``, ``ran`` and ``skipped`` stages, ``seconds``,
        or ``error``. Also written to ``<out>/batch.json``.

    Raises
    ------
    TSOInputError
        As :func:`load_batch` and :func:`connect`, before any visit runs.

    Examples
    --------
    >>> results = run_batch("visits.yaml", n_workers=2)   # doctest: +SKIP
    >>> [r["ran"] for r in results]                        # doctest: +SKIP
    [['state', 'spectra', 'lightcurves'], ['state', 'spectra', 'lightcurves']]
    """
    if not isinstance(batch, Batch):
        batch = load_batch(batch)
    batch.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if serial:
        results = [_run_visit(v, str(batch.out), force, plots) for v in batch.visits]
        engine = "serial"
    else:
        client = connect(scheduler, n_workers)
        engine = f"dask {client.scheduler.address}"
        try:
            futures = [client.submit(_run_visit, v, str(batch.out), force, plots, pure=False,
                                     key=f"visit-{k}-{v['name']}")
                       for k, v in enumerate(batch.visits)]
            results = client.gather(futures)
        finally:
            cluster = getattr(client, "_tsoc_cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    summary = {"batch": batch.source, "engine": engine,
               "seconds": round(time.perf_counter() - t0, 1), "visits": results}
    write_text_atomic(batch.out / "batch.json", json.dumps(summary, indent=1) + "\n")
    for r in results:
        if "error" in r:
            log.error("visit %s failed: %s", r["name"], r["error"])
        else:
            log.info("visit %s: ran %s, skipped %s (%.1f s)", r["name"], r["ran"], r["skipped"],
                     r["seconds"])
    return results
