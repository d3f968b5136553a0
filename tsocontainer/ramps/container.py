"""The RampGroup container: the up-the-ramp reads of one visit and the stage-1 plan.

A visit's ramps are several times larger than its rates (``ngroups`` reads of 16 bits
per integration and pixel), so a :class:`RampGroup` does not hold them: it holds the
*source* (the uncal files, or arrays for small cases), the metadata and the *plan* of
calibrations, and streams the ramps through the plan one block of integrations at a
time. Steps (:mod:`tsocontainer.ramps.steps`) add to the plan, compute the context they
need (a bias map, a deep ramp) from a sample of integrations, record themselves in
:attr:`RampGroup.history` and return ``self``; :meth:`RampGroup.fit_ramps` makes the
per-integration rates, a :class:`~tsocontainer.TSOGroup` laid out like one read from
rateints. :meth:`RampGroup.block` shows the calibrated ramps of any integrations.

The calibrations always run in the pipeline's order, whatever the order of the calls:
saturation, superbias, reference pixels, group-level 1/f, linearity (then jumps and the
fit). A step whose context was made before an earlier step changed is recomputed.
"""
from __future__ import annotations

import datetime
import itertools
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tsocontainer._util import jsonable
from tsocontainer.arrays.numerics import small_pages
from tsocontainer._version import __version__
from tsocontainer.ramps.plots import RampPlots
from tsocontainer.ramps.steps import RampSteps

__all__ = ["RampGroup", "ArrayRamps", "ORDER"]

log = logging.getLogger(__name__)

#: pixel DQ of reference pixels: REFERENCE_PIXEL | DO_NOT_USE
_REF_DQ = (1 << 31) | 1
#: the calibrations of the plan, in the order they are applied
ORDER = ("saturation", "superbias", "refpix", "onef", "linearity")


class ArrayRamps:
    """Ramps held in memory, with the ``read(i0, i1)`` of :class:`~tsocontainer.io.uncal.UncalVisit`.

    Parameters
    ----------
    data : array_like, shape (N, ngroups, ny, nx)
        Ramps (DN).
    groupdq : array_like of uint8, optional
        Group DQ (default zeros).
    pixeldq : array_like of uint32, shape (ny, nx), optional
        Pixel DQ (default zeros).
    """

    def __init__(self, data, groupdq=None, pixeldq=None):
        self.data = np.asarray(data, np.float32)
        if self.data.ndim != 4:
            raise ValueError(f"ramps must be 4D (N, ngroups, ny, nx), got {self.data.shape}")
        self.gdq = (np.zeros(self.data.shape, np.uint8) if groupdq is None
                    else np.asarray(groupdq, np.uint8))
        self.pdq = (np.zeros(self.data.shape[2:], np.uint32) if pixeldq is None
                    else np.asarray(pixeldq, np.uint32))
        if self.gdq.shape != self.data.shape or self.pdq.shape != self.data.shape[2:]:
            raise ValueError("groupdq/pixeldq shapes do not match the ramps")
        self.files = []

    @property
    def N(self) -> int:
        """Integrations."""
        return self.data.shape[0]

    @property
    def ngroups(self) -> int:
        """Groups per integration."""
        return self.data.shape[1]

    @property
    def sh(self) -> tuple:
        """Frame shape."""
        return self.data.shape[2:]

    def read(self, i0: int, i1: int):
        """Copies of the ramps, group DQ and pixel DQ of integrations ``i0:i1``."""
        return self.data[i0:i1].copy(), self.gdq[i0:i1].copy(), self.pdq.copy()


