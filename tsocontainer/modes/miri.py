"""MIRI LRS slitless (P750L, SLITLESSPRISM 416x72): dispersion along rows.

Wavelength per row from the CRDS LRS slitless wavelength map shipped as
``miri_lrs_slitlessprism_wavelength_map_416x72.npy`` (the WAVELENGTH
extension of a jwst 2.0.1 calints); a file's own WAVELENGTH extension takes
precedence. The trace lies near column 36.
"""
from __future__ import annotations

import numpy as np

from ._subarrays import subarray_shapes
from ._tables import load_npy

SPEC = dict(
    key="miri",
    name="MIRI LRS slitless",
    instrument="MIRI",
    exp_types=("MIR_LRS-SLITLESS",),
    dispersion_axis=0,
    onef_axis=1,
    orders=(1,),
    subarrays=subarray_shapes("MIRI"),
    wavelength_source="CRDS LRS slitless wavelength map (calints WAVELENGTH)",
)

TRACE_COLUMN = 36.0
#: SUBSTRT2 of SLITLESSPRISM: detector row of row 0 of the wavelength map
MAP_SUBSTRT2 = 529


def config_label(mode) -> str:
    """Label of the configuration (subarray)."""
    return mode.subarray


def check_config(mode, filename: str = "") -> None:
    """MIRI LRS slitless needs no extra checks."""


def dispersion_origin(mode) -> int:
    """1-based detector row of row 0 of the wavelength map (SLITLESSPRISM SUBSTRT2)."""
    return MAP_SUBSTRT2


def wavelength(mode, order: int = 1, x=None, header=None):
    """Wavelength (micron) at row(s) ``x`` along the trace; NaN off-trace."""
    if order != 1:
        raise ValueError(f"MIRI LRS has order 1 only, got {order!r}")
    wmap = load_npy("miri_lrs_slitlessprism_wavelength_map_416x72.npy")
    col = wmap[:, int(TRACE_COLUMN)].astype(float)
    col[~(col > 0)] = np.nan
    rows = np.arange(wmap.shape[0], dtype=float)
    x = rows if x is None else np.asarray(x, float)
    good = np.isfinite(col)
    out = np.interp(x, rows[good], col[good], left=np.nan, right=np.nan)
    return out


def trace_guess(mode, order: int = 1, x=None, header=None):
    """Nominal trace column at row(s) ``x``."""
    x = np.arange(416, dtype=float) if x is None else np.asarray(x, float)
    return np.full(x.shape, TRACE_COLUMN)
