"""Trace centres and widths of spectral orders, per column and integration.

Everything here works in the *dispersion-major* view (see
:mod:`tsocontainer.spectra.blocks`): the last axis runs along the dispersion
("columns", ``x``), the one before it across ("rows", ``y``); for MIRI LRS a
trace is the column centre as a function of row. Traces are arrays
``(N, n_disp)`` of cross-dispersion centres, NaN where an order is off the
detector.

Methods (per column, vectorised over columns and integrations):

* ``centroid``: flux-weighted centroid in a window of fractional-edge pixels,
  re-centred on its own result until it converges (a symmetric profile's
  centre is the fixed point, whatever the window truncates);
* ``edgetrigger``: the midpoint of the rising and falling edges of the
  profile (derivative lobes), robust to SOSS's double-peaked profile;
* ``gaussian``: a Gaussian plus constant fitted to every column at once
  (batched Levenberg-Marquardt).

The reference (visit-average) trace is the mode's model trace plus a smooth
offset: the wide-window centres minus the model, smoothed along dispersion
(spline or polynomial) where the order is isolated and extrapolated flat into
columns shared with another order (SOSS). Per-integration traces are the
reference plus a low-order polynomial fitted to the *differences* between
each integration's column centres and the reference's, so method biases
cancel. Shifts and PCA are in :mod:`tsocontainer.spectra.stability`.
"""
from __future__ import annotations

import inspect
import logging
import time as _time

import numpy as np

from tsocontainer._util import check_option
from tsocontainer.arrays.views import dispersion_major, gather, nanmedian_quiet, window_rows
from tsocontainer.spectra.blocks import iter_blocks, reference_frames

__all__ = [
    "MODE_DEFAULTS",
    "TRACE_METHODS",
    "SMOOTH_METHODS",
    "mode_defaults",
    "column_centres",
    "local_background",
    "walk_trace",
    "smooth_trace",
    "guess_trace",
    "trace_reference",
    "trace_references",
    "fit_traces",
    "fit_single_trace",
    # re-exported from _blocks
    "check_option",
    "dispersion_major",
    "window_rows",
    "gather",
    "iter_blocks",
    "reference_frames",
]

log = logging.getLogger(__name__)

TRACE_METHODS = ("centroid", "edgetrigger", "gaussian")
SMOOTH_METHODS = ("spline", "poly", "none")

#: geometry defaults per mode key: centring window half-width (px) of the
#: per-integration measurements, wide window half-width (px) of the absolute
#: reference centres (the whole profile), box aperture full width (px), spline
#: knot spacing along dispersion (px), width (px) of the local-background
#: bands beyond the wide window on both sides (0: no local background).
#: Box widths cover the whole profile: SOSS 40 px (the jwst pipeline's SOSS box
#: width; the double-horned profile with its wings is ~40 px wide), MIRI LRS
#: 10 px (the PSF reaches ~3 px FWHM at 12 micron), NIRSpec 8 px, NIRCam 10 px.
MODE_DEFAULTS = {
    "soss": dict(halfwidth=20.0, ref_halfwidth=20.0, bkg_width=4, box_width=40.0,
                 knot_spacing=128.0),
    "nirspec": dict(halfwidth=4.0, ref_halfwidth=8.0, bkg_width=4, box_width=8.0, knot_spacing=64.0),
    "nircam": dict(halfwidth=5.0, ref_halfwidth=10.0, bkg_width=4, box_width=10.0,
                   knot_spacing=128.0),
    "miri": dict(halfwidth=4.0, ref_halfwidth=10.0, bkg_width=4, box_width=10.0, knot_spacing=48.0),
}
_GENERIC = dict(halfwidth=5.0, ref_halfwidth=10.0, bkg_width=4, box_width=10.0, knot_spacing=64.0)
_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


# ------------------------------------------------------------------ helpers
def mode_defaults(mode) -> dict:
    """Geometry defaults (``halfwidth``, ``box_width``, ``knot_spacing``) of ``mode``."""
    key = getattr(mode, "key", None)
    return dict(MODE_DEFAULTS.get(key, _GENERIC))


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
    return np.where(bad, np.nan, centre_new), np.where(bad, np.nan, width / _FWHM)


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
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nan_to_num(np.nanmedian(vals, axis=-2))


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


