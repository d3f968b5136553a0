"""Per-block ramp calibrations on plain arrays: saturation, bias, linearity.

Every function takes a block of ramps ``data`` of shape ``(n, ngroups, ny, nx)`` (float32
DN, edited in place where said) and its group DQ ``gdq`` (uint8 JWST group bits), so the
container can stream a visit through them one block of integrations at a time.
"""
from __future__ import annotations

import warnings

import numpy as np

from tsocontainer.arrays.numerics import nanmedian0

__all__ = ["GROUP_DQ", "flag_saturated", "flag_plateaus", "zero_level", "apply_linearity",
           "cds_noise", "estimate_noise", "measure_read_noise"]

#: JWST group DQ bits (``stdatamodels.jwst.datamodels.dqflags.group``)
GROUP_DQ = {"DO_NOT_USE": 1, "SATURATED": 2, "JUMP_DET": 4, "DROPOUT": 8, "AD_FLOOR": 64}
#: pixels per chunk of measure_read_noise (a few MB of float64 per temporary)
_RN_CHUNK = 16384


def _propagate(bad):
    """A group flagged as saturated makes every later group of its ramp saturated (in place)."""
    for k in range(1, bad.shape[1]):     # contiguous frames: faster than accumulate on axis 1
        bad[:, k] |= bad[:, k - 1]
    return bad


def flag_saturated(data, gdq, level) -> int:
    """Flag groups at or above ``level`` (and all later groups) SATURATED; zeros AD_FLOOR.

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Raw ramps (DN, bias included).
    gdq : ndarray of uint8, same shape
        Group DQ, edited in place.
    level : ndarray, shape (ny, nx), or None
        Saturation threshold (raw DN); None: only the A/D floor is checked.

    Returns
    -------
    int
        Number of ramps (integration, pixel) with a saturated group.

    Examples
    --------
    >>> d = np.array([10., 50., 90., 95.]).reshape(1, 4, 1, 1)
    >>> g = np.zeros(d.shape, np.uint8)
    >>> flag_saturated(d, g, np.full((1, 1), 80.)), g.ravel().tolist()
    (1, [0, 0, 2, 2])
    """
    nsat = 0
    if level is not None:
        ramps = _ramps_where(np.fmax.reduce(data, axis=1) >= level[None])
        if ramps is not None:           # only the ramps that reach the level
            vals, flags, pix = _gather_ramps(data, gdq, ramps)
            sat = _propagate(vals >= np.asarray(level).reshape(-1)[pix][:, None, None])
            flags[sat] |= np.uint8(GROUP_DQ["SATURATED"])
            _scatter_ramps(gdq, ramps, flags)
            nsat = int(sat[:, -1].sum())
    ramps = _ramps_where(np.fmin.reduce(data, axis=1) <= 0)
    if ramps is not None:
        vals, flags, _ = _gather_ramps(data, gdq, ramps)
        flags[vals <= 0] |= np.uint8(GROUP_DQ["AD_FLOOR"] | GROUP_DQ["DO_NOT_USE"])
        _scatter_ramps(gdq, ramps, flags)
    return nsat


def _ramps_where(mask):
    """(integration, flat pixel) indices of the True ramps of ``mask`` (n, ny, nx), or None."""
    flat = np.flatnonzero(mask)
    if flat.size == 0:
        return None
    npix = mask.shape[1] * mask.shape[2]
    return flat // npix, flat % npix


def _gather_ramps(data, gdq, ramps):
    """The groups ``(k, ngroups, 1)`` of ``k`` ramps, their DQ, and their flat pixels."""
    i, p = ramps
    y, x = np.divmod(p, data.shape[3])
    return data[i, :, y, x][:, :, None], gdq[i, :, y, x][:, :, None], p


def _scatter_ramps(gdq, ramps, flags):
    """Write the DQ ``(k, ngroups, 1)`` of the ramps back."""
    i, p = ramps
    y, x = np.divmod(p, gdq.shape[3])
    gdq[i, :, y, x] = flags[:, :, 0]


