"""Stage 1 from ``uncal`` ramps: saturation, bias, reference pixels, group 1/f, jumps, fit.

:func:`read_uncal` checks a visit's uncal segments and returns a
:class:`~tsocontainer.ramps.container.RampGroup`; its steps (registered in the
``ramps`` stage of :mod:`tsocontainer.registry`) build a plan of calibrations that
:meth:`~tsocontainer.ramps.container.RampGroup.fit_ramps` streams the visit through,
block by block, to a :class:`~tsocontainer.TSOGroup` of rates. :func:`run_stage1` runs a
list of steps (what a recipe's ``stage1`` section holds).

Jump detection is the two-point-difference method, by default in this package's numpy
implementation on all cores (:mod:`tsocontainer.ramps.twopoint`; stcal's with
``detect_jumps(method="stcal")``), plus a check in time; ramp fitting is stcal's
(``stcal.ramp_fitting``: OLS_C, of which the clean ramps are computed in numpy,
:mod:`tsocontainer.ramps.olsfast`, or LIKELY), called on plain arrays with the jwst
pipeline's settings and no CRDS: gain, read noise, bias, saturation and linearity come
from the user (numbers, arrays or CRDS-format reference files) or from documented
per-detector defaults (:mod:`tsocontainer.ramps.detector`).
"""
from __future__ import annotations

import logging
import time

from tsocontainer.ramps.container import ORDER, ArrayRamps, RampGroup

__all__ = ["RampGroup", "ArrayRamps", "read_uncal", "run_stage1", "STAGE1_STEPS",
           "DEFAULT_STAGE1", "ORDER"]

log = logging.getLogger(__name__)

#: the registered stage-1 steps, in the order a recipe would list them
STAGE1_STEPS = ("use_detector", "flag_saturation", "subtract_superbias",
                "correct_reference_pixels", "correct_group_onef", "correct_linearity",
                "detect_jumps", "fit_ramps")
#: what :func:`run_stage1` runs when given no steps
DEFAULT_STAGE1 = (("flag_saturation", {}), ("subtract_superbias", {}),
                  ("correct_reference_pixels", {}), ("correct_group_onef", {}),
                  ("detect_jumps", {}), ("fit_ramps", {}))


def read_uncal(paths_or_glob) -> RampGroup:
    """Check the uncal segments of one visit and return their :class:`RampGroup`.

    Only headers are read here (every segment is checked before any ramp is read);
    ramps are read block by block when the steps need them.

    Parameters
    ----------
    paths_or_glob : str, path-like or sequence
        Segment files or glob patterns (``*_uncal.fits``).

    Returns
    -------
    RampGroup

    Raises
    ------
    FileNotFoundError, TSOReadError, SegmentMismatchError, UnsupportedModeError
        Missing, unreadable or inconsistent segments, or an unsupported mode (the message
        names the file and the cause).

    Examples
    --------
    >>> import tempfile
    >>> from tsocontainer.sim.ramps import simulate_ramps
    >>> v = simulate_ramps("miri-lrs", nint=4, out=tempfile.mkdtemp(), ngroups=5, seed=1)
    >>> read_uncal(v.files)
    <RampGroup MIRI LRS slitless SLITLESSPRISM: N=4, ngroups=5, sh=(416, 72), tgroup=0.15904 s, plan: none>
    """
    from tsocontainer.io.uncal import load_uncal

    t0 = time.perf_counter()
    u = load_uncal(paths_or_glob)
    g = RampGroup(u, meta=u.meta, mode=u.mode, time=u.time, int_numbers=u.int_numbers,
                  files=u.files)
    g._record("read_uncal", {"files": u.files},
              {"N": g.N, "ngroups": g.ngroups, "sh": list(g.sh), "time": u.meta["TIMESRC"],
               "seconds": round(time.perf_counter() - t0, 3)})
    return g


def _check_steps(steps) -> list:
    """The steps as ``(name, kwargs)``, checked against the registry before any work."""
    from tsocontainer.errors import TSOValueError
    from tsocontainer.registry import STEPS

    out = []
    for k, item in enumerate(steps, start=1):
        name, kwargs = (item, {}) if isinstance(item, str) else item
        spec = STEPS.get(name)
        if spec is None or spec.stage != "ramps":
            raise TSOValueError(f"stage-1 step {k} {name!r} is not a ramps step; allowed: "
                                f"{', '.join(STAGE1_STEPS)}")
        out.append((name, spec.check_kwargs(dict(kwargs or {}), index=k)))
    return out


def run_stage1(files, steps=None, **fit_kwargs):
    """Run stage-1 steps on uncal files and return the rates as a TSOGroup.

    Parameters
    ----------
    files : str, path-like or sequence
        The uncal segments (globs allowed).
    steps : sequence of (str, dict) or str, optional
        Steps and keywords, as a recipe's ``stage1`` section lists them (names from
        :data:`STAGE1_STEPS`); ``fit_ramps`` is added at the end when absent. Default
        :data:`DEFAULT_STAGE1`.
    **fit_kwargs
        Keywords of ``fit_ramps`` when the steps do not list it.

    Returns
    -------
    TSOGroup
        The rates, with the stage-1 history.

    Raises
    ------
    TSOValueError
        An unknown step or keyword (before any file is read).

    Examples
    --------
    >>> import tempfile
    >>> from tsocontainer.sim.ramps import simulate_ramps
    >>> v = simulate_ramps("miri-lrs", nint=4, out=tempfile.mkdtemp(), ngroups=5, seed=1)
    >>> refs = {k: f"{v.folder}/{p}" for k, p in v.truth["references"].items()}
    >>> g = run_stage1(v.files, [("use_detector", {"gain": refs["gain"],
    ...                                            "readnoise": refs["readnoise"]}),
    ...                          ("subtract_superbias", {})])
    >>> g.N, g.meta["BUNIT"], g.steps[-1]
    (4, 'DN/s', 'fit_ramps')
    """
    steps = _check_steps(DEFAULT_STAGE1 if steps is None else steps)
    names = [n for n, _ in steps]
    if "fit_ramps" in names[:-1]:
        from tsocontainer.errors import TSOValueError

        raise TSOValueError("fit_ramps must be the last stage-1 step")
    if "fit_ramps" not in names:
        steps.append(("fit_ramps", _check_steps([("fit_ramps", fit_kwargs)])[0][1]))
    g = read_uncal(files)
    result = None
    for name, kwargs in steps:
        result = getattr(g, name)(**kwargs)
    return result
