"""NIRSpec bright-object time series (BOTS): a straight trace along rows.

PRISM/CLEAR: wavelength per column from a table derived from the pipeline WCS of
a real PRISM SUB512 TSO (jw06456, Eureka!), whose column 0 is detector column 1025
(SUBSTRT1 of SUB512). G395H/F290LP on SUB2048
NRS1/NRS2: wavelength from the published dispersion curve (msaexp table),
integrated along the columns from an anchor on each detector: the red end of
NRS1 (3.717 micron at column 2047, the blue side of the 3.72-3.82 micron
detector gap) and the blue end of NRS2 (3.823 micron at column 0). NRS1
columns bluer than the F290LP cut-on (2.87 micron, about the first 780
columns) receive no light. Approximate (about a pixel), so a calints
WAVELENGTH extension takes precedence when present.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._subarrays import nominal_subarray, subarray_shapes
from ._tables import data_path, load_columns

SPEC = dict(
    key="nirspec",
    name="NIRSpec BOTS",
    instrument="NIRSPEC",
    exp_types=("NRS_BRIGHTOBJ",),
    dispersion_axis=1,
    onef_axis=0,
    orders=(1,),
    subarrays=subarray_shapes("NIRSPEC"),
    wavelength_source="PRISM: WCS-derived table (jw06456); G395H: dispersion curve",
)

#: G395H anchor of each detector: (column, wavelength in micron)
_G395H_ANCHOR = {"NRS1": (2047, 3.717), "NRS2": (0, 3.823)}
#: cut-on of the F290LP filter (micron): no G395H light bluer than this
G395H_CUTON = 2.87
#: SUBSTRT1 of the real SUB512 exposure the PRISM wavelength table was derived from
PRISM_TABLE_SUBSTRT1 = 1025

__all__ = ["SPEC", "G395H_CUTON", "PRISM_TABLE_SUBSTRT1", "config_label", "check_config", "wavelength",
           "trace_guess", "dispersion_origin"]


def config_label(mode) -> str:
    """Label of the configuration (grating/filter detector)."""
    return f"{mode.grating}/{mode.filter} {mode.detector}".strip()


def check_config(mode, filename: str = "") -> None:
    """NIRSpec BOTS: any grating is read; wavelengths exist for PRISM/G395H."""


@lru_cache(maxsize=None)
def _g395h_solution(detector: str):
    """Solve d(lambda)/d(column) = DLDS(lambda) from the detector's anchor."""
    from astropy.io import fits

    with fits.open(data_path("jwst_nirspec_g395h_disp.fits")) as hdul:
        w = np.array(hdul[1].data["WAVELENGTH"], float)
        dlds = np.array(hdul[1].data["DLDS"], float)
    col0, lam0 = _G395H_ANCHOR[detector]
    cols = np.arange(2048, dtype=float)
    lam = lam0 + np.interp(lam0, w, dlds) * (cols - col0)
    for _ in range(6):  # fixed-point iterations of the integral; converges to < 1e-9 um
        rate = np.interp(lam, w, dlds)
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]))])
        lam = lam0 + cum - cum[col0]
    return lam


def wavelength(mode, order: int = 1, x=None, header=None):
    """Wavelength (micron) at column(s) ``x``; NaN where not covered."""
    if order != 1:
        raise ValueError(f"NIRSpec BOTS has order 1 only, got {order!r}")
    if mode.grating == "PRISM":
        cols, lam = load_columns("wave_vs_col_NIRSpec_PRISM_SUB512_REAL_jw06456.csv")
        nx = 512
    elif mode.grating == "G395H" and mode.detector in _G395H_ANCHOR:
        lam = _g395h_solution(mode.detector)
        cols, nx = np.arange(2048, dtype=float), 2048
    else:
        raise ValueError(f"no shipped wavelength solution for NIRSpec {config_label(mode)}; "
                         "use calints with a WAVELENGTH extension")
    x = np.arange(nx, dtype=float) if x is None else np.asarray(x, float)
    return np.interp(x, cols, lam, left=np.nan, right=np.nan)


def dispersion_origin(mode) -> int:
    """1-based detector column of column 0 of this configuration's wavelength table.

    The PRISM table was measured on SUB512 (SUBSTRT1 = 1025); the G395H solution
    covers the whole detector (SUBSTRT1 = 1).
    """
    return PRISM_TABLE_SUBSTRT1 if mode.grating == "PRISM" else 1


def trace_guess(mode, order: int = 1, x=None, header=None):
    """Nominal trace row: the middle of the 32-row BOTS subarrays (the S1600A1 aperture).

    The BOTS subarrays of a grating share one centre row on the detector (SUB512S,
    16 rows, starts 8 rows into SUB512); the row is returned in the coordinates of the
    exposure's subarray (e.g. 15.5 on SUB512, 7.5 on SUB512S, the detector row on FULL).
    """
    ny, nx = SPEC["subarrays"].get(mode.subarray, (32, 2048))
    x = np.arange(nx, dtype=float) if x is None else np.asarray(x, float)
    det = mode.detector or "NRS1"
    try:
        ref = nominal_subarray("NIRSPEC", "SUB2048", det, mode.grating or None)
        own = nominal_subarray("NIRSPEC", mode.subarray, det, mode.grating or None)
    except KeyError:  # subarray not in the table (checked at read time): its own middle
        return np.full(x.shape, ny / 2 - 0.5)
    return np.full(x.shape, ref.substrt2 + 15.5 - own.substrt2)