class RampGroup(RampSteps, RampPlots):
    """The ramps of one visit, streamed through a plan of stage-1 calibrations.

    Parameters
    ----------
    source : UncalVisit or ArrayRamps
        Where the ramps come from (``read(i0, i1)``, ``N``, ``ngroups``, ``sh``).
    meta : dict
        Header values; must hold ``TGROUP`` (s) and should hold ``INSTRUME``,
        ``DETECTOR``, ``SUBSTRT1``/``SUBSTRT2``, ``NFRAMES``, ``GROUPGAP``, ``NOUTPUTS``.
    mode : Mode, optional
        Instrument mode (axes, orders, traces).
    time : astropy.time.Time, optional
        Mid-integration times (BJD_TDB).
    int_numbers : array_like of int, optional
        1-based integration numbers (default ``1..N``).
    files : list of str, optional
        Input files.

    Raises
    ------
    ValueError
        Without ``TGROUP`` or with an inconsistent ``int_numbers``.

    Examples
    --------
    >>> import numpy as np
    >>> ramps = np.cumsum(np.ones((3, 4, 8, 6)), axis=1) * 10
    >>> g = RampGroup.from_arrays(ramps, group_time=2.0)
    >>> g.N, g.ngroups, g.sh
    (3, 4, (8, 6))
    """

    def __init__(self, source, *, meta, mode=None, time=None, int_numbers=None, files=None):
        self.source = source
        self.meta = dict(meta)
        if not self.meta.get("TGROUP"):
            raise ValueError("meta needs TGROUP (the group time in seconds)")
        self.mode = mode
        self.time = time
        self.int_numbers = (np.arange(1, source.N + 1) if int_numbers is None
                            else np.asarray(int_numbers, np.int64))
        if self.int_numbers.shape != (source.N,):
            raise ValueError(f"int_numbers has {self.int_numbers.size} values for {source.N} "
                             "integrations")
        self.files = list(files if files is not None else getattr(source, "files", []))
        self.history: list = []
        #: step name -> {"params", "id", "basis"} of the calibrations to apply
        self.plan: dict = {}
        #: context arrays of the plan and diagnostics of the last fit
        self.aux: dict = {}
        self._ids = itertools.count(1)

    @classmethod
    def from_arrays(cls, data, group_time: float, *, groupdq=None, pixeldq=None, meta=None,
                    mode=None, time=None) -> "RampGroup":
        """A group of ramps held in memory (tests, notebooks, small cut-outs).

        Parameters
        ----------
        data : array_like, shape (N, ngroups, ny, nx)
            Ramps (DN).
        group_time : float
            ``TGROUP`` (s).
        groupdq, pixeldq : array_like, optional
            DQ.
        meta : dict, optional
            More header values (``INSTRUME``, ``DETECTOR``, ``SUBSTRT1``, ...).
        mode : Mode, optional
            Instrument mode.
        time : astropy.time.Time, optional
            Mid-integration times.

        Returns
        -------
        RampGroup
        """
        source = ArrayRamps(data, groupdq, pixeldq)
        full = {"TGROUP": float(group_time), "NFRAMES": 1, "GROUPGAP": 0, "NOUTPUTS": 1}
        full.update(meta or {})
        return cls(source, meta=full, mode=mode, time=time)

    # ------------------------------------------------------------- shape, header
    @property
    def N(self) -> int:
        """Number of integrations."""
        return int(self.source.N)

    @property
    def ngroups(self) -> int:
        """Groups per integration."""
        return int(self.source.ngroups)

    @property
    def sh(self) -> tuple:
        """Frame shape ``(ny, nx)``."""
        return tuple(int(s) for s in self.source.sh)

    @property
    def shape(self) -> tuple:
        """``(N, ngroups, ny, nx)``."""
        return (self.N, self.ngroups) + self.sh

    @property
    def group_time(self) -> float:
        """``TGROUP`` (s)."""
        return float(self.meta["TGROUP"])

    @property
    def instrument(self) -> str:
        """``INSTRUME`` (NIRISS when unknown)."""
        return str(self.meta.get("INSTRUME") or "NIRISS").upper()

    @property
    def substrt(self) -> tuple:
        """``(SUBSTRT1, SUBSTRT2)`` (1, 1 when absent)."""
        return (int(self.meta.get("SUBSTRT1") or 1), int(self.meta.get("SUBSTRT2") or 1))

    @property
    def geometry(self):
        """The visit's :class:`~tsocontainer.geometry.Geometry`."""
        from tsocontainer.geometry import geometry_from_meta

        return geometry_from_meta(self.mode, self.meta, self.sh)

    @property
    def fast_axis(self) -> int:
        """Frame axis of the fast read (along which 1/f is constant)."""
        return self.geometry.onef_axis

    @property
    def refmask(self) -> np.ndarray:
        """Reference pixels of the subarray (from its corner on the full frame)."""
        from tsocontainer.io.uncal import reference_pixel_mask

        return reference_pixel_mask(self.instrument, self.sh, self.substrt)

    @property
    def amp(self) -> np.ndarray:
        """Amplifier of each position along the fast axis."""
        from tsocontainer.io.uncal import amplifier_index

        return amplifier_index(self.instrument, self.sh, self.substrt,
                               int(self.meta.get("NOUTPUTS") or 1), self.fast_axis)

    # ------------------------------------------------------------- streaming
    def _samples(self, nsample: int) -> np.ndarray:
        """Up to ``nsample`` integration indices spread evenly over the visit."""
        n = min(self.N, max(1, int(nsample)))
        return np.unique(np.linspace(0, self.N - 1, n).round().astype(int))

    def _calibrated(self, i0: int, i1: int, stop: str | None = None, record: bool = False):
        """Ramps of ``i0:i1`` through the plan, up to (not including) ``stop``."""
        with small_pages():
            data, gdq, pdq = self.source.read(i0, i1)
            pdq[self.refmask] |= np.uint32(_REF_DQ)
            for name in ORDER:
                if name == stop:
                    break
                if name in self.plan:
                    getattr(self, f"_apply_{name}")(data, gdq, pdq, i0, i1, record)
        return data, gdq, pdq

    def block(self, i0: int = 0, i1: int | None = None):
        """Calibrated ramps of integrations ``i0:i1`` (all steps of the plan so far).

        Parameters
        ----------
        i0, i1 : int
            Integration range (default: the first integration only).

        Returns
        -------
        data : ndarray of float32, shape (n, ngroups, ny, nx)
        groupdq : ndarray of uint8
        pixeldq : ndarray of uint32, shape (ny, nx)
        """
        i1 = i0 + 1 if i1 is None else i1
        self._refresh()
        return self._calibrated(int(i0), int(i1))

    def _sample_blocks(self, stop: str, nsample: int, block: int = 8):
        """Calibrated ramps (up to ``stop``) of a spread sample of integrations, one at a
        time in order; ``block`` of them are calibrated at once on a thread pool (each
        integration alone, as in order: the same values)."""
        from tsocontainer.ramps.twopoint import default_workers

        def one(i):
            return self._calibrated(int(i), int(i) + 1, stop=stop)[:2]

        ints = self._samples(nsample)
        with ThreadPoolExecutor(default_workers()) as pool:
            for k in range(0, ints.size, block):
                yield from pool.map(one, ints[k:k + block])

    def _block_ints(self, block_size=None) -> int:
        """Integrations per streamed block (default: about 64 MB of float32 ramps).

        stcal's jump detection (``detect_jumps(method="stcal")``) holds about ten times
        its input at once, so the block, not the visit, sets the peak memory (the default
        detector and fit work on row chunks of a few MB).
        """
        if block_size is not None:
            return max(1, int(block_size))
        per = self.ngroups * self.sh[0] * self.sh[1] * 4
        return max(1, int(64e6 // per))

    # ------------------------------------------------------------- the plan
    def _basis(self, name: str) -> tuple:
        """What the context of ``name`` was made from: the plan entries before it."""
        before = ORDER[:ORDER.index(name)] if name in ORDER else ORDER
        return tuple((k, self.plan[k]["id"]) for k in before if k in self.plan)

    def _set_plan(self, name: str, params: dict) -> None:
        self.plan[name] = {"params": dict(params), "id": next(self._ids),
                           "basis": self._basis(name)}

    def _refresh(self) -> None:
        """Recompute the context of plan entries made before an earlier entry changed."""
        for name in ORDER:
            entry = self.plan.get(name)
            if entry is not None and entry["basis"] != self._basis(name):
                log.info("%s: an earlier step changed since it was set up; recomputing", name)
                getattr(self, f"_setup_{name}")(**entry["params"])

    # ------------------------------------------------------------- bookkeeping
    def _record(self, step: str, params: dict, summary: dict) -> None:
        self.history.append({
            "step": step, "params": jsonable(params), "summary": jsonable(summary),
            "version": __version__,
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        })

    @property
    def steps(self) -> list:
        """Names of the steps run so far, in order."""
        return [h["step"] for h in self.history]

    def __repr__(self) -> str:
        mode = self.mode.name if self.mode is not None else "unknown mode"
        plan = ", ".join(k for k in ORDER if k in self.plan) or "none"
        return (f"<RampGroup {mode}: N={self.N}, ngroups={self.ngroups}, sh={self.sh}, "
                f"tgroup={self.group_time:g} s, plan: {plan}>")
