"""Gaussian-process systematics on time (celerite2), with the linear terms marginalised.

With ``ModelSpec(gp="matern32")`` or ``gp="sho"`` the noise of the light curve
is ``N(0, K)`` with ``K = k(t, t') + diag((err_scale * err)**2 + jitter**2)``,
``k`` a celerite2 kernel on time:

``matern32``
    ``celerite2.terms.Matern32Term(sigma=gp_sigma, rho=gp_rho)``: a Matern-3/2
    process of standard deviation ``gp_sigma`` (flux units) and length scale
    ``gp_rho`` (days).
``sho``
    ``celerite2.terms.SHOTerm(sigma=gp_sigma, rho=gp_rho, Q=gp_q)``: a
    stochastically driven damped oscillator of undamped period ``gp_rho``;
    ``gp_q`` is fixed at 1/sqrt(2) (the critically damped, aperiodic case)
    unless it is given a prior.

Default priors: ``gp_sigma`` log-uniform from 0.01 to 100 times the median
error, ``gp_rho`` log-uniform from one cadence to the span of the data (as the
ramp's time constant). The linear systematics ``beta`` (basis ``X``, the
astrophysical model times the systematics columns) are still marginalised
analytically, now with the GP covariance: with ``C = X^T K^-1 X + P`` (``P``
the precision of normal priors), ``beta* = C^-1 (X^T K^-1 y + P mu)``, and the
log likelihood is ``log N(y - X beta* | 0, K) - (beta* - mu)^T P (beta* - mu) / 2
- log det C / 2`` up to the constant of the uniform priors, exactly as without
a GP (where ``K`` is diagonal). Each walker needs its own factorisation
(O(n), celerite2's semi-separable solver), so a GP fit costs ~0.1-0.3 ms per
walker and step for 300-1000 points.

The fitted curve of a GP fit is the MAP model plus the GP's conditional mean
of the residuals; ``FitResult.systematics`` folds it in (``model_flux = astro
* systematics``), so that ``flux / systematics`` is the detrended light curve.
"""
from __future__ import annotations

import numpy as np

__all__ = ["gp_kernel", "gp_solve", "gp_predict", "GP_NAMES"]

#: the GP's parameters (gp_q only for the SHO kernel)
GP_NAMES = ("gp_sigma", "gp_rho", "gp_q")


def gp_kernel(kind: str, sigma: float, rho: float, q: float = 1 / np.sqrt(2)):
    """The celerite2 term of a kernel.

    Parameters
    ----------
    kind : str
        ``"matern32"`` or ``"sho"``.
    sigma, rho : float
        Standard deviation (flux units) and time scale (days).
    q : float
        Quality factor (SHO only).

    Returns
    -------
    celerite2.terms.Term

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("celerite2")
    >>> float(gp_kernel("matern32", 2.0, 0.1).get_value(np.zeros(1))[0])
    4.0
    """
    from celerite2 import terms

    if kind == "sho":
        return terms.SHOTerm(sigma=float(sigma), rho=float(rho), Q=float(q))
    return terms.Matern32Term(sigma=float(sigma), rho=float(rho))


def _process(m, p: dict, i: int, var_i):
    import celerite2

    q = float(p["gp_q"][i]) if "gp_q" in p else 1 / np.sqrt(2)
    gp = celerite2.GaussianProcess(gp_kernel(m.spec.gp, p["gp_sigma"][i], p["gp_rho"][i], q))
    gp.compute(m.t, diag=var_i, quiet=True)
    return gp


