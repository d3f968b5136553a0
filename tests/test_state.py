"""Derived state: a product made before a change of its inputs is never returned old.

The rule (tsocontainer/group/state.py): every product is stamped with the versions of
what it was made from; reading a stale product raises StaleProductError naming the step
to re-run; cached values are recomputed; `rerun_stale` re-runs the steps with the
keywords they were last called with.
"""
from __future__ import annotations

import numpy as np
import pytest

from test_trace import synthetic_visit
from tsocontainer.errors import StaleProductError
from tsocontainer.group.state import DerivedState
from tsocontainer.group.container import TSOGroup


@pytest.fixture
def extracted():
    g, truth = synthetic_visit(n=12, seed=3, bkg=5.0)
    g.correct_one_over_f(method="median").fit_all_traces().measure_shifts()
    g.extract(method="box", width=8.0)
    return g, truth


def test_rerunning_a_correction_after_extract_makes_the_spectra_stale(extracted):
    g, _ = extracted
    old = g.spectra.flux[1].copy()
    g.correct_one_over_f(method="masked-median")   # a different 1/f model
    assert "spectra" in g.stale and "onef" in g.stale["spectra"]
    with pytest.raises(StaleProductError, match="run extract again"):
        g.spectra
    with pytest.raises(StaleProductError, match="extract"):
        g.aux["spec_flux_order1"]
    # the traces were made from the old 1/f model too
    assert "traces" in g.stale
    g.rerun_stale()
    assert not g.stale
    new = g.spectra.flux[1]
    assert new.shape == old.shape and not np.array_equal(new, old)


def test_a_mask_change_makes_traces_and_spectra_stale_not_the_sky(extracted):
    g, _ = extracted
    bad = np.zeros(g.shape, bool)
    bad[:, 20, 100] = True
    g.set_flag("user", bad)
    assert {"traces", "shifts", "spectra"} <= set(g.stale)
    assert "onef" not in g.stale            # a robust fit: the mask is not part of its model
    with pytest.raises(StaleProductError, match="fit_all_traces"):
        g.traces
    with pytest.raises(StaleProductError, match="measure_shifts"):
        g.regressors
    # the mask itself is never stale: it is recomputed from the flags
    assert not g.mask[0, 20, 100] and g.mask[0, 20, 101]
    g.fit_all_traces()
    assert "traces" not in g.stale and "spectra" in g.stale


def test_unflag_restores_freshness_only_by_rerunning(extracted):
    g, _ = extracted
    g.set_flag("user", np.zeros(g.shape, bool))   # an empty flag still changes the mask version
    assert "spectra" in g.stale
    g.rerun_stale()
    assert not g.stale


def test_cached_values_follow_their_inputs():
    g, _ = synthetic_visit(n=8, seed=5)
    m0 = g.median_frame.copy()
    ref0 = g._reference()[0].copy()
    bad = np.zeros(g.shape, bool)
    bad[:, :, 10] = True
    g.set_flag("user", bad)
    assert np.isnan(g.median_frame[:, 10]).all() and not np.isnan(m0[:, 10]).any()
    assert not np.array_equal(np.isnan(g._reference()[0]), np.isnan(ref0))


def test_stamps_survive_write_read_and_slicing(extracted, tmp_path):
    g, _ = extracted
    g.correct_one_over_f(method="masked-median")
    h = TSOGroup.read(g.write(tmp_path / "s.fits"))
    assert set(h.stale) == set(g.stale)
    with pytest.raises(StaleProductError):
        h.spectra
    part = g[2:6]
    assert set(part.stale) == set(g.stale)


def test_derived_state_is_transitive():
    d = DerivedState()
    d.stamp("shifts", ["mask"])
    d.stamp("tilt", ["shifts"])        # tilt never read the mask directly
    d.bump("mask")
    assert d.stale("tilt") == ["mask"]
    d.stamp("shifts", ["mask"])       # re-measured shifts: tilt was made from the old ones
    assert d.stale("tilt") == ["mask", "shifts"]
