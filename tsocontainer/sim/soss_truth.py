"""Truth of the SOSS scenes (:mod:`tsocontainer.sim.soss_scene`) seen through a box extraction.

In a scene every stellar pixel transits with the depth of its own wavelength
(``OWNER``, ``PIXWAVE``, ``PIXCOLUMN`` in the truth arrays) and a box around
order 1 also holds the wings and cores of the other orders. These helpers give
what a box extraction of the scene should find: the injected depth of its
channels (:func:`box_depths`), the injected starlight in the box of each channel
per integration (:func:`box_light_curves`), and the depth pulls of extracted
light curves fitted with that exact shape (:func:`shape_pulls`) -- a measure of
the reduction alone, free of the transit model's limb darkening and orbit.
"""
from __future__ import annotations

import numpy as np

from tsocontainer.sim.truth import SimulatedVisit

__all__ = ["box_weights", "box_depths", "box_depths_from", "box_light_curves", "shape_pulls",
           "background_bias"]


def _resolve(vis):
    from tsocontainer.sim.truth import load_truth, load_truth_arrays

    if isinstance(vis, SimulatedVisit):
        return vis.truth, vis.truth_arrays()
    return load_truth(vis), load_truth_arrays(vis)


def box_weights(centre, halfwidth: float, ny: int) -> np.ndarray:
    """Fractional weights ``(ny, nx)`` of a box ``centre +- halfwidth`` in every column.

    Parameters
    ----------
    centre : ndarray, shape (nx,)
        Box centre per column (NaN: no box).
    halfwidth : float
        Half-width (pixels).
    ny : int
        Rows.

    Returns
    -------
    ndarray of float

    Examples
    --------
    >>> box_weights(np.array([2.0]), 1.25, 5)[:, 0].tolist()
    [0.0, 0.75, 1.0, 0.75, 0.0]
    """
    rows = np.arange(ny, dtype=float)[:, None]
    centre = np.asarray(centre, float)[None]
    w = np.clip(np.minimum(rows + 0.5, centre + halfwidth)
                - np.maximum(rows - 0.5, centre - halfwidth), 0.0, 1.0)
    return np.where(np.isfinite(w), w, 0.0)


def _light_weights(arrays, centre, halfwidth, owners=None, columns=None):
    """Box weights ``(ny, nx)`` of the starlight counted: live pixels, ``owners``' light only,
    ``columns`` only (each None: all)."""
    owner = np.asarray(arrays["OWNER"])
    w = box_weights(centre, halfwidth, owner.shape[0]) * (np.asarray(arrays["REFPIX"]) == 0)
    if owners is not None:
        w = w * np.isin(owner, np.atleast_1d(np.asarray(owners, int)))
    if columns is not None:
        cols = np.asarray(columns, bool)
        if cols.shape != (owner.shape[1],):
            raise ValueError(f"columns must be boolean of shape ({owner.shape[1]},), got {cols.shape}")
        w = w * cols[None, :]
    return w


def box_depths_from(arrays, truth, edges, centre, halfwidth, order, owners=None, columns=None):
    """:func:`box_depths` from the truth arrays and ``truth.json`` content."""
    ds = truth["depth_spectrum"]
    star = np.asarray(arrays["MODEL"], float).sum(axis=0)
    owner = np.asarray(arrays["OWNER"])
    depth = np.where(owner > 0, np.interp(np.asarray(arrays["PIXWAVE"], float),
                                          np.asarray(ds["wave_um"], float),
                                          np.asarray(ds["depth_ppm"], float)), 0.0)
    if centre is None:
        centre = np.nanmedian(np.asarray(arrays["TRACE"][order - 1], float), axis=0)
    w = _light_weights(arrays, np.asarray(centre, float), halfwidth, owners, columns)
    s_col = (w * star).sum(axis=0)
    sd_col = (w * star * depth).sum(axis=0)
    wave = np.asarray(arrays["WAVE"][order - 1], float)
    ok = np.isfinite(wave) & (s_col > 0)
    if edges is None:
        edges = [np.min(wave[ok]), np.max(wave[ok]) * (1 + 1e-12)]
    edges = np.asarray(edges, float)
    idx = np.searchsorted(edges, np.where(ok, wave, np.nan), side="right") - 1
    use = ok & (idx >= 0) & (idx < edges.size - 1)
    s = np.bincount(idx[use], weights=s_col[use], minlength=edges.size - 1)
    sd = np.bincount(idx[use], weights=sd_col[use], minlength=edges.size - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0, sd / s, np.nan)


