"""Real detector geometry: header window -> known subarray -> wavelengths and traces.

Every TSO subarray of every mode (the shipped table of real corners) is mapped to
wavelengths, which must equal the mode's reference solution at the same detector
pixels; frame pixel ``j`` of a header with corner ``SUBSTRT`` is detector pixel
``SUBSTRT + j`` (1-based), written out here independently of the geometry code. A real
PRISM SUB512 file (corner 1025, 957 on NRS1; 1025, 1059 on NRS2) must reduce to the same
wavelengths and light curves as the same data without corner keywords (the table's own
frame, which is what the old (1, 1) files meant), and unknown windows must be refused
with the file and the keywords named.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits

from tsocontainer.errors import TSOValueError
from tsocontainer.geometry import geometry_from_meta, match_subarray
from tsocontainer.modes import Mode, get_mode
from tsocontainer.modes._subarrays import known_subarrays, subarray_table
from tsocontainer.modes._tables import load_columns, load_npy

#: the real PRISM table was measured on SUB512, whose first column is detector column 1025
PRISM_TABLE_FIRST_COLUMN = 1025
#: SLITLESSPRISM's first row on the MIRI detector (the MIRI map's row 0)
MIRI_MAP_FIRST_ROW = 529


def _mode(key, **cfg):
    return Mode(spec=get_mode(key), **cfg)


def _header(sub, **extra):
    return dict({"SUBARRAY": sub.name, "SUBSTRT1": sub.substrt1, "SUBSTRT2": sub.substrt2,
                 "SUBSIZE1": sub.subsize1, "SUBSIZE2": sub.subsize2}, **extra)


def _nirspec_cases():
    out = []
    for det in ("NRS1", "NRS2"):
        for grating in ("PRISM", "G395H"):
            for s in known_subarrays("NIRSPEC", det, grating=grating):
                if s.name != "SUB32":  # SUB32 is a MIRROR (acquisition) window
                    out.append(pytest.param(s, grating, id=f"{s.name}-{det}-{grating}"))
    return out


def _prism_reference(det_cols):
    """PRISM wavelength at 1-based detector columns (NaN off the 512-column table)."""
    cols, lam = load_columns("wave_vs_col_NIRSpec_PRISM_SUB512_REAL_jw06456.csv")
    return np.interp(det_cols - PRISM_TABLE_FIRST_COLUMN, cols, lam, left=np.nan, right=np.nan)


@pytest.mark.parametrize("sub, grating", _nirspec_cases())
def test_nirspec_subarrays_map_to_the_reference_solution(sub, grating):
    mode = _mode("nirspec", grating=grating, filter="CLEAR" if grating == "PRISM" else "F290LP",
                 detector=sub.detector, subarray=sub.name)
    geo = geometry_from_meta(mode, _header(sub), sub.shape)
    assert geo.known == sub and geo.y_offset == 0
    det_cols = sub.substrt1 + np.arange(sub.subsize1)  # 1-based detector columns
    got = geo.wavelength(1)
    if grating == "PRISM":
        want = _prism_reference(det_cols)
    else:  # the G395H solution covers the whole detector, column 0 = detector column 1
        full = mode.wavelength(1, np.arange(2048.0))
        want = full[det_cols - 1]
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], rtol=0, atol=1e-12)
    # where the PRISM light falls (detector columns 1025-1536) the subarray has wavelengths
    if grating == "PRISM" and sub.substrt1 <= 1100 < sub.substrt1 + sub.subsize1:
        assert np.isfinite(got).sum() > 400
    # the trace is in the middle of the BOTS window: the same detector row for all windows
    row = geo.trace_guess(1)[0] + sub.substrt2
    ref = known_subarrays("NIRSPEC", sub.detector, "SUB2048", grating)[0]
    assert row == pytest.approx(ref.substrt2 + 15.5)


@pytest.mark.parametrize("sub", known_subarrays("NIRCAM"), ids=lambda s: s.name)
@pytest.mark.parametrize("filt", ["F322W2", "F444W"])
def test_nircam_subarrays_map_to_the_flight_polynomial(sub, filt):
    mode = _mode("nircam", filter=filt, pupil="GRISMR", detector="NRCALONG", subarray=sub.name)
    geo = geometry_from_meta(mode, _header(sub), sub.shape)
    model = {"F322W2": ((1571.0, [3.92693691, 0.981165339, 0.00166653554, -0.00287412352])),
             "F444W": ((945.0, [4.019074429137344, 0.979649332832983]))}[filt]
    x = sub.substrt1 - 1 + np.arange(sub.subsize1)
    want = np.polynomial.Polynomial(model[1])((x - model[0]) / 1000.0)
    got = geo.wavelength(1)
    ok = np.isfinite(got)
    assert ok.sum() > 1000  # the band covers most of the detector
    np.testing.assert_allclose(got[ok], want[ok], rtol=0, atol=1e-12)
    # every TSO window starts at the detector's bottom row: the trace is always at row 34
    assert np.all(geo.trace_guess(1) == 34.0)


def test_nircam_polynomials_agree_with_the_siaf_undispersed_columns():
    # SIAF XSciRef (1581 for F322W2, 858 for F444W; 1-based) is where the undispersed source
    # sits; both independent polynomials must give the same (undeviated) wavelength there
    # (0.01 um = 10 columns, far more than the 0.003 um they differ by)
    lam = [_mode("nircam", filter=f).wavelength(1, np.array([x]))[0]
           for f, x in (("F322W2", 1580.0), ("F444W", 857.0))]
    assert abs(lam[0] - lam[1]) < 0.01 and 3.9 < lam[0] < 4.0


@pytest.mark.parametrize("sub", known_subarrays("NIRISS"), ids=lambda s: s.name)
def test_soss_subarrays(sub):
    mode = _mode("soss", subarray=sub.name, pupil="GR700XD", filter="CLEAR", detector="NIS")
    hdr = _header(sub, PWCPOS=245.79)
    geo = geometry_from_meta(mode, hdr, sub.shape)
    assert geo.x_offset == 0 and geo.y_offset == 0
    for order in (1, 2):
        np.testing.assert_array_equal(geo.wavelength(order),
                                      mode.wavelength(order, np.arange(2048.0), header=hdr))
    # the trace falls on the same detector rows in every window (SUBSTRIP96: the
    # pastasoss model is shifted by the SPECTRACE offset, good to ~0.5 px)
    strip = known_subarrays("NIRISS", name="SUBSTRIP256")[0]
    ref_mode = _mode("soss", subarray="SUBSTRIP256")
    ref = geometry_from_meta(ref_mode, _header(strip, PWCPOS=245.79), strip.shape)
    det_rows = geo.trace_guess(1) + sub.substrt2
    ref_rows = ref.trace_guess(1) + strip.substrt2
    both = np.isfinite(det_rows) & np.isfinite(ref_rows)
    assert both.sum() > 1000
    assert np.nanmedian(np.abs(det_rows[both] - ref_rows[both])) < 0.6


def test_miri_slitlessprism_maps_to_the_wavelength_map():
    sub = known_subarrays("MIRI", name="SLITLESSPRISM")[0]
    assert sub.corner == (1, MIRI_MAP_FIRST_ROW) and sub.shape == (416, 72)
    geo = geometry_from_meta(_mode("miri", subarray="SLITLESSPRISM"), _header(sub), sub.shape)
    col = load_npy("miri_lrs_slitlessprism_wavelength_map_416x72.npy")[:, 36].astype(float)
    good = col > 0
    np.testing.assert_allclose(geo.wavelength(1)[good], col[good], rtol=0, atol=1e-12)


def test_every_table_row_is_a_valid_window():
    rows = subarray_table()
    assert len(rows) == 92
    # one row per (instrument, detector, subarray, grating)
    keys = [(s.instrument, s.detector, s.name, s.grating) for s in rows]
    assert len(set(keys)) == len(keys)
    # DMS full frames: MIRI's imager 1032 columns x 1024 rows, the others 2048 x 2048
    frame = {"MIRIMAGE": (1032, 1024)}
    # sizes (columns, rows) that the subarray names define (JWST user documentation)
    size = {"FULL": None, "SUBSTRIP256": (2048, 256), "SUBSTRIP96": (2048, 96),
            "SUB512": (512, 32), "SUB512S": (512, 16), "SUB32": (32, 32),
            "SUB2048": (2048, 32), "SUB1024A": (1024, 32), "SUB1024B": (1024, 32),
            "SLITLESSPRISM": (72, 416), "SUBGRISM64": (2048, 64),
            "SUBGRISM128": (2048, 128), "SUBGRISM256": (2048, 256)}
    for s in rows:
        nx, ny = frame.get(s.detector, (2048, 2048))
        assert s.substrt1 >= 1 and s.substrt1 + s.subsize1 - 1 <= nx, s
        assert s.substrt2 >= 1 and s.substrt2 + s.subsize2 - 1 <= ny, s
        want = size.get(s.name, (s.subsize1, s.subsize2)) or (nx, ny)
        assert (s.subsize1, s.subsize2) == want, s
    prism = {s.detector: s.corner for s in known_subarrays("NIRSPEC", name="SUB512",
                                                           grating="PRISM")}
    assert prism == {"NRS1": (1025, 957), "NRS2": (1025, 1059)}


def test_mode_subarray_shapes_come_from_the_table():
    for key, inst in (("soss", "NIRISS"), ("nirspec", "NIRSPEC"), ("nircam", "NIRCAM"),
                      ("miri", "MIRI")):
        for s in known_subarrays(inst):
            assert get_mode(key).subarrays[s.name] == s.shape


def test_crops_inside_a_known_subarray_keep_working():
    # the simulator's SOSS test cubes crop columns 1200-1455: SUBSTRT1 = 1201
    strip = known_subarrays("NIRISS", name="SUBSTRIP256")[0]
    mode = _mode("soss", subarray="SUBSTRIP256")
    hdr = {"SUBARRAY": "SUBSTRIP256", "SUBSTRT1": 1201, "SUBSTRT2": 1793 + 6,
           "SUBSIZE1": 256, "SUBSIZE2": 250}
    geo = geometry_from_meta(mode, hdr, (250, 256))
    assert (geo.x_offset, geo.y_offset, geo.known) == (1200, 6, strip)
    np.testing.assert_array_equal(geo.wavelength(1), mode.wavelength(1, 1200 + np.arange(256.0)))
    np.testing.assert_allclose(geo.trace_guess(1), mode.trace_guess(1, 1200 + np.arange(256.0)) - 6)
    # MIRI crops along its rows (the dispersion) shift the map rows
    miri = _mode("miri", subarray="SLITLESSPRISM")
    g = geometry_from_meta(miri, {"SUBSTRT1": 1, "SUBSTRT2": 529 + 100, "SUBSIZE1": 72,
                                  "SUBSIZE2": 200}, (200, 72))
    np.testing.assert_array_equal(g.wavelength(1), miri.wavelength(1, 100 + np.arange(200.0)))


def test_without_corner_keywords_the_named_subarray_is_assumed():
    g395h = _mode("nirspec", grating="G395H", detector="NRS1", subarray="SUB1024B")
    geo = geometry_from_meta(g395h, {}, (32, 1024))
    assert geo.substrt == (1025, 963) and geo.x_offset == 1024
    prism = _mode("nirspec", grating="PRISM", detector="NRS1", subarray="SUB512")
    assert geometry_from_meta(prism, {}, (32, 512)).x_offset == 0


@pytest.mark.parametrize("hdr, words", [
    # the old simulator's PRISM corner: inside no SUB512 of NRS1
    ({"SUBARRAY": "SUB512", "SUBSTRT1": 1, "SUBSTRT2": 1}, ["SUBSTRT1=1", "SUBSTRT2=1",
                                                            "not inside SUB512",
                                                            "SUBSTRT1=1025, SUBSTRT2=957"]),
    # the NRS2 PRISM corner on NRS1
    ({"SUBARRAY": "SUB512", "SUBSTRT1": 1025, "SUBSTRT2": 1059}, ["SUBSTRT2=1059"]),
    # an unnamed window off every subarray
    ({"SUBARRAY": "CUSTOM", "SUBSTRT1": 1700, "SUBSTRT2": 100}, ["SUBARRAY=CUSTOM",
                                                                 "matches no known NIRSPEC NRS1"]),
    # a size that is not the frame's
    ({"SUBARRAY": "SUB512", "SUBSTRT1": 1025, "SUBSTRT2": 957, "SUBSIZE1": 1024},
     ["SUBSIZE1=1024", "32 x 512"]),
])
def test_unknown_geometry_is_refused_naming_file_and_keywords(hdr, words):
    prism = _mode("nirspec", grating="PRISM", detector="NRS1", subarray="SUB512")
    with pytest.raises(TSOValueError) as err:
        match_subarray(prism, hdr, (32, 512), source="jw_seg001_nrs1_rateints.fits")
    msg = str(err.value)
    assert msg.startswith("jw_seg001_nrs1_rateints.fits: ") and err.value.path is not None
    for word in words:
        assert word in msg, (word, msg)


def test_unknown_detector_is_named():
    nrcb = _mode("nircam", filter="F322W2", pupil="GRISMR", detector="NRCBLONG",
                 subarray="SUBGRISM64")
    with pytest.raises(TSOValueError, match="DETECTOR=NRCBLONG.*known detectors: NRCALONG"):
        match_subarray(nrcb, {"SUBSTRT1": 1, "SUBSTRT2": 1}, (64, 2048), source="b.fits")


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def prism_visit(tmp_path_factory):
    from tsocontainer.sim.simulate import simulate_visit

    out = tmp_path_factory.mktemp("prism_real_corner")
    return simulate_visit("nirspec-prism", nint=8, seed=5, out=out)


def _variant(vis, folder, **cards):
    """A copy of the visit's segment with primary-header cards changed (None: removed)."""
    folder.mkdir()
    dst = folder / vis.files[0].split("/")[-1]
    shutil.copy(vis.files[0], dst)
    with fits.open(dst, mode="update") as hdul:
        for key, value in cards.items():
            if value is None:
                del hdul[0].header[key]
            else:
                hdul[0].header[key] = value
    return str(dst)


