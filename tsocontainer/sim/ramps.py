"""Synthetic TSO visits at the ramp level: real-format ``uncal`` segments with truth.

:func:`simulate_ramps` draws the same scene as :func:`tsocontainer.sim.simulate_visit`
(star, trace geometry, transit, limb darkening, systematics, background, contaminants,
bad pixels: :mod:`tsocontainer.sim.scene` and :mod:`tsocontainer.sim.astro` through the
rate-level ``_Visit``) and turns each integration's noiseless count-rate image into
up-the-ramp reads. Choices, all in the truth:

* **Photons**: Poisson electrons drawn per group interval (independent increments),
  accumulated, divided by the gain (``gain`` e-/DN of the mode's configuration). Groups are
  single frames (``NFRAMES = 1``, ``GROUPGAP = 0``); group ``k`` (0-based) is read at
  ``(k + 1) * TGROUP`` after the reset.
* **Cosmic rays**: ``cosmic_rays`` hits per pixel per second, uniform in position and in
  time over the integration, charge log-uniform 300-30000 e-; each puts ``ipc`` of its
  charge into each of the four neighbours (a simple stand-in for inter-pixel capacitance
  and charge diffusion). A hit before the first read changes no group difference. Table
  ``JUMPS``: integration (1-based), group (0-based first group that contains the charge),
  y, x, charge (e-), amplitude (DN) and the noise of that pixel's group difference
  ``sigma_dn = sqrt(rate * TGROUP / gain + 2 read_noise**2)`` (no 1/f).
* **Non-linearity** (``nonlinearity`` = fractional deficit at 50 000 DN of signal, 0 =
  none): the read signal ``y`` solves ``S = y + b2 * y**2`` for the true signal ``S``
  (``b2`` per pixel, +-10 %); the exact correction ``[0, 1, b2]`` is written as the
  ``LINEARITY`` reference (jwst convention: corrected = sum of ``c_i * y**i``).
* **Bias**: a per-pixel superbias (``bias`` DN + ``bias_scatter`` per pixel + a column
  pattern) plus per-integration reset (kTC) noise of ``ktc`` DN per pixel.
* **Saturation**: the bias plus signal is clipped at a per-pixel hard level (the mode's
  ``saturation`` raw DN, uniform within +-3 %, at most 65 535); the ``SATURATION``
  reference holds 98 % of it.
* **Read noise**: Gaussian, ``read_noise`` DN per read (CDS noise ``sqrt(2)`` times that,
  the convention of the jwst READNOISE reference files and of stcal).
* **Group-level 1/f**: per group, one value per detector line (constant along the fast
  read axis, ``Mode.spec.onef_axis``), drawn with a 1/frequency power spectrum across the
  lines of the full subarray (:func:`tsocontainer.sim.noise.one_over_f`), rms
  ``one_over_f`` DN (default: the read noise, so that it roughly doubles the read-noise
  variance of a slope, as uncorrected 1/f does in SOSS). Reference pixels see it too.
* **Reference-level drift**: per group and amplifier an offset of rms
  ``reference_drift`` DN, plus a fixed even/odd offset (rms ``odd_even`` DN) along the fast
  axis, on every pixel of the amplifier including the reference pixels (which get no
  light).

Files: ``<root>-segNNN_<det>_uncal.fits`` (through ``stdatamodels`` ``Level1bModel``),
``truth.json`` and ``truth.fits`` (the rate-level truth, plus ``SUPERBIAS``,
``READNOISE``, ``SATURATION``, ``JUMPS``, ``ONEF``, ``REFDRIFT``, ``LINEARITY`` and, with
``save_rates``, ``RATE``: the noiseless count rate of every integration), and under
``refs/`` the reference files of :func:`tsocontainer.sim.rampfiles.write_references`.
"""
from __future__ import annotations

import logging
import os
import shutil
import time as _time
from pathlib import Path

import numpy as np

