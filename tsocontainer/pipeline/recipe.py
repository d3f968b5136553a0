"""Recipes: an ordered list of steps with keyword arguments, stored as YAML.

A recipe looks like::

    name: soss-default
    mode: soss
    steps:
      - flag_dq: {bits: [DO_NOT_USE, SATURATED, JUMP_DET]}
      - flag_time_outliers: {window: 10, nsigma: 5}
      - correct_one_over_f: {method: scale-achromatic}
      - jwst.FlatFieldStep: {}          # STScI pipeline steps need CRDS

Every step is checked before anything runs (:func:`validate_recipe`): the
name must be a registered step (:mod:`tsocontainer.registry`) or
``jwst.<StepClass>``, each keyword one the step declares, each value of the
declared type, range or choices, and the steps in stage order. Errors name the
bad entry and list the allowed ones.
"""
from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Recipe",
    "RecipeError",
    "CRDSUnavailableError",
    "load_recipe",
    "default_recipe",
    "validate_recipe",
    "group_steps",
    "registered_steps",
    "recipe_names",
    "recipe_name_of",
    "run_jwst_step",
    "check_crds",
]

log = logging.getLogger(__name__)

class RecipeError(ValueError):
    """A recipe names an unknown step or keyword, or is malformed."""


class CRDSUnavailableError(RuntimeError):
    """An STScI pipeline step needs CRDS reference files that cannot be reached."""


@dataclass
class Recipe:
    """An ordered list of ``(step name, keyword arguments)``.

    Parameters
    ----------
    steps : list of (str, dict)
        The steps, in order.
    name : str
        Recipe name.
    mode : str, optional
        Mode key the recipe is meant for (``soss``, ``nirspec``, ...).
    source : str, optional
        Where the recipe was read from.
    description : str, optional
        What the recipe does (shown by ``tsocontainer recipe show``).
    read : dict, optional
        Options of reading the segment files (:data:`READ_KEYS`), e.g.
        ``{"detector_rows": [1793, 2048]}``: only the frame rows on those
        detector rows (the SOSS orders of a FULL frame).
    """

    steps: list = field(default_factory=list)
    name: str = "recipe"
    mode: str | None = None
    source: str = ""
    description: str = ""
    read: dict = field(default_factory=dict)

    def to_yaml(self) -> str:
        """The recipe as YAML text."""
        import yaml

        doc = {"name": self.name}
        if self.mode:
            doc["mode"] = self.mode
        if self.description:
            doc["description"] = " ".join(self.description.split())
        if self.read:
            doc["read"] = dict(self.read)
        doc["steps"] = [{n: dict(kw)} for n, kw in self.steps]
        return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)

    def __str__(self) -> str:
        return self.to_yaml()


def registered_steps() -> dict:
    """Every registered step: name -> :class:`~tsocontainer.registry.StepSpec`.

    Imports the rooms that define steps (container, spectra, light curves), whose
    declarations fill :data:`tsocontainer.registry.STEPS`.

    Returns
    -------
    dict

    Examples
    --------
    >>> steps = registered_steps()
    >>> steps["extract"].stage, "sky_model" in steps
    ('spectra', False)
    """
    import tsocontainer.group.container  # noqa: F401  (registers the TSOGroup steps)
    import tsocontainer.ramps  # noqa: F401  (stage-1 steps on uncal ramps)
    import tsocontainer.lightcurves.container  # noqa: F401  (LightCurves steps)
    import tsocontainer.spectra.container  # noqa: F401  (Spectra steps)
    from tsocontainer.registry import STEPS

    return dict(STEPS)


def group_steps() -> dict:
    """The registered steps that run on a TSOGroup: name -> StepSpec."""
    return {k: v for k, v in registered_steps().items() if v.target == "TSOGroup"}


def _parse(doc, source: str) -> Recipe:
    if not isinstance(doc, dict) or "steps" not in doc:
        raise RecipeError(f"{source}: a recipe is a mapping with a 'steps' list")
    unknown = set(doc) - {"name", "mode", "steps", "description", "read"}
    if unknown:
        raise RecipeError(f"{source}: unknown top-level key(s) {sorted(unknown)}; "
                          "allowed: name, mode, description, read, steps")
    steps = []
    for i, entry in enumerate(doc["steps"] or [], start=1):
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, dict) or len(entry) != 1:
            raise RecipeError(f"{source}: step {i} must be 'name' or {{name: {{keyword: value}}}}, "
                              f"got {entry!r}")
        (name, kwargs), = entry.items()
        kwargs = {} if kwargs is None else kwargs
        if not isinstance(kwargs, dict):
            raise RecipeError(f"{source}: step {i} ({name}): keywords must be a mapping, got {kwargs!r}")
        steps.append((str(name), dict(kwargs)))
    return Recipe(steps=steps, name=str(doc.get("name", "recipe")), mode=doc.get("mode"),
                  source=source, description=str(doc.get("description") or ""),
                  read=_parse_read(doc.get("read"), source))


#: keys of a recipe's ``read`` section
READ_KEYS = ("detector_rows",)


