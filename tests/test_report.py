"""The HTML report embeds every plot of a run directory and the recipe."""
from __future__ import annotations

import json

import pytest

from tsocontainer.pipeline.cli import main
from tsocontainer.pipeline.report import build_report


def _run_dir(tmp_path):
    import matplotlib.pyplot as plt

    (tmp_path / "plots").mkdir()
    for name in ("white_light", "trace"):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        fig.savefig(tmp_path / "plots" / f"{name}.png")
    (tmp_path / "recipe.yaml").write_text("name: t\nsteps:\n- flag_dq: {}\n")
    (tmp_path / "fit_white.json").write_text(json.dumps(
        {"params": {"rp_rs": {"median": 0.1, "err_lo": 0.001, "err_hi": 0.002}}}))
    return tmp_path


def test_report_contains_plots_and_recipe(tmp_path):
    run = _run_dir(tmp_path)
    path = build_report(run)
    from pathlib import Path

    text = Path(path).read_text(encoding="utf-8")
    assert text.count("<img") == 2 and "data:image/png;base64," in text
    assert "flag_dq" in text and "white rp_rs" in text and "0.1 +0.002 -0.001" in text


def test_report_cli(tmp_path, capsys):
    run = _run_dir(tmp_path)
    assert main(["report", str(run)]) == 0
    assert (run / "report.html").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_report_requires_dir(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "nope")
