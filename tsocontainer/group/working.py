"""The working data of a group as blocks, and where each correction's model lives.

``WorkingSource`` hands the cleaning algorithms integration blocks of the working data
(``sci`` with some corrections applied) without ever holding a full corrected cube.
"""
from __future__ import annotations

__all__ = ["WorkingSource", "CORRECTION_KEYS", "POINTS"]

#: aux arrays and meta keys of each correction (dropped together)
CORRECTION_KEYS = {
    "sky": (("sky_params", "sky_pvar", "sky_frame", "sky_groups"),
            ("SKYMETH", "SKYAXIS", "SKYSCAL")),
    "onef": (("onef", "onef_var"), ("ONEFCORR", "ONEFAXIS")),
    "replace": (("replace_int", "replace_pix", "replace_val", "replace_var"), ("REPLMETH",)),
}


#: point evaluation of each correction's model (for sparse work such as replacement)
POINTS = {"sky": "tsocontainer.cleaning.background:sky_points", "onef": "tsocontainer.cleaning.onef:onef_points"}


class WorkingSource:
    """Integration blocks ``src[a:b]`` of the working data, made on demand.

    The corrections listed before ``stop`` (all if ``stop`` is absent),
    except those in ``skip``, are applied to a copy of each block, so no
    full working cube is ever held. With no correction to apply, slices of
    ``sci`` itself are returned (read-only use).
    """

    def __init__(self, group, stop=None, skip=None):
        skip = group._detection_skip() if skip is None else skip
        self.group, self.stop, self.skip = group, stop, tuple(skip)
        self.shape = group.shape
        before = group.corrections[:group.corrections.index(stop)] if (
            stop in group.corrections) else group.corrections
        self.plain = all(c in self.skip for c in before)

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("working source: only integration slices a:b")
        if self.plain:
            return self.group.sci[key]
        a, b, _ = key.indices(self.shape[0])
        return self.group._source_block(a, b, self.stop, self.skip, need_var=False)[0]