def box_depths(vis, edges=None, centre=None, halfwidth: float = 20.0, order: int = 1,
               owners=None, columns=None):
    """Injected depth (ppm) of wavelength bins of a box extraction of a scene.

    A channel's flux is the sum, over its columns (by the wavelength of
    ``order`` at the column), of the box-weighted pixels -- starlight of every
    order that falls in the box, each pixel with the depth of its own
    wavelength. So its depth is the star-weighted mean of the pixel depths.
    An extraction that removes the other orders' light from the box
    (``decontaminate``) keeps only its own order's pixels (``owners=order``)
    and drops the columns it masks (``columns``).

    Parameters
    ----------
    vis : SimulatedVisit or path-like
        The scene (or its folder).
    edges : array_like, optional
        Bin edges (micron); default one bin over the order (white light).
    centre : array_like, optional
        Box centre per column (default the truth trace of ``order``).
    halfwidth : float
        Box half-width (pixels; fractional edge pixels as the box extraction).
    order : int
        Order whose column wavelengths define the bins.
    owners : int or sequence of int, optional
        Orders whose light counts (the pixels' ``OWNER``); default every order's.
    columns : array_like of bool, shape (nx,), optional
        Columns the extraction kept; default all.

    Returns
    -------
    ndarray
        Depth per bin (NaN for empty bins).

    Raises
    ------
    ValueError
        If ``columns`` does not have one value per column.

    Examples
    --------
    >>> box_depths(vis, [1.0, 1.5, 2.0])  # doctest: +SKIP
    >>> box_depths(vis, [1.0, 1.5, 2.0], owners=1, columns=spectra.mask[1].any(0))  # doctest: +SKIP
    """
    truth, arrays = _resolve(vis)
    return box_depths_from(arrays, truth, edges, centre, halfwidth, order, owners, columns)


def box_light_curves(vis, edges, centre, halfwidth: float = 20.0, order: int = 1,
                     owners=None, columns=None):
    """Injected starlight (DN/s) in the box of each wavelength bin, per integration.

    Parameters
    ----------
    vis : SimulatedVisit or path-like
        The scene.
    edges : array_like
        Bin edges (micron) of ``order``'s column wavelengths.
    centre : array_like
        Box centre per column.
    halfwidth : float
        Box half-width (pixels).
    order : int
        Order whose wavelengths define the bins.
    owners, columns
        As :func:`box_depths`: the orders whose light counts and the columns kept.

    Returns
    -------
    ndarray, shape (nbins, nint)

    Examples
    --------
    >>> box_light_curves(vis, [1.0, 1.5], centre)  # doctest: +SKIP
    """
    truth, a = _resolve(vis)
    lo = truth["instrument"]["crop"][0]
    star = np.asarray(a["MODEL"], float).sum(axis=0)
    owner = np.asarray(a["OWNER"]).astype(int)
    lc = np.asarray(a["LIGHTCURVE"], float)
    pcol = np.clip(np.asarray(a["PIXCOLUMN"]).astype(int) - lo, 0, lc.shape[2] - 1)
    w = _light_weights(a, np.asarray(centre, float), halfwidth, owners, columns) * (owner > 0)
    edges = np.asarray(edges, float)
    idx = np.searchsorted(edges, np.asarray(a["WAVE"][order - 1], float), side="right") - 1
    out = np.zeros((edges.size - 1, lc.shape[1]))
    for k in range(edges.size - 1):
        y, x = np.nonzero(w * (idx == k)[None, :] > 0)
        out[k] = lc[owner[y, x] - 1, :, pcol[y, x]].T @ (w * star)[y, x]
    return out