def _parse_read(read, source: str) -> dict:
    """The ``read`` section: ``{detector_rows: [first, last]}`` (1-based, inclusive)."""
    if read is None:
        return {}
    if not isinstance(read, dict):
        raise RecipeError(f"{source}: read must be a mapping ({', '.join(READ_KEYS)}), got {read!r}")
    unknown = set(read) - set(READ_KEYS)
    if unknown:
        raise RecipeError(f"{source}: read: unknown key(s) {sorted(unknown)}; allowed: "
                          f"{', '.join(READ_KEYS)}")
    rows = read.get("detector_rows")
    if rows is not None:
        ok = (isinstance(rows, (list, tuple)) and len(rows) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) for v in rows)
              and 1 <= rows[0] <= rows[1] <= 2048)
        if not ok:
            raise RecipeError(f"{source}: read: detector_rows must be [first, last], whole "
                              f"detector rows with 1 <= first <= last <= 2048, got {rows!r}")
        return {"detector_rows": [int(v) for v in rows]}
    return {}


def load_recipe(recipe) -> Recipe:
    """Read and validate a recipe.

    Parameters
    ----------
    recipe : Recipe, str, path-like, dict or list
        A Recipe; a path to a YAML file; the name of a shipped default
        (``soss``, ``nirspec``, ``nircam``, ``miri``); YAML text; a mapping
        with ``steps``; or a list of steps.

    Returns
    -------
    Recipe

    Raises
    ------
    RecipeError
        If any step or keyword is unknown (nothing has run yet).
    """
    import yaml

    if isinstance(recipe, Recipe):
        out = recipe
    elif isinstance(recipe, list):
        out = _parse({"steps": recipe}, "recipe")
    elif isinstance(recipe, dict):
        out = _parse(recipe, "recipe")
    else:
        text = str(recipe)
        if text in recipe_names():
            return default_recipe(text)
        path = Path(text)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such recipe file")
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                raise RecipeError(f"{path}: not a text file (a recipe is YAML text)") from None
            except yaml.YAMLError as exc:
                raise RecipeError(f"{path}: not valid YAML ({_yaml_problem(exc)})") from None
            out = _parse(doc, str(path))
        elif "\n" not in text and ":" not in text and "{" not in text:
            raise RecipeError(f"{text!r} is neither a shipped recipe{_suggest(text, recipe_names())} "
                              f"({', '.join(recipe_names())}) nor a recipe file")
        else:
            try:
                doc = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise RecipeError(f"recipe text is not valid YAML ({_yaml_problem(exc)})") from None
            out = _parse(doc, "recipe text")
    validate_recipe(out)
    return out


