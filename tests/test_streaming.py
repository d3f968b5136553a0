"""Streaming mode (``read_segments(..., memmap=...)``, ``tsocontainer run --memmap``) and the
in-memory default's spill (``var``, mask and flag cubes mapped, ``sci`` in memory): the
same products as all in memory, mapped pages released, nothing left on disk; and the
block-wise pieces they rely on (flag planes, mask, median frame, state writes)."""
from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from tsocontainer import TSOGroup
from tsocontainer._disk import (Scratch, disk_scratch, is_mapped, on_ram_disk, read_across,
                                release, write_across)
from tsocontainer.flags import FlagStore
from tsocontainer.group import read_segments
from tsocontainer.pipeline.cli import main
from tsocontainer.pipeline.recipe import load_recipe
from tsocontainer.sim.simulate import simulate_visit
from tsocontainer.spectra.container import Spectra


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    base = tmp_path_factory.mktemp("stream")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vis = simulate_visit("soss", 40, nseg=2, seed=7, out=base / "sim", columns=(500, 900))
    steps = [{n: k} for n, k in load_recipe("soss").steps if not n.startswith("fit_")]
    import yaml

    (base / "recipe.yaml").write_text(yaml.safe_dump({"name": "s", "mode": "soss",
                                                      "steps": steps}))
    return base, [str(f) for f in vis.files]


def _rss_file() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    pytest.skip("no RssFile in /proc/self/status")


def test_streaming_run_gives_the_in_memory_products_and_leaves_nothing(visit, tmp_path):
    base, files = visit
    recipe = str(base / "recipe.yaml")
    common = ["-q", "run", *files, "--recipe", recipe, "--no-plots"]
    assert main(common + ["--out", str(tmp_path / "mem"), "--no-spill"]) == 0
    scratch = tmp_path / "scratch"
    assert main(common + ["--out", str(tmp_path / "mm"), "--memmap", str(scratch)]) == 0
    gc.collect()
    _same_products(tmp_path / "mem", tmp_path / "mm")
    assert scratch.is_dir() and not any(scratch.iterdir())   # the scratch files are gone


def test_default_run_spills_to_disk_with_the_all_in_memory_products(visit, tmp_path):
    base, files = visit
    assert main(["-q", "run", *files, "--recipe", str(base / "recipe.yaml"), "--no-plots",
                 "--out", str(tmp_path / "spill")]) == 0
    ref = tmp_path / "mem"
    assert main(["-q", "run", *files, "--recipe", str(base / "recipe.yaml"), "--no-plots",
                 "--out", str(ref), "--no-spill"]) == 0
    _same_products(ref, tmp_path / "spill")


def _same_products(run_a, run_b) -> None:
    """Every flag plane, aux array (traces, shifts, corrections), spectrum and light curve
    of two runs exactly equal (the same arithmetic on the same blocks; only the storage
    differs)."""
    a = TSOGroup.read(run_a / "state.fits")
    b = TSOGroup.read(run_b / "state.fits")
    assert sorted(a._flags.planes) == sorted(b._flags.planes)
    for k in a._flags.planes:
        assert np.array_equal(a._flags.planes[k], b._flags.planes[k]), k
    assert sorted(a.aux) == sorted(b.aux)
    for k in a.aux:
        assert np.array_equal(np.asarray(a.aux.raw(k)), np.asarray(b.aux.raw(k)), equal_nan=True), k
    assert np.array_equal(a.sci, b.sci) and np.array_equal(a.var, b.var)
    sa = Spectra.read(run_a / "spectra_x1dints.fits")
    sb = Spectra.read(run_b / "spectra_x1dints.fits")
    for o in sa.flux:
        assert np.array_equal(sa.flux[o], sb.flux[o], equal_nan=True)
        assert np.array_equal(sa.var[o], sb.var[o], equal_nan=True)
    ta = Table.read(run_a / "lightcurves.ecsv")
    tb = Table.read(run_b / "lightcurves.ecsv")
    for c in ta.colnames:
        assert np.array_equal(np.asarray(ta[c]), np.asarray(tb[c]), equal_nan=True), c


def test_default_group_keeps_sci_in_memory_and_the_rest_mapped(visit, tmp_path):
    _, files = visit
    g = read_segments(files, progress=False, spill=tmp_path)
    m = read_segments(files, progress=False, spill=False)
    assert not is_mapped(g.sci) and is_mapped(g.var) and not g.streaming
    assert not is_mapped(m.var) and not is_mapped(m.sci)
    assert np.array_equal(g.var, m.var) and np.array_equal(g.sci, m.sci)
    g.flag_dq().flag_time_outliers()
    m.flag_dq().flag_time_outliers()
    assert is_mapped(g.mask) and is_mapped(g._flags.planes["time_outliers"])
    assert not is_mapped(m.mask)
    assert np.array_equal(g.mask, m.mask)
    np.asarray(g.var).sum()            # every page of var mapped
    before = _rss_file()
    release()
    assert _rss_file() < before - 0.5 * g.var.nbytes   # dropped; a notebook can still edit var
    g.var[0, 0, 0] = 123.0
    release()
    assert g.var[0, 0, 0] == 123.0 and m.var[0, 0, 0] != 123.0
    assert not any(tmp_path.iterdir())   # unlinked once mapped, no folder (a kill leaves nothing)