from tsocontainer.io.uncal import reference_pixel_mask
from tsocontainer.sim import noise as simnoise
from tsocontainer.sim.rampfiles import UncalFile, write_references
from tsocontainer.sim.simulate import (_ROOT, _Visit, _fixed_date, _int_times,
                                       _meta_setter, _options)
from tsocontainer.sim.truth import SimulatedVisit, clear_previous, truth_json, write_truth

__all__ = ["simulate_ramps", "jump_zone", "RAMP_NOISE_DEFAULTS", "RAMP_OPTION_DEFAULTS"]

log = logging.getLogger(__name__)

#: noise and detector components of :func:`simulate_ramps` (``noise=`` overrides them)
RAMP_NOISE_DEFAULTS = {"poisson": True, "read": True, "bad_pixels": True, "one_over_f": None,
                       "cosmic_rays": 1e-5, "ipc": 0.02, "saturation": True,
                       "nonlinearity": 0.0, "bias": 12000.0, "bias_scatter": 300.0,
                       "ktc": 15.0, "reference_drift": 3.0, "odd_even": 2.0}
#: options of :func:`simulate_ramps` besides those of :func:`simulate_visit`
RAMP_OPTION_DEFAULTS = {"save_rates": True, "references": True}
#: NIRSpec BOTS subarrays sit away from the detector's reference rows (SUB512 starts at
#: SUBSTRT2 = 957 in real headers); the rate-level simulator writes 1
_NIRSPEC_YSTART = 957
_DQ_REF = simnoise.DQ["REFERENCE_PIXEL"]


def _ramp_options(noise, options):
    bad = sorted(set(noise or {}) - set(RAMP_NOISE_DEFAULTS))
    if bad:
        raise ValueError(f"unknown noise key(s) {', '.join(bad)}; allowed: "
                         f"{', '.join(RAMP_NOISE_DEFAULTS)}")
    rn = dict(RAMP_NOISE_DEFAULTS)
    rn.update(noise or {})
    for key in ("cosmic_rays", "ipc", "nonlinearity", "ktc", "reference_drift", "odd_even",
                "bias_scatter"):
        if float(rn[key]) < 0:
            raise ValueError(f"noise[{key!r}] must be >= 0, got {rn[key]!r}")
    if rn["one_over_f"] is not None and float(rn["one_over_f"]) < 0:
        raise ValueError(f"noise['one_over_f'] must be >= 0, got {rn['one_over_f']!r}")
    extra = {k: options.pop(k, v) for k, v in RAMP_OPTION_DEFAULTS.items()}
    rate_noise = {"poisson": rn["poisson"], "read": rn["read"], "bad_pixels": rn["bad_pixels"],
                  "one_over_f": 0.0, "cosmic_rays": 0.0, "saturation": False}
    return rn, extra, rate_noise


