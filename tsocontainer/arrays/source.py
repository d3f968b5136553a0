"""What the step algorithms read: a cube's working data by blocks, with its geometry.

A :class:`CubeSource` bundles plain arrays (the good-pixel mask, times, integration
numbers, a wavelength map) with a function that returns the working data and
variance of integrations ``i0:i1`` and the visit's :class:`~tsocontainer.geometry.Geometry`.
The tracing, stability and extraction algorithms take one of these, never a
container, so they run on any cube (in memory, memory-mapped or made block by block).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tsocontainer.geometry import Geometry

__all__ = ["CubeSource"]


@dataclass
class CubeSource:
    """Blocks of working data and variance, the mask, times and the geometry of a visit.

    Parameters
    ----------
    read : callable
        ``read(i0, i1) -> (data, var)``: float32 ``(i1 - i0, ny, nx)`` blocks in detector
        orientation (views may be returned: callers do not write into them).
    mask : ndarray of bool, shape (N, ny, nx)
        Usable pixels.
    geometry : Geometry
        Axes, subarray offset, orders and the mode's models.
    time : ndarray of float, shape (N,)
        Mid-integration times (BJD_TDB).
    int_numbers : ndarray of int, shape (N,)
        Exposure integration numbers.
    wave : ndarray, optional
        Wavelength map from the files (``(ny, nx)`` or ``(norder, ny, nx)``).
    meta : dict
        Header values.
    corrected : bool
        Whether ``read`` returns copies with corrections applied (else views of the input).
    block_size : int, optional
        Integrations per block of the algorithms that loop over blocks (None: about
        64 MB of float32 per block). An execution setting: it changes no result.
    progress : bool, optional
        Show progress bars (None: when stderr is a terminal).
    read_data : callable, optional
        ``read_data(i0, i1) -> data``: the working data alone, for the algorithms that
        do not use the variance (tracing, shifts): the variance block is then neither
        copied nor corrected. None: ``read(i0, i1)[0]``.

    Examples
    --------
    >>> import numpy as np
    >>> sci = np.ones((4, 3, 5), np.float32)
    >>> src = CubeSource.from_arrays(sci, sci)
    >>> src.N, src.geometry.n_disp, src.read(0, 2)[0].shape
    (4, 5, (2, 3, 5))
    >>> CubeSource.from_arrays(sci, sci, block_size=2, progress=False).block_size
    2
    >>> src.read_block(0, 2, var=False)[1] is None
    True
    """

    read: Callable
    mask: np.ndarray
    geometry: Geometry
    time: np.ndarray
    int_numbers: np.ndarray
    wave: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    corrected: bool = False
    block_size: int | None = None
    progress: bool | None = None
    read_data: Callable | None = None

    def read_block(self, i0: int, i1: int, var: bool = True):
        """``(data, var)`` of integrations ``i0:i1``; ``var`` is None when ``var`` is False.

        Parameters
        ----------
        i0, i1 : int
            Integration range.
        var : bool
            Also read the variance.

        Returns
        -------
        data : ndarray of float32, shape (i1 - i0, ny, nx)
        var : ndarray of float32 or None
        """
        if var:
            return self.read(i0, i1)
        if self.read_data is not None:
            return self.read_data(i0, i1), None
        return self.read(i0, i1)[0], None

    @property
    def N(self) -> int:
        """Number of integrations."""
        return self.mask.shape[0]

    @property
    def shape(self) -> tuple:
        """Cube shape ``(N, ny, nx)``."""
        return self.mask.shape

    @classmethod
    def from_arrays(cls, sci, var, mask=None, geometry: Geometry | None = None, time=None,
                    **kwargs) -> "CubeSource":
        """A source over in-memory cubes (no corrections).

        Parameters
        ----------
        sci, var : ndarray, shape (N, ny, nx)
            Data and variance.
        mask : ndarray of bool, optional
            Usable pixels (default: all).
        geometry : Geometry, optional
            Default: dispersion along columns, 1/f along rows, no mode.
        time : ndarray, optional
            Times (default ``0..N-1``).
        **kwargs
            ``int_numbers``, ``wave``, ``meta``, ``block_size``, ``progress``.

        Returns
        -------
        CubeSource
        """
        sci = np.asarray(sci, np.float32)
        var = np.asarray(var, np.float32)
        n = sci.shape[0]
        mask = np.ones(sci.shape, bool) if mask is None else np.asarray(mask, bool)
        geometry = geometry or Geometry(sci.shape[1:])
        time = np.arange(n, dtype=float) if time is None else np.asarray(time, float)
        ints = kwargs.pop("int_numbers", None)
        ints = np.arange(1, n + 1) if ints is None else np.asarray(ints)
        return cls(lambda a, b: (sci[a:b], var[a:b]), mask, geometry, time, ints, **kwargs)
