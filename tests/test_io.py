"""Reading segments: exact round trips for every mode, times, and bad input."""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from astropy.io import fits

from jwstfiles import MODE_HEADERS, make_visit
from tsocontainer import read_segments
from tsocontainer.errors import SegmentMismatchError, TSOReadError
from tsocontainer.io.segments import find_segments
from tsocontainer.modes import UnsupportedModeError


@pytest.mark.parametrize("mode", list(MODE_HEADERS))
@pytest.mark.parametrize("nseg", [1, 3])
def test_roundtrip_each_mode(tmp_path, mode, nseg):
    paths, truth = make_visit(tmp_path, mode=mode, nint=11, nseg=nseg)
    g = read_segments(paths[::-1])  # order given does not matter
    assert g.N == 11 and g.sh == MODE_HEADERS[mode]["shape"]
    assert g.mode.key == mode
    assert np.array_equal(g.sci, truth["sci"])
    assert np.array_equal(g.var, truth["var"])
    assert np.array_equal(g.dq, truth["dq"])
    # INT_TIMES are MJD-like BJD_TDB; stored exactly as float64 days
    assert np.array_equal(g.time.tdb.mjd, truth["bjd_mid"])
    assert g.meta["TIMESRC"] == "INT_TIMES"
    assert list(g.int_numbers) == list(range(1, 12))
    assert g.files == [str(p) for p in paths]


def test_small_blocks_same_result(tmp_path):
    paths, truth = make_visit(tmp_path, nint=9, nseg=2)
    g = read_segments(paths, block_size=2)
    assert np.array_equal(g.sci, truth["sci"]) and np.array_equal(g.dq, truth["dq"])


def test_glob_and_segment_order(tmp_path):
    paths, _ = make_visit(tmp_path, nint=6, nseg=3)
    found = find_segments(str(tmp_path / "*_rateints.fits"))
    assert found == paths


def test_inputs_not_modified(tmp_path):
    paths, _ = make_visit(tmp_path, nint=6, nseg=2)
    before = [p.read_bytes() for p in paths]
    g = read_segments(paths)
    g.sci[:] = 0  # the container owns its arrays
    assert [p.read_bytes() for p in paths] == before


def test_miri_real_calints(shared_data, caplog):
    with caplog.at_level(logging.WARNING, logger="tsocontainer.io"):
        g = read_segments(shared_data / "miri_lrs" / "ERS_NGTS10_2022_new_drift_041_calints.fits")
    assert g.N == 4 and g.sh == (416, 72)
    assert g.mode.name.startswith("MIRI LRS slitless")
    assert g.wave is not None and g.wave.shape == (416, 72)
    with fits.open(shared_data / "miri_lrs" / "ERS_NGTS10_2022_new_drift_041_calints.fits") as h:
        assert np.array_equal(g.wave, h["WAVELENGTH"].data, equal_nan=True)
    assert g.meta["TIMESRC"].startswith("header:")
    assert "INT_TIMES is empty" in caplog.text
    assert list(g.int_numbers) == [1847, 1848, 1849, 1850]
    # TGROUP * (NGROUPS + NRESETS=0) = 47.712 s in UTC; the barycentric light
    # travel time changes by up to v_earth/c = 1e-4 of that (4.8 ms) in between
    step = np.diff(g.time_bjd) * 86400
    assert np.allclose(step, 0.15904 * 300, atol=0.15904 * 300 * 1.05e-4)


def test_header_times_when_int_times_missing(tmp_path, caplog):
    paths, truth = make_visit(tmp_path, nint=8, nseg=2, int_times=False)
    with caplog.at_level(logging.WARNING, logger="tsocontainer.io"):
        g = read_segments(paths)
    assert "INT_TIMES is empty" in caplog.text
    assert g.meta["TIMESRC"].startswith("header:EXPSTART")
    # EXPSTART..EXPEND spans 8 x 30 s: mid-times every 30 s; barycentric offset
    # from the geocentre is at most ~500 s
    assert np.allclose(np.diff(g.time_bjd) * 86400, 30.0, atol=30.0 * 1.05e-4)
    offset = (g.time.tdb.mjd - truth["bjd_mid"] + 0.0031) * 86400
    assert np.all(np.abs(offset) < 600)


# ----------------------------------------------------------- bad input
def _expect(exc, match, call):
    with pytest.raises(exc, match=match) as info:
        call()
    return info


def test_not_fits(tmp_path):
    p = tmp_path / "x-seg001_nis_rateints.fits"
    p.write_text("hello, this is not FITS\n" * 200)
    _expect(TSOReadError, f"{p.name}.*not a readable FITS", lambda: read_segments(p))


def test_truncated(tmp_path):
    paths, _ = make_visit(tmp_path, nint=6, nseg=1)
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])
    _expect(TSOReadError, f"{paths[0].name}.*(truncated|not a readable)", lambda: read_segments(paths))


def test_missing_sci(tmp_path):
    p = tmp_path / "a-seg001_nis_rateints.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 3, 4)), name="ERR")]).writeto(p)
    _expect(TSOReadError, f"{p.name}.*no SCI", lambda: read_segments(p))


def test_2d_sci(tmp_path):
    p = tmp_path / "a-seg001_nis_rate.fits"
    hdr = fits.Header({"INSTRUME": "NIRISS", "EXP_TYPE": "NIS_SOSS"})
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(np.zeros((3, 4), np.float32), name="SCI"),
                  fits.ImageHDU(np.ones((3, 4), np.float32), name="ERR")]).writeto(p)
    _expect(TSOReadError, f"{p.name}.*2D, expected a 3D", lambda: read_segments(p))


