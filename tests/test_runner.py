"""run_recipe: every product written, resumable after an interruption."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tsocontainer.pipeline.recipe import RecipeError
from tsocontainer.pipeline.runner import STAGES, run_recipe
from tsocontainer.sim.truth import priors_from_truth
from tsocontainer.sim.simulate import simulate_visit

FAST = {"nwalkers": 16, "nsteps": 300, "seed": 1}

RECIPE = {"name": "test", "steps": [
    {"flag_dq": {}}, {"flag_time_outliers": {}}, {"correct_one_over_f": {"method": "masked-median"}},
    {"fit_all_traces": {}}, {"extract": {"method": "box"}}, {"to_lightcurves": {"bins": 4}},
    {"fit_white": {"sampler": FAST}}, {"fit_channels": {"sampler": FAST}}]}


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    return simulate_visit("nirspec-prism", nint=60, nseg=2, seed=5, out=out)


def _steps(run: Path) -> list[str]:
    return [line.split(":", 1)[0][5:] + ":" + line.split(":", 1)[1].split("(")[0].strip()
            for line in (run / "run.log").read_text().splitlines() if line.startswith("STEP ")]


def test_run_writes_every_product_and_resumes(visit, tmp_path):
    import warnings

    from tsocontainer.lightcurves.fit import ConvergenceWarning

    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # short chains on purpose
        res = run_recipe(visit.files, RECIPE, out=run, priors=priors_from_truth(visit.truth))
    rate_stages = [s for s in STAGES if s != "ramps"]   # rateints in: no stage 1
    for stage in rate_stages:
        for f in STAGES[stage]:
            assert (run / f).is_file(), f
    assert not (run / "rates.fits").exists()
    assert (run / "report.html").is_file() and (run / "recipe.yaml").is_file()
    plots = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert "09_white_light.png" in plots and "14_transmission_spectrum.png" in plots
    assert res.ran == rate_stages
    from astropy.table import Table

    t = Table.read(run / "transmission_spectrum.ecsv")
    assert len(t) == 4
    for col in ("wave_lo", "wave_hi", "depth_ppm", "err_ppm"):  # the columns issue 7 names
        assert col in t.colnames
    assert "11_rms_vs_bin.png" in plots and "12_sensitivity.png" in plots
    # a second run redoes nothing
    res2 = run_recipe(visit.files, RECIPE, out=run, priors=priors_from_truth(visit.truth), plots=False)
    assert res2.ran == [] and res2.skipped == rate_stages
    assert _steps(run).count("state:done") == 1


def test_plots_leave_the_users_backend_and_figures(visit, tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    from tsocontainer.group import read_segments
    from tsocontainer.pipeline.runner import RunResult
    from tsocontainer.pipeline.runplots import write_plots

    backend = matplotlib.get_backend()
    mine = plt.figure()
    n = write_plots(RunResult(out=tmp_path, group=read_segments(visit.files)), tmp_path / "plots")
    assert n == 1 and matplotlib.get_backend() == backend
    assert plt.fignum_exists(mine.number)
    plt.close(mine)


def test_fits_need_priors(visit, tmp_path):
    with pytest.raises(RecipeError, match="fit_white needs priors"):
        run_recipe(visit.files, RECIPE, out=tmp_path / "r")
    assert not (tmp_path / "r" / "state.fits").exists()


def test_bad_recipe_fails_before_reading(tmp_path):
    bad = {"steps": [{"flag_dq": {}}, {"extract": {"methd": "box"}}]}
    with pytest.raises(RecipeError, match="'extract' has no keyword 'methd'"):
        run_recipe(["/nonexistent/file-seg001_nis_rateints.fits"], bad, out=tmp_path / "r")


def test_stages_out_of_order(visit, tmp_path):
    bad = {"steps": [{"extract": {}}, {"flag_dq": {}}]}
    with pytest.raises(RecipeError, match="comes after a spectra step"):
        run_recipe(visit.files, bad, out=tmp_path / "r")


_KILL_SCRIPT = """
import sys, warnings, json
from tsocontainer.pipeline.runner import run_recipe
from tsocontainer.sim.truth import priors_from_truth, load_truth
recipe = json.loads(sys.argv[3])
warnings.simplefilter("ignore")
run_recipe(json.loads(sys.argv[1]), recipe, out=sys.argv[2],
           priors=priors_from_truth(load_truth(sys.argv[4])), plots=False)
