"""Detector numbers of the ramp steps: gain, read noise, saturation, references.

Every number a ramp step needs comes from, in order of precedence:

1. a value the user gives: a number, an array of the subarray's shape or of the full
   frame, or a CRDS-format reference file (``SCI`` of a ``GainModel``,
   ``ReadnoiseModel``, ``SuperBiasModel`` or ``SaturationModel``, ``COEFFS`` of a
   ``LinearityModel``, ``DQ`` of a ``MaskModel``) of the subarray or of the full frame
   (cut at ``SUBSTRT1``/``SUBSTRT2``);
2. the per-detector defaults of :data:`DETECTOR_DEFAULTS`, each with its source;
3. otherwise an error naming what is missing (never a silent guess).

Read noise is the correlated-double-sampling (CDS) noise in DN, the convention of the
jwst READNOISE reference files and of stcal (which divides it by sqrt(2) for one read).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tsocontainer.errors import TSOReadError, TSOValueError

__all__ = ["DETECTOR_DEFAULTS", "detector_default", "load_map", "load_linearity", "load_mask"]

log = logging.getLogger(__name__)

_JDOX = "https://jwst-docs.stsci.edu/"
_NIRCAM = (_JDOX + "jwst-near-infrared-camera/nircam-instrumentation/nircam-detector-overview/"
           "nircam-detector-performance (table of individual detectors)")
_NIRISS = (_JDOX + "jwst-near-infrared-imager-and-slitless-spectrograph/niriss-instrumentation/"
           "niriss-detector-overview/niriss-detector-performance")
_MIRI = (_JDOX + "jwst-mid-infrared-instrument/miri-instrumentation/miri-detector-overview/"
         "miri-detector-performance")

#: per detector: gain (e-/DN), CDS read noise (DN), raw saturation (DN) and where each
#: comes from. None: no documented value is shipped (give a reference, an array or a
#: number). The NIRCam long-wavelength values are the table of individual detectors
#: (A5 = NRCALONG: CDS read noise 13.17 e-, gain 1.84, raw saturation 59 200 DN;
#: B5 = NRCBLONG: 13.33 e-, 1.80, 58 500 DN); NIRISS gain 1.61 e-/DN; MIRI gain ~4 e-/DN
#: and read noise ~6 DN ("approximate" values of its table).
DETECTOR_DEFAULTS = {
    "NRCALONG": {"gain": 1.84, "readnoise": 13.17 / 1.84, "saturation": 59200.0,
                 "source": _NIRCAM},
    "NRCBLONG": {"gain": 1.80, "readnoise": 13.33 / 1.80, "saturation": 58500.0,
                 "source": _NIRCAM},
    "NIS": {"gain": 1.61, "readnoise": None, "saturation": None, "source": _NIRISS},
    "NRS1": {"gain": None, "readnoise": None, "saturation": None, "source": ""},
    "NRS2": {"gain": None, "readnoise": None, "saturation": None, "source": ""},
    "MIRIMAGE": {"gain": 4.0, "readnoise": 6.0, "saturation": None, "source": _MIRI},
}

#: FITS extension holding each kind of reference
_EXT = {"gain": "SCI", "readnoise": "SCI", "superbias": "SCI", "saturation": "SCI",
        "linearity": "COEFFS", "mask": "DQ"}


def detector_default(kind: str, detector: str):
    """The documented default ``kind`` (gain, readnoise, saturation) of ``detector``.

    Parameters
    ----------
    kind : {"gain", "readnoise", "saturation"}
        What is wanted.
    detector : str
        ``DETECTOR`` keyword.

    Returns
    -------
    value : float or None
        None when no documented value is shipped.
    source : str
        Where the value comes from.

    Examples
    --------
    >>> detector_default("gain", "NRCALONG")[0]
    1.84
    """
    entry = DETECTOR_DEFAULTS.get(str(detector or "").upper(), {})
    return entry.get(kind), entry.get("source", "")


def _cut(arr, shape, substrt, what: str):
    """``arr`` as the subarray of ``shape`` at ``substrt`` (it may be that subarray already)."""
    arr = np.asarray(arr)
    sh = tuple(shape)
    if arr.shape[-2:] == sh:
        return arr
    x0, y0 = int(substrt[0]) - 1, int(substrt[1]) - 1
    if arr.shape[-2] >= y0 + sh[0] and arr.shape[-1] >= x0 + sh[1] and x0 >= 0 and y0 >= 0:
        return arr[..., y0:y0 + sh[0], x0:x0 + sh[1]]
    raise TSOValueError(f"{what} has shape {arr.shape[-2:]}: neither the subarray {sh} nor a "
                        f"frame that contains it at SUBSTRT=({x0 + 1}, {y0 + 1})")


def _read_reference(path: Path, kind: str, shape, substrt):
    from astropy.io import fits

    ext = _EXT[kind]
    try:
        with fits.open(path, memmap=False) as hdul:
            names = [h.name.upper() for h in hdul]
            if ext not in names:
                raise TSOReadError(f"{path}: no {ext} extension for a {kind} reference (has "
                                   f"{', '.join(names)})", path=path)
            data = np.asarray(hdul[ext].data)
            head = hdul[0].header
            ref0 = (int(head.get("SUBSTRT1", 1) or 1), int(head.get("SUBSTRT2", 1) or 1))
    except OSError as exc:
        raise TSOReadError(f"{path}: cannot read the {kind} reference ({exc})", path=path) from None
    # the reference may itself be a subarray: cut relative to its own corner
    rel = (int(substrt[0]) - ref0[0] + 1, int(substrt[1]) - ref0[1] + 1)
    try:
        return _cut(data, shape, rel, f"{path} ({kind})")
    except TSOValueError as exc:
        raise TSOValueError(str(exc), path=path) from None


def load_map(value, kind: str, shape, substrt=(1, 1), detector: str = "") -> tuple:
    """A 2D map of ``kind`` for the subarray, from a user value or the detector default.

    Parameters
    ----------
    value : None, float, array_like or path-like
        None: the default of :data:`DETECTOR_DEFAULTS`; a number: a constant map; an
        array: the map (subarray or full frame); a path: a CRDS-format reference file.
    kind : {"gain", "readnoise", "superbias", "saturation"}
        What the map is.
    shape : (int, int)
        Subarray shape ``(ny, nx)``.
    substrt : (int, int)
        ``(SUBSTRT1, SUBSTRT2)`` of the subarray.
    detector : str
        ``DETECTOR`` (for the defaults).

    Returns
    -------
    map : ndarray of float32, shape ``shape``
    source : str
        What it came from (recorded in the history).

    Raises
    ------
    TSOValueError
        No value and no documented default, a non-positive gain or read noise, or a map
        that does not fit the subarray.
    TSOReadError
        An unreadable reference file.

    Examples
    --------
    >>> m, src = load_map(2.0, "gain", (2, 3))
    >>> m.shape, float(m[0, 0]), src
    ((2, 3), 2.0, 'value 2')
    """
    if value is None:
        default, source = detector_default(kind, detector)
        if default is None:
            raise TSOValueError(f"no documented default {kind} for detector {detector or '?'}: "
                                f"give {kind}= (a reference file, an array or a number)")
        arr, source = np.full(tuple(shape), default), f"default {default:g} ({source})"
    elif isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such {kind} reference file")
        arr, source = _read_reference(path, kind, shape, substrt), f"reference {path.name}"
    elif np.ndim(value) == 0:
        arr, source = np.full(tuple(shape), float(value)), f"value {float(value):g}"
    else:
        arr, source = _cut(value, shape, substrt, f"the {kind} array"), "array"
    arr = np.asarray(arr, np.float32)
    if kind in ("gain", "readnoise"):
        bad = ~np.isfinite(arr) | (arr <= 0)
        if bad.all():
            raise TSOValueError(f"{kind} ({source}) has no positive finite value")
        if bad.any():  # a few bad pixels of a reference: the median, and say so
            log.warning("%s (%s): %d non-positive or non-finite pixels set to the median",
                        kind, source, int(bad.sum()))
            arr = np.where(bad, np.median(arr[~bad]), arr).astype(np.float32)
    return np.ascontiguousarray(arr), source


def load_linearity(value, shape, substrt=(1, 1)) -> tuple:
    """Linearity coefficients ``(ncoeff, ny, nx)`` from an array or a LINEARITY reference.

    Parameters
    ----------
    value : array_like or path-like
        ``c`` with corrected = ``sum_i c[i] * raw**i`` (raw: bias-subtracted DN).
    shape, substrt
        As :func:`load_map`.

    Returns
    -------
    coeffs : ndarray of float32
    source : str

    Raises
    ------
    TSOValueError
        Not 3D or not fitting the subarray.
    """
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such linearity reference file")
        arr, source = _read_reference(path, "linearity", shape, substrt), f"reference {path.name}"
    else:
        arr, source = _cut(value, shape, substrt, "the linearity array"), "array"
    arr = np.asarray(arr, np.float32)
    if arr.ndim != 3 or arr.shape[0] < 2:
        raise TSOValueError(f"linearity coefficients must be (ncoeff >= 2, ny, nx), got {arr.shape}")
    return np.nan_to_num(arr), source


def load_mask(value, shape, substrt=(1, 1)) -> tuple:
    """Pixel DQ ``(ny, nx)`` (uint32 JWST bits) from an array or a MASK reference.

    Parameters
    ----------
    value : array_like or path-like
        The DQ map.
    shape, substrt
        As :func:`load_map`.

    Returns
    -------
    dq : ndarray of uint32
    source : str
    """
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such mask reference file")
        arr, source = _read_reference(path, "mask", shape, substrt), f"reference {path.name}"
    else:
        arr, source = _cut(value, shape, substrt, "the DQ array"), "array"
    return np.ascontiguousarray(arr, dtype=np.uint32), source
