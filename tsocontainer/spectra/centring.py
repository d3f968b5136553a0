"""Where the light of a column is: centres, widths and curves through them.

The measurements on frames that the traces of a visit
(:mod:`tsocontainer.spectra.trace`) are built from. Everything here works in the
*dispersion-major* view (see :mod:`tsocontainer.spectra.blocks`): the last axis
runs along the dispersion ("columns", ``x``), the one before it across ("rows",
``y``).

Centring methods (per column, vectorised over columns and frames):

* ``centroid``: flux-weighted centroid in a window of fractional-edge pixels,
  re-centred on its own result until it converges (a symmetric profile's
  centre is the fixed point, whatever the window truncates);
* ``edgetrigger``: the midpoint of the rising and falling edges of the
  profile (derivative lobes), robust to SOSS's double-peaked profile;
* ``gaussian``: a Gaussian plus constant fitted to every column at once
  (batched Levenberg-Marquardt).

Along the dispersion, :func:`walk_trace` follows a trace without a model and
:func:`smooth_trace` draws a robust smooth curve (spline or polynomial)
through raw centres.
"""
from __future__ import annotations

import numpy as np

from tsocontainer._util import check_option
from tsocontainer.arrays.views import gather, nanmedian_short, window_rows

__all__ = ["TRACE_METHODS", "SMOOTH_METHODS", "column_centres", "local_background", "walk_trace",
           "smooth_trace"]

TRACE_METHODS = ("centroid", "edgetrigger", "gaussian")
SMOOTH_METHODS = ("spline", "poly", "none")
#: FWHM of a Gaussian in units of its sigma
FWHM_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


# -------------------------------------------------------- column centres
def _centroid(vals, rows, w):
    f = w.astype(np.float32) * vals
    s = f.sum(-2, dtype=np.float64)
    y = rows.astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (f * y).sum(-2, dtype=np.float64) / s
        m2 = (f * y * y).sum(-2, dtype=np.float64) / s - c * c
    good = (s > 0) & np.isfinite(c)
    return np.where(good, c, np.nan), np.sqrt(np.where(good & (m2 > 0), m2, np.nan)), s


def _edges(frames, centre, hw, lobe: int = 3):
    """Midpoint and distance of the profile's rising and falling edges.

    The derivative is the half-pixel difference ``f[r+1] - f[r]``; each edge
    is the centroid of the derivative's lobe (``lobe`` samples either side of
    its extremum), which is much less sensitive to the sampling phase than a
    parabola through three samples.
    """
    ny = frames.shape[-2]
    rows, w = window_rows(centre, hw + 1.0, ny)
    vals = gather(frames, rows) * (w > 0)
    d = vals[..., 1:, :] - vals[..., :-1, :]
    r = rows[..., :-1, :] + 0.5
    c = np.asarray(centre, float)[..., None, :]
    valid = (w[..., 1:, :] > 0) & (w[..., :-1, :] > 0) & (rows[..., 1:, :] > rows[..., :-1, :])
    pos = []
    for sign, side in ((1.0, r <= c + 0.5), (-1.0, r >= c - 0.5)):
        lobe_vals = np.clip(sign * np.where(valid, d, 0.0), 0.0, None)
        k = np.argmax(np.where(side, lobe_vals, -1.0), axis=-2)[..., None, :]
        num = den = 0.0
        for j in range(-lobe, lobe + 1):
            kk = np.clip(k + j, 0, d.shape[-2] - 1)
            v = np.take_along_axis(lobe_vals, kk, axis=-2)[..., 0, :]
            num = num + v * np.take_along_axis(r, kk, axis=-2)[..., 0, :]
            den = den + v
        with np.errstate(invalid="ignore", divide="ignore"):
            pos.append(num / den)
    centre_new = 0.5 * (pos[0] + pos[1])
    width = pos[1] - pos[0]
    bad = ~np.isfinite(centre_new) | ~(width > 0)
    return np.where(bad, np.nan, centre_new), np.where(bad, np.nan, width / FWHM_SIGMA)


