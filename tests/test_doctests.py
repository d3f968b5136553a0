"""Every numpydoc Examples section of the package runs, as a doctest.

The modules are found by walking the imported ``tsocontainer`` package with
:mod:`pkgutil`, so a new module is checked without editing this file. Each one is
imported and the examples of everything it defines are run with ``ELLIPSIS`` and
``NORMALIZE_WHITESPACE`` (under the suite's warning filters: a warning in an example
fails it). Examples that need real JWST files carry ``# doctest: +SKIP`` next to them
in the source, with the reason; no module is left out here (see :data:`SKIPPED`).
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tsocontainer

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: module -> why its examples are not run (empty: every module runs)
SKIPPED: dict[str, str] = {}



def _module_names() -> list[str]:
    found = pkgutil.walk_packages(tsocontainer.__path__, prefix="tsocontainer.")
    return ["tsocontainer"] + sorted(m.name for m in found)


@pytest.fixture(scope="module", autouse=True)
def _libraries_loaded(tmp_path_factory):
    """Load once, outside any module's time limit, what the first simulated file needs.

    stdatamodels' asdf schemas and astropy's IERS tables take several seconds the first
    time in a process (measured ~4 s and ~3.5 s here): a one-off cost of the libraries,
    not of an example.
    """
    import matplotlib.pyplot  # noqa: F401
    from astropy.utils import iers
    from stdatamodels.jwst import datamodels

    iers.earth_orientation_table.get()
    datamodels.CubeModel((1, 2, 2)).save(str(tmp_path_factory.mktemp("warm") / "cube.fits"))


def test_every_module_is_found():
    names = _module_names()
    for expected in ("tsocontainer.group.container", "tsocontainer.spectra.trace",
                     "tsocontainer.cleaning.outliers", "tsocontainer.lightcurves.container"):
        assert expected in names
    assert set(SKIPPED) <= set(names), "SKIPPED names a module that does not exist"


@pytest.mark.parametrize("name", _module_names())
def test_examples_run(name, tmp_path, monkeypatch):
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    module = importlib.import_module(name)
    monkeypatch.chdir(tmp_path)   # an example that writes a file writes it here
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=report.append)
    # (no time limit: speed is measured in benchmarks/, never by timed tests)
    assert runner.failures == 0, f"{runner.failures} example(s) of {name} failed:\n" + "".join(report)


def test_a_failing_example_is_reported():
    """The runner above does fail: a wrong expected output is caught."""
    def wrong():
        """
        >>> 1 + 1
        3
        """
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in doctest.DocTestFinder().find(wrong, "wrong", globs={}):
        runner.run(test, out=lambda s: None)
    assert runner.failures == 1
