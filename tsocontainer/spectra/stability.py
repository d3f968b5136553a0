"""Stability of the trace in time: x/y shifts, width and PCA of the trace pixels.

Time series made here are stored on the cube (``aux``) and used as
systematics regressors in light-curve fits. Works in the dispersion-major view
(see :mod:`tsocontainer.spectra.blocks`).
"""
from __future__ import annotations

import logging
import time as _time

import numpy as np

from tsocontainer.arrays.views import gather, window_rows
from tsocontainer.spectra.blocks import for_blocks, iter_blocks, reference_frames
from tsocontainer.spectra.trace import (TraceOptions, _basis, _block_traces, _orders_of, mode_defaults,
                                        trace_references)

__all__ = ["measure_shifts", "stability_pca", "detect_steps"]

log = logging.getLogger(__name__)


def _spectral_shift(spec, wts, ref, niter: int = 4):
    """Shift dx (px) and scale s per row with spec ~ s * ref(x - dx) (Gauss-Newton).

    This is the peak of the cross-correlation with the reference spectrum,
    found to sub-pixel precision by linearising ``ref`` around the shift.
    """
    d1 = np.gradient(ref)
    d2 = np.gradient(d1)
    dx = np.zeros(spec.shape[0])
    s = np.ones(spec.shape[0])
    for _ in range(niter):
        model = ref[None] - dx[:, None] * d1[None] + 0.5 * dx[:, None] ** 2 * d2[None]
        dmod = -d1[None] + dx[:, None] * d2[None]
        # linear in (s, s*delta): spec ~ s*model + (s*delta)*dmod
        a11 = (wts * model * model).sum(1)
        a12 = (wts * model * dmod).sum(1)
        a22 = (wts * dmod * dmod).sum(1)
        b1 = (wts * model * spec).sum(1)
        b2 = (wts * dmod * spec).sum(1)
        det = a11 * a22 - a12**2
        with np.errstate(invalid="ignore", divide="ignore"):
            s_new = (a22 * b1 - a12 * b2) / det
            delta = (a11 * b2 - a12 * b1) / det / s_new
        ok = np.isfinite(delta) & np.isfinite(s_new)
        dx = np.where(ok, dx + np.clip(delta, -1, 1), dx)
        s = np.where(ok, s_new, s)
    return dx, s


def measure_shifts(cube, order=None, method: str = "centroid", halfwidth=None, refs=None,
                   reference=None):
    """Per-integration x shift, y shift and trace width of one order.

    * y shift: flux-weighted mean over columns of the difference between the
      integration's and the reference's column centres (re-centred windows,
      so the difference is the profile's displacement);
    * width: the reference FWHM (median over columns) times the mean ratio of
      the integration's to the reference's column widths;
    * x shift: the shift of the integration's box spectrum against the
      reference spectrum that maximises their cross-correlation (Gauss-Newton
      on the reference's derivative, sub-pixel).

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry.
    order : int, optional
        Order to measure (default: the mode's first).
    method : {'centroid', 'edgetrigger', 'gaussian'}
        Centring method for the y shift and width.
    halfwidth : float, optional
        Window half-width (default per mode).
    refs : dict, optional
        Reference traces from :func:`~tsocontainer.spectra.trace.trace_references`.
    reference : tuple, optional
        ``(frame, var)`` from :func:`~tsocontainer.spectra.blocks.reference_frames`.

    Returns
    -------
    dict
        ``shift_x``, ``shift_y`` (px, relative to the visit average) and
        ``fwhm`` (px), each of shape (N,); ``order``.

    Raises
    ------
    ValueError
        If the order is not detected.

    Examples
    --------
    A straight trace that moves down by 0.1 px per integration:

    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> rows = np.arange(24.0)[None, :, None]
    >>> centre = 10.3 + 0.1 * np.arange(4.0)[:, None, None]
    >>> cube = np.repeat(1000 * np.exp(-0.5 * ((rows - centre) / 1.5) ** 2), 200, axis=2)
    >>> res = measure_shifts(CubeSource.from_arrays(cube, cube + 25.0), halfwidth=4.0)
    >>> np.round(res["shift_y"], 2), np.round(res["shift_x"], 2)
    (array([-0.15, -0.05,  0.05,  0.15]), array([0., 0., 0., 0.]))
    """
    t0 = _time.perf_counter()
    order = _orders_of(cube, order)[0]
    if refs is None or order not in refs:
        refs, reference = trace_references(cube, order, TraceOptions(method, halfwidth),
                                           reference=reference)
    frame, var = reference if reference is not None else reference_frames(cube)
    ref = refs[order]
    if not ref["detected"]:
        raise ValueError(f"order {order} is not detected, so its shifts cannot be measured: "
                         f"{ref.get('why', '')}")
    hw = ref["halfwidth"]
    ny = frame.shape[0]
    rows, w = window_rows(ref["centre"], hw, ny)
    fspec = (w * gather(np.nan_to_num(frame), rows)).sum(0)
    vspec = (w**2 * gather(np.nan_to_num(var, nan=0.0, posinf=0.0), rows)).sum(0)
    okv = np.isfinite(ref["centre"]) & (vspec > 0) & np.isfinite(vspec)
    wts = np.divide(1.0, vspec, out=np.zeros_like(vspec), where=okv)
    out = dict(shift_x=np.zeros(cube.N), shift_y=np.zeros(cube.N), fwhm=np.zeros(cube.N),
               order=order)
    basis = _basis(frame.shape[1], 0)
    fw0 = np.nanmedian(ref["fwhm"])
    def work(i0, i1, data, var, good):
        _, _, dy, ratio = _block_traces(data, ref, method, hw, basis)
        spec = (w[None] * gather(data, rows)).sum(1)
        dx, _ = _spectral_shift(spec, wts[None], fspec)
        out["shift_x"][i0:i1], out["shift_y"][i0:i1], out["fwhm"][i0:i1] = dx, dy, fw0 * ratio

    for_blocks(cube, work, fill=frame, desc="shifts", var=False)
    for key in ("shift_x", "shift_y"):
        out[key] -= np.nanmedian(out[key])
    log.info("measure_shifts: order %d, rms x %.4f px, y %.4f px, width %.3f px, %.1f s", order,
             np.nanstd(out["shift_x"]), np.nanstd(out["shift_y"]), np.nanstd(out["fwhm"]),
             _time.perf_counter() - t0)
    return out


