"""Exact resume: a run killed at any commit point, then rerun, gives the same bytes.

The runner commits each stage in three moves (stage files, manifest, renames; see
tsocontainer/pipeline/manifest.py). These tests SIGKILL a run just before one of its
``os.replace`` calls -- inside a product's own atomic write, after a manifest write and
before the renames, between two renames -- rerun it, and compare every product with an
uninterrupted run byte for byte (``SOURCE_DATE_EPOCH`` fixes the timestamps the files
carry; the sampler seed is fixed). A full run makes 18 ``os.replace`` calls (state.fits is
written once, by the spectra stage, which commits the state stage with it); ten kill
points cover every stage boundary and a write inside each kind of product.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tsocontainer.sim.simulate import simulate_visit
from tsocontainer.sim.truth import priors_from_truth

PRODUCTS = ("state.fits", "spectra_x1dints.fits", "lightcurves.ecsv", "fit_white.json",
            "fit_channels.ecsv", "transmission_spectrum.ecsv", "recipe.yaml")
FAST = {"nwalkers": 16, "nsteps": 200, "seed": 3}
RECIPE = {"name": "resume", "steps": [
    {"flag_dq": {}}, {"flag_time_outliers": {}}, {"correct_one_over_f": {"method": "masked-median"}},
    {"fit_all_traces": {}}, {"extract": {"method": "box"}}, {"to_lightcurves": {"bins": 3}},
    {"fit_white": {"sampler": FAST}}, {"fit_channels": {"sampler": FAST}}]}

#: run the recipe; with KILL_AT=k, SIGKILL the process just before its k-th os.replace
_SCRIPT = r"""
import json, os, signal, sys, warnings
kill_at = int(os.environ.get("KILL_AT", "0"))
if kill_at:
    real, count = os.replace, [0]
    def replace(a, b, *args, **kw):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(a, b, *args, **kw)
    os.replace = replace
from tsocontainer.pipeline.runner import run_recipe
files, out, recipe, priors = json.loads(sys.argv[1])
warnings.simplefilter("ignore")
res = run_recipe(files, recipe, out=out, priors=priors, plots=False)
print(json.dumps(res.ran))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    vis = simulate_visit("nirspec-prism", nint=16, nseg=2, seed=11, out=base / "sim")
    return base, [str(f) for f in vis.files], priors_from_truth(vis.truth)


def _run(files, out, recipe, priors, kill_at=0):
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000", KILL_AT=str(kill_at),
               MPLBACKEND="Agg")
    arg = json.dumps([files, str(out), recipe, priors], default=float)
    p = subprocess.run([sys.executable, "-c", _SCRIPT, arg], env=env, capture_output=True,
                       text=True, timeout=300)
    return p


@pytest.fixture(scope="module")
def reference(setup):
    base, files, priors = setup
    p = _run(files, base / "ref", RECIPE, priors)
    assert p.returncode == 0, p.stderr
    return {name: (base / "ref" / name).read_bytes() for name in PRODUCTS}


def _leftovers(run: Path) -> list:
    return [p.name for p in run.rglob(".*") if ".tmp-" in p.name or p.name.startswith(".staging-")]


@pytest.mark.slow
def test_kill_at_every_commit_point_then_rerun_gives_identical_products(setup, reference):
    base, files, priors = setup
    points = (2, 4, 6, 7, 8, 10, 12, 15, 17, 18)

    def kill_and_rerun(k):
        run = base / f"kill{k}"
        killed = _run(files, run, RECIPE, priors, kill_at=k)
        rerun = _run(files, run, RECIPE, priors)
        return k, run, killed.returncode, rerun

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(kill_and_rerun, points))
    for k, run, killed_code, rerun in results:
        assert killed_code == -9, f"kill point {k} was not reached"
        assert rerun.returncode == 0, f"kill point {k}: rerun failed: {rerun.stderr[-2000:]}"
        for name in PRODUCTS:
            assert (run / name).read_bytes() == reference[name], f"kill point {k}: {name} differs"
        assert not _leftovers(run), f"kill point {k}: temporary files left: {_leftovers(run)}"


def test_rerun_repairs_a_damaged_product_and_reruns_only_what_depends_on_it(setup, reference):
    base, files, priors = setup
    run = base / "damaged"
    assert _run(files, run, RECIPE, priors).returncode == 0
    (run / "lightcurves.ecsv").write_bytes(b"")          # a crash's zero-byte file
    p = _run(files, run, RECIPE, priors)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.splitlines()[-1]) == ["lightcurves", "fit_white", "fit_channels"]
    for name in PRODUCTS:
        assert (run / name).read_bytes() == reference[name], name


def test_a_changed_recipe_reruns_exactly_the_stages_it_affects(setup):
    base, files, priors = setup
    run = base / "changed"
    assert _run(files, run, RECIPE, priors).returncode == 0
    again = _run(files, run, RECIPE, priors)
    assert json.loads(again.stdout.splitlines()[-1]) == []
    changed = json.loads(json.dumps(RECIPE))
    changed["steps"][5] = {"to_lightcurves": {"bins": 4}}
    p = _run(files, run, changed, priors)
    assert json.loads(p.stdout.splitlines()[-1]) == ["lightcurves", "fit_white", "fit_channels"]
    other = dict(priors, rp_rs={"uniform": [0.0, 0.5]})
    p = _run(files, run, changed, other)
    assert json.loads(p.stdout.splitlines()[-1]) == ["fit_white", "fit_channels"]
