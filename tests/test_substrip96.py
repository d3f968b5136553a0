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


def test_substrip96_visit_reduces_to_the_injected_depths(strip96, tmp_path):
    """The shipped SOSS recipe (8 channels instead of 20, for time), injection -> recovery:
    white depth within 2 sigma, channel pulls of unit spread."""
    from tsocontainer.pipeline.recipe import default_recipe
    from tsocontainer.pipeline.runner import run_recipe
    from tsocontainer.sim.truth import binned_depth, priors_from_truth

    steps = []
    for name, kw in default_recipe("soss").steps:
        kw = dict(kw)
        if name == "to_lightcurves":
            kw["bins"] = 8
        steps.append({name: kw})
    res = run_recipe(strip96.files, {"name": "soss", "steps": steps}, out=tmp_path / "run",
                     priors=priors_from_truth(strip96.truth), plots=False)
    white = res.white
    assert not white.quality["suspect"], white.quality["reasons"]
    depth, lo, hi = white.depth_ppm
    injected = float(binned_depth(strip96, [white.wave_lo, white.wave_hi * (1 + 1e-9)])[0])
    pull = (depth - injected) / (0.5 * (lo + hi))
    assert abs(pull) < 2, (depth, injected, pull)
    spec = res.spectrum
    truth = np.array([binned_depth(strip96, [a, b])[0] for a, b in zip(spec.wave_lo, spec.wave_hi)])
    pulls = (np.asarray(spec.depth) - truth) / np.asarray(spec.err)
    # 8 unit-normal pulls: |mean| < 1.1 (3 sigma of a mean of 8) and a spread within
    # 0.4-1.7 (~1 % tails of the sample std of 8)
    assert abs(pulls.mean()) < 1.1 and 0.4 <= np.std(pulls, ddof=1) <= 1.7, pulls


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
