"""Top-k drug scores: for every trait, the negative dot product of each drug's signature with
the trait's signed z restricted to its k strongest genes (or LVs), for several k at once.

    out[l, t, d] = − Σ_{q < ks[l]} Z[t, order[t, q]] · D[order[t, q], d]

``Z``: traits × features (float64), ``order``: traits × k_max feature indices, each trait's
features by priority (largest |z| first), ``D``: features × drugs (float64), ``ks``: ascending
int64. Because the k are prefixes of one order, the sums are accumulated once up to k_max and
read off at each k.

Three versions agree (tests, to rounding): ``topk_scores_reference`` (NumPy, one trait and
one k at a time, the definition), ``topk_scores_cpu`` (numba, parallel over traits) and
``topk_scores_cuda`` (one block per trait, its threads over drugs).

``gather_traits_cpu`` builds ``Z`` from a tissue's genes × traits values on the CPU in one
parallel pass (row subset, column order, transpose, float64, non-finite → 0); NumPy's fancy
indexing and transposes take ~15× longer at 6,400 × 4,091. The GPU path does the same with
cupy indexing.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._arrays import array_module
from ._cuda import LazyCuda

cuda = LazyCuda()  # numba.cuda is imported when a CUDA kernel is first used

THREADS = 128


# --------------------------------------------------------------------- NumPy reference
def topk_scores_reference(Z, order, D, ks) -> np.ndarray:
    """The definition, one trait and one k at a time."""
    T, n_drugs = Z.shape[0], D.shape[1]
    out = np.empty((len(ks), T, n_drugs))
    for t in range(T):
        for i, k in enumerate(ks):
            sel = order[t, :k]
            out[i, t] = -(Z[t, sel] @ D[sel])
    return out


# --------------------------------------------------------------------- CPU
@njit(parallel=True, cache=True)
def _gather_traits_cpu(v, rows, cols, traits_major, out):
    for t in prange(cols.shape[0]):
        c = cols[t]
        for j in range(rows.shape[0]):
            if c < 0:
                out[t, j] = 0.0
                continue
            x = np.float64(v[c, rows[j]] if traits_major else v[rows[j], c])
            out[t, j] = x if np.isfinite(x) else 0.0


def gather_traits_cpu(v: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                      out: np.ndarray | None = None) -> np.ndarray:
    """``out[t, j] = v[rows[j], cols[t]]`` as float64 with non-finite values set to 0;
    ``cols[t] = −1`` gives a row of zeros (a trait the tissue lacks). traits × genes. ``v``
    genes × traits in either memory order (pandas often holds it column-major); ``out``: a
    buffer to write into."""
    if out is None:
        out = np.empty((len(cols), len(rows)))
    cols = np.asarray(cols, np.int64)
    if len(cols) and len(rows):
        traits_major = not v.flags.c_contiguous and v.T.flags.c_contiguous
        src = v.T if traits_major else np.ascontiguousarray(v)
        _gather_traits_cpu(src, np.asarray(rows, np.int64), cols, traits_major, out)
    return out


@njit(parallel=True, cache=True)
def _topk_scores_cpu(Z, order, D, ks, out):
    T = Z.shape[0]
    n_drugs = D.shape[1]
    for t in prange(T):
        acc = np.zeros(n_drugs)
        q = 0
        for i in range(ks.shape[0]):
            while q < ks[i]:
                g = order[t, q]
                z = Z[t, g]
                for d in range(n_drugs):
                    acc[d] += z * D[g, d]
                q += 1
            for d in range(n_drugs):
                out[i, t, d] = -acc[d]


def topk_scores_cpu(Z, order, D, ks, out=None) -> np.ndarray:
    """Numba CPU kernel (parallel over traits). ``out``: a len(ks) × traits × drugs buffer
    to write into."""
    ks = np.ascontiguousarray(ks, np.int64)
    if out is None:
        out = np.empty((len(ks), Z.shape[0], D.shape[1]))
    if out.size:
        _topk_scores_cpu(np.ascontiguousarray(Z, np.float64), np.ascontiguousarray(order, np.int64),
                         np.ascontiguousarray(D, np.float64), ks, out)
    return out


@njit(cache=True)
def _kth_smallest(a, r):
    """The r-th smallest value (0-based) of ``a``, which is reordered: Hoare quickselect with
    a median-of-three pivot. Written out because ``np.partition`` costs ~10 s of first-run
    compilation in Numba, this loop well under one."""
    lo, hi = 0, a.size - 1
    while lo < hi:
        mid = (lo + hi) // 2
        x, y, z = a[lo], a[mid], a[hi]
        pivot = max(min(x, y), min(max(x, y), z))
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if r <= j:
            hi = j
        elif r >= i:
            lo = i
        else:
            return a[r]
    return a[r]


@njit(parallel=True, cache=True)
def _top_order_cpu(Z, k, out):
    n = Z.shape[1]
    for t in prange(Z.shape[0]):
        a = np.abs(Z[t])
        thr = _kth_smallest(a.copy(), n - k)  # the k-th largest |z|
        n_gt = 0
        for g in range(n):
            if a[g] > thr:
                n_gt += 1
        room = k - n_gt  # how many of the values equal to thr fit, first listed first
        idx = np.empty(k, np.int64)
        q = 0
        for g in range(n):
            if a[g] > thr or (a[g] == thr and room > 0):
                if a[g] == thr:
                    room -= 1
                idx[q] = g
                q += 1
        o = np.argsort(-a[idx], kind="mergesort")  # stable: equal |z| keep feature order
        for i in range(k):
            out[t, i] = idx[o[i]]


def top_order_cpu(Z: np.ndarray, k: int) -> np.ndarray:
    """Per row of ``Z``, the indices of its ``k`` largest |values|, largest first, equal
    values in feature order (``k`` < features). Numba, parallel over rows, no temporaries
    beyond one row; equals ``gpu_engine.drugs.top_order(np.abs(Z), k)`` (tested)."""
    out = np.empty((Z.shape[0], k), np.int64)
    if out.size:
        _top_order_cpu(np.ascontiguousarray(Z, np.float64), k, out)
    return out


# --------------------------------------------------------------------- CUDA
@cuda.jit
def _topk_scores_cuda(Z, order, D, ks, out):
    t = cuda.blockIdx.x
    n_drugs = D.shape[1]
    for d in range(cuda.threadIdx.x, n_drugs, cuda.blockDim.x):
        acc = 0.0
        q = 0
        for i in range(ks.shape[0]):
            while q < ks[i]:
                g = order[t, q]
                acc += Z[t, g] * D[g, d]
                q += 1
            out[i, t, d] = -acc


def topk_scores_cuda(Z, order, D, ks, threads: int = THREADS):
    """CUDA kernel: one block per trait, threads over drugs (reads of D rows coalesced).
    Arrays: cupy on the GPU, NumPy in the simulator."""
    xp = array_module(Z)
    ks = xp.asarray(ks, dtype=xp.int64)
    out = xp.empty((len(ks), Z.shape[0], D.shape[1]), dtype=xp.float64)
    if out.size:
        _topk_scores_cuda[Z.shape[0], threads](
            xp.ascontiguousarray(Z, dtype=xp.float64), xp.ascontiguousarray(order, dtype=xp.int64),
            xp.ascontiguousarray(D, dtype=xp.float64), ks, out)
    return out


CUDA_SIGNATURES = {"_topk_scores_cuda": [
    "void(float64[:, ::1], int64[:, ::1], float64[:, ::1], int64[::1], float64[:, :, ::1])"]}
