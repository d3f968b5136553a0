"""The vectorised two-point-difference jump detector (tsocontainer.ramps.twopoint)."""
from __future__ import annotations

import numpy as np
import pytest

from tsocontainer.ramps import RampGroup
from tsocontainer.ramps import twopoint
from tsocontainer.ramps.twopoint import twopoint_jumps
from tsocontainer.registry import StepKeywordError

GAIN, CDS = 2.0, 10.0            # e-/DN, CDS read noise (DN)


def _ramps(n, ng, ny, nx, per_group, seed):
    """Ramps of ``per_group`` DN per group: Poisson (gain 2) plus read noise (CDS 10 DN)."""
    rng = np.random.default_rng(seed)
    e = rng.poisson(per_group * GAIN, (n, ng, ny, nx))
    reads = rng.normal(0, CDS / np.sqrt(2), (n, ng, ny, nx))
    return (1000.0 + np.cumsum(e, axis=1) / GAIN + reads).astype(np.float32)


def _sigma(per_group):
    """Noise of one group difference (DN)."""
    return np.sqrt(per_group / GAIN + CDS ** 2)


def _detect(data, gdq=None, **kw):
    gdq = np.zeros(data.shape, np.uint8) if gdq is None else gdq
    kw.setdefault("flag_neighbors", False)
    return twopoint_jumps(data, gdq, GAIN, CDS, **kw)


def test_injected_jumps_are_found_at_their_group_and_nothing_else():
    """60 jumps of 8-20 sigma in 3 x 9-group ramps at random differences, the first and
    the last included: all found, on the group after the jump; the other 24 000 differences
    give at most 6 flags (two-sided 4.1 sigma with the median's noise: ~1 expected)."""
    n, ng, ny, nx, level = 3, 9, 30, 34, 300.0
    data = _ramps(n, ng, ny, nx, level, seed=1)
    rng = np.random.default_rng(2)
    pix = rng.choice(ny * nx, 60, replace=False)
    y, x = np.divmod(pix, nx)
    i = rng.integers(0, n, 60)
    k = rng.integers(1, ng, 60)
    k[:3], k[3:6] = 1, ng - 1                        # first and last differences
    amp = rng.uniform(8, 20, 60) * _sigma(level) * rng.choice([-1, 1], 60)
    for a, b, c, d, e in zip(i, k, y, x, amp):
        data[a, b:, c, d] += e
    gdq, count = _detect(data)
    jump = (gdq & 4) != 0
    assert jump[i, k, y, x].all()
    assert not jump[:, 0].any()
    others = jump.copy()
    others[i, k, y, x] = False
    assert others.sum() <= 6
    assert count == jump.sum()


def test_clean_bright_ramps_give_the_gaussian_false_rate():
    """No jumps, Poisson-dominated ramps (500 DN per group: Poisson 250 DN**2 against
    100 DN**2 of read noise): 6 x 8 x 4096 differences at a two-sided 4 sigma threshold
    times sqrt(1 + pi / 96) for the median: 0.21 expected per 4096... i.e. ~8 in all. A
    detector that left the Poisson term out would flag thousands."""
    data = _ramps(6, 9, 64, 64, 500.0, seed=3)
    gdq, count = _detect(data)
    assert count == int(((gdq & 4) != 0).sum())
    assert count <= 25


def test_two_jumps_in_one_ramp_are_both_found():
    data = _ramps(2, 10, 8, 8, 50.0, seed=4)
    s = _sigma(50.0)
    data[0, 3:, 4, 4] += 12 * s
    data[0, 7:, 4, 4] += 30 * s
    gdq, _ = _detect(data)
    assert np.flatnonzero(gdq[0, :, 4, 4] & 4).tolist() == [3, 7]
    assert not (gdq[1, :, 4, 4] & 4).any()


def test_saturated_and_do_not_use_groups_are_ignored():
    """A pixel saturating from group 5 on (its clipped values would be a huge negative
    'jump') and a do-not-use group with a wild value: no flags."""
    data = _ramps(2, 9, 6, 6, 100.0, seed=5)
    gdq = np.zeros(data.shape, np.uint8)
    data[0, 5:, 2, 2] = 0.0
    gdq[0, 5:, 2, 2] = 2                             # SATURATED
    data[1, 4, 3, 1] += 5000.0
    gdq[1, 4, 3, 1] = 1                              # DO_NOT_USE
    out, _ = _detect(data, gdq)
    assert not (out[:, :, 2, 2] & 4).any()
    assert not (out[:, :, 3, 1] & 4).any()
    assert (out & ~np.uint8(4) == gdq).all()         # the input flags are kept
    assert not (gdq & 4).any()                       # and the input is not changed


def test_neighbours_of_large_jumps_only():
    data = _ramps(2, 8, 9, 9, 20.0, seed=6)
    s = _sigma(20.0)
    data[0, 4:, 4, 4] += 60 * s                      # > 10 sigma: neighbours flagged
    data[1, 3:, 2, 6] += 7 * s                       # < 10 sigma: not
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 4:, 3, 4] = 2                             # a saturated neighbour is left alone
    alone, n_alone = twopoint_jumps(data, gdq, GAIN, CDS, flag_neighbors=False)
    out, n = twopoint_jumps(data, gdq, GAIN, CDS, flag_neighbors=True)
    assert alone[0, 4, 4, 4] & 4 and alone[1, 3, 2, 6] & 4
    extra = ((out & 4) != 0) & ((alone & 4) == 0)
    assert set(map(tuple, np.argwhere(extra).tolist())) == {(0, 4, 5, 4), (0, 4, 4, 3),
                                                            (0, 4, 4, 5)}
    assert n == n_alone                              # neighbours are not counted


