"""The TSOGroup container: one visit of a JWST time-series spectroscopy exposure.

A :class:`TSOGroup` stores the segments of one exposure concatenated along the
integration axis and the status of every step run on it. It does no work in
its constructor; :func:`tsocontainer.group.read_segments` builds one from files
and :meth:`TSOGroup.read` restores a saved one. Step methods mutate the group
in place, record themselves in :attr:`TSOGroup.history`, mark what depends on
what they changed as stale (:mod:`tsocontainer.group.state`) and return
``self`` so that steps chain::

    g = read_segments("jw01366*_rateints.fits")
    g.flag_dq().unflag("dq")
"""
from __future__ import annotations

import importlib
import logging

import numpy as np

from tsocontainer._disk import is_mapped, read_across, release
from tsocontainer._util import jsonable as _jsonable
from tsocontainer._util import drop_timings, now_iso
from tsocontainer._version import __version__
from tsocontainer.flags import INFO_FLAGS, STEP_FLAGS, FlagStore, SparseDQ, dq_bits, validate_flag_name
from tsocontainer.group.cleaning import CleaningSteps
from tsocontainer.group.extraction import ExtractionSteps
from tsocontainer.group.plots import GroupPlots
from tsocontainer.errors import StaleProductError
from tsocontainer.group.state import CORRECTIONS, AuxStore, DerivedState, resource_of
from tsocontainer.registry import Choice, Coerced, step

__all__ = ["TSOGroup"]

log = logging.getLogger(__name__)

