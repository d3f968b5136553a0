"""Disk-backed cubes of the streaming mode (``read_segments(..., memmap=...)``).

A :class:`Scratch` folder holds the memory-mapped cubes of one group (``sci``,
``var``, the mask, flag planes, detection data). Pages of a file mapping that a
process has touched count in its resident memory until they are unmapped, even
though the kernel keeps them in its page cache; :func:`release` therefore drops
this process's mappings of every live scratch cube (``madvise(MADV_DONTNEED)``:
the data stay in the page cache or on disk, the next access maps them again), and
the block loops of the package call it after every block. With no scratch cube
alive (the default, in-memory mode) it does nothing.
"""
from __future__ import annotations

import itertools
import mmap
import os
import shutil
import tempfile
import threading
import weakref
from pathlib import Path

import numpy as np

__all__ = ["Scratch", "release", "is_mapped", "read_across", "write_across",
           "is_sorted", "on_ram_disk", "disk_scratch"]

#: mmap objects of the live scratch cubes (dropped with their arrays)
_LIVE: "weakref.WeakSet" = weakref.WeakSet()
_LOCK = threading.Lock()
_COUNTER = itertools.count()


class Scratch:
    """A folder of memory-mapped scratch cubes, removed when the last user is gone.

    Parameters
    ----------
    folder : str, path-like or True
        Parent folder of the scratch files (created); True: the system's
        temporary folder. A subfolder ``tsoc-<pid>-<n>`` is made inside it and
        removed when this object is garbage collected or the interpreter
        exits. Each file is unlinked as soon as it is mapped: its disk space
        is returned when its array is freed, even after a crash.
    subfolder : bool
        False: no subfolder; the files (``tsoc-<pid>-<n>-<name>.bin``) are made
        in ``folder`` itself and unlinked at once, so a killed process leaves
        nothing behind (the spill of the in-memory mode).

    Examples
    --------
    >>> s = Scratch(True)
    >>> a = s.zeros((2, 3, 4), np.float32, "sci")
    >>> a[0, 0, 0] = 1.0
    >>> isinstance(a, np.memmap), float(a.sum()), is_mapped(a)
    (True, 1.0, True)
    >>> release()        # drops resident pages; the data stay
    >>> float(a.sum())
    1.0
    """

    def __init__(self, folder=True, subfolder: bool = True):
        parent = Path(tempfile.gettempdir() if folder is True else folder)
        parent.mkdir(parents=True, exist_ok=True)
        if subfolder:
            self.path, self._prefix = parent / f"tsoc-{os.getpid()}-{next(_COUNTER)}", ""
            self.path.mkdir()
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)
        else:
            self.path, self._prefix = parent, f"tsoc-{os.getpid()}-"
            self._finalizer = lambda: None

    def zeros(self, shape, dtype, name: str) -> np.memmap:
        """A new zero-filled memory-mapped array ``name`` (unique file in the folder)."""
        shape = tuple(int(s) for s in shape)
        path = self.path / f"{self._prefix}{name}-{next(_COUNTER)}.bin"
        if int(np.prod(shape)) == 0:
            return np.zeros(shape, dtype)
        arr = np.memmap(path, dtype=dtype, mode="w+", shape=shape)
        os.unlink(path)   # the mapping keeps the data; the disk space goes with the array
        arr._scratch = self   # the folder lives as long as any of its arrays
        with _LOCK:
            _LIVE.add(arr._mmap)
        return arr

    def has_room(self, nbytes: float) -> bool:
        """True if the folder's file system has ``nbytes`` free (a full disk under a
        mapped file kills the process with SIGBUS instead of raising)."""
        return shutil.disk_usage(self.path).free >= nbytes

    def cleanup(self) -> None:
        """Remove the folder now (arrays still mapped stay readable until unmapped)."""
        self._finalizer()


def on_ram_disk(path) -> bool:
    """True if ``path`` lies on a file system held in memory (tmpfs, ramfs).

    Pages of a file there stay in memory whatever :func:`release` does, so a
    scratch cube on it saves nothing. Read from ``/proc/mounts`` (Linux);
    False where that is not available.

    Examples
    --------
    >>> on_ram_disk("/dev/shm") in (True, False)
    True
    """
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            mounts = [line.split()[1:3] for line in fh if len(line.split()) > 2]
    except OSError:
        return False
    target = os.path.realpath(path)
    best, kind = "", ""
    for point, fstype in mounts:
        point = point.replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return kind in ("tmpfs", "ramfs")


