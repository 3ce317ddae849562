"""CCC against the reference package ccc-coef: bit for bit (float64 equality) on the
reference's regression matrix, ties, mixed categorical / numeric data, n at the k boundaries,
constant features, best-partition indices and partitions; kernels agree (CPU, CUDA in the
simulator, PTX)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ccc.coef import ccc as reference

from gpu_engine.ccc import ccc, k_values, pair_index, prepare
from gpu_engine.errors import InputError
from gpu_engine.kernels import ccc as kc


def _same(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def test_reference_regression_matrix():
    np.random.seed(0)
    X = np.random.rand(20, 100)
    got = ccc(X)
    assert got.shape == (190,)
    assert got.sum() == 5.5547050295401945 and got.max() == 0.09324081632653061
    assert _same(got, reference(X))


@pytest.mark.parametrize("n", [3, 4, 7, 8, 20, 90, 91, 110])
def test_ties_and_k_boundaries_bit_for_bit(n):
    """Integer data (many ties) at the sizes where the k range changes (round(√n))."""
    rng = np.random.default_rng(n)
    X = rng.integers(0, 4, (10, n)).astype(float)
    X[2] = rng.normal(size=n)
    got, best, parts = ccc(X, return_parts=True)
    want, wbest, wparts = reference(X, return_parts=True)
    assert _same(got, want) and np.array_equal(best, wbest) and np.array_equal(parts, wparts)


def test_constant_features_are_nan_and_reported():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(6, 50))
    X[1] = 3.0
    got = ccc(X)
    assert _same(got, reference(X))
    F = prepare(X)
    assert F.constant.tolist() == [False, True, False, False, False, False]
    Q = pair_index(6, 0, 15)
    assert np.isnan(got[(Q == 1).any(1)]).all() and not np.isnan(got[~(Q == 1).any(1)]).any()


def test_mixed_categorical_and_numeric():
    rng = np.random.default_rng(2)
    n = 60
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 3, n),
                       "c": rng.choice(["u", "v", "w"], n), "d": rng.normal(size=n) > 0.3,
                       "e": np.where(rng.normal(size=n) > 0, "p", "q"), "f": ["z"] * n})
    got, best, parts = ccc(df, return_parts=True)
    want, wbest, wparts = reference(df, return_parts=True)
    assert _same(got, want) and np.array_equal(best, wbest) and np.array_equal(parts, wparts)


def test_two_features_and_spec_values():
    x = np.arange(-4, 5).astype(float)
    assert ccc(x, x ** 2) == reference(x, x ** 2)
    assert ccc(x, x ** 2, n_clusters=3) == reference(x, x ** 2, internal_n_clusters=3)
    rng = np.random.default_rng(0)
    xx = rng.normal(size=100)
    cat = np.where(xx > np.percentile(xx, 25), "hi", "lo")
    assert ccc(xx, cat) == reference(xx, cat) == 0.32653061224489793
    # an anti-correlated pair of partitions: ARI < 0 → CCC 0
    a = np.array([0, 0, 1, 1, 0, 0, 1, 1.0])
    b = np.array([0, 1, 0, 1, 0, 1, 0, 1.0])
    assert kc.ari_reference(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])) == -0.5
    assert ccc(a, b) == reference(a, b) == 0.0


def test_custom_k_and_errors():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 40))
    assert _same(ccc(X, n_clusters=[2, 5, 9]), reference(X, internal_n_clusters=[2, 5, 9]))
    assert _same(ccc(X, n_clusters=4), reference(X, internal_n_clusters=4))
    assert k_values(100).tolist() == list(range(2, 11)) and k_values(8).tolist() == [2, 3]
    Xn = X.copy()
    Xn[2, 7] = np.nan
    with pytest.raises(InputError, match="feature 2 has NaN"):
        ccc(Xn)
    with pytest.raises(InputError, match="more than 2 samples"):
        ccc(np.ones((3, 2)))
    with pytest.raises(InputError, match="must be 1-D of the same length"):
        ccc(np.ones(5), np.ones(6))
    with pytest.raises(InputError, match="must be numeric"):
        ccc(np.array([["a", "b", "c"], ["c", "d", "e"]]))


def test_pvalues_seeded():
    rng = np.random.default_rng(4)
    x = rng.normal(size=80)
    X = np.vstack([x, x ** 2 + rng.normal(0, 0.1, 80), rng.normal(size=80)])
    (v1, p1) = ccc(X, pvalue_n_perms=200, seed=1)
    (v2, p2) = ccc(X, pvalue_n_perms=200, seed=1)
    assert _same(v1, reference(X)) and _same(p1, p2)
    assert p1[0] == 1 / 201 and p1[2] > 0.05  # the dependent pair, an independent one


def test_blocks_and_pair_order():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(9, 30))
    whole = ccc(X)
    assert _same(ccc(X, block_pairs=5), whole)
    assert np.array_equal(pair_index(9, 0, 36), np.column_stack(np.triu_indices(9, 1)))


def test_kernels_agree():
    rng = np.random.default_rng(7)
    X = rng.integers(0, 6, (8, 40)).astype(float)
    F = prepare(X)
    pairs = pair_index(8, 0, 28)
    ref_v, ref_b = kc.ccc_pairs_reference(F.labels(), F.valid, pairs)
    cpu_v, cpu_b = kc.ccc_pairs_cpu(F.atoms, F.n_atoms, F.bounds, F.n_groups, F.valid, F.sq,
                                    pairs)
    assert _same(cpu_v, ref_v) and np.array_equal(cpu_b, ref_b)


@pytest.mark.sim
def test_cuda_kernel_in_simulator():
    rng = np.random.default_rng(8)
    X = rng.integers(0, 5, (4, 12)).astype(float)
    F = prepare(X)
    pairs = pair_index(4, 0, 6)
    want = kc.ccc_pairs_cpu(F.atoms, F.n_atoms, F.bounds, F.n_groups, F.valid, F.sq, pairs)
    got = kc.ccc_pairs_cuda(F.atoms, F.n_atoms, F.bounds, F.n_groups, F.valid, F.sq, pairs,
                            threads=4)
    assert _same(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.gpu
def test_gpu_backend_equals_reference():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(60, 300))
    assert _same(ccc(X, backend="gpu"), reference(X))


def test_the_reference_signature_runs_unchanged():
    """Code written for ccc-coef: its keywords and positions, n_jobs, pvalue_n_perms=None."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(5, 60))
    assert _same(ccc(X, None, [2, 5, 9]), reference(X, None, [2, 5, 9]))
    assert _same(ccc(X, internal_n_clusters=4, n_jobs=1, n_chunks_threads_ratio=2,
                     partitioning_executor="process", pvalue_n_perms=None),
                 reference(X, internal_n_clusters=4, n_jobs=1))
    got, best, parts = ccc(X[0], X[1], None, True)
    want, wbest, wparts = reference(X[0], X[1], None, True)
    assert got == want and np.array_equal(best, wbest) and np.array_equal(parts, wparts)
    with pytest.raises(InputError, match="not both"):
        ccc(X, internal_n_clusters=3, n_clusters=3)


