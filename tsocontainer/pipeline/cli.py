"""Command line: ``tsocontainer demo | run | batch | simulate | info | report | recipe``.

Every sub-command exits 0 on success; on bad input it prints one line naming the file
and the cause and exits 2; on a failure of the package itself one line and exit 1.
``-v`` shows tracebacks and DEBUG messages, ``-q`` only warnings and errors.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

log = logging.getLogger("tsocontainer")


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (checked when the command line is parsed)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="write a synthetic TSO visit in JWST file format")
    p.add_argument("--mode", required=True,
                   choices=["soss", "nirspec-prism", "nirspec-g395h", "nircam-f322w2", "miri-lrs"])
    p.add_argument("--nint", type=_positive_int, required=True, help="total number of integrations")
    p.add_argument("--nseg", type=_positive_int, default=1, help="number of segments")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--noiseless", action="store_true", help="no noise, cosmic rays or defects")
    p.add_argument("--no-systematics", action="store_true", help="no trends, jitter or drifts")
    p.add_argument("--level", default="rateints", choices=["rateints", "uncal"],
                   help="rateints (rates, the default) or uncal (ramps with bias, reference "
                        "pixels, group 1/f and jumps, for stage 1)")
    p.add_argument("--depth-spectrum", default=None,
                   help="text table of wavelength (micron) and depth (ppm) to inject")
    p.add_argument("--subarray", default=None,
                   help="subarray to read out (soss: SUBSTRIP256, the default, SUBSTRIP96 or "
                        "FULL; other modes: their own); written at its real corner")
    p.set_defaults(func=_run_simulate)


def _run_simulate(args) -> int:
    if args.level == "uncal":
        from tsocontainer.sim.ramps import simulate_ramps as simulate
    else:
        from tsocontainer.sim.simulate import simulate_visit as simulate

    vis = simulate(mode=args.mode, nint=args.nint, nseg=args.nseg, seed=args.seed,
                   out=args.out, noiseless=args.noiseless, systematics=not args.no_systematics,
                   depth_spectrum=args.depth_spectrum,
                   **({} if args.subarray is None else {"subarray": args.subarray}))
    for f in vis.files:
        print(f)
    folder = Path(args.out)
    print(f"truth: {folder / 'truth.json'} (arrays: {folder / 'truth.fits'})")
    print(f"priors: {folder / 'planet.yaml'} (tsocontainer run FILES --priors "
          f"{folder / 'planet.yaml'})")
    return 0


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="read segment files and describe the visit")
    p.add_argument("files", nargs="+", help="rateints/calints segment files or a glob")
    p.set_defaults(func=_run_info)


def _run_info(args) -> int:
    from tsocontainer.group import read_segments

    paths = args.files[0] if len(args.files) == 1 else args.files
    g = read_segments(paths)
    print(repr(g))
    t = g.time_bjd
    print(f"time: BJD_TDB {t[0]:.6f} .. {t[-1]:.6f} ({g.meta.get('TIMESRC', '?')})")
    print(f"integrations: {g.int_numbers[0]}..{g.int_numbers[-1]} from {len(g.files)} file(s)")
    print(f"good pixels: {100 * g.mask.mean():.2f} %")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="rebuild report.html of a run directory")
    p.add_argument("run_dir")
    p.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from tsocontainer.pipeline.report import build_report

    print(build_report(args.run_dir))
    return 0


def _add_recipe(sub) -> None:
    p = sub.add_parser("recipe", help="show or check recipes")
    rsub = p.add_subparsers(dest="recipe_command", metavar="ACTION")
    rsub.required = True
    show = rsub.add_parser("show", help="print a shipped recipe or a recipe file; list the "
                                        "shipped ones without a name")
    show.add_argument("name", nargs="?", default=None)
    show.set_defaults(func=_run_recipe_show)
    check = rsub.add_parser("check", help="validate a recipe file without reading data")
    check.add_argument("name")
    check.set_defaults(func=_run_recipe_check)
    steps = rsub.add_parser("steps", help="list every step a recipe may use, with its keywords")
    steps.set_defaults(func=_run_recipe_steps)


def _run_recipe_show(args) -> int:
    from tsocontainer.pipeline.recipe import default_recipe, load_recipe, recipe_names

    if args.name is None:
        print("shipped recipes (tsocontainer recipe show NAME prints one):")
        from tsocontainer.pipeline.recipe import RECIPE_NAMES

        for name in recipe_names():
            if name in RECIPE_NAMES:
                text = " ".join((default_recipe(name).description or "").split())
                print(f"  {name:15s} {text[:90]}")
            else:
                same = [n for n, f in RECIPE_NAMES.items() if f == name]
                print(f"  {name:15s} short name of {', '.join(same)}")
        return 0
    print(load_recipe(args.name).to_yaml(), end="")
    return 0


def _run_recipe_check(args) -> int:
    from tsocontainer.pipeline.recipe import load_recipe

    recipe = load_recipe(args.name)
    print(f"{recipe.source or recipe.name}: OK ({len(recipe.steps)} steps)")
    return 0


def _run_recipe_steps(args) -> int:
    from tsocontainer.pipeline.recipe import registered_steps
    from tsocontainer.registry import STAGES

    steps = registered_steps()
    for stage in STAGES:
        names = [n for n, s in steps.items() if s.stage == stage]
        if not names:
            continue
        print(f"# stage {stage}")
        for name in names:
            print(steps[name].describe())
    print("# and jwst.<StepClass>: STScI pipeline steps (need CRDS)")
    return 0


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="reduce a visit with a recipe into an output folder")
    p.add_argument("files", nargs="+", help="rateints/calints segment files or a glob")
    p.add_argument("--recipe", default="default",
                   help="'default' (the mode's shipped recipe), a shipped name or a YAML file")
    p.add_argument("--priors", default=None, help="YAML file of fit priors (orbit, depth, ...)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--force", action="store_true", help="redo stages whose outputs exist")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="processes for the channel fits (at most one per channel is used)")
    p.add_argument("--no-plots", action="store_true", help="skip plots and report.html")
    p.add_argument("--strict", action="store_true",
                   help="exit with code 3 when a fit is marked suspect (default: exit 0 and "
                        "say so on the last line)")
    p.add_argument("--memmap", default=None, metavar="DIR",
                   help="streaming mode: keep the visit's cubes in memory-mapped files in DIR "
                        "(peak memory independent of the number of integrations)")
    p.add_argument("--no-spill", action="store_true",
                   help="in memory: keep the variance, mask and flag cubes in memory too "
                        "(default: in unlinked files of the temporary folder, pages released "
                        "after each block; same products, peak memory ~1x lower)")
    p.set_defaults(func=_run_run)


def _run_run(args) -> int:
    from tsocontainer.pipeline.runner import run_recipe

    files = args.files[0] if len(args.files) == 1 else args.files
    res = run_recipe(files, args.recipe, out=args.out, priors=args.priors, force=args.force,
                     workers=args.workers, plots=not args.no_plots, memmap=args.memmap,
                     spill=not args.no_spill)
    print(f"ran: {', '.join(res.ran) or 'nothing'}; skipped (outputs exist): "
          f"{', '.join(res.skipped) or 'nothing'}")
    print(f"outputs in {res.out}")
    from tsocontainer.pipeline.runner import verdict_line

    line, suspect = verdict_line(res)
    if line:
        print(line)
    return 3 if suspect and args.strict else 0


def _add_batch(sub) -> None:
    p = sub.add_parser("batch", help="reduce several visits (a batch file), one run directory "
                                     "each, as dask tasks; resumable")
    p.add_argument("batch_file", help="YAML file listing the visits (see "
                                      "tsocontainer.pipeline.batch)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running dask scheduler (tcp://host:port); default: a LocalCluster")
    p.add_argument("--n-workers", type=_positive_int, default=2,
                   help="worker processes of the LocalCluster (one visit each at a time)")
    p.add_argument("--serial", action="store_true", help="one visit after the other, no dask")
    p.add_argument("--force", action="store_true", help="redo stages whose outputs exist")
    p.add_argument("--no-plots", action="store_true", help="skip plots and report.html")
    p.set_defaults(func=_run_batch)


def _run_batch(args) -> int:
    from tsocontainer.pipeline.batch import load_batch, run_batch

    batch = load_batch(args.batch_file)
    results = run_batch(batch, scheduler=args.scheduler, n_workers=args.n_workers,
                        serial=args.serial, force=args.force, plots=not args.no_plots)
    failed = [r for r in results if "error" in r]
    for r in results:
        what = (f"error: {r['error']}" if "error" in r else
                f"ran: {', '.join(r['ran']) or 'nothing'}; skipped: "
                f"{', '.join(r['skipped']) or 'nothing'}")
        print(f"{r['name']}: {what} ({r['out']})")
    print(f"{len(results) - len(failed)} of {len(results)} visit(s) done; summary in "
          f"{batch.out / 'batch.json'}")
    return 1 if failed else 0


def _add_demo(sub) -> None:
    from tsocontainer.pipeline.demo import DEMO_MODES

    p = sub.add_parser("demo", help="simulate a visit, reduce it, compare with the truth")
    p.add_argument("--mode", default="soss", choices=list(DEMO_MODES))
    p.add_argument("--out", default=None,
                   help="keep the simulated visit and the run here (default: a temporary folder "
                        "from which only report.html is kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nint", type=int, default=None, help="integrations (default: mode's demo size)")
    p.add_argument("--workers", type=_positive_int, default=2, help="processes for the channel fits")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    import warnings

    from tsocontainer.pipeline.demo import run_demo
    from tsocontainer.lightcurves.fit import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        summary = run_demo(args.mode, out=args.out, seed=args.seed, nint=args.nint,
                           workers=args.workers)
    print(summary.table())
    conv = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    for w in conv:
        print(f"note: {w.message}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``tsocontainer`` command."""
    from tsocontainer._version import __version__

    from tsocontainer.registry import plain_text

    parser = argparse.ArgumentParser(
        prog="tsocontainer",
        description="JWST time-series spectroscopy: from rateints segments to light curves and "
                    "transmission spectra. " + plain_text(__doc__.splitlines()[0]))
    parser.add_argument("--version", action="version", version=f"tsocontainer {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more output")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_simulate(sub)
    _add_info(sub)
    _add_report(sub)
    _add_recipe(sub)
    _add_run(sub)
    _add_batch(sub)
    _add_demo(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``tsocontainer`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _console_logging(args)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as exc:   # bad input: TSOInputError, RecipeError, files
        if args.verbose:
            raise
        print(f"tsocontainer {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tsocontainer {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:   # a failure of ours: one line, the traceback with -v
        if args.verbose:
            raise
        print(f"tsocontainer {args.command}: error: {type(exc).__name__}: {_one_line(exc)} "
              "(run with -v for the traceback)", file=sys.stderr)
        return 1


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _console_logging(args) -> None:
    """INFO on the terminal by default, WARNING with -q, DEBUG with -v (run.log keeps INFO)."""
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    logger = logging.getLogger("tsocontainer")
    for h in [h for h in logger.handlers if getattr(h, "_tsoc_console", False)]:
        logger.removeHandler(h)
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._tsoc_console = True
    logger.addHandler(handler)
    logger.setLevel(min(level, logger.level or logging.WARNING))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