def flag_plateaus(data, gdq, cds, floor: float = 30000.0, nsigma: float = 5.0) -> int:
    """Flag the flat tops of clipped ramps SATURATED (a data-driven saturation check).

    A ramp that hits the detector's full well stops rising: from some group ``j`` on,
    every group difference is consistent with zero. Groups from the first such ``j``
    whose raw value is at least ``floor`` are flagged (group ``j`` itself may already be
    clipped, so it is included).

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Raw ramps (DN).
    gdq : ndarray of uint8
        Group DQ, edited in place.
    cds : ndarray, shape (ny, nx), or float
        CDS read noise (DN): a difference below ``nsigma * cds`` counts as flat.
    floor : float
        Raw DN below which a ramp is never taken as saturated.
    nsigma : float
        Flatness threshold.

    Returns
    -------
    int
        Ramps with newly flagged groups.

    Examples
    --------
    >>> d = np.array([40000., 50000., 60000., 60002., 59999.]).reshape(1, 5, 1, 1)
    >>> g = np.zeros(d.shape, np.uint8)
    >>> flag_plateaus(d, g, 10.0), g.ravel().tolist()
    (1, [0, 0, 2, 2, 2])
    """
    if data.shape[1] < 2:
        return 0
    ramps = _ramps_where(np.fmax.reduce(data[:, :-1], axis=1) >= floor)
    if ramps is None:                   # no ramp reaches the floor before its last group
        return 0
    full, gdq_full = data, gdq
    data, gdq, pix = _gather_ramps(full, gdq_full, ramps)
    limit = np.broadcast_to(nsigma * np.asarray(cds, np.float32), full.shape[2:])
    suffix = np.diff(data, axis=1) < limit.reshape(-1)[pix][:, None, None]
    for k in range(suffix.shape[1] - 2, -1, -1):     # flat from difference k to the end
        suffix[:, k] &= suffix[:, k + 1]
    start = suffix & (data[:, :-1] >= floor)
    sat = np.zeros(data.shape, bool)
    sat[:, :-1] = start
    sat[:, -1] = start[:, -1]
    sat = _propagate(sat)
    new = sat & (gdq & np.uint8(GROUP_DQ["SATURATED"]) == 0)
    gdq[sat] |= np.uint8(GROUP_DQ["SATURATED"])
    _scatter_ramps(gdq_full, ramps, gdq)
    return int(new.any(axis=1).sum())


def zero_level(data, gdq):
    """Each ramp extrapolated to the reset (``2 * group0 - group1``), NaN where unusable.

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Ramps (DN).
    gdq : ndarray of uint8
        Group DQ (saturated or do-not-use groups are not used).

    Returns
    -------
    ndarray of float32, shape (n, ny, nx)
        With one group only: group 0 itself.
    """
    bad = (gdq & np.uint8(GROUP_DQ["SATURATED"] | GROUP_DQ["DO_NOT_USE"])) != 0
    if data.shape[1] < 2:
        return np.where(bad[:, 0], np.nan, data[:, 0]).astype(np.float32)
    z = 2.0 * data[:, 0] - data[:, 1]
    return np.where(bad[:, 0] | bad[:, 1], np.nan, z).astype(np.float32)


def apply_linearity(data, coeffs) -> None:
    """Replace bias-subtracted ramps by ``sum_i coeffs[i] * data**i`` (in place).

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Bias-subtracted ramps (DN), edited in place.
    coeffs : ndarray, shape (ncoeff, ny, nx)
        Polynomial coefficients (jwst LINEARITY convention), lowest order first.

    Examples
    --------
    >>> d = np.full((1, 2, 1, 1), 100.0, np.float32)
    >>> apply_linearity(d, np.array([0.0, 1.0, 1e-4]).reshape(3, 1, 1)); float(d[0, 0, 0, 0])
    101.0
    """
    x = data.astype(np.float64)
    out = np.full(data.shape, coeffs[-1], np.float64)
    for c in coeffs[-2::-1]:
        out *= x
        out += c
    data[...] = out


def cds_noise(data, refmask) -> float:
    """Robust standard deviation of the reference pixels' group differences (CDS noise, DN).

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Ramps.
    refmask : ndarray of bool, shape (ny, nx)
        Reference pixels.

    Returns
    -------
    float
        NaN when there are no reference pixels or fewer than two groups.
    """
    if data.shape[1] < 2 or not refmask.any():
        return float("nan")
    d = np.diff(data[:, :, refmask], axis=1).ravel()
    med = np.median(d)
    return float(1.4826 * np.median(np.abs(d - med)))


