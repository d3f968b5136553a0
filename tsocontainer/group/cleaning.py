"""TSOGroup step methods of the cleaning stage (flags, pixel repair, sky, 1/f).

The algorithms live in ``outliers.py``, ``background.py`` and ``onef.py`` as
pure functions; the methods here are the thin wrappers that apply them to a
group, record history, invalidate caches and return ``self``. They import the
algorithm modules lazily so that ``import tsocontainer`` stays fast.

Data each step looks at
-----------------------
* Flag steps use the *detection data*: the working data with the sky and 1/f
  corrections but without the pixel replacement, the pipeline ``DO_NOT_USE``
  bit and non-finite values -- never other steps' flags -- so the flags do not
  depend on the order of the flag steps, and flag / unflag / re-flag gives the
  same mask.
* Corrections (``estimate_sky``, ``correct_one_over_f``,
  ``replace_bad_pixels``) use the working data made by the corrections listed
  before them in ``corrections`` and the current ``mask``. A new correction is
  appended; re-running one recomputes it from the corrections before it and
  **drops every later correction** (with a warning), whose models were made
  from the old one: re-run those steps afterwards.
"""
from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from tsocontainer._disk import is_sorted, release
from tsocontainer.registry import Bool, Choice, Num, OneOf, step

from tsocontainer.group.working import CORRECTION_KEYS, POINTS, WorkingSource

__all__ = ["CleaningSteps"]

_POS = Num(lo=0, lo_open=True)             # a threshold or scale > 0
_WIN = Num(lo=1, integer=True)              # a window or size in pixels / integrations
_WIDTH = OneOf(_POS)                        # a band width in pixels

log = logging.getLogger("tsocontainer.cleaning")

