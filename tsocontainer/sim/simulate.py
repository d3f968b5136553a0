"""Synthetic JWST time-series visits in the real file format, with ground truth.

:func:`simulate_visit` writes ``<root>-segNNN_<det>_rateints.fits`` segments
(through stdatamodels ``CubeModel``: SCI in DN/s, ERR, DQ, VAR_POISSON,
VAR_RNOISE, INT_TIMES, the primary keywords of a real TSO exposure) and, next
to them, ``truth.json``, ``truth.fits`` and ``planet.yaml`` (fit priors for
``tsocontainer run --priors``). One segment is in memory at a time.

The pieces live in helper modules, each documenting its choices:
:mod:`tsocontainer.sim.scene` (star, throughput, trace geometry, spatial
profiles), :mod:`tsocontainer.sim.astro` (times, planet, light curves,
systematics), :mod:`tsocontainer.sim.noise` (noise, defects, background,
contaminants) and :mod:`tsocontainer.sim.write` (streaming file writer).

Headers are those of real exposures: the subarray's real corner and size
(``SUBSTRT1/2``, ``SUBSIZE1/2``, ``FASTAXIS``/``SLOWAXIS`` from the shipped subarray
table, shifted by a ``columns=`` crop; SOSS also in SUBSTRIP96 and FULL with
``subarray=``), ``EXSEGNUM``/``EXSEGTOT``, ``INTSTART``/``INTEND``
and an ``INT_TIMES`` table whose ``int_*_BJD_TDB`` columns hold BJD_TDB - 2400000.5, as
the JWST pipeline writes them.

Truth contract (``truth.json``): ``mode``, ``seed``, ``nint``, ``files``,
``params`` (``t0`` and ``t_secondary`` in BJD_TDB, as the fit priors and light curves
take them; ``per``, ``a_rs``, ``inc``, ``ecc``, ``w``, ``rp_rs_white``,
``limb_darkening_law``, ``u`` = white-light coefficients), ``limb_darkening``
(law and ``u1``/``u2`` versus ``wave_um``), ``depth_spectrum`` (``wave_um``,
``depth_ppm``; a column's injected depth is ``np.interp`` of it at the column's
wavelength), ``white_light_depth_ppm``, ``white_light_limit_ppm``,
``channel_limits``, ``systematics``, ``noise`` and more. ``truth.fits``:
``TRACE`` (norder, nint, ndisp) trace centre per pixel along the dispersion
axis and integration (NaN off the detector) -- the *y* centre of each column,
except for MIRI LRS whose trace is vertical: there it is the *x* centre of
each row; ``COSMIC_RAYS`` (integration, y, x, amplitude DN/s), ``BADPIX`` (y,
x, kind, flagged, value), ``SHIFTS`` (integration, dx, dy, width, flux,
white_lc), ``BACKGROUND`` (DN/s), ``CONTAMINANTS``, ``MODEL`` (out-of-transit
star rate per order), ``WAVE`` (norder, ndisp), ``LIGHTCURVE`` (norder, nint,
ndisp: injected relative flux) and ``REFPIX``. Integrations are 1-based in the
tables, as in INT_TIMES.
"""
from __future__ import annotations

from tsocontainer._util import interactive

import logging
import os
import shutil
import time as _time
from pathlib import Path

import numpy as np

from tsocontainer.sim import astro as simastro
from tsocontainer.sim import noise as simnoise
from tsocontainer.sim import scene as simscene
from tsocontainer.sim.truth import (SimulatedVisit, clear_previous, load_truth, load_truth_arrays,
                       noise_limit, truth_json, write_truth)
from tsocontainer.sim.write import INT_TIMES_DTYPE, SegmentFile, SegmentMemory
from tsocontainer._util import check_option

__all__ = ["simulate_visit", "SimulatedVisit", "load_truth", "load_truth_arrays",
           "noise_limit", "MODES", "OPTION_DEFAULTS", "NOISE_DEFAULTS"]

log = logging.getLogger(__name__)

