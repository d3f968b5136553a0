"""Instrument modes: geometry, orders, readout axis and wavelength solutions.

Each supported JWST time-series spectroscopy mode is described by a
:class:`ModeSpec` (static facts) and recognised from FITS headers by
:func:`detect_mode`, which returns a :class:`Mode` (the spec plus the
configuration of one exposure: filter, grating, detector, subarray).

Axis conventions (DMS orientation, numpy order ``(N, ny, nx)``):

* ``dispersion_axis``: the numpy axis of the 2D frame along which wavelength
  changes (``1`` = columns / x, ``0`` = rows / y).
* ``onef_axis``: the axis along which the detector is read fast; 1/f noise
  is (nearly) constant along it, so 1/f is estimated as a median along it,
  one value per line of the other axis.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import miri, nircam, nirspec, soss

__all__ = ["ModeSpec", "Mode", "MODES", "detect_mode", "get_mode", "UnsupportedModeError"]


class UnsupportedModeError(ValueError):
    """Raised when headers describe a mode tsocontainer does not support."""


@dataclass(frozen=True)
class ModeSpec:
    """Static description of one instrument mode.

    Parameters
    ----------
    name : str
        Human-readable name, e.g. ``"NIRISS SOSS"``.
    instrument : str
        ``INSTRUME`` keyword value.
    exp_types : tuple of str
        ``EXP_TYPE`` values of this mode.
    dispersion_axis : int
        Frame axis (0 = y, 1 = x) along which wavelength changes.
    onef_axis : int
        Frame axis along which 1/f noise is constant (fast-read direction).
    orders : tuple of int
        Spectral orders on the detector.
    subarrays : dict
        Nominal subarray name -> (ny, nx).
    wavelength_source : str
        Where wavelengths come from.
    module : module
        The mode module with ``wavelength`` and ``trace_guess`` functions.
    """

    key: str
    name: str
    instrument: str
    exp_types: tuple
    dispersion_axis: int
    onef_axis: int
    orders: tuple
    subarrays: dict
    wavelength_source: str
    module: object = field(repr=False, compare=False)


@dataclass(frozen=True)
class Mode:
    """A mode spec plus the configuration of one exposure.

    Parameters
    ----------
    spec : ModeSpec
        The mode.
    filter, pupil, grating, detector, subarray : str
        Header values (empty string when absent).
    """

    spec: ModeSpec
    filter: str = ""
    pupil: str = ""
    grating: str = ""
    detector: str = ""
    subarray: str = ""

    @property
    def key(self) -> str:
        """Short mode key (``soss``, ``nirspec``, ``nircam``, ``miri``)."""
        return self.spec.key

    @property
    def name(self) -> str:
        """Full name including the configuration."""
        extra = self.spec.module.config_label(self)
        return f"{self.spec.name} {extra}".strip()

    def wavelength(self, order: int = 1, x=None, header=None):
        """Wavelength (micron) of ``order`` at dispersion pixel(s) ``x``.

        Parameters
        ----------
        order : int
            Spectral order.
        x : array_like, optional
            Pixel coordinates along the dispersion axis (default: all).
        header : dict-like, optional
            Primary header values (e.g. ``PWCPOS`` for SOSS).

        Returns
        -------
        ndarray
            Wavelength in micron, NaN where undefined.
        """
        return self.spec.module.wavelength(self, order=order, x=x, header=header)

    def trace_guess(self, order: int = 1, x=None, header=None):
        """Nominal cross-dispersion centre of ``order`` at pixel(s) ``x``.

        Parameters
        ----------
        order : int
            Spectral order.
        x : array_like, optional
            Pixel coordinates along the dispersion axis (default: all).
        header : dict-like, optional
            Primary header values (``PWCPOS`` moves the SOSS traces).

        Returns
        -------
        ndarray
            Cross-dispersion pixel coordinate of the trace centre (row, or
            column for MIRI LRS), NaN where the order is off the detector.
        """
        return self.spec.module.trace_guess(self, order=order, x=x, header=header)

    def dispersion_origin(self) -> int:
        """1-based detector pixel, along the dispersion, of pixel 0 of the mode's tables.

        The geometry subtracts it from a header's ``SUBSTRT`` (along the dispersion) to
        index the shipped wavelength and trace tables.

        Returns
        -------
        int

        Examples
        --------
        >>> Mode(spec=get_mode("nirspec"), grating="PRISM").dispersion_origin()
        1025
        """
        return int(self.spec.module.dispersion_origin(self))

    def to_dict(self) -> dict:
        """Plain-dict form (for saving)."""
        return {"key": self.key, "filter": self.filter, "pupil": self.pupil,
                "grating": self.grating, "detector": self.detector,
                "subarray": self.subarray}

    @classmethod
    def from_dict(cls, d: dict) -> "Mode":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        return cls(spec=get_mode(d.pop("key")), **d)


def _spec(module) -> ModeSpec:
    return ModeSpec(module=module, **module.SPEC)


MODES = {m.SPEC["key"]: _spec(m) for m in (soss, nirspec, nircam, miri)}


def get_mode(key: str) -> ModeSpec:
    """Return the :class:`ModeSpec` of ``key``.

    Raises
    ------
    UnsupportedModeError
        Listing the supported keys.
    """
    if key not in MODES:
        raise UnsupportedModeError(
            f"unknown mode {key!r}; supported: {', '.join(MODES)}")
    return MODES[key]


def _hval(header, key) -> str:
    val = header.get(key) if header is not None else None
    return "" if val is None else str(val).strip()


def supported_modes_text() -> str:
    """One line per supported mode, for error messages."""
    return "; ".join(f"{s.name} (INSTRUME={s.instrument}, EXP_TYPE={'/'.join(s.exp_types)})"
                     for s in MODES.values())


def detect_mode(header, filename: str = "") -> Mode:
    """Recognise the mode of an exposure from its primary header.

    Parameters
    ----------
    header : dict-like
        Primary header (``INSTRUME``, ``EXP_TYPE``, ``FILTER``, ...).
    filename : str, optional
        Used in error messages.

    Returns
    -------
    Mode

    Raises
    ------
    UnsupportedModeError
        When the instrument/exposure type is not a supported TSO mode; the
        message lists the supported modes.
    """
    inst = _hval(header, "INSTRUME").upper()
    exp = _hval(header, "EXP_TYPE").upper()
    for spec in MODES.values():
        if inst == spec.instrument and exp in spec.exp_types:
            mode = Mode(spec=spec, filter=_hval(header, "FILTER").upper(),
                        pupil=_hval(header, "PUPIL").upper(),
                        grating=_hval(header, "GRATING").upper(),
                        detector=_hval(header, "DETECTOR").upper(),
                        subarray=_hval(header, "SUBARRAY").upper())
            spec.module.check_config(mode, filename)
            return mode
    where = f"{filename}: " if filename else ""
    raise UnsupportedModeError(
        f"{where}INSTRUME={inst or '?'} EXP_TYPE={exp or '?'} is not a supported "
        f"time-series spectroscopy mode; supported: {supported_modes_text()}")
