"""Top-k drug scores: numba CPU and CUDA (simulator) kernels == the per-trait definition;
the CUDA kernel compiles to PTX."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_engine.kernels import topk as kt


def _inputs(rng, T=7, G=40, n_drugs=11, kmax=12):
    Z = rng.normal(size=(T, G))
    D = rng.normal(size=(G, n_drugs))
    order = np.argsort(-np.abs(Z), axis=1, kind="stable")[:, :kmax]
    return Z, order, D, np.array([1, kmax // 2, kmax])


def test_cpu_kernel_equals_definition():
    Z, order, D, ks = _inputs(np.random.default_rng(0))
    want = kt.topk_scores_reference(Z, order, D, ks)
    np.testing.assert_allclose(kt.topk_scores_cpu(Z, order, D, ks), want, rtol=1e-12, atol=1e-12)
    # k = all features is the full negative dot product
    full = np.argsort(-np.abs(Z), axis=1)
    np.testing.assert_allclose(kt.topk_scores_cpu(Z, full, D, [Z.shape[1]])[0], -(Z @ D),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.sim
def test_cuda_kernel_in_simulator():
    Z, order, D, ks = _inputs(np.random.default_rng(1), T=3, G=10, n_drugs=5, kmax=4)
    np.testing.assert_allclose(kt.topk_scores_cuda(Z, order, D, ks, threads=4),
                               kt.topk_scores_reference(Z, order, D, ks), rtol=1e-12, atol=1e-12)



@pytest.mark.gpu
def test_cuda_kernel_on_gpu():
    import cupy as cp

    Z, order, D, ks = _inputs(np.random.default_rng(2), T=200, G=3000, n_drugs=1170, kmax=500)
    got = cp.asnumpy(kt.topk_scores_cuda(*(cp.asarray(a) for a in (Z, order, D)), ks))
    np.testing.assert_allclose(got, kt.topk_scores_cpu(Z, order, D, ks), rtol=1e-10, atol=1e-10)


def test_gather_traits_equals_numpy_in_both_memory_orders():
    rng = np.random.default_rng(4)
    v = rng.normal(size=(30, 8)).astype(np.float32)
    v[3, 2] = np.nan
    v[5, 1] = np.inf
    rows, cols = np.array([7, 3, 0, 29, 5]), np.array([2, -1, 0, 1, 7])
    want = v[rows][:, np.maximum(cols, 0)].T.astype(np.float64)
    want[cols < 0] = 0.0
    want[~np.isfinite(want)] = 0.0
    for arr in (v, np.asfortranarray(v)):
        np.testing.assert_array_equal(kt.gather_traits_cpu(arr, rows, cols), want)


def test_top_order_kernel_equals_the_numpy_definition():
    from gpu_engine.drugs import top_order

    rng = np.random.default_rng(5)
    for _ in range(30):
        Z = np.round(rng.normal(size=(6, 40)), 1)  # many |z| ties, signs mixed
        k = int(rng.integers(1, 40))
        np.testing.assert_array_equal(kt.top_order_cpu(Z, k), top_order(np.abs(Z), k))