def guess_trace(mode, order: int, n_disp: int, meta=None, x_offset: int = 0):
    """Nominal trace of ``order`` from the mode's shipped model, or None.

    For SOSS the pupil-wheel position (``meta["PWCPOS"]``) is passed to the
    mode's trace model, which rotates the traces about their pivots.

    Parameters
    ----------
    mode : Mode or None
        Instrument mode.
    order : int
        Spectral order.
    n_disp : int
        Number of pixels along the dispersion.
    meta : dict, optional
        Header values (``PWCPOS``).
    x_offset : int
        Mode coordinate of dispersion pixel 0.

    Returns
    -------
    ndarray, shape (n_disp,), or None
    """
    if mode is None:
        return None
    func = mode.spec.module.trace_guess
    kwargs = {}
    pw = (meta or {}).get("PWCPOS")
    if pw is not None and "pwcpos" in inspect.signature(func).parameters:
        kwargs["pwcpos"] = float(pw)
    x = np.arange(n_disp, dtype=float) + x_offset
    guess = np.asarray(func(mode, order=order, x=x, **kwargs), float)
    return guess if np.isfinite(guess).any() else None


def _search_offset(frame, guess, halfwidth, search):
    """Offset (px) of ``guess`` that puts the most flux in the window."""
    ny = frame.shape[0]
    offsets = np.arange(-search, search + 0.25, 0.5)
    flux = []
    img = np.nan_to_num(frame)
    for d in offsets:
        rows, w = window_rows(guess + d, halfwidth, ny)
        flux.append(np.sum(w * gather(img, rows)))
    return float(offsets[int(np.argmax(flux))])


