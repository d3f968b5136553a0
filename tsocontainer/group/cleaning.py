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

import numpy as np

from tsocontainer.group.corrections import _POS, _WIDTH, _WIN, CorrectionSteps
from tsocontainer.group.working import WorkingSource
from tsocontainer.registry import Bool, Num, step

__all__ = ["CleaningSteps"]

log = logging.getLogger("tsocontainer.cleaning")

class CleaningSteps(CorrectionSteps):
    """Mixin of :class:`~tsocontainer.TSOGroup` with the cleaning steps (flags; the
    corrections come from :class:`~tsocontainer.group.corrections.CorrectionSteps`)."""

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

        def work(a, b):   # np.where(good, np.nan_to_num(x), 0) without a full nan_to_num pass
            x = np.asarray(src[a:b])
            fin = np.isfinite(x)
            blk = np.where(good & fin, x, 0)
            if not fin.all():
                odd = ~fin & good
                blk[odd] = np.nan_to_num(x[odd])
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

    def _trace_band(self, width=None, orders=None) -> np.ndarray:
        """Static trace mask: the fitted (``aux``) or nominal traces, ``width`` px wide
        (of ``orders``, default all)."""
        from tsocontainer.cleaning.background import TRACE_WIDTH, trace_centres, trace_mask

        geom = self.geometry
        if width is None:
            width = TRACE_WIDTH.get(geom.key, 20)
        fitted = {}
        if not self.derived.stale("traces"):
            fitted = {int(k[len("trace_order"):]): self.aux.raw(k) for k in self.aux
                      if k.startswith("trace_order")}
        centres = trace_centres(geom, fitted, orders)
        return trace_mask(self.sh, geom.dispersion_axis, centres, float(width),
                          frame=self._deep()[0])

    def _trace_slopes(self):
        """Local direction of the nearest trace per pixel (None without any trace)."""
        from tsocontainer.cleaning.background import trace_centres
        from tsocontainer.cleaning.smoothframe import trace_slopes

        geom = self.geometry
        fitted = {}
        if not self.derived.stale("traces"):
            fitted = {int(k[len("trace_order"):]): self.aux.raw(k) for k in self.aux
                      if k.startswith("trace_order")}
        try:
            centres = trace_centres(geom, fitted)
        except (ValueError, KeyError, NotImplementedError) as exc:   # no trace model
            log.debug("no trace direction: %s", exc)
            return None
        if not centres:
            return None
        slope = trace_slopes(self.sh, geom.dispersion_axis, centres)
        # nearly straight traces (all but SOSS orders 2/3): a neighbour 3 px away would move
        # by < 0.06 px, so the line itself is used and the interpolation (~2 s a frame) saved
        return slope if np.nanmax(np.abs(slope), initial=0.0) >= 0.02 else None

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

    # --------------------------------------------------------------- flags
    @step("state", target="TSOGroup", writes=("mask",), plot="plot_hot_cold_pixels",
          params={"filter_size": _WIN, "nsigma": _POS, "rel_tol": Num(lo=0),
                  "follow_trace": Bool()})
    def flag_hot_cold_pixels(self, filter_size: int = 7, nsigma: float = 5.0,
                             rel_tol: float = 0.002, follow_trace: bool = True) -> "CleaningSteps":
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
        follow_trace : bool
            Predict each pixel from its neighbours along the local direction
            of the nearest trace (the fitted traces when current, else the
            mode's nominal ones; pixels more than 40 px from every trace:
            along the line), not along the detector line that a steep trace
            (SOSS orders 2 and 3) crosses within a few pixels.

        Returns
        -------
        TSOGroup
            ``self``.
        """
        from tsocontainer.cleaning.outliers import HotColdOptions, hot_cold_pixels

        t0 = time.perf_counter()
        disp, _ = self._axes()
        deep, dvar = self._deep()
        slope = self._trace_slopes() if follow_trace else None
        hot, cold, _ = hot_cold_pixels(self._detection_source(), dvar, deep, self._white_light(5),
                                       disp, HotColdOptions(filter_size, nsigma, rel_tol=rel_tol),
                                       good=self._light_sensitive(), slope=slope)
        params = {"filter_size": filter_size, "nsigma": nsigma, "rel_tol": rel_tol,
                  "follow_trace": bool(follow_trace),
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
