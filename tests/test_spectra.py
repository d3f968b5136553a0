"""The Spectra container: validation, subsets, x1dints round trip, light curves, plots."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from tsocontainer.group.container import TSOGroup
from tsocontainer.spectra.container import Spectra

from test_trace import make_mode, synthetic_visit


def two_order_spectra(nint=6, seed=0):
    rng = np.random.default_rng(seed)
    wave = {1: np.linspace(0.9, 2.8, 40), 2: np.linspace(0.6, 1.3, 25)}
    wave[2][-1] = np.nan  # off-order pixel
    flux = {o: rng.normal(100, 3, (nint, w.size)) for o, w in wave.items()}
    var = {o: rng.uniform(1, 4, (nint, w.size)) for o, w in wave.items()}
    mask = {o: rng.random((nint, w.size)) > 0.05 for o, w in wave.items()}
    flux[2][:, -1] = np.nan
    time = 2460100.0 + np.arange(nint) * 0.001 + 1.234567e-7
    return Spectra(time, wave, flux, var, mask, int_numbers=np.arange(11, 11 + nint),
                   regressors={"shift_y": rng.normal(0, 0.01, nint), "pca1": rng.normal(size=nint)},
                   meta={"EXTRMETH": "box", "BUNIT": "DN/s", "INSTRUME": "NIRISS",
                         "EXP_TYPE": "NIS_SOSS", "DISPAXIS": 1, "WIDTH1": 40.0},
                   columns={1: {"trace": np.linspace(80, 40, 40), "contamination": np.zeros(40)}})


def test_construction_and_validation():
    s = two_order_spectra()
    assert s.orders == (1, 2) and s.nint == 6 and s.nwave == {1: 40, 2: 25}
    assert not s.mask[2][:, -1].any()  # NaN flux is never good
    assert "box" in repr(s)
    with pytest.raises(ValueError, match="unknown argument"):
        Spectra(s.time, s.wave, s.flux, s.var, regresors={})
    with pytest.raises(ValueError, match="order 1: var"):
        Spectra(s.time, s.wave, s.flux, {1: s.var[1][:, :3], 2: s.var[2]})
    with pytest.raises(ValueError, match="regressor 'x'"):
        Spectra(s.time, s.wave, s.flux, s.var, regressors={"x": np.zeros(3)})
    single = Spectra(np.arange(3.0), np.arange(4.0), np.ones((3, 4)), np.ones((3, 4)))
    assert single.orders == (1,)


def test_subsets_and_equality():
    s = two_order_spectra()
    sub = s[1:4]
    assert sub.nint == 3 and np.array_equal(sub.int_numbers, [12, 13, 14])
    np.testing.assert_array_equal(sub.regressors["pca1"], s.regressors["pca1"][1:4])
    one = s.select(2)
    assert one.orders == (2,) and one.nwave == {2: 25}
    c = s.copy()
    assert c == s and c is not s
    c.flux[1][0, 0] += 1
    assert c != s
    with pytest.raises(ValueError, match="orders"):
        s.select(3)


def test_white_light():
    s = two_order_spectra()
    f, v = s.white_light(order=1)
    use = s.mask[1].all(0)
    np.testing.assert_allclose(f, s.flux[1][:, use].sum(1))
    f2, _ = s.white_light(order=1, wave_range=(1.0, 1.5))
    assert np.all(f2 < f)


def test_x1dints_round_trip_is_exact_and_opens_in_stdatamodels(tmp_path):
    from stdatamodels.jwst import datamodels

    s = two_order_spectra()
    path = tmp_path / "visit_x1dints.fits"
    assert s.write_x1dints(path) == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["visit_x1dints.fits"]  # no temp left
    back = Spectra.read(path)
    assert back == s
    assert back.meta == s.meta and back.columns.keys() == s.columns.keys()
    np.testing.assert_array_equal(back.columns[1]["trace"], s.columns[1]["trace"])
    with datamodels.open(path) as model:
        assert type(model).__name__ == "TSOMultiSpecModel"
        assert [sp.spectral_order for sp in model.spec] == [1, 2]
        tab = model.spec[0].spec_table
        assert tab["FLUX"].shape == (6, 40)
        np.testing.assert_array_equal(tab["INT_NUM"], s.int_numbers)
        np.testing.assert_allclose(tab["TDB-MID"], s.time - 2400000.5)
        np.testing.assert_allclose(tab["FLUX_ERROR"], np.sqrt(s.var[1]))
        np.testing.assert_array_equal(tab["DQ"] & 1, ~s.mask[1])
        assert model.meta.instrument.name == "NIRISS"
        assert model.spec[0].dispersion_direction == 1
    with pytest.raises(FileExistsError):
        s.write_x1dints(path)
    s.write_x1dints(path, overwrite=True)
    with pytest.raises(ValueError, match=".fits"):
        s.write_x1dints(tmp_path / "x.asdf")


def test_read_pipeline_style_x1dints_without_tsoc_extensions(tmp_path):
    # a file as the jwst pipeline writes it: errors, DQ and TDB-MID only
    s = two_order_spectra()
    path = tmp_path / "a_x1dints.fits"
    s.write_x1dints(path)
    with fits.open(path) as hdul:
        keep = fits.HDUList([h.copy() for h in hdul if not h.name.startswith("TSOC")])
        keep.writeto(tmp_path / "b_x1dints.fits")
    back = Spectra.read(tmp_path / "b_x1dints.fits")
    np.testing.assert_allclose(back.var[1], s.var[1], rtol=1e-14)
    np.testing.assert_array_equal(back.mask[1], s.mask[1])
    np.testing.assert_allclose(back.time, s.time, rtol=0, atol=1e-9)
    assert back.regressors == {}
    with pytest.raises(ValueError, match="EXTRACT1D"):
        fits.PrimaryHDU().writeto(tmp_path / "empty.fits")
        Spectra.read(tmp_path / "empty.fits")


def test_to_lightcurves_carries_regressors():
    pytest.importorskip("tsocontainer.lightcurves.container")
    s = two_order_spectra(nint=20)
    lc = s.to_lightcurves(bins=4, order=1)
    assert lc.nchan == 4 and lc.nint == 20
    np.testing.assert_array_equal(lc.regressors["pca1"], s.regressors["pca1"])
    assert lc.meta["SPORDER"] == 1
    lc2 = s.to_lightcurves(bins=3, order=2)
    assert lc2.nchan == 3


def test_group_extract_stores_spectra_and_makes_lightcurves(tmp_path):
    pytest.importorskip("tsocontainer.lightcurves.container")
    g, _ = synthetic_visit(n=20, nx=2048, ny=64, seed=31, mode=make_mode("nircam"))
    with pytest.raises(RuntimeError, match="extract"):
        g.spectra
    g.fit_all_traces().measure_shifts()
    spec = g.extract("box")
    assert g.spectra == spec
    assert set(spec.regressors) == {"shift_x", "shift_y", "fwhm"}
    assert spec.meta["EXTRMETH"] == "box" and spec.meta["DISPAXIS"] == 1
    lc = g.to_lightcurves(bins=5)
    assert lc.nchan == 5
    # the extraction travels with the saved group
    back = TSOGroup.read(g.write(tmp_path / "g.fits"))
    assert back.spectra == spec
    # and the slice of a group has the slice of its spectra
    assert g[3:7].spectra == spec[3:7]


def test_plots():
    s = two_order_spectra(nint=12)
    ax = s.plot_waterfall(order=1)
    assert ax.get_xlabel() == "wavelength [micron]" and ax.get_title() == "order 1"
    ax = s.plot_spectra()
    assert ax.get_ylabel() == "flux [DN/s]"
    assert len(ax.get_legend_handles_labels()[1]) == 2
    ax = s.plot_spectra(order=2, integrations=[0, 3])
    assert ax.get_legend_handles_labels()[1] == ["order 2, int 0", "order 2, int 3"]


def test_read_segments_list_concatenates(tmp_path):
    s = two_order_spectra(nint=8)
    paths = [s[:3].write_x1dints(tmp_path / "a_x1dints.fits"),
             s[3:].write_x1dints(tmp_path / "b_x1dints.fits")]
    assert Spectra.read(paths) == s
    with pytest.raises(ValueError, match="different orders"):
        Spectra.concatenate([s, s.select(1)])
