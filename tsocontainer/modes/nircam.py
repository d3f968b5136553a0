"""NIRCam grism time series (long wavelength, GRISMR, module A): trace along rows.

Wavelengths come from the flight polynomials of the NIRCam GRISMR time-series mode
(F322W2 and F444W) published by the NIRCam team in tshirt, shipped as
``nircam_grismr_ts_model.json``; columns outside the filter's band are NaN. The
nominal trace row (34, 0-based) is the reference row of the SIAF grism TSO apertures
(``NRCA5_GRISM*_<filter>``, YSciRef = 35), the same for every TSO subarray since all
of them start at the detector's bottom row. Both are in DMS columns/rows of a frame
whose corner is (1, 1). Other filters need a calints WAVELENGTH extension.
1/f noise is constant along rows (fast read along x).
"""
from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from ._subarrays import subarray_shapes
from ._tables import data_path

SPEC = dict(
    key="nircam",
    name="NIRCam grism TSO",
    instrument="NIRCAM",
    exp_types=("NRC_TSGRISM",),
    dispersion_axis=1,
    onef_axis=1,
    orders=(1,),
    subarrays=subarray_shapes("NIRCAM"),
    wavelength_source="F322W2/F444W: flight GRISMR time-series polynomials (NIRCam team, tshirt)",
)

#: the shipped model (wavelength polynomials, band limits, trace row)
MODEL_FILE = "nircam_grismr_ts_model.json"

__all__ = ["SPEC", "MODEL_FILE", "config_label", "check_config", "wavelength", "trace_guess",
           "dispersion_origin", "model"]


@lru_cache(maxsize=None)
def model() -> dict:
    """The shipped NIRCam grism time-series model (see ``data/README.md``).

    Returns
    -------
    dict
        ``wavelength`` (per filter: ``x0``, ``scale``, ``coeff``, ``band_um``), ``trace``
        and their sources.

    Examples
    --------
    >>> model()["trace"]["row"]
    34.0
    """
    with open(data_path(MODEL_FILE), encoding="utf-8") as fh:
        return json.load(fh)


def config_label(mode) -> str:
    """Label of the configuration (filter and detector)."""
    return f"{mode.filter} {mode.detector}".strip()


def check_config(mode, filename: str = "") -> None:
    """Grism TSO must use a grism pupil."""
    if mode.pupil and not mode.pupil.startswith("GRISM"):
        where = f"{filename}: " if filename else ""
        raise ValueError(f"{where}NIRCam TSGRISM exposure with PUPIL={mode.pupil}, expected GRISMR/GRISMC")


def dispersion_origin(mode) -> int:
    """1-based detector column of column 0 of this mode's tables (SUBSTRT1 = 1)."""
    return 1


def wavelength(mode, order: int = 1, x=None, header=None):
    """Wavelength (micron) at column(s) ``x``; NaN outside the filter's band.

    Parameters
    ----------
    mode : Mode
        The exposure's mode (its filter selects the polynomial).
    order : int
        1 only.
    x : array_like, optional
        Columns of a frame starting at detector column 1 (default: 0..2047).
    header : dict-like, optional
        Unused (the NIRCam model depends on the filter only).

    Returns
    -------
    ndarray
        Wavelength in micron.

    Raises
    ------
    ValueError
        For another order or a filter without a shipped polynomial.
    """
    if order != 1:
        raise ValueError(f"NIRCam grism TSO has order 1 only, got {order!r}")
    polys = model()["wavelength"]
    if mode.filter not in polys:
        raise ValueError(f"no shipped wavelength solution for NIRCam {mode.filter} (have "
                         f"{', '.join(polys)}); use calints with a WAVELENGTH extension")
    p = polys[mode.filter]
    x = np.arange(2048, dtype=float) if x is None else np.asarray(x, float)
    lam = np.polynomial.Polynomial(p["coeff"])((x - p["x0"]) / p["scale"])
    lo, hi = p["band_um"]
    return np.where((lam >= lo) & (lam <= hi), lam, np.nan)


def trace_guess(mode, order: int = 1, x=None, header=None):
    """Nominal trace row (the SIAF reference row of the grism TSO apertures)."""
    x = np.arange(2048, dtype=float) if x is None else np.asarray(x, float)
    return np.full(x.shape, float(model()["trace"]["row"]))
