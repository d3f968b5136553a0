"""Synthetic visits with known truth, written in the real JWST file layout."""
from tsocontainer.sim.simulate import simulate_visit

__all__ = ["simulate_visit"]
