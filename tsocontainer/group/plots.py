"""Diagnostic plots of a group (mixin of :class:`~tsocontainer.TSOGroup`).

Every single-panel method takes ``ax=`` (a new figure when None) and returns the
Axes; multi-panel ones take ``axes=`` (a sequence of Axes) and return them. The
drawing itself lives in :mod:`tsocontainer.plotting`, imported lazily.
"""
from __future__ import annotations

import numpy as np

__all__ = ["GroupPlots"]


class GroupPlots:
    """Plots of the frames, flags, sky, 1/f correction, traces and stability."""

    def plot_flags(self, name: str, ax=None, **kwargs):
        """Map of the fraction of integrations in which each pixel has flag ``name``.

        Parameters
        ----------
        name : str
            Step flag.
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure if None.
        **kwargs
            Passed to ``imshow``.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from tsocontainer.plotting.cleaning import plot_flag_map

        return plot_flag_map(self, name, ax=ax, **kwargs)

    def plot_flag_rate(self, names=None, ax=None):
        """Fraction of pixels flagged per integration for each step flag (Axes)."""
        from tsocontainer.plotting.cleaning import plot_flag_rate

        return plot_flag_rate(self, names, ax=ax)

    def plot_hot_cold_pixels(self, ax=None):
        """Map of the ``hot_cold`` flags (Axes)."""
        return self.plot_flags("hot_cold", ax=ax)

    def plot_2d_outliers(self, ax=None):
        """Map of the ``outliers_2d`` flags (Axes)."""
        return self.plot_flags("outliers_2d", ax=ax)

    def plot_percentile_outliers(self, ax=None):
        """Map of the ``percentile`` flags (Axes)."""
        return self.plot_flags("percentile", ax=ax)

    def plot_time_outliers(self, ax=None):
        """Map of the ``time_outliers`` flags (Axes)."""
        return self.plot_flags("time_outliers", ax=ax)

    def plot_profile_outliers(self, ax=None):
        """Map of the ``profile`` flags (Axes)."""
        return self.plot_flags("profile", ax=ax)

    def plot_trace_outliers(self, ax=None):
        """Map of the ``trace_outliers`` flags (Axes)."""
        return self.plot_flags("trace_outliers", ax=ax)

    def plot_order0_mask(self, ax=None):
        """Map of the ``order0`` flags (Axes)."""
        return self.plot_flags("order0", ax=ax)

    def plot_replaced(self, ax=None):
        """Map of the pixels replaced in the working data (Axes)."""
        return self.plot_flags("replaced", ax=ax)

    def plot_sky(self, integration: int = 0, ax=None, **kwargs):
        """Image of the sky model of one integration (Axes); needs :meth:`estimate_sky`."""
        from tsocontainer.plotting.cleaning import plot_sky

        return plot_sky(self, integration, ax=ax, **kwargs)

    def one_over_f_psd(self, max_integrations: int = 50, width=None):
        """PSD of the background line means before and after the 1/f correction.

        Parameters
        ----------
        max_integrations : int
            Evenly spaced integrations used.
        width : float, optional
            Trace band excluded (pixels); default per mode.

        Returns
        -------
        freq, before, after : ndarray
            ``after`` is None if :meth:`correct_one_over_f` has not run.
        """
        from tsocontainer.cleaning.onef import onef_psd

        onef = self.geometry.onef_axis
        idx = np.unique(np.linspace(0, self.N - 1, min(self.N, max_integrations)).astype(int))
        before, after = [], []
        for i in idx:  # a few integrations only
            before.append(self._source_block(i, i + 1, "onef", ("replace",), False)[0])
            if "onef" in self.corrections:
                after.append(self._source_block(i, i + 1, None, ("replace",), False)[0])
        return onef_psd(np.concatenate(before), np.concatenate(after) if after else None,
                        self.mask[idx], self._trace_band(width), onef)

    def plot_one_over_f_psd(self, ax=None, max_integrations: int = 50, width=None):
        """Plot :meth:`one_over_f_psd` (the JWebbinar notebook's before/after PSD).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure if None.
        max_integrations : int
            Integrations used.
        width : float, optional
            Trace band excluded.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from tsocontainer.plotting.cleaning import plot_one_over_f_psd

        freq, p0, p1 = self.one_over_f_psd(max_integrations, width)
        onef = self.geometry.onef_axis
        return plot_one_over_f_psd(freq, p0, p1, ax=ax,
                                   label_axis="column" if onef == 0 else "row")

    def plot_frame(self, integration: int | None = None, ax=None, **kwargs):
        """Show one integration, or the median frame, with a robust stretch.

        Parameters
        ----------
        integration : int, optional
            Integration index; default the median frame.
        ax : matplotlib Axes, optional
            Where to draw; a new figure if None.
        **kwargs
            Passed to ``imshow`` (e.g. ``cmap``).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from tsocontainer.plotting.core import plot_frame

        return plot_frame(self, integration=integration, ax=ax, **kwargs)

    def plot_trace(self, order=None, integration=None, ax=None, **kwargs):
        """Median frame (or one integration) with the fitted traces drawn on it.

        Parameters
        ----------
        order : int or sequence, optional
            Orders drawn (default: all fitted).
        integration : int, optional
            Integration shown (default the median frame and the median trace).
        ax : matplotlib.axes.Axes, optional
            Where to draw.
        **kwargs
            Passed to ``imshow``.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from tsocontainer.plotting.spectra import plot_trace

        return plot_trace(self, order=order, integration=integration, ax=ax, **kwargs)

    def plot_stability(self, axes=None):
        """Time series of x/y shift, FWHM and PCA components (one panel each).

        Parameters
        ----------
        axes : sequence of matplotlib.axes.Axes, optional
            One Axes per series (a new figure if None).

        Returns
        -------
        list of matplotlib.axes.Axes
        """
        from tsocontainer.plotting.spectra import plot_stability

        return plot_stability(self, axes=axes)

    def plot_profile(self, column: int, order=None, integration=None, ax=None):
        """Cross-dispersion profile at a dispersion pixel, with trace and aperture.

        Parameters
        ----------
        column : int
            Dispersion pixel (a row for MIRI LRS).
        order : int, optional
            Order whose centre and FWHM are marked (default: all fitted).
        integration : int, optional
            Integration (default: the median frame).
        ax : matplotlib.axes.Axes, optional
            Where to draw.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from tsocontainer.plotting.spectra import plot_profile

        return plot_profile(self, column, order=order, integration=integration, ax=ax)
