"""Sky background: trace and sky regions, contaminant flags and sky models.

Pure functions on cubes ``(n, ny, nx)``; the TSOGroup methods live in
``_steps_cleaning.py``. A sky model is stored compactly in the group's
``aux`` (see :func:`sky_block`) and subtracted from the working data by
:func:`apply_sky`; ``sci`` is never changed.

Methods (``estimate_sky(method=...)``):

* ``model``: a 2D background model (SOSS: the stepped SUBSTRIP96/256 zodiacal
  model shipped in ``tsocontainer/data``) scaled to the data per group of
  columns (SOSS: the two sides of the step), either by the median ratio over
  sky pixels -- which takes the star's wings for sky: on a scene built from a
  real SOSS frame they reach every pixel, and the ratio overestimated the sky
  by 23-120 % -- or (``scale_by="light-curve"``, the default when the light
  curve allows it) by the light of the sky pixels that does not follow the
  star's light curve (:func:`nonvarying_scales`);
* ``rows`` / ``columns``: median of the sky pixels of each row / column
  (ExoTiC-MIRI's row-wise background for MIRI LRS);
* ``polynomial``: per dispersion line, a low-order polynomial across the
  cross-dispersion axis fitted to sky pixels with the trace masked;
* ``spline``: median of sky pixels in bins along dispersion, interpolated by a
  cubic spline (msaexp-like: background as a smooth function of wavelength).
"""
from __future__ import annotations

import logging

import numpy as np

from tsocontainer.arrays.numerics import _sigma, block_ranges, robust_factor, run_blocks
from tsocontainer._util import check_option
from tsocontainer.arrays.numerics import disp_view as _disp_view
from tsocontainer.arrays.views import nanmedian_quiet

__all__ = ["TRACE_WIDTH", "SKY_METHODS", "trace_centres", "trace_mask", "line_median",
           "median_last_axis", "background_outliers", "order0_mask", "soss_background_model", "fit_sky",
           "sky_block", "sky_points", "apply_sky", "nonvarying_scales", "SCALE_BY"]

log = logging.getLogger(__name__)

#: default full width (pixels) of the trace mask per mode key (NIRCam: its grism PSF has
#: wings out to ~16 px from the trace centre)
TRACE_WIDTH = {"soss": 40, "nirspec": 10, "nircam": 34, "miri": 20}
#: first SUBSTRIP256 row of SUBSTRIP96 in DMS orientation (native columns 150-245,
#: flipped: full-frame rows 1802-1897, SUBSTRIP256 starting at row 1792)
SUBSTRIP96_ROW0 = 10
SKY_METHODS = ("model", "rows", "columns", "polynomial", "spline")
#: how the ``model`` sky is scaled (see ``estimate_sky``)
SCALE_BY = ("auto", "light-curve", "ratio")
#: default sky method per mode key
DEFAULT_SKY = {"soss": "model", "miri": "rows", "nirspec": "polynomial", "nircam": "polynomial"}

def trace_centres(geometry, traces=None, orders=None) -> dict:
    """Cross-dispersion centre per dispersion pixel of each order.

    Prefers the fitted ``traces`` (order -> float ``(N, n_disp)``, median over
    integrations); else the mode's nominal trace (:meth:`Geometry.trace_guess`).

    Parameters
    ----------
    geometry : Geometry
        The visit's geometry.
    traces : dict, optional
        Fitted traces by order.
    orders : sequence of int, optional
        Orders wanted (default all of the mode's).

    Returns
    -------
    dict
        order -> float array ``(n_disp,)`` (NaN off the detector).

    Examples
    --------
    >>> from tsocontainer.geometry import Geometry
    >>> import numpy as np
    >>> c = trace_centres(Geometry((8, 5)), {1: np.full((3, 5), 4.0)})
    >>> c[1].tolist()
    [4.0, 4.0, 4.0, 4.0, 4.0]
    """
    traces = traces or {}
    n_disp = geometry.n_disp
    orders = tuple(orders) if orders is not None else tuple(geometry.orders)
    out = {}
    for order in orders:
        arr = traces.get(order)
        if arr is not None and np.shape(arr)[-1] == n_disp:
            arr = np.asarray(arr, float).reshape(-1, n_disp)
            out[order] = nanmedian_quiet(arr, axis=0)
        elif geometry.mode is not None:
            out[order] = geometry.trace_guess(order)
    return out


