"""The container room: :class:`TSOGroup` and the readers that build one.

``container`` holds storage, masks, caches and the derived-state bookkeeping;
the step wrappers sit in mixins by stage (``cleaning``, ``extraction``,
``plots``) so that each file stays small.
"""
from tsocontainer.group.container import TSOGroup
from tsocontainer.group.reading import read_segments, read_state

__all__ = ["TSOGroup", "read_segments", "read_state"]
