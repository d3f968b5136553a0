"""Noise, detector defects, background and contaminants of the simulator.

Used by :mod:`tsocontainer.sim.simulate`.

* **Variances** follow the jwst ramp-fit formulas for an ordinary least-squares
  slope with ``ngroups`` groups of one frame: ``VAR_RNOISE = 12 RN**2 /
  (ngroups (ngroups**2 - 1) tgroup**2)`` and ``VAR_POISSON = rate / (gain
  tgroup (ngroups - 1))``, evaluated on the noiseless model rate (the
  expectation; the pipeline uses the measured rate, which is noisier).
* **Photon noise** draws Poisson electrons with that variance exactly:
  ``Poisson(rate * gain * t_eff) / (gain * t_eff)``, ``t_eff = tgroup
  (ngroups - 1)``; **read noise** is Gaussian with ``VAR_RNOISE``. So
  ``(noisy - noiseless) / sqrt(VAR_POISSON + VAR_RNOISE)`` has unit variance
  on pixels without defects, cosmic rays or 1/f noise.
* **1/f noise** (not in the variances, as in the pipeline): one value per
  detector line, constant along the mode's fast-read axis
  (``Mode.spec.onef_axis``), drawn per integration with a power spectrum
  proportional to 1/frequency across the lines.
* **Cosmic rays**: residual (uncorrected) hits, Poisson in number, uniform in
  position, log-uniform deposited charge 300-30000 e- times the fraction of
  the ramp after the hit; not flagged (left for outlier detection).
* **Bad pixels**: hot (extra 0.5-50 DN/s), dead (no response) and low-QE
  (response 0.3-0.8) pixels; 80 % carry DQ bits (HOT/DEAD + DO_NOT_USE,
  LOW_QE), the rest are unknown to the DQ. Reference pixels receive no light
  and carry REFERENCE_PIXEL (+ DO_NOT_USE, or NON_SCIENCE on MIRI).
* **Saturation**: a per-pixel level (nominal +-3 %); SATURATED where the
  model ramp exceeds it by the last group, plus DO_NOT_USE (SCI = NaN) where
  it does so within two groups.
* **Background**: SOSS: the exoTEDRF SUBSTRIP96 zodiacal model with its step,
  placed at its detector rows (rows 10-105 of SUBSTRIP256) and continued outside
  by repeating its edge rows (for FULL too: an extrapolation, no full-frame model
  is shipped). NIRSpec: the star's band shape along the slit rows. NIRCam: a
  flat level with a 10 % gradient along x. MIRI: rising as (lambda/10)**3 with
  the row wavelength. All scaled by the ``background`` option.
* **SOSS contaminants**: the order-0 images of field stars from a real F277W
  SUBSTRIP256 exposure (exoTEDRF), cleaned by :func:`clean_contaminant_frame`,
  cut to the window's rows (none outside SUBSTRIP256's rows).
"""
from __future__ import annotations

import numpy as np

__all__ = ["read_noise_var", "poisson_scale", "one_over_f", "cosmic_rays", "bad_pixels",
           "reference_pixels", "saturation_levels", "background_model", "soss_contaminants",
           "clean_contaminant_frame", "DQ", "BADPIX_KINDS"]

#: JWST pipeline DQ bits used here (stdatamodels ``dqflags.pixel``)
DQ = {"DO_NOT_USE": 1, "SATURATED": 2, "JUMP_DET": 4, "DEAD": 1024, "HOT": 2048,
      "LOW_QE": 8192, "NON_SCIENCE": 1 << 20, "REFERENCE_PIXEL": 1 << 31}
#: kinds of the BADPIX truth table
BADPIX_KINDS = ("hot", "dead", "low_qe")


def read_noise_var(read_noise: float, ngroups: int, tgroup: float) -> float:
    """Variance (DN/s)^2 of an OLS slope from read noise ``read_noise`` (DN per read)."""
    n = int(ngroups)
    return 12.0 * read_noise ** 2 / (n * (n * n - 1) * tgroup ** 2)


def poisson_scale(gain: float, ngroups: int, tgroup: float) -> float:
    """Electrons per (DN/s): ``gain * tgroup * (ngroups - 1)`` (so VAR_POISSON = rate / it)."""
    return gain * tgroup * (int(ngroups) - 1)


def one_over_f(rng, nint: int, nlines: int, rms: float):
    """Per-integration 1/f line offsets.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    nint : int
        Integrations.
    nlines : int
        Detector lines (one value each, constant along the fast-read axis).
    rms : float
        Expected rms of the offsets (DN/s).

    Returns
    -------
    ndarray, shape (nint, nlines)
        Offsets whose power spectrum across the lines is proportional to
        1/frequency (no DC term).
    """
    nf = nlines // 2 + 1
    f = np.arange(nf) / nlines
    psd = np.zeros(nf)
    psd[1:] = 1.0 / f[1:]
    coef = (rng.standard_normal((nint, nf)) + 1j * rng.standard_normal((nint, nf)))
    coef *= np.sqrt(psd / 2.0)
    x = np.fft.irfft(coef, n=nlines, axis=1, norm="ortho")
    # expected variance of x (Parseval with the real/imaginary halves of each term)
    nyq = psd[-1] / 2.0 if nlines % 2 == 0 else psd[-1] * 2.0
    var = (2.0 * psd[1:-1].sum() + nyq) / nlines if nf > 2 else 1.0
    return x * (rms / np.sqrt(var))


