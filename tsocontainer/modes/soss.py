"""NIRISS SOSS (GR700XD): curved traces of orders 1-3 across 2048 columns.

Two geometry sources are shipped in ``tsocontainer/data``:

* the in-flight SPECTRACE reference tables (``jwst_niriss_spectrace_0023``
  for SUBSTRIP256/FULL, ``_0022`` for SUBSTRIP96): x, y, wavelength and
  throughput of each order, for the pupil-wheel position of the calibration;
* the pastasoss reference models (Baines & Espinoza, STScI; BSD-3) of orders
  1 and 2: the trace at the commanded pupil-wheel position 245.76 deg plus a
  pivot point, and polynomial wavelength models in column and pupil-wheel
  position. The trace at another position ``PWCPOS`` is the reference trace
  rotated about the pivot by ``PWCPOS - 245.76`` degrees.

Without a ``PWCPOS`` the SPECTRACE tables are used. With one (``header`` or
``pwcpos``), orders 1 and 2 follow the pastasoss models and order 3 (no
pastasoss model) follows SPECTRACE rotated about the order-2 pivot.
"""
from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from ._subarrays import subarray_shapes
from ._tables import data_path

SPEC = dict(
    key="soss",
    name="NIRISS SOSS",
    instrument="NIRISS",
    exp_types=("NIS_SOSS",),
    dispersion_axis=1,
    onef_axis=0,  # fast read along columns in DMS orientation: vertical stripes
    orders=(1, 2, 3),
    subarrays=subarray_shapes("NIRISS"),
    wavelength_source="SPECTRACE reference table (in-flight), per order; "
                      "pastasoss models versus PWCPOS when it is known",
)

_TABLE = {"SUBSTRIP96": "jwst_niriss_spectrace_0022.fits"}
_DEFAULT_TABLE = "jwst_niriss_spectrace_0023.fits"
#: first row of each subarray on the full-frame detector (DMS orientation)
#: rows added to SUBSTRIP256 coordinates to get this subarray's rows (SUBSTRIP256
#: is the top 256 rows, 1792-2047, of the full frame in DMS orientation)
_ROW_OFFSET = {"SUBSTRIP256": 0, "SUBSTRIP96": 0, "FULL": 1792}
#: commanded pupil-wheel position of the GR700XD (deg), reference of the pastasoss models
PWCPOS_CMD = 245.76
#: pastasoss reference traces (SUBSTRIP256 coordinates) and wavelength models
_PASTA_TRACE = {1: "jwst_niriss_gr700xd_order1_trace_refmodel.txt",
                2: "jwst_niriss_gr700xd_order2_trace_refmodel_002.txt"}
#: columns beyond the ends of a reference trace filled by linear extrapolation
_EDGE_EXTRAPOLATION = 8.0
_PASTA_WAVE = {1: "jwst_niriss_gr700xd_wavelength_model_order1.json",
               2: "jwst_niriss_gr700xd_wavelength_model_order2_002.json"}

__all__ = ["SPEC", "PWCPOS_CMD", "config_label", "check_config", "wavelength", "trace_guess",
           "pwcpos_of", "dispersion_origin"]


def config_label(mode) -> str:
    """Label of the configuration (subarray)."""
    return mode.subarray


def check_config(mode, filename: str = "") -> None:
    """SOSS needs no extra checks beyond the exposure type."""


def pwcpos_of(header=None, pwcpos=None):
    """Pupil-wheel position from ``pwcpos`` or a header's ``PWCPOS`` (None if absent)."""
    if pwcpos is not None:
        return float(pwcpos)
    if header is not None and header.get("PWCPOS") is not None:
        return float(header.get("PWCPOS"))
    return None


@lru_cache(maxsize=None)
def _spectrace(table: str, order: int):
    from astropy.io import fits

    with fits.open(data_path(table)) as hdul:
        d = hdul[order].data
        x, y, w = (np.array(d[c], float) for c in ("X", "Y", "WAVELENGTH"))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(w)
    order_idx = np.argsort(x[ok])
    return x[ok][order_idx], y[ok][order_idx], w[ok][order_idx]


@lru_cache(maxsize=None)
def _pasta_reference(order: int):
    table = np.loadtxt(data_path(_PASTA_TRACE[order]), comments="#")
    return table[1:, 0], table[1:, 1], tuple(table[0])


@lru_cache(maxsize=None)
def _pasta_wave_model(order: int):
    with open(data_path(_PASTA_WAVE[order]), encoding="utf-8") as fh:
        return json.load(fh)["model"]


def _rotate_onto_columns(x, y, angle_deg, pivot, xout):
    """Rotate the curve (x, y) about ``pivot`` and resample it at columns ``xout``."""
    a = np.radians(angle_deg)
    c, s = np.cos(a), np.sin(a)
    xr = c * (x - pivot[0]) - s * (y - pivot[1]) + pivot[0]
    yr = s * (x - pivot[0]) + c * (y - pivot[1]) + pivot[1]
    srt = np.argsort(xr)
    xr, yr = xr[srt], yr[srt]
    out = np.interp(xout, xr, yr, left=np.nan, right=np.nan)
    # continue the curve linearly over the few edge columns the table misses
    for end, inner in ((0, 1), (-1, -2)):
        slope = (yr[end] - yr[inner]) / (xr[end] - xr[inner])
        near = np.isnan(out) & (np.abs(xout - xr[end]) <= _EDGE_EXTRAPOLATION)
        near &= (xout < xr[0]) if end == 0 else (xout > xr[-1])
        out[near] = yr[end] + slope * (xout[near] - xr[end])
    return out


