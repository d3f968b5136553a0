"""The notebooks of ``notebooks/`` run end to end and draw their plots (issue 7).

Each notebook is executed with nbclient in a fresh ``python3`` kernel. That kernel
is this interpreter: the kernel spec's ``python`` is replaced by ``sys.executable``
by jupyter_client, and a probe cell appended to the executed copy checks it. The
kernel inherits the environment of tests/conftest.py (isolated HOME, XDG and
MPLCONFIG folders, ``MPLBACKEND=Agg``); the notebooks select the inline backend
themselves (``%matplotlib inline``, which renders PNGs with Agg and needs no
display). The working directory is a temporary folder, so files the notebooks
write never land in the repository.

The notebooks are stored in git without outputs (small repository); a fast test
checks that.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

# jupyter_core 5.1-5.8 warn (DeprecationWarning, at import, in this process where pytest
# makes warnings errors) that Jupyter will move its folders to platformdirs unless
# JUPYTER_PLATFORM_DIRS is set. Opting in to that behaviour removes the cause instead of
# ignoring warnings; with conftest.py's temporary HOME no real folder is involved either way.
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"

#: notebook -> number of figures it draws (one image/png output per figure)
NOTEBOOKS = {
    # frame, dq, hot/cold, time outliers + flag rate, sky, 1/f PSD, replaced, sci vs data,
    # trace, profile, stability, spectra waterfall, median spectra, white + rms, lc waterfall
    "01_tsogroup_tour_soss.ipynb": 15,
    # white-light fit, transmission spectrum, lc waterfall + sensitivity
    "02_prism_files_to_spectrum.ipynb": 3,
    # lc waterfall, white fit, corner, rms vs bin, one channel's fit, transmission spectrum
    "03_fit_your_own_lightcurve.ipynb": 6,
}
#: seconds allowed per cell (the longest cell, notebook 02's run_recipe, takes ~1 min)
CELL_TIMEOUT = 300

#: how Python prints a warning ("file:line: SomeWarning: message")
_WARNING = re.compile(r"\b[A-Z]\w*Warning: ")

_PROBE = ("import json, os, sys, matplotlib\n"
          "print(json.dumps({'executable': sys.executable, 'home': os.environ.get('HOME'),\n"
          "                  'MPLBACKEND': os.environ.get('MPLBACKEND'),\n"
          "                  'backend': matplotlib.get_backend()}))")


#: per notebook that fits a transit: code run after it in its kernel, printing the white
#: depth's pull against the injected depth and the channel pulls (issue 14: each notebook
#: lands on the truth). Notebook 02 computes both itself from the simulated visit's truth;
#: notebook 03 injected its own light curves (batman, rp_rs per channel, channel fluxes
#: ``level``): its white light is the sum of the un-normalised channels, so the injected
#: white depth is the flux-weighted mean of rp_rs**2 (limb darkening differs by channel by
#: less than 0.15 in u1, which changes that mean by < 1 ppm against a ~30 ppm error).
_SCIENCE = {
    "02_prism_files_to_spectrum.ipynb": (
        "import json\n"
        "print(json.dumps({'white_pull': float((depth - injected) / (0.5 * (lo + hi))),\n"
        "                  'pulls': [float(x) for x in pull]}))"),
    "03_fit_your_own_lightcurve.ipynb": (
        "import json\n"
        "_inj = 1e6 * float(np.sum(level * rp_rs**2) / np.sum(level))\n"
        "_d, _lo, _hi = white.depth_ppm\n"
        "print(json.dumps({'white_pull': float((_d - _inj) / (0.5 * (_lo + _hi))),\n"
        "                  'pulls': [float(x) for x in (ts.depth - injected) / ts.err]}))"),
}

#: the package's containers, as their text repr starts (their ``_repr_html_`` must render)
_OURS = re.compile(r"^<(TSOGroup|Spectra|LightCurves|FitResult|ChannelFits|TransmissionSpectrum)\b")


def _read(name: str):
    import nbformat

    return nbformat.read(NB_DIR / name, as_version=4)


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NB_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_stored_without_outputs(name):
    nb = _read(name)
    filled = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              and (c.outputs or c.execution_count is not None)]
    assert not filled, f"{name}: clear the outputs of cells {filled} before committing"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.fixture(scope="module")
def _kernel_env():
    """Create the XDG folders conftest.py points to (inside its temporary HOME).

    conftest.py only sets the variables; astropy warns in the kernel, where the
    filters of setup.cfg do not apply, when XDG_CONFIG_HOME names a missing folder.
    """
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        Path(os.environ[var]).mkdir(parents=True, exist_ok=True)


def _execute(name: str, cwd: Path):
    import nbformat
    from nbclient import NotebookClient

    nb = _read(name)
    if name in _SCIENCE:
        nb.cells.append(nbformat.v4.new_code_cell(_SCIENCE[name]))
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()  # raises CellExecutionError, with the traceback, on the first error
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_and_draws(name, tmp_path, _kernel_env):
    import json

    import numpy as np

    nb = _execute(name, tmp_path)
    probe = json.loads(nb.cells.pop().outputs[0]["text"])
    assert probe["executable"] == sys.executable
    assert probe["home"] == os.environ["HOME"]  # the isolated HOME of conftest.py
    assert probe["MPLBACKEND"] == os.environ["MPLBACKEND"] == "Agg"
    assert "inline" in probe["backend"]  # still inline at the end (no display needed)

    outputs = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code"
               for o in c.outputs]
    errors = [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, o in outputs
              if o.output_type == "error"]
    assert not errors, errors
    warned = [f"cell {i}: {o.text.strip()[:300]}" for i, o in outputs
              if o.output_type == "stream" and o.name == "stderr" and _WARNING.search(o.text)]
    assert not warned, f"{name} shows warnings: {warned}"
    pngs = sum("image/png" in o.get("data", {}) for _, o in outputs)
    assert pngs >= NOTEBOOKS[name], f"{name}: {pngs} plots drawn, expected {NOTEBOOKS[name]}"
    # our containers display as HTML in a notebook, and their text form stays short
    shown = [(i, o["data"]) for i, o in outputs if o.output_type == "execute_result"
             and _OURS.match(o["data"].get("text/plain", ""))]
    for i, data in shown:
        assert data.get("text/html", "").lstrip().startswith("<"), f"cell {i}: no HTML repr"
        assert len(data["text/plain"].splitlines()) <= 15, f"cell {i}: long repr"
    if name == "01_tsogroup_tour_soss.ipynb":  # it displays the group twice
        assert len(shown) >= 2, shown
    if name in _SCIENCE:
        sci = json.loads(nb.cells.pop().outputs[0]["text"])
        print(name, "white pull", sci["white_pull"], "channel pulls std", np.std(sci["pulls"]))
        # within 2 sigma, and the channel pulls' spread 0.7-1.3 (notebook 02: 20 channels,
        # probability ~0.98 for unit normals; notebook 03: 8 channels, ~0.85; both seeded)
        assert abs(sci["white_pull"]) < 2, sci
        assert 0.7 <= float(np.std(sci["pulls"])) <= 1.3, sci
