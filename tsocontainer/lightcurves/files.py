"""ECSV files of :class:`~tsocontainer.lightcurves.container.LightCurves` (a mixin).

``to_table``, ``write`` and ``read``: one row per integration, the channel edges,
normalisation, meta and history in the table's meta; reading gives back the same
light curves.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from tsocontainer._util import jsonable as _jsonable
from tsocontainer._version import __version__
from tsocontainer.lightcurves.tools import write_table_atomic

if TYPE_CHECKING:  # for type hints only
    from astropy.table import Table

__all__ = ["LightCurveFiles"]

log = logging.getLogger(__name__)


class LightCurveFiles:
    """ECSV input and output of the light curves."""

    def to_table(self) -> "Table":
        """The light curves as an astropy Table (one row per integration).

        Returns
        -------
        astropy.table.Table
            Columns ``time`` (d, BJD_TDB), ``flux``, ``err`` and ``clipped``
            of shape (nint, nchan), ``oot`` if set and ``reg_<name>`` per
            regressor; channel edges, normalisation, meta and history in
            ``meta``.

        Examples
        --------
        >>> import numpy as np
        >>> from tsocontainer.lightcurves.container import LightCurves
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> tab = lc.to_table()
        >>> tab.colnames, tab["flux"].shape
        (['time', 'flux', 'err', 'clipped'], (400, 2))
        """
        from astropy.table import Table
        import astropy.units as u

        funit = u.Unit(self.unit, parse_strict="silent") if self.unit else None
        t = Table()
        t["time"] = u.Quantity(self.time, u.d)
        t["flux"] = self.flux.T if funit is None else u.Quantity(self.flux.T, funit)
        t["err"] = self.err.T if funit is None else u.Quantity(self.err.T, funit)
        t["clipped"] = self.clipped.T
        if self.oot is not None:
            t["oot"] = self.oot
        for name, arr in self.regressors.items():
            t[f"reg_{name}"] = arr
        t.meta.update({"time_scale": "tdb", "time_ref": "BJD_TDB", "wave_unit": "micron",
                       "wave_lo": self.wave_lo.tolist(), "wave_hi": self.wave_hi.tolist(),
                       "norm": self.norm.tolist(), "unit": self.unit,
                       "regressors": list(self.regressors), "meta": _jsonable(self.meta),
                       "history": _jsonable(self.history), "tsocontainer": __version__})
        return t

    def write(self, path, overwrite: bool = False) -> str:
        """Write the light curves to an ECSV file (atomically).

        Parameters
        ----------
        path : str or path-like
            Output file (``.ecsv``).
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        str
            The path written.

        Examples
        --------
        >>> import numpy as np
        >>> from tsocontainer.lightcurves.container import LightCurves
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> import tempfile
        >>> path = lc.write(tempfile.mkdtemp() + "/lightcurves.ecsv")
        >>> bool(np.array_equal(LightCurves.read(path).flux, lc.flux))
        True
        """
        out = write_table_atomic(self.to_table(), path, overwrite)
        log.info("write: %d channels x %d integrations to %s", self.nchan, self.nint, out)
        return out

    @classmethod
    def read(cls, path) -> "LightCurves":
        """Read light curves written by :meth:`write`.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        LightCurves

        Examples
        --------
        >>> import numpy as np
        >>> from tsocontainer.lightcurves.container import LightCurves
        >>> flux = 1 + np.random.default_rng(0).normal(0, 1e-3, (2, 400))
        >>> lc = LightCurves(np.linspace(0, 0.3, 400), flux, np.full((2, 400), 1e-3),
        ...                  [1.0, 2.0], [2.0, 3.0])
        >>> import tempfile
        >>> back = LightCurves.read(lc.write(tempfile.mkdtemp() + "/lightcurves.ecsv"))
        >>> back.nchan, bool(np.array_equal(back.err, lc.err))
        (2, True)
        """
        from astropy.table import Table

        t = Table.read(path, format="ascii.ecsv")
        m = t.meta
        flux = np.asarray(t["flux"], float).reshape(len(t), -1).T
        err = np.asarray(t["err"], float).reshape(len(t), -1).T
        clipped = np.asarray(t["clipped"], bool).reshape(len(t), -1).T
        regs = {name: np.asarray(t[f"reg_{name}"], float) for name in m.get("regressors", [])}
        return cls(np.asarray(t["time"], float), flux, err, m["wave_lo"], m["wave_hi"],
                   meta=m.get("meta"), regressors=regs, clipped=clipped, norm=m.get("norm"),
                   oot=np.asarray(t["oot"], bool) if "oot" in t.colnames else None,
                   history=m.get("history"), unit=m.get("unit"))
