"""The README's notebook tour, run as written on a simulated SOSS visit, lands on the truth.

The code block under "A notebook tour" is executed with two substitutions only: the
segment file names and the priors file point to a simulated visit (60 integrations in two
segments, as a new user would simulate one with ``tsocontainer simulate``). The white
depth must be within 2 sigma of the injected one and the channel pulls must have a
spread of 0.7-1.3 (20 channels: the standard deviation of 20 unit normals is within
0.7-1.3 with probability ~0.98). What the tour displays (its bare expressions, as a
notebook shows them, and the group, spectra, light curves and fits it makes) prints in
at most 15 lines, and the package's containers also render as HTML.
"""
from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _tour_code() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## A notebook tour"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _displaying(code: str) -> str:
    """The tour with every bare expression ``x`` turned into ``_display(x)`` (a notebook
    shows the value of a cell's last expression; the tour's comments show it for each)."""
    tree = ast.parse(code)
    for i, node in enumerate(tree.body):
        if isinstance(node, ast.Expr):
            call = ast.Call(ast.Name("_display", ast.Load()), [node.value], [])
            tree.body[i] = ast.copy_location(ast.Expr(call), node)
    return ast.unparse(ast.fix_missing_locations(tree))


def _check_display(value) -> str:
    text = repr(value)
    assert len(text.splitlines()) <= 15, text
    html = getattr(value, "_repr_html_", None)
    if html is not None and type(value).__module__.startswith("tsocontainer"):
        assert html().lstrip().startswith("<"), type(value)
    return text


@pytest.mark.slow
def test_readme_tour_recovers_the_injected_depth(tmp_path, monkeypatch):
    if not README.is_file():
        pytest.skip("README.md is not beside the tests")
    from tsocontainer.sim.simulate import simulate_visit
    from tsocontainer.sim.truth import recovery

    vis = simulate_visit("soss", nint=60, nseg=2, seed=3, out=tmp_path / "sim")
    code = _tour_code()
    pattern = re.search(r'read_segments\("([^"]+)"\)', code).group(1)
    code = code.replace(f'"{pattern}"', repr([str(f) for f in vis.files]))
    code = code.replace('"planet.yaml"', repr(str(Path(vis.folder) / "planet.yaml")))
    monkeypatch.chdir(tmp_path)
    shown: list = []
    scope: dict = {"_display": lambda v: shown.append(_check_display(v))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(_displaying(code), "README.md tour", "exec"), scope)
    assert any(s.startswith("<TSOGroup NIRISS SOSS SUBSTRIP256") for s in shown), shown
    for name in ("g", "spec", "lc", "white", "fits"):
        _check_display(scope[name])
    rec = recovery(vis, scope["white"], scope["fits"].spectrum)
    assert abs(rec["pull"]) < 2, rec
    assert 0.7 <= np.std(rec["pulls"]) <= 1.3, rec["pulls"]
    assert (tmp_path / "visit.fits").is_file()
