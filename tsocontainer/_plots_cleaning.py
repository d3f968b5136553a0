"""Diagnostic plots of the cleaning steps (mixin of :class:`~tsocontainer.TSOGroup`).

Every method takes ``ax=`` (a new figure when None) and returns the Axes; the
drawing itself lives in :mod:`tsocontainer.plotting`, imported lazily.
"""
from __future__ import annotations

__all__ = ["CleaningPlots"]


class CleaningPlots:
    """Plots of the flags, the sky and the 1/f correction."""

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
        from .plotting import plot_flag_map

        return plot_flag_map(self, name, ax=ax, **kwargs)

    def plot_flag_rate(self, names=None, ax=None):
        """Fraction of pixels flagged per integration for each step flag (Axes)."""
        from .plotting import plot_flag_rate

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
        from .plotting import plot_sky

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
        from .onef import onef_psd

        return onef_psd(self, max_integrations, self._trace_band(width))

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
        from .plotting import plot_one_over_f_psd

        freq, p0, p1 = self.one_over_f_psd(max_integrations, width)
        _, onef = self._axes()
        return plot_one_over_f_psd(freq, p0, p1, ax=ax,
                                   label_axis="column" if onef == 0 else "row")
