"""Co-association distance: kernels == the naive pairwise definition exactly (missing labels
included), CUDA in the simulator and compiled to PTX; ensemble re-coding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import squareform

from gpu_engine.cluster import coassociation, ensemble_matrix
from gpu_engine.errors import InputError
from gpu_engine.kernels import coassoc as kc


def _naive(parts: np.ndarray) -> np.ndarray:
    """The definition, pair by pair, straight from a partitions × objects array."""
    P, n = parts.shape
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            both = diff = 0
            for p in range(P):
                a, b = parts[p, i], parts[p, j]
                if np.isnan(a) or np.isnan(b) or a < 0 or b < 0:
                    continue
                both += 1
                diff += a != b
            D[i, j] = D[j, i] = diff / both if both else np.nan
    return D[np.triu_indices(n, 1)]


def _ensemble(rng, P=25, n=30):
    parts = rng.integers(0, 6, (P, n)).astype(float)
    parts[rng.uniform(size=parts.shape) < 0.2] = np.nan   # missing
    parts[rng.uniform(size=parts.shape) < 0.05] = -1      # DBSCAN noise
    parts[3] = np.nan                                      # an empty member
    parts[:, 7] = np.nan                                   # an object nobody labels
    parts[5] *= 10                                         # labels need not be 0…k−1
    return parts


@pytest.mark.parametrize("kernel", [None, "reference"])
def test_equals_naive_definition_exactly(kernel):
    parts = _ensemble(np.random.default_rng(0))
    got = coassociation(parts, kernel=kernel)
    want = _naive(parts)
    assert np.array_equal(got, want, equal_nan=True)
    Q = np.column_stack(np.triu_indices(30, 1))
    assert np.isnan(got[(Q == 7).any(1)]).all() and not np.isnan(got[~(Q == 7).any(1)]).any()


def test_identical_partitions_give_zero_and_disjoint_give_one():
    parts = np.array([[0, 0, 1, 1], [5, 5, 2, 2]], float)
    D = squareform(coassociation(parts))
    assert D[0, 1] == 0 and D[2, 3] == 0 and D[0, 2] == 1


def test_ensemble_matrix_recodes_and_validates():
    L = ensemble_matrix(pd.DataFrame([[3, 3, 9, np.nan], [0, -1, 1, 1]]))
    assert L.dtype == np.int16 and L.shape == (4, 2)
    assert L[:, 0].tolist() == [0, 0, 1, -1] and L[:, 1].tolist() == [0, -1, 1, 1]
    with pytest.raises(InputError, match="2-D"):
        ensemble_matrix(np.zeros(3))


def test_cpu_kernel_equals_reference_larger():
    rng = np.random.default_rng(1)
    L = rng.integers(-1, 8, (120, 300)).astype(np.int16)
    assert np.array_equal(kc.coassoc_cpu(L), kc.coassoc_reference(L), equal_nan=True)


@pytest.mark.sim
def test_cuda_kernel_in_simulator():
    L = ensemble_matrix(_ensemble(np.random.default_rng(2), P=6, n=9))
    got = kc.coassoc_cuda(L, threads=8)
    assert np.array_equal(got, kc.coassoc_reference(L), equal_nan=True)


@pytest.mark.gpu
def test_gpu_backend_equals_cpu():
    parts = _ensemble(np.random.default_rng(3), P=200, n=500)
    assert np.array_equal(coassociation(parts, backend="gpu"), coassociation(parts),
                          equal_nan=True)
