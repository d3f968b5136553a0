"""Reading uncal segments (tsocontainer.io.uncal) and the detector layout helpers."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from test_ramps_sims import visit
from tsocontainer.errors import SegmentMismatchError, TSOReadError
from tsocontainer.io.uncal import amplifier_index, load_uncal, reference_pixel_mask
from tsocontainer.ramps import read_uncal


def test_load_uncal_reads_blocks_across_segments():
    v = visit("miri")
    u = load_uncal(v.files)
    assert (u.N, u.ngroups, u.sh) == (6, 5, (416, 72))
    assert u.int_numbers.tolist() == [1, 2, 3, 4, 5, 6]
    assert u.meta["TGROUP"] == pytest.approx(0.15904) and u.meta["NFRAMES"] == 1
    assert u.meta["NSEGMENT"] == 2 and u.meta["TIMESRC"] == "INT_TIMES"
    # the same values as the files, across the boundary between the segments (ints 2-4)
    raw = np.concatenate([fits.getdata(f, "SCI") for f in v.files]).astype(np.float32)
    data, gdq, pdq = u.read(1, 5)
    assert data.dtype == np.float32 and np.array_equal(data, raw[1:5])
    assert not gdq.any() and pdq.shape == (416, 72)
    mids = np.concatenate([fits.getdata(f, "INT_TIMES")["int_mid_BJD_TDB"] for f in v.files])
    assert np.allclose(u.time.mjd, mids, rtol=0, atol=1e-9)


def test_read_uncal_builds_a_ramp_group():
    g = read_uncal(visit("miri").files)
    assert g.shape == (6, 5, 416, 72)
    assert g.steps == ["read_uncal"] and g.plan == {}
    assert "MIRI" in repr(g) and "plan: none" in repr(g)
    assert g.refmask[:, :4].all() and not g.refmask[:, 4:].any()


def test_errors_name_the_file(tmp_path):
    v = visit("miri")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_uncal(tmp_path / "missing_uncal.fits")
    junk = tmp_path / "junk_uncal.fits"
    junk.write_text("not a FITS file")
    with pytest.raises(TSOReadError, match="junk_uncal.fits"):
        load_uncal(junk)
    # a truncated segment
    cut = tmp_path / "cut-seg001_uncal.fits"
    data = Path(v.files[0]).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TSOReadError, match="truncated"):
        load_uncal(cut)


def test_a_rateints_file_is_not_taken_for_ramps(tmp_path):
    from tsocontainer.sim import simulate_visit

    r = simulate_visit("miri-lrs", nint=3, out=tmp_path, seed=1)
    with pytest.raises(TSOReadError, match="expected the 4D ramps"):
        load_uncal(r.files)


def test_segments_of_different_visits_are_refused(tmp_path):
    v = visit("miri")
    other = tmp_path / "jw99999001001_04101_00001-seg002_mirimage_uncal.fits"
    shutil.copy(v.files[1], other)
    with fits.open(other, mode="update") as hdul:
        hdul[0].header["TGROUP"] = 0.3
    with pytest.raises(SegmentMismatchError, match="TGROUP"):
        load_uncal([v.files[0], other])
    with fits.open(other, mode="update") as hdul:
        hdul[0].header["TGROUP"] = fits.getheader(v.files[0])["TGROUP"]
        hdul[0].header["INTSTART"] = 5
        hdul[0].header["INTEND"] = 7
    with pytest.raises(SegmentMismatchError, match="gap"):
        load_uncal([v.files[0], other])


def test_ngroups_must_match_the_cube(tmp_path):
    bad = tmp_path / "x-seg001_mirimage_uncal.fits"
    shutil.copy(visit("miri").files[0], bad)
    with fits.open(bad, mode="update") as hdul:
        hdul[0].header["NGROUPS"] = 7
    with pytest.raises(TSOReadError, match="NGROUPS=7 but SCI has 5 groups"):
        load_uncal(bad)


@pytest.mark.parametrize("inst, shape, substrt, rows, cols", [
    ("NIRISS", (256, 2048), (1, 1793), [252, 253, 254, 255], [0, 1, 2, 3, 2044, 2045, 2046, 2047]),
    ("NIRCAM", (64, 2048), (1, 1), [0, 1, 2, 3], [0, 1, 2, 3, 2044, 2045, 2046, 2047]),
    ("NIRSPEC", (32, 512), (1025, 957), [], []),          # real SUB512: no reference pixel
    ("MIRI", (416, 72), (1, 529), [], [0, 1, 2, 3]),
])
def test_reference_pixels_follow_the_subarray_corner(inst, shape, substrt, rows, cols):
    m = reference_pixel_mask(inst, shape, substrt)
    assert np.flatnonzero(m.all(axis=1)).tolist() == rows
    assert np.flatnonzero(m.all(axis=0)).tolist() == cols
    assert m.sum() == len(rows) * shape[1] + len(cols) * shape[0] - len(rows) * len(cols)


def test_amplifiers():
    a = amplifier_index("NIRCAM", (64, 2048), (1, 1), noutputs=4, fast_axis=1)
    assert np.bincount(a).tolist() == [512] * 4 and a[0] == 0 and a[-1] == 3
    assert not amplifier_index("NIRISS", (256, 2048), (1, 1793), 1, 0).any()
    assert amplifier_index("MIRI", (416, 72), (1, 529), 4, 1)[:6].tolist() == [0, 1, 2, 3, 0, 1]
    with pytest.raises(ValueError, match="unknown instrument"):
        amplifier_index("FGS", (8, 8))


def test_ramp_model_files_keep_their_dq(tmp_path):
    """A file already through the pipeline's first steps (RampModel: float SCI, PIXELDQ,
    GROUPDQ) is read with its DQ."""
    from stdatamodels.jwst.datamodels import RampModel

    data = np.arange(2 * 3 * 8 * 10, dtype=np.float32).reshape(2, 3, 8, 10)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[1, 2, 4, 5] = 2
    pdq = np.zeros((8, 10), np.uint32)
    pdq[3, 3] = 1
    m = RampModel(data=data, groupdq=gdq, pixeldq=pdq)
    m.meta.instrument.name, m.meta.instrument.detector = "NIRISS", "NIS"
    m.meta.instrument.filter, m.meta.instrument.pupil = "CLEAR", "GR700XD"
    m.meta.exposure.type, m.meta.exposure.ngroups, m.meta.exposure.nints = "NIS_SOSS", 3, 2
    m.meta.exposure.group_time, m.meta.exposure.nframes = 5.494, 1
    m.meta.exposure.start_time = 60000.0
    m.meta.subarray.name = "SUBSTRIP256"
    path = tmp_path / "x-seg001_nis_ramp.fits"
    m.save(path)
    u = load_uncal(path)
    assert u.meta["TIMESRC"].startswith("header")      # no INT_TIMES: from EXPSTART
    d, g, p = u.read(0, 2)
    assert np.array_equal(d, data) and g[1, 2, 4, 5] == 2 and p[3, 3] == 1
