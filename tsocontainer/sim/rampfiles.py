"""Writing simulated ramps as JWST ``uncal`` segments and reference files (stdatamodels).

Used by :mod:`tsocontainer.sim.ramps`.

* :class:`UncalFile` streams one segment block by block: a ``Level1bModel`` (the model of
  ``*_uncal.fits``: ``SCI`` as ``(nint, ngroups, ny, nx)`` unsigned 16-bit DN,
  ``INT_TIMES``, the exposure keywords) of the segment's full shape is saved by
  stdatamodels from zero-filled arrays, then the ramps of each block are written in place
  into the ``SCI`` data unit, encoded as astropy encodes ``uint16`` (big-endian int16 with
  ``BZERO = 32768``), and the file is moved to its final path (``os.replace``).
* :func:`write_references` writes the detector truth as CRDS-format reference files
  (``GainModel``, ``ReadnoiseModel``, ``SuperBiasModel``, ``SaturationModel``,
  ``MaskModel``, ``LinearityModel``) of the subarray's shape, so that the ramp steps'
  "user reference" inputs are exercised on the real formats.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["UncalFile", "write_references", "level1b_model_class"]


class UncalFile:
    """Stream one uncal segment into its file (see the module docstring).

    Parameters
    ----------
    path : path-like
        Final file path.
    shape : tuple
        ``(nint, ngroups, ny, nx)`` of the segment.
    set_meta : callable
        ``set_meta(model)`` fills the metadata.
    int_times : ndarray
        INT_TIMES rows.
    fixed_date : str
        ``DATE`` keyword value (the same seed gives the same bytes).
    tmpdir : path-like
        Folder for the file while it is written (same file system as ``path``).
    """

    def __init__(self, path, shape, set_meta, int_times, fixed_date, tmpdir):
        from astropy.io import fits

        self.path = Path(path)
        self.tmp = Path(tmpdir) / self.path.name
        self.shape = tuple(int(s) for s in shape)
        model = level1b_model_class()(data=np.zeros(self.shape, np.uint16))
        model._fixed_date = fixed_date
        model.int_times = int_times
        set_meta(model)
        model.meta.bunit_data = "DN"
        model.save(self.tmp)
        model.close()
        del model
        with fits.open(self.tmp, memmap=False) as hdul:
            hdr = hdul["SCI"].header
            if hdr["BITPIX"] != 16 or hdr.get("BZERO") != 2 ** 15:
                raise RuntimeError(f"unexpected SCI encoding in {self.tmp}")
            self.offset = hdul.fileinfo(hdul.index_of("SCI"))["datLoc"]
        self.int_bytes = 2 * int(np.prod(self.shape[1:]))
        self._fh = open(self.tmp, "r+b")

    def write(self, i0: int, ramps) -> None:
        """Write integrations ``i0 .. i0 + len(ramps)`` (segment-relative), uint16 DN."""
        enc = (np.asarray(ramps, np.uint16) ^ np.uint16(0x8000)).astype(">u2")
        self._fh.seek(self.offset + i0 * self.int_bytes)
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


@lru_cache(maxsize=None)
def level1b_model_class():
    """A ``Level1bModel`` whose saved ``DATE`` is the preset one, not the clock."""
    from stdatamodels.jwst.datamodels import Level1bModel

    class FixedDateLevel1bModel(Level1bModel):
        """Level1bModel that keeps a preset ``meta.date`` when saved."""

        def on_save(self, init):
            super().on_save(init)
            fixed = self.__dict__.get("_fixed_date")  # underscore: not a schema node
            if fixed is not None:
                self.meta.date = fixed
            self.meta.model_type = "Level1bModel"

    return FixedDateLevel1bModel


def _ref_meta(model, reftype: str, meta: dict, description: str) -> None:
    m = model.meta
    m.reftype = reftype
    m.instrument.name = meta["instrument"]
    m.instrument.detector = meta["detector"]
    m.subarray.name = meta["subarray"]
    m.subarray.xstart, m.subarray.ystart = (int(v) for v in meta["substrt"])
    m.subarray.ysize, m.subarray.xsize = (int(v) for v in meta["shape"])
    m.description = description
    m.author = "tsocontainer.sim.ramps"
    m.pedigree = "DUMMY"
    m.useafter = "2022-01-01T00:00:00"


def write_references(folder, meta: dict, maps: dict) -> dict:
    """Write the simulated detector as CRDS-format reference files.

    Parameters
    ----------
    folder : path-like
        Output folder (created).
    meta : dict
        ``instrument``, ``detector``, ``subarray``, ``substrt`` (x, y), ``shape`` (ny, nx).
    maps : dict
        ``gain`` (e-/DN), ``readnoise`` (CDS, DN), ``superbias`` (DN), ``saturation``
        (DN), ``mask`` (uint32 DQ), optional ``linearity`` (``(ncoeff, ny, nx)``).

    Returns
    -------
    dict
        Reference type (lower case) -> file path.
    """
    from stdatamodels.jwst import datamodels as dm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sh = tuple(meta["shape"])
    f32 = {k: np.asarray(v, np.float32) for k, v in maps.items() if k != "mask"}
    dq = np.asarray(maps["mask"], np.uint32)
    models = {
        "gain": (dm.GainModel(data=f32["gain"]), "GAIN", "simulated gain (e-/DN)"),
        "readnoise": (dm.ReadnoiseModel(data=f32["readnoise"]), "READNOISE",
                      "simulated CDS read noise (DN)"),
        "superbias": (dm.SuperBiasModel(data=f32["superbias"], dq=np.zeros(sh, np.uint32),
                                        err=np.zeros(sh, np.float32)), "SUPERBIAS",
                      "simulated bias (DN)"),
        "saturation": (dm.SaturationModel(data=f32["saturation"], dq=np.zeros(sh, np.uint32)),
                       "SATURATION", "simulated saturation threshold (raw DN)"),
        "mask": (dm.MaskModel(dq=dq), "MASK", "simulated known bad and reference pixels"),
    }
    if "linearity" in f32:
        coeffs = f32["linearity"]
        models["linearity"] = (dm.LinearityModel(coeffs=coeffs, dq=np.zeros(sh, np.uint32)),
                               "LINEARITY", "simulated linearity correction coefficients")
    out = {}
    for key, (model, reftype, text) in models.items():
        _ref_meta(model, reftype, meta, text)
        path = folder / f"sim_{meta['detector'].lower()}_{key}.fits"
        model.save(path)
        model.close()
        out[key] = str(path)
    return out
