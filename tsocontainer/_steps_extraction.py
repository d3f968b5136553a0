"""TSOGroup step methods of tracing, stability and spectral extraction.

The algorithms live in ``trace.py``, ``extract.py`` and ``spectra.py``; the
methods here are thin wrappers (lazy imports keep ``import tsocontainer`` fast).
"""
from __future__ import annotations

__all__ = ["ExtractionSteps"]


class ExtractionSteps:
    """Mixin of :class:`~tsocontainer.TSOGroup` with tracing and extraction steps."""