def _reduce(path):
    from tsocontainer.group import read_segments

    g = read_segments(path, progress=False)
    g.fit_all_traces()
    spec = g.extract("box", width=6.0)
    return g, spec, g.to_lightcurves(bins=5)


def test_real_prism_corner_reduces_like_the_table_frame(prism_visit, tmp_path):
    with fits.open(prism_visit.files[0]) as hdul:
        hdr = hdul[0].header
        assert (hdr["SUBSTRT1"], hdr["SUBSTRT2"], hdr["SUBSIZE1"], hdr["SUBSIZE2"]) == (
            1025, 957, 512, 32)
    files = {"NRS1 (1025, 957)": prism_visit.files[0],
             # the same data as the NRS2 window of SUB512/PRISM (1025, 1059, flipped axes)
             "NRS2 (1025, 1059)": _variant(prism_visit, tmp_path / "nrs2", DETECTOR="NRS2",
                                           SUBSTRT2=1059, FASTAXIS=-2, SLOWAXIS=-1),
             "no corner keywords": _variant(prism_visit, tmp_path / "bare", SUBSTRT1=None,
                                            SUBSTRT2=None)}
    out = {name: _reduce(path) for name, path in files.items()}
    g, spec, lc = out["NRS1 (1025, 957)"]
    assert g.geometry.x_offset == 0 and g.geometry.known.corner == (1025, 957)
    wave = spec.wave[1]
    assert np.isfinite(wave).sum() > 400
    # the truth's wavelengths (float32) of the simulated columns
    truth_wave = prism_visit.truth_arrays()["WAVE"][0]
    ok = np.isfinite(truth_wave)
    np.testing.assert_allclose(wave[ok], truth_wave[ok], rtol=2e-7)  # float32 rounding
    for name, (_, s2, lc2) in out.items():
        np.testing.assert_array_equal(s2.wave[1], wave, err_msg=name)
        np.testing.assert_array_equal(s2.flux[1], spec.flux[1], err_msg=name)
        np.testing.assert_array_equal(lc2.flux, lc.flux, err_msg=name)
        np.testing.assert_array_equal(lc2.wave_lo, lc.wave_lo, err_msg=name)


