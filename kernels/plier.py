"""Many small elastic nets by covariance-form coordinate descent: PLIER's U step (non-negative,
one shared Gram matrix) and the PredictDB elastic net of :mod:`gpu_engine.expression` (signed,
one Gram matrix per problem).

For every LV ``i`` the U step solves (glmnet's objective with an intercept; the intercept is
removed by centering, so only centered quantities appear)::

    min_{u ≥ 0}  ½ uᵀ G_i u − c_iᵀ u + l1·‖u‖₁ + ½ l2·‖u‖²

over the LV's candidate pathways ``idx[i, :m_i]``, where ``G`` (P × P) is the centered Gram
matrix of the prior divided by the number of genes n (optionally standardized) and
``c[:, i]`` the centered cross product of the prior with Z's column i, also divided by n.
``l1[i] = λ·α`` and ``l2[i] = λ·(1 − α)`` (per LV, so that callers can rescale the problem
per LV as glmnet does). That is exactly scikit-learn's
``ElasticNet(alpha=λ, l1_ratio=α, positive=True, fit_intercept=True)``.

Solved by cyclic coordinate descent that keeps the gradient ``r = c − G u`` up to date
(an update of coordinate a costs O(m)), warm-started from ``u`` (the previous λ or
iteration), until the largest coordinate change in a sweep is at most ``tol`` times the
largest coefficient. The problem is strictly convex (l2 > 0), so the solution does not depend
on the start.

Arrays: ``G`` P × P float64 (shared by every problem) or g × P × P (problem i uses
``G[gsel[i]]``), ``c`` P × k float64, ``idx`` k × m int64 (candidate pathway indices, valid
entries first, −1 padding), ``u`` k × m float64 (warm start in, solution out, aligned with
``idx``), ``l1``/``l2`` float64 (k). ``positive=False`` drops the constraint u ≥ 0 (the
update soft-thresholds; the stopping rule then uses the largest |u|). Returns the number of
sweeps per problem (int64, k).

- :func:`enet_cd_reference`: NumPy, one LV at a time — the definition.
- :func:`enet_cd_cpu`: numba, parallel over LVs.
- :func:`enet_cd_cuda`: one thread block per LV; thread 0 makes each coordinate's update and
  all threads update the gradient.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._arrays import array_module
from ._cuda import LazyCuda

cuda = LazyCuda()  # numba.cuda is imported when a CUDA kernel is first used

THREADS = 128


def _n_valid(idx_row) -> int:
    m = 0
    while m < idx_row.shape[0] and idx_row[m] >= 0:
        m += 1
    return m


def _coordinate(grad, old, gaa, l1, l2, positive):
    """One coordinate's minimizer given the gradient ``grad = c_a − (G u)_a`` at the current
    point: S(grad + G_aa·u_a, l1) / (G_aa + l2), with S the soft threshold (``positive``:
    its non-negative half, max(z − l1, 0)); 0 for an all-zero column."""
    den = gaa + l2
    if den > 0.0:
        z = grad + gaa * old
        if z > l1:
            return (z - l1) / den
        if z < -l1 and not positive:
            return (z + l1) / den
    return 0.0


_coordinate_cpu = njit(cache=True)(_coordinate)
_coordinate_cuda = cuda.jit(device=True, inline="always")(_coordinate)


# --------------------------------------------------------------------- reference
def _grams(xp, G, gsel, k):
    """(g × P × P Gram stack, int64 problem → Gram index) from either layout of ``G``."""
    if G.ndim == 2:
        return G[None], xp.zeros(k, xp.int64)
    if gsel is None:
        gsel = xp.arange(k, dtype=xp.int64)
    return G, xp.ascontiguousarray(xp.asarray(gsel, dtype=xp.int64))


def enet_cd_reference(G, c, idx, l1, l2, u, tol=1e-10, max_sweeps=100_000, *,
                      positive=True, gsel=None):
    """NumPy definition (see the module docstring). Updates ``u`` in place; returns sweeps."""
    k = idx.shape[0]
    l1, l2 = _vec(np, l1, k), _vec(np, l2, k)
    G, gsel = _grams(np, np.asarray(G), gsel, k)
    sweeps = np.zeros(k, np.int64)
    for i in range(k):
        m = _n_valid(idx[i])
        cand = idx[i, :m]
        Gi = G[gsel[i]][np.ix_(cand, cand)]
        ui = u[i, :m].copy()
        for s in range(1, max_sweeps + 1):
            maxd = 0.0
            for a in range(m):
                grad = c[cand[a], i] - Gi[a] @ ui
                new = _coordinate(grad, ui[a], Gi[a, a], l1[i], l2[i], positive)
                maxd = max(maxd, abs(new - ui[a]))
                ui[a] = new
            sweeps[i] = s
            if maxd <= tol * max(np.max(np.abs(ui), initial=0.0), 1e-300):
                break
        u[i, :m] = ui
        u[i, m:] = 0.0
    return sweeps


# --------------------------------------------------------------------- numba CPU
@njit(parallel=True, cache=True)
def _enet_cd_cpu(G3, gsel, c, idx, l1, l2, u, r, tol, max_sweeps, positive, sweeps):
    k, M = idx.shape
    for i in prange(k):
        G = G3[gsel[i]]
        m = 0
        while m < M and idx[i, m] >= 0:
            m += 1
        for a in range(m, M):
            u[i, a] = 0.0
        for a in range(m):
            ja = idx[i, a]
            acc = c[ja, i]
            for b in range(m):
                acc -= G[ja, idx[i, b]] * u[i, b]
            r[i, a] = acc
        for s in range(1, max_sweeps + 1):
            maxd = 0.0
            maxu = 0.0
            for a in range(m):
                ja = idx[i, a]
                old = u[i, a]
                new = _coordinate_cpu(r[i, a], old, G[ja, ja], l1[i], l2[i], positive)
                d = new - old
                if d != 0.0:
                    u[i, a] = new
                    for b in range(m):
                        r[i, b] -= d * G[idx[i, b], ja]
                    if abs(d) > maxd:
                        maxd = abs(d)
                if abs(new) > maxu:
                    maxu = abs(new)
            sweeps[i] = s
            if maxd <= tol * max(maxu, 1e-300):
                break


def enet_cd_cpu(G, c, idx, l1, l2, u, tol=1e-10, max_sweeps=100_000, *, positive=True,
                gsel=None):
    """Numba CPU kernel, parallel over problems. Updates ``u`` in place; returns sweeps."""
    k, m = idx.shape
    r = np.empty((k, m), np.float64)
    sweeps = np.zeros(k, np.int64)
    G3, gsel = _grams(np, np.ascontiguousarray(G, np.float64), gsel, k)
    _enet_cd_cpu(G3, gsel, np.ascontiguousarray(c, np.float64),
                 np.ascontiguousarray(idx, np.int64), _vec(np, l1, k), _vec(np, l2, k), u, r,
                 float(tol), int(max_sweeps), bool(positive), sweeps)
    return sweeps


# --------------------------------------------------------------------- CUDA
@cuda.jit
def _enet_cd_cuda(G3, gsel, c, idx, l1, l2, u, r, tol, max_sweeps, positive, sweeps):
    shared = cuda.shared.array(3, dtype=np.float64)
    M = idx.shape[1]
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    for i in range(cuda.blockIdx.x, idx.shape[0], cuda.gridDim.x):
        G = G3[gsel[i]]
        m = 0
        while m < M and idx[i, m] >= 0:
            m += 1
        for a in range(m + tid, M, nt):
            u[i, a] = 0.0
        for a in range(tid, m, nt):
            ja = idx[i, a]
            acc = c[ja, i]
            for b in range(m):
                acc -= G[ja, idx[i, b]] * u[i, b]
            r[i, a] = acc
        cuda.syncthreads()
        maxd = 0.0
        maxu = 0.0
        for s in range(1, max_sweeps + 1):
            if tid == 0:
                maxd = 0.0
                maxu = 0.0
            for a in range(m):
                ja = idx[i, a]
                if tid == 0:
                    old = u[i, a]
                    new = _coordinate_cuda(r[i, a], old, G[ja, ja], l1[i], l2[i], positive)
                    d = new - old
                    u[i, a] = new
                    shared[0] = d
                    if abs(d) > maxd:
                        maxd = abs(d)
                    if abs(new) > maxu:
                        maxu = abs(new)
                cuda.syncthreads()
                d = shared[0]
                if d != 0.0:
                    for b in range(tid, m, nt):
                        r[i, b] -= d * G[idx[i, b], ja]
                cuda.syncthreads()
            if tid == 0:
                shared[1] = 1.0 if maxd <= tol * max(maxu, 1e-300) else 0.0
                sweeps[i] = s
            cuda.syncthreads()
            done = shared[1]
            cuda.syncthreads()
            if done > 0.0:
                break


def enet_cd_cuda(G, c, idx, l1, l2, u, tol=1e-10, max_sweeps=100_000, *, positive=True,
                 gsel=None):
    """CUDA kernel, one block per problem. Arrays are cupy (or NumPy in the simulator); ``u``
    is updated in place; returns sweeps (same array kind)."""
    xp = array_module(u)
    k, m = idx.shape
    r = xp.empty((k, m), xp.float64)
    sweeps = xp.zeros(k, xp.int64)
    if k:
        G3, gsel = _grams(xp, xp.ascontiguousarray(G, dtype=xp.float64), gsel, k)
        threads = 32 if m <= 32 else 64 if m <= 64 else THREADS  # the gradient update's width
        _enet_cd_cuda[min(k, 65535), threads](
            G3, gsel, xp.ascontiguousarray(c, dtype=xp.float64),
            xp.ascontiguousarray(idx, dtype=xp.int64), _vec(xp, l1, k), _vec(xp, l2, k), u, r,
            float(tol), int(max_sweeps), bool(positive), sweeps)
    return sweeps


def _vec(xp, v, k):
    return xp.array(xp.broadcast_to(xp.asarray(v, dtype=xp.float64), (k,)))  # a writable copy



CUDA_SIGNATURES = {
    "_enet_cd_cuda": [
        "void(float64[:, :, ::1], int64[::1], float64[:, ::1], int64[:, ::1], float64[::1], "
        "float64[::1], float64[:, ::1], float64[:, ::1], float64, int64, boolean, int64[::1])"],
}
