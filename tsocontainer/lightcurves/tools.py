"""Helpers of the light-curve modules: option checks, channel edges, binning, atomic ECSV."""
from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np

from tsocontainer._util import check_option, now_iso, umask_mode

__all__ = ["check_bins", "bin_edges", "write_table_atomic"]

_BIN_KEYS = ("R", "pixels")


def _now() -> str:
    return now_iso()


def _pixel_bounds(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper wavelength boundaries of pixels with sorted centres ``w``."""
    if w.size == 1:
        return w - 0.5e-6, w + 0.5e-6
    mid = 0.5 * (w[1:] + w[:-1])
    lo = np.concatenate([[w[0] - (mid[0] - w[0])], mid])
    hi = np.concatenate([mid, [w[-1] + (w[-1] - mid[-1])]])
    return lo, hi


def check_bins(bins) -> None:
    """Raise ValueError unless ``bins`` is a form :func:`bin_edges` takes (no data needed).

    Parameters
    ----------
    bins : object
        A channel count, ``{"R": R}``, ``{"pixels": n}`` or increasing edges.

    Examples
    --------
    >>> check_bins(20); check_bins({"R": 100}); check_bins([1.0, 1.5, 2.0])
    >>> check_bins("twenty")
    Traceback (most recent call last):
    ...
    ValueError: bins 'twenty' is not a channel count, {R: value}, {pixels: n} or a list of edges
    """
    if isinstance(bins, bool):
        raise ValueError(f"bins {bins!r} is not a channel count")
    if isinstance(bins, (int, np.integer)):
        if bins < 1:
            raise ValueError(f"bins must be >= 1 channel, got {bins}")
        return
    if isinstance(bins, dict):
        if len(bins) != 1 or next(iter(bins)) not in _BIN_KEYS:
            raise ValueError(f"bins mapping needs one key of {', '.join(_BIN_KEYS)}, got {sorted(bins)}")
        value = next(iter(bins.values()))
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
            raise ValueError(f"bins {bins!r}: the value must be a positive number")
        return
    if isinstance(bins, (list, tuple, np.ndarray)):
        try:
            edges = np.asarray(bins, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"bins {bins!r}: edges must be numbers") from None
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
            raise ValueError("bins edges must be at least two increasing numbers")
        return
    raise ValueError(f"bins {bins!r} is not a channel count, {{R: value}}, {{pixels: n}} or a "
                     "list of edges")


def bin_edges(wave, bins=30) -> np.ndarray:
    """Wavelength edges of spectroscopic channels.

    Parameters
    ----------
    wave : array_like, shape (nwave,)
        Pixel centre wavelengths (micron), any order; non-finite values ignored.
    bins : int, dict or array_like
        ``int``: that many channels of equal width between the outer pixel
        boundaries. ``{"R": R}``: constant resolving power ``lambda/dlambda = R``
        at the geometric centre of each channel (the last channel ends at the
        last pixel boundary, so it can be up to twice as wide).
        ``{"pixels": n}``: ``n`` consecutive pixels per channel (a remainder of
        fewer than ``n/2`` pixels joins the last channel).
        array: explicit increasing edges.

    Returns
    -------
    ndarray
        Increasing edges, ``nchan + 1`` values.

    Raises
    ------
    ValueError
        On an unknown ``bins`` form or a non-positive count.

    Examples
    --------
    >>> bin_edges(np.linspace(1, 2, 101), bins=4)
    array([0.995 , 1.2475, 1.5   , 1.7525, 2.005 ])
    """
    w = np.sort(np.asarray(wave, dtype=float).ravel())
    w = w[np.isfinite(w)]
    if w.size == 0:
        raise ValueError("no finite wavelengths to bin")
    lo, hi = _pixel_bounds(w)
    if isinstance(bins, dict):
        if len(bins) != 1:
            raise ValueError(f"bins dict needs exactly one key of {_BIN_KEYS}, got {sorted(bins)}")
        key, value = next(iter(bins.items()))
        check_option(key, _BIN_KEYS, "bins key")
        if not np.isscalar(value) or value <= 0:
            raise ValueError(f"bins[{key!r}] must be a positive number, got {value!r}")
        if key == "R":
            q = ((1 / value + np.sqrt(1 / value**2 + 4)) / 2) ** 2  # (q-1)/sqrt(q) = 1/R
            n = max(1, int(np.floor(np.log(hi[-1] / lo[0]) / np.log(q))))
            edges = lo[0] * q ** np.arange(n + 1)
            edges[-1] = hi[-1]
            return edges
        n = int(value)
        starts = np.arange(0, w.size, n)
        if starts.size > 1 and w.size - starts[-1] < n / 2:
            starts = starts[:-1]
        return np.concatenate([lo[starts], [hi[-1]]])
    if np.isscalar(bins):
        if int(bins) != bins or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        return np.linspace(lo[0], hi[-1], int(bins) + 1)
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError("explicit bin edges must be a 1D increasing array of >= 2 values")
    return edges


def _spectra_arrays(time, wave, flux, var, mask):
    """Spectra as float arrays, shapes checked, and their good pixels (finite, positive variance)."""
    time = np.asarray(time, dtype=float)
    wave = np.asarray(wave, dtype=float)
    flux = np.asarray(flux, dtype=float)
    var = np.asarray(var, dtype=float)
    if wave.ndim != 1 or flux.shape != (time.size, wave.size) or var.shape != flux.shape:
        raise ValueError(f"need wave (nwave,), flux and var (nint, nwave); got wave {wave.shape}, "
                         f"flux {flux.shape}, var {var.shape}, time {time.shape}")
    good = np.isfinite(flux) & np.isfinite(var) & (var > 0) & np.isfinite(wave)[None, :]
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != flux.shape:
            raise ValueError(f"mask shape {mask.shape} differs from flux shape {flux.shape}")
        good &= mask
    return time, wave, flux, var, good


def _detected(flux, good, min_flux: float):
    """Median spectrum and the pixels where the star is detected (``min_flux`` of the peak).

    Returns the median spectrum, the usable pixels and the number left out as faint.
    """
    with np.errstate(all="ignore"):
        template = np.nanmedian(np.where(good, flux, np.nan), axis=0)
    usable = np.isfinite(template)
    nfaint = 0
    if min_flux > 0 and usable.any():
        # where the star is detected: a channel of an almost dark edge (PRISM
        # beyond 5.4 um) has a non-positive or noise-dominated sum
        peak = np.percentile(template[usable], 99)
        faint = usable & (template < min_flux * peak)
        nfaint = int(faint.sum())
        usable &= ~faint
    return template, usable, nfaint


def _channel_pixels(wave, usable, bins):
    """Channel edges, the pixels of every non-empty channel and those channels' numbers."""
    edges = bin_edges(wave[usable], bins)
    chan = np.searchsorted(edges, wave, side="right") - 1
    chan[wave == edges[-1]] = edges.size - 2
    chan[~usable | (chan < 0) | (chan >= edges.size - 1)] = -1
    groups, keep = [], []
    for c in range(edges.size - 1):
        idx = np.flatnonzero(chan == c)
        if idx.size:
            groups.append(idx)
            keep.append(c)
    if not groups:
        raise ValueError("no pixel falls in any channel")
    return edges, groups, np.asarray(keep)


def _binned_sum(flux, var, good, template, groups):
    """Sum pixels into channels, scaling for bad pixels with a template.

    ``groups`` is a list of index arrays (pixel columns per channel). At an
    integration where some pixels of a channel are bad, the sum of the good
    ones is scaled by ``sum(template) / sum(template over good pixels)``.
    Returns flux, var (nchan, nint), empty (nchan, nint) and the number of
    scaled (channel, integration) cells.
    """
    nint = flux.shape[0]
    out_f = np.empty((len(groups), nint))
    out_v = np.empty((len(groups), nint))
    empty = np.zeros((len(groups), nint), dtype=bool)
    nscaled = 0
    f0 = np.where(good, flux, 0.0)
    v0 = np.where(good, var, 0.0)
    t0 = np.where(good, template[None, :], 0.0)
    for c, idx in enumerate(groups):
        fs = f0[:, idx].sum(axis=1)
        vs = v0[:, idx].sum(axis=1)
        tg = t0[:, idx].sum(axis=1)
        ta = template[idx].sum()
        partial = ~good[:, idx].all(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(partial, ta / tg, 1.0)
        bad = ~np.isfinite(ratio) | (ratio <= 0) | ~good[:, idx].any(axis=1)
        ratio[bad] = np.nan
        out_f[c] = fs * ratio
        out_v[c] = vs * ratio**2
        empty[c] = bad
        nscaled += int(np.count_nonzero(partial & ~bad))
    return out_f, out_v, empty, nscaled


def write_table_atomic(table, path, overwrite: bool = False) -> str:
    """Write an astropy Table as ECSV through a temporary file and ``os.replace``.

    Parameters
    ----------
    table : astropy.table.Table
    path : str or path-like
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".ecsv")
    os.close(fd)
    try:
        table.write(tmp, format="ascii.ecsv", overwrite=True)
        os.chmod(tmp, umask_mode())   # mkstemp makes 0600 files; products follow the umask
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _clip_bases(flux, good, rounds: int = 3):
    """Time bases of what the channels share, for :meth:`LightCurves.clip_outliers`.

    ``1`` and the time factors ``D`` (and ``B``) of the model ``a_c + b_c D(t) +
    e_c B(t)`` of every channel ``c``'s flux over its median: ``D`` starts as
    the deficit ``1 - S`` of the common shape ``S`` (median over the channels),
    ``B`` (six channels or more) as the median shape of the first half of the
    channels minus that of the last half -- chromatic depth goes into ``b_c``;
    limb darkening, which changes the shape of ingress and of the transit's
    bottom with wavelength, into ``e_c``. ``B`` is kept only where its variance
    exceeds that of its point-to-point noise by 5 standard errors (``5 sqrt(2 /
    nint)`` of it): fitted, a noise basis takes up some of each channel's own
    noise and shrinks the scatter that sets the threshold.

    A median over channels whose fluxes differ by more than the noise jumps
    when one channel crosses it (an outlier) or leaves it (a clipped point),
    and every channel then inherits the jump. So the factors are refined
    ``rounds`` times: the channels' coefficients by least squares over time,
    then the factors at each integration by a robust (Huber) fit over the
    channels, which one outlying channel barely moves.
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        f = np.where(good, flux, np.nan)
        norm = f / np.nanmedian(f, axis=1, keepdims=True)
        factors = [1.0 - np.nanmedian(norm, axis=0)]
        if flux.shape[0] >= 6:
            half = flux.shape[0] // 2
            diff = np.nan_to_num(np.nanmedian(norm[:half], axis=0)
                                 - np.nanmedian(norm[-half:], axis=0))
            noise = 1.4826 * np.median(np.abs(np.diff(diff))) / np.sqrt(2.0)
            if np.var(diff) > noise ** 2 * (1.0 + 5.0 * np.sqrt(2.0 / diff.size)):
                factors.append(diff)
    ok = good & np.isfinite(norm)
    y = np.where(ok, norm, 0.0)
    z = np.nan_to_num(np.vstack(factors).T)                     # (nint, k)
    for _ in range(rounds):
        x = np.column_stack([np.ones(z.shape[0]), z])
        coef = np.zeros((y.shape[0], x.shape[1]))
        for c in range(y.shape[0]):
            if ok[c].sum() > x.shape[1]:
                coef[c], *_ = np.linalg.lstsq(x[ok[c]], y[c, ok[c]], rcond=None)
        z = _huber_factors(y - coef[:, :1], coef[:, 1:], ok, z)
    return np.column_stack([np.ones(z.shape[0]), z])


def _huber_factors(y, load, ok, z, iterations: int = 10, k: float = 1.5):
    """Per integration, the factors ``z[t]`` of ``y[c, t] ~ load[c] @ z[t]`` over the good
    channels, fitted with Huber's loss (quadratic within ``k`` robust standard deviations
    of each channel's residuals, linear beyond: an outlying channel barely moves them),
    by iteratively reweighted least squares from ``z``."""
    nf = load.shape[1]
    resid = y - (z @ load.T).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = np.where(ok, resid, np.nan)
        scale = 1.4826 * np.nanmedian(np.abs(r - np.nanmedian(r, axis=1, keepdims=True)),
                                      axis=1, keepdims=True)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.inf)
    for _ in range(iterations):
        a_res = np.abs(resid)
        w = np.where(ok, np.minimum(1.0, k * scale / np.maximum(a_res, 1e-300)), 0.0)
        a = np.einsum("ct,ci,cj->tij", w, load, load) + 1e-12 * np.eye(nf)
        b = np.einsum("ct,ci,ct->ti", w, load, y)
        enough = ok.sum(axis=0) > nf
        z = np.where(enough[:, None], np.linalg.solve(a, b[..., None])[..., 0], z)
        resid = y - (z @ load.T).T
    return z


def _clip_normalised(filled, bases):
    """Channels over their fit by ``bases`` (NaN points left out), and the median of each."""
    model = np.full(filled.shape, np.nan)
    for c, row in enumerate(filled):
        ok = np.isfinite(row)
        if ok.sum() > bases.shape[1]:
            coef, *_ = np.linalg.lstsq(bases[ok], row[ok], rcond=None)
            model[c] = bases @ coef
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        norm = filled / model
        return norm, np.nanmedian(norm, axis=1, keepdims=True)
