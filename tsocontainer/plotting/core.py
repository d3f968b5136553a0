"""Shared plotting helpers and the frame plot.

Every ``plot_*`` of :mod:`tsocontainer.plotting` takes ``ax=None`` (``axes=None`` for
multi-panel plots) and returns what it drew on. Computation never happens here beyond
what a plot needs; matplotlib is imported only when a plot is drawn. Labels carry units
in square brackets (``wavelength [micron]``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["get_ax", "robust_limits", "time_axis", "bin_points", "plot_frame"]


def get_ax(ax=None, figsize=(7, 4)):
    """Return ``ax``, or the Axes of a new figure when ``ax`` is None.

    Parameters
    ----------
    ax : matplotlib.axes.Axes, optional
        Existing axes.
    figsize : tuple
        Size of a new figure.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def robust_limits(image, lo: float = 1.0, hi: float = 99.0):
    """Percentile display limits of the finite values of ``image``."""
    finite = np.asarray(image)[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    vmin, vmax = np.percentile(finite, [lo, hi])
    return float(vmin), float(vmax if vmax > vmin else vmin + 1)


def plot_frame(group, integration=None, ax=None, **kwargs):
    """Image of one integration (or the median frame) of ``group``.

    Parameters
    ----------
    group : TSOGroup
        The visit.
    integration : int, optional
        Integration index; default the masked median frame.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    **kwargs
        Passed to ``imshow``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax, figsize=(10, 3) if group.sh[1] > 2 * group.sh[0] else (4, 7))
    if integration is None:
        image, title = group.median_frame, "median frame"
    else:
        image, title = group.sci[integration], f"integration {integration}"
    vmin, vmax = robust_limits(image)
    opts = dict(origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax,
                interpolation="nearest")
    opts.update(kwargs)
    im = ax.imshow(image, **opts)
    ax.figure.colorbar(im, ax=ax, label="flux")
    mode = group.mode.name if group.mode is not None else ""
    ax.set_title(f"{mode} {title}".strip())
    ax.set_xlabel("x (column)")
    ax.set_ylabel("y (row)")
    return ax


def time_axis(t):
    """Hours since the first time, and that first time (BJD_TDB days)."""
    """Hours from the middle of ``t`` and the reference time (BJD_TDB)."""
    ref = 0.5 * (np.min(t) + np.max(t))
    return (np.asarray(t) - ref) * 24.0, ref


def bin_points(x, y, nbin: int):
    """Means and standard errors of ``nbin`` consecutive points."""
    """Means of consecutive groups of ``nbin`` points (the remainder is dropped)."""
    m = x.size // nbin
    return (x[: m * nbin].reshape(m, nbin).mean(axis=1),
            y[: m * nbin].reshape(m, nbin).mean(axis=1),
            y[: m * nbin].reshape(m, nbin).std(axis=1) / np.sqrt(nbin))
