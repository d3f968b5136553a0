"""Batches of visits (``tsocontainer batch``): a 2-worker LocalCluster gives the same
products as serial runs, a rerun resumes, bad batch files and a bad scheduler address
fail fast with one clear error."""
from __future__ import annotations

import json
import time
import warnings

import pytest
import yaml

from tsocontainer.errors import TSOReadError, TSOValueError
from tsocontainer.pipeline.batch import load_batch, run_batch
from tsocontainer.pipeline.cli import main
from tsocontainer.sim.simulate import simulate_visit

RECIPE = {"name": "batch", "mode": "nirspec", "steps": [
    {"flag_dq": {}}, {"flag_time_outliers": {}}, {"correct_one_over_f": {"method": "masked-median"}},
    {"fit_all_traces": {}}, {"extract": {"method": "box"}}, {"to_lightcurves": {"bins": 3}}]}
PRODUCTS = ("state.fits", "spectra_x1dints.fits", "lightcurves.ecsv")


@pytest.fixture(scope="module")
def visits(tmp_path_factory):
    base = tmp_path_factory.mktemp("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(4):
            simulate_visit("nirspec-prism", nint=12, nseg=1, seed=20 + k, out=base / f"v{k}")
    (base / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    return base


def _batch_file(base, name, out):
    doc = {"out": out, "recipe": "recipe.yaml", "plots": False,
           "visits": [{"name": f"visit{k}", "files": f"v{k}/*_rateints.fits"} for k in range(4)]}
    path = base / name
    path.write_text(yaml.safe_dump(doc))
    return path


def test_local_cluster_batch_equals_serial_runs_and_resumes(visits, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")   # products carry no wall-clock time
    serial = run_batch(_batch_file(visits, "serial.yaml", "serial"), serial=True)
    assert all("error" not in r for r in serial), serial
    dask = run_batch(_batch_file(visits, "dask.yaml", "dask"), n_workers=2)
    assert all("error" not in r for r in dask), dask
    assert [r["ran"] for r in dask] == [["state", "spectra", "lightcurves"]] * 4
    for k in range(4):
        for name in PRODUCTS:
            a = (visits / "serial" / f"visit{k}" / name).read_bytes()
            b = (visits / "dask" / f"visit{k}" / name).read_bytes()
            assert a == b, f"visit{k}/{name} differs between the LocalCluster and the serial run"
    summary = json.loads((visits / "dask" / "batch.json").read_text())
    assert summary["engine"].startswith("dask tcp://") and len(summary["visits"]) == 4
    again = run_batch(visits / "dask.yaml", n_workers=2)   # resumable: nothing to redo
    assert [r["ran"] for r in again] == [[]] * 4
    assert [r["skipped"] for r in again] == [["state", "spectra", "lightcurves"]] * 4


def test_bad_scheduler_address_fails_fast_with_a_clear_error(visits, capsys):
    pytest.importorskip("distributed")
    path = _batch_file(visits, "bad.yaml", "bad")
    t0 = time.perf_counter()
    code = main(["-q", "batch", str(path), "--scheduler", "tcp://127.0.0.1:9"])
    took = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == 2 and took < 5.0, (code, took)
    assert "scheduler tcp://127.0.0.1:9: no dask scheduler answered" in err
    assert not (visits / "bad" / "visit0").exists()   # nothing ran


def test_batch_file_errors_name_the_file_and_the_visit(visits, tmp_path):
    with pytest.raises(TSOReadError, match="no such batch file"):
        load_batch(tmp_path / "none.yaml")
    bad = tmp_path / "b.yaml"
    bad.write_text(yaml.safe_dump({"visits": [{"files": str(visits / "nothing*.fits")}]}))
    with pytest.raises(TSOReadError, match="b.yaml: visit 1"):
        load_batch(bad)
    bad.write_text(yaml.safe_dump({"visits": [{"files": str(visits / "v0/*_rateints.fits")}],
                                   "recipes": "x"}))
    with pytest.raises(TSOValueError, match=r"unknown key\(s\) \['recipes'\]"):
        load_batch(bad)
    bad.write_text(yaml.safe_dump({"visits": [str(visits / "v0/*_rateints.fits")] * 2}))
    with pytest.raises(TSOValueError, match="repeated visit name"):
        load_batch(bad)
    bad.write_text(yaml.safe_dump({"recipe": {"steps": [{"no_such_step": {}}]},
                                   "visits": [str(visits / "v0/*_rateints.fits")]}))
    with pytest.raises(TSOValueError, match="visit 1"):
        load_batch(bad)