def trace_mask(shape, dispersion_axis: int, centres: dict, width: float, frame=None):
    """Boolean frame, True within ``width / 2`` of any trace centre.

    Parameters
    ----------
    shape : tuple (ny, nx)
        Frame shape.
    dispersion_axis : int
        0 or 1.
    centres : dict
        order -> centre per dispersion pixel (see :func:`trace_centres`).
    width : float
        Full width of the masked band (pixels).
    frame : ndarray, optional
        Median frame; when no centre lies on the detector, the brightest
        pixels (above the 90th percentile plus five robust sigmas, grown by
        ``width / 4``) are masked instead.

    Returns
    -------
    ndarray of bool, shape (ny, nx)
    """
    ny, nx = shape
    n_disp, n_cross = (nx, ny) if dispersion_axis == 1 else (ny, nx)
    cross = np.arange(n_cross, dtype=float)[:, None]
    band = np.zeros((n_cross, n_disp), bool)
    for c in centres.values():
        c = np.asarray(c, float)[:n_disp]
        ok = np.isfinite(c) & (c > -width) & (c < n_cross + width)
        band |= ok[None] & (np.abs(cross - np.where(ok, c, 0)[None]) <= width / 2)
    if not band.any() and frame is not None:
        from scipy import ndimage

        f = np.where(np.isfinite(frame), frame, np.nanmedian(frame))
        lo, hi = np.percentile(f, [50, 90])
        sig = 1.4826 * np.median(np.abs(f - lo)) + 1e-30
        bright = f > hi + 5 * sig
        grow = max(1, int(round(width / 4)))
        return ndimage.binary_dilation(bright, iterations=grow)
    return band if dispersion_axis == 1 else band.T



def line_median(block, good, axis: int):
    """Median of the ``good`` values of ``block`` along frame ``axis``, per integration and line.

    Exact: the good values of each line are sorted (bad ones as +inf; numpy's
    SIMD sort of short float32 rows is as fast as a partition) and the middle
    one(s) taken.

    Parameters
    ----------
    block : ndarray, shape (n, ny, nx)
        Values.
    good : ndarray of bool, broadcastable to ``block``
        Values to use.
    axis : int
        Frame axis (0: along rows of a column -> one value per column;
        1: along a row -> one value per row).

    Returns
    -------
    med : ndarray of float32, shape (n, nlines)
        NaN where a line has no good value.
    count : ndarray of int, shape (n, nlines)
        Number of good values.
    """
    block = np.asarray(block, dtype=np.float32)
    ok = np.isfinite(block)
    ok &= good
    # bad values as +inf in one pass, in the block's own order; counted along the frame axis;
    # then one transposing copy so that each line is contiguous for the sort
    a = np.where(ok, block, np.float32(np.inf))
    count = np.count_nonzero(ok, axis=1 + axis)
    if axis == 0:
        a = np.ascontiguousarray(np.swapaxes(a, 1, 2))
    return _sorted_median(a, count)


def median_last_axis(a, ok):
    """Median of ``a[ok]`` along the last axis (``a`` is overwritten).

    Returns
    -------
    med : ndarray of float32
        NaN where no value is good.
    count : ndarray of int
    """
    np.copyto(a, np.inf, where=~ok)
    return _sorted_median(a, ok.sum(axis=-1))


