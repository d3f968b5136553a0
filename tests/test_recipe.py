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
