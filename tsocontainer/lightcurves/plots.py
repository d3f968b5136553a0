"""The plot methods of :class:`~tsocontainer.lightcurves.container.LightCurves` (a mixin).

Each takes ``ax=`` and returns the Axes; the drawing is in :mod:`tsocontainer.plotting`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["LightCurvePlots"]


class LightCurvePlots:
    """Waterfall, white light, binned RMS, periodogram and sensitivity plots."""

    def plot_waterfall(self, ax=None, offset: float | None = None, **kwargs) -> "Axes":
        """Stacked light curves coloured by wavelength; see ``plotting.plot_lc_waterfall``.

        Examples
        --------
        >>> import numpy as np
        >>> from tsocontainer import LightCurves
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> ax = lc.plot_waterfall()
        >>> ax.get_xlabel()
        'time - 0.15000 [h, BJD_TDB]'
        >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
        """
        from tsocontainer.plotting.lightcurves import plot_lc_waterfall

        return plot_lc_waterfall(self, ax=ax, offset=offset, **kwargs)

    def plot_white(self, ax=None, wave_range=None, **kwargs) -> "Axes":
        """White-light curve; see ``plotting.plot_white``.

        Examples
        --------
        >>> import numpy as np
        >>> from tsocontainer import LightCurves
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> ax = lc.plot_white()
        >>> ax.get_xlabel()
        'time - 0.15000 [h, BJD_TDB]'
        >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
        """
        from tsocontainer.plotting.lightcurves import plot_white

        return plot_white(self, ax=ax, wave_range=wave_range, **kwargs)

    def plot_rms_vs_bin(self, channel: int | None = None, ax=None, **kwargs) -> "Axes":
        """RMS versus bin size; see ``plotting.plot_rms_vs_bin``.

        Examples
        --------
        >>> import numpy as np
        >>> from tsocontainer import LightCurves
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> ax = lc.plot_rms_vs_bin()
        >>> ax.get_xlabel()
        'bin size [integrations]'
        >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
        """
        from tsocontainer.plotting.lightcurves import plot_rms_vs_bin

        return plot_rms_vs_bin(self, channel=channel, ax=ax, **kwargs)

    def plot_psd(self, channel: int | None = None, ax=None, **kwargs) -> "Axes":
        """Periodogram of residuals; see ``plotting.plot_psd``.

        Examples
        --------
        >>> import numpy as np
        >>> from tsocontainer import LightCurves
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> ax = lc.plot_psd()
        >>> ax.get_xlabel()
        'frequency [1/day]'
        >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
        """
        from tsocontainer.plotting.lightcurves import plot_psd

        return plot_psd(self, channel=channel, ax=ax, **kwargs)

    def plot_sensitivity(self, ax=None, **kwargs) -> "Axes":
        """Scatter / predicted error per channel; see ``plotting.plot_sensitivity``.

        Examples
        --------
        >>> import numpy as np
        >>> from tsocontainer import LightCurves
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> ax = lc.plot_sensitivity()
        >>> ax.get_xlabel()
        'wavelength [micron]'
        >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
        """
        from tsocontainer.plotting.lightcurves import plot_sensitivity

        return plot_sensitivity(self, ax=ax, **kwargs)
