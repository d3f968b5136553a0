"""Find, check and read the JWST TSO segments of one visit into plain arrays.

Segment files (``*-seg001_*_rateints.fits``, ``*_calints.fits``) are read
block by block with ``astropy.io.fits`` sections, so a visit never needs more
memory than the container itself: the jwst datamodels (``stdatamodels``)
materialise all five cubes of a segment at once. The files are the same ones
``stdatamodels.jwst.datamodels.open`` reads; DQ mnemonics come from it.
"""
from __future__ import annotations

import glob
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsocontainer.errors import SegmentMismatchError, TSOReadError
from tsocontainer.flags import FlagStore, SparseDQ
from tsocontainer.geometry import match_subarray
from tsocontainer.modes import Mode, detect_mode

__all__ = [
    "TSOReadError",
    "SegmentMismatchError",
    "find_segments",
    "load_segments",
    "SegmentData",
    "open_fits",
]

log = logging.getLogger(__name__)

#: primary-header keywords that must agree between the segments of one visit
CONSISTENCY_KEYS = ("INSTRUME", "EXP_TYPE", "DETECTOR", "SUBARRAY", "FILTER", "PUPIL",
                    "GRATING", "EFFINTTM", "TARGNAME")
#: primary-header keywords copied into ``TSOGroup.meta``
META_KEYS = ("TELESCOP", "INSTRUME", "EXP_TYPE", "DETECTOR", "SUBARRAY", "FILTER", "PUPIL",
             "GRATING", "TARGNAME", "TARG_RA", "TARG_DEC", "EFFINTTM", "TGROUP", "NGROUPS",
             "NINTS", "EXPSTART", "EXPEND", "PWCPOS", "READPATT", "PROGRAM", "OBSERVTN",
             "VISIT", "CAL_VER", "CRDS_CTX", "DATE-OBS", "TIME-OBS", "SUBSTRT1", "SUBSTRT2",
             "SUBSIZE1", "SUBSIZE2")

_SEG_RE = re.compile(r"-seg(\d+)", re.IGNORECASE)


# ------------------------------------------------------------------ finding
def find_segments(paths_or_glob) -> list[Path]:
    """Expand globs and sort segment files by segment number.

    Parameters
    ----------
    paths_or_glob : str, path-like or sequence of them
        Files or glob patterns.

    Returns
    -------
    list of pathlib.Path
        Existing files in segment order (``-segNNN`` in the name, else
        ``EXSEGNUM``, else ``INTSTART``, else the name).

    Raises
    ------
    FileNotFoundError
        When nothing matches or a named file does not exist.
    SegmentMismatchError
        When two files have the same segment number.
    """
    items = [paths_or_glob] if isinstance(paths_or_glob, (str, os.PathLike)) else list(paths_or_glob)
    if not items:
        raise FileNotFoundError("no input files given")
    files: list[Path] = []
    for item in items:
        s = str(item)
        if any(c in s for c in "*?["):
            found = sorted(glob.glob(s))
            if not found:
                raise FileNotFoundError(f"no files match {s!r}")
            files.extend(Path(f) for f in found)
        else:
            if not Path(s).is_file():
                raise FileNotFoundError(f"{s}: no such file")
            files.append(Path(s))
    seen: dict = {}
    for f in files:
        if f.resolve() in seen:
            raise SegmentMismatchError(f"{f} is given twice")
        seen[f.resolve()] = f
    keyed = [(_segment_key(f), f) for f in files]
    keyed.sort(key=lambda kf: (kf[0], str(kf[1])))
    for (k1, f1), (k2, f2) in zip(keyed[:-1], keyed[1:]):
        if k1 == k2 and k1[0] < 2:
            raise SegmentMismatchError(f"{f1} and {f2} are the same segment ({k1[1]}): duplicated segment")
    return [f for _, f in keyed]