class _RampVisit:
    """The rate-level visit plus the detector of the ramps (static maps, per-int draws)."""

    def __init__(self, v: _Visit, rn: dict):
        self.v, self.rn = v, rn
        cfg = v.cfg
        self.G, self.tg, self.gain = int(cfg["ngroups"]), float(cfg["tgroup"]), float(cfg["gain"])
        self.sig_read = float(cfg["read_noise"]) if rn["read"] and not v.noiseless else 0.0
        self.substrt = self._corner()
        mine = reference_pixel_mask(cfg["instrument"], v.shape, self.substrt)
        if not np.array_equal(mine, v.refmask):
            raise RuntimeError(f"{v.name}: reference pixels of the scene and of the subarray "
                               "corner disagree")
        self.refmask = mine
        self.fast = v.onef_axis
        self.nlines_full = cfg["shape"][1 - self.fast]
        self._static()

    def _rng(self, *tags):
        return np.random.default_rng([self.v.seed, 77, *tags])

    def _corner(self):
        """``(SUBSTRT1, SUBSTRT2)`` the rate-level writer puts in the headers (real corner + crop)."""
        from tsocontainer.sim.scene import subarray_of

        v = self.v
        x, y = subarray_of(v.cfg).corner
        if v.disp_axis == 1:
            x += v.crop[0]
        else:
            y += v.crop[0]
        return int(x), int(y)

    def _static(self):
        v, rn = self.v, self.rn
        ny, nx = v.shape
        rng = self._rng(1)
        col = rng.standard_normal(nx) * 0.3 * rn["bias_scatter"]
        self.bias = (rn["bias"] + rn["bias_scatter"] * rng.standard_normal(v.shape)
                     + col[None, :]) if rn["bias"] else np.zeros(v.shape)
        level = min(float(v.cfg["saturation"]), 65535.0)
        self.hard = np.minimum(level * rng.uniform(0.97, 1.03, v.shape), 65535.0)
        self.b2 = None
        if rn["nonlinearity"] > 0:
            self.b2 = rn["nonlinearity"] / 50000.0 * (1 + 0.1 * rng.standard_normal(v.shape))
        start = self.substrt[0 if self.fast == 1 else 1] - 1
        self.parity = (start + np.arange(v.shape[self.fast])) % 2
        self.even_odd = rng.standard_normal(2) * rn["odd_even"]
        rms = rn["one_over_f"]
        self.onef_rms = self.sig_read if rms is None else float(rms)
        if v.noiseless:
            self.onef_rms = 0.0
        self.cds = np.full(v.shape, np.sqrt(2.0) * float(v.cfg["read_noise"]))

    # ------------------------------------------------------------ per integration
    def rate(self, i: int):
        """Noiseless count rate (DN/s) of integration ``i`` (stores the TRACE truth)."""
        v = self.v
        return (v.star(i) + v.bkg + v.contam) * v.response + v.hot

    def _cosmic_rays(self, i, rate):
        """Charge (e-) added to each group and the truth rows of the hits."""
        v, rn = self.v, self.rn
        ny, nx = v.shape
        extra = np.zeros((self.G, ny, nx))
        if rn["cosmic_rays"] <= 0 or v.noiseless:
            return extra, None
        rng = self._rng(3, i)
        t_int = self.G * self.tg
        n = rng.poisson(rn["cosmic_rays"] * ny * nx * t_int)
        y, x = rng.integers(0, ny, n), rng.integers(0, nx, n)
        g0 = np.minimum((rng.uniform(0, t_int, n) // self.tg).astype(int), self.G - 1)
        q = np.exp(rng.uniform(np.log(300.0), np.log(30000.0), n))
        np.add.at(extra, (g0, y, x), q)
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            ok = (y + dy >= 0) & (y + dy < ny) & (x + dx >= 0) & (x + dx < nx)
            np.add.at(extra, (g0[ok], y[ok] + dy, x[ok] + dx), rn["ipc"] * q[ok])
        sigma = np.sqrt(rate[y, x] * self.tg / self.gain + 2 * self.sig_read ** 2)
        rows = (np.full(n, i + 1), g0, y, x, q, q / self.gain, sigma)
        return np.cumsum(extra, axis=0), rows

    def _signal(self, i, rate):
        """True accumulated signal (DN) at each read, cosmic rays included."""
        v = self.v
        mean_e = np.maximum(rate, 0.0) * self.tg * self.gain
        if self.rn["poisson"] and not v.noiseless:
            e = self._rng(2, i).poisson(np.broadcast_to(mean_e, (self.G,) + v.shape))
            cum = np.cumsum(e, axis=0, dtype=np.float64)
        else:
            cum = mean_e[None] * np.arange(1, self.G + 1)[:, None, None]
        crs, rows = self._cosmic_rays(i, rate)
        return (cum + crs) / self.gain, rows

    def _electronics(self, i):
        """Per-group 1/f line values and amplifier offsets (DN)."""
        v = self.v
        onef = np.zeros((self.G, self.nlines_full))
        if self.onef_rms > 0:
            onef = simnoise.one_over_f(self._rng(4, i), self.G, self.nlines_full, self.onef_rms)
        lines = onef if (1 - self.fast) != v.disp_axis else onef[:, slice(*v.crop)]
        drift = self._rng(5, i).standard_normal(self.G) * self.rn["reference_drift"]
        if v.noiseless:
            drift[:] = 0.0
        return lines, drift

    def integration(self, i: int):
        """uint16 raw ramps ``(G, ny, nx)`` of integration ``i`` and its truth pieces."""
        v = self.v
        rate = self.rate(i)
        signal, rows = self._signal(i, rate)
        if self.b2 is not None:
            signal = (np.sqrt(1.0 + 4.0 * self.b2 * signal) - 1.0) / (2.0 * self.b2)
        ktc = 0.0 if v.noiseless else self._rng(6, i).standard_normal(v.shape) * self.rn["ktc"]
        raw = np.minimum(self.bias + ktc + signal, self.hard)
        if self.sig_read > 0:
            raw += self._rng(7, i).standard_normal(raw.shape) * self.sig_read
        lines, drift = self._electronics(i)
        pattern = self.even_odd[self.parity]
        if self.fast == 0:
            raw += lines[:, None, :] + pattern[None, :, None]
        else:
            raw += lines[:, :, None] + pattern[None, None, :]
        raw += drift[:, None, None]
        return np.clip(np.rint(raw), 0, 65535).astype(np.uint16), rate, rows, lines, drift


def _write(rv: _RampVisit, folder: Path, nseg: int, block: int, save_rates: bool):
    """Write the segments; return the files and the truth pieces."""
    v = rv.v
    bounds = np.linspace(0, v.nint, nseg + 1).round().astype(int)
    fixed = _fixed_date(float(v.times["int_end_MJD_UTC"][-1]))
    tmpdir = folder / f".tmp-simulate-ramps-{os.getpid()}"
    tmpdir.mkdir(exist_ok=True)
    files, rows, onef, drift = [], [], [], []
    rates = np.empty((v.nint,) + v.shape, np.float32) if save_rates else None
    try:
        for seg, (i0, i1) in enumerate(zip(bounds[:-1], bounds[1:])):
            name = f"{_ROOT}-seg{seg + 1:03d}_{v.cfg['det_tag']}_uncal.fits"
            shape = (i1 - i0, rv.G) + v.shape
            sink = UncalFile(folder / name, shape, _set_meta(rv, seg, nseg, i0, i1),
                             _int_times(v, i0, i1), fixed, tmpdir)
            try:
                for b0 in range(i0, i1, block):
                    b1 = min(b0 + block, i1)
                    out = np.empty((b1 - b0, rv.G) + v.shape, np.uint16)
                    for j, i in enumerate(range(b0, b1)):
                        out[j], rate, hits, lines, dr = rv.integration(i)
                        if rates is not None:
                            rates[i] = rate
                        if hits is not None:
                            rows.append(hits)
                        onef.append(lines.astype(np.float32))
                        drift.append(dr.astype(np.float32))
                    sink.write(b0 - i0, out)
                files.append(sink.commit())
            except BaseException:
                sink.abort()
                raise
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return files, rows, np.array(onef), np.array(drift), rates


def _set_meta(rv: _RampVisit, seg, nseg, i0, i1):
    base = _meta_setter(rv.v, seg, nseg, i0, i1)

    def set_meta(model):
        base(model)
        model.meta.subarray.xstart, model.meta.subarray.ystart = rv.substrt
        model.meta.exposure.noutputs = 1
        model.meta.exposure.frame_time = rv.tg
        model.meta.exposure.group_time = rv.tg

    return set_meta


def _jump_table(rows):
    cols = [np.concatenate(c) for c in zip(*rows)] if rows else (
        [np.zeros(0, int)] * 4 + [np.zeros(0)] * 3)
    names = "integration,group,y,x,charge_e,amplitude_dn,sigma_dn"
    types = (np.int32,) * 4 + (np.float32,) * 3
    return np.rec.fromarrays([c.astype(t) for c, t in zip(cols, types)], names=names)


def _truth(rv: _RampVisit, files, rows, onef, drift, rates, systematics_on):
    v = rv.v
    arrays = v.arrays()
    jumps = _jump_table(rows)
    arrays["COSMIC_RAYS"] = np.rec.fromarrays(
        [jumps.integration, jumps.y, jumps.x, (jumps.charge_e / v.escale).astype(np.float32)],
        names="integration,y,x,amplitude")
    arrays.update({"JUMPS": jumps, "SUPERBIAS": rv.bias.astype(np.float32),
                   "READNOISE": rv.cds.astype(np.float32),
                   "SATURATION": (0.98 * rv.hard).astype(np.float32),
                   "ONEF": onef, "REFDRIFT": drift})
    if rv.b2 is not None:
        arrays["LINEARITY"] = _linearity(rv)
    if rates is not None:
        arrays["RATE"] = rates
    truth = truth_json(v, files, arrays, systematics_on)
    truth["format"] = "tsocontainer simulated ramps truth"
    truth["level"] = "uncal"
    rn = dict(rv.rn)
    rn["one_over_f"] = rv.onef_rms
    truth["ramps"] = {"gain": rv.gain, "read_noise_dn_per_read": rv.sig_read,
                      "read_noise_cds_dn": float(np.sqrt(2.0) * v.cfg["read_noise"]),
                      "group_time": rv.tg, "ngroups": rv.G, "nframes": 1, "groupgap": 0,
                      "noutputs": 1, "substrt": list(rv.substrt), "noise": rn,
                      "n_jumps": int(jumps.size),
                      "one_over_f_axis": rv.fast,
                      "saturation_reference": "98 % of the per-pixel hard level"}
    return truth, arrays


def _linearity(rv: _RampVisit):
    coeffs = np.zeros((3,) + rv.v.shape, np.float32)
    coeffs[1] = 1.0
    coeffs[2] = rv.b2
    return coeffs


def _references(rv: _RampVisit, folder: Path, arrays: dict) -> dict:
    v = rv.v
    meta = {"instrument": v.cfg["instrument"], "detector": v.cfg["detector"],
            "subarray": v.cfg["subarray"], "substrt": rv.substrt, "shape": v.shape}
    maps = {"gain": np.full(v.shape, rv.gain), "readnoise": rv.cds,
            "superbias": rv.bias, "saturation": arrays["SATURATION"],
            "mask": np.where(rv.refmask, np.uint32(_DQ_REF | simnoise.DQ["DO_NOT_USE"]),
                             v.dq_static)}
    if "LINEARITY" in arrays:
        maps["linearity"] = arrays["LINEARITY"]
    return write_references(folder / "refs", meta, maps)


def simulate_ramps(mode: str, nint: int, out, nseg: int = 1, seed: int = 0,
                   noiseless: bool = False, systematics=True, depth_spectrum=None,
                   noise=None, **options) -> SimulatedVisit:
    """Simulate one TSO visit as JWST ``uncal`` ramp segments, with truth and references.

    Parameters
    ----------
    mode : {"soss", "nirspec-prism", "nirspec-g395h", "nircam-f322w2", "miri-lrs"}
        Instrument mode.
    nint : int
        Total number of integrations.
    out : path-like
        Output folder (created).
    nseg : int
        Number of segments.
    seed : int
        Random seed (same seed and options: the same ramps).
    noiseless : bool
        No photon, read, reset, 1/f or drift noise, no cosmic rays and no bad pixels.
    systematics : bool or dict
        As :func:`tsocontainer.sim.simulate_visit`.
    depth_spectrum : path-like or (wave_um, depth_ppm), optional
        As :func:`tsocontainer.sim.simulate_visit`.
    noise : dict, optional
        Overrides of :data:`RAMP_NOISE_DEFAULTS` (``one_over_f`` in DN per group,
        ``cosmic_rays`` hits per pixel per second, ``ipc`` fraction, ``nonlinearity``
        fractional deficit at 50 000 DN, ``bias``/``bias_scatter``/``ktc``/
        ``reference_drift``/``odd_even`` in DN, ``poisson``/``read``/``bad_pixels``/
        ``saturation`` switches).
    **options
        The options of :func:`tsocontainer.sim.simulate_visit` (``columns``,
        ``ngroups``, ``params``, ``background``, ...) and ``save_rates`` (store the
        noiseless rate cube ``RATE`` in ``truth.fits``, default True), ``references``
        (write ``refs/``, default True).

    Returns
    -------
    SimulatedVisit
        ``files`` (the uncal segments), ``truth`` (with a ``ramps`` section and
        ``references``: reference type -> file), ``truth_arrays()``.

    Raises
    ------
    ValueError
        Unknown mode, option, noise key or value.

    Examples
    --------
    >>> import tempfile
    >>> v = simulate_ramps("miri-lrs", nint=3, out=tempfile.mkdtemp(), ngroups=5, seed=1)
    >>> v.truth["ramps"]["ngroups"], len(v.files)
    (5, 1)
    """
    t_start = _time.perf_counter()
    options = dict(options)
    rn, extra, rate_noise = _ramp_options(noise, options)
    opts = _options(mode, nint, nseg, dict(options, noise=rate_noise))
    v = _Visit(mode, nint, seed, bool(noiseless), systematics, depth_spectrum, opts)
    rv = _RampVisit(v, rn)
    if not rn["saturation"]:
        rv.hard[:] = np.inf
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    clear_previous(folder)
    block = int(opts["block"] or max(1, int(4e6 // (rv.G * v.shape[0] * v.shape[1]))))
    files, rows, onef, drift, rates = _write(rv, folder, int(nseg), block,
                                             bool(extra["save_rates"]))
    truth, arrays = _truth(rv, files, rows, onef, drift, rates, systematics is not False)
    if extra["references"]:
        truth["references"] = {k: str(Path(p).relative_to(folder))
                               for k, p in _references(rv, folder, arrays).items()}
    write_truth(folder, truth, arrays)
    log.info("simulated ramps of %s: %d integrations x %d groups in %d segment(s) -> %s "
             "in %.1f s", mode, int(nint), rv.G, int(nseg), folder,
             _time.perf_counter() - t_start)
    return SimulatedVisit(files=files, truth=truth, folder=str(folder), _arrays=arrays)


def jump_zone(jumps, shape):
    """Pixel-integrations where a jump flag is explained by an injected jump.

    The jump's pixel and its four neighbours carry charge (charge sharing),
    and stcal also flags the four neighbours of those: so the zone is the
    charged cross grown by one pixel along each axis. A flag outside it is false.

    Parameters
    ----------
    jumps : table-like
        The truth's ``JUMPS`` (``integration`` 1-based, ``y``, ``x``).
    shape : tuple
        ``(nint, ny, nx)`` of the flags.

    Returns
    -------
    ndarray of bool, shape ``shape``

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> j = SimpleNamespace(integration=np.array([1]), y=np.array([5]), x=np.array([5]))
    >>> int(jump_zone(j, (1, 10, 10)).sum())
    13
    """
    i = np.asarray(jumps.integration) - 1
    y, x = np.asarray(jumps.y), np.asarray(jumps.x)
    charged = np.zeros(shape, bool)
    for dy, dx in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
        yy, xx = y + dy, x + dx
        ok = (yy >= 0) & (yy < shape[1]) & (xx >= 0) & (xx < shape[2])
        charged[i[ok], yy[ok], xx[ok]] = True
    zone = charged.copy()
    zone[:, 1:] |= charged[:, :-1]
    zone[:, :-1] |= charged[:, 1:]
    zone[:, :, 1:] |= charged[:, :, :-1]
    zone[:, :, :-1] |= charged[:, :, 1:]
    return zone
