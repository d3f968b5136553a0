"""The traces of a visit: a reference trace per order and the trace of every integration.

Built on the column measurements of :mod:`tsocontainer.spectra.centring`, in the
*dispersion-major* view (see :mod:`tsocontainer.spectra.blocks`); for MIRI LRS a
trace is the column centre as a function of row. Traces are arrays
``(N, n_disp)`` of cross-dispersion centres, NaN where an order is off the
detector. How they are measured (centring method, window, smoothing) is a
:class:`TraceOptions`.

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
from dataclasses import dataclass, replace

import numpy as np

from tsocontainer._util import check_option
from tsocontainer.arrays.views import dispersion_major, gather, nanmedian_quiet, window_rows
from tsocontainer.spectra.blocks import for_blocks, reference_frames
from tsocontainer.spectra.centring import (FWHM_SIGMA, SMOOTH_METHODS, TRACE_METHODS, column_centres,
                                           local_background, smooth_trace, walk_trace)

__all__ = [
    "MODE_DEFAULTS",
    "TraceOptions",
    "mode_defaults",
    "guess_trace",
    "trace_reference",
    "trace_references",
    "fit_traces",
    "fit_single_trace",
]

log = logging.getLogger(__name__)


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

# ------------------------------------------------------------------ helpers
def mode_defaults(mode) -> dict:
    """Geometry defaults (``halfwidth``, ``box_width``, ``knot_spacing``) of ``mode``.

    Examples
    --------
    >>> from tsocontainer.modes import Mode, get_mode
    >>> prism = Mode(spec=get_mode("nirspec"), subarray="SUB512", grating="PRISM", filter="CLEAR")
    >>> mode_defaults(prism)["box_width"], mode_defaults(None)["box_width"]
    (8.0, 10.0)
    """
    key = getattr(mode, "key", None)
    return dict(MODE_DEFAULTS.get(key, _GENERIC))


@dataclass(frozen=True)
class TraceOptions:
    """How traces are measured: centring method, window and smoothing along the dispersion.

    Parameters
    ----------
    method : {'centroid', 'edgetrigger', 'gaussian'}
        Column centring method (:func:`~tsocontainer.spectra.centring.column_centres`).
    halfwidth : float, optional
        Centring window half-width (px); None: the mode's (:data:`MODE_DEFAULTS`).
    smooth : {'spline', 'poly', 'none'}
        Smoothing of the reference trace along dispersion
        (:func:`~tsocontainer.spectra.centring.smooth_trace`).
    knot_spacing : float, optional
        Spline knot spacing (px); None: the mode's.
    deg : int
        Polynomial degree for ``smooth='poly'``.
    min_snr : float
        Columns whose window S/N is below this do not constrain the reference
        trace; an order whose median S/N is below it is not detected (all NaN).

    Raises
    ------
    ValueError
        On an unknown ``method`` or ``smooth``.

    Examples
    --------
    >>> TraceOptions(method="gaussian").for_mode(None)
    TraceOptions(method='gaussian', halfwidth=5.0, smooth='spline', knot_spacing=64.0, deg=4,
                 min_snr=3.0)
    >>> TraceOptions(method="peak")
    Traceback (most recent call last):
    ...
    ValueError: unknown method 'peak'; allowed: centroid, edgetrigger, gaussian
    """

    method: str = "centroid"
    halfwidth: float | None = None
    smooth: str = "spline"
    knot_spacing: float | None = None
    deg: int = 4
    min_snr: float = 3.0

    def __post_init__(self):
        check_option(self.method, TRACE_METHODS, "method")
        check_option(self.smooth, SMOOTH_METHODS, "smooth")

    def for_mode(self, mode) -> "TraceOptions":
        """These options with the window and knot spacing not given taken from ``mode``.

        Parameters
        ----------
        mode : Mode or None
            Instrument mode (None: the generic defaults).

        Returns
        -------
        TraceOptions
            ``halfwidth`` and ``knot_spacing`` set (floats).

        Examples
        --------
        >>> from tsocontainer.modes import Mode, get_mode
        >>> prism = Mode(get_mode("nirspec"), subarray="SUB512", grating="PRISM", filter="CLEAR")
        >>> TraceOptions().for_mode(prism).halfwidth, TraceOptions(halfwidth=3).for_mode(prism).halfwidth
        (4.0, 3.0)
        """
        dflt = mode_defaults(mode)
        return replace(self, halfwidth=float(self.halfwidth or dflt["halfwidth"]),
                       knot_spacing=float(self.knot_spacing or dflt["knot_spacing"]))


# ------------------------------------------------------- reference traces
def guess_trace(mode, order: int, n_disp: int, meta=None, x_offset: int = 0,
                y_offset: int = 0):
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
    y_offset : int
        Cross-dispersion pixels by which the frame starts inside the subarray
        of the mode's trace model (:attr:`~tsocontainer.geometry.Geometry.y_offset`:
        e.g. 1792 for the SOSS rows of a FULL frame).

    Returns
    -------
    ndarray, shape (n_disp,), or None

    Examples
    --------
    The SOSS order-1 trace of SUBSTRIP256 is curved (rows at three columns):

    >>> from tsocontainer.modes import Mode, get_mode
    >>> soss = Mode(spec=get_mode("soss"), subarray="SUBSTRIP256", pupil="GR700XD", filter="CLEAR")
    >>> guess_trace(soss, 1, 2048)[[100, 1000, 2000]].round(1)
    array([79.3, 46.6, 67.8])
    >>> guess_trace(None, 1, 2048) is None
    True
    """
    if mode is None:
        return None
    func = mode.spec.module.trace_guess
    kwargs = {}
    pw = (meta or {}).get("PWCPOS")
    if pw is not None and "pwcpos" in inspect.signature(func).parameters:
        kwargs["pwcpos"] = float(pw)
    x = np.arange(n_disp, dtype=float) + x_offset
    guess = np.asarray(func(mode, order=order, x=x, **kwargs), float) - y_offset
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