def test_k_values_edge_cases_as_the_reference():
    from ccc.coef import get_range_n_clusters

    for n in range(0, 130):
        assert k_values(n).tolist() == get_range_n_clusters(n).tolist(), n
    for ks in ([1, 2, 3], [5], [0, 1], 4):
        want = get_range_n_clusters(50, [ks] if isinstance(ks, int) else ks).tolist()
        got = k_values(50, n_clusters=[ks] if isinstance(ks, int) else ks).tolist()
        assert got == want, ks


@pytest.mark.parametrize("n", [100_000, 1_000_000, 3_000_000])
def test_exact_ari_past_the_int64_range(n):
    """The 128-bit path (n > 50,000) equals the reference's Python-integer ARI bit for bit,
    in Python and compiled."""
    rng = np.random.default_rng(n)
    for t in range(3):
        a = rng.integers(0, 2 + t * 4, n)
        b = rng.integers(0, 3, n) if t == 2 else (a + (rng.random(n) < 0.5)) % 5
        C = np.zeros((a.max() + 1, b.max() + 1), np.int64)
        np.add.at(C, (a, b), 1)
        args = tuple(np.int64(v) for v in ((C ** 2).sum(), n, (C.sum(1) ** 2).sum(),
                                           (C.sum(0) ** 2).sum()))
        want = kc.ari_reference(a, b)
        assert kc._ari(*args) == want and kc._ari_cpu(*args) == want


def test_more_than_50000_samples_bit_for_bit():
    rng = np.random.default_rng(12)
    n = 100_000
    x = rng.normal(size=n)
    X = np.vstack([x, x ** 2 + rng.normal(size=n), rng.integers(0, 5, n).astype(float)])
    assert _same(ccc(X), reference(X))


@pytest.mark.sim
def test_cuda_kernel_past_the_int64_range_in_simulator():
    rng = np.random.default_rng(13)
    n = 60_000
    X = np.vstack([rng.integers(0, 3, n), rng.integers(0, 3, n)]).astype(float)
    X[1, : n // 2] = X[0, : n // 2]
    F = prepare(X)
    pairs = pair_index(2, 0, 1)
    want = kc.ccc_pairs_cpu(F.atoms, F.n_atoms, F.bounds, F.n_groups, F.valid, F.sq, pairs)
    got = kc.ccc_pairs_cuda(F.atoms, F.n_atoms, F.bounds, F.n_groups, F.valid, F.sq, pairs,
                            threads=4)
    assert _same(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert _same(want[0], [reference(X)])
