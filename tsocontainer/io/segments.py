"""Find, check and read the JWST TSO segments of one visit into plain arrays.

Segment files (``*-seg001_*_rateints.fits``, ``*_calints.fits``) are read
block by block with ``astropy.io.fits`` sections, so a visit never needs more
memory than the container itself: the jwst datamodels (``stdatamodels``)
materialise all five cubes of a segment at once. The files are the same ones
``stdatamodels.jwst.datamodels.open`` reads; DQ mnemonics come from it.
"""
from __future__ import annotations

from tsocontainer._util import interactive

import contextlib
import glob
import logging
import os
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsocontainer._disk import release
from tsocontainer.errors import SegmentMismatchError, TSOReadError, TSOValueError
from tsocontainer.flags import FlagStore, SparseDQ
from tsocontainer.geometry import match_subarray
from tsocontainer.modes import Mode, detect_mode

__all__ = [
    "TSOReadError",
    "SegmentMismatchError",
    "find_segments",
    "load_segments",
    "row_window",
    "SegmentData",
    "open_fits",
    "reading_fits",
    "check_not_truncated",
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
#: |SCI| above this is overflow garbage (float32 max is 3.4e38), flagged invalid
_HUGE = 1e30


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
            raise SegmentMismatchError(f"{f} is given twice", path=f)
        seen[f.resolve()] = f
    keyed = [(_segment_key(f), f) for f in files]
    if len(keyed) > 1 and any(k[0] == 2 for k, _ in keyed):
        keyed = _keys_from_times(keyed)
    keyed.sort(key=lambda kf: (kf[0], str(kf[1])))
    for (k1, f1), (k2, f2) in zip(keyed[:-1], keyed[1:]):
        if k1 == k2:
            raise SegmentMismatchError(f"{f1} and {f2} are the same segment ({k1[1]}): "
                                       "duplicated segment", path=f2)
    return [f for _, f in keyed]


def _keys_from_times(keyed):
    """Order files that carry no segment number by their first INT_TIMES mid-time.

    Raises SegmentMismatchError when a file has neither a number nor times: ordering by
    file name would silently label one segment's data with another's integrations.
    """
    out = []
    for key, f in keyed:
        first = None
        try:
            from astropy.io import fits

            with fits.open(f, memmap=False) as hdul:
                if "INT_TIMES" in hdul and hdul["INT_TIMES"].data is not None \
                        and len(hdul["INT_TIMES"].data):
                    first = float(np.min(hdul["INT_TIMES"].data["int_mid_BJD_TDB"]))
        except (OSError, KeyError, ValueError, TypeError):
            first = None
        if first is None or not np.isfinite(first):
            raise SegmentMismatchError(
                f"{f}: cannot tell which segment this is: no -segNNN in its name, no EXSEGNUM "
                "or INTSTART in its header and no INT_TIMES; rename it or fix its header",
                path=f)
        out.append(((3, first), f))
    log.info("no segment numbers: %d files ordered by their INT_TIMES", len(out))
    return out


def _segment_key(path: Path):
    m = _SEG_RE.search(path.name)
    if m:
        return (0, int(m.group(1)))
    try:
        from astropy.io import fits

        h = fits.getheader(path)
    except Exception:  # unreadable: reported properly by _inspect
        return (2, 0)
    for key, base in (("EXSEGNUM", 0), ("INTSTART", 10_000)):
        if h.get(key) is not None:
            try:
                return (1, base + int(h[key]))
            except (TypeError, ValueError):
                raise TSOReadError(f"{path}: {key}={h[key]!r} is not a whole number",
                                   path=path) from None
    return (2, 0)


# --------------------------------------------------------------- inspecting
def _open(path: Path):
    from astropy.io import fits

    try:
        with open(path, "rb") as fh:
            magic = fh.read(9)
    except OSError as exc:
        raise TSOReadError(f"{path}: cannot open ({exc.strerror or exc})", path=path) from None
    if not magic:
        raise TSOReadError(f"{path}: empty file (0 bytes)", path=path)
    if magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic[:6] == b"\xfd7zXZ\x00":
        raise TSOReadError(f"{path}: compressed file (gzip/bzip2/xz); decompress it first "
                           "(the reader reads segments block by block from plain FITS)", path=path)
    if magic != b"SIMPLE  =":
        raise TSOReadError(f"{path}: not a readable FITS file (it does not start with a FITS "
                           "header)", path=path)
    size = os.path.getsize(path)
    if size % 2880:
        raise TSOReadError(f"{path}: truncated or damaged FITS file ({size} bytes is not a "
                           "whole number of 2880-byte FITS blocks)", path=path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False, mode="readonly")
    except (OSError, ValueError, TypeError, IndexError, fits.verify.VerifyWarning) as exc:
        reason = " ".join(str(exc).split())
        raise TSOReadError(f"{path}: not a readable FITS file ({reason})", path=path) from None
    return hdul


def _inspect(path: Path) -> dict:
    """Check one segment's structure from its headers; return what is needed."""
    hdul = _open(path)
    try:
        names = [h.name.upper() for h in hdul]
        if "SCI" not in names:
            raise TSOReadError(f"{path}: no SCI extension (has {', '.join(names)})", path=path)
        check_not_truncated(hdul, path)
        sci = hdul["SCI"]
        shape = tuple(int(sci.header.get(f"NAXIS{i}", 0)) for i in (3, 2, 1))
        if sci.header.get("NAXIS") != 3:
            raise TSOReadError(f"{path}: SCI is {sci.header.get('NAXIS')}D, expected a 3D cube "
                               "(nint, ny, nx) of a rateints/calints file", path=path)
        if "DQ" in names:
            dqh = hdul["DQ"].header
            if dqh.get("NAXIS") != 3:
                raise TSOReadError(f"{path}: DQ is {dqh.get('NAXIS')}D, expected a cube like SCI",
                                   path=path)
            if dqh.get("BITPIX") not in (8, 16, 32, 64):
                raise TSOReadError(f"{path}: DQ holds floating-point values (BITPIX="
                                   f"{dqh.get('BITPIX')}); DQ must be integer bit flags", path=path)
        for ext in ("ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            if ext in names and hdul[ext].header.get("NAXIS") == 3:
                eshape = tuple(int(hdul[ext].header[f"NAXIS{i}"]) for i in (3, 2, 1))
                if eshape != shape:
                    raise TSOReadError(f"{path}: {ext} shape {eshape} differs from SCI {shape}", path=path)
        if not (("VAR_POISSON" in names and "VAR_RNOISE" in names) or "ERR" in names):
            raise TSOReadError(f"{path}: no variance (needs VAR_POISSON+VAR_RNOISE or ERR)", path=path)
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
        info["int_start"] = _whole(path, "INTSTART", start)
        end = _whole(path, "INTEND", end)
        if start is not None and end is not None and end - info["int_start"] + 1 != nint:
            raise TSOReadError(f"{path}: INTSTART={start}, INTEND={end} but SCI has {nint} "
                               "integrations", path=path)
        _check_segment_number(path, header)
        info["int_times"] = _int_times(hdul, names)
        return info
    finally:
        hdul.close()


def _whole(path, key, value):
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TSOReadError(f"{path}: {key}={value!r} is not a whole number", path=path) from None


def check_not_truncated(hdul, path) -> None:
    """Raise TSOReadError if an HDU's data run past the end of the file (a cut-off copy)."""
    size = os.path.getsize(path)
    for hdu in hdul[1:]:
        info = hdu.fileinfo()
        if info and info["datLoc"] + info["datSpan"] > size:
            raise TSOReadError(f"{path}: truncated file ({hdu.name} data ends at byte "
                               f"{info['datLoc'] + info['datSpan']}, the file has {size})",
                               path=path)


def _check_segment_number(path, header) -> None:
    """The -segNNN of the file name and EXSEGNUM must agree when both exist."""
    m = _SEG_RE.search(Path(path).name)
    num = header.get("EXSEGNUM")
    if m and num is not None and _whole(path, "EXSEGNUM", num) != int(m.group(1)):
        raise SegmentMismatchError(f"{path}: the name says segment {int(m.group(1))} but "
                                   f"EXSEGNUM={num}: renamed file?", path=path)


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
                f"{ref['shape'][1:]} != {info['shape'][1:]}", path=ref['path'])
        for key in CONSISTENCY_KEYS:
            a, b = ref["header"].get(key), info["header"].get(key)
            if a != b:
                raise SegmentMismatchError(
                    f"{ref['path']} and {info['path']} differ in {key}: {a!r} != {b!r}", path=ref['path'])
        if info["bunit"] != ref["bunit"]:
            raise SegmentMismatchError(f"{ref['path']} and {info['path']} differ in SCI BUNIT: "
                                       f"{ref['bunit']!r} != {info['bunit']!r}", path=ref['path'])
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
                f"(previous ends at {nxt - 1}, next starts at {start})", path=prev['path'])
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
                  progress: bool | None = None, scratch=None,
                  detector_rows=None, var_scratch=None) -> SegmentData:
    """Check and read the rateints/calints segments of one visit into plain arrays.

    Every segment's headers are checked before any cube is read (see
    :func:`tsocontainer.group.read_segments` for what the arrays hold).

    Parameters
    ----------
    paths_or_glob : str, path-like or sequence
        Segment files or glob patterns.
    block_size : int, optional
        Integrations read at a time (default: 16 MB of float32 per cube).
    progress : bool, optional
        Show a progress bar (default: when writing to a terminal).
    scratch : tsocontainer._disk.Scratch, optional
        Put SCI and VAR in memory-mapped files of this folder (streaming mode;
        the pages read are released block by block) instead of memory.
    detector_rows : (int, int), optional
        Read only the frame rows on these detector rows (1-based, inclusive,
        DMS; ``SUBSTRT2`` places the frame): e.g. ``(1793, 2048)`` keeps the
        SOSS orders of a FULL frame. ``SUBSTRT2``/``SUBSIZE2`` of ``meta``
        describe the rows read.
    var_scratch : tsocontainer._disk.Scratch, optional
        Put only VAR in a memory-mapped file of this folder (SCI stays in
        memory) if its file system has room for 1.5 times the cube (else in
        memory, with a warning); ignored when ``scratch`` is given.

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
    rows = row_window(infos, detector_rows)
    nx = infos[0]["shape"][2]
    ny = rows[1] - rows[0]
    if scratch is None:
        sci = np.empty((n_total, ny, nx), np.float32)
        if var_scratch is not None and not var_scratch.has_room(1.5 * sci.nbytes):
            log.warning("%s: less than %.1f GB free, the variance and flag cubes stay in memory",
                        var_scratch.path, 1.5 * sci.nbytes / 1e9)
            var_scratch = None
        var = (np.empty((n_total, ny, nx), np.float32) if var_scratch is None
               else var_scratch.zeros((n_total, ny, nx), np.float32, "var"))
    else:
        sci = scratch.zeros((n_total, ny, nx), np.float32, "sci")
        var = scratch.zeros((n_total, ny, nx), np.float32, "var")
    npix = ny * nx
    # the static DQ plane: bits set in every one of the first integrations (as many as a
    # 64 MB block of float32, or block_size); read in blocks of 16 MB of float32 per cube
    static_n = block_size or max(1, int(16e6 // npix))
    if block_size is None:
        block_size = max(1, int(4e6 // npix))
    int_numbers = np.concatenate([np.arange(i["int_start"], i["int_start"] + i["shape"][0])
                                  for i in infos])
    times, timesrc = segment_times(infos, int_numbers)   # checked before any cube is read
    reader = _BlockReader(sci, var, npix, rows, static_n)
    from tqdm import tqdm

    bar = tqdm(total=n_total, unit="int", desc="read", disable=not _want_progress(progress))
    for info in infos:
        reader.read_file(info, block_size, bar)
        _check_content(info, reader.stats[info["path"]], npix)
    bar.close()
    dqs = SparseDQ(reader.static, np.concatenate(reader.dq_index) if reader.dq_index else [],
                   np.concatenate(reader.dq_value) if reader.dq_value else [], n_total)
    flags = FlagStore(sci.shape, alloc=None if scratch is None else (
        lambda n: scratch.zeros((n,), np.uint8, "flag")))
    invalid = np.concatenate(reader.invalid) if reader.invalid else np.zeros(0, np.int64)
    flags.set_indices("invalid", invalid)
    meta = _meta(infos, timesrc)
    wave, meta["WAVESRC"] = _read_wave(infos)
    if ny != infos[0]["shape"][1]:     # a window of the frame: meta says which rows
        meta["SUBSTRT2"] = int(infos[0]["header"]["SUBSTRT2"]) + rows[0]
        meta["SUBSIZE2"] = ny
        wave = None if wave is None else np.ascontiguousarray(wave[rows[0]:rows[1]])
    return SegmentData(sci, var, dqs, flags, times, int_numbers, wave, infos[0]["mode"], meta,
                       [str(f) for f in files], int(invalid.size), timesrc)


def row_window(infos, detector_rows) -> tuple:
    """Frame rows ``(r0, r1)`` of the segments on ``detector_rows`` (all rows if None).

    Parameters
    ----------
    infos : list of dict
        The segments' inspections (shape, header, path).
    detector_rows : (int, int) or None
        First and last detector row, 1-based and inclusive (DMS).

    Returns
    -------
    (int, int)

    Raises
    ------
    TSOValueError
        Without ``SUBSTRT2`` (the rows cannot be placed), or when no row of the
        frame is on those detector rows (names the file and both windows).

    Examples
    --------
    >>> from pathlib import Path
    >>> info = {"path": Path("seg1.fits"), "shape": (5, 2048, 2048), "header": {"SUBSTRT2": 1}}
    >>> row_window([info], (1793, 2048))
    (1792, 2048)
    """
    ny = int(infos[0]["shape"][1])
    if detector_rows is None:
        return 0, ny
    first, last = (int(v) for v in detector_rows)
    path, start = infos[0]["path"], infos[0]["header"].get("SUBSTRT2")
    if start is None:
        raise TSOValueError(f"{path}: no SUBSTRT2 in the header: cannot place detector rows "
                            f"{first}-{last} in its frame", path=path)
    r0, r1 = max(first - int(start), 0), min(last - int(start) + 1, ny)
    if r1 <= r0:
        raise TSOValueError(f"{path}: detector rows {first}-{last} are outside its frame "
                            f"(rows {start}-{int(start) + ny - 1})", path=path)
    return r0, r1


def _check_content(info, stats, npix) -> None:
    """Refuse a segment with nothing usable (in the rows read); warn when most is unusable."""
    path, n = info["path"], info["shape"][0] * npix
    invalid, dnu, lo, hi = stats
    if invalid == n:
        raise TSOValueError(f"{path}: every SCI value is non-finite, huge (> {_HUGE:g}) or has "
                            "zero, negative or non-finite variance: nothing to reduce", path=path)
    if dnu == n:
        raise TSOValueError(f"{path}: every pixel of every integration is DO_NOT_USE in DQ: "
                            "nothing to reduce", path=path)
    if lo == hi:
        raise TSOValueError(f"{path}: SCI is the constant {lo!r} wherever it is valid: no signal "
                            "(a blank or placeholder file?)", path=path)
    for count, what in ((invalid, "invalid (non-finite SCI or bad variance)"),
                        (dnu, "DO_NOT_USE in DQ")):
        if count > 0.5 * n:
            log.warning("%s: %.1f %% of the pixels are %s", path.name, 100 * count / n, what)


def _want_progress(progress) -> bool:
    if progress is not None:
        return bool(progress)

    return interactive()


class _BlockReader:
    """Copies segment cubes block by block into the preallocated arrays.

    Before the first file's blocks, the static DQ plane is the AND of the DQ of its
    first ``static_n`` integrations (read in blocks); the first block of a file is
    read alone, the others on two threads, each with its own file handle (astropy
    sections seek and read on the handle). Per-block results are combined in block
    order, so the outcome depends neither on the threads nor on the block size.
    """

    THREADS = max(1, min(2, os.cpu_count() or 1))

    def __init__(self, sci, var, npix, rows=None, static_n: int = 1):
        self.sci, self.var, self.npix = sci, var, npix
        self.static_n = max(1, int(static_n))
        self.rows = slice(None) if rows is None else slice(*rows)
        self.offset = 0
        self.static = None
        self.dq_index, self.dq_value, self.invalid = [], [], []
        #: per file: [invalid pixels, DO_NOT_USE pixels, finite min, finite max]
        self.stats: dict = {}

    def read_file(self, info, block_size, bar) -> None:
        from concurrent.futures import ThreadPoolExecutor

        path, names = info["path"], info["names"]
        self.stats[path] = st = [0, 0, np.inf, -np.inf]
        nint = info["shape"][0]
        blocks = [(i0, min(nint, i0 + block_size)) for i0 in range(0, nint, block_size)]
        local, handles, lock = threading.local(), [], threading.Lock()

        def one(i0, i1):
            if not hasattr(local, "hdul"):
                local.hdul = _open(path)
                with lock:
                    handles.append(local.hdul)
            try:
                res = self._read_block(local.hdul, names, i0, i1)
            except (OSError, ValueError, TypeError) as exc:
                raise TSOReadError(f"{path}: cannot read integrations {i0}-{i1 - 1} ({exc})",
                                   path=path) from None
            release()
            return res

        if self.static is None:
            self.static = self._static_plane(path, names, min(nint, self.static_n),
                                             blocks[0][1] - blocks[0][0])
        try:
            results = [one(*blocks[0])]
            with ThreadPoolExecutor(self.THREADS) as pool:
                futures = [pool.submit(one, a, b) for a, b in blocks[1:]]
                bar.update(blocks[0][1] - blocks[0][0])
                for (a, b), fut in zip(blocks[1:], futures):
                    results.append(fut.result())
                    bar.update(b - a)
        finally:
            for h in handles:
                h.close()
        for inv, idx, val, (nbad, ndnu, lo, hi) in results:
            self.invalid.append(inv)
            self.dq_index.append(idx)
            self.dq_value.append(val)
            st[0] += nbad
            st[1] += ndnu
            st[2], st[3] = min(st[2], lo), max(st[3], hi)
        self.offset += nint

    def _static_plane(self, path, names, n, step):
        """DQ bits set in each of the first ``n`` integrations (``step`` at a time)."""
        shape = self.sci.shape[1:]
        if "DQ" not in names:
            return np.zeros(shape, np.uint32)
        static = np.full(shape, np.iinfo(np.uint32).max, np.uint32)
        with reading_fits(path, f"DQ of integrations 0-{n - 1}") as hdul:
            for a in range(0, n, step):
                dq = np.asarray(hdul["DQ"].section[(slice(a, min(n, a + step)), self.rows)],
                                dtype=np.uint32)
                static &= np.bitwise_and.reduce(dq, axis=0)
        return static

    def _read_block(self, hdul, names, i0, i1):
        o0, o1 = self.offset + i0, self.offset + i1
        win = (slice(i0, i1), self.rows)
        sci = self.sci[o0:o1]
        sci[...] = hdul["SCI"].section[win]
        var = self.var[o0:o1]
        if "VAR_POISSON" in names and "VAR_RNOISE" in names:
            var[...] = hdul["VAR_POISSON"].section[win]
            var += hdul["VAR_RNOISE"].section[win]
            if "VAR_FLAT" in names and hdul["VAR_FLAT"].header.get("NAXIS") == 3:
                var += hdul["VAR_FLAT"].section[win]
        else:
            err = hdul["ERR"].section[win]
            np.multiply(err, err, out=var)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(sci)
            bad |= ~(var > 0)
            bad |= ~np.isfinite(var)
            bad |= np.abs(sci) > _HUGE    # float32-overflow garbage, not a measurement
        invalid = np.flatnonzero(bad) + o0 * self.npix
        nbad, lo, hi = int(np.count_nonzero(bad)), np.inf, -np.inf
        if not bad.all():
            lo = float(np.min(sci, where=~bad, initial=np.inf))
            hi = float(np.max(sci, where=~bad, initial=-np.inf))
        if "DQ" in names:
            dq = np.asarray(hdul["DQ"].section[win], dtype=np.uint32)
        else:
            dq = np.zeros(sci.shape, np.uint32)
        ndnu = int(np.count_nonzero(dq & np.uint32(1)))
        idx = np.flatnonzero(dq != self.static[None])
        return invalid, idx + o0 * self.npix, dq.reshape(-1)[idx], (nbad, ndnu, lo, hi)


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


@contextlib.contextmanager
def reading_fits(path, what: str):
    """Open ``path`` for reading ``what``; an error while reading becomes a
    :class:`TSOReadError` naming the file and ``what``; the file is closed after.

    Examples
    --------
    >>> import tempfile
    >>> from astropy.io import fits
    >>> p = tempfile.mkdtemp() + "/x.fits"
    >>> fits.HDUList([fits.PrimaryHDU()]).writeto(p)
    >>> try:
    ...     with reading_fits(p, "integrations 0-1") as hdul:
    ...         hdul["SCI"]
    ... except TSOReadError as exc:
    ...     print(str(exc).split(": ", 1)[1].split(" (")[0])
    cannot read integrations 0-1
    """
    hdul = _open(Path(path))
    try:
        yield hdul
    except TSOReadError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise TSOReadError(f"{path}: cannot read {what} ({exc})", path=path) from None
    finally:
        hdul.close()
