"""run_stage1: uncal files in, a TSOGroup laid out like one read from rateints out."""
from __future__ import annotations

import numpy as np
import pytest

from test_ramps_sims import refs, visit
from tsocontainer import TSOGroup, read_segments
from tsocontainer.flags import SparseDQ
from tsocontainer.ramps import DEFAULT_STAGE1, run_stage1
from tsocontainer.sim import simulate_visit


@pytest.fixture(scope="module")
def miri_rates():
    v = visit("miri")
    r = refs(v)
    steps = [("use_detector", {"gain": r["gain"], "readnoise": r["readnoise"]}),
             ("flag_saturation", {"level": r["saturation"], "dq": r["mask"]}),
             ("subtract_superbias", {"reference": r["superbias"]}),
             ("correct_reference_pixels", {}), ("correct_linearity", {"reference": r["linearity"]}),
             ("detect_jumps", {})]
    return v, run_stage1(v.files, steps, keep_variances=True)


def test_layout_is_that_of_rateints(miri_rates, tmp_path):
    v, g = miri_rates
    rate_visit = simulate_visit("miri-lrs", nint=6, nseg=2, out=tmp_path, seed=8,
                                systematics=False, ngroups=5)
    ref = read_segments(rate_visit.files)
    assert isinstance(g, TSOGroup) and isinstance(g.dqs, SparseDQ)
    assert g.sci.shape == ref.sci.shape and g.var.shape == ref.var.shape
    assert g.sci.dtype == ref.sci.dtype == np.float32 and g.sci.flags["C_CONTIGUOUS"]
    assert g.var.dtype == np.float32
    assert g.time.scale == ref.time.scale == "tdb"
    assert np.allclose(g.time.jd, ref.time.jd, rtol=0, atol=1e-8)   # same INT_TIMES
    assert g.int_numbers.tolist() == ref.int_numbers.tolist()
    assert g.mode == ref.mode and g.geometry.key == ref.geometry.key == "miri"
    for key in ("INSTRUME", "DETECTOR", "SUBARRAY", "MODE", "NSEGMENT", "TIMESRC", "BUNIT",
                "TGROUP", "NGROUPS", "SUBSTRT1", "SUBSTRT2"):
        assert g.meta[key] == ref.meta[key], key
    assert g.meta["BUNIT"] == "DN/s" and g.meta["STAGE1"] == "tsocontainer.ramps"
    # reference columns: DO_NOT_USE like in the pipeline's rateints
    assert g.dqs.any(1)[:, :, :4].all() and not g.mask[:, :, :4].any()
    assert set(g.aux) == {"var_poisson", "var_rnoise"}
    assert np.allclose(g.aux["var_poisson"] + g.aux["var_rnoise"], g.var)
    # saved and restored like any group
    back = TSOGroup.read(g.write(tmp_path / "state.fits"))
    assert back.steps == g.steps
    assert np.array_equal(back.sci, g.sci, equal_nan=True)


def test_history_lists_every_stage1_step(miri_rates):
    _, g = miri_rates
    assert g.steps == ["ramps:read_uncal", "ramps:use_detector", "ramps:flag_saturation",
                       "ramps:subtract_superbias", "ramps:correct_reference_pixels",
                       "ramps:correct_linearity", "ramps:detect_jumps",
                       "ramps:check_readnoise", "fit_ramps"]
    # the simulator's read-noise reference is what the ramps show: kept
    assert g.history[-2]["summary"]["action"] == "kept"
    assert g.history[-1]["summary"]["algorithm"] == "OLS_C"


def test_rates_agree_with_the_truth_with_linearity(miri_rates):
    """MIRI with 5 % non-linearity at 50 000 DN, corrected with the simulated coefficients:
    the summed rate of the bright pixels within 3 sigma of the truth."""
    v, g = miri_rates
    rate = v.truth_arrays()["RATE"]
    ok = g.mask & np.isfinite(g.sci) & (rate > 50)
    diff = np.sum((g.sci - rate)[ok])
    assert abs(diff) < 3 * np.sqrt(np.sum(g.var[ok]))


def test_defaults_run_without_references():
    """No references: gain default (NIRISS 1.61), read noise measured, bias from the data."""
    v = visit("clean")
    g = run_stage1(v.files, DEFAULT_STAGE1[:3] + (("fit_ramps", {}),))
    assert g.meta["GAINSRC"].startswith("default 1.61")
    assert g.meta["RNSRC"].startswith("data")
    rn = float(g.meta["RNSRC"].split(":")[-1])
    assert rn == pytest.approx(v.truth["ramps"]["read_noise_cds_dn"], rel=0.03)
    rate = v.truth_arrays()["RATE"]
    ok = g.mask & (rate > 100)
    # a 0.6 % wrong gain changes the variances, not the rates
    assert np.median(g.sci[ok] / rate[ok]) == pytest.approx(1.0, abs=0.002)
