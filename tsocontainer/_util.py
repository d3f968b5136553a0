"""Small helpers shared by every module: option validation and JSON conversion."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["check_option", "jsonable"]


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