def gp_solve(m, p: dict, T: np.ndarray, ypr: np.ndarray, R, var: np.ndarray):
    """Marginal likelihood of a batch with GP noise (see the module docstring).

    Parameters
    ----------
    m : LightCurveModel
    p : dict of str to ndarray (nb,)
    T : ndarray (nb, n)
        Astrophysical model times any product-form factor.
    ypr : ndarray (n,) or (nb, n)
        Data minus the known (sampled) linear terms.
    R : ndarray (nb, n) or None
        Ramp column of every walker (when the ramp's amplitude is marginalised).
    var : ndarray (n,) or (nb, n)
        White-noise variance.

    Returns
    -------
    (beta, L, chi2, loglike, resid)
        As the fields of the model's solution: conditional means (nb, km),
        Cholesky factors of their precision (nb, km, km) or None, chi2,
        log likelihood and residuals (nb, n). A walker whose kernel cannot
        be factorised gets ``-inf``.

    Examples
    --------
    Through the model of ``gp="matern32"`` (its :meth:`log_like` calls this):

    >>> import pytest; _ = pytest.importorskip("celerite2")
    >>> from tsocontainer.lightcurves.model import LightCurveModel
    >>> t = np.linspace(-0.1, 0.1, 80)
    >>> m = LightCurveModel(t, np.ones(80), np.full(80, 1e-3),
    ...                     {"t0": 0.0, "per": 3.0, "a_rs": 10.0, "inc": 89.0, "u1": 0.3,
    ...                      "u2": 0.2}, {"gp": "matern32", "poly": 0})
    >>> m.lay.sampled
    ['rp_rs', 'gp_sigma', 'gp_rho']
    >>> bool(np.isfinite(m.log_like([[0.1, 1e-3, 0.02]])[0]))
    True
    """
    nb, n = T.shape
    km = len(m.lay.marg)
    ypr = np.broadcast_to(ypr, (nb, n))
    var = np.broadcast_to(var, (nb, n))
    beta = np.zeros((nb, km))
    Ls = np.zeros((nb, km, km))
    chi2 = np.full(nb, np.inf)
    ll = np.full(nb, -np.inf)
    resid = np.array(ypr, dtype=float, copy=True)
    for i in range(nb):
        try:
            gp = _process(m, p, i, var[i])
        except Exception:  # noqa: BLE001 - celerite2 raises its own LinAlgError subclasses
            continue
        X = T[i][:, None] * m._Bm
        if m._ramp_marg:
            X = np.column_stack([X, T[i] * R[i]])
        if km:
            Z = gp.apply_inverse(np.column_stack([ypr[i], X]))
            C = X.T @ Z[:, 1:] + m._prec_mat[0]
            rhs = X.T @ Z[:, 0] + m._prec_mu[0]
            L = np.linalg.cholesky(C)
            b = np.linalg.solve(C, rhs)
            r = ypr[i] - X @ b
            beta[i], Ls[i] = b, L
            prior = float(np.sum(m._prec * (b - m._mu) ** 2))
            logdet = 2 * float(np.sum(np.log(np.diag(L))))
        else:
            r, prior, logdet = ypr[i], 0.0, 0.0
        lg = float(gp.log_likelihood(r)) + 0.5 * n * np.log(2 * np.pi)   # -(r K^-1 r + log|K|)/2
        z = gp.apply_inverse(r)
        chi2[i] = float(r @ z) + prior
        ll[i] = lg - 0.5 * prior - 0.5 * logdet
        resid[i] = r
    return beta, (Ls if km else None), chi2, ll, resid


def gp_predict(m, p: dict, resid: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Conditional mean of the GP given the residuals of one walker.

    Parameters
    ----------
    m : LightCurveModel
    p : dict of str to ndarray (1,)
    resid : ndarray (n,)
        Data minus the mean model.
    var : ndarray (n,)
        White-noise variance.

    Returns
    -------
    ndarray (n,)

    Examples
    --------
    >>> import pytest; _ = pytest.importorskip("celerite2")
    >>> from tsocontainer.lightcurves.model import LightCurveModel
    >>> t = np.linspace(-0.1, 0.1, 80)
    >>> m = LightCurveModel(t, np.ones(80), np.full(80, 1e-3),
    ...                     {"t0": 0.0, "per": 3.0, "a_rs": 10.0, "inc": 89.0, "u1": 0.3,
    ...                      "u2": 0.2}, {"gp": "matern32", "poly": 0})
    >>> p = m.expand([[0.1, 1e-3, 0.02]])
    >>> gp_predict(m, p, np.zeros(80), np.full(80, 1e-6)).shape
    (80,)
    """
    gp = _process(m, p, 0, np.broadcast_to(var, resid.shape))
    return np.asarray(gp.predict(resid, include_mean=False), dtype=float)
