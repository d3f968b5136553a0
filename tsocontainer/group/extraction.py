"""TSOGroup step methods of tracing, stability and spectral extraction.

The algorithms live in ``trace.py``, ``extract.py`` and ``spectra.py``; the
methods here are thin wrappers (lazy imports keep ``import tsocontainer`` fast).

Results are stored in ``group.aux`` (saved by ``write``, sliced with the group):

* ``trace_order{n}``, ``width_order{n}``: (N, n_disp) trace centre and FWHM
  (px) of order ``n`` per integration and dispersion pixel (for MIRI LRS,
  whose dispersion runs along rows, the centre is a column and ``n_disp`` the
  number of rows); NaN where the order is off the detector;
* ``shift_x``, ``shift_y``, ``fwhm``: (N,) stability time series;
* ``pca_components`` (N, k), ``pca_explained`` (k,), ``pca_eigenimages`` (k, ny, nx);
* ``spec_wave_order{n}``, ``spec_flux_order{n}``, ``spec_var_order{n}``,
  ``spec_mask_order{n}``: the last extraction.
"""
from __future__ import annotations

import logging

import numpy as np

from tsocontainer.registry import Bool, Choice, IntList, Num, OneOf, step

log = logging.getLogger(__name__)

__all__ = ["ExtractionSteps"]

_CENTRING = Choice("centroid", "edgetrigger", "gaussian")
_POS = Num(lo=0, lo_open=True)
#: what tracing and shift measurement read: the working data without the pixel
#: replacement (replaced pixels stay masked, so tracing never sees them)
_TRACE_READS = ("mask", "sky", "onef")