def trace_reference(frame, var, guess=None, options: TraceOptions | None = None, *,
                    search: float | None = None, ref_halfwidth=None, clean=None,
                    bkg_width: int = 0):
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
        followed from the brightest column
        (:func:`~tsocontainer.spectra.centring.walk_trace`).
    options : TraceOptions, optional
        Centring method, narrow (per-integration) window half-width, smoothing
        and ``min_snr``; a window or knot spacing not given takes the generic
        defaults (5 px, 64 px).
    search : float, optional
        Range (px) of a global offset search of ``guess`` (default: the
        window half-width; 0 to skip).
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

    Examples
    --------
    A straight Gaussian trace at row 10.3 of a flat-spectrum frame:

    >>> import numpy as np
    >>> rows = np.arange(24.0)[:, None]
    >>> frame = np.repeat(1000 * np.exp(-0.5 * ((rows - 10.3) / 1.5) ** 2), 200, axis=1)
    >>> ref = trace_reference(frame, frame + 25.0, np.full(200, 10.0), TraceOptions(halfwidth=4.0))
    >>> ref["detected"], bool(np.allclose(ref["centre"], 10.3, atol=0.01))
    (True, True)
    """
    opts = (options or TraceOptions()).for_mode(None)
    method, halfwidth, min_snr = opts.method, opts.halfwidth, opts.min_snr
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
    use = _usable(snr, min_snr, opts.knot_spacing, onchip & np.isfinite(raw) & np.isfinite(wide)
                  & (base - hw_ref >= -0.5) & (base + hw_ref <= ny - 0.5)
                  & (np.abs(wide - base) < tol), clean)
    weight = np.where(use, (snr / np.where(np.isfinite(sig), sig, 1.0)) ** 2, 0.0)
    med_snr = float(np.nanmedian(np.where(onchip, snr, np.nan))) if onchip.any() else np.nan
    detected = bool(onchip.any() and med_snr >= min_snr and use.sum() >= 8)
    finite = float(np.isfinite(img).mean()) if img.size else 0.0
    why = ("" if detected else
           f"median column S/N {med_snr:.2g} (needs >= {min_snr:g}) over {int(onchip.sum())} "
           f"columns on the detector, {int(use.sum())} usable (needs 8); "
           f"{100 * finite:.0f} % of the visit-average frame is finite")
    centre = fwhm = np.full(nx, np.nan)
    if detected:
        centre = base + _smooth_extrapolate(x, wide - base, weight, opts.smooth, opts.knot_spacing,
                                            opts.deg)
        fwhm = FWHM_SIGMA * _smooth_extrapolate(x, sig, weight, "poly", opts.knot_spacing, 2)
        off = ~onchip | (centre < -0.5) | (centre > ny - 0.5)
        centre[off] = np.nan
        fwhm[off] = np.nan
    return dict(centre=centre, fwhm=fwhm, raw=raw, sigma=sig, weight=weight, snr=snr,
                offset=offset, detected=detected, bkg_width=int(bkg_width), bkg_halfwidth=hw_ref,
                why=why)


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


def _columns_in_frame(guess, halfwidth: float, ny: int) -> int:
    """Columns where the window ``guess +- halfwidth`` lies inside ``ny`` rows."""
    g = np.asarray(guess, float)
    with np.errstate(invalid="ignore"):
        return int(np.sum((g - halfwidth >= -0.5) & (g + halfwidth <= ny - 0.5)))


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


def trace_references(cube, orders=None, options: TraceOptions | None = None, reference=None):
    """Reference traces of ``orders`` on the visit-average frame.

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry.
    orders : int or sequence of int, optional
        Orders (default: all of the mode's).
    options : TraceOptions, optional
        How to measure (default :class:`TraceOptions`; a window or knot spacing
        not given takes the mode's, :data:`MODE_DEFAULTS`).
    reference : tuple of ndarray, optional
        ``(frame, var)`` from :func:`~tsocontainer.spectra.blocks.reference_frames`,
        to avoid recomputing it.

    Returns
    -------
    refs : dict
        Order -> the dict of :func:`trace_reference`, plus ``halfwidth``.
    reference : tuple
        ``(frame, var)`` used.

    Raises
    ------
    ValueError
        If an order is not one of the mode's.

    Examples
    --------
    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> rows = np.arange(24.0)[:, None]
    >>> cube = np.repeat(1000 * np.exp(-0.5 * ((rows - 10.3) / 1.5) ** 2), 200, axis=1)[None]
    >>> refs, (frame, var) = trace_references(CubeSource.from_arrays(cube, cube + 25.0))
    >>> list(refs), bool(np.allclose(refs[1]["centre"], 10.3, atol=0.01))
    ([1], True)
    """
    orders = _orders_of(cube, orders)
    dflt = mode_defaults(cube.geometry.mode)
    opts = (options or TraceOptions()).for_mode(cube.geometry.mode)
    hw = opts.halfwidth
    hw_ref = max(hw, float(dflt["ref_halfwidth"]) * hw / dflt["halfwidth"])
    frame, var = reference if reference is not None else reference_frames(cube)
    geo = cube.geometry
    allg = {o: guess_trace(geo.mode, o, frame.shape[1], cube.meta, geo.x_offset, geo.y_offset)
            for o in (cube.geometry.mode.spec.orders if cube.geometry.mode is not None else orders)}
    refs, first = {}, None
    for order in orders:
        guess = allg.get(order)
        search = None
        if guess is not None and first is not None:
            guess = guess + first
            search = 2.0
        clean = _clean_columns(allg, order, hw_ref + hw)
        ref = trace_reference(frame, var, guess, opts, search=search, ref_halfwidth=hw_ref,
                              clean=clean, bkg_width=int(dflt["bkg_width"]))
        if ref["detected"] and first is None and guess is not None:
            first = ref["offset"]
        if (not ref["detected"] and allg.get(order) is not None
                and _columns_in_frame(allg[order], hw, frame.shape[0]) < 8):
            # expected, not a failure: e.g. SOSS SUBSTRIP96 holds order 1 and only the edge
            # of order 2 (its core at the top rows), no order 3
            log.info("order %d: not in the %s frame (fewer than 8 columns where its nominal "
                     "trace +- %g px fits in it); its trace is NaN", order,
                     cube.geometry.subarray or "", hw)
        elif not ref["detected"]:
            log.warning("order %d: no trace detected (%s); its trace is NaN", order,
                        ref["why"])
        ref["halfwidth"] = hw
        refs[order] = ref
    return refs, (frame, var)


def fit_traces(cube, orders=None, options: TraceOptions | None = None, *, deg_int: int = 0,
               per_integration: bool = True, reference=None):
    """Trace centre and width of every order, column and integration.

    Parameters
    ----------
    cube : CubeSource
        The visit (its working data and mask are used; blocks of
        ``cube.block_size`` integrations, progress bars if ``cube.progress``).
    orders : int or sequence of int, optional
        Orders (default: all of the mode's; undetected ones come back NaN).
    options : TraceOptions, optional
        Centring method, window, smoothing of the reference trace and minimum
        column S/N (default :class:`TraceOptions`, windows per mode).
    deg_int : int
        Degree of the per-integration polynomial added to the reference trace
        (0: rigid shift, 1: shift and tilt).
    per_integration : bool
        Fit every integration (else all integrations get the reference trace).
    reference : tuple, optional
        ``(frame, var)`` from :func:`~tsocontainer.spectra.blocks.reference_frames`.

    Returns
    -------
    dict
        ``orders`` -> {``trace`` (N, nx), ``fwhm`` (N, nx), ``shift_y`` (N,),
        ``width_ratio`` (N,), ``reference`` (the :func:`trace_reference` dict)},
        plus ``frame`` and ``var`` (the reference frames).

    Raises
    ------
    ValueError
        If an order is not one of the mode's.

    Examples
    --------
    A straight trace that moves down by 0.1 px per integration:

    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> rows = np.arange(24.0)[None, :, None]
    >>> centre = 10.3 + 0.1 * np.arange(4.0)[:, None, None]
    >>> cube = np.repeat(1000 * np.exp(-0.5 * ((rows - centre) / 1.5) ** 2), 200, axis=2)
    >>> res = fit_traces(CubeSource.from_arrays(cube, cube + 25.0), options=TraceOptions(halfwidth=4))
    >>> np.round(res["orders"][1]["shift_y"], 2)
    array([-0.15, -0.05,  0.05,  0.15])
    """
    opts = options or TraceOptions()
    t0 = _time.perf_counter()
    refs, (frame, var) = trace_references(cube, orders, opts, reference)
    nx = frame.shape[1]
    out = {o: dict(trace=np.tile(r["centre"], (cube.N, 1)), fwhm=np.tile(r["fwhm"], (cube.N, 1)),
                   shift_y=np.zeros(cube.N), width_ratio=np.ones(cube.N), reference=r)
           for o, r in refs.items()}
    live = [o for o, r in refs.items() if r["detected"]]
    if per_integration and live:
        basis = _basis(nx, deg_int)
        def work(i0, i1, data, var, good):
            for o in live:
                tr, fw, dy, ratio = _block_traces(data, refs[o], opts.method, refs[o]["halfwidth"],
                                                  basis)
                out[o]["trace"][i0:i1], out[o]["fwhm"][i0:i1] = tr, fw
                out[o]["shift_y"][i0:i1], out[o]["width_ratio"][i0:i1] = dy, ratio

        for_blocks(cube, work, fill=frame, desc="tracing", var=False)
    for o in refs:
        bad = ~np.isfinite(refs[o]["centre"])
        out[o]["trace"][:, bad] = np.nan
        out[o]["fwhm"][:, bad] = np.nan
    log.info("fit_traces: %s, orders %s (detected %s), %d integrations, %.1f s", opts.method,
             list(refs), live, cube.N, _time.perf_counter() - t0)
    return dict(orders=out, frame=frame, var=var)


def fit_single_trace(cube, order: int = 1, integration: int = 0,
                     options: TraceOptions | None = None, reference=None):
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
    options : TraceOptions, optional
        As :func:`fit_traces`.
    reference : tuple, optional
        ``(frame, var)`` from :func:`~tsocontainer.spectra.blocks.reference_frames`
        (start guess and bad-pixel fill).

    Returns
    -------
    centre, fwhm : ndarray, shape (nx,)

    Raises
    ------
    IndexError
        If ``integration`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> rows = np.arange(24.0)[None, :, None]
    >>> centre = 10.3 + 0.1 * np.arange(4.0)[:, None, None]
    >>> cube = np.repeat(1000 * np.exp(-0.5 * ((rows - centre) / 1.5) ** 2), 200, axis=2)
    >>> c, fwhm = fit_single_trace(CubeSource.from_arrays(cube, cube + 25.0), integration=3)
    >>> round(float(np.median(c)), 2)
    10.6
    """
    if not -cube.N <= integration < cube.N:
        raise IndexError(f"integration {integration} out of range for N={cube.N}")
    integration %= cube.N
    opts = (options or TraceOptions()).for_mode(cube.geometry.mode)
    refs, (frame, var) = trace_references(cube, order, opts, reference=reference)
    ref = refs[int(order)]
    if not ref["detected"]:
        return ref["centre"], ref["fwhm"]
    data, v = cube.read(integration, integration + 1)
    axis = cube.geometry.dispersion_axis
    data, v = dispersion_major(data[0], axis), dispersion_major(v[0], axis)
    good = dispersion_major(cube.mask[integration], axis) & np.isfinite(data)
    data = np.where(good, data, np.nan_to_num(frame))
    one = trace_reference(data, np.where(good, v, var), ref["centre"],
                          replace(opts, halfwidth=ref["halfwidth"], min_snr=0.0), search=0.0)
    return one["centre"], one["fwhm"]
