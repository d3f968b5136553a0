"""Flag bits of tsocontainer steps and compact storage of pipeline DQ.

Two kinds of per-pixel status live on a :class:`~tsocontainer.TSOGroup`:

* **Pipeline DQ** (``uint32`` bits defined by the JWST pipeline, e.g.
  ``DO_NOT_USE``, ``JUMP_DET``). Most of it is static (reference pixels, bad
  pixels) and the rest is sparse (jumps, saturation), so it is stored as a
  :class:`SparseDQ`: a 2D static plane plus the few ``(index, value)`` pairs
  where an integration differs from it. A 1 GB visit keeps its DQ in a few MB.
* **Step flags**: one named bit per tsocontainer step (:data:`STEP_FLAGS`),
  stored as one packed bit plane per step (:class:`FlagStore`), 1 bit per
  pixel. ``TSOGroup.flags`` still presents them as one ``uint16`` cube.
"""
from __future__ import annotations

import numpy as np

from tsocontainer._disk import is_sorted, release

__all__ = [
    "STEP_FLAGS",
    "INFO_FLAGS",
    "SparseDQ",
    "FlagStore",
    "dq_bits",
    "dq_names",
    "validate_flag_name",
]

#: Bit number of each tsocontainer step flag. A pixel with any of these set is
#: excluded from ``TSOGroup.mask`` unless the name is also in INFO_FLAGS.
STEP_FLAGS = {
    "dq": 0,
    "hot_cold": 1,
    "percentile": 2,
    "outliers_2d": 3,
    "time_outliers": 4,
    "profile": 5,
    "trace_outliers": 6,
    "order0": 7,
    "invalid": 8,  # non-finite SCI or non-positive variance found on reading
    "user": 9,
    "replaced": 10,  # value replaced in the working data (informational)
}

#: Flags that describe a pixel without making it bad.
INFO_FLAGS = frozenset({"replaced"})


def validate_flag_name(name: str) -> str:
    """Return ``name`` if it is a known step flag, else raise ``ValueError``.

    Parameters
    ----------
    name : str
        Flag name, one of :data:`STEP_FLAGS`.

    Returns
    -------
    str
        The validated name.

    Raises
    ------
    ValueError
        Listing the allowed names.
    """
    if name not in STEP_FLAGS:
        raise ValueError(
            f"unknown flag {name!r}; allowed: {', '.join(STEP_FLAGS)}"
        )
    return name


def _pixel_dq_table() -> dict[str, int]:
    from stdatamodels.jwst.datamodels.dqflags import pixel

    return dict(pixel)


def dq_bits(names) -> int:
    """Combine JWST pipeline DQ mnemonics into one bit mask.

    Parameters
    ----------
    names : str, int or iterable of str
        Mnemonics such as ``"DO_NOT_USE"`` or ``["SATURATED", "JUMP_DET"]``
        (case-insensitive), or an integer mask returned unchanged.

    Returns
    -------
    int
        Bitwise OR of the named bits.

    Raises
    ------
    ValueError
        For an unknown mnemonic, listing the allowed ones.

    Examples
    --------
    >>> dq_bits(["DO_NOT_USE", "JUMP_DET"])
    5
    """
    if isinstance(names, (int, np.integer)):
        return int(names)
    if isinstance(names, str):
        names = [names]
    table = _pixel_dq_table()
    bits = 0
    for name in names:
        key = str(name).upper()
        if key not in table:
            raise ValueError(
                f"unknown DQ mnemonic {name!r}; allowed: {', '.join(table)}"
            )
        bits |= int(table[key])
    return bits


def dq_names(value: int) -> list[str]:
    """Return the pipeline DQ mnemonics set in ``value``.

    Parameters
    ----------
    value : int
        A DQ value.

    Returns
    -------
    list of str
        Names of the bits that are set, in bit order.
    """
    table = _pixel_dq_table()
    return [k for k, v in table.items() if v and int(value) & int(v) == int(v)
            and bin(int(v)).count("1") == 1]


