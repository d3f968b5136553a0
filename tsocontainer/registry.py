"""The step registry: every step a recipe may name, with its typed keywords.

A *step* is a method that changes an object of the chain (a
:class:`~tsocontainer.TSOGroup`, :class:`~tsocontainer.spectra.container.Spectra` or
:class:`~tsocontainer.lightcurves.container.LightCurves`) or makes the next one. Each is
declared once, where it is defined, with :func:`step`::

    @step("state", reads=("mask",), writes=("traces",), plot="plot_trace",
          params={"method": Choice("centroid", "edgetrigger", "gaussian")})
    def fit_all_traces(self, *, method="centroid", ...): ...

The declaration feeds

* recipe validation (names, keyword types, ranges and choices, checked before any data
  is read) and the ``tsocontainer recipe steps`` listing;
* the runner's split of a recipe into stages (``stage``);
* the derived-state bookkeeping of the container (``reads``/``writes``: what a step's
  products were made from, so that a change of an input marks them stale);
* the same keyword checks on every call from Python, so the API and a recipe reject
  the same values.

Keyword types that are not declared are inferred from the default (``bool``, ``int``,
``float``, ``str``); a default of ``None`` accepts anything the step itself checks.
This module imports nothing of the package's rooms: the rooms import it.
"""
from __future__ import annotations

import difflib
import functools
import inspect
import numbers
from dataclasses import dataclass, field

from tsocontainer.errors import TSOValueError

__all__ = ["Param", "Num", "Choice", "Bool", "Text", "Anything", "IntList", "OneOf", "Mapping",
           "Coerced", "StepSpec", "step", "plain_text", "STEPS", "get_step", "StepKeywordError", "STAGES"]

#: the pipeline stages, in the order a run takes them
STAGES = ("ramps", "state", "spectra", "lightcurves", "fit_white", "fit_channels")


class StepKeywordError(TSOValueError):
    """A step was given an unknown keyword or a value its declaration does not allow."""


# ----------------------------------------------------------------- types
class Param:
    """Base of the keyword types: ``check(value)`` returns the value or raises ValueError.

    Subclasses describe themselves in ``describe()`` (used in messages and listings).
    """

    def check(self, value):  # pragma: no cover - overridden
        return value

    def describe(self) -> str:  # pragma: no cover - overridden
        return "any"


class Anything(Param):
    """Any value (the step checks it itself: arrays, tuples, templates)."""

    def describe(self) -> str:
        return "any"


