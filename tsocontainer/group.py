"""The TSOGroup container: one visit of a JWST time-series spectroscopy exposure.

A :class:`TSOGroup` stores the segments of one exposure concatenated along the
integration axis and the status of every step run on it. It does no work in
its constructor; :func:`tsocontainer.io.read_segments` builds one from files
and :meth:`TSOGroup.read` restores a saved one. Step methods mutate the group
in place, record themselves in :attr:`TSOGroup.history`, clear the caches that
depend on what they changed and return ``self`` so that steps chain::

    g = read_segments("jw01366*_rateints.fits")
    g.flag_dq().unflag("dq")
"""
from __future__ import annotations

import datetime
import logging

import numpy as np

from . import __version__
from ._steps_cleaning import CleaningSteps
from ._steps_extraction import ExtractionSteps
from ._util import jsonable as _jsonable
from .flags import STEP_FLAGS, FlagStore, SparseDQ, dq_bits, validate_flag_name

__all__ = ["TSOGroup"]

log = logging.getLogger(__name__)

#: cached properties and what invalidates them
_CACHED = ("mask", "median_frame", "data")

#: corrections that make the working data from ``sci``/``var``, by name:
#: "module:function" called as f(group, data, var, i0, i1), editing in place.
#: ``group.corrections`` lists the ones applied, in order.
CORRECTIONS = {
    "sky": "tsocontainer.background:apply_sky",
    "onef": "tsocontainer.onef:apply_onef",
    "replace": "tsocontainer.outliers:apply_replacement",
}


def _as_time(time, n: int):
    from astropy.time import Time

    if time is None:
        return Time(np.arange(n, dtype=float), format="jd", scale="tdb")
    if isinstance(time, Time):
        t = time
    else:
        t = Time(np.asarray(time, dtype=float), format="jd", scale="tdb")
    if t.isscalar or len(t) != n:
        raise ValueError(f"time has {1 if t.isscalar else len(t)} values for {n} integrations")
    return t.tdb


