"""The ramp-level simulator (tsocontainer.sim.ramps), and the simulated visits the other
``test_ramps_*`` modules share (made once per test process, in a temporary folder).

Sizes are kept small: SOSS cut to 64-128 columns of SUBSTRIP256 (all 256 rows, so the
reference rows and the trace are there), 9 groups, 30-40 integrations.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tsocontainer.sim.ramps import RAMP_NOISE_DEFAULTS, simulate_ramps

_ROOT = Path(tempfile.mkdtemp(prefix="tsoc-ramps-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)

#: no 1/f, cosmic rays, reference drift, reset noise or bad pixels: photon + read noise only
CLEAN = dict(one_over_f=0, cosmic_rays=0, reference_drift=0, odd_even=0, ktc=0,
             bad_pixels=False)


@functools.lru_cache(maxsize=None)
def visit(name: str):
    """A simulated visit shared by the tests (cached per process).

    * ``clean``: SOSS, 30 integrations, 64 columns, photon + read noise only.
    * ``onef``: SOSS, 40 integrations, 128 columns, a faint star (5 % of saturation at
      the peak, so read noise and 1/f matter), default 1/f, drift and reset noise, no
      cosmic rays.
    * ``jumps``: SOSS, 40 integrations, 64 columns, all default noise with cosmic rays
      at 3e-5 hits per pixel per second (about 40 per integration).
    * ``miri``: MIRI LRS, 6 integrations of 5 groups in 2 segments, non-linearity on.
    """
    kw = {"clean": dict(nint=30, columns=(1000, 1064), seed=3, noise=CLEAN),
          "onef": dict(nint=40, columns=(1000, 1128), seed=4, peak_fraction=0.05,
                       noise=dict(cosmic_rays=0, bad_pixels=False)),
          "jumps": dict(nint=40, columns=(900, 964), seed=21, noise=dict(cosmic_rays=3e-5)),
          "miri": dict(nint=6, nseg=2, ngroups=5, seed=8, noise=dict(nonlinearity=0.05))}[name]
    mode = "miri-lrs" if name == "miri" else "soss"
    return simulate_ramps(mode, out=_ROOT / name, systematics=False, **kw)


def refs(v) -> dict:
    """Reference-file paths of a simulated visit."""
    return {k: str(Path(v.folder) / p) for k, p in v.truth["references"].items()}


# ---------------------------------------------------------------------------- tests
def test_files_are_real_uncal_segments():
    from stdatamodels.jwst.datamodels import Level1bModel, RampModel

    v = visit("miri")
    assert [Path(f).name for f in v.files] == [
        "jw99999001001_04101_00001-seg001_mirimage_uncal.fits",
        "jw99999001001_04101_00001-seg002_mirimage_uncal.fits"]
    with fits.open(v.files[1]) as hdul:
        assert hdul["SCI"].header["BITPIX"] == 16 and hdul["SCI"].header["BZERO"] == 32768
        assert hdul["SCI"].data.dtype == np.uint16 and hdul["SCI"].data.shape == (3, 5, 416, 72)
        h = hdul[0].header
        assert (h["INTSTART"], h["INTEND"], h["NGROUPS"], h["NFRAMES"]) == (4, 6, 5, 1)
        assert "INT_TIMES" in hdul
    with Level1bModel(v.files[0]) as m:
        assert m.meta.exposure.type == "MIR_LRS-SLITLESS"
        assert m.int_times["integration_number"].tolist() == [1, 2, 3]
    with RampModel(v.files[0]) as m:   # what the jwst pipeline opens an uncal file as
        assert m.data.shape == (3, 5, 416, 72) and m.groupdq.shape == m.data.shape


def test_same_seed_same_ramps(tmp_path):
    a = simulate_ramps("miri-lrs", nint=2, out=tmp_path / "a", ngroups=4, seed=5,
                       references=False)
    b = simulate_ramps("miri-lrs", nint=2, out=tmp_path / "b", ngroups=4, seed=5,
                       references=False)
    c = simulate_ramps("miri-lrs", nint=2, out=tmp_path / "c", ngroups=4, seed=6,
                       references=False)
    da, db, dc = (fits.getdata(x.files[0], "SCI") for x in (a, b, c))
    assert np.array_equal(da, db)
    assert not np.array_equal(da, dc)


def test_noiseless_ramps_rise_at_the_truth_rate(tmp_path):
    """Noiseless: every group difference is the rate times TGROUP (DN rounding aside)."""
    v = simulate_ramps("soss", nint=2, out=tmp_path, columns=(1000, 1032), seed=2,
                       noiseless=True, noise=dict(bias=0.0, bias_scatter=0.0),
                       references=False)
    ramps = fits.getdata(v.files[0], "SCI").astype(float)
    rate = v.truth_arrays()["RATE"]
    tg = v.truth["ramps"]["group_time"]
    diffs = np.diff(ramps, axis=1)
    live = ~v.truth_arrays()["REFPIX"].astype(bool)
    err = diffs - rate[:, None] * tg
    # rounding each read to a whole DN: a difference is off by less than 1 DN
    assert np.abs(err[:, :, live]).max() < 1.0
    assert v.truth["ramps"]["noise"]["one_over_f"] == 0.0


def test_truth_describes_the_detector():
    v = visit("miri")
    t, a = v.truth, v.truth_arrays()
    assert t["level"] == "uncal" and t["ramps"]["ngroups"] == 5
    assert t["ramps"]["read_noise_cds_dn"] == pytest.approx(np.sqrt(2) * 10.0)
    assert set(t["references"]) == {"gain", "readnoise", "superbias", "saturation", "mask",
                                    "linearity"}
    for key in ("SUPERBIAS", "READNOISE", "SATURATION", "LINEARITY", "ONEF", "REFDRIFT", "RATE",
                "JUMPS"):
        assert key in a
    assert a["LINEARITY"].shape == (3, 416, 72)
    assert a["ONEF"].shape == (6, 5, 416)     # MIRI: 1/f along rows, one value per row
    # the reference columns get no light
    assert np.all(a["RATE"][:, :, :4] == 0)
    assert set(RAMP_NOISE_DEFAULTS) == set(t["ramps"]["noise"])


def test_cosmic_ray_jumps_are_in_the_ramps():
    v = visit("jumps")
    a = v.truth_arrays()
    J = a["JUMPS"]
    assert J.size > 400
    row = J[np.argmax(J.amplitude_dn * (J.group >= 2))]
    ramps = fits.getdata(v.files[0], "SCI")[row.integration - 1, :, row.y, row.x].astype(float)
    d = np.diff(ramps)
    # the largest difference is the one into the hit's first group
    assert np.argmax(d) == row.group - 1
    assert d[row.group - 1] - np.median(d) > 0.9 * row.amplitude_dn


def test_unknown_noise_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown noise key"):
        simulate_ramps("soss", nint=2, out=tmp_path, noise={"cosmic": 1})
    with pytest.raises(ValueError, match="must be >= 0"):
        simulate_ramps("soss", nint=2, out=tmp_path, noise={"ipc": -1})