"""


def test_killed_during_channel_fits_resumes(visit, tmp_path):
    import json

    run = tmp_path / "run"
    slow = dict(FAST, nsteps=50000)  # long enough to be killed mid-way
    recipe = json.loads(json.dumps(RECIPE))
    recipe["steps"][-1] = {"fit_channels": {"sampler": slow}}
    args = [sys.executable, "-c", _KILL_SCRIPT, json.dumps([str(f) for f in visit.files]),
            str(run), json.dumps(recipe), str(visit.folder)]
    proc = subprocess.Popen(args, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if (run / "run.log").is_file() and "STEP fit_channels: started" in (run / "run.log").read_text():
            break
        assert proc.poll() is None, "run ended before the channel fits"
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "transmission_spectrum.ecsv").exists()
    before = _steps(run)
    assert before.count("state:done") == 1 and "fit_channels:done" not in before
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_recipe(visit.files, RECIPE, out=run, priors=priors_from_truth(visit.truth),
                         plots=False)
    after = _steps(run)
    assert after.count("state:done") == 1 and after.count("spectra:done") == 1
    assert after.count("fit_white:done") == 1 and after.count("fit_channels:done") == 1
    assert res.ran == ["fit_channels"]
    assert (run / "transmission_spectrum.ecsv").is_file()


@pytest.mark.parametrize("nint", [1, 3])
def test_shipped_recipe_reduces_a_short_visit(nint, tmp_path, caplog):
    """Visits of a few integrations reduce to light curves; steps that need more skip, saying why."""
    from tsocontainer.pipeline.recipe import default_recipe

    vis = simulate_visit("miri-lrs", nint=nint, nseg=1, seed=3, out=tmp_path / "sim")
    steps = [{k: kw} for k, kw in default_recipe("miri").steps
             if k not in ("fit_white", "fit_channels")]
    with caplog.at_level("WARNING", logger="tsocontainer"):
        res = run_recipe(vis.files, {"steps": steps}, out=tmp_path / "run", plots=False)
    assert res.lightcurves.nint == nint and res.lightcurves.nchan == 20
    assert "detect_tilt_events skipped" in caplog.text
    if nint == 1:
        assert "flag_time_outliers skipped" in caplog.text


def test_run_from_uncal_ramps_adds_the_stage1_stage(tmp_path):
    """``*_uncal.fits`` in: the default stage-1 steps turn ramps into rates (rates.fits),
    then the recipe goes on as from rateints; a rerun skips every stage."""
    from tsocontainer.group.container import TSOGroup
    from tsocontainer.pipeline.recipe import default_recipe
    from tsocontainer.sim.ramps import simulate_ramps

    vis = simulate_ramps("miri-lrs", nint=8, out=tmp_path / "sim", ngroups=5, seed=2)
    steps = [{k: kw} for k, kw in default_recipe("miri-lrs").steps
             if k not in ("fit_white", "fit_channels")]
    res = run_recipe(vis.files, {"steps": steps}, out=tmp_path / "run", plots=False)
    assert res.ran[:2] == ["ramps", "state"] and (tmp_path / "run" / "rates.fits").is_file()
    g = TSOGroup.read(tmp_path / "run" / "state.fits")
    assert g.steps[0] == "ramps:read_uncal" and "fit_ramps" in g.steps and g.meta["BUNIT"] == "DN/s"
    assert res.lightcurves.nint == 8
    again = run_recipe(vis.files, {"steps": steps}, out=tmp_path / "run", plots=False)
    assert again.ran == [] and again.skipped[:2] == ["ramps", "state"]


def test_verdict_line_and_strict_exit_code(monkeypatch, tmp_path, capsys):
    """The run's last line carries the fit verdicts; --strict turns a suspect fit into exit 3."""
    from types import SimpleNamespace

    import numpy as np

    from tsocontainer.pipeline import cli
    from tsocontainer.pipeline.runner import RunResult, verdict_line

    white = SimpleNamespace(verdict="SUSPECT: reduced chi2 3.1 > 2.25", suspect=True)
    chans = SimpleNamespace(verdict="ok", suspect=np.zeros(4, bool))
    res = RunResult(out=tmp_path, white=white, channels=chans)
    assert verdict_line(res) == ("fits: white SUSPECT: reduced chi2 3.1 > 2.25; channels ok", True)
    assert verdict_line(RunResult(out=tmp_path)) == ("", False)
    monkeypatch.setattr("tsocontainer.pipeline.runner.run_recipe", lambda *a, **k: res)
    assert cli.main(["run", "x_rateints.fits", "--out", str(tmp_path)]) == 0
    assert cli.main(["run", "x_rateints.fits", "--out", str(tmp_path), "--strict"]) == 3
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("fits: white SUSPECT")
