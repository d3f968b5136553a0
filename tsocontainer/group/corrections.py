"""TSOGroup correction steps (sky, 1/f, pixel replacement) and the working data they read.

Part of the cleaning stage of :class:`~tsocontainer.TSOGroup` (see
:mod:`tsocontainer.group.cleaning` for the data each step looks at). The
algorithms live in :mod:`tsocontainer.cleaning`; these are thin wrappers. A
correction is a model stored in ``aux`` and applied when the working data are
made; ``sci`` is never changed.
"""
from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from tsocontainer._disk import is_sorted, release
from tsocontainer.group.working import CORRECTION_KEYS, POINTS, WorkingSource
from tsocontainer.registry import Bool, Choice, Num, OneOf, step

__all__ = ["CorrectionSteps"]

_POS = Num(lo=0, lo_open=True)             # a threshold or scale > 0
_WIN = Num(lo=1, integer=True)              # a window or size in pixels / integrations
_WIDTH = OneOf(_POS)                        # a band width in pixels

log = logging.getLogger("tsocontainer.cleaning")

class _GoodSource:
    """Blocks ``mask[a:b] & static`` (no full good cube is made)."""

    def __init__(self, mask, static):
        self.mask, self.static, self.shape = mask, static, mask.shape

    def __getitem__(self, key):
        return self.mask[key] & self.static


