"""The thread pools (stage 1 and the rate-level block runner) follow the dask worker they
run in (no oversubscription)."""
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


def test_rate_level_block_runner_follows_the_dask_worker_too(monkeypatch):
    """``run_blocks`` (every rate-level step) runs one thread in a single-threaded dask
    worker, on the same blocks (so the same results), and its pool elsewhere."""
    import threading

    from tsocontainer.arrays import numerics

    monkeypatch.setattr(numerics, "THREADS", 2)

    def threads_used():
        seen, barrier = set(), threading.Barrier(2, timeout=0.5)

        def work(a, b):
            seen.add(threading.get_ident())
            try:            # two threads meet here; a single thread times out alone
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
            return b - a
        assert numerics.run_blocks(work, [(0, 2), (2, 5), (5, 6), (6, 9)], "t", show=False) == [2, 3, 1, 3]
        return len(seen)

    assert threads_used() == 2
    monkeypatch.setitem(sys.modules, "distributed", _fake_distributed(1))
    assert threads_used() == 1