def test_reader_refuses_an_unknown_window_before_reading_cubes(prism_visit, tmp_path, monkeypatch):
    from tsocontainer.group import read_segments
    from tsocontainer.io import segments

    path = _variant(prism_visit, tmp_path / "old", SUBSTRT1=1, SUBSTRT2=1)

    def no_read(*args, **kwargs):
        raise AssertionError("a cube was read before the header check")

    monkeypatch.setattr(segments._BlockReader, "read_file", no_read)
    with pytest.raises(TSOValueError, match=r"old/.*SUBSTRT1=1, SUBSTRT2=1.*not inside SUB512"):
        read_segments(path, progress=False)


def test_soss_substrip96_file_reads_at_its_corner(tmp_path):
    """A simulated SUBSTRIP96 visit (real corner 1, 1803) reads with SUBSTRIP96's own tables."""
    from tsocontainer.group import read_segments
    from tsocontainer.sim.simulate import simulate_visit

    vis = simulate_visit("soss", nint=2, seed=4, out=tmp_path, subarray="SUBSTRIP96",
                         columns=(0, 512), noiseless=True)
    strip = known_subarrays("NIRISS", name="SUBSTRIP96")[0]
    with fits.open(vis.files[0]) as hdul:
        hdr = hdul[0].header
        assert (hdr["SUBARRAY"], hdr["SUBSTRT1"], hdr["SUBSTRT2"], hdr["SUBSIZE1"],
                hdr["SUBSIZE2"]) == ("SUBSTRIP96", 1, strip.substrt2, 512, 96)
    g = read_segments(vis.files, progress=False)
    geo = g.geometry
    assert geo.known == strip and (geo.x_offset, geo.y_offset) == (0, 0) and g.sh == (96, 512)
    arrays = vis.truth_arrays()
    for k, order in enumerate(vis.truth["orders"]):
        want = arrays["WAVE"][k]
        ok = np.isfinite(want)
        np.testing.assert_allclose(geo.wavelength(order)[ok], want[ok], rtol=2e-7)  # float32
    # the guess is the injected trace less the pointing jitter (|dy| < 0.2 px here)
    np.testing.assert_allclose(geo.trace_guess(1), arrays["TRACE"][0, 0], atol=0.2)
    # and it lies on the detector rows of the SUBSTRIP256 trace (1803 - 1793 = 10 rows)
    ref = geometry_from_meta(_mode("soss", subarray="SUBSTRIP256"),
                             {"SUBSTRT1": 1, "SUBSTRT2": 1793, "PWCPOS": hdr["PWCPOS"]},
                             (256, 512))
    assert np.nanmedian(np.abs(geo.trace_guess(1) + 10 - ref.trace_guess(1))) < 0.6
