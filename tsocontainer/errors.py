"""The package's exceptions: one small hierarchy, each carrying the path it is about.

Every error about what a user gave us (files, headers, recipes, priors, command-line
values) derives from :class:`TSOInputError`, so ``except TSOInputError`` catches them
all, and from the built-in class a caller would expect (``OSError`` for files that
cannot be read, ``ValueError`` for content that is wrong). The message names the
file (when there is one) and the cause.

Examples
--------
>>> err = TSOReadError("seg1.fits: not a FITS file", path="seg1.fits")
>>> isinstance(err, OSError), isinstance(err, TSOInputError), err.path
(True, True, 'seg1.fits')
"""
from __future__ import annotations

__all__ = ["TSOInputError", "TSOReadError", "SegmentMismatchError", "TSOValueError",
           "StaleProductError"]


class TSOInputError(Exception):
    """Base of every error about user input; ``path`` is the file concerned (or None).

    Parameters
    ----------
    message : str
        One line naming the file (when there is one) and the cause.
    path : str or path-like, optional
        The file the error is about.
    """

    def __init__(self, message: str = "", *args, path=None):
        super().__init__(message, *args)
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TSOReadError(TSOInputError, OSError):
    """A file cannot be read as what it should be (missing, truncated, not FITS, ...)."""


class TSOValueError(TSOInputError, ValueError):
    """An input's content is wrong (a header value, a time axis, a recipe keyword, ...)."""


class SegmentMismatchError(TSOValueError):
    """Segments do not belong to one visit (names both files and the keyword)."""


class StaleProductError(RuntimeError):
    """A derived product was made from inputs that have changed since; re-run its step.

    Parameters
    ----------
    message : str
        Names the product, what changed and the step to re-run.
    step : str, optional
        The step that makes the product.
    """

    def __init__(self, message: str = "", *, step: str | None = None):
        super().__init__(message)
        self.step = step
