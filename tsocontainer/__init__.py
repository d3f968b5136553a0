"""tsocontainer: JWST time-series spectroscopy from segments to spectra.

The public API is imported lazily so that ``import tsocontainer`` stays fast
and loads no plotting backend.
"""
from __future__ import annotations

from tsocontainer._version import __version__

__all__ = ["TSOGroup", "read_segments", "detect_mode", "simulate_visit", "load_recipe",
           "run_recipe", "__version__"]

_LAZY = {
    "TSOGroup": ("group", "TSOGroup"),
    "read_segments": ("group", "read_segments"),
    "detect_mode": ("modes", "detect_mode"),
    "simulate_visit": ("sim", "simulate_visit"),
    "load_recipe": ("pipeline.recipe", "load_recipe"),
    "run_recipe": ("pipeline.runner", "run_recipe"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tsocontainer' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
