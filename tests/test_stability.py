"""Tilt events: step detection in the trace position and the step regressor."""
from __future__ import annotations

import numpy as np
import pytest

from tsocontainer.lightcurves.model import LightCurveModel, ModelSpec
from tsocontainer.spectra.stability import detect_steps


def test_detects_step_at_the_right_integration():
    # a 0.05 px jump on 0.007 px jitter plus a drift of the same size: the
    # jump's significance is ~12 sigma at window 10, the drift's ~0.1 sigma
    rng = np.random.default_rng(0)
    for seed_shift in range(20):
        y = rng.normal(0, 0.007, 200) + np.linspace(0, 0.05, 200)
        y[130:] += 0.05
        assert detect_steps(y) == [130]


def test_no_step_in_noise_and_drift():
    # 6-sigma threshold over ~180 correlated positions: false alarms ~1e-6 per series
    rng = np.random.default_rng(1)
    for _ in range(50):
        assert detect_steps(rng.normal(0, 1, 300) + np.linspace(0, 3, 300)) == []


def test_two_steps_and_bad_input():
    y = np.zeros(120)
    y[40:] += 1.0
    y[90:] -= 2.0
    y += np.random.default_rng(2).normal(0, 0.05, 120)
    assert detect_steps(y) == [40, 90]
    with pytest.raises(ValueError, match="window must be >= 3"):
        detect_steps(y, window=2)
    with pytest.raises(ValueError, match="at least 20 points"):
        detect_steps(y[:10])


def test_group_tilt_regressor(tmp_path):
    from tsocontainer import TSOGroup

    rng = np.random.default_rng(3)
    g = TSOGroup(rng.normal(size=(60, 4, 5)), np.ones((60, 4, 5)))
    with pytest.raises(RuntimeError, match="measure_shifts"):
        g.detect_tilt_events()
    y = rng.normal(0, 0.005, 60)
    y[42:] += 0.05
    g.set_aux("shift_y", y, per_integration=True)
    g.detect_tilt_events()
    assert g.meta["NTILT"] == 1
    assert np.array_equal(g.regressors["tilt"], (np.arange(60) >= 42).astype(float))
    assert g[10:50].regressors["tilt"].sum() == 8  # sliced with the group
    g.set_aux("shift_y", rng.normal(0, 0.005, 60), per_integration=True)
    g.detect_tilt_events()
    assert "tilt" not in g.regressors and g.meta["NTILT"] == 0


def test_optional_regressor_is_skipped_when_absent_or_constant():
    t = 2460000.5 + np.linspace(-0.1, 0.1, 100)
    f = np.ones(100)
    priors = {"t0": 2460000.5, "per": 3.0, "a_rs": 10.0, "inc": 87.0}
    m = LightCurveModel(t, f, np.full(100, 1e-3), priors, ModelSpec(regressors=("tilt?",)), {})
    assert not any(n.startswith("reg_") for n in m._static_names)
    m = LightCurveModel(t, f, np.full(100, 1e-3), priors, ModelSpec(regressors=("tilt?",)),
                        {"tilt": np.zeros(100)})
    assert not any(n.startswith("reg_") for n in m._static_names)
    step = (np.arange(100) >= 60).astype(float)
    m = LightCurveModel(t, f, np.full(100, 1e-3), priors, ModelSpec(regressors=("tilt?",)),
                        {"tilt": step})
    assert "reg_tilt" in m._static_names
    with pytest.raises(ValueError, match="regressor 'tilt' not found"):
        LightCurveModel(t, f, np.full(100, 1e-3), priors, ModelSpec(regressors=("tilt",)), {})
