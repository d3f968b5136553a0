"""Spectral extraction: box (fractional edge pixels) and optimal (Horne 1986).

All functions work in the dispersion-major view (see :mod:`tsocontainer.spectra.blocks`):
axis -1 runs along the dispersion, axis -2 across it. Block functions are
vectorised over integrations and columns; :func:`extract` loops over blocks
of integrations of a cube's working data.

Optimal extraction and the moving trace
    The profile of each integration is the visit's profile plus a per-pixel
    motion model (:func:`~tsocontainer.spectra.profile.profile_motion`, in ``profile.py``): each pixel's share of its column's
    flux regressed over the visit on the integration's trace offset ``dy``
    (to ``dy**2``) and a PSF-width amplitude. It follows the sub-pixel
    motion of undersampled PSFs (NIRSpec PRISM, NIRCam) pixel by pixel,
    which one visit profile shifted by a derivative cannot (the sampled
    profile of a ~1.8 px FWHM PSF is not a smooth function of the shift),
    and has the noise of a visit average, not that of a profile fitted to
    each integration (which follows that integration's noise: across many
    columns such an extraction drifts back to a box and its single-column
    errors understate the channel errors at read-noise-limited ends). The
    pixels used are those touching the aperture ``centre +- width/2`` of
    each integration.

Bad pixels
    Pixels that are masked (``cube.mask`` false, or excluded because they
    belong to another order) do not enter the sums. In a box, the flux of the
    good pixels is divided by the fraction of the column's profile they cover
    (profile from the smoothed visit-average frame), and the column is masked
    when that fraction is below ``min_fraction``. Optimal extraction needs no
    such correction: the profile fit simply has fewer pixels (the column is
    masked below the same ``min_fraction``, when the fit would rest on the
    faint wings). A column with a pixel that is never good has no visit value
    there to build its own profile and motion model from; where the trace is
    nearly straight it is fitted with those of its complete neighbours (same
    sub-pixel phase, :func:`~tsocontainer.spectra.profile.borrow_incomplete_columns`).

Variance
    Box: ``sum(w**2 var)`` over the aperture (``w`` the fractional pixel
    weights). Optimal: the weights ``P/V`` use the visit-average variance
    ``V`` (noise-free, so they do not correlate with the data) plus any
    significant scatter the motion model leaves beyond it (1/f residuals,
    averaged along the dispersion), and the reported variance propagates
    each integration's own variance through those weights:
    ``sum((P/V)**2 var) / sum(P**2/V)**2``.

SOSS orders 1 and 2
    Each order is extracted with the pixels of the other orders' apertures
    excluded where the apertures overlap (columns near the red end of order 1,
    x < ~300; :mod:`tsocontainer.spectra.overlap`). The other order's wing
    that remains inside the aperture is not removed;
    :func:`~tsocontainer.spectra.overlap.order_contamination` estimates its
    fraction per column (the other order's profile mirrored about its
    centre), reported with the spectra. The decontamination of the box by a joint fit of
    the orders' profiles is :mod:`tsocontainer.spectra.decontaminate`
    (``TSOGroup.extract(decontaminate=True)``).
"""
from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass, replace

import numpy as np

from tsocontainer._util import check_option
from tsocontainer.arrays.views import (dispersion_major, gather, nanmedian_quiet, nanmedian_short,
                                      window_rows)
from tsocontainer.spectra.blocks import for_blocks, iter_blocks, reference_frames
from tsocontainer.spectra.overlap import order_contamination, overlap_exclusion
from tsocontainer.spectra.profile import (OrderProfile, borrow_incomplete_columns,
                                          motion_regressors, profile_motion, spatial_profile)
from tsocontainer.spectra.trace import _orders_of, mode_defaults, trace_references

__all__ = [
    "EXTRACT_METHODS",
    "ExtractOptions",
    "box_block",
    "optimal_block",
    "order_wavelength",
    "white_light_scatter",
    "optimize_width",
    "wavelength_offset",
    "extract",
]

log = logging.getLogger(__name__)

EXTRACT_METHODS = ("box", "optimal")
#: header values of the cube copied to the spectra's meta
_HEADER_KEYS = ("INSTRUME", "EXP_TYPE", "DETECTOR", "SUBARRAY", "FILTER", "PUPIL", "GRATING",
                "TARGNAME", "PWCPOS", "BUNIT", "PROGRAM", "OBSERVTN", "VISIT")
