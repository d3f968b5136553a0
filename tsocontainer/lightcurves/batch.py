"""Batman light curves for a batch of parameter vectors (one per emcee walker).

``batman.TransitModel.light_curve`` computes the planet-star separation at every
time and then the limb-darkened flux at every time, for one parameter set. A
walker batch calls it once per walker, and most of that work is wasted: out of
the event the flux is exactly 1 (transit) or ``1 + fp`` (eclipse). :class:`BatchLightCurve`
calls batman's two compiled kernels (separation, then flux) on the times that
can be in the event only:

* for a circular orbit, ``z >= a |sin(phase)|``, so no point with
  ``|sin(phase)| >= (1 + rp) / a`` is in the event: the window around each
  event is ``|t - t_c| <= P / (2 pi) * arcsin((1 + rp) / a)`` (plus 1 %);
* with a fixed orbit (channel fits) the separations are computed once and
  sorted; each walker's flux is computed at the points with ``z < 1 + rp``.

Both kernels work point by point, so the values are the ones batman returns for
the whole array, bit for bit. :meth:`BatchLightCurve.self_check` compares the
two on a parameter set when the model is built; if they differ (another batman
version with other kernel signatures), or for nonlinear limb darkening,
supersampling and eccentric orbits with a free orbit, the batch falls back to
one ``light_curve`` call per walker.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os

import numpy as np

__all__ = ["BatchLightCurve", "single_threaded_blas"]

_BLAS = {}


def _openblas():
    """(get, set) of the thread count of the OpenBLAS numpy links, or None."""
    if "fns" not in _BLAS:
        _BLAS["fns"] = None
        folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
        for path in sorted(glob.glob(os.path.join(folder, "*openblas*"))):
            try:
                lib = ctypes.CDLL(path)  # already loaded by numpy: the same handle
            except OSError:
                continue
            for pre, suf in (("scipy_openblas_", "64_"), ("openblas_", "64_"), ("openblas_", "")):
                get, set_ = getattr(lib, f"{pre}get_num_threads{suf}", None), \
                    getattr(lib, f"{pre}set_num_threads{suf}", None)
                if get is not None and set_ is not None:
                    get.restype = ctypes.c_int
                    set_.argtypes = [ctypes.c_int]
                    _BLAS["fns"] = (get, set_)
                    break
            if _BLAS["fns"] is not None:
                break
    return _BLAS["fns"]


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block with numpy's OpenBLAS on one thread, then restore its thread count.

    The fits multiply ``(walkers, points) @ (points, k)`` matrices thousands of
    times; OpenBLAS spreads such products over threads, and on a machine whose
    cores are busy (other processes, parallel channel fits) the threads wait for
    each other: 10 ms instead of 0.3 ms per product was measured here. A no-op
    where numpy is not linked to an OpenBLAS found in ``numpy.libs``.

    Examples
    --------
    >>> with single_threaded_blas():
    ...     float(np.ones((2, 3)) @ np.ones(3) @ np.ones(2))
    6.0
    """
    fns = _openblas()
    if fns is None:
        yield
        return
    get, set_ = fns
    before = int(get())
    set_(1)
    try:
        yield
    finally:
        set_(before)

_NU = {"linear": 1, "quadratic": 2, "nonlinear": 4}


def _kernels():
    try:
        from batman import _eclipse, _quadratic_ld, _rsky
    except ImportError:  # pragma: no cover - batman without its compiled kernels
        return None
    return _rsky._rsky, _quadratic_ld._quadratic_ld, _eclipse._eclipse


