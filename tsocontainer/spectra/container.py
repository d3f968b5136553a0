"""Per-integration 1D spectra of one visit: the :class:`Spectra` container.

``Spectra`` holds, for every spectral order, the wavelength of each extracted
pixel ``wave (nwave,)`` and the flux, variance and good-pixel mask
``(nint, nwave)``, with the mid-integration times (BJD_TDB), the integration
numbers and systematics regressors (x/y shift, trace width, PCA components).
It writes and reads the JWST ``x1dints`` format (``TSOMultiSpecModel`` of
jwst 3.x: one ``EXTRACT1D`` table per order, one row per integration, vector
columns), adding ``TSOC_*`` extensions that make the round trip exact.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from tsocontainer._util import now_iso, reproducible
from tsocontainer.lightcurves.tools import check_bins
from tsocontainer.registry import Coerced, Num, step

__all__ = ["Spectra"]

log = logging.getLogger(__name__)

#: extra columns of the TSO spectral table that are per integration, not per pixel
_ROW_COLUMNS = ("INT_NUM", "N_ALONGDISP", "SEGMENT", "MJD-BEG", "MJD-AVG", "MJD-END",
                "TDB-BEG", "TDB-MID", "TDB-END")
_MJD0 = 2400000.5


def _per_order(value, name, orders=None):
    if value is None:
        return None
    if isinstance(value, dict):
        return {int(k): v for k, v in value.items()}
    return {(orders[0] if orders else 1): value}


class Spectra:
    """Per-integration spectra of one or more spectral orders.

    Parameters
    ----------
    time : array_like or astropy.time.Time, shape (nint,)
        Mid-integration times, BJD_TDB (days).
    wave : dict of int to array_like (nwave,), or array_like
        Wavelength (micron) per extracted pixel and order (an array means order 1).
    flux, var : dict of int to array_like (nint, nwave), or array_like
        Flux and its variance.
    mask : dict or array_like of bool, optional
        True where a value is good (default: finite flux, finite positive variance).
    int_numbers : array_like of int, optional
        1-based integration numbers (default ``1..nint``).
    regressors : dict of str to array_like (nint,), optional
        Systematics regressors for light-curve fits.
    meta : dict, optional
        FITS-ready status values (``EXTRMETH``, ``BUNIT``, ``MODE``, ...).
    columns : dict of int to dict of str to array_like (nwave,), optional
        Extra per-pixel quantities per order (e.g. ``trace``, ``contamination``).

    Raises
    ------
    ValueError
        On inconsistent shapes or unknown keyword arguments.

    Examples
    --------
    >>> import numpy as np
    >>> s = Spectra(np.arange(3.0), np.linspace(1, 2, 4), np.ones((3, 4)), np.ones((3, 4)))
    >>> s.orders, s.nint
    ((1,), 3)
    """

    def __init__(self, time, wave, flux, var, mask=None, **kwargs):
        allowed = {"int_numbers", "regressors", "meta", "columns"}
        unknown = set(kwargs) - allowed
        if unknown:
            raise ValueError(f"unknown argument(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        if hasattr(time, "tdb"):
            time = time.tdb.jd
        self.time = np.asarray(time, dtype=float).ravel()
        flux = _per_order(flux, "flux")
        orders = tuple(sorted(flux))
        self.flux = {o: np.asarray(v, dtype=float) for o, v in flux.items()}
        self.wave = {o: np.asarray(v, dtype=float) for o, v in _per_order(wave, "wave", orders).items()}
        self.var = {o: np.asarray(v, dtype=float) for o, v in _per_order(var, "var", orders).items()}
        mask = _per_order(mask, "mask", orders)
        self.mask = {o: np.ones(self.flux[o].shape, bool) if mask is None or o not in mask
                     else np.asarray(mask[o], dtype=bool) for o in orders}
        self._check_arrays()
        for o in orders:
            with np.errstate(invalid="ignore"):
                self.mask[o] &= np.isfinite(self.flux[o]) & np.isfinite(self.var[o]) & (self.var[o] > 0)
        ints = kwargs.get("int_numbers")
        self.int_numbers = (np.arange(1, self.nint + 1) if ints is None
                            else np.asarray(ints, dtype=np.int64))
        self.regressors = {str(k): np.asarray(v, dtype=float)
                           for k, v in (kwargs.get("regressors") or {}).items()}
        self.meta = dict(kwargs.get("meta") or {})
        cols = kwargs.get("columns") or {}
        self.columns = {int(o): {k: np.asarray(v, dtype=float) for k, v in c.items()}
                        for o, c in cols.items()}
        self._check()

    def _check_arrays(self) -> None:
        n = self.time.size
        for o in self.orders:
            nw = self.wave.get(o, np.empty(0)).shape
            for name, arr in (("flux", self.flux), ("var", self.var), ("mask", self.mask)):
                if o not in arr or arr[o].shape != (n,) + nw:
                    got = arr[o].shape if o in arr else None
                    raise ValueError(f"order {o}: {name} has shape {got}, expected {(n,) + nw} "
                                     f"(nint={n}, nwave={nw[0] if nw else '?'})")

    def _check(self) -> None:
        n = self.time.size
        for o in self.orders:
            nw = self.wave[o].shape
            for k, v in self.columns.get(o, {}).items():
                if v.shape != nw:
                    raise ValueError(f"order {o}: column {k!r} has shape {v.shape}, expected {nw}")
        if self.int_numbers.shape != (n,):
            raise ValueError(f"int_numbers has shape {self.int_numbers.shape}, expected ({n},)")
        for k, v in self.regressors.items():
            if v.shape != (n,):
                raise ValueError(f"regressor {k!r} has shape {v.shape}, expected ({n},)")

    # ------------------------------------------------------------ shape
    @property
    def orders(self) -> tuple:
        """Spectral orders present."""
        return tuple(sorted(self.flux))

    @property
    def nint(self) -> int:
        """Number of integrations."""
        return self.time.size

    @property
    def nwave(self) -> dict:
        """Order -> number of pixels along dispersion."""
        return {o: self.wave[o].size for o in self.orders}

    def __len__(self) -> int:
        return self.nint

    def _repr_html_(self) -> str:
        """A table of the spectra for notebooks."""
        from tsocontainer._util import html_table

        rows = [("integrations", self.nint), ("method", self.meta.get("EXTRMETH", "?")),
                ("unit", self.meta.get("BUNIT", ""))]
        for o in self.orders:
            w = self.wave[o][np.isfinite(self.wave[o])]
            span = f"{w.min():.3f}-{w.max():.3f} micron" if w.size else "no wavelengths"
            rows.append((f"order {o}", f"{self.nwave[o]} px, {span}, "
                                       f"{100 * self.mask[o].mean():.1f} % good"))
        rows.append(("regressors", ", ".join(self.regressors) or "none"))
        return html_table(f"Spectra: {len(self.orders)} order(s)", rows)

    def __repr__(self) -> str:
        parts = ", ".join(f"order {o}: {self.nwave[o]} px" for o in self.orders)
        meth = self.meta.get("EXTRMETH", "")
        return f"<Spectra {meth + ' ' if meth else ''}nint={self.nint}, {parts}>"

    def _order(self, order) -> int:
        if order is None:
            return self.orders[0]
        if int(order) not in self.flux:
            raise ValueError(f"order {order!r} not present; orders: {self.orders}")
        return int(order)

    # ---------------------------------------------------------- subsets
    def _new(self, ints, orders) -> "Spectra":
        return Spectra(self.time[ints], {o: self.wave[o].copy() for o in orders},
                       {o: self.flux[o][ints] for o in orders}, {o: self.var[o][ints] for o in orders},
                       {o: self.mask[o][ints] for o in orders}, int_numbers=self.int_numbers[ints],
                       regressors={k: v[ints] for k, v in self.regressors.items()},
                       meta=dict(self.meta),
                       columns={o: {k: v.copy() for k, v in self.columns.get(o, {}).items()}
                                for o in orders})

    def __getitem__(self, key) -> "Spectra":
        """Integrations ``key`` (slice, index array or boolean mask) as new Spectra."""
        idx = np.arange(self.nint)[key]
        return self._new(np.atleast_1d(idx), self.orders)

    def select(self, orders) -> "Spectra":
        """The spectra of ``orders`` only (int or sequence).

        Examples
        --------
        >>> import numpy as np
        >>> wave = {1: np.linspace(1.0, 2.0, 4), 2: np.linspace(0.6, 0.9, 4)}
        >>> s = Spectra(np.arange(3.0), wave, {o: np.ones((3, 4)) for o in wave},
        ...             {o: np.ones((3, 4)) for o in wave})
        >>> s.select(2).orders
        (2,)
        """
        orders = (orders,) if np.ndim(orders) == 0 else tuple(orders)
        return self._new(np.arange(self.nint), tuple(self._order(o) for o in orders))

    def copy(self) -> "Spectra":
        """Independent copy.

        Examples
        --------
        >>> import numpy as np
        >>> wave = {1: np.linspace(1.0, 2.0, 4), 2: np.linspace(0.6, 0.9, 4)}
        >>> s = Spectra(np.arange(3.0), wave, {o: np.ones((3, 4)) for o in wave},
        ...             {o: np.ones((3, 4)) for o in wave})
        >>> c = s.copy()
        >>> c == s, c.flux[1] is s.flux[1]
        (True, False)
        """
        return self._new(np.arange(self.nint), self.orders)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Spectra) or other.orders != self.orders:
            return False
        same = (np.array_equal(self.time, other.time)
                and np.array_equal(self.int_numbers, other.int_numbers)
                and self.regressors.keys() == other.regressors.keys()
                and all(np.array_equal(v, other.regressors[k]) for k, v in self.regressors.items()))
        for o in self.orders:
            same &= all(np.array_equal(a[o], b[o], equal_nan=True) for a, b in
                        ((self.wave, other.wave), (self.flux, other.flux), (self.var, other.var)))
            same &= np.array_equal(self.mask[o], other.mask[o])
        return bool(same)

    __hash__ = None

    # --------------------------------------------------------- products
    def white_light(self, order=None, wave_range=None):
        """Sum over the pixels that are good in every integration.

        Parameters
        ----------
        order : int, optional
            Order (default: the first).
        wave_range : tuple of float, optional
            ``(min, max)`` wavelength (micron).

        Returns
        -------
        flux, var : ndarray, shape (nint,)

        Examples
        --------
        >>> import numpy as np
        >>> wave = {1: np.linspace(1.0, 2.0, 4), 2: np.linspace(0.6, 0.9, 4)}
        >>> s = Spectra(np.arange(3.0), wave, {o: np.ones((3, 4)) for o in wave},
        ...             {o: np.ones((3, 4)) for o in wave})
        >>> flux, var = s.white_light(wave_range=(1.2, 2.0))      # 3 of the 4 pixels
        >>> flux, var
        (array([3., 3., 3.]), array([3., 3., 3.]))
        """
        o = self._order(order)
        use = self.mask[o].all(0) & np.isfinite(self.wave[o])
        if wave_range is not None:
            use &= (self.wave[o] >= wave_range[0]) & (self.wave[o] <= wave_range[1])
        return self.flux[o][:, use].sum(1), self.var[o][:, use].sum(1)

    @step("lightcurves", params={"bins": Coerced(check_bins, "a channel count, {R: value}, "
                                                           "{pixels: n} or a list of edges"),
                                 "order": Num(lo=1, integer=True), "min_flux": Num(lo=0, hi=1)},
          plot="plot_waterfall", once=True)
    def to_lightcurves(self, bins=30, order=None, *, min_flux: float = 0.01, unit=None, meta=None):
        """Spectroscopic light curves of one order.

        Parameters
        ----------
        bins : int, dict or array_like
            Channels (see :meth:`tsocontainer.lightcurves.container.LightCurves.from_spectra`).
        order : int, optional
            Order (default: the first).
        min_flux : float
            Pixels below this fraction of the median flux are left out.
        unit : str, optional
            Flux unit (default: the spectra's ``BUNIT``).
        meta : dict, optional
            Values added to the light curves' ``meta``.

        Returns
        -------
        LightCurves

        Examples
        --------
        >>> import numpy as np
        >>> s = Spectra(2460000 + np.arange(40) / 1440, np.linspace(1, 2, 50),
        ...             np.full((40, 50), 100.0), np.ones((40, 50)))
        >>> s.to_lightcurves(bins=5)
        <LightCurves nchan=5 nint=40 0.990-2.010 um clipped=0 steps=['from_spectra']>
        """
        from tsocontainer.lightcurves.container import LightCurves

        o = self._order(order)
        meta_in = meta
        meta = {k: v for k, v in self.meta.items() if isinstance(v, (str, int, float, bool))}
        meta["SPORDER"] = o
        meta.update(meta_in or {})
        unit = unit if unit is not None else (self.meta.get("BUNIT") or None)
        # pixels off the order (no wavelength) or never good carry no information
        keep = np.isfinite(self.wave[o]) & self.mask[o].any(0)
        return LightCurves.from_spectra(self.time, self.wave[o][keep], self.flux[o][:, keep],
                                        self.var[o][:, keep], bins=bins, mask=self.mask[o][:, keep],
                                        regressors=self.regressors, meta=meta, unit=unit,
                                        min_flux=min_flux)

    # ------------------------------------------------------------ plots
    def plot_waterfall(self, order=None, ax=None, **kwargs):
        """Image of flux / median spectrum versus wavelength and time.

        Parameters
        ----------
        order : int, optional
            Order (default: the first).
        ax : matplotlib.axes.Axes, optional
            Where to draw.
        **kwargs
            Passed to ``pcolormesh`` (e.g. ``cmap``, ``vmin``, ``vmax``).

        Returns
        -------
        matplotlib.axes.Axes

        Examples
        --------
        >>> import numpy as np
        >>> s = Spectra(2460000 + np.arange(40) / 1440, np.linspace(1, 2, 50),
        ...             np.full((40, 50), 100.0), np.ones((40, 50)))
        >>> ax = s.plot_waterfall()
        >>> ax.get_xlabel(), ax.get_ylabel()
        ('wavelength [micron]', 'time since first integration [h]')
        >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
        """
        from tsocontainer.plotting.spectra import plot_spectra_waterfall

        return plot_spectra_waterfall(self, order=self._order(order), ax=ax, **kwargs)

    def plot_spectra(self, order=None, integrations=None, ax=None, **kwargs):
        """Median spectrum with its per-integration error band, or chosen integrations.

        Parameters
        ----------
        order : int or sequence, optional
            Order(s) (default: all).
        integrations : sequence of int, optional
            Integrations to draw instead of the median.
        ax : matplotlib.axes.Axes, optional
            Where to draw.
        **kwargs
            Passed to ``plot``.

        Returns
        -------
        matplotlib.axes.Axes

        Examples
        --------
        >>> import numpy as np
        >>> s = Spectra(2460000 + np.arange(40) / 1440, np.linspace(1, 2, 50),
        ...             np.full((40, 50), 100.0), np.ones((40, 50)))
        >>> ax = s.plot_spectra()
        >>> ax.get_xlabel()
        'wavelength [micron]'
        >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
        """
        from tsocontainer.plotting.spectra import plot_spectra_median

        orders = self.orders if order is None else tuple(
            self._order(o) for o in ((order,) if np.ndim(order) == 0 else order))
        return plot_spectra_median(self, orders=orders, integrations=integrations, ax=ax, **kwargs)

    # -------------------------------------------------------------- I/O
    def write_x1dints(self, path, overwrite: bool = False) -> str:
        """Write a jwst ``x1dints`` file (``TSOMultiSpecModel``), atomically.

        One ``EXTRACT1D`` table per order, one row per integration:
        ``WAVELENGTH``, ``FLUX``, ``FLUX_ERROR`` (= sqrt(var)), ``DQ``
        (``DO_NOT_USE`` where the mask is false), ``INT_NUM``, ``TDB-MID``
        (BJD_TDB - 2400000.5), ``N_ALONGDISP``. The variance split by source
        (``FLUX_VAR_POISSON``...) is not tracked here and is left NaN. The
        exact variance, mask, times, regressors, extra columns and meta are
        stored in ``TSOC_*`` extensions, which the jwst datamodels ignore.

        Parameters
        ----------
        path : str or path-like
            Output ``.fits`` file.
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
        ValueError
            If ``path`` does not end in ``.fits``.

        Examples
        --------
        >>> import numpy as np
        >>> s = Spectra(2460000 + np.arange(40) / 1440, np.linspace(1, 2, 50),
        ...             np.full((40, 50), 100.0), np.ones((40, 50)))
        >>> import tempfile
        >>> path = s.write_x1dints(tempfile.mkdtemp() + "/visit_x1dints.fits")
        >>> Spectra.read(path) == s
        True
        """
        return _write_x1dints(self, path, overwrite=overwrite)

    @classmethod
    def read(cls, path) -> "Spectra":
        """Read an ``x1dints`` file (written here or by the jwst pipeline).

        Parameters
        ----------
        path : str, path-like or sequence of them
            The file, or the segment files of one visit (concatenated in the
            order given). Pipeline files are accepted: spectra of the same
            order are concatenated in row order; the variance is then
            ``FLUX_ERROR**2`` and the mask ``DQ & 1 == 0``.

        Returns
        -------
        Spectra

        Examples
        --------
        >>> import numpy as np
        >>> s = Spectra(2460000 + np.arange(40) / 1440, np.linspace(1, 2, 50),
        ...             np.full((40, 50), 100.0), np.ones((40, 50)))
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> paths = [s[:20].write_x1dints(f"{folder}/seg1.fits"),
        ...          s[20:].write_x1dints(f"{folder}/seg2.fits")]
        >>> Spectra.read(paths) == s
        True
        """
        if isinstance(path, (list, tuple)):
            return cls.concatenate([_read_x1dints(p) for p in path])
        return _read_x1dints(path)

    @classmethod
    def concatenate(cls, parts) -> "Spectra":
        """Join spectra of consecutive integrations (e.g. segments) into one.

        Parameters
        ----------
        parts : sequence of Spectra
            Same orders and wavelengths, in time order; regressors present in
            all parts are kept; the meta of the first part is kept.

        Returns
        -------
        Spectra

        Raises
        ------
        ValueError
            If the orders or wavelengths differ.

        Examples
        --------
        >>> import numpy as np
        >>> s = Spectra(2460000 + np.arange(40) / 1440, np.linspace(1, 2, 50),
        ...             np.full((40, 50), 100.0), np.ones((40, 50)))
        >>> Spectra.concatenate([s[:10], s[10:]]) == s
        True
        """
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        for p in parts[1:]:
            if p.orders != first.orders or not all(
                    np.array_equal(p.wave[o], first.wave[o], equal_nan=True) for o in first.orders):
                raise ValueError("cannot concatenate spectra with different orders or wavelengths")
        def cat(name):
            return {o: np.concatenate([getattr(p, name)[o] for p in parts]) for o in first.orders}

        regs = set.intersection(*(set(p.regressors) for p in parts))
        return cls(np.concatenate([p.time for p in parts]), first.wave, cat("flux"), cat("var"),
                   cat("mask"),
                   int_numbers=np.concatenate([p.int_numbers for p in parts]),
                   regressors={k: np.concatenate([p.regressors[k] for p in parts]) for k in sorted(regs)},
                   meta=dict(first.meta), columns=first.columns)


# ------------------------------------------------------------------- x1dints
def _table_dtype(nwave: int):
    from asdf.tags.core.ndarray import asdf_datatype_to_numpy_dtype
    from stdatamodels.jwst import datamodels

    cols = datamodels.TSOSpecModel().schema["properties"]["spec_table"]["datatype"]
    return [(c["name"], asdf_datatype_to_numpy_dtype(c["datatype"]))
            + (() if c["name"] in _ROW_COLUMNS else ((nwave,),)) for c in cols]


def _spec_table(spec: Spectra, order: int):
    nint, nw = spec.nint, spec.nwave[order]
    tab = np.zeros(nint, dtype=_table_dtype(nw))
    for name in tab.dtype.names:
        if tab.dtype[name].base.kind == "f":
            tab[name] = np.nan
    tab["INT_NUM"] = spec.int_numbers
    tab["WAVELENGTH"] = spec.wave[order][None, :]
    tab["FLUX"] = spec.flux[order]
    with np.errstate(invalid="ignore"):
        tab["FLUX_ERROR"] = np.sqrt(spec.var[order])
    tab["DQ"] = np.where(spec.mask[order], 0, 1).astype(np.uint32)  # 1 = DO_NOT_USE
    width = spec.meta.get(f"WIDTH{order}")
    if width is not None:
        tab["NPIXELS"] = float(width)
    tab["N_ALONGDISP"] = nw
    tab["SEGMENT"] = 1
    tab["TDB-MID"] = spec.time - _MJD0
    return tab


def _model_meta(model, meta: dict) -> None:
    inst = model.meta.instrument
    for key, attr in (("INSTRUME", "name"), ("DETECTOR", "detector"), ("FILTER", "filter"),
                      ("PUPIL", "pupil"), ("GRATING", "grating")):
        if meta.get(key):
            try:
                setattr(inst, attr, str(meta[key]))
            except (ValueError, TypeError):  # a value outside the schema's enum
                log.debug("x1dints: %s=%r not accepted by the schema", key, meta[key])
    if meta.get("EXP_TYPE"):
        try:
            model.meta.exposure.type = str(meta["EXP_TYPE"])
        except (ValueError, TypeError):
            pass
    if meta.get("SUBARRAY"):
        try:
            model.meta.subarray.name = str(meta["SUBARRAY"])
        except (ValueError, TypeError):
            pass


def _int_times(spec: Spectra):
    dtype = [("integration_number", "i4"), ("int_start_MJD_UTC", "f8"), ("int_mid_MJD_UTC", "f8"),
             ("int_end_MJD_UTC", "f8"), ("int_start_BJD_TDB", "f8"), ("int_mid_BJD_TDB", "f8"),
             ("int_end_BJD_TDB", "f8")]
    tab = np.zeros(spec.nint, dtype=dtype)
    for name in tab.dtype.names[1:]:
        tab[name] = np.nan
    tab["integration_number"] = spec.int_numbers
    tab["int_mid_BJD_TDB"] = spec.time - _MJD0
    return tab


def _aux_hdus(spec: Spectra):
    from astropy.io import fits

    cols = [fits.Column(name="TIME_BJD_TDB", format="D", array=spec.time),
            fits.Column(name="INT_NUM", format="K", array=spec.int_numbers)]
    cols += [fits.Column(name=f"REG_{k}", format="D", array=v) for k, v in spec.regressors.items()]
    hdus = [fits.BinTableHDU.from_columns(cols, name="TSOC_TIME")]
    for o in spec.orders:
        hdus.append(fits.ImageHDU(spec.var[o], name="TSOC_VAR", ver=o))
        hdus.append(fits.ImageHDU(spec.mask[o].astype(np.uint8), name="TSOC_MASK", ver=o))
        extra = spec.columns.get(o, {})
        if extra:
            hdus.append(fits.BinTableHDU.from_columns(
                [fits.Column(name=k, format="D", array=v) for k, v in extra.items()],
                name="TSOC_COLS", ver=o))
    state = {"meta": _plain(spec.meta), "orders": list(spec.orders),
             "regressors": list(spec.regressors), "columns": {str(o): list(c) for o, c in spec.columns.items()}}
    blob = np.frombuffer(json.dumps(state).encode("utf-8"), dtype=np.uint8)
    hdus.append(fits.ImageHDU(blob, name="TSOC_STATE"))
    return hdus


def _plain(meta: dict) -> dict:
    out = {}
    for k, v in meta.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[str(k)] = v
    return out


def _reproducible_date(model) -> None:
    """Under ``SOURCE_DATE_EPOCH``, write that time as the file's DATE, not the clock's.

    jwst's models stamp ``meta.date`` with the current time whenever they are saved; the
    reproducible-builds convention asks for a fixed time instead.
    """
    if not reproducible():
        return
    original = model.on_save

    def on_save(init):
        original(init)
        model.meta.date = now_iso().split("+")[0]

    object.__setattr__(model, "on_save", on_save)


def _write_x1dints(spec: Spectra, path, overwrite: bool = False) -> str:
    from astropy.io import fits
    from stdatamodels.jwst import datamodels

    path = Path(path)
    if path.suffix != ".fits":
        raise ValueError(f"{path}: an x1dints file must end in .fits")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    model = datamodels.TSOMultiSpecModel()
    _reproducible_date(model)
    _model_meta(model, spec.meta)
    model.meta.filename = path.name
    model.int_times = _int_times(spec)
    disp = spec.meta.get("DISPAXIS")
    for o in spec.orders:
        sm = datamodels.TSOSpecModel()
        if reproducible():
            sm.meta.date = now_iso().split("+")[0]
        sm.spec_table = _spec_table(spec, o)
        sm.spectral_order = int(o)
        if disp in (1, 2):
            sm.dispersion_direction = int(disp)
        sm.spec_table.columns["WAVELENGTH"].unit = "um"
        for name in ("FLUX", "FLUX_ERROR"):
            sm.spec_table.columns[name].unit = str(spec.meta.get("BUNIT") or "")
        sm.spec_table.columns["TDB-MID"].unit = "d"
        model.spec.append(sm)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.fits")
    try:
        with open(tmp, "wb") as fh:
            model.to_fits(fh)
        model.close()
        with fits.open(tmp, mode="append") as hdul:
            for hdu in _aux_hdus(spec):
                hdul.append(hdu)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("wrote x1dints: %s (%d orders, %d integrations)", path, len(spec.orders), spec.nint)
    return str(path)


def _read_x1dints(path) -> Spectra:
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with fits.open(path) as hdul:
        tables = [h for h in hdul if h.name == "EXTRACT1D"]
        if not tables:
            raise ValueError(f"{path}: no EXTRACT1D extension; not an x1dints file")
        names = {(h.name, h.ver) for h in hdul}
        parts: dict[int, list] = {}
        for h in tables:
            parts.setdefault(int(h.header.get("SPORDER", 1)), []).append(h.data)
        wave, flux, var, mask, ints, tdb = {}, {}, {}, {}, None, None
        for o, datas in parts.items():
            rows = np.concatenate([np.asarray(d) for d in datas])
            wave[o] = np.array(rows["WAVELENGTH"][0], dtype=float)
            flux[o] = np.array(rows["FLUX"], dtype=float)
            var[o] = (np.array(hdul["TSOC_VAR", o].data, dtype=float) if ("TSOC_VAR", o) in names
                      else np.array(rows["FLUX_ERROR"], dtype=float) ** 2)
            mask[o] = (np.array(hdul["TSOC_MASK", o].data, dtype=bool) if ("TSOC_MASK", o) in names
                       else (np.array(rows["DQ"]) & 1) == 0)
            if ints is None:
                ints, tdb = np.array(rows["INT_NUM"], dtype=np.int64), np.array(rows["TDB-MID"], float)
        regressors, meta, columns = {}, {}, {}
        if ("TSOC_TIME", 1) in names:
            t = hdul["TSOC_TIME"].data
            time, ints = np.array(t["TIME_BJD_TDB"], float), np.array(t["INT_NUM"], np.int64)
            regressors = {n[4:]: np.array(t[n], float) for n in t.columns.names if n.startswith("REG_")}
            state = json.loads(bytes(hdul["TSOC_STATE"].data).decode("utf-8"))
            meta = state["meta"]
            for o in parts:
                if ("TSOC_COLS", o) in names:
                    c = hdul["TSOC_COLS", o].data
                    columns[o] = {n: np.array(c[n], float) for n in c.columns.names}
        else:
            time = tdb + _MJD0
            meta = {"SOURCE": path.name}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return Spectra(time, wave, flux, var, mask, int_numbers=ints, regressors=regressors,
                       meta=meta, columns=columns)
