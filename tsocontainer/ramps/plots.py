"""Diagnostic plots of the stage-1 steps (mixin of :class:`~tsocontainer.ramps.RampGroup`).

Every method takes ``ax=`` (a new figure when None) and returns the Axes it drew on.
Plots read what the steps stored in ``aux``; the per-integration ones (saturation,
reference pixels, 1/f, jumps, rates) show the last :meth:`fit_ramps` pass, and before
one they run the plan on the first block of integrations.
"""
from __future__ import annotations

import numpy as np

__all__ = ["RampPlots"]


def _ax(ax, figsize=(7, 4)):
    from tsocontainer.plotting.core import get_ax

    return get_ax(ax, figsize)


def _image(ax, image, title, label, **kwargs):
    from tsocontainer.plotting.core import robust_limits

    vmin, vmax = robust_limits(image)
    opts = dict(origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax,
                interpolation="nearest")
    opts.update(kwargs)
    im = ax.imshow(image, **opts)
    ax.figure.colorbar(im, ax=ax, label=label)
    ax.set_title(title)
    ax.set_xlabel("x (column)")
    ax.set_ylabel("y (row)")
    return ax


class RampPlots:
    """Plots of the noise model, saturation, bias, reference pixels, 1/f, jumps, rates."""

    def _diagnostic(self, name):
        """``aux[name]`` of the last fit pass, else from the plan run on the first block."""
        if name not in self.aux:
            self._refresh()
            self._calibrated(0, min(self.N, self._block_ints()), record=True)
        if name not in self.aux:
            raise ValueError(f"no {name!r} diagnostic: run the step that makes it first")
        return self.aux[name]

    def plot_noise_model(self, ax=None):
        """Map of the CDS read noise (DN) used by the jump detection and the fit (Axes)."""
        _, rn = self._noise()
        ax = _ax(ax)
        return _image(ax, rn, f"CDS read noise ({self.meta.get('RNSRC', '')})"[:80], "DN")

    def plot_saturation(self, ax=None):
        """Fraction of integrations in which each pixel saturates (Axes)."""
        count = self._diagnostic("sat_count")
        n = self.N if "n_saturated" in self.aux and self.aux["n_saturated"].size == self.N \
            else min(self.N, self._block_ints())
        ax = _ax(ax)
        return _image(ax, count / max(n, 1), "saturated ramps (fraction of integrations)",
                      "fraction", vmin=0, vmax=1)

    def plot_superbias(self, ax=None):
        """The bias map subtracted (Axes)."""
        if "superbias" not in self.aux:
            raise ValueError("no superbias: run subtract_superbias first")
        ax = _ax(ax)
        return _image(ax, self.aux["superbias"], f"superbias ({self.aux['superbias_source']})",
                      "DN")

    def plot_reference_pixels(self, ax=None):
        """Amplifier offsets from the reference pixels per integration and group (Axes)."""
        off = self._diagnostic("refpix_offsets")            # (N, ngroups, namp, 2)
        ax = _ax(ax)
        n = off.shape[0]
        t = (np.arange(n)[:, None] + np.arange(off.shape[1])[None] / off.shape[1]).ravel()
        for a in range(off.shape[2]):
            for p, name in ((0, "even"), (1, "odd")):
                ax.plot(t, off[:, :, a, p].ravel(), ".", ms=2, label=f"amp {a} {name}")
        ax.set_xlabel("integration (+ group / ngroups)")
        ax.set_ylabel("offset (DN)")
        ax.set_title("reference-pixel offsets per group")
        ax.legend(fontsize="small", markerscale=4)
        return ax

    def plot_group_onef(self, ax=None):
        """Power spectrum across lines of the group 1/f offsets removed (Axes)."""
        off = self._diagnostic("onef_offsets")              # (N, ngroups, nlines, namp)
        ax = _ax(ax)
        series = off.transpose(0, 1, 3, 2).reshape(-1, off.shape[2]).astype(np.float64)
        series -= series.mean(axis=1, keepdims=True)
        nl = series.shape[1]
        power = (np.abs(np.fft.rfft(series, axis=1)) ** 2).mean(axis=0) / nl
        freq = np.fft.rfftfreq(nl)
        ax.loglog(freq[1:], power[1:], lw=1)
        rms = float(np.sqrt(np.mean(series ** 2)))
        ax.set_xlabel("frequency (cycles per line)")
        ax.set_ylabel("power (DN$^2$)")
        ax.set_title(f"group 1/f offsets removed (rms {rms:.3g} DN)")
        return ax

    def plot_linearity(self, ax=None, levels=(1e4, 2e4, 3e4, 4e4)):
        """Median correction (corrected - measured, DN) at a few bias-subtracted levels (Axes)."""
        if "linearity" not in self.aux:
            raise ValueError("no linearity coefficients: run correct_linearity first")
        c = self.aux["linearity"].astype(np.float64)
        x = np.linspace(0, max(levels), 50)
        med = np.median(c.reshape(c.shape[0], -1), axis=1)
        corr = sum(med[i] * x ** i for i in range(med.size)) - x
        ax = _ax(ax)
        ax.plot(x, corr, "-")
        ax.set_xlabel("measured signal (DN, bias subtracted)")
        ax.set_ylabel("correction (DN)")
        ax.set_title("linearity correction (median pixel)")
        return ax

    def plot_jumps(self, ax=None):
        """Jumps flagged per integration: within ramps and by the check in time (Axes)."""
        stc = self._fit_diag("n_jumps_ramp")
        ax = _ax(ax)
        ax.plot(np.arange(stc.size), stc, ".-", ms=3, label="within ramps")
        if "n_jumps_time" in self.aux:
            ax.plot(np.arange(stc.size), self.aux["n_jumps_time"], ".-", ms=3,
                    label="check in time")
        ax.set_xlabel("integration")
        ax.set_ylabel("flagged group differences")
        ax.set_title("jumps")
        ax.legend(fontsize="small")
        return ax

    def plot_rates(self, ax=None):
        """Summed rate of the trace pixels per integration from the last fit (Axes)."""
        white = self._fit_diag("white")
        ax = _ax(ax)
        ax.plot(np.arange(white.size), white / np.nanmedian(white), ".", ms=3)
        ax.set_xlabel("integration")
        ax.set_ylabel("relative summed rate")
        ax.set_title("fitted rates (trace pixels)")
        return ax

    def plot_ramp(self, y: int, x: int, integration: int = 0, ax=None):
        """Raw and calibrated ramp of pixel ``(y, x)`` in one integration (Axes)."""
        raw, _, _ = self.source.read(integration, integration + 1)
        cal, gdq, _ = self.block(integration, integration + 1)
        ax = _ax(ax)
        g = np.arange(self.ngroups)
        ax.plot(g, raw[0, :, y, x] - raw[0, 0, y, x], "o-", label="raw - group 0")
        ax.plot(g, cal[0, :, y, x] - cal[0, 0, y, x], "s-", label="calibrated - group 0")
        bad = gdq[0, :, y, x] != 0
        if bad.any():
            ax.plot(g[bad], cal[0, bad, y, x] - cal[0, 0, y, x], "rx", ms=10, label="flagged")
        ax.set_xlabel("group")
        ax.set_ylabel("DN")
        ax.set_title(f"ramp of pixel (y={y}, x={x}), integration {integration}")
        ax.legend(fontsize="small")
        return ax

    def _fit_diag(self, name):
        if name not in self.aux:
            raise ValueError(f"no {name!r}: run fit_ramps first (with detect_jumps for jumps)")
        return self.aux[name]
