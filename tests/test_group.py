"""TSOGroup container: flags, mask, caching, slicing, state round trip."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from jwstfiles import make_visit
from tsocontainer import TSOGroup, read_segments
from tsocontainer.errors import TSOReadError


@pytest.fixture
def group(tmp_path):
    paths, _ = make_visit(tmp_path, mode="soss", nint=12, nseg=3, seed=7)
    return read_segments(paths)


def _assert_same(a: TSOGroup, b: TSOGroup):
    for name in ("sci", "var", "dq", "flags", "mask", "int_numbers", "median_frame"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    assert np.array_equal(a.time.jd1, b.time.jd1) and np.array_equal(a.time.jd2, b.time.jd2)
    assert a.meta == b.meta and a.history == b.history and a.files == b.files
    assert a.mode == b.mode and a.dqs == b.dqs
    assert set(a.aux) == set(b.aux)
    for k in a.aux:
        assert np.array_equal(a.aux[k], b.aux[k])
    if a.wave is None:
        assert b.wave is None
    else:
        assert np.array_equal(a.wave, b.wave, equal_nan=True)


def test_flag_unflag_reflag_restores_mask(group):
    sci_before = group.sci.copy()
    mask0 = group.mask.copy()
    group.flag_dq(["JUMP_DET"])
    flagged = group.flagged("dq")
    assert np.array_equal(flagged, (group.dq & 4) != 0) and flagged.sum() >= 1
    assert not np.array_equal(group.mask, mask0)
    mask1 = group.mask.copy()
    group.unflag("dq")
    assert np.array_equal(group.mask, mask0)
    group.flag_dq(["JUMP_DET"])
    assert np.array_equal(group.mask, mask1)
    assert np.array_equal(group.sci, sci_before)  # flags never touch data
    assert group.steps[-3:] == ["flag:dq", "unflag", "flag:dq"]


def test_reflag_clears_own_bit_first(group):
    a = np.zeros(group.shape, bool)
    a[0, 1, 1] = True
    b = np.zeros(group.shape, bool)
    b[1, 2, 2] = True
    group.set_flag("percentile", a).set_flag("percentile", b)
    assert np.array_equal(group.flagged("percentile"), b)
    assert group.flags[1, 2, 2] == 1 << 2 and group.flags[0, 1, 1] == 0


def test_flags_bits_are_independent(group):
    a = np.zeros(group.shape, bool)
    a[0, 3, 3] = True
    group.set_flag("hot_cold", a).set_flag("time_outliers", a)
    group.unflag("hot_cold")
    assert group.flagged("time_outliers")[0, 3, 3] and not group.mask[0, 3, 3]


def test_unknown_flag_name(group):
    with pytest.raises(ValueError, match="'nope' is not a choice; allowed: dq, hot_cold"):
        group.unflag("nope")


def test_median_frame_matches_masked_median(group):
    a = np.zeros(group.shape, bool)
    a[:5, 4, 4] = True
    group.set_flag("user", a)
    m = group.mask
    expect = np.ma.median(np.ma.masked_array(group.sci, ~m), axis=0).filled(np.nan)
    assert np.allclose(group.median_frame, expect, equal_nan=True, rtol=0, atol=1e-4)
    first = group.median_frame
    assert group.median_frame is first  # cached
    group.unflag("user")
    assert group.median_frame is not first  # invalidated


def test_slicing_returns_new_group(group):
    sub = group[2:9]
    assert sub.N == 7 and list(sub.int_numbers) == list(range(3, 10))
    assert np.array_equal(sub.sci, group.sci[2:9]) and np.array_equal(sub.dq, group.dq[2:9])
    sub.sci[:] = -1
    assert not np.any(group.sci == -1)
    assert sub.steps[-1] == "select" and group.steps[-1] != "select"
    picked = group[np.array([0, 5, 11])]
    assert np.array_equal(picked.dq, group.dq[[0, 5, 11]])
    assert group[3].N == 1


def test_write_read_bit_exact_after_flag_and_slice(group, tmp_path):
    rng = np.random.default_rng(3)
    group.set_flag("time_outliers", rng.random(group.shape) < 0.01)
    group.flag_dq(["JUMP_DET", "DO_NOT_USE"])
    group.set_aux("trace_order1", rng.normal(size=(group.N, group.sh[1])), per_integration=True)
    group.set_aux("sky_model", rng.normal(size=group.sh))
    group.meta["ONEFCORR"] = "scale-achromatic"
    sub = group[1:10]
    path = sub.write(tmp_path / "state.fits")
    back = TSOGroup.read(path)
    _assert_same(sub, back)
    assert back.aux["trace_order1"].shape == (9, group.sh[1])
    assert back.aux["sky_model"].shape == group.sh and back.aux_per_int == {"trace_order1"}


def test_write_is_safe(group, tmp_path):
    with pytest.raises(ValueError, match="refusing to overwrite an input file"):
        group.write(group.files[0], overwrite=True)
    p = group.write(tmp_path / "s.fits")
    with pytest.raises(FileExistsError):
        group.write(p)
    group.write(p, overwrite=True)
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind


def test_read_rejects_non_state_file(group, tmp_path):
    with pytest.raises(TSOReadError, match="not a tsocontainer state file"):
        TSOGroup.read(group.files[0])


def test_constructor_rejects_unknown_and_bad_shapes():
    sci = np.ones((2, 3, 4))
    with pytest.raises(TypeError, match="unexpected keyword argument 'wavelength'"):
        TSOGroup(sci, sci, wavelength=1)
    with pytest.raises(ValueError, match="var shape"):
        TSOGroup(sci, np.ones((2, 3, 5)))
    with pytest.raises(ValueError, match="must be 3D"):
        TSOGroup(np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="time has 3 values for 2"):
        TSOGroup(sci, sci, time=[1.0, 2.0, 3.0])


def test_repr_and_copy(group):
    group.flag_dq()
    text = repr(group)
    assert "NIRISS SOSS" in text and "N=12" in text and "flag:dq" in text
    c = group.copy()
    c.unflag("dq")
    assert group.flagged("dq").any() and not c.flagged("dq").any()


def test_plot_frame_returns_axes(group):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert group.plot_frame(ax=ax) is ax
    assert ax.get_xlabel() == "x (column)" and "median frame" in ax.get_title()
    ax2 = group.plot_frame(integration=3)
    assert "integration 3" in ax2.get_title()


def test_import_loads_no_plotting_backend():
    code = ("import sys, tsocontainer; from tsocontainer import TSOGroup, read_segments; "
            "print(any(m.startswith('matplotlib') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