def trace_reference(frame, var, guess=None, method: str = "centroid", halfwidth: float = 5.0,
                    smooth: str = "spline", knot_spacing: float = 64.0, deg: int = 4,
                    search: float | None = None, min_snr: float = 3.0, ref_halfwidth=None,
                    clean=None, bkg_width: int = 0):
    """Trace of one order on the visit-average frame.

    The absolute centre of each column is measured with a wide window
    (``ref_halfwidth``: the whole profile, so that an asymmetric profile's
    flux-weighted centroid is found), its difference from the guess is
    smoothed along dispersion, and the smooth difference is added back to the
    guess. Columns that are not ``clean`` (another order within reach) do not
    constrain the smoothing; the difference is extrapolated flat into them.
    The narrow-window centres (``halfwidth``) are kept as the baseline of the
    per-integration differential measurements.

    Parameters
    ----------
    frame, var : ndarray, shape (ny, nx)
        Dispersion-major average frame and its per-pixel variance.
    guess : array_like, shape (nx,), optional
        Nominal trace (NaN off the detector). Without it the trace is
        followed from the brightest column (:func:`walk_trace`).
    method : {'centroid', 'edgetrigger', 'gaussian'}
        Centring method.
    halfwidth : float
        Narrow (per-integration) window half-width (px).
    smooth : {'spline', 'poly', 'none'}
        Smoothing along dispersion (:func:`smooth_trace`).
    knot_spacing, deg : float, int
        Spline knot spacing / polynomial degree.
    search : float, optional
        Range (px) of a global offset search of ``guess`` (default ``halfwidth``; 0 to skip).
    min_snr : float
        Columns whose window S/N is below this do not constrain the fit; an
        order whose median S/N is below it is reported as not detected (all NaN).
    ref_halfwidth : float, optional
        Wide window half-width (default ``2 * halfwidth``).
    clean : ndarray of bool, shape (nx,), optional
        Columns free of other orders (default all).
    bkg_width : int
        Subtract the :func:`local_background` in bands of this width beyond
        the wide window (0: none).

    Returns
    -------
    dict
        ``centre``, ``fwhm`` (smoothed, shape (nx,)), ``raw``, ``sigma``
        (narrow-window per-column centres and widths), ``weight`` (inverse
        variance of the raw centres, 0 for unused columns), ``snr``, ``offset``
        (applied to the guess), ``detected`` (bool).
    """
    frame = np.asarray(frame, float)
    ny, nx = frame.shape
    x = np.arange(nx, dtype=float)
    hw_ref = float(ref_halfwidth or 2 * halfwidth)
    img, base, onchip, offset = _start(frame, guess, halfwidth, hw_ref, search, bkg_width)
    wide, _, _ = column_centres(img, base, method, hw_ref, niter=30)
    start = np.where(np.isfinite(wide), wide, base)
    if hw_ref == halfwidth:
        raw = wide
        _, sig, flux = column_centres(img, start, method, halfwidth, niter=1)
    else:
        raw, sig, flux = column_centres(img, start, method, halfwidth, niter=30)
    snr = _window_snr(flux, var, raw, halfwidth)
    # with a model guess the centre cannot wander far from it (other light in the window)
    tol = max(2.0, 0.25 * hw_ref) if guess is not None else hw_ref
    use = _usable(snr, min_snr, knot_spacing, onchip & np.isfinite(raw) & np.isfinite(wide)
                  & (base - hw_ref >= -0.5) & (base + hw_ref <= ny - 0.5)
                  & (np.abs(wide - base) < tol), clean)
    weight = np.where(use, (snr / np.where(np.isfinite(sig), sig, 1.0)) ** 2, 0.0)
    detected = bool(onchip.any() and np.nanmedian(np.where(onchip, snr, np.nan)) >= min_snr
                    and use.sum() >= 8)
    centre = fwhm = np.full(nx, np.nan)
    if detected:
        centre = base + _smooth_extrapolate(x, wide - base, weight, smooth, knot_spacing, deg)
        fwhm = _FWHM * _smooth_extrapolate(x, sig, weight, "poly", knot_spacing, 2)
        off = ~onchip | (centre < -0.5) | (centre > ny - 0.5)
        centre[off] = np.nan
        fwhm[off] = np.nan
    return dict(centre=centre, fwhm=fwhm, raw=raw, sigma=sig, weight=weight, snr=snr,
                offset=offset, detected=detected, bkg_width=int(bkg_width), bkg_halfwidth=hw_ref)


def _start(frame, guess, halfwidth, hw_ref, search, bkg_width):
    """Starting trace (guess + global offset, or a walk) and the frame to centre on."""
    ny, nx = frame.shape
    img = np.nan_to_num(frame)
    offset = 0.0
    if guess is None:
        x = np.arange(nx, dtype=float)
        base = smooth_trace(x, walk_trace(img, halfwidth=halfwidth), method="poly", deg=3)
        onchip = np.ones(nx, bool)
    else:
        base = np.asarray(guess, float)
        onchip = np.isfinite(base)
        search = halfwidth if search is None else search
        offset = _search_offset(img, base, halfwidth, search) if search > 0 else 0.0
        base = base + offset
    if bkg_width:
        img = img - local_background(img, base, hw_ref, bkg_width)[None, :]
    return img, base, onchip, offset


