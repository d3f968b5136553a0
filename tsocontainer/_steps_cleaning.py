"""TSOGroup step methods of the cleaning stage (flags, pixel repair, sky, 1/f).

The algorithms live in ``outliers.py``, ``background.py`` and ``onef.py`` as
pure functions; the methods here are the thin wrappers that apply them to a
group, record history, invalidate caches and return ``self``. They import the
algorithm modules lazily so that ``import tsocontainer`` stays fast.
"""
from __future__ import annotations

__all__ = ["CleaningSteps"]


class CleaningSteps:
    """Mixin of :class:`~tsocontainer.TSOGroup` with the cleaning steps."""
