"""Recipes are validated as a whole before anything runs."""
from __future__ import annotations

import numpy as np
import pytest

from tsocontainer.pipeline.recipe import (CRDSUnavailableError, Recipe, RecipeError, check_crds,
                                 load_recipe, run_jwst_step)


def test_valid_recipe_roundtrips_yaml():
    r = load_recipe({"name": "t", "steps": [{"flag_dq": {"bits": ["DO_NOT_USE"]}},
                                            {"unflag": {"name": "dq"}}]})
    again = load_recipe(r.to_yaml())
    assert again.steps == r.steps and again.name == "t"


def test_misspelt_step_is_named_with_suggestion():
    with pytest.raises(RecipeError, match=r"step 2 'flag_dqq' is not a known step \(did you mean "
                                          r"'flag_dq'\?\); allowed: .*flag_dq"):
        load_recipe({"steps": [{"flag_dq": {}}, {"flag_dqq": {}}]})


def test_misspelt_keyword_is_named():
    with pytest.raises(RecipeError, match=r"step 1 'flag_dq' has no keyword 'bitz' \(did you mean "
                                          r"'bits'\?\); allowed: bits"):
        load_recipe({"steps": [{"flag_dq": {"bitz": 1}}]})


def test_malformed_recipes(tmp_path):
    with pytest.raises(RecipeError, match="mapping with a 'steps' list"):
        load_recipe({"stepz": []})
    with pytest.raises(RecipeError, match="unknown top-level key"):
        load_recipe({"steps": [], "modes": "soss"})
    with pytest.raises(RecipeError, match="keywords must be a mapping"):
        load_recipe({"steps": [{"flag_dq": 3}]})
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [flag_dq: {bits: [}")
    with pytest.raises(RecipeError, match="bad.yaml: not valid YAML"):
        load_recipe(bad)
    with pytest.raises(FileNotFoundError):
        load_recipe(tmp_path / "missing.yaml")


def test_unknown_jwst_step():
    with pytest.raises(RecipeError, match=r"'jwst.FlatFeldStep' is not a jwst pipeline step \(did you "
                                          r"mean 'FlatFieldStep'\?\)"):
        load_recipe({"steps": [{"jwst.FlatFeldStep": {}}]})
    assert load_recipe({"steps": [{"jwst.FlatFieldStep": {}}]}).steps[0][0] == "jwst.FlatFieldStep"


def test_crds_unavailable_fails_early_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "no-cache"))
    monkeypatch.delenv("CRDS_SERVER_URL", raising=False)
    with pytest.raises(CRDSUnavailableError) as info:
        check_crds("jwst.FlatFieldStep")
    msg = str(info.value)
    assert "\n" not in msg and "jwst.FlatFieldStep needs CRDS reference files" in msg
    assert "no CRDS_SERVER_URL" in msg


def test_crds_unreachable_server_is_caught(tmp_path, monkeypatch):
    # the server named does not resolve: CRDS raises SystemExit or an error, never escaping
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "no-cache"))
    monkeypatch.setenv("CRDS_SERVER_URL", "https://localhost.invalid")
    from stdatamodels.jwst.datamodels import CubeModel

    with pytest.raises(CRDSUnavailableError, match="unreachable"):
        run_jwst_step("jwst.FlatFieldStep", CubeModel(data=np.ones((1, 4, 4), np.float32)))


def test_recipe_str_is_yaml():
    r = Recipe(steps=[("flag_dq", {"bits": ["DO_NOT_USE"]})], name="x", mode="soss")
    assert "flag_dq" in str(r) and "mode: soss" in str(r)


# ------------------------------------------------------------ the step registry
def test_recipe_steps_lists_exactly_the_registered_steps(capsys):
    from tsocontainer.pipeline.cli import main
    from tsocontainer.pipeline.recipe import registered_steps

    assert main(["recipe", "steps"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines()
              if line and not line.startswith((" ", "#"))}
    assert listed == set(registered_steps())
    assert "extract" in listed and "fit_white" in listed
    assert "``" not in out and ":func:" not in out          # no reStructuredText markup


@pytest.mark.parametrize("query", ["sky_model", "one_over_f_psd", "fit_single_trace",
                                   "plot_trace", "write", "copy", "set_aux"])
def test_recipe_check_rejects_query_and_helper_methods(query, tmp_path, capsys):
    from tsocontainer.pipeline.cli import main

    path = tmp_path / "r.yaml"
    path.write_text(f"steps:\n  - flag_dq: {{}}\n  - {query}: {{}}\n")
    assert main(["recipe", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"step 2 '{query}' is not a known step" in err and "r.yaml" in err


@pytest.mark.parametrize("step, kwargs, match", [
    ("flag_time_outliers", {"nsigma": "four"}, "'four' is not a number"),
    ("flag_time_outliers", {"nsigma": -3}, "out of range"),
    ("to_lightcurves", {"bins": "twenty"}, "not a channel count"),
    ("extract", {"method": 42}, "42 is not a choice"),
    ("extract", {"method": "boxx"}, "did you mean 'box'"),
    ("fit_white", {"model": {"rmap": True}}, "rmap"),
    ("make_order0_mask", {}, "needs keyword"),
])
def test_recipe_values_are_typed(step, kwargs, match):
    with pytest.raises(RecipeError, match=match):
        load_recipe({"steps": [{step: kwargs}]})


def test_recipe_stage_order_and_single_steps():
    with pytest.raises(RecipeError, match="appears twice"):
        load_recipe({"steps": [{"extract": {}}, {"extract": {}}]})
    with pytest.raises(RecipeError, match="comes after a spectra step"):
        load_recipe({"steps": [{"extract": {}}, {"flag_dq": {}}]})
    with pytest.raises(RecipeError, match="no steps"):
        load_recipe({"steps": []})


def test_api_and_recipe_reject_the_same_values():
    import numpy as np

    from tsocontainer import TSOGroup

    g = TSOGroup(np.ones((3, 4, 5)), np.ones((3, 4, 5)))
    with pytest.raises(ValueError, match="'four' is not a number"):
        g.flag_time_outliers(nsigma="four")
    with pytest.raises(ValueError, match="did you mean 'box'"):
        g.extract(method="boxx")


def test_nircam_recipe_detrends_trace_motion(tmp_path):
    """The shipped NIRCam white-light model follows the trace's motion: on a noiseless
    visit (default systematics: jitter, drift, width changes, a tilt) the residual of
    the white fit is what the regressors cannot describe."""
    from tsocontainer.pipeline.runner import run_recipe
    from tsocontainer.sim.simulate import simulate_visit
    from tsocontainer.sim.truth import priors_from_truth

    vis = simulate_visit("nircam-f322w2", 60, seed=0, out=tmp_path / "v", noiseless=True)
    rec = load_recipe("nircam")
    rec.steps = [s for s in rec.steps if s[0] != "fit_channels"]
    res = run_recipe(vis.files, rec, out=tmp_path / "r", priors=priors_from_truth(vis.truth),
                     plots=False, progress=False)
    resid = np.asarray(res.white.flux) / np.asarray(res.white.model_flux) - 1
    # measured 35.3 ppm rms with the x/y shifts as regressors, 47.5 with the width
    # and tilt alone (per-integration photon limit of this visit: ~69 ppm)
    assert 1e6 * np.std(resid) < 40.0
