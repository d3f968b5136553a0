"""Reference-pixel correction of ramps, per group and amplifier (plain arrays).

Reference pixels are not connected to a photodiode: they see the bias drifts of the
read-out electronics but no light. Which pixels of a subarray are reference pixels
follows from its corner on the full frame (:func:`tsocontainer.io.uncal.reference_pixel_mask`):
the outer 4 rows and columns of the 2048 x 2048 NIRISS, NIRSpec and NIRCam detectors
where the subarray includes them, the outer 4 columns of MIRI.

The frame is seen in the read-out order: *lines* run along the fast-read axis
(``Mode.spec.onef_axis``; 1/f noise is constant along a line), and the amplifiers cut
the fast axis (:func:`tsocontainer.io.uncal.amplifier_index`). Two kinds of reference
pixel then do two jobs:

* **reference lines** (whole lines of reference pixels, e.g. the 4 reference columns of
  a SOSS or NIRSpec subarray, the 4 reference rows of NIRCam SUBGRISM64) give, for every
  group, the offset of each amplifier, separately for even and odd pixels along the fast
  axis (the two have different offsets): the median of those reference pixels;
* **side reference pixels** (at the ends of the science lines, e.g. the top 4 rows of
  SUBSTRIP256, the left and right 4 columns of SUBGRISM64) sample each line's own drift:
  their mean per line, smoothed over ``smoothing`` neighbouring lines, is subtracted from
  the line (the low-frequency part of 1/f; :mod:`tsocontainer.ramps.onef` removes the
  rest from the science pixels themselves).

Without reference lines the amplifier offsets come from the side reference pixels; a
subarray without any reference pixel cannot be corrected (the step says so).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RefpixLayout", "refpix_layout", "correct_refpix"]


@dataclass
class RefpixLayout:
    """Where the reference pixels of a subarray are, in read-out terms.

    Attributes
    ----------
    refmask : ndarray of bool, shape (ny, nx)
        Reference pixels.
    fast_axis : int
        Frame axis of the fast read.
    amp : ndarray of int, shape (nfast,)
        Amplifier of each position along the fast axis.
    parity : ndarray of int, shape (nfast,)
        Even (0) or odd (1) full-frame position along the fast axis.
    ref_lines : ndarray of bool, shape (nlines,)
        Lines made only of reference pixels.
    side : ndarray of bool, shape (nlines, nfast)
        Side reference pixels (in lines that are not reference lines).
    """

    refmask: np.ndarray
    fast_axis: int
    amp: np.ndarray
    parity: np.ndarray
    ref_lines: np.ndarray
    side: np.ndarray

    @property
    def namp(self) -> int:
        """Number of amplifiers."""
        return int(self.amp.max()) + 1 if self.amp.size else 1

    @property
    def has_refs(self) -> bool:
        """Whether the subarray holds any reference pixel."""
        return bool(self.refmask.any())


def _lines_view(a, fast_axis: int):
    """View ``(..., ny, nx)`` as ``(..., nlines, nfast)`` (fast axis last)."""
    return a if fast_axis == 1 else np.swapaxes(a, -1, -2)


def refpix_layout(refmask, fast_axis: int, amp, start_fast: int = 0) -> RefpixLayout:
    """Describe the reference pixels of a subarray for :func:`correct_refpix`.

    Parameters
    ----------
    refmask : ndarray of bool, shape (ny, nx)
        Reference pixels.
    fast_axis : int
        Frame axis of the fast read.
    amp : ndarray of int
        Amplifier along the fast axis.
    start_fast : int
        Full-frame coordinate (0-based) of the first pixel along the fast axis.

    Returns
    -------
    RefpixLayout

    Examples
    --------
    >>> m = np.zeros((8, 6), bool); m[:, :2] = True; m[-1] = True
    >>> lay = refpix_layout(m, 0, np.zeros(8, int))
    >>> lay.ref_lines.tolist(), int(lay.side.sum())
    ([True, True, False, False, False, False], 4)
    """
    view = _lines_view(np.asarray(refmask, bool), fast_axis)
    ref_lines = view.all(axis=1)
    side = view & ~ref_lines[:, None]
    nfast = view.shape[1]
    parity = (int(start_fast) + np.arange(nfast)) % 2
    return RefpixLayout(np.asarray(refmask, bool), int(fast_axis), np.asarray(amp, np.int64),
                        parity, ref_lines, side)


def _amp_offsets(view, layout: RefpixLayout, odd_even: bool):
    """Median offset per (integration, group, amplifier, parity) from the reference pixels."""
    n, ng = view.shape[:2]
    use = np.zeros(view.shape[2:], bool)
    use[layout.ref_lines] = True
    if not use.any():
        use = layout.side
    out = np.zeros((n, ng, layout.namp, 2), np.float32)
    nfast = view.shape[3]
    for a in range(layout.namp):
        for p in (0, 1) if odd_even else (None,):
            cols = layout.amp == a
            if p is not None:
                cols = cols & (layout.parity == p)
            sel = np.flatnonzero((use & cols[None, :]).ravel())
            if sel.size == 0:
                continue
            line, fast = np.divmod(sel, nfast)       # only these pixels are gathered
            med = np.median(view[:, :, line, fast], axis=2)
            if p is None:
                out[:, :, a, :] = med[:, :, None]
            else:
                out[:, :, a, p] = med
    # an amplifier without reference pixels takes the mean offset of the others
    has = np.array([(layout.amp == a).any() and (use & (layout.amp == a)[None]).any()
                    for a in range(layout.namp)])
    if has.any() and not has.all():
        out[:, :, ~has] = out[:, :, has].mean(axis=2, keepdims=True)
    return out


def _side_drift(view, layout: RefpixLayout, smoothing: int):
    """Per-line mean of the side reference pixels, smoothed across lines (0 where none)."""
    n, ng, nl, _ = view.shape
    counts = layout.side.sum(axis=1)
    lines = np.flatnonzero(counts > 0)
    drift = np.zeros((n, ng, nl), np.float32)
    if lines.size == 0:
        return drift
    vals = np.where(layout.side[None, None], view, 0).sum(axis=3)[..., lines] / counts[lines]
    k = max(1, int(smoothing))
    if k > 1 and lines.size > 1:
        from scipy.ndimage import uniform_filter1d

        vals = uniform_filter1d(vals, size=min(k, lines.size), axis=2, mode="nearest")
    drift[..., lines] = vals
    return drift


def correct_refpix(data, layout: RefpixLayout, odd_even: bool = True, side: bool = True,
                   smoothing: int = 11):
    """Subtract the reference-pixel offsets from a block of ramps (in place).

    Parameters
    ----------
    data : ndarray, shape (n, ngroups, ny, nx)
        Bias-subtracted ramps (DN), edited in place.
    layout : RefpixLayout
        From :func:`refpix_layout`.
    odd_even : bool
        Separate offsets for even and odd positions along the fast axis.
    side : bool
        Also subtract the smoothed per-line drift of the side reference pixels.
    smoothing : int
        Lines averaged for the side drift (running mean).

    Returns
    -------
    offsets : ndarray of float32, shape (n, ngroups, namp, 2)
        Amplifier offsets subtracted (even, odd).
    drift : ndarray of float32, shape (n, ngroups, nlines)
        Side drift subtracted per line (zeros if ``side`` is False).

    Examples
    --------
    >>> m = np.zeros((6, 4), bool); m[:, 0] = True
    >>> d = np.ones((1, 2, 6, 4), np.float32) * 5
    >>> off, _ = correct_refpix(d, refpix_layout(m, 0, np.zeros(6, int)), side=False)
    >>> float(off[0, 0, 0, 0]), float(d.max())
    (5.0, 0.0)
    """
    view = _lines_view(data, layout.fast_axis)
    n, ng = data.shape[:2]
    if not layout.has_refs:
        return (np.zeros((n, ng, layout.namp, 2), np.float32),
                np.zeros((n, ng, view.shape[2]), np.float32))
    offsets = _amp_offsets(view, layout, odd_even)
    per_fast = offsets[:, :, layout.amp, layout.parity]          # (n, ng, nfast)
    view -= per_fast[:, :, None, :]
    drift = np.zeros((n, ng, view.shape[2]), np.float32)
    if side:
        drift = _side_drift(view, layout, smoothing)
        view -= drift[..., None]
    return offsets, drift
