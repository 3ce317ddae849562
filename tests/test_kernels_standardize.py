"""Row standardization: NumPy reference == numba CPU kernel == CUDA kernel (simulator or GPU)."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_engine.kernels import standardize as k

SHAPES = [(1, 5), (7, 3), (5, 127), (4, 128), (3, 300)]


def _data(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    X = rng.lognormal(0, 1, shape).astype(dtype)
    return X


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ddof", [0, 1])
def test_cpu_kernel_equals_reference(shape, dtype, ddof):
    X = _data(shape, dtype)
    Zr, mr, sr = k.standardize_rows_reference(X, ddof)
    Zc, mc, sc = k.standardize_rows_cpu(X, ddof)
    assert Zc.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(mc, mr, rtol=1e-13)
    np.testing.assert_allclose(sc, sr, rtol=1e-12)
    np.testing.assert_allclose(Zc, Zr, rtol=tol, atol=tol)
    if shape[1] > 1:
        np.testing.assert_allclose(Zc.astype(np.float64).std(axis=1, ddof=ddof), 1, rtol=1e-5)


@pytest.mark.sim
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_kernel_equals_reference(shape, dtype):
    X = _data(shape, dtype)
    Zr, mr, sr = k.standardize_rows_reference(X, 1)
    Zg, mg, sg = k.standardize_rows_cuda(X, 1)
    Zg, mg, sg = (a.get() if hasattr(a, "get") else np.asarray(a) for a in (Zg, mg, sg))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(mg, mr, rtol=1e-13)
    np.testing.assert_allclose(sg, sr, rtol=1e-12)
    np.testing.assert_allclose(Zg, Zr, rtol=tol, atol=tol)


@pytest.mark.sim
def test_cuda_kernel_grid_stride_covers_all_rows():
    X = _data((9, 10), np.float64)
    Zg, _, _ = k.standardize_rows_cuda(X, 1, max_blocks=2)  # fewer blocks than rows
    np.testing.assert_allclose(np.asarray(Zg), k.standardize_rows_reference(X, 1)[0], rtol=1e-12)


@pytest.mark.sim
def test_constant_row_gives_nan_and_zero_sd_everywhere():
    X = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]])
    for fn in (k.standardize_rows_reference, k.standardize_rows_cpu, k.standardize_rows_cuda):
        Z, m, s = fn(X, 1)
        Z, s = np.asarray(Z), np.asarray(s)
        assert s[1] == 0 and np.isnan(Z[1]).all() and np.isfinite(Z[0]).all(), fn.__name__