def stability_pca(cube, n_components: int = 5, orders=None, halfwidth=None, refs=None,
                  reference=None):
    """Principal components of the trace pixels' variations in time (exoTEDRF's idea).

    Pixels within the aperture of every order are taken from each integration,
    divided by that integration's total over those pixels (removing the
    transit and any achromatic trend), minus their visit mean, divided by
    their noise; the leading eigenvectors of the integration-integration
    covariance are time series of the dominant frame changes (shifts, width
    changes, tilts), usable as regressors.

    Parameters
    ----------
    cube : CubeSource
        The visit's working data, mask and geometry.
    n_components : int
        Number of components (at most N - 1).
    orders : int or sequence of int, optional
        Orders whose pixels are used (default: all detected).
    halfwidth : float, optional
        Aperture half-width (default: half the mode's box width).
    refs : dict, optional
        Reference traces from :func:`~tsocontainer.spectra.trace.trace_references`.
    reference : tuple, optional
        ``(frame, var)`` from :func:`~tsocontainer.spectra.blocks.reference_frames`.

    Returns
    -------
    dict
        ``components`` (N, n): standardised time series; ``explained`` (n,):
        fraction of the variance above white noise explained; ``eigenimages``
        (n, ny', nx') dispersion-major, NaN outside the pixels used.

    Raises
    ------
    ValueError
        If ``n_components`` is not in ``1..N-1`` or no trace pixel is usable.

    Examples
    --------
    A trace whose position alternates: the first component is that motion.

    >>> import numpy as np
    >>> from tsocontainer.arrays.source import CubeSource
    >>> rows = np.arange(24.0)[None, :, None]
    >>> dy = 0.2 * np.array([1, -1, 1, -1, 1, -1])
    >>> cube = np.repeat(1e4 * np.exp(-0.5 * ((rows - 10.3 - dy[:, None, None]) / 1.5) ** 2),
    ...                  50, axis=2)
    >>> res = stability_pca(CubeSource.from_arrays(cube, cube + 25.0), n_components=2)
    >>> bool(abs(np.corrcoef(res["components"][:, 0], dy)[0, 1]) > 0.99)
    True
    """
    t0 = _time.perf_counter()
    if not 1 <= n_components < cube.N:
        raise ValueError(f"n_components must be in 1..{cube.N - 1}, got {n_components}")
    if refs is None:
        refs, reference = trace_references(cube, orders, reference=reference)
    frame, var = reference if reference is not None else reference_frames(cube)
    hw = float(halfwidth or mode_defaults(cube.geometry.mode)["box_width"] / 2.0)
    sel = np.zeros(frame.shape, bool)
    for o in _orders_of(cube, orders):
        if o in refs and refs[o]["detected"]:
            rows, w = window_rows(refs[o]["centre"], hw, frame.shape[0])
            _mark(sel, rows, w)
    sel &= np.isfinite(frame) & np.isfinite(var) & (var > 0)
    if not sel.any():
        raise ValueError("no trace pixels to analyse")
    norm = frame[sel] / frame[sel].sum()
    sig = np.sqrt(var[sel]) / frame[sel].sum()
    x = np.empty((cube.N, int(sel.sum())), np.float32)
    for i0, i1, data, _, _ in iter_blocks(cube, fill=frame, desc="pca", var=False):
        vals = data[:, sel].astype(float)
        x[i0:i1] = (vals / vals.sum(1, keepdims=True) - norm) / sig
    x -= x.mean(0)
    gram = (x.astype(float) @ x.T.astype(float)) / x.shape[1]
    evals, evecs = np.linalg.eigh(gram)
    evals, evecs = evals[::-1][:n_components], evecs[:, ::-1][:, :n_components]
    comps = (evecs - evecs.mean(0)) / evecs.std(0)
    above = np.clip(evals - 1.0, 0, None)  # white noise contributes ~1 per eigenvalue
    total = max(np.trace(gram) - cube.N + 1, 1e-30)
    img = np.full((n_components,) + frame.shape, np.nan, np.float32)
    img[:, sel] = (evecs.T @ x) / np.sqrt(np.maximum(evals, 1e-30))[:, None] / np.sqrt(x.shape[1])
    log.info("stability_pca: %d components from %d pixels, leading eigenvalues %s, %.1f s",
             n_components, x.shape[1], np.round(evals[:3], 2).tolist(), _time.perf_counter() - t0)
    return dict(components=comps, explained=above / total, eigenvalues=evals, eigenimages=img)