#: what each cached value is computed from (resources of :mod:`tsocontainer.group.state`)
CACHE_DEPS = {
    "mask": ("mask",),
    "median_frame": ("mask",),
    "data": ("sky", "onef", "replace"),
    "detect": ("sky", "onef"),
    "deep": ("sky", "onef"),
    "wl": ("sky", "onef"),
    "modes": ("sky", "onef"),
    "reference": ("mask", "sky", "onef"),
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


class TSOGroup(CleaningSteps, ExtractionSteps, GroupPlots):
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
    int_numbers : array_like of int, optional
        1-based integration numbers in the exposure (default ``1..N``).
    files : list of str, optional
        Input files (never overwritten by :meth:`write`).

    Raises
    ------
    ValueError
        On inconsistent shapes.

    Notes
    -----
    Two public attributes set how steps run, never what they compute:
    ``block_size`` (integrations per block of tracing and extraction; None:
    about 64 MB per block) and ``progress`` (progress bars; None: when stderr
    is a terminal). Copies and slices keep them; :meth:`write` does not save them.

    Examples
    --------
    >>> import numpy as np
    >>> g = TSOGroup(np.ones((3, 4, 5)), np.ones((3, 4, 5)))
    >>> g.N, g.sh
    (3, (4, 5))
    >>> g.progress = False                  # no progress bars, whatever the terminal
    >>> g.as_source().progress, g.block_size
    (False, None)
    """

    def __init__(self, sci, var, dq=None, time=None, *, wave=None, mode=None, meta=None,
                 int_numbers=None, files=None):
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
        self.meta = dict(meta or {})
        if time is None:
            self.meta.setdefault("TIMESRC", "none")
        self.time = _as_time(time, self.N)
        self.wave = None if wave is None else np.asarray(wave, dtype=np.float32)
        self.mode = mode
        self.int_numbers = (np.arange(1, self.N + 1, dtype=np.int64) if int_numbers is None
                            else np.asarray(int_numbers, dtype=np.int64))
        if self.int_numbers.shape != (self.N,):
            raise ValueError(f"int_numbers has {self.int_numbers.size} values for {self.N} integrations")
        self.files = [str(f) for f in (files or [])]
        self.history: list = []
        self._flags = FlagStore(self.sci.shape)
        #: versions of the inputs and stamps of the products (see tsocontainer.group.state)
        self.derived = DerivedState()
        #: named arrays made by steps (traces, sky models, spectra, ...), saved by write
        self.aux = AuxStore(state=self.derived)
        #: names of ``aux`` arrays whose first axis is the integration axis
        self.aux_per_int: set[str] = set()
        self.dq_mask_bits = 1  # DO_NOT_USE: pipeline DQ that always masks
        self.corrections: list[str] = []
        self._cache: dict = {}
        #: integrations per block of the tracing and extraction steps (None: automatic)
        self.block_size: int | None = None
        #: show progress bars (None: when stderr is a terminal)
        self.progress: bool | None = None
        #: scratch folder of the memory-mapped cubes (streaming mode), None: in memory
        self._scratch = None

    def _restore(self, *, history=None, flags=None, aux=None, aux_per_int=(), derived=None,
                 corrections=(), dq_mask_bits=1) -> "TSOGroup":
        """Put back the step state of a saved or sliced group (flags, aux, history, stamps)."""
        if flags is not None:
            if flags.shape != self.sci.shape:
                raise ValueError(f"flags shape {flags.shape} differs from {self.sci.shape}")
            self._flags = flags
        self.history = [dict(h) for h in (history or [])]
        self.derived = derived.copy() if derived is not None else DerivedState()
        self.aux = AuxStore({k: np.asarray(v) for k, v in (aux or {}).items()}, self.derived)
        self.aux_per_int = set(aux_per_int)
        self.corrections = list(corrections)
        self.dq_mask_bits = int(dq_mask_bits)
        self._cache = {}
        return self

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

        Examples
        --------
        >>> import numpy as np
        >>> g = TSOGroup(np.ones((2, 3, 4)), np.ones((2, 3, 4)))
        >>> bad = np.zeros((2, 3, 4), bool); bad[0, 1, 1] = True
        >>> int((~g.set_flag("user", bad).mask).sum())
        1
        """
        validate_flag_name(name)
        n = self._flags.set(name, cube)
        self._mask_changed(name)
        self._record(f"flag:{name}", params or {}, {"flagged": n})
        log.info("flag %s: %d pixels (%.3g %%)", name, n, 100 * n / max(self.sci.size, 1))
        return self

    def _mask_changed(self, name: str) -> None:
        if name not in INFO_FLAGS:
            self.derived.bump("mask")

    @step("state", writes=("mask",), plot="plot_flag_rate",
          params={"name": Choice(*sorted(set(STEP_FLAGS) - INFO_FLAGS))})
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
        self._mask_changed(name)
        self._record("unflag", {"name": name}, {})
        return self

    @step("state", writes=("mask",), plot="plot_flag_rate",
          params={"bits": Coerced(dq_bits, "DQ mnemonic(s) such as DO_NOT_USE, SATURATED, "
                                           "JUMP_DET, or an integer bit mask")})
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

        Examples
        --------
        >>> import numpy as np
        >>> dq = np.zeros((2, 3, 4), np.uint32); dq[1, 0, 0] = 4   # JUMP_DET
        >>> g = TSOGroup(np.ones((2, 3, 4)), np.ones((2, 3, 4)), dq)
        >>> int(g.flag_dq(["JUMP_DET"]).flagged("dq").sum())
        1
        """
        mask = dq_bits(bits)
        names = [bits] if isinstance(bits, str) else bits
        cube = self._new_cube(bool, "dq", zero=False)
        for i0, i1 in self._flags._blocks():
            cube[i0:i1] = self.dqs.any(mask, i0, i1)
            release()
        return self.set_flag("dq", cube,
                             {"bits": mask if isinstance(bits, (int, np.integer)) else list(names)})

    @property
    def mask(self) -> np.ndarray:
        """Good pixels: no ``DO_NOT_USE`` in DQ and no step flag (cached)."""
        def compute():   # by blocks: one boolean cube, never two or three
            out = self._new_cube(bool, "mask", zero=False)
            for i0, i1 in self._flags._blocks():
                bad = self._flags.any_of(None, i0, i1)
                bad |= self.dqs.any(self.dq_mask_bits, i0, i1)
                np.logical_not(bad, out=out[i0:i1])
                release()
            return out

        return self._cached("mask", compute, ("mask", f"dqbits:{self.dq_mask_bits}"))

    def _new_cube(self, dtype, name: str, zero: bool = True) -> np.ndarray:
        """An ``(N, ny, nx)`` cube: in memory, or a scratch file in streaming mode."""
        if self._scratch is None:
            return np.zeros(self.shape, dtype) if zero else np.empty(self.shape, dtype)
        return self._scratch.zeros(self.shape, dtype, name)

    def _new_array(self, shape, dtype, name: str) -> np.ndarray:
        """An uninitialised array in memory, or a zero-filled scratch file when streaming."""
        if self._scratch is None:
            return np.empty(shape, dtype)
        return self._scratch.zeros(np.atleast_1d(shape), dtype, name)

    def _working_cube(self, skip=(), name: str = "data") -> np.ndarray:
        """Working data of all integrations (corrections but ``skip``) as one cube.

        In streaming mode it is a scratch file filled block by block.
        """
        if self._scratch is None:
            return self._source_block(0, self.N, skip=skip, need_var=False)[0]
        out = self._new_cube(np.float32, name, zero=False)
        for i0, i1 in self._flags._blocks():
            out[i0:i1] = self._source_block(i0, i1, skip=skip, need_var=False)[0]
            release()
        return out

    def _stream_to(self, scratch) -> None:
        """Streaming mode: new flag planes and large caches go to ``scratch`` files."""
        self._scratch = scratch
        self._flags.alloc = lambda n: scratch.zeros((n,), np.uint8, "flag")

    @property
    def streaming(self) -> bool:
        """True when ``sci``, ``var`` and the large derived cubes are memory-mapped files."""
        return self._scratch is not None and is_mapped(self.sci)

    @property
    def median_frame(self) -> np.ndarray:
        """Masked median over integrations, shape ``(ny, nx)`` (cached; NaN if never good)."""
        return self._cached("median_frame", self._masked_median_frame)

    def _masked_median_frame(self, rows_per_block: int | None = None) -> np.ndarray:
        """Per-pixel median over the good integrations, row blocks on worker threads.

        Each block is transposed to (pixels, N) and sorted per pixel
        (``masked_row_median``), which gives exactly ``np.nanmedian``'s value
        at a tenth of its time (nanmedian loops over pixels in Python).
        """
        from tsocontainer.arrays.numerics import block_ranges, masked_row_median, run_blocks

        ny, nx = self.sh
        if rows_per_block is None:  # ~32 MB of float32 per block (two threads)
            rows_per_block = max(1, int(8e6 // max(self.N * nx, 1)))
        out = np.empty(self.sh, np.float32)
        mask = self.mask

        def work(r0, r1):
            rows = np.s_[:, r0:r1]
            block = np.ascontiguousarray(read_across(self.sci, rows).reshape(self.N, -1).T)
            block[~read_across(mask, rows).reshape(self.N, -1).T] = np.nan
            out[r0:r1] = masked_row_median(block).reshape(r1 - r0, nx)
            release()

        run_blocks(work, block_ranges(ny, rows_per_block), "median frame")
        return out

    @property
    def geometry(self):
        """The visit's :class:`~tsocontainer.geometry.Geometry` (axes, subarray offset, orders)."""
        from tsocontainer.geometry import geometry_from_meta

        keys = ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2", "PWCPOS", "SUBARRAY")
        deps = (f"meta:{tuple(self.meta.get(k) for k in keys)}", f"mode:{self.mode}")
        return self._cached("geometry", lambda: geometry_from_meta(
            self.mode, self.meta, self.sh, self._first_header,
            source=self.files[0] if self.files else None), deps)

    def _first_header(self):
        """Primary header of the first input file (None if unreadable)."""
        if not self.files:
            return None
        try:
            from astropy.io import fits

            return fits.getheader(self.files[0])
        except OSError:
            return None

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

        Raises
        ------
        StaleProductError
            If a correction was made before a change of its inputs (names the step).
        """
        return self._source_block(0 if i0 is None else i0, self.N if i1 is None else i1)

    def _source_block(self, i0, i1, stop=None, skip=(), need_var=True):
        """Working data (and variance) of ``i0:i1`` with the corrections before ``stop``.

        All corrections when ``stop`` is absent from the list; ``var`` is None
        when ``need_var`` is False.
        """
        data = self.sci[i0:i1].copy()
        var = self.var[i0:i1].copy() if need_var else None
        release()
        for name in self.corrections:
            if name == stop:
                break
            if name in skip:
                continue
            self.derived.check(name)
            module, func = CORRECTIONS[name].split(":")
            getattr(importlib.import_module(module), func)(self._correction_model(name), data,
                                                          var, i0, i1)
        return data, var

    def _correction_model(self, name: str):
        """What applying correction ``name`` needs: its arrays, meta and the geometry."""
        from tsocontainer.cleaning.model import CorrectionModel

        prefix = {"sky": "sky_", "onef": "onef", "replace": "replace_"}[name]
        arrays = {k: self.aux.raw(k) for k in self.aux if k.startswith(prefix)}
        return CorrectionModel(arrays, self.meta, self.geometry, self.int_numbers)

    @property
    def data(self) -> np.ndarray:
        """Working data cube (``sci`` with all corrections; cached, a full copy)."""
        if not self.corrections:
            return self.sci
        return self._cached("data", lambda: self._working_cube(name="data"))

    # ----------------------------------------------------------- bookkeeping
    def _record(self, step: str, params: dict, summary: dict) -> None:
        self.history.append({
            "step": step,
            "params": _jsonable(params),
            "summary": _jsonable(drop_timings(summary)),
            "version": __version__,
            "time": now_iso(),
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
                     meta=dict(self.meta), int_numbers=self.int_numbers[ints],
                     files=list(self.files))
        aux = {k: (v[ints] if k in self.aux_per_int else v).copy() for k, v in self.aux.items()}
        g._restore(history=self.history, flags=self._flags.take(ints), aux=aux,
                   aux_per_int=self.aux_per_int, derived=self.derived,
                   corrections=self.corrections, dq_mask_bits=self.dq_mask_bits)
        g._calls = dict(getattr(self, "_calls", {}))
        g.block_size, g.progress = self.block_size, self.progress
        release()   # the pages of mapped cubes that the copy read
        return g

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
        if self._scratch is not None and array.nbytes > 16e6 and not is_mapped(array):
            mapped = self._scratch.zeros(array.shape, array.dtype, "aux")   # streaming: large
            mapped[...] = array                                               # products on disk
            array = mapped
        if per_integration and (array.ndim == 0 or array.shape[0] != self.N):
            raise ValueError(f"aux {name!r}: first axis {array.shape[:1]} is not N={self.N}")
        self.aux[name] = array
        if per_integration:
            self.aux_per_int.add(name)
        else:
            self.aux_per_int.discard(name)

    def _drop_aux(self, prefix: str) -> None:
        """Remove every ``aux`` array whose key starts with ``prefix``."""
        for k in [k for k in self.aux if k.startswith(prefix)]:
            dict.pop(self.aux, k)
            self.aux_per_int.discard(k)

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

    def _repr_html_(self) -> str:
        """A table of the group's status for notebooks (nothing expensive is computed)."""
        from tsocontainer._util import html_table

        t = self.time_bjd
        products = sorted({r for r in (resource_of(k) for k in self.aux) if r})
        stale = self.stale
        rows = [("mode", self.mode.name if self.mode is not None else "unknown"),
                ("integrations", f"{self.N} ({self.int_numbers[0]}..{self.int_numbers[-1]}) "
                                 f"from {len(self.files)} file(s)"),
                ("frame", f"{self.sh[0]} x {self.sh[1]} px, {self.meta.get('BUNIT', '')}"),
                ("time", f"BJD_TDB {t[0]:.5f} .. {t[-1]:.5f} "
                         f"({(t[-1] - t[0]) * 24:.2f} h, {self.meta.get('TIMESRC', '?')})"),
                ("flags", ", ".join(self._flags.planes) or "none"),
                ("corrections", ", ".join(self.corrections) or "none"),
                ("products", ", ".join(products) or "none"),
                ("stale", ", ".join(f"{k} (changed: {', '.join(v)})" for k, v in stale.items())
                 or "none"),
                ("steps", " > ".join(self.steps[-8:]) or "none")]
        return html_table(f"TSOGroup: {self.N} integrations", rows)

    def __repr__(self) -> str:
        mode = self.mode.name if self.mode is not None else "unknown mode"
        steps = [s for s in self.steps]
        shown = ", ".join(steps[-6:]) if steps else "none"
        if len(steps) > 6:
            shown = f"... {shown}"
        nflag = len(self._flags.planes)
        stale = f", stale: {', '.join(self.stale)}" if self.stale else ""
        return (f"<TSOGroup {mode}: N={self.N}, sh={self.sh}, "
                f"{nflag} flag(s) set, steps: {shown}{stale}>")

    # ------------------------------------------------------ derived state
    def _cached(self, name: str, compute, deps=None):
        """``compute()`` cached until a resource it depends on (``CACHE_DEPS``) changes."""
        key = self.derived.key(CACHE_DEPS[name] if deps is None else deps)
        hit = self._cache.get(name)
        if hit is None or hit[0] != key:
            hit = (key, compute())
            self._cache[name] = hit
        return hit[1]

    def _step_started(self, spec, kwargs: dict) -> None:
        """Registry hook: remember the call's keywords (for :meth:`rerun_stale`)."""
        if not hasattr(self, "_calls"):
            self._calls = {}
        self._calls[spec.name] = dict(kwargs)

    def _step_finished(self, spec) -> None:
        """Registry hook: stamp what the step wrote with the versions of what it read.

        Corrections stamp themselves (they read the corrections before them in the
        list); flags bump the mask in :meth:`set_flag`.
        """
        for res in spec.writes:
            if res in CORRECTIONS or res == "mask":
                continue
            self.derived.stamp(res, spec.reads)

    @property
    def stale(self) -> dict:
        """Products made before a change of their inputs: product -> changed inputs."""
        out = {}
        for prod in list(self.derived.stamps):
            changed = self.derived.stale(prod)
            if changed and self._has_product(prod):
                out[prod] = changed
        return out

    def _has_product(self, res: str) -> bool:
        return any(resource_of(k) == res for k in self.aux)

    def rerun_stale(self) -> "TSOGroup":
        """Re-run every stale step, in history order, with its last recorded keywords.

        Returns
        -------
        TSOGroup
            ``self``.

        Examples
        --------
        >>> import numpy as np
        >>> g = TSOGroup(np.ones((2, 3, 4)), np.ones((2, 3, 4)))
        >>> g.rerun_stale().stale
        {}
        """
        from tsocontainer.group.state import MAKER

        calls = getattr(self, "_calls", {})
        for _ in range(2 * len(MAKER)):   # each pass re-runs the earliest stale step
            todo = [MAKER[p] for p in self.stale if MAKER.get(p) in calls]
            if not todo:
                break
            order = {name: i for i, name in enumerate(self.steps)}
            name = min(todo, key=lambda n: order.get(n, -1))
            log.info("re-running stale step %s %s", name, calls[name])
            getattr(self, name)(**calls[name])
        left = self.stale
        if left:
            raise StaleProductError(f"cannot re-run {sorted(left)}: no recorded call of "
                                    f"{sorted({MAKER.get(p, p) for p in left})}; run them by hand")
        return self

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
        from tsocontainer.io.state import write_state_file

        arrays = {"SCI": self.sci, "VAR": self.var, "DQSTATIC": self.dqs.static,
                  "DQINDEX": self.dqs.index, "DQVALUE": self.dqs.value}
        for name, plane in self._flags.planes.items():
            arrays[f"FLAG_{name.upper()}"] = plane
        if self.wave is not None:
            arrays["WAVE"] = self.wave
        for k, v in self.aux.items():   # stale products too: the stamps say so on reading
            arrays[f"AUX_{k.upper()}"] = np.asarray(v)
        t = self.time.tdb
        time_cols = {"jd1": ("D", np.asarray(t.jd1, float)), "jd2": ("D", np.asarray(t.jd2, float)),
                     "integration_number": ("K", self.int_numbers)}
        state = {"meta": self.meta, "history": self.history, "files": self.files,
                 "mode": self.mode.to_dict() if self.mode is not None else None,
                 "aux": list(self.aux), "flags": list(self._flags.planes),
                 "dq_mask_bits": self.dq_mask_bits, "shape": list(self.shape),
                 "corrections": list(self.corrections),
                 "aux_per_int": sorted(self.aux_per_int), "derived": self.derived.to_dict(),
                 "calls": getattr(self, "_calls", {})}
        return write_state_file(path, arrays, time_cols, _jsonable(state), meta=self.meta,
                                protect=self.files, overwrite=overwrite)

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

        Raises
        ------
        TSOReadError
            If the file is not a complete tsocontainer state file (names it).
        """
        from astropy.time import Time

        from tsocontainer.errors import TSOReadError
        from tsocontainer.io.state import read_state_file
        from tsocontainer.modes import Mode

        content = read_state_file(path)
        arr, state, tt = content["arrays"], content["state"], content["time"]
        try:
            shape = tuple(state["shape"])
            _check_state_arrays(path, shape, arr)
            dqs = SparseDQ(arr["DQSTATIC"], arr["DQINDEX"], arr["DQVALUE"], shape[0])
            flags = FlagStore(shape, {n: arr[f"FLAG_{n.upper()}"] for n in state["flags"]})
            time = Time(tt["jd1"], tt["jd2"], format="jd", scale="tdb")
            aux = {k: arr[f"AUX_{k.upper()}"] for k in state["aux"]}
            g = cls(arr["SCI"], arr["VAR"], dqs, time, wave=arr.get("WAVE"),
                    mode=Mode.from_dict(state["mode"]) if state["mode"] else None,
                    meta=state["meta"], int_numbers=tt["integration_number"], files=state["files"])
            g._restore(history=state["history"], flags=flags, aux=aux,
                       aux_per_int=state.get("aux_per_int", []),
                       derived=DerivedState.from_dict(state.get("derived")),
                       corrections=state.get("corrections", []),
                       dq_mask_bits=state["dq_mask_bits"])
            g._calls = dict(state.get("calls", {}))
        except KeyError as exc:
            raise TSOReadError(f"{path}: incomplete tsocontainer state file (missing {exc})",
                               path=path) from None
        except ValueError as exc:
            raise TSOReadError(f"{path}: inconsistent tsocontainer state file ({exc})",
                               path=path) from None
        return g

def _check_state_arrays(path, shape, arr) -> None:
    """Shapes and DQ indices of a saved state agree with its recorded shape."""
    from tsocontainer.errors import TSOReadError

    if len(shape) != 3:
        raise TSOReadError(f"{path}: recorded shape {shape} is not (N, ny, nx)", path=path)
    for name in ("SCI", "VAR"):
        if arr[name].shape != shape:
            raise TSOReadError(f"{path}: {name} has shape {arr[name].shape}, the state records "
                               f"{shape}", path=path)
    if arr["DQSTATIC"].shape != shape[1:]:
        raise TSOReadError(f"{path}: DQSTATIC has shape {arr['DQSTATIC'].shape}, expected "
                           f"{shape[1:]}", path=path)
    idx = np.asarray(arr["DQINDEX"])
    if idx.size and (idx.min() < 0 or idx.max() >= int(np.prod(shape))):
        raise TSOReadError(f"{path}: DQINDEX holds pixel indices outside the cube "
                           f"({idx.min()}..{idx.max()} for {int(np.prod(shape))} pixels)", path=path)
    if idx.shape != np.shape(arr["DQVALUE"]):
        raise TSOReadError(f"{path}: DQINDEX and DQVALUE differ in length", path=path)


def _describe_key(key):
    if isinstance(key, slice):
        return f"{key.start}:{key.stop}:{key.step}"
    if isinstance(key, (int, np.integer)):
        return int(key)
    arr = np.asarray(key)
    return f"array of {arr.size} ({arr.dtype})"

