"""Derived state of a container: what each product was made from, and when it is stale.

One table, kept by :class:`DerivedState`:

* every *resource* has a version number that goes up each time it changes: the mask
  (``mask``: any flag set or undone), the corrections (``sky``, ``onef``, ``replace``),
  and the products of steps (``traces``, ``shifts``, ``tilt``, ``pca``, ``spectra``);
* when a step makes a product it *stamps* it with the versions of everything it read
  (and, through their own stamps, of everything those were made from);
* a product is *stale* when any version in its stamp has moved on.

Which resources a step reads and writes is declared once, in its registry entry
(:func:`tsocontainer.registry.step`); which ``aux`` arrays belong to which resource is
:data:`AUX_RESOURCES` below. Reading an ``aux`` array of a stale product raises
:class:`~tsocontainer.errors.StaleProductError` naming the step to re-run; cached
values (mask, median frame, working data, reference frame) are keyed on the versions
they were computed from and are recomputed when those change.

The mask itself is a primary input, not a product: flags are decisions (made by steps
or by hand), so they never go stale. The sky and 1/f models are robust fits that use
the mask of their time; a later flag does not make them stale (re-run them to use it).
The pixel replacement fills exactly the masked pixels, so a later flag does. A
correction re-run makes the corrections after it stale (they were made on top of it).
"""
from __future__ import annotations

from tsocontainer.errors import StaleProductError

__all__ = ["DerivedState", "AuxStore", "AUX_RESOURCES", "CORRECTIONS", "resource_of",
           "MAKER"]

#: the corrections, in the order of their resource names, with the functions applying them
CORRECTIONS = {
    "sky": "tsocontainer.cleaning.background:apply_sky",
    "onef": "tsocontainer.cleaning.onef:apply_onef",
    "replace": "tsocontainer.cleaning.replacement:apply_replacement",
}

#: ``aux`` key prefix -> resource (first match wins)
AUX_RESOURCES = (
    ("sky_", "sky"), ("onef", "onef"), ("replace_", "replace"),
    ("trace_order", "traces"), ("width_order", "traces"),
    ("shift_x", "shifts"), ("shift_y", "shifts"), ("fwhm", "shifts"),
    ("tilt", "tilt"), ("pca_", "pca"), ("spec_", "spectra"),
)

#: resource -> the step that makes it (for messages)
MAKER = {"sky": "estimate_sky", "onef": "correct_one_over_f", "replace": "replace_bad_pixels",
         "traces": "fit_all_traces", "shifts": "measure_shifts", "tilt": "detect_tilt_events",
         "pca": "stability_pca", "spectra": "extract", "mask": "a flag step"}


def resource_of(key: str) -> str | None:
    """The resource an ``aux`` key belongs to (None for free-standing arrays).

    Examples
    --------
    >>> resource_of("trace_order1"), resource_of("spec_flux_order2"), resource_of("mine")
    ('traces', 'spectra', None)
    """
    for prefix, res in AUX_RESOURCES:
        if key.startswith(prefix):
            return res
    return None


class DerivedState:
    """Versions of resources and the stamps of the products made from them.

    Examples
    --------
    >>> d = DerivedState()
    >>> d.stamp("traces", reads=("mask", "sky"))
    >>> d.stale("traces")
    []
    >>> d.bump("mask")
    >>> d.stale("traces")
    ['mask']
    """

    def __init__(self, versions=None, stamps=None):
        self.versions: dict = dict(versions or {})
        self.stamps: dict = {k: dict(v) for k, v in (stamps or {}).items()}

    def version(self, resource: str) -> int:
        """Current version of ``resource`` (0 if it never changed)."""
        return self.versions.get(resource, 0)

    def bump(self, *resources) -> None:
        """Record that ``resources`` changed."""
        for r in resources:
            self.versions[r] = self.version(r) + 1

    def stamp(self, product: str, reads) -> None:
        """Record that ``product`` was just made from ``reads`` (and bump its version)."""
        stamp = {}
        for r in reads:
            stamp.update(self.stamps.get(r, {}))
        for r in reads:
            stamp[r] = self.version(r)
        stamp.pop(product, None)
        self.stamps[product] = stamp
        self.bump(product)

    def forget(self, product: str) -> None:
        """``product`` was removed: drop its stamp and bump its version."""
        self.stamps.pop(product, None)
        self.bump(product)

    def stale(self, product: str) -> list:
        """Inputs of ``product`` that changed since it was made (empty: fresh)."""
        return sorted(r for r, v in self.stamps.get(product, {}).items() if self.version(r) != v)

    def key(self, resources) -> tuple:
        """Versions of ``resources``: the cache key of a value computed from them."""
        return tuple(self.version(r) for r in resources)

    def check(self, product: str) -> None:
        """Raise :class:`StaleProductError` if ``product`` is stale."""
        changed = self.stale(product)
        if changed:
            step = MAKER.get(product, product)
            what = ", ".join(f"{c} (changed by {MAKER.get(c, c)})" for c in changed)
            raise StaleProductError(
                f"the {product} product of {step} is stale: it was made before a change of "
                f"{what}; run {step} again (g.rerun_stale() re-runs every stale step with "
                "its recorded keywords)", step=step)

    def to_dict(self) -> dict:
        """Plain form for saving."""
        return {"versions": dict(self.versions), "stamps": {k: dict(v) for k, v in self.stamps.items()}}

    @classmethod
    def from_dict(cls, d) -> "DerivedState":
        """Inverse of :meth:`to_dict` (an empty state for ``None``)."""
        d = d or {}
        return cls(d.get("versions"), d.get("stamps"))

    def copy(self) -> "DerivedState":
        """An independent copy."""
        return DerivedState(self.versions, self.stamps)


class AuxStore(dict):
    """The ``aux`` dict of a container: reading a stale product's array raises.

    Iteration, ``items()`` and saving see every array (stale ones included); item
    access and ``get`` check the array's resource first.
    """

    def __init__(self, data=None, state: DerivedState | None = None):
        super().__init__(data or {})
        self.state = state if state is not None else DerivedState()

    def __getitem__(self, key):
        res = resource_of(key)
        if res is not None:
            self.state.check(res)
        return super().__getitem__(key)

    def get(self, key, default=None):
        """As ``dict.get``, but a stale product's array raises."""
        if key in self:
            return self[key]
        return default

    def raw(self, key):
        """The array ``key`` without the staleness check (for saving and slicing)."""
        return super().__getitem__(key)