#: simulated modes
MODES = tuple(simscene.SIM_MODES)
#: documented keyword options of :func:`simulate_visit` and their defaults
OPTION_DEFAULTS = {
    "params": None, "event": "transit", "limb_darkening": "quadratic", "noise": None,
    "background": None, "contaminants": 1.0, "reference_pixels": True, "columns": None,
    "orders": None, "ngroups": None, "peak_fraction": 0.6, "pwcpos": None, "detector": None,
    "teff": None, "transit_fraction": 0.4, "start_mjd": 60300.25, "block": None,
    "progress": None, "subarray": None,
}
#: noise components (``noise=`` option); ``one_over_f`` None = the per-pixel read-noise sigma
NOISE_DEFAULTS = {"poisson": True, "read": True, "one_over_f": None, "cosmic_rays": 2e-6,
                  "bad_pixels": True, "saturation": True}
_ROOT = "jw99999001001_04101_00001"
_TARGET = {"name": "SIM-TSO-1", "ra": 217.3266, "dec": -3.4445}
_CHOICES = {"event": ("transit", "eclipse"), "limb_darkening": ("quadratic", "none")}


def _validate_choice(name: str, value):
    return check_option(value, _CHOICES[name], name)


def _merge(kind: str, defaults: dict, given) -> dict:
    out = dict(defaults)
    if given is None:
        return out
    bad = sorted(set(given) - set(defaults))
    if bad:
        raise ValueError(f"unknown {kind} key(s) {', '.join(bad)}; allowed: {', '.join(defaults)}")
    out.update(given)
    return out