def shape_pulls(vis, lcs, centre, halfwidth: float = 20.0, owners=None, columns=None) -> dict:
    """Depth pulls of light curves fitted with their injected shape (no transit model).

    Each channel's flux is fitted by weighted least squares as ``c0 + c1 tau -
    c2 m(t)``, ``m = 1 - S / max(S)`` from :func:`box_light_curves` (the exact
    shape: limb darkening, every pixel's own depth) and ``tau`` time in
    [-1, 1]: ``c2 / c0 = 1`` when the reduction keeps the depth. The pull is
    ``(c2 / c0 - 1)`` over its error (scaled by the reduced chi^2 when above 1).

    Parameters
    ----------
    vis : SimulatedVisit or path-like
        The scene.
    lcs : LightCurves
        Extracted channels (``flux``, ``err``, ``clipped``, ``wave_lo``, ``wave_hi``).
    centre : array_like
        Box centre per column used by the extraction.
    halfwidth : float
        Box half-width.
    owners, columns
        As :func:`box_depths` (decontaminated spectra: ``owners=1`` and their kept columns).

    Returns
    -------
    dict
        ``pulls``, ``alpha`` (``c2 / c0``), ``alpha_err``, ``reduced_chi2``
        (arrays per channel) and ``mean``, ``std``, ``chi2_n`` of the pulls.

    Examples
    --------
    >>> shape_pulls(vis, lightcurves, centre)["mean"]  # doctest: +SKIP
    """
    edges = np.append(np.asarray(lcs.wave_lo, float), float(lcs.wave_hi[-1]) * (1 + 1e-9))
    curves = box_light_curves(vis, edges, centre, halfwidth, owners=owners, columns=columns)
    n = np.asarray(lcs.flux).shape[1]
    tau = np.linspace(-1, 1, n)
    alpha, err, red = [], [], []
    for k in range(curves.shape[0]):
        f, e = np.asarray(lcs.flux[k], float), np.asarray(lcs.err[k], float)
        ok = np.isfinite(f) & np.isfinite(e) & (e > 0) & ~np.asarray(lcs.clipped[k], bool)
        x = np.vstack([np.ones(n), tau, -(1 - curves[k] / curves[k].max())]).T[ok]
        xw = x / e[ok, None]
        coef, *_ = np.linalg.lstsq(xw, f[ok] / e[ok], rcond=None)
        cov = np.linalg.inv(xw.T @ xw)
        chi = float(np.sum((f[ok] / e[ok] - xw @ coef) ** 2) / max(ok.sum() - 3, 1))
        alpha.append(coef[2] / coef[0])
        err.append(np.sqrt(cov[2, 2] * max(chi, 1.0)) / coef[0])
        red.append(chi)
    alpha, err = np.array(alpha), np.array(err)
    p = (alpha - 1) / err
    return {"pulls": p, "alpha": alpha, "alpha_err": err, "reduced_chi2": np.array(red),
            "mean": float(p.mean()), "std": float(p.std(ddof=1)) if p.size > 1 else float("nan"),
            "chi2_n": float(np.mean(p ** 2))}


def _residual(a, group, w):
    """Subtracted sky + 1/f minus the truth in the box per integration and column, its
    variance (the stored 1/f offset variances) and the box's starlight per column."""
    static = np.asarray(a["BACKGROUND"], float) + np.asarray(a["CONTAMINANTS"], float)
    star = (w * np.asarray(a["MODEL"], float).sum(axis=0)).sum(axis=0)
    npix = w.sum(axis=0)[None]
    true = (w * static).sum(axis=0)[None] + npix * np.asarray(a["ONE_OVER_F"])
    sub = np.zeros((group.N, w.shape[1]))
    var = np.zeros_like(sub)
    if "sky" in group.corrections:
        for i in range(group.N):
            sub[i] = (w * group.sky_model(i)).sum(axis=0)
    if "onef" in group.corrections:
        sub += npix * np.asarray(group.aux["onef"], float)
        var += npix ** 2 * np.asarray(group.aux["onef_var"], float)
    return sub - true, var, star