class SparseDQ:
    """Pipeline DQ of a cube stored as a static plane plus sparse exceptions.

    Parameters
    ----------
    static : ndarray of uint32, shape (ny, nx)
        DQ value shared by most integrations of each pixel.
    index : ndarray of int64
        Sorted flat indices into the ``(N, ny, nx)`` cube where the DQ value
        differs from ``static``.
    value : ndarray of uint32
        The DQ value at each ``index``.
    N : int
        Number of integrations.

    Notes
    -----
    ``to_dense()`` rebuilds the ``uint32`` cube; ``any(bits)`` gives the
    boolean cube of pixels with any of ``bits`` set without building it.
    """

    def __init__(self, static, index, value, N: int):
        self.static = np.ascontiguousarray(static, dtype=np.uint32)
        self.index = np.ascontiguousarray(index, dtype=np.int64)
        self.value = np.ascontiguousarray(value, dtype=np.uint32)
        self.N = int(N)
        if self.static.ndim != 2:
            raise ValueError("SparseDQ static plane must be 2D")
        if self.index.shape != self.value.shape:
            raise ValueError("SparseDQ index and value differ in length")

    @property
    def sh(self) -> tuple[int, int]:
        """Detector shape ``(ny, nx)``."""
        return self.static.shape

    @property
    def shape(self) -> tuple[int, int, int]:
        """Cube shape ``(N, ny, nx)``."""
        return (self.N,) + self.static.shape

    @classmethod
    def from_dense(cls, dq, static=None) -> "SparseDQ":
        """Build from a dense ``(N, ny, nx)`` DQ cube.

        Parameters
        ----------
        dq : array_like, shape (N, ny, nx)
            Dense DQ values.
        static : ndarray, optional
            Static plane to use; default: the value of the first integration
            where all integrations agree, else the bitwise AND over time.

        Returns
        -------
        SparseDQ
        """
        dq = np.asarray(dq)
        if dq.ndim != 3:
            raise ValueError(f"DQ must be 3D (N, ny, nx), got shape {dq.shape}")
        if static is None:
            static = np.bitwise_and.reduce(dq, axis=0) if dq.shape[0] else (
                np.zeros(dq.shape[1:], np.uint32))
        diff = dq != static[None]
        index = np.flatnonzero(diff)
        value = dq.reshape(-1)[index]
        return cls(static, index, value, dq.shape[0])

    @classmethod
    def concatenate(cls, parts) -> "SparseDQ":
        """Join several SparseDQ along the integration axis.

        The static plane of the result is the bitwise AND of the parts'
        planes; each part's differences from it become sparse entries.

        Parameters
        ----------
        parts : sequence of SparseDQ
            Parts with equal ``sh``.

        Returns
        -------
        SparseDQ
        """
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to concatenate")
        sh = parts[0].sh
        static = parts[0].static.copy()
        for p in parts[1:]:
            if p.sh != sh:
                raise ValueError(f"SparseDQ shapes differ: {p.sh} != {sh}")
            static &= p.static
        npix = sh[0] * sh[1]
        idx, val, offset = [], [], 0
        for p in parts:
            extra = np.flatnonzero(p.static != static)
            if extra.size:
                # every integration of this part differs at these pixels
                ints = np.arange(p.N, dtype=np.int64)[:, None] * npix
                full = (ints + extra[None]).ravel()
                full_val = np.broadcast_to(p.static.ravel()[extra], (p.N, extra.size)).ravel()
                # sparse entries of the part override its static value
                merged = np.concatenate([full, p.index])
                merged_val = np.concatenate([full_val, p.value])
                order = np.argsort(merged, kind="stable")
                merged, merged_val = merged[order], merged_val[order]
                # keep the last occurrence (the sparse entry) of duplicates
                keep = np.ones(merged.size, bool)
                keep[:-1] = merged[1:] != merged[:-1]
                merged, merged_val = merged[keep], merged_val[keep]
                differs = merged_val != static.ravel()[merged % npix]
                idx.append(merged[differs] + offset)
                val.append(merged_val[differs])
            else:
                idx.append(p.index + offset)
                val.append(p.value)
            offset += p.N * npix
        return cls(static, np.concatenate(idx), np.concatenate(val),
                   sum(p.N for p in parts))

    def _int_range(self, i0: int, i1: int):
        npix = self.sh[0] * self.sh[1]
        a, b = np.searchsorted(self.index, [i0 * npix, i1 * npix])
        return a, b, npix

    def to_dense(self, i0: int = 0, i1: int | None = None) -> np.ndarray:
        """Return the dense ``uint32`` DQ of integrations ``i0:i1``.

        Parameters
        ----------
        i0, i1 : int
            Integration range (default: all).

        Returns
        -------
        ndarray of uint32, shape (i1 - i0, ny, nx)
        """
        i1 = self.N if i1 is None else i1
        out = np.empty((i1 - i0,) + self.sh, np.uint32)
        out[:] = self.static
        a, b, npix = self._int_range(i0, i1)
        out.reshape(-1)[self.index[a:b] - i0 * npix] = self.value[a:b]
        return out

    def any(self, bits: int, i0: int = 0, i1: int | None = None) -> np.ndarray:
        """Boolean cube of pixels with any of ``bits`` set.

        Parameters
        ----------
        bits : int
            Bit mask (see :func:`dq_bits`).
        i0, i1 : int
            Integration range (default: all).

        Returns
        -------
        ndarray of bool, shape (i1 - i0, ny, nx)
        """
        i1 = self.N if i1 is None else i1
        bits = np.uint32(bits)
        out = np.empty((i1 - i0,) + self.sh, bool)
        out[:] = (self.static & bits) != 0
        a, b, npix = self._int_range(i0, i1)
        out.reshape(-1)[self.index[a:b] - i0 * npix] = (self.value[a:b] & bits) != 0
        return out

    def take(self, ints) -> "SparseDQ":
        """Return the DQ of the integrations ``ints`` (array of indices).

        Parameters
        ----------
        ints : array_like of int
            Integration indices, in the order wanted.

        Returns
        -------
        SparseDQ
        """
        ints = np.asarray(ints, dtype=np.int64).ravel()
        npix = self.sh[0] * self.sh[1]
        idx, val = [], []
        for new, old in enumerate(ints):
            a, b = np.searchsorted(self.index, [old * npix, (old + 1) * npix])
            idx.append(self.index[a:b] - (old - new) * npix)
            val.append(self.value[a:b])
        if not idx:
            return SparseDQ(self.static, [], [], 0)
        return SparseDQ(self.static, np.concatenate(idx), np.concatenate(val), ints.size)

    def copy(self) -> "SparseDQ":
        """Return an independent copy."""
        return SparseDQ(self.static.copy(), self.index.copy(), self.value.copy(), self.N)

    def __eq__(self, other) -> bool:
        if not isinstance(other, SparseDQ):
            return NotImplemented
        return (self.N == other.N and np.array_equal(self.static, other.static)
                and np.array_equal(self.index, other.index)
                and np.array_equal(self.value, other.value))

    @property
    def nbytes(self) -> int:
        """Memory used by the stored arrays, in bytes."""
        return self.static.nbytes + self.index.nbytes + self.value.nbytes


