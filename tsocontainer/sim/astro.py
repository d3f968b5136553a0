"""Times, planet, transit/eclipse light curves and systematics of the simulator.

Used by :mod:`tsocontainer.sim.simulate`.

* **Times.** Integrations follow each other every ``(ngroups + nresets) *
  tgroup`` seconds from ``start_mjd`` (UTC); each lasts ``ngroups * tgroup``.
  BJD_TDB is UTC -> TDB plus the light-travel time to the barycentre for a
  geocentric observer (the same convention as :mod:`tsocontainer.io.segments`).
* **Planet.** A circular orbit with impact parameter 0.3 and ``a/Rs`` = 11.4
  by default; unless ``per`` is given the period is set so that the transit
  (first to fourth contact) lasts ``transit_fraction`` of the visit, centred
  on the visit (so even a 20-integration test cube holds a whole transit).
* **Depth spectrum.** Default: ``rp_rs**2`` plus a weak Rayleigh-like slope and
  Gaussian molecular-band bumps of 100-500 ppm (H2O, CH4, CO2, CO, SO2, NH3),
  tabulated on a fine grid; or a user table. The depth of a column is
  ``np.interp(wave, wave_um, depth_ppm)`` of that table (the truth contract).
* **Limb darkening.** Quadratic, ``u1``/``u2`` varying smoothly with
  wavelength (illustrative values of the size of those of a Sun-like star,
  not from a stellar model), or none.
* **Light curves.** batman (Kreidberg 2015). For quadratic limb darkening the
  flux deficit times ``1 - u1/3 - u2/6`` is linear in ``u1, u2``; three batman
  curves per radius give it exactly, and the radius dependence is linearly
  interpolated in ``(Rp/Rs)**2`` on a grid of 64 radii spanning the spectrum
  (exact in full transit, < 0.01 ppm elsewhere). Eclipses: a batman secondary
  eclipse of the white-light planet scaled by ``fp`` per column.
"""
from __future__ import annotations

import numpy as np

__all__ = ["BJD_MJD_OFFSET", "visit_times", "planet_params", "default_depth_spectrum",
           "read_depth_table", "limb_darkening", "light_curves", "eclipse_curves", "systematics_series",
           "SYSTEMATICS_DEFAULTS", "PARAM_KEYS"]

#: full BJD_TDB minus the MJD-based BJD_TDB of INT_TIMES (days)
BJD_MJD_OFFSET = 2400000.5
#: user-settable planet parameters (``params=`` option)
PARAM_KEYS = ("t0", "per", "a_rs", "inc", "ecc", "w", "rp_rs", "b")

#: default amplitudes of the systematics (all switchable, all written to the truth)
SYSTEMATICS_DEFAULTS = {
    "trend_ppm": -300.0,       # linear trend: total change over the visit (ppm)
    "ramp_ppm": -1500.0,       # exponential ramp amplitude at the first integration (ppm)
    "ramp_tau": 0.06,          # ramp e-folding time, fraction of the visit
    "jitter_x": 0.01,          # rms x (dispersion) jitter per integration (px)
    "jitter_y": 0.01,          # rms y (cross-dispersion) jitter per integration (px)
    "drift_x": 0.03,           # linear x drift over the visit (px)
    "drift_y": 0.05,           # linear y drift over the visit (px)
    "width_rms": 0.003,        # rms fractional PSF-width change per integration
    "width_drift": 0.01,       # linear fractional PSF-width change over the visit
    "tilt_time": 0.7,          # tilt event time, fraction of the visit
    "tilt_dy": 0.05,           # trace step at the tilt event (px)
    "tilt_ppm": -200.0,        # flux step at the tilt event (ppm)
}

# illustrative quadratic limb-darkening coefficients versus wavelength (micron)
_LD_WAVE = np.array([0.5, 0.6, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0])
_LD_U1 = np.array([0.50, 0.45, 0.32, 0.17, 0.11, 0.06, 0.03, 0.02])
_LD_U2 = np.array([0.24, 0.25, 0.27, 0.27, 0.24, 0.18, 0.10, 0.08])

