"""Limb darkening from stellar models: tabulated coefficients per channel, as priors.

A limb-darkening table has one row per wavelength interval, columns
``wave_lo``, ``wave_hi`` (micron), the coefficients ``u1`` [, ``u2``, ``u3``,
``u4``] of the fit's law (quadratic: ``u1, u2``) and optionally their errors
``u1_err`` ... (an astropy Table, or any file astropy reads: ECSV, FITS, ...).
ExoTiC-LD, or any stellar-model tool, writes such a table; with exotic-ld and
its stellar-model data installed, :func:`exotic_ld_table` computes one.

:func:`ld_priors` maps the table onto channels: each channel's coefficient is
the mean of the rows overlapping it, weighted by the overlap (so a table on a
finer or a coarser grid than the channels both work; a channel the table does
not cover entirely is an error). The priors are fixed values, or normal with
the table's errors (the mean of the overlapping rows' errors: model
uncertainties are systematic, not averaged down), or with ``sigma`` where the
table has none. The result is the ``channel_priors`` of
:func:`~tsocontainer.lightcurves.fit.fit_channels`, which also takes the table
(or its path) directly::

    fit_channels(lc, priors, channel_priors="ld_nirspec.ecsv")      # fixed, or normal with errors
    fit_channels(lc, priors, channel_priors=ld_priors("ld.ecsv", lc.wave_lo, lc.wave_hi,
                                                      kind="normal", sigma=0.05))

Nothing here needs the network: exotic-ld is optional, and without its data
(``ld_data_path``) :func:`exotic_ld_table` refuses before exotic-ld could try
to download them.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

from tsocontainer._util import check_option

__all__ = ["read_ld_table", "ld_priors", "exotic_ld_table", "LD_NAMES"]

LD_NAMES = ("u1", "u2", "u3", "u4")
_COVER = 1e-6  # relative tolerance of the coverage of a channel by table rows


def read_ld_table(source):
    """Read and check a limb-darkening table.

    Parameters
    ----------
    source : astropy.table.Table, str or path-like
        A table, or a file astropy reads (ECSV, FITS, CSV with a header).

    Returns
    -------
    astropy.table.Table
        Rows sorted by ``wave_lo``.

    Raises
    ------
    ValueError
        Naming the file, when a column is missing, a row has ``wave_hi <=
        wave_lo`` or a non-finite coefficient, or an error is not positive.

    Examples
    --------
    >>> from astropy.table import Table
    >>> tab = read_ld_table(Table({"wave_lo": [3.0, 4.0], "wave_hi": [4.0, 5.0],
    ...                            "u1": [0.2, 0.1], "u2": [0.3, 0.3]}))
    >>> tab.colnames
    ['wave_lo', 'wave_hi', 'u1', 'u2']
    """
    from astropy.table import Table

    where = "the limb-darkening table"
    if isinstance(source, Table):
        tab = Table(source, copy=True)
    else:
        where = os.fspath(source)
        if not os.path.isfile(where):
            raise ValueError(f"limb-darkening table {where}: no such file")
        try:
            tab = Table.read(where)
        except Exception as exc:  # noqa: BLE001 - astropy raises many kinds for unreadable files
            raise ValueError(f"limb-darkening table {where}: cannot read it ({exc})") from None
    names = [n for n in LD_NAMES if n in tab.colnames]
    missing = [c for c in ("wave_lo", "wave_hi") if c not in tab.colnames] + ([] if names else ["u1"])
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; need wave_lo, wave_hi (micron), "
                         f"u1[, u2, u3, u4] and optionally u1_err ...; have {tab.colnames}")
    lo, hi = np.asarray(tab["wave_lo"], float), np.asarray(tab["wave_hi"], float)
    if not np.all(hi > lo):
        raise ValueError(f"{where}: every row needs wave_hi > wave_lo")
    for n in names:
        if not np.all(np.isfinite(np.asarray(tab[n], float))):
            raise ValueError(f"{where}: column {n} has non-finite values")
        if f"{n}_err" in tab.colnames and not np.all(np.asarray(tab[f"{n}_err"], float) > 0):
            raise ValueError(f"{where}: column {n}_err needs positive values")
    tab.sort("wave_lo")
    return tab


def _weights(tab, lo: float, hi: float, c: int) -> np.ndarray:
    wl, wh = np.asarray(tab["wave_lo"], float), np.asarray(tab["wave_hi"], float)
    over = np.clip(np.minimum(wh, hi) - np.maximum(wl, lo), 0, None)
    if over.sum() < (hi - lo) * (1 - _COVER):
        raise ValueError(f"channel {c} ({lo:.4f}-{hi:.4f} micron) is not covered by the limb-darkening "
                         f"table ({wl.min():.4f}-{wh.max():.4f} micron, {over.sum() / (hi - lo):.0%} "
                         "of the channel)")
    return over / over.sum()


def ld_priors(source, wave_lo, wave_hi, kind: str = "auto", sigma: float | None = None) -> dict:
    """Per-channel limb-darkening priors from a table (see the module docstring).

    Parameters
    ----------
    source : astropy.table.Table, str or path-like
        The table (see :func:`read_ld_table`).
    wave_lo, wave_hi : array_like (nchan,)
        Channel edges (micron).
    kind : str
        ``"auto"`` (normal where the table has errors, else fixed),
        ``"fixed"`` or ``"normal"``.
    sigma : float, optional
        Standard deviation of normal priors where the table has no errors,
        and the smallest one used where it has.

    Returns
    -------
    dict of str to list
        ``{"u1": [spec per channel], ...}``: ``channel_priors`` of
        :func:`~tsocontainer.lightcurves.fit.fit_channels`.

    Raises
    ------
    ValueError
        On a bad table, a channel the table does not cover, or
        ``kind="normal"`` without errors or ``sigma``.

    Examples
    --------
    Two model rows mapped onto one channel spanning both (a quarter and three
    quarters of it):

    >>> from astropy.table import Table
    >>> tab = Table({"wave_lo": [3.0, 3.5], "wave_hi": [3.5, 5.0], "u1": [0.4, 0.2],
    ...              "u2": [0.2, 0.2], "u1_err": [0.05, 0.05], "u2_err": [0.05, 0.05]})
    >>> ld_priors(tab, [3.0], [5.0])
    {'u1': [{'normal': [0.25, 0.05]}], 'u2': [{'normal': [0.2, 0.05]}]}
    >>> ld_priors(tab, [3.0], [5.0], kind="fixed")["u1"]
    [0.25]
    """
    check_option(kind, ("auto", "fixed", "normal"), "kind")
    tab = read_ld_table(source)
    lo, hi = np.atleast_1d(np.asarray(wave_lo, float)), np.atleast_1d(np.asarray(wave_hi, float))
    if lo.shape != hi.shape or not np.all(np.isfinite(lo) & np.isfinite(hi)):
        raise ValueError("channel edges wave_lo, wave_hi must be finite and of one length (light curves "
                         "without wavelengths cannot take a limb-darkening table)")
    names = [n for n in LD_NAMES if n in tab.colnames]
    have_err = all(f"{n}_err" in tab.colnames for n in names)
    normal = kind == "normal" or (kind == "auto" and have_err)
    if normal and not have_err and sigma is None:
        raise ValueError("normal limb-darkening priors need u*_err columns in the table or sigma")
    out = {n: [] for n in names}
    for c, (a, b) in enumerate(zip(lo, hi)):
        w = _weights(tab, a, b, c)
        for n in names:
            mu = round(float(np.sum(w * np.asarray(tab[n], float))), 12)
            if not normal:
                out[n].append(mu)
                continue
            sd = float(np.sum(w * np.asarray(tab[f"{n}_err"], float))) if have_err else float(sigma)
            sd = round(max(sd, sigma or 0.0), 12)
            out[n].append({"normal": [mu, sd]})
    return out


def exotic_ld_table(wave_lo, wave_hi, *, teff: float, logg: float, mh: float, mode: str,
                    ld_data_path=None, ld_model: str = "mps1", law: str = "quadratic",
                    stellar: dict | None = None):
    """Limb-darkening table computed with ExoTiC-LD (optional dependency and data).

    Parameters
    ----------
    wave_lo, wave_hi : array_like (nchan,)
        Channel edges (micron).
    teff, logg, mh : float
        Stellar effective temperature (K), log g (cgs) and metallicity [M/H].
    mode : str
        ExoTiC-LD instrument mode (``"JWST_NIRSpec_Prism"``,
        ``"JWST_NIRISS_SOSSo1"``, ...), or ``"custom"`` with
        ``stellar["throughput"]``.
    ld_data_path : str or path-like, optional
        ExoTiC-LD's data folder (stellar grids and throughputs); required
        unless ``ld_model="custom"``.
    ld_model : str
        ExoTiC-LD grid (``"mps1"``, ``"mps2"``, ``"kurucz"``, ``"stagger"``)
        or ``"custom"`` with ``stellar``.
    law : str
        ``"linear"``, ``"quadratic"`` or ``"nonlinear"`` (4 parameters).
    stellar : dict, optional
        A custom stellar model: ``wavelengths`` (Angstrom), ``mus`` (from 1
        down), ``intensities`` (n_wave, n_mu) and, for ``mode="custom"``,
        ``throughput`` (wavelengths, values).

    Returns
    -------
    astropy.table.Table
        ``wave_lo``, ``wave_hi``, ``u1``..., ``u1_err``... (the errors are
        those of ExoTiC-LD's fit of the law to the model intensities, not of
        the stellar model: give ``ld_priors`` a ``sigma`` for those).

    Raises
    ------
    ImportError
        When exotic-ld is not installed.
    ValueError
        When ``ld_data_path`` is missing for a grid model (ExoTiC-LD would
        otherwise try to download it).

    Examples
    --------
    A custom stellar model whose intensities follow the quadratic law (0.3, 0.2):

    >>> import pytest; _ = pytest.importorskip("exotic_ld")
    >>> wl, mus = np.linspace(1e4, 6e4, 50), np.linspace(1.0, 0.05, 20)
    >>> inten = np.tile(1 - 0.3 * (1 - mus) - 0.2 * (1 - mus) ** 2, (50, 1))
    >>> tab = exotic_ld_table([3.0], [4.0], teff=5000, logg=4.5, mh=0.0, mode="custom",
    ...                       ld_model="custom", stellar={"wavelengths": wl, "mus": mus,
    ...                       "intensities": inten, "throughput": (wl, np.ones(50))})
    >>> [round(float(tab[n][0]), 3) for n in ("u1", "u2")]
    [0.3, 0.2]
    """
    from astropy.table import Table

    check_option(law, ("linear", "quadratic", "nonlinear"), "law")
    if importlib.util.find_spec("exotic_ld") is None:
        raise ImportError("exotic_ld_table needs exotic-ld: pip install 'tsocontainer[ld]' (and its "
                          "stellar-model data for grid models)")
    from exotic_ld import StellarLimbDarkening

    stellar = dict(stellar or {})
    if ld_model != "custom" and (ld_data_path is None or not os.path.isdir(ld_data_path)):
        raise ValueError(f"exotic-ld data folder {ld_data_path!r} not found: grid model {ld_model!r} "
                         "needs ExoTiC-LD's stellar-model data on disk (tsocontainer never downloads)")
    sld = StellarLimbDarkening(M_H=mh, Teff=teff, logg=logg, ld_model=ld_model,
                               ld_data_path=os.fspath(ld_data_path or ""),
                               custom_wavelengths=stellar.get("wavelengths"),
                               custom_mus=stellar.get("mus"),
                               custom_stellar_model=stellar.get("intensities"), verbose=0)
    fn = {"linear": sld.compute_linear_ld_coeffs, "quadratic": sld.compute_quadratic_ld_coeffs,
          "nonlinear": sld.compute_4_parameter_non_linear_ld_coeffs}[law]
    thr = stellar.get("throughput") or (None, None)
    lo, hi = np.atleast_1d(np.asarray(wave_lo, float)), np.atleast_1d(np.asarray(wave_hi, float))
    rows = []
    for a, b in zip(lo, hi):
        u, err = fn(np.array([a, b]) * 1e4, mode, custom_wavelengths=thr[0], custom_throughput=thr[1],
                    return_sigmas=True)
        rows.append((a, b, *u, *np.maximum(err, 1e-9)))  # a law that fits exactly: err 0
    nu = len(rows[0]) // 2 - 1
    names = ["wave_lo", "wave_hi"] + [f"u{k + 1}" for k in range(nu)] + [f"u{k + 1}_err" for k in range(nu)]
    tab = Table(rows=rows, names=names)
    tab.meta.update({"source": "exotic-ld", "teff": teff, "logg": logg, "mh": mh, "mode": mode,
                     "ld_model": ld_model, "law": law})
    return tab