def _options(mode: str, nint: int, nseg: int, options: dict) -> dict:
    """Validate the arguments; return the full option set."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    bad = sorted(set(options) - set(OPTION_DEFAULTS))
    if bad:
        raise ValueError(f"unknown option(s) {', '.join(bad)}; allowed: "
                         f"{', '.join(OPTION_DEFAULTS)}")
    if int(nint) < 1 or int(nseg) < 1 or int(nseg) > int(nint):
        raise ValueError(f"need nint >= nseg >= 1, got nint={nint}, nseg={nseg}")
    opts = dict(OPTION_DEFAULTS)
    opts.update(options)
    _validate_choice("event", opts["event"])
    _validate_choice("limb_darkening", opts["limb_darkening"])
    opts["noise"] = _merge("noise", NOISE_DEFAULTS, opts["noise"])
    # numeric options: (name, lowest, highest, lowest allowed itself)
    for key, lo, hi, closed in (("peak_fraction", 0, 10, False), ("transit_fraction", 0, 1, False),
                                ("contaminants", 0, 1e6, True), ("background", 0, 1e6, True),
                                ("block", 1, 1e9, True), ("teff", 500, 1e5, True)):
        value = opts[key]
        if value is None:
            continue
        above = float(value) >= lo if closed else float(value) > lo
        if not (above and float(value) <= hi):
            raise ValueError(f"{key} must be in {'[' if closed else '('}{lo:g}, {hi:g}], "
                             f"got {value!r}")
    if opts["detector"] is not None and mode != "nirspec-g395h":
        raise ValueError("detector= is only for nirspec-g395h (NRS1 or NRS2)")
    if opts["detector"] not in (None, "NRS1", "NRS2"):
        raise ValueError(f"detector={opts['detector']!r}; allowed: NRS1, NRS2")
    if opts["pwcpos"] is not None and mode != "soss":
        raise ValueError("pwcpos= is only for soss")
    simscene.with_subarray(simscene.sim_mode(mode), mode, opts["subarray"])  # check the name
    return opts


def _config(mode: str, opts: dict, pwcpos=None) -> dict:
    cfg = simscene.with_subarray(simscene.sim_mode(mode), mode, opts["subarray"])
    for key in ("ngroups", "teff"):
        if opts[key] is not None:
            cfg[key] = opts[key]
    if int(cfg["ngroups"]) < 2:
        raise ValueError(f"ngroups must be >= 2, got {cfg['ngroups']}")
    if opts["detector"] == "NRS2":
        cfg["detector"], cfg["det_tag"] = "NRS2", "nrs2"
    if opts["background"] is not None:
        cfg["background"] = float(opts["background"])
    if opts["orders"] is not None:
        orders = tuple(int(o) for o in opts["orders"])
        if not orders or set(orders) - set(cfg["orders"]):
            raise ValueError(f"orders={opts['orders']!r}; allowed: subsets of {cfg['orders']}")
        cfg["orders"] = orders
    # only the orders whose light reaches the window (SOSS SUBSTRIP96: orders 1 and 2)
    cfg["orders"] = simscene.orders_in_window(mode, cfg, cfg["orders"], pwcpos,
                                              explicit=opts["orders"] is not None)
    return cfg


def _crop(cfg: dict, columns, disp_axis: int):
    n = cfg["shape"][disp_axis]
    if columns is None:
        return 0, n
    lo, hi = (int(c) for c in columns)
    if not 0 <= lo < hi <= n or hi - lo < 8:
        raise ValueError(f"columns={columns!r} must be (first, last+1) within 0..{n}, "
                         "at least 8 pixels")
    return lo, hi


class _Visit:
    """Everything of one simulated visit except the per-integration noise draws."""

    def __init__(self, mode, nint, seed, noiseless, systematics, depth_spectrum, opts):
        from tsocontainer.modes import get_mode

        self.name, self.nint, self.seed, self.noiseless = mode, int(nint), int(seed), noiseless
        self.opts = opts
        self.pwcpos = None
        if mode == "soss":
            self.pwcpos = float(opts["pwcpos"] if opts["pwcpos"] is not None
                                else simscene.SOSS_FRAME_PWCPOS)
        cfg = self.cfg = _config(mode, opts, self.pwcpos)
        spec = get_mode(cfg["spec"])
        self.disp_axis, self.onef_axis = spec.dispersion_axis, spec.onef_axis
        self.crop = _crop(cfg, opts["columns"], self.disp_axis)
        self.substrt = simscene.subarray_of(cfg).corner
        # the default subarrays draw an order only where its centre is on the frame (kept
        # so their files stay as they were); other windows (SOSS SUBSTRIP96 cuts order 2
        # through its core) also get the wing of an order centred just off the frame
        self.cut_light = cfg["subarray"] == simscene.SIM_MODES[mode]["subarray"]
        self.scene = simscene.build_scene(mode, cfg, orders=cfg["orders"], crop=self.crop,
                                          peak_fraction=float(opts["peak_fraction"]),
                                          pwcpos=self.pwcpos)
        self.shape = self.scene.shape
        self.xdet = np.arange(*self.crop, dtype=float)
        self.xfull = np.arange(cfg["shape"][self.disp_axis], dtype=float)
        self._timing()
        self._planet(depth_spectrum)
        amps = _merge("systematics", simastro.SYSTEMATICS_DEFAULTS,
                      systematics if isinstance(systematics, dict) else None)
        if systematics is False:
            amps = {k: (v if k == "tilt_time" else 0.0) for k, v in amps.items()}
        self.sys_amps = amps
        self.sys = simastro.systematics_series(self.t, amps, self._rng(1))
        self._static()
        self._allocate_truth()

    # ------------------------------------------------------------ set-up
    def _rng(self, *tags):
        return np.random.default_rng([self.seed, *tags])

    def _timing(self):
        cfg = self.cfg
        self.times = simastro.visit_times(self.nint, cfg["tgroup"], int(cfg["ngroups"]),
                                          cfg["nresets"], float(self.opts["start_mjd"]),
                                          _TARGET["ra"], _TARGET["dec"])
        self.t = self.times["int_mid_BJD_TDB"]
        self.t_int = cfg["tgroup"] * int(cfg["ngroups"])
        self.escale = simnoise.poisson_scale(cfg["gain"], cfg["ngroups"], cfg["tgroup"])
        self.var_rn = simnoise.read_noise_var(cfg["read_noise"], cfg["ngroups"], cfg["tgroup"])

    def _planet(self, depth_spectrum):
        opts, cfg = self.opts, self.cfg
        t_mid = 0.5 * (self.times["int_start_BJD_TDB"][0] + self.times["int_end_BJD_TDB"][-1])
        span = self.times["int_end_BJD_TDB"][-1] - self.times["int_start_BJD_TDB"][0]
        user = dict(opts["params"] or {})
        if "t0" in user:  # given in BJD_TDB (the truth's and the priors' convention)
            if not float(user["t0"]) > simastro.BJD_MJD_OFFSET:
                raise ValueError(f"params t0 is a BJD_TDB (e.g. 2460300.75, as in truth.json "
                                 f"and the fit priors), got {user['t0']!r}")
            user["t0"] = float(user["t0"]) - simastro.BJD_MJD_OFFSET
        p = simastro.planet_params(user, t_mid, span, float(opts["transit_fraction"]))
        eclipse = opts["event"] == "eclipse"
        if eclipse and "t0" not in user:
            p["t0"] = t_mid - 0.5 * p["per"]  # the eclipse at mid-visit
        if depth_spectrum is None:
            fn = simastro.default_eclipse_spectrum if eclipse else simastro.default_depth_spectrum
            args = (cfg["wave_range"], p["rp_rs"]) + ((cfg["teff"],) if eclipse else ())
            self.depth_wave, self.depth_ppm = fn(*args)
            self.depth_source = "default"
        else:
            self.depth_wave, self.depth_ppm = simastro.read_depth_table(depth_spectrum)
            self.depth_source = (str(depth_spectrum) if isinstance(depth_spectrum, (str, Path))
                                 else "user arrays")
        self.params = p
        self.lc = []
        self.col_depth, self.col_u = [], []
        lo, hi = self.crop
        for osc in self.scene.orders:
            wave = osc.wave[lo:hi]
            ok = np.isfinite(wave)
            depth = np.where(ok, np.interp(np.nan_to_num(wave), self.depth_wave, self.depth_ppm),
                             0.0)
            u1, u2 = simastro.limb_darkening(wave, opts["limb_darkening"])
            lc = np.ones((self.nint, wave.size))
            if ok.any():
                lc[:, ok] = (simastro.eclipse_curves(self.t, p, depth[ok]) if eclipse else
                             simastro.light_curves(self.t, p, depth[ok], u1[ok], u2[ok]))
            self.lc.append(lc)
            self.col_depth.append(depth)
            self.col_u.append((u1, u2))

    def _static(self):
        """Background, contaminants, reference pixels, bad pixels, saturation levels."""
        cfg, sc, lo, hi = self.cfg, self.scene, *self.crop
        o1 = sc.orders[0]
        sl = [slice(None), slice(None)]
        sl[self.disp_axis] = slice(lo, hi)
        self.sl = tuple(sl)
        tput = simscene.throughput(self.name, o1.order, o1.wave)
        self.bkg = simnoise.background_model(self.name, cfg["shape"], o1.wave, tput,
                                             cfg["background"], self.substrt[1])[self.sl]
        self.contam = np.zeros(self.shape)
        if self.name == "soss" and self.opts["contaminants"]:
            self.contam = float(self.opts["contaminants"]) * simnoise.soss_contaminants(
                self.substrt[1], cfg["shape"][0])[self.sl]
        self.refmask, self.refbits = np.zeros(self.shape, bool), 0
        if self.opts["reference_pixels"]:
            corner = list(self.substrt)
            corner[1 - self.disp_axis] += self.crop[0]   # the crop runs along the dispersion
            self.refmask, self.refbits = simnoise.reference_pixels(
                self.name, self.shape, cfg["instrument"], tuple(corner))
        noise = self.opts["noise"]
        use_bad = noise["bad_pixels"] and not self.noiseless
        table, response, hot, dq = simnoise.bad_pixels(self._rng(2), self.shape)
        live = ~self.refmask[table["y"], table["x"]]  # no bad pixels among reference pixels
        self.badpix = {k: val[live if use_bad else slice(0)] for k, val in table.items()}
        self.response = np.where(self.refmask, 0.0, response if use_bad else 1.0)
        self.hot = np.where(self.refmask, 0.0, hot if use_bad else 0.0)
        self.dq_static = np.where(self.refmask, np.uint32(self.refbits),
                                  dq if use_bad else np.uint32(0)).astype(np.uint32)
        self.satmap = simnoise.saturation_levels(self._rng(6), self.shape, cfg["saturation"])
        self.onef_rms = noise["one_over_f"]
        if self.onef_rms is None:
            self.onef_rms = float(np.sqrt(self.var_rn))
        if self.noiseless:
            self.onef_rms = 0.0

    def _allocate_truth(self):
        norder = len(self.scene.orders)
        self.trace = np.full((norder, self.nint, self.scene.ndisp), np.nan, np.float32)
        self.cr_rows = []
        self.n_saturated = 0


    # ------------------------------------------------------------ per integration
    def star(self, i: int):
        """Noiseless star light of integration ``i`` (detector orientation); stores TRACE."""
        sc, lo, hi = self.scene, *self.crop
        frame = np.zeros((sc.ncross, sc.ndisp))
        src = self.xdet - self.sys["dx"][i]
        cols = np.arange(lo, hi)
        for k, osc in enumerate(sc.orders):
            flux = np.interp(src, self.xfull, osc.counts) * self.lc[k][i] * self.sys["flux"][i]
            centre = np.interp(src, self.xfull, osc.centre) + self.sys["dy"][i]
            off = (centre < -0.5) | (centre > sc.ncross - 0.5)
            drawn = centre.copy()
            centre[off] = np.nan
            self.trace[k, i] = centre
            simscene.render(osc, flux, centre if self.cut_light else drawn,
                            float(self.sys["width"][i]), frame, sc.halfwidth, cols=cols)
        return frame if self.disp_axis == 1 else frame.T

    def integration(self, i: int):
        """SCI, DQ, ERR, VAR_POISSON, VAR_RNOISE frames of integration ``i``."""
        noise = self.opts["noise"]
        total = (self.star(i) + self.bkg + self.contam) * self.response + self.hot
        var_p = total / self.escale
        dq = self.dq_static.copy()
        if noise["saturation"]:
            late = total * self.t_int > self.satmap
            early = total * 2 * self.cfg["tgroup"] > self.satmap
            dq[late] |= np.uint32(simnoise.DQ["SATURATED"])
            dq[early] |= np.uint32(simnoise.DQ["DO_NOT_USE"])
            self.n_saturated += int(late.sum())
        else:
            early = None
        sci = total if self.noiseless else self._noisy(i, total)
        var_r = np.full(self.shape, self.var_rn)
        err = np.sqrt(var_p + var_r)
        if early is not None and early.any():
            sci = np.where(early, np.nan, sci)
            err = np.where(early, np.nan, err)
        return sci, dq, err, var_p, var_r

    def _noisy(self, i, total):
        noise = self.opts["noise"]
        rng = self._rng(3, i)
        if noise["poisson"]:
            # differences of the cumulative profile leave ~1e-14 round-off below
            # zero where the scene is empty (no background): the mean is >= 0
            sci = rng.poisson(np.maximum(total, 0.0) * self.escale) / self.escale
        else:
            sci = total.copy()
        if noise["read"]:
            sci += rng.standard_normal(self.shape) * np.sqrt(self.var_rn)
        if self.onef_rms > 0:
            lines_axis = 1 - self.onef_axis
            vec = simnoise.one_over_f(self._rng(4, i), 1, self.cfg["shape"][lines_axis],
                                      self.onef_rms)[0]
            if lines_axis == self.disp_axis:
                vec = vec[slice(*self.crop)]
            sci += vec[None, :] if lines_axis == 1 else vec[:, None]
        if noise["cosmic_rays"] > 0:
            y, x, amp = simnoise.cosmic_rays(self._rng(5, i), self.shape,
                                             float(noise["cosmic_rays"]), self.t_int,
                                             self.escale)
            np.add.at(sci, (y, x), amp)
            self.cr_rows.append((np.full(y.size, i + 1), y, x, amp))
        return sci

    def block(self, i0: int, i1: int):
        """Stacked float32/uint32 cubes of integrations ``i0:i1``."""
        out = [np.empty((i1 - i0,) + self.shape, np.float32), np.empty((i1 - i0,) + self.shape,
                                                                         np.uint32)]
        out += [np.empty((i1 - i0,) + self.shape, np.float32) for _ in range(3)]
        for j, i in enumerate(range(i0, i1)):
            for arr, frame in zip(out, self.integration(i)):
                arr[j] = frame
        return out

    # ------------------------------------------------------------ truth
    def order_models(self):
        """Out-of-transit noiseless star rate of each order (norder, ny, nx), no systematics."""
        sc, lo, hi = self.scene, *self.crop
        models = np.zeros((len(sc.orders),) + self.shape)
        for k, osc in enumerate(sc.orders):
            frame = np.zeros((sc.ncross, sc.ndisp))
            simscene.render(osc, osc.counts[lo:hi], osc.centre[lo:hi], 1.0, frame, sc.halfwidth,
                            cols=np.arange(lo, hi))
            models[k] = (frame if self.disp_axis == 1 else frame.T) * ~self.refmask
        return models

    def arrays(self) -> dict:
        """Truth arrays (the content of ``truth.fits``)."""
        lo, hi = self.crop
        cr = [np.concatenate(c) for c in zip(*self.cr_rows)] if self.cr_rows else [
            np.zeros(0, int)] * 3 + [np.zeros(0)]
        cr_table = np.rec.fromarrays([cr[0].astype(np.int32), cr[1].astype(np.int32),
                                      cr[2].astype(np.int32), cr[3].astype(np.float32)],
                                     names="integration,y,x,amplitude")
        bp = self.badpix
        kinds = np.array(simnoise.BADPIX_KINDS)[bp["kind"]] if bp["kind"].size else np.zeros(
            0, "U6")
        bp_table = np.rec.fromarrays([bp["y"].astype(np.int32), bp["x"].astype(np.int32),
                                      kinds.astype("U6"), bp["flagged"].astype(bool),
                                      bp["value"].astype(np.float32)],
                                     names="y,x,kind,flagged,value")
        models = self.order_models()
        white = self._white_lc(models)
        shifts = np.rec.fromarrays([np.arange(1, self.nint + 1, dtype=np.int32),
                                    self.sys["dx"], self.sys["dy"], self.sys["width"],
                                    self.sys["flux"], white],
                                   names="integration,dx,dy,width,flux,white_lc")
        return {"TRACE": self.trace, "COSMIC_RAYS": cr_table, "BADPIX": bp_table,
                "SHIFTS": shifts, "BACKGROUND": self.bkg.astype(np.float32),
                "CONTAMINANTS": self.contam.astype(np.float32),
                "MODEL": models.astype(np.float32),
                "WAVE": np.array([o.wave[lo:hi] for o in self.scene.orders], np.float32),
                "LIGHTCURVE": np.array(self.lc, np.float32),
                "REFPIX": self.refmask.astype(np.uint8)}

    def _colflux(self, model2d):
        return model2d.sum(axis=0 if self.disp_axis == 1 else 1)

    def _white_lc(self, models):
        w = self._colflux(models[0])
        return (self.lc[0] * w[None, :]).sum(axis=1) / w.sum()

    def white_light(self, models):
        """Flux-weighted depth (ppm) and limb darkening of the first order."""
        w = self._colflux(models[0])
        d = float((w * self.col_depth[0]).sum() / w.sum())
        u = [float((w * c).sum() / w.sum()) for c in self.col_u[0]]
        return d, u


# ---------------------------------------------------------------- files
def _fixed_date(mjd: float) -> str:
    from astropy.time import Time

    return Time(mjd, format="mjd", scale="utc").isot


def _meta_setter(v: _Visit, seg: int, nseg: int, i0: int, i1: int):
    cfg, tm = v.cfg, v.times

    def set_meta(model):
        m = model.meta
        start, end = float(tm["int_start_MJD_UTC"][0]), float(tm["int_end_MJD_UTC"][-1])
        iso = _fixed_date(start)
        m.origin, m.telescope = "tsocontainer.sim.simulate", "JWST"
        m.observation.date, m.observation.time = iso[:10], iso[11:]
        m.observation.program_number, m.observation.observation_number = "99999", "001"
        m.observation.visit_number, m.observation.visit_group = "001", "04"
        m.observation.sequence_id, m.observation.activity_id = "1", "01"
        m.observation.exposure_number, m.observation.visit_id = "00001", "99999001001"
        m.target.catalog_name = _TARGET["name"]
        m.target.ra, m.target.dec = _TARGET["ra"], _TARGET["dec"]
        m.visit.tsovisit = True
        m.instrument.name, m.instrument.detector = cfg["instrument"], cfg["detector"]
        m.instrument.filter = cfg["filter"]
        if cfg["pupil"]:
            m.instrument.pupil = cfg["pupil"]
        if cfg["grating"]:
            m.instrument.grating = cfg["grating"]
        if v.pwcpos is not None:
            m.instrument.pupil_position = v.pwcpos
        _exposure_meta(m.exposure, cfg, v, seg, nseg, i0, i1, start, end)
        _subarray_meta(m.subarray, cfg, v)
        m.time.barycentric_expstart = float(tm["int_start_BJD_TDB"][0])
        m.time.barycentric_expend = float(tm["int_end_BJD_TDB"][-1])
        m.time.barycentric_expmid = 0.5 * (m.time.barycentric_expstart
                                           + m.time.barycentric_expend)

    return set_meta


def _exposure_meta(e, cfg, v, seg, nseg, i0, i1, start, end):
    e.type, e.readpatt = cfg["exp_type"], cfg["readpatt"]
    e.nints, e.ngroups, e.nframes, e.groupgap = v.nint, int(cfg["ngroups"]), 1, 0
    e.frame_time = e.group_time = cfg["tgroup"]
    e.integration_time = v.t_int
    e.exposure_time = v.t_int * v.nint
    e.nresets_between_ints, e.nresets_at_start = int(cfg["nresets"]), 1
    e.integration_start, e.integration_end = i0 + 1, i1
    e.segment_number, e.segment_total = seg + 1, nseg
    e.start_time, e.end_time, e.mid_time = start, end, 0.5 * (start + end)
    e.duration = (end - start) * 86400.0


def _subarray_meta(s, cfg, v):
    """SUBARRAY, SUBSTRT1/2, SUBSIZE1/2, FASTAXIS/SLOWAXIS of the real subarray (+ crop)."""
    lo, hi = v.crop
    ny, nx = v.shape
    sub = simscene.subarray_of(cfg)
    xstart, ystart = sub.corner
    if v.disp_axis == 1:
        xstart += lo
    else:
        ystart += lo
    s.name, s.xstart, s.ystart, s.xsize, s.ysize = sub.name, xstart, ystart, nx, ny
    s.fastaxis, s.slowaxis = sub.fastaxis, sub.slowaxis


def _int_times(v: _Visit, i0: int, i1: int):
    rows = np.zeros(i1 - i0, dtype=INT_TIMES_DTYPE)
    rows["integration_number"] = np.arange(i0 + 1, i1 + 1)
    for key in v.times:
        rows[key] = v.times[key][i0:i1]
    return rows


def _segment_name(v: _Visit, seg: int) -> str:
    return f"{_ROOT}-seg{seg + 1:03d}_{v.cfg['det_tag']}_rateints.fits"


def simulate_visit(mode: str, nint: int, nseg: int = 1, seed: int = 0, out=None,
                   noiseless: bool = False, systematics=True, depth_spectrum=None,
                   **options) -> SimulatedVisit:
    """Simulate one TSO visit and write it as JWST ``rateints`` segments with truth.

    Parameters
    ----------
    mode : {"soss", "nirspec-prism", "nirspec-g395h", "nircam-f322w2", "miri-lrs"}
        Instrument mode.
    nint : int
        Total number of integrations, split as evenly as possible over ``nseg``.
    nseg : int
        Number of segments (files).
    seed : int
        Random seed: the same seed and options give bit-identical files.
    out : path-like, optional
        Output folder (created). None: nothing is written; the segments are
        returned in memory (``SimulatedVisit.models``) with the truth.
    noiseless : bool
        No photon/read/1/f noise, cosmic rays or bad pixels (background,
        contaminants, reference pixels and saturation flags remain; the
        variances are those of the noisy files).
    systematics : bool or dict
        True: the default systematics; False: none; a dict overrides
        amplitudes of :data:`tsocontainer.sim.astro.SYSTEMATICS_DEFAULTS`
        (0 switches one off).
    depth_spectrum : path-like or (wave_um, depth_ppm), optional
        Injected depth spectrum: a text table (wavelength in micron, depth in
        ppm; ``#`` comments) or two arrays. Default: the smooth spectrum with
        molecular bumps of :func:`tsocontainer.sim.astro.default_depth_spectrum`.
        For ``event="eclipse"`` the depths are the planet-to-star flux ratio.
        A column's depth is the table interpolated linearly at its wavelength
        (end values held beyond the table).
    **options
        ``params`` (dict: ``t0`` in BJD_TDB, ``per, a_rs, inc, ecc, w, rp_rs, b``),
        ``event`` ("transit"|"eclipse"), ``limb_darkening`` ("quadratic"|"none"),
        ``noise`` (dict overriding :data:`NOISE_DEFAULTS`: ``poisson``, ``read``,
        ``one_over_f`` rms in DN/s, ``cosmic_rays`` hits/pixel/s,
        ``bad_pixels``, ``saturation``), ``background`` (scale, 0 = none),
        ``contaminants`` (SOSS order-0 scale, 0 = none), ``reference_pixels``
        (bool), ``columns`` ((first, last+1) crop along the dispersion axis,
        for small test cubes), ``orders`` (SOSS subset), ``ngroups``,
        ``peak_fraction`` (brightest pixel / saturation, default 0.6),
        ``pwcpos`` (SOSS pupil-wheel position, deg), ``detector`` (G395H:
        "NRS1"|"NRS2"), ``teff``, ``transit_fraction`` (transit / visit
        duration when ``per`` is not given, 0.4), ``start_mjd``, ``block``
        (integrations per block), ``progress`` (bool), ``subarray`` (SOSS:
        "SUBSTRIP256", the default, "SUBSTRIP96" or "FULL"; written at its real
        corner, with only the orders whose light reaches it: SUBSTRIP96 holds
        order 1 and the red part of order 2 at its top rows).

    Returns
    -------
    SimulatedVisit
        ``files`` (segment paths in order), ``truth`` (the ``truth.json``
        content), ``truth_arrays()`` (the ``truth.fits`` content).

    Raises
    ------
    ValueError
        Unknown mode, option or option value (the message lists the allowed ones).

    Examples
    --------
    >>> vis = simulate_visit("soss", nint=20, out="sim", columns=(1200, 1456))  # doctest: +SKIP
    >>> vis.files[0]  # doctest: +SKIP
    'sim/jw99999001001_04101_00001-seg001_nis_rateints.fits'
    """
    t_start = _time.perf_counter()
    opts = _options(mode, nint, nseg, options)
    v = _Visit(mode, nint, seed, bool(noiseless), systematics, depth_spectrum, opts)
    folder = None if out is None else Path(out)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        clear_previous(folder)
    files, models = _write_segments(v, folder, int(nseg))
    arrays = v.arrays()
    truth = truth_json(v, files if folder is not None else
                        [_segment_name(v, s) for s in range(int(nseg))], arrays,
                        systematics is not False)
    if folder is not None:
        write_truth(folder, truth, arrays)
    log.info("simulated %s: %d integrations in %d segment(s)%s in %.1f s", mode, int(nint),
             int(nseg), f" -> {folder}" if folder else " (in memory)",
             _time.perf_counter() - t_start)
    return SimulatedVisit(files=files, truth=truth, folder=None if folder is None else str(folder),
                          models=models, _arrays=arrays)


def _write_segments(v: _Visit, folder, nseg: int):
    from tqdm import tqdm

    npix = v.shape[0] * v.shape[1]
    block = int(v.opts["block"] or max(1, int(8e6 // npix)))
    bounds = np.linspace(0, v.nint, nseg + 1).round().astype(int)
    fixed = _fixed_date(float(v.times["int_end_MJD_UTC"][-1]))
    show = v.opts["progress"]
    show = interactive() if show is None else bool(show)
    nblocks = sum(-(-(b - a) // block) for a, b in zip(bounds[:-1], bounds[1:]))
    bar = tqdm(total=nblocks, unit="block", desc=f"simulate {v.name}", disable=not show)
    tmpdir = None if folder is None else folder / f".tmp-simulate-{os.getpid()}"
    files, models = [], ([] if folder is None else None)
    try:
        if tmpdir is not None:
            tmpdir.mkdir(exist_ok=True)
        for seg, (i0, i1) in enumerate(zip(bounds[:-1], bounds[1:])):
            shape = (i1 - i0,) + v.shape
            args = (shape, _meta_setter(v, seg, nseg, i0, i1), _int_times(v, i0, i1), fixed)
            sink = (SegmentMemory(*args) if folder is None else
                    SegmentFile(folder / _segment_name(v, seg), *args, tmpdir=tmpdir))
            try:
                for b0 in range(i0, i1, block):
                    sink.write(b0 - i0, *v.block(b0, min(b0 + block, i1)))
                    bar.update(1)
                result = sink.commit()
            except BaseException:
                sink.abort()
                raise
            (files if folder is not None else models).append(result)
            log.debug("segment %d/%d done (integrations %d-%d)", seg + 1, nseg, i0 + 1, i1)
    finally:
        bar.close()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return files, models