def _yaml_problem(exc) -> str:
    """One line: the line number and the problem of a YAML error."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return where + " ".join(str(getattr(exc, "problem", None) or exc).split())


def _shipped_names() -> list[str]:
    from importlib import resources

    folder = resources.files("tsocontainer") / "data" / "recipes"
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


#: recipe name (the mode names of ``simulate`` and ``demo``) -> shipped recipe file; the
#: short mode keys (``nirspec``, ``nircam``, ``miri``) stay as aliases
RECIPE_NAMES = {"soss": "soss", "nirspec-prism": "nirspec", "nirspec-g395h": "nirspec",
                "nircam-f322w2": "nircam", "nircam-f444w": "nircam", "miri-lrs": "miri"}
_ALIASES = {"nirspec": "nirspec", "nircam": "nircam", "miri": "miri"}


def recipe_names() -> list[str]:
    """Names ``default_recipe`` and ``tsocontainer recipe show`` accept (mode names first).

    Examples
    --------
    >>> recipe_names()[:3]
    ['soss', 'nirspec-prism', 'nirspec-g395h']
    """
    return list(RECIPE_NAMES) + [a for a in _ALIASES if a not in RECIPE_NAMES]


def recipe_name_of(mode) -> str:
    """The recipe name of an instrument mode (``Mode``): e.g. NIRSpec PRISM -> nirspec-prism."""
    key = mode.key
    if key == "nirspec":
        return "nirspec-g395h" if mode.grating == "G395H" else "nirspec-prism"
    if key == "nircam":
        return "nircam-f444w" if mode.filter == "F444W" else "nircam-f322w2"
    return {"miri": "miri-lrs"}.get(key, key)


def default_recipe(mode: str) -> Recipe:
    """The shipped default recipe of ``mode``.

    Parameters
    ----------
    mode : str
        A mode name: ``soss``, ``nirspec-prism``, ``nirspec-g395h``, ``nircam-f322w2``,
        ``nircam-f444w``, ``miri-lrs`` (or the short keys ``nirspec``, ``nircam``, ``miri``).

    Returns
    -------
    Recipe

    Raises
    ------
    RecipeError
        If there is no shipped recipe of that name (lists the available ones).
    """
    import yaml
    from importlib import resources

    file = RECIPE_NAMES.get(mode) or _ALIASES.get(mode)
    if file is None or file not in _shipped_names():
        raise RecipeError(f"no shipped recipe {mode!r}{_suggest(str(mode), recipe_names())}; "
                          f"available: {', '.join(recipe_names())}")
    path = resources.files("tsocontainer") / "data" / "recipes" / f"{file}.yaml"
    out = _parse(yaml.safe_load(path.read_text()), f"shipped recipe {mode}")
    out.name = mode
    validate_recipe(out)
    return out


def _suggest(name: str, allowed) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate_recipe(recipe: Recipe) -> None:
    """Check every step, keyword, value and the stage order of ``recipe`` before anything runs.

    Parameters
    ----------
    recipe : Recipe
        The recipe.

    Raises
    ------
    RecipeError
        Naming the source, the step number, the step, the keyword, the value and what
        is allowed (with a "did you mean" where one is close).
    """
    from tsocontainer.registry import STAGES, StepKeywordError

    steps = registered_steps()
    where = recipe.source or recipe.name
    last, seen = 0, set()
    for i, (name, kwargs) in enumerate(recipe.steps, start=1):
        if name.startswith("jwst."):
            _jwst_step_class(name, where, i)
            continue
        if name not in steps:
            raise RecipeError(f"{where}: step {i} {name!r} is not a known step{_suggest(name, steps)}; "
                              f"allowed: {', '.join(sorted(steps))}, or jwst.<StepClass> "
                              "(`tsocontainer recipe steps` lists them)")
        spec = steps[name]
        try:
            spec.check_kwargs(kwargs, where=where, index=i)
        except StepKeywordError as exc:
            raise RecipeError(str(exc)) from None
        if spec.once and name in seen:
            raise RecipeError(f"{where}: step {i} {name!r} appears twice; a recipe runs it once")
        seen.add(name)
        pos = STAGES.index(spec.stage)
        if pos < last:
            raise RecipeError(f"{where}: step {i} {name!r} ({spec.stage} stage) comes after a "
                              f"{STAGES[last]} step; stages run in the order {', '.join(STAGES)}")
        last = pos
    if not recipe.steps:
        raise RecipeError(f"{where}: the recipe has no steps")


def _jwst_step_class(name: str, where: str = "recipe", index: int = 0):
    """Resolve ``jwst.FlatFieldStep`` to the jwst step class."""
    cls_name = name.split(".", 1)[1]
    try:
        import jwst.step as jwst_step
    except ImportError:  # pragma: no cover - jwst is a core dependency
        raise RecipeError(f"{where}: step {index} {name!r} needs the jwst package") from None
    known = sorted(n for n in dir(jwst_step) if n.endswith("Step") and n != "Step")
    if cls_name not in known:
        raise RecipeError(f"{where}: step {index} {name!r} is not a jwst pipeline step"
                          f"{_suggest(cls_name, known)}; allowed: jwst.<StepClass> with "
                          f"StepClass one of {', '.join(known)}")
    return getattr(jwst_step, cls_name)


def check_crds(step_name: str = "a jwst step") -> None:
    """Fail early when no CRDS cache or server can provide reference files.

    Parameters
    ----------
    step_name : str
        Used in the message.

    Raises
    ------
    CRDSUnavailableError
        With a one-line explanation. CRDS itself raises ``SystemExit`` (not an
        Exception) when it cannot connect; this check catches that.
    """
    path = os.environ.get("CRDS_PATH", os.path.expanduser("~/crds_cache"))
    server = os.environ.get("CRDS_SERVER_URL", "")
    cache_cfg = Path(path) / "config" / "jwst" / "server_config"
    if cache_cfg.is_file():
        return
    reason = "no CRDS_SERVER_URL set" if not server else None
    if server:
        try:
            from crds.client import api

            api.get_server_info()
            return
        except BaseException as exc:  # CRDS raises SystemExit when it cannot connect
            if isinstance(exc, KeyboardInterrupt):
                raise
            reason = f"server {server} unreachable ({type(exc).__name__})"
    raise CRDSUnavailableError(
        f"{step_name} needs CRDS reference files, but there is no CRDS cache at "
        f"CRDS_PATH={path} and {reason}; set CRDS_PATH to a populated cache or CRDS_SERVER_URL "
        "to a reachable server, or remove the jwst step from the recipe")


def run_jwst_step(name: str, model, **kwargs):
    """Run the STScI pipeline step ``jwst.<StepClass>`` on a datamodel.

    Parameters
    ----------
    name : str
        ``jwst.<StepClass>``, e.g. ``jwst.FlatFieldStep``.
    model : DataModel
        Input datamodel.
    **kwargs
        Step parameters, passed to ``Step.call``.

    Returns
    -------
    DataModel
        The step's output.

    Raises
    ------
    CRDSUnavailableError
        When CRDS cannot be reached (checked before the step runs, and the
        ``SystemExit`` CRDS raises during a run is turned into this error).
    """
    cls = _jwst_step_class(name)
    check_crds(name)
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "True")
    try:
        return cls.call(model, **kwargs)
    except SystemExit as exc:
        raise CRDSUnavailableError(f"{name}: CRDS failed while fetching reference files "
                                   f"(SystemExit {exc.code})") from None
