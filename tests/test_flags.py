"""SparseDQ and FlagStore: compact storage must equal the dense arrays."""
from __future__ import annotations

import numpy as np
import pytest

from tsocontainer.flags import FlagStore, SparseDQ, dq_bits, dq_names


@pytest.fixture
def dense():
    rng = np.random.default_rng(0)
    dq = np.zeros((9, 5, 6), np.uint32)
    dq[:, 0] = 1 | 2**31
    dq[rng.random(dq.shape) < 0.05] |= 4
    dq[3:, 2, 2] |= 2
    return dq


def test_sparse_roundtrip(dense):
    s = SparseDQ.from_dense(dense)
    assert np.array_equal(s.to_dense(), dense)
    assert np.array_equal(s.to_dense(2, 7), dense[2:7])
    assert np.array_equal(s.any(4), (dense & 4) != 0)
    assert np.array_equal(s.any(6, 1, 4), (dense[1:4] & 6) != 0)
    assert np.array_equal(s.take([8, 0, 3]).to_dense(), dense[[8, 0, 3]])
    assert s.nbytes < dense.nbytes


def test_sparse_concatenate(dense):
    parts = [SparseDQ.from_dense(dense[:4]), SparseDQ.from_dense(dense[4:])]
    joined = SparseDQ.concatenate(parts)
    assert np.array_equal(joined.to_dense(), dense)


def test_dq_bits_names():
    assert dq_bits(["DO_NOT_USE", "jump_det"]) == 5
    assert dq_bits(6) == 6
    assert dq_names(5) == ["DO_NOT_USE", "JUMP_DET"]
    with pytest.raises(ValueError, match="unknown DQ mnemonic 'JUMPY'; allowed: .*DO_NOT_USE"):
        dq_bits("JUMPY")


def test_flagstore_set_get_indices():
    store = FlagStore((4, 3, 5))
    rng = np.random.default_rng(1)
    cube = rng.random(store.shape) < 0.2
    assert store.set("percentile", cube) == cube.sum()
    assert np.array_equal(store.get("percentile"), cube)
    idx = np.array([0, 7, 59])
    store.set_indices("invalid", idx)
    want = np.zeros(store.size, bool)
    want[idx] = True
    assert np.array_equal(store.get("invalid").ravel(), want)
    assert np.array_equal(store.any_of(), cube | want.reshape(store.shape))
    bits = store.to_bits()
    assert np.array_equal((bits >> 2) & 1, cube.astype(np.uint16))
    with pytest.raises(ValueError, match="out of range"):
        store.set_indices("invalid", [60])
    with pytest.raises(ValueError, match="has shape"):
        store.set("dq", np.zeros((1, 3, 5), bool))
