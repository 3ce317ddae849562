"""Segmented Gram kernel: NumPy reference == numba CPU == CUDA (simulator here, the device in
the gpu tier), and PTX compilation."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_engine.kernels import twas as kt

from .conftest import HAS_CUPY, HAS_GPU


def _inputs(rng, n, m):
    n = np.asarray(n, np.int64)
    m = np.asarray(m, np.int64)
    cov_off, w_off, out_off = kt.pack_offsets(n, m)
    blocks = []
    for k in n:
        A = rng.normal(size=(k, k + 2))
        blocks.append((A @ A.T).ravel())
    cov = np.concatenate(blocks) if blocks else np.zeros(0)
    W = rng.normal(size=int((n * m).sum()))
    W[rng.uniform(size=W.size) < 0.3] = 0.0  # SNPs absent from a model
    out = np.full(int((m * m).sum()), np.nan)
    return cov, cov_off, W, w_off, n, m, out_off, out


def test_reference_is_the_quadratic_form():
    rng = np.random.default_rng(0)
    cov, cov_off, W, w_off, n, m, out_off, out = _inputs(rng, [3, 5, 0, 1], [2, 1, 3, 4])
    kt.segmented_gram_reference(cov, cov_off, W, w_off, n, m, out_off, out)
    for g in range(4):
        G = cov[cov_off[g]:cov_off[g] + n[g] ** 2].reshape(n[g], n[g])
        Wg = W[w_off[g]:w_off[g] + n[g] * m[g]].reshape(n[g], m[g])
        want = np.array([[sum(Wg[i, a] * G[i, j] * Wg[j, b] for i in range(n[g])
                              for j in range(n[g])) for b in range(m[g])] for a in range(m[g])])
        np.testing.assert_allclose(out[out_off[g]:out_off[g] + m[g] ** 2].reshape(m[g], m[g]),
                                   want.reshape(m[g], m[g]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [1, 2])
def test_cpu_equals_reference(seed):
    rng = np.random.default_rng(seed)
    n = rng.integers(0, 40, 30)
    m = rng.integers(1, 12, 30)
    args = _inputs(rng, n, m)
    ref = kt.segmented_gram_reference(*args[:-1], args[-1].copy())
    got = kt.segmented_gram_cpu(*args[:-1], args[-1].copy())
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-10)


@pytest.mark.sim
def test_cuda_equals_reference_in_simulator():
    rng = np.random.default_rng(3)
    args = _inputs(rng, [4, 3, 0, 2], [2, 1, 2, 3])
    ref = kt.segmented_gram_reference(*args[:-1], args[-1].copy())
    got = kt.segmented_gram_cuda(*args[:-1], args[-1].copy(), threads=4)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_GPU and HAS_CUPY), reason="needs a GPU")
def test_cuda_on_device_equals_cpu():
    import cupy as cp

    rng = np.random.default_rng(4)
    n = rng.integers(0, 120, 3000)
    m = rng.integers(1, 49, 3000)
    args = _inputs(rng, n, m)
    ref = kt.segmented_gram_cpu(*args[:-1], args[-1].copy())
    d = [cp.asarray(a) for a in args]
    got = cp.asnumpy(kt.segmented_gram_cuda(*d))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-9)
