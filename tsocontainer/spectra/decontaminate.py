"""Orders that overlap (SOSS 1, 2 and 3): a joint fit of their spatial profiles.

Where the spatial profiles of two orders share pixels (SOSS: order 2's red end
runs within ~20-45 pixels of order 1 at columns x < ~800 of SUBSTRIP256; order
3 comes close to order 2 at its blue end), a box around one order also holds
light of the other, which transits with the other's depth. This module
removes that light from each order's box, per column and integration:

1. **Profiles from the visit's own data** (:func:`order_profiles`). In the
   *clean* columns of an order, where no other order's profile region
   (``centre +- (width / 2 + pad)``) comes near it, the reference (deep) frame
   itself is the order's profile: it is sampled at offsets ``u = y - centre``
   from the trace and normalised per column. In the columns where another
   order comes near, the profile is the median of the ``anchor`` nearest clean
   columns, in those offset coordinates, placed on the trace (the SOSS
   cross-dispersion profile changes slowly along an order).
2. **Joint weighted least squares** (:func:`fit_amplitudes`). In every
   overlap column and integration, the data are modelled as
   ``sum_k a_k P_k(y)`` over every order whose profile reaches the column, with
   weights ``1 / V`` (``V`` the visit-average variance: noise-free, so the
   weights do not correlate with the data) over the good pixels. The
   amplitudes' variances and their covariance with each box come from the fit's
   covariance, propagated through each integration's own variance.
3. **Decontaminated box** (:func:`decontaminate`). The flux of order ``o`` in
   an overlap column is its box flux (as :func:`~tsocontainer.spectra.extract.box_block`
   measured it, so the spectra stay continuous where the overlap ends and order
   ``o`` is unchanged outside it) minus the light of every other order ``q``
   in that box, ``s_qo * a_q``, with ``s_qo`` the share of ``q``'s profile
   inside ``o``'s box. The other order's amplitude is its relative light
   curve, read where another extracted order sees the same wavelength in
   clean columns (:mod:`tsocontainer.spectra.contaminant_curves`), times the
   part of its fitted amplitude that follows that curve rather than ``o``'s
   (profile errors give a faint order some of the bright one's light).
   Where no order does, the
   curve is the fitted amplitudes summed over ``window`` neighbouring overlap
   columns (the contaminant's transit changes slowly with wavelength): a single
   column's fit of a faint order under a bright one is noisy, and it follows
   the bright order's small motions (static profiles, moving traces). Removing the other order's light also
   raises the *relative* noise of ``o`` by ``1 / (1 - c)``, ``c`` the
   fraction removed: on the package's full-frame SOSS simulation (order 2 up
   to 2.6 % of order 1's box) the order-1 channel noise rose by at most 1.7 %.

Columns are **flagged** (masked in the order they contaminate, fraction kept
in the spectra's ``columns``) where order 3 brings more than ``max_order3`` of
an order's box flux (order 3's faint blue-end profile is not trusted to remove
it), or all other orders more than ``max_contamination`` (then the error of
the extrapolated profiles dominates). Where an order reaching a column has no
clean column at all (a crop of the overlap region), no fit is possible: the
first order keeps its plain box there and the others are flagged.

Limits: profiles are static (the visit's reference frame on the reference
traces; SOSS traces move by hundredths of a pixel) and extrapolated from the
nearest clean columns, good to a few per cent of the profile: on the
real-frame scene (:mod:`tsocontainer.sim.soss_scene`) that is the size of order
2's own light under order 1 at 2.3-2.6 um, where its fitted visit-average
amplitude comes out <= 0 and nothing is removed.

The fit is linear and vectorised over columns and integrations; the only
per-integration work is a few small matrix products per column.
"""
from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass

import numpy as np

from tsocontainer.spectra.blocks import for_blocks
from tsocontainer.spectra.contaminant_curves import (_box_curve, _window_sum,
                                                     same_wavelength_curves, transit_level)