def _sorted_median(a, count):
    """Median of the first ``count`` values of each line of ``a`` once sorted (bad ones are
    +inf); ``a`` is sorted in place."""
    a.sort(axis=-1)
    last = a.shape[-1] - 1
    lo = np.take_along_axis(a, (np.maximum(count - 1, 0) // 2)[..., None], -1)[..., 0]
    hi = np.take_along_axis(a, np.minimum(count // 2, last)[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore"):
        med = np.where(count > 0, 0.5 * (lo + hi), np.nan).astype(np.float32)
    return med, count


def background_outliers(cube, var, band, good_static, onef_axis: int, nsigma: float = 5.0):
    """Bright pixels outside the trace: above the sky level of their line by ``nsigma``.

    The sky level of each integration and line (along the mode's 1/f axis, so
    1/f stripes are followed) is the median of every 4th pixel outside ``band``.

    Parameters
    ----------
    cube : ndarray or block source, shape (N, ny, nx)
        Detection data (sliced ``cube[a:b]``).
    var : ndarray, shape (ny, nx)
        Variance of one integration per pixel (time-averaged).
    band : ndarray of bool, shape (ny, nx)
        Trace region (never flagged here).
    good_static : ndarray of bool, shape (ny, nx)
        Pixels usable for the level (e.g. no DO_NOT_USE).
    onef_axis : int
        Frame axis along which the level is taken.
    nsigma : float
        Threshold (one-sided, bright) in robust sigmas.

    Returns
    -------
    ndarray of bool, shape (N, ny, nx)
    """
    n, ny, nx = cube.shape
    flags = np.zeros(cube.shape, bool)
    sky = ~band & good_static
    inv_sig = np.where(sky, 1 / _sigma(var), 0).astype(np.float32)   # 0: never flagged

    # the level needs ~50 pixels per line, not all of them: every 4th pixel of each line
    sub = (slice(None), slice(None, None, 4), slice(None)) if onef_axis == 0 else (
        slice(None), slice(None), slice(None, None, 4))

    def work(a, b):
        d = cube[a:b]
        level, _ = line_median(d[sub], np.broadcast_to(sky, d.shape)[sub], onef_axis)
        level = np.nan_to_num(level)
        lev = level[:, None, :] if onef_axis == 0 else level[:, :, None]
        z = (d - lev) * inv_sig
        sample = z.reshape(-1)[:: max(1, z.size // 50_000)]
        thr = nsigma * robust_factor(sample[sample != 0], stride=1)
        flags[a:b] = z > thr

    run_blocks(work, block_ranges(n, max(1, 1_000_000 // (ny * nx))), "trace outliers")
    return flags


def order0_mask(f277w, nsigma: float = 5.0, grow: int = 2, box: int = 16, exclude=None):
    """Field-star order-0 images in a SOSS F277W frame.

    The frame minus a smooth background (median of ``box`` x ``box`` cells,
    bilinearly interpolated) is thresholded at ``nsigma`` robust sigmas and
    grown by ``grow`` pixels.

    Parameters
    ----------
    f277w : ndarray, shape (ny, nx)
        F277W exposure of the field (same subarray as the data).
    nsigma : float
        Detection threshold.
    grow : int
        Dilation (pixels) of the detections.
    box : int
        Cell size of the background estimate.
    exclude : ndarray of bool, optional
        Pixels never flagged (the target's own trace).

    Returns
    -------
    ndarray of bool, shape (ny, nx)
    """
    from scipy import ndimage

    img = np.asarray(f277w, np.float64)
    if img.ndim != 2:
        raise ValueError(f"f277w must be a 2D frame, got shape {img.shape}")
    ny, nx = img.shape
    fill = np.nanmedian(img)
    img = np.where(np.isfinite(img), img, fill)
    py, px = -ny % box, -nx % box
    padded = np.pad(img, ((0, py), (0, px)), mode="edge")
    cells = np.median(padded.reshape(padded.shape[0] // box, box, padded.shape[1] // box, box),
                      axis=(1, 3))
    yy = (np.arange(ny) + 0.5) / box - 0.5
    xx = (np.arange(nx) + 0.5) / box - 0.5
    bkg = ndimage.map_coordinates(cells, np.meshgrid(yy, xx, indexing="ij"), order=1,
                                  mode="nearest")
    resid = img - bkg
    sig = 1.4826 * np.median(np.abs(resid - np.median(resid))) + 1e-30
    det = resid > nsigma * sig
    if grow > 0:
        det = ndimage.binary_dilation(det, iterations=int(grow))
    if exclude is not None:
        det &= ~np.asarray(exclude, bool)
    return det


# ------------------------------------------------------------- sky models
def soss_background_model(subarray: str, shape, x_offset: int = 0,
                          y_offset: int = 0) -> np.ndarray:
    """The SOSS zodiacal background model (with its step) for ``subarray``.

    The shipped model (``soss_model_background96.npz``, exoTEDRF, BSD-3) is the
    SUBSTRIP96 one; SUBSTRIP96 covers SUBSTRIP256 rows 10-105 (DMS), so the
    model repeats its first/last rows elsewhere in SUBSTRIP256's rows (detector
    rows 1793-2048), the only rows where it is defined.

    Parameters
    ----------
    subarray : str
        ``SUBSTRIP96``, ``SUBSTRIP256`` or ``FULL``.
    shape : tuple (ny, nx)
        Frame shape of the data.
    x_offset : int
        First column of the data in the subarray (cropped data).
    y_offset : int
        First row of the data in the subarray (e.g. 1792 for the SOSS rows of
        a FULL frame read with ``detector_rows=(1793, 2048)``).

    Returns
    -------
    ndarray of float32, shape ``shape``

    Raises
    ------
    ValueError
        For another subarray, or rows or columns outside the model.

    Examples
    --------
    >>> full = soss_background_model("FULL", (256, 2048), y_offset=1792)
    >>> bool((full == soss_background_model("SUBSTRIP256", (256, 2048))).all())
    True
    """
    from tsocontainer.modes._tables import data_path

    with np.load(data_path("soss_model_background96.npz")) as z:
        bkg96 = np.asarray(z["background"], np.float32)
    ny, nx = shape
    start = {"SUBSTRIP96": SUBSTRIP96_ROW0, "SUBSTRIP256": 0, "FULL": -1792}.get(subarray)
    if start is None:
        raise ValueError(f"no SOSS background model for subarray {subarray!r}; pass model= "
                         "explicitly")
    first = start + int(y_offset)          # first row of the data in SUBSTRIP256 rows
    if first < 0 or first + ny > 256:
        raise ValueError(
            f"the SOSS background model covers SUBSTRIP256's rows (detector rows 1793-2048); "
            f"the {subarray} data reach detector rows {1793 + first}-{1792 + first + ny}: read "
            "them with detector_rows=(1793, 2048) (the shipped SOSS recipe does) or pass model=")
    model = bkg96[np.clip(np.arange(first, first + ny) - SUBSTRIP96_ROW0, 0, 95)]
    if x_offset < 0 or x_offset + nx > model.shape[1]:
        raise ValueError(f"SOSS background model has {model.shape[1]} columns, data {nx} "
                         f"from column {x_offset}; pass model= (cropped like the data)")
    return np.ascontiguousarray(model[:, x_offset:x_offset + nx])


def step_groups(model, ngroups=None):
    """Column group of each column: the sides of the model's largest step.

    Parameters
    ----------
    model : ndarray, shape (ny, nx)
        Background model.
    ngroups : int, optional
        1 for a single scale; default: 2 if the model's column median
        changes by more than 20 % over 16 columns (the SOSS step), else 1.

    Returns
    -------
    ndarray of int, shape (nx,)
    """
    col = np.nanmedian(model, axis=0)
    nx = col.size
    valid = col > 0.1 * np.nanmedian(np.abs(col))   # ignore empty (reference) columns
    span = min(16, nx - 1)                           # the SOSS step rises over ~15 columns
    if span < 1:
        return np.zeros(nx, np.int32)
    jump = np.where(valid[:-span] & valid[span:], np.abs(col[span:] - col[:-span]), 0)
    k = int(np.argmax(jump)) + span // 2
    has_step = jump.max() > 0.2 * np.nanmedian(np.abs(col))
    if ngroups == 1 or (ngroups is None and not has_step):
        return np.zeros(nx, np.int32)
    return (np.arange(nx) > k).astype(np.int32)


def _region_mask(region, shape):
    if region is None:
        return np.ones(shape, bool)
    if isinstance(region, (tuple, list)) and len(region) == 4:
        y0, y1, x0, x1 = (int(v) for v in region)
        m = np.zeros(shape, bool)
        m[y0:y1, x0:x1] = True
        return m
    region = np.asarray(region, bool)
    if region.shape != tuple(shape):
        raise ValueError(f"region must be (y0, y1, x0, x1) or a bool frame {shape}, "
                         f"got shape {region.shape}")
    return region


def _mad_var(resid, good, axis_reduce):
    """Variance of a median: pi/2 * (1.4826 MAD)^2 / n along the reduced block axis (1 or 2)."""
    good = np.broadcast_to(good, resid.shape)
    a, ok = np.abs(resid), good
    if axis_reduce == 1:
        a, ok = np.swapaxes(a, 1, 2), np.swapaxes(ok, 1, 2)
    mad, n = median_last_axis(np.array(a, np.float32, order="C"), np.array(ok, order="C"))
    return np.where(n > 0, np.pi / 2 * (1.4826 * np.nan_to_num(mad)) ** 2 / np.maximum(n, 1), 0)


def fit_sky(method, cube, good, sky, dispersion_axis=1, model=None, groups=None, deg=1,
            bin_size=32):
    """Fit a sky model to a block of integrations.

    Parameters
    ----------
    method : str
        One of :data:`SKY_METHODS`.
    cube : ndarray, shape (n, ny, nx)
        Data.
    good : ndarray of bool, shape (n, ny, nx)
        Usable pixels.
    sky : ndarray of bool, shape (ny, nx)
        Sky region (outside the trace).
    dispersion_axis : int
        0 or 1.
    model : ndarray, shape (ny, nx), optional
        2D model (``model``).
    groups : ndarray of int, shape (nx,), optional
        Column groups (``model``).
    deg : int
        Polynomial degree (``polynomial``).
    bin_size : int
        Dispersion bin (pixels) of the ``spline`` medians.

    Returns
    -------
    params, params_var : ndarray
        Per integration: ``model`` -> scales ``(n, ngroups)``; ``rows``,
        ``columns``, ``spline`` -> line values ``(n, nlines)``; ``polynomial``
        -> coefficients ``(n, nlines, deg + 1)``. ``params_var`` is the
        variance of the sky level, ``(n, ngroups)`` or ``(n, nlines)``.
    """
    check_option(method, SKY_METHODS, "sky method")
    use = good & sky[None] & np.isfinite(cube)
    if method == "model":
        return _fit_model(cube, use, model, groups)
    if method in ("rows", "columns"):
        axis = 1 if method == "rows" else 0
        med, _ = line_median(cube, use, axis)
        lev = med[:, :, None] if axis == 1 else med[:, None, :]
        var = _mad_var(cube - lev, use, 2 if axis == 1 else 1)
        return np.nan_to_num(med), var.astype(np.float32)
    if method == "polynomial":
        return _fit_poly(cube, use, dispersion_axis, deg)
    return _fit_spline(cube, use, dispersion_axis, bin_size)


def nonvarying_scales(b, b_var, mean, model, groups, columns, min_pixels: int = 5,
                      block: int = 64):
    """Scales of a 2D sky model from the non-varying light of sky pixels.

    ``b`` (per pixel, from :func:`tsocontainer.cleaning.timemodel.separate`) is
    the part of each pixel that does not follow the white light ``W``. ``W``
    itself is diluted -- the sky and contaminants are in it -- so the star
    leaves ``-r a`` in ``b`` (``r`` the non-varying fraction of ``W``, ``a``
    the pixel's starlight), and ``b = B m / (1 - r) - r / (1 - r) mean`` with
    ``mean`` the pixel's mean level. The slopes on ``mean`` (``gamma = -r /
    (1 - r)``) and on the model's variation along the column are fitted
    *within* columns (:func:`tsocontainer.cleaning.timemodel.column_slopes`),
    because 1/f noise moves the ``b`` of a whole column together. Each column
    then gives a scale ``(b - gamma mean) / ((1 - gamma) m)`` (weighted over
    its pixels); the scale of a column group is the median over its columns.
    Its variance is the larger of ``(1.2533 * 1.4826 MAD)^2 / n`` over the
    columns and over the medians of blocks of ``block`` columns (when there
    are at least three): 1/f noise,
    which no single column beats, is correlated between neighbouring columns
    (its power is at low frequencies), so columns alone understate it.

    Parameters
    ----------
    b, b_var : ndarray, shape (npix,)
        Non-varying light and its variance of the sky pixels.
    mean : ndarray, shape (npix,)
        Mean level of each pixel over the visit.
    model : ndarray, shape (npix,)
        Sky model at those pixels.
    groups : ndarray of int, shape (npix,)
        Column group of each pixel.
    columns : ndarray of int, shape (npix,)
        Detector column (1/f line) of each pixel.
    min_pixels : int
        Fewest pixels for a column to count.
    block : int
        Columns per block of the error estimate.

    Returns
    -------
    scales, scales_var : ndarray, shape (ngroups,)
        NaN for a group without columns.
    gamma : float
        Slope on the mean level (``r = -gamma / (1 - gamma)``).
    npix : int
        Pixels kept.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> col = np.repeat(np.arange(100), 30)
    >>> m, mean = rng.uniform(4, 6, col.size), rng.uniform(5, 20, col.size)
    >>> r = 0.05                      # 5 % of the white light does not vary
    >>> b = 0.6 * m / (1 - r) - r / (1 - r) * mean
    >>> s, _, _, _ = nonvarying_scales(b, np.ones(col.size), mean, m, np.zeros(col.size, int), col)
    >>> np.round(s, 6).tolist()
    [0.6]
    """
    from tsocontainer.cleaning.timemodel import column_slopes

    ng = int(groups.max()) + 1 if groups.size else 1
    onehot = np.zeros((b.size, ng))
    onehot[np.arange(b.size), groups] = model
    gamma, _, keep = column_slopes(b, b_var, mean, columns, extra=onehot)
    ok = keep & (model > 0)
    w = np.where(ok, 1.0 / np.where(ok, b_var, 1.0), 0.0)
    level = np.where(ok, (b - gamma * mean) / (1.0 - gamma), 0.0)
    ncol = int(columns.max()) + 1 if columns.size else 1
    num = np.bincount(columns, w * model * level, minlength=ncol)
    den = np.bincount(columns, w * model * model, minlength=ncol)
    count = np.bincount(columns, ok, minlength=ncol)
    col_group = np.zeros(ncol, int)
    col_group[columns] = groups
    rho = np.where((count >= min_pixels) & (den > 0), num / np.where(den > 0, den, 1.0), np.nan)
    scales = np.full(ng, np.nan)
    svar = np.full(ng, np.nan)
    for k in range(ng):
        cols = np.flatnonzero((col_group == k) & np.isfinite(rho))
        if cols.size:
            scales[k] = np.median(rho[cols])
            blocks = np.array([np.median(rho[c]) for c in np.split(cols, np.flatnonzero(
                np.diff(cols // block)) + 1)])
            svar[k] = _median_var(rho[cols])
            if blocks.size >= 3:          # too few blocks say nothing of the correlations
                svar[k] = max(svar[k], _median_var(blocks))
    return scales, svar, gamma, int(ok.sum())


def _median_var(values) -> float:
    """Variance of the median of ``values``: (1.2533 * 1.4826 MAD)^2 / n (inf if n < 3)."""
    if values.size < 3:
        return float("inf")
    mad = 1.4826 * np.median(np.abs(values - np.median(values)))
    return float((1.2533 * mad) ** 2 / values.size)


def _fit_model(cube, use, model, groups):
    n = cube.shape[0]
    ng = int(groups.max()) + 1
    strong = model > 0.1 * np.nanmedian(model[model > 0])
    flat_cube = cube.reshape(n, -1)
    flat_use = use.reshape(n, -1)
    cand = use.any(axis=0) & strong                   # pixels usable in some integration
    scale = np.zeros((n, ng), np.float32)
    svar = np.zeros((n, ng), np.float32)
    for k in range(ng):  # loop over the (1-2) column groups, not pixels
        idx = np.flatnonzero(cand & (groups == k)[None, :])
        idx = idx[:: max(1, idx.size // 100_000)]     # 1e5 pixels fix a scale to < 0.1 %
        ratio = flat_cube[:, idx] / model.reshape(-1)[idx]
        ok = flat_use[:, idx]
        med, count = median_last_axis(ratio.copy(), ok.copy())
        scale[:, k] = np.nan_to_num(med)
        dev = np.abs(ratio - scale[:, k:k + 1])
        mad, _ = median_last_axis(dev, ok.copy())
        svar[:, k] = np.pi / 2 * (1.4826 * np.nan_to_num(mad)) ** 2 / np.maximum(count, 1)
    return scale, svar


def _fit_poly(cube, use, dispersion_axis, deg):
    d = _disp_view(cube, dispersion_axis)        # (n, ncross, ndisp)
    u = _disp_view(use, dispersion_axis)
    ncross = d.shape[1]
    c = (np.arange(ncross) - (ncross - 1) / 2) / max(ncross / 2, 1)
    powers = np.stack([c ** k for k in range(deg + 1)], axis=1)   # (ncross, deg+1)
    w = u.astype(np.float64)
    dd = np.where(u, d, 0).astype(np.float64)
    for _ in range(2):  # fit, clip at 4 robust sigma, refit
        a = np.einsum("icl,ck,cm->ilkm", w, powers, powers)
        b = np.einsum("icl,icl,ck->ilk", w, dd, powers)
        a += np.eye(deg + 1) * 1e-12
        coef = np.linalg.solve(a, b[..., None])[..., 0]            # (n, ndisp, deg+1)
        fit = np.einsum("ilk,ck->icl", coef, powers)
        resid = dd - fit
        var = _mad_var(resid, w > 0, 1)
        w = np.where(np.abs(resid) <= 4 * np.sqrt(var * np.maximum(w.sum(1), 1) / (np.pi / 2))
                     [:, None, :] + 1e-30, w, 0)
    return coef.astype(np.float32), var.astype(np.float32)


def _fit_spline(cube, use, dispersion_axis, bin_size):
    from scipy.interpolate import CubicSpline

    d = _disp_view(cube, dispersion_axis)
    u = _disp_view(use, dispersion_axis)
    n, ncross, ndisp = d.shape
    nb = max(1, ndisp // bin_size)
    edges = np.linspace(0, ndisp, nb + 1).round().astype(int)
    width = int(np.diff(edges).max())
    idx = np.minimum(edges[:-1, None] + np.arange(width)[None], ndisp - 1)   # (nb, width)
    inbin = (edges[:-1, None] + np.arange(width)[None]) < edges[1:, None]
    vals = d[:, :, idx].transpose(0, 2, 1, 3).reshape(n, nb, -1)
    ok = (u[:, :, idx] & inbin[None, None]).transpose(0, 2, 1, 3).reshape(n, nb, -1)
    med, cnt = line_median(vals, ok, 1)
    centres = 0.5 * (edges[:-1] + edges[1:] - 1)
    fallback = nanmedian_quiet(med, axis=0)   # on worker threads: no catch_warnings
    med = np.where(np.isfinite(med), med, np.nan_to_num(fallback)[None])
    x = np.arange(ndisp)
    if nb >= 3:
        lines = CubicSpline(centres, med, axis=1)(x)   # extrapolates half a bin at the ends
    else:
        lines = np.repeat(med.mean(axis=1, keepdims=True), ndisp, axis=1)
    bvar = _mad_var(vals - med[..., None], ok, 2)
    var = bvar[:, np.minimum(np.searchsorted(edges, x, side="right") - 1, nb - 1)]
    return lines.astype(np.float32), var.astype(np.float32)


def sky_block(meta, aux, i0, i1, shape, dispersion_axis=1, variance: bool = True):
    """Sky model and its variance for integrations ``i0:i1`` from the stored parameters.

    Parameters
    ----------
    meta : dict
        Group meta (``SKYMETH``, ``SKYAXIS``).
    aux : dict
        Group aux (``sky_params``, ``sky_pvar`` and, for ``model``,
        ``sky_frame`` and ``sky_groups``).
    i0, i1 : int
        Integration range.
    shape : tuple (ny, nx)
        Frame shape.
    dispersion_axis : int
        0 or 1 (``polynomial``).
    variance : bool
        False: ``sky_var`` is None for the ``model`` method (not computed).

    Returns
    -------
    sky, sky_var : ndarray of float32, shape (i1 - i0, ny, nx)
    """
    method = meta["SKYMETH"]
    p = aux["sky_params"][i0:i1]
    pv = aux["sky_pvar"][i0:i1]
    if method == "model":
        frame, groups = aux["sky_frame"], aux["sky_groups"]
        sky = p[:, groups][:, None, :] * frame[None]
        return sky, (pv[:, groups][:, None, :] * frame[None] ** 2 if variance else None)
    if method == "polynomial":
        ncross = shape[0] if dispersion_axis == 1 else shape[1]
        c = (np.arange(ncross) - (ncross - 1) / 2) / max(ncross / 2, 1)
        powers = np.stack([c ** k for k in range(p.shape[-1])], axis=1).astype(np.float32)
        sky = np.einsum("ilk,ck->icl", p, powers)
        v = np.broadcast_to(pv[:, None, :], sky.shape)
        return _disp_view(sky, dispersion_axis), _disp_view(v, dispersion_axis)
    axis = int(meta["SKYAXIS"])   # frame axis indexed by the line number
    if axis == 0:
        return (np.broadcast_to(p[:, :, None], (p.shape[0],) + tuple(shape)),
                np.broadcast_to(pv[:, :, None], (p.shape[0],) + tuple(shape)))
    return (np.broadcast_to(p[:, None, :], (p.shape[0],) + tuple(shape)),
            np.broadcast_to(pv[:, None, :], (p.shape[0],) + tuple(shape)))


def sky_points(model, ints, pix):
    """The stored sky model at integrations ``ints`` and flat pixel indices ``pix``.

    Parameters
    ----------
    model : CorrectionModel
        The sky model.
    ints, pix : ndarray of int
        Integration indices and flat pixel indices ``y * nx + x``.

    Returns
    -------
    ndarray of float32
    """
    meta, aux = model.meta, model.aux
    ny, nx = model.sh
    y, x = np.divmod(pix, nx)
    p = aux["sky_params"]
    method = meta["SKYMETH"]
    if method == "model":
        return p[ints, aux["sky_groups"][x]] * aux["sky_frame"][y, x]
    if method == "polynomial":
        disp = model.geometry.dispersion_axis
        line, cross, ncross = (x, y, ny) if disp == 1 else (y, x, nx)
        c = (cross - (ncross - 1) / 2) / max(ncross / 2, 1)
        powers = np.stack([c ** k for k in range(p.shape[-1])], axis=1)
        return (p[ints, line] * powers).sum(axis=1).astype(np.float32)
    line = y if int(meta["SKYAXIS"]) == 0 else x
    return p[ints, line]


def apply_sky(model, data, var, i0, i1) -> None:
    """Working-data correction ``sky``: subtract the stored sky model, add its variance.

    Parameters
    ----------
    model : CorrectionModel
        The correction's stored model.
    data : ndarray, shape (i1 - i0, ny, nx)
        Block edited in place.
    var : ndarray or None
        Its variance, edited in place (skipped if None).
    i0, i1 : int
        Integration range of the block.
    """
    if "sky_params" not in model.aux:
        return
    disp = model.geometry.dispersion_axis
    for k in range(i1 - i0):  # one frame at a time: no cube-sized temporaries
        sky, sky_var = sky_block(model.meta, model.aux, i0 + k, i0 + k + 1, model.sh, disp,
                                 variance=var is not None)
        data[k] -= sky[0]
        if var is not None:
            var[k] += sky_var[0]