# molecular bumps of the default transmission spectrum: centre, amplitude (ppm), sigma (micron)
_BUMPS = (
    (0.95, 120.0, 0.03), (1.15, 200.0, 0.05), (1.40, 350.0, 0.08), (1.85, 350.0, 0.10),
    (2.70, 450.0, 0.15), (3.30, 200.0, 0.10), (4.05, 150.0, 0.04), (4.30, 500.0, 0.10),
    (4.70, 200.0, 0.15), (6.30, 300.0, 0.40), (7.30, 150.0, 0.30), (10.50, 100.0, 0.40),
)


def visit_times(nint: int, tgroup: float, ngroups: int, nresets: int, start_mjd: float,
                ra: float, dec: float) -> dict:
    """Start, mid and end of every integration in MJD UTC and BJD_TDB (MJD form).

    Parameters
    ----------
    nint : int
        Number of integrations.
    tgroup : float
        Group time (s).
    ngroups, nresets : int
        Groups per integration and resets between integrations.
    start_mjd : float
        Start of the first integration (MJD, UTC).
    ra, dec : float
        Target coordinates (deg) for the barycentric correction.

    Returns
    -------
    dict
        ``int_start/mid/end_MJD_UTC`` and ``int_start/mid/end_BJD_TDB`` arrays.
    """
    import astropy.units as u
    from astropy.coordinates import EarthLocation, SkyCoord
    from astropy.time import Time
    from astropy.utils import iers

    cadence = (ngroups + nresets) * tgroup / 86400.0
    start = start_mjd + np.arange(nint) * cadence
    end = start + ngroups * tgroup / 86400.0
    out = {"int_start_MJD_UTC": start, "int_mid_MJD_UTC": 0.5 * (start + end),
           "int_end_MJD_UTC": end}
    coord = SkyCoord(ra, dec, unit="deg")
    geocenter = EarthLocation.from_geocentric(0, 0, 0, unit=u.m)
    with iers.conf.set_temp("auto_download", False):
        for key in ("start", "mid", "end"):
            utc = Time(out[f"int_{key}_MJD_UTC"], format="mjd", scale="utc")
            ltt = utc.light_travel_time(coord, kind="barycentric", location=geocenter)
            out[f"int_{key}_BJD_TDB"] = (utc.tdb + ltt).mjd
    return out


def _t14(per, a_rs, inc, k):
    b = a_rs * np.cos(np.radians(inc))
    arg = np.sqrt(max((1 + k) ** 2 - b ** 2, 0.0)) / (a_rs * np.sin(np.radians(inc)))
    return per / np.pi * np.arcsin(min(arg, 1.0))


def planet_params(user: dict, t_mid: float, duration: float, transit_fraction: float) -> dict:
    """Planet parameters: defaults, user overrides, and the derived period.

    Parameters
    ----------
    user : dict
        Overrides, keys in :data:`PARAM_KEYS` (``b`` sets ``inc``).
    t_mid : float
        Mid-visit time (BJD_TDB, MJD form): the default ``t0``.
    duration : float
        Visit duration (days).
    transit_fraction : float
        Transit duration / visit duration when ``per`` is not given.

    Returns
    -------
    dict
        ``t0, per, a_rs, inc, ecc, w, rp_rs``.
    """
    bad = sorted(set(user) - set(PARAM_KEYS))
    if bad:
        raise ValueError(f"unknown planet parameter(s) {', '.join(bad)}; allowed: "
                         f"{', '.join(PARAM_KEYS)}")
    p = {"t0": t_mid, "a_rs": 11.4, "ecc": 0.0, "w": 90.0, "rp_rs": 0.145}
    p.update({k: float(v) for k, v in user.items() if k not in ("b",)})
    if "inc" not in user:
        b = float(user.get("b", 0.3))
        p["inc"] = float(np.degrees(np.arccos(b / p["a_rs"])))
    if "per" not in user:
        unit = _t14(1.0, p["a_rs"], p["inc"], p["rp_rs"])
        if not unit > 0:
            raise ValueError("the planet does not transit (impact parameter too large)")
        p["per"] = transit_fraction * duration / unit
    return p


