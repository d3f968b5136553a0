"""What in each pixel follows the light curve, and what does not.

Starlight -- the trace core *and* its far wings -- rises and falls with the
star's light curve (transit, eclipse, ramps, trends); the zodiacal background,
field contaminants and dark current do not. Over a visit each pixel is fitted
by least squares as

    d_p(t) = a_p * W(t) + b_p,

with ``W`` the star's light curve (normalised to 1; ``estimate_sky`` uses
:func:`tsocontainer.cleaning.onef.clean_light_curves`, free of sky and 1/f,
and allows for a diluted ``W`` anyway). ``a_p`` is the pixel's
starlight, ``b_p`` the light that does not vary with the star. A sky model
scaled to the ``b_p`` of the sky pixels cannot be pulled by the star's wings,
however far they reach, nor by the transit: the wings and the transit are in
``a_p``.

The separation needs contrast in ``W``: the error of ``b_p`` is the pixel's
noise times ``sqrt(mean(W^2) / (N var(W)))`` -- about 4 times the single-frame
noise for a 2 % transit over 40 % of 500 integrations, and infinite for a flat
light curve. :func:`separation_error` gives it, so callers can decide.
Systematic limit: a pixel whose light transits deeper than the white light by
a fraction ``e`` of the depth gets ``b_p`` off by ``-e a_p`` (the chromatic
depth variations of a transmission spectrum, ~1-3 %, times the wing flux).
Noise limit: 1/f noise moves every pixel of a detector column together, and
its projection on the transit shape is indistinguishable from a constant in
that column; only other columns average it (with 1.4 DN/s column offsets and
500 integrations a SOSS sky scale is then uncertain by tens of per cent).
:func:`column_slopes` fits shared slopes within columns, free of it.
"""
from __future__ import annotations

import numpy as np

from tsocontainer.arrays.numerics import block_ranges, run_blocks

__all__ = ["light_curve_sums", "separate", "separation_error", "column_slopes", "SUM_KEYS"]

#: per-pixel sums accumulated over integrations (n, W, W^2, d, d W, d^2)
SUM_KEYS = ("n", "w", "ww", "d", "dw", "dd")


def light_curve_sums(cube, good, wl, pixels=None, block: int = 16) -> dict:
    """Per-pixel sums over the integrations of ``cube`` for the fit ``d = a W + b``.

    Parameters
    ----------
    cube : ndarray or block source, shape (N, ny, nx)
        Data (sliced ``cube[i:j]``; with ``pixels``, a source's
        ``take_pixels(i, j, pixels)`` is used when it has one).
    good : ndarray or block source of bool, shape (N, ny, nx)
        Usable values (non-finite values are skipped too).
    wl : ndarray, shape (N,)
        Light curve ``W``.
    pixels : ndarray of int, optional
        Flat pixel indices to use (default all): the sums are then 1D.
    block : int
        Integrations per block.

    Returns
    -------
    dict
        :data:`SUM_KEYS` -> float64 arrays, ``(ny, nx)`` or ``(len(pixels),)``.
    """
    n, ny, nx = cube.shape
    wl = np.asarray(wl, np.float64)
    ranges = block_ranges(n, block)
    shape = (ny, nx) if pixels is None else (len(pixels),)

    def pick(arr, i, j):
        if pixels is not None and hasattr(arr, "take_pixels"):   # no full block made
            return arr.take_pixels(i, j, pixels)
        arr = np.asarray(arr[i:j])
        return arr if pixels is None else np.take(arr.reshape(j - i, -1), pixels, axis=1)

    def work(i, j):
        # one integration at a time (frame-sized temporaries stay in cache), summed in the
        # order of a sum over the block's first axis
        dblk, gblk = pick(cube, i, j), pick(good, i, j)
        acc = None
        for t in range(j - i):
            d = np.asarray(dblk[t], np.float64)
            g = np.asarray(gblk[t]).astype(bool) & np.isfinite(d)
            d = np.where(g, d, 0.0)
            w = wl[i + t]
            gw = g * w
            terms = (g.astype(np.float64), gw, gw * w, d, d * w, d * d)
            if acc is None:
                acc = [x.copy() if x is d else x for x in terms]
            else:
                for a, x in zip(acc, terms):
                    a += x
        return dict(zip(SUM_KEYS, acc))

    out = {k: np.zeros(shape) for k in SUM_KEYS}

    def add(part):   # in block order, as each block finishes: partial sums do not pile up
        for k in SUM_KEYS:
            out[k] += part[k]

    run_blocks(work, ranges, "light-curve sums", collect=add)
    return out