class CleaningSteps:
    """Mixin of :class:`~tsocontainer.TSOGroup` with the cleaning steps."""

    # ------------------------------------------------------------ helpers
    def _axes(self) -> tuple[int, int]:
        """(dispersion_axis, onef_axis) of the visit (from its geometry)."""
        geom = self.geometry
        return geom.dispersion_axis, geom.onef_axis

    def _detection_source(self) -> WorkingSource:
        """Blocks of the working data without the pixel replacement."""
        return WorkingSource(self)

    def _detection_cube(self) -> np.ndarray:
        """The detection data as one cube (``sci`` itself if no correction; else cached)."""
        src = self._detection_source()
        if src.plain:
            return self.sci
        return self._cached("detect", lambda: self._working_cube(self._detection_skip(),
                                                                 "detect"))

    def _detection_skip(self) -> tuple:
        """Corrections the detection data leave out: the replacement, and stale ones (a
        re-run correction makes the later ones stale; until they are run again the
        detection data are what the valid corrections make)."""
        return ("replace",) + tuple(c for c in self.corrections if self.derived.stale(c))

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

    def _deep(self):
        """Deep frame and its per-integration variance of the detection data (cached)."""
        from tsocontainer.cleaning.outliers import deep_frame

        return self._cached("deep", lambda: deep_frame(self._detection_source(), self.var))

    def _static_good(self) -> np.ndarray:
        """Light-sensitive pixels: no DO_NOT_USE / REFERENCE_PIXEL / NON_SCIENCE in the static
        DQ plane (MIRI's reference columns are only NON_SCIENCE) and a finite deep frame."""
        return (self._light_sensitive() & ((self.dqs.static & np.uint32(self.dq_mask_bits)) == 0)
                & np.isfinite(self._deep()[0]))

    def _light_sensitive(self) -> np.ndarray:
        """Pixels that see light: no REFERENCE_PIXEL / NON_SCIENCE bit in the static DQ
        (DO_NOT_USE ones included: finding bad pixels from the data is the point)."""
        from tsocontainer.flags import dq_bits

        bits = np.uint32(dq_bits(["REFERENCE_PIXEL", "NON_SCIENCE"]))
        return (self.dqs.static & bits) == 0

    def _white_light(self, window: int = 1) -> np.ndarray:
        """Normalised white-light curve of the detection data, running-median smoothed."""
        from tsocontainer.cleaning.outliers import running_median, white_light

        wl = self._cached("wl", lambda: white_light(self._detection_source(), self._static_good()))
        if window > 1 and self.N > 2:
            wl = running_median(wl[:, None], window)[:, 0]
        return wl

    def _motion_modes(self) -> np.ndarray:
        """Per-integration amplitudes of the image's motion modes, shape (N, 3) (cached).

        The frame collapsed along dispersion (a cross-dispersion profile) is
        fitted as the median profile plus ``a`` times its derivative (a shift)
        plus ``b`` times its second derivative (a change of width); the frame
        collapsed across dispersion (a spectrum) as the median spectrum plus
        ``c`` times its derivative (a shift along dispersion). Columns:
        ``-a`` (cross-dispersion shift, pixels), ``b``, ``-c``. Pixels on
        steep edges of the trace answer to each linearly; the time-outlier
        flag removes that answer.
        """
        return self._cached("modes", self._compute_motion_modes)

    def _compute_motion_modes(self) -> np.ndarray:
        from tsocontainer.arrays.numerics import block_ranges, run_blocks

        disp, _ = self._axes()
        good = self._static_good()
        src = self._detection_source()
        n_cross, n_disp = (good.shape[0], good.shape[1]) if disp == 1 else good.shape[::-1]
        prof = np.empty((self.N, n_cross))
        spec = np.empty((self.N, n_disp))

        def work(a, b):
            blk = np.where(good, np.nan_to_num(np.asarray(src[a:b])), 0)
            prof[a:b] = blk.sum(axis=1 + disp, dtype=np.float64)
            spec[a:b] = blk.sum(axis=2 - disp, dtype=np.float64)

        run_blocks(work, block_ranges(self.N, 16), "trace motion")
        modes = np.zeros((self.N, 3))
        for curve, cols in ((prof, (0, 1)), (spec, (2,))):
            curve /= np.maximum(curve.sum(axis=1, keepdims=True), 1e-30)
            med = np.median(curve, axis=0)
            d1 = np.gradient(med)
            basis = np.stack([d1, np.gradient(d1)][:len(cols)], axis=1)
            coef = np.linalg.lstsq(basis, (curve - med).T, rcond=None)[0].T
            modes[:, list(cols)] = coef
        modes[:, 0] *= -1
        modes[:, 2] *= -1
        return modes

    def _trace_band(self, width=None) -> np.ndarray:
        """Static trace mask: the fitted (``aux``) or nominal traces, ``width`` px wide."""
        from tsocontainer.cleaning.background import TRACE_WIDTH, trace_centres, trace_mask

        geom = self.geometry
        if width is None:
            width = TRACE_WIDTH.get(geom.key, 20)
        fitted = {}
        if not self.derived.stale("traces"):
            fitted = {int(k[len("trace_order"):]): self.aux.raw(k) for k in self.aux
                      if k.startswith("trace_order")}
        centres = trace_centres(geom, fitted)
        return trace_mask(self.sh, geom.dispersion_axis, centres, float(width),
                          frame=self._deep()[0])

    def _apply_flag(self, name, cube, params, t0, what) -> "CleaningSteps":
        """Replace flag ``name`` (as ``set_flag``) and log one line with the timing."""
        from tsocontainer.flags import validate_flag_name

        validate_flag_name(name)
        n = self._flags.set(name, cube)
        self._mask_changed(name)
        dt = time.perf_counter() - t0
        self._record(f"flag:{name}", params, {"flagged": n, "seconds": round(dt, 3)})
        log.info("%s: %d pixels flagged (%.3g %%) in %.2f s", what, n,
                 100 * n / max(self.sci.size, 1), dt)
        return self

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

    # --------------------------------------------------------------- flags
    @step("state", target="TSOGroup", writes=("mask",), plot="plot_hot_cold_pixels",
          params={"filter_size": _WIN, "nsigma": _POS, "rel_tol": Num(lo=0)})
    def flag_hot_cold_pixels(self, filter_size: int = 7, nsigma: float = 5.0,
                             rel_tol: float = 0.002) -> "CleaningSteps":
        """Flag pixels hot or cold in most integrations (flag ``hot_cold``).

        The clipped time-mean frame (white-light normalised, cosmic rays
        clipped at 5 sigma) is compared with its smooth model: the local
        cross-dispersion profile, running-median smoothed along dispersion,
        times the local flux. A pixel above it by ``nsigma`` times its noise
        (hot) or below by ``-nsigma`` (cold/dead) is flagged in every
        integration. See :func:`tsocontainer.cleaning.outliers.hot_cold_pixels`.

        Parameters
        ----------
        filter_size : int
            Span along dispersion of the neighbours that predict a pixel
            (pixels, odd; 7 gives three pairs, robust to one bad neighbour).
        nsigma : float
            Threshold on the time-averaged significance.
        rel_tol : float
            Fractional tolerance of the smooth model (sharp trace structure).

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.outliers import HotColdOptions, hot_cold_pixels

        t0 = time.perf_counter()
        disp, _ = self._axes()
        deep, dvar = self._deep()
        hot, cold, _ = hot_cold_pixels(self._detection_source(), dvar, deep, self._white_light(5),
                                       disp, HotColdOptions(filter_size, nsigma, rel_tol=rel_tol),
                                       good=self._light_sensitive())
        params = {"filter_size": filter_size, "nsigma": nsigma, "rel_tol": rel_tol,
                  "hot": int(hot.sum()), "cold": int(cold.sum())}
        self._hot_cold = (hot, cold)
        cube = np.broadcast_to(hot | cold, self.shape)
        return self._apply_flag("hot_cold", cube, params, t0,
                                f"flag_hot_cold_pixels ({hot.sum()} hot, {cold.sum()} cold)")

    @step("state", target="TSOGroup", writes=("mask",), plot="plot_2d_outliers",
          params={"filter_size": _WIN, "threshold": _POS})
    def flag_2d_outliers(self, filter_size: int = 5, threshold: float = 5.0) -> "CleaningSteps":
        """Flag spatial outliers in each integration (flag ``outliers_2d``).

        Model: a running median along dispersion of the same integration, plus
        the static structure of the deep frame; pixels more than ``threshold``
        robust sigmas away are flagged.

        Parameters
        ----------
        filter_size : int
            Running-median window along dispersion (pixels).
        threshold : float
            Threshold in robust sigmas.

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.outliers import spatial_outliers

        t0 = time.perf_counter()
        disp, _ = self._axes()
        deep, dvar = self._deep()
        flags = spatial_outliers(self._detection_source(), dvar, deep, self._white_light(5), disp,
                                 filter_size, threshold)
        return self._apply_flag("outliers_2d", flags,
                                {"filter_size": filter_size, "threshold": threshold}, t0,
                                "flag_2d_outliers")

    @step("state", target="TSOGroup", writes=("mask",), plot="plot_percentile_outliers",
          params={"percentile": Num(lo=0, hi=100, lo_open=True), "nsigma": _POS,
                  "filter_size": _WIN})
    def flag_percentile_outliers(self, percentile: float = 99.99, nsigma: float = 4.0,
                                 filter_size: int = 5) -> "CleaningSteps":
        """Flag the most deviant pixels of each integration (flag ``percentile``).

        The same residuals as :meth:`flag_2d_outliers`; each integration's
        threshold is the ``percentile`` of its own ``|z|`` distribution, but
        never below ``nsigma``.

        Parameters
        ----------
        percentile : float
            Percentile (0-100) of the integration's deviations.
        nsigma : float
            Lowest threshold (robust sigmas).
        filter_size : int
            Running-median window along dispersion.

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.outliers import spatial_outliers

        if not 0 < percentile < 100:
            raise ValueError(f"percentile must be in (0, 100), got {percentile}")
        t0 = time.perf_counter()
        disp, _ = self._axes()
        deep, dvar = self._deep()
        flags = spatial_outliers(self._detection_source(), dvar, deep, self._white_light(5), disp,
                                 filter_size, nsigma, percentile=percentile)
        return self._apply_flag("percentile", flags, {"percentile": percentile, "nsigma": nsigma,
                                                      "filter_size": filter_size}, t0,
                                "flag_percentile_outliers")

    @step("state", target="TSOGroup", writes=("mask",), plot="plot_time_outliers",
          params={"window": Num(lo=2, integer=True), "nsigma": _POS})
    def flag_time_outliers(self, window: int = 5, nsigma: float = 4.0) -> "CleaningSteps":
        """Flag per-pixel outliers in time (cosmic rays, transients; flag ``time_outliers``).

        Each integration is divided by the white-light curve smoothed over
        ``window`` integrations (so the transit itself is not an outlier);
        every pixel is compared with its running median over ``window``
        integrations, after removing the common 1/f offset of its detector
        line and its response to the image motion (cross-dispersion shift,
        width, dispersion shift: :meth:`_motion_modes`). See
        :func:`tsocontainer.cleaning.outliers.time_outliers`.

        Parameters
        ----------
        window : int
            Running-median length (integrations; even values use ``window + 1``).
        nsigma : float
            Threshold in robust sigmas (two-sided).

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.outliers import time_outliers

        if int(window) < 2:
            raise ValueError(f"window must be >= 2 integrations, got {window}")
        t0 = time.perf_counter()
        if self.N < 3:
            log.warning("flag_time_outliers skipped: %d integration(s); an outlier in time needs "
                        "at least 3 to compare with", self.N)
            return self._apply_flag("time_outliers", np.zeros(self.shape, bool),
                                    {"window": window, "nsigma": nsigma, "skipped": True}, t0,
                                    "flag_time_outliers (skipped)")
        deep, dvar = self._deep()
        _, onef = self._axes()
        flags = time_outliers(self._detection_cube(), dvar, self._white_light(window), deep,
                              window, nsigma, onef, self._motion_modes(),
                              out=self._new_cube(bool, "time_outliers"))
        return self._apply_flag("time_outliers", flags, {"window": window, "nsigma": nsigma}, t0,
                                "flag_time_outliers")

    @step("state", target="TSOGroup", writes=("mask",), plot="plot_profile_outliers",
          params={"nsigma": _POS, "width": _WIDTH, "window": _WIN, "deg": Num(lo=0, integer=True)})
    def flag_from_profile(self, nsigma: float = 5.0, width=None, window: int = 1,
                          deg: int = 2) -> "CleaningSteps":
        """Flag trace pixels that deviate from a smooth fitted profile (flag ``profile``).

        Horne-style: the deep frame's profile, smoothed along dispersion with
        polynomial windows, is fitted to every integration and dispersion
        pixel; deviations above ``nsigma`` inside the trace band are flagged.

        Parameters
        ----------
        nsigma : float
            Threshold in robust sigmas.
        width : float, optional
            Trace band (pixels); default per mode.
        window, deg : int
            Savitzky-Golay window (pixels along dispersion) and degree of an
            extra smoothing of the profile (ExoTiC-MIRI's polynomial windows).
            Default 1 (none): the deep frame is already a median of up to 31
            integrations, and smoothing along detector rows blurs a curved or
            steep trace (measured on simulated SOSS/MIRI/PRISM: false flags
            0.002-0.025 % with none, 0.07-0.17 % with 7, 0.25-0.39 % with 21).

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.outliers import profile_model, profile_outliers

        t0 = time.perf_counter()
        disp, _ = self._axes()
        band = self._trace_band(width)
        prof = profile_model(self._deep()[0], band, disp, window, deg)
        flags = profile_outliers(self._detection_source(), self._deep()[1], prof, band, disp,
                                 nsigma)
        return self._apply_flag("profile", flags, {"nsigma": nsigma, "width": width,
                                                   "window": window, "deg": deg}, t0,
                                "flag_from_profile")

    @step("state", target="TSOGroup", writes=("mask",), plot="plot_trace_outliers",
          params={"nsigma": _POS, "width": _WIDTH})
    def flag_trace_outliers(self, nsigma: float = 5.0, width=None) -> "CleaningSteps":
        """Flag bright pixels outside the trace (flag ``trace_outliers``).

        Pixels outside the trace band above the sky level of their line (the
        median along the 1/f axis of the integration) by ``nsigma`` robust
        sigmas: contaminants, hot pixels and cosmic rays that would bias the
        sky and 1/f estimates.

        Parameters
        ----------
        nsigma : float
            Threshold (one-sided).
        width : float, optional
            Trace band (pixels); default per mode.

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.background import background_outliers

        t0 = time.perf_counter()
        _, onef = self._axes()
        flags = background_outliers(self._detection_source(), self._deep()[1],
                                    self._trace_band(width), self._static_good(), onef, nsigma)
        return self._apply_flag("trace_outliers", flags, {"nsigma": nsigma, "width": width}, t0,
                                "flag_trace_outliers")

    @step("state", target="TSOGroup", writes=("mask",), plot="plot_order0_mask",
          params={"nsigma": _POS, "grow": Num(lo=0, integer=True), "box": _WIN})
    def make_order0_mask(self, f277w, nsigma: float = 5.0, grow: int = 2, box: int = 16,
                         exclude_trace: bool = True) -> "CleaningSteps":
        """Flag SOSS field-star order-0 contaminants found in an F277W frame (flag ``order0``).

        Parameters
        ----------
        f277w : ndarray or str
            F277W frame ``(ny, nx)`` of the field, or the path of a ``.npy``.
        nsigma : float
            Detection threshold above the smooth background.
        grow : int
            Dilation of the detections (pixels).
        box : int
            Background cell size (pixels).
        exclude_trace : bool
            Never flag the target's own trace band (its order 1 is bright in
            F277W).

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.background import order0_mask

        t0 = time.perf_counter()
        frame = np.load(f277w) if isinstance(f277w, str) else np.asarray(f277w)
        if frame.shape != tuple(self.sh):
            raise ValueError(f"f277w frame shape {frame.shape} differs from the data {self.sh}")
        exclude = self._trace_band() if exclude_trace else None
        det = order0_mask(frame, nsigma, grow, box, exclude)
        return self._apply_flag("order0", np.broadcast_to(det, self.shape),
                                {"nsigma": nsigma, "grow": grow, "box": box,
                                 "exclude_trace": exclude_trace, "pixels": int(det.sum())}, t0,
                                f"make_order0_mask ({det.sum()} pixels per integration)")

    # --------------------------------------------------------- corrections
    def _block_ints(self) -> int:
        return max(1, int(4_000_000 // max(self.sh[0] * self.sh[1], 1)))

    @step("state", target="TSOGroup", writes=("sky",), plot="plot_sky",
          params={"method": Choice("model", "rows", "columns", "polynomial", "spline"),
                  "width": _WIDTH, "column_groups": Num(lo=1, integer=True),
                  "deg": Num(lo=0, integer=True), "bin_size": _WIN, "per_integration": Bool()})
    def estimate_sky(self, method: str | None = None, model=None, region=None, width=None,
                     column_groups: int | None = None, deg: int = 1, bin_size: int = 32,
                     per_integration: bool | None = None) -> "CleaningSteps":
        """Fit a sky background model and subtract it in the working data (correction ``sky``).

        Sky pixels: good pixels outside the trace band (and inside ``region``).
        The model is kept compactly in ``aux`` (``sky_params``, ``sky_pvar``,
        for ``model`` also ``sky_frame`` and ``sky_groups``); its variance is
        added to the working variance. See :mod:`tsocontainer.cleaning.background`.

        Parameters
        ----------
        method : {'model', 'rows', 'columns', 'polynomial', 'spline'}, optional
            Default per mode: SOSS ``model``, MIRI ``rows``, others ``polynomial``.
        model : ndarray, shape (ny, nx), optional
            2D model for ``model`` (default for SOSS: the shipped stepped
            SUBSTRIP96/256 background).
        region : tuple (y0, y1, x0, x1) or ndarray of bool, optional
            Restrict the sky pixels to this box or mask.
        width : float, optional
            Trace band masked (pixels); default per mode.
        column_groups : int, optional
            ``model``: 1 for one scale; default: one per side of the model's step.
        deg : int
            ``polynomial`` degree.
        bin_size : int
            ``spline`` bin size along dispersion (pixels).
        per_integration : bool, optional
            True: fit every integration (the fit then also absorbs the mean 1/f
            offset of the sky pixels); False: one model for the visit (the
            median over time of the per-integration fits). Default: False for
            ``model`` (the zodiacal light does not change during a visit, as
            exoTEDRF scales its model once), True for the others (ExoTiC-MIRI's
            row-wise sky per integration).

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.background import DEFAULT_SKY, SKY_METHODS, _region_mask
        from tsocontainer._util import check_option

        t0 = time.perf_counter()
        key = self.mode.key if self.mode is not None else ""
        method = check_option(method or DEFAULT_SKY.get(key, "polynomial"), SKY_METHODS,
                              "sky method")
        if per_integration is None:
            per_integration = method != "model"
        disp, _ = self._axes()
        frame, groups = self._sky_frame(method, model, column_groups)
        sky = ~self._trace_band(width) & _region_mask(region, self.sh) & self._static_good()
        stop = self._register_correction("sky")   # after the checks: a bad call changes nothing
        params, pvars = self._sky_params(method, stop, sky, disp, frame, groups, deg, bin_size)
        if not per_integration:
            params = np.broadcast_to(np.median(params, axis=0), params.shape).copy()
            pvars = np.broadcast_to(np.median(pvars, axis=0) / self.N, pvars.shape).copy()
        arrays = {"sky_params": params, "sky_pvar": pvars}
        meta = {"SKYMETH": method}
        if method == "model":
            arrays.update(sky_frame=frame, sky_groups=groups)
        else:
            meta["SKYAXIS"] = {"rows": 0, "columns": 1}.get(method, disp)
        self._store_correction("sky", arrays, {"sky_params", "sky_pvar"}, meta)
        dt = time.perf_counter() - t0
        summary = {"median_params": np.median(params.reshape(self.N, -1), axis=0)[:8].tolist(),
                   "sky_pixels": int(sky.sum()), "seconds": round(dt, 3)}
        self._record("estimate_sky", {"method": method, "region": region, "width": width,
                                      "column_groups": column_groups, "deg": deg,
                                      "bin_size": bin_size, "per_integration": per_integration},
                     summary)
        log.info("estimate_sky (%s): %d sky pixels per frame in %.2f s", method, sky.sum(), dt)
        return self

    def _sky_params(self, method, stop, sky, disp, frame, groups, deg, bin_size):
        """Sky model parameters and their variances of every integration, block by block."""
        from tsocontainer.cleaning.background import fit_sky
        from tsocontainer.cleaning.outliers import block_ranges, run_blocks

        mask, source = self.mask, WorkingSource(self, stop)

        def work(a, b):
            return fit_sky(method, source[a:b], mask[a:b], sky, disp, frame, groups, deg, bin_size)

        res = run_blocks(work, block_ranges(self.N, self._block_ints()), "sky")
        return np.concatenate([r[0] for r in res]), np.concatenate([r[1] for r in res])

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
            model = soss_background_model(self.mode.subarray, self.sh, self.geometry.x_offset)
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
                  "width": _WIDTH, "window": Num(lo=1, integer=True), "bin_size": _WIN})
    def correct_one_over_f(self, method: str = "masked-median", width=None,
                           window: int | None = None, bin_size: int = 16) -> "CleaningSteps":
        """Estimate 1/f offsets per integration and line; subtract them in the working data.

        Lines run along the mode's ``onef_axis`` (columns for SOSS/NIRSpec,
        rows for NIRCam/MIRI); the offsets ``(N, nlines)`` are kept in
        ``aux["onef"]`` and their variance is added to the working variance.
        See :mod:`tsocontainer.cleaning.onef` for the methods.

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

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.onef import ONEF_METHODS, chromatic_light_curves, onef_offsets
        from tsocontainer.cleaning.outliers import block_ranges, deep_frame, run_blocks, white_light
        from tsocontainer._util import check_option

        t0 = time.perf_counter()
        check_option(method, ONEF_METHODS, "1/f method")
        disp, onef = self._axes()
        stop = self._register_correction("onef")
        band = self._trace_band(width)
        static = self._static_good()   # no reference / non-science pixels
        window = max(5, self.N // 50) if window is None else int(window)
        deep = scale = None
        source = WorkingSource(self, stop)
        if method.startswith("scale") or method == "solve":
            deep = self._deep()[0] if stop is None else deep_frame(source, self.var)[0]
            if method == "scale-achromatic":
                scale = white_light(source, self._static_good(), window)
            elif method == "scale-chromatic":
                scale = chromatic_light_curves(source, deep, band, disp, bin_size, window)
        mask = self.mask

        def work(a, b):
            data = source[a:b]
            s = None if scale is None else scale[a:b]
            return onef_offsets(method, data, self.var[a:b], mask[a:b] & static, band, onef, deep,
                                s, disp)

        res = run_blocks(work, block_ranges(self.N, self._block_ints()), "1/f")
        off = np.concatenate([r[0] for r in res])
        ovar = np.concatenate([r[1] for r in res])
        self._store_correction("onef", {"onef": off, "onef_var": ovar}, {"onef", "onef_var"},
                               {"ONEFCORR": method, "ONEFAXIS": onef})
        dt = time.perf_counter() - t0
        rms = float(np.sqrt(np.mean(off.astype(np.float64) ** 2)))
        self._record("correct_one_over_f", {"method": method, "width": width, "window": window,
                                            "bin_size": bin_size},
                     {"rms_offset": rms, "seconds": round(dt, 3)})
        log.info("correct_one_over_f (%s): %d x %d offsets, rms %.3g, in %.2f s", method,
                 off.shape[0], off.shape[1], rms, dt)
        return self

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
                           reach: int = 2) -> "CleaningSteps":
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
        for c0 in range(0, flat.size, 1_000_000):   # chunks: temporaries of ~1e6 points
            c1 = min(flat.size, c0 + 1_000_000)
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