class BatchLightCurve:
    """Batched batman light curves on fixed times.

    Parameters
    ----------
    t : ndarray (n,)
        Times, increasing (days).
    kind : str
        ``"transit"`` or ``"eclipse"``.
    law : str
        Limb-darkening law (transits).
    bm, bp : batman.TransitModel, batman.TransitParams
        A model on ``t`` and its parameters (the fallback, and the reference of
        :meth:`self_check`).
    fixed_orbit : dict, optional
        ``{t0 or t_sec, per, a_rs, inc, ecc, w}`` when all are fixed.
    rp_max : float
        Largest radius ratio the prior allows (window of a fixed orbit).

    Examples
    --------
    >>> import batman
    >>> t = np.linspace(-0.1, 0.1, 200)
    >>> bp = batman.TransitParams()
    >>> bp.t0, bp.per, bp.rp, bp.a, bp.inc, bp.ecc, bp.w = 0.0, 3.0, 0.1, 10.0, 88.0, 0.0, 90.0
    >>> bp.u, bp.limb_dark = [0.3, 0.2], "quadratic"
    >>> bm = batman.TransitModel(bp, t)
    >>> blc = BatchLightCurve(t, "transit", "quadratic", bm, bp)
    >>> p = {"t0": np.zeros(2), "per": np.full(2, 3.0), "a_rs": np.full(2, 10.0),
    ...      "inc": np.full(2, 88.0), "ecc": np.zeros(2), "w": np.full(2, 90.0),
    ...      "rp_rs": np.array([0.1, 0.12]), "u1": np.full(2, 0.3), "u2": np.full(2, 0.2)}
    >>> bool(np.array_equal(blc(p)[0], bm.light_curve(bp)))
    True
    """

    def __init__(self, t, kind: str, law: str, bm, bp, fixed_orbit: dict | None = None,
                 rp_max: float = 1.0):
        self.t = np.ascontiguousarray(t, dtype=float)
        self.kind, self.law, self.bm, self.bp = kind, law, bm, bp
        self.nu = _NU.get(law, 2)
        self.kern = _kernels()
        self.fast = (self.kern is not None and getattr(bm, "supersample_factor", 1) == 1
                     and (kind == "eclipse" or law in ("linear", "quadratic")))
        self._fixed = None
        self.window = None
        if self.fast and fixed_orbit is not None:
            o = fixed_orbit
            tc = o["t0"] if kind == "transit" else self._t_conj(o["t_sec"], o["per"], o["ecc"], o["w"])
            ds = self._rsky(self.t, tc, o["per"], o["a_rs"], o["inc"], o["ecc"], o["w"])
            idx = np.flatnonzero(ds < 1.0 + rp_max)
            order = np.argsort(ds[idx], kind="stable")  # by separation: in-event points first
            self._fixed = (idx[order], np.ascontiguousarray(ds[idx][order]))

    # --------------------------------------------------------------- pieces
    def _rsky(self, t, t0, per, a, inc, ecc, w):
        ttype = 1 if self.kind == "transit" else 2
        return self.kern[0](t, t0, per, a, inc * np.pi / 180.0, ecc, w * np.pi / 180.0, ttype, 1)

    def _t_conj(self, t_sec, per, ecc, w):
        bp = self.bp
        bp.t_secondary, bp.per, bp.ecc, bp.w = t_sec, per, ecc, w
        return self.bm.get_t_conjunction(bp)

    def _window(self, tc: float, per: float, a: float, rp: float, ecc: float) -> slice | np.ndarray:
        """Indices of the points that can be in an event centred on ``tc + k per``."""
        if ecc != 0 or not (1.0 + rp) / a < 1.0:
            return slice(None)
        hw = 1.01 * per / (2 * np.pi) * np.arcsin((1.0 + rp) / a) + 1e-9
        t = self.t
        k0 = np.floor((t[0] - hw - tc) / per)
        k1 = np.ceil((t[-1] + hw - tc) / per)
        if k1 - k0 > 1000:  # a period much shorter than the data: no window
            return slice(None)
        ks = np.arange(k0, k1 + 1)
        lo = np.searchsorted(t, tc + ks * per - hw, side="left")
        hi = np.searchsorted(t, tc + ks * per + hw, side="right")
        keep = hi > lo
        if not keep.any():
            return slice(0, 0)
        if keep.sum() == 1:
            return slice(int(lo[keep][0]), int(hi[keep][0]))
        return np.concatenate([np.arange(a_, b_) for a_, b_ in zip(lo[keep], hi[keep])]).astype(int)

    def _windows(self, tc, per, a, rp, ecc) -> list:
        """:meth:`_window` of every walker; one vectorised search when each sees at most one event."""
        t = self.t
        with np.errstate(invalid="ignore"):
            x = (1.0 + rp) / a
            hw = 1.01 * per / (2 * np.pi) * np.arcsin(np.minimum(x, 1.0)) + 1e-9
        single = (ecc == 0) & (x < 1.0) & (t[-1] - t[0] < per - 2 * hw)
        out = [None] * tc.size
        if single.any():
            # the only epoch whose window can reach the data: the first one ending after t[0]
            k = np.ceil((t[0] - hw - tc) / per)
            mid = tc + k * per
            los = np.searchsorted(t, mid - hw, side="left")
            his = np.searchsorted(t, mid + hw, side="right")
            for i in np.flatnonzero(single):
                out[i] = slice(int(los[i]), int(max(his[i], los[i])))
        for i in np.flatnonzero(~single):
            out[i] = self._window(float(tc[i]), float(per[i]), float(a[i]), float(rp[i]), float(ecc[i]))
        return out

    # ---------------------------------------------------------------- calls
    def __call__(self, p: dict) -> np.ndarray:
        """Light curves of a batch.

        Parameters
        ----------
        p : dict of str to ndarray (nb,)
            ``per, a_rs, inc, ecc, w, rp_rs`` and ``t0`` + ``u1..`` (transit) or
            ``t_sec`` + ``fp_fs`` (eclipse).

        Returns
        -------
        ndarray (nb, n)
            Also sets :attr:`window`: a slice outside which every light curve of
            the batch is constant (1, or ``1 + fp``), or None.
        """
        nb = len(p["rp_rs"])
        if not self.fast:
            self.window = None
            return self._slow(p, nb)
        ecl = self.kind == "eclipse"
        out = np.empty((nb, self.t.size))
        if ecl:
            fp = np.asarray(p["fp_fs"], dtype=float)
            out[:] = (1.0 + fp)[:, None]
            flux = self.kern[2]
            args = [(float(abs(r)), float(f), 1) for r, f in zip(p["rp_rs"], fp)]
        else:
            out.fill(1.0)
            flux = self.kern[1]
            u2 = p["u2"] if self.nu > 1 else np.zeros(nb)
            args = [(float(abs(r)), float(a), float(b), 1) for r, a, b in zip(p["rp_rs"], p["u1"], u2)]
        if self._fixed is not None:
            idx, ds = self._fixed
            ks = np.searchsorted(ds, 1.0 + np.abs(np.asarray(p["rp_rs"], dtype=float)), side="right")
            for i in range(nb):
                k = ks[i]
                if k:
                    out[i, idx[:k]] = flux(ds[:k], *args[i])
            kmax = int(ks.max()) if nb else 0
            sub = idx[:kmax]
            self.window = (slice(0, 0) if not kmax else
                           slice(int(sub.min()), int(sub.max()) + 1)
                           if sub.max() - sub.min() + 1 == kmax else None)
            return out
        per, a, ecc = (np.asarray(p[k], dtype=float) for k in ("per", "a_rs", "ecc"))
        tc = np.asarray(p["t_sec"] if ecl else p["t0"], dtype=float)
        wins = self._windows(tc, per, a, np.abs(np.asarray(p["rp_rs"], dtype=float)), ecc)
        lo, hi = self.t.size, 0
        for i in range(nb):
            sl = wins[i]
            if isinstance(sl, slice):
                start, stop = sl.start or 0, self.t.size if sl.stop is None else sl.stop
                if stop <= start:
                    continue
                lo, hi = min(lo, start), max(hi, stop)
            else:
                lo, hi = 0, self.t.size
            w = float(p["w"][i])
            t0 = self._t_conj(tc[i], per[i], ecc[i], w) if ecl else float(tc[i])
            ds = self._rsky(np.ascontiguousarray(self.t[sl]), t0, float(per[i]), float(a[i]),
                            float(p["inc"][i]), float(ecc[i]), w)
            out[i, sl] = flux(ds, *args[i])
        self.window = slice(lo, hi) if hi > lo else slice(0, 0)
        return out

    def _slow(self, p: dict, nb: int) -> np.ndarray:
        """One ``TransitModel.light_curve`` call per walker."""
        out = np.empty((nb, self.t.size))
        bp, bm = self.bp, self.bm
        ecl = self.kind == "eclipse"
        for i in range(nb):
            bp.per, bp.a, bp.inc = p["per"][i], p["a_rs"][i], p["inc"][i]
            bp.ecc, bp.w, bp.rp = p["ecc"][i], p["w"][i], p["rp_rs"][i]
            if ecl:
                bp.t_secondary, bp.fp = p["t_sec"][i], p["fp_fs"][i]
            else:
                bp.t0 = p["t0"][i]
                bp.u = [p[f"u{k + 1}"][i] for k in range(self.nu)]
            out[i] = bm.light_curve(bp)
        return out

    def self_check(self, p: dict) -> bool:
        """Compare the fast path with ``light_curve`` on the batch ``p``; fall back if they differ.

        Parameters
        ----------
        p : dict of str to ndarray (nb,)

        Returns
        -------
        bool
            Whether the fast path is in use.
        """
        if self.fast:
            fast = self(p)
            self.fast = False
            slow = self._slow(p, len(p["rp_rs"]))
            self.fast = bool(np.array_equal(fast, slow))
        return self.fast