class ExtractionSteps:
    """Mixin of :class:`~tsocontainer.TSOGroup` with tracing and extraction steps."""

    # ------------------------------------------------------------ results
    def _aux_by_order(self, prefix: str, what: str) -> dict:
        out = {int(k[len(prefix):]): self.aux[k] for k in self.aux
               if k.startswith(prefix) and k[len(prefix):].isdigit()}
        if not out:
            raise RuntimeError(f"no {what} yet: run fit_all_traces() first")
        return dict(sorted(out.items()))

    @property
    def traces(self) -> dict:
        """Order -> (N, n_disp) trace centres (px; NaN off the detector)."""
        return self._aux_by_order("trace_order", "traces")

    @property
    def trace_widths(self) -> dict:
        """Order -> (N, n_disp) trace FWHM (px)."""
        return self._aux_by_order("width_order", "trace widths")

    @property
    def regressors(self) -> dict:
        """Stability time series measured so far (name -> (N,) array)."""
        out = {k: np.asarray(self.aux[k], float) for k in ("shift_x", "shift_y", "fwhm")
               if k in self.aux}
        if "pca_components" in self.aux:
            for i, comp in enumerate(np.asarray(self.aux["pca_components"], float).T):
                out[f"pca{i + 1}"] = comp
        for k in sorted(self.aux):
            if k.startswith("tilt"):
                out[k] = np.asarray(self.aux[k], float)
        return out

    def _reference(self):
        """Visit-average frame and variance (cached until the mask or the data change)."""
        from tsocontainer.spectra.blocks import reference_frames

        return self._cached("reference", lambda: reference_frames(self.as_source()))

    def as_source(self):
        """The working data, mask, times and geometry as a :class:`~tsocontainer.arrays.source.CubeSource`.

        What the tracing and extraction algorithms take: call them on a group's data
        without the group (e.g. ``tsocontainer.spectra.trace.fit_traces(g.as_source())``).
        The source carries the group's :attr:`block_size` and :attr:`progress`.

        Returns
        -------
        CubeSource

        Examples
        --------
        >>> import numpy as np
        >>> from tsocontainer import TSOGroup
        >>> src = TSOGroup(np.ones((2, 3, 4)), np.ones((2, 3, 4))).as_source()
        >>> src.N, src.geometry.dispersion_axis
        (2, 1)
        """
        from tsocontainer.arrays.source import CubeSource

        if self.corrections:
            read = self.working_block

            def read_data(a, b):
                return self._source_block(a, b, need_var=False)[0]
        else:
            def read(a, b):
                return self.sci[a:b], self.var[a:b]

            def read_data(a, b):
                return self.sci[a:b]
        return CubeSource(read, self.mask, self.geometry, self.time_bjd, self.int_numbers,
                          self.wave, self.meta, corrected=bool(self.corrections),
                          block_size=self.block_size, progress=self.progress,
                          read_data=read_data)

    # -------------------------------------------------------------- steps
    @step("state", target="TSOGroup", reads=_TRACE_READS, writes=("traces",), plot="plot_trace",
          params={"method": _CENTRING, "orders": IntList(lo=1), "halfwidth": _POS,
                  "smooth": Choice("spline", "poly", "none"), "knot_spacing": _POS,
                  "deg": Num(lo=0, integer=True), "deg_int": Num(lo=0, hi=3, integer=True),
                  "min_snr": Num(lo=0)})
    def fit_all_traces(self, method: str = "centroid", orders=None, halfwidth=None,
                       smooth: str = "spline", knot_spacing=None, deg: int = 4, deg_int: int = 0,
                       per_integration: bool = True, min_snr: float = 3.0):
        """Fit the trace of every order in every integration (:func:`trace.fit_traces`).

        Parameters
        ----------
        method : {'centroid', 'edgetrigger', 'gaussian'}
            Column centring method.
        orders : int or sequence of int, optional
            Orders (default: all of the mode's; undetected ones are NaN).
        halfwidth : float, optional
            Centring window half-width (default per mode).
        smooth : {'spline', 'poly', 'none'}
            Smoothing of the reference trace along dispersion.
        knot_spacing : float, optional
            Spline knot spacing (px).
        deg : int
            Degree for ``smooth='poly'``.
        deg_int : int
            Degree of the per-integration correction (0 shift, 1 shift + tilt).
        per_integration : bool
            Fit each integration (else the reference trace everywhere).
        min_snr : float
            Minimum column S/N used.

        Returns
        -------
        TSOGroup
            ``self``, with ``traces`` and ``trace_widths`` set.
        """
        from tsocontainer.spectra.trace import TraceOptions, fit_traces

        opts = TraceOptions(method, halfwidth, smooth, knot_spacing, deg, min_snr)
        res = fit_traces(self.as_source(), orders, opts, deg_int=deg_int,
                         per_integration=per_integration, reference=self._reference())
        summary = {}
        for o, r in res["orders"].items():
            self.set_aux(f"trace_order{o}", r["trace"], per_integration=True)
            self.set_aux(f"width_order{o}", r["fwhm"], per_integration=True)
            summary[f"order{o}"] = {"detected": r["reference"]["detected"],
                                    "rms_shift_y": float(np.nanstd(r["shift_y"]))}
        self.meta["TRACEMTH"] = method
        self._record("fit_all_traces", {"method": method, "orders": list(res["orders"]),
                                        "halfwidth": halfwidth, "smooth": smooth,
                                        "deg_int": deg_int, "per_integration": per_integration},
                     summary)
        return self

    def fit_single_trace(self, order: int = 1, integration: int = 0, method: str = "centroid",
                         halfwidth=None, smooth: str = "spline"):
        """Trace of one order in one integration, fitted on its own.

        Parameters
        ----------
        order : int
            Spectral order.
        integration : int
            Integration index.
        method : {'centroid', 'edgetrigger', 'gaussian'}
            Centring method.
        halfwidth : float, optional
            Window half-width (default per mode).
        smooth : {'spline', 'poly', 'none'}
            Smoothing along dispersion.

        Returns
        -------
        centre, fwhm : ndarray, shape (n_disp,)
            A query: the group is not changed.
        """
        from tsocontainer.spectra.trace import TraceOptions, fit_single_trace

        opts = TraceOptions(method, halfwidth, smooth)
        return fit_single_trace(self.as_source(), order, integration, opts,
                                reference=self._reference())

    @step("state", target="TSOGroup", reads=_TRACE_READS, writes=("shifts",), plot="plot_stability",
          params={"order": Num(lo=1, integer=True), "method": _CENTRING, "halfwidth": _POS})
    def measure_shifts(self, order=None, method: str = "centroid", halfwidth=None):
        """Per-integration x shift, y shift and FWHM (:func:`trace.measure_shifts`).

        Parameters
        ----------
        order : int, optional
            Order measured (default: the mode's first).
        method : {'centroid', 'edgetrigger', 'gaussian'}
            Centring method for the y shift and width.
        halfwidth : float, optional
            Window half-width (default per mode).

        Returns
        -------
        TSOGroup
            ``self``, with ``aux`` ``shift_x``, ``shift_y``, ``fwhm`` (also in
            :attr:`regressors`).
        """
        from tsocontainer.spectra.stability import measure_shifts

        res = measure_shifts(self.as_source(), order, method, halfwidth,
                             reference=self._reference())
        for k in ("shift_x", "shift_y", "fwhm"):
            self.set_aux(k, res[k], per_integration=True)
        self._record("measure_shifts", {"order": res["order"], "method": method},
                     {k: float(np.nanstd(res[k])) for k in ("shift_x", "shift_y", "fwhm")})
        return self

    @step("state", target="TSOGroup", reads=("shifts",), writes=("tilt",), plot="plot_stability",
          params={"window": Num(lo=3, integer=True), "nsigma": _POS})
    def detect_tilt_events(self, window: int = 10, nsigma: float = 6.0):
        """Find sudden, lasting jumps of the trace (mirror tilt events) in ``shift_y``.

        Each event becomes a step regressor, 0 before and 1 from the first
        integration after it, named ``tilt`` (then ``tilt2``, ...), so fits can
        take it with ``model: {regressors: ["tilt?"]}``. Needs
        :meth:`measure_shifts` first. See :func:`tsocontainer.spectra.stability.detect_steps`.

        Parameters
        ----------
        window : int
            Integrations on each side of a candidate jump.
        nsigma : float
            Detection threshold in units of the jump's noise.

        Returns
        -------
        TSOGroup
            ``self``; ``meta["NTILT"]`` counts the events.

        Raises
        ------
        RuntimeError
            If :meth:`measure_shifts` has not run.
        """
        from tsocontainer.spectra.stability import detect_steps

        if "shift_y" not in self.aux:
            raise RuntimeError("detect_tilt_events needs measure_shifts() first")
        self._drop_aux("tilt")
        if self.N < 2 * window:
            log.warning("detect_tilt_events skipped: %d integrations, it needs at least %d "
                        "(2 x window) to tell a jump from noise", self.N, 2 * window)
            self.meta["NTILT"] = 0
            self._record("detect_tilt_events", {"window": window, "nsigma": nsigma},
                         {"skipped": f"{self.N} integrations < 2 x window"})
            return self
        events = detect_steps(self.aux["shift_y"], window=window, nsigma=nsigma)
        for n, i in enumerate(events, start=1):
            step = (np.arange(self.N) >= i).astype(float)
            self.set_aux("tilt" if n == 1 else f"tilt{n}", step, per_integration=True)
        self.meta["NTILT"] = len(events)
        self._record("detect_tilt_events", {"window": window, "nsigma": nsigma},
                     {"events": [int(self.int_numbers[i]) for i in events]})
        log.info("detect_tilt_events: %d event(s) at integration(s) %s", len(events),
                 [int(self.int_numbers[i]) for i in events])
        return self

    @step("state", target="TSOGroup", reads=_TRACE_READS, writes=("pca",), plot="plot_stability",
          params={"n_components": Num(lo=1, integer=True), "orders": IntList(lo=1),
                  "halfwidth": _POS})
    def stability_pca(self, n_components: int = 5, orders=None, halfwidth=None):
        """Principal components of the trace pixels in time (:func:`trace.stability_pca`).

        Parameters
        ----------
        n_components : int
            Number of components.
        orders : int or sequence of int, optional
            Orders whose pixels are used (default: all detected).
        halfwidth : float, optional
            Aperture half-width (default: half the mode's box width).

        Returns
        -------
        TSOGroup
            ``self``, with ``aux`` ``pca_components`` (regressors ``pca1``...),
            ``pca_explained`` and ``pca_eigenimages``.
        """
        from tsocontainer.arrays.views import dispersion_major
        from tsocontainer.spectra.stability import stability_pca

        res = stability_pca(self.as_source(), n_components, orders, halfwidth,
                            reference=self._reference())
        self.set_aux("pca_components", res["components"], per_integration=True)
        self.set_aux("pca_explained", res["explained"])
        self.set_aux("pca_eigenimages", np.ascontiguousarray(
            dispersion_major(res["eigenimages"], self.geometry.dispersion_axis)))
        self._record("stability_pca", {"n_components": n_components, "orders": orders},
                     {"explained": [round(float(e), 4) for e in res["explained"]]})
        return self

    @step("spectra", target="TSOGroup", reads=("mask", "sky", "onef", "replace", "traces", "shifts", "tilt", "pca"),
          writes=("spectra",), plot="plot_spectra", once=True,
          params={"method": Choice("box", "optimal"), "width": OneOf(_POS, Choice("optimize")),
                  "orders": IntList(lo=1), "nsigma": _POS, "wave_shift": Num(),
                  "decontaminate": Bool()})
    def extract(self, method: str = "box", width=None, orders=None, *, use_traces: bool = True,
                exclude_overlap: bool = True, nsigma: float = 5.0, oot=None,
                wave_shift: float = 0.0, template=None, decontaminate: bool = False):
        """Extract per-integration spectra (:func:`extract.extract`).

        Parameters
        ----------
        method : {'box', 'optimal'}
            Box with fractional edge pixels, or Horne (1986) optimal.
        width : float or 'optimize', optional
            Full aperture width (px); default per mode.
        orders : int or sequence of int, optional
            Orders (default: all with a trace, except SOSS: order 1, as orders 2 and 3
            overlap it; with ``decontaminate``, as the shipped SOSS recipe: orders 1 and 2).
        use_traces : bool
            Centre the aperture on the per-integration traces of
            :meth:`fit_all_traces` (else, or when there are none, on the
            reference trace).
        exclude_overlap : bool
            Leave out pixels shared by two orders' apertures (SOSS).
        nsigma : float
            Optimal extraction rejection threshold.
        oot : array_like of bool, optional
            Out-of-transit integrations for ``width='optimize'``.
        wave_shift : float
            Shift (px) of the spectra along dispersion applied to the
            wavelength solution (``shift_x`` is relative, median 0; give an
            absolute offset here or use ``template``).
        template : tuple of array_like, optional
            ``(wave, flux)`` stellar template for a CCF wavelength offset.
        decontaminate : bool
            Box spectra with the other orders' light removed where orders
            overlap: their spatial profiles (from this visit's reference frame)
            fitted jointly per column and integration
            (:func:`tsocontainer.spectra.decontaminate.extract_decontaminated`);
            columns where order 3 contaminates are masked. Box only;
            ``exclude_overlap`` is then ignored.

        Returns
        -------
        Spectra
            Also kept in ``aux`` (see :attr:`spectra`).

        Raises
        ------
        ValueError
            ``decontaminate`` with a method other than a box.
        """
        from tsocontainer.spectra.decontaminate import extract_decontaminated
        from tsocontainer.spectra.extract import ExtractOptions, extract

        opts = ExtractOptions(method, width, exclude_overlap, nsigma, wave_shift=wave_shift)

        traces = None
        if use_traces:
            try:
                traces = self.traces
            except RuntimeError:
                traces = None
        if orders is None and self.geometry.key == "soss":
            orders = [1, 2] if decontaminate else [1]
            log.info("extract: orders %s (SOSS default)", orders)
        run = extract_decontaminated if decontaminate else extract
        spec = run(self.as_source(), opts, orders, traces=traces, reference=self._reference(),
                   oot=oot, template=template, regressors=self.regressors)
        self._store_spectra(spec)
        self._record("extract", {"method": method, "width": width, "orders": list(spec.orders),
                                 "use_traces": traces is not None, "nsigma": nsigma,
                                 "decontaminate": bool(decontaminate)},
                     {f"order{o}": {"good": float(spec.mask[o].mean())} for o in spec.orders})
        return spec

    def _store_spectra(self, spec) -> None:
        """Keep ``spec`` in ``aux`` (replacing the last extraction) and its header values in ``meta``."""
        self._drop_aux("spec_")
        for k in ("DECONTAM", "DCWINDOW"):   # of an earlier decontaminated extraction
            self.meta.pop(k, None)
        for o in spec.orders:
            self.set_aux(f"spec_wave_order{o}", spec.wave[o])
            self.set_aux(f"spec_flux_order{o}", spec.flux[o], per_integration=True)
            self.set_aux(f"spec_var_order{o}", spec.var[o], per_integration=True)
            self.set_aux(f"spec_mask_order{o}", spec.mask[o].astype(np.uint8), per_integration=True)
            for k, v in spec.columns.get(o, {}).items():
                self.set_aux(f"spec_col_{k}_order{o}", v)
        self.meta.update({k: v for k, v in spec.meta.items() if k.isupper() and len(k) <= 8})

    @property
    def spectra(self):
        """The last extraction as :class:`~tsocontainer.spectra.container.Spectra` (from ``aux``)."""
        from tsocontainer.spectra.container import Spectra

        waves = self._aux_by_order("spec_wave_order", "spectra") if any(
            k.startswith("spec_wave_order") for k in self.aux) else None
        if waves is None:
            raise RuntimeError("no spectra yet: run extract() first")
        cols = {}
        for k in [k for k in self.aux if k.startswith("spec_col_")]:
            v = self.aux[k]
            if True:
                name, _, o = k[len("spec_col_"):].rpartition("_order")
                cols.setdefault(int(o), {})[name] = v
        meta = {k: self.meta[k] for k in self.meta if isinstance(self.meta[k], (str, int, float, bool))}
        return Spectra(self.time_bjd, waves, {o: self.aux[f"spec_flux_order{o}"] for o in waves},
                       {o: self.aux[f"spec_var_order{o}"] for o in waves},
                       {o: self.aux[f"spec_mask_order{o}"].astype(bool) for o in waves},
                       int_numbers=self.int_numbers, regressors=self.regressors, meta=meta,
                       columns=cols)

    def to_lightcurves(self, bins=30, order=None, *, min_flux: float = 0.01, unit=None,
                       meta=None):
        """Light curves of the last extraction (:meth:`Spectra.to_lightcurves`).

        Parameters
        ----------
        bins : int, dict or array_like
            Channels.
        order : int, optional
            Order (default: the first).
        min_flux, unit, meta
            As :meth:`Spectra.to_lightcurves`.

        Returns
        -------
        LightCurves
        """
        return self.spectra.to_lightcurves(bins=bins, order=order, min_flux=min_flux, unit=unit,
                                           meta=meta)
