"""Plots of light curves: waterfall, white light, binned RMS, periodogram, sensitivity."""
from __future__ import annotations

import numpy as np

from tsocontainer.plotting.core import get_ax, time_axis, bin_points

__all__ = ['plot_lc_waterfall', 'plot_white', 'plot_rms_vs_bin', 'plot_psd', 'plot_sensitivity']


def plot_lc_waterfall(lc, ax=None, offset=None, cmap: str = "viridis", **kwargs):
    """Light curves of every channel stacked with an offset, coloured by wavelength.

    Parameters
    ----------
    lc : LightCurves
    ax : matplotlib.axes.Axes, optional
    offset : float, optional
        Vertical step between channels in ppm of relative flux (default: 1.1 x the
        largest 1-99 percentile range of a channel).
    cmap : str
        Colour map of the wavelength.
    **kwargs
        Passed to ``plot``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    ax = get_ax(ax, figsize=(6, 8))
    th, ref = time_axis(lc.time)
    f = np.where(lc.clipped, np.nan, lc.flux)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rel = (f / np.nanmedian(f, axis=1, keepdims=True) - 1.0) * 1e6   # ppm
    if offset is None:
        span = np.nanpercentile(rel, 99, axis=1) - np.nanpercentile(rel, 1, axis=1)
        offset = 1.1 * float(np.nanmax(span)) if np.isfinite(span).any() else 1000.0
    has_wave = bool(np.all(np.isfinite(lc.wave)))   # light curves made elsewhere may have none
    key = lc.wave if has_wave else np.arange(lc.nchan, dtype=float)
    norm = Normalize(key.min(), key.max() if lc.nchan > 1 else key.min() + 1)
    colours = plt.get_cmap(cmap)
    opts = dict(lw=0.8)
    opts.update(kwargs)
    for c in range(lc.nchan):
        ax.plot(th, rel[c] - c * offset, color=colours(norm(key[c])), **opts)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=colours)
    ax.figure.colorbar(sm, ax=ax, label="wavelength [micron]" if has_wave else "channel")
    step = max(1, lc.nchan // 10)   # at most ~10 tick labels
    ticks = np.arange(0, lc.nchan, step)
    ax.set_yticks(-ticks * offset)
    ax.set_yticklabels([f"{key[c]:.2f}" if has_wave else str(c) for c in ticks])
    bar = _nice(offset / 2)
    x0 = th.min() if th.size else 0.0
    ax.plot([x0, x0], [0.5 * offset, 0.5 * offset - bar], color="k", lw=2)
    ax.text(x0, 0.5 * offset - bar / 2, f" {bar:,.0f} ppm", va="center", fontsize="small")
    ax.set_xlabel(f"time - {ref:.5f} [h, BJD_TDB]")
    ax.set_ylabel("channel centre [micron] (flux / median - 1, offset per channel)")
    ax.set_title(f"{lc.nchan} channels, blue at the top; bar: {bar:,.0f} ppm")
    return ax


def _nice(x: float) -> float:
    """1, 2 or 5 times a power of ten, at most ``x`` (scale bars)."""
    if not np.isfinite(x) or x <= 0:
        return 1.0
    p = 10.0 ** np.floor(np.log10(x))
    return float(max(m * p for m in (1, 2, 5) if m * p <= x))


def plot_white(lc, ax=None, wave_range=None, nbin: int | None = None, **kwargs):
    """White-light curve of ``lc`` (with optional binned points).

    Parameters
    ----------
    lc : LightCurves
    ax : matplotlib.axes.Axes, optional
    wave_range : (float, float), optional
        See :meth:`LightCurves.white`.
    nbin : int, optional
        Also draw means of ``nbin`` consecutive points.
    **kwargs
        Passed to the ``plot`` of the unbinned points.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax)
    wl = lc if lc.nchan == 1 and wave_range is None else lc.white(wave_range)
    u = ~wl.clipped[0]
    th, ref = time_axis(wl.time)
    opts = dict(ls="none", marker=".", ms=3, color="0.5", label="integrations")
    opts.update(kwargs)
    ax.plot(th[u], wl.flux[0, u], **opts)
    if nbin:
        xb, yb, eb = bin_points(th[u], wl.flux[0, u], int(nbin))
        ax.errorbar(xb, yb, eb, ls="none", marker="o", ms=4, color="k", label=f"bins of {nbin}")
    ax.set_xlabel(f"time - {ref:.5f} [h, BJD_TDB]")
    ax.set_ylabel("relative flux" if wl.unit == "" else f"flux [{wl.unit or 'input units'}]")
    ax.set_title(f"white light {wl.wave_lo[0]:.3f}-{wl.wave_hi[0]:.3f} micron"
                 if np.isfinite(wl.wave_lo[0]) else "white light")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_rms_vs_bin(lc, channel=None, ax=None, model=None, oot=None, title=None):
    """RMS of binned residuals versus bin size, against the 1/sqrt(N) expectation.

    Parameters
    ----------
    lc : LightCurves
    channel : int, optional
        Channel; default the white-light curve.
    ax : matplotlib.axes.Axes, optional
    model, oot
        See :meth:`LightCurves.residuals`.
    title : str, optional
        Panel title (default: the channel, or "white light").

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax, figsize=(5, 4))
    sizes, rms, expected = lc.rms_vs_bin(channel, model=model, oot=oot)
    ax.loglog(sizes, rms * 1e6, "o-", color="k", label="measured")
    ax.loglog(sizes, expected * 1e6, "--", color="C3", label="white noise, 1/sqrt(N)")
    ax.set_xlabel("bin size [integrations]")
    ax.set_ylabel("RMS of binned residuals [ppm]")
    ax.set_title(title or ("white light" if channel is None else f"channel {channel}"))
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_psd(lc, channel=None, ax=None, oot=None):
    """Lomb-Scargle periodogram of out-of-event residuals.

    Parameters
    ----------
    lc : LightCurves
    channel : int, optional
        Channel; default the white-light curve.
    ax : matplotlib.axes.Axes, optional
    oot
        See :meth:`LightCurves.residuals`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax, figsize=(6, 4))
    freq, power = lc.psd(channel, oot=oot)
    ax.loglog(freq, power, color="k", lw=0.8)
    ax.set_xlabel("frequency [1/day]")
    ax.set_ylabel("Lomb-Scargle power")
    ax.set_title("white light" if channel is None else f"channel {channel}")
    return ax


def plot_sensitivity(lc, ax=None, model=None, oot=None):
    """Measured scatter over median predicted error per channel.

    Parameters
    ----------
    lc : LightCurves
    ax : matplotlib.axes.Axes, optional
    model, oot
        See :meth:`LightCurves.residuals`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax)
    ratio = lc.sensitivity(model=model, oot=oot)
    ax.errorbar(lc.wave, ratio, xerr=0.5 * lc.width, ls="none", marker="o", color="k")
    ax.axhline(1.0, color="C3", ls="--", label="photon + read noise")
    ax.set_xlabel("wavelength [micron]")
    ax.set_ylabel("scatter / predicted error")
    ax.legend(loc="best", fontsize="small")
    return ax
