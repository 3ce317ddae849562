"""Row standardization: ``(x - mean(x)) / sd(x, ddof)`` for every row of a matrix.

This is R's ``scale``/PLIER's ``rowNorm`` (ddof = 1) and the z-scoring of PhenoPLIER's GLS
(ddof = 1). Input ``X``: rows × columns, float32 or float64, C-contiguous. Outputs: the
standardized matrix (same dtype), and per-row ``mean`` and ``sd`` (float64). Sums are
accumulated in float64 whatever the input dtype. A row with zero variance gives NaN in the
output and ``sd == 0``; a row with NaN gives NaN; callers turn either into a clear error.
"""

from __future__ import annotations

import math

import numpy as np
from numba import float64, njit, prange

from ._cuda import LazyCuda

cuda = LazyCuda()  # numba.cuda is imported when a CUDA kernel is first used


THREADS_PER_BLOCK = 128  # power of two (tree reduction)


def standardize_rows_reference(X: np.ndarray, ddof: int = 1):
    """The definition, in NumPy. Returns ``(Z, mean, sd)``."""
    X = np.asarray(X)
    mean = X.mean(axis=1, dtype=np.float64)
    sd = X.std(axis=1, ddof=ddof, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        Z = ((X - mean[:, None]) / sd[:, None]).astype(X.dtype, copy=False)
    return Z, mean, sd


@njit(parallel=True, cache=True)
def _standardize_rows_cpu(X, ddof, out, mean, sd):
    n_rows, n = X.shape
    for i in prange(n_rows):
        s = 0.0
        for j in range(n):
            s += X[i, j]
        m = s / n
        s2 = 0.0
        for j in range(n):
            d = X[i, j] - m
            s2 += d * d
        v = math.sqrt(s2 / (n - ddof)) if n - ddof > 0 else np.nan
        mean[i] = m
        sd[i] = v
        inv = 1.0 / v if v > 0 else np.nan
        for j in range(n):
            out[i, j] = (X[i, j] - m) * inv


def standardize_rows_cpu(X: np.ndarray, ddof: int = 1):
    """Numba CPU kernel, parallel over rows. Returns ``(Z, mean, sd)``."""
    X = np.ascontiguousarray(X)
    out = np.empty_like(X)
    mean = np.empty(X.shape[0], np.float64)
    sd = np.empty(X.shape[0], np.float64)
    _standardize_rows_cpu(X, ddof, out, mean, sd)
    return out, mean, sd


@cuda.jit(device=True, inline="always")
def _block_sum(buf, tid, value):
    """Sum ``value`` over the block's threads (tree reduction in shared ``buf``); every thread
    gets the total. Ends with a barrier, so ``buf`` may be reused right after."""
    buf[tid] = value
    cuda.syncthreads()
    step = THREADS_PER_BLOCK // 2
    while step > 0:
        if tid < step:
            buf[tid] += buf[tid + step]
        cuda.syncthreads()
        step //= 2
    total = buf[0]
    cuda.syncthreads()
    return total


@cuda.jit
def _standardize_rows_cuda(X, ddof, out, mean, sd):
    # one block per row (grid-stride over rows); threads stride over the row's columns and
    # reduce their partial sums in shared memory.
    tid = cuda.threadIdx.x
    n_rows = X.shape[0]
    n = X.shape[1]
    buf = cuda.shared.array(THREADS_PER_BLOCK, dtype=np.float64)
    for i in range(cuda.blockIdx.x, n_rows, cuda.gridDim.x):
        s = 0.0
        for j in range(tid, n, THREADS_PER_BLOCK):
            s += float64(X[i, j])  # accumulate in float64 (explicit, so the simulator does too)
        m = _block_sum(buf, tid, s) / n
        s2 = 0.0
        for j in range(tid, n, THREADS_PER_BLOCK):
            d = float64(X[i, j]) - m
            s2 += d * d
        ss = _block_sum(buf, tid, s2)
        v = math.sqrt(ss / (n - ddof)) if n - ddof > 0 else math.nan
        inv = 1.0 / v if v > 0 else math.nan
        for j in range(tid, n, THREADS_PER_BLOCK):
            out[i, j] = (X[i, j] - m) * inv
        if tid == 0:
            mean[i] = m
            sd[i] = v


def standardize_rows_cuda(X, ddof: int = 1, *, max_blocks: int = 65535):
    """Launch the CUDA kernel. ``X`` is a cupy/device array (or NumPy in the simulator).

    Returns ``(Z, mean, sd)`` as arrays of the same kind as ``X``.
    """
    if type(X).__module__.startswith("cupy"):
        import cupy as xp
    else:
        xp = np
    X = xp.ascontiguousarray(X)
    out = xp.empty_like(X)
    mean = xp.empty(X.shape[0], xp.float64)
    sd = xp.empty(X.shape[0], xp.float64)
    if X.shape[0]:
        blocks = min(X.shape[0], max_blocks)
        _standardize_rows_cuda[blocks, THREADS_PER_BLOCK](X, ddof, out, mean, sd)
    return out, mean, sd


CUDA_SIGNATURES = {
    "_standardize_rows_cuda": [
        "void(float64[:, ::1], int64, float64[:, ::1], float64[::1], float64[::1])",
        "void(float32[:, ::1], int64, float32[:, ::1], float64[::1], float64[::1])",
    ],
}
