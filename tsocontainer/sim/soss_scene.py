"""A NIRISS/SOSS visit built from a real SUBSTRIP256 frame, for tests and benchmarks.

The main simulator (:mod:`tsocontainer.sim.simulate`) draws each order from a
profile truncated at +-20 pixels. Real SOSS data have wings far beyond that:
the whole PSF of every order spreads over the subarray, and it *transits with
the star*. A sky or 1/f estimate that takes "background" pixels within reach
of the wings sees the transit. This module keeps the real frame whole:

1. **Split** (:func:`split_frame`). The real SUBSTRIP256 median frame of program
   1512 (pastasoss; shipped as ``soss_substrip256_median_pwcpos245.778671.npz``)
   is divided into

   * the **zodiacal background**: the shipped SOSS background model (exoTEDRF's,
     with its step near column 700) scaled, separately on each side of the
     step, to the largest multiple that stays under the frame: the 2nd
     percentile of the frame / model ratio (frame median-smoothed over 5 x 9
     pixels) among live pixels more than 30 pixels from every trace. Whatever
     the model does not explain there is taken as the star's far wings;
   * **field contaminants**: compact sources more than 25 pixels from every
     trace centre (the frame minus a 16-pixel cell median, smoothed over 5 x 5
     pixels, above 5 robust sigma in groups of >= 60 pixels, grown by 3
     pixels) -- the order-0 image of a field star near column 1940;
   * **hot pixels**: single pixels more than 10 robust sigma above both the
     median of their 3 x 3 neighbourhood and of their row's 5 neighbours
     (detector structure, not starlight), in groups of at most two touching
     pixels. Larger groups follow the trace's profile (column 2043 next to the
     reference pixels is ~15 % brighter than column 2042 over the whole order-1
     core, a constant ratio): a response, so starlight that transits;
   * **dead pixels**: the 211 pixels below -1 DN/s (impossible for a working
     pixel under >= 2.5 DN/s of zodiacal light): no light at all in the scene,
     and flagged ``DO_NOT_USE | DEAD`` as the pipeline's bad-pixel mask does;
   * the **star**: everything else -- the cores *and wings* of orders 1-3.
     Reference pixels (4 rows on top, 4 columns on each side) are zero.

   Every stellar pixel belongs to the order whose trace (pastasoss model at the
   frame's pupil-wheel position, sampled every 0.25 column) passes closest to
   it, and takes the wavelength of that trace point; so an order's wing pixel
   transits with the depth of its own wavelength.
2. **Visit** (:func:`simulate_soss_scene`). Integration ``i`` is
   ``star * LC(order, wavelength, t_i) + background + contaminants + hot``,
   with batman light curves (:func:`tsocontainer.sim.astro.light_curves`,
   quadratic limb darkening versus wavelength), photon noise (Poisson
   electrons, ``gain * tgroup * (ngroups - 1)`` per DN/s), white read noise,
   optional 1/f column offsets and cosmic rays. Files are real-format
   ``rateints`` segments written by :mod:`tsocontainer.sim.write`; the truth
   (``truth.json``, ``truth.fits``) follows the contract of
   :mod:`tsocontainer.sim.simulate` where it applies, plus per-pixel maps.

**1/f amplitude.** 1/f noise is one offset per integration and column (SOSS
reads columns fast), drawn with :func:`tsocontainer.sim.noise.one_over_f` (a
1/frequency spectrum across columns). Its size in rate images is set by what
is measured on real SOSS data: STScI reported (JWST pipeline news, 13 May
2026, "NIRISS SOSS improvements to 1/f correction") that group-level 1/f
subtraction cut the white-light residual scatter of SOSS time series by a
factor 5-20, so uncorrected 1/f in rate images is 5-20 times the photon
noise of the white light. For the star of this frame (1.79e7 DN/s inside
+-20 pixels of order 1, 70.3 electrons per DN/s at the default timing: a
photon limit of 28 ppm per integration), column offsets of rms ``s`` DN/s
add ``101 * s`` ppm to that white light, so the lower end (5 x 28 ppm) is
``s = 1.4`` DN/s: :data:`ONEF_RMS`. (Albert et al. 2023, PASP 135, 075001,
found that 1/f *residuals after correction* still add noise equivalent to
doubling the read noise under the traces.)

**Cosmic rays** are residual (unflagged) hits drawn by
:func:`tsocontainer.sim.noise.cosmic_rays` at :data:`CR_RATE` hits per pixel
per second (the main simulator's default). No saturation, bad-pixel
injection, trace jitter or systematics: the scene isolates what the real
frame's wings, background and contaminants do to the sky and 1/f steps.
"""
from __future__ import annotations