def test_no_spill_on_a_ram_disk_or_when_asked_not_to(tmp_path):
    assert disk_scratch(False) is None and disk_scratch(None) is None
    assert not on_ram_disk(tmp_path) or disk_scratch(tmp_path) is None
    if not on_ram_disk("/dev/shm"):
        pytest.skip("/dev/shm is not a RAM file system here")
    assert disk_scratch("/dev/shm") is None


def test_streaming_group_is_memory_mapped_and_releases_its_pages(visit, tmp_path):
    _, files = visit
    g = read_segments(files, progress=False, memmap=tmp_path)
    m = read_segments(files, progress=False, spill=False)
    assert g.streaming and not m.streaming and is_mapped(g.sci) and is_mapped(g.var)
    g.flag_dq().flag_time_outliers()
    m.flag_dq().flag_time_outliers()
    assert is_mapped(g.mask) and is_mapped(g._flags.planes["time_outliers"])
    assert np.array_equal(g.mask, m.mask)
    assert np.array_equal(g.median_frame, m.median_frame, equal_nan=True)
    np.asarray(g.sci).sum()            # every page of sci mapped
    before = _rss_file()
    release()
    assert _rss_file() < before - 0.5 * g.sci.nbytes   # dropped, and the data are intact:
    assert np.array_equal(g.sci, m.sci)
    g.write(tmp_path / "g.fits")        # mapped cubes are streamed into the state file
    m.write(tmp_path / "m.fits")
    with fits.open(tmp_path / "g.fits") as fg, fits.open(tmp_path / "m.fits") as fm:
        names = [h.name for h in fm if h.name.startswith(("SCI", "VAR", "FLAG_", "DQ"))]
        assert {"SCI", "VAR", "FLAG_TIME_OUTLIERS"} <= set(names)
        assert sorted(names) == sorted(h.name for h in fg if h.name in names)
        for name in names:
            assert np.array_equal(fg[name].data, fm[name].data), name


def test_flag_planes_by_blocks_equal_whole_cube_packing():
    rng = np.random.default_rng(1)
    for shape in [(37, 5, 7), (20, 4, 8), (100, 3, 3)]:
        c, d = rng.random(shape) < 0.1, rng.random(shape) < 0.05
        f = FlagStore(shape)
        f._blocks = lambda i0=0, i1=None, n=shape[0]: [(a, min(n, a + 8)) for a in range(0, n, 8)]
        assert f.set("dq", c) == c.sum() and f.set("user", d) == d.sum()
        assert np.array_equal(f.planes["dq"], np.packbits(c.reshape(-1)))
        assert np.array_equal(f.get("dq"), c) and np.array_equal(f.get("dq", 3, 17), c[3:17])
        assert np.array_equal(f.any_of(None, 5, 19), (c | d)[5:19])
        assert np.array_equal(f.any_of(), c | d)


def test_median_frame_equals_nanmedian_of_the_good_pixels():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 40):
        sci = rng.normal(10, 1, (n, 16, 33)).astype(np.float32)
        g = TSOGroup(sci, np.ones_like(sci))
        bad = rng.random(sci.shape) < 0.3
        bad[:, 3, 4] = True             # never good: NaN
        g.set_flag("user", bad)
        x = np.where(g.mask, sci, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = np.nanmedian(x, axis=0)
        assert np.array_equal(g._masked_median_frame(rows_per_block=3), ref, equal_nan=True)


def test_read_and_write_across_integrations_of_a_mapped_cube(tmp_path):
    s = Scratch(tmp_path)
    a = s.zeros((70, 6, 5), np.float32, "x")
    vals = np.arange(70 * 2 * 5, dtype=np.float32).reshape(70, 2, 5)
    write_across(a, np.s_[:, 2:4], vals, chunk=16)
    assert np.array_equal(read_across(a, np.s_[:, 2:4], chunk=16), vals)
    assert not a[:, :2].any() and not a[:, 4:].any()
    del a
    gc.collect()
    s.cleanup()
    assert not any(tmp_path.iterdir())


def test_no_spill_without_room_on_the_disk(visit, tmp_path, monkeypatch, caplog):
    _, files = visit
    monkeypatch.setattr(Scratch, "has_room", lambda self, nbytes: False)
    with caplog.at_level("WARNING"):
        g = read_segments(files, progress=False, spill=tmp_path)
    assert not is_mapped(g.var) and g._scratch is None
    assert "stay in memory" in caplog.text
    g.flag_dq()
    assert not is_mapped(g.mask)
    del g
    gc.collect()
    assert not any(tmp_path.iterdir())
