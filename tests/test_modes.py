"""Tests of the instrument-mode geometry: SOSS versus PWCPOS, G395H, NIRSpec, NIRCam, MIRI."""
from __future__ import annotations

import numpy as np
import pytest

from tsocontainer.modes import Mode, detect_mode, get_mode, soss
from tsocontainer.modes._tables import data_path, load_columns, load_npz


def _mode(key, **cfg):
    return Mode(spec=get_mode(key), **cfg)


SOSS = _mode("soss", subarray="SUBSTRIP256")
X = np.arange(2048, dtype=float)


def test_soss_trace_at_the_commanded_position_is_the_reference_table():
    table = np.loadtxt(data_path("jwst_niriss_gr700xd_order1_trace_refmodel.txt"))
    x, y = table[1:, 0], table[1:, 1]
    got = soss.trace_guess(SOSS, 1, x, pwcpos=soss.PWCPOS_CMD)
    np.testing.assert_allclose(got, y, atol=1e-9)  # zero rotation: the table itself


def test_soss_trace_rotates_about_the_pivot():
    pivot_x, pivot_y = np.loadtxt(data_path("jwst_niriss_gr700xd_order1_trace_refmodel.txt"))[0]
    angle = 0.1  # degrees
    base = soss.trace_guess(SOSS, 1, X, pwcpos=soss.PWCPOS_CMD)
    moved = soss.trace_guess(SOSS, 1, X, pwcpos=soss.PWCPOS_CMD + angle)
    shift = moved - base
    near = np.abs(X - pivot_x) < 5
    assert np.all(np.abs(shift[near]) < 0.02)
    # far from the pivot the shift is about (x - x_pivot) tan(angle), within the
    # curvature of the trace (the slope of the trace mixes in: 10 %)
    expect = (X - pivot_x) * np.tan(np.radians(angle))
    far = np.abs(X - pivot_x) > 800
    assert np.allclose(shift[far], expect[far], rtol=0.1)


def test_soss_trace_from_header_and_without_pwcpos():
    with_header = SOSS.trace_guess(1, X, header={"PWCPOS": 245.9})
    direct = soss.trace_guess(SOSS, 1, X, pwcpos=245.9)
    np.testing.assert_array_equal(with_header, direct)
    spectrace = SOSS.trace_guess(1, X)
    # SPECTRACE and pastasoss agree to about a pixel where both exist
    both = np.isfinite(spectrace) & np.isfinite(direct)
    assert np.nanmax(np.abs(spectrace[both] - soss.trace_guess(SOSS, 1, X[both], pwcpos=245.76))) < 1.5


@pytest.mark.parametrize("order", [1, 2])
def test_soss_pastasoss_wavelengths_agree_with_spectrace(order):
    base = SOSS.wavelength(order, X)
    model = SOSS.wavelength(order, X, header={"PWCPOS": 245.7787})
    both = np.isfinite(base) & np.isfinite(model)
    assert both.sum() > 1500
    # two independent calibrations of the same grism: 0.01 micron (~10 order-1 pixels is
    # far more than their measured agreement of ~0.002 micron)
    assert np.max(np.abs(base[both] - model[both])) < 0.01
    assert np.all(np.diff(model[both]) < 0)  # wavelength decreases with column
    # the model is continuous where it hands over to the SPECTRACE shape
    assert np.max(np.abs(np.diff(model[np.isfinite(model)]))) < 0.005


def test_soss_order3_and_substrip96():
    w3 = SOSS.wavelength(3, X, header={"PWCPOS": 245.8})
    assert np.nanmin(w3) > 0.5 and np.nanmax(w3) < 1.0
    s96 = _mode("soss", subarray="SUBSTRIP96")
    t96 = soss.trace_guess(s96, 1, X, pwcpos=245.8)
    t256 = soss.trace_guess(SOSS, 1, X, pwcpos=245.8)
    # SUBSTRIP96 starts about 10 rows above SUBSTRIP256
    assert np.nanmedian(t256 - t96) == pytest.approx(10, abs=1.0)
    with pytest.raises(ValueError, match="order must be one of"):
        SOSS.wavelength(4)


@pytest.mark.shared_data
def test_soss_trace_matches_the_real_frame(shared_data):
    frame = np.load(shared_data / "soss" /
                    "jw01512001001_03102_00001_nis_demo_pwcpos_245.778671.npy").astype(float)
    yc = soss.trace_guess(SOSS, 1, X, pwcpos=245.778671)
    rows = np.arange(256)[:, None]
    bkg = np.median(frame[200:250], axis=0)
    win = np.abs(rows - yc[None, :]) <= 14
    w = np.where(win, np.clip(frame - bkg, 0, None), 0)
    cen = (w * rows).sum(axis=0) / w.sum(axis=0)
    cols = np.arange(800, 2000)  # order 1 bright and alone
    # pastasoss quotes sub-pixel accuracy; the flux-weighted centroid of the
    # asymmetric SOSS profile sits within a pixel of its model centre
    assert np.median(np.abs(cen[cols] - yc[cols])) < 1.0