class FlagStore:
    """One packed bit plane per step flag for a cube of shape ``(N, ny, nx)``.

    Parameters
    ----------
    shape : tuple of int
        Cube shape ``(N, ny, nx)``.
    planes : dict, optional
        Existing packed planes (name -> packed ``uint8`` array).

    Notes
    -----
    Each plane is ``np.packbits`` of the flattened boolean cube: a 1 GB
    float32 visit needs 33 MB per step flag instead of a second full cube.
    """

    def __init__(self, shape, planes=None, alloc=None):
        self.shape = tuple(int(s) for s in shape)
        self.planes: dict[str, np.ndarray] = {}
        #: ``alloc(nbytes)`` -> zero-filled uint8 array for new planes (None: memory)
        self.alloc = alloc
        for name, plane in (planes or {}).items():
            self.planes[validate_flag_name(name)] = np.asarray(plane, np.uint8)

    @property
    def size(self) -> int:
        """Number of pixels in the cube."""
        return int(np.prod(self.shape))

    def _new_plane(self) -> np.ndarray:
        n = (self.size + 7) // 8
        return np.zeros(n, np.uint8) if self.alloc is None else self.alloc(n)

    def _blocks(self, i0: int = 0, i1: int | None = None) -> list:
        """Integration blocks (~16 M pixels) starting on whole bytes of the planes."""
        i1 = self.shape[0] if i1 is None else i1
        npix = max(1, self.size // max(self.shape[0], 1))
        size = max(8, int(16e6 // npix) // 8 * 8)
        return [(a, min(i1, a + size)) for a in range(i0, i1, size)]

    def _unpack(self, plane, i0: int, i1: int) -> np.ndarray:
        """Boolean cube of integrations ``i0:i1`` of a packed plane."""
        npix = self.size // max(self.shape[0], 1)
        return self._unpack_part(plane[(i0 * npix) // 8:(i1 * npix + 7) // 8], i0, i1)

    def get(self, name: str, i0: int = 0, i1: int | None = None) -> np.ndarray:
        """Boolean cube of ``name`` for integrations ``i0:i1`` (all False if the step never ran)."""
        validate_flag_name(name)
        i1 = self.shape[0] if i1 is None else i1
        plane = self.planes.get(name)
        if plane is None:
            return np.zeros((i1 - i0,) + self.shape[1:], bool)
        return self._unpack(plane, i0, i1)

    def set(self, name: str, cube) -> int:
        """Replace flag ``name`` by the boolean ``cube``; return its count.

        Packed by blocks of integrations (a memory-mapped ``cube`` is never
        read whole into memory).
        """
        validate_flag_name(name)
        if np.shape(cube) != self.shape:
            raise ValueError(f"flag {name!r} has shape {np.shape(cube)}, expected {self.shape}")
        npix = self.size // max(self.shape[0], 1)
        plane, count = None, 0
        for i0, i1 in self._blocks():
            blk = np.asarray(cube[i0:i1], bool)
            c = int(np.count_nonzero(blk))
            if c:
                if plane is None:
                    plane = self._new_plane()
                packed = np.packbits(blk.reshape(-1))
                b0 = i0 * npix // 8
                plane[b0:b0 + packed.size] |= packed
            count += c
            release()
        if plane is None:
            self.planes.pop(name, None)
            return 0
        self.planes[name] = plane
        return count

    def set_indices(self, name: str, flat_index, chunk: int = 1 << 22) -> int:
        """Replace flag ``name`` by the pixels at ``flat_index`` (flat cube indices).

        Sorted indices (what the block loops make) are packed in chunks, with no
        temporary of their size; others are sorted first.
        """
        validate_flag_name(name)
        idx = np.asarray(flat_index, dtype=np.int64).ravel()
        if not is_sorted(idx):
            idx = np.sort(idx)
        if idx.size == 0:
            self.planes.pop(name, None)
            return 0
        if idx[0] < 0 or idx[-1] >= self.size:
            raise ValueError(f"flag {name!r}: index out of range for shape {self.shape}")
        plane = self._new_plane()
        count, last = 0, -1
        for i in range(0, idx.size, chunk):
            part = idx[i:i + chunk]
            keep = np.empty(part.size, bool)   # drop repeats (np.unique: 7.4 s for 6.3 M)
            keep[0] = part[0] != last
            np.not_equal(part[1:], part[:-1], out=keep[1:])
            part, last = part[keep], part[-1]
            count += part.size
            if not part.size:
                continue
            byte = part >> 3
            bits = (128 >> (part & 7)).astype(np.uint8)
            # sorted: OR the bits of each byte's run at once (np.bitwise_or.at: 7.3 s for
            # 6.3 M pixels); a byte split between two chunks is OR-ed twice
            first = np.flatnonzero(np.diff(byte, prepend=-1))
            plane[byte[first]] |= np.bitwise_or.reduceat(bits, first)
            release()
        self.planes[name] = plane
        return int(count)

    def clear(self, name: str) -> None:
        """Remove flag ``name``."""
        self.planes.pop(validate_flag_name(name), None)

    def any_of(self, names=None, i0: int = 0, i1: int | None = None) -> np.ndarray:
        """Boolean cube of integrations ``i0:i1``: any of ``names`` (default all masking flags) set."""
        if names is None:
            names = [n for n in self.planes if n not in INFO_FLAGS]
        i1 = self.shape[0] if i1 is None else i1
        planes = [self.planes[n] for n in names if n in self.planes]
        if not planes:
            return np.zeros((i1 - i0,) + self.shape[1:], bool)
        npix = self.size // max(self.shape[0], 1)
        b0, b1 = (i0 * npix) // 8, (i1 * npix + 7) // 8
        acc = np.array(planes[0][b0:b1])
        for p in planes[1:]:
            acc |= p[b0:b1]
        return self._unpack_part(acc, i0, i1)

    def _unpack_part(self, part, i0, i1) -> np.ndarray:
        npix = self.size // max(self.shape[0], 1)
        bit0, bit1 = i0 * npix, i1 * npix
        bits = np.unpackbits(part, count=bit1 - (bit0 // 8) * 8)[bit0 % 8:]
        return bits.view(bool).reshape((i1 - i0,) + self.shape[1:])

    def to_bits(self) -> np.ndarray:
        """Return all flags as one ``uint16`` cube (bit = STEP_FLAGS[name])."""
        out = np.zeros(self.shape, np.uint16)
        for name in self.planes:
            out |= self.get(name).astype(np.uint16) << STEP_FLAGS[name]
        return out

    def take(self, ints) -> "FlagStore":
        """Return the flags of integrations ``ints`` as a new store."""
        ints = np.asarray(ints, dtype=np.int64).ravel()
        shape = (ints.size,) + self.shape[1:]
        new = FlagStore(shape)
        for name in self.planes:
            new.set(name, self.get(name)[ints])
        return new

    def copy(self) -> "FlagStore":
        """Return an independent copy."""
        return FlagStore(self.shape, {k: v.copy() for k, v in self.planes.items()})