def default_depth_spectrum(wave_range, rp_rs: float, npts: int = 4000):
    """Default transmission spectrum on a fine grid.

    Parameters
    ----------
    wave_range : (float, float)
        Wavelength range (micron).
    rp_rs : float
        Baseline planet-to-star radius ratio.
    npts : int
        Grid points.

    Returns
    -------
    wave_um, depth_ppm : ndarray
    """
    w = np.linspace(wave_range[0], wave_range[1], npts)
    depth = rp_rs ** 2 * 1e6 + 150.0 * (0.6 / w) ** 4
    for centre, amp, sigma in _BUMPS:
        depth = depth + amp * np.exp(-0.5 * ((w - centre) / sigma) ** 2)
    return w, depth


def default_eclipse_spectrum(wave_range, rp_rs: float, teff: float, tp: float = 1400.0,
                             npts: int = 4000):
    """Default eclipse depth (planet/star flux, ppm): two blackbodies."""
    w = np.linspace(wave_range[0], wave_range[1], npts)
    x_s, x_p = 14387.77 / (w * teff), 14387.77 / (w * tp)
    return w, 1e6 * rp_rs ** 2 * np.expm1(x_s) / np.expm1(x_p)


def read_depth_table(spec):
    """Depth table from a path (two columns: micron, ppm) or a pair of arrays.

    Parameters
    ----------
    spec : str, path-like, or (wave_um, depth_ppm)
        The table.

    Returns
    -------
    wave_um, depth_ppm : ndarray
        Sorted by wavelength.

    Raises
    ------
    ValueError
        Fewer than two rows, non-finite or negative values.
    """
    if isinstance(spec, (str, bytes)) or hasattr(spec, "__fspath__"):
        arr = np.loadtxt(spec, comments="#", delimiter=None, ndmin=2, usecols=(0, 1))
        wave, depth = arr[:, 0], arr[:, 1]
    else:
        wave, depth = (np.asarray(a, float).ravel() for a in spec)
    if wave.size < 2 or wave.shape != depth.shape:
        raise ValueError("depth spectrum needs two equal-length columns with >= 2 rows "
                         "(wavelength in micron, depth in ppm)")
    if not (np.all(np.isfinite(wave)) and np.all(np.isfinite(depth))) or np.any(depth < 0):
        raise ValueError("depth spectrum has non-finite or negative values")
    order = np.argsort(wave)
    return wave[order], depth[order]


def limb_darkening(wave_um, law: str = "quadratic"):
    """Quadratic limb-darkening coefficients ``(u1, u2)`` at ``wave_um``.

    Parameters
    ----------
    wave_um : array_like
        Wavelength (micron).
    law : {"quadratic", "none"}
        ``none`` gives zeros (a uniform stellar disk).

    Returns
    -------
    u1, u2 : ndarray
    """
    w = np.asarray(wave_um, float)
    if law == "none":
        return np.zeros_like(w), np.zeros_like(w)
    lw = np.log(np.clip(np.nan_to_num(w, nan=1.0), _LD_WAVE[0], _LD_WAVE[-1]))
    return np.interp(lw, np.log(_LD_WAVE), _LD_U1), np.interp(lw, np.log(_LD_WAVE), _LD_U2)


def _batman(times, p, rp, u, secondary=False):
    import batman

    bp = batman.TransitParams()
    bp.t0, bp.per, bp.rp, bp.a = p["t0"], p["per"], rp, p["a_rs"]
    bp.inc, bp.ecc, bp.w = p["inc"], p["ecc"], p["w"]
    bp.limb_dark, bp.u = "quadratic", list(u)
    bp.fp, bp.t_secondary = 1.0, p["t0"] + 0.5 * p["per"]
    model = batman.TransitModel(bp, times, transittype="secondary" if secondary else "primary")
    return model.light_curve(bp)