def test_result_does_not_depend_on_threads_or_chunks(monkeypatch):
    data = _ramps(3, 7, 40, 16, 80.0, seed=7)
    data[1, 3:, 17, 5] += 500.0
    ref, n_ref = _detect(data, workers=1, flag_neighbors=True)
    monkeypatch.setattr(twopoint, "_CHUNK", 3 * 6 * 16 * 3)      # 3 rows per chunk
    out, n = _detect(data, workers=2, flag_neighbors=True)
    assert n == n_ref and (out == ref).all()
    assert out[1, 3, 17, 5] & 4 and out[1, 3, 16, 5] & 4      # across a chunk edge


def test_few_usable_differences_raise_the_threshold():
    """Ramps with 2 usable differences in the block: a 5 sigma step is below the 6 sigma
    threshold stcal also uses there, a 12 sigma step is flagged."""
    data = _ramps(1, 3, 2, 1, 0.0, seed=8)
    data[0, :, :, 0] = np.array([0.0, 0.0, 0.0])[:, None]
    data[0, 2, 0, 0] += 5 * CDS
    data[0, 2, 1, 0] += 12 * CDS
    out, _ = _detect(data)
    assert not (out[0, :, 0, 0] & 4).any() and out[0, 2, 1, 0] & 4


def test_agrees_with_stcal_on_the_same_ramps():
    """Same ramps (4 x 9 groups x 48 x 48, 10-300 DN per group) with 80 jumps of 6-60
    sigma: both detectors find every jump; their flags agree (Jaccard >= 0.9; they differ
    only near threshold: stcal compares |d| with the median |d|, and its median has no
    noise allowance)."""
    pytest.importorskip("stcal")
    from tsocontainer.ramps.jumps import stcal_jumps

    n, ng, ny, nx = 4, 9, 48, 48
    rng = np.random.default_rng(9)
    level = rng.uniform(10, 300, (ny, nx))
    e = rng.poisson(level * GAIN, (n, ng, ny, nx))
    data = 1000.0 + np.cumsum(e, axis=1) / GAIN + rng.normal(0, CDS / np.sqrt(2), e.shape)
    pix = rng.choice(ny * nx, 80, replace=False)
    y, x = np.divmod(pix, nx)
    i, k = rng.integers(0, n, 80), rng.integers(1, ng, 80)
    for a, b, c, d in zip(i, k, y, x):
        data[a, b:, c, d] += rng.uniform(6, 60) * _sigma(level[c, d])
    data = data.astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    ours, _ = twopoint_jumps(data, gdq, GAIN, CDS)
    theirs, _, _ = stcal_jumps(data, gdq, np.zeros((ny, nx), np.uint32),
                               np.full((ny, nx), GAIN, np.float32),
                               np.full((ny, nx), CDS, np.float32))
    a, b = (ours & 4) != 0, (theirs & 4) != 0
    assert a[i, k, y, x].all() and b[i, k, y, x].all()
    assert (a & b).sum() / (a | b).sum() >= 0.9


def test_the_step_takes_both_methods_and_rejects_others():
    rng = np.random.default_rng(10)
    data = (np.cumsum(rng.normal(20, 5, (4, 6, 8, 8)), axis=1) + 1000).astype(np.float32)
    data[2, 3:, 4, 4] += 400.0
    flags = {}
    for method in ("twopoint", "stcal"):
        g = RampGroup.from_arrays(data.copy(), 5.0, meta={"INSTRUME": "NIRISS", "DETECTOR": "NIS"})
        g.use_detector(gain=GAIN, readnoise=CDS).detect_jumps(method=method, time_threshold=None)
        r = g.fit_ramps()
        flags[method] = r.dqs.any(4)
        step = [h for h in g.history if h["step"] == "detect_jumps"][-1]
        assert step["params"]["method"] == method
    assert flags["twopoint"][2, 4, 4] and flags["stcal"][2, 4, 4]
    g = RampGroup.from_arrays(data, 5.0, meta={"INSTRUME": "NIRISS", "DETECTOR": "NIS"})
    with pytest.raises(StepKeywordError):
        g.detect_jumps(method="sigma-clip")


def test_a_large_jump_does_not_hide_a_smaller_one_in_a_short_ramp():
    """One 5-group ramp, no signal: differences 0, 0, +50 and +8 sigma. The first median
    (of 0, 0, 8, 50 sigma) is 4 sigma, so the 8 sigma jump departs by only ~3.6 of the
    inflated noise; with the 50 sigma jump left out, the median is 0 and it is found."""
    data = np.zeros((1, 5, 1, 1), np.float32)
    data[0, 3:, 0, 0] += 50 * CDS
    data[0, 4:, 0, 0] += 8 * CDS
    out, n = _detect(data)
    assert np.flatnonzero(out[0, :, 0, 0] & 4).tolist() == [3, 4] and n == 2
