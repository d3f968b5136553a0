"""Plots of the cleaning steps: flag maps and rates, sky model, 1/f periodogram."""
from __future__ import annotations

import numpy as np

from tsocontainer.plotting.core import get_ax, robust_limits

__all__ = ['plot_flag_map', 'plot_flag_rate', 'plot_sky', 'plot_one_over_f_psd']


def plot_flag_map(group, name, ax=None, **kwargs):
    """Fraction of integrations in which each pixel carries step flag ``name``.

    Parameters
    ----------
    group : TSOGroup
        The visit.
    name : str
        Step flag (``hot_cold``, ``time_outliers``, ``replaced``, ...).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    **kwargs
        Passed to ``imshow``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    flagged = group.flagged(name)
    frac = flagged.mean(axis=0)
    ax = get_ax(ax, figsize=(10, 3) if group.sh[1] > 2 * group.sh[0] else (4, 7))
    opts = dict(origin="lower", aspect="auto", cmap="magma", vmin=0,
                vmax=max(float(frac.max()), 1e-6), interpolation="nearest")
    opts.update(kwargs)
    im = ax.imshow(frac, **opts)
    ax.figure.colorbar(im, ax=ax, label="fraction of integrations flagged")
    ax.set_title(f"flag {name}: {int(flagged.sum())} pixels "
                 f"({100 * flagged.mean():.3g} %)")
    ax.set_xlabel("x (column)")
    ax.set_ylabel("y (row)")
    return ax


def plot_flag_rate(group, names=None, ax=None):
    """Fraction of pixels flagged per integration, one line per step flag.

    Parameters
    ----------
    group : TSOGroup
        The visit.
    names : list of str, optional
        Flags to show (default: all that are set).
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax)
    names = list(group._flags.planes) if names is None else list(names)
    for name in names:
        ax.plot(np.arange(group.N), 100 * group.flagged(name).mean(axis=(1, 2)), label=name)
    ax.set_xlabel("integration")
    ax.set_ylabel("pixels flagged [%]")
    ax.set_title("flags per integration")
    if names:
        ax.legend(fontsize="small")
    return ax


def plot_sky(group, integration=0, ax=None, **kwargs):
    """Image of the stored sky model of one integration.

    Parameters
    ----------
    group : TSOGroup
        A visit on which ``estimate_sky`` ran.
    integration : int
        Integration index.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    **kwargs
        Passed to ``imshow``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    sky = group.sky_model(integration)
    ax = get_ax(ax, figsize=(10, 3) if group.sh[1] > 2 * group.sh[0] else (4, 7))
    vmin, vmax = robust_limits(sky)
    opts = dict(origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax,
                interpolation="nearest")
    opts.update(kwargs)
    im = ax.imshow(sky, **opts)
    ax.figure.colorbar(im, ax=ax, label="sky")
    ax.set_title(f"sky model ({group.meta.get('SKYMETH', '?')}), integration {integration}")
    ax.set_xlabel("x (column)")
    ax.set_ylabel("y (row)")
    return ax


def plot_one_over_f_psd(freq, before, after=None, ax=None, label_axis="column"):
    """Power spectrum of background line means before / after the 1/f correction.

    Parameters
    ----------
    freq : ndarray
        Frequency (cycles per line).
    before : ndarray
        Mean power before the correction.
    after : ndarray, optional
        Mean power after it.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    label_axis : str
        Name of a line (``column`` or ``row``) for the axis label.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax)
    sel = freq > 0
    ax.loglog(freq[sel], before[sel], label=f"before (total {before[sel].sum():.3g})")
    if after is not None:
        ax.loglog(freq[sel], after[sel], label=f"after (total {after[sel].sum():.3g})")
    ax.set_xlabel(f"frequency [cycles / {label_axis}]")
    ax.set_ylabel("power of background line means")
    ax.set_title("1/f noise: PSD of background pixels")
    ax.legend(fontsize="small")
    return ax