def light_curves(times, p, depth_ppm, u1, u2, nk: int = 64):
    """Transit light curves of many columns at once.

    Parameters
    ----------
    times : ndarray, shape (nint,)
        BJD_TDB mid-times.
    p : dict
        Planet parameters (:func:`planet_params`).
    depth_ppm, u1, u2 : ndarray, shape (ncol,)
        Depth and limb darkening of each column.
    nk : int
        Radii on the interpolation grid.

    Returns
    -------
    ndarray, shape (nint, ncol)
        Relative flux.
    """
    k2 = np.asarray(depth_ppm, float) * 1e-6
    lo, hi = float(k2.min()), float(k2.max())
    grid = np.linspace(lo, hi, nk) if hi > lo else np.array([lo, lo + 1e-12])
    basis = np.empty((3, times.size, grid.size))
    for j, g in enumerate(grid):
        rp = np.sqrt(g)
        a = 1.0 - _batman(times, p, rp, (0.0, 0.0))
        basis[0, :, j] = a
        basis[1, :, j] = (1.0 - _batman(times, p, rp, (1.0, 0.0))) * (2.0 / 3.0) - a
        basis[2, :, j] = (1.0 - _batman(times, p, rp, (0.0, 1.0))) * (5.0 / 6.0) - a
    pos = np.clip((k2 - grid[0]) / (grid[1] - grid[0]), 0, grid.size - 1)
    i0 = np.minimum(pos.astype(np.int64), grid.size - 2)
    f = pos - i0
    comp = basis[:, :, i0] * (1 - f) + basis[:, :, i0 + 1] * f
    deficit = (comp[0] + u1 * comp[1] + u2 * comp[2]) / (1.0 - u1 / 3.0 - u2 / 6.0)
    return 1.0 - deficit


def eclipse_curves(times, p, fp_ppm):
    """Secondary-eclipse light curves: ``1 + fp * visible fraction`` per column."""
    visible = _batman(times, p, p["rp_rs"], (0.0, 0.0), secondary=True) - 1.0
    return 1.0 + np.asarray(fp_ppm, float)[None, :] * 1e-6 * visible[:, None]


def systematics_series(times, amps: dict, rng) -> dict:
    """Per-integration systematics: flux factor, x/y shifts, width factor.

    Parameters
    ----------
    times : ndarray, shape (nint,)
        Mid-times (days).
    amps : dict
        Amplitudes (keys of :data:`SYSTEMATICS_DEFAULTS`; zero switches off).
    rng : numpy.random.Generator
        Random stream of the jitter.

    Returns
    -------
    dict
        ``flux`` (multiplicative), ``dx``, ``dy`` (px), ``width`` (factor),
        ``tilt`` (bool, after the tilt event).
    """
    n = times.size
    span = max(float(times[-1] - times[0]), 1e-9)
    phase = (times - times[0]) / span  # 0..1 over the visit
    jit = rng.standard_normal((3, n))
    tilt = phase >= amps["tilt_time"]
    flux = (1.0 + 1e-6 * amps["trend_ppm"] * (phase - 0.5)
            + 1e-6 * amps["ramp_ppm"] * np.exp(-phase / max(amps["ramp_tau"], 1e-6))
            + 1e-6 * amps["tilt_ppm"] * tilt)
    dx = amps["drift_x"] * (phase - 0.5) + amps["jitter_x"] * jit[0]
    dy = amps["drift_y"] * (phase - 0.5) + amps["jitter_y"] * jit[1] + amps["tilt_dy"] * tilt
    width = 1.0 + amps["width_drift"] * (phase - 0.5) + amps["width_rms"] * jit[2]
    return {"flux": flux, "dx": dx, "dy": dy, "width": width, "tilt": tilt}
