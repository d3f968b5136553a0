"""Small helpers shared by every module: option validation and JSON conversion."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["check_option", "jsonable", "now_iso", "reproducible", "drop_timings", "umask_mode", "write_text_atomic", "html_table", "interactive"]


def check_option(value, allowed: Sequence[str], name: str) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError.

    The one validation helper for string options (DESIGN: an error that lists
    the allowed values).

    Parameters
    ----------
    value : str
        The option given by the user.
    allowed : sequence of str
        The accepted values.
    name : str
        Name of the option, used in the message.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    ValueError
        Listing the allowed values.

    Examples
    --------
    >>> check_option("box", ("box", "optimal"), "method")
    'box'
    """
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value


def jsonable(obj):
    """Convert numpy scalars/arrays in ``obj`` to plain Python for JSON/YAML.

    Arrays of more than 64 values become a short description.

    Parameters
    ----------
    obj : object
        Nested dicts/lists of numbers, strings and arrays.

    Returns
    -------
    object
        The same structure with plain Python values.
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 64 else f"array{obj.shape}"
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def now_iso() -> str:
    """The current UTC time as ISO text (seconds), or ``SOURCE_DATE_EPOCH`` when set.

    Histories and products carry this time; setting ``SOURCE_DATE_EPOCH`` (the
    reproducible-builds convention, seconds since 1970) makes reruns byte-identical.

    Examples
    --------
    >>> import os
    >>> os.environ["SOURCE_DATE_EPOCH"] = "0"
    >>> now_iso()
    '1970-01-01T00:00:00+00:00'
    >>> del os.environ["SOURCE_DATE_EPOCH"]
    """
    import datetime
    import os

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.strip().lstrip("-").isdigit():
        t = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
    else:
        t = datetime.datetime.now(datetime.timezone.utc)
    return t.isoformat(timespec="seconds")


def reproducible() -> bool:
    """True when ``SOURCE_DATE_EPOCH`` is set: products then leave out wall-clock timings.

    Histories and fit results record how long steps took; two runs can never agree on
    that, so under ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) those
    fields are not written and reruns give byte-identical products.
    """
    import os

    return os.environ.get("SOURCE_DATE_EPOCH") is not None


def drop_timings(summary: dict) -> dict:
    """``summary`` without its run-time fields when :func:`reproducible` (else unchanged).

    Examples
    --------
    >>> import os
    >>> os.environ["SOURCE_DATE_EPOCH"] = "0"
    >>> drop_timings({"flagged": 3, "seconds": 1.2})
    {'flagged': 3}
    >>> del os.environ["SOURCE_DATE_EPOCH"]
    """
    if not reproducible():
        return summary
    return {k: v for k, v in summary.items() if k not in ("seconds", "runtime")}


def umask_mode() -> int:
    """File mode a plain ``open(..., "w")`` would give under the current umask (e.g. 0o644)."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_text_atomic(path, text: str) -> str:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.

    The file gets the permissions the user's umask gives new files (not 0600).

    Parameters
    ----------
    path : str or path-like
        Target file.
    text : str
        Content (UTF-8).

    Returns
    -------
    str
        The path written.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.txt")
    >>> _ = write_text_atomic(p, "hello")
    >>> from pathlib import Path
    >>> Path(p).read_text()
    'hello'
    """
    import os

    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def html_table(title: str, rows) -> str:
    """A compact two-column HTML table (the ``_repr_html_`` of the containers).

    Parameters
    ----------
    title : str
        Caption (the class and a short summary).
    rows : sequence of (str, object)
        Label and value; values are shown with ``str`` and HTML-escaped.

    Returns
    -------
    str

    Examples
    --------
    >>> html_table("<X>", [("N", 3)]).count("<tr>")
    1
    """
    import html

    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(str(k))}</th>"
                   f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return (f"<div><b>{html.escape(title)}</b><table style='border-collapse:collapse'>"
            f"{body}</table></div>")


def interactive() -> bool:
    """True when someone is watching: stderr is a terminal, or the code runs in a notebook.

    The default of every ``progress=None``: bars in terminals and Jupyter, none in logs,
    pipes and tests.

    Examples
    --------
    >>> isinstance(interactive(), bool)
    True
    """
    import sys

    if sys.stderr.isatty():
        return True
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None and hasattr(shell, "get_ipython") else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def coerce_dataclass(cls, obj, what: str):
    """``obj`` as an instance of the dataclass ``cls``: None gives the defaults, a dict its fields.

    Parameters
    ----------
    cls : type
        A dataclass.
    obj : None, dict or cls
        The value given by the user.
    what : str
        What it is, for the messages (e.g. ``"model"``).

    Returns
    -------
    cls

    Raises
    ------
    ValueError
        On unknown fields or another type.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Opts:
    ...     poly: int = 1
    >>> coerce_dataclass(Opts, {"poly": 2}, "model").poly
    2
    >>> coerce_dataclass(Opts, {"ploy": 2}, "model")
    Traceback (most recent call last):
    ...
    ValueError: unknown model option(s) ['ploy']; allowed: ['poly']
    """
    from dataclasses import fields

    if obj is None:
        return cls()
    if isinstance(obj, cls):
        return obj
    if isinstance(obj, dict):
        allowed = [f.name for f in fields(cls)]
        unknown = set(obj) - set(allowed)
        if unknown:
            raise ValueError(f"unknown {what} option(s) {sorted(unknown)}; allowed: {allowed}")
        return cls(**obj)
    raise ValueError(f"{what} must be a dict or a {cls.__name__}, got {type(obj).__name__}")
