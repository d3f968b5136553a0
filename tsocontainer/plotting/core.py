"""Diagnostic plots. Every ``plot_*`` takes ``ax=None`` and returns the Axes.

Computation never happens here beyond what a plot needs; matplotlib is
imported only when a plot is drawn.
"""
from __future__ import annotations

import numpy as np

__all__ = ["get_ax", "plot_frame",
           "plot_lc_waterfall", "plot_white", "plot_rms_vs_bin", "plot_psd", "plot_sensitivity",
           "plot_fit", "plot_corner", "plot_transmission_spectrum"]


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


# ------------------------------------------------------------ light curves
def _time_axis(t):
    """Hours from the middle of ``t`` and the reference time (BJD_TDB)."""
    ref = 0.5 * (np.min(t) + np.max(t))
    return (np.asarray(t) - ref) * 24.0, ref


def _bin_points(x, y, nbin: int):
    """Means of consecutive groups of ``nbin`` points (the remainder is dropped)."""
    m = x.size // nbin
    return (x[: m * nbin].reshape(m, nbin).mean(axis=1),
            y[: m * nbin].reshape(m, nbin).mean(axis=1),
            y[: m * nbin].reshape(m, nbin).std(axis=1) / np.sqrt(nbin))


def plot_lc_waterfall(lc, ax=None, offset=None, cmap: str = "viridis", **kwargs):
    """Light curves of every channel stacked with an offset, coloured by wavelength.

    Parameters
    ----------
    lc : LightCurves
    ax : matplotlib.axes.Axes, optional
    offset : float, optional
        Vertical step between channels (default: 1.1 x the largest
        1-99 percentile range of a channel).
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
    th, ref = _time_axis(lc.time)
    f = np.where(lc.clipped, np.nan, lc.flux)
    if offset is None:
        span = np.nanpercentile(f, 99, axis=1) - np.nanpercentile(f, 1, axis=1)
        offset = 1.1 * float(np.nanmax(span)) if np.isfinite(span).any() else 1.0
    norm = Normalize(lc.wave.min(), lc.wave.max() if lc.nchan > 1 else lc.wave.min() + 1)
    colours = plt.get_cmap(cmap)
    opts = dict(lw=0.8)
    opts.update(kwargs)
    for c in range(lc.nchan):
        ax.plot(th, f[c] - c * offset, color=colours(norm(lc.wave[c])), **opts)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=colours)
    ax.figure.colorbar(sm, ax=ax, label="wavelength (micron)")
    ax.set_xlabel(f"time - {ref:.5f} (hours, BJD_TDB)")
    ax.set_ylabel("flux + offset")
    ax.set_title(f"{lc.nchan} channels")
    return ax


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
    th, ref = _time_axis(wl.time)
    opts = dict(ls="none", marker=".", ms=3, color="0.5", label="integrations")
    opts.update(kwargs)
    ax.plot(th[u], wl.flux[0, u], **opts)
    if nbin:
        xb, yb, eb = _bin_points(th[u], wl.flux[0, u], int(nbin))
        ax.errorbar(xb, yb, eb, ls="none", marker="o", ms=4, color="k", label=f"bins of {nbin}")
    ax.set_xlabel(f"time - {ref:.5f} (hours, BJD_TDB)")
    ax.set_ylabel("relative flux" if wl.unit == "" else f"flux ({wl.unit or 'input units'})")
    ax.set_title(f"white light {wl.wave_lo[0]:.3f}-{wl.wave_hi[0]:.3f} micron")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_rms_vs_bin(lc, channel=None, ax=None, model=None, oot=None):
    """RMS of binned residuals versus bin size, against the 1/sqrt(N) expectation.

    Parameters
    ----------
    lc : LightCurves
    channel : int, optional
        Channel; default the white-light curve.
    ax : matplotlib.axes.Axes, optional
    model, oot
        See :meth:`LightCurves.residuals`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax, figsize=(5, 4))
    sizes, rms, expected = lc.rms_vs_bin(channel, model=model, oot=oot)
    ax.loglog(sizes, rms * 1e6, "o-", color="k", label="measured")
    ax.loglog(sizes, expected * 1e6, "--", color="C3", label="white noise, 1/sqrt(N)")
    ax.set_xlabel("bin size (integrations)")
    ax.set_ylabel("RMS of binned residuals (ppm)")
    ax.set_title("white light" if channel is None else f"channel {channel}")
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
    ax.set_xlabel("frequency (1/day)")
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
    ax.set_xlabel("wavelength (micron)")
    ax.set_ylabel("scatter / predicted error")
    ax.legend(loc="best", fontsize="small")
    return ax


# ------------------------------------------------------------------ fits
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
    th, ref = _time_axis(result.time)
    detr = result.flux / result.systematics
    resid = (result.flux - result.model_flux) / result.systematics * 1e6
    a0.plot(th, detr, ".", ms=3, color="0.6", label="data / systematics")
    a0.plot(th, result.astro, "-", color="C3", label="MAP model")
    a1.plot(th, resid, ".", ms=3, color="0.6")
    if nbin:
        for axis, y in ((a0, detr), (a1, resid)):
            xb, yb, eb = _bin_points(th, y, int(nbin))
            axis.errorbar(xb, yb, eb, ls="none", marker="o", ms=3, color="k")
    a1.axhline(0, color="C3")
    a0.set_ylabel("relative flux")
    a1.set_ylabel("residual (ppm)")
    a1.set_xlabel(f"time - {ref:.5f} (hours, BJD_TDB)")
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
        ax.plot(w, d, "-", color=f"C{i}", label=str(label))
    ax.set_xlabel("wavelength (micron)")
    ax.set_ylabel("eclipse depth (ppm)" if spec.kind == "eclipse" else "transit depth (ppm)")
    ax.legend(loc="best", fontsize="small")
    return ax


# ------------------------------------------- tracing and extraction (issue 5)
__all__ += ["plot_trace", "plot_stability", "plot_profile", "plot_spectra_waterfall",
            "plot_spectra_median"]


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
        rel = f / np.nanmedian(f, axis=0)
    w = spec.wave[order]
    keep = np.isfinite(w)
    srt = np.argsort(w[keep])
    t = (spec.time - spec.time[0]) * 24.0
    vmin, vmax = robust_limits(rel[:, keep], 2, 98)
    opts = dict(cmap="viridis", vmin=vmin, vmax=vmax, shading="nearest")
    opts.update(kwargs)
    mesh = ax.pcolormesh(w[keep][srt], t, rel[:, keep][:, srt], **opts)
    ax.figure.colorbar(mesh, ax=ax, label="flux / median spectrum")
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


# ------------------------------------------------------------ cleaning plots
__all__ += ["plot_flag_map", "plot_flag_rate", "plot_sky", "plot_one_over_f_psd"]


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