import logging
import shutil
import time as _time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tsocontainer.sim import astro as simastro
from tsocontainer.sim import noise as simnoise
from tsocontainer.sim.truth import SimulatedVisit, clear_previous, write_truth
from tsocontainer.sim.write import INT_TIMES_DTYPE, SegmentFile, SegmentMemory

__all__ = ["FrameSplit", "split_frame", "simulate_soss_scene", "pixel_owners", "TIMING",
           "ONEF_RMS", "CR_RATE", "FRAME_PWCPOS"]

log = logging.getLogger(__name__)

#: pupil-wheel position (deg) of the shipped real frame
FRAME_PWCPOS = 245.778671
#: realistic rms (DN/s) of the 1/f column offsets of a rate image (module docstring)
ONEF_RMS = 1.4
#: residual cosmic-ray hits per pixel per second (as ``simulate.NOISE_DEFAULTS``)
CR_RATE = 2e-6
#: default timing and detector numbers (NISRAPID SUBSTRIP256, as the main simulator)
TIMING = {"tgroup": 5.494, "ngroups": 9, "nresets": 1, "gain": 1.6, "read_noise": 7.0}
_SHAPE = (256, 2048)
_YSTART = 1793    # SUBSTRT2 of SUBSTRIP256: the top 256 rows of the detector (DMS)
_ORDERS = (1, 2, 3)
_ROOT = "jw99999002001_04101_00001"
_TARGET = {"name": "SIM-SOSS-REAL", "ra": 217.3266, "dec": -3.4445}
_NOISE = {"poisson": True, "read": True, "one_over_f": 0.0, "cosmic_rays": 0.0}
_OPTIONS = {"flux_scale": 1.0, "ngroups": TIMING["ngroups"], "field_contaminants": 0.0,
            "transit_fraction": 0.4, "start_mjd": 60400.25, "limb_darkening": "quadratic",
            "trend_ppm": 0.0, "block": None}


# ------------------------------------------------------------------ the split
@dataclass(frozen=True)
class FrameSplit:
    """A real SOSS frame split into its stellar and non-transiting parts (DN/s).

    Attributes
    ----------
    star : ndarray, shape (256, 2048)
        Light of the target, all orders, cores and wings.
    background : ndarray
        Scaled zodiacal background model.
    contaminants : ndarray
        Field-star light found in the frame.
    hot : ndarray
        Hot-pixel excess (detector, not light).
    owner : ndarray of int8
        Order each pixel's starlight belongs to (0: reference pixel).
    column : ndarray of int16
        Column of the owner order's trace point nearest to the pixel.
    wave : ndarray
        Wavelength (micron) of that trace point.
    refmask : ndarray of bool
        Reference pixels.
    dead : ndarray of bool
        Dead pixels (no light; all parts zero).
    scales : tuple of float
        Background-model scale on each side of its step.
    """

    star: np.ndarray
    background: np.ndarray
    contaminants: np.ndarray
    hot: np.ndarray
    owner: np.ndarray
    column: np.ndarray
    wave: np.ndarray
    refmask: np.ndarray
    dead: np.ndarray
    scales: tuple


def _soss_mode():
    from tsocontainer.modes import Mode, get_mode

    return Mode(get_mode("soss"), subarray="SUBSTRIP256")


def _trace_points(pwcpos: float, step: float = 0.25):
    """(x, y, wave, order) of every order's trace, sampled every ``step`` column."""
    mode = _soss_mode()
    header = {"PWCPOS": pwcpos}
    x = np.arange(0.0, _SHAPE[1] - 1 + step / 2, step)
    pts = []
    for order in _ORDERS:
        y = mode.trace_guess(order, x, header=header)
        w = mode.wavelength(order, x, header=header)
        ok = np.isfinite(y) & np.isfinite(w) & (y > -40) & (y < _SHAPE[0] + 40)
        pts.append(np.stack([x[ok], y[ok], w[ok], np.full(ok.sum(), order)], axis=1))
    return np.concatenate(pts)


def pixel_owners(pwcpos: float = FRAME_PWCPOS):
    """Nearest trace point of every pixel: owner order, its column, wavelength, distance.

    Parameters
    ----------
    pwcpos : float
        Pupil-wheel position (deg) of the traces.

    Returns
    -------
    owner : ndarray of int8, shape (256, 2048)
    column : ndarray of int16
    wave : ndarray of float
    dist : ndarray of float
        Distance (pixels) to that trace point.
    """
    from scipy.spatial import cKDTree

    pts = _trace_points(pwcpos)
    yy, xx = np.mgrid[0:_SHAPE[0], 0:_SHAPE[1]]
    dist, idx = cKDTree(pts[:, :2]).query(np.stack([xx.ravel(), yy.ravel()], axis=1))
    near = pts[idx]
    shape = _SHAPE
    column = np.clip(np.rint(near[:, 0]), 0, _SHAPE[1] - 1).astype(np.int16).reshape(shape)
    return (near[:, 3].astype(np.int8).reshape(shape), column, near[:, 2].reshape(shape),
            dist.reshape(shape))


