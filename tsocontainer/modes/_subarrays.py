"""The JWST subarrays of the time-series modes: real corners, sizes and readout axes.

One table, shipped as ``tsocontainer/data/jwst_tso_subarrays.csv`` (sources in
``data/README.md``): for each instrument, detector, subarray and (NIRSpec) grating the
1-based corner ``(SUBSTRT1, SUBSTRT2)`` and size ``(SUBSIZE1, SUBSIZE2)`` in DMS
orientation, and the ``FASTAXIS``/``SLOWAXIS`` keywords of the detector. The geometry
(:mod:`tsocontainer.geometry`) maps a header's window onto these; the simulator writes
them; the modes take their subarray shapes from here.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from ._tables import data_path

__all__ = ["Subarray", "SUBARRAY_TABLE", "subarray_table", "known_subarrays",
           "subarray_shapes", "nominal_subarray"]

#: the shipped table (file name inside ``tsocontainer/data``)
SUBARRAY_TABLE = "jwst_tso_subarrays.csv"


@dataclass(frozen=True)
class Subarray:
    """One known subarray (a row of the table).

    Parameters
    ----------
    instrument, detector, name : str
        ``INSTRUME``, ``DETECTOR`` and ``SUBARRAY`` values.
    grating : str
        ``GRATING`` the corner applies to (empty: any).
    substrt1, substrt2 : int
        1-based DMS corner (column, row).
    subsize1, subsize2 : int
        Size (columns, rows).
    fastaxis, slowaxis : int
        ``FASTAXIS``/``SLOWAXIS`` keywords of the detector.
    source : str
        Where the row comes from.

    Examples
    --------
    >>> s = known_subarrays("NIRSPEC", "NRS1", "SUB512", "PRISM")[0]
    >>> (s.substrt1, s.substrt2, s.shape)
    (1025, 957, (32, 512))
    >>> s.contains(1025 + 10, 957, 100, 32)
    True
    """

    instrument: str
    detector: str
    name: str
    grating: str
    substrt1: int
    substrt2: int
    subsize1: int
    subsize2: int
    fastaxis: int
    slowaxis: int
    source: str

    @property
    def shape(self) -> tuple:
        """Frame shape ``(ny, nx)`` = ``(SUBSIZE2, SUBSIZE1)``."""
        return (self.subsize2, self.subsize1)

    @property
    def corner(self) -> tuple:
        """``(SUBSTRT1, SUBSTRT2)``."""
        return (self.substrt1, self.substrt2)

    def contains(self, substrt1: int, substrt2: int, subsize1: int, subsize2: int) -> bool:
        """Whether the window lies inside this subarray (equal or cropped from it)."""
        return (self.substrt1 <= substrt1 and substrt1 + subsize1 <= self.substrt1 + self.subsize1
                and self.substrt2 <= substrt2
                and substrt2 + subsize2 <= self.substrt2 + self.subsize2)

    def describe(self) -> str:
        """``NAME (SUBSTRT1=.., SUBSTRT2=.., SUBSIZE1=.., SUBSIZE2=..)``."""
        return (f"{self.name} (SUBSTRT1={self.substrt1}, SUBSTRT2={self.substrt2}, "
                f"SUBSIZE1={self.subsize1}, SUBSIZE2={self.subsize2})")


@lru_cache(maxsize=None)
def subarray_table() -> tuple:
    """All rows of the shipped subarray table.

    Returns
    -------
    tuple of Subarray

    Examples
    --------
    >>> len({s.instrument for s in subarray_table()})
    4
    """
    ints = ("substrt1", "substrt2", "subsize1", "subsize2", "fastaxis", "slowaxis")
    with open(data_path(SUBARRAY_TABLE), encoding="utf-8", newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    rows = []
    for rec in csv.DictReader(lines):
        rec = {k: (int(v) if k in ints else v.strip().upper() if k != "source" else v.strip())
               for k, v in rec.items()}
        rows.append(Subarray(instrument=rec["instrument"], detector=rec["detector"],
                             name=rec["subarray"], grating=rec["grating"],
                             **{k: rec[k] for k in ints}, source=rec["source"]))
    return tuple(rows)


def known_subarrays(instrument: str, detector: str | None = None, name: str | None = None,
                    grating: str | None = None) -> list:
    """The table rows of an instrument, optionally of one detector, subarray, grating.

    A row without a grating applies to any grating; ``None`` (or an empty string)
    matches every value.

    Parameters
    ----------
    instrument : str
        ``INSTRUME`` (``NIRSPEC``, ``NIRCAM``, ``NIRISS``, ``MIRI``).
    detector, name, grating : str, optional
        ``DETECTOR``, ``SUBARRAY``, ``GRATING``.

    Returns
    -------
    list of Subarray

    Examples
    --------
    >>> [s.name for s in known_subarrays("NIRISS")]
    ['FULL', 'SUBSTRIP256', 'SUBSTRIP96']
    """
    def ok(want, have):
        return not want or str(want).strip().upper() == have

    return [s for s in subarray_table() if s.instrument == str(instrument).strip().upper()
            and ok(detector, s.detector) and ok(name, s.name)
            and (not grating or not s.grating or ok(grating, s.grating))]


def subarray_shapes(instrument: str) -> dict:
    """Subarray name -> frame shape ``(ny, nx)`` of an instrument's TSO subarrays.

    Examples
    --------
    >>> subarray_shapes("MIRI")
    {'SLITLESSPRISM': (416, 72)}
    """
    out: dict = {}
    for s in known_subarrays(instrument):
        out.setdefault(s.name, s.shape)
    return out


def nominal_subarray(instrument: str, name: str, detector: str | None = None,
                     grating: str | None = None) -> Subarray:
    """The table row a simulator or a header without corner keywords stands for.

    Parameters
    ----------
    instrument, name : str
        ``INSTRUME`` and ``SUBARRAY``.
    detector, grating : str, optional
        ``DETECTOR`` and ``GRATING`` (NIRSpec corners depend on both).

    Returns
    -------
    Subarray

    Raises
    ------
    KeyError
        When the table has no such subarray.

    Examples
    --------
    >>> nominal_subarray("NIRSPEC", "SUB512", "NRS1", "PRISM").corner
    (1025, 957)
    """
    rows = known_subarrays(instrument, detector, name, grating)
    if not rows:
        raise KeyError(f"no known {instrument} subarray {name!r} (detector {detector!r}, "
                       f"grating {grating!r}) in {SUBARRAY_TABLE}")
    exact = [s for s in rows if grating and s.grating == str(grating).upper()]
    return (exact or rows)[0]
