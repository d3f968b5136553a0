"""The pixel replacement of the working data: values for masked pixels, stored sparsely.

:func:`replacement_values` computes a value and a variance for every masked
pixel (from its neighbours along the dispersion, the white-light-scaled deep
frame, or the fitted spatial profile); the TSOGroup step
:meth:`~tsocontainer.TSOGroup.replace_bad_pixels` stores them in ``aux`` and
:func:`apply_replacement` puts them into each block of working data. ``sci`` is
never changed and the pixels stay masked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsocontainer._util import check_option
from tsocontainer.arrays.numerics import disp_view as _disp_view
from tsocontainer.arrays.numerics import masked_row_median as _masked_row_median
from tsocontainer.arrays.views import nanmedian_quiet, nanmedian_short

__all__ = ["clean_deep", "REPLACE_METHODS", "ReplaceOptions", "replacement_values",
           "apply_replacement"]


def clean_deep(deep, static_bad, dispersion_axis: int = 1, reach: int = 3):
    """Deep frame with static bad pixels filled from good neighbours along dispersion.

    Parameters
    ----------
    deep : ndarray, shape (ny, nx)
        Deep frame.
    static_bad : ndarray of bool, shape (ny, nx)
        Pixels bad in most integrations (or non-finite in ``deep``).
    dispersion_axis : int
        0 or 1.
    reach : int
        Neighbours used on each side; wider gaps fall back to the frame median.

    Returns
    -------
    ndarray of float32

    Examples
    --------
    A static bad pixel on a ramp along the dispersion is filled from its row:

    >>> import numpy as np
    >>> deep = np.tile(np.arange(10.0), (3, 1))
    >>> deep[1, 4] = np.nan
    >>> clean_deep(deep, np.zeros((3, 10), bool))[1, 3:6]
    array([3., 4., 5.], dtype=float32)
    """
    d = _disp_view(np.array(deep, np.float32), dispersion_axis).copy()
    bad = _disp_view(static_bad | ~np.isfinite(deep), dispersion_axis)
    m = d.shape[1]
    vals = []
    for k in list(range(-reach, 0)) + list(range(1, reach + 1)):
        idx = np.clip(np.arange(m) + k, 0, m - 1)
        vals.append(np.where(bad[:, idx], np.nan, d[:, idx]))
    # no warnings.catch_warnings: not thread-safe, and this runs on worker threads
    with np.errstate(all="ignore"):
        est = nanmedian_short(np.stack(vals), axis=0)   # np.nanmedian's values, by one sort
        fallback = nanmedian_quiet(np.where(bad, np.nan, d)) if (~bad).any() else 0.0
    est = np.where(np.isfinite(est), est, fallback)
    d[bad] = est[bad]
    return _disp_view(d, dispersion_axis)


REPLACE_METHODS = ("spatial", "temporal", "profile")


@dataclass(frozen=True)
class ReplaceOptions:
    """How :func:`replacement_values` fills bad pixels.

    Parameters
    ----------
    method : {'spatial', 'temporal', 'profile'}
        ``spatial``: median of the good neighbours along dispersion within
        ``reach`` pixels in the same integration, each corrected by the deep
        frame's difference between it and the bad pixel; ``temporal``: the
        white-light-scaled deep frame (the pixel's median over time; pixels bad
        in most integrations use the neighbour-filled deep frame);
        ``profile``: the fitted profile amplitude of the integration and
        dispersion pixel times the profile (outside the profile: temporal).
        Pixels with no usable neighbour fall back to ``temporal``.
    reach : int
        Neighbours on each side for ``spatial``.
    var_inflation : float
        Replaced pixels get ``var_inflation * wl * frame_var`` as variance (>= 1).

    Raises
    ------
    ValueError
        On an unknown method or ``var_inflation < 1``.

    Examples
    --------
    >>> ReplaceOptions("temporal")
    ReplaceOptions(method='temporal', reach=2, var_inflation=4.0)
    >>> ReplaceOptions(var_inflation=0.5)
    Traceback (most recent call last):
    ...
    ValueError: var_inflation must be >= 1, got 0.5
    """

    method: str = "spatial"
    reach: int = 2
    var_inflation: float = 4.0

    def __post_init__(self):
        check_option(self.method, REPLACE_METHODS, "replacement method")
        if self.var_inflation < 1:
            raise ValueError(f"var_inflation must be >= 1, got {self.var_inflation}")


def replacement_values(ints, pix, values_at, good, deep, wl, frame_var, prof=None,
                       dispersion_axis: int = 1, options: ReplaceOptions | None = None):
    """Values and variances for bad pixels ``(ints, pix)``.

    Parameters
    ----------
    ints, pix : ndarray of int
        Integration index and flat pixel index (``y * nx + x``) of each bad pixel.
    values_at : callable
        ``values_at(ints, pix)`` returns the detection data at those points.
    good : ndarray of bool, shape (N, ny, nx), or callable
        Usable pixels, or ``good(ints, pix)`` returning them at those points
        (no cube needed).
    deep : ndarray, shape (ny, nx)
        Clean deep frame (:func:`clean_deep`), finite.
    wl : ndarray, shape (N,)
        White-light curve.
    frame_var : ndarray, shape (ny, nx)
        Typical variance of one integration per pixel.
    prof : ndarray, shape (ny, nx), optional
        Profile (for ``profile``).
    dispersion_axis : int
        0 or 1.
    options : ReplaceOptions, optional
        Method, reach and variance inflation (default :class:`ReplaceOptions`:
        ``spatial``).

    Returns
    -------
    values, variances : ndarray of float32

    Examples
    --------
    A bad pixel on a ramp along the dispersion gets its neighbours' trend:

    >>> import numpy as np
    >>> deep = np.tile(np.arange(10.0), (3, 1))          # clean deep frame, 3 x 10 pixels
    >>> cube = deep[None].copy()                         # one integration
    >>> cube[0, 1, 4] = 99.0                             # the bad pixel (flat index 14)
    >>> good = np.ones(cube.shape, bool)
    >>> good[0, 1, 4] = False
    >>> at = lambda i, p: cube.reshape(1, -1)[i, p]
    >>> values, variances = replacement_values(np.array([0]), np.array([14]), at, good, deep,
    ...                                        np.ones(1), np.ones((3, 10)))
    >>> values, variances
    (array([4.], dtype=float32), array([4.], dtype=float32))
    """
    opts = options or ReplaceOptions()
    method, reach = opts.method, opts.reach
    ny, nx = deep.shape
    if not callable(good):
        cube = good
        good = lambda i, p: cube.reshape(cube.shape[0], -1)[i, p]   # noqa: E731
    y, x = np.divmod(pix, nx)
    base = (wl[ints] * deep[y, x]).astype(np.float32)
    variances = (opts.var_inflation * np.abs(wl[ints]) * frame_var[y, x]).astype(np.float32)
    if method == "temporal" or ints.size == 0:
        return base, variances
    if method == "profile" and prof is not None:
        values = _profile_values(ints, y, x, values_at, good, prof, dispersion_axis)
        return np.where(np.isfinite(values), values, base).astype(np.float32), variances
    dflat = deep.reshape(-1)
    step = 1 if dispersion_axis == 1 else nx
    m = nx if dispersion_axis == 1 else ny
    pos = x if dispersion_axis == 1 else y
    est = np.full((2 * reach, ints.size), np.nan, np.float32)
    for j, k in enumerate([k for k in range(-reach, reach + 1) if k]):  # 2 * reach offsets
        ok = (pos + k >= 0) & (pos + k < m)
        q = np.where(ok, pix + k * step, pix)
        use = ok & good(ints, q)
        val = values_at(ints, q) + wl[ints] * (dflat[pix] - dflat[q])
        est[j] = np.where(use & np.isfinite(val), val, np.nan)
    values = _masked_row_median(np.ascontiguousarray(est.T))   # nanmedian: 20x slower here
    return np.where(np.isfinite(values), values, base).astype(np.float32), variances


def _profile_values(ints, y, x, values_at, good, prof, dispersion_axis):
    """Profile amplitude x profile at the bad pixels (NaN outside the profile)."""
    ny, nx = prof.shape
    disp = x if dispersion_axis == 1 else y
    m = nx if dispersion_axis == 1 else ny
    uniq, inv = np.unique(ints.astype(np.int64) * m + disp, return_inverse=True)
    ui, ud = np.divmod(uniq, m)
    if dispersion_axis == 1:   # whole columns (ny values) of each (integration, column)
        cross = np.arange(ny)
        pp = cross[None, :] * nx + ud[:, None]
        p = prof[:, ud].T
    else:                      # whole rows
        cross = np.arange(nx)
        pp = ud[:, None] * nx + cross[None, :]
        p = prof[ud, :]
    ii = np.broadcast_to(ui[:, None], pp.shape)
    d = values_at(ii.ravel(), pp.ravel()).reshape(pp.shape)
    g = good(ii.ravel(), pp.ravel()).reshape(pp.shape)
    w = (g & np.isfinite(d) & (p > 0)).astype(np.float32)
    d = np.where(w > 0, d, 0)
    with np.errstate(all="ignore"):
        amp = (w * d * p).sum(1) / (w * p * p).sum(1)
    pval = prof[y, x]
    out = amp[inv] * pval
    return np.where(pval > 0, out, np.nan)


def apply_replacement(model, data, var, i0, i1) -> None:
    """Working-data correction ``replace``: put stored replacement values into a block.

    Reads ``aux`` arrays ``replace_int`` (exposure integration numbers),
    ``replace_pix`` (flat pixel index), ``replace_val`` and ``replace_var``,
    sorted by integration number, so that slicing the group keeps them right.

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

    Examples
    --------
    Integration 2 of a two-integration block gets 7.0 at flat pixel 3:

    >>> import numpy as np
    >>> from tsocontainer.cleaning.model import CorrectionModel
    >>> from tsocontainer.geometry import Geometry
    >>> aux = {"replace_int": np.array([2]), "replace_pix": np.array([3]),
    ...        "replace_val": np.array([7.0]), "replace_var": np.array([9.0])}
    >>> model = CorrectionModel(aux, {}, Geometry((2, 3)), np.array([1, 2]))
    >>> data, var = np.zeros((2, 2, 3), np.float32), np.ones((2, 2, 3), np.float32)
    >>> apply_replacement(model, data, var, 0, 2)
    >>> data[1].tolist(), float(var[1, 1, 0])
    ([[0.0, 0.0, 0.0], [7.0, 0.0, 0.0]], 9.0)
    """
    if "replace_int" not in model.aux:
        return
    nums = model.int_numbers[i0:i1]
    rint = model.aux["replace_int"]
    if nums.size == 0 or rint.size == 0:
        return
    a, b = np.searchsorted(rint, [nums.min(), nums.max() + 1])
    sel_int = rint[a:b]
    order = np.argsort(nums)
    where = np.searchsorted(nums[order], sel_int)
    where = np.clip(where, 0, nums.size - 1)
    hit = nums[order][where] == sel_int
    local = order[where[hit]]
    pix = model.aux["replace_pix"][a:b][hit]
    npix = data.shape[1] * data.shape[2]
    flat_idx = local.astype(np.int64) * npix + pix
    data.reshape(-1)[flat_idx] = model.aux["replace_val"][a:b][hit]
    if var is not None:
        var.reshape(-1)[flat_idx] = model.aux["replace_var"][a:b][hit]
