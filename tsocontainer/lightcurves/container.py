"""Spectroscopic and white-light curves: binning, cleaning, diagnostics, ECSV.

A :class:`LightCurves` holds ``nchan`` light curves sampled at the same ``nint``
times (BJD_TDB), with their errors and wavelength ranges. It is built from
plain arrays, or from per-integration 1D spectra with
:meth:`LightCurves.from_spectra` (which the Spectra container calls)::

    lc = LightCurves.from_spectra(time, wave, flux, var, bins={"R": 100})
    lc.normalize((t1, t4)).clip_outliers(sigma=5)
    white = lc.white()
    ratio = lc.sensitivity()          # scatter / predicted error, per channel

Steps mutate in place, record themselves in ``history`` and return ``self``.
Points removed by :meth:`LightCurves.clip_outliers` are kept in ``flux`` and
marked in the boolean array ``clipped``; every computation ignores them.
"""
from __future__ import annotations

import logging
import warnings
import time as _time
from typing import TYPE_CHECKING

import numpy as np

from tsocontainer._util import drop_timings
from tsocontainer._util import jsonable as _jsonable
from tsocontainer._version import __version__
from tsocontainer.lightcurves.diagnostics import LightCurveDiagnostics
from tsocontainer.lightcurves.files import LightCurveFiles
from tsocontainer.lightcurves.plots import LightCurvePlots
from tsocontainer.lightcurves.tools import (_binned_sum, _channel_pixels, _clip_bases,
                                           _clip_normalised, _detected, _now, _spectra_arrays)
from tsocontainer.registry import Bool, Choice, Coerced, Num, step

__all__ = ["LightCurves"]


def _normalised_for_clipping(filled, nchan):
    """Channels over their median (and over the common shape with >= 3 channels), and the
    median of each; all-NaN channels stay NaN without a warning."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        norm = filled / np.nanmedian(filled, axis=1, keepdims=True)
        if nchan >= 3:
            norm = norm / np.nanmedian(norm, axis=0, keepdims=True)
        return norm, np.nanmedian(norm, axis=1, keepdims=True)


def _model_check(value) -> None:
    from tsocontainer.lightcurves.model import ModelSpec

    ModelSpec.coerce(value)


def _sampler_check(value) -> None:
    from tsocontainer.lightcurves.fit import SamplerSettings

    SamplerSettings.coerce(value)


def _channel_priors_check(value) -> None:
    """A mapping name -> per-channel specs, or a limb-darkening table file that reads."""
    if value is None or isinstance(value, dict):
        return
    from tsocontainer.lightcurves.limbdark import read_ld_table

    read_ld_table(value)

if TYPE_CHECKING:  # for type hints only; nothing heavy at import time
    from tsocontainer.lightcurves.fit import ChannelFits
    from tsocontainer.lightcurves.results import FitResult

log = logging.getLogger(__name__)


def _plain_arrays(time, flux, err, mask, regressors):
    """Checked arrays of :meth:`LightCurves.from_arrays`: finite times in order, the good
    points (``mask``, finite flux, error and regressors) and the input length."""
    t = np.asarray(time, dtype=float)
    f = np.atleast_2d(np.asarray(flux, dtype=float))
    try:
        e = np.broadcast_to(np.asarray(err, dtype=float), f.shape).copy()
    except ValueError:
        e = np.atleast_2d(np.asarray(err, dtype=float))
    if t.ndim != 1 or f.shape[1] != t.size or e.shape != f.shape or f.ndim != 2:
        raise ValueError(f"time {t.shape}, flux {f.shape} and err {e.shape} do not match "
                         "(nint,) and (nchan, nint)")
    good = np.ones(f.shape, bool)
    if mask is not None:
        mk = np.asarray(mask)
        if mk.dtype != bool or mk.shape not in (t.shape, f.shape):
            raise ValueError(f"mask must be boolean of shape {t.shape} or {f.shape}")
        good &= np.broadcast_to(mk, f.shape)
    regs = {str(k): np.asarray(v, dtype=float) for k, v in (regressors or {}).items()}
    for k, v in regs.items():
        if v.shape != t.shape:
            raise ValueError(f"regressor {k!r} has shape {v.shape}, not {t.shape}")
        good &= np.isfinite(v)[None, :]
    good &= np.isfinite(f) & np.isfinite(e)
    bad = good & ~(e > 0)
    if bad.any():
        c, i = np.argwhere(bad)[0]
        raise ValueError(f"err has {int(bad.sum())} zero or negative value(s) at unmasked points, "
                         f"first at channel {c}, integration {i}")
    nint_in = t.size
    keep = np.isfinite(t)
    order = np.argsort(np.where(keep, t, np.inf), kind="stable")[: int(keep.sum())]
    if keep.sum() < t.size or np.any(np.diff(order) < 0):
        log.info("from_arrays: %d integration(s) with a non-finite time dropped%s",
                 t.size - int(keep.sum()), ", times sorted" if np.any(np.diff(order) < 0) else "")
    t, f, e, good = t[order], f[:, order], e[:, order], good[:, order]
    if np.any(np.diff(t) == 0):
        raise ValueError("time has repeated values")
    regs = {k: v[order] for k, v in regs.items()}
    return t, f, e, good, regs, nint_in


def _as_mask(mask, n: int, name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype != bool or m.shape != (n,):
        raise ValueError(f"{name} must be a boolean array of shape ({n},), got {m.dtype} {m.shape}")
    return m



def _robust_scatter(resid) -> np.ndarray:
    """1.4826 x the median absolute deviation of each row (NaN ignored)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dev = np.abs(resid - np.nanmedian(resid, axis=1, keepdims=True))
        return 1.4826 * np.nanmedian(dev, axis=1)