#: window (columns) of the profile smoothing along dispersion (local polynomials), per mode
PROFILE_WINDOW = {"soss": 11, "nirspec": 15, "nircam": 31, "miri": 15}


# -------------------------------------------------------------- extraction
def box_block(data, var, good, centre, width, profile=None, min_fraction: float = 0.5,
              exclude=None):
    """Box extraction of a block with fractional edge pixels.

    Parameters
    ----------
    data, var : ndarray, shape (nb, ny, nx)
        Dispersion-major data and variance.
    good : ndarray of bool, shape (nb, ny, nx)
        Usable pixels.
    centre : ndarray, shape (nb, nx) or (nx,)
        Aperture centres (NaN: column not extracted).
    width : float or ndarray
        Full aperture width (px), scalar or per column.
    profile : ndarray, shape (ny, nx), optional
        Normalised spatial profile for the bad-pixel correction; without it a
        column with a bad pixel in its aperture is masked.
    min_fraction : float
        Mask columns whose good pixels cover less of the profile than this.
    exclude : ndarray of bool, shape (ny, nx), optional
        Pixels removed from the aperture itself (another order's): unlike bad
        pixels they are not corrected for.

    Returns
    -------
    flux, var : ndarray of float64, shape (nb, nx)
    ok : ndarray of bool, shape (nb, nx)
        Columns with a valid measurement.

    Examples
    --------
    One integration of 5 columns with a bad pixel in column 2: without a profile
    that column is masked, with one its flux is corrected for the missing pixel.

    >>> import numpy as np
    >>> data = np.repeat(100 * np.exp(-0.5 * ((np.arange(20.0)[None, :, None] - 9.5) / 1.0) ** 2),
    ...                  5, axis=2)
    >>> good = np.ones(data.shape, bool)
    >>> good[0, 9, 2] = False
    >>> box_block(data, data + 1.0, good, np.full(5, 9.5), 8.0)[2]
    array([[ True,  True, False,  True,  True]])
    >>> flux, var, ok = box_block(data, data + 1.0, good, np.full(5, 9.5), 8.0,
    ...                           profile=data[0] / data[0].sum(0))
    >>> flux.round(2)
    array([[250.65, 250.65, 250.65, 250.65, 250.65]])
    """
    ny = data.shape[-2]
    centre = np.broadcast_to(centre, (data.shape[0], data.shape[-1]))
    rows, w = window_rows(centre, np.asarray(width, float) / 2.0, ny)
    if exclude is not None:
        w = np.where(gather(exclude, rows), 0.0, w)
    w = w.astype(np.float32)
    d = gather(data, rows)
    v = gather(var, rows)
    g = gather(good, rows) & np.isfinite(d) & np.isfinite(v)
    wg = np.where(g, w, np.float32(0))
    flux = (wg * np.where(g, d, 0)).sum(-2, dtype=np.float64)
    fvar = (wg * wg * np.where(g, v, 0)).sum(-2, dtype=np.float64)
    if profile is not None:
        p = gather(profile, rows).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = (wg * p).sum(-2, dtype=np.float64) / (w * p).sum(-2, dtype=np.float64)
        frac = np.where(np.isfinite(frac), frac, (wg.sum(-2) / np.maximum(w.sum(-2), 1e-30)))
    else:
        frac = np.where(((w > 0) & ~g).any(-2), 0.0, 1.0)
    ok = np.isfinite(centre) & (frac >= min_fraction) & (w.sum(-2) > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        flux = np.where(ok, flux / frac, np.nan)
        fvar = np.where(ok, fvar / frac**2, np.nan)
    return flux, fvar, ok


def optimal_block(data, var, good, centre, halfwidth: float, model: OrderProfile, width=None,
                  nsigma: float = 5.0, maxiter: int = 4, min_fraction: float = 0.5):
    """Optimal (Horne 1986) extraction of a block.

    The flux of a column is ``sum(P d / V) / sum(P**2 / V)`` over the good
    pixels touching the aperture ``centre +- halfwidth`` (those of a box of
    the same width, whole), with ``P`` the integration's profile (normalised
    over the profile region, so masked pixels need no correction) and ``V``
    the weights' variance; the worst pixel of a column deviating from
    ``f P`` by more than ``nsigma`` is rejected, up to ``maxiter`` times.

    Parameters
    ----------
    data, var : ndarray, shape (nb, ny, nx)
        Dispersion-major data and per-integration variance.
    good : ndarray of bool, shape (nb, ny, nx)
        Usable pixels.
    centre : ndarray, shape (nb, nx) or (nx,)
        Per-integration trace (aperture centre and regressors of the motion model).
    halfwidth : float
        Aperture half-width (px) around ``centre``.
    model : OrderProfile
        The order's profile, the reference trace and region it was built on,
        its motion basis (or None), the weights' variance ``V`` and the
        excluded pixels.
    width : ndarray, shape (nb,), optional
        Width regressor of the motion model (from :func:`profile_motion`).
    nsigma : float
        Outlier rejection threshold (one pixel per column per iteration).
    maxiter : int
        Rejection iterations.
    min_fraction : float
        Mask columns whose good pixels (before rejection) hold less of the
        aperture's profile than this: their flux would rest on the faint wings.

    Returns
    -------
    flux, var : ndarray of float64, shape (nb, nx)
    ok : ndarray of bool, shape (nb, nx)
    nrej : int
        Pixels rejected.

    Examples
    --------
    One integration with 2000 DN in every column, spread over the profile; one
    cosmic ray of 500 DN is rejected:

    >>> import numpy as np
    >>> from tsocontainer.spectra.profile import spatial_profile
    >>> frame = np.exp(-0.5 * ((np.arange(20.0)[:, None] - 9.6) / 1.2) ** 2).repeat(30, 1)
    >>> centre = np.full(30, 9.6)
    >>> prof = spatial_profile(frame, centre, 4.0)[0]
    >>> model = OrderProfile(centre, prof, 4.0, 2000 * prof + 4.0)
    >>> data = (2000 * prof)[None]
    >>> data[0, 11, 2] += 500.0
    >>> flux, var, ok, nrej = optimal_block(data, data + 4.0, np.ones(data.shape, bool), centre,
    ...                                     4.0, model)
    >>> np.round(flux[0, :4], 6), nrej
    (array([2000., 2000., 2000., 2000.]), 1)
    """
    ref_centre, profile, basis, var_ref = model.centre, model.profile, model.basis, model.var
    nb, ny, nx = data.shape
    centre = np.broadcast_to(centre, (nb, nx))
    rows, w = window_rows(ref_centre, model.halfwidth, ny)
    sup = w > 0
    if model.exclude is not None:
        sup &= ~gather(model.exclude, rows)
    p = gather(profile, rows)
    if basis is not None:
        b = np.stack([gather(np.asarray(bk), rows) for bk in basis])
        p = p + np.einsum("kix,krx->irx", motion_regressors(centre, ref_centre, width)[: len(b)], b)
    p = _normalise_rows(np.clip(p, 0.0, None) * sup)
    d = gather(data, rows).astype(float)
    v = gather(var, rows).astype(float)
    vm = np.broadcast_to(gather(np.nan_to_num(var_ref, nan=np.inf), rows), d.shape)
    cen = np.where(np.isfinite(centre), centre, -1e6)[:, None, :]
    inap = (rows + 0.5 > cen - halfwidth) & (rows - 0.5 < cen + halfwidth)
    use = gather(good, rows) & sup & inap & np.isfinite(d) & np.isfinite(v) & np.isfinite(vm)
    use &= vm > 0
    d, v = np.where(use, d, 0.0), np.where(use, v, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cover = (p * use).sum(-2) / (p * (sup & inap)).sum(-2)
    nrej = 0
    f_start = _robust_flux(d, p, use)
    for it in range(maxiter + 1):
        u = np.where(use, p / np.where(use, vm, 1.0), 0.0)
        norm = (u * p).sum(-2)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = (u * d).sum(-2) / norm
        if it == maxiter:
            break
        # the first residuals use a median-based flux, so that one strong outlier does
        # not drag the model and get good core pixels rejected in its place
        fm = np.where(np.isfinite(f_start), f_start, f) if it == 0 else f
        with np.errstate(invalid="ignore"):
            z2 = np.where(use, (d - fm[:, None, :] * p) ** 2 / vm, 0.0)
        worst = np.argmax(z2, axis=-2)[:, None, :]
        zmax = np.take_along_axis(z2, worst, axis=-2)[:, 0, :]
        rej = np.nan_to_num(zmax) > nsigma**2
        if not rej.any():
            break
        nrej += int(rej.sum())
        np.put_along_axis(use, worst, ~rej[:, None, :] & np.take_along_axis(use, worst, axis=-2), axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        fvar = (u**2 * v).sum(-2) / norm**2
    ok = np.isfinite(centre) & (norm > 0) & np.isfinite(f) & (cover >= min_fraction)
    return np.where(ok, f, np.nan), np.where(ok, fvar, np.nan), ok, nrej


def _normalise_rows(p):
    """``p`` (..., K, nx) divided by its sum over axis -2 (0 where that is 0)."""
    s = p.sum(-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, p / s, 0.0)


def _robust_flux(d, p, use, core: float = 0.3, most: int = 7):
    """Median of ``d / p`` over the core pixels (``p >= core * max p``, at most ``most``)."""
    pu = np.where(use, p, 0.0)
    if pu.shape[-2] > most:   # the ``most`` largest profile values of each column
        top = np.argpartition(-pu, most - 1, axis=-2)[..., :most, :]
        pu, d = np.take_along_axis(pu, top, axis=-2), np.take_along_axis(d, top, axis=-2)
    sel = (pu >= core * pu.max(axis=-2, keepdims=True)) & (pu > 0)
    with np.errstate(invalid="ignore", divide="ignore"):   # no catch_warnings: not thread-safe
        return nanmedian_short(np.where(sel, d / np.where(sel, pu, 1.0), np.nan), axis=-2)


# ------------------------------------------------------------ wavelengths
def order_wavelength(cube, order: int, centre=None, shift: float = 0.0):
    """Wavelength (micron) of every dispersion pixel of ``order``.

    From the cube's own wavelength map (calints WAVELENGTH) sampled along
    the trace when there is one, else from the mode's solution.

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry.
    order : int
        Spectral order.
    centre : ndarray, shape (nx,), optional
        Reference trace (rows in the dispersion-major view), used to sample a map.
    shift : float
        Measured shift (px) of the spectrum along the dispersion: the
        wavelength at pixel ``x`` is the solution's at ``x - shift``.

    Returns
    -------
    ndarray, shape (nx,)
        NaN where undefined. Without a map or a mode: pixel numbers (logged).

    Examples
    --------
    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> wave_map = np.tile(np.linspace(1.0, 2.0, 8), (5, 1))         # calints WAVELENGTH
    >>> src = CubeSource.from_arrays(np.ones((2, 5, 8)), np.ones((2, 5, 8)), wave=wave_map)
    >>> order_wavelength(src, 1)[:3].round(4), order_wavelength(src, 1, shift=1.0)[:3].round(4)
    (array([1.    , 1.1429, 1.2857]), array([   nan, 1.    , 1.1429]))
    """
    axis = cube.geometry.dispersion_axis
    n = (cube.geometry.shape[1] if axis == 1 else cube.geometry.shape[0])
    x = np.arange(n, dtype=float)
    if cube.wave is not None:
        wave = cube.wave
        if wave.ndim == 3:
            orders = tuple(cube.geometry.mode.spec.orders) if cube.geometry.mode is not None else (1,)
            wave = wave[orders.index(order)]
        wm = dispersion_major(np.asarray(wave, float), axis)
        c = wm.shape[0] / 2.0 if centre is None else centre
        r = np.clip(np.rint(np.nan_to_num(np.broadcast_to(c, x.shape), nan=-1)), 0, wm.shape[0] - 1)
        w = wm[r.astype(np.intp), np.arange(n)]
        w[~(w > 0) | ~np.isfinite(np.broadcast_to(c, x.shape))] = np.nan
        ok = np.isfinite(w)
        return np.interp(x - shift, x[ok], w[ok], left=np.nan, right=np.nan) if ok.sum() > 1 else w
    if cube.geometry.mode is not None:
        return np.asarray(cube.geometry.mode.wavelength(order, x + cube.geometry.x_offset - shift,
                                                header=cube.meta), float)
    log.warning("no wavelength solution (no mode, no map): using pixel numbers as wavelengths")
    return x - shift


# ------------------------------------------------------------ width choice
def white_light_scatter(white, oot=None) -> float:
    """Robust point-to-point scatter (ppm) of a normalised white-light curve.

    Parameters
    ----------
    white : array_like, shape (N,)
        White-light flux.
    oot : array_like of bool, shape (N,), optional
        Integrations to use (default all: the point-to-point difference is
        insensitive to a slow transit shape).

    Returns
    -------
    float
        1.4826 MAD of consecutive differences / sqrt(2), in ppm of the median.

    Examples
    --------
    >>> import numpy as np
    >>> white = 1.0 + np.random.default_rng(2).normal(0, 1e-3, 500)     # 1000 ppm of white noise
    >>> round(white_light_scatter(white))
    1014
    """
    white = np.asarray(white, float)
    sel = np.isfinite(white) if oot is None else np.asarray(oot, bool) & np.isfinite(white)
    idx = np.flatnonzero(sel)
    if idx.size < 3:
        return np.nan
    y = white[idx] / np.median(white[idx])
    d = np.diff(y)[np.diff(idx) == 1]
    if d.size < 2:
        return np.nan
    return float(1e6 * 1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2))


def optimize_width(cube, centre, widths, profile=None, oot=None, exclude=None):
    """Box width that minimises the white-light point-to-point scatter.

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry.
    centre : ndarray, shape (N, nx)
        Per-integration trace (dispersion-major rows).
    widths : array_like
        Candidate full widths (px).
    profile : ndarray, shape (ny, nx), optional
        For the bad-pixel correction.
    oot : array_like of bool, shape (N,), optional
        Out-of-transit integrations.
    exclude : ndarray of bool, optional
        Pixels removed from the aperture.

    Returns
    -------
    best : float
        The chosen width.
    scatter : ndarray
        Scatter (ppm) for every candidate width.

    Examples
    --------
    A faint trace in read noise: a narrow box loses flux, a wide one adds noise.

    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> rows = np.arange(24.0)[None, :, None]
    >>> model = np.repeat(200 * np.exp(-0.5 * ((rows - 11.5) / 1.2) ** 2), 40, axis=2).repeat(60, 0)
    >>> cube = model + np.random.default_rng(0).normal(0, 5.0, model.shape)
    >>> best, scatter = optimize_width(CubeSource.from_arrays(cube, model + 25.0),
    ...                                np.full((60, 40), 11.5), [2, 4, 6, 10, 16])
    >>> best, (scatter / scatter.min()).round(2)
    (4.0, array([1.2 , 1.  , 1.17, 1.75, 2.28]))
    """
    widths = np.asarray(widths, float)
    white = np.zeros((widths.size, cube.N))
    for i0, i1, data, var, good in iter_blocks(cube, desc="width", finite=False):
        for k, wd in enumerate(widths):
            f, _, ok = box_block(data, var, good, centre[i0:i1], wd, profile, exclude=exclude)
            white[k, i0:i1] = np.where(ok, f, 0.0).sum(1)
    scatter = np.array([white_light_scatter(wl, oot) for wl in white])
    best = float(widths[np.nanargmin(scatter)])
    return best, scatter


def wavelength_offset(wave, flux, template_wave, template_flux, max_shift: float = 5.0,
                      step: float = 0.05, smooth: int = 31):
    """Global wavelength offset from the cross-correlation with a template.

    Both spectra are divided by a running smooth version of themselves
    (continuum and throughput removed); the template is evaluated at the
    wavelengths of pixels shifted by ``s`` and the shift maximising the
    correlation is refined by a parabola (exoTEDRF's do_ccf idea).

    Parameters
    ----------
    wave, flux : array_like, shape (nx,)
        Model wavelength per pixel and the observed (median) spectrum.
    template_wave, template_flux : array_like
        Template spectrum (any sampling covering ``wave``).
    max_shift : float
        Largest shift tried (px).
    step : float
        Shift grid step (px).
    smooth : int
        Running-median window (px) of the continuum.

    Returns
    -------
    shift : float
        Pixel shift ``s``: the corrected wavelength at pixel ``x`` is the
        model's at ``x - s``.
    dwave : float
        The same as a wavelength offset (micron), at the median dispersion.

    Examples
    --------
    A spectrum observed 1.5 px off its wavelength solution:

    >>> import numpy as np
    >>> wave = 1.0 + 0.01 * np.arange(400.0)
    >>> tw = np.linspace(0.5, 6.0, 5000)
    >>> tf = 1.0 + 0.3 * np.sin(40 * tw)
    >>> shift, dwave = wavelength_offset(wave, np.interp(wave - 0.015, tw, tf), tw, tf)
    >>> round(shift, 2), round(dwave, 4)
    (1.5, 0.015)
    """
    from scipy.ndimage import median_filter

    wave, flux = np.asarray(wave, float), np.asarray(flux, float)
    tw, tf = np.asarray(template_wave, float), np.asarray(template_flux, float)
    srt = np.argsort(tw)
    tw, tf = tw[srt], tf[srt]
    x = np.arange(wave.size, dtype=float)
    ok = np.isfinite(wave) & np.isfinite(flux) & (flux > 0)
    if ok.sum() < 2 * smooth:
        raise ValueError("too few valid pixels for a cross-correlation")
    xs, ws = x[ok], wave[ok]

    def highpass(y):
        cont = median_filter(y, size=smooth, mode="nearest")
        return y / cont - 1.0

    obs = highpass(flux[ok])
    shifts = np.arange(-max_shift, max_shift + step / 2, step)
    ccf = np.empty(shifts.size)
    for k, s in enumerate(shifts):
        wl = np.interp(xs - s, xs, ws)
        tmpl = highpass(np.interp(wl, tw, tf))
        ccf[k] = np.sum(obs * tmpl) / np.sqrt(np.sum(obs**2) * np.sum(tmpl**2))
    k = int(np.clip(np.argmax(ccf), 1, shifts.size - 2))
    den = ccf[k - 1] - 2 * ccf[k] + ccf[k + 1]
    s = shifts[k] + (0.5 * step * (ccf[k - 1] - ccf[k + 1]) / den if den != 0 else 0.0)
    return float(s), float(s * np.nanmedian(np.gradient(ws)))


# ------------------------------------------------------------------ driver
@dataclass(frozen=True)
class ExtractOptions:
    """How spectra are extracted: method, aperture, overlap and rejection.

    Parameters
    ----------
    method : {'box', 'optimal'}
        Box with fractional edge pixels, or Horne (1986) optimal extraction.
    width : float, 'optimize' or None
        Full aperture width (px) around the trace (optimal: pixels within
        ``width/2`` are used); ``'optimize'`` picks, per order, the box width
        minimising the white-light point-to-point scatter (see
        :func:`optimize_width`); None: per mode
        (:data:`tsocontainer.spectra.trace.MODE_DEFAULTS`).
    exclude_overlap : bool
        Leave out pixels in more than one order's aperture (SOSS).
    nsigma : float
        Optimal extraction outlier threshold.
    min_fraction : float
        Mask columns whose good pixels hold less of the profile than this
        (box: of the aperture's visit profile; optimal: of the integration's).
    wave_shift : float
        Shift (px) of the spectra along dispersion applied to the wavelength
        solution (e.g. the visit-mean x shift or a CCF offset).

    Raises
    ------
    ValueError
        On an unknown method, or a width that is neither positive nor ``'optimize'``.

    Examples
    --------
    >>> ExtractOptions("optimal", width=8.0)
    ExtractOptions(method='optimal', width=8.0, exclude_overlap=True, nsigma=5.0,
                   min_fraction=0.5, wave_shift=0.0)
    >>> ExtractOptions(width=-1)
    Traceback (most recent call last):
    ...
    ValueError: width must be positive, got -1
    """

    method: str = "box"
    width: float | str | None = None
    exclude_overlap: bool = True
    nsigma: float = 5.0
    min_fraction: float = 0.5
    wave_shift: float = 0.0

    def __post_init__(self):
        check_option(self.method, EXTRACT_METHODS, "method")
        width = self.width
        if isinstance(width, str) and width != "optimize":
            raise ValueError(f"width={width!r}: give a number of pixels or 'optimize'")
        if width is not None and not isinstance(width, str) and not float(width) > 0:
            raise ValueError(f"width must be positive, got {width!r}")


def _geometry(cube, orders, traces, reference):
    frame, var = reference if reference is not None else reference_frames(cube)
    if traces is None:
        refs, _ = trace_references(cube, orders, reference=(frame, var))
        traces = {o: np.tile(r["centre"], (cube.N, 1)) for o, r in refs.items()}
    ref_c = {o: nanmedian_quiet(np.asarray(traces[o], float), axis=0) for o in orders if o in traces}
    missing = [o for o in orders if o not in ref_c or not np.isfinite(ref_c[o]).any()]
    for o in missing:
        log.warning("order %d has no trace: not extracted", o)
        ref_c.pop(o, None)
    if not ref_c:
        raise ValueError(f"none of the orders {list(orders)} has a trace to extract")
    return frame, var, traces, ref_c


def extract(cube, options: ExtractOptions | None = None, orders=None, *, traces=None,
            reference=None, oot=None, template=None, regressors=None):
    """Extract per-integration spectra of every order.

    Parameters
    ----------
    cube : CubeSource
        The visit (working data, mask, time, mode; blocks of ``cube.block_size``
        integrations, progress bars if ``cube.progress``).
    options : ExtractOptions, optional
        Method, aperture width, overlap exclusion, rejection threshold and
        wavelength shift (default :class:`ExtractOptions`: a box of the mode's width).
    orders : int or sequence of int, optional
        Orders (default: all with a trace).
    traces : dict, optional
        Order -> (N, nx) per-integration traces (default: the reference trace
        for every integration).
    reference : tuple, optional
        ``(frame, var)`` from :func:`~tsocontainer.spectra.blocks.reference_frames`.
    oot : array_like of bool, optional
        Out-of-transit integrations for ``width='optimize'``.
    template : tuple of array_like, optional
        ``(wave, flux)`` of a stellar template: the global wavelength offset
        from :func:`wavelength_offset` is measured on the median spectrum of
        the first order and added to the options' ``wave_shift``.
    regressors : dict, optional
        Name -> (N,) time series attached to the spectra.

    Returns
    -------
    Spectra

    Raises
    ------
    ValueError
        If an order is not one of the mode's, or none has a trace.

    Examples
    --------
    A straight trace (no mode: wavelengths are pixel numbers) extracted with an 8 px box:

    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> rows = np.arange(24.0)[None, :, None]
    >>> cube = np.repeat(1000 * np.exp(-0.5 * ((rows - 10.3) / 1.5) ** 2), 100, axis=2).repeat(3, 0)
    >>> spec = extract(CubeSource.from_arrays(cube, cube + 25.0), ExtractOptions(width=8.0))
    >>> spec.orders, spec.flux[1].shape, round(float(spec.flux[1][0, 50]), 1)   # of 3760 in all
    ((1,), (3, 100), 3727.0)
    """
    from tsocontainer.spectra.container import Spectra

    t0 = _time.perf_counter()
    opts = options or ExtractOptions()
    orders = _orders_of(cube, orders)
    frame, var_ref, traces, ref_c = _geometry(cube, orders, traces, reference)
    orders = tuple(ref_c)
    widths, excl, prof, window = _apertures(cube, frame, var_ref, traces, ref_c, opts, oot)
    models = None
    if opts.method == "optimal":
        models = _motion_model(cube, frame, var_ref, traces, ref_c, widths, excl, window)
    flux, fvar, good, nrej = _extract_blocks(cube, opts, traces, widths, excl, prof, models)
    shift = float(opts.wave_shift)
    if template is not None:
        o = orders[0]
        med = nanmedian_quiet(np.where(good[o], flux[o], np.nan), axis=0)
        s, _ = wavelength_offset(order_wavelength(cube, o, ref_c[o], shift), med, *template)
        shift += s
        log.info("wavelength offset from the template CCF: %.3f px", s)
    nx = frame.shape[1]
    contam = (order_contamination(frame, ref_c, widths, excl)
              if len(orders) > 1 and opts.exclude_overlap else {o: np.zeros(nx) for o in orders})
    meta = {k: cube.meta[k] for k in _HEADER_KEYS if cube.meta.get(k) not in (None, "")}
    meta.update({"EXTRMETH": opts.method, "WAVESHFT": shift,
                 "DISPAXIS": 1 if cube.geometry.dispersion_axis == 1 else 2,
                 "MODE": cube.geometry.mode.name if cube.geometry.mode is not None else "",
                 **{f"WIDTH{o}": widths[o] for o in orders}})
    spec = Spectra(cube.time, {o: order_wavelength(cube, o, ref_c[o], shift) for o in orders},
                   flux, fvar, good, int_numbers=cube.int_numbers, regressors=regressors, meta=meta,
                   columns={o: {"trace": ref_c[o], "contamination": contam[o]} for o in orders})
    log.info("extract: %s, orders %s, widths %s px, %d integrations, %d pixels rejected, %.1f s",
             opts.method, list(orders), [round(widths[o], 2) for o in orders], cube.N, nrej,
             _time.perf_counter() - t0)
    return spec


def _extract_blocks(cube, opts, traces, widths, excl, prof, models):
    """Flux, variance and good columns of every order and integration, block by block."""
    orders = tuple(widths)
    nx = next(iter(prof.values()))[0].shape[1]
    flux = {o: np.full((cube.N, nx), np.nan) for o in orders}
    fvar = {o: np.full((cube.N, nx), np.nan) for o in orders}
    good = {o: np.zeros((cube.N, nx), bool) for o in orders}

    def work(i0, i1, data, var, gd):
        nrej = 0
        for o in orders:
            tr = np.asarray(traces[o][i0:i1], float)
            if models is None:
                f, v, ok = box_block(data, var, gd, tr, widths[o], prof[o][0], opts.min_fraction,
                                     excl[o])
            else:
                model, wd = models[o]
                f, v, ok, n = optimal_block(data, var, gd, tr, widths[o] / 2.0, model,
                                            width=wd[i0:i1], nsigma=opts.nsigma,
                                            min_fraction=opts.min_fraction)
                nrej += n
            flux[o][i0:i1], fvar[o][i0:i1], good[o][i0:i1] = f, v, ok
        return nrej

    nrej = sum(for_blocks(cube, work, desc=f"{opts.method} extraction", finite=False))
    return flux, fvar, good, nrej


def _apertures(cube, frame, var_ref, traces, ref_c, opts, oot):
    """Width, excluded pixels and spatial profile of every order."""
    orders = tuple(ref_c)
    ny = frame.shape[0]
    width = opts.width
    dflt = mode_defaults(cube.geometry.mode)
    widths = {o: float(dflt["box_width"] if width in (None, "optimize") else width) for o in orders}
    window = PROFILE_WINDOW.get(getattr(cube.geometry.mode, "key", None), 15)

    def build():
        excl = (overlap_exclusion(ref_c, widths, ny) if opts.exclude_overlap and len(orders) > 1
                else {o: None for o in orders})
        prof = {o: spatial_profile(frame, ref_c[o], widths[o] / 2.0, window, exclude=excl[o],
                                   var=var_ref) for o in orders}
        return excl, prof

    excl, prof = build()
    if width == "optimize":
        for o in orders:
            cands = widths[o] * np.linspace(0.5, 1.5, 11)
            widths[o], scat = optimize_width(cube, traces[o], cands, prof[o][0], oot, excl[o])
            log.info("order %d: optimal box width %.1f px (scatter %.0f-%.0f ppm)", o, widths[o],
                     np.nanmin(scat), np.nanmax(scat))
        excl, prof = build()
    return widths, excl, prof, window


def _motion_model(cube, frame, var_ref, traces, ref_c, widths, excl, window):
    """The optimal-extraction model of every order: ``(OrderProfile, width regressor)``.

    The profile region is the aperture around the reference trace widened by
    the trace's largest motion (at most the aperture half-width), so that it
    holds the aperture of every integration. The weights' variance is the
    visit average plus the significant excess scatter of :func:`profile_motion`.
    """
    profiles = {}
    for o, c in ref_c.items():
        dy = np.abs(np.asarray(traces[o], float) - c)
        move = np.nanmax(dy) if np.isfinite(dy).any() else 0.0
        hw = widths[o] / 2.0 + min(float(move), widths[o] / 2.0)
        prof = spatial_profile(frame, c, hw, window, exclude=excl[o], var=var_ref)[0]
        profiles[o] = OrderProfile(c, prof, hw, var_ref, exclude=excl[o])
    motion = profile_motion(cube, traces, profiles, frame, window)
    models = {}
    for o, p in profiles.items():
        # columns with a never-good pixel: the model of their complete neighbours
        prof, basis, cols = borrow_incomplete_columns(p.profile, motion[o][0], frame, p.centre,
                                                      p.halfwidth, p.exclude)
        if cols.size:
            log.info("order %d: %d columns with never-good pixels take their neighbours' "
                     "profile", o, cols.size)
        models[o] = (replace(p, profile=prof, basis=basis, var=var_ref + motion[o][2]),
                     motion[o][1])
    return models