def _window_snr(flux, var, centre, halfwidth):
    """S/N of the flux in the window around ``centre`` given the variance frame."""
    rows, w = window_rows(centre, halfwidth, var.shape[0])
    vv = np.nan_to_num(var, nan=0.0, posinf=0.0)
    noise = np.sqrt((w**2 * gather(vv, rows)).sum(-2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(noise > 0, flux / noise, 0.0)


def _usable(snr, min_snr, knot_spacing, ok, clean):
    """Columns that constrain the reference trace."""
    from scipy.ndimage import median_filter

    # local S/N: isolated noise spikes in a signal-free region do not count
    snr_local = median_filter(snr, size=max(3, int(knot_spacing // 2) | 1), mode="nearest")
    use = ok & (snr >= min_snr) & (snr_local >= min_snr)
    if clean is not None:
        if (use & clean).sum() >= 8:
            use &= clean
        elif use.any():
            log.warning("no column free of other orders: the trace is measured on blended columns")
    return use


def _smooth_extrapolate(x, y, weight, method, knot_spacing, deg, extrapolate="constant"):
    """:func:`smooth_trace` inside the range of used columns, extrapolated outside it.

    Outside the used range the curve is the weighted median of the raw values
    of the outer ``4 * knot_spacing`` used columns (``'constant'``: robust to
    the poorly constrained, faint end of a spline), optionally continued with
    the slope of a weighted straight line through them (``'linear'``).
    """
    used = np.flatnonzero(weight > 0)
    out = smooth_trace(x, y, weight, method, knot_spacing, deg)
    lo, hi = x[used[0]], x[used[-1]]
    span = 4 * knot_spacing
    for edge, sel, near in ((lo, x < lo, x <= lo + span), (hi, x > hi, x >= hi - span)):
        if not sel.any():
            continue
        near = near & (weight > 0) & np.isfinite(y)
        level, slope = out[int(edge)], 0.0
        if near.sum() >= 3:
            level = _weighted_median(y[near], weight[near])
            if extrapolate == "linear":
                coef = np.polyfit(x[near] - edge, y[near], 1, w=np.sqrt(weight[near]))
                level, slope = coef[1], coef[0]
        out[sel] = level + slope * (x[sel] - edge)
    return out


def _weighted_median(values, weights):
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


# --------------------------------------------------- per-integration traces
def _basis(nx: int, deg: int):
    from numpy.polynomial import legendre

    return legendre.legvander(np.linspace(-1.0, 1.0, nx), deg)


def _wlstsq(basis, r, wt):
    """Per-row weighted least squares of ``r`` (nb, nx) on ``basis`` (nx, p)."""
    lhs = np.einsum("nk,bn,nl->bkl", basis, wt, basis)
    rhs = np.einsum("nk,bn->bk", basis, wt * r)
    lhs += 1e-12 * np.trace(lhs, axis1=1, axis2=2)[:, None, None] * np.eye(basis.shape[1])
    ok = np.abs(np.linalg.det(lhs)) > 0
    beta = np.zeros(rhs.shape)
    if ok.any():
        beta[ok] = np.linalg.solve(lhs[ok], rhs[ok][..., None])[..., 0]
    return beta


def _block_traces(frames, ref, method, halfwidth, basis, niter=3, nsigma=5.0):
    """Per-integration centres as the reference plus a polynomial of the differences."""
    start = np.where(np.isfinite(ref["raw"]), ref["raw"], ref["centre"])
    if ref.get("bkg_width"):
        frames = frames - local_background(frames, ref["centre"], ref["bkg_halfwidth"],
                                           ref["bkg_width"])[:, None, :].astype(frames.dtype)
    c, s, _ = column_centres(frames, start, method, halfwidth, niter=niter)
    r = c - ref["raw"]
    ok = np.isfinite(r) & np.isfinite(s)
    wt = np.where(ok, ref["weight"][None, :], 0.0)
    r = np.where(ok, r, 0.0)
    beta = np.zeros((frames.shape[0], basis.shape[1]))
    for _ in range(3):
        beta = _wlstsq(basis, r, wt)
        chi = (r - beta @ basis.T) * np.sqrt(wt)
        with np.errstate(all="ignore"):
            scale = 1.4826 * nanmedian_quiet(np.where(wt > 0, np.abs(chi), np.nan), axis=1)
        clip = np.abs(chi) > nsigma * np.nan_to_num(scale, nan=np.inf)[:, None]
        if not clip.any():
            break
        wt = np.where(clip, 0.0, wt)
    tot = wt.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dy = (wt * r).sum(1) / tot
        ratio = (wt * np.where(ok, s / ref["sigma"][None, :], 0.0)).sum(1) / tot
    trace = ref["centre"][None, :] + beta @ basis.T
    return trace, ref["fwhm"][None, :] * ratio[:, None], dy, ratio


def _orders_of(cube, orders):
    if orders is None:
        return tuple(cube.geometry.mode.spec.orders) if cube.geometry.mode is not None else (1,)
    orders = (orders,) if np.ndim(orders) == 0 else tuple(orders)
    allowed = cube.geometry.mode.spec.orders if cube.geometry.mode is not None else (1,)
    bad = [o for o in orders if o not in allowed]
    if bad:
        raise ValueError(f"order(s) {bad} not available; this mode has orders {tuple(allowed)}")
    return tuple(int(o) for o in orders)


def _clean_columns(guesses: dict, order: int, distance: float):
    """Columns where no other order's nominal trace is within ``distance``."""
    mine = guesses.get(order)
    if mine is None:
        return None
    clean = np.ones(mine.shape, bool)
    for o, g in guesses.items():
        if o != order and g is not None:
            with np.errstate(invalid="ignore"):
                clean &= ~(np.abs(g - mine) < distance)
    return clean


def trace_references(cube, orders=None, method="centroid", halfwidth=None, smooth="spline",
                     knot_spacing=None, deg=4, min_snr=3.0, reference=None, progress=None):
    """Reference traces of ``orders`` on the visit-average frame.

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry.
    orders : int or sequence of int, optional
        Orders (default: all of the mode's).
    method, halfwidth, smooth, knot_spacing, deg, min_snr
        See :func:`trace_reference` (``None`` takes the mode's defaults).
    reference : tuple of ndarray, optional
        ``(frame, var)`` from :func:`reference_frames`, to avoid recomputing it.
    progress : bool, optional
        Show progress bars.

    Returns
    -------
    refs : dict
        Order -> the dict of :func:`trace_reference`.
    reference : tuple
        ``(frame, var)`` used.
    """
    orders = _orders_of(cube, orders)
    dflt = mode_defaults(cube.geometry.mode)
    hw = float(halfwidth or dflt["halfwidth"])
    hw_ref = max(hw, float(dflt["ref_halfwidth"]) * hw / dflt["halfwidth"])
    ks = float(knot_spacing or dflt["knot_spacing"])
    frame, var = reference if reference is not None else reference_frames(cube, progress=progress)
    allg = {o: guess_trace(cube.geometry.mode, o, frame.shape[1], cube.meta, cube.geometry.x_offset)
            for o in (cube.geometry.mode.spec.orders if cube.geometry.mode is not None else orders)}
    refs, first = {}, None
    for order in orders:
        guess = allg.get(order)
        search = None
        if guess is not None and first is not None:
            guess = guess + first
            search = 2.0
        clean = _clean_columns(allg, order, hw_ref + hw)
        ref = trace_reference(frame, var, guess, method, hw, smooth, ks, deg, search, min_snr,
                              hw_ref, clean, int(dflt["bkg_width"]))
        if ref["detected"] and first is None and guess is not None:
            first = ref["offset"]
        if not ref["detected"]:
            log.warning("order %d: no trace detected (median S/N < %g); its trace is NaN",
                        order, min_snr)
        ref["halfwidth"] = hw
        refs[order] = ref
    return refs, (frame, var)


def fit_traces(cube, orders=None, method: str = "centroid", halfwidth=None, smooth: str = "spline",
               knot_spacing=None, deg: int = 4, deg_int: int = 0, per_integration: bool = True,
               min_snr: float = 3.0, block_size=None, reference=None, progress=None):
    """Trace centre and width of every order, column and integration.

    Parameters
    ----------
    cube : CubeSource
        The visit (its working data and mask are used).
    orders : int or sequence of int, optional
        Orders (default: all of the mode's; undetected ones come back NaN).
    method : {'centroid', 'edgetrigger', 'gaussian'}
        Centring method.
    halfwidth : float, optional
        Centring window half-width (default per mode, :data:`MODE_DEFAULTS`).
    smooth : {'spline', 'poly', 'none'}
        Smoothing of the reference trace along dispersion.
    knot_spacing : float, optional
        Spline knot spacing (default per mode).
    deg : int
        Polynomial degree for ``smooth='poly'``.
    deg_int : int
        Degree of the per-integration polynomial added to the reference trace
        (0: rigid shift, 1: shift and tilt).
    per_integration : bool
        Fit every integration (else all integrations get the reference trace).
    min_snr : float
        Minimum column S/N (see :func:`trace_reference`).
    block_size : int, optional
        Integrations per block.
    reference : tuple, optional
        ``(frame, var)`` from :func:`reference_frames`.
    progress : bool, optional
        Show progress bars.

    Returns
    -------
    dict
        ``orders`` -> {``trace`` (N, nx), ``fwhm`` (N, nx), ``shift_y`` (N,),
        ``width_ratio`` (N,), ``reference`` (the :func:`trace_reference` dict)},
        plus ``frame`` and ``var`` (the reference frames).
    """
    check_option(method, TRACE_METHODS, "method")
    check_option(smooth, SMOOTH_METHODS, "smooth")
    t0 = _time.perf_counter()
    refs, (frame, var) = trace_references(cube, orders, method, halfwidth, smooth, knot_spacing,
                                          deg, min_snr, reference, progress)
    nx = frame.shape[1]
    out = {o: dict(trace=np.tile(r["centre"], (cube.N, 1)), fwhm=np.tile(r["fwhm"], (cube.N, 1)),
                   shift_y=np.zeros(cube.N), width_ratio=np.ones(cube.N), reference=r)
           for o, r in refs.items()}
    live = [o for o, r in refs.items() if r["detected"]]
    if per_integration and live:
        basis = _basis(nx, deg_int)
        for i0, i1, data, _, _ in iter_blocks(cube, block_size, fill=frame, desc="tracing",
                                              progress=progress):
            for o in live:
                tr, fw, dy, ratio = _block_traces(data, refs[o], method, refs[o]["halfwidth"], basis)
                out[o]["trace"][i0:i1], out[o]["fwhm"][i0:i1] = tr, fw
                out[o]["shift_y"][i0:i1], out[o]["width_ratio"][i0:i1] = dy, ratio
    for o in refs:
        bad = ~np.isfinite(refs[o]["centre"])
        out[o]["trace"][:, bad] = np.nan
        out[o]["fwhm"][:, bad] = np.nan
    log.info("fit_traces: %s, orders %s (detected %s), %d integrations, %.1f s", method,
             list(refs), live, cube.N, _time.perf_counter() - t0)
    return dict(orders=out, frame=frame, var=var)


def fit_single_trace(cube, order: int = 1, integration: int = 0, method: str = "centroid",
                     halfwidth=None, smooth: str = "spline", knot_spacing=None, deg: int = 4,
                     reference=None):
    """Trace of one order in one integration, fitted on its own.

    The integration's raw centres are smoothed directly (not as a difference
    from the reference), so this is the single-frame measurement.

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry.
    order : int
        Spectral order.
    integration : int
        Integration index.
    method, halfwidth, smooth, knot_spacing, deg
        As :func:`fit_traces`.
    reference : tuple, optional
        ``(frame, var)`` from :func:`reference_frames` (start guess and bad-pixel fill).

    Returns
    -------
    centre, fwhm : ndarray, shape (nx,)
    """
    if not -cube.N <= integration < cube.N:
        raise IndexError(f"integration {integration} out of range for N={cube.N}")
    integration %= cube.N
    refs, (frame, var) = trace_references(cube, order, method, halfwidth, smooth, knot_spacing,
                                          deg, reference=reference, progress=False)
    ref = refs[int(order)]
    if not ref["detected"]:
        return ref["centre"], ref["fwhm"]
    data, v = cube.read(integration, integration + 1)
    axis = cube.geometry.dispersion_axis
    data, v = dispersion_major(data[0], axis), dispersion_major(v[0], axis)
    good = dispersion_major(cube.mask[integration], axis) & np.isfinite(data)
    data = np.where(good, data, np.nan_to_num(frame))
    one = trace_reference(data, np.where(good, v, var), ref["centre"], method, ref["halfwidth"],
                          smooth, float(knot_spacing or mode_defaults(cube.geometry.mode)["knot_spacing"]),
                          deg, search=0.0, min_snr=0.0)
    return one["centre"], one["fwhm"]
