"""Shared test configuration: isolated HOME, Agg backend, shared-data paths."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Nothing in the test run may write to the user's home or open a window.
_TMP_HOME = tempfile.mkdtemp(prefix="tsoc-home-")
atexit.register(shutil.rmtree, _TMP_HOME, ignore_errors=True)
os.environ["HOME"] = _TMP_HOME
os.environ["MPLCONFIGDIR"] = os.path.join(_TMP_HOME, "mpl")
os.environ["XDG_CACHE_HOME"] = os.path.join(_TMP_HOME, "cache")
os.environ["XDG_CONFIG_HOME"] = os.path.join(_TMP_HOME, "config")
os.environ["MPLBACKEND"] = "Agg"
os.environ.setdefault("CRDS_SERVER_URL", "https://localhost.invalid")
os.environ.setdefault("CRDS_PATH", os.path.join(_TMP_HOME, "crds"))
for _key in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
    os.makedirs(os.environ[_key], exist_ok=True)  # astropy warns about missing ones

#: ../shared/data next to the repository (absent outside this workplace)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Path to ../shared/data, or skip the test cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
