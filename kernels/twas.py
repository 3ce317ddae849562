"""TWAS kernel: many small quadratic forms WᵀΓW at once, one per gene (segmented Gram).

S-PrediXcan's var_g = wᵀΓw, S-MultiXcan's tissue covariance WᵀΓW and the per-gene tissue
correlation of the gene–gene correlation matrix are all the same computation over thousands
of genes whose SNP blocks differ in size. They are packed into flat, ragged buffers:

- ``cov`` (float64): gene g's dense symmetric covariance block Γ_g (n_g × n_g, row-major)
  at ``cov_off[g]``;
- ``W`` (float64): gene g's weight matrix (n_g × m_g, row-major, one column per tissue or
  model, zero where a SNP is not in that model) at ``w_off[g]``;
- ``out`` (float64): gene g's result WᵀΓW (m_g × m_g, row-major) at ``out_off[g]``.

``n`` and ``m`` (int64) give each gene's SNP and column counts. A gene with n_g = 0 gets a
zero block. Cost per gene: n²m + nm² multiply-adds.

Three versions agree (tests): ``segmented_gram_reference`` (NumPy, per gene), ``_cpu``
(numba, parallel over genes) and ``_cuda`` (one thread block per gene: ΓW into a scratch
buffer, then Wᵀ(ΓW)).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._arrays import array_module
from ._cuda import LazyCuda

cuda = LazyCuda()  # numba.cuda is imported when a CUDA kernel is first used

THREADS = 128


def pack_offsets(n: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (int64, one per gene) of the Γ, W and output blocks for sizes ``n``, ``m``."""
    n = np.asarray(n, np.int64)
    m = np.asarray(m, np.int64)

    def starts(sizes):
        out = np.zeros(sizes.size, np.int64)
        np.cumsum(sizes[:-1], out=out[1:])
        return out

    return starts(n * n), starts(n * m), starts(m * m)


# --------------------------------------------------------------------- NumPy reference
def segmented_gram_reference(cov, cov_off, W, w_off, n, m, out_off, out):
    """The definition, one gene at a time with NumPy. Fills ``out`` in place."""
    for g in range(len(n)):
        ng, mg = int(n[g]), int(m[g])
        G = cov[cov_off[g]:cov_off[g] + ng * ng].reshape(ng, ng)
        Wg = W[w_off[g]:w_off[g] + ng * mg].reshape(ng, mg)
        out[out_off[g]:out_off[g] + mg * mg] = (Wg.T @ G @ Wg).ravel()
    return out


# --------------------------------------------------------------------- CPU
@njit(parallel=True, cache=True)
def _segmented_gram_cpu(cov, cov_off, W, w_off, n, m, out_off, out):
    for g in prange(n.shape[0]):
        ng = n[g]
        mg = m[g]
        c0 = cov_off[g]
        w0 = w_off[g]
        o0 = out_off[g]
        tmp = np.zeros((ng, mg))
        for i in range(ng):
            for j in range(ng):
                gij = cov[c0 + i * ng + j]
                if gij != 0.0:
                    for b in range(mg):
                        tmp[i, b] += gij * W[w0 + j * mg + b]
        for a in range(mg):
            for b in range(mg):
                acc = 0.0
                for i in range(ng):
                    acc += W[w0 + i * mg + a] * tmp[i, b]
                out[o0 + a * mg + b] = acc


def segmented_gram_cpu(cov, cov_off, W, w_off, n, m, out_off, out):
    """Numba CPU kernel, parallel over genes. Fills ``out`` in place."""
    if len(n):
        _segmented_gram_cpu(cov, cov_off, W, w_off, n, m, out_off, out)
    return out


# --------------------------------------------------------------------- CUDA
@cuda.jit
def _segmented_gram_cuda(cov, cov_off, W, w_off, n, m, out_off, out, scratch):
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    for g in range(cuda.blockIdx.x, n.shape[0], cuda.gridDim.x):
        ng = n[g]
        mg = m[g]
        c0 = cov_off[g]
        w0 = w_off[g]
        o0 = out_off[g]
        for e in range(tid, ng * mg, nt):  # scratch = Γ W
            i = e // mg
            b = e - i * mg
            acc = 0.0
            for j in range(ng):
                acc += cov[c0 + i * ng + j] * W[w0 + j * mg + b]
            scratch[w0 + e] = acc
        cuda.syncthreads()
        for e in range(tid, mg * mg, nt):  # out = Wᵀ (Γ W)
            a = e // mg
            b = e - a * mg
            acc = 0.0
            for i in range(ng):
                acc += W[w0 + i * mg + a] * scratch[w0 + i * mg + b]
            out[o0 + e] = acc
        cuda.syncthreads()


def segmented_gram_cuda(cov, cov_off, W, w_off, n, m, out_off, out, threads: int | None = None):
    """CUDA kernel, one thread block per gene (grid-stride beyond 65,535 genes). Arrays are
    cupy (or NumPy in the simulator); fills ``out`` in place."""
    if not len(n):
        return out
    xp = array_module(W)
    scratch = xp.empty_like(W)
    if threads is None:
        threads = 32 if int(W.size) <= 32 * max(len(n), 1) else THREADS
    _segmented_gram_cuda[min(len(n), 65535), threads](cov, cov_off, W, w_off, n, m, out_off,
                                                       out, scratch)
    return out



CUDA_SIGNATURES = {
    "_segmented_gram_cuda": [
        "void(float64[::1], int64[::1], float64[::1], int64[::1], int64[::1], int64[::1], "
        "int64[::1], float64[::1], float64[::1])"],
}
