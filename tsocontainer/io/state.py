"""Save and restore a container's state as one FITS file (no container class here).

The file holds named image HDUs (arrays), a TIME table and a JSON ``STATE`` blob;
:meth:`tsocontainer.TSOGroup.write` and :meth:`tsocontainer.TSOGroup.read` decide what
goes in. Writes go to a temporary file beside the target, then ``os.replace``: a reader
never sees half a file and an interrupted write leaves the old file intact.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from tsocontainer._disk import is_mapped, release
from tsocontainer._version import __version__
from tsocontainer.errors import TSOReadError

__all__ = ["atomic_path", "write_state_file", "read_state_file"]

log = logging.getLogger(__name__)


def atomic_path(path) -> Path:
    """Temporary file name next to ``path`` for an atomic write.

    Parameters
    ----------
    path : str or path-like
        The final file.

    Returns
    -------
    Path
        ``.<name>.tmp-<pid>`` in the same folder.

    Examples
    --------
    >>> atomic_path("out/state.fits").name.startswith(".state.fits.tmp-")
    True
    """
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _header_cards(ph, meta: dict) -> None:
    for k, v in meta.items():
        if len(k) <= 8 and isinstance(v, (str, int, float, bool)) and k.upper() == k:
            if isinstance(v, str) and len(v) > 68:
                continue
            try:
                ph[k] = v
            except (ValueError, KeyError):
                pass


def write_state_file(path, arrays: dict, time_columns: dict, state: dict, *, meta=None,
                     protect=(), overwrite: bool = False) -> str:
    """Write arrays, a time table and a JSON state atomically to one FITS file.

    Parameters
    ----------
    path : str or path-like
        Output file.
    arrays : dict of str -> ndarray
        Image HDUs, by extension name (upper case, <= 68 characters).
    time_columns : dict of str -> (format, ndarray)
        Columns of the ``TIME`` table (FITS formats such as ``"D"``, ``"K"``).
    state : dict
        JSON-serialisable state (stored as the ``STATE`` extension).
    meta : dict, optional
        Values also written as primary-header cards (keys of up to 8 upper-case letters).
    protect : sequence of path-like
        Files that must never be overwritten (the inputs).
    overwrite : bool
        Replace an existing output.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        If ``path`` is one of ``protect``.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> p = tempfile.mkdtemp() + "/s.fits"
    >>> _ = write_state_file(p, {"SCI": np.zeros((1, 2, 2), np.float32)},
    ...                      {"jd1": ("D", np.zeros(1))}, {"shape": [1, 2, 2]})
    >>> sorted(read_state_file(p)["arrays"])
    ['SCI']
    """
    from astropy.io import fits

    path = Path(path)
    if any(path.resolve() == Path(f).resolve() for f in protect):
        raise ValueError(f"{path}: refusing to overwrite an input file")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    hdus = [fits.PrimaryHDU()]
    ph = hdus[0].header
    ph["TSOCVER"] = (__version__, "tsocontainer version")
    ph["TSOCSTAT"] = (True, "tsocontainer saved state")
    _header_cards(ph, meta or {})
    streamed = {k: a for k, a in arrays.items() if is_mapped(a) and np.ndim(a) >= 1}
    for name, arr in arrays.items():
        if name not in streamed:
            hdus.append(fits.ImageHDU(np.asarray(arr), name=name))
    cols = [fits.Column(name=k, format=f, array=np.asarray(a)) for k, (f, a) in time_columns.items()]
    hdus.append(fits.BinTableHDU.from_columns(cols, name="TIME"))
    blob = np.frombuffer(json.dumps(state).encode("utf-8"), dtype=np.uint8)
    hdus.append(fits.ImageHDU(blob, name="STATE"))
    tmp = atomic_path(path)
    t0 = time.perf_counter()
    try:
        fits.HDUList(hdus).writeto(tmp, overwrite=True)
        for name, arr in streamed.items():
            _append_streamed(tmp, name, arr)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("wrote state to %s (%.1f s)", path, time.perf_counter() - t0)
    return str(path)


_BITPIX = {"f4": -32, "f8": -64, "u1": 8, "i2": 16, "i4": 32, "i8": 64}


def _append_streamed(path, name: str, arr) -> None:
    """Append image ``name`` to the FITS file ``path`` in ~64 MB blocks (memory-mapped
    cubes of the streaming mode: astropy would byteswap the whole cube in place)."""
    from astropy.io import fits

    arr = np.asarray(arr)
    if arr.dtype.str[1:] not in _BITPIX:   # e.g. bool: written as a whole (small)
        arr = np.asarray(arr, np.uint8)
    header = fits.ImageHDU(data=None, name=name).header
    header["BITPIX"] = _BITPIX[arr.dtype.str[1:]]
    header["NAXIS"] = arr.ndim
    after = "NAXIS"
    for k, n in enumerate(arr.shape[::-1], start=1):
        header.insert(after, (f"NAXIS{k}", int(n)), after=True)
        after = f"NAXIS{k}"
    per = max(1, int(64e6 // max(arr[:1].nbytes, 1)))
    out = fits.StreamingHDU(str(path), header)
    try:
        for i in range(0, arr.shape[0], per):
            out.write(np.ascontiguousarray(arr[i:i + per]))
            release()
    finally:
        out.close()


def read_state_file(path) -> dict:
    """Read a file written by :func:`write_state_file`.

    Parameters
    ----------
    path : str or path-like
        The saved file.

    Returns
    -------
    dict
        ``arrays`` (name -> ndarray, in memory), ``time`` (column -> ndarray) and
        ``state`` (the JSON state).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    TSOReadError
        If the file is not a tsocontainer state file or is damaged (names the file).
    """
    from tsocontainer.io.segments import check_not_truncated, open_fits

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    hdul = open_fits(path)
    try:
        check_not_truncated(hdul, path)
        names = [h.name for h in hdul]
        if not hdul[0].header.get("TSOCSTAT") or "STATE" not in names:
            raise TSOReadError(f"{path}: not a tsocontainer state file (written by TSOGroup.write)",
                               path=path)
        try:
            state = json.loads(bytes(hdul["STATE"].data).decode("utf-8"))
        except (ValueError, TypeError) as exc:
            raise TSOReadError(f"{path}: damaged STATE extension ({exc})", path=path) from None
        tt = hdul["TIME"].data if "TIME" in names else None
        time = {} if tt is None else {n: np.array(tt[n]) for n in tt.columns.names}
        arrays = {h.name: np.array(h.data) for h in hdul[1:]
                  if h.name not in ("TIME", "STATE") and h.data is not None}
        return {"arrays": arrays, "time": time, "state": state}
    except (OSError, ValueError, TypeError) as exc:
        if isinstance(exc, TSOReadError):
            raise
        raise TSOReadError(f"{path}: damaged state file ({exc})", path=path) from None
    finally:
        hdul.close()
