"""Plots of traces, stability, profiles and extracted spectra."""
from __future__ import annotations

import numpy as np

from tsocontainer.plotting.core import get_ax, plot_frame, robust_limits

__all__ = ['plot_trace', 'plot_stability', 'plot_profile', 'plot_spectra_waterfall', 'plot_spectra_median']


def plot_trace(group, order=None, integration=None, ax=None, **kwargs):
    """Median frame (or one integration) with the fitted traces of ``group``.

    Parameters
    ----------
    group : TSOGroup
        A group on which ``fit_all_traces`` ran.
    order : int or sequence of int, optional
        Orders drawn (default: all fitted).
    integration : int, optional
        Integration shown with its own trace (default: median frame, median trace).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    **kwargs
        Passed to ``imshow``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from tsocontainer.arrays.views import nanmedian_quiet

    ax = plot_frame(group, integration=integration, ax=ax, **kwargs)
    traces = group.traces
    orders = traces if order is None else ((order,) if np.ndim(order) == 0 else order)
    vertical = group.mode is not None and group.mode.spec.dispersion_axis == 0
    for o in orders:
        tr = traces[o]
        c = tr[integration] if integration is not None else nanmedian_quiet(tr, axis=0)
        x = np.arange(c.size)
        xy = (c, x) if vertical else (x, c)
        ax.plot(*xy, lw=0.8, color=f"C{(o - 1) % 10}", label=f"order {o}")
    ax.legend(loc="upper right", fontsize="small")
    return ax


def plot_stability(group, axes=None):
    """Time series of the stability regressors of ``group``, one panel each.

    Parameters
    ----------
    group : TSOGroup
        A group on which ``measure_shifts`` and/or ``stability_pca`` ran.
    axes : sequence of matplotlib.axes.Axes, optional
        One Axes per regressor (a new figure with a column of panels if None).

    Returns
    -------
    list of matplotlib.axes.Axes

    Raises
    ------
    RuntimeError
        When no regressor has been measured.
    """
    import matplotlib.pyplot as plt

    regs = group.regressors
    if not regs:
        raise RuntimeError("no stability time series yet: run measure_shifts() or stability_pca()")
    n = len(regs)
    if axes is None:
        fig = plt.figure(figsize=(8, 1.3 * n + 0.8))
        axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    axes = list(np.ravel(axes))
    if len(axes) < n:
        raise ValueError(f"plot_stability needs {n} Axes (one per regressor), got {len(axes)}")
    t = (group.time_bjd - group.time_bjd[0]) * 24.0
    units = {"shift_x": "px", "shift_y": "px", "fwhm": "px"}
    for ax, (name, v) in zip(axes, regs.items()):
        ax.plot(t, v, ".", ms=2, color="k")
        ax.set_ylabel(f"{name} [{units[name]}]" if name in units else name, fontsize="small")
    axes[-1].set_xlabel("time since first integration [h]")
    axes[0].set_title("trace stability")
    return axes


def plot_profile(group, column, order=None, integration=None, ax=None):
    """Cross-dispersion profile at dispersion pixel ``column``.

    Parameters
    ----------
    group : TSOGroup
        The visit (traces marked when fitted).
    column : int
        Dispersion pixel (a row for MIRI LRS).
    order : int, optional
        Order marked (default: all fitted).
    integration : int, optional
        Integration (default: median frame).
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from tsocontainer.arrays.views import dispersion_major, nanmedian_quiet

    ax = get_ax(ax)
    axis = group.geometry.dispersion_axis
    frame = (group.median_frame if integration is None
             else group.working_block(integration, integration + 1)[0][0])
    prof = dispersion_major(frame, axis)[:, column]
    ax.step(np.arange(prof.size), prof, where="mid", color="k", lw=0.8, label="data")
    try:
        traces, widths = group.traces, group.trace_widths
    except RuntimeError:
        traces, widths = {}, {}
    for o in (traces if order is None else (order,)):
        tr = traces[o][integration] if integration is not None else nanmedian_quiet(traces[o], 0)
        fw = widths[o][integration] if integration is not None else nanmedian_quiet(widths[o], 0)
        c, w = tr[column], fw[column]
        if np.isfinite(c):
            ax.axvline(c, color=f"C{(o - 1) % 10}", lw=1, label=f"order {o} centre")
            ax.axvspan(c - w / 2, c + w / 2, color=f"C{(o - 1) % 10}", alpha=0.15, label="FWHM")
    ax.set_xlabel("cross-dispersion pixel")
    ax.set_ylabel("flux")
    ax.set_title(f"profile at dispersion pixel {column}")
    ax.legend(fontsize="small")
    return ax


def plot_spectra_waterfall(spec, order=1, ax=None, **kwargs):
    """Flux divided by the median spectrum, wavelength versus time.

    Parameters
    ----------
    spec : Spectra
        Extracted spectra.
    order : int
        Order.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    **kwargs
        Passed to ``pcolormesh``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax, figsize=(8, 5))
    import warnings

    f = np.where(spec.mask[order], spec.flux[order], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(f, axis=0)
        rel = (f / med - 1.0) * 1e6
    w = spec.wave[order]
    keep = np.isfinite(w) & np.isfinite(med)
    srt = np.argsort(w[keep])
    t = (spec.time - spec.time[0]) * 24.0
    # colour limits from the well-exposed pixels only: the faint edges of an order are
    # dominated by noise and would stretch the scale until the transit is invisible
    bright = keep & (med >= 0.2 * np.nanmax(np.where(keep, med, np.nan)))
    vmin, vmax = robust_limits(rel[:, bright] if bright.any() else rel[:, keep], 2, 98)
    opts = dict(cmap="viridis", vmin=vmin, vmax=vmax, shading="nearest")
    opts.update(kwargs)
    mesh = ax.pcolormesh(w[keep][srt], t, rel[:, keep][:, srt], **opts)
    ax.figure.colorbar(mesh, ax=ax, label="flux / median spectrum - 1 [ppm]")
    ax.set_xlabel("wavelength [micron]")
    ax.set_ylabel("time since first integration [h]")
    ax.set_title(f"order {order}")
    return ax


def plot_spectra_median(spec, orders=None, integrations=None, ax=None, **kwargs):
    """Median spectrum (with the median 1-sigma band) or selected integrations.

    Parameters
    ----------
    spec : Spectra
        Extracted spectra.
    orders : sequence of int, optional
        Orders (default all).
    integrations : sequence of int, optional
        Integrations drawn instead of the median.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    **kwargs
        Passed to ``plot``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import warnings

    ax = get_ax(ax)
    for o in (spec.orders if orders is None else orders):
        w = spec.wave[o]
        srt = np.argsort(w)
        f = np.where(spec.mask[o], spec.flux[o], np.nan)
        if integrations is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(f, axis=0)
                err = np.sqrt(np.nanmedian(np.where(spec.mask[o], spec.var[o], np.nan), axis=0))
            line, = ax.plot(w[srt], med[srt], label=f"order {o}", **kwargs)
            ax.fill_between(w[srt], (med - err)[srt], (med + err)[srt], color=line.get_color(),
                            alpha=0.3, lw=0)
        else:
            for i in integrations:
                ax.plot(w[srt], f[i][srt], label=f"order {o}, int {i}", **kwargs)
    ax.set_xlabel("wavelength [micron]")
    unit = spec.meta.get("BUNIT") or ""
    ax.set_ylabel(f"flux [{unit}]" if unit else "flux")
    ax.legend(fontsize="small")
    return ax