def separate(sums: dict):
    """Starlight ``a``, non-varying light ``b`` and the variance of ``b`` per pixel.

    Parameters
    ----------
    sums : dict
        From :func:`light_curve_sums`.

    Returns
    -------
    a, b, b_var : ndarray of float64, shape (ny, nx)
        NaN where the fit is undetermined (fewer than 3 values or a flat
        light curve); ``b_var`` from the scatter about the fit.

    Examples
    --------
    >>> import numpy as np
    >>> wl = np.r_[np.ones(6), 0.98 * np.ones(4)]
    >>> cube = (100.0 * wl + 5.0)[:, None, None] * np.ones((10, 1, 2))
    >>> a, b, _ = separate(light_curve_sums(cube, np.ones(cube.shape, bool), wl))
    >>> np.round(a, 6).tolist(), np.round(b, 6).tolist()
    ([[100.0, 100.0]], [[5.0, 5.0]])
    """
    n, sw, sww, sd, sdw, sdd = (sums[k] for k in SUM_KEYS)
    det = n * sww - sw * sw
    with np.errstate(all="ignore"):
        ok = (n >= 3) & (det > 1e-12 * np.maximum(n * sww, 1e-300))
        a = np.where(ok, (n * sdw - sw * sd) / det, np.nan)
        b = np.where(ok, (sww * sd - sw * sdw) / det, np.nan)
        ssr = np.maximum(sdd - a * sdw - b * sd, 0.0)
        b_var = np.where(ok, ssr / np.maximum(n - 2, 1) * sww / det, np.nan)
    return a, b, b_var


def separation_error(wl, good_count=None) -> float:
    """Factor by which the error of ``b`` exceeds a pixel's single-frame noise.

    ``sqrt(mean(W^2) / (N var(W)))``; infinite for a flat light curve.

    Parameters
    ----------
    wl : ndarray, shape (N,)
        Light curve.
    good_count : int, optional
        Integrations actually used (default ``N``).

    Returns
    -------
    float

    Examples
    --------
    >>> round(separation_error(np.r_[np.ones(300), 0.98 * np.ones(200)]), 1)
    4.5
    """
    w = np.asarray(wl, np.float64)
    n = w.size if good_count is None else int(good_count)
    var = float(np.var(w))
    if n < 3 or var <= 1e-14:
        return float("inf")
    return float(np.sqrt(np.mean(w * w) / (n * var)))


def _column_means(values, weights, columns, ncol):
    sw = np.bincount(columns, weights, minlength=ncol)
    return np.bincount(columns, weights * values, minlength=ncol) / np.where(sw > 0, sw, 1.0)


def column_slopes(b, b_var, mean, columns, extra=None, nclip: int = 3, kappa: float = 4.0):
    """Slopes of ``b`` on the pixels' mean level (and ``extra`` regressors) *within* columns.

    1/f noise shifts the ``b`` of every pixel of a detector column by the
    same, large amount (its projection on the light curve); differences
    between pixels of one column are free of it. So each column gets its own
    intercept (the regressors are centred on their weighted column means) and
    only the slopes are shared. Pixels off by more than ``kappa`` robust sigma
    are dropped and the fit repeated up to ``nclip`` times.

    Parameters
    ----------
    b, b_var : ndarray, shape (npix,)
        Non-varying light and its variance (:func:`separate`).
    mean : ndarray, shape (npix,)
        Mean level of each pixel over the visit.
    columns : ndarray of int, shape (npix,)
        Column (1/f line) of each pixel.
    extra : ndarray, shape (npix, k), optional
        More regressors with shared slopes.
    nclip : int
        Clipping rounds.
    kappa : float
        Clipping threshold.

    Returns
    -------
    gamma : float
        Slope on ``mean``.
    coef : ndarray, shape (k,)
        Slopes of ``extra``.
    keep : ndarray of bool, shape (npix,)
        Pixels used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> col = np.repeat(np.arange(50), 20)
    >>> mean = rng.uniform(5, 50, col.size)
    >>> b = 3.0 - 0.05 * mean + rng.normal(0, 5, 50)[col]    # + a column offset
    >>> round(column_slopes(b, np.ones(b.size), mean, col)[0], 6)
    -0.05
    """
    x = np.column_stack([mean] + ([] if extra is None else [extra]))
    keep = np.isfinite(b) & np.isfinite(b_var) & (b_var > 0) & np.all(np.isfinite(x), axis=1)
    ncol = int(columns.max()) + 1 if columns.size else 1
    coef = np.full(x.shape[1], np.nan)
    for _ in range(nclip + 1):
        w = np.where(keep, 1.0 / np.where(keep, b_var, 1.0), 0.0)
        yc = b - _column_means(np.where(keep, b, 0.0), w, columns, ncol)[columns]
        xc = x - np.column_stack([_column_means(np.where(keep, xi, 0.0), w, columns, ncol)[columns]
                                  for xi in x.T])
        sw = np.sqrt(w[keep])
        coef, *_ = np.linalg.lstsq(xc[keep] * sw[:, None], yc[keep] * sw, rcond=None)
        resid = (yc - xc @ coef) * np.sqrt(w)
        sig = 1.4826 * float(np.median(np.abs(resid[keep]))) + 1e-300
        bad = keep & (np.abs(resid) > kappa * sig)
        if not bad.any():
            break
        keep &= ~bad
    return float(coef[0]), coef[1:], keep
