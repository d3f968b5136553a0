"""Writing simulated segments as JWST ``rateints`` files through stdatamodels.

A segment of a full SOSS visit holds five cubes of ~0.5 GB each, and
astropy's FITS writer adds transient copies (byte swapping, the unsigned DQ
conversion), so saving a fully built ``CubeModel`` would need ~3.6 GB. The
:class:`SegmentFile` writer keeps memory at one block of integrations:

1. a ``CubeModel`` of the segment's full shape is built from *untouched*
   zero-filled big-endian arrays (no memory is committed for them) with all
   metadata and the ``INT_TIMES`` table, and saved by stdatamodels: this
   writes the real file layout, headers and the ASDF extension;
2. the data of each block of integrations is then written in place into the
   SCI, DQ, ERR, VAR_POISSON and VAR_RNOISE data units, encoded exactly as
   astropy does (big-endian float32; DQ as int32 with ``BZERO = 2**31``);
3. the finished file replaces the target atomically (``os.replace``).

The result is byte-identical to saving a ``CubeModel`` of the same arrays
(checked by the tests). ``DATE`` is fixed to the simulated exposure end so that
the same seed gives the same bytes.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["SegmentFile", "SegmentMemory", "cube_model_class", "INT_TIMES_DTYPE",
           "EXTENSIONS"]

#: the cubes written per segment, in the order of the arrays passed to ``write``
EXTENSIONS = ("SCI", "DQ", "ERR", "VAR_POISSON", "VAR_RNOISE")
_ATTR = {"SCI": "data", "DQ": "dq", "ERR": "err", "VAR_POISSON": "var_poisson",
         "VAR_RNOISE": "var_rnoise"}

INT_TIMES_DTYPE = [("integration_number", "i4"), ("int_start_MJD_UTC", "f8"),
                   ("int_mid_MJD_UTC", "f8"), ("int_end_MJD_UTC", "f8"),
                   ("int_start_BJD_TDB", "f8"), ("int_mid_BJD_TDB", "f8"),
                   ("int_end_BJD_TDB", "f8")]


@lru_cache(maxsize=None)
def cube_model_class():
    """A ``CubeModel`` whose saved ``DATE`` is ``meta.date`` as set, not the clock."""
    from stdatamodels.jwst.datamodels import CubeModel

    class FixedDateCubeModel(CubeModel):
        """CubeModel that keeps a preset ``meta.date`` when saved."""

        def on_save(self, init):
            super().on_save(init)
            fixed = self.__dict__.get("_fixed_date")  # underscore: not a schema node
            if fixed is not None:
                self.meta.date = fixed
            self.meta.model_type = "CubeModel"

    return FixedDateCubeModel


def build_model(arrays: dict, set_meta, int_times, fixed_date: str):
    """A :func:`cube_model_class` model of ``arrays`` with metadata and INT_TIMES.

    Parameters
    ----------
    arrays : dict
        ``data, dq, err, var_poisson, var_rnoise`` cubes.
    set_meta : callable
        ``set_meta(model)`` fills ``model.meta``.
    int_times : ndarray
        Structured INT_TIMES rows of the segment.
    fixed_date : str
        Value of ``DATE`` in the saved file.

    Returns
    -------
    CubeModel
    """
    model = cube_model_class()(**arrays)
    model._fixed_date = fixed_date
    model.int_times = int_times
    model.meta.bunit_data = "DN/s"
    model.meta.bunit_err = "DN/s"
    set_meta(model)
    return model


class SegmentFile:
    """Stream one segment into its file, block by block (see the module docstring).

    Parameters
    ----------
    path : path-like
        Final file path.
    shape : tuple
        ``(nint, ny, nx)`` of the segment.
    set_meta : callable
        ``set_meta(model)`` fills the metadata.
    int_times : ndarray
        INT_TIMES rows.
    fixed_date : str
        ``DATE`` keyword value.
    tmpdir : path-like
        Folder for the file while it is written (same file system as ``path``).
    """

    def __init__(self, path, shape, set_meta, int_times, fixed_date, tmpdir):
        from astropy.io import fits

        self.path = Path(path)
        self.tmp = Path(tmpdir) / self.path.name  # same name: FILENAME is the final one
        self.shape = tuple(int(s) for s in shape)
        zeros = {"data": np.zeros(self.shape, ">f4"), "dq": np.zeros(self.shape, ">u4"),
                 "err": np.zeros(self.shape, ">f4"), "var_poisson": np.zeros(self.shape, ">f4"),
                 "var_rnoise": np.zeros(self.shape, ">f4")}
        model = build_model(zeros, set_meta, int_times, fixed_date)
        model.save(self.tmp)
        model.close()
        del model, zeros
        self.offsets = {}
        with fits.open(self.tmp, memmap=False) as hdul:
            for ext in EXTENSIONS:
                hdr = hdul[ext].header
                want = 32 if ext == "DQ" else -32
                if hdr["BITPIX"] != want or (ext == "DQ" and hdr.get("BZERO") != 2 ** 31):
                    raise RuntimeError(f"unexpected {ext} encoding in {self.tmp}")
                self.offsets[ext] = hdul.fileinfo(hdul.index_of(ext))["datLoc"]
        self.frame_bytes = 4 * self.shape[1] * self.shape[2]
        self._fh = open(self.tmp, "r+b")

    def write(self, i0: int, sci, dq, err, var_poisson, var_rnoise) -> None:
        """Write integrations ``i0 .. i0 + len(sci)`` (segment-relative) of all cubes."""
        for ext, arr in zip(EXTENSIONS, (sci, dq, err, var_poisson, var_rnoise)):
            if ext == "DQ":
                enc = (np.asarray(arr, np.uint32) ^ np.uint32(0x80000000)).astype(">u4")
            else:
                enc = np.asarray(arr, np.float32).astype(">f4")
            self._fh.seek(self.offsets[ext] + i0 * self.frame_bytes)
            self._fh.write(enc.tobytes())

    def commit(self) -> str:
        """Close the file and move it to its final path; return that path."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.tmp, self.path)
        return str(self.path)

    def abort(self) -> None:
        """Close and delete the partial file."""
        if not self._fh.closed:
            self._fh.close()
        self.tmp.unlink(missing_ok=True)


class SegmentMemory:
    """Collect one segment in memory and return it as a ``CubeModel``.

    Parameters are those of :class:`SegmentFile` without the paths.
    """

    def __init__(self, shape, set_meta, int_times, fixed_date):
        self.shape = tuple(int(s) for s in shape)
        self.arrays = {"data": np.empty(self.shape, np.float32),
                       "dq": np.empty(self.shape, np.uint32),
                       "err": np.empty(self.shape, np.float32),
                       "var_poisson": np.empty(self.shape, np.float32),
                       "var_rnoise": np.empty(self.shape, np.float32)}
        self.set_meta, self.int_times, self.fixed_date = set_meta, int_times, fixed_date

    def write(self, i0: int, sci, dq, err, var_poisson, var_rnoise) -> None:
        """Store integrations ``i0 .. i0 + len(sci)`` of all cubes."""
        i1 = i0 + len(sci)
        for key, arr in zip(("data", "dq", "err", "var_poisson", "var_rnoise"),
                            (sci, dq, err, var_poisson, var_rnoise)):
            self.arrays[key][i0:i1] = arr

    def commit(self):
        """The segment as a ``CubeModel`` (saving it gives the streamed file's bytes)."""
        return build_model(self.arrays, self.set_meta, self.int_times, self.fixed_date)

    def abort(self) -> None:
        """Drop the arrays."""
        self.arrays = {}
