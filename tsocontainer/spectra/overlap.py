"""Orders that share pixels (SOSS): the overlap of their apertures and the contamination.

Where two orders' box apertures overlap, :func:`overlap_exclusion` gives the
pixels each order leaves out; the other order's wing that remains inside an
aperture is estimated by :func:`order_contamination`. Dispersion-major view
(see :mod:`tsocontainer.spectra.blocks`); traces and widths are per order.
"""
from __future__ import annotations

import numpy as np

from tsocontainer.arrays.views import gather, window_rows

__all__ = ["overlap_exclusion", "order_contamination"]


def _coverage(centres: dict, widths: dict, ny: int) -> dict:
    """Order -> boolean (ny, nx) map of the pixels its box aperture touches."""
    nx = len(next(iter(centres.values())))
    cover = {}
    for o, c in centres.items():
        m = np.zeros((ny, nx), bool)
        rows, w = window_rows(c, widths[o] / 2.0, ny)
        cols = np.broadcast_to(np.arange(nx), rows.shape)
        m[rows[w > 0], cols[w > 0]] = True
        cover[o] = m
    return cover


def overlap_exclusion(centres: dict, widths: dict, ny: int) -> dict:
    """Pixels of each order's aperture that also lie in another order's.

    Parameters
    ----------
    centres : dict
        Order -> reference trace (nx,) (dispersion-major rows).
    widths : dict
        Order -> full aperture width (px).
    ny : int
        Rows of the frame.

    Returns
    -------
    dict
        Order -> boolean (ny, nx) map of pixels to exclude (all False for a
        single order).

    Examples
    --------
    Two orders 6 rows apart with 8 px apertures share rows 12-14:

    >>> import numpy as np
    >>> centres = {1: np.full(6, 10.0), 2: np.full(6, 16.0)}
    >>> excl = overlap_exclusion(centres, {1: 8.0, 2: 8.0}, 30)
    >>> np.flatnonzero(excl[1][:, 0]), np.flatnonzero(excl[2][:, 0])
    (array([12, 13, 14]), array([12, 13, 14]))
    """
    cover = _coverage(centres, widths, ny)
    out = {}
    for o in centres:
        others = [cover[q] for q in centres if q != o]
        out[o] = (np.logical_or.reduce(others) & cover[o] if others
                  else np.zeros_like(cover[o]))
    return out


def order_contamination(frame, centres: dict, widths: dict, exclude: dict) -> dict:
    """Estimated fraction of each order's box flux coming from the other orders.

    The other order's profile is assumed mirror-symmetric about its centre:
    its flux at a row ``r`` of this aperture is read at ``2 c_other - r``
    (linear interpolation), on the far side of the other order, for rows
    within twice its aperture half-width. Mirror rows inside a third order's
    aperture (or this order's) are not used (the estimate is then a lower
    limit); sky left in the frame counts as contamination (an upper limit
    when the background was not subtracted).

    Parameters
    ----------
    frame : ndarray, shape (ny, nx)
        Dispersion-major visit-average frame.
    centres, widths : dict
        Order -> reference trace (nx,) and full aperture width.
    exclude : dict
        Order -> pixels excluded from its aperture (:func:`overlap_exclusion`).

    Returns
    -------
    dict
        Order -> contamination fraction (nx,), 0 where the orders are far apart.

    Examples
    --------
    Order 2 is half as bright as order 1, so it contaminates order 1 less than
    order 1 contaminates it:

    >>> import numpy as np
    >>> rows = np.arange(30.0)[:, None]
    >>> frame = (np.exp(-0.5 * ((rows - 10) / 1.5) ** 2)
    ...          + 0.5 * np.exp(-0.5 * ((rows - 16) / 1.5) ** 2)).repeat(6, 1)
    >>> centres, widths = {1: np.full(6, 10.0), 2: np.full(6, 16.0)}, {1: 8.0, 2: 8.0}
    >>> cont = order_contamination(frame, centres, widths, overlap_exclusion(centres, widths, 30))
    >>> round(float(cont[1][0]), 4), round(float(cont[2][0]), 4)
    (0.0007, 0.0027)
    """
    ny, nx = frame.shape
    img = np.nan_to_num(frame)
    cover = _coverage(centres, widths, ny)
    cols = np.arange(nx)
    out = {}
    for o, c in centres.items():
        rows, w = window_rows(c, widths[o] / 2.0, ny)
        w = np.where(gather(exclude[o], rows), 0.0, w)
        own = (w * gather(img, rows)).sum(0)
        cont = np.zeros(nx)
        for q, cq in centres.items():
            if q == o:
                continue
            cq = np.nan_to_num(cq, nan=-1e6)[None, :]
            m = 2.0 * cq - rows
            # the other order's wings reach at most twice its aperture half-width
            ok = (np.abs(rows - cq) <= widths[q]) & (m >= 0) & (m <= ny - 1)
            mr = np.clip(np.rint(m), 0, ny - 1).astype(np.intp)
            for r in centres:
                if r != q:
                    ok &= ~cover[r][mr, cols]
            lo = np.clip(np.floor(m), 0, ny - 1).astype(np.intp)
            hi = np.clip(lo + 1, 0, ny - 1)
            t = m - lo
            val = (1 - t) * gather(img, lo) + t * gather(img, hi)
            cont += (w * np.where(ok, np.clip(val, 0, None), 0.0)).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[o] = np.where(own > 0, np.clip(cont / own, 0, 1), np.nan)
    return out
