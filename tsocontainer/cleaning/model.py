"""The stored model of one correction, as the functions applying it take it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsocontainer.geometry import Geometry

__all__ = ["CorrectionModel"]


@dataclass(frozen=True)
class CorrectionModel:
    """A correction's arrays (``aux``), header values (``meta``), geometry and integrations.

    The ``apply_*`` and ``*_points`` functions of :mod:`tsocontainer.cleaning` take one
    of these instead of a container, so a correction can be applied to any block.

    Parameters
    ----------
    aux : dict of str -> ndarray
        The correction's arrays (``sky_params``, ``onef``, ``replace_int``, ...).
    meta : dict
        Header values (``SKYMETH``, ``SKYAXIS``, ``ONEFAXIS``, ...).
    geometry : Geometry
        Axes and frame shape.
    int_numbers : ndarray of int
        Exposure integration numbers of the cube's integrations.

    Examples
    --------
    >>> import numpy as np
    >>> from tsocontainer.cleaning.onef import apply_onef
    >>> m = CorrectionModel({"onef": np.ones((1, 3), np.float32),
    ...                      "onef_var": np.zeros((1, 3), np.float32)},
    ...                     {"ONEFAXIS": 0}, Geometry((2, 3)), np.array([1]))
    >>> d = np.zeros((1, 2, 3), np.float32); apply_onef(m, d, None, 0, 1); float(d.sum())
    -6.0
    """

    aux: dict
    meta: dict
    geometry: Geometry
    int_numbers: np.ndarray

    @property
    def sh(self) -> tuple:
        """Frame shape ``(ny, nx)``."""
        return self.geometry.shape
