"""The GLS computation for one group plan and one chunk of traits, on any backend.

For a chunk of T traits (their standardized covariates C and response y, n_g × T × m with
m = k + 1) and every LV of the plan, this builds the whitened Gram matrices of
[1, s, C, y] with matrix products on the backend's BLAS (Sᵀ[C, y] for all LVs at once; the
block whitening W_B·[C, y]_B as batched products) and the kernels of
:mod:`gpu_engine.kernels.gls` (Gram assembly and the fused statistics). Full mode whitens
with the Cholesky factor of R per diagonal block instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .model import GroupPlan


@dataclass
class Ops:
    """Where a chunk runs: the array module, a triangular solver and the two kernels."""

    xp: Any
    solve_triangular: Callable
    gram: Callable
    stats: Callable
    to_host: Callable
    cache: dict

    @classmethod
    def for_backend(cls, backend, kernel: str | None = None) -> Ops:
        """The backend's arrays, BLAS and solver with the kernels the registry picks for it
        (``kernel``: force ``"reference"``, ``"cpu"`` or ``"cuda"``; the CUDA kernels with
        the cpu backend's NumPy arrays run in the Numba simulator)."""
        from ..kernels import registry

        impl = registry.implementation(backend, kernel)
        return cls(backend.xp, backend.linalg.solve_triangular,
                   registry.get("gls_gram", impl), registry.get("gls_stats", impl),
                   backend.to_host, {})

    @classmethod
    def simulated(cls) -> Ops:
        """NumPy arrays with the CUDA kernels (in the Numba simulator, for tests)."""
        from ..backend import get_backend

        return cls.for_backend(get_backend("cpu"), "cuda")

    @classmethod
    def reference(cls) -> Ops:
        """NumPy arrays with the NumPy reference kernels (slow; for tests)."""
        from ..backend import get_backend

        return cls.for_backend(get_backend("cpu"), "reference")

    def device(self, plan: GroupPlan, key: str, host: np.ndarray):
        """``host`` on the device, transferred once per plan (the arrays of the two most
        recent plans are kept)."""
        if self.xp is np:
            return host
        arrays = self.cache.get(plan.token)
        if arrays is None:
            while len(self.cache) >= 2:
                self.cache.pop(next(iter(self.cache)))
            arrays = self.cache[plan.token] = {}
        if key not in arrays:
            arrays[key] = self.xp.asarray(host)
        return arrays[key]


def _standardize(ops: Ops, A, labels, what):
    """Columns of A (n × K) to mean 0, sd 1 (ddof = 1) with :func:`gpu_engine.stats.standardize`;
    a constant column is an error naming it."""
    from ..stats import standardize

    backend = "cpu" if ops.xp is np else "gpu"
    return standardize(A, axis=0, ddof=1, backend=backend, labels=labels, what=what)


def run_chunk(plan: GroupPlan, Y: np.ndarray, C: np.ndarray | None, ops: Ops, *,
              trait_names, covar_names=(), terms=None) -> np.ndarray:
    """Statistics (5, L', T) for the plan's LVs × these traits (order of
    :data:`gpu_engine.kernels.gls.STAT_NAMES`).

    ``Y`` (n_g, T) raw responses and ``C`` (n_g, T, k) raw covariates over the group's genes.
    ``terms``: design columns (0 the intercept, 1 the LV, 2… the covariates) whose statistics
    to return, as (len(terms), 5, L', T); None: the LV's only.
    """
    xp = ops.xp
    n, T = Y.shape
    Yd = _standardize(ops, xp.asarray(Y, dtype=xp.float64), list(trait_names), "traits")
    if C is not None and C.shape[2]:
        k = C.shape[2]
        labels = [f"covariate {c} of trait {t}" for t in trait_names for c in covar_names]
        Cd = _standardize(ops, xp.asarray(C, dtype=xp.float64).reshape(n, T * k), labels,
                          "covariates").reshape(n, T, k)
        M = xp.concatenate([Cd, Yd[:, :, None]], axis=2)
    else:
        M = Yd[:, :, None]
    m = M.shape[2]
    M2 = xp.ascontiguousarray(M.reshape(n, T * m))
    L = plan.lvs.size
    cols = (1,) if terms is None else tuple(terms)
    out = xp.full((len(cols), 5, L, T), xp.nan)

    def stats(G, Lc):
        G = G.reshape(Lc * T, m + 2, m + 2)
        return xp.stack([xp.asarray(ops.stats(G, float(n), c)).reshape(5, Lc, T)
                         for c in cols])

    def done():
        return ops.to_host(out[0] if terms is None else out)

    if L == 0:
        return done()
    S = ops.device(plan, "S", plan.S)

    if plan.mode == "full":
        WM = xp.empty_like(M2)
        for a, b, Lf in plan.factor:
            WM[a:b] = ops.solve_triangular(ops.device(plan, f"L{a}", Lf), M2[a:b], lower=True)
        W1 = ops.device(plan, "W1", plan.W1)
        WS = ops.device(plan, "WS", plan.WS)
        WM3 = WM.reshape(n, T, m)
        trait_gram = _trait_gram(xp, W1, WM3)
        cross = (WS.T @ WM).reshape(L, T, m)
        s1 = W1 @ WS
        lv_gram = xp.stack([xp.stack([xp.full(L, float(W1 @ W1)), s1]),
                            xp.stack([s1, (WS * WS).sum(axis=0)])]).transpose(2, 0, 1)
        zero_u = xp.zeros((L, 1, 2))
        zero_y = xp.zeros((L, 1, T * m))
        for start in range(0, L, 64):
            sl = slice(start, min(start + 64, L))
            G = ops.gram(xp.ascontiguousarray(lv_gram[sl]), trait_gram,
                         xp.ascontiguousarray(cross[sl]), zero_u[sl], zero_u[sl], zero_y[sl],
                         zero_y[sl])
            out[:, :, sl, :] = stats(G, sl.stop - sl.start)
        return done()

    ones = xp.ones(n)
    trait_gram = _trait_gram(xp, ones, M)
    cross = (S.T @ M2).reshape(L, T, m)
    s1 = S.sum(axis=0)
    lv_gram = xp.stack([xp.stack([xp.full(L, float(n)), s1]),
                        xp.stack([s1, (S * S).sum(axis=0)])]).transpose(2, 0, 1)
    Mpad = xp.concatenate([M2, xp.zeros((1, T * m))], axis=0)
    for ci, ch in enumerate(plan.chunks):
        lvs = ops.device(plan, f"lvs{ci}", ch.lvs)
        idx = ops.device(plan, f"idx{ci}", ch.idx)
        W = ops.device(plan, f"W{ci}", ch.W)
        yb = Mpad[idx]                               # (Lc, bmax, T·m)
        wyb = W @ yb
        G = ops.gram(xp.ascontiguousarray(lv_gram[lvs]), trait_gram,
                     xp.ascontiguousarray(cross[lvs]), ops.device(plan, f"ub{ci}", ch.ub),
                     ops.device(plan, f"wub{ci}", ch.wub), yb, wyb)
        out[:, :, lvs, :] = stats(G, ch.lvs.size)
    return done()


def _trait_gram(xp, u, M3):
    """[u, M_t]ᵀ[u, M_t] for every trait t: (T, m + 1, m + 1)."""
    n, T, m = M3.shape
    G = xp.empty((T, m + 1, m + 1))
    G[:, 0, 0] = u @ u
    um = xp.einsum("i,itj->tj", u, M3)
    G[:, 0, 1:] = um
    G[:, 1:, 0] = um
    G[:, 1:, 1:] = xp.einsum("ita,itb->tab", M3, M3)
    return G
