"""Read JWST TSO segments into a TSOGroup; save and restore a group's state.

Segment files (``*-seg001_*_rateints.fits``, ``*_calints.fits``) are read
block by block with ``astropy.io.fits`` sections, so a visit never needs more
memory than the container itself: the jwst datamodels (``stdatamodels``)
materialise all five cubes of a segment at once. The files are the same ones
``stdatamodels.jwst.datamodels.open`` reads; DQ mnemonics come from it.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import re
import time as _time
import warnings
from pathlib import Path

import numpy as np

from . import __version__
from .flags import FlagStore, SparseDQ
from .group import TSOGroup
from .modes import Mode, detect_mode

__all__ = [
    "TSOReadError",
    "SegmentMismatchError",
    "find_segments",
    "read_segments",
    "write_state",
    "read_state",
    "atomic_path",
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


class TSOReadError(OSError):
    """A file cannot be read as a JWST TSO segment (names the file)."""


class SegmentMismatchError(ValueError):
    """Segments do not belong to one visit (names both files and the keyword)."""


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
def read_segments(paths_or_glob, *, block_size: int | None = None,
                  progress: bool | None = None) -> TSOGroup:
    """Read the rateints/calints segments of one visit into a :class:`TSOGroup`.

    Parameters
    ----------
    paths_or_glob : str, path-like or sequence
        Segment files or glob patterns (sorted by segment number).
    block_size : int, optional
        Integrations read at a time (default: about 64 MB per block).
    progress : bool, optional
        Show a progress bar (default: when writing to a terminal).

    Returns
    -------
    TSOGroup
        With ``sci``, ``var`` (VAR_POISSON + VAR_RNOISE [+ VAR_FLAT], else
        ERR**2), pipeline DQ, BJD_TDB mid-times, ``wave`` from a WAVELENGTH
        extension if present, ``mode`` and header ``meta``. Non-finite SCI
        and non-positive variance are flagged ``invalid``, not errors.

    Raises
    ------
    FileNotFoundError, TSOReadError
        Missing, unreadable, truncated or malformed files (names the file).
    SegmentMismatchError
        Segments from different configurations, targets or shapes, duplicated
        segments or gaps in integration numbers (names both files).
    UnsupportedModeError
        Headers of an unsupported mode (lists the supported ones).

    Examples
    --------
    >>> g = read_segments("jw01366*-seg00?_nis_rateints.fits")  # doctest: +SKIP
    >>> g.N, g.sh, g.mode.name  # doctest: +SKIP
    """
    t0 = _time.perf_counter()
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
    times, timesrc = _times(infos, int_numbers)
    meta = _meta(infos, timesrc)
    wave, meta["WAVESRC"] = _read_wave(infos)
    g = TSOGroup(sci, var, dqs, times, wave=wave, mode=infos[0]["mode"], meta=meta,
                 flags=flags, int_numbers=int_numbers, files=[str(f) for f in files])
    g._record("read_segments", {"files": [str(f) for f in files]},
              {"N": g.N, "sh": list(g.sh), "invalid": int(invalid.size), "time": timesrc,
               "seconds": round(_time.perf_counter() - t0, 3)})
    log.info("read %d segment(s): N=%d, sh=%s, %s, %d invalid pixels, %.1f s",
             len(files), g.N, g.sh, g.mode.name, invalid.size, _time.perf_counter() - t0)
    return g


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


def _times(infos, int_numbers):
    """BJD_TDB mid-times: INT_TIMES when complete, else derived from headers."""
    from astropy.time import Time

    mids = []
    for info in infos:
        it = info["int_times"]
        n0, n = info["int_start"], info["shape"][0]
        if it is None:
            break
        num, mid = it
        lookup = dict(zip(num.tolist(), mid.tolist()))
        want = [lookup.get(k) for k in range(n0, n0 + n)]
        if any(w is None or not np.isfinite(w) or w <= 0 for w in want):
            break
        mids.append(np.array(want))
    else:
        return Time(np.concatenate(mids), format="mjd", scale="tdb"), "INT_TIMES"
    mid, src = _header_times(infos[0], int_numbers)
    log.warning("%s: INT_TIMES is empty or incomplete; times derived from the header (%s)",
                infos[0]["path"].name, src)
    return mid, src


def _header_times(info, int_numbers):
    from astropy.time import Time

    h = info["header"]
    if h.get("EXPSTART") is None:
        raise TSOReadError(f"{info['path']}: no INT_TIMES and no EXPSTART: cannot derive times")
    tgroup, ngroups = h.get("TGROUP"), h.get("NGROUPS")
    nresets = h.get("NRESETS")
    nresets = 1 if nresets is None else int(nresets)
    dt = None
    if tgroup and ngroups:
        dt = float(tgroup) * (int(ngroups) + nresets) / 86400.0
    elif h.get("EFFINTTM"):
        dt = float(h["EFFINTTM"]) / 86400.0
    nints = h.get("NINTS")
    if h.get("EXPEND") and nints and int(int_numbers.max()) <= int(nints):
        span = (float(h["EXPEND"]) - float(h["EXPSTART"])) / int(nints)
        if dt is None or abs(span - dt) < 0.2 * dt:
            dt = span
    if dt is None:
        raise TSOReadError(f"{info['path']}: no INT_TIMES and no TGROUP/NGROUPS/EFFINTTM: cannot derive times")
    if h.get("BSTRTIME"):
        mjd = float(h["BSTRTIME"]) + (int_numbers - 0.5) * dt
        return Time(mjd, format="mjd", scale="tdb"), "header:BSTRTIME"
    utc = Time(float(h["EXPSTART"]) + (int_numbers - 0.5) * dt, format="mjd", scale="utc")
    ra, dec = h.get("TARG_RA"), h.get("TARG_DEC")
    if ra is None or dec is None:
        return utc.tdb, "header:EXPSTART (TDB, no barycentric correction: no TARG_RA/TARG_DEC)"
    from astropy.coordinates import EarthLocation, SkyCoord
    import astropy.units as u

    geocenter = EarthLocation.from_geocentric(0, 0, 0, unit=u.m)
    ltt = utc.light_travel_time(SkyCoord(float(ra), float(dec), unit="deg"),
                                kind="barycentric", location=geocenter)
    return (utc.tdb + ltt), "header:EXPSTART+geocentric barycentric correction"


# -------------------------------------------------------------- state I/O
def atomic_path(path) -> Path:
    """Temporary file name next to ``path`` for an atomic write."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_state(group: TSOGroup, path, overwrite: bool = False) -> str:
    """Save ``group`` (arrays, DQ, flags, time, meta, history, aux) to FITS.

    Parameters
    ----------
    group : TSOGroup
        The group.
    path : str or path-like
        Output file.
    overwrite : bool
        Replace an existing output.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        If ``path`` is one of the group's input files.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    from astropy.io import fits

    path = Path(path)
    if any(path.resolve() == Path(f).resolve() for f in group.files):
        raise ValueError(f"{path}: refusing to overwrite an input file")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    hdus = [fits.PrimaryHDU()]
    ph = hdus[0].header
    ph["TSOCVER"] = (__version__, "tsocontainer version")
    ph["TSOCSTAT"] = (True, "tsocontainer saved state")
    for k, v in group.meta.items():
        if len(k) <= 8 and isinstance(v, (str, int, float, bool)) and k.upper() == k:
            if isinstance(v, str) and len(v) > 68:
                continue
            try:
                ph[k] = v
            except (ValueError, KeyError):
                pass
    hdus += [fits.ImageHDU(group.sci, name="SCI"), fits.ImageHDU(group.var, name="VAR"),
             fits.ImageHDU(group.dqs.static, name="DQSTATIC"),
             fits.ImageHDU(group.dqs.index, name="DQINDEX"),
             fits.ImageHDU(group.dqs.value, name="DQVALUE")]
    for name, plane in group._flags.planes.items():
        hdus.append(fits.ImageHDU(plane, name=f"FLAG_{name.upper()}"))
    t = group.time.tdb
    cols = [fits.Column(name="jd1", format="D", array=np.asarray(t.jd1, float)),
            fits.Column(name="jd2", format="D", array=np.asarray(t.jd2, float)),
            fits.Column(name="integration_number", format="K", array=group.int_numbers)]
    hdus.append(fits.BinTableHDU.from_columns(cols, name="TIME"))
    if group.wave is not None:
        hdus.append(fits.ImageHDU(group.wave, name="WAVE"))
    for k, v in group.aux.items():
        hdus.append(fits.ImageHDU(np.asarray(v), name=f"AUX_{k.upper()}"))
    state = {"meta": group.meta, "history": group.history, "files": group.files,
             "mode": group.mode.to_dict() if group.mode is not None else None,
             "aux": list(group.aux), "flags": list(group._flags.planes),
             "dq_mask_bits": group.dq_mask_bits, "shape": list(group.shape),
             "corrections": list(group.corrections),
             "aux_per_int": sorted(group.aux_per_int)}
    blob = np.frombuffer(json.dumps(state).encode("utf-8"), dtype=np.uint8)
    hdus.append(fits.ImageHDU(blob, name="STATE"))
    tmp = atomic_path(path)
    try:
        fits.HDUList(hdus).writeto(tmp, overwrite=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("wrote state of %s to %s", "group", path)
    return str(path)


def read_state(path) -> TSOGroup:
    """Restore a :class:`TSOGroup` saved by :func:`write_state`.

    Parameters
    ----------
    path : str or path-like
        The saved file.

    Returns
    -------
    TSOGroup

    Raises
    ------
    TSOReadError
        If the file is not a tsocontainer state file.
    """
    from astropy.time import Time

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    hdul = _open(path)
    try:
        names = [h.name for h in hdul]
        if not hdul[0].header.get("TSOCSTAT") or "STATE" not in names:
            raise TSOReadError(f"{path}: not a tsocontainer state file (written by TSOGroup.write)")
        state = json.loads(bytes(hdul["STATE"].data).decode("utf-8"))
        shape = tuple(state["shape"])
        dqs = SparseDQ(hdul["DQSTATIC"].data, hdul["DQINDEX"].data, hdul["DQVALUE"].data, shape[0])
        flags = FlagStore(shape, {n: hdul[f"FLAG_{n.upper()}"].data for n in state["flags"]})
        tt = hdul["TIME"].data
        time = Time(np.array(tt["jd1"]), np.array(tt["jd2"]), format="jd", scale="tdb")
        aux = {k: np.array(hdul[f"AUX_{k.upper()}"].data) for k in state["aux"]}
        g = TSOGroup(np.array(hdul["SCI"].data), np.array(hdul["VAR"].data), dqs, time,
                     wave=np.array(hdul["WAVE"].data) if "WAVE" in names else None,
                     mode=Mode.from_dict(state["mode"]) if state["mode"] else None,
                     meta=state["meta"], history=state["history"], flags=flags,
                     int_numbers=np.array(tt["integration_number"]), files=state["files"],
                     aux=aux)
        g.dq_mask_bits = int(state["dq_mask_bits"])
        g.corrections = list(state.get("corrections", []))
        g.aux_per_int = set(state.get("aux_per_int", []))
        return g
    except KeyError as exc:
        raise TSOReadError(f"{path}: incomplete tsocontainer state file (missing {exc})") from None
    finally:
        hdul.close()