def _gaussian_fit(vals, rows, w, c0, s0, niter=12):
    """Batched Levenberg-Marquardt fit of A exp(-(y-mu)^2/2s^2) + B per column."""
    y = rows.astype(float)
    use = w > 0
    v = np.where(use, vals, 0.0).astype(float)
    b = np.where(use, v, np.inf).min(-2)
    b = np.where(np.isfinite(b), b, 0.0)
    a = np.where(use, v, -np.inf).max(-2) - b
    p = np.stack([a, np.nan_to_num(c0), np.nan_to_num(np.clip(s0, 0.3, None), nan=1.0), b], -1)
    lam = np.full(p.shape[:-1], 1e-3)
    for _ in range(niter):
        a_, mu, s, b_ = (p[..., i][..., None, :] for i in range(4))
        z = (y - mu) / s
        g = np.exp(-0.5 * z * z)
        r = (v - (a_ * g + b_)) * use
        jac = np.stack([g, a_ * g * z / s, a_ * g * z * z / s, np.ones_like(g)], -1) * use[..., None]
        jtj = np.einsum("...kni,...knj->...nij", jac, jac)
        jtr = np.einsum("...kni,...kn->...ni", jac, r)
        jtj = jtj + lam[..., None, None] * np.eye(4) * np.diagonal(jtj, axis1=-2, axis2=-1)[..., None, :]
        try:
            step = np.linalg.solve(jtj + 1e-12 * np.eye(4), jtr[..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        p = p + np.where(np.isfinite(step), step, 0.0)
        p[..., 2] = np.clip(np.abs(p[..., 2]), 0.2, None)
    mu, sig = p[..., 1], p[..., 2]
    lo, hi = y.min(-2), y.max(-2)
    bad = (p[..., 0] <= 0) | (mu < lo) | (mu > hi) | ~np.isfinite(mu)
    return np.where(bad, np.nan, mu), np.where(bad, np.nan, sig)


def column_centres(frames, guess, method: str = "centroid", halfwidth: float = 5.0,
                   niter: int = 8, tol: float = 1e-4):
    """Centre and width of the profile in every column (and frame).

    Parameters
    ----------
    frames : ndarray, shape (..., ny, nx)
        Dispersion-major frame(s); bad pixels already replaced.
    guess : array_like, shape broadcastable to (..., nx)
        Start centres (row coordinate).
    method : {'centroid', 'edgetrigger', 'gaussian'}
        See the module docstring.
    halfwidth : float
        Window half-width (px).
    niter : int
        Re-centring iterations (``centroid``, ``edgetrigger``).
    tol : float
        Stop when no centre moves by more than this (px).

    Returns
    -------
    centre : ndarray, shape (..., nx)
        NaN where the column has no usable signal.
    sigma : ndarray, shape (..., nx)
        Gaussian-equivalent width (px): the windowed second moment
        (``centroid``), the fitted sigma (``gaussian``), or the edge distance
        divided by 2.355 (``edgetrigger``).
    flux : ndarray, shape (..., nx)
        Flux inside the final window.

    Examples
    --------
    A Gaussian profile (sigma 1.5 px) centred on row 12.3 in every column:

    >>> import numpy as np
    >>> rows = np.arange(30.0)[:, None]
    >>> frame = np.exp(-0.5 * ((rows - 12.3) / 1.5) ** 2).repeat(4, 1)
    >>> for method in TRACE_METHODS:
    ...     c, sigma, flux = column_centres(frame, np.full(4, 11.0), method, halfwidth=6.0)
    ...     print(method, np.round(c[0], 3), np.round(sigma[0], 2))
    centroid 12.3 1.5
    edgetrigger 12.284 1.61
    gaussian 12.3 1.5
    """
    check_option(method, TRACE_METHODS, "method")
    frames = np.asarray(frames)
    ny = frames.shape[-2]
    c = np.broadcast_to(np.asarray(guess, float), frames.shape[:-2] + frames.shape[-1:]).copy()
    if method == "edgetrigger":
        for _ in range(max(1, niter // 2)):
            new, sig = _edges(frames, c, halfwidth)
            moved = np.nanmax(np.abs(new - c), initial=0.0)
            c = np.where(np.isfinite(new), new, c)
            if moved < tol:
                break
        rows, w = window_rows(c, halfwidth, ny)
        flux = (w * gather(frames, rows)).sum(-2)
        return np.where(np.isfinite(sig), c, np.nan), sig, flux
    for _ in range(max(1, niter)):
        rows, w = window_rows(c, halfwidth, ny)
        new, sig, flux = _centroid(gather(frames, rows), rows, w)
        new = np.clip(new, c - halfwidth, c + halfwidth)
        moved = np.nanmax(np.abs(new - c), initial=0.0)
        c = np.where(np.isfinite(new), new, c)
        if moved < tol:
            break
    if method == "gaussian":
        rows, w = window_rows(c, halfwidth, ny)
        mu, sig = _gaussian_fit(gather(frames, rows), rows, w, c, sig)
        return mu, sig, flux
    bad = ~np.isfinite(sig)
    return np.where(bad, np.nan, c), sig, flux


def local_background(frames, centre, halfwidth: float, width: int):
    """Median of the bands ``halfwidth < |y - centre| <= halfwidth + width`` per column.

    Parameters
    ----------
    frames : ndarray, shape (..., ny, nx)
        Dispersion-major frame(s).
    centre : ndarray, shape broadcastable to (..., nx)
        Trace centres.
    halfwidth : float
        Inner edge of the bands.
    width : int
        Band width (px); 0 returns zeros.

    Returns
    -------
    ndarray, shape (..., nx)
        Background per column (0 where no band pixel is on the detector).

    Examples
    --------
    >>> import numpy as np
    >>> rows = np.arange(30.0)[:, None]
    >>> frame = 5.0 + np.exp(-0.5 * ((rows - 12.3) / 1.5) ** 2).repeat(4, 1)
    >>> local_background(frame, np.full(4, 12.3), 8.0, 4)
    array([5., 5., 5., 5.])
    """
    frames = np.asarray(frames)
    shape = frames.shape[:-2] + frames.shape[-1:]
    if width <= 0:
        return np.zeros(shape)
    ny = frames.shape[-2]
    c = np.broadcast_to(np.nan_to_num(np.asarray(centre, float), nan=-1e6), shape)
    off = np.r_[-halfwidth - np.arange(1, width + 1), halfwidth + np.arange(1, width + 1)]
    rows = np.rint(c[..., None, :] + off[:, None])
    ok = (rows >= 0) & (rows <= ny - 1)
    vals = np.where(ok, gather(frames, np.clip(rows, 0, ny - 1).astype(np.intp)), np.nan)
    return np.nan_to_num(nanmedian_short(vals, axis=-2))


def walk_trace(frame, start: int | None = None, start_row: float | None = None,
               halfwidth: float = 5.0, step: int = 8):
    """Follow a trace column by column from a start column (no model needed).

    The centre is found in the brightest column (or ``start``), then the
    window moves outward ``step`` columns at a time, each chunk started from
    the linear extrapolation of the previous two (as in the JWebbinar
    notebooks).

    Parameters
    ----------
    frame : ndarray, shape (ny, nx)
        Dispersion-major frame (e.g. the median frame).
    start : int, optional
        Start column (default: the brightest, smoothed over 31 columns).
    start_row : float, optional
        Row of the trace in the start column (default: its brightest row).
    halfwidth : float
        Centroid window half-width.
    step : int
        Columns per chunk.

    Returns
    -------
    ndarray, shape (nx,)
        Raw centres (NaN where lost).

    Examples
    --------
    A tilted trace (0.02 px per column) followed from its brightest column:

    >>> import numpy as np
    >>> x = np.arange(200.0)
    >>> frame = np.exp(-0.5 * ((np.arange(30.0)[:, None] - 10.0 - 0.02 * x) / 1.5) ** 2)
    >>> raw = walk_trace(frame, halfwidth=4.0)
    >>> bool(np.nanmax(np.abs(raw - (10.0 + 0.02 * x))) < 0.03)
    True
    """
    from scipy.ndimage import gaussian_filter, uniform_filter1d

    frame = np.nan_to_num(np.asarray(frame, float))
    ny, nx = frame.shape
    smooth = gaussian_filter(frame, (1.0, 2.0))
    if start is None:
        start = int(np.argmax(uniform_filter1d(smooth.sum(0), 31)))
    if start_row is None:
        start_row = float(np.argmax(smooth[:, start]))
    out = np.full(nx, np.nan)
    for direction in (1, -1):
        hist = [(float(start), float(start_row))]
        x0 = start if direction == 1 else start - 1
        while 0 <= x0 < nx:
            x1 = x0 + direction * step
            sl = np.arange(min(x0, x1 - direction), max(x0, x1 - direction) + 1)
            sl = sl[(sl >= 0) & (sl < nx)]
            (xa, ya), (xb, yb) = (hist[-2] if len(hist) > 1 else hist[-1]), hist[-1]
            slope = (yb - ya) / (xb - xa) if xb != xa else 0.0
            c, _, _ = column_centres(smooth[:, sl], yb + slope * (sl - xb), "centroid",
                                     halfwidth, niter=6)
            out[sl] = c
            ym = np.nanmedian(c) if np.isfinite(c).any() else yb + slope * (sl.mean() - xb)
            hist.append((float(sl.mean()), float(np.clip(ym, 0, ny - 1))))
            x0 = x1
    return out


def smooth_trace(x, y, weights=None, method: str = "spline", knot_spacing: float = 64.0,
                 deg: int = 4, nsigma: float = 4.0, niter: int = 5, x_eval=None):
    """Robust smooth curve through raw centres ``y(x)``.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Columns and raw centres (non-finite ``y`` are ignored).
    weights : array_like, shape (n,), optional
        Inverse-variance weights (0 excludes a column).
    method : {'spline', 'poly', 'none'}
        Cubic least-squares spline with knots every ``knot_spacing`` columns,
        Legendre polynomial of degree ``deg``, or no smoothing.
    knot_spacing : float
        Spline knot spacing (px).
    deg : int
        Polynomial degree.
    nsigma : float
        Clip points deviating by more than ``nsigma`` robust sigmas.
    niter : int
        Clipping iterations.
    x_eval : array_like, optional
        Where to evaluate (default ``x``).

    Returns
    -------
    ndarray
        Smoothed centres at ``x_eval`` (NaN outside the fitted range for
        ``none``).

    Examples
    --------
    A straight trace with noise and one wild centre, which the clipping ignores:

    >>> import numpy as np
    >>> x = np.arange(200.0)
    >>> y = 10.0 + 0.02 * x + np.random.default_rng(0).normal(0, 0.05, 200)
    >>> y[50] += 3.0
    >>> fit = smooth_trace(x, y, method="poly", deg=1)
    >>> bool(np.abs(fit - (10.0 + 0.02 * x)).max() < 0.01)
    True
    """
    check_option(method, SMOOTH_METHODS, "smooth")
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    x_eval = x if x_eval is None else np.asarray(x_eval, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float).copy()
    good = np.isfinite(y) & np.isfinite(w) & (w > 0)
    if method == "none":
        return np.interp(x_eval, x[good], y[good], left=np.nan, right=np.nan) if good.any() else np.full(x_eval.shape, np.nan)
    if good.sum() < 4:
        return np.full(x_eval.shape, np.nan)
    keep = good.copy()
    model = None
    for _ in range(max(1, niter)):
        model = _fit_curve(x[keep], y[keep], w[keep], method, knot_spacing, deg)
        res = (y - model(x)) * np.sqrt(w)
        scale = 1.4826 * np.median(np.abs(res[keep]))
        new = good & (np.abs(res) <= nsigma * max(scale, 1e-12))
        if new.sum() < 4 or np.array_equal(new, keep):
            break
        keep = new
    return model(x_eval)


def _fit_curve(x, y, w, method, knot_spacing, deg):
    lo, hi = x.min(), x.max()
    if method == "poly":
        from numpy.polynomial import legendre

        scale = max(hi - lo, 1.0)
        coef = legendre.legfit(2 * (x - lo) / scale - 1, y, min(deg, x.size - 1), w=np.sqrt(w))
        return lambda xe: legendre.legval(2 * (np.asarray(xe, float) - lo) / scale - 1, coef)
    from scipy.interpolate import make_lsq_spline

    nk = max(0, int(np.floor((hi - lo) / knot_spacing)) - 1)
    while True:
        inner = np.linspace(lo, hi, nk + 2)[1:-1]
        t = np.r_[[lo] * 4, inner, [hi] * 4]
        try:
            spl = make_lsq_spline(x, y, t, k=3, w=np.sqrt(w))
            break
        except (ValueError, np.linalg.LinAlgError):
            if nk == 0:
                coef = np.polyfit(x, y, min(3, x.size - 1), w=np.sqrt(w))
                return lambda xe: np.polyval(coef, np.asarray(xe, float))
            nk //= 2
    return lambda xe: spl(np.asarray(xe, float), extrapolate=True)
