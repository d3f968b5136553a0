"""The stage-1 thread pools follow the dask worker they run in (no oversubscription)."""
from __future__ import annotations

import sys
import types

from tsocontainer.ramps.twopoint import default_workers


def _fake_distributed(nthreads):
    mod = types.ModuleType("distributed")
    if nthreads is None:
        def get_worker():
            raise ValueError("No worker found")
    else:
        worker = types.SimpleNamespace(state=types.SimpleNamespace(nthreads=nthreads))

        def get_worker():
            return worker
    mod.get_worker = get_worker
    return mod


def test_pool_size_follows_a_single_threaded_dask_worker(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    free = default_workers()
    assert free == 4
    monkeypatch.setitem(sys.modules, "distributed", _fake_distributed(1))
    assert default_workers() == 1
    monkeypatch.setitem(sys.modules, "distributed", _fake_distributed(64))
    assert default_workers() == free                 # never more than the cores
    monkeypatch.setitem(sys.modules, "distributed", _fake_distributed(None))
    assert default_workers() == free                 # outside a worker: the cores
