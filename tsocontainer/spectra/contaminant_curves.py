"""A contaminating order's light curve, read where its wavelength is seen clean.

The light another order puts in a box (SOSS: order 2's red end under order 1
at columns x < ~800) transits with the depth of *its own* wavelength. The joint
profile fit of :mod:`tsocontainer.spectra.decontaminate` measures that light
per integration, but under a bright order its amplitude is noisy and follows
the bright order's small motions (static profiles, moving traces), which puts
noise and drifts into the decontaminated box.

The same wavelength is usually also seen by another order in columns where
nothing overlaps (order 2's 0.95-1.4 um by order 1 at x ~ 1100-1800). Same
star, same wavelength: the same relative light curve, limb darkening and
systematics of the visit included; only the spectral resolution differs,
and the window of columns averages over it. :func:`same_wavelength_curves`
builds, for each overlap column of a contaminant, that relative light curve
from a clean order's box spectra.
"""
from __future__ import annotations

import numpy as np

__all__ = ["same_wavelength_curves"]


def _span(wave_q, columns, window):
    """Wavelength half-span of ``window`` columns of the contaminant around each column."""
    nx = wave_q.size
    h = max(int(window) // 2, 1)
    lo = np.clip(columns - h, 0, nx - 1)
    hi = np.clip(columns + h, 0, nx - 1)
    return 0.5 * np.abs(wave_q[hi] - wave_q[lo])


def same_wavelength_curves(spec, q: int, columns, window: int = 41, exclude=None,
                           min_columns: int = 3):
    """Relative light curve of order ``q``'s wavelength at each of ``columns``, from clean orders.

    For each column ``x`` of ``columns``, the columns of every other order
    ``p`` of ``spec`` whose wavelength lies within the span of ``window``
    columns of order ``q`` around ``x`` (and that are not in ``exclude``)
    are summed; their flux over its time mean is the curve. Integrations
    masked in a column leave that column out of the sum at that time
    (weights: the columns' mean fluxes).

    Parameters
    ----------
    spec : Spectra
        Box spectra holding order ``q`` (its wavelengths) and at least one
        other order.
    q : int
        The contaminating order.
    columns : array_like of int
        Columns of order ``q`` where a curve is wanted.
    window : int
        Columns of order ``q`` whose wavelength span is averaged.
    exclude : array_like of int, optional
        Columns not to use (the overlap columns: there the box is contaminated).
    min_columns : int
        Fewest clean columns behind a curve; fewer give NaN.

    Returns
    -------
    curve : ndarray, shape (N, m)
        Relative light curves (time mean 1); NaN where no clean order covers
        the wavelength.
    var : ndarray, shape (N, m)
        Their variances.

    Examples
    --------
    Order 2 at 1.0-1.2 um and order 1 seeing 0.9-1.6 um; the third integration
    is 1 % fainter at every wavelength:

    >>> import numpy as np
    >>> from tsocontainer.spectra.container import Spectra
    >>> t = np.arange(3.0)
    >>> lc = np.array([1.0, 1.0, 0.99])[:, None]
    >>> wave = {1: np.linspace(1.6, 0.9, 50), 2: np.linspace(1.2, 1.0, 50)}
    >>> flux = {o: 100.0 * lc * np.ones((3, 50)) for o in (1, 2)}
    >>> var = {o: np.ones((3, 50)) for o in (1, 2)}
    >>> mask = {o: np.ones((3, 50), bool) for o in (1, 2)}
    >>> s = Spectra(t, wave, flux, var, mask)
    >>> c, v = same_wavelength_curves(s, 2, [10, 20], window=11)
    >>> (c[2] / c[0]).round(4)
    array([0.99, 0.99])
    """
    columns = np.asarray(columns, int)
    wave_q = np.asarray(spec.wave[q], float)
    n = np.asarray(spec.flux[q]).shape[0]
    curve = np.full((n, columns.size), np.nan)
    cvar = np.full((n, columns.size), np.nan)
    lam = wave_q[columns]
    half = _span(wave_q, columns, window)
    best = np.zeros(columns.size)
    for p in [o for o in spec.orders if o != q]:
        wp = np.asarray(spec.wave[p], float)
        f = np.asarray(spec.flux[p], float)
        v = np.asarray(spec.var[p], float)
        good = np.asarray(spec.mask[p], bool) & np.isfinite(f) & np.isfinite(v)
        clean = np.isfinite(wp) & good.any(0)
        if exclude is not None:
            clean[np.asarray(exclude, int)] = False
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(good, f, 0.0).sum(0) / good.sum(0)
        clean &= np.isfinite(mean) & (mean > 0)
        for j in np.flatnonzero(np.isfinite(lam) & np.isfinite(half)):
            sel = np.flatnonzero(clean & (np.abs(wp - lam[j]) <= half[j]))
            if sel.size < min_columns or sel.size <= best[j]:
                continue
            g = good[:, sel]
            wsum = np.where(g, mean[sel], 0.0).sum(1)
            rel = np.where(g, f[:, sel], 0.0).sum(1) / wsum
            rvar = np.where(g, v[:, sel], 0.0).sum(1) / wsum ** 2
            norm = np.nanmean(rel)
            curve[:, j], cvar[:, j] = rel / norm, rvar / norm ** 2
            best[j] = sel.size
    return curve, cvar