def disk_scratch(folder=True):
    """A :class:`Scratch` in ``folder`` (True: the temporary folder), None if not worth it.

    None when ``folder`` is False or None, or lies on a RAM file system
    (:func:`on_ram_disk`): there a mapped cube takes as much memory as an
    array.

    Examples
    --------
    >>> disk_scratch(False) is None
    True
    """
    if folder is None or folder is False:
        return None
    parent = tempfile.gettempdir() if folder is True else folder
    if on_ram_disk(parent):
        return None
    return Scratch(parent, subfolder=False)


def is_mapped(array) -> bool:
    """True if ``array`` (or what it views) is a memory-mapped file.

    Parameters
    ----------
    array : ndarray

    Returns
    -------
    bool

    Examples
    --------
    >>> is_mapped(np.zeros(3)), is_mapped(Scratch(True).zeros((3,), np.uint8, "x")[1:])
    (False, True)
    """
    a = array
    while a is not None:
        if isinstance(a, np.memmap) or isinstance(a, mmap.mmap):
            return True
        a = getattr(a, "base", None)
    return False


def release() -> None:
    """Drop this process's resident pages of every live scratch cube (data kept).

    Safe at any moment, also while other threads read or write the cubes:
    for a shared file mapping the page cache holds the data (dirty pages
    included), so the next access only maps the page again.

    Examples
    --------
    >>> a = Scratch(True).zeros((4,), np.float32, "x")
    >>> a[:] = 2.0
    >>> release()
    >>> a.tolist()
    [2.0, 2.0, 2.0, 2.0]
    """
    if not _LIVE:
        return
    with _LOCK:
        maps = list(_LIVE)
    for m in maps:
        try:
            m.madvise(mmap.MADV_DONTNEED)
        except (ValueError, OSError):   # closed meanwhile
            continue


def read_across(cube, index, chunk: int = 32):
    """``cube[index]`` for an index that spans all integrations (``(slice(None), ...)``).

    For a memory-mapped cube the copy is made ``chunk`` integrations at a time,
    releasing the mapped pages after each: one page fault maps a whole folio of
    the file (up to megabytes), so a few rows of every integration would
    otherwise map the whole file. In-memory cubes are sliced as they are.

    Examples
    --------
    >>> a = np.arange(24.0).reshape(2, 3, 4)
    >>> read_across(a, np.s_[:, 1:2]).tolist()
    [[[4.0, 5.0, 6.0, 7.0]], [[16.0, 17.0, 18.0, 19.0]]]
    """
    if not is_mapped(cube):
        return cube[index]
    rest = index[1:]
    first = np.asarray(cube[0:1][(slice(None),) + rest])
    out = np.empty((cube.shape[0],) + first.shape[1:], cube.dtype)
    for i in range(0, cube.shape[0], chunk):
        out[i:i + chunk] = cube[i:i + chunk][(slice(None),) + rest]
        release()
    return out


def write_across(cube, index, values, chunk: int = 32) -> None:
    """``cube[index] = values`` for an index over all integrations (see :func:`read_across`).

    Examples
    --------
    >>> a = np.zeros((3, 2, 2))
    >>> write_across(a, np.s_[:, 1:], np.ones((3, 1, 2)))
    >>> float(a.sum())
    6.0
    """
    if not is_mapped(cube):
        cube[index] = values
        return
    rest = index[1:]
    for i in range(0, cube.shape[0], chunk):
        cube[i:i + chunk][(slice(None),) + rest] = values[i:i + chunk]
        release()


def is_sorted(a, chunk: int = 1 << 22) -> bool:
    """True if the 1D array ``a`` never decreases (checked in chunks: no full-size temporary).

    Examples
    --------
    >>> is_sorted(np.array([1, 2, 2, 5])), is_sorted(np.array([3, 1]))
    (True, False)
    """
    for i in range(0, max(a.size - 1, 0), chunk):
        part = a[i:i + chunk + 1]
        if np.any(part[1:] < part[:-1]):
            return False
    return True