__all__ = ["OverlapModel", "overlap_columns", "order_profiles", "build_overlap_model",
           "fit_amplitudes", "decontaminate", "extract_decontaminated"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ geometry
def _reach(widths: dict, pad: float) -> dict:
    """Half-width of each order's profile region: its box half-width plus ``pad``."""
    return {o: float(w) / 2.0 + float(pad) for o, w in widths.items()}


def overlap_columns(centres: dict, widths: dict, pad: float = 6.0) -> dict:
    """Columns where an order's profile region meets another order's.

    Parameters
    ----------
    centres : dict
        Order -> reference trace (nx,) (dispersion-major rows; NaN off the detector).
    widths : dict
        Order -> full box width (px).
    pad : float
        Pixels beyond the box half-width that an order's profile region reaches.

    Returns
    -------
    dict
        Order -> boolean (nx,): columns where some other order's region is
        within reach (the region half-widths summed).

    Examples
    --------
    Order 2 drifts away from order 1; with 8 px boxes and 2 px of pad the
    regions (+-6 px) meet while the traces are less than 12 px apart:

    >>> import numpy as np
    >>> cols = overlap_columns({1: np.full(5, 10.0), 2: np.array([16, 20, 22, 23, 40.0])},
    ...                        {1: 8.0, 2: 8.0}, pad=2.0)
    >>> cols[1].astype(int), cols[2].astype(int)
    (array([1, 1, 0, 0, 0]), array([1, 1, 0, 0, 0]))
    """
    reach = _reach(widths, pad)
    out = {}
    for o, c in centres.items():
        c = np.asarray(c, float)
        near = np.zeros(c.shape, bool)
        for q, cq in centres.items():
            if q != o:
                with np.errstate(invalid="ignore"):
                    near |= np.abs(np.asarray(cq, float) - c) < reach[o] + reach[q]
        out[o] = near & np.isfinite(c)
    return out


# ------------------------------------------------------------------ profiles
def _sample_columns(frame, centre, cols, offsets):
    """Frame values at rows ``centre[cols] + offsets`` (linear), shape (len(offsets), len(cols))."""
    ny = frame.shape[0]
    y = centre[cols][None, :] + offsets[:, None]
    lo = np.floor(y).astype(np.intp)
    t = y - lo
    inside = (lo >= 0) & (lo + 1 <= ny - 1)
    lo_c, hi_c = np.clip(lo, 0, ny - 1), np.clip(lo + 1, 0, ny - 1)
    val = (1 - t) * frame[lo_c, cols[None, :]] + t * frame[hi_c, cols[None, :]]
    return np.where(inside, val, np.nan)


def order_profiles(frame, centres: dict, widths: dict, columns, pad: float = 6.0,
                   anchor: int = 40) -> dict:
    """Templates of every order's normalised profile at ``columns``, from the frame itself.

    Parameters
    ----------
    frame : ndarray, shape (ny, nx)
        Dispersion-major reference (deep) frame, background removed.
    centres, widths : dict
        Order -> reference trace (nx,) and full box width (px).
    columns : ndarray of int
        Columns where the templates are wanted.
    pad : float
        The profile region is ``centre +- (width / 2 + pad)``.
    anchor : int
        Clean columns whose median profile is used at a column that is not clean.

    Returns
    -------
    dict
        Order -> ``(offsets, templates)``: integer offsets ``u`` from the trace
        (``-R..R``) and the profile ``(len(u), len(columns))`` at those offsets,
        normalised to unit sum (NaN columns: the order is off the detector or
        has no clean column).

    Examples
    --------
    Two Gaussian orders that meet in the first 10 of 60 columns: the template of
    order 1 there comes from the clean columns and has the true shape.

    >>> import numpy as np
    >>> rows = np.arange(60.0)[:, None]
    >>> c1, c2 = np.full(60, 20.0), np.r_[np.full(10, 30.0), np.full(50, 50.0)]
    >>> frame = np.exp(-0.5 * ((rows - c1) / 2) ** 2) + 0.3 * np.exp(-0.5 * ((rows - c2) / 2) ** 2)
    >>> u, t = order_profiles(frame, {1: c1, 2: c2}, {1: 12.0, 2: 12.0}, np.arange(3), pad=2.0)[1]
    >>> u[[6, 8, 10]], t[[6, 8, 10], 0].round(3)
    (array([-2.,  0.,  2.]), array([0.121, 0.199, 0.121]))
    """
    ny, nx = frame.shape
    img = np.clip(np.nan_to_num(np.asarray(frame, float)), 0.0, None)
    reach = _reach(widths, pad)
    near = overlap_columns(centres, widths, pad)
    columns = np.asarray(columns, np.intp)
    out = {}
    for o, c in centres.items():
        c = np.asarray(c, float)
        u = np.arange(-np.ceil(reach[o]), np.ceil(reach[o]) + 1)
        with np.errstate(invalid="ignore"):
            clean = (np.isfinite(c) & ~near[o] & (c - reach[o] >= 0) & (c + reach[o] <= ny - 1))
        xs = np.flatnonzero(clean)
        tmpl = np.full((u.size, columns.size), np.nan)
        if xs.size:
            prof = _sample_columns(img, c, xs, u)
            with np.errstate(invalid="ignore", divide="ignore"):
                prof = prof / prof.sum(0, keepdims=True)
            lit = np.isfinite(prof).all(0)
            xs, prof = xs[lit], prof[:, lit]
        if xs.size:
            k = min(int(anchor), xs.size)
            nearest = np.argsort(np.abs(columns[:, None] - xs[None, :]), axis=1)[:, :k]
            tmpl = np.median(prof[:, nearest], axis=2)
            tmpl /= tmpl.sum(0, keepdims=True)
            is_clean = clean[columns]
            if is_clean.any():   # a clean column is its own profile
                own = _sample_columns(img, c, columns[is_clean], u)
                with np.errstate(invalid="ignore", divide="ignore"):
                    tmpl[:, is_clean] = own / own.sum(0, keepdims=True)
            tmpl[:, ~np.isfinite(c[columns])] = np.nan
        out[o] = (u, tmpl)
    return out


# ------------------------------------------------------------------ the model
@dataclass(frozen=True, eq=False)
class OverlapModel:
    """What the joint fit of overlapping orders needs, on the overlap columns only.

    Parameters
    ----------
    orders : tuple of int
        Orders in the model (targets and contaminants).
    columns : ndarray of int, shape (m,)
        Overlap columns (sorted).
    rows : ndarray of int, shape (K, m)
        Rows fitted in each column (the union of the orders' profile regions;
        repeated rows at the frame edges carry no weight).
    profiles : ndarray, shape (n, K, m)
        Each order's profile on those rows (0 outside its region or off the detector).
    box : ndarray, shape (n, K, m)
        Each order's box weights (fractional edge pixels) on those rows.
    weight : ndarray, shape (K, m)
        ``1 / V`` of the reference variance (0 for unusable or repeated rows).
    static : ndarray, shape (n, m)
        Amplitudes fitted to the reference frame.
    share : ndarray, shape (n, n, m)
        ``share[q, o]``: fraction of order ``q``'s profile inside order ``o``'s box.
    window : int
        Columns over which a contaminant's relative light curve is summed.
    missing : ndarray of bool, shape (n, m)
        Orders whose region reaches the column but that have no profile there
        (no clean column to take it from).
    estimator : ndarray, shape (m, n, K)
        The least-squares estimator ``(P^T W P)^-1 P^T W`` of each column when
        all its pixels are good (amplitudes = ``estimator @ data``).

    Examples
    --------
    See :func:`build_overlap_model`.
    """

    orders: tuple
    columns: np.ndarray
    rows: np.ndarray
    profiles: np.ndarray
    box: np.ndarray
    weight: np.ndarray
    static: np.ndarray
    share: np.ndarray
    window: int
    missing: np.ndarray
    estimator: np.ndarray

    def box_flux(self, frame) -> np.ndarray:
        """Box flux of every order in the overlap columns of a frame.

        Parameters
        ----------
        frame : ndarray, shape (ny, nx)
            Dispersion-major frame.

        Returns
        -------
        ndarray, shape (n, m)
            Each order's box (reference trace, fractional edges) summed.

        Examples
        --------
        >>> import numpy as np
        >>> rows = np.arange(60.0)[:, None]
        >>> c1, c2 = np.full(80, 20.0), np.linspace(30.0, 60.0, 80)
        >>> frame = np.exp(-0.5 * ((rows - c1) / 2) ** 2) + np.exp(-0.5 * ((rows - c2) / 2) ** 2)
        >>> m = build_overlap_model(frame, frame + 1, {1: c1, 2: c2}, {1: 12.0, 2: 12.0}, pad=2.0)
        >>> m.box_flux(frame)[:, 0].round(3)      # order 2's wing in order 1's box, and back
        array([5.122, 5.122])
        """
        d = np.nan_to_num(np.asarray(frame, float)[self.rows, self.columns[None, :]])
        return (self.box * d[None]).sum(1)


def _fit_rows(centres, reach, columns, ny):
    """Row indices (K, m) spanning every order's region in each column, and the valid ones."""
    lo = np.full(columns.size, np.inf)
    hi = np.full(columns.size, -np.inf)
    for o, c in centres.items():
        cc = np.asarray(c, float)[columns]
        ok = np.isfinite(cc) & (cc + reach[o] >= 0) & (cc - reach[o] <= ny - 1)
        lo = np.where(ok, np.minimum(lo, np.floor(cc - reach[o])), lo)
        hi = np.where(ok, np.maximum(hi, np.ceil(cc + reach[o])), hi)
    lo, hi = np.clip(lo, 0, ny - 1), np.clip(hi, 0, ny - 1)
    k = int(np.max(hi - lo)) + 1
    rows = lo[None, :] + np.arange(k)[:, None]
    valid = rows <= hi[None, :]
    return np.clip(rows, 0, ny - 1).astype(np.intp), valid


def _box_weights(rows, centre, halfwidth):
    c = np.where(np.isfinite(centre), centre, -1e6)[None, :]
    return np.clip(np.minimum(rows + 0.5, c + halfwidth) - np.maximum(rows - 0.5, c - halfwidth),
                   0.0, 1.0)


def build_overlap_model(frame, var, centres: dict, widths: dict, *, pad: float = 6.0,
                        anchor: int = 40, window: int = 41):
    """The joint-fit model of every order on the columns where orders overlap.

    Parameters
    ----------
    frame, var : ndarray, shape (ny, nx)
        Dispersion-major reference frame (background removed) and its variance.
    centres, widths : dict
        Order -> reference trace (nx,) and full box width (px). Every order
        given takes part in the fit (give order 3 too: it is then modelled and
        can be flagged).
    pad : float
        Profile region: ``centre +- (width / 2 + pad)``.
    anchor : int
        Clean columns behind each extrapolated profile (:func:`order_profiles`).
    window : int
        Columns over which a contaminant's relative light curve is summed.

    Returns
    -------
    OverlapModel or None
        None when no two orders meet.

    Examples
    --------
    >>> import numpy as np
    >>> rows = np.arange(60.0)[:, None]
    >>> c1, c2 = np.full(80, 20.0), np.linspace(30.0, 60.0, 80)
    >>> frame = (1000 * np.exp(-0.5 * ((rows - c1) / 2) ** 2)
    ...          + 300 * np.exp(-0.5 * ((rows - c2) / 2) ** 2))
    >>> m = build_overlap_model(frame, frame + 10, {1: c1, 2: c2}, {1: 12.0, 2: 12.0}, pad=2.0)
    >>> int(m.columns.size), m.static[:, 0].round(0)     # the true amplitudes: 2pi^0.5 * 2 * (1000, 300)
    (16, array([5011., 1508.]))
    """
    orders = tuple(sorted(centres))
    ny, nx = frame.shape
    near = overlap_columns(centres, widths, pad)
    cols = np.flatnonzero(np.logical_or.reduce([near[o] for o in orders]))
    if len(orders) < 2 or cols.size == 0:
        return None
    reach = _reach(widths, pad)
    rows, valid = _fit_rows(centres, reach, cols, ny)
    tmpl = order_profiles(frame, centres, widths, cols, pad, anchor)
    prof = np.zeros((len(orders),) + rows.shape)
    box = np.zeros_like(prof)
    present = np.zeros((len(orders), cols.size), bool)
    for k, o in enumerate(orders):
        c = np.asarray(centres[o], float)[cols]
        with np.errstate(invalid="ignore"):
            present[k] = (np.isfinite(c) & (c + reach[o] >= 0) & (c - reach[o] <= ny - 1))
        u, t = tmpl[o]
        off = rows - c[None, :]
        for j in range(cols.size):
            if np.isfinite(t[:, j]).all():
                prof[k, :, j] = np.interp(off[:, j], u, t[:, j], left=0.0, right=0.0)
        box[k] = _box_weights(rows, c, widths[o] / 2.0) * valid
    prof *= valid
    v = np.asarray(var, float)[rows, cols[None, :]]
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(valid & np.isfinite(v) & (v > 0), 1.0 / v, 0.0)
    d = np.asarray(frame, float)[rows, cols[None, :]]
    est = _estimator(prof.transpose(2, 0, 1), (weight * np.isfinite(d)).T)
    amp = np.einsum("mkr,rm->km", est, np.nan_to_num(d))
    share = np.einsum("qkm,okm->qom", prof, box)
    missing = present & ~(prof.sum(1) > 0)
    return OverlapModel(orders, cols, rows, prof, box, weight, amp, share, int(window), missing,
                        _estimator(prof.transpose(2, 0, 1), weight.T))


# ------------------------------------------------------------------ fitting
def _estimator(prof, w):
    """Least-squares estimators ``(P, n, K)`` for profiles ``(P, n, K)`` and weights ``(P, K)``.

    An order without profile in a column (zero normal-matrix diagonal) gets
    amplitude 0 there. Where bad pixels leave the orders inseparable (fewer
    good pixels than orders, or profiles proportional on them: a singular
    normal matrix), the pseudo-inverse splits the light between them; the
    contaminant's level is a visit mean of such amplitudes, so one such
    integration weighs little.
    """
    wp = prof * w[:, None, :]
    mat = wp @ prof.transpose(0, 2, 1)                            # (P, n, n)
    diag = np.diagonal(mat, axis1=1, axis2=2)
    empty = diag <= 1e-12 * np.maximum(diag.max(-1, keepdims=True), 1e-300)
    idx = np.arange(mat.shape[-1])
    mat[:, idx, idx] += empty
    try:
        inv = np.linalg.inv(mat)
    except np.linalg.LinAlgError:    # a cosmic ray or hole where the orders meet
        inv = np.linalg.pinv(mat)
    return inv @ (wp * ~empty[:, :, None])


def fit_amplitudes(data, var, good, model: OverlapModel):
    """Joint weighted least-squares amplitudes of every order in the overlap columns.

    Parameters
    ----------
    data, var : ndarray, shape (nb, ny, nx)
        Dispersion-major data and each integration's variance.
    good : ndarray of bool, shape (nb, ny, nx)
        Usable pixels (the others get no weight).
    model : OverlapModel
        From :func:`build_overlap_model`.

    Returns
    -------
    amp : ndarray, shape (nb, n, m)
        Amplitude (total flux of the profile) of every order.
    amp_var : ndarray, shape (nb, n, m)
        Their variances (each integration's variance through the fit).
    box_cov : ndarray, shape (nb, n, n, m)
        ``box_cov[:, q, o]``: covariance of order ``q``'s amplitude with order
        ``o``'s box flux.

    Examples
    --------
    Two blended Gaussian orders in one integration without noise: the fit
    returns their fluxes exactly.

    >>> import numpy as np
    >>> rows = np.arange(60.0)[:, None]
    >>> c1, c2 = np.full(80, 20.0), np.linspace(30.0, 60.0, 80)
    >>> g = lambda c: np.exp(-0.5 * ((rows - c) / 2) ** 2)
    >>> frame = 1000 * g(c1) + 300 * g(c2)
    >>> m = build_overlap_model(frame, frame + 10, {1: c1, 2: c2}, {1: 12.0, 2: 12.0}, pad=2.0)
    >>> data = (900 * g(c1) + 310 * g(c2))[None]
    >>> amp, amp_var, _ = fit_amplitudes(data, data + 10, np.ones(data.shape, bool), m)
    >>> (amp[0, :, 0] / m.static[:, 0]).round(3)
    array([0.9  , 1.033])
    """
    cols = model.columns[None, :]
    d = np.asarray(data)[:, model.rows, cols].astype(float)
    v = np.asarray(var)[:, model.rows, cols].astype(float)
    use = np.asarray(good)[:, model.rows, cols] & np.isfinite(d) & np.isfinite(v)
    d, v = np.where(use, d, 0.0), np.where(use, v, 0.0)
    # columns with every weighted pixel good take the static estimator (one product)
    est = model.estimator                                          # (m, n, K)
    dt, vt = d.transpose(2, 1, 0), v.transpose(2, 1, 0)            # (m, K, nb)
    amp = (est @ dt).transpose(2, 1, 0)
    amp_var = ((est * est) @ vt).transpose(2, 1, 0)
    box = model.box.transpose(0, 2, 1)                             # (n, m, K)
    box_cov = np.stack([((est * box[o][:, None, :]) @ vt).transpose(2, 1, 0)
                        for o in range(box.shape[0])], axis=2)     # (nb, n, n, m)
    b, m = np.nonzero(((model.weight > 0)[None] & ~use).any(1))
    if b.size:   # the others: their own solve, without the bad pixels
        w = model.weight.T[m] * use[b, :, m]
        e = _estimator(model.profiles.transpose(2, 0, 1)[m], w)    # (p, n, K)
        amp[b, :, m] = np.einsum("pnk,pk->pn", e, d[b, :, m])
        amp_var[b, :, m] = np.einsum("pnk,pk->pn", e * e, v[b, :, m])
        box_cov[b, :, :, m] = np.einsum("pqk,opk,pk->pqo", e, box[:, m], v[b, :, m])
    return amp, amp_var, box_cov


# ------------------------------------------------------------------ decontamination
def _amplitudes(cube, model: OverlapModel):
    """Amplitudes, their variances and box covariances of every integration (block loop)."""
    n, m = len(model.orders), model.columns.size
    amp = np.zeros((cube.N, n, m))
    amp_var = np.zeros((cube.N, n, m))
    box_cov = np.zeros((cube.N, n, n, m))

    def work(i0, i1, data, var, good):
        amp[i0:i1], amp_var[i0:i1], box_cov[i0:i1] = fit_amplitudes(data, var, good, model)

    for_blocks(cube, work, desc="overlap fit", finite=False)
    return amp, amp_var, box_cov


def _corrections(model: OverlapModel, amp, amp_var, box_cov, k: int, curves=None, own=None):
    """Contaminating light in order ``k``'s box and its variance, (N, m) each.

    ``curves`` (order index -> (curve, var), (N, m)): a contaminant's relative
    light curve where another order sees its wavelength clean
    (:func:`~tsocontainer.spectra.contaminant_curves.same_wavelength_curves`);
    it replaces the fitted amplitudes' time variation in the columns where it
    is finite, at the level of the fitted light that follows it
    (:func:`~tsocontainer.spectra.contaminant_curves.transit_level`, ``own``:
    the relative light curve of order ``k``'s box, window-summed, (N, m)).
    """
    corr = np.zeros((amp.shape[0], model.columns.size))
    cvar = np.zeros_like(corr)
    for q in range(len(model.orders)):
        if q == k:
            continue
        total = _window_sum(model.static[q], model.window)
        # a contaminant fitted with no light (or less than none: profile errors) is not removed
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.where((total > 0) & (model.static[q] > 0),
                         model.share[q, k] * model.static[q] / total, 0.0)
        wsum = _window_sum(amp[:, q], model.window)
        c_fit = g * wsum
        v_fit = g**2 * _window_sum(amp_var[:, q], model.window) - 2.0 * g * box_cov[:, q, k]
        curve, var = (curves or {}).get(q, (None, None))
        if curve is not None:
            use = np.isfinite(curve).all(0) & np.isfinite(var).all(0)
            # the fitted light in the box that follows the contaminant's curve
            level = g * (wsum.mean(axis=0) if own is None else transit_level(
                wsum, _window_sum(amp_var[:, q], model.window), np.nan_to_num(curve), own))
            c_fit = np.where(use, level * np.nan_to_num(curve), c_fit)
            v_fit = np.where(use, level**2 * np.nan_to_num(var), v_fit)
        corr += c_fit
        cvar += v_fit
    return corr, cvar


def _clean_curves(spec, model: OverlapModel) -> dict:
    """Same-wavelength relative light curves of every contaminant that ``spec`` holds."""
    out = {}
    for q, o in enumerate(model.orders):
        if o in spec.orders and len(spec.orders) > 1 and spec.wave.get(o) is not None:
            curve, var = same_wavelength_curves(spec, o, model.columns, model.window,
                                                exclude=model.columns)
            if np.isfinite(curve).any():
                out[q] = (curve, var)
    return out


def decontaminate(cube, spec, centres: dict, widths: dict, reference, *, pad: float = 6.0,
                  anchor: int = 40, window: int = 41, max_order3: float = 0.01,
                  max_contamination: float = 0.2):
    """Remove the other orders' light from box spectra where orders overlap.

    Parameters
    ----------
    cube : CubeSource
        The visit (the data the spectra were extracted from).
    spec : Spectra
        Box spectra of the target orders (extracted without overlap exclusion).
    centres : dict
        Order -> reference trace (nx,) of every order to model (targets and
        contaminants such as order 3).
    widths : dict
        Order -> full box width (px) (contaminants: the width of their profile region, less ``2 pad``).
    reference : tuple
        ``(frame, var)`` dispersion-major reference frame and variance.
    pad, anchor, window
        As :func:`build_overlap_model`.
    max_order3 : float
        Columns of an order where order 3's light exceeds this fraction of its
        box flux are masked (flagged, not decontaminated).
    max_contamination : float
        Columns where all other orders' light exceeds this fraction of the box
        flux are masked: the error of the extrapolated profiles then dominates
        (on the package's SOSS simulation, order-2 columns with 25-50 % of
        order-1 light kept a 4-sigma depth bias after decontamination, those
        with 10-25 % none measurable).

    Returns
    -------
    Spectra
        The spectra with the overlap columns decontaminated (flux and
        variance), and per order the columns ``contamination`` (fraction of
        the box flux from other orders before decontamination; NaN where it
        could not be fitted), ``order3`` (order 3's part of it),
        ``decontaminated`` (1 where corrected) and ``flagged`` (1 where masked:
        too much order 3 or other light). Where an order has no profile (no
        clean column in the visit, e.g. a crop), the first order keeps its
        plain box and the others are flagged (logged).

    Examples
    --------
    Two blended orders, order 2 transiting deeper (5 %) than order 1 (1 %): the
    box of order 1 sees a mix, its decontaminated flux the 1 % alone.

    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> from tsocontainer.spectra.extract import ExtractOptions, extract
    >>> rows = np.arange(60.0)[:, None]
    >>> c1, c2 = np.full(120, 20.0), np.linspace(26.0, 70.0, 120)
    >>> g = lambda c: np.exp(-0.5 * ((rows - c) / 2) ** 2)
    >>> lc1, lc2 = np.array([1.0, 1.0, 0.99]), np.array([1.0, 1.0, 0.95])
    >>> cube = 1000 * lc1[:, None, None] * g(c1) + 300 * lc2[:, None, None] * g(c2)
    >>> src = CubeSource.from_arrays(cube, cube + 10)
    >>> spec = extract(src, ExtractOptions(width=12.0, exclude_overlap=False), 1,
    ...                traces={1: np.tile(c1, (3, 1))})
    >>> clean = decontaminate(src, spec, {1: c1, 2: c2}, {1: 12.0, 2: 12.0}, (cube[0], cube[0] + 10),
    ...                       pad=2.0, window=1)
    >>> round(float(1 - spec.flux[1][2, 0] / spec.flux[1][0, 0]), 4)
    0.0152
    >>> round(float(1 - clean.flux[1][2, 0] / clean.flux[1][0, 0]), 4)
    0.01
    """
    from tsocontainer.spectra.container import Spectra

    t0 = _time.perf_counter()
    frame, var = reference
    model = build_overlap_model(frame, var, centres, widths, pad=pad, anchor=anchor, window=window)
    nx = frame.shape[1]
    flux = {o: spec.flux[o].copy() for o in spec.orders}
    fvar = {o: spec.var[o].copy() for o in spec.orders}
    mask = {o: spec.mask[o].copy() for o in spec.orders}
    columns = {o: dict(spec.columns.get(o, {})) for o in spec.orders}
    for o in spec.orders:
        columns[o].update(contamination=np.zeros(nx), order3=np.zeros(nx),
                          decontaminated=np.zeros(nx), flagged=np.zeros(nx))
    if model is not None:
        for k in np.flatnonzero(model.missing.any(1)):
            log.warning("order %d has no clean column to take its profile from: in the %d "
                        "overlap columns it reaches, order %d keeps its plain box and the other "
                        "orders are flagged", model.orders[k], model.missing[k].sum(),
                        spec.orders[0])
        amp, amp_var, box_cov = _amplitudes(cube, model)
        ref_box = model.box_flux(frame)
        cols = model.columns
        curves = _clean_curves(spec, model)
        for o in [o for o in spec.orders if o in model.orders]:
            k = model.orders.index(o)
            corr, cvar = _corrections(model, amp, amp_var, box_cov, k, curves,
                                      _box_curve(spec.flux[o][:, cols], spec.mask[o][:, cols],
                                                 model.window))
            flags = _flags(model, ref_box, k, max_order3, max_contamination,
                           primary=o == spec.orders[0])
            fit = flags.pop("fitted")
            flux[o][:, cols] -= corr * fit
            fvar[o][:, cols] = np.maximum(fvar[o][:, cols] + cvar * fit, 0.0)
            for name, val in flags.items():
                columns[o][name][cols] = val
            mask[o][:, cols[flags["flagged"] > 0]] = False
            columns[o]["decontaminated"][cols] = fit * (1.0 - flags["flagged"])
    meta = dict(spec.meta, DECONTAM=True, DCWINDOW=int(window))
    out = Spectra(spec.time, spec.wave, flux, fvar, mask, int_numbers=spec.int_numbers,
                  regressors=spec.regressors, meta=meta, columns=columns)
    log.info("decontaminate: orders %s, %d overlap columns, flagged %s, %.1f s",
             list(spec.orders), 0 if model is None else model.columns.size,
             {o: int(c["flagged"].sum()) for o, c in columns.items()}, _time.perf_counter() - t0)
    return out


def _flags(model: OverlapModel, ref_box, k: int, max_order3: float, max_cont: float,
           primary: bool) -> dict:
    """Contamination fractions of order ``k``'s box, the columns flagged and those fitted.

    Where an order on the detector has no profile (no clean column to take it
    from), the joint fit is not valid: the primary order keeps its plain box
    there (``fitted`` 0, contamination unknown: NaN), the others are flagged.
    """
    n = len(model.orders)
    with np.errstate(invalid="ignore", divide="ignore"):
        part = np.array([model.share[q, k] * model.static[q] / ref_box[k] for q in range(n)])
    part = np.where(np.isfinite(part), part, 0.0)
    part[k] = 0.0
    o3 = part[model.orders.index(3)] if 3 in model.orders and model.orders[k] != 3 else 0 * part[0]
    invalid = model.missing.any(0)
    flagged = ((o3 > max_order3) | (part.sum(0) > max_cont)) & ~invalid
    if not primary:
        flagged |= invalid
    return {"contamination": np.where(invalid, np.nan, part.sum(0)),
            "order3": np.where(invalid, np.nan, o3), "flagged": flagged.astype(float),
            "fitted": (~invalid).astype(float)}


# ------------------------------------------------------------------ driver
def _centres(cube, traces, reference):
    """Reference trace of every order of the mode (order -> (nx,)).

    An order without a measured trace (too faint to detect in this crop) takes
    the mode's nominal trace shifted by the offset measured on a detected order.
    """
    from tsocontainer.arrays.views import nanmedian_quiet
    from tsocontainer.spectra.trace import _orders_of, guess_trace, trace_references

    every = (_orders_of(cube, None) if cube.geometry.mode is not None or traces is None
             else tuple(sorted(traces)))
    if traces is None:
        refs, _ = trace_references(cube, every, reference=reference)
        traces = {o: r["centre"][None] for o, r in refs.items()}
    geo, nx = cube.geometry, reference[0].shape[1]
    measured, guesses = {}, {}
    for o in every:
        c = nanmedian_quiet(np.asarray(traces[o], float), axis=0) if o in traces else None
        if c is not None and np.isfinite(c).any():
            measured[o] = c
        guesses[o] = guess_trace(geo.mode, o, nx, cube.meta, geo.x_offset, geo.y_offset)
    offsets = [float(nanmedian_quiet(c - guesses[o])) for o, c in measured.items()
               if guesses[o] is not None]
    out = dict(measured)
    ny = reference[0].shape[0]
    for o in every:
        if o not in out and guesses[o] is not None and offsets:
            c = guesses[o] + offsets[0]
            with np.errstate(invalid="ignore"):
                c = np.where((c > -0.5) & (c < ny - 0.5), c, np.nan)   # on the detector only
            if not np.isfinite(c).any():
                continue
            out[o] = c
            log.warning("order %d: no measured trace; using the mode's trace shifted by %.2f px "
                        "(measured on order %d)", o, offsets[0], next(iter(measured)))
    return out


def extract_decontaminated(cube, options=None, orders=None, *, traces=None, reference=None,
                           oot=None, template=None, regressors=None, window: int = 41,
                           max_order3: float = 0.01):
    """Box spectra of overlapping orders, each with the other orders' light removed.

    :func:`~tsocontainer.spectra.extract.extract` (a box, without overlap
    exclusion) followed by :func:`decontaminate` with every order of the mode
    that has a trace as a model (order 3 too, so that it can be flagged).

    Parameters
    ----------
    cube : CubeSource
        The visit.
    options : ExtractOptions, optional
        Must be a box (``exclude_overlap`` is ignored: the box keeps every pixel).
    orders : int or sequence of int, optional
        Orders extracted (default: 1 and 2 for SOSS, else all with a trace).
    traces : dict, optional
        Order -> (N, nx) per-integration traces.
    reference : tuple, optional
        ``(frame, var)`` reference frame and variance.
    oot, template, regressors
        As :func:`~tsocontainer.spectra.extract.extract`.
    window, max_order3
        As :func:`decontaminate`.

    Returns
    -------
    Spectra

    Raises
    ------
    ValueError
        If the method is not a box.

    Examples
    --------
    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> rows = np.arange(60.0)[:, None]
    >>> c1, c2 = np.full(120, 20.0), np.linspace(26.0, 70.0, 120)
    >>> g = lambda c: np.exp(-0.5 * ((rows - c) / 2) ** 2)
    >>> cube = np.stack([1000 * g(c1) + 300 * g(c2)] * 2)
    >>> spec = extract_decontaminated(CubeSource.from_arrays(cube, cube + 10), orders=1,
    ...                               traces={1: np.tile(c1, (2, 1)), 2: np.tile(c2, (2, 1))})
    >>> spec.orders, bool(spec.columns[1]["contamination"][0] > 0.05)
    ((1,), True)
    """
    from dataclasses import replace

    from tsocontainer.spectra.blocks import reference_frames
    from tsocontainer.spectra.extract import ExtractOptions, extract
    from tsocontainer.spectra.trace import mode_defaults

    opts = replace(options or ExtractOptions(), exclude_overlap=False)
    if opts.method != "box":
        raise ValueError(f"decontamination works on box spectra, not method={opts.method!r}")
    mode = cube.geometry.mode
    if orders is None and mode is not None and mode.key == "soss":
        orders = (1, 2)
    reference = reference if reference is not None else reference_frames(cube)
    centres = _centres(cube, traces, reference)
    traces = dict(traces or {o: np.tile(c, (cube.N, 1)) for o, c in centres.items()})
    for o, c in centres.items():   # orders too faint to trace here follow the model
        if o not in traces or not np.isfinite(traces[o]).any():
            traces[o] = np.tile(c, (cube.N, 1))
    spec = extract(cube, opts, orders, traces=traces, reference=reference, oot=oot,
                   template=template, regressors=regressors)
    for o in spec.orders:
        centres[o] = np.asarray(spec.columns[o]["trace"], float)
    box = float(mode_defaults(mode)["box_width"])
    widths = {o: float(spec.meta.get(f"WIDTH{o}", box)) for o in centres}
    return decontaminate(cube, spec, centres, widths, reference, window=window,
                         max_order3=max_order3)
