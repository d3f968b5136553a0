"""The geometry of one visit: the one place that knows axes, subarray corner and orders.

A :class:`Geometry` is small and immutable. Step algorithms take it (with arrays)
instead of a whole container, so they can be called on any cube, and the dispersion
axis, the 1/f axis and the subarray offset are computed here and nowhere else.

Coordinates: frames are ``(ny, nx)`` in DMS orientation. ``dispersion_axis`` is the
frame axis along which wavelength changes (1: columns, 0: rows); the
*dispersion-major* view puts the dispersion last.

Subarrays: a header's window (``SUBSTRT1/2``, ``SUBSIZE1/2``) is matched to the real
TSO subarrays of its instrument (:mod:`tsocontainer.modes._subarrays`, one shipped
table); a window that is neither a known subarray nor a crop of one is refused with a
:class:`~tsocontainer.errors.TSOValueError` naming the file and the keywords.

* ``x_offset``: table coordinate of dispersion pixel 0. A mode's wavelength and trace
  tables are indexed along the dispersion from a fixed detector pixel (its
  ``dispersion_origin``: column 1025 for the PRISM table measured on SUB512, row 529
  for the MIRI map, column 1 otherwise), so ``x_offset = SUBSTRT(dispersion) - origin``
  for every subarray, cropped or not.
* ``y_offset``: rows (columns for MIRI) by which the frame starts inside the known
  subarray it was cut from; the trace tables are in the coordinates of that subarray.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tsocontainer.errors import TSOValueError

__all__ = ["Geometry", "geometry_from_meta", "match_subarray"]

#: header keywords the geometry reads
_KEYS = ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2", "SUBARRAY", "PWCPOS")


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
    y_offset : int
        Cross-dispersion pixels between the known subarray's first line and the frame's.
    known : Subarray, optional
        The real subarray the frame is (or was cropped from), when known.

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
    y_offset: int = 0
    known: object = field(default=None, compare=False, hash=False, repr=False)

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

        In the frame's own coordinates: the mode's trace at table pixels
        ``x_offset + arange(n_disp)``, less ``y_offset``.

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
        guess = np.asarray(self.mode.trace_guess(order, x=x, header=self.trace_header), float)
        return guess - self.y_offset

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


def _values(meta, header_fallback) -> dict:
    values = {k: meta.get(k) for k in _KEYS}
    if any(v is None for v in values.values()) and header_fallback is not None:
        head = header_fallback() or {}
        values = {k: values[k] if values[k] is not None else head.get(k) for k in _KEYS}
    return values


def _where(source) -> str:
    return f"{source}: " if source else ""


def match_subarray(mode, meta: dict, shape, source=None):
    """The known subarray a header's window is, or was cropped from.

    Parameters
    ----------
    mode : Mode
        The exposure's mode (instrument, detector, grating).
    meta : dict-like
        Header values: ``SUBSTRT1``, ``SUBSTRT2`` (required for a check),
        ``SUBSIZE1``, ``SUBSIZE2`` (default: the frame shape), ``SUBARRAY``.
    shape : tuple of int
        Frame shape ``(ny, nx)``.
    source : str or path-like, optional
        The file, for error messages.

    Returns
    -------
    Subarray or None
        None when the header has no corner (nothing to check).

    Raises
    ------
    TSOValueError
        When ``SUBSIZE`` disagrees with the frame shape, or the window lies inside no
        known subarray of the instrument and detector (or not inside the one that
        ``SUBARRAY`` names); the message names the file and the keywords.

    Examples
    --------
    >>> from tsocontainer.modes import Mode, get_mode
    >>> prism = Mode(get_mode("nirspec"), grating="PRISM", detector="NRS1", subarray="SUB512")
    >>> match_subarray(prism, {"SUBSTRT1": 1025, "SUBSTRT2": 957}, (32, 512)).name
    'SUB512'
    """
    from tsocontainer.modes._subarrays import known_subarrays

    s1, s2 = meta.get("SUBSTRT1"), meta.get("SUBSTRT2")
    if mode is None or s1 is None or s2 is None:
        return None
    ny, nx = (int(v) for v in shape)
    n1 = int(meta.get("SUBSIZE1") if meta.get("SUBSIZE1") is not None else nx)
    n2 = int(meta.get("SUBSIZE2") if meta.get("SUBSIZE2") is not None else ny)
    s1, s2 = int(s1), int(s2)
    name = str(meta.get("SUBARRAY") or "").strip().upper()
    window = (f"SUBARRAY={name or '?'}, SUBSTRT1={s1}, SUBSTRT2={s2}, SUBSIZE1={n1}, "
              f"SUBSIZE2={n2}")
    if (n1, n2) != (nx, ny):
        raise TSOValueError(f"{_where(source)}{window} but the frames are {ny} x {nx} pixels",
                            path=source)
    inst, det = mode.spec.instrument, mode.detector or None
    rows = known_subarrays(inst, det)
    if not rows:
        dets = sorted({r.detector for r in known_subarrays(inst)})
        raise TSOValueError(f"{_where(source)}{window}: no known {inst} TSO subarray on "
                            f"DETECTOR={det} (known detectors: {', '.join(dets)})", path=source)
    named = [r for r in rows if r.name == name]
    pool = named or rows
    inside = [r for r in pool if r.contains(s1, s2, n1, n2)]
    grating = (mode.grating or "").upper()
    if not inside:
        if named:
            same = [r for r in named if r.grating in ("", grating)] or named
            known = sorted({r.describe() for r in same})
            what = f"is not inside {name} of {inst} {det or ''}".replace("  ", " ")
        else:
            known = sorted({r.name for r in rows})
            what = f"matches no known {inst} {det or ''} subarray".replace("  ", " ")
        raise TSOValueError(f"{_where(source)}{window} {what}; known: {'; '.join(known)} "
                            "(tsocontainer/data/jwst_tso_subarrays.csv)", path=source)

    def rank(r):
        exact = r.corner == (s1, s2) and (r.subsize1, r.subsize2) == (n1, n2)
        return (not exact, bool(grating) and r.grating not in ("", grating),
                r.subsize1 * r.subsize2)
    return min(inside, key=rank)


def geometry_from_meta(mode, meta: dict, shape, header_fallback=None, source=None) -> Geometry:
    """Build the geometry of a visit from its mode and header values.

    With ``SUBSTRT1``/``SUBSTRT2`` the window is matched to a known subarray
    (:func:`match_subarray`, which raises on an unknown window) and the offsets are
    computed from the real corner; without them the frame is taken to be the named
    subarray at its real corner (or the mode's table frame when it has no name).

    Parameters
    ----------
    mode : Mode or None
        The instrument mode (None: dispersion along columns, 1/f along rows).
    meta : dict
        Header values (``SUBSTRT1``, ``SUBSTRT2``, ``SUBSIZE1``, ``SUBSIZE2``,
        ``SUBARRAY``, ``PWCPOS``).
    shape : tuple of int
        Frame shape ``(ny, nx)``.
    header_fallback : callable, optional
        Returns a header (dict-like) to consult for keys ``meta`` lacks.
    source : str or path-like, optional
        The file the values come from (named in errors).

    Returns
    -------
    Geometry

    Raises
    ------
    TSOValueError
        When the header's window is no known subarray of the instrument (see
        :func:`match_subarray`).

    Examples
    --------
    >>> geometry_from_meta(None, {}, (32, 512)).x_offset
    0
    >>> from tsocontainer.modes import Mode, get_mode
    >>> prism = Mode(get_mode("nirspec"), grating="PRISM", detector="NRS1", subarray="SUB512")
    >>> geometry_from_meta(prism, {"SUBSTRT1": 1025, "SUBSTRT2": 957}, (32, 512)).x_offset
    0
    >>> geometry_from_meta(prism, {"SUBSTRT1": 1, "SUBSTRT2": 1}, (32, 512), source="seg1.fits")
    Traceback (most recent call last):
    ...
    tsocontainer.errors.TSOValueError: seg1.fits: SUBARRAY=SUB512, SUBSTRT1=1, SUBSTRT2=1, SUBSIZE1=512, SUBSIZE2=32 is not inside SUB512 of NIRSPEC NRS1; known: SUB512 (SUBSTRT1=1025, SUBSTRT2=957, SUBSIZE1=512, SUBSIZE2=32) (tsocontainer/data/jwst_tso_subarrays.csv)
    """
    spec = getattr(mode, "spec", None)
    disp = spec.dispersion_axis if spec is not None else 1
    onef = spec.onef_axis if spec is not None else 0
    key = spec.key if spec is not None else ""
    values = _values(meta, header_fallback)
    subarray = str(getattr(mode, "subarray", "") or values["SUBARRAY"] or "")
    values["SUBARRAY"] = values["SUBARRAY"] or subarray
    known = match_subarray(mode, values, shape, source)
    if known is not None:
        substrt = (int(values["SUBSTRT1"]), int(values["SUBSTRT2"]))
    else:
        known = _nominal(mode, subarray)
        substrt = known.corner if known is not None else (1, 1)
    x_offset = y_offset = 0
    if known is not None:
        x_offset = substrt[0 if disp == 1 else 1] - mode.dispersion_origin()
        y_offset = substrt[1 if disp == 1 else 0] - known.corner[1 if disp == 1 else 0]
    header = {"PWCPOS": values["PWCPOS"]} if values["PWCPOS"] is not None else {}
    return Geometry(tuple(shape), disp, onef, x_offset, tuple(spec.orders) if spec else (1,), key,
                    subarray, substrt, header, mode, y_offset, known)


def _nominal(mode, subarray: str):
    """The named subarray at its real corner (None without a mode or a known name)."""
    if mode is None or not subarray:
        return None
    from tsocontainer.modes._subarrays import nominal_subarray

    try:
        return nominal_subarray(mode.spec.instrument, subarray, mode.detector or None,
                                mode.grating or None)
    except KeyError:
        return None