class TSOGroup(CleaningSteps, ExtractionSteps):
    """One visit: integrations of all segments stacked on the leading axis.

    Parameters
    ----------
    sci : array_like, shape (N, ny, nx)
        Science data (DN/s or MJy/sr), stored as C-contiguous float32.
    var : array_like, shape (N, ny, nx)
        Variance of ``sci``, float32.
    dq : array_like or SparseDQ, optional
        Pipeline DQ (uint32 bits), dense cube or :class:`~tsocontainer.flags.SparseDQ`.
        Default: all good.
    time : astropy.time.Time or array_like, optional
        Mid-integration times, BJD_TDB (floats are read as JD in TDB).
        Default: 0, 1, 2, ... days (a placeholder, noted in ``meta``).
    wave : ndarray, optional
        Wavelength map (micron), shape ``(ny, nx)`` or ``(norder, ny, nx)``.
    mode : Mode, optional
        Instrument mode (:func:`tsocontainer.modes.detect_mode`).
    meta : dict, optional
        FITS-ready status values (keys up to 8 characters become header cards).
    history : list of dict, optional
        Steps already run.
    flags : FlagStore, optional
        Step flags.
    int_numbers : array_like of int, optional
        1-based integration numbers in the exposure (default ``1..N``).
    files : list of str, optional
        Input files (never overwritten by :meth:`write`).
    aux : dict, optional
        Named arrays produced by steps (traces, sky models, ...), saved by
        :meth:`write`.

    Raises
    ------
    ValueError
        On inconsistent shapes or unknown keyword arguments.

    Examples
    --------
    >>> import numpy as np
    >>> g = TSOGroup(np.ones((3, 4, 5)), np.ones((3, 4, 5)))
    >>> g.N, g.sh
    (3, (4, 5))
    """

    def __init__(self, sci, var, dq=None, time=None, **kwargs):
        allowed = {"wave", "mode", "meta", "history", "flags", "int_numbers", "files", "aux"}
        unknown = set(kwargs) - allowed
        if unknown:
            raise ValueError(f"unknown argument(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        self.sci = np.ascontiguousarray(sci, dtype=np.float32)
        if self.sci.ndim != 3:
            raise ValueError(f"sci must be 3D (N, ny, nx), got shape {self.sci.shape}")
        self.var = np.ascontiguousarray(var, dtype=np.float32)
        if self.var.shape != self.sci.shape:
            raise ValueError(f"var shape {self.var.shape} differs from sci shape {self.sci.shape}")
        if dq is None:
            dq = SparseDQ(np.zeros(self.sh, np.uint32), [], [], self.N)
        elif not isinstance(dq, SparseDQ):
            dq = SparseDQ.from_dense(np.asarray(dq, dtype=np.uint32))
        if dq.shape != self.sci.shape:
            raise ValueError(f"dq shape {dq.shape} differs from sci shape {self.sci.shape}")
        self.dqs = dq
        self.meta = dict(kwargs.get("meta") or {})
        if time is None:
            self.meta.setdefault("TIMESRC", "none")
        self.time = _as_time(time, self.N)
        wave = kwargs.get("wave")
        self.wave = None if wave is None else np.asarray(wave, dtype=np.float32)
        self.mode = kwargs.get("mode")
        self.history = list(kwargs.get("history") or [])
        flags = kwargs.get("flags")
        self._flags = flags if flags is not None else FlagStore(self.sci.shape)
        if self._flags.shape != self.sci.shape:
            raise ValueError(f"flags shape {self._flags.shape} differs from {self.sci.shape}")
        ints = kwargs.get("int_numbers")
        self.int_numbers = (np.arange(1, self.N + 1, dtype=np.int64) if ints is None
                            else np.asarray(ints, dtype=np.int64))
        if self.int_numbers.shape != (self.N,):
            raise ValueError(f"int_numbers has {self.int_numbers.size} values for {self.N} integrations")
        self.files = [str(f) for f in (kwargs.get("files") or [])]
        self.aux = {k: np.asarray(v) for k, v in (kwargs.get("aux") or {}).items()}
        #: names of ``aux`` arrays whose first axis is the integration axis
        self.aux_per_int: set[str] = set()
        self.dq_mask_bits = 1  # DO_NOT_USE: pipeline DQ that always masks
        self.corrections: list[str] = []
        self._cache: dict = {}

    # ------------------------------------------------------------------ shape
    @property
    def N(self) -> int:
        """Number of integrations."""
        return self.sci.shape[0]

    @property
    def sh(self) -> tuple[int, int]:
        """Frame shape ``(ny, nx)``."""
        return self.sci.shape[1:]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Cube shape ``(N, ny, nx)``."""
        return self.sci.shape

    @property
    def dq(self) -> np.ndarray:
        """Dense uint32 pipeline DQ cube (built on request, not cached)."""
        return self.dqs.to_dense()

    @property
    def flags(self) -> np.ndarray:
        """All step flags as one uint16 cube, bit numbers from ``STEP_FLAGS``."""
        return self._flags.to_bits()

    @property
    def time_bjd(self) -> np.ndarray:
        """Mid-integration times as float BJD_TDB."""
        return self.time.tdb.jd

    # ------------------------------------------------------------ flags/mask
    def flagged(self, name: str) -> np.ndarray:
        """Boolean cube of the pixels flagged by step ``name``.

        Parameters
        ----------
        name : str
            A key of :data:`tsocontainer.flags.STEP_FLAGS`.

        Returns
        -------
        ndarray of bool, shape (N, ny, nx)
        """
        return self._flags.get(name)

    def set_flag(self, name: str, cube, params: dict | None = None) -> "TSOGroup":
        """Replace flag ``name`` with ``cube`` (its own bit is cleared first).

        Parameters
        ----------
        name : str
            Step flag name.
        cube : array_like of bool, shape (N, ny, nx)
            Pixels to flag.
        params : dict, optional
            Parameters recorded in the history entry.

        Returns
        -------
        TSOGroup
            ``self``.
        """
        validate_flag_name(name)
        n = self._flags.set(name, cube)
        self._invalidate(("mask", "median_frame"))
        self._record(f"flag:{name}", params or {}, {"flagged": n})
        log.info("flag %s: %d pixels (%.3g %%)", name, n, 100 * n / max(self.sci.size, 1))
        return self

    def unflag(self, name: str) -> "TSOGroup":
        """Undo the step flag ``name``.

        Parameters
        ----------
        name : str
            Step flag name.

        Returns
        -------
        TSOGroup
            ``self``.
        """
        self._flags.clear(validate_flag_name(name))
        self._invalidate(("mask", "median_frame"))
        self._record("unflag", {"name": name}, {})
        return self

    def flag_dq(self, bits=("DO_NOT_USE", "SATURATED", "JUMP_DET")) -> "TSOGroup":
        """Flag pixels whose pipeline DQ has any of ``bits`` (flag ``dq``).

        Parameters
        ----------
        bits : str, int or sequence of str
            DQ mnemonics (``DO_NOT_USE``, ``SATURATED``, ``JUMP_DET``, ``HOT``,
            ``DEAD``, ...) or an integer bit mask.

        Returns
        -------
        TSOGroup
            ``self``.
        """
        mask = dq_bits(bits)
        names = [bits] if isinstance(bits, str) else bits
        return self.set_flag("dq", self.dqs.any(mask),
                             {"bits": mask if isinstance(bits, (int, np.integer)) else list(names)})

    @property
    def mask(self) -> np.ndarray:
        """Good pixels: no ``DO_NOT_USE`` in DQ and no step flag (cached)."""
        if "mask" not in self._cache:
            bad = self._flags.any_of()
            bad |= self.dqs.any(self.dq_mask_bits)
            np.logical_not(bad, out=bad)
            self._cache["mask"] = bad
        return self._cache["mask"]

    @property
    def median_frame(self) -> np.ndarray:
        """Masked median over integrations, shape ``(ny, nx)`` (cached; NaN if never good)."""
        if "median_frame" not in self._cache:
            self._cache["median_frame"] = self._masked_median_frame()
        return self._cache["median_frame"]

    def _masked_median_frame(self, rows_per_block: int | None = None) -> np.ndarray:
        ny, nx = self.sh
        if rows_per_block is None:  # ~64 MB of float32 per block
            rows_per_block = max(1, int(16e6 // max(self.N * nx, 1)))
        out = np.empty(self.sh, np.float32)
        mask = self.mask
        for r0 in range(0, ny, rows_per_block):
            r1 = min(ny, r0 + rows_per_block)
            block = self.sci[:, r0:r1].copy()
            block[~mask[:, r0:r1]] = np.nan
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out[r0:r1] = np.nanmedian(block, axis=0)
        return out

    # -------------------------------------------------------- working data
    def working_block(self, i0: int = 0, i1: int | None = None):
        """Working data and variance of integrations ``i0:i1``.

        ``sci`` and ``var`` are never changed; corrections (sky, 1/f, pixel
        replacement) are stored as compact models and applied here, in the
        order listed in :attr:`corrections`, to a copy of the block.

        Parameters
        ----------
        i0, i1 : int
            Integration range (default: all).

        Returns
        -------
        data, var : ndarray of float32, shape (i1 - i0, ny, nx)
        """
        import importlib

        i1 = self.N if i1 is None else i1
        data = self.sci[i0:i1].copy()
        var = self.var[i0:i1].copy()
        for name in self.corrections:
            module, func = CORRECTIONS[name].split(":")
            getattr(importlib.import_module(module), func)(self, data, var, i0, i1)
        return data, var

    @property
    def data(self) -> np.ndarray:
        """Working data cube (``sci`` with all corrections; cached, a full copy)."""
        if not self.corrections:
            return self.sci
        if "data" not in self._cache:
            self._cache["data"] = self.working_block()[0]
        return self._cache["data"]

    # ----------------------------------------------------------- bookkeeping
    def _invalidate(self, names=None) -> None:
        """Drop cached values ``names`` (default: all)."""
        for name in (_CACHED if names is None else names):
            self._cache.pop(name, None)
        for key in [k for k in self._cache if k.startswith("aux:")]:
            if names is None or key in names:
                self._cache.pop(key)

    def _record(self, step: str, params: dict, summary: dict) -> None:
        self.history.append({
            "step": step,
            "params": _jsonable(params),
            "summary": _jsonable(summary),
            "version": __version__,
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        })

    @property
    def steps(self) -> list[str]:
        """Names of the steps run so far, in order."""
        return [h["step"] for h in self.history]

    # ---------------------------------------------------------- new groups
    def _take(self, ints) -> "TSOGroup":
        ints = np.asarray(ints, dtype=np.int64)
        g = TSOGroup(self.sci[ints], self.var[ints], self.dqs.take(ints), self.time[ints],
                     wave=None if self.wave is None else self.wave.copy(), mode=self.mode,
                     meta=dict(self.meta), history=[dict(h) for h in self.history],
                     flags=self._flags.take(ints), int_numbers=self.int_numbers[ints],
                     files=list(self.files), aux=self._aux_take(ints))
        g.dq_mask_bits = self.dq_mask_bits
        g.corrections = list(self.corrections)
        g.aux_per_int = set(self.aux_per_int)
        return g

    def _aux_take(self, ints) -> dict:
        return {k: (v[ints] if k in self.aux_per_int else v).copy() for k, v in self.aux.items()}

    def set_aux(self, name: str, array, per_integration: bool = False) -> None:
        """Store a named result array (saved by :meth:`write`).

        Parameters
        ----------
        name : str
            Key in :attr:`aux` (e.g. ``"trace_order1"``).
        array : array_like
            The values.
        per_integration : bool
            True if the first axis runs over integrations (then slicing the
            group slices it too).

        Raises
        ------
        ValueError
            If ``per_integration`` and the first axis is not ``N`` long.
        """
        array = np.asarray(array)
        if per_integration and (array.ndim == 0 or array.shape[0] != self.N):
            raise ValueError(f"aux {name!r}: first axis {array.shape[:1]} is not N={self.N}")
        self.aux[name] = array
        if per_integration:
            self.aux_per_int.add(name)
        else:
            self.aux_per_int.discard(name)

    def __getitem__(self, key) -> "TSOGroup":
        """Integrations ``key`` (slice, int array or boolean mask) as a new group."""
        idx = np.arange(self.N)[key]
        if np.ndim(idx) == 0:
            idx = np.array([idx])
        g = self._take(idx)
        g._record("select", {"integrations": _describe_key(key)}, {"N": g.N})
        return g

    def __len__(self) -> int:
        return self.N

    def copy(self) -> "TSOGroup":
        """Return an independent deep copy."""
        return self._take(np.arange(self.N))

    def __repr__(self) -> str:
        mode = self.mode.name if self.mode is not None else "unknown mode"
        steps = [s for s in self.steps]
        shown = ", ".join(steps[-6:]) if steps else "none"
        if len(steps) > 6:
            shown = f"... {shown}"
        nflag = len(self._flags.planes)
        return (f"<TSOGroup {mode}: N={self.N}, sh={self.sh}, "
                f"{nflag} flag(s) set, steps: {shown}>")

    # ------------------------------------------------------------------- I/O
    def write(self, path, overwrite: bool = False) -> str:
        """Save the whole state (arrays, flags, meta, history, time) to FITS.

        Parameters
        ----------
        path : str or path-like
            Output file; written to a temporary file then renamed.
        overwrite : bool
            Replace an existing output (never an input file).

        Returns
        -------
        str
            The path written.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.
        ValueError
            If ``path`` is one of the input files.
        """
        from .io import write_state

        return write_state(self, path, overwrite=overwrite)

    @classmethod
    def read(cls, path) -> "TSOGroup":
        """Restore a group saved by :meth:`write`.

        Parameters
        ----------
        path : str or path-like
            File written by :meth:`write`.

        Returns
        -------
        TSOGroup
        """
        from .io import read_state

        return read_state(path)

    # ------------------------------------------------------------- plotting
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
        from .plotting import plot_frame

        return plot_frame(self, integration=integration, ax=ax, **kwargs)


def _describe_key(key):
    if isinstance(key, slice):
        return f"{key.start}:{key.stop}:{key.step}"
    if isinstance(key, (int, np.integer)):
        return int(key)
    arr = np.asarray(key)
    return f"array of {arr.size} ({arr.dtype})"




STEP_FLAG_NAMES = tuple(STEP_FLAGS)
