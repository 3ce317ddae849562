"""Row ranks (average ties): numba CPU and CUDA (simulator) kernels == scipy exactly; the
CUDA kernel compiles to PTX."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpu_engine.kernels import ranks as kr


def _scores(rng, n=25, m=60):
    S = rng.normal(size=(n, m))
    S[3] = 0.0                             # a row of ties only
    S[5, ::4] = S[5, 1]                    # many ties in one row
    S[7] = np.round(S[7], 1)               # ties everywhere
    S[:, 10] = S[:, 11]                    # two columns tied in every row
    return S


def test_reference_is_pandas_rank():
    S = _scores(np.random.default_rng(0))
    want = pd.DataFrame(S).rank(axis=1).to_numpy()
    np.testing.assert_array_equal(kr.row_ranks_reference(S), want)


def test_cpu_kernel_equals_reference_exactly():
    rng = np.random.default_rng(1)
    for shape in [(25, 60), (4, 1), (3, 300)]:
        S = _scores(rng, *shape) if shape[0] > 7 else rng.integers(0, 5, shape).astype(float)
        np.testing.assert_array_equal(kr.row_ranks_cpu(S), kr.row_ranks_reference(S))
    assert kr.row_ranks_cpu(np.empty((3, 0))).shape == (3, 0)
    S = _scores(rng)
    acc = np.ones_like(S)
    kr.row_ranks_cpu(S, out=acc, add=True)  # accumulate into a buffer
    np.testing.assert_array_equal(acc, 1.0 + kr.row_ranks_reference(S))


@pytest.mark.sim
def test_cuda_kernel_in_simulator():
    S = _scores(np.random.default_rng(2), n=9, m=12)
    np.testing.assert_array_equal(kr.row_ranks_cuda(S, threads=4),
                                  kr.row_ranks_reference(S))



@pytest.mark.gpu
def test_cuda_kernel_on_gpu():
    import cupy as cp

    S = _scores(np.random.default_rng(3), n=300, m=1170)
    got = cp.asnumpy(kr.row_ranks_cuda(cp.asarray(S)))
    np.testing.assert_array_equal(got, kr.row_ranks_reference(S))
