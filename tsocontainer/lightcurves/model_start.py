"""Starting values and checks of a :class:`~tsocontainer.lightcurves.model.LightCurveModel`.

A mixin of the model: the starting vector of the sampled parameters, the
least-squares residuals (noise parameters at their neutral values), starting
values of the noise parameters from the residuals, the check of bounds of
marginalised coefficients against the data, and the constant that turns the
marginal likelihood into a normalised one (for the evidence).
"""
from __future__ import annotations

import numpy as np

__all__ = ["ModelStart", "NOISE_NAMES", "BOUND_SIGMAS"]

#: noise parameters: held out of the least-squares start, set from its residuals
NOISE_NAMES = ("jitter", "err_scale", "gp_sigma", "gp_rho", "gp_q")
#: a marginalised coefficient this many conditional sigmas or closer to a bound is sampled
BOUND_SIGMAS = 5.0


class ModelStart:
    """Mixin of :class:`~tsocontainer.lightcurves.model.LightCurveModel` (see the module docstring).

    Examples
    --------
    A level prior 1.5e-4 from the data's level, which they know to ~1e-4, is reached:

    >>> from tsocontainer.lightcurves.model import LightCurveModel
    >>> t = np.linspace(-0.1, 0.1, 100)
    >>> m = LightCurveModel(t, np.ones(100), np.full(100, 1e-3),
    ...                     {"t0": 0.0, "per": 3.0, "a_rs": 10.0, "inc": 89.0, "u1": 0.3,
    ...                      "u2": 0.2, "c0": {"uniform": [0.9, 1.00015]}, "c1": 0.0})
    >>> m.binding_bounds([0.0]), round(m.evidence_constant(), 2)
    (['c0'], -88.67)
    """

    @property
    def noise_names(self) -> list:
        """Sampled noise parameters (held out of the least-squares start)."""
        return [n for n in self.lay.sampled if n in NOISE_NAMES]

    def start(self) -> np.ndarray:
        """Starting values of the sampled parameters.

        ``init`` when given, else the prior's centre, except (transit and
        phase curve): ``rp_rs`` starts from the depth of the median-filtered
        data, and ``inc`` from an impact parameter of 0.5 when the prior
        centre would give no transit (least squares cannot leave a flat model);
        ``pc_amp`` starts at 1e-3 of its prior's width above its lower bound
        (the centre of the default prior, 5 % of the star, put the least
        squares far from any planet; 0 would leave ``pc_offset`` without a gradient).
        """
        vals = {n: self.priors[n].start for n in self.priors}
        free = {n for n in self.lay.sampled if self.priors[n].init is None}
        if "pc_amp" in free and np.isfinite(self.priors["pc_amp"].hi):
            pr = self.priors["pc_amp"]
            vals["pc_amp"] = pr.lo + 1e-3 * (pr.hi - pr.lo)
        transit = self.spec.kind in ("transit", "phasecurve")
        if transit and "inc" in free:
            if vals["a_rs"] * np.cos(np.radians(vals["inc"])) > 0.8:
                vals["inc"] = float(np.degrees(np.arccos(min(0.5 / vals["a_rs"], 1.0))))
        if transit and "rp_rs" in free and self.t.size >= 10 and self._transit_in_data(vals):
            from scipy.ndimage import median_filter

            smooth = median_filter(self.y, size=max(3, self.t.size // 20), mode="mirror")
            depth = 1.0 - smooth.min() / np.median(self.y)
            vals["rp_rs"] = float(np.sqrt(max(depth, 1e-6)))
        for n in free:
            pr = self.priors[n]
            vals[n] = float(np.clip(vals[n], pr.lo, pr.hi))
        return np.array([vals[n] for n in self.lay.sampled])

    def orbit_starts(self) -> list:
        """Extra starting vectors spread over the eccentricity, or an empty list.

        When both eccentricity parameters (``secosw``, ``sesinw`` or ``ecc``,
        ``w``) are sampled without an ``init``, the start of :meth:`start` puts
        them at the prior's centre, a circular orbit. There ``sqrt(e) cos w`` and
        ``sqrt(e) sin w`` have no gradient (the model depends on ``e``, their
        squares), and the eclipse of the true orbit may be far from ``t0 + per /
        2``: least squares from there ends in a local optimum (half of the
        draws of ``benchmarks/bench_models.py --cases eccentric`` did). These
        starts put ``sqrt(e)`` at 0.2, 0.4 and 0.6 (``e`` = 0.04, 0.16, 0.36)
        and ``w`` every 30 degrees, the other parameters at :meth:`start`,
        each inside the prior.

        Returns
        -------
        list of ndarray (ndim,)
        """
        names = self.lay.sampled
        pair = next((q for q in (("secosw", "sesinw"), ("ecc", "w"))
                     if all(n in names and self.priors[n].init is None for n in q)), None)
        if pair is None:
            return []
        base = self.start()
        i, j = names.index(pair[0]), names.index(pair[1])
        out = []
        for r in (0.2, 0.4, 0.6):
            for w in np.arange(0.0, 360.0, 30.0):
                th = base.copy()
                if pair[0] == "secosw":
                    th[i], th[j] = r * np.cos(np.radians(w)), r * np.sin(np.radians(w))
                else:   # w or w - 360, whichever the prior allows
                    pw = self.priors[pair[1]]
                    th[i], th[j] = r**2, w if pw.lo <= w <= pw.hi else w - 360.0
                if np.isfinite(self.log_prob(th[None])[0]):
                    out.append(th)
        return out

    def _transit_in_data(self, vals: dict) -> bool:
        if self.spec.kind == "transit":
            return True
        phase = ((self.t - vals["t0"]) / vals["per"] + 0.5) % 1.0 - 0.5
        return bool(np.any(np.abs(phase) < 0.02))

    def evidence_constant(self) -> float:
        """Constant that makes :meth:`log_like` a normalised marginal likelihood.

        :meth:`log_like` drops ``-n/2 log(2 pi)`` of the Gaussian data term,
        ``+k/2 log(2 pi)`` of the Gaussian integral over the ``k`` marginalised
        coefficients and their priors' normalisations (``1 / (hi - lo)`` for a
        uniform prior, ``sqrt(precision / 2 pi)`` for a normal one). Their sum
        is constant for a model and data set; the nested sampler adds it to
        the evidence.

        Returns
        -------
        float
        """
        c = -0.5 * (self.t.size - len(self.lay.marg)) * np.log(2 * np.pi)
        for n in self.lay.marg:
            pr = self.priors[n]
            c += (-np.log(pr.b - pr.a) if pr.kind == "uniform"
                  else 0.5 * np.log(1.0 / pr.b**2) - 0.5 * np.log(2 * np.pi))
        return float(c)

    def binding_bounds(self, theta) -> list:
        """Marginalised coefficients whose bounds the data reach at ``theta``.

        Parameters
        ----------
        theta : array_like, shape (ndim,)
            Sampled parameters (the least-squares solution).

        Returns
        -------
        list of str
            Names whose conditional optimum lies within :data:`BOUND_SIGMAS`
            conditional standard deviations of a finite bound of their prior.
        """
        if not self.lay.marg:
            return []
        sol = self._solve(np.atleast_2d(theta)[:1], full=True)
        C = sol.L[0] @ sol.L[0].T
        sd = np.sqrt(np.diag(np.linalg.inv(C)))
        out = []
        for i, n in enumerate(self.lay.marg):
            pr, b = self.priors[n], sol.beta[0, i]
            if b - pr.lo < BOUND_SIGMAS * sd[i] or pr.hi - b < BOUND_SIGMAS * sd[i]:
                out.append(n)
        return out

    def lsq_residuals(self, theta, with_priors: bool = True) -> np.ndarray:
        """Normalised residuals for least squares (noise parameters at their neutral values).

        Parameters
        ----------
        theta : array_like, shape (ndim,)
            Sampled parameters (jitter, error scale and GP are ignored).
        with_priors : bool
            Append the residuals of the normal priors of the sampled parameters
            (a joint fit adds those once itself).

        Returns
        -------
        ndarray
            Data residuals over their errors, then those of the normal priors;
            a large constant vector outside the priors.
        """
        th = np.asarray(theta, dtype=float)[None]
        p = self.expand(th)
        normal = [(i, self.priors[n]) for i, n in enumerate(self.lay.sampled if with_priors else ())
                  if n not in NOISE_NAMES and self.priors[n].kind in ("normal", "lognormal")]
        if not self._valid(p)[0] or not np.isfinite(self.log_prior(th)[0]):
            # the same length as inside: least squares differences the vectors
            return np.full(self.t.size + len(self.lay.marg) + len(normal), 1e6)
        sol = self._solve(th, p, full=True, white=True)
        km = len(self.lay.marg)
        extra = [np.sqrt(self._prec) * (sol.beta[0] - self._mu)] if km else []
        for i, pr in normal:
            x = th[0, i] if pr.kind == "normal" else np.log(th[0, i])
            extra.append(np.atleast_1d((x - pr.a) / pr.b))
        return np.concatenate([sol.resid[0] * np.sqrt(np.broadcast_to(sol.w, sol.T.shape)[0])] + extra)

    def init_noise(self, theta) -> tuple[np.ndarray, dict]:
        """Starting values of the noise parameters from the residuals at ``theta``.

        Parameters
        ----------
        theta : ndarray (ndim,)
            Sampled parameters (the least-squares solution).

        Returns
        -------
        theta : ndarray (ndim,)
            With ``jitter`` (the excess scatter over the errors), ``err_scale``
            (the scatter over the errors, 1 with a jitter or GP beside it),
            ``gp_sigma`` (the excess scatter) and ``gp_rho``/``gp_q`` (their
            priors' centres) set, each within its prior.
        sd : dict of str to float
            A starting spread for each (20 %).
        """
        theta = np.array(theta, dtype=float, copy=True)
        names = self.noise_names
        if not names:
            return theta, {}
        r = self._solve(theta[None], full=True, white=True).resid[0]
        e2 = float(np.mean(self.err**2))
        floor = (0.1 * float(np.median(self.err))) ** 2
        excess = float(np.var(r)) - e2
        start = {"gp_rho": self.priors["gp_rho"].start if "gp_rho" in names else None,
                 "gp_q": self.priors["gp_q"].start if "gp_q" in names else None,
                 "err_scale": (1.0 if ("jitter" in names or self.spec.gp)
                               else float(np.sqrt(np.var(r) / e2))),
                 "jitter": float(np.sqrt(max(excess, floor))),
                 "gp_sigma": float(np.sqrt(max(excess, 9 * floor)))}
        sd = {}
        for n in names:
            j = self.lay.sampled.index(n)
            pr = self.priors[n]
            theta[j] = float(np.clip(start[n], pr.lo, pr.hi))
            sd[n] = 0.2 * theta[j]
        return theta, sd

