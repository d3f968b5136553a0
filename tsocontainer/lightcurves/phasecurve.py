"""Sinusoidal phase curve with transit and eclipse, for a batch of parameter vectors.

The model of ``kind="phasecurve"`` (flux relative to the star alone)::

    A(t) = T(t) + F_p(t) * V(t)
    F_p(t) = fp_fs + pc_amp * (cos(2 pi (t - t_sec) / per + pc_offset) - cos(pc_offset))

``T`` is the limb-darkened transit of the star (batman, 1 out of transit),
``V`` the visible fraction of the planet's disc (batman's secondary eclipse
with unit planet flux: 0 during totality, 1 out of eclipse, partial at ingress
and egress), so the planet's flux is hidden during the eclipse. ``t_sec`` is
the mid-eclipse time of the orbit (``t0 + per / 2`` for a circular orbit,
batman's ``get_t_secondary`` otherwise; light travel time is neglected).

Parameters: ``fp_fs`` is the eclipse depth, the planet's flux at mid-eclipse;
``pc_amp`` (>= 0) the semi-amplitude of the phase variation; ``pc_offset``
(degrees, in [-180, 180]) the phase of the maximum before mid-eclipse
(positive: the brightest hemisphere faces us before the eclipse, as for an
eastward hot-spot offset). The nightside flux, at the minimum, is
``fp_fs - pc_amp * (1 + cos(pc_offset))``, reported as the derived ``fp_night``.
"""
from __future__ import annotations

import numpy as np

from tsocontainer.lightcurves.batch import BatchLightCurve

__all__ = ["PhaseCurveBatch", "planet_flux"]


def planet_flux(t, t_sec, per, fp_fs, pc_amp, pc_offset) -> np.ndarray:
    """Planet-to-star flux ratio of the sinusoidal phase curve (no eclipse).

    Parameters
    ----------
    t : ndarray (n,)
        Times (days).
    t_sec, per, fp_fs, pc_amp, pc_offset : ndarray (nb,)
        Mid-eclipse time, period, eclipse depth, semi-amplitude and offset (degrees).

    Returns
    -------
    ndarray (nb, n)

    Examples
    --------
    >>> f = planet_flux(np.array([0.5, 1.0]), np.array([0.5]), np.array([1.0]),
    ...                 np.array([1e-3]), np.array([4e-4]), np.array([0.0]))
    >>> f.round(6).tolist()
    [[0.001, 0.0002]]
    """
    d = np.radians(np.asarray(pc_offset, float))[:, None]
    ph = 2 * np.pi * (np.asarray(t, float)[None, :] - np.asarray(t_sec, float)[:, None]) \
        / np.asarray(per, float)[:, None]
    amp = np.asarray(pc_amp, float)[:, None]
    return np.asarray(fp_fs, float)[:, None] + amp * (np.cos(ph + d) - np.cos(d))


class PhaseCurveBatch:
    """Transit + sinusoidal planet flux hidden in eclipse, for a walker batch.

    Parameters
    ----------
    transit : BatchLightCurve
        Transit light curves on the times (kind ``"transit"``).
    eclipse : BatchLightCurve
        Secondary eclipses on the same times (kind ``"eclipse"``), called with
        unit planet flux to give the visible fraction.

    Examples
    --------
    The model of ``kind="phasecurve"`` uses one; at mid-eclipse only the star is seen:

    >>> from tsocontainer.lightcurves.model import LightCurveModel
    >>> t = np.linspace(0.45, 0.55, 101)
    >>> m = LightCurveModel(t, np.ones(101), np.full(101, 1e-4),
    ...                     {"t0": 0.0, "per": 1.0, "a_rs": 4.0, "inc": 85.0, "rp_rs": 0.1,
    ...                      "u1": 0.3, "u2": 0.2, "c0": 1.0, "c1": 0.0}, {"kind": "phasecurve"})
    >>> type(m._batch).__name__, float(m.model_arrays([1e-3, 2e-4, 10.0])["astro"][50])
    ('PhaseCurveBatch', 1.0)
    """

    def __init__(self, transit: BatchLightCurve, eclipse: BatchLightCurve):
        self.transit, self.eclipse = transit, eclipse
        self.t = transit.t
        self.window = None  # never constant outside an event: the planet's flux varies

    def t_secondary(self, p: dict) -> np.ndarray:
        """Mid-eclipse times of a batch (``t0 + per / 2`` for circular orbits)."""
        t_sec = np.asarray(p["t0"], float) + 0.5 * np.asarray(p["per"], float)
        ecc = np.asarray(p["ecc"], float)
        bm, bp = self.eclipse.bm, self.eclipse.bp
        for i in np.flatnonzero(ecc != 0):
            bp.t0, bp.per, bp.ecc, bp.w = p["t0"][i], p["per"][i], ecc[i], p["w"][i]
            bp.a, bp.inc, bp.rp = p["a_rs"][i], p["inc"][i], p["rp_rs"][i]
            t_sec[i] = bm.get_t_secondary(bp)
        return t_sec

    def __call__(self, p: dict) -> np.ndarray:
        """Relative flux of every walker, shape (nb, n).

        Parameters
        ----------
        p : dict of str to ndarray (nb,)
            Orbit, ``rp_rs``, limb darkening, ``fp_fs``, ``pc_amp``, ``pc_offset``.

        Returns
        -------
        ndarray (nb, n)
        """
        t_sec = self.t_secondary(p)
        star = self.transit(p)
        vis = self.eclipse({**p, "t_sec": t_sec, "fp_fs": np.ones_like(t_sec)}) - 1.0
        fp = planet_flux(self.t, t_sec, p["per"], p["fp_fs"], p["pc_amp"], p["pc_offset"])
        return star + fp * vis

    def self_check(self, p: dict) -> bool:
        """Check both batched parts against batman's ``light_curve`` (see
        :meth:`BatchLightCurve.self_check`)."""
        t_sec = self.t_secondary(p)
        ok = self.transit.self_check(p)
        return self.eclipse.self_check({**p, "t_sec": t_sec, "fp_fs": np.ones_like(t_sec)}) and ok
