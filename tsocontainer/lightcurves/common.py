"""Common-mode error of channel depths fitted with the white-light geometry fixed.

``fit_channels(geometry="fixed")`` holds the orbit (``t0``/``t_sec``, ``a_rs``,
``inc``/``b``, ``ecc``, ``w``) and the ramp's time constant at the white-light
medians, so the channel errors leave out the uncertainty of that geometry. It
moves every channel's depth together (a weak white-light fit shifted every
channel of a visit by the same few thousand ppm while the quoted errors did not
change). This module propagates it, linearised:

1. the white-light posterior covariance ``S`` of the geometry parameters that
   were free there (log-uniform ones, ``ramp_tau``, in their logarithm) gives
   its principal axes ``v_k`` and standard deviations ``s_k``;
2. each channel is re-solved by least squares (its own depth, limb darkening and
   systematics free) with the geometry at the white medians ``+/- s_k v_k``;
3. the depth shift along axis ``k`` is ``D_k = (d(+) - d(-)) / 2``, and the
   common-mode variance of the channel is ``sum_k D_k^2``.

The shifts of all channels along the same axes are fully correlated: the
covariance between channels ``c`` and ``c'`` is ``sum_k D_ck D_c'k`` (kept in
``FitResult.diagnostics["common_mode"]``). The common-mode error is reported as
its own column (``err_common``); it is not added to the channel errors, which
stay the right errors for the spectrum's shape. For absolute depths add both in
quadrature. Central differences over +/- 1 sigma keep the first-order error
(the shift's curvature cancels); a posterior far from Gaussian in these
parameters is treated by its covariance only.
"""
from __future__ import annotations

import numpy as np

from tsocontainer.lightcurves.priors import physical_bounds

__all__ = ["geometry_axes", "depth_shifts", "posterior_cov"]


def geometry_axes(white, names) -> dict | None:
    """Principal axes of the white-light posterior of the geometry ``names``.

    Parameters
    ----------
    white : FitResult
        The white-light fit: its samples, or (read from a file) the covariance
        it stored in ``diagnostics["posterior_cov"]``.
    names : sequence of str
        Geometry parameters held fixed in the channel fits.

    Returns
    -------
    dict or None
        ``{"names", "center", "steps" (k, len(names)), "log" (bool per name)}``
        with the steps in the fitted (log for log-uniform) variables; None
        when no name was free in the white-light fit or it carries neither
        samples nor a stored covariance.

    Examples
    --------
    >>> geometry_axes(None, ["t0"]) is None
    True
    """
    if white is None:
        return None
    stored = white.diagnostics.get("posterior_cov") or {}
    if white.samples is not None:
        have = list(white.sample_names or [])
    else:  # a result read from a file: the covariance it stored
        have = list(stored.get("names", []))
    free = [n for n in names if white.status.get(n) == "free" and n in have]
    if not free:
        return None
    log = np.array([str(white.priors.get(n, "")).startswith("loguniform") for n in free])
    if white.samples is not None:
        x = np.stack([white.sample(n) for n in free], axis=1)
        x[:, log] = np.log(x[:, log])
        cov = np.atleast_2d(np.cov(x, rowvar=False))
    else:
        idx = [have.index(n) for n in free]
        cov = np.asarray(stored["cov"], dtype=float)[np.ix_(idx, idx)]
    center = np.array([white.median[n] for n in free], dtype=float)
    lam, vec = np.linalg.eigh(cov)
    keep = lam > lam.max() * 1e-12
    steps = (vec[:, keep] * np.sqrt(lam[keep])).T
    return {"names": free, "center": center, "steps": steps, "log": log}


def _depth_at(time, flux, err, priors, spec, regressors, values: dict, start=None) -> float:
    from dataclasses import replace

    from tsocontainer.lightcurves.model import LightCurveModel
    from tsocontainer.lightcurves.priors import parse_prior
    from tsocontainer.lightcurves.sampler import _least_squares

    pri = dict(priors)
    for n, v in (start or {}).items():  # least squares from the channel's own solution
        if n in pri and not pri[n].fixed:
            pri[n] = replace(pri[n], init=float(np.clip(v, pri[n].lo, pri[n].hi)))
    for n, v in values.items():
        pri[n] = parse_prior(n, float(v))
    m = LightCurveModel(time, flux, err, pri, spec, regressors)
    theta, _, _ = _least_squares(m)
    return float(m.conditional(theta[None])["depth"][0])


def depth_shifts(time, flux, err, priors, spec, regressors, axes: dict, start=None) -> np.ndarray:
    """Depth shift of one channel along each principal axis of the white geometry.

    Parameters
    ----------
    time, flux, err : ndarray
        The channel's points.
    priors : dict of str to Prior
        The channel's priors (geometry fixed).
    spec : ModelSpec
    regressors : dict
    axes : dict
        From :func:`geometry_axes`.
    start : dict, optional
        Starting values of the channel's free parameters (its fit's medians).

    Returns
    -------
    ndarray (k,)
        ``(d(+) - d(-)) / 2`` per axis (same units as the depth).
    """
    out = []
    for step in axes["steps"]:
        d = []
        for sign in (1.0, -1.0):
            x = axes["center"].copy()
            x[axes["log"]] = np.log(x[axes["log"]])
            x = x + sign * step
            x[axes["log"]] = np.exp(x[axes["log"]])
            vals = {n: float(np.clip(v, *physical_bounds(n))) for n, v in zip(axes["names"], x)}
            d.append(_depth_at(time, flux, err, priors, spec, regressors, vals, start))
        out.append(0.5 * (d[0] - d[1]))
    return np.asarray(out)


def posterior_cov(result) -> dict:
    """Covariance of the free parameters of a fit (log for log-uniform), JSON-ready.

    Stored in ``diagnostics["posterior_cov"]`` so that a white-light result read
    back from ``fit_white.json`` still gives the common-mode error.

    Parameters
    ----------
    result : FitResult
        With samples.

    Returns
    -------
    dict
        ``{"names", "cov"}`` (empty without samples).
    """
    if result.samples is None:
        return {}
    names = [n for n in result.sample_names if result.status.get(n) == "free"]
    if not names:
        return {}
    x = np.stack([result.sample(n) for n in names], axis=1)
    log = np.array([str(result.priors.get(n, "")).startswith("loguniform") for n in names])
    x[:, log] = np.log(x[:, log])
    return {"names": names, "cov": np.atleast_2d(np.cov(x, rowvar=False)).tolist()}
