"""Default fit models: the shipped recipe's, so the Python API gives the recipe's answer.

``LightCurves.fit_white()`` and ``fit_channels()`` called without ``model`` use
the ``model`` of the same step in the shipped recipe of the light curves' mode
(``tsocontainer/data/recipes/<mode>.yaml``). The mode comes from
``meta["MODE"]``, which extraction sets to the mode's name (``"NIRISS SOSS
..."``, matched on the :class:`~tsocontainer.modes.ModeSpec` name) or a mode key
(``soss``, ``nirspec``, ``nircam``, ``miri``). Light curves without a mode get
:data:`GENERIC_MODEL`: the :class:`~tsocontainer.lightcurves.model.ModelSpec`
defaults (a straight line in time) plus the optional regressors the shipped recipes
share (``"tilt?"``, ``"fwhm?"``: used when the light curves carry them and they are
not constant); the MIRI and NIRCam recipes add the shifts (``"shift_x?"``, and for
NIRCam ``"shift_y?"``), which the generic default leaves out.
"""
from __future__ import annotations

import copy

__all__ = ["GENERIC_MODEL", "mode_key", "recipe_model"]

#: the default for light curves of unknown mode (optional regressors are skipped when absent)
GENERIC_MODEL = {"poly": 1, "regressors": ["tilt?", "fwhm?"]}


def mode_key(meta) -> str | None:
    """Mode key (``soss``, ...) from ``meta["MODE"]``, or None.

    Parameters
    ----------
    meta : dict or None
        Light-curve meta.

    Returns
    -------
    str or None

    Examples
    --------
    >>> mode_key({"MODE": "NIRISS SOSS SUBSTRIP256"}), mode_key({"MODE": "miri"}), mode_key({})
    ('soss', 'miri', None)
    """
    from tsocontainer.modes import MODES

    mode = str((meta or {}).get("MODE") or "").strip()
    if not mode:
        return None
    for key, spec in MODES.items():
        if mode.lower() == key or mode.lower().startswith(spec.name.lower()):
            return key
    return None


def _shipped_steps(key: str) -> list:
    from importlib import resources

    import yaml

    path = resources.files("tsocontainer") / "data" / "recipes" / f"{key}.yaml"
    if not path.is_file():
        return []
    return list((yaml.safe_load(path.read_text()) or {}).get("steps") or [])


def recipe_model(meta, step: str = "fit_white") -> tuple[dict, str]:
    """The model of ``step`` in the shipped recipe of the light curves' mode.

    Parameters
    ----------
    meta : dict or None
        Light-curve meta (``MODE``).
    step : str
        ``"fit_white"`` or ``"fit_channels"``.

    Returns
    -------
    model : dict
        ModelSpec fields (a copy).
    source : str
        Where it came from, for the log (``"the soss recipe"``, ``"the generic default"``).

    Examples
    --------
    >>> recipe_model({"MODE": "NIRISS SOSS SUBSTRIP256"})
    ({'poly': 1, 'ramp': True, 'regressors': ['tilt?']}, 'the soss recipe')
    >>> recipe_model({})[1]
    'the generic default (no mode in meta)'
    """
    key = mode_key(meta)
    if key is not None:
        for entry in _shipped_steps(key):
            if isinstance(entry, dict) and step in entry:
                params = entry[step] or {}
                if "model" in params:
                    return copy.deepcopy(dict(params["model"])), f"the {key} recipe"
    return copy.deepcopy(GENERIC_MODEL), "the generic default (no mode in meta)" if key is None \
        else f"the generic default (the {key} recipe has no {step} model)"
