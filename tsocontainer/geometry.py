"""The geometry of one visit: the one place that knows axes, subarray corner and orders.

A :class:`Geometry` is small and immutable. Step algorithms take it (with arrays)
instead of a whole container, so they can be called on any cube, and the dispersion
axis, the 1/f axis and the subarray offset are computed here and nowhere else.

Coordinates: frames are ``(ny, nx)`` in DMS orientation. ``dispersion_axis`` is the
frame axis along which wavelength changes (1: columns, 0: rows); the
*dispersion-major* view puts the dispersion last. ``x_offset`` is the mode-table
coordinate of dispersion pixel 0: the shipped wavelength and trace tables of a mode are
indexed from the nominal start of its subarray, and a cropped or shifted subarray
starts ``x_offset`` pixels further.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Geometry", "geometry_from_meta"]

#: nominal first pixel (SUBSTRT, 1-based) along the dispersion of each mode's tables
_NOMINAL_START = {"miri": 529}


@dataclass(frozen=True)
class Geometry:
    """Axes, subarray placement and orders of one visit.

    Parameters
    ----------
    shape : tuple of int
        Frame shape ``(ny, nx)``.
    dispersion_axis : int
        Frame axis along which wavelength changes (1: columns, 0: rows).
    onef_axis : int
        Frame axis along which 1/f noise is constant (the fast-read direction).
    x_offset : int
        Mode-table coordinate of dispersion pixel 0.
    orders : tuple of int
        Spectral orders of the mode.
    key : str
        Mode key (``soss``, ``nirspec``, ``nircam``, ``miri``; empty if unknown).
    subarray : str
        ``SUBARRAY`` keyword.
    substrt : tuple of int
        ``(SUBSTRT1, SUBSTRT2)``, 1-based detector pixel of the subarray's corner.
    header : dict
        Header values the mode's trace and wavelength models take (``PWCPOS``).
    mode : Mode, optional
        The instrument mode (its trace and wavelength models), when known.

    Examples
    --------
    >>> g = Geometry((32, 512), dispersion_axis=1, onef_axis=0)
    >>> g.n_disp, g.n_cross, g.dm_shape
    (512, 32, (32, 512))
    >>> Geometry((416, 72), dispersion_axis=0, onef_axis=1).dm_shape
    (72, 416)
    """

    shape: tuple
    dispersion_axis: int = 1
    onef_axis: int = 0
    x_offset: int = 0
    orders: tuple = (1,)
    key: str = ""
    subarray: str = ""
    substrt: tuple = (1, 1)
    header: dict = field(default_factory=dict, compare=False, hash=False)
    mode: object = field(default=None, compare=False, hash=False, repr=False)

    def __post_init__(self):
        if self.dispersion_axis not in (0, 1) or self.onef_axis not in (0, 1):
            raise ValueError(f"axes must be 0 or 1, got dispersion_axis={self.dispersion_axis}, "
                             f"onef_axis={self.onef_axis}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def n_disp(self) -> int:
        """Pixels along the dispersion."""
        return self.shape[self.dispersion_axis]

    @property
    def n_cross(self) -> int:
        """Pixels across the dispersion."""
        return self.shape[1 - self.dispersion_axis]

    @property
    def dm_shape(self) -> tuple:
        """Frame shape in the dispersion-major view ``(n_cross, n_disp)``."""
        return (self.n_cross, self.n_disp)

    def trace_guess(self, order: int, n_disp: int | None = None):
        """Nominal cross-dispersion centre of ``order`` at each dispersion pixel (NaN if none).

        Parameters
        ----------
        order : int
            Spectral order.
        n_disp : int, optional
            Number of dispersion pixels (default: the frame's).

        Returns
        -------
        ndarray of float
        """
        import numpy as np

        n = self.n_disp if n_disp is None else n_disp
        if self.mode is None:
            return np.full(n, np.nan)
        x = self.x_offset + np.arange(n, dtype=float)
        return np.asarray(self.mode.trace_guess(order, x=x, header=self.trace_header), float)

    def wavelength(self, order: int, x=None, shift: float = 0.0):
        """Wavelength (micron) at dispersion pixels ``x`` of this frame (NaN if unknown).

        Parameters
        ----------
        order : int
            Spectral order.
        x : array_like, optional
            Dispersion pixels of the frame (default: all).
        shift : float
            Shift of the spectrum along the dispersion (pixels).

        Returns
        -------
        ndarray of float
        """
        import numpy as np

        x = np.arange(self.n_disp, dtype=float) if x is None else np.asarray(x, float)
        if self.mode is None:
            return np.full(x.shape, np.nan)
        return np.asarray(self.mode.wavelength(order, x + self.x_offset - shift,
                                               header=self.trace_header), float)

    @property
    def trace_header(self) -> dict | None:
        """The header values of the trace model (None when there are none)."""
        return dict(self.header) if self.header else None


def geometry_from_meta(mode, meta: dict, shape, header_fallback=None) -> Geometry:
    """Build the geometry of a visit from its mode and header values.

    Parameters
    ----------
    mode : Mode or None
        The instrument mode (None: dispersion along columns, 1/f along rows).
    meta : dict
        Header values (``SUBSTRT1``, ``SUBSTRT2``, ``SUBARRAY``, ``PWCPOS``).
    shape : tuple of int
        Frame shape ``(ny, nx)``.
    header_fallback : callable, optional
        Returns a header (dict-like) to consult for keys ``meta`` lacks.

    Returns
    -------
    Geometry

    Examples
    --------
    >>> geometry_from_meta(None, {}, (32, 512)).x_offset
    0
    """
    spec = getattr(mode, "spec", None)
    disp = spec.dispersion_axis if spec is not None else 1
    onef = spec.onef_axis if spec is not None else 0
    key = spec.key if spec is not None else ""
    wanted = ("SUBSTRT1", "SUBSTRT2", "PWCPOS")
    values = {k: meta.get(k) for k in wanted}
    if any(v is None for v in values.values()) and header_fallback is not None:
        head = header_fallback() or {}
        values = {k: values[k] if values[k] is not None else head.get(k) for k in wanted}
    start = values["SUBSTRT1" if disp == 1 else "SUBSTRT2"]
    offset = 0 if start is None else int(start) - _NOMINAL_START.get(key, 1)
    substrt = tuple(int(values[k]) if values[k] is not None else 1 for k in ("SUBSTRT1", "SUBSTRT2"))
    header = {"PWCPOS": values["PWCPOS"]} if values["PWCPOS"] is not None else {}
    return Geometry(tuple(shape), disp, onef, offset, tuple(spec.orders) if spec else (1,), key,
                    str(getattr(mode, "subarray", "") or meta.get("SUBARRAY", "")), substrt,
                    header, mode)