def _poly_wavelength(order: int, x, pwcpos: float):
    """Evaluate a pastasoss wavelength model (features named in its JSON)."""
    model = _pasta_wave_model(order)
    names = model["polyfeature_names"]
    lo, hi = model["scaler"]["data_min_"], model["scaler"]["data_max_"]
    var_x, var_p = names[0], names[1]
    # order-1 model uses the offset from the commanded position, order-2 v002 the position
    second = pwcpos - PWCPOS_CMD if var_p == "offset" else pwcpos
    sx = (x - lo[0]) / (hi[0] - lo[0])
    sp = (second - lo[1]) / (hi[1] - lo[1])
    out = np.full(x.shape, float(model["intercept"]))
    for coef, name in zip(model["coef"], names):
        term = np.ones(x.shape)
        for token in name.split():
            base, _, power = token.partition("^")
            value = sx if base == var_x else sp
            term = term * value ** (int(power) if power else 1)
        out += coef * term
    # outside the columns the model was trained on, hold the SPECTRACE shape
    inside = (x >= np.floor(lo[0])) & (x <= np.ceil(hi[0]))
    return out, inside


def _table_for(mode) -> str:
    return _TABLE.get(mode.subarray, _DEFAULT_TABLE)


def _check_order(order: int) -> None:
    if order not in SPEC["orders"]:
        raise ValueError(f"SOSS order must be one of {SPEC['orders']}, got {order!r}")


def dispersion_origin(mode) -> int:
    """1-based detector column of column 0 of the SOSS tables (all 2048 columns)."""
    return 1


def wavelength(mode, order: int = 1, x=None, header=None, pwcpos=None):
    """Wavelength (micron) of SOSS ``order`` at column(s) ``x`` (NaN off-order).

    Parameters
    ----------
    mode : Mode
        The exposure's mode (its subarray selects the SPECTRACE table).
    order : int
        1, 2 or 3.
    x : array_like, optional
        Columns (default: 0..2047).
    header : dict-like, optional
        Primary header; its ``PWCPOS`` selects the pastasoss model.
    pwcpos : float, optional
        Pupil-wheel position (deg), overriding the header.

    Returns
    -------
    ndarray
        Wavelength in micron.
    """
    _check_order(order)
    xs, _, ws = _spectrace(_table_for(mode), order)
    x = np.arange(2048, dtype=float) if x is None else np.asarray(x, float)
    base = np.interp(x, xs, ws, left=np.nan, right=np.nan)
    pw = pwcpos_of(header, pwcpos)
    if pw is None or order not in _PASTA_WAVE:
        return base
    poly, inside = _poly_wavelength(order, x, pw)
    # continue the model smoothly with the SPECTRACE slope outside its columns
    edge = np.array([x[inside].min(), x[inside].max()]) if inside.any() else None
    if edge is None:
        return base
    p_edge, _ = _poly_wavelength(order, edge, pw)
    b_edge = np.interp(edge, xs, ws)
    shift = np.where(x < edge[0], p_edge[0] - b_edge[0], p_edge[1] - b_edge[1])
    return np.where(inside, poly, base + shift)


def trace_guess(mode, order: int = 1, x=None, header=None, pwcpos=None):
    """Nominal y centre of SOSS ``order`` at column(s) ``x`` (NaN off-order).

    Parameters
    ----------
    mode : Mode
        The exposure's mode.
    order : int
        1, 2 or 3.
    x : array_like, optional
        Columns (default: 0..2047).
    header : dict-like, optional
        Primary header; its ``PWCPOS`` is used when ``pwcpos`` is not given.
    pwcpos : float, optional
        Pupil-wheel position (deg). When known, orders 1-2 follow the
        pastasoss reference traces rotated about their pivots, order 3 the
        SPECTRACE trace rotated about the order-2 pivot.

    Returns
    -------
    ndarray
        Row of the trace centre in the subarray.
    """
    _check_order(order)
    x = np.arange(2048, dtype=float) if x is None else np.asarray(x, float)
    offset = _ROW_OFFSET.get(mode.subarray, 0)
    pwcpos = pwcpos_of(header, pwcpos)
    if pwcpos is None:
        xs, ys, _ = _spectrace(_table_for(mode), order)
        return np.interp(x, xs, ys, left=np.nan, right=np.nan) + offset
    angle = float(pwcpos) - PWCPOS_CMD
    if order in _PASTA_TRACE:
        xr, yr, pivot = _pasta_reference(order)
    else:
        xr, yr, _ = _spectrace(_DEFAULT_TABLE, order)
        pivot = _pasta_reference(2)[2]
    y = _rotate_onto_columns(xr, yr, angle, pivot, x)
    if mode.subarray == "SUBSTRIP96":
        # the pastasoss models are in SUBSTRIP256 rows; shift by the SPECTRACE offset
        y = y + _substrip96_offset(order)
    return y + offset


@lru_cache(maxsize=None)
def _substrip96_offset(order: int) -> float:
    x96, y96, _ = _spectrace("jwst_niriss_spectrace_0022.fits", order)
    x256, y256, _ = _spectrace(_DEFAULT_TABLE, order)
    grid = np.arange(200.0, 1800.0, 50.0)
    return float(np.nanmedian(np.interp(grid, x96, y96) - np.interp(grid, x256, y256)))
