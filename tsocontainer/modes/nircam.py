"""NIRCam grism time series (long wavelength, GRISMR): trace along rows.

F322W2: wavelength per column from a published grism polynomial (Eureka!
table, columns 100-1699). Other filters need a calints WAVELENGTH extension.
1/f noise is constant along rows (fast read along x).
"""
from __future__ import annotations

import numpy as np

from ._tables import load_columns

SPEC = dict(
    key="nircam",
    name="NIRCam grism TSO",
    instrument="NIRCAM",
    exp_types=("NRC_TSGRISM",),
    dispersion_axis=1,
    onef_axis=1,
    orders=(1,),
    subarrays={"SUBGRISM64": (64, 2048), "SUBGRISM128": (128, 2048),
               "SUBGRISM256": (256, 2048)},
    wavelength_source="F322W2: grism polynomial table (Eureka!)",
)

#: nominal trace row of the long-wavelength grism TSO subarrays
_TRACE_ROW = {"SUBGRISM64": 34.0, "SUBGRISM128": 34.0, "SUBGRISM256": 34.0}


def config_label(mode) -> str:
    """Label of the configuration (filter and detector)."""
    return f"{mode.filter} {mode.detector}".strip()


def check_config(mode, filename: str = "") -> None:
    """Grism TSO must use a grism pupil."""
    if mode.pupil and not mode.pupil.startswith("GRISM"):
        where = f"{filename}: " if filename else ""
        raise ValueError(f"{where}NIRCam TSGRISM exposure with PUPIL={mode.pupil}, expected GRISMR/GRISMC")


def wavelength(mode, order: int = 1, x=None, header=None):
    """Wavelength (micron) at column(s) ``x``; NaN outside the table."""
    if order != 1:
        raise ValueError(f"NIRCam grism TSO has order 1 only, got {order!r}")
    if mode.filter != "F322W2":
        raise ValueError(f"no shipped wavelength solution for NIRCam {mode.filter}; "
                         "use calints with a WAVELENGTH extension")
    cols, lam = load_columns("wave_vs_col_NIRCam_F322W2_EurekaPoly_SIMfile.csv")
    x = np.arange(2048, dtype=float) if x is None else np.asarray(x, float)
    return np.interp(x, cols, lam, left=np.nan, right=np.nan)


def trace_guess(mode, order: int = 1, x=None, header=None):
    """Nominal trace row."""
    x = np.arange(2048, dtype=float) if x is None else np.asarray(x, float)
    return np.full(x.shape, _TRACE_ROW.get(mode.subarray, 34.0))