def _cell_median(img, box: int = 16):
    """Median of ``box`` x ``box`` cells (NaN ignored), bilinearly interpolated to the frame."""
    from scipy import ndimage

    ny, nx = img.shape
    padded = np.pad(img, ((0, -ny % box), (0, -nx % box)), mode="edge")
    cells = padded.reshape(padded.shape[0] // box, box, padded.shape[1] // box, box)
    cells = np.nanmedian(cells.transpose(0, 2, 1, 3).reshape(cells.shape[0], cells.shape[2], -1),
                         axis=2)
    cells = np.where(np.isfinite(cells), cells, np.nanmedian(cells))
    yy = (np.arange(ny) + 0.5) / box - 0.5
    xx = (np.arange(nx) + 0.5) / box - 0.5
    return ndimage.map_coordinates(cells, np.meshgrid(yy, xx, indexing="ij"), order=1,
                                   mode="nearest")


def _hot_pixels(frame, live):
    """Excess of isolated hot pixels (groups of <= 2) over their neighbours (zero elsewhere)."""
    from scipy import ndimage

    med3 = ndimage.median_filter(frame, size=3, mode="nearest")
    med_row = ndimage.median_filter(frame, size=(1, 5), mode="nearest")
    level = np.sqrt(np.maximum(med3, 1.0))
    r = (frame - med3) / level
    s = 1.4826 * np.median(np.abs(r[live]))
    hot = live & (r > 10 * s) & ((frame - med_row) / level > 10 * s)
    lab, n = ndimage.label(hot, structure=np.ones((3, 3)))
    size = ndimage.sum(hot, lab, index=np.arange(1, n + 1))
    hot &= np.isin(lab, 1 + np.nonzero(size <= 2)[0])   # isolated: not a profile's response
    return np.where(hot, frame - med3, 0.0)


def _contaminants(frame, live, dist):
    """Compact field sources far from every trace (zero elsewhere).

    Two passes: sources found against a 16-pixel cell median are masked (grown
    by 6 pixels) from a second cell median, so that a source as large as a
    cell does not raise its own background.
    """
    from scipy import ndimage

    found = np.zeros(frame.shape, bool)
    for _ in range(2):
        base = _cell_median(np.where(live & ~found, frame, np.nan))
        resid = frame - base
        smooth = ndimage.uniform_filter(np.where(live, resid, 0.0), 5)
        sig = 1.4826 * np.median(np.abs(smooth[live] - np.median(smooth[live])))
        det = live & (smooth > 5 * sig) & (dist > 25)
        det[:, :8] = det[:, -8:] = False
        lab, n = ndimage.label(det)
        sizes = ndimage.sum(det, lab, np.arange(1, n + 1)) if n else np.zeros(0)
        keep = np.isin(lab, 1 + np.flatnonzero(sizes >= 60))
        found = ndimage.binary_dilation(keep, iterations=6)
    keep = ndimage.binary_dilation(keep, iterations=3) & live
    return np.where(keep, np.clip(resid, 0, None), 0.0)


def _background(frame, live, dist, exclude):
    """The shipped SOSS background model scaled under the frame on each side of its step."""
    from scipy import ndimage

    from tsocontainer.cleaning.background import soss_background_model, step_groups

    model = soss_background_model("SUBSTRIP256", _SHAPE).astype(float)
    groups = step_groups(model)
    smooth = ndimage.median_filter(frame, size=(5, 9), mode="nearest")
    far = live & (dist > 30) & ~exclude & (model > 0)
    scales = []
    for k in range(int(groups.max()) + 1):
        sel = far & (groups == k)[None, :]
        scales.append(float(np.percentile(smooth[sel] / model[sel], 2)))
    return np.array(scales)[groups][None, :] * model * live, tuple(scales)


def split_frame(frame=None, pwcpos: float = FRAME_PWCPOS) -> FrameSplit:
    """Split a real SUBSTRIP256 frame into star, background, contaminants and hot pixels.

    See the module docstring for the choices.

    Parameters
    ----------
    frame : ndarray, shape (256, 2048), optional
        Rate frame (DN/s); default the shipped real median frame (cached).
    pwcpos : float
        Its pupil-wheel position (deg).

    Returns
    -------
    FrameSplit

    Raises
    ------
    ValueError
        If the frame is not (256, 2048).

    Examples
    --------
    >>> s = split_frame()  # doctest: +SKIP
    >>> float(s.star.sum() / (s.star + s.background).sum()) > 0.9  # doctest: +SKIP
    True
    """
    if frame is None and pwcpos == FRAME_PWCPOS:
        return _default_split()
    return _split(np.asarray(frame, float), float(pwcpos))


@lru_cache(maxsize=1)
def _default_split() -> FrameSplit:
    from tsocontainer.modes._tables import load_npz

    return _split(np.asarray(load_npz(f"soss_substrip256_median_pwcpos{FRAME_PWCPOS}.npz",
                                      "frame"), float), FRAME_PWCPOS)


def _split(frame, pwcpos) -> FrameSplit:
    if frame.shape != _SHAPE:
        raise ValueError(f"a SUBSTRIP256 frame {_SHAPE} is needed, got shape {frame.shape}")
    refmask, _ = simnoise.reference_pixels("soss", _SHAPE, "NIRISS", (1, _YSTART))
    dead = ~refmask & ~(frame >= -1.0)           # NaN or below -1 DN/s
    live = ~refmask & ~dead
    frame = np.where(live, frame, 0.0)
    owner, column, wave, dist = pixel_owners(pwcpos)
    hot = _hot_pixels(frame, live)
    contam = _contaminants(frame - hot, live, dist)
    bkg, scales = _background(frame - hot, live, dist, contam > 0)
    star = np.where(live, frame - hot - contam - bkg, 0.0)
    owner = np.where(live, owner, 0).astype(np.int8)
    for arr in (star, bkg, contam, hot, owner, column, wave, refmask, dead):
        arr.setflags(write=False)
    log.info("SOSS frame split: background scales %s, %d contaminant, %d hot, %d dead pixels",
             np.round(scales, 3), int((contam > 0).sum()), int((hot > 0).sum()), int(dead.sum()))
    return FrameSplit(star=star, background=bkg, contaminants=contam, hot=hot, owner=owner,
                      column=column, wave=wave, refmask=refmask, dead=dead, scales=scales)


# ------------------------------------------------------------------ the visit
def _merge(kind, defaults, given):
    out = dict(defaults)
    bad = sorted(set(given or {}) - set(defaults))
    if bad:
        raise ValueError(f"unknown {kind} key(s) {', '.join(bad)}; allowed: {', '.join(defaults)}")
    out.update(given or {})
    return out


def _crop(columns):
    if columns is None:
        return 0, _SHAPE[1]
    lo, hi = (int(c) for c in columns)
    if not 0 <= lo < hi <= _SHAPE[1] or hi - lo < 32:
        raise ValueError(f"columns={columns!r} must be (first, last+1) within 0..{_SHAPE[1]}, "
                         "at least 32 columns")
    return lo, hi


class _SceneVisit:
    """Everything of one scene visit except the per-integration noise draws."""

    def __init__(self, nint, seed, crop, noise, opts, depth_spectrum, params):
        self.nint, self.seed, self.crop, self.noise, self.opts = nint, seed, crop, noise, opts
        self.split = split_frame()
        self.timing = dict(TIMING, ngroups=int(opts["ngroups"]))
        if self.timing["ngroups"] < 2:
            raise ValueError(f"ngroups must be >= 2, got {opts['ngroups']}")
        tg, ng = self.timing["tgroup"], self.timing["ngroups"]
        self.t_int = tg * ng
        self.escale = simnoise.poisson_scale(self.timing["gain"], ng, tg)
        self.var_rn = simnoise.read_noise_var(self.timing["read_noise"], ng, tg)
        self.times = simastro.visit_times(nint, tg, ng, self.timing["nresets"],
                                          float(opts["start_mjd"]), _TARGET["ra"], _TARGET["dec"])
        self.t = self.times["int_mid_BJD_TDB"]
        self._planet(depth_spectrum, params)
        self._static()
        self.cr_rows = []
        self.onef = np.zeros((nint, self.shape[1]), np.float32)

    def _rng(self, *tags):
        return np.random.default_rng([self.seed, *tags])

    def _planet(self, depth_spectrum, params):
        tm = self.times
        t_mid = 0.5 * (tm["int_start_BJD_TDB"][0] + tm["int_end_BJD_TDB"][-1])
        span = tm["int_end_BJD_TDB"][-1] - tm["int_start_BJD_TDB"][0]
        self.params = simastro.planet_params(dict(params or {}), t_mid, span,
                                             float(self.opts["transit_fraction"]))
        if depth_spectrum is None:
            self.depth_wave, self.depth_ppm = simastro.default_depth_spectrum(
                (0.5, 2.95), self.params["rp_rs"])
        else:
            self.depth_wave, self.depth_ppm = simastro.read_depth_table(depth_spectrum)
        mode, header = _soss_mode(), {"PWCPOS": FRAME_PWCPOS}
        x = np.arange(_SHAPE[1], dtype=float)
        self.order_wave = np.array([mode.wavelength(o, x, header=header) for o in _ORDERS])
        self.order_trace = np.array([mode.trace_guess(o, x, header=header) for o in _ORDERS])
        self.lc = np.ones((len(_ORDERS), self.nint, _SHAPE[1]))
        law = self.opts["limb_darkening"]
        for k, wave in enumerate(self.order_wave):
            ok = np.isfinite(wave)
            depth = np.interp(wave[ok], self.depth_wave, self.depth_ppm)
            u1, u2 = simastro.limb_darkening(wave[ok], law)
            self.lc[k][:, ok] = simastro.light_curves(self.t, self.params, depth, u1, u2)
        phase = (self.t - self.t[0]) / max(float(self.t[-1] - self.t[0]), 1e-9)
        self.flux = 1.0 + 1e-6 * float(self.opts["trend_ppm"]) * (phase - 0.5)

    def _static(self):
        sp, (lo, hi) = self.split, self.crop
        scale = float(self.opts["flux_scale"])
        self.star = sp.star[:, lo:hi] * scale
        self.owner = np.asarray(sp.owner[:, lo:hi])
        self.pixel_lc = np.where(self.owner > 0, (self.owner - 1).astype(np.int64) * _SHAPE[1]
                                 + sp.column[:, lo:hi], 0)
        field = float(self.opts["field_contaminants"]) * simnoise.soss_contaminants()
        self.background = np.asarray(sp.background[:, lo:hi])
        self.contaminants = (sp.contaminants + field * ~(sp.refmask | sp.dead))[:, lo:hi]
        self.hot = np.asarray(sp.hot[:, lo:hi])
        self.static = self.background + self.contaminants + self.hot
        self.refmask, bits = simnoise.reference_pixels("soss", self.star.shape, "NIRISS",
                                                     (1 + self.crop[0], _YSTART))
        dead = np.uint32(simnoise.DQ["DO_NOT_USE"] | simnoise.DQ["DEAD"])
        self.dq = np.where(self.refmask, np.uint32(bits),
                           np.where(sp.dead[:, lo:hi], dead, np.uint32(0))).astype(np.uint32)
        self.shape = self.star.shape

    def expected(self, i: int):
        """Noiseless rate of integration ``i`` (DN/s)."""
        lcflat = self.lc[:, i, :].reshape(-1)
        return self.star * lcflat[self.pixel_lc] * self.flux[i] + self.static

    def integration(self, i: int):
        """SCI, DQ, ERR, VAR_POISSON, VAR_RNOISE frames of integration ``i``."""
        total = self.expected(i)
        noise = self.noise
        rng = self._rng(3, i)
        if noise["poisson"]:
            sci = rng.poisson(np.maximum(total, 0.0) * self.escale) / self.escale
        else:
            sci = total.copy()
        if noise["read"]:
            sci += rng.standard_normal(self.shape) * np.sqrt(self.var_rn)
        if noise["one_over_f"] > 0:
            vec = simnoise.one_over_f(self._rng(4, i), 1, _SHAPE[1], float(noise["one_over_f"]))
            self.onef[i] = vec[0, self.crop[0]:self.crop[1]]
            sci += self.onef[i][None, :]
        if noise["cosmic_rays"] > 0:
            y, x, amp = simnoise.cosmic_rays(self._rng(5, i), self.shape,
                                             float(noise["cosmic_rays"]), self.t_int, self.escale)
            np.add.at(sci, (y, x), amp)
            self.cr_rows.append((np.full(y.size, i + 1), y, x, amp))
        var_p = np.maximum(total, 0.0) / self.escale
        var_r = np.full(self.shape, self.var_rn)
        return sci, self.dq, np.sqrt(var_p + var_r), var_p, var_r

    def block(self, i0: int, i1: int):
        """Stacked cubes of integrations ``i0:i1``."""
        frames = [self.integration(i) for i in range(i0, i1)]
        return [np.stack([f[j] for f in frames]).astype(np.uint32 if j == 1 else np.float32)
                for j in range(5)]

    # -------------------------------------------------------------- truth
    def arrays(self) -> dict:
        """Truth arrays (``truth.fits``): those of :mod:`tsocontainer.sim.simulate` plus maps."""
        lo, hi = self.crop
        cr = ([np.concatenate(c) for c in zip(*self.cr_rows)] if self.cr_rows
              else [np.zeros(0, int)] * 3 + [np.zeros(0)])
        cr_table = np.rec.fromarrays([cr[0].astype(np.int32), cr[1].astype(np.int32),
                                      cr[2].astype(np.int32), cr[3].astype(np.float32)],
                                     names="integration,y,x,amplitude")
        badpix = np.rec.fromarrays([np.zeros(0, np.int32), np.zeros(0, np.int32),
                                    np.zeros(0, "U6"), np.zeros(0, bool), np.zeros(0, np.float32)],
                                   names="y,x,kind,flagged,value")
        models = np.array([self.star * (self.owner == o) for o in _ORDERS], np.float32)
        trace = self.order_trace[:, lo:hi].copy()
        trace[(trace < -0.5) | (trace > _SHAPE[0] - 0.5)] = np.nan
        ones = np.ones(self.nint)
        shifts = np.rec.fromarrays([np.arange(1, self.nint + 1, dtype=np.int32), 0 * ones, 0 * ones,
                                    ones, self.flux, self._white_lc(models[0])],
                                   names="integration,dx,dy,width,flux,white_lc")
        sp = self.split
        return {"TRACE": np.repeat(trace[:, None, :], self.nint, axis=1).astype(np.float32),
                "COSMIC_RAYS": cr_table, "BADPIX": badpix, "SHIFTS": shifts,
                "BACKGROUND": self.background.astype(np.float32),
                "CONTAMINANTS": self.contaminants.astype(np.float32), "MODEL": models,
                "WAVE": self.order_wave[:, lo:hi].astype(np.float32),
                "LIGHTCURVE": self.lc[:, :, lo:hi].astype(np.float32),
                "REFPIX": self.refmask.astype(np.uint8), "HOT": self.hot.astype(np.float32),
                "OWNER": self.owner.astype(np.int8),
                "PIXWAVE": np.asarray(sp.wave[:, lo:hi], np.float32),
                "PIXCOLUMN": np.asarray(sp.column[:, lo:hi], np.int16),
                "ONE_OVER_F": self.onef}

    def _white_lc(self, model1):
        """Injected white light curve of order 1's starlight."""
        w = model1.sum(axis=0)
        return (self.lc[0][:, self.crop[0]:self.crop[1]] * w[None]).sum(axis=1) / max(w.sum(),
                                                                                      1e-30)

    def truth(self, files, arrays) -> dict:
        """``truth.json`` content (keys as :func:`tsocontainer.sim.truth.truth_json` where they apply)."""
        from tsocontainer._version import __version__
        from tsocontainer.sim.truth import _limit_from

        p, law = self.params, self.opts["limb_darkening"]
        u1, u2 = simastro.limb_darkening(self.depth_wave, law)
        info = dict(orders=list(_ORDERS), dispersion_axis=1, aperture_halfwidth_px=20.0,
                    electrons_per_dn_s=self.escale, var_rnoise=self.var_rn)
        from tsocontainer.sim.soss_truth import box_depths_from

        white = float(box_depths_from(arrays, self._truth_stub(), None, None, 20.0, 1)[0])
        return {
            "format": "tsocontainer simulated visit truth", "version": 1,
            "generator": "tsocontainer.sim.soss_scene (real SUBSTRIP256 frame)",
            "tsocontainer_version": __version__, "mode": "soss", "seed": self.seed,
            "nint": self.nint, "nseg": len(files), "files": [Path(f).name for f in files],
            "noiseless": False, "orders": list(_ORDERS),
            "options": {k: v for k, v in self.opts.items() if k != "block"},
            "instrument": dict(self.timing, instrument="NIRISS", exp_type="NIS_SOSS",
                               detector="NIS", filter="CLEAR", pupil="GR700XD",
                               subarray="SUBSTRIP256", pwcpos=FRAME_PWCPOS, dispersion_axis=1,
                               onef_axis=0, crop=list(self.crop), shape=list(self.shape),
                               effinttm_s=self.t_int, trace_axis="y centre per column"),
            "params": {"t0": p["t0"], "per": p["per"], "a_rs": p["a_rs"], "inc": p["inc"],
                       "ecc": p["ecc"], "w": p["w"], "rp_rs": p["rp_rs"],
                       "rp_rs_white": float(np.sqrt(white * 1e-6)), "event": "transit",
                       "limb_darkening_law": law, "time_scale": "BJD_TDB - 2400000.5"},
            "limb_darkening": {"law": law, "wave_um": self.depth_wave.tolist(),
                               "u1": u1.tolist(), "u2": u2.tolist()},
            "depth_spectrum": {"wave_um": self.depth_wave.tolist(),
                               "depth_ppm": self.depth_ppm.tolist(), "quantity": "(Rp/Rs)^2 (ppm)",
                               "pixels": "each stellar pixel transits with the depth at the "
                                         "wavelength of its nearest trace point (OWNER, PIXWAVE)"},
            "white_light_depth_ppm": white,
            "white_light_limit_ppm": float(_limit_from(arrays, info, None, None, 1)[0]),
            "noise": dict(info, read_noise_dn=self.timing["read_noise"],
                          gain=self.timing["gain"], poisson=bool(self.noise["poisson"]),
                          read=bool(self.noise["read"]),
                          one_over_f_rms_dn_s=float(self.noise["one_over_f"]), one_over_f_axis=0,
                          cosmic_ray_rate_per_pix_s=float(self.noise["cosmic_rays"]),
                          n_cosmic_rays=int(arrays["COSMIC_RAYS"].size), n_badpix=0,
                          n_saturated=0),
            "background": {"scales": list(self.split.scales),
                           "mean_dn_s": float(self.background.mean()),
                           "contaminants_dn_s": float(self.contaminants.sum()),
                           "hot_dn_s": float(self.hot.sum())},
            "systematics": {"trend_ppm": float(self.opts["trend_ppm"]), "enabled": False},
            "arrays": "truth.fits",
        }

    def _truth_stub(self):
        return {"depth_spectrum": {"wave_um": self.depth_wave, "depth_ppm": self.depth_ppm}}


# ------------------------------------------------------------------ files
def _set_meta(v: _SceneVisit, seg, nseg, i0, i1):
    tm = v.times

    def set_meta(model):
        from astropy.time import Time

        m = model.meta
        start, end = float(tm["int_start_MJD_UTC"][0]), float(tm["int_end_MJD_UTC"][-1])
        iso = Time(start, format="mjd", scale="utc").isot
        m.origin, m.telescope = "tsocontainer.sim.soss_scene", "JWST"
        m.observation.date, m.observation.time = iso[:10], iso[11:]
        m.observation.program_number, m.observation.observation_number = "99999", "002"
        m.observation.visit_number, m.observation.visit_group = "001", "04"
        m.observation.sequence_id, m.observation.activity_id = "1", "01"
        m.observation.exposure_number, m.observation.visit_id = "00001", "99999002001"
        m.target.catalog_name, m.target.ra, m.target.dec = (_TARGET["name"], _TARGET["ra"],
                                                            _TARGET["dec"])
        m.visit.tsovisit = True
        m.instrument.name, m.instrument.detector = "NIRISS", "NIS"
        m.instrument.filter, m.instrument.pupil = "CLEAR", "GR700XD"
        m.instrument.pupil_position = FRAME_PWCPOS
        e, tg = m.exposure, v.timing["tgroup"]
        e.type, e.readpatt = "NIS_SOSS", "NISRAPID"
        e.nints, e.ngroups, e.nframes, e.groupgap = v.nint, v.timing["ngroups"], 1, 0
        e.frame_time = e.group_time = tg
        e.integration_time, e.exposure_time = v.t_int, v.t_int * v.nint
        e.nresets_between_ints, e.nresets_at_start = v.timing["nresets"], 1
        e.integration_start, e.integration_end = i0 + 1, i1
        e.segment_number, e.segment_total = seg + 1, nseg
        e.start_time, e.end_time, e.mid_time = start, end, 0.5 * (start + end)
        e.duration = (end - start) * 86400.0
        s = m.subarray
        s.name, s.xstart, s.ystart = "SUBSTRIP256", 1 + v.crop[0], _YSTART
        s.xsize, s.ysize = v.shape[1], v.shape[0]
        s.fastaxis, s.slowaxis = -2, -1
        m.time.barycentric_expstart = float(tm["int_start_BJD_TDB"][0])
        m.time.barycentric_expend = float(tm["int_end_BJD_TDB"][-1])
        m.time.barycentric_expmid = 0.5 * (m.time.barycentric_expstart
                                           + m.time.barycentric_expend)

    return set_meta


def _int_times(v: _SceneVisit, i0, i1):
    rows = np.zeros(i1 - i0, dtype=INT_TIMES_DTYPE)
    rows["integration_number"] = np.arange(i0 + 1, i1 + 1)
    for key in v.times:
        rows[key] = v.times[key][i0:i1]
    return rows


def _write_segments(v: _SceneVisit, folder, nseg: int):
    import os

    from astropy.time import Time

    npix = v.shape[0] * v.shape[1]
    block = int(v.opts["block"] or max(1, int(4e6 // npix)))
    bounds = np.linspace(0, v.nint, nseg + 1).round().astype(int)
    fixed = Time(float(v.times["int_end_MJD_UTC"][-1]), format="mjd", scale="utc").isot
    tmpdir = None if folder is None else folder / f".tmp-soss-scene-{os.getpid()}"
    files, models = [], []
    try:
        if tmpdir is not None:
            tmpdir.mkdir(exist_ok=True)
        for seg, (i0, i1) in enumerate(zip(bounds[:-1], bounds[1:])):
            args = ((i1 - i0,) + v.shape, _set_meta(v, seg, nseg, i0, i1), _int_times(v, i0, i1),
                    fixed)
            name = f"{_ROOT}-seg{seg + 1:03d}_nis_rateints.fits"
            sink = (SegmentMemory(*args) if folder is None else
                    SegmentFile(folder / name, *args, tmpdir=tmpdir))
            try:
                for b0 in range(i0, i1, block):
                    sink.write(b0 - i0, *v.block(b0, min(b0 + block, i1)))
                (files if folder is not None else models).append(sink.commit())
            except BaseException:
                sink.abort()
                raise
            if folder is None:
                files.append(name)
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return files, (models if folder is None else None)


def simulate_soss_scene(nint: int, out=None, *, nseg: int = 1, seed: int = 0, columns=None,
                        noise=None, depth_spectrum=None, params=None,
                        **options) -> SimulatedVisit:
    """Simulate a SOSS SUBSTRIP256 visit from the real frame and write it with its truth.

    Parameters
    ----------
    nint : int
        Integrations.
    out : path-like, optional
        Output folder (created; earlier segments listed in its truth are
        removed). None: the segments are returned in memory
        (``SimulatedVisit.models``).
    nseg : int
        Segments (files).
    seed : int
        Random seed (same seed and options: identical data).
    columns : (int, int), optional
        ``(first, last + 1)`` columns kept (a small scene for tests); the
        header's ``SUBSTRT1`` says where they are.
    noise : dict, optional
        ``poisson`` (bool), ``read`` (bool), ``one_over_f`` (column rms,
        DN/s; 0 = none; :data:`ONEF_RMS` is realistic), ``cosmic_rays``
        (hits per pixel per second; :data:`CR_RATE` is realistic). Default:
        photon and read noise only.
    depth_spectrum : path-like or (wave_um, depth_ppm), optional
        Injected depths (default :func:`tsocontainer.sim.astro.default_depth_spectrum`).
    params : dict, optional
        Planet parameters (:func:`tsocontainer.sim.astro.planet_params`).
    **options
        ``flux_scale`` (star brightness factor, 1), ``ngroups`` (9),
        ``field_contaminants`` (scale of the shipped F277W field order-0
        images added to the frame's own, 0), ``transit_fraction`` (0.4),
        ``start_mjd``, ``limb_darkening`` ("quadratic" or "none"),
        ``trend_ppm`` (linear flux trend over the visit, 0), ``block``.

    Returns
    -------
    SimulatedVisit
        Files and truth; ``truth_arrays()`` adds ``OWNER``, ``PIXWAVE``,
        ``PIXCOLUMN``, ``HOT`` and ``ONE_OVER_F`` (the injected column
        offsets, ``(nint, ncolumns)``) to the main simulator's arrays.

    Raises
    ------
    ValueError
        Unknown option or noise key, bad ``columns``, ``nint < nseg``.

    Examples
    --------
    >>> vis = simulate_soss_scene(60, "scene", columns=(700, 1212))  # doctest: +SKIP
    >>> vis.truth["white_light_depth_ppm"]  # doctest: +SKIP
    """
    t0 = _time.perf_counter()
    opts = _merge("option", _OPTIONS, options)
    noise = _merge("noise", _NOISE, noise)
    if opts["limb_darkening"] not in ("quadratic", "none"):
        raise ValueError(f"limb_darkening={opts['limb_darkening']!r}; allowed: quadratic, none")
    if int(nseg) < 1 or int(nint) < int(nseg):
        raise ValueError(f"need nint >= nseg >= 1, got nint={nint}, nseg={nseg}")
    v = _SceneVisit(int(nint), int(seed), _crop(columns), noise, opts, depth_spectrum, params)
    folder = None if out is None else Path(out)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        clear_previous(folder)
    files, models = _write_segments(v, folder, int(nseg))
    arrays = v.arrays()
    truth = v.truth(files, arrays)
    if folder is not None:
        write_truth(folder, truth, arrays)
    log.info("SOSS scene: %d integrations, %d columns, in %.1f s", v.nint, v.shape[1],
             _time.perf_counter() - t0)
    return SimulatedVisit(files=files if folder is not None else [],
                          truth=truth, folder=None if folder is None else str(folder),
                          models=models, _arrays=arrays)
