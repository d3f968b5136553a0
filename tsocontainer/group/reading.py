"""Build a :class:`~tsocontainer.TSOGroup` from segment files or a saved state."""
from __future__ import annotations

import logging
import time as _time

from tsocontainer._disk import Scratch, disk_scratch, is_mapped
from tsocontainer.group.container import TSOGroup
from tsocontainer.io.segments import load_segments

__all__ = ["read_segments", "read_state"]

log = logging.getLogger("tsocontainer.io")


def read_segments(paths_or_glob, *, block_size: int | None = None,
                  progress: bool | None = None, memmap=None,
                  detector_rows=None, spill=True) -> TSOGroup:
    """Read the rateints/calints segments of one visit into a :class:`TSOGroup`.

    Parameters
    ----------
    paths_or_glob : str, path-like or sequence
        Segment files or glob patterns (sorted by segment number).
    block_size : int, optional
        Integrations read at a time (default: 16 MB of float32 per cube).
    progress : bool, optional
        Show a progress bar (default: when writing to a terminal); also the
        group's :attr:`~TSOGroup.progress` setting for its later steps.
    memmap : str, path-like or True, optional
        Streaming mode: ``sci``, ``var``, the mask, the flag planes and the
        detection data live in memory-mapped files in this folder (True: the
        system's temporary folder; files are unlinked once mapped, so nothing
        is left behind), and every block loop drops the pages it read, so the
        peak memory does not grow with the number of integrations. Results
        are the same as in memory. Default: everything in memory.
    detector_rows : (int, int), optional
        Read only the rows of the frames on these detector rows (1-based,
        inclusive, DMS): ``(1793, 2048)`` keeps the SOSS orders of a FULL
        frame (SUBSTRIP256's rows) and reads 8x less. The group's
        ``SUBSTRT2``/``SUBSIZE2`` then describe the rows read, so traces,
        wavelengths and background models are placed as for a subarray.
    spill : bool, str or path-like
        In memory (without ``memmap``): ``sci`` is held in memory; ``var``,
        the mask, the flag planes, the flag steps' boolean cubes and large
        products (replaced pixels) go to unlinked memory-mapped files in this
        folder (True: the system's temporary folder) whose pages every block
        loop drops again, so they do not sit in resident memory (``sci`` +
        ``var`` alone in anonymous memory are twice the SCI input). They are
        still arrays (``np.memmap``) to index and modify; results are the
        same. False, a folder in RAM (tmpfs) or one with less than 1.5 times
        the SCI cube free: everything in memory.

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
    TSOValueError
        ``detector_rows`` outside the frames, or frames without ``SUBSTRT2``.

    Examples
    --------
    >>> import tempfile
    >>> from tsocontainer import simulate_visit
    >>> v = simulate_visit("miri-lrs", 6, nseg=2, seed=1, out=tempfile.mkdtemp())
    >>> g = read_segments(v.files, progress=False)
    >>> g.N, g.mode.key, g.progress
    (6, 'miri', False)
    """
    t0 = _time.perf_counter()
    scratch = None
    if memmap is not None and memmap is not False:
        scratch = Scratch(memmap)
    var_scratch = None
    if scratch is None:
        var_scratch = disk_scratch(spill)
    d = load_segments(paths_or_glob, block_size=block_size, progress=progress, scratch=scratch,
                      detector_rows=detector_rows, var_scratch=var_scratch)
    g = TSOGroup(d.sci, d.var, d.dqs, d.time, wave=d.wave, mode=d.mode, meta=d.meta,
                 int_numbers=d.int_numbers, files=d.files)
    g._restore(flags=d.flags)
    if scratch is None and var_scratch is not None and not is_mapped(d.var):
        var_scratch = None   # no room to spill: all in memory
    if scratch is not None or var_scratch is not None:
        g._stream_to(scratch if scratch is not None else var_scratch)
    g.progress = progress
    dt = _time.perf_counter() - t0
    params = {"files": d.files}
    if detector_rows is not None:
        params["detector_rows"] = [int(v) for v in detector_rows]
    g._record("read_segments", params,
              {"N": g.N, "sh": list(g.sh), "invalid": d.invalid, "time": d.timesrc,
               "seconds": round(dt, 3)})
    log.info("read %d segment(s): N=%d, sh=%s, %s, %d invalid pixels, %.1f s",
             len(d.files), g.N, g.sh, g.mode.name, d.invalid, dt)
    return g


def read_state(path) -> TSOGroup:
    """Restore a group saved by :meth:`TSOGroup.write` (same as :meth:`TSOGroup.read`).

    Parameters
    ----------
    path : str or path-like
        The saved file.

    Returns
    -------
    TSOGroup
    """
    return TSOGroup.read(path)