class LightCurves(LightCurveDiagnostics, LightCurvePlots, LightCurveFiles):
    """Light curves of ``nchan`` wavelength channels sampled at ``nint`` times.

    Parameters
    ----------
    time : array_like, shape (nint,)
        Mid-integration times, BJD_TDB (days), strictly increasing.
    flux : array_like, shape (nchan, nint) or (nint,)
        Flux per channel (input units, or relative after :meth:`normalize`).
    err : array_like, same shape as ``flux``
        1-sigma errors, finite and positive wherever a point is not clipped.
    wave_lo, wave_hi : array_like, shape (nchan,), optional
        Channel wavelength boundaries (micron). Light curves made elsewhere
        may have none (see :meth:`from_arrays`): they are then NaN, and
        ``has_wavelengths`` is False.
    meta : dict, optional
        FITS-ready status values, saved with the light curves.
    regressors : dict of str to array_like (nint,), optional
        Systematics regressors (x/y shift, trace width, PCA components...),
        finite at every integration that some channel uses.
    clipped : array_like of bool, optional
        Points excluded from every computation (same shape as ``flux``).
    norm : array_like, shape (nchan,), optional
        Factor by which each channel was divided (default ones).
    oot : array_like of bool, shape (nint,), optional
        Out-of-event integrations (set by :meth:`normalize`).
    history : list of dict, optional
        Steps already run.
    unit : str, optional
        Flux unit (``""`` for relative flux).

    Raises
    ------
    ValueError
        On inconsistent shapes, non-finite flux or non-positive errors at
        unclipped points, non-increasing time or unknown keyword arguments.

    Examples
    --------
    >>> t = np.linspace(0, 0.2, 50)
    >>> lc = LightCurves(t, np.ones((2, 50)), np.full((2, 50), 1e-3), [1.0, 2.0], [2.0, 3.0])
    >>> lc.nchan, lc.nint
    (2, 50)
    """

    _ALLOWED = ("meta", "regressors", "clipped", "norm", "oot", "history", "unit")

    def __init__(self, time, flux, err, wave_lo=None, wave_hi=None, **kwargs):
        unknown = set(kwargs) - set(self._ALLOWED)
        if unknown:
            raise ValueError(f"unknown argument(s) {sorted(unknown)}; allowed: {list(self._ALLOWED)}")
        self.time = np.asarray(time, dtype=float).copy()
        if self.time.ndim != 1 or not np.all(np.isfinite(self.time)):
            raise ValueError("time must be a 1D array of finite values")
        if self.time.size > 1 and not np.all(np.diff(self.time) > 0):
            raise ValueError("time must be strictly increasing")
        self.flux = np.atleast_2d(np.asarray(flux, dtype=float)).copy()
        self.err = np.atleast_2d(np.asarray(err, dtype=float)).copy()
        if self.flux.shape != (self.flux.shape[0], self.time.size) or self.flux.ndim != 2:
            raise ValueError(f"flux shape {self.flux.shape} does not match (nchan, {self.time.size})")
        if self.err.shape != self.flux.shape:
            raise ValueError(f"err shape {self.err.shape} differs from flux shape {self.flux.shape}")
        if (wave_lo is None) != (wave_hi is None):
            raise ValueError("give both wave_lo and wave_hi, or neither")
        nan = np.full(self.nchan, np.nan)
        self.wave_lo = nan.copy() if wave_lo is None else np.atleast_1d(np.asarray(wave_lo, dtype=float)).copy()
        self.wave_hi = nan.copy() if wave_hi is None else np.atleast_1d(np.asarray(wave_hi, dtype=float)).copy()
        if self.wave_lo.shape != (self.nchan,) or self.wave_hi.shape != (self.nchan,):
            raise ValueError(f"wave_lo and wave_hi need {self.nchan} values each")
        none = np.isnan(self.wave_lo) & np.isnan(self.wave_hi)
        if not (none.all() or np.all(self.wave_hi > self.wave_lo)):
            raise ValueError("every channel needs wave_hi > wave_lo (or no channel a wavelength)")
        clipped = kwargs.get("clipped")
        self.clipped = (np.zeros(self.flux.shape, bool) if clipped is None
                        else np.asarray(clipped, dtype=bool).reshape(self.flux.shape).copy())
        self._check_values()
        norm = kwargs.get("norm")
        self.norm = np.ones(self.nchan) if norm is None else np.asarray(norm, float).reshape(self.nchan)
        oot = kwargs.get("oot")
        self.oot = None if oot is None else _as_mask(oot, self.nint, "oot").copy()
        self.meta = dict(kwargs.get("meta") or {})
        self.history = list(kwargs.get("history") or [])
        self.unit = kwargs.get("unit")
        self.regressors = {}
        used = ~self.clipped.all(axis=0)
        for name, arr in (kwargs.get("regressors") or {}).items():
            arr = np.asarray(arr, dtype=float)
            if arr.shape != (self.nint,) or not np.all(np.isfinite(arr[used])):
                raise ValueError(f"regressor {name!r} must be {self.nint} values, finite wherever "
                                 "a channel is not clipped")
            self.regressors[str(name)] = arr.copy()
        self.fit_result = None
        self.channel_fits = None

    def _check_values(self) -> None:
        use = ~self.clipped
        bad_f = use & ~np.isfinite(self.flux)
        if bad_f.any():
            c, i = np.argwhere(bad_f)[0]
            raise ValueError(f"flux has {bad_f.sum()} non-finite unclipped value(s), first at "
                             f"channel {c}, integration {i}; mark them in `clipped`")
        bad_e = use & ~(np.isfinite(self.err) & (self.err > 0))
        if bad_e.any():
            c, i = np.argwhere(bad_e)[0]
            raise ValueError(f"err has {bad_e.sum()} zero, negative or non-finite unclipped "
                             f"value(s), first at channel {c}, integration {i}")

    # ------------------------------------------------------------ properties
    @property
    def nchan(self) -> int:
        """Number of channels."""
        return self.flux.shape[0]

    @property
    def nint(self) -> int:
        """Number of integrations."""
        return self.time.size

    @property
    def has_wavelengths(self) -> bool:
        """Whether the channels have wavelength ranges (light curves made elsewhere may not)."""
        return bool(np.all(np.isfinite(self.wave_lo) & np.isfinite(self.wave_hi)))

    def _wave_text(self) -> str:
        if not self.has_wavelengths:
            return "no wavelengths"
        return f"{np.min(self.wave_lo):.3f}-{np.max(self.wave_hi):.3f} um"

    @property
    def wave(self) -> np.ndarray:
        """Channel centre wavelengths (micron)."""
        return 0.5 * (self.wave_lo + self.wave_hi)

    @property
    def width(self) -> np.ndarray:
        """Channel widths (micron)."""
        return self.wave_hi - self.wave_lo

    @property
    def mask(self) -> np.ndarray:
        """True where a point is used (not clipped)."""
        return ~self.clipped

    @property
    def steps(self) -> list[str]:
        """Names of the steps run so far."""
        return [h["step"] for h in self.history]

    def _repr_html_(self) -> str:
        """A table of the light curves for notebooks."""
        from tsocontainer._util import html_table

        rows = [("channels", f"{self.nchan}, {self._wave_text()}"),
                ("integrations", self.nint),
                ("time", f"BJD_TDB {np.min(self.time):.5f} .. {np.max(self.time):.5f}"),
                ("clipped points", int(self.clipped.sum())),
                ("regressors", ", ".join(self.regressors) or "none"),
                ("steps", " > ".join(self.steps) or "none")]
        return html_table(f"LightCurves: {self.nchan} channels", rows)

    def __repr__(self) -> str:
        wl = self._wave_text()
        return (f"<LightCurves nchan={self.nchan} nint={self.nint} {wl} "
                f"clipped={int(self.clipped.sum())} steps={self.steps}>")

    def _record(self, step: str, params: dict, summary: dict) -> None:
        self.history.append({"step": step, "params": _jsonable(params),
                             "summary": _jsonable(drop_timings(summary)), "version": __version__,
                             "time": _now()})

    def copy(self) -> "LightCurves":
        """Deep copy (fit results are not copied).

        Examples
        --------
        >>> import numpy as np
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> c = lc.copy()
        >>> c.flux is lc.flux, bool(np.array_equal(c.flux, lc.flux))
        (False, True)
        """
        return LightCurves(self.time, self.flux, self.err, self.wave_lo, self.wave_hi,
                           meta=dict(self.meta), regressors=self.regressors,
                           clipped=self.clipped, norm=self.norm, oot=self.oot,
                           history=[dict(h) for h in self.history], unit=self.unit)

    def __getitem__(self, key) -> "LightCurves":
        """Channels ``key`` (int, slice, index or boolean array) as new light curves."""
        idx = np.arange(self.nchan)[key]
        idx = np.atleast_1d(idx)
        return LightCurves(self.time, self.flux[idx], self.err[idx], self.wave_lo[idx],
                           self.wave_hi[idx], meta=dict(self.meta), regressors=self.regressors,
                           clipped=self.clipped[idx], norm=self.norm[idx], oot=self.oot,
                           history=list(self.history), unit=self.unit)

    def __len__(self) -> int:
        return self.nchan

    # -------------------------------------------------------- construction
    @classmethod
    def from_arrays(cls, time, flux, err, wave_lo=None, wave_hi=None, *, mask=None,
                    regressors=None, meta: dict | None = None, unit: str | None = None) -> "LightCurves":
        """Light curves from plain arrays, e.g. one made elsewhere: no wavelengths needed,
        masked points allowed.

        A point is marked ``clipped`` (kept in the arrays, left out of every
        computation and fit) where ``mask`` is False, where its flux or error is
        not finite, or where a regressor is not finite (then in every channel).
        Integrations with a non-finite time are dropped; times out of order
        are sorted (both logged).

        Parameters
        ----------
        time : array_like, shape (nint,)
            Times, BJD_TDB (days).
        flux, err : array_like, shape (nint,) or (nchan, nint)
            Fluxes and 1-sigma errors (``err`` may be a scalar).
        wave_lo, wave_hi : array_like (nchan,), optional
            Channel wavelength ranges (micron).
        mask : array_like of bool, shape (nint,) or like ``flux``, optional
            True where a point is good.
        regressors : dict of str to array_like (nint,), optional
        meta : dict, optional
        unit : str, optional
            Flux unit.

        Returns
        -------
        LightCurves

        Raises
        ------
        ValueError
            On inconsistent shapes, repeated times, or a zero or negative
            error at a point that is not masked.

        Examples
        --------
        >>> t = np.linspace(0.0, 0.2, 5)
        >>> lc = LightCurves.from_arrays(t, [1.0, np.nan, 1.0, 1.0, 1.0], 1e-3,
        ...                              mask=[True, True, True, False, True])
        >>> lc
        <LightCurves nchan=1 nint=5 no wavelengths clipped=2 steps=['from_arrays']>
        """
        t, f, e, good, regs, nint_in = _plain_arrays(time, flux, err, mask, regressors)
        lc = cls(t, f, e, wave_lo, wave_hi, meta=meta, regressors=regs, clipped=~good, unit=unit)
        lc._record("from_arrays", {"nchan": lc.nchan}, {"clipped": int((~good).sum()),
                                                        "dropped_times": nint_in - t.size})
        return lc

    @classmethod
    def from_spectra(cls, time, wave, flux, var, bins=30, mask=None, regressors=None, *,
                     meta: dict | None = None, unit: str | None = None,
                     min_flux: float = 0.01) -> "LightCurves":
        """Bin per-integration 1D spectra into spectroscopic light curves.

        Each pixel goes to the channel containing its centre wavelength. Where
        some pixels of a channel are bad at an integration, the sum of the good
        ones is scaled by the ratio of the median spectrum summed over all and
        over the good pixels (so a masked cosmic ray does not make a dip);
        a channel with no good pixel at an integration is marked ``clipped``.

        Parameters
        ----------
        time : array_like, shape (nint,)
            Mid-integration times, BJD_TDB.
        wave : array_like, shape (nwave,)
            Pixel wavelengths (micron), any order; non-finite ones are ignored.
        flux, var : array_like, shape (nint, nwave)
            Spectra and their variances.
        bins : int, dict or array_like, optional
            Number of channels (default 30), ``{"R": R}``, ``{"pixels": n}`` or
            explicit edges; see :func:`~tsocontainer.lightcurves.tools.bin_edges`.
            Empty channels are dropped.
        mask : array_like of bool, shape (nint, nwave), optional
            True where a pixel is good. Non-finite flux or variance and
            non-positive variance are always bad.
        regressors : dict of str to array_like (nint,), optional
            Systematics regressors carried along.
        meta : dict, optional
            Status values to keep.
        unit : str, optional
            Flux unit.
        min_flux : float
            Pixels whose median flux is below this fraction of the median
            spectrum's peak (99th percentile) are left out: the wavelength range
            where the star is detected. 0 keeps every finite pixel.

        Returns
        -------
        LightCurves

        Raises
        ------
        ValueError
            On inconsistent shapes or when no channel has any pixel.

        Examples
        --------
        Five integrations of 20 pixels (10 DN, variance 4 each) into 4 channels of 5 pixels:

        >>> import numpy as np
        >>> lc = LightCurves.from_spectra(np.arange(5.0), np.linspace(1.0, 2.0, 20),
        ...                               np.full((5, 20), 10.0), np.full((5, 20), 4.0), bins=4)
        >>> lc.nchan, lc.flux[:, 0], lc.err[:, 0].round(3)
        (4, array([50., 50., 50., 50.]), array([4.472, 4.472, 4.472, 4.472]))
        """
        t_start = _time.perf_counter()
        time, wave, flux, var, good = _spectra_arrays(time, wave, flux, var, mask)
        template, usable, nfaint = _detected(flux, good, min_flux)
        if nfaint:
            log.info("from_spectra: %d pixel(s) below %g of the peak median flux left out",
                     nfaint, min_flux)
        good &= usable[None, :]
        edges, groups, keep = _channel_pixels(wave, usable, bins)
        ndrop = edges.size - 1 - len(keep)
        if ndrop:
            log.warning("from_spectra: %d empty channel(s) dropped", ndrop)
        f, v, empty, nscaled = _binned_sum(flux, var, good, np.where(usable, template, 0.0), groups)
        lc = cls(time, f, np.sqrt(v), edges[keep], edges[keep + 1], meta=meta,
                 regressors=regressors, clipped=empty, unit=unit)
        lc.meta.setdefault("NCHAN", lc.nchan)
        summary = {"nchan": lc.nchan, "dropped": ndrop, "scaled_cells": nscaled,
                   "empty_cells": int(empty.sum())}
        lc._record("from_spectra", {"bins": bins}, summary)
        log.info("from_spectra: %d channels from %d pixels x %d integrations, %d cells scaled "
                 "for bad pixels, %d empty (%.2f s)", lc.nchan, wave.size, time.size, nscaled,
                 int(empty.sum()), _time.perf_counter() - t_start)
        return lc

    def white(self, wave_range: tuple[float, float] | None = None) -> "LightCurves":
        """White-light curve: the sum of the channels inside ``wave_range``.

        Channels enter with their un-normalised flux; an integration where any
        used channel is clipped is clipped in the white light too (filling it
        from the other channels' shares would bias it during the event, where
        the shares change with the chromatic depth and limb darkening). If these light curves were normalised,
        the white-light curve is normalised with the same out-of-event
        integrations.

        Parameters
        ----------
        wave_range : (float, float), optional
            Wavelength range (micron); channels lying entirely inside are used.
            Default: all channels.

        Returns
        -------
        LightCurves
            One channel spanning the used channels.

        Raises
        ------
        ValueError
            When no channel lies inside ``wave_range``.

        Examples
        --------
        >>> import numpy as np
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> lc.white()
        <LightCurves nchan=1 nint=400 1.000-3.000 um clipped=0 steps=['white']>
        """
        sel = np.ones(self.nchan, bool)
        if wave_range is not None:
            if not self.has_wavelengths:
                raise ValueError("these light curves have no wavelengths: wave_range cannot select "
                                 "channels (select them by index: lc[i].white())")
            lo, hi = wave_range
            sel = (self.wave_lo >= lo) & (self.wave_hi <= hi)
            if not sel.any():
                raise ValueError(f"no channel lies inside wave_range {wave_range}")
        idx = np.flatnonzero(sel)
        raw = (self.flux[idx] * self.norm[idx, None]).T
        rvar = ((self.err[idx] * self.norm[idx, None]) ** 2).T
        good = ~self.clipped[idx].T
        with np.errstate(all="ignore"):
            template = np.nanmedian(np.where(good, raw, np.nan), axis=0)
        f, v, empty, _ = _binned_sum(np.nan_to_num(raw), np.nan_to_num(rvar), good,
                                     np.nan_to_num(template), [np.arange(idx.size)])
        # a clipped channel point is not filled from the others: the channels' shares change
        # during the event (chromatic depth and limb darkening), so the fill would bias it
        empty[0] |= ~good.all(axis=1)
        wave = ([self.wave_lo[idx].min()], [self.wave_hi[idx].max()]) if self.has_wavelengths \
            else (None, None)
        wl = LightCurves(self.time, f, np.sqrt(v), *wave, meta=dict(self.meta), regressors=self.regressors,
                         clipped=empty, history=list(self.history), unit=self.unit)
        wl.meta["WHITECH"] = int(idx.size)
        wl._record("white", {"wave_range": wave_range}, {"nchan_used": int(idx.size)})
        if self.oot is not None:
            wl.normalize(self.oot)
        return wl

    # ---------------------------------------------------------------- steps
    def _oot_mask(self, oot) -> np.ndarray:
        if oot is None:
            return self.oot if self.oot is not None else np.ones(self.nint, bool)
        arr = np.asarray(oot)
        if arr.dtype == bool:
            return _as_mask(arr, self.nint, "oot")
        if arr.shape == (2,) and np.issubdtype(arr.dtype, np.number):
            t1, t2 = sorted(arr.astype(float))
            return (self.time < t1) | (self.time > t2)
        raise ValueError("oot must be a boolean array of shape (nint,) or an event window (t1, t2)")

    @step("lightcurves", plot="plot_white")
    def normalize(self, oot=None) -> "LightCurves":
        """Divide each channel by the median of its out-of-event flux.

        Parameters
        ----------
        oot : array_like of bool (nint,) or (float, float), optional
            Boolean mask of out-of-event integrations, or the event window
            ``(t1, t2)`` in BJD_TDB: integrations outside it are out-of-event.
            Default: the mask stored by a previous call, else all integrations.

        Returns
        -------
        LightCurves
            ``self``, normalised; the mask is stored as ``oot``.

        Raises
        ------
        ValueError
            On a malformed ``oot`` or a channel with no usable out-of-event
            point or a non-positive median.

        Examples
        --------
        A 1 % deep box-shaped transit between t = 0.07 and 0.13 d on 500 DN:

        >>> import numpy as np
        >>> t = np.linspace(0, 0.2, 100)
        >>> lc = LightCurves(t, 500 * np.where(np.abs(t - 0.1) < 0.03, 0.99, 1.0)[None],
        ...                  np.full((1, 100), 0.5), [1.0], [2.0])
        >>> lc.normalize((0.07, 0.13)).flux[0, [0, 50]], lc.norm, int(lc.oot.sum())
        (array([1.  , 0.99]), array([500.]), 70)
        """
        mask = self._oot_mask(oot)
        use = ~self.clipped & mask[None, :]
        if not use.any(axis=1).all():
            raise ValueError("some channel has no unclipped out-of-event integration")
        med = np.array([np.median(self.flux[c, use[c]]) for c in range(self.nchan)])
        if not np.all(med > 0):
            raise ValueError(f"non-positive out-of-event median in channel(s) {np.flatnonzero(med <= 0)}")
        self.flux /= med[:, None]
        self.err /= med[:, None]
        self.norm = self.norm * med
        self.oot = mask.copy()
        self.unit = ""
        self._record("normalize", {"n_oot": int(mask.sum())}, {"median_factor": float(np.median(med))})
        log.info("normalize: %d channels by the median of %d out-of-event integrations",
                 self.nchan, int(mask.sum()))
        return self

    @step("lightcurves", plot="plot_waterfall",
          params={"sigma": Num(lo=0, lo_open=True), "window": Num(lo=3, integer=True),
                  "maxiter": Num(lo=1, integer=True)})
    def clip_outliers(self, sigma: float = 5.0, window: int = 15, maxiter: int = 5) -> "LightCurves":
        """Clip time-domain outliers per channel against a running median.

        With three or more channels, each channel is first divided by its fit
        by what the channels share (:func:`~tsocontainer.lightcurves.tools._clip_bases`:
        the common shape and, where measurable, the shape difference of the
        blue and red channels), so the transit or eclipse cancels with its
        chromatic depth and limb darkening (the common shape alone left up to
        30x the noise at ingress of the bluest SOSS channel) and a running
        median of ``window`` integrations does not lag behind ingress and
        egress. A point is clipped when it deviates from that running median
        by more than ``sigma`` times the channel's robust scatter (1.4826 x
        MAD, at least half the errors' relative noise), until nothing new is
        clipped (not: all channels moving together).

        Parameters
        ----------
        sigma : float
            Threshold in units of the robust scatter.
        window : int
            Running-median width in integrations (odd, >= 3).
        maxiter : int
            Maximum number of passes.

        Returns
        -------
        LightCurves
            ``self``; newly clipped points are set in ``clipped``, counted in
            ``meta["NCLIPPED"]`` and in ``history``.

        Examples
        --------
        >>> import numpy as np
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> lc.flux[1, 200] += 0.02                        # a 20-sigma outlier
        >>> np.argwhere(lc.clip_outliers(sigma=5).clipped).tolist()
        [[1, 200]]
        """
        from scipy.ndimage import median_filter

        if sigma <= 0 or window < 3 or window % 2 == 0:
            raise ValueError(f"need sigma > 0 and an odd window >= 3, got {sigma}, {window}")
        t_start = _time.perf_counter()
        if self.nint < window:
            log.warning("clip_outliers skipped: %d integrations, fewer than its window of %d",
                        self.nint, window)
            self._record("clip_outliers", {"sigma": sigma, "window": window, "maxiter": maxiter},
                         {"skipped": f"{self.nint} integrations < window"})
            return self
        before = self.clipped.copy()
        bases = (_clip_bases(self.flux, ~before & np.isfinite(self.flux)) if self.nchan >= 3
                 else None)
        floor = 0.5 * self._relative_error(before)
        for _ in range(maxiter):
            filled = np.where(self.clipped, np.nan, self.flux)
            norm, fill = (_normalised_for_clipping(filled, self.nchan) if bases is None
                          else _clip_normalised(filled, bases))
            smooth = median_filter(np.where(np.isnan(norm), fill, norm), size=(1, window),
                                   mode="mirror")
            resid = norm - smooth
            # floor: noiseless or very bright data would lose every small model mismatch
            new = (np.abs(resid) > sigma * np.fmax(_robust_scatter(resid), floor)[:, None]
                   ) & ~self.clipped
            if not new.any():
                break
            self.clipped |= new
        nnew = int((self.clipped & ~before).sum())
        self.meta["NCLIPPED"] = int(self.clipped.sum())
        self._record("clip_outliers", {"sigma": sigma, "window": window},
                     {"clipped": nnew, "total_clipped": int(self.clipped.sum())})
        log.info("clip_outliers: %d points clipped at %.1f sigma (window %d) in %d channels (%.2f s)",
                 nnew, sigma, window, self.nchan, _time.perf_counter() - t_start)
        return self

    def _relative_error(self, clipped) -> np.ndarray:
        """Median relative error of each channel over its unclipped points (0 if none)."""
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rel = np.nanmedian(np.where(clipped, np.nan, np.abs(self.err / self.flux)), axis=1)
        return np.nan_to_num(rel, nan=0.0)

    def unclip(self) -> "LightCurves":
        """Restore every clipped point with a finite flux, a positive error and finite regressors.

        Returns
        -------
        LightCurves
            ``self``.

        Examples
        --------
        >>> import numpy as np
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> lc.clipped[0, 5] = True
        >>> int(lc.unclip().clipped.sum())
        0
        """
        ok = np.isfinite(self.flux) & np.isfinite(self.err) & (self.err > 0)
        for arr in self.regressors.values():   # an integration without a regressor value stays out
            ok &= np.isfinite(arr)[None, :]
        n = int((self.clipped & ok).sum())
        self.clipped &= ~ok
        self.meta["NCLIPPED"] = int(self.clipped.sum())
        self._record("unclip", {}, {"restored": n})
        return self

    # -------------------------------------------------------------- fitting
    @step("fit_white", plot="plot_white", once=True,
          params={"model": Coerced(_model_check, "a fit model mapping (kind, poly, ramp, "
                                   "regressors, jitter, ...)"),
                  "sampler": Coerced(_sampler_check, "sampler settings (nwalkers, nsteps, ...)")})
    def fit_white(self, priors=None, *, model=None, sampler=None, wave_range=None) -> "FitResult":
        """Fit the white-light curve; see :func:`tsocontainer.lightcurves.fit.fit_white`.

        Parameters
        ----------
        priors, sampler, wave_range
            As for :func:`tsocontainer.lightcurves.fit.fit_white`.
        model : ModelSpec or dict, optional
            Default: the ``fit_white`` model of the shipped recipe of this
            visit's mode (``meta["MODE"]``), e.g. ``poly 1 + ramp`` with the
            optional regressors ``tilt?``/``fwhm?`` these light curves carry;
            logged in one INFO line (see :mod:`tsocontainer.lightcurves.defaults`).

        Returns
        -------
        FitResult
            Also stored as ``fit_result``; ``suspect`` and ``quality`` give its verdict.

        Raises
        ------
        TSOValueError
            Before fitting, when the priors' event is not in the data (see
            :mod:`tsocontainer.lightcurves.window`).
        """
        from tsocontainer.lightcurves.fit import fit_white

        self.fit_result = fit_white(self, priors, model=model, sampler=sampler, wave_range=wave_range)
        return self.fit_result

    @step("fit_channels", plot="plot_sensitivity", once=True,
          params={"geometry": Choice("fixed", "free"),
                  "model": Coerced(_model_check, "a fit model mapping (kind, poly, ramp, "
                                   "regressors, jitter, ...)"),
                  "sampler": Coerced(_sampler_check, "sampler settings (nwalkers, nsteps, ...)"),
                  "channel_priors": Coerced(_channel_priors_check, "per-channel priors {name: "
                                            "[spec per channel]} or a limb-darkening table file"),
                  "workers": Num(lo=1, integer=True), "progress": Bool()})
    def fit_channels(self, priors=None, *, white=None, geometry: str = "fixed", model=None,
                     sampler=None, channel_priors=None, workers: int = 1, client=None,
                     progress: bool | None = None) -> "ChannelFits":
        """Fit every channel; see :func:`tsocontainer.lightcurves.fit.fit_channels`.

        Parameters
        ----------
        priors, white, geometry, model, sampler, channel_priors, workers, client, progress
            As for :func:`tsocontainer.lightcurves.fit.fit_channels`; ``white`` defaults to
            ``fit_result`` (from :meth:`fit_white`), and ``model`` to the white-light
            fit's model (else the mode's recipe model).

        Returns
        -------
        ChannelFits
            Also stored as ``channel_fits``.
        """
        from tsocontainer.lightcurves.fit import fit_channels

        self.channel_fits = fit_channels(
            self, priors, white=self.fit_result if white is None else white, geometry=geometry,
            model=model, sampler=sampler, channel_priors=channel_priors, workers=workers,
            client=client, progress=progress)
        return self.channel_fits
