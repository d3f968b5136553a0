"""Diagnostics of light curves: residuals, scatter against the errors, binned RMS, periodogram.

A mixin of :class:`~tsocontainer.lightcurves.container.LightCurves` (its methods use
the container's ``time``, ``flux``, ``err``, ``clipped``, out-of-event mask and
white-light curve); kept apart so that the container file holds storage, steps and I/O.
"""
from __future__ import annotations

import logging

import numpy as np

__all__ = ["LightCurveDiagnostics"]

log = logging.getLogger("tsocontainer.lightcurves.container")   # the messages of LightCurves


class LightCurveDiagnostics:
    """Mixin of :class:`~tsocontainer.lightcurves.container.LightCurves`: how good are the errors.

    Examples
    --------
    >>> import numpy as np
    >>> from tsocontainer.lightcurves.container import LightCurves
    >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (1, 400))
    >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((1, 400), 1e-3), [1.0], [2.0])
    >>> lc.sensitivity().round(2)        # scatter / predicted error: the errors are right
    array([1.])
    """

    def residuals(self, model=None, oot=None, poly: int = 1) -> list:
        """Residuals used by the diagnostics, one array per channel.

        Parameters
        ----------
        model : array_like, shape (nchan, nint), optional
            Model to subtract (e.g. the fitted light curves). Without it, a
            weighted polynomial of degree ``poly`` in time is fitted to the
            out-of-event points of each channel and subtracted there.
        oot : bool array or (t1, t2), optional
            Out-of-event integrations (see :meth:`normalize`); only used
            without ``model``.
        poly : int
            Degree of the trend removed without ``model``.

        Returns
        -------
        list of (time, resid, err, dof) tuples
            Per channel: times, residuals and errors of the used points, and
            the number of degrees of freedom of the residuals.

        Examples
        --------
        >>> from tsocontainer.lightcurves.container import LightCurves
        >>> import numpy as np
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> t, resid, err, dof = lc.residuals()[0]        # a straight line removed
        >>> resid.shape, dof
        ((400,), 398)
        """
        out = []
        if model is not None:
            model = np.asarray(model, dtype=float).reshape(self.flux.shape)
            for c in range(self.nchan):
                u = ~self.clipped[c]
                out.append((self.time[u], self.flux[c, u] - model[c, u], self.err[c, u], int(u.sum())))
            return out
        sel = self._oot_mask(oot)
        x = self.time - self.time.mean()
        for c in range(self.nchan):
            u = sel & ~self.clipped[c]
            if u.sum() <= poly + 2:
                raise ValueError(f"channel {c}: too few out-of-event points ({u.sum()})")
            coef = np.polyfit(x[u], self.flux[c, u], poly, w=1 / self.err[c, u])
            r = self.flux[c, u] - np.polyval(coef, x[u])
            out.append((self.time[u], r, self.err[c, u], int(u.sum()) - poly - 1))
        return out

    def sensitivity(self, model=None, oot=None, poly: int = 1) -> np.ndarray:
        """Measured scatter over median predicted error, per channel.

        A ratio near 1 means the errors describe the data; white noise gives
        1 within about ``1/sqrt(2 n)``; red noise or underestimated errors
        give more.

        Parameters
        ----------
        model, oot, poly
            See :meth:`residuals`.

        Returns
        -------
        ndarray, shape (nchan,)
            ``std(residuals) / median(err)`` (the standard deviation uses the
            residual degrees of freedom).

        Examples
        --------
        >>> from tsocontainer.lightcurves.container import LightCurves
        >>> import numpy as np
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> lc.sensitivity().round(2)
        array([1.  , 1.01])
        """
        ratio = np.array([np.sqrt(np.sum(r**2) / dof) / np.median(e)
                          for _, r, e, dof in self.residuals(model, oot, poly)])
        log.info("sensitivity: median scatter/predicted = %.3f over %d channels",
                 float(np.median(ratio)), self.nchan)
        return ratio

    def rms_vs_bin(self, channel: int | None = None, sizes=None, model=None, oot=None,
                   poly: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RMS of binned residuals versus bin size, with the white-noise expectation.

        Parameters
        ----------
        channel : int, optional
            Channel index; default the white-light curve of all channels.
        sizes : array_like of int, optional
            Bin sizes in points (default: powers of ~1.5 up to n/4).
        model, oot, poly
            See :meth:`residuals` (``model`` must match the chosen curve).

        Returns
        -------
        sizes : ndarray of int
        rms : ndarray
            RMS of the means of consecutive bins of each size.
        expected : ndarray
            ``rms(1) / sqrt(N) * sqrt(M / (M - 1))`` for M bins (white noise).

        Examples
        --------
        >>> from tsocontainer.lightcurves.container import LightCurves
        >>> import numpy as np
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> sizes, rms, expected = lc.rms_vs_bin(channel=0, sizes=[1, 4, 16])
        >>> sizes, (rms / expected).round(2)           # white noise: near 1 at every bin size
        (array([ 1,  4, 16]), array([1.  , 1.04, 1.1 ]))
        """
        if channel is None and model is not None:
            raise ValueError("model needs an explicit channel")
        lc = self.white() if channel is None else self[int(channel)]
        (_, r, _, _), = lc.residuals(model, oot, poly)
        n = r.size
        if sizes is None:
            sizes = np.unique(np.round(1.5 ** np.arange(0, np.log(max(n / 4, 2)) / np.log(1.5) + 1)))
        sizes = np.asarray(sizes, dtype=int)
        sizes = sizes[(sizes >= 1) & (sizes <= n // 2)]
        sigma1 = np.std(r)
        rms, expected = [], []
        for s in sizes:
            m = n // s
            means = r[: m * s].reshape(m, s).mean(axis=1)
            rms.append(np.sqrt(np.mean(means**2)))
            expected.append(sigma1 / np.sqrt(s) * np.sqrt(m / (m - 1)))
        return sizes, np.array(rms), np.array(expected)

    def psd(self, channel: int | None = None, oot=None, poly: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Lomb-Scargle periodogram of out-of-event residuals.

        Parameters
        ----------
        channel : int, optional
            Channel index; default the white-light curve.
        oot, poly
            See :meth:`residuals`.

        Returns
        -------
        frequency : ndarray
            Cycles per day, from 1/baseline to the Nyquist frequency.
        power : ndarray
            Normalised Lomb-Scargle power (``normalization="standard"``).

        Examples
        --------
        >>> from tsocontainer.lightcurves.container import LightCurves
        >>> import numpy as np
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> freq, power = lc.psd(channel=0)
        >>> round(float(freq[0]), 3), round(float(freq[-1]), 1), bool(power.max() < 0.1)
        (3.333, 665.0, True)
        """
        from astropy.timeseries import LombScargle

        lc = self.white() if channel is None else self[int(channel)]
        (t, r, e, _), = lc.residuals(None, oot, poly)
        dt = np.median(np.diff(t))
        freq = np.linspace(1 / (t[-1] - t[0]), 0.5 / dt, max(100, t.size))
        return freq, LombScargle(t, r, e).power(freq)
