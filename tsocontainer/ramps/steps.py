"""The stage-1 steps of a :class:`~tsocontainer.ramps.RampGroup` (mixin; thin wrappers).

Each step validates its keywords (through the registry), loads or computes the context it
needs, puts itself in the group's plan (applied block by block when ramps are read:
``_apply_<name>``), records itself in ``history`` and returns ``self``. The algorithms
are functions on arrays in :mod:`~tsocontainer.ramps.calib`,
:mod:`~tsocontainer.ramps.refpix`, :mod:`~tsocontainer.ramps.onef`,
:mod:`~tsocontainer.ramps.jumps` and :mod:`~tsocontainer.ramps.fitting`.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from tsocontainer.errors import TSOValueError
from tsocontainer.ramps.fitting import FIT_ALGORITHMS, VARIANCES
from tsocontainer.ramps.jumps import JUMP_METHODS
from tsocontainer.ramps.onef import GROUP_ONEF_METHODS, LINE_STATISTICS
from tsocontainer.registry import Anything, Bool, Choice, Num, OneOf, step

__all__ = ["RampSteps", "PIXEL_DQ"]

log = logging.getLogger(__name__)

#: JWST pixel DQ bits used here (``stdatamodels.jwst.datamodels.dqflags.pixel``)
PIXEL_DQ = {"DO_NOT_USE": 1, "SATURATED": 2, "JUMP_DET": 4, "REFERENCE_PIXEL": 1 << 31}
_POS = Num(lo=0, lo_open=True)
_COUNT = Num(lo=1, integer=True)
#: relative tolerance of the read-noise check (see RampSteps.use_detector)
RN_TOLERANCE = 0.2


class RampSteps:
    """Registered stage-1 steps (mixed into :class:`~tsocontainer.ramps.RampGroup`)."""

    # ------------------------------------------------------------ detector
    @step("ramps", target="RampGroup", plot="plot_noise_model",
          params={"gain": Anything(), "readnoise": Anything(), "nsample": _COUNT,
                  "check_readnoise": OneOf(_POS, Choice(None))})
    def use_detector(self, gain=None, readnoise=None, nsample: int = 8,
                     check_readnoise=RN_TOLERANCE):
        """Set the gain (e-/DN) and CDS read noise (DN) the jump detection and the fit use.

        Each is a number, a map (subarray or full frame), a CRDS-format GAIN / READNOISE
        reference file, ``"data"`` (measured from the visit's own group differences by
        photon transfer, :func:`~tsocontainer.ramps.calib.estimate_noise`, on ``nsample``
        calibrated integrations when the ramps are fitted) or None: the detector's
        documented default (:data:`tsocontainer.ramps.detector.DETECTOR_DEFAULTS`), and
        ``"data"`` where there is none (a warning says so). Without this step, None for
        both.

        Before the jumps are detected, the read noise in use is checked against the one
        the calibrated ramps show (:func:`~tsocontainer.ramps.calib.measure_read_noise`,
        on the ``nsample`` integrations): when they differ by more than
        ``check_readnoise`` (relative, and by more than 5 times the measurement's own
        precision) a warning names the file and both values, a documented default is
        replaced by the measured value (a value the user gave is kept), and the outcome
        is in ``history`` (``check_readnoise``) and ``meta`` (``RNCHECK``, ``RNMEAS``).
        The default tolerance, 20 %, keeps stcal's false jumps at or below 0.1 % of the
        read-noise-limited group differences at its 4-sigma threshold (a read noise 20 %
        too low makes it a 3.33-sigma cut: 0.09 % two-sided), and is over 10 times the
        precision of the measurement on a few integrations of a subarray (< 2 %).

        Parameters
        ----------
        gain, readnoise : float, array_like, path-like, "data" or None
            See above.
        nsample : int
            Integrations measured for ``"data"`` and for the check.
        check_readnoise : float or None
            Relative tolerance of the read-noise check; None: no check.

        Returns
        -------
        RampGroup
            ``self``.
        """
        for key in ("gain", "readnoise", "rn_check_key", "rn_baseline"):
            self.aux.pop(key, None)
        self.aux["noise_spec"] = {"gain": gain, "readnoise": readnoise, "nsample": int(nsample),
                                  "check": check_readnoise}
        resolved = self._resolve_noise(measure=False)
        self._record("use_detector", {"gain": _describe(gain), "readnoise": _describe(readnoise),
                                      "nsample": nsample, "check_readnoise": check_readnoise},
                     resolved)
        return self

    def _resolve_noise(self, measure: bool = True) -> dict:
        """Load what can be loaded; measure what must be measured (only when ``measure``)."""
        from tsocontainer.ramps.detector import load_map

        spec = self.aux.get("noise_spec") or {"gain": None, "readnoise": None, "nsample": 8}
        det = str(self.meta.get("DETECTOR", ""))
        maps, sources = {}, {}
        for key in ("gain", "readnoise"):
            value = spec[key]
            if isinstance(value, str) and value == "data":
                sources[key] = "data"
                continue
            try:
                maps[key], sources[key] = load_map(value, key, self.sh, self.substrt, det)
            except TSOValueError:
                if value is not None:
                    raise
                if measure:
                    log.warning("no documented default %s for detector %s: measuring it "
                                "from the data", key, det or "?")
                sources[key] = "data"
        if measure and len(maps) < 2:
            maps, sources = self._measure_noise(maps, sources, spec["nsample"])
        if len(maps) == 2:
            self.aux.update(maps)
            self.meta.update({"GAINSRC": sources["gain"], "RNSRC": sources["readnoise"]})
            log.info("gain %s (median %.3g e-/DN), CDS read noise %s (median %.3g DN)",
                     sources["gain"], np.median(maps["gain"]), sources["readnoise"],
                     np.median(maps["readnoise"]))
        return sources

    def _measure_noise(self, maps, sources, nsample):
        from tsocontainer.ramps.calib import estimate_noise

        parts = list(self._sample_blocks(None, nsample))
        data = np.concatenate([p[0] for p in parts])
        gdq = np.concatenate([p[1] for p in parts])
        g, cds = estimate_noise(data, gdq, self.refmask, gain=maps.get("gain"))
        where = f"data ({data.shape[0]} integrations)"
        if "gain" not in maps:
            maps["gain"], sources["gain"] = np.full(self.sh, g, np.float32), f"{where}: {g:.4g}"
        if "readnoise" not in maps:
            maps["readnoise"] = np.full(self.sh, cds, np.float32)
            sources["readnoise"] = f"{where}: {cds:.4g}"
        self._record("measure_noise", {"nsample": nsample},
                     {"gain": float(np.median(maps["gain"])), "readnoise_cds_dn": float(cds)})
        return maps, sources

    def _noise(self):
        """Gain and CDS read-noise maps (resolved and, where asked, measured, on first use)."""
        if "gain" not in self.aux or "readnoise" not in self.aux:
            self._refresh()
            self._resolve_noise(measure=True)
        self._check_readnoise()
        return self.aux["gain"], self.aux["readnoise"]

    def _check_readnoise(self) -> None:
        """Compare the read noise in use with the calibrated ramps' own; act (see
        :meth:`use_detector`). Runs once per plan."""
        from tsocontainer.ramps.calib import measure_read_noise

        spec = self.aux.get("noise_spec") or {"readnoise": None, "nsample": 8}
        tol = spec.get("check", RN_TOLERANCE)
        key = tuple(sorted((k, e["id"]) for k, e in self.plan.items() if k != "jumps"))
        if tol is None or self.aux.get("rn_check_key") == key:
            return
        base_map, base_src = self.aux.get("rn_baseline") or (self.aux["readnoise"],
                                                            self.meta.get("RNSRC", ""))
        if str(base_src).startswith("data"):
            return                                   # measured from these ramps already
        self.aux["rn_check_key"] = key
        used = float(np.median(base_map[~self.refmask]))
        parts = list(self._sample_blocks(None, spec["nsample"]))
        data = np.concatenate([p[0] for p in parts])
        gdq = np.concatenate([p[1] for p in parts])
        name = Path(self.files[0]).name if self.files else "arrays"
        summary = {"file": name, "used_dn": used, "source": str(base_src)}
        try:
            cds, err, npix = measure_read_noise(data, gdq, self.refmask, self.aux["gain"],
                                                int(self.meta.get("NFRAMES") or 1))
        except ValueError as exc:
            log.warning("%s: cannot check the CDS read noise %.4g DN against the data: %s",
                        name, used, exc)
            self.meta["RNCHECK"] = f"not possible: {exc}"[:68]
            self._record("check_readnoise", {"tolerance": tol}, dict(summary, action="none"))
            return
        off = abs(cds / used - 1)
        summary.update(measured_dn=cds, rel_err=err, npix=npix, integrations=data.shape[0])
        if off <= tol or off <= 5 * err:
            action = "kept"
        elif spec["readnoise"] is None:
            action = "replaced"
            self.aux["rn_baseline"] = (base_map, base_src)
            self.aux["readnoise"] = np.full(self.sh, cds, np.float32)
            self.meta["RNSRC"] = f"data ({data.shape[0]} integrations): {cds:.4g}"
        else:
            action = "kept (given)"
        if action != "kept":
            log.warning("%s: the CDS read noise of the data, %.4g DN (+- %.2g %%, %d pixels), "
                        "differs from the %s %.4g DN by %.0f %% (tolerance %.0f %%): %s",
                        name, cds, 100 * err, npix,
                        "default" if spec["readnoise"] is None else "given", used,
                        100 * off, 100 * tol,
                        "using the measured value" if action == "replaced"
                        else "keeping the given value")
        self.meta.update({"RNCHECK": f"{action}: {used:.4g} DN in use, data {cds:.4g}",
                          "RNMEAS": round(cds, 4)})
        self._record("check_readnoise", {"tolerance": tol}, dict(summary, action=action))

    # ------------------------------------------------------------ saturation
    @step("ramps", target="RampGroup", plot="plot_saturation",
          params={"level": Anything(), "dq": Anything(), "plateau": Bool(), "floor": Num(lo=0)})
    def flag_saturation(self, level=None, dq=None, plateau: bool = True, floor: float = 30000.0):
        """Flag saturated groups (and all later ones) and add a pixel DQ mask.

        Groups at or above the saturation ``level`` (raw DN) are flagged ``SATURATED``;
        with ``plateau``, so are the flat tops of ramps that stopped rising above
        ``floor`` DN (:func:`~tsocontainer.ramps.calib.flag_plateaus`), which catches
        saturation where the level is unknown or too high. Groups at 0 DN are flagged
        ``AD_FLOOR`` and ``DO_NOT_USE``.

        Parameters
        ----------
        level : float, array_like or path-like, optional
            Saturation threshold: a number, a map or a SATURATION reference file; None:
            the detector's documented raw level (NIRCam LW) or only the plateau check.
        dq : array_like or path-like, optional
            Pixel DQ (JWST bits) or a MASK reference file, ORed into the pixel DQ (known
            bad pixels).
        plateau : bool
            Also flag flat ramp tops.
        floor : float
            Raw DN below which no ramp top counts as a plateau.

        Returns
        -------
        RampGroup
            ``self``.
        """
        self._setup_saturation(level, dq, plateau, floor)
        entry = self.aux["sat_source"]
        self._record("flag_saturation", {"level": _describe(level), "dq": _describe(dq),
                                         "plateau": plateau, "floor": floor},
                     {"level": entry, "dq": self.aux.get("user_dq_source", "none")})
        return self

    def _setup_saturation(self, level=None, dq=None, plateau=True, floor=30000.0):
        from tsocontainer.ramps.detector import load_map, load_mask

        det = str(self.meta.get("DETECTOR", ""))
        try:
            lev, src = load_map(level, "saturation", self.sh, self.substrt, det)
        except TSOValueError:
            if level is not None:
                raise
            lev, src = None, "none (no documented level: plateau check only)"
            if not plateau:
                raise TSOValueError(f"no documented saturation level for detector {det or '?'} "
                                    "and plateau=False: give level= (a SATURATION reference, "
                                    "an array or a number)") from None
        self.aux["sat_level"], self.aux["sat_source"] = lev, src
        self.aux.pop("user_dq", None)
        if dq is not None:
            self.aux["user_dq"], self.aux["user_dq_source"] = load_mask(dq, self.sh, self.substrt)
        self._set_plan("saturation", {"level": level, "dq": dq, "plateau": plateau,
                                      "floor": floor})

    def _apply_saturation(self, data, gdq, pdq, i0, i1, record):
        from tsocontainer.ramps.calib import cds_noise, flag_plateaus, flag_saturated

        params = self.plan["saturation"]["params"]
        nsat = flag_saturated(data, gdq, self.aux["sat_level"])
        if params["plateau"]:
            cds = self.aux.get("readnoise")
            if cds is None:
                cds = cds_noise(data, self.refmask)
                cds = 10.0 if not np.isfinite(cds) or cds <= 0 else cds
            nsat += flag_plateaus(data, gdq, cds, floor=params["floor"])
        if "user_dq" in self.aux:
            pdq |= self.aux["user_dq"]
        if record:
            sat = (gdq[:, -1] & np.uint8(2)) != 0
            self._diag("n_saturated", (self.N,), np.int64)[i0:i1] = sat.sum(axis=(1, 2))
            self._diag("sat_count", self.sh, np.int32)[...] += sat.sum(axis=0).astype(np.int32)

    # ------------------------------------------------------------ superbias
    @step("ramps", target="RampGroup", plot="plot_superbias",
          params={"reference": Anything(), "nsample": _COUNT})
    def subtract_superbias(self, reference=None, nsample: int = 32):
        """Subtract the bias of every pixel, from a reference or from the data.

        From the data: the median over ``nsample`` integrations spread over the visit of
        each ramp extrapolated to the reset (``2 * group0 - group1``). Its noise is the
        same in every group of every integration, so it changes no slope.

        Parameters
        ----------
        reference : float, array_like or path-like, optional
            A bias map or a SUPERBIAS reference file; None: from the data.
        nsample : int
            Integrations used from the data.

        Returns
        -------
        RampGroup
            ``self``.
        """
        t0 = time.perf_counter()
        self._setup_superbias(reference, nsample)
        bias = self.aux["superbias"]
        self._record("subtract_superbias", {"reference": _describe(reference), "nsample": nsample},
                     {"source": self.aux["superbias_source"], "median": float(np.median(bias)),
                      "seconds": round(time.perf_counter() - t0, 3)})
        log.info("subtract_superbias: %s, median %.1f DN", self.aux["superbias_source"],
                 np.median(bias))
        return self

    def _setup_superbias(self, reference=None, nsample=32):
        from tsocontainer.arrays.numerics import nanmedian0, small_pages
        from tsocontainer.ramps.calib import zero_level
        from tsocontainer.ramps.detector import load_map

        if reference is not None:
            bias, src = load_map(reference, "superbias", self.sh, self.substrt)
        else:
            self.plan.pop("superbias", None)
            with small_pages():
                zl = [zero_level(d, g) for d, g in self._sample_blocks("superbias", nsample)]
                bias = nanmedian0(np.concatenate(zl))  # np.nanmedian's values, ~15x faster
            bad = ~np.isfinite(bias)
            if bad.any():
                log.warning("superbias: %d pixels saturated in their first groups in every "
                            "sampled integration: bias set to the median", int(bad.sum()))
                bias[bad] = np.nanmedian(bias) if (~bad).any() else 0.0
            src = f"data (median of {len(zl)} integrations)"
        self.aux["superbias"] = np.asarray(bias, np.float32)
        self.aux["superbias_source"] = src
        self._set_plan("superbias", {"reference": reference, "nsample": nsample})

    def _apply_superbias(self, data, gdq, pdq, i0, i1, record):
        data -= self.aux["superbias"][None, None]

    # ------------------------------------------------------------ reference pixels
    @step("ramps", target="RampGroup", plot="plot_reference_pixels",
          params={"odd_even": Bool(), "side": Bool(), "side_smoothing": _COUNT})
    def correct_reference_pixels(self, odd_even: bool = True, side: bool = True,
                                 side_smoothing: int = 11):
        """Subtract the per-group, per-amplifier offsets seen by the reference pixels.

        See :mod:`tsocontainer.ramps.refpix`: offsets per amplifier (and even/odd
        position along the fast axis) from the reference lines, then the smoothed drift
        of each line's side reference pixels.

        Parameters
        ----------
        odd_even : bool
            Separate even/odd offsets.
        side : bool
            Subtract the side reference pixels' drift per line.
        side_smoothing : int
            Lines in its running mean.

        Returns
        -------
        RampGroup
            ``self``.
        """
        self._setup_refpix(odd_even, side, side_smoothing)
        lay = self.aux["refpix_layout"]
        summary = {"reference_lines": int(lay.ref_lines.sum()),
                   "side_pixels": int(lay.side.sum()), "amplifiers": lay.namp}
        if not lay.has_refs:
            log.warning("correct_reference_pixels: the subarray holds no reference pixel; "
                        "nothing to correct")
            summary["skipped"] = "no reference pixels"
        self._record("correct_reference_pixels", {"odd_even": odd_even, "side": side,
                                                  "side_smoothing": side_smoothing}, summary)
        return self

    def _setup_refpix(self, odd_even=True, side=True, side_smoothing=11):
        from tsocontainer.ramps.refpix import refpix_layout

        start = self.substrt[0 if self.fast_axis == 1 else 1] - 1
        self.aux["refpix_layout"] = refpix_layout(self.refmask, self.fast_axis, self.amp, start)
        self._set_plan("refpix", {"odd_even": odd_even, "side": side,
                                  "side_smoothing": side_smoothing})

    def _apply_refpix(self, data, gdq, pdq, i0, i1, record):
        from tsocontainer.ramps.refpix import correct_refpix

        p = self.plan["refpix"]["params"]
        off, _ = correct_refpix(data, self.aux["refpix_layout"], p["odd_even"], p["side"],
                                p["side_smoothing"])
        if record:
            self._diag("refpix_offsets", (self.N,) + off.shape[1:], np.float32)[i0:i1] = off

    # ------------------------------------------------------------ group 1/f
    @step("ramps", target="RampGroup", plot="plot_group_onef",
          params={"method": Choice(*GROUP_ONEF_METHODS), "width": _POS, "mask": Anything(),
                  "nsample": _COUNT, "statistic": Choice(*LINE_STATISTICS)})
    def correct_group_onef(self, method: str = "solve", width=None, mask=None,
                           nsample: int = 64, statistic: str = "trimmed-mean"):
        """Remove 1/f noise from every group: masked line statistics per amplifier.

        See :mod:`tsocontainer.ramps.onef`.

        Parameters
        ----------
        method : {'solve', 'median', 'masked-median', 'scale-achromatic'}
            Estimator (``solve``: ``masked-median`` on lines with pixels off the trace,
            a fit of the line as a scaled deep ramp plus an offset on the others).
        width : float, optional
            Full width (px) of the trace band left out (default per mode, as the
            rate-level step).
        mask : array_like of bool, optional
            Pixels to leave out instead of the trace band.
        nsample : int
            Integrations averaged into the deep ramp.
        statistic : {'trimmed-mean', 'median'}
            Statistic of each line's residuals (the mean of the central 80 %, or the
            median).

        Returns
        -------
        RampGroup
            ``self``.
        """
        t0 = time.perf_counter()
        self._setup_onef(method, width, mask, nsample, statistic)
        band = self.aux["onef_band"]
        self._record("correct_group_onef", {"method": method, "width": width,
                                            "mask": _describe(mask), "nsample": nsample,
                                            "statistic": statistic},
                     {"masked_pixels": int(band.sum()),
                      "seconds": round(time.perf_counter() - t0, 3)})
        log.info("correct_group_onef (%s): deep ramp of %d integrations, %d pixels masked",
                 method, min(self.N, nsample), int(band.sum()))
        return self

    def _setup_onef(self, method="solve", width=None, mask=None, nsample=64,
                    statistic="trimmed-mean"):
        from tsocontainer.arrays.numerics import small_pages
        from tsocontainer.cleaning.background import TRACE_WIDTH, trace_centres, trace_mask
        from tsocontainer.ramps.onef import deep_ramp

        self.plan.pop("onef", None)
        with small_pages():
            deep = deep_ramp(self._sample_blocks("onef", nsample))
        if mask is not None:
            band = np.asarray(mask, bool)
            if band.shape != self.sh:
                raise TSOValueError(f"mask has shape {band.shape}, the frames {self.sh}")
        else:
            geom = self.geometry
            w = float(width) if width is not None else TRACE_WIDTH.get(geom.key, 20)
            rate = (deep[-1] - deep[0]) if self.ngroups > 1 else deep[0]
            band = trace_mask(self.sh, geom.dispersion_axis, trace_centres(geom), w,
                              frame=np.nan_to_num(rate))
        self.aux["onef_deep"], self.aux["onef_band"] = deep, band
        self._set_plan("onef", {"method": method, "width": width, "mask": mask,
                                "nsample": nsample, "statistic": statistic})

    def _apply_onef(self, data, gdq, pdq, i0, i1, record):
        from tsocontainer.ramps.onef import apply_group_onef, group_onef_offsets

        params = self.plan["onef"]["params"]
        method = params["method"]
        deep, band = self.aux["onef_deep"], self.aux["onef_band"]
        noise = None
        if method == "solve" and "gain" in self.aux and "readnoise" in self.aux:
            noise = (self.aux["gain"], self.aux["readnoise"])
        off = group_onef_offsets(method, data, gdq, deep, band, self.refmask, self.fast_axis,
                                 self.amp, params["statistic"], noise)
        apply_group_onef(data, off, self.fast_axis, self.amp)
        if record:
            self._diag("onef_offsets", (self.N,) + off.shape[1:], np.float32)[i0:i1] = off

    # ------------------------------------------------------------ linearity
    @step("ramps", target="RampGroup", plot="plot_linearity", params={"reference": Anything()})
    def correct_linearity(self, reference):
        """Correct the non-linearity of the bias-subtracted ramps with given coefficients.

        Parameters
        ----------
        reference : array_like or path-like
            Coefficients ``(ncoeff, ny, nx)`` (corrected = ``sum_i c_i * dn**i``) or a
            LINEARITY reference file.

        Returns
        -------
        RampGroup
            ``self``.

        Raises
        ------
        TSOValueError
            Before :meth:`subtract_superbias` (the coefficients apply to bias-subtracted
            DN).
        """
        self._setup_linearity(reference)
        self._record("correct_linearity", {"reference": _describe(reference)},
                     {"source": self.aux["linearity_source"],
                      "ncoeff": int(self.aux["linearity"].shape[0])})
        return self

    def _setup_linearity(self, reference):
        from tsocontainer.ramps.detector import load_linearity

        if "superbias" not in self.plan:
            raise TSOValueError("correct_linearity needs subtract_superbias first: the "
                                "coefficients apply to bias-subtracted DN")
        self.aux["linearity"], self.aux["linearity_source"] = load_linearity(
            reference, self.sh, self.substrt)
        self._set_plan("linearity", {"reference": reference})

    def _apply_linearity(self, data, gdq, pdq, i0, i1, record):
        from tsocontainer.ramps.calib import apply_linearity

        apply_linearity(data, self.aux["linearity"])

    # ------------------------------------------------------------ jumps and fit
    @step("ramps", target="RampGroup", plot="plot_jumps",
          params={"threshold": _POS, "time_threshold": OneOf(_POS, Choice(None)),
                  "time_window": Num(lo=3, integer=True),
                  "flag_neighbors": Bool(), "method": Choice(*JUMP_METHODS)})
    def detect_jumps(self, threshold: float = 4.0, time_threshold=5.0, time_window: int = 11,
                     flag_neighbors: bool = True, method: str = "twopoint"):
        """Detect jumps when the ramps are fitted: two-point differences, plus a check in time.

        See :mod:`tsocontainer.ramps.jumps` and :mod:`tsocontainer.ramps.twopoint`. The
        detection runs block by block inside :meth:`fit_ramps`; its counts are in ``aux``
        and :meth:`plot_jumps` afterwards. The detection within ramps needs at least 3
        groups (as the jwst JumpStep); with 2, only the check in time runs.

        Parameters
        ----------
        threshold : float
            Rejection threshold (sigma) within ramps for pixels with at least 4 usable
            group differences (3 and 2: 5 and 6 sigma, as stcal).
        time_threshold : float or None
            Threshold (sigma) of the check of each group difference against its own time
            series; None: no check in time.
        time_window : int
            Running-median length (integrations) of that check.
        flag_neighbors : bool
            Flag the four neighbours of jumps between 10 and 1000 sigma.
        method : {'twopoint', 'stcal'}
            Detection within ramps: ``'twopoint'``, this package's vectorised
            two-point-difference method on all cores (:func:`~tsocontainer.ramps.
            twopoint.twopoint_jumps`), or ``'stcal'``, stcal's implementation (one core,
            ~10x slower; :func:`~tsocontainer.ramps.jumps.stcal_jumps`).

        Returns
        -------
        RampGroup
            ``self``.
        """
        params = {"threshold": threshold, "time_threshold": time_threshold,
                  "time_window": int(time_window) | 1, "flag_neighbors": flag_neighbors,
                  "method": method}
        self.plan["jumps"] = {"params": params, "id": next(self._ids), "basis": ()}
        self._record("detect_jumps", params, {"when": "in fit_ramps"})
        return self

    @step("ramps", target="RampGroup", plot="plot_rates",
          params={"algorithm": Choice(*FIT_ALGORITHMS), "block_size": _COUNT,
                  "keep_variances": Bool(), "progress": Bool(), "variance": Choice(*VARIANCES)})
    def fit_ramps(self, algorithm: str = "OLS_C", block_size=None, keep_variances: bool = False,
                  progress=None, variance: str = "exact"):
        """Fit every ramp (stcal's estimators) and return the rates as a TSOGroup.

        Streams the visit block by block through the plan, the jump detection (when
        :meth:`detect_jumps` was run) and the fit; the result is laid out like a group
        read from rateints (``sci`` in DN/s, ``var`` = VAR_POISSON + VAR_RNOISE, pipeline
        DQ, BJD_TDB times, ``meta``) with this group's history.

        Parameters
        ----------
        algorithm : {'OLS_C', 'LIKELY'}
            stcal's fit (see :mod:`tsocontainer.ramps.fitting`). ``OLS_C`` of pixels
            whose ramps are clean in a block (no flagged group, no pixel DQ) is computed
            in numpy on all cores, the same estimator to float32 precision
            (:mod:`tsocontainer.ramps.olsfast`); the other pixels go to stcal.
        block_size : int, optional
            Integrations per block (default: about 64 MB of float32 ramps).
        keep_variances : bool
            Also keep VAR_POISSON and VAR_RNOISE as ``aux`` cubes of the result.
        progress : bool, optional
            Progress bar (default: when writing to a terminal).
        variance : {'exact', 'stcal'}
            ``OLS_C`` variances: exact for ramps fitted as one segment, or stcal's
            approximations (too small by up to 7 % at signal-to-noise 5-50; see
            :mod:`tsocontainer.ramps.fitting`); with ``'stcal'`` every ramp goes to
            stcal.

        Returns
        -------
        TSOGroup
        """
        from tsocontainer.ramps.fitpass import fit_visit

        return fit_visit(self, algorithm, block_size, keep_variances, progress, variance)

    # ------------------------------------------------------------ helpers
    def _diag(self, name: str, shape, dtype):
        """A diagnostic array of ``aux`` (zeros, made on first use for this fit)."""
        arr = self.aux.get(name)
        if arr is None or arr.shape != tuple(shape):
            arr = np.zeros(shape, dtype)
            self.aux[name] = arr
        return arr


def _describe(value):
    """A short, JSON-friendly description of a step input (a path, a number, an array)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "__fspath__"):
        return str(value)
    arr = np.asarray(value)
    return f"array{arr.shape}" if arr.ndim else float(arr)
