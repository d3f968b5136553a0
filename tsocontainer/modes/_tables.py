"""Loading of the calibration tables shipped in ``tsocontainer/data``."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["data_path", "load_columns", "load_npy", "load_npz"]


def data_path(name: str):
    """Path of a file shipped in ``tsocontainer/data``.

    Parameters
    ----------
    name : str
        File name inside the package data folder.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If the package was installed without that file.
    """
    path = resources.files("tsocontainer") / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"tsocontainer data file {name!r} is missing from the install ({path})")
    return path


@lru_cache(maxsize=None)
def load_columns(name: str, delimiter: str = ",", skiprows: int = 0) -> tuple:
    """Read a two-or-more column text table (``#`` comments) as float arrays.

    Parameters
    ----------
    name : str
        File name inside the package data folder.
    delimiter : str
        Column separator.
    skiprows : int
        Header lines to skip (e.g. a ``wave,tp`` line).

    Returns
    -------
    tuple of ndarray
        One read-only float array per column.
    """
    arr = np.loadtxt(data_path(name), delimiter=delimiter, comments="#", ndmin=2,
                     skiprows=skiprows)
    cols = tuple(np.ascontiguousarray(arr[:, i]) for i in range(arr.shape[1]))
    for col in cols:
        col.setflags(write=False)
    return cols


@lru_cache(maxsize=None)
def load_npy(name: str) -> np.ndarray:
    """Read a shipped ``.npy`` array (read-only)."""
    arr = np.load(data_path(name))
    arr.setflags(write=False)
    return arr


@lru_cache(maxsize=None)
def load_npz(name: str, key: str) -> np.ndarray:
    """Read array ``key`` of a shipped (compressed) ``.npz`` file (read-only).

    Parameters
    ----------
    name : str
        File name inside the package data folder.
    key : str
        Name of the array in the archive.

    Returns
    -------
    ndarray
    """
    with np.load(data_path(name)) as archive:
        arr = archive[key]
    arr.setflags(write=False)
    return arr
