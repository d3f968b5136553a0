"""Results of light-curve fits: :class:`FitResult` and :class:`TransmissionSpectrum`.

Both write ECSV (atomically) and read it back exactly; a :class:`FitResult`
also writes JSON. Posterior samples, chains and the fitted data travel with
the object in memory but not in the files.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tsocontainer._util import check_option
from tsocontainer._util import drop_timings
from tsocontainer._util import jsonable as _jsonable
from tsocontainer.lightcurves.tools import write_table_atomic

if TYPE_CHECKING:  # for type hints only
    from astropy.table import Table
    from matplotlib.axes import Axes

__all__ = ["FitResult", "TransmissionSpectrum"]

_STATUS = ("free", "marginalised", "fixed", "derived")


@dataclass
class FitResult:
    """Posterior summary of one light-curve fit.

    Attributes
    ----------
    names : list of str
        Every parameter (free, marginalised, fixed) then the derived ones.
    status : dict of str to str
        ``"free"`` (sampled by emcee), ``"marginalised"`` (linear, analytic),
        ``"fixed"`` or ``"derived"`` (``depth``, ``b``/``inc``, ``u`` from ``q``).
    median, err_lo, err_hi : dict of str to float
        Posterior median and distances to the 16th and 84th percentiles
        (zero for fixed parameters).
    map : dict of str to float
        Highest-posterior sample (linear terms at their conditional optimum).
    priors : dict of str to str
        Text form of the priors.
    model : dict
        The :class:`~tsocontainer.lightcurves.model.ModelSpec` fields.
    diagnostics : dict
        ``nwalkers``, ``nsteps``, ``burn``, ``acceptance``, ``tau`` (per free
        parameter), ``n_tau`` (post-burn steps / max tau), ``converged``,
        ``messages``, ``chi2``, ``npoints``, ``nfree``, ``lsq`` (least-squares
        start) and ``lsq_err`` (its errors of the free parameters, from the
        Jacobian with the linear terms profiled), ``runtime``.
    samples : ndarray (nsamples, len(sample_names)), optional
        Thinned posterior samples of the non-fixed parameters.
    sample_names : list of str, optional
    chain : ndarray (nsteps, nwalkers, nfree), optional
        Full emcee chain of the free parameters (``keep_chain=True``).
    time, flux, err, model_flux, astro, systematics : ndarray, optional
        Fitted points and the MAP model, astrophysical and systematics curves.
    wave_lo, wave_hi : float, optional
        Wavelength range of the fitted light curve (micron).
    quality : dict
        The quality record and verdict (see :mod:`tsocontainer.lightcurves.quality`):
        ``suspect``, ``reasons``, ``convergence`` (tau, ESS), ``noise``
        (reduced chi2, scatter / predicted), ``red_noise`` (beta),
        ``prior_edges``, ``thresholds``. Empty for a result not made by the fitter.
    parts : list of FitResult, optional
        A joint fit's result per light curve (see
        :func:`~tsocontainer.lightcurves.joint.fit_joint`); written and read
        with the result.

    Examples
    --------
    >>> r = FitResult(["rp_rs", "depth"], {"rp_rs": "free", "depth": "derived"},
    ...               {"rp_rs": 0.1, "depth": 0.01}, {"rp_rs": 1e-3, "depth": 2e-4},
    ...               {"rp_rs": 1e-3, "depth": 2e-4}, {"rp_rs": 0.1, "depth": 0.01})
    >>> FitResult.from_dict(r.to_dict()).median == r.median
    True
    """

    names: list
    status: dict
    median: dict
    err_lo: dict
    err_hi: dict
    map: dict
    priors: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    samples: np.ndarray | None = None
    sample_names: list | None = None
    chain: np.ndarray | None = None
    time: np.ndarray | None = None
    flux: np.ndarray | None = None
    err: np.ndarray | None = None
    model_flux: np.ndarray | None = None
    astro: np.ndarray | None = None
    systematics: np.ndarray | None = None
    wave_lo: float | None = None
    wave_hi: float | None = None
    quality: dict = field(default_factory=dict)
    parts: list | None = None

    def __getitem__(self, name: str) -> float:
        """Posterior median of ``name``."""
        if name not in self.median:
            raise KeyError(f"no parameter {name!r}; have {self.names}")
        return self.median[name]

    @property
    def converged(self) -> bool:
        """Whether the convergence checks passed."""
        return bool(self.diagnostics.get("converged", False))

    @property
    def suspect(self) -> bool:
        """True when the fit failed a quality check (see ``quality["reasons"]``)."""
        return bool(self.quality.get("suspect", False))

    @property
    def reasons(self) -> list:
        """Why the fit is suspect (empty when it is not)."""
        return list(self.quality.get("reasons", []))

    @property
    def verdict(self) -> str:
        """One line: ``"ok"``, ``"SUSPECT: <reasons>"`` or ``"not assessed"``."""
        if not self.quality:
            return "not assessed"
        return f"SUSPECT: {'; '.join(self.reasons)}" if self.suspect else "ok"

    @property
    def depth_ppm(self) -> tuple[float, float, float]:
        """Depth (``rp_rs**2`` or ``fp_fs``) median, lower and upper error, in ppm."""
        return (1e6 * self.median["depth"], 1e6 * self.err_lo["depth"], 1e6 * self.err_hi["depth"])

    def sample(self, name: str) -> np.ndarray:
        """Posterior samples of parameter ``name``.

        Parameters
        ----------
        name : str

        Returns
        -------
        ndarray

        Raises
        ------
        ValueError
            If the samples were not kept (e.g. a result read from a file).
        """
        if self.samples is None:
            raise ValueError("this result has no samples (read from a file?)")
        if name not in self.sample_names:
            raise KeyError(f"no samples of {name!r}; have {self.sample_names}")
        return self.samples[:, self.sample_names.index(name)]

    def __repr__(self) -> str:
        lines = [f"<FitResult {self.model.get('kind', '')} converged={self.converged} "
                 f"chi2={self.diagnostics.get('chi2', np.nan):.1f}/{self.diagnostics.get('npoints', 0)} "
                 f"verdict={'SUSPECT' if self.suspect else self.verdict}>"]
        lines += [f"  ! {r}" for r in self.reasons]
        shown = [n for n in self.names if self.status[n] in ("free", "derived")
                 and not n.startswith(("c", "reg_", "ramp_amp", "poly"))
                 or n in ("depth", "rp_rs", "fp", "ramp_tau")]
        shown = [n for n in shown if self.status[n] != "fixed"][:12]
        for n in shown:
            if n == "depth":   # depths in ppm, as in every figure and table
                lines.append(f"  {'depth':>10s} = {self.median[n] * 1e6:.0f} "
                             f"-{self.err_lo[n] * 1e6:.0f} +{self.err_hi[n] * 1e6:.0f} ppm "
                             f"({self.status[n]})")
                continue
            lines.append(f"  {n:>10s} = {_fmt(self.median[n], self.err_lo[n], self.err_hi[n])}"
                         f" ({self.status[n]})")
        hidden = [n for n in self.names if self.status[n] != "fixed" and n not in shown]
        if hidden:
            lines.append(f"  (+ {len(hidden)} systematics terms: {', '.join(hidden[:6])}"
                         f"{', ...' if len(hidden) > 6 else ''}; see .to_table())")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The fit as a table for notebooks: verdict, then every non-fixed parameter."""
        from tsocontainer._util import html_table

        rows = [("verdict", self.verdict),
                ("chi2 / points", f"{self.diagnostics.get('chi2', np.nan):.1f} / "
                                  f"{self.diagnostics.get('npoints', 0)}")]
        rows += [(f"{n} ({self.status[n]})", _fmt(self.median[n], self.err_lo[n], self.err_hi[n]))
                 for n in self.names if self.status[n] != "fixed"]
        return html_table(f"FitResult: {self.model.get('kind', '')}", rows)

    # ------------------------------------------------------------------- io
    def to_table(self) -> "Table":
        """Parameter table (astropy): name, status, median, err_lo, err_hi, map, prior.

        Returns
        -------
        astropy.table.Table
            Model, diagnostics and wavelength range in ``meta``.
        """
        from astropy.table import Table

        t = Table()
        t["name"] = list(self.names)
        t["status"] = [self.status[n] for n in self.names]
        for col in ("median", "err_lo", "err_hi", "map"):
            t[col] = np.array([getattr(self, col)[n] for n in self.names], dtype=float)
        t["prior"] = [self.priors.get(n, "") for n in self.names]
        t.meta.update({"model": _jsonable(self.model),
                       "diagnostics": _jsonable(drop_timings(self.diagnostics)),
                       "quality": _jsonable(self.quality), "suspect": self.suspect,
                       "wave_lo": self.wave_lo, "wave_hi": self.wave_hi, "wave_unit": "micron"})
        if self.parts:
            t.meta["parts"] = [p.to_dict() for p in self.parts]
        return t

    def to_dict(self) -> dict:
        """JSON-ready summary (no samples, chain or data).

        Returns
        -------
        dict
            ``{"params": {name: {"status", "median", "err_lo", "err_hi", "map",
            "prior"}}, "model", "diagnostics", "suspect", "quality", "wave_lo",
            "wave_hi"}`` with the parameters in order (and ``"parts"`` of a
            joint fit, each in this form).
        """
        params = {n: {"status": self.status[n], "median": self.median[n], "err_lo": self.err_lo[n],
                      "err_hi": self.err_hi[n], "map": self.map[n], "prior": self.priors.get(n, "")}
                  for n in self.names}
        out = {"params": params, "model": _jsonable(self.model),
               "diagnostics": _jsonable(drop_timings(self.diagnostics)),
               "suspect": self.suspect, "quality": _jsonable(self.quality),
               "wave_lo": self.wave_lo, "wave_hi": self.wave_hi}
        if self.parts:
            out["parts"] = [p.to_dict() for p in self.parts]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "FitResult":
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        d : dict

        Returns
        -------
        FitResult
        """
        params = d["params"]
        names = list(params)
        cols = {c: {n: params[n][c] for n in names} for c in ("status", "median", "err_lo", "err_hi", "map")}
        parts = [cls.from_dict(p) for p in d["parts"]] if d.get("parts") else None
        return cls(names=names, priors={n: params[n]["prior"] for n in names if params[n]["prior"]},
                   model=d.get("model", {}), diagnostics=d.get("diagnostics", {}),
                   quality=d.get("quality", {}), wave_lo=d.get("wave_lo"), wave_hi=d.get("wave_hi"),
                   parts=parts, **cols)

    def write(self, path, overwrite: bool = False) -> str:
        """Write the summary to ``.ecsv`` or ``.json`` (atomically).

        Parameters
        ----------
        path : str or path-like
            The suffix chooses the format.
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        str
        """
        path = os.fspath(path)
        fmt = check_option(os.path.splitext(path)[1].lower(), (".ecsv", ".json"), "file suffix")
        if fmt == ".ecsv":
            return write_table_atomic(self.to_table(), path, overwrite)
        return _write_json_atomic(self.to_dict(), path, overwrite)

    @classmethod
    def read(cls, path) -> "FitResult":
        """Read a result written by :meth:`write`.

        Parameters
        ----------
        path : str or path-like
            ``.ecsv`` or ``.json`` file.

        Returns
        -------
        FitResult
            Without samples, chain or data.
        """
        path = os.fspath(path)
        fmt = check_option(os.path.splitext(path)[1].lower(), (".ecsv", ".json"), "file suffix")
        if fmt == ".json":
            with open(path) as fh:
                return cls.from_dict(json.load(fh))
        from astropy.table import Table

        t = Table.read(path, format="ascii.ecsv")
        names = [str(n) for n in t["name"]]
        cols = {c: {n: float(v) for n, v in zip(names, t[c])} for c in ("median", "err_lo", "err_hi", "map")}
        return cls(names=names, status={n: str(s) for n, s in zip(names, t["status"])},
                   priors={n: str(p) for n, p in zip(names, _filled(t["prior"])) if str(p)},
                   model=dict(t.meta.get("model", {})),
                   diagnostics=dict(t.meta.get("diagnostics", {})),
                   quality=dict(t.meta.get("quality", {})),
                   wave_lo=t.meta.get("wave_lo"), wave_hi=t.meta.get("wave_hi"),
                   parts=[cls.from_dict(p) for p in t.meta["parts"]] if t.meta.get("parts") else None,
                   **cols)

    # ---------------------------------------------------------------- plots
    def plot(self, axes=None, nbin: int | None = None):
        """Detrended data with the model and residuals; see :func:`~tsocontainer.plotting.core.plot_fit`.

        Parameters
        ----------
        axes : sequence of two Axes, optional
            Data and residual panels (a new figure if None).
        nbin : int, optional
            Also draw means of ``nbin`` consecutive points.

        Returns
        -------
        list of matplotlib.axes.Axes
        """
        from tsocontainer.plotting.fits import plot_fit

        return plot_fit(self, axes=axes, nbin=nbin)

    def plot_corner(self, names=None, axes=None, bins: int = 30):
        """Pairs plot of the posterior samples; see :func:`tsocontainer.plotting.core.plot_corner`.

        Parameters
        ----------
        names : list of str, optional
            Parameters shown (default: the free ones).
        axes : array of Axes, shape (k, k), optional
            Where to draw.
        bins : int
            Histogram bins.

        Returns
        -------
        ndarray of matplotlib.axes.Axes
        """
        from tsocontainer.plotting.fits import plot_corner

        return plot_corner(self, names=names, axes=axes, bins=bins)


def _fmt(value: float, lo: float, hi: float) -> str:
    """``value -lo +hi`` with the value given to the precision of its errors."""
    err = min(lo, hi)
    places = int(max(0, 1 - np.floor(np.log10(err)))) if np.isfinite(err) and err > 0 else 6
    return f"{value:.{places}f} -{lo:.2g} +{hi:.2g}"


def _filled(col):
    """Column values with masked (empty) entries as empty strings."""
    return col.filled("") if hasattr(col, "filled") else col


def _write_json_atomic(obj: dict, path: str, overwrite: bool) -> str:
    import tempfile

    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-",
                               suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


@dataclass
class TransmissionSpectrum:
    """Transit (or eclipse) depth per wavelength channel, in ppm.

    Attributes
    ----------
    wave_lo, wave_hi : ndarray
        Channel edges (micron).
    depth, err_lo, err_hi : ndarray
        Depth (``rp_rs**2`` or ``fp_fs``) median and 1-sigma errors (ppm).
    kind : str
        ``"transit"`` or ``"eclipse"``.
    meta : dict
        Provenance (geometry choice, white-light parameters...).
    suspect : ndarray of bool, optional
        Channels whose fit failed a quality check (default none); the reasons
        are in the per-channel :class:`FitResult` and ``fit_channels.ecsv``.
    err_common : ndarray, optional
        Common-mode error (ppm) of each depth from the uncertainty of the fixed
        white-light geometry (see :func:`tsocontainer.lightcurves.fit.fit_channels`),
        shared by all channels; not included in ``err_lo``/``err_hi`` (the errors
        of the spectrum's shape); :attr:`err_total` adds it (absolute depths).

    Examples
    --------
    >>> ts = TransmissionSpectrum([1.0], [1.1], [1000.0], [50.0], [55.0])
    >>> float(ts.wave[0])
    1.05
    """

    wave_lo: np.ndarray
    wave_hi: np.ndarray
    depth: np.ndarray
    err_lo: np.ndarray
    err_hi: np.ndarray
    kind: str = "transit"
    meta: dict = field(default_factory=dict)
    suspect: np.ndarray | None = None
    err_common: np.ndarray | None = None

    def __post_init__(self):
        for name in ("wave_lo", "wave_hi", "depth", "err_lo", "err_hi"):
            setattr(self, name, np.atleast_1d(np.asarray(getattr(self, name), dtype=float)))
        n = self.depth.size
        if any(getattr(self, k).shape != (n,) for k in ("wave_lo", "wave_hi", "err_lo", "err_hi")):
            raise ValueError("wave_lo, wave_hi, depth, err_lo and err_hi need the same length")
        check_option(self.kind, ("transit", "eclipse"), "kind")
        self.suspect = (np.zeros(n, bool) if self.suspect is None
                        else np.asarray(self.suspect, dtype=bool).reshape(n))
        if self.err_common is not None:
            self.err_common = np.asarray(self.err_common, dtype=float).reshape(n)

    def _repr_html_(self) -> str:
        """The spectrum of depths as a table for notebooks."""
        from tsocontainer._util import html_table

        rows = [(f"{lo:.3f}-{hi:.3f} micron", f"{d:.0f} +- {e:.0f} ppm"
                 + (" SUSPECT" if bad else ""))
                for lo, hi, d, e, bad in zip(self.wave_lo, self.wave_hi, self.depth, self.err,
                                             self.suspect)]
        return html_table(f"TransmissionSpectrum: {len(self)} channels", rows)

    def __repr__(self) -> str:
        ns = int(self.suspect.sum())
        common = "" if self.err_common is None else f" common-mode {np.nanmedian(self.err_common):.0f} ppm"
        return (f"<TransmissionSpectrum {self.kind} {len(self)} channels "
                f"{self.wave_lo.min():.3f}-{self.wave_hi.max():.3f} um, median error "
                f"{np.median(self.err):.0f} ppm{common}, "
                f"{'SUSPECT ' if ns else ''}{ns} suspect channel(s)>")

    @property
    def wave(self) -> np.ndarray:
        """Channel centres (micron)."""
        return 0.5 * (self.wave_lo + self.wave_hi)

    @property
    def err(self) -> np.ndarray:
        """Mean of the lower and upper errors (ppm)."""
        return 0.5 * (self.err_lo + self.err_hi)

    @property
    def err_total(self) -> np.ndarray:
        """Channel error and common-mode error in quadrature (ppm): the error of an absolute
        depth (:attr:`err` alone is the error of the spectrum's shape; the channels share
        the common-mode part). :attr:`err` when there is no common-mode error.

        Examples
        --------
        >>> s = TransmissionSpectrum([1.0], [1.1], [1000.0], [30.0], [30.0],
        ...                          err_common=[40.0])
        >>> float(s.err_total[0])
        50.0
        """
        if self.err_common is None:
            return self.err
        return np.hypot(self.err, np.asarray(self.err_common, float))

    def __len__(self) -> int:
        return self.depth.size

    @classmethod
    def from_fits(cls, results, kind: str = "transit", meta: dict | None = None) -> "TransmissionSpectrum":
        """Collect the depths of per-channel fits.

        Parameters
        ----------
        results : sequence of FitResult
            With ``wave_lo``/``wave_hi`` set (and ``diagnostics["common_mode"]``
            for the common-mode error).
        kind : str
            ``"transit"`` or ``"eclipse"``.
        meta : dict, optional

        Returns
        -------
        TransmissionSpectrum
        """
        d = np.array([r.depth_ppm for r in results])
        common = [r.diagnostics.get("common_mode", {}).get("err") for r in results]
        common = None if any(c is None for c in common) else 1e6 * np.asarray(common, float)
        return cls([r.wave_lo for r in results], [r.wave_hi for r in results],
                   d[:, 0], d[:, 1], d[:, 2], kind=kind, meta=dict(meta or {}),
                   suspect=[r.suspect for r in results], err_common=common)

    def to_table(self) -> "Table":
        """The spectrum as an astropy Table with units (micron, ppm)."""
        from astropy.table import Table
        import astropy.units as u

        t = Table()
        t["wave_lo"] = u.Quantity(self.wave_lo, u.micron)
        t["wave_hi"] = u.Quantity(self.wave_hi, u.micron)
        for col, text in (("depth", "depth"), ("err_lo", "lower 1-sigma error"),
                          ("err_hi", "upper 1-sigma error")):
            t[col] = u.Quantity(getattr(self, col), u.Unit(1e-6))  # ppm
            t[col].description = f"{text} (ppm)"
        # plain-number columns for tools that do not read units
        t["depth_ppm"] = np.asarray(self.depth, float)
        t["depth_ppm"].description = "depth (ppm)"
        t["err_ppm"] = 0.5 * (np.asarray(self.err_lo, float) + np.asarray(self.err_hi, float))
        t["err_ppm"].description = ("mean of the lower and upper 1-sigma errors of the channel "
                                    "fit (ppm)")
        if self.err_common is not None:
            t["err_common_ppm"] = np.asarray(self.err_common, float)
            t["err_common_ppm"].description = ("common-mode error from the fixed white-light "
                                               "geometry, shared by all channels (ppm)")
            t["err_total_ppm"] = self.err_total
            t["err_total_ppm"].description = (
                "err_ppm and err_common_ppm in quadrature: the error of an absolute depth "
                "(err_ppm alone is the error of the spectrum's shape) (ppm)")
        t["suspect"] = np.asarray(self.suspect, bool)
        t["suspect"].description = "the channel's fit failed a quality check"
        t.meta.update({"kind": self.kind, "meta": _jsonable(self.meta),
                       "n_suspect": int(self.suspect.sum())})
        return t

    def write(self, path, overwrite: bool = False) -> str:
        """Write ECSV atomically.

        Parameters
        ----------
        path : str or path-like
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        str
        """
        return write_table_atomic(self.to_table(), path, overwrite)

    @classmethod
    def read(cls, path) -> "TransmissionSpectrum":
        """Read a spectrum written by :meth:`write`.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        TransmissionSpectrum
        """
        from astropy.table import Table

        t = Table.read(path, format="ascii.ecsv")
        return cls(*(np.asarray(t[c], float) for c in ("wave_lo", "wave_hi", "depth", "err_lo", "err_hi")),
                   kind=t.meta.get("kind", "transit"), meta=dict(t.meta.get("meta", {})),
                   suspect=np.asarray(t["suspect"], bool) if "suspect" in t.colnames else None,
                   err_common=(np.asarray(t["err_common_ppm"], float)
                               if "err_common_ppm" in t.colnames else None))

    def plot(self, ax=None, compare=None, **kwargs) -> "Axes":
        """Depth versus wavelength; see ``plotting.plot_transmission_spectrum``."""
        from tsocontainer.plotting.fits import plot_transmission_spectrum

        return plot_transmission_spectrum(self, ax=ax, compare=compare, **kwargs)