@dataclass(frozen=True)
class Num(Param):
    """A real number (``integer=True``: a whole number) in ``[lo, hi]`` (open ends optional).

    Examples
    --------
    >>> Num(lo=0, lo_open=True).check(3)
    3
    >>> Num(lo=0, lo_open=True).describe()
    'number > 0'
    """

    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    lo_open: bool = False

    def check(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{value!r} is not a {self._kind()}")
        if self.integer and not float(value).is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        if value != value:
            raise ValueError("NaN is not allowed")
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            raise ValueError(f"{value!r} is out of range ({self.describe()})")
        if self.hi is not None and value > self.hi:
            raise ValueError(f"{value!r} is out of range ({self.describe()})")
        return int(value) if self.integer else value

    def _kind(self) -> str:
        return "whole number" if self.integer else "number"

    def describe(self) -> str:
        out = self._kind()
        if self.lo is not None:
            out += f" {'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            out += f"{',' if self.lo is not None else ''} <= {self.hi:g}"
        return out


class Choice(Param):
    """One of a fixed set of values.

    Examples
    --------
    >>> Choice("box", "optimal").check("box")
    'box'
    >>> Choice("box", "optimal").describe()
    'box, optimal'
    """

    def __init__(self, *values):
        self.values = tuple(values)

    def check(self, value):
        same = [v for v in self.values
                if isinstance(v, bool) == isinstance(value, bool) and _equal(v, value)]
        if not same:
            close = difflib.get_close_matches(str(value), [str(v) for v in self.values], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{value!r} is not a choice{hint}")
        return value

    def describe(self) -> str:
        return ", ".join(str(v) if isinstance(v, str) else repr(v) for v in self.values)


def _equal(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):   # arrays compare element-wise
        return False


class Bool(Param):
    """``true`` or ``false``."""

    def check(self, value):
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not true/false")
        return value

    def describe(self) -> str:
        return "true/false"


class Text(Param):
    """A string."""

    def check(self, value):
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not text")
        return value

    def describe(self) -> str:
        return "text"


@dataclass(frozen=True)
class IntList(Param):
    """A whole number or a list of whole numbers (each ``>= lo``)."""

    lo: int = 0

    def check(self, value):
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items:
            raise ValueError("an empty list is not allowed")
        for v in items:
            Num(lo=self.lo, integer=True).check(v)
        return value

    def describe(self) -> str:
        return f"whole number(s) >= {self.lo}"


class OneOf(Param):
    """A value any of ``options`` accepts (tried in order)."""

    def __init__(self, *options):
        self.options = options

    def check(self, value):
        errors = []
        for opt in self.options:
            try:
                return opt.check(value)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(f"{value!r} is not {self.describe()}")

    def describe(self) -> str:
        return " or ".join(o.describe() for o in self.options)


class Mapping(Param):
    """A mapping whose keys are among ``keys`` (values checked by the step itself)."""

    def __init__(self, *keys, check=None):
        self.keys, self._check = tuple(keys), check

    def check(self, value):
        if not isinstance(value, dict):
            raise ValueError(f"{value!r} is not a mapping")
        for k in value:
            if k not in self.keys:
                close = difflib.get_close_matches(str(k), list(self.keys), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown key {k!r}{hint}; allowed: {', '.join(self.keys)}")
        if self._check is not None:
            self._check(value)
        return value

    def describe(self) -> str:
        return "mapping of " + ", ".join(self.keys)


class Coerced(Param):
    """A value that ``coerce`` accepts (e.g. a fit-model mapping checked by its dataclass).

    Parameters
    ----------
    coerce : callable
        Raises ValueError on a bad value.
    what : str
        Description for messages.
    """

    def __init__(self, coerce, what: str):
        self.coerce, self.what = coerce, what

    def check(self, value):
        try:
            self.coerce(value)
        except (TypeError, KeyError) as exc:
            raise ValueError(str(exc)) from None
        return value

    def describe(self) -> str:
        return self.what


class _Nullable(Param):
    """``None`` (the step's default) or a value ``inner`` accepts."""

    def __init__(self, inner: Param):
        self.inner = inner

    def check(self, value):
        return None if value is None else self.inner.check(value)

    def describe(self) -> str:
        return f"{self.inner.describe()} (or null for the default)"


def _nullable(p: Param) -> Param:
    return p if isinstance(p, Anything) else _Nullable(p)


def _infer(default) -> Param:
    if isinstance(default, bool):
        return Bool()
    if isinstance(default, int):
        return Num(integer=True)
    if isinstance(default, float):
        return Num()
    if isinstance(default, str):
        return Text()
    return Anything()


# ------------------------------------------------------------------ steps
@dataclass(frozen=True)
class Keyword:
    """One keyword of a step: name, type, default (``required``: no default)."""

    name: str
    type: Param
    default: object
    required: bool = False

    def describe(self) -> str:
        """``name=default (type)``, or ``name (required; type)``."""
        if self.required:
            return f"{self.name} (required; {self.type.describe()})"
        typ = _nullable(self.type) if self.default is None else self.type
        return f"{self.name}={self.default!r} ({typ.describe()})"


@dataclass(frozen=True)
class StepSpec:
    """What the registry knows of one step.

    Attributes
    ----------
    name : str
        The method name (and the recipe step name).
    stage : str
        Pipeline stage (one of :data:`STAGES`).
    target : str
        Class the step runs on (``TSOGroup``, ``Spectra``, ``LightCurves``).
    reads, writes : tuple of str
        Derived-state resources the step uses and makes (``mask``, ``sky``, ``onef``,
        ``replace``, ``traces``, ``shifts``, ``tilt``, ``pca``, ``spectra``).
    keywords : dict of str -> Keyword
        Its keywords, typed.
    plot : str or None
        The method that draws its diagnostic.
    summary : str
        First line of its docstring.
    once : bool
        A recipe may hold it only once.
    """

    name: str
    stage: str
    target: str
    reads: tuple = ()
    writes: tuple = ()
    keywords: dict = field(default_factory=dict)
    plot: str | None = None
    summary: str = ""
    once: bool = False

    def check_kwargs(self, kwargs: dict, where: str = "", index: int | None = None) -> dict:
        """Check ``kwargs`` against the declaration; return them (ints made int).

        Parameters
        ----------
        kwargs : dict
            Keyword arguments.
        where : str
            Prefix of the message (the recipe file).
        index : int, optional
            Step number in the recipe.

        Returns
        -------
        dict

        Raises
        ------
        StepKeywordError
            Naming the step, the keyword, the value and what is allowed.
        """
        out = {}
        prefix = (f"{where}: " if where else "") + (f"step {index} " if index else "step ")
        missing = [k for k, kw in self.keywords.items() if kw.required and k not in kwargs]
        if missing and where:
            raise StepKeywordError(f"{prefix}{self.name!r} needs keyword(s) {', '.join(missing)}")
        for key, value in kwargs.items():
            if key not in self.keywords:
                close = difflib.get_close_matches(key, list(self.keywords), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise StepKeywordError(
                    f"{prefix}{self.name!r} has no keyword {key!r}{hint}; allowed: "
                    f"{', '.join(self.keywords) or 'none'}")
            kw = self.keywords[key]
            typ = _nullable(kw.type) if kw.default is None else kw.type
            try:
                out[key] = typ.check(value)
            except ValueError as exc:
                raise StepKeywordError(f"{prefix}{self.name!r}, keyword {key!r}: {exc}; "
                                       f"allowed: {typ.describe()}") from None
        return out

    def describe(self) -> str:
        """Several lines: name, stage, summary, one line per keyword."""
        lines = [f"{self.name}  [{self.stage}, on {self.target}]  {self.summary}"]
        lines += [f"    {kw.describe()}" for kw in self.keywords.values()]
        return "\n".join(lines)


#: every registered step, by name (filled when the rooms defining steps are imported)
STEPS: dict = {}


def get_step(name: str) -> StepSpec:
    """The registered step ``name``.

    Raises
    ------
    KeyError
        With the closest registered name, if any.
    """
    if name not in STEPS:
        close = difflib.get_close_matches(name, list(STEPS), n=1)
        raise KeyError(f"{name!r} is not a registered step"
                       + (f" (did you mean {close[0]!r}?)" if close else ""))
    return STEPS[name]


def plain_text(text: str) -> str:
    """reStructuredText roles and literals as plain text (for listings and ``--help``).

    Examples
    --------
    >>> plain_text("Fit traces (:func:`trace.fit_traces`, flag ``dq``).")
    'Fit traces (trace.fit_traces, flag dq).'
    """
    import re

    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


def _keywords(func, params: dict) -> dict:
    sig = inspect.signature(func)
    out = {}
    for name, p in sig.parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        required = p.default is inspect.Parameter.empty
        default = None if required else p.default
        typ = params.get(name) or _infer(default)
        out[name] = Keyword(name, typ, default, required)
    unknown = set(params) - set(out)
    if unknown:
        raise TypeError(f"{func.__qualname__}: typed keywords {sorted(unknown)} not in the signature")
    return out


def step(stage: str, *, target: str | None = None, reads=(), writes=(), plot=None, params=None,
         once: bool = False):
    """Declare a method as a registered step (a decorator).

    The wrapped method checks its keyword values against the declaration on every call,
    then calls the object's ``_step_started(spec, kwargs)`` before and ``_step_finished(spec)``
    after the work when the object has them (the container stamps its products there).

    Parameters
    ----------
    stage : str
        One of :data:`STAGES`.
    target : str, optional
        Name of the class the step runs on (default: the class defining it; mixins
        name the class they are mixed into).
    reads, writes : sequence of str
        Derived-state resources the step uses and makes.
    plot : str, optional
        Name of the method drawing its diagnostic.
    params : dict of str -> Param, optional
        Keyword types not inferable from the defaults.
    once : bool
        At most once per recipe.

    Returns
    -------
    callable
        The decorator.

    Examples
    --------
    >>> class Thing:
    ...     @step("lightcurves", params={"sigma": Num(lo=0, lo_open=True)})
    ...     def doc_example_clip(self, sigma=5.0):
    ...         return self
    >>> Thing().doc_example_clip(sigma=3.0).__class__.__name__
    'Thing'
    >>> Thing().doc_example_clip(sigma=-1)
    Traceback (most recent call last):
    ...
    tsocontainer.registry.StepKeywordError: step 'doc_example_clip', keyword 'sigma': -1 is out of range (number > 0); allowed: number > 0
    >>> _ = STEPS.pop("doc_example_clip")
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; allowed: {', '.join(STAGES)}")

    def decorate(func):
        spec = StepSpec(name=func.__name__, stage=stage,
                        target=target or func.__qualname__.split(".")[0], reads=tuple(reads),
                        writes=tuple(writes), keywords=_keywords(func, params or {}), plot=plot,
                        summary=plain_text((inspect.getdoc(func) or "").split("\n")[0]),
                        once=once)
        sig = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(self, *args, **kwargs):
            bound = sig.bind(self, *args, **kwargs)
            given = {k: v for k, v in bound.arguments.items() if k != "self"}
            spec.check_kwargs(given)
            started = getattr(self, "_step_started", None)
            if started is not None:
                started(spec, given)
            result = func(self, *args, **kwargs)
            finished = getattr(self, "_step_finished", None)
            if finished is not None:
                finished(spec)
            return result

        wrapper.step_spec = spec
        STEPS[spec.name] = spec
        return wrapper

    return decorate
