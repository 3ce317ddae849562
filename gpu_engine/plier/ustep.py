"""PLIER's U step: which pathways each LV may use, the non-negative elastic nets that fit
them (all LVs at once, :mod:`gpu_engine.kernels.plier`), and the tuning of L3.

For LV i the problem is glmnet's (intercept fitted, then discarded; α = ``glm_alpha``)::

    min_{u ≥ 0} 1/(2n)‖Z[:, i] − β0 − X u‖² + λ[(1 − α)/2‖u‖² + α‖u‖₁]

restricted to the LV's candidate pathways. Both modes of the reference are supported:

- ``current``: X = the masked prior C; candidates from the ranks (average ties) of Ĉ·Z:
  ``complete`` takes the union over LVs of each LV's top ``max_path`` (the same set for all),
  ``fast`` each LV's own top ``max_path``. L3 is re-tuned on the path
  λ ∈ exp(−4, −4.125, …, −12) to the λ whose fraction of LVs with a positive coefficient is
  closest to ``frac`` (first on ties).
- ``multiplier``: X = the UNMASKED prior with glmnet's ``standardize=TRUE`` (columns scaled
  by their population sd; coefficients returned on the original scale); candidates from
  Ĉ·(Z with unit-norm columns), negatives set to 0, each LV's own top ``max_path``; L3 is
  re-tuned by bisection (see :meth:`UStep.bisect`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

LAMBDA_PATH = np.exp(np.arange(-4.0, -12.0 - 1e-9, -0.125))


@dataclass
class UStep:
    """Everything about the U step that stays fixed during a fit (see the module docstring).

    ``X`` genes × P (NumPy 0/1): the regression's design; ``C`` genes × P: the masked prior
    whose ridge pseudo-inverse ranks the pathways (Ĉ·Z = pinv_ridge(CᵀC, 5)·CᵀZ).
    ``xp``/``kernel`` choose where the elastic nets run (NumPy + numba CPU kernel, or cupy +
    CUDA kernel). On the CPU the 0/1 matrices are used in sparse form."""

    X: np.ndarray
    C: np.ndarray
    mode: str = "current"
    selection: str = "complete"
    max_path: int = 10
    alpha: float = 0.9
    xp: object = np
    kernel: object = None
    tol: float = 1e-10
    penalty: str = "glmnet"
    sweeps: list = field(default_factory=list)

    def __post_init__(self):
        X = np.asarray(self.X, np.float64)
        n = X.shape[0]
        self.n = n
        self.mean = X.mean(axis=0)
        G = (X.T @ X) / n - np.outer(self.mean, self.mean)
        if self.mode == "multiplier":
            sd = np.sqrt(np.clip(np.diag(G), 0, None))
            self.scale = np.where(sd > 0, sd, 0.0)
            inv = np.divide(1.0, self.scale, out=np.zeros_like(self.scale), where=self.scale > 0)
            G = G * np.outer(inv, inv)
        else:
            self.scale = np.ones(X.shape[1])
            inv = self.scale
        self.inv_scale = inv
        xp = self.xp
        from .prior import ridge_pinv

        C = np.asarray(self.C, np.float64)
        self._G = xp.asarray(G)
        self._Xt = _design(X.T, xp)
        self._Ct = self._Xt if C is self.X else _design(C.T, xp)
        self._ridge = xp.asarray(ridge_pinv(C))
        self._mean = xp.asarray(self.mean)
        self._inv = xp.asarray(inv)
        if self.kernel is None:
            from ..kernels import registry

            self.kernel = registry.get("enet_cd", "cpu" if xp is np else "cuda")

    # ------------------------------------------------------------------ candidates
    def candidates(self, Z) -> np.ndarray:
        """k × m int64 candidate pathway indices per LV (−1 padded). ``Z`` genes × k (xp)."""
        xp = self.xp
        if self.mode == "multiplier":
            norms = xp.sqrt((Z * Z).sum(axis=0))
            norms = xp.where(norms < 1e-16, 1.0, norms)
            score = self._ridge @ (self._Ct @ Z) / norms
            score = xp.where(score < 0, 0.0, score)
        else:
            score = self._ridge @ (self._Ct @ Z)
        score = _host(score)
        ranks = rankdata(-score, axis=0, method="average")
        k = score.shape[1]
        if self.mode == "current" and self.selection == "complete":
            cand = np.flatnonzero(ranks.min(axis=1) <= self.max_path)
            return np.broadcast_to(cand, (k, cand.size)).astype(np.int64).copy()
        chosen = [np.flatnonzero(ranks[:, i] <= self.max_path) for i in range(k)]
        m = max((c.size for c in chosen), default=0)
        idx = np.full((k, max(m, 1)), -1, np.int64)
        for i, c in enumerate(chosen):
            idx[i, :c.size] = c
        return idx

    # ------------------------------------------------------------------ solving
    def cross(self, Z):
        """P × k centered (and scaled) cross products Xᵀ(Z − z̄)/n (xp), and the per-LV
        response scale: the population sd of Z's columns under the ``glmnet`` penalty,
        else 1."""
        xp = self.xp
        zbar = Z.mean(axis=0)
        c = (self._Xt @ Z) / self.n - xp.outer(self._mean, zbar)
        if self.penalty == "glmnet":
            ys = _host(xp.sqrt(((Z - zbar) ** 2).mean(axis=0)))
            ys = np.where(ys > 0, ys, 1.0)
        else:
            ys = np.ones(Z.shape[1])
        return c * self._inv[:, None] / xp.asarray(ys)[None, :], ys

    def solve(self, cross, idx: np.ndarray, lam: float, U0: np.ndarray | None = None) -> np.ndarray:
        """Solve every LV at penalty ``lam``; returns U (P × k, NumPy, original scale).
        ``cross`` is :meth:`cross`'s result; ``U0`` (P × k) warm-starts."""
        xp = self.xp
        c, ys = cross
        k = idx.shape[0]
        valid = idx >= 0
        safe = np.where(valid, idx, 0)
        cols = np.arange(k)[:, None]
        u0 = np.zeros(idx.shape)
        if U0 is not None:
            u0 = np.where(valid, U0[safe, cols] * self.scale[safe] / ys[:, None], 0.0)
        u = xp.asarray(u0)
        # glmnet solves for y/sd(y) with λ/sd(y) and scales back: same l1 on the original
        # scale, ridge term divided by sd(y)
        lam_i = lam / ys
        sweeps = self.kernel(self._G, c, xp.asarray(idx), lam_i * self.alpha,
                             lam_i * (1.0 - self.alpha), u, self.tol)
        self.sweeps.append(int(_host(sweeps).max(initial=0)))
        u = _host(u)
        U = np.zeros((self._G.shape[0], k))
        rows, cl = np.nonzero(valid)
        U[idx[rows, cl], rows] = u[rows, cl] * self.inv_scale[idx[rows, cl]] * ys[rows]
        return U

    def fit(self, Z, lam: float, U0=None) -> np.ndarray:
        """U at a fixed L3 for the current Z."""
        return self.solve(self.cross(Z), self.candidates(Z), lam, U0)

    def tune_path(self, Z, frac: float, U0=None) -> tuple[np.ndarray, float]:
        """Current mode: fit the λ path (warm starts, largest λ first) and take the λ whose
        fraction of LVs with a positive coefficient is closest to ``frac``."""
        c, idx = self.cross(Z), self.candidates(Z)
        k = idx.shape[0]
        fracs, U = [], U0
        for lam in LAMBDA_PATH:
            U = self.solve(c, idx, lam, U)
            fracs.append((U.max(axis=0) > 0).sum() / k)
        best = int(np.argmin(np.abs(frac - np.asarray(fracs))))
        lam = float(LAMBDA_PATH[best])
        return self.solve(c, idx, lam, U), lam

    def bisect(self, Z, frac: float, L3: float | None, curfrac: float, U0=None,
               max_steps: int = 150):
        """Multiplier mode's L3 search, as in PLIER a2d4a2a: nothing changes while the current
        fraction is within 1/k of ``frac``; otherwise bisect λ on [1e-6, 1] (first time) or on
        [L3, 10·L3] / [L3/10, L3] (later: too many / too few LVs with a pathway) until the
        fraction is within 1/k and at least one LV has a pathway (at most ``max_steps``).
        Returns ``(U or None, L3, steps)``."""
        c, idx = self.cross(Z), self.candidates(Z)
        k = idx.shape[0]
        if L3 is not None and abs(frac - curfrac) <= 1.0 / k:
            return None, L3, 0
        if L3 is None:
            lo, hi = 1e-6, 1.0
        elif curfrac > frac:
            lo, hi = L3, L3 * 10
        else:
            lo, hi = L3 / 10, L3
        steps, U, npos = 0, U0, 0
        while steps < max_steps and (steps < 1 or abs(frac - curfrac) > 1.0 / k or npos == 0):
            mid = (lo + hi) / 2
            U = self.solve(c, idx, mid, U)
            npos = int((U.max(axis=0) > 0).sum())
            curfrac = npos / k
            if curfrac > frac:
                lo = mid
            else:
                hi = mid
            steps += 1
        return U, mid, steps


def _design(M: np.ndarray, xp):
    """A 0/1 matrix for products: CSR on the CPU (priors are ~1–3% dense), dense on GPU."""
    if xp is np:
        from scipy.sparse import csr_matrix

        return csr_matrix(M)
    return xp.asarray(np.ascontiguousarray(M))


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)
