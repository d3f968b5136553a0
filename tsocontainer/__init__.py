"""tsocontainer: JWST time-series spectroscopy from segments to spectra.

The public API is imported lazily so that ``import tsocontainer`` stays fast
and loads no plotting backend.
"""
from __future__ import annotations

from tsocontainer._version import __version__

__all__ = ["TSOGroup", "read_segments", "read_uncal", "detect_mode", "simulate_visit", "load_recipe",
           "run_recipe", "Spectra", "LightCurves", "FitResult", "set_log_level", "__version__"]

_LAZY = {
    "TSOGroup": ("group", "TSOGroup"),
    "read_segments": ("group", "read_segments"),
    "read_uncal": ("ramps", "read_uncal"),
    "detect_mode": ("modes", "detect_mode"),
    "simulate_visit": ("sim", "simulate_visit"),
    "load_recipe": ("pipeline.recipe", "load_recipe"),
    "run_recipe": ("pipeline.runner", "run_recipe"),
    "Spectra": ("spectra.container", "Spectra"),
    "LightCurves": ("lightcurves.container", "LightCurves"),
    "FitResult": ("lightcurves.results", "FitResult"),
}


def set_log_level(level="INFO"):
    """Show the package's messages at ``level`` (one line per step) in a notebook or script.

    Parameters
    ----------
    level : str or int
        ``"DEBUG"``, ``"INFO"`` (one line per step), ``"WARNING"`` (the default of
        Python's logging: only problems) or a logging level number.

    Returns
    -------
    logging.Logger
        The package's logger.

    Examples
    --------
    >>> set_log_level("WARNING").name
    'tsocontainer'
    """
    import logging
    import sys

    logger = logging.getLogger("tsocontainer")
    logger.setLevel(level)
    if not any(getattr(h, "_tsoc_notebook", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._tsoc_notebook = True
        logger.addHandler(handler)
    for h in logger.handlers:
        if getattr(h, "_tsoc_notebook", False):
            h.setLevel(level)
    return logger


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
