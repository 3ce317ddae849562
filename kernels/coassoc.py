"""Co-association (evidence accumulation) distance of an ensemble of partitions.

For objects i, j and an ensemble of P partitions with labels ``L`` (n objects × P, int16;
−1 = missing, e.g. DBSCAN noise or an object a member did not label):

    D_ij = #{p : L_ip ≥ 0, L_jp ≥ 0, L_ip ≠ L_jp} / #{p : L_ip ≥ 0, L_jp ≥ 0},

NaN where no partition labels both. Output: the
condensed upper triangle in ``squareform`` order (float64), as the reference's EAC code
feeds to ``scipy.cluster.hierarchy.linkage``.

Three versions agree (tests): ``coassoc_reference`` (NumPy, one object row at a time),
``coassoc_cpu`` (numba, parallel over rows; the inner loop over partitions is contiguous
and vectorizes) and ``coassoc_cuda`` (one thread per pair).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._arrays import array_module
from ._cuda import LazyCuda

cuda = LazyCuda()  # numba.cuda is imported when a CUDA kernel is first used

THREADS = 256


def _row_start(i, n):
    return i * (2 * n - i - 1) // 2


# --------------------------------------------------------------------- NumPy reference
def coassoc_reference(L: np.ndarray) -> np.ndarray:
    """The definition with NumPy, one row of pairs at a time."""
    n = L.shape[0]
    out = np.empty(n * (n - 1) // 2)
    ok = L >= 0
    for i in range(n - 1):
        both = ok[i] & ok[i + 1:]
        diff = both & (L[i] != L[i + 1:])
        nb = both.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[_row_start(i, n):_row_start(i + 1, n)] = np.where(
                nb > 0, diff.sum(1) / np.where(nb > 0, nb, 1), np.nan)
    return out


# --------------------------------------------------------------------- CPU
@njit(parallel=True, cache=True)
def _coassoc_cpu(L, out):
    n, P = L.shape
    for i in prange(n - 1):
        base = i * (2 * n - i - 1) // 2 - i - 1
        Li = L[i]
        for j in range(i + 1, n):
            Lj = L[j]
            both = 0
            diff = 0
            for p in range(P):
                a = Li[p]
                b = Lj[p]
                m = (a >= 0) & (b >= 0)
                both += m
                diff += m & (a != b)
            out[base + j] = diff / both if both > 0 else np.nan


def coassoc_cpu(L: np.ndarray) -> np.ndarray:
    """Numba CPU kernel (parallel over rows). ``L``: (n, P) int16, C-contiguous."""
    n = L.shape[0]
    out = np.empty(n * (n - 1) // 2)
    if n > 1:
        _coassoc_cpu(np.ascontiguousarray(L, np.int16), out)
    return out


# --------------------------------------------------------------------- CUDA
@cuda.jit
def _coassoc_cuda(L, out):
    n = L.shape[0]
    P = L.shape[1]
    total = n * (n - 1) // 2
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for q in range(start, total, stride):
        # row i of condensed index q: the largest i with row_start(i) ≤ q
        i = int((2 * n - 1 - math.sqrt((2.0 * n - 1) ** 2 - 8.0 * q)) // 2)
        while i > 0 and i * (2 * n - i - 1) // 2 > q:
            i -= 1
        while (i + 1) * (2 * n - i - 2) // 2 <= q:
            i += 1
        j = q - i * (2 * n - i - 1) // 2 + i + 1
        both = 0
        diff = 0
        for p in range(P):
            a = L[i, p]
            b = L[j, p]
            if a >= 0 and b >= 0:
                both += 1
                if a != b:
                    diff += 1
        out[q] = diff / both if both > 0 else math.nan


def coassoc_cuda(L, threads: int = THREADS) -> object:
    """CUDA kernel, one thread per pair (grid-stride). ``L`` cupy (or NumPy in the
    simulator) (n, P) int16."""
    xp = array_module(L)
    n = L.shape[0]
    total = n * (n - 1) // 2
    out = xp.empty(total, dtype=xp.float64)
    if total:
        blocks = min(65535, -(-total // threads))
        _coassoc_cuda[blocks, threads](L, out)
    return out


CUDA_SIGNATURES = {"_coassoc_cuda": ["void(int16[:, ::1], float64[::1])"]}
