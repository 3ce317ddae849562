"""Ranks within each row, ties averaged (1 = smallest), as ``scipy.stats.rankdata(S,
axis=1)`` and pandas' ``DataFrame.rank(axis=1)``.

Drug repurposing turns every (tissue, k) score matrix (held traits × drugs) into ranks of the
drugs within each trait; this is that step, millions of elements at a time.

Three versions agree exactly (tests): ``row_ranks_reference`` (scipy), ``row_ranks_cpu``
(numba, parallel over rows: an argsort of the row, then one walk assigning each run of equal
values the mean of its positions) and ``row_ranks_cuda`` (the array module's argsort along
axis 1, then one thread per row walks it). Input float64 without NaN; output float64
(n_rows × n_cols).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._arrays import array_module
from ._cuda import LazyCuda

cuda = LazyCuda()  # numba.cuda is imported when a CUDA kernel is first used

THREADS = 128


# --------------------------------------------------------------------- NumPy reference
def row_ranks_reference(S: np.ndarray) -> np.ndarray:
    """The definition: scipy's average-tie ranks of each row."""
    from scipy.stats import rankdata

    return rankdata(np.asarray(S, np.float64), method="average", axis=1).astype(np.float64)


# --------------------------------------------------------------------- CPU
@njit(cache=True, inline="always")
def _walk(col, order, out_col, add):
    n = col.shape[0]
    i = 0
    while i < n:
        j = i
        v = col[order[i]]
        while j + 1 < n and col[order[j + 1]] == v:
            j += 1
        r = 0.5 * (i + j) + 1.0  # mean of 1-based positions i+1 … j+1
        for q in range(i, j + 1):
            if add:
                out_col[order[q]] += r
            else:
                out_col[order[q]] = r
        i = j + 1


@njit(parallel=True, cache=True)
def _row_ranks_cpu(S, out, add):
    for r in prange(S.shape[0]):
        row = S[r]
        _walk(row, np.argsort(row), out[r], add)


def row_ranks_cpu(S: np.ndarray, out: np.ndarray | None = None, *, add: bool = False
                  ) -> np.ndarray:
    """Numba CPU kernel. ``S``: (n_rows, n_cols) float. ``out``: write there (``add``: add
    the ranks to it, e.g. to sum ranks over several matrices without temporaries)."""
    S = np.ascontiguousarray(S, np.float64)
    if out is None:
        out = np.zeros_like(S) if add else np.empty_like(S)
    if S.size:
        _row_ranks_cpu(S, out, add)
    return out


# --------------------------------------------------------------------- CUDA
@cuda.jit
def _tie_ranks_cuda(S, order, out):
    # one thread per row; S, order, out: (n_rows, n_cols), order sorted along axis 1
    r = cuda.grid(1)
    n = S.shape[1]
    if r >= S.shape[0]:
        return
    i = 0
    while i < n:
        j = i
        v = S[r, order[r, i]]
        while j + 1 < n and S[r, order[r, j + 1]] == v:
            j += 1
        rank = 0.5 * (i + j) + 1.0
        for q in range(i, j + 1):
            out[r, order[r, q]] = rank
        i = j + 1


def row_ranks_cuda(S, threads: int = THREADS):
    """CUDA: argsort along axis 1 with the array module (cupy on the GPU, NumPy in the
    simulator), then one thread per row assigns average ranks."""
    xp = array_module(S)
    S = xp.ascontiguousarray(S, dtype=xp.float64)
    order = xp.ascontiguousarray(xp.argsort(S, axis=1)).astype(xp.int64)  # ties: any order
    out = xp.empty_like(S)
    if S.size:
        _tie_ranks_cuda[-(-S.shape[0] // threads), threads](S, order, out)
    return out


CUDA_SIGNATURES = {"_tie_ranks_cuda": ["void(float64[:, ::1], int64[:, ::1], float64[:, ::1])"]}