def estimate_noise(data, gdq, exclude, gain=None, nbins: int = 12):
    """Gain and CDS read noise from the scatter of the group differences (photon transfer).

    Inside each ramp the rate is constant, so the ``n = ngroups - 1`` group differences of
    a pixel scatter about their mean with variance ``cds**2 (1 + 1/n) + m / gain`` (``m``:
    the mean difference in DN; the ``1 + 1/n`` comes from the shared reads of adjacent
    differences). Per pixel, ``v`` is the mean over the sampled ramps of that sample
    variance (ramps with a jump, i.e. a variance over 5 times the pixel's median, left
    out) and ``m`` the median difference. The read noise is the median over pixels of
    ``(v - m / gain) / (1 + 1/n)`` when the gain is given; otherwise both come from a
    straight-line fit of the median ``v`` in logarithmic bins of ``m`` (photon transfer,
    which needs pixels over a range of signal).

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Calibrated ramps of a sample of integrations (with 1/f removed, or it inflates
        ``v``).
    gdq : ndarray of uint8
        Group DQ (ramps with a saturated or do-not-use group are left out).
    exclude : ndarray of bool, shape (ny, nx)
        Pixels not to use (reference pixels, known bad pixels).
    gain : ndarray or float, optional
        Known gain: only the read noise is estimated.
    nbins : int
        Signal bins of the photon-transfer fit.

    Returns
    -------
    gain : float
        The given median gain, or the fitted one.
    cds : float
        CDS read noise (DN).

    Raises
    ------
    ValueError
        Fewer than 3 groups, too few usable pixels, or (fitting the gain) too little range
        of signal.
    """
    n = data.shape[1] - 1
    if n < 2:
        raise ValueError("estimating the noise needs at least 3 groups")
    d = np.diff(data[:, :, ~exclude], axis=1).astype(np.float64)     # (nint, n, npix)
    ok = ((gdq[:, :, ~exclude] & np.uint8(1 | 2 | 4)) == 0).all(axis=1)
    s2 = np.where(ok, d.var(axis=1, ddof=1), np.nan)
    mean = np.where(ok, d.mean(axis=1), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(s2, axis=0)
        s2 = np.where(s2 < 5 * med[None], s2, np.nan)
        v = np.nanmean(s2, axis=0)
        m = np.nanmedian(mean, axis=0)
    use = np.isfinite(v) & np.isfinite(m) & (np.isfinite(s2).sum(axis=0) >= 2)
    if use.sum() < 50:
        raise ValueError(f"too few usable pixels ({int(use.sum())}) to estimate the noise")
    v, m = v[use], m[use]
    if gain is not None:
        g = float(np.median(gain))
        cds2 = np.median(v - np.maximum(m, 0) / g) / (1 + 1 / n)
        return g, float(np.sqrt(max(cds2, 0.0)))
    pos = m > 0
    edges = np.geomspace(max(np.percentile(m[pos], 1), 1e-3), m[pos].max() * 1.0001, nbins + 1)
    idx = np.digitize(m[pos], edges) - 1
    keep = [k for k in range(nbins) if (idx == k).sum() >= 20]
    if len(keep) < 3:
        raise ValueError("the signal does not span enough range to fit the gain")
    mb = np.array([np.median(m[pos][idx == k]) for k in keep])
    vb = np.array([np.median(v[pos][idx == k]) for k in keep])
    slope, icept = np.polyfit(mb, vb, 1)
    if slope <= 0:
        raise ValueError("the photon-transfer fit gave a non-positive slope")
    return float(1.0 / slope), float(np.sqrt(max(icept / (1 + 1 / n), 0.0)))


def measure_read_noise(data, gdq, exclude, gain, nframes: int = 1, nsplit: int = 8,
                       poisson_fraction: float = 0.1):
    """CDS read noise (DN) of the ramps themselves: robust scatter of second differences.

    Within a ramp the rate is constant, so the second differences of the group values,
    ``r[k+2] - 2 r[k+1] + r[k]``, have no signal; their variance is
    ``3 cds**2 / nframes + 2 m / gain`` (``m``: the pixel's mean group difference in DN).
    Only low-signal pixels are used, where ``2 m / gain`` is at most ``poisson_fraction``
    of the read-noise term (so a gain wrong by 30 % moves the result by under 2 %), and
    the scatter is ``1.4826`` times the median absolute deviation of all their second
    differences (jumps and flagged groups do not pull it). The mean Poisson term of the
    pixels used is subtracted. The precision is the scatter of the estimate over
    ``nsplit`` disjoint random sets of pixels, divided by ``sqrt(nsplit)``.

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Calibrated ramps (the ramps the jump detection will see).
    gdq : ndarray of uint8
        Group DQ: groups flagged DO_NOT_USE, SATURATED or JUMP_DET are left out.
    exclude : ndarray of bool, shape (ny, nx)
        Pixels not to use (reference pixels, known bad pixels).
    gain : float or ndarray
        Gain (e-/DN) for the small Poisson term.
    nframes : int
        Frames averaged per group.
    nsplit : int
        Random pixel sets of the precision estimate.
    poisson_fraction : float
        Largest Poisson share of the read-noise term in a pixel used.

    Returns
    -------
    cds : float
        CDS read noise (DN).
    rel_err : float
        Relative statistical precision of ``cds``.
    npix : int
        Pixels used.

    Raises
    ------
    ValueError
        Fewer than 3 groups, or fewer than 100 usable low-signal pixels.

    Examples
    --------
    Flat ramps of 2 DN per group with 10 DN of CDS read noise (7.07 DN per read):

    >>> rng = np.random.default_rng(0)
    >>> ramps = 2.0 * np.arange(10)[None, :, None, None] + rng.normal(0, 10 / 2**0.5, (4, 10, 32, 32))
    >>> cds, rel, n = measure_read_noise(ramps, np.zeros(ramps.shape, np.uint8),
    ...                                  np.zeros((32, 32), bool), gain=2.0)
    >>> bool(abs(cds - 10.0) < 0.5), n
    (True, 1024)
    """
    if data.shape[1] < 3:
        raise ValueError("measuring the read noise needs at least 3 groups")
    pix = np.flatnonzero(~np.asarray(exclude, bool).ravel())
    flat = (data.reshape(data.shape[:2] + (-1,)), gdq.reshape(gdq.shape[:2] + (-1,)))
    m = np.empty(pix.size)
    nfinite = np.empty(pix.size, np.int64)
    for c0 in range(0, pix.size, _RN_CHUNK):          # pixel chunks: no visit-sized float64
        d, dd = _second_differences(*flat, pix[c0:c0 + _RN_CHUNK])
        m[c0:c0 + _RN_CHUNK] = nanmedian0(d.reshape(-1, d.shape[-1]))   # as np.nanmedian
        nfinite[c0:c0 + _RN_CHUNK] = np.isfinite(dd).sum(axis=(0, 1))
    g = np.broadcast_to(np.asarray(gain, np.float64), exclude.shape).ravel()[pix]
    pois = 2.0 * np.maximum(np.nan_to_num(m, nan=np.inf), 0.0) / g
    finite = np.isfinite(pois) & (nfinite >= 2)
    if finite.sum() < 100:
        raise ValueError(f"too few usable pixels ({int(finite.sum())}) to measure the read noise")
    low = finite & (pois <= np.percentile(pois[finite], 25))
    var_read = _robust_var(_second_differences(*flat, pix[low])[1]) - pois[low].mean()
    use = finite & (pois <= poisson_fraction * max(var_read, 0.0))
    if use.sum() < 100:
        raise ValueError(f"too few low-signal pixels ({int(use.sum())}) to measure the "
                         "read noise")
    idx = np.flatnonzero(use)
    dd = _second_differences(*flat, pix[idx])[1]      # the columns of idx, in its order

    def cds_of(cols):
        v = _robust_var(dd[:, :, np.searchsorted(idx, cols)]) - pois[cols].mean()
        return float(np.sqrt(max(v, 0.0) * nframes / 3.0))

    cds = cds_of(idx)
    parts = np.array_split(np.random.default_rng(0).permutation(idx), nsplit)
    rel_err = float(np.std([cds_of(p) for p in parts], ddof=1) / np.sqrt(nsplit) / cds) \
        if cds > 0 else float("inf")
    return cds, rel_err, int(idx.size)


def _second_differences(data, gdq, cols):
    """First differences (NaN where a group is flagged) and second differences of the
    ramps ``data[:, :, cols]`` (``(n, ngroups, npix)``), in float64."""
    r = data[:, :, cols].astype(np.float64)
    good = (gdq[:, :, cols] & np.uint8(1 | 2 | 4)) == 0
    d = np.diff(r, axis=1)
    dok = good[:, 1:] & good[:, :-1]
    dd = np.where(dok[:, 1:] & dok[:, :-1], np.diff(d, axis=1), np.nan)   # (n, G-2, npix)
    return np.where(dok, d, np.nan), dd


def _robust_var(x) -> float:
    """Square of 1.4826 x the median absolute deviation of the finite values of ``x``."""
    x = x[np.isfinite(x)]
    return float((1.4826 * np.median(np.abs(x - np.median(x)))) ** 2)
