"""Nested sampling (dynesty) as an alternative engine of the fits, with the evidence.

``sampler={"engine": "dynesty"}`` replaces emcee by dynesty's static nested
sampler (``nlive`` live points, stopping when the remaining evidence is below
``dlogz``; :class:`~tsocontainer.lightcurves.sampler.SamplerSettings`). The
priors of the sampled parameters are mapped from the unit cube by
:meth:`~tsocontainer.lightcurves.priors.PriorVector.transform` (every prior kind
is proper); the likelihood is the model's marginal likelihood over the linear
terms plus :meth:`~tsocontainer.lightcurves.model.LightCurveModel.evidence_constant`,
so ``diagnostics["logz"]`` is the log evidence of the whole model including the
priors of the analytically marginalised coefficients (their uniform or normal
densities; a uniform prior's mass outside the data's range is assumed
negligible, as it is for the default priors). Differences of ``logz`` between
models fitted to the same points are log Bayes factors; ``logz_err`` is
dynesty's estimate of its statistical error.

The weighted dead points are resampled to equal weights; their Kish effective
sample size ``(sum w)^2 / sum w^2`` is ``diagnostics["ess"]``, and the fit
counts as converged when dynesty reached ``dlogz`` within ``maxcall`` and the
effective sample size is at least ``min_ess`` (SamplerSettings). dynesty is an
optional dependency (``pip install 'tsocontainer[nested]'``).
"""
from __future__ import annotations

import importlib.util

import numpy as np

__all__ = ["run_dynesty", "have_dynesty"]


def have_dynesty() -> bool:
    """Whether dynesty is installed.

    Examples
    --------
    >>> isinstance(have_dynesty(), bool)
    True
    """
    return importlib.util.find_spec("dynesty") is not None


class _EqualView:
    """Equal-weight samples in the shape of an emcee chain (one walker)."""

    def __init__(self, samples: np.ndarray, lnp: np.ndarray, acceptance: float):
        self._chain = samples[:, None, :]
        self._lnp = lnp[:, None]
        self.acceptance_fraction = np.array([acceptance])

    def get_chain(self):
        return self._chain

    def get_log_prob(self):
        return self._lnp


def run_dynesty(m, st, seed: int):
    """Run dynesty on a model; the result in the form the summary expects.

    Parameters
    ----------
    m : LightCurveModel or JointModel
        With ``log_like``, ``log_prior``, ``ndim``, ``lay.sampled``,
        ``prior_vector`` and ``evidence_constant()``.
    st : SamplerSettings
        ``nlive``, ``dlogz``, ``maxcall``, ``min_ess``, ``max_samples``.
    seed : int

    Returns
    -------
    view : object
        ``get_chain()`` (nsamples, 1, ndim), ``get_log_prob()``.
    diag : dict
        ``engine``, ``logz``, ``logz_err``, ``niter``, ``ncall``, ``nlive``,
        ``ess``, ``information`` (nats), ``converged``, ``messages`` and, for
        the summary, ``nsteps``, ``burn`` (0) and ``tau`` (1 per parameter:
        the samples are independent).

    Raises
    ------
    ImportError
        When dynesty is not installed.

    Examples
    --------
    A one-parameter model and 30 live points (tiny, for the example):

    >>> import pytest; _ = pytest.importorskip("dynesty")
    >>> from tsocontainer.lightcurves.model import LightCurveModel
    >>> from tsocontainer.lightcurves.sampler import SamplerSettings
    >>> t = np.linspace(-0.1, 0.1, 60)
    >>> m = LightCurveModel(t, np.ones(60), np.full(60, 1e-3),
    ...                     {"t0": 0.0, "per": 3.0, "a_rs": 10.0, "inc": 89.0, "u1": 0.3, "u2": 0.2,
    ...                      "rp_rs": {"uniform": [0.0, 0.05]}, "c0": 1.0, "c1": 0.0})
    >>> view, diag = run_dynesty(m, SamplerSettings(engine="dynesty", nlive=30), seed=1)
    >>> diag["engine"], bool(np.isfinite(diag["logz"])), view.get_chain().shape[1:]
    ('dynesty', True, (1, 1))
    """
    if not have_dynesty():
        raise ImportError("sampler engine 'dynesty' needs dynesty: pip install 'tsocontainer[nested]'")
    import dynesty

    const = m.evidence_constant()
    pv = m.prior_vector

    def loglike(x):
        return float(m.log_like(x[None])[0]) + const

    def transform(u):
        return pv.transform(u[None])[0]

    rng = np.random.default_rng(seed)
    ns = dynesty.NestedSampler(loglike, transform, m.ndim, nlive=st.nlive, rstate=rng)
    ns.run_nested(dlogz=st.dlogz, maxcall=st.maxcall, print_progress=False)
    res = ns.results
    logwt = res.logwt - res.logz[-1]
    w = np.exp(logwt - logwt.max())
    ess = float(w.sum() ** 2 / np.sum(w**2))
    eq = res.samples_equal(rstate=rng)
    lnp = m.log_prior(eq) + m.log_like(eq)
    ncall = int(np.sum(res.ncall))
    messages = []
    if st.maxcall is not None and ncall >= st.maxcall:
        messages.append(f"nested sampling stopped at {ncall} likelihood calls (maxcall) before "
                        f"the remaining evidence fell below dlogz {st.dlogz:g}")
    if ess < st.min_ess:
        messages.append(f"effective sample size {ess:.0f} of the weighted samples (need "
                        f"{st.min_ess:g}): more live points")
    diag = {"engine": "dynesty", "logz": float(res.logz[-1]), "logz_err": float(res.logzerr[-1]),
            "niter": int(res.niter), "ncall": ncall, "nlive": int(st.nlive),
            "information": float(res.information[-1]), "ess": ess, "converged": not messages,
            "messages": messages, "nsteps": int(eq.shape[0]), "burn": 0, "acceptance": float(res.eff) / 100,
            "tau": {n: 1.0 for n in m.lay.sampled}, "n_tau": float(eq.shape[0])}
    return _EqualView(eq, lnp, diag["acceptance"]), diag
