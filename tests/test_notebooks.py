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
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()  # raises CellExecutionError, with the traceback, on the first error
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_and_draws(name, tmp_path, _kernel_env):
    import json

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
