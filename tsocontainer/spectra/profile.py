"""Spatial profiles for optimal extraction and their motion model.

The visit profile (:func:`spatial_profile`) is the visit-average frame of an
order, normalised per column and smoothed along the dispersion. The motion
model (:func:`profile_motion`) regresses every pixel's share of its column's
flux over the visit on the trace offset and PSF width of each integration, so
that the profile of an integration follows sub-pixel motion of undersampled
PSFs pixel by pixel (see :mod:`tsocontainer.spectra.extract`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tsocontainer.arrays.views import gather, window_rows
from tsocontainer.spectra.blocks import iter_blocks

__all__ = ["OrderProfile", "spatial_profile", "motion_regressors", "profile_motion",
           "borrow_incomplete_columns"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- profile
@dataclass(frozen=True, eq=False)
class OrderProfile:
    """One order's spatial profile and the region it covers: what optimal extraction weighs with.

    Parameters
    ----------
    centre : ndarray, shape (nx,)
        Reference trace the profile was built around (NaN off the detector).
    profile : ndarray, shape (ny, nx)
        Normalised profile from :func:`spatial_profile`.
    halfwidth : float
        Half-width (px) around ``centre`` of the region where ``profile`` is
        non-zero; it should hold the aperture of every integration.
    var : ndarray, shape (ny, nx)
        Variance of the extraction weights and of its outlier rejection (the
        visit average: noise-free).
    exclude : ndarray of bool, shape (ny, nx), optional
        Pixels not used (another order's aperture).
    basis : ndarray, shape (4, ny, nx), optional
        Motion model from :func:`profile_motion` (the profile of integration
        ``i`` is ``profile + sum_k X_ik basis_k``, ``X`` from
        :func:`motion_regressors`); None: the same profile for every integration.

    Examples
    --------
    >>> import numpy as np
    >>> frame = np.exp(-0.5 * ((np.arange(20.0)[:, None] - 9.6) / 1.2) ** 2).repeat(50, 1)
    >>> centre = np.full(50, 9.6)
    >>> model = OrderProfile(centre, spatial_profile(frame, centre, 4.0)[0], 4.0, frame + 1.0)
    >>> model.profile.shape, model.basis is None
    ((20, 50), True)
    """

    centre: np.ndarray
    profile: np.ndarray
    halfwidth: float
    var: np.ndarray
    exclude: np.ndarray | None = None
    basis: np.ndarray | None = None


def spatial_profile(frame, centre, halfwidth: float, window: int = 15, polyorder: int = 2,
                    max_drift: float = 1.0, exclude=None, var=None):
    """Normalised spatial profile of one order from the visit-average frame.

    The pixels of each column of ``frame`` that touch the window
    ``[centre - halfwidth, centre + halfwidth]`` are clipped at zero and divided
    by their sum; each row of that image is then smoothed along dispersion by
    weighted local polynomials of ``polyorder`` over ``window`` columns
    (Horne's polynomial fits along dispersion). Where the trace crosses more
    than ``max_drift`` rows within a window (steep SOSS order-2 end) the
    unsmoothed profile is kept.

    Parameters
    ----------
    frame : ndarray, shape (ny, nx)
        Dispersion-major visit-average frame.
    centre : ndarray, shape (nx,)
        Reference trace (NaN off the detector).
    halfwidth : float
        Half-width (px) of the region where the profile is non-zero.
    window : int
        Smoothing window (odd number of columns; 0 or 1: no smoothing).
    polyorder : int
        Polynomial order of the smoothing.
    max_drift : float
        Largest trace movement (px) across a window for which smoothing is used.
    exclude : ndarray of bool, shape (ny, nx), optional
        Pixels left out of the profile (another order's aperture).
    var : ndarray, shape (ny, nx), optional
        Variance of ``frame``: the local polynomials are weighted by the inverse
        variance of each normalised profile value (``flux**2 / var``), so faint
        columns hardly affect their neighbours (default: flux-squared weights).

    Returns
    -------
    profile : ndarray, shape (ny, nx)
        Non-negative, each column summing to 1 (0 where the trace is undefined).
    dprofile : ndarray, shape (ny, nx)
        Derivative along rows (central differences of the pixel values: a poor
        guide to sub-pixel shifts of an undersampled profile; the optimal
        extraction uses :func:`profile_motion` instead).

    Examples
    --------
    >>> import numpy as np
    >>> frame = 1000 * np.exp(-0.5 * ((np.arange(20.0)[:, None] - 9.6) / 1.2) ** 2).repeat(50, 1)
    >>> prof, dprof = spatial_profile(frame, np.full(50, 9.6), 4.0)
    >>> prof.sum(0)[:3], np.flatnonzero(prof[:, 0] > 0)
    (array([1., 1., 1.]), array([ 6,  7,  8,  9, 10, 11, 12, 13, 14]))
    """
    ny, nx = frame.shape
    rows, w = window_rows(centre, halfwidth, ny)
    cols = np.broadcast_to(np.arange(nx), rows.shape)
    img = np.zeros((ny, nx))
    inwin = w > 0  # whole pixels: the optimal weights use each pixel's full profile value
    vals = gather(frame, rows)[inwin]
    img[rows[inwin], cols[inwin]] = np.clip(np.nan_to_num(vals), 0, None)
    miss = np.zeros((ny, nx), bool)
    miss[rows[inwin], cols[inwin]] = ~np.isfinite(vals)
    if exclude is not None:
        img[exclude] = 0.0
        miss &= ~exclude
    if miss.any():   # never-good pixels: a hole in the profile would dent the spectrum
        img = _fill_missing(img, miss, centre)
    flux = img.sum(0)
    img = _normalise(img)
    if window and window > polyorder + 1 and nx > window:
        sm = _smooth_rows(img, _profile_weights(img > 0, flux, var), window, polyorder)
        sm = np.clip(sm, 0, None) * (img > 0)
        img = np.where(_steep(centre, window, max_drift)[None, :], img, _normalise(sm))
    return img, np.gradient(img, axis=0)


def _fill_missing(img, miss, centre, reach: int = 4):
    """``img`` with its never-good pixels filled from the profile of nearby complete columns.

    A pixel that is bad in every integration (a static hot, dead or low-QE pixel) has no
    value in the visit-average frame. Left at zero, the profile would sum to one without
    it, and every extraction that trusts the profile -- the box's coverage correction,
    the optimal fit -- would miss that pixel's share of the column's flux.

    A pixel's share of its column is a smooth function of its offset from the trace
    centre (the pixel-integrated PSF), even when the PSF is undersampled; the complete
    columns within ``reach`` on each side sample that function at their own sub-pixel
    phases. The missing share is interpolated in that function at the pixel's offset,
    and the column's total is the sum of its good pixels divided by the share they hold.
    """
    out = img.copy()
    complete = ~miss.any(axis=0)
    norm = _normalise(np.where(complete[None, :], img, 0.0))
    ny, nx = img.shape
    rows = np.arange(ny, dtype=float)
    ctr = np.asarray(centre, float)
    for c in np.flatnonzero(miss.any(axis=0)):
        near = [k for k in range(max(0, c - reach), min(nx, c + reach + 1))
                if k != c and complete[k] and np.isfinite(ctr[k]) and norm[:, k].any()]
        if not near or not np.isfinite(ctr[c]):
            continue
        off = np.concatenate([rows - ctr[k] for k in near])
        val = np.concatenate([norm[:, k] for k in near])
        srt = np.argsort(off, kind="stable")
        rows_c = np.flatnonzero(miss[:, c])
        share = np.interp(rows_c - ctr[c], off[srt], val[srt], left=0.0, right=0.0)
        held = 1.0 - share.sum()
        if not 0.05 < held <= 1.0:
            continue   # most of the column is missing: leave it for the box/optimal checks
        out[rows_c, c] = share * img[:, c].sum() / held
    return out


def _profile_weights(support, flux, var):
    """Inverse variance of normalised-profile values (``flux**2 / var``), 0 off ``support``."""
    v = np.ones(support.shape) if var is None else np.nan_to_num(np.asarray(var, float), nan=np.inf)
    f2 = np.asarray(flux, float)[None, :] ** 2
    return np.where(support, f2 / np.where(v > 0, v, np.inf), 0.0)


def _steep(centre, window: int, max_drift: float):
    """Columns where the trace crosses more than ``max_drift`` rows within ``window``."""
    slope = np.abs(np.gradient(np.nan_to_num(centre)))
    return (slope * window > max_drift) | ~np.isfinite(centre)


def _smooth_rows(y, w, window: int, order: int):
    """Weighted local polynomials of ``order`` over ``window`` columns along each row of ``y``.

    The moments ``sum w t^k`` and ``sum w t^k y`` of the window (``t`` the
    offset from the centre column) are correlations with ``t^k`` kernels, so
    every pixel's local fit is one small linear solve, vectorised (closed
    form up to order 2). ``y`` may have leading axes (images smoothed with the
    same weights ``w``). Where the weights cannot fix the polynomial the
    weighted mean of the window is used, and 0 where there is no weight at all.
    """
    from scipy.ndimage import correlate1d

    window = int(window) | 1
    t = np.arange(-(window // 2), window // 2 + 1, dtype=float)
    y = np.nan_to_num(np.asarray(y, float))
    m = [correlate1d(w, t**k, axis=-1, mode="constant") for k in range(2 * order + 1)]
    r = [correlate1d(w * y, t**k, axis=-1, mode="constant") for k in range(order + 1)]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(m[0] > 0, r[0] / m[0], 0.0)
        if order == 0:
            return mean
        if order <= 2:   # first row of the inverse of the Hankel moment matrix (Cramer)
            if order == 1:
                c, det = (m[2], -m[1]), m[0] * m[2] - m[1] ** 2
                scale = m[0] * m[2]
            else:
                c = (m[2] * m[4] - m[3] ** 2, m[2] * m[3] - m[1] * m[4], m[1] * m[3] - m[2] ** 2)
                det = m[0] * c[0] + m[1] * c[1] + m[2] * c[2]
                scale = m[0] * m[2] * m[4]
            fit = sum(ck * rk for ck, rk in zip(c, r)) / det
            return np.where(det > 1e-9 * scale, fit, mean)
    n = order + 1
    lhs = np.stack([np.stack([m[i + j] for j in range(n)], -1) for i in range(n)], -2)
    ok = np.linalg.matrix_rank(lhs) == n
    lhs[~ok] = np.eye(n)
    rhs = np.stack(r, -1)
    coef = np.linalg.solve(np.broadcast_to(lhs, rhs.shape[:-1] + lhs.shape[-2:]), rhs[..., None])
    return np.where(ok, coef[..., 0, 0], mean)


def _normalise(img):
    s = img.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, img / s, 0.0)


# ------------------------------------------------------------- motion model
#: terms of the profile motion model (:func:`motion_regressors`)
MOTION_TERMS = ("offset", "shift", "shift2", "width")


def motion_regressors(centre, ref_centre, width=None):
    """Regressors of the profile motion model: ``1, dy, dy**2, width``.

    Parameters
    ----------
    centre : array_like, shape (nb, nx)
        Per-integration trace.
    ref_centre : array_like, shape (nx,)
        Reference trace.
    width : array_like, shape (nb,), optional
        Width regressor of each integration (from :func:`profile_motion`;
        0 if not given).

    Returns
    -------
    ndarray, shape (4, nb, nx)
        ``dy = centre - ref_centre``, 0 where either trace is undefined.

    Examples
    --------
    Two integrations, two columns (the second undefined in the second integration):

    >>> import numpy as np
    >>> x = motion_regressors(np.array([[10.1, 10.2], [9.9, np.nan]]), np.full(2, 10.0),
    ...                       np.array([0.5, -0.5]))
    >>> x.shape, x[1].round(2).tolist()
    ((4, 2, 2), [[0.1, 0.2], [-0.1, 0.0]])
    """
    dy = np.asarray(centre, float) - np.asarray(ref_centre, float)
    dy = np.where(np.isfinite(dy), dy, 0.0)
    wd = np.zeros(dy.shape) if width is None else np.broadcast_to(
        np.nan_to_num(np.asarray(width, float))[:, None], dy.shape)
    return np.stack([np.ones_like(dy), dy, dy * dy, wd])


class _MotionFit:
    """Per-pixel regression, over integrations, of one order's profile on the motion regressors.

    For integration ``i`` and band pixel ``(r, x)`` the regressed value is
    ``y = (d - s P) / (L F)``: ``s`` the column's band sum (bad pixels
    corrected with the profile ``P``), ``F`` the reference frame's band sum
    and ``L`` the integration's white-light level (a noise-free divisor, so
    the regression stays linear in the data). The coefficients ``B`` give the
    profile of integration ``i`` as ``P + sum_k X_ik B_k`` (they sum to zero
    over a column). The width regressor of the first pass is the sharpness
    ``sum(P d) / sum(s)`` over the order; the second pass fits it instead
    (:meth:`_width_fit`).
    """

    def __init__(self, profile, frame, var_ref, ref_centre, halfwidth, exclude, nint):
        self.ref = np.asarray(ref_centre, float)
        self.rows, w = window_rows(self.ref, halfwidth, profile.shape[0])
        self.band = w > 0
        if exclude is not None:
            self.band &= ~gather(exclude, self.rows)
        self.p = np.where(self.band, gather(profile, self.rows), 0.0)
        raw = gather(frame, self.rows)
        fin = np.isfinite(raw) & self.band
        fr = np.where(fin, raw, 0.0)
        # a never-good pixel has no frame value: the column's flux is that of its good
        # pixels over the profile share they hold (the profile has the missing pixel filled)
        held = np.where(fin, self.p, 0.0).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.flux = np.where(held > 0.05, fr.sum(0) / np.where(held > 0, held, 1.0)
                                 * np.where(self.band, self.p, 0.0).sum(0), fr.sum(0))
        v = np.where(self.band, np.nan_to_num(gather(var_ref, self.rows)), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):   # expected variance of y
            self.var_y = np.where(self.band, (v * (1 - 2 * self.p) + self.p**2 * v.sum(0))
                                  / self.flux**2, np.inf)
            self.ivar_y = np.where(self.var_y > 0, 1.0 / self.var_y, 0.0)
        lit = self.flux > 0
        self.sharp_ref = (self.p * fr)[:, lit].sum() / max(self.flux[lit].sum(), 1e-300)
        self.width = np.zeros(nint)
        k = len(MOTION_TERMS)
        self.xtx = np.zeros((k, k) + self.p.shape)
        self.xty = np.zeros((k,) + self.p.shape)
        self.yy = np.zeros(self.p.shape)
        self.coef = None

    def add(self, i0, data, var, good, centre, clip: float):
        """Accumulate integrations ``i0:i0 + len(data)`` (a block of :func:`iter_blocks`)."""
        d = gather(data, self.rows).astype(float)
        v = gather(var, self.rows).astype(float)
        ok = gather(good, self.rows) & np.isfinite(d) & np.isfinite(v) & self.band
        d = np.where(ok, d, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = (self.p * ok).sum(1)
            s = d.sum(1) / frac                       # band sum, bad pixels corrected
            col = (frac > 0.8) & (self.flux > 0) & np.isfinite(np.asarray(centre, float))
            level = np.where(col, s, 0).sum(1) / np.where(col, self.flux, 0).sum(1)
            scale = level[:, None] * self.flux        # noise-free column flux
            y = (d - s[:, None, :] * self.p) / scale[:, None, :]
            sig = np.sqrt(v) / scale[:, None, :]
            full = col & (frac > 0.999)
            sharp = (np.where(full, (self.p * d).sum(1), 0).sum(1) / np.where(full, s, 0).sum(1)
                     - self.sharp_ref)
        x = motion_regressors(centre, self.ref, np.where(np.isfinite(sharp), sharp, 0.0))
        use = ok & (col & (scale > 0))[:, None, :] & np.isfinite(y) & np.isfinite(sig)
        if self.coef is None:   # the profile share changes by at most -P ... 1 - P
            use &= (y >= -self.p - clip * sig) & (y <= 1 - self.p + clip * sig)
        else:                   # second pass: against the first pass's model
            use &= np.abs(y - np.einsum("kix,krx->irx", x, self.coef)) <= clip * sig + 0.1 * self.p
            x[3] = self._width_fit(y, x, use)[:, None]
        self.width[i0:i0 + len(d)] = x[3, :, 0]
        y = np.where(use, y, 0.0)
        # sums over the integrations: one small matrix product per column
        pairs = [(k, j) for k in range(len(x)) for j in range(k + 1)]
        xx = np.stack([x[k] * x[j] for k, j in pairs]).transpose(2, 0, 1)       # (nx, pairs, nb)
        sums = np.matmul(xx, use.transpose(2, 0, 1).astype(float))              # (nx, pairs, K)
        for (k, j), s_kj in zip(pairs, np.moveaxis(sums, 1, 0)):
            self.xtx[k, j] += s_kj.T
            if j != k:
                self.xtx[j, k] += s_kj.T
        self.xty += np.matmul(x.transpose(2, 0, 1), y.transpose(2, 0, 1)).transpose(1, 2, 0)
        self.yy += (y * y).sum(0)

    def _width_fit(self, y, x, use):
        """Width regressor of each integration fitted with the first pass's width term.

        The sharpness is a noisy proxy (it weights pixels by the profile,
        whatever their noise); the least-squares amplitude of the width
        coefficients in each integration's residual from the shift terms,
        weighted by the expected noise, is the least noisy estimate.
        """
        resid = np.where(use, y - np.einsum("kix,krx->irx", x[:3], self.coef[:3]), 0.0)
        wv = self.ivar_y * self.coef[3] * use
        den = (wv * self.coef[3]).sum((1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, (wv * resid).sum((1, 2)) / den, 0.0)

    def solve(self):
        """Solve the accumulated regression (and reset the accumulators for another pass).

        Sets ``coef`` (k, K, nx); ``centred``: the fitted change at the
        pixel's mean regressors followed by the slopes; ``err``: their
        standard errors (from the residual scatter); ``mean``: the mean
        regressors.
        """
        a = np.moveaxis(self.xtx, (0, 1), (-2, -1))
        k = a.shape[-1]
        dg = np.sqrt(np.clip(np.diagonal(a, axis1=-2, axis2=-1), 0, None))
        dg = np.where(dg > 0, dg, 1.0)
        ainv = np.linalg.inv(a / (dg[..., :, None] * dg[..., None, :]) + 1e-9 * np.eye(k))
        ainv /= dg[..., :, None] * dg[..., None, :]
        b = np.moveaxis(self.xty, 0, -1)
        coef = (ainv @ b[..., None])[..., 0]
        n = a[..., 0, 0]
        few = n < k + 2
        coef[few] = 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n[..., None] > 0, a[..., 0, :] / n[..., None], 0.0)
            s2 = np.clip(self.yy - (coef * b).sum(-1), 0, None) / np.maximum(n - k, 1)
        centred = coef.copy()
        centred[..., 0] = (mean * coef).sum(-1)
        cov = np.diagonal(ainv, axis1=-2, axis2=-1).copy()
        cov[..., 0] = np.einsum("...i,...ij,...j->...", mean, ainv, mean)
        err = np.sqrt(np.clip(cov, 0, None) * s2[..., None])
        err[few] = np.inf
        self.coef, self.centred = np.moveaxis(coef, -1, 0), np.moveaxis(centred, -1, 0)
        self.err, self.mean = np.moveaxis(err, -1, 0), np.moveaxis(mean, -1, 0)
        self.s2, self.dof = np.where(few, np.nan, s2), np.where(few, 0, n - k)
        for acc in (self.xtx, self.xty, self.yy):
            acc[:] = 0.0


def profile_motion(cube, traces: dict, profiles: dict, frame, window: int = 15,
                   clip: float = 10.0, max_integrations: int = 128) -> dict:
    """How each pixel's share of the column flux follows the trace motion.

    For every pixel of each order's profile region the share of its column's
    flux is regressed, over the integrations, on ``1, dy, dy**2, width``
    (:func:`motion_regressors`: ``dy`` the integration's trace offset from
    the reference trace at that column, ``width`` a PSF-width amplitude
    measured on the whole order), in two passes: a first one on at most
    ``max_integrations`` (8 chunks spread over the visit), then one over all
    integrations leaving out values more than ``clip`` sigma from the first
    fit (cosmic rays) and with each integration's width fitted with the first
    pass's width term. Each coefficient image is smoothed along the
    dispersion like the profile, and the smooth version replaces a pixel's
    own coefficient only where they differ by less than its error (positive
    James-Stein shrinkage of the difference): faint pixels get the smooth,
    low-noise model and bright ones keep their own (the pixel-scale structure
    of an undersampled PSF, flat-field residuals).

    The profile of integration ``i`` is ``profile + sum_k X_ik B_k``: it
    follows sub-pixel motion (to second order) and width changes pixel by
    pixel, with the noise of a visit average rather than that of a profile
    fitted to one integration (which follows the integration's noise as well
    as its motion: across many columns that extraction drifts back to a box).

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry.
    traces : dict
        Order -> (N, nx) per-integration traces.
    profiles : dict
        Order -> :class:`OrderProfile` (reference trace, visit profile, the
        half-width it was built with, the visit-average variance and the
        excluded pixels; its ``basis`` is not used).
    frame : ndarray, shape (ny, nx)
        Visit-average frame.
    window : int
        Smoothing window along the dispersion (columns; 0: none).
    clip : float
        Rejection threshold (sigma) of the second pass.
    max_integrations : int
        Integrations used by the first pass.

    Returns
    -------
    dict
        Order -> ``(basis, width, excess)``: basis (4, ny, nx), the terms of
        :data:`MOTION_TERMS` for :func:`~tsocontainer.spectra.extract.optimal_block`; the width regressor of
        every integration (N,); the variance (ny, nx) of the residual scatter
        beyond the expected noise, where significant (1/f residuals: added to
        the weights' variance).

    Examples
    --------
    A noiseless trace moving by up to 0.2 px: the shift term carries the motion.

    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> rows = np.arange(20.0)[None, :, None]
    >>> dy = 0.1 * np.array([-2, -1, 0, 1, 2, 0, 1, -1])
    >>> cube = (1e4 * np.exp(-0.5 * ((rows - 9.6 - dy[:, None, None]) / 0.8) ** 2)).repeat(40, 2)
    >>> frame, var = cube.mean(0), cube.mean(0) + 1.0
    >>> centre = np.full(40, 9.6)
    >>> model = OrderProfile(centre, spatial_profile(frame, centre, 4.0, window=0)[0], 4.0, var)
    >>> traces = {1: centre + dy[:, None]}
    >>> basis, width, excess = profile_motion(CubeSource.from_arrays(cube, cube + 1.0), traces,
    ...                                       {1: model}, frame, window=0)[1]
    >>> basis.shape, bool(np.abs(basis[1]).max() > 0.1)
    ((4, 20, 40), True)
    """
    fits = {o: _MotionFit(p.profile, frame, p.var, p.centre, p.halfwidth, p.exclude, cube.N)
            for o, p in profiles.items()}
    for ranges in (_spread_ranges(cube.N, max_integrations), None):
        for i0, i1, data, var, good in iter_blocks(cube, desc="profile motion", finite=False,
                                                   ranges=ranges):
            for o, fit in fits.items():
                fit.add(i0, data, var, good, np.asarray(traces[o][i0:i1], float), clip)
        for fit in fits.values():
            fit.solve()
    return {o: (_motion_basis(fit, frame.shape, profiles[o].centre, window), fit.width,
                _excess_variance(fit, frame.shape, window))
            for o, fit in fits.items()}


def borrow_incomplete_columns(profile, basis, frame, centre, halfwidth: float, exclude=None,
                              reach: int = 3, max_drift: float = 0.1, max_ratio: float = 2.0):
    """Profile and motion basis of columns with a never-good pixel, taken from their neighbours.

    In a column whose profile region holds a pixel that is bad in every
    integration, the motion regression of the good pixels is made against the
    column's flux corrected with the visit profile's share of the missing pixel;
    an error of that share (the visit-average frame of an undersampled PSF that
    moves is not the mean of the data to better than ~1 %) goes into their
    coefficients, and the optimal fit of the column, dominated by the core pixel
    next to the hole, comes out 2-2.5 % off (PRISM, MIRI LRS). Where the trace is
    nearly straight, the complete columns within ``reach`` have the same sub-pixel
    phase and PSF: the whole column (profile and every basis term) is their
    straight-line fit along the dispersion, evaluated at the column, so that the
    optimal extraction fits the column's good pixels with its neighbours' model of
    every integration. A neighbour is used if it is complete, its trace is within
    ``max_drift`` px of the column's and its flux within a factor ``max_ratio`` of
    the column's (the column's good pixels over the share they hold in the
    neighbour's profile): faint neighbours, whose profiles are mostly noise (the
    ends of the spectrum), are not. Columns without such neighbours on both
    sides keep their own model.

    Parameters
    ----------
    profile : ndarray, shape (ny, nx)
        Visit profile (:func:`spatial_profile`).
    basis : ndarray, shape (K, ny, nx) or None
        Motion basis (:func:`profile_motion`).
    frame : ndarray, shape (ny, nx)
        Visit-average frame (NaN where a pixel is never good).
    centre : ndarray, shape (nx,)
        Reference trace the profile was built around.
    halfwidth : float
        Half-width (px) of the profile region.
    exclude : ndarray of bool, shape (ny, nx), optional
        Pixels outside the profile (another order's aperture).
    reach : int
        Neighbouring columns on each side.
    max_drift : float
        Largest trace offset (px) between the column and a neighbour used.
    max_ratio : float
        Largest flux ratio (either way) between the column and a neighbour used.

    Returns
    -------
    profile, basis : ndarray
        Copies with the incomplete columns replaced (``basis`` None if given None).
    borrowed : ndarray of int
        The columns replaced.

    Examples
    --------
    A never-good pixel at the trace centre of column 5: its column gets the
    profile of its neighbours.

    >>> import numpy as np
    >>> frame = np.exp(-0.5 * ((np.arange(12.0)[:, None] - 5.5) / 0.8) ** 2).repeat(11, 1)
    >>> frame[5, 5] = np.nan
    >>> prof = frame / np.nansum(frame, 0)
    >>> new, _, cols = borrow_incomplete_columns(prof, None, frame, np.full(11, 5.5), 4.0)
    >>> cols, bool(np.allclose(new[:, 5], new[:, 4], atol=1e-6))
    (array([5]), True)
    """
    ny, nx = profile.shape
    ctr = np.asarray(centre, float)
    rows, w = window_rows(ctr, halfwidth, ny)
    band = w > 0
    if exclude is not None:
        band &= ~gather(exclude, rows)
    vals = gather(frame, rows)
    fin = band & np.isfinite(vals)
    incomplete = (band & ~fin).any(axis=0)
    flux = np.where(fin, vals, 0.0).sum(0)
    usable = ~incomplete & np.isfinite(ctr) & (profile.sum(0) > 0) & (flux > 0)
    prof = np.array(profile, float)
    bas = None if basis is None else np.array(basis, float)
    done = []
    for c in np.flatnonzero(incomplete & np.isfinite(ctr)):
        cand = [k for k in range(max(0, c - reach), min(nx, c + reach + 1))
                if k != c and usable[k] and abs(ctr[k] - ctr[c]) <= max_drift]
        with np.errstate(invalid="ignore", divide="ignore"):   # the column's flux, per neighbour
            implied = flux[c] / profile[rows[:, c][fin[:, c]]][:, cand].sum(0)
        near = np.array(cand)[(flux[cand] < max_ratio * implied)
                              & (implied < max_ratio * flux[cand])]
        if near.size < 2 or near.min() > c or near.max() < c:
            continue
        t = near - near.mean()   # least-squares line through the neighbours, at column c
        a = 1.0 / near.size + t * (c - near.mean()) / (t @ t)
        inside = np.zeros(ny, bool)
        inside[rows[:, c][band[:, c]]] = True
        col = np.where(inside, profile[:, near] @ a, 0.0).clip(0, None)
        if col.sum() <= 0:
            continue
        prof[:, c] = col / col.sum()
        if bas is not None:
            bas[:, :, c] = np.where(inside, basis[:, :, near] @ a, 0.0)
        done.append(c)
    return prof, bas, np.array(done, int)


def _excess_variance(fit, shape, window: int, nsigma: float = 3.0):
    """Variance (data units) of the residual scatter beyond the expected noise, where significant.

    The residual variance of each pixel's regression minus the expected
    variance (photon + read), converted to data units and averaged along
    the dispersion over ``2 window + 1`` columns (what it is meant to catch,
    1/f residuals, is a level that changes slowly along the dispersion);
    kept where it exceeds ``nsigma`` times its error, 0 elsewhere.
    """
    from scipy.ndimage import correlate1d

    ny, nx = shape
    cols = np.broadcast_to(np.arange(nx), fit.rows.shape)
    sel = (fit.rows[fit.band], cols[fit.band])
    f2 = fit.flux[None] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        exc = np.zeros((ny, nx))
        exc[sel] = ((fit.s2 - fit.var_y) * f2)[fit.band]
        # error of a variance estimated from dof values: var * sqrt(2 / dof)
        w = np.zeros((ny, nx))
        w[sel] = np.nan_to_num(fit.dof / (2.0 * (fit.var_y * f2) ** 2))[fit.band]
        w = np.where(np.isfinite(exc), w, 0.0)
        kern = np.ones(2 * int(window) + 1)
        sw = correlate1d(w, kern, axis=-1, mode="constant")
        mean = correlate1d(w * np.nan_to_num(exc), kern, axis=-1, mode="constant") / sw
        sig = 1.0 / np.sqrt(sw)
    return np.where((sw > 0) & (mean > nsigma * sig), mean, 0.0) * (w > 0)


def _spread_ranges(n: int, most: int):
    """At most ``most`` of ``n`` integrations as 8 contiguous chunks spread over the visit."""
    if n <= most:
        return None
    length = max(1, most // 8)
    starts = np.unique(np.linspace(0, n - length, 8).round().astype(int))
    return [(int(a), int(a) + length) for a in starts]


def _motion_basis(fit, shape, ref_centre, window, polyorder: int = 2, max_drift: float = 1.0):
    """Basis images of a solved :class:`_MotionFit`, smoothed where that is within the errors."""
    ny, nx = shape
    cols = np.broadcast_to(np.arange(nx), fit.rows.shape)
    sel = (fit.rows[fit.band], cols[fit.band])
    cen = np.zeros((len(MOTION_TERMS), ny, nx))
    err = np.full(cen.shape, np.inf)
    mean = np.zeros(cen.shape)
    cen[:, sel[0], sel[1]] = fit.centred[:, fit.band]
    err[:, sel[0], sel[1]] = fit.err[:, fit.band]
    mean[:, sel[0], sel[1]] = fit.mean[:, fit.band]
    if window and window > polyorder + 1 and nx > window:
        sup = np.zeros((ny, nx), bool)
        sup[sel] = True
        with np.errstate(invalid="ignore", divide="ignore"):
            wts = np.where(sup & (err[0] > 0) & np.isfinite(err[0]), 1.0 / err[0] ** 2, 0.0)
            sm = _smooth_rows(cen, wts, window, polyorder) * sup
            diff = cen - sm
            keep = np.nan_to_num(np.clip(1.0 - err**2 / diff**2, 0.0, 1.0))
        cen = np.where(_steep(ref_centre, window, max_drift)[None, None, :], cen, sm + keep * diff)
    cen[0] -= (mean[1:] * cen[1:]).sum(0)   # offset term of the raw (uncentred) regressors
    return cen