def cosmic_rays(rng, shape, rate: float, t_int: float, e_per_rate: float):
    """Residual cosmic-ray hits of one integration.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    shape : (int, int)
        Frame shape.
    rate : float
        Hits per pixel per second.
    t_int : float
        Integration duration (s).
    e_per_rate : float
        Electrons per DN/s (:func:`poisson_scale`).

    Returns
    -------
    y, x : ndarray of int
    amplitude : ndarray
        Added count rate (DN/s).
    """
    n = rng.poisson(rate * shape[0] * shape[1] * t_int) if rate > 0 else 0
    y = rng.integers(0, shape[0], n)
    x = rng.integers(0, shape[1], n)
    charge = np.exp(rng.uniform(np.log(300.0), np.log(30000.0), n))
    after = rng.uniform(0.0, 1.0, n)
    return y, x, charge * after / e_per_rate


def bad_pixels(rng, shape, fractions=(0.001, 0.0005, 0.002), known=0.8):
    """Hot, dead and low-QE pixels.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    shape : (int, int)
        Frame shape.
    fractions : (float, float, float)
        Fractions of hot, dead and low-QE pixels.
    known : float
        Fraction of them that carry DQ bits.

    Returns
    -------
    table : dict of ndarray
        ``y, x, kind`` (index into :data:`BADPIX_KINDS`), ``flagged``, ``value``
        (hot: extra DN/s; low_qe: response; dead: 0).
    response : ndarray
        Multiplicative response map (1 = normal).
    hot : ndarray
        Additive rate map (DN/s).
    dq : ndarray of uint32
        Static DQ bits of the flagged ones.
    """
    npix = shape[0] * shape[1]
    counts = [int(round(f * npix)) for f in fractions]
    flat = rng.choice(npix, size=sum(counts), replace=False)
    kind = np.repeat(np.arange(3), counts)
    flagged = rng.uniform(size=flat.size) < known
    value = np.zeros(flat.size)
    hot = kind == 0
    value[hot] = np.exp(rng.uniform(np.log(0.5), np.log(50.0), hot.sum()))
    low = kind == 2
    value[low] = rng.uniform(0.3, 0.8, low.sum())
    response = np.ones(npix)
    response[flat[kind == 1]] = 0.0
    response[flat[low]] = value[low]
    hotmap = np.zeros(npix)
    hotmap[flat[hot]] = value[hot]
    bits = np.array([DQ["HOT"] | DQ["DO_NOT_USE"], DQ["DEAD"] | DQ["DO_NOT_USE"], DQ["LOW_QE"]],
                    np.uint32)
    dq = np.zeros(npix, np.uint32)
    dq[flat[flagged]] = bits[kind[flagged]]
    y, x = np.divmod(flat, shape[1])
    table = {"y": y, "x": x, "kind": kind, "flagged": flagged, "value": value}
    return table, response.reshape(shape), hotmap.reshape(shape), dq.reshape(shape)


def reference_pixels(name: str, shape, instrument: str, corner):
    """Boolean map of reference pixels of a (cropped) subarray and their DQ bits.

    The reference pixels are the outer 4 rows and columns of the full detector (the outer
    4 columns for MIRI) that the subarray, placed at its real corner, covers: a NIRSpec
    SUB512 in the middle of NRS1 has none, SOSS SUBSTRIP256 ends at the top rows.

    Parameters
    ----------
    name : str
        Simulated mode.
    shape : (int, int)
        Cropped frame shape.
    instrument : str
        ``INSTRUME``.
    corner : (int, int)
        ``(SUBSTRT1, SUBSTRT2)`` of the (cropped) frame, 1-based.

    Returns
    -------
    mask : ndarray of bool
    bits : int

    Examples
    --------
    >>> m, _ = reference_pixels("nirspec-prism", (32, 512), "NIRSPEC", (1025, 957))
    >>> int(m.sum())
    0
    """
    from tsocontainer.io.uncal import reference_pixel_mask

    mask = reference_pixel_mask(instrument, shape, corner)
    bits = DQ["REFERENCE_PIXEL"] | (DQ["NON_SCIENCE"] if name == "miri-lrs" else DQ["DO_NOT_USE"])
    return mask, bits


def saturation_levels(rng, shape, level: float):
    """Per-pixel saturation level (DN): nominal +-3 % (Gaussian)."""
    return level * (1.0 + 0.03 * rng.standard_normal(shape))


#: 1-based detector rows (DMS) of the first row of SOSS SUBSTRIP96 and SUBSTRIP256
_SOSS_ROW1 = {"SUBSTRIP96": 1803, "SUBSTRIP256": 1793}