def _segment_key(path: Path):
    m = _SEG_RE.search(path.name)
    if m:
        return (0, int(m.group(1)))
    try:
        from astropy.io import fits

        h = fits.getheader(path)
        if h.get("EXSEGNUM") is not None:
            return (1, int(h["EXSEGNUM"]))
        if h.get("INTSTART") is not None:
            return (1, 10_000 + int(h["INTSTART"]))
    except Exception:  # unreadable: reported properly by _inspect
        pass
    return (2, 0)


# --------------------------------------------------------------- inspecting
def _open(path: Path):
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False, mode="readonly")
    except (OSError, ValueError, TypeError, IndexError, fits.verify.VerifyWarning) as exc:
        raise TSOReadError(f"{path}: not a readable FITS file ({exc})") from None
    return hdul


def _inspect(path: Path) -> dict:
    """Check one segment's structure from its headers; return what is needed."""
    hdul = _open(path)
    try:
        names = [h.name.upper() for h in hdul]
        if "SCI" not in names:
            raise TSOReadError(f"{path}: no SCI extension (has {', '.join(names)})")
        size = os.path.getsize(path)
        for hdu in hdul[1:]:
            info = hdu.fileinfo()
            if info and info["datLoc"] + info["datSpan"] > size:
                raise TSOReadError(f"{path}: truncated file ({hdu.name} data ends at byte "
                                   f"{info['datLoc'] + info['datSpan']}, file has {size})")
        sci = hdul["SCI"]
        shape = tuple(int(sci.header.get(f"NAXIS{i}", 0)) for i in (3, 2, 1))
        if sci.header.get("NAXIS") != 3:
            raise TSOReadError(f"{path}: SCI is {sci.header.get('NAXIS')}D, expected a 3D cube "
                               "(nint, ny, nx) of a rateints/calints file")
        for ext in ("ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            if ext in names and hdul[ext].header.get("NAXIS") == 3:
                eshape = tuple(int(hdul[ext].header[f"NAXIS{i}"]) for i in (3, 2, 1))
                if eshape != shape:
                    raise TSOReadError(f"{path}: {ext} shape {eshape} differs from SCI {shape}")
        if not (("VAR_POISSON" in names and "VAR_RNOISE" in names) or "ERR" in names):
            raise TSOReadError(f"{path}: no variance (needs VAR_POISSON+VAR_RNOISE or ERR)")
        header = hdul[0].header
        mode = detect_mode(header, filename=str(path))
        match_subarray(mode, header, shape[1:], source=path)  # unknown window: error now
        nint = shape[0]
        start = header.get("INTSTART")
        end = header.get("INTEND")
        info = dict(path=path, shape=shape, names=names, mode=mode,
                    header={k: header.get(k) for k in set(CONSISTENCY_KEYS + META_KEYS + (
                        "INTSTART", "INTEND", "EXSEGNUM", "NRESETS", "BSTRTIME", "TARG_RA",
                        "TARG_DEC", "EXPSTART", "EXPEND"))},
                    bunit=sci.header.get("BUNIT"))
        info["int_start"] = int(start) if start is not None else None
        if start is not None and end is not None and int(end) - int(start) + 1 != nint:
            raise TSOReadError(f"{path}: INTSTART={start}, INTEND={end} but SCI has {nint} integrations")
        info["int_times"] = _int_times(hdul, names)
        return info
    finally:
        hdul.close()


def _int_times(hdul, names):
    if "INT_TIMES" not in names:
        return None
    data = hdul["INT_TIMES"].data
    if data is None or len(data) == 0:
        return None
    cols = [c.lower() for c in data.columns.names]
    if "int_mid_bjd_tdb" not in cols or "integration_number" not in cols:
        return None
    num = np.asarray(data[data.columns.names[cols.index("integration_number")]], np.int64)
    mid = np.asarray(data[data.columns.names[cols.index("int_mid_bjd_tdb")]], np.float64)
    return num, mid


def _check_consistent(infos: list[dict]) -> None:
    ref = infos[0]
    for info in infos[1:]:
        if info["shape"][1:] != ref["shape"][1:]:
            raise SegmentMismatchError(
                f"{ref['path']} and {info['path']} differ in frame shape: "
                f"{ref['shape'][1:]} != {info['shape'][1:]}")
        for key in CONSISTENCY_KEYS:
            a, b = ref["header"].get(key), info["header"].get(key)
            if a != b:
                raise SegmentMismatchError(
                    f"{ref['path']} and {info['path']} differ in {key}: {a!r} != {b!r}")
        if info["bunit"] != ref["bunit"]:
            raise SegmentMismatchError(f"{ref['path']} and {info['path']} differ in SCI BUNIT: "
                                       f"{ref['bunit']!r} != {info['bunit']!r}")
    # integration numbers must continue from one segment to the next
    nxt = None
    for prev, info in zip([None] + infos[:-1], infos):
        start = info["int_start"]
        if start is None:
            start = 1 if prev is None else nxt
            info["int_start"] = start
        if prev is not None and start != nxt:
            kind = "duplicated or overlapping" if start < nxt else "a gap in"
            raise SegmentMismatchError(
                f"{prev['path']} and {info['path']}: {kind} integration numbers "
                f"(previous ends at {nxt - 1}, next starts at {start})")
        nxt = start + info["shape"][0]


# ------------------------------------------------------------------ reading
@dataclass
class SegmentData:
    """The arrays and metadata of one visit's segments, as read (no container).

    :func:`tsocontainer.group.read_segments` turns it into a
    :class:`~tsocontainer.TSOGroup`.
    """

    sci: np.ndarray
    var: np.ndarray
    dqs: SparseDQ
    flags: FlagStore
    time: object
    int_numbers: np.ndarray
    wave: np.ndarray | None
    mode: Mode
    meta: dict
    files: list
    invalid: int
    timesrc: str


def load_segments(paths_or_glob, *, block_size: int | None = None,
                  progress: bool | None = None) -> SegmentData:
    """Check and read the rateints/calints segments of one visit into plain arrays.

    Every segment's headers are checked before any cube is read (see
    :func:`tsocontainer.group.read_segments` for what the arrays hold).

    Parameters
    ----------
    paths_or_glob : str, path-like or sequence
        Segment files or glob patterns.
    block_size : int, optional
        Integrations read at a time (default: about 64 MB per block).
    progress : bool, optional
        Show a progress bar (default: when writing to a terminal).

    Returns
    -------
    SegmentData

    Raises
    ------
    FileNotFoundError, TSOReadError, SegmentMismatchError, UnsupportedModeError
        As :func:`tsocontainer.group.read_segments`.
    """
    files = find_segments(paths_or_glob)
    infos = [_inspect(f) for f in files]
    _check_consistent(infos)
    n_total = sum(i["shape"][0] for i in infos)
    ny, nx = infos[0]["shape"][1:]
    sci = np.empty((n_total, ny, nx), np.float32)
    var = np.empty((n_total, ny, nx), np.float32)
    npix = ny * nx
    if block_size is None:
        block_size = max(1, int(16e6 // npix))
    reader = _BlockReader(sci, var, npix)
    from tqdm import tqdm

    bar = tqdm(total=n_total, unit="int", desc="read", disable=not _want_progress(progress))
    for info in infos:
        reader.read_file(info, block_size, bar)
    bar.close()
    dqs = SparseDQ(reader.static, np.concatenate(reader.dq_index) if reader.dq_index else [],
                   np.concatenate(reader.dq_value) if reader.dq_value else [], n_total)
    flags = FlagStore(sci.shape)
    invalid = np.concatenate(reader.invalid) if reader.invalid else np.zeros(0, np.int64)
    flags.set_indices("invalid", invalid)
    int_numbers = np.concatenate([np.arange(i["int_start"], i["int_start"] + i["shape"][0])
                                  for i in infos])
    times, timesrc = segment_times(infos, int_numbers)
    meta = _meta(infos, timesrc)
    wave, meta["WAVESRC"] = _read_wave(infos)
    return SegmentData(sci, var, dqs, flags, times, int_numbers, wave, infos[0]["mode"], meta,
                       [str(f) for f in files], int(invalid.size), timesrc)


def _want_progress(progress) -> bool:
    if progress is not None:
        return bool(progress)
    import sys

    return sys.stderr.isatty()


class _BlockReader:
    """Copies segment cubes block by block into the preallocated arrays."""

    def __init__(self, sci, var, npix):
        self.sci, self.var, self.npix = sci, var, npix
        self.offset = 0
        self.static = None
        self.dq_index, self.dq_value, self.invalid = [], [], []

    def read_file(self, info, block_size, bar) -> None:
        path, names = info["path"], info["names"]
        hdul = _open(path)
        try:
            nint = info["shape"][0]
            for i0 in range(0, nint, block_size):
                i1 = min(nint, i0 + block_size)
                try:
                    self._read_block(hdul, names, i0, i1)
                except (OSError, ValueError, TypeError) as exc:
                    raise TSOReadError(f"{path}: cannot read integrations {i0}-{i1 - 1} ({exc})") from None
                bar.update(i1 - i0)
            self.offset += nint
        finally:
            hdul.close()

    def _read_block(self, hdul, names, i0, i1) -> None:
        o0, o1 = self.offset + i0, self.offset + i1
        sci = self.sci[o0:o1]
        sci[...] = hdul["SCI"].section[i0:i1]
        var = self.var[o0:o1]
        if "VAR_POISSON" in names and "VAR_RNOISE" in names:
            var[...] = hdul["VAR_POISSON"].section[i0:i1]
            var += hdul["VAR_RNOISE"].section[i0:i1]
            if "VAR_FLAT" in names and hdul["VAR_FLAT"].header.get("NAXIS") == 3:
                var += hdul["VAR_FLAT"].section[i0:i1]
        else:
            err = hdul["ERR"].section[i0:i1]
            np.multiply(err, err, out=var)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(sci)
            bad |= ~(var > 0)
        self.invalid.append(np.flatnonzero(bad) + o0 * self.npix)
        if "DQ" in names:
            dq = np.asarray(hdul["DQ"].section[i0:i1], dtype=np.uint32)
        else:
            dq = np.zeros(sci.shape, np.uint32)
        if self.static is None:  # DQ shared by all integrations of the first block
            self.static = np.bitwise_and.reduce(dq, axis=0)
        idx = np.flatnonzero(dq != self.static[None])
        self.dq_index.append(idx + o0 * self.npix)
        self.dq_value.append(dq.reshape(-1)[idx])


def _meta(infos, timesrc) -> dict:
    h = infos[0]["header"]
    meta = {k: h[k] for k in META_KEYS if h.get(k) is not None}
    meta["MODE"] = infos[0]["mode"].name
    meta["NSEGMENT"] = len(infos)
    meta["TIMESRC"] = timesrc
    meta["BUNIT"] = infos[0]["bunit"] or ""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in meta.items()}


def _read_wave(infos):
    info = infos[0]
    if "WAVELENGTH" not in info["names"]:
        return None, "none"
    hdul = _open(info["path"])
    try:
        wave = hdul["WAVELENGTH"].data
        if wave is None or wave.ndim != 2 or wave.shape != tuple(info["shape"][1:]):
            return None, "none"
        return np.asarray(wave, np.float32), f"WAVELENGTH extension of {info['path'].name}"
    finally:
        hdul.close()



def segment_times(infos, int_numbers):
    """Mid-integration times of the segments (see :mod:`tsocontainer.io.times`)."""
    from tsocontainer.io.times import times_from_segments

    return times_from_segments(infos, int_numbers)


def open_fits(path):
    """Open a FITS file, turning astropy's errors into :class:`TSOReadError` naming it."""
    return _open(Path(path))