def test_no_variance(tmp_path):
    p = tmp_path / "a-seg001_nis_rateints.fits"
    hdr = fits.Header({"INSTRUME": "NIRISS", "EXP_TYPE": "NIS_SOSS"})
    fits.HDUList([fits.PrimaryHDU(header=hdr),
                  fits.ImageHDU(np.zeros((2, 3, 4), np.float32), name="SCI")]).writeto(p)
    _expect(TSOReadError, f"{p.name}.*no variance", lambda: read_segments(p))


def test_unsupported_mode(tmp_path):
    paths, _ = make_visit(tmp_path, nint=4, nseg=1,
                          header_overrides={0: {"exposure.type": "NRC_TSIMAGE"}}, mode="nircam")
    info = _expect(UnsupportedModeError, "not a supported", lambda: read_segments(paths))
    assert paths[0].name in str(info.value) and "NIRISS SOSS" in str(info.value)


@pytest.mark.parametrize("attr,value,keyword", [
    ("subarray.name", "SUBSTRIP96", "SUBARRAY"),
    ("target.catalog_name", "OTHER-STAR", "TARGNAME"),
    ("instrument.detector", "NRS2", "DETECTOR"),
    ("instrument.filter", "F444W", "FILTER"),
    ("exposure.integration_time", 31.0, "EFFINTTM"),
])
def test_segments_differ(tmp_path, attr, value, keyword):
    mode = {"DETECTOR": "nirspec", "FILTER": "nircam"}.get(keyword, "soss")
    paths, _ = make_visit(tmp_path, mode=mode, nint=6, nseg=2, header_overrides={1: {attr: value}})
    info = _expect(SegmentMismatchError, f"differ in {keyword}", lambda: read_segments(paths))
    assert paths[0].name in str(info.value) and paths[1].name in str(info.value)


def test_different_frame_shape(tmp_path):
    a, _ = make_visit(tmp_path, mode="soss", nint=4, nseg=1)
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b, _ = make_visit(b_dir, mode="miri", nint=4, nseg=1,
                      header_overrides={0: {"instrument.name": "NIRISS", "exposure.type": "NIS_SOSS",
                                            "instrument.detector": "NIS", "instrument.filter": "CLEAR",
                                            "instrument.pupil": "GR700XD",
                                            "subarray.name": "SUBSTRIP256",
                                            "exposure.integration_start": 5,
                                            "exposure.integration_end": 8,
                                            "exposure.segment_number": 2}})
    target = tmp_path / b[0].name.replace("seg001", "seg002").replace("mirimage", "nis")
    shutil.move(b[0], target)
    _expect(SegmentMismatchError, "frame shape", lambda: read_segments([a[0], target]))


def test_duplicated_segment(tmp_path):
    paths, _ = make_visit(tmp_path, nint=6, nseg=2)
    dup = tmp_path / "copy"
    dup.mkdir()
    shutil.copy(paths[0], dup / paths[0].name)
    _expect(SegmentMismatchError, "duplicated segment", lambda: read_segments([paths[0], dup / paths[0].name, paths[1]]))


def test_same_file_twice(tmp_path):
    paths, _ = make_visit(tmp_path, nint=6, nseg=1)
    _expect(SegmentMismatchError, "given twice", lambda: read_segments([paths[0], paths[0]]))


def test_gap_in_integrations(tmp_path):
    paths, _ = make_visit(tmp_path, nint=6, nseg=2, header_overrides={
        1: {"exposure.integration_start": 5, "exposure.integration_end": 7}})
    info = _expect(SegmentMismatchError, "gap in integration numbers", lambda: read_segments(paths))
    assert paths[0].name in str(info.value) and paths[1].name in str(info.value)


def test_overlapping_integrations(tmp_path):
    paths, _ = make_visit(tmp_path, nint=6, nseg=2, header_overrides={
        1: {"exposure.integration_start": 3, "exposure.integration_end": 5}})
    _expect(SegmentMismatchError, "duplicated or overlapping", lambda: read_segments(paths))


def test_intstart_inconsistent_with_cube(tmp_path):
    paths, _ = make_visit(tmp_path, nint=6, nseg=1, header_overrides={
        0: {"exposure.integration_end": 9}})
    _expect(TSOReadError, f"{paths[0].name}.*INTEND=9.*6 integrations", lambda: read_segments(paths))


def test_no_match(tmp_path):
    _expect(FileNotFoundError, "no files match", lambda: read_segments(str(tmp_path / "*.fits")))
    _expect(FileNotFoundError, "no such file", lambda: read_segments(tmp_path / "nope.fits"))


def test_nonfinite_and_bad_variance_are_flagged(tmp_path):
    paths, truth = make_visit(tmp_path, nint=5, nseg=1)
    with fits.open(paths[0], mode="update") as h:
        h["SCI"].data[1, 2, 3] = np.nan
        h["SCI"].data[2, 3, 4] = np.inf
        h["VAR_POISSON"].data[3, 4, 5] = 0.0
        h["VAR_RNOISE"].data[3, 4, 5] = 0.0
        h["VAR_POISSON"].data[4, 5, 6] = -1.0
    g = read_segments(paths)
    bad = g.flagged("invalid")
    assert set(zip(*np.nonzero(bad))) == {(1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 6)}
    assert not g.mask[1, 2, 3] and g.mask[0, 2, 3]
    assert np.isfinite(g.median_frame[1:]).all()  # row 0 is DO_NOT_USE in every integration
    assert np.isnan(g.median_frame[0]).all()
