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
    assert "flag_dq" in text and "radius ratio Rp/Rs" in text and "0.10000 -0.00100 +0.00200" in text
    assert "transit depth" in text and "10000.0 -200.0 +400.0" in text and "ppm" in text


def test_report_cli(tmp_path, capsys):
    run = _run_dir(tmp_path)
    assert main(["report", str(run)]) == 0
    assert (run / "report.html").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_report_requires_dir(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "nope")


def test_report_shows_the_truth_and_the_verdict_of_a_simulated_visit(tmp_path):
    run = _run_dir(tmp_path)
    truth = tmp_path / "sim" / "truth.json"
    truth.parent.mkdir()
    truth.write_text(json.dumps({"params": {"rp_rs_white": 0.1005, "t0": 60300.25}}))
    (run / "run.json").write_text(json.dumps({"targname": "WASP-TEST", "instrume": "NIRSPEC",
                                              "exp_type": "NRS_BRIGHTOBJ", "grating": "PRISM",
                                              "date-obs": "2025-01-02", "truth": str(truth)}))
    doc = json.loads((run / "fit_white.json").read_text())
    doc["quality"] = {"suspect": True, "reasons": ["reduced chi2 3.2 > 1.5"]}
    (run / "fit_white.json").write_text(json.dumps(doc))
    from pathlib import Path

    text = Path(build_report(run)).read_text(encoding="utf-8")
    assert "<title>WASP-TEST - NIRSPEC NRS_BRIGHTOBJ PRISM - 2025-01-02</title>" in text
    assert "injected" in text and "0.10050" in text and "10100." in text
    assert "SUSPECT" in text and "reduced chi2 3.2" in text


def _chromium():
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("mode", ["soss", "nirspec-prism", "nirspec-g395h", "nircam-f322w2",
                                  "miri-lrs"])
def test_report_of_a_run_renders_in_a_headless_browser(tmp_path, mode):
    """A real run's report of every mode opened in headless Chromium: every image decodes,
    the truth and the units are on the page; a screenshot per mode is kept as a test
    artefact (``test-artefacts/report_<mode>.png``)."""
    import subprocess
    import warnings
    from pathlib import Path

    from tsocontainer.pipeline.runner import run_recipe
    from tsocontainer.sim.simulate import simulate_visit
    from tsocontainer.sim.truth import priors_from_truth

    vis = simulate_visit(mode, nint=40, nseg=1, seed=4, out=tmp_path / "sim")
    fast = {"nwalkers": 16, "nsteps": 300, "seed": 1}
    recipe = {"steps": [{"flag_dq": {}}, {"fit_all_traces": {}}, {"extract": {}},
                        {"to_lightcurves": {"bins": 4}}, {"fit_white": {"sampler": fast}},
                        {"fit_channels": {"sampler": fast}}]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_recipe(vis.files, recipe, out=tmp_path / "run", priors=priors_from_truth(vis.truth))
    page = tmp_path / "run" / "report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    assert 'data-broken-images="0"' in dom, dom[-500:]
    n = int(dom.split('data-images="')[1].split('"')[0])
    assert n >= 12
    assert "injected" in dom
    assert "transit depth (Rp/Rs)^2" in dom and "BJD_TDB" in dom and "ppm" in dom
    shots = Path(__file__).resolve().parent.parent / "test-artefacts"
    shots.mkdir(exist_ok=True)
    shot = shots / f"report_{mode}.png"
    subprocess.run([_chromium(), *flags, "--window-size=1200,3000", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 50_000
