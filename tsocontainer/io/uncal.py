"""Find, check and read JWST ``uncal`` ramp segments into plain arrays, block by block.

An ``*_uncal.fits`` segment (the level-1b product, ``stdatamodels`` ``Level1bModel``)
holds the raw ramps: ``SCI`` as ``(nint, ngroups, ny, nx)`` unsigned 16-bit DN, the
``INT_TIMES`` and ``GROUP`` tables and the exposure keywords (``NGROUPS``, ``NFRAMES``,
``GROUPGAP``, ``TGROUP``, ``TFRAME``, ``NOUTPUTS``). Files that already went through the
pipeline's first steps (a ``RampModel``: float ``SCI`` with ``PIXELDQ`` and ``GROUPDQ``)
are read too; their DQ is kept.

Nothing here builds a container: :func:`tsocontainer.ramps.read_uncal` does, from the
:class:`UncalVisit` returned by :func:`load_uncal`. Every segment's headers are checked
(shapes, configuration, integration numbers) before any ramp is read, and ramps are read
with ``astropy.io.fits`` sections, so a block of integrations costs only its own memory.

The detector layout facts the ramp steps need live here too, because the simulator
writes them and the steps read them: which pixels of a subarray are reference pixels
(:func:`reference_pixel_mask`) and which amplifier reads each pixel along the fast
axis (:func:`amplifier_index`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tsocontainer.errors import SegmentMismatchError, TSOReadError
from tsocontainer.io.segments import (CONSISTENCY_KEYS, META_KEYS, _check_consistent, _int_times,
                                      find_segments, open_fits, reading_fits)
from tsocontainer.modes import detect_mode

__all__ = ["UncalVisit", "load_uncal", "inspect_uncal", "reference_pixel_mask",
           "amplifier_index", "RAMP_KEYS", "FULL_FRAME"]

log = logging.getLogger(__name__)

#: primary-header keywords of the ramp timing and readout copied into the ramp meta
RAMP_KEYS = ("NGROUPS", "NFRAMES", "GROUPGAP", "TGROUP", "TFRAME", "NOUTPUTS", "NRESETS",
             "DRPFRMS1", "FASTAXIS", "SLOWAXIS", "EXSEGNUM", "INTSTART", "INTEND")

#: full-frame size (nx, ny) in DMS orientation and reference-pixel layout of each instrument:
#: 4 reference pixels on every edge of the HgCdTe detectors; 4 reference columns on each
#: side of the MIRI Si:As detectors (1032 x 1024 pixels), none along rows.
FULL_FRAME = {"NIRCAM": ((2048, 2048), 4, 4), "NIRISS": ((2048, 2048), 4, 4),
              "NIRSPEC": ((2048, 2048), 4, 4), "MIRI": ((1032, 1024), 4, 0)}


# ------------------------------------------------------------------ layout
def _frame_layout(instrument: str):
    key = str(instrument or "").upper()
    if key not in FULL_FRAME:
        raise ValueError(f"unknown instrument {instrument!r}; allowed: {', '.join(FULL_FRAME)}")
    return FULL_FRAME[key]


def reference_pixel_mask(instrument: str, shape, substrt=(1, 1)) -> np.ndarray:
    """Reference pixels of a (sub)array, from its corner on the full frame.

    Parameters
    ----------
    instrument : str
        ``INSTRUME`` (NIRCAM, NIRISS, NIRSPEC, MIRI).
    shape : (int, int)
        Subarray shape ``(ny, nx)`` (DMS orientation).
    substrt : (int, int)
        ``(SUBSTRT1, SUBSTRT2)``: 1-based full-frame column and row of pixel ``(0, 0)``.

    Returns
    -------
    ndarray of bool, shape (ny, nx)
        True on reference pixels: the outer 4 rows and columns of the 2048 x 2048 HgCdTe
        frames, the outer 4 columns of the MIRI frame, where the subarray covers them.

    Raises
    ------
    ValueError
        For an unknown instrument.

    Examples
    --------
    >>> m = reference_pixel_mask("NIRISS", (256, 2048), (1, 1793))   # SOSS SUBSTRIP256
    >>> bool(m[-1, 100]), bool(m[100, 0]), bool(m[100, 100]), int(m.sum())
    (True, True, False, 10208)
    """
    (nxf, nyf), ncol, nrow = _frame_layout(instrument)
    ny, nx = (int(s) for s in shape)
    x = int(substrt[0]) - 1 + np.arange(nx)
    y = int(substrt[1]) - 1 + np.arange(ny)
    refx = (x < ncol) | (x >= nxf - ncol)
    refy = (y < nrow) | (y >= nyf - nrow)
    return refy[:, None] | refx[None, :]


def amplifier_index(instrument: str, shape, substrt=(1, 1), noutputs: int = 1,
                    fast_axis: int = 1) -> np.ndarray:
    """Amplifier (output) that reads each pixel position along the fast axis.

    The HgCdTe detectors read four 512-pixel stripes in parallel when ``NOUTPUTS`` is 4
    (the stripes cut the fast-read direction); subarrays read through one output have a
    single amplifier. MIRI's four outputs read interleaved columns (column number
    modulo 4).

    Parameters
    ----------
    instrument : str
        ``INSTRUME``.
    shape : (int, int)
        Subarray shape ``(ny, nx)``.
    substrt : (int, int)
        ``(SUBSTRT1, SUBSTRT2)``.
    noutputs : int
        ``NOUTPUTS`` (1 or 4).
    fast_axis : int
        Frame axis of the fast read (``Mode.spec.onef_axis``).

    Returns
    -------
    ndarray of int, shape (shape[fast_axis],)
        Amplifier number 0-3 of each position along the fast axis.

    Examples
    --------
    >>> amplifier_index("NIRCAM", (64, 2048), (1, 1), noutputs=4, fast_axis=1)[[0, 511, 512, 2047]]
    array([0, 0, 1, 3])
    """
    (nxf, nyf), _, _ = _frame_layout(instrument)
    n = int(shape[fast_axis])
    start = int(substrt[0 if fast_axis == 1 else 1]) - 1
    coord = start + np.arange(n)
    if str(instrument).upper() == "MIRI":
        return (coord % 4).astype(np.int64)
    if int(noutputs or 1) <= 1:
        return np.zeros(n, np.int64)
    full = nxf if fast_axis == 1 else nyf
    return np.clip(coord * int(noutputs) // full, 0, int(noutputs) - 1).astype(np.int64)


# --------------------------------------------------------------- inspecting
def inspect_uncal(path) -> dict:
    """Check one uncal segment's structure from its headers; return what reading needs.

    Parameters
    ----------
    path : str or path-like
        The segment.

    Returns
    -------
    dict
        ``path``, ``shape`` ``(nint, ngroups, ny, nx)``, ``names`` (extensions),
        ``mode``, ``header`` (the keywords of ``META_KEYS`` and :data:`RAMP_KEYS`),
        ``int_start``, ``int_times``, ``bunit``, ``has_dq``.

    Raises
    ------
    TSOReadError
        Not FITS, truncated, no 4D ``SCI``, DQ extensions of the wrong shape, or
        ``INTSTART``/``INTEND`` that disagree with the cube (names the file).
    UnsupportedModeError
        Headers of an unsupported mode.
    """
    path = Path(path)
    hdul = open_fits(path)
    try:
        names = [h.name.upper() for h in hdul]
        if "SCI" not in names:
            raise TSOReadError(f"{path}: no SCI extension (has {', '.join(names)})", path=path)
        size = os.path.getsize(path)
        for hdu in hdul[1:]:
            info = hdu.fileinfo()
            if info and info["datLoc"] + info["datSpan"] > size:
                raise TSOReadError(f"{path}: truncated file ({hdu.name} data ends at byte "
                                   f"{info['datLoc'] + info['datSpan']}, file has {size})",
                                   path=path)
        sci = hdul["SCI"].header
        if sci.get("NAXIS") != 4:
            raise TSOReadError(f"{path}: SCI is {sci.get('NAXIS')}D, expected the 4D ramps "
                               "(nint, ngroups, ny, nx) of an uncal file", path=path)
        shape = tuple(int(sci[f"NAXIS{i}"]) for i in (4, 3, 2, 1))
        has_dq = _check_dq(hdul, names, shape, path)
        header = hdul[0].header
        mode = detect_mode(header, filename=str(path))
        keys = set(CONSISTENCY_KEYS + META_KEYS + RAMP_KEYS + ("BSTRTIME", "EXPSTART", "EXPEND"))
        info = dict(path=path, shape=shape, names=names, mode=mode, has_dq=has_dq,
                    header={k: header.get(k) for k in keys}, bunit=sci.get("BUNIT"))
        start, end = header.get("INTSTART"), header.get("INTEND")
        if start is not None and end is not None and int(end) - int(start) + 1 != shape[0]:
            raise TSOReadError(f"{path}: INTSTART={start}, INTEND={end} but SCI has "
                               f"{shape[0]} integrations", path=path)
        ngroups = header.get("NGROUPS")
        if ngroups is not None and int(ngroups) != shape[1]:
            raise TSOReadError(f"{path}: NGROUPS={ngroups} but SCI has {shape[1]} groups",
                               path=path)
        info["int_start"] = int(start) if start is not None else None
        info["int_times"] = _int_times(hdul, names)
        return info
    finally:
        hdul.close()


def _check_dq(hdul, names, shape, path) -> bool:
    for ext, want in (("GROUPDQ", shape), ("PIXELDQ", shape[2:])):
        if ext in names and hdul[ext].header.get("NAXIS"):
            got = tuple(int(hdul[ext].header[f"NAXIS{i}"])
                        for i in range(hdul[ext].header["NAXIS"], 0, -1))
            if got != tuple(want):
                raise TSOReadError(f"{path}: {ext} shape {got} differs from {tuple(want)}",
                                   path=path)
    return "GROUPDQ" in names or "PIXELDQ" in names


def _check_ramps(infos: list) -> None:
    """Segments of one visit: same groups, frame shape, configuration, consecutive ints."""
    ref = infos[0]
    for info in infos[1:]:
        for key in ("NFRAMES", "GROUPGAP", "TGROUP"):
            a, b = ref["header"].get(key), info["header"].get(key)
            if a != b:
                raise SegmentMismatchError(
                    f"{ref['path']} and {info['path']} differ in {key}: {a!r} != {b!r}")
    _check_consistent(infos)   # shape[1:] = (ngroups, ny, nx), keywords, integration numbers


# ------------------------------------------------------------------ reading
@dataclass
class UncalVisit:
    """The checked uncal segments of one visit: metadata now, ramps on request.

    Attributes
    ----------
    files : list of str
        Segments in order.
    infos : list of dict
        What :func:`inspect_uncal` found in each.
    mode : Mode
        The instrument mode.
    meta : dict
        Header values (``META_KEYS``, :data:`RAMP_KEYS`, ``MODE``, ``NSEGMENT``, ``TIMESRC``).
    int_numbers : ndarray of int
        1-based integration numbers.
    time : astropy.time.Time
        Mid-integration times (BJD_TDB).
    """

    files: list
    infos: list = field(repr=False)
    mode: object = field(repr=False)
    meta: dict = field(repr=False)
    int_numbers: np.ndarray = field(repr=False)
    time: object = field(repr=False)

    @property
    def N(self) -> int:
        """Number of integrations."""
        return int(self.int_numbers.size)

    @property
    def ngroups(self) -> int:
        """Groups per integration."""
        return int(self.infos[0]["shape"][1])

    @property
    def sh(self) -> tuple:
        """Frame shape ``(ny, nx)``."""
        return tuple(self.infos[0]["shape"][2:])

    def read(self, i0: int, i1: int):
        """Ramps of integrations ``i0:i1`` (0-based over the visit), across segments.

        Parameters
        ----------
        i0, i1 : int
            Integration range.

        Returns
        -------
        data : ndarray of float32, shape (i1 - i0, ngroups, ny, nx)
            DN.
        groupdq : ndarray of uint8, same shape
            ``GROUPDQ`` of the file, else zeros.
        pixeldq : ndarray of uint32, shape (ny, nx)
            ``PIXELDQ`` of the first segment read, else zeros.

        Raises
        ------
        TSOReadError
            When a segment cannot be read (names it and the integrations).
        """
        i0, i1 = max(0, int(i0)), min(self.N, int(i1))
        n = max(0, i1 - i0)
        data = np.empty((n, self.ngroups) + self.sh, np.float32)
        gdq = np.zeros(data.shape, np.uint8)
        pdq = None
        offset = 0
        for info in self.infos:
            nseg = info["shape"][0]
            a, b = max(i0, offset), min(i1, offset + nseg)
            if a < b:
                pdq = self._read_part(info, a - offset, b - offset, data[a - i0:b - i0],
                                      gdq[a - i0:b - i0], pdq)
            offset += nseg
        if pdq is None:
            pdq = np.zeros(self.sh, np.uint32)
        return data, gdq, pdq

    @staticmethod
    def _read_part(info, a, b, data, gdq, pdq):
        with reading_fits(info["path"], f"integrations {a}-{b - 1}") as hdul:
            if not _read_uint16(hdul["SCI"], info["path"], a, data):
                data[...] = hdul["SCI"].section[a:b]
            if "GROUPDQ" in info["names"]:
                gdq[...] = hdul["GROUPDQ"].section[a:b]
            if pdq is None and "PIXELDQ" in info["names"]:
                pdq = np.asarray(hdul["PIXELDQ"].data, np.uint32)
        return pdq


def _read_uint16(hdu, path, a: int, out) -> bool:
    """Integrations ``a:a + len(out)`` of an uncompressed unsigned 16-bit ``SCI`` (BITPIX
    16, BZERO 32768, the uncal convention) straight into the float32 ``out``, one
    integration at a time through a reused buffer (astropy's section makes a uint16 copy
    of the whole range first); the same values. False (nothing read) for other layouts."""
    h = hdu.header
    if (h.get("BITPIX") != 16 or h.get("BZERO") != 32768 or h.get("BSCALE", 1) != 1
            or "BLANK" in h or h.get("ZIMAGE") or out.dtype != np.float32):
        return False
    per = int(np.prod(out.shape[1:]))
    buf = np.empty(out.shape[1:], ">i2")
    with open(path, "rb") as fh:
        fh.seek(hdu.fileinfo()["datLoc"] + a * per * 2)
        for one in out:
            if fh.readinto(buf) != per * 2:
                raise OSError(f"SCI data end before integration {a + len(out) - 1}")
            np.add(buf, np.float32(32768), out=one)
    return True


def _meta(infos, timesrc) -> dict:
    h = infos[0]["header"]
    meta = {k: h[k] for k in META_KEYS + RAMP_KEYS if h.get(k) is not None}
    for k in ("EXSEGNUM", "INTSTART", "INTEND"):
        meta.pop(k, None)
    meta["MODE"] = infos[0]["mode"].name
    meta["NSEGMENT"] = len(infos)
    meta["TIMESRC"] = timesrc
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in meta.items()}


def load_uncal(paths_or_glob) -> UncalVisit:
    """Check the uncal segments of one visit (headers only) and describe them.

    Parameters
    ----------
    paths_or_glob : str, path-like or sequence
        Segment files or glob patterns (sorted by segment number).

    Returns
    -------
    UncalVisit
        Metadata, times and a ``read(i0, i1)`` method for blocks of ramps.

    Raises
    ------
    FileNotFoundError, TSOReadError, SegmentMismatchError, UnsupportedModeError
        Missing or unreadable files, segments of different configurations or with gaps
        in the integration numbers, unsupported modes (the message names the files).

    Examples
    --------
    >>> import tempfile
    >>> from tsocontainer.sim.ramps import simulate_ramps
    >>> v = simulate_ramps("miri-lrs", nint=4, out=tempfile.mkdtemp(), ngroups=5, seed=1)
    >>> u = load_uncal(v.files)
    >>> u.N, u.ngroups, u.sh
    (4, 5, (416, 72))
    """
    from tsocontainer.io.times import times_from_segments

    files = find_segments(paths_or_glob)
    infos = [inspect_uncal(f) for f in files]
    _check_ramps(infos)
    int_numbers = np.concatenate([np.arange(i["int_start"], i["int_start"] + i["shape"][0])
                                  for i in infos])
    time, timesrc = times_from_segments(infos, int_numbers)
    meta = _meta(infos, timesrc)
    if meta.get("TGROUP") in (None, 0):
        raise TSOReadError(f"{files[0]}: no TGROUP (group time) in the primary header: the "
                           "ramps cannot be fitted", path=files[0])
    log.info("uncal visit: %d segment(s), %d integrations x %d groups of %s, %s",
             len(files), int_numbers.size, infos[0]["shape"][1], infos[0]["shape"][2:],
             infos[0]["mode"].name)
    return UncalVisit([str(f) for f in files], infos, infos[0]["mode"], meta, int_numbers, time)
