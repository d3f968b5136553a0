"""NIRISS/SOSS in its other subarrays (issue 16, item 4): SUBSTRIP96 end to end, FULL read.

SUBSTRIP96 (SUBSTRT1 = 1, SUBSTRT2 = 1803, 2048 x 96) is 10 rows above the bottom of
SUBSTRIP256: it holds order 1 whole, the core of order 2 only at its top rows (columns
0-~1040, 0.92-1.42 um) and no order 3. The simulator writes it at its real corner
with only those orders in the truth; the shipped SOSS recipe must reduce it, with its
own traces (an order outside the window is no error) and the background model cut at
its rows, to the injected white depth within 2 sigma and channel pulls of unit spread.
FULL is simulated and read (header, geometry, ``info``) on a two-integration column
crop only: a full frame is 80 MB per integration in five float arrays.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
from astropy.io import fits

from tsocontainer.sim.simulate import simulate_visit

#: the real SOSS windows (tsocontainer/data/jwst_tso_subarrays.csv)
CORNERS = {"SUBSTRIP96": (1, 1803, 2048, 96), "SUBSTRIP256": (1, 1793, 2048, 256),
           "FULL": (1, 1, 2048, 2048)}


def _window(path):
    h = fits.getheader(path)
    return h["SUBARRAY"], (h["SUBSTRT1"], h["SUBSTRT2"], h["SUBSIZE1"], h["SUBSIZE2"])


@pytest.fixture(scope="module")
def strip96(tmp_path_factory):
    """A SUBSTRIP96 visit: 80 integrations, 1024 columns where order 2 meets the top rows."""
    out = tmp_path_factory.mktemp("strip96")
    return simulate_visit("soss", nint=80, nseg=2, seed=7, out=out, subarray="SUBSTRIP96",
                          columns=(512, 1536))


def test_substrip96_files_carry_the_real_window_and_a_truth_of_its_orders(strip96):
    sub, window = _window(strip96.files[0])
    # the column crop moves SUBSTRT1 by its first column; the rows are SUBSTRIP96's
    assert sub == "SUBSTRIP96" and window == (1 + 512, 1803, 1024, 96)
    assert fits.getdata(strip96.files[0], "SCI").shape == (40, 96, 1024)
    t = strip96.truth
    assert t["orders"] == [1, 2] and t["instrument"]["subarray"] == "SUBSTRIP96"
    arrays = strip96.truth_arrays()
    trace = arrays["TRACE"]
    # order 1 whole inside; order 2 only at the top rows of the columns left of ~1040
    assert np.isfinite(trace[0]).all() and 25 < np.nanmin(trace[0]) < np.nanmax(trace[0]) < 75
    on2 = np.isfinite(trace[1, 0])
    assert on2[:500].all() and not on2[560:].any()
    assert np.nanmin(trace[1]) > 80 and np.nanmax(trace[1]) <= 95.5
    # order 2's light is in the window, and none below its centre less the profile's
    # 20 px half-width (its centre stays above row 84)
    model2 = arrays["MODEL"][1]
    assert model2[:, :500].sum() > 0 and model2[:60].sum() == 0
    # the background is the shipped SUBSTRIP96 model itself, at its own rows
    from tsocontainer.cleaning.background import soss_background_model

    want = soss_background_model("SUBSTRIP96", (96, 1024), x_offset=512)
    np.testing.assert_allclose(arrays["BACKGROUND"], want, rtol=1e-6)


def test_unknown_or_impossible_subarrays_are_refused_listing_the_allowed():
    with pytest.raises(ValueError, match="SUBSTRIP128.*allowed: SUBSTRIP256, SUBSTRIP96, FULL"):
        simulate_visit("soss", nint=2, subarray="SUBSTRIP128")
    with pytest.raises(ValueError, match="not simulated for miri-lrs; allowed: SLITLESSPRISM"):
        simulate_visit("miri-lrs", nint=2, subarray="FULL")
    with pytest.raises(ValueError, match="order 3 falls outside SUBSTRIP96"):
        simulate_visit("soss", nint=2, subarray="SUBSTRIP96", orders=(1, 3))


def test_substrip96_reads_with_its_own_traces_and_info_names_it(strip96, capsys, caplog):
    from tsocontainer.group import read_segments
    from tsocontainer.pipeline.cli import main

    assert main(["info", *strip96.files]) == 0
    assert "NIRISS SOSS SUBSTRIP96" in capsys.readouterr().out
    g = read_segments(strip96.files, progress=False)
    assert g.geometry.subarray == "SUBSTRIP96" and g.geometry.known.corner == (1, 1803)
    with caplog.at_level(logging.INFO, logger="tsocontainer"):
        g.fit_all_traces()
    # orders 2 (its core cut by the top edge) and 3 (outside) are no failure: said at
    # INFO, no warning
    for order in (2, 3):
        assert f"order {order}: not in the SUBSTRIP96 frame" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING
                and "order" in r.getMessage()]
    assert set(g.traces) == {1, 2, 3} and np.isnan(g.traces[3]).all()
    # the measured order-1 centres follow the injected ones (jitter included)
    diff = g.traces[1] - strip96.truth_arrays()["TRACE"][0]
    assert np.nanmedian(np.abs(diff)) < 0.05, np.nanmedian(np.abs(diff))


def _check_recovery(vis, res):
    """White fit not suspect and within 2 sigma of the injected depth; 8 channel pulls of
    unit spread: |mean| < 1.1 (3 sigma of a mean of 8), sample std 0.4-1.7 (~1 % tails)."""
    from tsocontainer.sim.truth import recovery

    assert not res.white.quality["suspect"], res.white.quality["reasons"]
    rec = recovery(vis, res.white, res.spectrum)
    assert abs(rec["pull"]) < 2, rec
    pulls = rec["pulls"]
    assert pulls.size == 8 and abs(pulls.mean()) < 1.1, pulls
    assert 0.4 <= np.std(pulls, ddof=1) <= 1.7, pulls


def _run_soss8(vis, out):
    """The shipped SOSS recipe (its read window included) with 8 channels instead of 20."""
    from tsocontainer.pipeline.recipe import default_recipe
    from tsocontainer.pipeline.runner import run_recipe
    from tsocontainer.sim.truth import priors_from_truth

    recipe = default_recipe("soss")
    steps = [{n: (dict(kw, bins=8) if n == "to_lightcurves" else kw)} for n, kw in recipe.steps]
    return run_recipe(vis.files, {"name": "soss", "read": recipe.read, "steps": steps},
                      out=out, priors=priors_from_truth(vis.truth), plots=False)


def test_substrip96_visit_reduces_to_the_injected_depths(strip96, tmp_path):
    """The shipped SOSS recipe (8 channels instead of 20, for time), injection -> recovery:
    white depth within 2 sigma, channel pulls of unit spread."""
    res = _run_soss8(strip96, tmp_path / "run")
    _check_recovery(strip96, res)


def test_full_frame_is_simulated_and_read_at_its_corner(tmp_path, capsys):
    from tsocontainer.group import read_segments
    from tsocontainer.pipeline.cli import main

    assert main(["simulate", "--mode", "soss", "--nint", "2", "--seed", "3", "--out",
                 str(tmp_path / "bad"), "--subarray", "SUBSTRIP48"]) == 2
    assert "allowed: SUBSTRIP256, SUBSTRIP96, FULL" in capsys.readouterr().err
    vis = simulate_visit("soss", nint=2, seed=3, out=tmp_path / "full", subarray="FULL",
                         columns=(1000, 1256), contaminants=0.0)
    sub, window = _window(vis.files[0])
    assert sub == "FULL" and window == (1001, 1, 256, 2048)
    assert vis.truth["orders"] == [1, 2, 3]
    g = read_segments(vis.files, progress=False)
    assert g.sh == (2048, 256) and g.geometry.subarray == "FULL"
    # the orders sit in the top 256 rows (SUBSTRIP256's, detector rows 1793-2048)
    trace = vis.truth_arrays()["TRACE"]
    assert np.nanmin(trace) > 1792 and np.isfinite(trace[0]).all()
    np.testing.assert_allclose(g.geometry.trace_guess(1), trace[0, 0], atol=1.0)
    # no light below them: the frame's lower rows hold background and noise only
    model = vis.truth_arrays()["MODEL"].sum(axis=0)
    assert model[:1700].sum() < 1e-6 * model.sum()


@pytest.fixture(scope="module")
def full2(tmp_path_factory):
    """Two FULL-frame integrations (256 columns), the frame the tests below cut."""
    out = tmp_path_factory.mktemp("full2")
    return simulate_visit("soss", nint=2, seed=3, out=out, subarray="FULL",
                          columns=(1000, 1256), contaminants=0.0)


def test_full_frame_read_on_the_soss_rows_is_those_rows_placed_like_substrip256(full2):
    from tsocontainer.cleaning.background import soss_background_model
    from tsocontainer.group import read_segments

    whole = read_segments(full2.files, progress=False)
    g = read_segments(full2.files, progress=False, detector_rows=(1793, 2048))
    assert g.sh == (256, 256) and whole.sh == (2048, 256)
    np.testing.assert_array_equal(g.sci, whole.sci[:, 1792:])
    np.testing.assert_array_equal(g.var, whole.var[:, 1792:])
    np.testing.assert_array_equal(g.dq, whole.dq[:, 1792:])
    assert (g.meta["SUBSTRT2"], g.meta["SUBSIZE2"]) == (1793, 256)
    assert g.geometry.subarray == "FULL" and g.geometry.y_offset == 1792
    # placed as SUBSTRIP256: the same nominal traces, in the frame's rows
    trace = full2.truth_arrays()["TRACE"]
    np.testing.assert_allclose(g.geometry.trace_guess(1), trace[0, 0] - 1792, atol=1.0)
    np.testing.assert_allclose(whole.geometry.trace_guess(1) - 1792, g.geometry.trace_guess(1))
    assert g.steps[0] == "read_segments" and g.history[0]["params"]["detector_rows"] == [1793, 2048]
    # the background model on those rows is SUBSTRIP256's; the whole frame has none
    sky = soss_background_model("FULL", g.sh, g.geometry.x_offset, g.geometry.y_offset)
    np.testing.assert_array_equal(sky, soss_background_model("SUBSTRIP256", (256, 256), 1000))
    with pytest.raises(ValueError, match="detector rows 1-2048.*detector_rows=\\(1793, 2048\\)"):
        soss_background_model("FULL", whole.sh, whole.geometry.x_offset, whole.geometry.y_offset)
    # traces are found where the orders are (the guess is in the frame's rows)
    g.fit_all_traces(per_integration=False)
    assert np.isfinite(g.traces[1]).mean() > 0.9
    np.testing.assert_allclose(np.nanmedian(g.traces[1], 0), trace[0].mean(0) - 1792, atol=0.1)


def test_detector_rows_outside_the_frame_name_the_file(full2, tmp_path):
    from tsocontainer.errors import TSOValueError
    from tsocontainer.group import read_segments

    with pytest.raises(TSOValueError, match=r"seg001.*detector rows 3000-3100 are outside its "
                                            r"frame \(rows 1-2048\)"):
        read_segments(full2.files, progress=False, detector_rows=(3000, 3100))
    # a header without SUBSTRT2 cannot be placed
    path = tmp_path / "jw_nocorner-seg001_nis_rateints.fits"
    with fits.open(full2.files[0]) as hdul:
        del hdul[0].header["SUBSTRT2"]
        hdul.writeto(path)
    with pytest.raises(TSOValueError, match="no SUBSTRT2 in the header"):
        read_segments([path], progress=False, detector_rows=(1793, 2048))


def test_recipe_read_section_is_checked_and_kept():
    from tsocontainer.pipeline.recipe import RecipeError, default_recipe, load_recipe

    r = default_recipe("soss")
    assert r.read == {"detector_rows": [1793, 2048]}
    assert load_recipe(r.to_yaml()).read == r.read       # written and read back
    steps = [{"flag_dq": {}}]
    for bad in ([1793], [2048, 1793], [0, 10], [1.5, 2048], "rows"):
        with pytest.raises(RecipeError, match="detector_rows must be"):
            load_recipe({"read": {"detector_rows": bad}, "steps": steps})
    with pytest.raises(RecipeError, match=r"read: unknown key\(s\) \['rows'\]"):
        load_recipe({"read": {"rows": [1, 2]}, "steps": steps})


def test_a_group_that_the_window_would_cut_is_refused_before_any_step(full2, tmp_path):
    from tsocontainer.errors import TSOValueError
    from tsocontainer.group import read_segments
    from tsocontainer.pipeline.runner import run_recipe

    whole = read_segments(full2.files, progress=False)
    with pytest.raises(TSOValueError, match="frames hold rows 1-2048.*detector_rows"):
        run_recipe(whole, "soss", out=tmp_path / "run", plots=False)
    assert whole.steps == ["read_segments"]


@pytest.fixture(scope="module")
def full60(tmp_path_factory):
    """A FULL-frame visit: 60 integrations, 512 columns (0.9 GB on disk, removed after)."""
    import shutil

    out = tmp_path_factory.mktemp("full60")
    yield simulate_visit("soss", nint=60, nseg=2, seed=5, out=out, subarray="FULL",
                         columns=(600, 1112))
    shutil.rmtree(out, ignore_errors=True)


def test_full_frame_visit_reduces_to_the_injected_depths(full60, tmp_path):
    """The shipped SOSS recipe on FULL frames (it reads SUBSTRIP256's rows; 8 channels):
    white depth within 2 sigma, channel pulls of unit spread, as for SUBSTRIP96."""
    res = _run_soss8(full60, tmp_path / "run")
    g = res.group
    assert g.sh == (256, 512) and g.meta["SUBSTRT2"] == 1793 and g.meta["SUBARRAY"] == "FULL"
    _check_recovery(full60, res)


def test_a_full_frame_read_whole_is_refused_before_reading_when_the_sky_needs_the_model(
        full2, tmp_path):
    from tsocontainer.errors import TSOValueError
    from tsocontainer.pipeline.recipe import default_recipe
    from tsocontainer.pipeline.runner import run_recipe

    steps = [{n: kw} for n, kw in default_recipe("soss").steps][:4]     # ... estimate_sky
    assert "estimate_sky" in steps[-1]
    with pytest.raises(TSOValueError, match=r"seg001.*covers detector rows 1793-2048.*hold rows "
                                            r"1-2048: add 'read: \{detector_rows"):
        run_recipe(full2.files, {"steps": steps}, out=tmp_path / "run", plots=False)
    assert not (tmp_path / "run" / "state.fits").exists()
    # with the window, or with another sky method, it runs
    steps[-1] = {"estimate_sky": {"method": "polynomial"}}
    run_recipe(full2.files, {"steps": steps[:1] + steps[-1:]}, out=tmp_path / "run2", plots=False)
