"""Truth of simulated visits: the result object, truth files and noise limits.

Part of the simulator (:mod:`tsocontainer.sim.simulate`, which re-exports the
public names). ``truth.json`` and ``truth.fits`` are described there.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tsocontainer.sim import astro as simastro

__all__ = ["SimulatedVisit", "load_truth", "load_truth_arrays", "noise_limit", "binned_depth", "recovery",
           "priors_from_truth", "planet_yaml", "truth_json",
           "write_truth", "clear_previous"]


@dataclass
class SimulatedVisit:
    """Result of :func:`simulate_visit`.

    Attributes
    ----------
    files : list of str
        Segment files in segment order (empty when simulated in memory).
    truth : dict
        The ``truth.json`` content.
    folder : str or None
        Output folder (None in memory).
    models : list or None
        In-memory segments (``CubeModel``) when ``out`` was None.
    """

    files: list
    truth: dict = field(repr=False)
    folder: str | None = None
    models: list | None = field(default=None, repr=False)
    _arrays: dict | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        where = self.folder if self.folder is not None else "in memory"
        return (f"SimulatedVisit(mode={self.truth.get('mode')!r}, nint={self.truth.get('nint')}, "
                f"nseg={self.truth.get('nseg')}, seed={self.truth.get('seed')}, {where})")

    def truth_arrays(self) -> dict:
        """Truth arrays (the ``truth.fits`` content) as a dict of numpy arrays.

        Returns
        -------
        dict
            ``TRACE``, ``COSMIC_RAYS``, ``BADPIX``, ``SHIFTS`` (structured
            arrays for the tables), ``BACKGROUND``, ``CONTAMINANTS``, ``MODEL``,
            ``WAVE``, ``LIGHTCURVE``, ``REFPIX``.
        """
        if self._arrays is None:
            self._arrays = load_truth_arrays(self.folder)
        return self._arrays

    def noise_limit(self, wave_bins=None, aperture=None, order: int = 1):
        """Photon + read noise limit per integration (ppm); see :func:`noise_limit`."""
        return noise_limit(self, wave_bins=wave_bins, aperture=aperture, order=order)



# ---------------------------------------------------------------- noise limit
def _column_signal(arrays: dict, info: dict, aperture, order: int):
    """Wavelength, star rate and variance per column of ``order`` inside the aperture."""
    orders = list(info["orders"])
    if order not in orders:
        raise ValueError(f"order {order} not simulated; available: {orders}")
    k = orders.index(order)
    models = np.asarray(arrays["MODEL"], float)
    sky = (np.asarray(arrays["BACKGROUND"], float) + np.asarray(arrays["CONTAMINANTS"], float))
    live = np.asarray(arrays["REFPIX"]) == 0
    total = models.sum(axis=0) + sky * live
    signal = models[k]
    if info["dispersion_axis"] == 0:  # work with the dispersion along axis 1
        total, signal, live = total.T, signal.T, live.T
    trace = np.asarray(arrays["TRACE"][k], float)
    seen = np.isfinite(trace).sum(axis=0)
    centre = np.where(seen > 0, np.nansum(trace, axis=0) / np.maximum(seen, 1), np.nan)
    wave = np.asarray(arrays["WAVE"][k], float)
    half = float(info["aperture_halfwidth_px"] if aperture is None else aperture)
    rows = np.arange(signal.shape[0])[:, None]
    inap = (np.abs(rows - centre[None, :]) <= half) & live & np.isfinite(centre)[None, :]
    s_col = (signal * inap).sum(axis=0)
    v_col = ((total / info["electrons_per_dn_s"] + info["var_rnoise"]) * inap).sum(axis=0)
    return wave, s_col, v_col


def _bin_index(wave, s_col, wave_bins):
    ok = np.isfinite(wave) & (s_col > 0)
    if wave_bins is None:
        edges = np.array([np.min(wave[ok]), np.max(wave[ok]) * (1 + 1e-12)])
    elif np.ndim(wave_bins) == 0:
        edges = np.linspace(np.min(wave[ok]), np.max(wave[ok]) * (1 + 1e-12), int(wave_bins) + 1)
    else:
        edges = np.asarray(wave_bins, float)
    idx = np.searchsorted(edges, np.where(ok, wave, np.nan), side="right") - 1
    use = ok & (idx >= 0) & (idx < edges.size - 1)
    return idx, use, edges.size - 1


def _limit_from(arrays: dict, info: dict, wave_bins, aperture, order: int):
    """Photon + read-noise precision (ppm) per bin; see :func:`noise_limit`."""
    wave, s_col, v_col = _column_signal(arrays, info, aperture, order)
    idx, use, nb = _bin_index(wave, s_col, wave_bins)
    s = np.bincount(idx[use], weights=s_col[use], minlength=nb)
    v = np.bincount(idx[use], weights=v_col[use], minlength=nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0, 1e6 * np.sqrt(v) / s, np.nan)


def _resolve(truth_or_folder):
    if isinstance(truth_or_folder, SimulatedVisit):
        truth, arrays = truth_or_folder.truth, truth_or_folder.truth_arrays()
    elif isinstance(truth_or_folder, dict):
        raise TypeError("this needs the truth arrays: pass the SimulatedVisit returned "
                        "by simulate_visit, or the output folder, not the truth.json dict")
    else:
        folder = Path(truth_or_folder)
        folder = folder.parent if folder.is_file() else folder
        truth, arrays = load_truth(folder), load_truth_arrays(folder)
    info = dict(truth["noise"], orders=truth["orders"],
                dispersion_axis=truth["instrument"]["dispersion_axis"])
    return truth, arrays, info


def binned_depth(truth_or_folder, wave_bins, aperture=None, order: int = 1):
    """Injected depth (ppm) of wavelength bins, weighted as a binned light curve is.

    A channel's light curve is the sum of its columns' fluxes, so its depth is
    the star-rate-weighted mean of the columns' injected depths.

    Parameters
    ----------
    truth_or_folder : SimulatedVisit or path-like
        The simulated visit or its folder.
    wave_bins : int or array_like
        Number of equal bins or bin edges (micron); None for white light.
    aperture : float, optional
        Extraction half-width used for the weights (default: the mode's).
    order : int
        Spectral order.

    Returns
    -------
    ndarray
        Depth (ppm) per bin; NaN for bins without columns.
    """
    truth, arrays, info = _resolve(truth_or_folder)
    wave, s_col, _ = _column_signal(arrays, info, aperture, order)
    ds = truth["depth_spectrum"]
    depth_col = np.interp(wave, ds["wave_um"], ds["depth_ppm"])
    idx, use, nb = _bin_index(wave, s_col, wave_bins)
    s = np.bincount(idx[use], weights=s_col[use], minlength=nb)
    sd = np.bincount(idx[use], weights=(s_col * depth_col)[use], minlength=nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0, sd / s, np.nan)


def recovery(truth_or_folder, white, spectrum=None) -> dict:
    """A fit's white depth and channel depths against the injected ones.

    Parameters
    ----------
    truth_or_folder : SimulatedVisit or path-like
        The simulated visit or its folder.
    white : FitResult
        White-light fit (``depth_ppm``, ``wave_lo``, ``wave_hi``).
    spectrum : TransmissionSpectrum, optional
        Channel depths and errors (``depth``, ``err``, ``wave_lo``, ``wave_hi``).

    Returns
    -------
    dict
        ``depth``, ``err`` (mean of the two sides), ``injected`` (ppm), ``pull`` (in
        ``err``), and with a spectrum ``pulls``: the channels' finite
        ``(depth - injected) / err``.

    Examples
    --------
    A white depth one error above the injected one:

    >>> import tempfile
    >>> from types import SimpleNamespace
    >>> from tsocontainer.sim.simulate import simulate_visit
    >>> v = simulate_visit("miri-lrs", 4, seed=1, out=tempfile.mkdtemp())
    >>> inj = float(binned_depth(v, [5.0, 10.0])[0])
    >>> w = SimpleNamespace(depth_ppm=(inj + 100.0, 100.0, 100.0), wave_lo=5.0, wave_hi=10.0)
    >>> round(recovery(v, w)["pull"], 6)
    1.0
    """
    depth, lo, hi = white.depth_ppm
    injected = float(binned_depth(truth_or_folder, [white.wave_lo, white.wave_hi * (1 + 1e-9)])[0])
    err = 0.5 * (lo + hi)
    out = {"depth": float(depth), "err": float(err), "injected": injected,
           "pull": (float(depth) - injected) / err}
    if spectrum is not None:
        truth = np.array([binned_depth(truth_or_folder, [a, b])[0]
                          for a, b in zip(spectrum.wave_lo, spectrum.wave_hi)])
        pulls = (np.asarray(spectrum.depth) - truth) / np.asarray(spectrum.err)
        out["pulls"] = pulls[np.isfinite(pulls)]
    return out


def priors_from_truth(truth: dict, time_offset: float | None = None) -> dict:
    """Fit priors for a simulated visit: period fixed, broad priors on the rest.

    The orbital parameters get uniform priors several times wider than any
    plausible error around the injected values (t0 +/- 0.02 d, a/Rs +/- 30 %,
    inclination 80-90 deg), Rp/Rs uniform in [0, 0.5] and limb darkening free
    (Kipping q1, q2 uniform), as a user with a published ephemeris would set them.
    For an eclipse: ``t_sec`` +/- 0.02 d, ``fp_fs`` uniform in [-0.01, 0.05] and
    Rp/Rs fixed.

    Parameters
    ----------
    truth : dict
        ``truth.json`` content.
    time_offset : float, optional
        Added to the truth times to match the light-curve times (BJD_TDB). Default:
        0 for a truth in BJD_TDB (``params.time_scale == "BJD_TDB"``), 2400000.5 for
        an older truth in BJD_TDB - 2400000.5.

    Returns
    -------
    dict
        Priors for :func:`tsocontainer.lightcurves.fit.fit_white` (the content of the
        ``planet.yaml`` written beside ``truth.json``).

    Examples
    --------
    >>> truth = {"params": {"t0": 2460300.75, "per": 2.0, "a_rs": 11.4, "inc": 88.5,
    ...          "rp_rs_white": 0.145, "event": "transit", "time_scale": "BJD_TDB"}}
    >>> priors_from_truth(truth)["t0"]
    {'uniform': [2460300.73, 2460300.77], 'init': 2460300.75}
    """
    p = truth["params"]
    if time_offset is None:
        time_offset = (simastro.BJD_MJD_OFFSET
                       if p.get("time_scale") == "BJD_TDB - 2400000.5" else 0.0)
    out = {"per": p["per"],
           "a_rs": {"uniform": [0.7 * p["a_rs"], 1.3 * p["a_rs"]], "init": p["a_rs"]},
           "inc": {"uniform": [80.0, 90.0], "init": min(p["inc"], 89.9)}}
    if p.get("event", "transit") == "eclipse":
        ts = p["t_secondary"] + time_offset
        fp = float(truth.get("white_light_depth_ppm", 0.0)) * 1e-6
        out.update({"t_sec": {"uniform": [ts - 0.02, ts + 0.02], "init": ts},
                    "rp_rs": p["rp_rs"], "fp_fs": {"uniform": [-0.01, 0.05], "init": fp}})
        return out
    t0 = p["t0"] + time_offset
    return {"t0": {"uniform": [t0 - 0.02, t0 + 0.02], "init": t0}, **out,
            "rp_rs": {"uniform": [0.0, 0.5], "init": p["rp_rs_white"]}}


def planet_yaml(truth: dict) -> str:
    """The ``planet.yaml`` text of a simulated visit: :func:`priors_from_truth` as YAML.

    Parameters
    ----------
    truth : dict
        ``truth.json`` content.

    Returns
    -------
    str
        YAML for ``tsocontainer run FILES --priors planet.yaml``.

    Examples
    --------
    >>> truth = {"mode": "soss", "seed": 0, "params": {"t0": 2460300.75, "per": 2.0,
    ...          "a_rs": 11.4, "inc": 88.5, "rp_rs_white": 0.145, "time_scale": "BJD_TDB"}}
    >>> print(planet_yaml(truth).splitlines()[4])
      uniform: [2460300.73, 2460300.77]
    """
    import yaml

    p = truth["params"]
    head = (f"# fit priors of the simulated visit {truth.get('mode', '')} (seed "
            f"{truth.get('seed', '?')}), from its truth.json: times in BJD_TDB, period\n"
            "# fixed, broad uniform priors around the injected orbit.\n"
            f"# use: tsocontainer run FILES --priors planet.yaml (event: "
            f"{p.get('event', 'transit')})\n")
    priors = json.loads(json.dumps(priors_from_truth(truth)))  # numpy scalars -> floats
    return head + yaml.safe_dump(priors, sort_keys=False, default_flow_style=None)


def noise_limit(truth_or_folder, wave_bins=None, aperture=None, order: int = 1):
    """Photon + read-noise-limited precision per integration (ppm).

    The limit of a bin is ``sqrt(sum VAR) / sum S`` over the pixels of the
    bin's columns within ``aperture`` pixels of the (mean) trace centre, where
    ``S`` is the out-of-transit star rate of ``order`` and ``VAR`` the Poisson
    variance of everything in the pixel (all orders, background,
    contaminants) plus the read-noise variance; reference pixels are excluded.
    No 1/f noise, cosmic rays, bad pixels or systematics: the floor an
    analysis can approach.

    Parameters
    ----------
    truth_or_folder : SimulatedVisit or path-like
        The truth of a simulated visit: the :class:`SimulatedVisit` returned by
        :func:`~tsocontainer.sim.simulate.simulate_visit`, or its output folder (or
        ``truth.json`` path).
    wave_bins : None, int or array_like
        None: one bin with all the order's columns (white light); an int:
        that many equal bins over the order's range; an array: bin edges
        (micron, increasing).
    aperture : float, optional
        Half-width (pixels) of the extraction box (default: the mode's, in
        ``truth["noise"]["aperture_halfwidth_px"]``).
    order : int
        Spectral order.

    Returns
    -------
    ndarray
        Precision (ppm) per bin; NaN for bins without columns.

    Examples
    --------
    >>> vis = simulate_visit("nirspec-prism", nint=10)  # doctest: +SKIP
    >>> vis.noise_limit(wave_bins=[1.0, 2.0, 3.0])  # doctest: +SKIP
    """
    truth, arrays, info = _resolve(truth_or_folder)
    return _limit_from(arrays, info, wave_bins, aperture, order)


def _default_bins(arrays, info, width):
    """Channel edges of ``width`` micron over order 1's illuminated wavelengths."""
    wave = np.asarray(arrays["WAVE"][0], float)
    model = np.asarray(arrays["MODEL"][0], float)
    col = model.sum(axis=0 if info["dispersion_axis"] == 1 else 1)
    ok = np.isfinite(wave) & (col > 0.01 * col.max())
    lo = np.ceil(np.min(wave[ok]) / width) * width
    hi = np.floor(np.max(wave[ok]) / width) * width
    n = int(round((hi - lo) / width))
    if n < 1:  # a crop narrower than one channel: one channel over what is there
        return np.array([np.min(wave[ok]), np.max(wave[ok])])
    return np.round(lo + width * np.arange(n + 1), 6)


def truth_json(v, files, arrays, systematics_on) -> dict:
    """The ``truth.json`` content of a simulated visit ``v`` (a ``simulate._Visit``)."""
    from tsocontainer._version import __version__

    models = arrays["MODEL"]
    white_depth, u_white = v.white_light(models)
    p = v.params
    law = v.opts["limb_darkening"]
    u1, u2 = simastro.limb_darkening(v.depth_wave, law)
    info = dict(orders=[o.order for o in v.scene.orders], dispersion_axis=v.disp_axis,
                aperture_halfwidth_px=float(v.cfg["aperture"]),
                electrons_per_dn_s=v.escale, var_rnoise=v.var_rn)
    edges = _default_bins(arrays, info, v.cfg["channel_width"])
    white_limit = float(_limit_from(arrays, info, None, None, info["orders"][0])[0])
    channel = _limit_from(arrays, info, edges, None, info["orders"][0])
    rp_white = float(np.sqrt(white_depth * 1e-6)) if v.opts["event"] == "transit" else p["rp_rs"]
    t0 = p["t0"] + simastro.BJD_MJD_OFFSET  # INT_TIMES are MJD-based; the truth is BJD_TDB
    opts = {k: (list(val) if isinstance(val, tuple) else val) for k, val in v.opts.items()
            if k not in ("progress", "block") and not (k == "subarray" and val is None)}
    cfg = v.cfg
    return {
        "format": "tsocontainer simulated visit truth", "version": 1,
        "tsocontainer_version": __version__, "mode": v.name, "seed": v.seed, "nint": v.nint,
        "nseg": len(files), "files": [Path(f).name for f in files], "noiseless": v.noiseless,
        "orders": info["orders"], "options": opts,
        "instrument": {k: cfg[k] for k in ("instrument", "exp_type", "detector", "filter",
                                           "pupil", "grating", "subarray", "tgroup", "ngroups",
                                           "nresets", "gain", "read_noise", "saturation")}
        | {"pwcpos": v.pwcpos, "dispersion_axis": v.disp_axis, "onef_axis": v.onef_axis,
           "crop": list(v.crop), "shape": list(v.shape), "effinttm_s": v.t_int,
           "trace_axis": "x centre per row" if v.disp_axis == 0 else "y centre per column"},
        "params": {"t0": t0, "per": p["per"], "a_rs": p["a_rs"], "inc": p["inc"],
                   "ecc": p["ecc"], "w": p["w"], "rp_rs": p["rp_rs"], "rp_rs_white": rp_white,
                   "event": v.opts["event"], "limb_darkening_law": law, "u": u_white,
                   "t_secondary": t0 + 0.5 * p["per"], "time_scale": "BJD_TDB"},
        "limb_darkening": {"law": law, "wave_um": v.depth_wave.tolist(), "u1": u1.tolist(),
                           "u2": u2.tolist()},
        "depth_spectrum": {"wave_um": v.depth_wave.tolist(), "depth_ppm": v.depth_ppm.tolist(),
                           "source": v.depth_source,
                           "quantity": "fp (ppm)" if v.opts["event"] == "eclipse"
                           else "(Rp/Rs)^2 (ppm)"},
        "white_light_depth_ppm": white_depth, "white_light_limit_ppm": white_limit,
        "white_light": {"order": info["orders"][0], "weights": "detected out-of-transit star "
                        "counts per column of the order", "aperture_halfwidth_px": cfg["aperture"]},
        "channel_limits": {"order": info["orders"][0], "bin_edges_um": edges.tolist(),
                           "wave_um": (0.5 * (edges[1:] + edges[:-1])).tolist(),
                           "limit_ppm": channel.tolist(),
                           "aperture_halfwidth_px": cfg["aperture"]},
        "star": {"teff": cfg["teff"], "peak_fraction": v.opts["peak_fraction"],
                 "scale": v.scene.star_scale},
        "systematics": dict(v.sys_amps, enabled=systematics_on),
        "noise": {"read_noise_dn": cfg["read_noise"], "gain": cfg["gain"],
                  "var_rnoise": v.var_rn, "electrons_per_dn_s": v.escale,
                  "one_over_f_rms_dn_s": v.onef_rms, "one_over_f_axis": v.onef_axis,
                  "cosmic_ray_rate_per_pix_s": 0.0 if v.noiseless else
                  float(v.opts["noise"]["cosmic_rays"]),
                  "n_cosmic_rays": int(arrays["COSMIC_RAYS"].size),
                  "poisson": bool(v.opts["noise"]["poisson"]) and not v.noiseless,
                  "read": bool(v.opts["noise"]["read"]) and not v.noiseless,
                  "aperture_halfwidth_px": float(cfg["aperture"]),
                  "n_badpix": int(arrays["BADPIX"].size), "n_saturated": v.n_saturated},
        "background": {"scale": cfg["background"], "mean_dn_s": float(v.bkg.mean()),
                       "contaminants": float(v.opts["contaminants"] or 0.0)
                       if v.name == "soss" else 0.0},
        "arrays": "truth.fits",
    }


def write_truth(folder: Path, truth: dict, arrays: dict) -> None:
    """Write ``truth.fits``, ``truth.json`` and ``planet.yaml`` into ``folder`` (atomically)."""
    from astropy.io import fits

    hdus = [fits.PrimaryHDU()]
    hdus[0].header["MODE"] = truth["mode"]
    hdus[0].header["SEED"] = truth["seed"]
    hdus[0].header["NINT"] = truth["nint"]
    for name, arr in arrays.items():
        if arr.dtype.names:
            hdus.append(fits.BinTableHDU(np.asarray(arr), name=name))
        else:
            hdus.append(fits.ImageHDU(arr, name=name))
    tmp = folder / ".truth.fits.tmp"
    fits.HDUList(hdus).writeto(tmp, overwrite=True)
    os.replace(tmp, folder / "truth.fits")
    tmp = folder / ".truth.json.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(truth, fh, indent=1)
    os.replace(tmp, folder / "truth.json")
    tmp = folder / ".planet.yaml.tmp"
    tmp.write_text(planet_yaml(truth), encoding="utf-8")
    os.replace(tmp, folder / "planet.yaml")


def load_truth(folder) -> dict:
    """Read ``truth.json`` of a simulated visit.

    Parameters
    ----------
    folder : path-like
        Output folder of :func:`simulate_visit` (or the ``truth.json`` path).

    Returns
    -------
    dict
    """
    path = Path(folder)
    path = path if path.is_file() else path / "truth.json"
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_truth_arrays(folder) -> dict:
    """Read ``truth.fits`` of a simulated visit into a dict of numpy arrays.

    Parameters
    ----------
    folder : path-like
        Output folder of :func:`simulate_visit`.

    Returns
    -------
    dict
        Images as arrays, tables as numpy record arrays (see the module docstring).
    """
    from astropy.io import fits

    path = Path(folder)
    path = path.parent / "truth.fits" if path.is_file() else path / "truth.fits"
    out = {}
    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul[1:]:
            data = hdu.data
            if isinstance(hdu, fits.BinTableHDU):
                arr = np.array(data)
                # FITS strings come back as bytes: return them as str, as written
                dtype = [(n, f"U{arr.dtype[n].itemsize}" if arr.dtype[n].kind == "S"
                          else arr.dtype[n].newbyteorder("=")) for n in arr.dtype.names]
                out[hdu.name] = arr.astype(dtype).view(np.recarray)
            else:
                out[hdu.name] = np.array(data)
    return out


def clear_previous(folder: Path) -> None:
    """Remove the segments of an earlier simulation in ``folder`` (listed in its truth)."""
    old = folder / "truth.json"
    if not old.is_file():
        return
    try:
        names = load_truth(folder).get("files", [])
    except (OSError, ValueError):
        return
    for name in names:
        (folder / Path(name).name).unlink(missing_ok=True)