def _mark(sel, rows, w):
    cols = np.broadcast_to(np.arange(sel.shape[1]), rows.shape)
    sel[rows[w > 0], cols[w > 0]] = True


def detect_steps(series, window: int = 10, nsigma: float = 6.0) -> list[int]:
    """Indices where a time series jumps (tilt events in the trace position).

    The jump at ``i`` is the median of the ``window`` points from ``i`` minus
    the median of the ``window`` points before it. Its noise follows from the
    point-to-point scatter (``sigma = 1.4826 MAD(diff) / sqrt(2)``; the median
    of ``w`` Gaussian points has ``1.2533 sigma / sqrt(w)``), so slow drifts and
    jitter do not count, while a mirror-segment tilt (a sudden shift of a few
    hundredths of a pixel that then stays) does.

    Parameters
    ----------
    series : array_like, shape (N,)
        E.g. the measured y shift per integration.
    window : int
        Points on each side (>= 3).
    nsigma : float
        Detection threshold in units of the jump's noise.

    Returns
    -------
    list of int
        First integration after each jump, in time order, at least ``window``
        apart.

    Raises
    ------
    ValueError
        For ``window < 3`` or a series shorter than ``2 * window``.

    Examples
    --------
    A jump of 0.1 px at integration 120 in 0.01 px of jitter:

    >>> import numpy as np
    >>> y = np.random.default_rng(3).normal(0, 0.01, 200)
    >>> y[120:] += 0.1
    >>> detect_steps(y)
    [120]
    """
    y = np.asarray(series, float)
    if window < 3:
        raise ValueError(f"window must be >= 3, got {window}")
    if y.size < 2 * window:
        raise ValueError(f"need at least {2 * window} points to look for steps, got {y.size}")
    good = np.isfinite(y)
    y = np.where(good, y, np.interp(np.arange(y.size), np.flatnonzero(good), y[good]))
    sig = 1.4826 * np.median(np.abs(np.diff(y) - np.median(np.diff(y)))) / np.sqrt(2)
    if not sig > 0:
        return []
    win = np.lib.stride_tricks.sliding_window_view(y, window)
    med = np.median(win, axis=1)  # med[k]: median of y[k:k+window]
    idx = np.arange(window, y.size - window + 1)
    jump = med[idx] - med[idx - window]
    score = np.abs(jump) / (1.2533 * sig * np.sqrt(2.0 / window))
    found: list[int] = []
    for k in np.argsort(-score):
        if score[k] < nsigma:
            break
        i = _refine_step(y, int(idx[k]), window)
        if all(abs(i - j) >= window for j in found):
            found.append(i)
    return sorted(found)


def _refine_step(y, i: int, window: int) -> int:
    """Split point within +-window/2 of ``i`` that best fits two constant levels."""
    lo, hi = max(1, i - window), min(y.size - 1, i + window)
    seg = y[lo:hi + 1]
    best, best_cost = i, np.inf
    for k in range(max(lo + 1, i - window // 2), min(hi, i + window // 2) + 1):
        a, b = seg[:k - lo], seg[k - lo:]
        cost = np.sum(np.abs(a - np.median(a))) + np.sum(np.abs(b - np.median(b)))
        if cost < best_cost:
            best, best_cost = k, cost
    return best