def test_g395h_wavelengths_are_anchored_at_the_detector_gap():
    nrs1 = _mode("nirspec", grating="G395H", filter="F290LP", detector="NRS1", subarray="SUB2048")
    nrs2 = _mode("nirspec", grating="G395H", filter="F290LP", detector="NRS2", subarray="SUB2048")
    w1, w2 = nrs1.wavelength(1), nrs2.wavelength(1)
    assert w1[-1] == pytest.approx(3.717, abs=1e-9) and w2[0] == pytest.approx(3.823, abs=1e-9)
    assert np.all(np.diff(w1) > 0) and np.all(np.diff(w2) > 0)
    # the published limits of G395H/F290LP: the 2.87 micron cut-on falls on NRS1 and NRS2
    # ends near 5.17-5.18 micron; 0.02 micron (30 pixels) allows for the approximate
    # dispersion table integrated over 2048 columns
    assert w1[0] < 2.87 < w1[-1]
    assert w2[-1] == pytest.approx(5.175, abs=0.02)
    from astropy.io import fits

    with fits.open(data_path("jwst_nirspec_g395h_disp.fits")) as hdul:
        tw, dl = hdul[1].data["WAVELENGTH"], hdul[1].data["DLDS"]
    np.testing.assert_allclose(np.gradient(w2), np.interp(w2, tw, dl), rtol=2e-3)


def test_prism_nircam_miri_wavelengths():
    prism = _mode("nirspec", grating="PRISM", filter="CLEAR", detector="NRS1", subarray="SUB512")
    wp = prism.wavelength(1)
    assert wp.shape == (512,) and 0.4 < np.nanmin(wp) < 0.7 and np.nanmax(wp) > 5
    nrc = _mode("nircam", filter="F322W2", pupil="GRISMR", subarray="SUBGRISM64")
    wn = nrc.wavelength(1)
    # the flight polynomial over the F322W2 band (2.35-4.1 um): columns 0..~1745
    good = np.isfinite(wn)
    assert good[:1700].all() and not good[1800:].any() and np.all(np.diff(wn[good]) > 0)
    assert nrc.trace_guess(1, header={"PWCPOS": 1.0})[0] == 34.0  # PWCPOS is ignored
    miri = _mode("miri", subarray="SLITLESSPRISM")
    wm = miri.wavelength(1)
    good = np.isfinite(wm)
    assert np.all(np.diff(wm[good]) < 0)  # wavelength decreases up the rows
    assert 4 < np.nanmin(wm) < 6 and 12 < np.nanmax(wm) < 15


def test_detect_mode_of_all_simulated_configurations():
    from tsocontainer.sim.scene import SIM_MODES

    for name, cfg in SIM_MODES.items():
        hdr = {"INSTRUME": cfg["instrument"], "EXP_TYPE": cfg["exp_type"],
               "DETECTOR": cfg["detector"], "FILTER": cfg["filter"], "PUPIL": cfg["pupil"],
               "GRATING": cfg["grating"], "SUBARRAY": cfg["subarray"]}
        mode = detect_mode(hdr)
        assert mode.key == cfg["spec"], name
        assert mode.spec.subarrays[cfg["subarray"]] == tuple(cfg["shape"])


def test_tables_are_read_only_and_skip_headers():
    wave, tp = load_columns("JWST_NIRSpec_prism_throughput.csv", ",", 1)
    assert wave.size == tp.size > 100 and not wave.flags.writeable
    frame = load_npz("soss_model_background96.npz", "background")
    assert frame.shape == (96, 2048) and not frame.flags.writeable


def test_soss_full_frame_rows_are_substrip256_plus_1792():
    # SUBSTRIP256 is the top 256 rows (1792-2047) of the full frame in DMS orientation
    from tsocontainer.modes import MODES, Mode

    sub = Mode(spec=MODES["soss"], subarray="SUBSTRIP256")
    full = Mode(spec=MODES["soss"], subarray="FULL")
    x = np.arange(100, 1800, 100, dtype=float)
    for header in (None, {"PWCPOS": 245.9}):
        assert np.allclose(full.trace_guess(1, x, header=header),
                           sub.trace_guess(1, x, header=header) + 1792)