class _LineLevelSource:
    """Blocks of ``source`` minus, per integration and 1/f line, the mean of the line's
    reference pixels (``refline``): a direct measure of the line's 1/f offset, free of
    the sky and the star."""

    def __init__(self, source, refline, onef_axis):
        self.source, self.refline, self.axis = source, refline, onef_axis
        self.shape = source.shape
        self.count = np.maximum(refline.sum(axis=onef_axis), 1)   # per line

        # rows holding reference pixels (lines along columns): the level sums only these,
        # in the same order (the other rows add exact zeros), so no full-block temporaries
        self.rows = np.flatnonzero(refline.any(axis=1)) if onef_axis == 0 else None

    def _level(self, d):
        """Reference level per integration and line of block ``d``, shape (n, nlines)."""
        if self.rows is not None:
            d, ref = d[:, self.rows], self.refline[self.rows]
        else:
            ref = self.refline
        red = 1 if self.axis == 0 else 2
        d = np.asarray(d, np.float32)
        return np.where(ref[None], np.nan_to_num(d), 0).sum(axis=red) / self.count

    def __getitem__(self, key):
        d = np.array(self.source[key], np.float32)
        level = self._level(d)
        return d - (level[:, None, :] if self.axis == 0 else level[:, :, None])

    def take_pixels(self, a, b, pixels):
        """``self[a:b]`` at flat pixel indices ``pixels`` only, shape ``(b - a, len(pixels))``."""
        blk = np.asarray(self.source[a:b])
        level = self._level(blk)
        vals = np.take(blk.reshape(b - a, -1), pixels, axis=1).astype(np.float32, copy=False)
        nx = self.shape[2]
        return vals - np.take(level, pixels % nx if self.axis == 0 else pixels // nx, axis=1)


class CorrectionSteps:
    """Mixin of :class:`~tsocontainer.TSOGroup` with the correction steps."""

    def _source_points(self, ints, pix, stop="replace") -> np.ndarray:
        """Working data at (integration, flat pixel) points, corrections before ``stop``."""
        import importlib

        vals = self.sci.reshape(self.N, -1)[ints, pix].astype(np.float32)
        for name in self.corrections:
            if name == stop:
                break
            self.derived.check(name)
            module, func = POINTS[name].split(":")
            vals -= getattr(importlib.import_module(module), func)(self._correction_model(name),
                                                                  ints, pix)
        return vals
    def _register_correction(self, name) -> str | None:
        """Where the data of correction ``name`` stop: ``name`` itself when it is re-run
        (its model is made from the corrections before it), else None (all of them).

        A re-run leaves the later corrections in place; their stamps make them stale
        (:mod:`tsocontainer.group.state`), so the working data refuse to use them until
        they are run again.
        """
        return name if name in self.corrections else None

    def _store_correction(self, name, arrays: dict, per_int: set, meta: dict) -> None:
        keys, metas = CORRECTION_KEYS[name]
        for k in keys:
            dict.pop(self.aux, k, None)
            self.aux_per_int.discard(k)
        for k, v in arrays.items():
            self.set_aux(k, v, per_integration=k in per_int)
        for k in metas:
            self.meta.pop(k, None)
        self.meta.update(meta)
        if name not in self.corrections:
            self.corrections.append(name)
        before = self.corrections[:self.corrections.index(name)]
        # sky and 1/f are robust fits: the mask of their time is an input of the fit, not
        # of the model's meaning. The replacement fills exactly the masked pixels, so a
        # later flag leaves it incomplete: it reads the mask.
        self.derived.stamp(name, (["mask"] if name == "replace" else []) + before)
        self._warn_stale_after(name)

    def _warn_stale_after(self, name) -> None:
        later = [c for c in self.corrections[self.corrections.index(name) + 1:]
                 if self.derived.stale(c)]
        if later:
            warnings.warn(f"re-running {name!r} makes the later correction(s) {later} stale: "
                          "run those steps again before using the working data", UserWarning,
                          stacklevel=4)
    # --------------------------------------------------------- corrections
    def _block_ints(self) -> int:
        return max(1, int(4_000_000 // max(self.sh[0] * self.sh[1], 1)))

    @step("state", target="TSOGroup", writes=("sky",), plot="plot_sky",
          params={"method": Choice("model", "rows", "columns", "polynomial", "spline"),
                  "width": _WIDTH, "column_groups": Num(lo=1, integer=True),
                  "deg": Num(lo=0, integer=True), "bin_size": _WIN, "per_integration": Bool(),
                  "scale_by": Choice("auto", "light-curve", "ratio")})
    def estimate_sky(self, method: str | None = None, model=None, region=None, width=None,
                     column_groups: int | None = None, deg: int = 1, bin_size: int = 32,
                     per_integration: bool | None = None,
                     scale_by: str = "auto") -> "CorrectionSteps":
        """Fit a sky background model and subtract it in the working data (correction ``sky``).

        Sky pixels: good pixels outside the trace band (and inside ``region``).
        The model is kept in ``aux`` (``sky_params``, ``sky_pvar``; ``model``:
        ``sky_frame``, ``sky_groups``); its variance is added to the working
        variance. See :mod:`tsocontainer.cleaning.background`.

        Parameters
        ----------
        method : {'model', 'rows', 'columns', 'polynomial', 'spline'}, optional
            Default per mode: SOSS ``model``, MIRI ``rows``, others ``polynomial``.
        model : ndarray, shape (ny, nx), optional
            2D model for ``model`` (SOSS default: the shipped stepped background).
        region : tuple (y0, y1, x0, x1) or ndarray of bool, optional
            Restrict the sky pixels to this box or mask.
        width : float, optional
            Trace band masked (pixels); default per mode.
        column_groups : int, optional
            ``model``: 1 for one scale; default: one per side of the model's step.
        deg, bin_size : int
            ``polynomial`` degree; ``spline`` bin size along dispersion (pixels).
        per_integration : bool, optional
            True: fit every integration (absorbing the mean 1/f offset of the
            sky pixels); False: one model for the visit (the zodiacal light
            does not change). Default: False for ``model``, True otherwise.
        scale_by : {'auto', 'light-curve', 'ratio'}
            ``model`` only: ``ratio``, the median data/model ratio of the sky
            pixels; ``light-curve``, the model fitted to the light of the sky
            pixels that does not follow the white light, so the star's wings
            and transit cannot pull it (needs a transit or eclipse; see
            :func:`~tsocontainer.cleaning.background.nonvarying_scales`);
            ``auto``, ``light-curve`` when that fixes every scale to 2 %.

        Returns
        -------
        TSOGroup
            ``self``.

        Raises
        ------
        ValueError
            Unknown option, a model of the wrong shape, ``scale_by='light-curve'``
            with a flat light curve or with ``per_integration=True``.
        """
        from tsocontainer.cleaning.background import _region_mask

        t0 = time.perf_counter()
        method, per_integration = self._sky_options(method, per_integration, scale_by)
        frame, groups = self._sky_frame(method, model, column_groups)
        sky = ~self._trace_band(width) & _region_mask(region, self.sh) & self._static_good()
        stop = self._register_correction("sky")   # after the checks: a bad call changes nothing
        fit = (self._sky_scales_from_light_curve(stop, sky, frame, groups, scale_by) if (
            method == "model" and not per_integration and scale_by != "ratio") else None)
        if fit is None:
            params, pvars = self._sky_per_integration(method, stop, sky, frame, groups, deg,
                                                      bin_size, per_integration)
            scaled = "ratio" if method == "model" else None
        else:
            params, pvars, scaled = fit
        self._store_sky(method, params, pvars, frame, groups, scaled)
        dt = time.perf_counter() - t0
        self._record("estimate_sky", dict(method=method, region=region, width=width,
                                          column_groups=column_groups, deg=deg, bin_size=bin_size,
                                          per_integration=per_integration, scale_by=scale_by),
                     {"median_params": np.median(params.reshape(self.N, -1), axis=0)[:8].tolist(),
                      "sky_pixels": int(sky.sum()), "scale_by": scaled, "seconds": round(dt, 3)})
        log.info("estimate_sky (%s, %s): %d sky pixels per frame in %.2f s", method, scaled,
                 sky.sum(), dt)
        return self

    def _sky_options(self, method, per_integration, scale_by):
        """Checked sky method and ``per_integration`` (its default per method)."""
        from tsocontainer._util import check_option
        from tsocontainer.cleaning.background import DEFAULT_SKY, SCALE_BY, SKY_METHODS

        key = self.mode.key if self.mode is not None else ""
        method = check_option(method or DEFAULT_SKY.get(key, "polynomial"), SKY_METHODS,
                              "sky method")
        check_option(scale_by, SCALE_BY, "scale_by")
        if per_integration is None:
            per_integration = method != "model"
        if per_integration and scale_by == "light-curve":
            raise ValueError("scale_by='light-curve' fits one scale per visit: "
                             "per_integration must be False")
        return method, per_integration

    def _sky_per_integration(self, method, stop, sky, frame, groups, deg, bin_size,
                             per_integration):
        """Sky parameters fitted to every integration (then their median if not per integration)."""
        from tsocontainer.cleaning.background import fit_sky
        from tsocontainer.cleaning.outliers import block_ranges, run_blocks

        disp, _ = self._axes()
        mask = self.mask
        source = WorkingSource(self, stop)

        def work(a, b):
            return fit_sky(method, source[a:b], mask[a:b], sky, disp, frame, groups, deg, bin_size)

        res = run_blocks(work, block_ranges(self.N, self._block_ints()), "sky")
        params = np.concatenate([r[0] for r in res])
        pvars = np.concatenate([r[1] for r in res])
        if not per_integration:
            params = np.broadcast_to(np.median(params, axis=0), params.shape).copy()
            pvars = np.broadcast_to(np.median(pvars, axis=0) / self.N, pvars.shape).copy()
        return params, pvars

    def _sky_scales_from_light_curve(self, stop, sky, frame, groups, scale_by):
        """``model`` scales from the sky pixels' light that does not follow the white light.

        Returns ``(params, pvars, "light-curve")``, or None when ``auto`` finds
        the scales poorly determined (then the ratio is used).
        """
        from tsocontainer.cleaning.background import nonvarying_scales
        from tsocontainer.cleaning.timemodel import light_curve_sums, separate, separation_error

        source = WorkingSource(self, stop)
        wl = self._star_light_curve(source)
        scales = svar = None
        levelled = self._reference_levelled(source)
        if np.isfinite(separation_error(wl)):
            pix = np.flatnonzero(sky & (frame > 0))
            sums = light_curve_sums(levelled, self.mask, wl, pixels=pix)
            _, b, b_var = separate(sums)
            mean = sums["d"] / np.maximum(sums["n"], 1)
            cols = pix % self.sh[1]
            scales, svar, gamma, npix = nonvarying_scales(b, b_var, mean, frame.reshape(-1)[pix],
                                                          groups[cols], cols)
        ok = scales is not None and np.all(np.isfinite(scales)) and np.all(
            np.sqrt(svar) < 0.02 * np.abs(scales))
        if not ok:
            if scale_by == "light-curve":
                raise ValueError("scale_by='light-curve': the light curve does not fix the sky "
                                 "scales to 2 % (too little contrast -- no transit or eclipse? "
                                 "-- or 1/f noise without reference pixels); use scale_by='ratio'")
            why = ("flat white light, or strong 1/f noise?" if levelled is not source else
                   "no reference-pixel lines to level the 1/f noise, as in SOSS SUBSTRIP96, "
                   "or a flat white light?")
            log.warning("estimate_sky: the light curve fixes the sky scales to %s only (%s); "
                        "scaling by the data/model ratio instead",
                        "?" if svar is None else np.round(np.sqrt(svar), 4), why)
            return None
        log.info("estimate_sky: scales %s +- %s from the light that does not transit "
                 "(%d pixels, white-light dilution %.3f)", np.round(scales, 4),
                 np.round(np.sqrt(svar), 4), npix, -gamma / (1 - gamma))
        params = np.broadcast_to(scales.astype(np.float32), (self.N, scales.size)).copy()
        return params, np.broadcast_to(svar.astype(np.float32), params.shape).copy(), "light-curve"

    def _reference_levelled(self, source):
        """``source`` with each 1/f line's reference-pixel level removed per integration, when
        the lines have reference pixels (SOSS SUBSTRIP256: the 4 top rows); else ``source``.

        1/f noise moves a whole line; its projection on the transit shape cannot be told
        from sky in that line, so without this the light-curve sky scale is only good to
        tens of per cent under strong 1/f noise (measured: 1.4 DN/s offsets, SOSS scene).
        """
        from tsocontainer.flags import dq_bits

        onef = self.geometry.onef_axis
        ref = (self.dqs.static & np.uint32(dq_bits(["REFERENCE_PIXEL"]))) != 0
        whole = ref.all(axis=onef)          # reference lines (e.g. side columns): no science
        refline = ref & ~(whole[None, :] if onef == 0 else whole[:, None])
        if not refline.any(axis=onef).any():
            return source
        return _LineLevelSource(source, refline, onef)

    def _store_sky(self, method, params, pvars, frame, groups, scaled) -> None:
        disp, _ = self._axes()
        arrays = {"sky_params": params, "sky_pvar": pvars}
        meta = {"SKYMETH": method}
        if method == "model":
            arrays.update(sky_frame=frame, sky_groups=groups)
            meta["SKYSCAL"] = scaled
        else:
            meta["SKYAXIS"] = {"rows": 0, "columns": 1}.get(method, disp)
        self._store_correction("sky", arrays, {"sky_params", "sky_pvar"}, meta)

    def _sky_frame(self, method, model, column_groups):
        """2D model and column groups of the ``model`` sky method (None, None otherwise)."""
        from tsocontainer.cleaning.background import soss_background_model, step_groups

        if method != "model":
            return None, None
        key = self.mode.key if self.mode is not None else ""
        if model is None:
            if key != "soss":
                raise ValueError("method='model' needs model= (a 2D background) for "
                                 f"mode {key or 'unknown'}")
            geo = self.geometry
            if self.meta.get("SUBSTRT2") is None and geo.known is not None \
                    and self.sh[0] != geo.known.shape[0]:
                raise ValueError(f"no SOSS background model for a {self.sh[0]}-row frame of "
                                 f"{geo.subarray} without SUBSTRT2 (where are its rows?); "
                                 "pass model= explicitly")
            model = soss_background_model(self.mode.subarray, self.sh, geo.x_offset, geo.y_offset)
        frame = np.asarray(model, np.float32)
        if frame.shape != tuple(self.sh):
            raise ValueError(f"model shape {frame.shape} differs from the data {self.sh}")
        return frame, step_groups(frame, column_groups)

    def sky_model(self, integration: int = 0) -> np.ndarray:
        """The stored sky model of one integration, shape ``(ny, nx)``.

        Raises
        ------
        RuntimeError
            If :meth:`estimate_sky` has not run.
        """
        from tsocontainer.cleaning.background import sky_block

        if "sky_params" not in self.aux:
            raise RuntimeError("no sky model: run estimate_sky() first")
        disp, _ = self._axes()
        return np.array(sky_block(self.meta, self.aux, integration, integration + 1, self.sh,
                                  disp)[0][0])

    @step("state", target="TSOGroup", writes=("onef",), plot="plot_one_over_f_psd",
          params={"method": Choice("median", "masked-median", "scale-achromatic",
                                   "scale-chromatic", "solve"),
                  "width": _WIDTH, "window": Num(lo=1, integer=True), "bin_size": _WIN,
                  "star_model": Choice("reference", "deep")})
    def correct_one_over_f(self, method: str = "masked-median", width=None,
                           window: int | None = None, bin_size: int = 16,
                           star_model: str = "reference") -> "CorrectionSteps":
        """Estimate 1/f offsets per integration and line; subtract them in the working data.

        Lines run along the mode's ``onef_axis`` (SOSS/NIRSpec columns, NIRCam/MIRI
        rows); the offsets ``(N, nlines)`` are kept in ``aux["onef"]``, their
        variance added to the working variance. Methods: :mod:`tsocontainer.cleaning.onef`.

        Parameters
        ----------
        method : {'median', 'masked-median', 'scale-achromatic', 'scale-chromatic', 'solve'}
            Estimator.
        width : float, optional
            Trace band masked (pixels); default per mode.
        window : int, optional
            Smoothing (integrations) of the light curves of the ``scale-*``
            methods; default ``max(5, N // 50)`` (2 % of the visit, as exoTEDRF).
        bin_size : int
            ``scale-chromatic``: dispersion pixels per light curve.
        star_model : {'reference', 'deep'}
            ``scale-*`` model of the star: ``reference``, the star's own light
            curve (band flux minus each line's background median; for
            ``scale-chromatic`` per bin of the first order's band) times the
            mean frame per unit of it, so the offsets do not see the transit;
            ``deep``, the median frame times the white light or the raw band
            curves (exoTEDRF's; biased when sky is left over). See
            :mod:`tsocontainer.cleaning.onef`.

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.onef import ONEF_METHODS, onef_offsets
        from tsocontainer.cleaning.outliers import block_ranges, run_blocks
        from tsocontainer._util import check_option

        t0 = time.perf_counter()
        check_option(method, ONEF_METHODS, "1/f method")
        check_option(star_model, ("reference", "deep"), "star_model")
        disp, onef = self._axes()
        stop = self._register_correction("onef")
        band = self._trace_band(width)
        static = self._static_good()   # no reference / non-science pixels
        window = max(5, self.N // 50) if window is None else int(window)
        source = WorkingSource(self, stop)
        deep, scale = self._onef_model(method, source, stop, band, width, window, bin_size,
                                       star_model)
        mask = self.mask

        def work(a, b):
            data = source[a:b]
            s = None if scale is None else scale[a:b]
            return onef_offsets(method, data, self.var[a:b], mask[a:b] & static, band, onef, deep,
                                s, disp, base=static)

        res = run_blocks(work, block_ranges(self.N, self._block_ints()), "1/f")
        off = np.concatenate([r[0] for r in res])
        ovar = np.concatenate([r[1] for r in res])
        self._store_correction("onef", {"onef": off, "onef_var": ovar}, {"onef", "onef_var"},
                               {"ONEFCORR": method, "ONEFAXIS": onef})
        dt = time.perf_counter() - t0
        rms = float(np.sqrt(np.mean(off.astype(np.float64) ** 2)))
        self._record("correct_one_over_f", {"method": method, "width": width, "window": window,
                                            "bin_size": bin_size, "star_model": star_model},
                     {"rms_offset": rms, "seconds": round(dt, 3)})
        log.info("correct_one_over_f (%s): %d x %d offsets, rms %.3g, in %.2f s", method,
                 off.shape[0], off.shape[1], rms, dt)
        return self

    def _onef_model(self, method, source, stop, band, width, window, bin_size, star_model):
        """Frame and light curve(s) of the star model of the ``scale-*`` / ``solve`` methods."""
        from tsocontainer.cleaning.onef import reference_frame
        from tsocontainer.cleaning.outliers import deep_frame

        if method.startswith("scale") and star_model == "reference":
            chromatic = method == "scale-chromatic"
            curve_band = self._trace_band(width, orders=self.geometry.orders[:1]) if (
                chromatic) else band
            scale = self._star_light_curve(source, curve_band, window,
                                           bin_size if chromatic else None)
            good = _GoodSource(self.mask, self._static_good())
            return reference_frame(source, good, scale, dispersion_axis=self._axes()[0])[0], scale
        if method.startswith("scale") or method == "solve":
            deep = self._deep()[0] if stop is None else deep_frame(source, self.var)[0]
            return deep, self._onef_curves(method, source, deep, band, window, bin_size)
        return None, None

    def _onef_curves(self, method, source, deep, band, window, bin_size):
        """Light curve(s) scaling the deep frame of the ``scale-*`` 1/f methods (white
        light, or per dispersion bin), None for the others."""
        from tsocontainer.cleaning.onef import chromatic_light_curves
        from tsocontainer.cleaning.outliers import white_light

        if method == "scale-achromatic":
            return white_light(source, self._static_good(), window)
        if method == "scale-chromatic":
            disp, _ = self._axes()
            return chromatic_light_curves(source, deep, band, disp, bin_size, window)
        return None

    def _star_light_curve(self, source, band=None, window: int = 1, bin_size=None):
        """The star's light curve (or one per dispersion bin): trace-band flux minus each
        1/f line's background median."""
        from tsocontainer.cleaning.onef import clean_light_curves

        band = self._trace_band() if band is None else band
        static = self._static_good()
        disp, onef = self._axes()
        return clean_light_curves(source, _GoodSource(self.mask, static), band, onef, disp,
                                  bin_size, window, base=static)

    def _bad_pixel_indices(self, mask, block: int = 16):
        """Flat indices of the masked or non-finite pixels of the cube, and per pixel the
        number of integrations in which it is usable (blockwise: no cube-sized temporary;
        in streaming mode the indices go to a scratch file, counted in a first pass)."""
        npix = self.sh[0] * self.sh[1]
        count = np.zeros(self.sh, np.int32)
        ranges = [(a, min(self.N, a + block)) for a in range(0, self.N, block)]

        def bad(a, b):
            good = mask[a:b] & np.isfinite(self.sci[a:b])
            return ~good

        flats, sizes = [], []
        for a, b in ranges:
            nb = bad(a, b)
            count += (b - a) - nb.sum(axis=0, dtype=np.int32)
            if self._scratch is None:
                flats.append(np.flatnonzero(nb) + a * npix)
            else:
                sizes.append(int(np.count_nonzero(nb)))
            release()
        if self._scratch is None:
            return (np.concatenate(flats) if flats else np.zeros(0, np.int64)), count
        flat, pos = self._new_array(sum(sizes), np.int64, "bad"), 0
        for (a, b), n in zip(ranges, sizes):
            flat[pos:pos + n] = np.flatnonzero(bad(a, b)) + a * npix
            pos += n
            release()
        return flat, count

    @step("state", target="TSOGroup", reads=("mask",), writes=("replace",), plot="plot_replaced",
          params={"method": Choice("spatial", "temporal", "profile"),
                  "var_inflation": Num(lo=1), "reach": _WIN})
    def replace_bad_pixels(self, method: str = "spatial", var_inflation: float = 4.0,
                           reach: int = 2) -> "CorrectionSteps":
        """Fill every masked pixel in the working data (correction ``replace``).

        The values (and variances ``var_inflation`` times the pixel's typical
        variance) are stored sparsely in ``aux`` and put in by the working
        data; the pixels get the informational flag ``replaced`` and stay
        masked in ``mask``. ``sci`` is never changed. Pixels flagged later are
        not replaced until this step runs again.

        Parameters
        ----------
        method : {'spatial', 'temporal', 'profile'}
            See :class:`tsocontainer.cleaning.replacement.ReplaceOptions`.
        var_inflation : float
            Variance factor of replaced pixels (>= 1).
        reach : int
            ``spatial``: neighbours on each side along dispersion.

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.outliers import profile_model
        from tsocontainer.cleaning.replacement import ReplaceOptions, clean_deep, replacement_values

        t0 = time.perf_counter()
        opts = ReplaceOptions(method, reach, var_inflation)   # checked before any work
        disp, _ = self._axes()
        self._register_correction("replace")
        mask = self.mask
        npix = self.sh[0] * self.sh[1]
        flat, count = self._bad_pixel_indices(mask)
        deep, deep_var = self._deep()
        deep = clean_deep(deep, count < 0.5 * self.N, disp)
        prof = profile_model(deep, self._trace_band(), disp) if method == "profile" else None
        mflat, sflat = mask.reshape(self.N, -1), self.sci.reshape(self.N, -1)

        def good_at(i, p):   # usable: unmasked and finite (no good cube is made)
            return mflat[i, p] & np.isfinite(sflat[i, p])

        arrays = {"replace_int": self._new_array(flat.size, self.int_numbers.dtype, "rint"),
                  "replace_pix": self._new_array(flat.size, np.int64, "rpix"),
                  "replace_val": self._new_array(flat.size, np.float32, "rval"),
                  "replace_var": self._new_array(flat.size, np.float32, "rvar")}
        wl = self._white_light(5)
        for c0 in range(0, flat.size, 250_000):   # chunks: temporaries of 2.5e5 points (each
            c1 = min(flat.size, c0 + 250_000)     # point's value is its own: same values)
            ints, pix = np.divmod(flat[c0:c1], npix)
            values, variances = replacement_values(ints, pix, self._source_points, good_at, deep,
                                                   wl, deep_var, prof, disp, opts)
            arrays["replace_int"][c0:c1] = self.int_numbers[ints]
            arrays["replace_pix"][c0:c1] = pix
            arrays["replace_val"][c0:c1], arrays["replace_var"][c0:c1] = values, variances
            release()
        if not is_sorted(arrays["replace_int"]):   # sorted unless the numbers are not
            order = np.argsort(arrays["replace_int"], kind="stable")
            arrays = {k: v[order] for k, v in arrays.items()}
        self._store_correction("replace", arrays, set(), {"REPLMETH": method})
        self._flags.set_indices("replaced", flat)
        dt = time.perf_counter() - t0
        self._record("replace_bad_pixels", {"method": method, "var_inflation": var_inflation,
                                            "reach": reach},
                     {"replaced": int(flat.size), "seconds": round(dt, 3)})
        log.info("replace_bad_pixels (%s): %d pixels replaced in %.2f s", method, flat.size, dt)
        return self