def _soss_background(substrt2: int, ny: int):
    """The SUBSTRIP96 model on detector rows ``substrt2 .. substrt2 + ny - 1`` (edges held)."""
    from tsocontainer.modes._tables import load_npz

    m96 = np.asarray(load_npz("soss_model_background96.npz", "background"), float)
    rows = np.clip(np.arange(ny) + substrt2 - _SOSS_ROW1["SUBSTRIP96"], 0, m96.shape[0] - 1)
    return m96[rows]


def background_model(name: str, shape_full, wave_disp, throughput_disp, level: float,
                     substrt2: int = _SOSS_ROW1["SUBSTRIP256"]):
    """Background count rate (DN/s) on the full (uncropped) subarray.

    Parameters
    ----------
    name : str
        Simulated mode.
    shape_full : (int, int)
        Subarray shape.
    wave_disp : ndarray
        Wavelength of each pixel along the dispersion axis (order 1).
    throughput_disp : ndarray
        Throughput of each pixel along the dispersion axis (order 1).
    level : float
        Scale (``background`` option; 0 = none).
    substrt2 : int
        ``SUBSTRT2`` of the subarray (SOSS: where its rows fall on the model).

    Returns
    -------
    ndarray
        Background in detector orientation.

    Examples
    --------
    >>> b96 = background_model("soss", (96, 2048), None, None, 1.0, substrt2=1803)
    >>> b256 = background_model("soss", (256, 2048), None, None, 1.0)
    >>> bool(np.array_equal(b96, b256[10:106]))
    True
    """
    ny, nx = shape_full
    if level == 0:
        return np.zeros(shape_full)
    if name == "soss":
        return level * _soss_background(int(substrt2), ny)
    if name.startswith("nirspec"):
        band = throughput_disp / max(throughput_disp.max(), 1e-30)
        return level * np.broadcast_to(band[None, :], shape_full).copy()
    if name == "nircam-f322w2":
        return level * np.broadcast_to(1.0 + 0.1 * np.arange(nx) / nx, shape_full).copy()
    w = np.nan_to_num(wave_disp, nan=4.0)
    return level * np.broadcast_to(((w / 10.0) ** 3)[:, None], shape_full).copy()


def clean_contaminant_frame(raw, nsigma: float = 5.0, min_pixels: int = 6):
    """Keep only the order-0 images of field stars in a SOSS F277W frame.

    Subtracts a per-column median background, removes the target's own
    F277W order-1 trace (rows 40-110 of columns < 520 in SUBSTRIP256),
    keeps connected groups of at least ``min_pixels`` pixels above
    ``nsigma`` robust sigma (grown by 2 pixels) and sets everything else to 0.

    Parameters
    ----------
    raw : ndarray, shape (256, 2048)
        The F277W frame (DN/s).
    nsigma : float
        Detection threshold.
    min_pixels : int
        Smallest kept group.

    Returns
    -------
    ndarray of float32
        Contaminant-only frame (DN/s), zero elsewhere.
    """
    from scipy import ndimage

    f = np.nan_to_num(np.asarray(raw, float))
    f = f - np.median(f, axis=0, keepdims=True)
    f[40:110, :520] = 0.0
    sigma = 1.4826 * np.median(np.abs(f - np.median(f)))
    det = f > nsigma * sigma
    lab, n = ndimage.label(det)
    sizes = ndimage.sum(det, lab, index=np.arange(1, n + 1))
    keep = np.isin(lab, 1 + np.flatnonzero(sizes >= min_pixels))
    keep = ndimage.binary_dilation(keep, iterations=2)
    out = np.where(keep, np.clip(f, 0, None), 0.0)
    out[:4, :] = 0.0
    out[-4:, :] = 0.0
    out[:, :4] = 0.0
    out[:, -4:] = 0.0
    return out.astype(np.float32)


def soss_contaminants(substrt2: int = _SOSS_ROW1["SUBSTRIP256"], ny: int = 256):
    """The shipped cleaned F277W contaminant frame (DN/s) on a SOSS window's rows.

    The frame is a SUBSTRIP256 exposure; rows of the window outside it get no
    contaminant light.

    Parameters
    ----------
    substrt2 : int
        ``SUBSTRT2`` of the window (1803 for SUBSTRIP96, 1 for FULL).
    ny : int
        Rows of the window.

    Returns
    -------
    ndarray, shape (ny, 2048)

    Examples
    --------
    >>> c256 = soss_contaminants()
    >>> c96 = soss_contaminants(1803, 96)
    >>> bool(np.array_equal(c96, c256[10:106])), bool(soss_contaminants(1, 2048)[:1792].any())
    (True, False)
    """
    from tsocontainer.modes._tables import load_npz

    frame = np.asarray(load_npz("soss_f277w_contaminants.npz", "frame"), float)
    first = _SOSS_ROW1["SUBSTRIP256"]
    if (substrt2, ny) == (first, frame.shape[0]):
        return frame
    out = np.zeros((ny, frame.shape[1]))
    rows = np.arange(ny) + substrt2 - first
    ok = (rows >= 0) & (rows < frame.shape[0])
    out[ok] = frame[rows[ok]]
    return out
