"""Plots of fits: data and model, posterior pairs, transmission spectrum, pulls."""
from __future__ import annotations

import numpy as np

from tsocontainer.plotting.core import get_ax, time_axis, bin_points

__all__ = ['plot_fit', 'plot_corner', 'plot_transmission_spectrum', 'plot_pulls']


def plot_fit(result, axes=None, nbin: int | None = None):
    """Detrended data with the MAP transit/eclipse model, and residuals below.

    Parameters
    ----------
    result : FitResult
        A result that carries its data (not one read from a file).
    axes : sequence of two Axes, optional
        Data and residual axes; default a new figure with two panels.
    nbin : int, optional
        Also draw means of ``nbin`` consecutive points.

    Returns
    -------
    list of matplotlib.axes.Axes
        The data and residual panels.

    Raises
    ------
    ValueError
        If the result has no data.
    """
    import matplotlib.pyplot as plt

    if result.time is None:
        raise ValueError("this FitResult carries no data (read from a file?)")
    if axes is None:
        _, (a0, a1) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    else:
        a0, a1 = axes
    th, ref = time_axis(result.time)
    detr = result.flux / result.systematics
    resid = (result.flux - result.model_flux) / result.systematics * 1e6
    a0.plot(th, detr, ".", ms=3, color="0.6", label="data / systematics")
    a0.plot(th, result.astro, "-", color="C3", label="MAP model")
    a1.plot(th, resid, ".", ms=3, color="0.6")
    if nbin:
        for axis, y in ((a0, detr), (a1, resid)):
            xb, yb, eb = bin_points(th, y, int(nbin))
            axis.errorbar(xb, yb, eb, ls="none", marker="o", ms=3, color="k")
    a1.axhline(0, color="C3")
    a0.set_ylabel("relative flux")
    a1.set_ylabel("residual [ppm]")
    a1.set_xlabel(f"time - {ref:.5f} [h, BJD_TDB]")
    d = result.depth_ppm
    a0.set_title(f"{result.model.get('kind', 'fit')}: depth {d[0]:.0f} -{d[1]:.0f} +{d[2]:.0f} ppm")
    a0.legend(loc="best", fontsize="small")
    return [a0, a1]


def plot_corner(result, names=None, axes=None, bins: int = 30):
    """Pairs plot of posterior samples (histograms on the diagonal).

    Parameters
    ----------
    result : FitResult
        With samples.
    names : list of str, optional
        Parameters to show (default the free ones).
    axes : array of matplotlib.axes.Axes, shape (k, k), optional
        Where to draw (a new figure if None).
    bins : int
        Histogram bins.

    Returns
    -------
    ndarray of matplotlib.axes.Axes, shape (k, k)

    Raises
    ------
    ValueError
        Without samples or with an unknown name.
    """
    import matplotlib.pyplot as plt

    if result.samples is None:
        raise ValueError("this FitResult has no samples (read from a file?)")
    names = list(names or [n for n in result.sample_names if result.status.get(n) == "free"])
    unknown = [n for n in names if n not in result.sample_names]
    if unknown:
        raise ValueError(f"no samples of {unknown}; have {result.sample_names}")
    k = len(names)
    if axes is None:
        fig = plt.figure(figsize=(2.2 * k + 1, 2.2 * k + 1))
        axes = fig.subplots(k, k, squeeze=False)
    axes = np.asarray(axes, dtype=object).reshape(k, k)
    data = [result.sample(n) for n in names]
    for i in range(k):
        for j in range(k):
            a = axes[i, j]
            if j > i:
                a.set_axis_off()
                continue
            if i == j:
                a.hist(data[i], bins=bins, histtype="step", color="k")
                a.set_yticks([])
            else:
                a.hist2d(data[j], data[i], bins=bins, cmap="Greys")
            if i == k - 1:
                a.set_xlabel(names[j])
            else:
                a.set_xticklabels([])
            if j == 0 and i > 0:
                a.set_ylabel(names[i])
            elif j > 0:
                a.set_yticklabels([])
    return axes


def plot_transmission_spectrum(spec, ax=None, compare=None, **kwargs):
    """Depth (ppm) versus wavelength with error bars and optional comparisons.

    Parameters
    ----------
    spec : TransmissionSpectrum
    ax : matplotlib.axes.Axes, optional
    compare : dict, optional
        ``{label: TransmissionSpectrum or (wave, depth_ppm)}`` drawn as lines.
    **kwargs
        Passed to ``errorbar`` of ``spec``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax)
    opts = dict(ls="none", marker="o", ms=4, color="k", label="this fit")
    opts.update(kwargs)
    ax.errorbar(spec.wave, spec.depth, yerr=[spec.err_lo, spec.err_hi],
                xerr=0.5 * (spec.wave_hi - spec.wave_lo), **opts)
    for i, (label, other) in enumerate((compare or {}).items()):
        w, d = (other.wave, other.depth) if hasattr(other, "depth") else other
        ax.plot(w, d, "-" if len(w) > 1 else "s", color=f"C{i + 3}", label=str(label), zorder=3)
    ax.set_xlabel("wavelength [micron]")
    ax.set_ylabel("eclipse depth [ppm]" if spec.kind == "eclipse" else "transit depth [ppm]")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_pulls(spec, truth, ax=None):
    """(fit - truth) / error per channel, with the +-1 and +-2 sigma bands.

    Parameters
    ----------
    spec : TransmissionSpectrum
    truth : array_like
        The true depth (ppm) of each channel (e.g. the injected, binned depth).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax, figsize=(6, 3))
    d = np.asarray(spec.depth, float) - np.asarray(truth, float)
    err = np.where(d > 0, spec.err_lo, spec.err_hi)
    pull = d / err
    ax.axhspan(-2, 2, color="0.92", lw=0)
    ax.axhspan(-1, 1, color="0.82", lw=0)
    ax.axhline(0, color="C3", lw=1)
    ax.plot(spec.wave, pull, "o", color="k", ms=4)
    ax.set_xlabel("wavelength [micron]")
    ax.set_ylabel("(fit - truth) / error")
    ax.set_title(f"pulls: mean {np.mean(pull):+.2f}, std {np.std(pull):.2f} "
                 f"(expected 0, 1)")
    return ax
