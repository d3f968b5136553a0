"""NIRISS SOSS (GR700XD): curved traces of orders 1-3 across 2048 columns.

Wavelengths and nominal trace centres come from the in-flight SPECTRACE
reference tables shipped in ``tsocontainer/data`` (``jwst_niriss_spectrace_0023``
for SUBSTRIP256/FULL, ``_0022`` for SUBSTRIP96). The traces move slightly with
the pupil-wheel position (``PWCPOS``); that dependence is applied by the
tracing step, not here.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._tables import data_path

SPEC = dict(
    key="soss",
    name="NIRISS SOSS",
    instrument="NIRISS",
    exp_types=("NIS_SOSS",),
    dispersion_axis=1,
    onef_axis=0,  # fast read along columns in DMS orientation: vertical stripes
    orders=(1, 2, 3),
    subarrays={"SUBSTRIP256": (256, 2048), "SUBSTRIP96": (96, 2048), "FULL": (2048, 2048)},
    wavelength_source="SPECTRACE reference table (in-flight), per order",
)

_TABLE = {"SUBSTRIP96": "jwst_niriss_spectrace_0022.fits"}
_DEFAULT_TABLE = "jwst_niriss_spectrace_0023.fits"
#: first row of each subarray on the full-frame detector (DMS orientation)
_ROW_OFFSET = {"SUBSTRIP256": 0, "SUBSTRIP96": 0, "FULL": 1792}


def config_label(mode) -> str:
    """Label of the configuration (subarray)."""
    return mode.subarray


def check_config(mode, filename: str = "") -> None:
    """SOSS needs no extra checks beyond the exposure type."""


@lru_cache(maxsize=None)
def _spectrace(table: str, order: int):
    from astropy.io import fits

    with fits.open(data_path(table)) as hdul:
        d = hdul[order].data
        x, y, w = (np.array(d[c], float) for c in ("X", "Y", "WAVELENGTH"))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(w)
    order_idx = np.argsort(x[ok])
    return x[ok][order_idx], y[ok][order_idx], w[ok][order_idx]


def _table_for(mode) -> str:
    return _TABLE.get(mode.subarray, _DEFAULT_TABLE)


def _check_order(order: int) -> None:
    if order not in SPEC["orders"]:
        raise ValueError(f"SOSS order must be one of {SPEC['orders']}, got {order!r}")


def wavelength(mode, order: int = 1, x=None, header=None):
    """Wavelength (micron) of SOSS ``order`` at column(s) ``x`` (NaN off-order)."""
    _check_order(order)
    xs, _, ws = _spectrace(_table_for(mode), order)
    x = np.arange(2048, dtype=float) if x is None else np.asarray(x, float)
    return np.interp(x, xs, ws, left=np.nan, right=np.nan)


def trace_guess(mode, order: int = 1, x=None):
    """Nominal y centre of SOSS ``order`` at column(s) ``x`` (NaN off-order)."""
    _check_order(order)
    xs, ys, _ = _spectrace(_table_for(mode), order)
    x = np.arange(2048, dtype=float) if x is None else np.asarray(x, float)
    return np.interp(x, xs, ys, left=np.nan, right=np.nan) - _ROW_OFFSET.get(mode.subarray, 0)
