"""The noiseless scene of the simulator: star, throughput, traces and profiles.

Used by :mod:`tsocontainer.sim.simulate`. Everything here is deterministic: a
:class:`Scene` holds, for each spectral order, the wavelength, nominal trace
centre and out-of-transit count rate of every column along the dispersion
axis, and a per-column spatial profile; :func:`render` draws the star for
any trace shift, width and per-column flux factor.

Choices (documented in the truth as well):

* **Star.** A Planck photon spectrum at ``teff`` with Gaussian absorption
  features at real stellar lines (Paschen, Brackett, Mg I, CO bandheads);
  illustrative, not a stellar-atmosphere model. Its scale is set so that the
  brightest pixel collects ``peak_fraction`` of the saturation level by the
  end of an integration.
* **Throughput.** SOSS: the in-flight SPECTRACE throughput of each order.
  PRISM and NIRCam F322W2: the shipped throughput tables. G395H/F290LP and
  MIRI LRS: smooth illustrative curves (no table is shipped), zero outside the
  filter/prism band.
* **Geometry.** Wavelengths and trace centres from :mod:`tsocontainer.modes`
  (SOSS at the pupil-wheel position ``pwcpos`` with the pastasoss models).
* **Spatial profile.** SOSS: the real SUBSTRIP256 median frame of program
  1512 (pastasoss demo), each order's columns resampled about its trace,
  background-subtracted, median-smoothed over 33 columns and then
  Gaussian-smoothed (sigma 8 columns: the running median alone left ~1 %
  steps from column to column, which the optics do not make). NIRCam F322W2:
  the same from the noiseless tshirt SUBGRISM64 simulation. NIRSpec and MIRI:
  a Gaussian core (width from optics plus diffraction) with a 10 % wing three
  times wider. Every profile is truncated at ``halfwidth`` pixels, normalised
  to unit flux and re-centred so that its flux-weighted centroid is exactly
  the trace centre; pixels integrate it (cumulative tables), so the centroid
  of a rendered column equals the trace centre to < 1e-3 px.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from tsocontainer.modes import Mode, get_mode
from tsocontainer.modes._tables import data_path, load_columns

__all__ = ["SIM_MODES", "Scene", "OrderScene", "build_scene", "render", "stellar_photons",
           "throughput", "sim_mode", "subarray_of", "SIM_SUBARRAYS", "with_subarray",
           "orders_in_window"]

log = logging.getLogger(__name__)

#: grid step (pixels) of the cumulative profile tables
PROFILE_STEP = 0.05
#: pupil-wheel position of the real SOSS frame the profiles come from
SOSS_FRAME_PWCPOS = 245.778671

#: per simulated mode: header configuration, timing and detector numbers.
#: gain (e-/DN), read noise (DN per read) and saturation (DN) are typical,
#: rounded values of each detector, not a particular reference file. The subarray's
#: real corner and readout axes come from the shipped subarray table
#: (:func:`subarray_of`), as the readers' geometry does.
SIM_MODES = {
    "soss": dict(
        spec="soss", instrument="NIRISS", exp_type="NIS_SOSS", detector="NIS", det_tag="nis",
        filter="CLEAR", pupil="GR700XD", grating="", subarray="SUBSTRIP256", shape=(256, 2048),
        readpatt="NISRAPID", tgroup=5.494,
        ngroups=9, nresets=1, gain=1.6, read_noise=7.0, saturation=60000.0, orders=(1, 2, 3),
        halfwidth=20, aperture=15, channel_width=0.05, teff=5500.0, background=1.0,
        wave_range=(0.5, 2.95)),
    "nirspec-prism": dict(
        spec="nirspec", instrument="NIRSPEC", exp_type="NRS_BRIGHTOBJ", detector="NRS1",
        det_tag="nrs1", filter="CLEAR", pupil="", grating="PRISM", subarray="SUB512",
        shape=(32, 512), readpatt="NRSRAPID",
        tgroup=0.22616, ngroups=20, nresets=1, gain=1.0, read_noise=10.0, saturation=60000.0,
        orders=(1,), halfwidth=8, aperture=4, channel_width=0.1, teff=5500.0, background=0.02,
        wave_range=(0.45, 5.6)),
    "nirspec-g395h": dict(
        spec="nirspec", instrument="NIRSPEC", exp_type="NRS_BRIGHTOBJ", detector="NRS1",
        det_tag="nrs1", filter="F290LP", pupil="", grating="G395H", subarray="SUB2048",
        shape=(32, 2048), readpatt="NRSRAPID",
        tgroup=0.90156, ngroups=20, nresets=1, gain=1.0, read_noise=10.0, saturation=60000.0,
        orders=(1,), halfwidth=8, aperture=4, channel_width=0.05, teff=5500.0, background=0.02,
        wave_range=(2.3, 5.2)),
    "nircam-f322w2": dict(
        spec="nircam", instrument="NIRCAM", exp_type="NRC_TSGRISM", detector="NRCALONG",
        det_tag="nrcalong", filter="F322W2", pupil="GRISMR", grating="", subarray="SUBGRISM64",
        shape=(64, 2048), readpatt="RAPID",
        tgroup=0.34061, ngroups=12, nresets=1, gain=1.8, read_noise=9.0, saturation=60000.0,
        orders=(1,), halfwidth=16, aperture=5, channel_width=0.05, teff=5500.0, background=1.0,
        wave_range=(2.4, 4.1)),
    "miri-lrs": dict(
        spec="miri", instrument="MIRI", exp_type="MIR_LRS-SLITLESS", detector="MIRIMAGE",
        det_tag="mirimage", filter="P750L", pupil="", grating="", subarray="SLITLESSPRISM",
        shape=(416, 72), readpatt="FASTR1",
        tgroup=0.15904, ngroups=100, nresets=0, gain=3.1, read_noise=10.0, saturation=55000.0,
        orders=(1,), halfwidth=10, aperture=5, channel_width=0.25, teff=5500.0, background=10.0,
        wave_range=(4.0, 14.2)),
}

#: subarrays each mode can be simulated in (the first is the default, ``SIM_MODES``'s own)
SIM_SUBARRAYS = {"soss": ("SUBSTRIP256", "SUBSTRIP96", "FULL")}

#: stellar absorption features: centre (micron), fractional depth, Gaussian sigma (micron)
STELLAR_LINES = (
    (1.0941, 0.05, 0.0015), (1.2822, 0.07, 0.0015), (1.5040, 0.03, 0.0015),
    (1.7110, 0.03, 0.0015), (1.8756, 0.08, 0.0020), (2.1661, 0.06, 0.0020),
    (2.2935, 0.06, 0.0040), (2.3227, 0.05, 0.0040), (4.0523, 0.05, 0.0040),
    (4.6500, 0.03, 0.1000), (7.4600, 0.03, 0.0150),
)


def subarray_of(cfg: dict):
    """The real subarray (corner, size, readout axes) of a simulated configuration.

    Parameters
    ----------
    cfg : dict
        A :data:`SIM_MODES` entry (with overrides such as ``detector``).

    Returns
    -------
    tsocontainer.modes._subarrays.Subarray

    Examples
    --------
    >>> subarray_of(sim_mode("nirspec-prism")).corner
    (1025, 957)
    """
    from tsocontainer.modes._subarrays import nominal_subarray

    return nominal_subarray(cfg["instrument"], cfg["subarray"], cfg["detector"],
                            cfg["grating"] or None)


def with_subarray(cfg: dict, name: str, subarray) -> dict:
    """A copy of ``cfg`` read out in ``subarray`` (its real shape), or raise listing the allowed.

    Parameters
    ----------
    cfg : dict
        A :data:`SIM_MODES` entry (possibly with overrides).
    name : str
        Simulated mode.
    subarray : str or None
        ``SUBARRAY`` to simulate (case-insensitive); None keeps the mode's default.

    Returns
    -------
    dict
        The configuration with ``subarray`` and ``shape`` from the shipped table.

    Raises
    ------
    ValueError
        When the mode cannot be simulated in that subarray (the message lists the allowed).

    Examples
    --------
    >>> with_subarray(sim_mode("soss"), "soss", "substrip96")["shape"]
    (96, 2048)
    >>> with_subarray(sim_mode("miri-lrs"), "miri-lrs", "FULL")
    Traceback (most recent call last):
    ...
    ValueError: subarray='FULL' is not simulated for miri-lrs; allowed: SLITLESSPRISM
    """
    out = dict(cfg)
    if subarray is None:
        return out
    allowed = SIM_SUBARRAYS.get(name, (SIM_MODES[name]["subarray"],))
    sub = str(subarray).strip().upper()
    if sub not in allowed:
        raise ValueError(f"subarray={subarray!r} is not simulated for {name}; allowed: "
                         f"{', '.join(allowed)}")
    out["subarray"] = sub
    out["shape"] = tuple(subarray_of(out).shape)
    return out


def orders_in_window(name: str, cfg: dict, orders, pwcpos=None, explicit=False) -> tuple:
    """The orders whose light reaches the frame of ``cfg``'s subarray.

    An order counts when its nominal centre lies within ``halfwidth`` pixels of the
    frame (its wing reaches in) at some pixel along the dispersion.

    Parameters
    ----------
    name : str
        Simulated mode.
    cfg : dict
        Its configuration (``subarray`` and ``shape`` set).
    orders : sequence of int
        Candidate orders.
    pwcpos : float, optional
        SOSS pupil-wheel position (deg).
    explicit : bool
        The orders were asked for: one that misses the frame is an error.

    Returns
    -------
    tuple of int

    Raises
    ------
    ValueError
        When an asked-for order (or every order) misses the frame.

    Examples
    --------
    >>> cfg = with_subarray(sim_mode("soss"), "soss", "SUBSTRIP96")
    >>> orders_in_window("soss", cfg, (1, 2, 3))
    (1, 2)
    """
    spec = get_mode(cfg["spec"])
    mode = Mode(spec=spec, filter=cfg["filter"], pupil=cfg["pupil"], grating=cfg["grating"],
                detector=cfg["detector"], subarray=cfg["subarray"])
    ncross = cfg["shape"][1 - spec.dispersion_axis]
    reach = float(cfg["halfwidth"])
    keep = []
    for o in orders:
        centre = _order_geometry(name, cfg, mode, o, pwcpos)[1]
        if np.any((centre > -0.5 - reach) & (centre < ncross - 0.5 + reach)):
            keep.append(int(o))
        elif explicit:
            raise ValueError(f"order {o} falls outside {cfg['subarray']} "
                             f"({cfg['shape'][0]} x {cfg['shape'][1]} pixels)")
    if not keep:
        raise ValueError(f"no order of {name} falls inside {cfg['subarray']}")
    return tuple(keep)


def sim_mode(name: str) -> dict:
    """Configuration of simulated mode ``name`` (a copy), or raise listing the modes."""
    if name not in SIM_MODES:
        raise ValueError(f"unknown simulation mode {name!r}; allowed: {', '.join(SIM_MODES)}")
    return dict(SIM_MODES[name])


def stellar_photons(wave_um, teff: float):
    """Relative photon flux density of the illustrative stellar spectrum.

    Parameters
    ----------
    wave_um : array_like
        Wavelength (micron).
    teff : float
        Effective temperature (K) of the Planck continuum.

    Returns
    -------
    ndarray
        Photons per unit wavelength (arbitrary scale, 1 at the peak of the
        continuum), with the absorption features of :data:`STELLAR_LINES`.
    """
    w = np.asarray(wave_um, float)
    x = 14387.77 / (w * teff)  # h c / (lambda k T), lambda in micron
    with np.errstate(over="ignore", invalid="ignore"):
        cont = w ** -4 / np.expm1(x)
    peak_w = 3669.7 / teff  # maximum of the photon Planck function (micron)
    cont = cont / (peak_w ** -4 / np.expm1(14387.77 / (peak_w * teff)))
    absorb = np.zeros_like(w)
    for centre, depth, sigma in STELLAR_LINES:
        absorb += depth * np.exp(-0.5 * ((w - centre) / sigma) ** 2)
    return cont * np.clip(1.0 - absorb, 0.0, 1.0)


@lru_cache(maxsize=None)
def _spectrace_throughput(order: int):
    from astropy.io import fits

    with fits.open(data_path("jwst_niriss_spectrace_0023.fits")) as hdul:
        d = hdul[order].data
        w, t = np.array(d["WAVELENGTH"], float), np.array(d["THROUGHPUT"], float)
    ok = np.isfinite(w) & np.isfinite(t)
    srt = np.argsort(w[ok])
    return w[ok][srt], np.clip(t[ok][srt], 0, None)


def throughput(mode_name: str, order: int, wave_um):
    """Total throughput (relative photon efficiency) versus wavelength.

    Parameters
    ----------
    mode_name : str
        Simulated mode (key of :data:`SIM_MODES`).
    order : int
        Spectral order.
    wave_um : array_like
        Wavelength (micron).

    Returns
    -------
    ndarray
        Throughput, zero outside the band and where ``wave_um`` is NaN.
    """
    w = np.asarray(wave_um, float)
    if mode_name == "soss":
        tw, tt = _spectrace_throughput(order)
        out = np.interp(w, tw, tt, left=0.0, right=0.0)
    elif mode_name == "nirspec-prism":
        tw, tt = load_columns("JWST_NIRSpec_prism_throughput.csv", ",", 1)
        out = np.interp(w, tw / 1e4, tt, left=0.0, right=0.0)
    elif mode_name == "nircam-f322w2":
        tw, tt = load_columns("NIRCam_F322W2_observed_throughput.csv", ",", 1)
        out = np.interp(w, tw / 1e4, tt, left=0.0, right=0.0)
    elif mode_name == "nirspec-g395h":
        # illustrative: a broad grating blaze times the F290LP cut-on edge
        edge = 0.5 * (1 + np.tanh((w - 2.87) / 0.01))
        out = 0.45 * np.exp(-0.5 * ((w - 3.9) / 1.4) ** 2) * edge
    else:  # miri-lrs, illustrative prism + detector response over 5-12 micron
        rise = 0.5 * (1 + np.tanh((w - 4.8) / 0.2))
        out = 0.3 * np.exp(-0.5 * ((w - 7.5) / 2.6) ** 2) * rise
    return np.where(np.isfinite(w), out, 0.0)


@dataclass
class OrderScene:
    """One spectral order along the (possibly cropped) dispersion axis.

    Attributes
    ----------
    order : int
        Spectral order.
    wave : ndarray
        Wavelength (micron) of each column (NaN off-order).
    centre : ndarray
        Nominal cross-dispersion centre of each column (NaN off-detector).
    counts : ndarray
        Out-of-transit star count rate (DN/s) of each column.
    cdf : ndarray, shape (ndisp, nu)
        Cumulative spatial profile on the grid ``u0 + du * k`` (pixels from
        the centre), 0 below and 1 above.
    u0, du : float
        Grid of ``cdf``.
    """

    order: int
    wave: np.ndarray
    centre: np.ndarray
    counts: np.ndarray
    cdf: np.ndarray = field(repr=False)
    u0: float
    du: float


@dataclass
class Scene:
    """Noiseless scene of one simulated visit (see the module docstring).

    Attributes
    ----------
    name : str
        Simulated mode.
    cfg : dict
        Configuration (:data:`SIM_MODES` entry with overrides).
    mode : Mode
        The :class:`tsocontainer.modes.Mode` of the files.
    orders : list of OrderScene
        Orders on the detector.
    shape : tuple
        Detector frame shape ``(ny, nx)`` after cropping.
    disp_axis : int
        Frame axis of the dispersion (1, or 0 for MIRI LRS).
    crop : tuple
        ``(first, last + 1)`` of the kept pixels along the dispersion axis.
    halfwidth : int
        Profile half-width (pixels).
    star_scale : float
        Factor from :func:`stellar_photons` x throughput x dispersion to DN/s.
    """

    name: str
    cfg: dict
    mode: Mode
    orders: list
    shape: tuple
    disp_axis: int
    crop: tuple
    halfwidth: int
    star_scale: float

    @property
    def ncross(self) -> int:
        """Number of pixels across the dispersion."""
        return self.shape[1 - self.disp_axis]

    @property
    def ndisp(self) -> int:
        """Number of pixels along the dispersion (after cropping)."""
        return self.shape[self.disp_axis]


def _cdf_tables(density, du):
    """Cumulative tables (rows) of non-negative densities re-centred on their centroid."""
    density = np.clip(np.nan_to_num(density), 0, None)
    nu = density.shape[1]
    u = (np.arange(nu) - (nu - 1) / 2) * du
    total = density.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    density = density / total
    centroid = (density * u).sum(axis=1)
    # pad by 1.5 px each side so the shifted support stays inside the table
    pad = int(round(1.5 / du))
    upad = (np.arange(nu + 2 * pad) - (nu + 2 * pad - 1) / 2) * du
    cdf_native = np.concatenate([np.zeros((density.shape[0], 1)), np.cumsum(density, axis=1)],
                                axis=1)
    edges = np.concatenate([u - du / 2, [u[-1] + du / 2]])
    # CDF'(v) = CDF(v + centroid): the profile now has its centroid at 0
    query = upad[None, :] + du / 2 + centroid[:, None]
    idx = np.clip((query - edges[0]) / du, 0, nu)
    i0 = np.minimum(np.floor(idx).astype(np.int64), nu - 1)
    frac = idx - i0
    rows = np.arange(density.shape[0])[:, None]
    cdf = cdf_native[rows, i0] * (1 - frac) + cdf_native[rows, i0 + 1] * frac
    return cdf, float(upad[0] + du / 2), du


def _frame_templates(frame, centres, halfwidth, good, smooth=33):
    """Profiles of one order sampled from a real (or simulated) frame.

    ``frame`` is (ncross, ndisp) in dispersion-aligned orientation, ``centres``
    the trace centre of each column, ``good`` the columns to trust; the other
    columns take the profile of the nearest good column.
    """
    from scipy.ndimage import gaussian_filter1d, median_filter

    ncross, ndisp = frame.shape
    u = np.arange(-halfwidth, halfwidth + PROFILE_STEP / 2, 0.25)
    c = np.where(np.isfinite(centres), centres, np.nanmedian(centres))
    y = c[None, :] + u[:, None]
    inside = (y >= 0) & (y <= ncross - 1)
    y0 = np.clip(np.floor(y).astype(np.int64), 0, ncross - 2)
    f = np.clip(y - y0, 0, 1)
    cols = np.arange(ndisp)[None, :]
    samp = frame[y0, cols] * (1 - f) + frame[y0 + 1, cols] * f
    samp = np.where(inside, samp, 0.0)
    samp = median_filter(samp, size=(1, smooth), mode="nearest")
    # a running median of samples of a real (noisy, not flat-fielded) frame moves in
    # steps of ~1 % from column to column; the optics change smoothly along dispersion
    samp = gaussian_filter1d(samp, smooth / 4, axis=1, mode="nearest")
    idx = np.flatnonzero(good)
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(ndisp)), 0, idx.size - 1)]
    left = idx[np.clip(np.searchsorted(idx, np.arange(ndisp)) - 1, 0, idx.size - 1)]
    use = np.where(np.abs(left - np.arange(ndisp)) < np.abs(nearest - np.arange(ndisp)),
                   left, nearest)
    samp = samp[:, use]
    taper = np.clip((halfwidth - np.abs(u)) / 3.0, 0, 1)  # to zero over the last 3 px
    dens = np.clip(samp, 0, None) * taper[:, None]
    # linear resampling from the 0.25 px grid to the fine grid, all columns at once
    fine = np.arange(-halfwidth, halfwidth + PROFILE_STEP / 2, PROFILE_STEP)
    pos = np.clip((fine - u[0]) / 0.25, 0, u.size - 1)
    i0 = np.minimum(np.floor(pos).astype(np.int64), u.size - 2)
    w1 = (pos - i0)[:, None]
    return (dens[i0] * (1 - w1) + dens[i0 + 1] * w1).T


def _analytic_templates(sigma, halfwidth):
    """Gaussian core + 10 % wing (3x wider) densities, one row per column."""
    fine = np.arange(-halfwidth, halfwidth + PROFILE_STEP / 2, PROFILE_STEP)
    s = np.asarray(sigma, float)[:, None]
    core = np.exp(-0.5 * (fine[None, :] / s) ** 2) / s
    wing = np.exp(-0.5 * (fine[None, :] / (3 * s)) ** 2) / (3 * s)
    return 0.9 * core + 0.1 * wing


def _psf_sigma(mode_name: str, wave):
    """Gaussian sigma (pixels) of the cross-dispersion profile: optics + diffraction."""
    pixscale = {"nirspec-prism": 0.10, "nirspec-g395h": 0.10, "miri-lrs": 0.11}[mode_name]
    lam_over_d = np.nan_to_num(np.asarray(wave, float), nan=np.nanmedian(wave)) * 1e-6 / 6.5
    diff = 0.44 * np.degrees(lam_over_d) * 3600 / pixscale
    return np.sqrt(0.5 ** 2 + diff ** 2)


@lru_cache(maxsize=8)
def _profile_tables(name: str, detector: str, orders: tuple, halfwidth: int) -> dict:
    """Cumulative profile tables ``(cdf, u0, du)`` of each order (cached, read-only).

    They depend on the mode only (not on the star, the pupil-wheel position or
    the crop), so repeated simulations of a mode share them.
    """
    cfg = dict(SIM_MODES[name], detector=detector)
    mode = Mode(spec=get_mode(cfg["spec"]), filter=cfg["filter"], pupil=cfg["pupil"],
                grating=cfg["grating"], detector=detector, subarray=cfg["subarray"])
    x = np.arange(cfg["shape"][get_mode(cfg["spec"]).dispersion_axis], dtype=float)
    if name == "soss":
        dens = _soss_densities(orders, halfwidth)
    elif name == "nircam-f322w2":
        dens = {1: _nircam_densities(mode.trace_guess(1, x), halfwidth)}
    else:
        dens = {1: _analytic_templates(_psf_sigma(name, mode.wavelength(1, x)), halfwidth)}
    out = {}
    for o in orders:
        cdf, u0, du = _cdf_tables(dens[o], PROFILE_STEP)
        cdf.setflags(write=False)
        out[o] = (cdf, u0, du)
    return out


def _soss_densities(orders, halfwidth):
    """Profile densities of the SOSS orders from the real SUBSTRIP256 frame."""
    from scipy.ndimage import median_filter

    from tsocontainer.modes import soss
    from tsocontainer.modes._tables import load_npz

    mode = Mode(spec=get_mode("soss"), subarray="SUBSTRIP256")
    frame = np.asarray(load_npz("soss_substrip256_median_pwcpos245.778671.npz", "frame"),
                       float)
    ny, nx = frame.shape
    x = np.arange(nx, dtype=float)
    cen = {o: soss.trace_guess(mode, o, x, pwcpos=SOSS_FRAME_PWCPOS) for o in (1, 2, 3)}
    rows = np.arange(ny)[:, None]
    far = np.ones(frame.shape, bool)
    for c in cen.values():
        far &= ~(np.abs(rows - np.nan_to_num(c, nan=-1e3)[None, :]) < halfwidth + 5)
    with warnings.catch_warnings():  # columns without far rows give NaN, filled below
        warnings.simplefilter("ignore", RuntimeWarning)
        bkg = np.nanmedian(np.where(far, frame, np.nan), axis=0)
    bkg = median_filter(np.nan_to_num(bkg, nan=float(np.nanmedian(bkg))), size=65, mode="nearest")
    clean = frame - bkg[None, :]
    peak = {o: _peak_near(clean, cen[o]) for o in cen}
    out = {}
    for o in orders:
        c = cen[o]
        good = np.isfinite(c) & (c - halfwidth >= 0) & (c + halfwidth <= ny - 1) & (peak[o] > 3.0)
        for other in cen:
            if other != o:
                close = np.abs(np.nan_to_num(cen[other], nan=1e4) - c) < 2 * halfwidth + 4
                good &= ~(close & (peak[other] > 0.2 * peak[o]))
        if not good.any():
            raise RuntimeError(f"no clean SOSS order {o} columns in the template frame")
        out[o] = _frame_templates(clean, c, halfwidth, good)
    return out


def _peak_near(frame, centre, half=3):
    """Median over +-half rows of the trace of each column (0 off the frame)."""
    ny = frame.shape[0]
    c = np.nan_to_num(centre, nan=-1e4)
    rows = np.round(c)[None, :].astype(np.int64) + np.arange(-half, half + 1)[:, None]
    ok = (rows >= 0) & (rows < ny)
    vals = np.where(ok, frame[np.clip(rows, 0, ny - 1), np.arange(frame.shape[1])[None, :]],
                    np.nan)
    vals = np.where(ok.any(axis=0)[None, :], vals, 0.0)  # off-frame columns: 0, no NaN slice
    return np.nan_to_num(np.nanmedian(vals, axis=0))


def _nircam_densities(centre, halfwidth):
    """Profile densities from the noiseless tshirt F322W2 SUBGRISM64 frame."""
    from tsocontainer.modes._tables import load_npz

    frame = np.asarray(load_npz("nircam_f322w2_subgrism64_tshirt_sim.npz", "frame"), float)
    colsum = frame.sum(axis=0)
    good = colsum > 0.05 * colsum.max()
    return _frame_templates(frame, centre, halfwidth, good, smooth=9)


def _order_geometry(name, cfg, mode, order, pwcpos):
    """Wavelength, nominal centre and unscaled counts of every column of an order.

    Through the readers' own geometry of the real subarray (corner from the table), so
    the scene and a reduction index the mode's tables identically.
    """
    from tsocontainer.geometry import geometry_from_meta

    sub = subarray_of(cfg)
    meta = {"SUBSTRT1": sub.substrt1, "SUBSTRT2": sub.substrt2, "SUBARRAY": sub.name}
    if pwcpos is not None:
        meta["PWCPOS"] = float(pwcpos)
    geo = geometry_from_meta(mode, meta, tuple(cfg["shape"]))
    wave = geo.wavelength(order)
    centre = geo.trace_guess(order)
    disp = np.abs(np.gradient(np.where(np.isfinite(wave), wave, np.nan)))
    raw = stellar_photons(wave, cfg["teff"]) * throughput(name, order, wave) * disp
    raw = np.where(np.isfinite(raw) & np.isfinite(centre), raw, 0.0)
    return wave, centre, raw


def build_scene(name: str, cfg: dict, orders=None, crop=None, peak_fraction=0.6,
                pwcpos=None) -> Scene:
    """Build the noiseless scene of a simulated mode.

    Parameters
    ----------
    name : str
        Simulated mode (key of :data:`SIM_MODES`).
    cfg : dict
        Its configuration (``sim_mode(name)`` with overrides: ``ngroups``,
        ``detector``, ``teff``).
    orders : sequence of int, optional
        Orders to include (default: all of the mode).
    crop : (int, int), optional
        First and last+1 pixel kept along the dispersion axis.
    peak_fraction : float
        Brightest star pixel at the end of an integration, as a fraction of
        the saturation level (sets the star's brightness).
    pwcpos : float, optional
        SOSS pupil-wheel position (deg).

    Returns
    -------
    Scene
    """
    spec = get_mode(cfg["spec"])
    mode = Mode(spec=spec, filter=cfg["filter"], pupil=cfg["pupil"], grating=cfg["grating"],
                detector=cfg["detector"], subarray=cfg["subarray"])
    disp_axis = spec.dispersion_axis
    ndisp = cfg["shape"][disp_axis]
    ncross = cfg["shape"][1 - disp_axis]
    orders = tuple(cfg["orders"] if orders is None else orders)
    halfwidth = int(cfg["halfwidth"])
    geoms = {o: _order_geometry(name, cfg, mode, o, pwcpos) for o in orders}
    tables = _profile_tables(name, cfg["detector"], orders, halfwidth)
    scenes = []
    for o in orders:
        wave, centre, raw = geoms[o]
        scenes.append(OrderScene(o, wave, centre, raw, *tables[o]))
    tint = cfg["tgroup"] * cfg["ngroups"]
    full = np.zeros((ncross, ndisp))
    for osc in scenes:
        render(osc, osc.counts, osc.centre, 1.0, full, halfwidth)
    peak = full.max()
    if not peak > 0:
        raise RuntimeError(f"{name}: the star puts no light on the detector")
    scale = peak_fraction * cfg["saturation"] / (peak * tint)
    lo, hi = (0, ndisp) if crop is None else crop
    for osc in scenes:
        osc.counts = osc.counts * scale
    shape = list(cfg["shape"])
    shape[disp_axis] = hi - lo
    sc = Scene(name, cfg, mode, scenes, tuple(shape), disp_axis, (lo, hi), halfwidth, scale)
    log.debug("%s scene: orders %s, peak %.1f DN/s", name, orders, peak * scale)
    return sc


def _cdf_eval(osc: OrderScene, cols, u):
    """Cumulative profile of columns ``cols`` (broadcast) at offsets ``u``."""
    nu = osc.cdf.shape[1]
    idx = np.clip((u - osc.u0) / osc.du, 0.0, nu - 1.0)
    i0 = np.minimum(idx.astype(np.int64), nu - 2)
    frac = idx - i0
    flat = osc.cdf.reshape(-1)
    base = np.broadcast_to(cols * nu, idx.shape) + i0
    return flat[base] * (1.0 - frac) + flat[base + 1] * frac


def render(osc: OrderScene, flux, centre, width: float, out, halfwidth: int,
           cols=None) -> None:
    """Add one order's star light to ``out`` (dispersion-aligned frame).

    Parameters
    ----------
    osc : OrderScene
        The order (its profile tables).
    flux : ndarray
        Count rate (DN/s) of each column of ``out``.
    centre : ndarray
        Cross-dispersion centre of each column of ``out`` (NaN: no light).
    width : float
        Profile width factor (1 = nominal), applied about the centre.
    out : ndarray, shape (ncross, ncols)
        Frame to add to, in place.
    halfwidth : int
        Profile half-width (pixels).
    cols : ndarray of int, optional
        Profile-table column of each column of ``out`` (default: the same).
    """
    ncross, ncols = out.shape
    table_cols = np.arange(ncols) if cols is None else np.asarray(cols)
    ok = np.isfinite(centre) & (flux > 0)
    sel = np.flatnonzero(ok)
    if sel.size == 0:
        return
    c = centre[sel]
    reach = int(np.ceil(halfwidth * max(width, 1.0))) + 2
    rows = np.floor(c).astype(np.int64)[None, :] + np.arange(-reach, reach + 1)[:, None]
    lo = (rows - 0.5 - c[None, :]) / width
    tc = table_cols[sel][None, :]
    pix = _cdf_eval(osc, tc, lo + 1.0 / width) - _cdf_eval(osc, tc, lo)
    inside = (rows >= 0) & (rows < ncross)
    colidx = np.broadcast_to(sel[None, :], rows.shape)
    out[rows[inside], colidx[inside]] += (pix * flux[sel][None, :])[inside]