def background_bias(vis, group, edges, centre, halfwidth: float = 20.0) -> dict:
    """Depth bias that a group's sky and 1/f corrections put in each channel of a box.

    The residual ``R(t) = sum_box (sky model + n * 1/f offset) - (true
    non-transiting light + n * injected 1/f)`` is what the corrections leave
    in (or take out of) the box beyond the truth. The box flux is ``F L - R``,
    so the flux deficit in full transit (``drop``) is off by
    ``(R_in - R_out) / F + drop R_out / F`` and the depth by that times
    ``depth / drop``. The scene's hot pixels are left out of the truth (the
    recipe flags and replaces them); ``hot_ppm`` is instead the dilution by
    those it left unflagged in the box. No fit is involved: the error
    (``err_ppm``) is only that of the 1/f offsets.

    Parameters
    ----------
    vis : SimulatedVisit or path-like
        The scene.
    group : TSOGroup
        Its reduction (``sky_model``, ``aux["onef"]``, ``mask``, ``corrections``).
    edges : array_like
        Channel edges (micron, order 1).
    centre : array_like
        Box centre per column.
    halfwidth : float
        Box half-width.

    Returns
    -------
    dict
        Arrays per channel: ``bias_ppm``, ``err_ppm``, ``out_pct`` (``R_out /
        F`` in per cent), ``hot_ppm``.

    Examples
    --------
    >>> background_bias(vis, g, [1.0, 1.5, 2.0], centre)["bias_ppm"]  # doctest: +SKIP
    """
    truth, a = _resolve(vis)
    edges = np.asarray(edges, float)
    live = np.asarray(a["REFPIX"]) == 0
    w = box_weights(centre, halfwidth, live.shape[0]) * live
    resid, var, star = _residual(a, group, w)
    wl = np.asarray(a["SHIFTS"]["white_lc"], float)
    full = wl < 1 - 0.9 * (1 - wl.min())
    oot = wl > 1 - 1e-6   # batman leaves ~1e-8 off 1 out of transit
    curves = box_light_curves(vis, edges, centre, halfwidth)
    hot_w = w * np.asarray(a["HOT"], float)
    ys, xs = np.nonzero(hot_w)
    hot = np.zeros(w.shape[1])
    np.add.at(hot, xs, hot_w[ys, xs] * np.asarray(group.mask[:, ys, xs], float).mean(axis=0))
    wave = np.asarray(a["WAVE"][0], float)
    idx = np.searchsorted(edges, wave, side="right") - 1
    out = {k: np.full(edges.size - 1, np.nan) for k in ("bias_ppm", "err_ppm", "out_pct",
                                                         "hot_ppm")}
    for k in range(edges.size - 1):
        sel = (idx == k) & np.isfinite(wave) & (star > 0)
        if not sel.any():
            continue
        f = star[sel].sum()
        r_in, r_out = (resid[t][:, sel].sum(axis=1).mean() for t in (full, oot))
        v = sum(var[t][:, sel].sum(axis=1).mean() / t.sum() for t in (full, oot))
        drop = 1 - curves[k][full].mean() / curves[k][oot].mean()
        per_depth = box_depths_from(a, truth, edges[k:k + 2], centre, halfwidth, 1)[0] / drop
        out["bias_ppm"][k] = ((r_in - r_out) / f + drop * r_out / f) * per_depth
        out["err_ppm"][k] = np.sqrt(v) / f * per_depth
        out["out_pct"][k] = 100 * r_out / f
        out["hot_ppm"][k] = -drop * hot[sel].sum() / f * per_depth
    return out
