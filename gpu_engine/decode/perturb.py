"""In-silico perturbations of a gene pair (spec ``decode.md`` §7), batched.

- :func:`knockout_draws` / :func:`site_removal_draws`: the random KO sets (each candidate
  regulator in or out with probability ½) and bin masks (each RNA and promoter bin removed
  with probability ½); row 0 is the unperturbed input.
- :func:`perturbed_summaries`: the fast exact mode's per-gene summaries (S, x₀, x₁, the two
  last positions, S_prom) of every perturbation of one gene at once — zeroing channels or
  bins is linear in the input, so each summary is the gene's padded input times the keep
  mask; channel 0 is never perturbed.
- :func:`profile_spearman`: Spearman ρ between the rows of two profile matrices.
- :func:`ols`: ρ ~ 1 + indicators (β, SE, t, two-sided p), the reference's regression.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import linalg, stats


def knockout_draws(n_candidates: int, n: int, seed: int) -> np.ndarray:
    """``(n + 1, C)`` 0/1 KO indicators; row 0 knocks out nothing."""
    rng = np.random.default_rng(seed)
    draws = (rng.random((n, n_candidates)) < 0.5).astype(np.int8)
    return np.vstack([np.zeros((1, n_candidates), np.int8), draws])


def site_removal_draws(n_bins: int, n: int, seed: int) -> np.ndarray:
    """``(n + 1, n_bins)`` 0/1 removal indicators (RNA bins then the 30 promoter bins)."""
    return knockout_draws(n_bins, n, seed)


def perturbed_summaries(rna, prom, *, channel_keep_rna=None, channel_keep_prom=None,
                        bin_keep_rna=None, bin_keep_prom=None):
    """Summaries for every perturbation of one gene.

    ``rna`` (F, P) and ``prom`` (F', 30): the gene's padded, scaled input (torch, one gene).
    ``channel_keep_*``: (N, F) 0/1 masks over channels; ``bin_keep_*``: (N, P) / (N, 30)
    masks over positions (channel 0 kept whole). Returns the dict
    :meth:`~gpu_engine.decode.network.DEcodeNet.forward_summary` takes, with N rows.
    """

    F, P = rna.shape
    if bin_keep_rna is not None:
        k = bin_keep_rna.to(rna.dtype)                              # (N, P)
        S = k @ rna.T                                               # (N, F)
        pos = {"x0": 0, "x1": 1, "xm2": P - 2, "xm1": P - 1}
        out = {name: k[:, i:i + 1] * rna[:, i][None, :] for name, i in pos.items()}
        kp = bin_keep_prom.to(prom.dtype)
        Sp = kp @ prom.T
        out["S"], out["S_prom"] = S, Sp
        # channel 0 is structural: never removed
        full = {"S": rna.sum(-1), "x0": rna[:, 0], "x1": rna[:, 1], "xm2": rna[:, P - 2],
                "xm1": rna[:, P - 1]}
        for name, v in full.items():
            out[name][:, 0] = v[0]
        out["S_prom"][:, 0] = prom[0].sum()
        return out
    base = {"S": rna.sum(-1), "x0": rna[:, 0], "x1": rna[:, 1], "xm2": rna[:, P - 2],
            "xm1": rna[:, P - 1]}
    kr = channel_keep_rna.to(rna.dtype)
    out = {name: kr * v[None, :] for name, v in base.items()}
    out["S_prom"] = channel_keep_prom.to(prom.dtype) * prom.sum(-1)[None, :]
    return out


def profile_spearman(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise Spearman ρ between ``A`` (N, T) and ``B`` (N, T) or (T,)."""
    B = np.broadcast_to(B, A.shape)
    ra = stats.rankdata(A, axis=1)
    rb = stats.rankdata(B, axis=1)
    ra = ra - ra.mean(1, keepdims=True)
    rb = rb - rb.mean(1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(1) / den


def ols(y: np.ndarray, X: np.ndarray, names) -> pd.DataFrame:
    """OLS of ``y`` on an intercept and the columns of ``X``: per column ``coef, se, t,
    p`` (two-sided, n − k − 1 degrees of freedom); the intercept is the first row."""
    n = len(y)
    D = np.column_stack([np.ones(n), np.asarray(X, float)])
    if n <= D.shape[1]:
        from ..errors import InputError

        raise InputError(f"the perturbation regression has {D.shape[1] - 1} terms but only "
                         f"{n} usable draws; use more draws than terms (e.g. "
                         f"{max(1000, 10 * D.shape[1])})")
    beta, *_ = np.linalg.lstsq(D, y, rcond=None)
    resid = y - D @ beta
    df = n - D.shape[1]
    s2 = float(resid @ resid) / df
    # diag((DᵀD)⁻¹) from the QR factor: non-negative by construction (pinv of DᵀD can
    # return tiny negative diagonals when the columns are many and nearly collinear)
    R = np.linalg.qr(D, mode="r")
    Rinv = linalg.solve_triangular(R, np.eye(R.shape[0]))
    se = np.sqrt(s2 * (Rinv ** 2).sum(1))
    t = beta / se
    p = 2 * stats.t.sf(np.abs(t), df)
    return pd.DataFrame({"term": ["intercept", *names], "coef": beta, "se": se, "t": t,
                         "p": p})


def mediation(expr_a: np.ndarray, expr_b: np.ndarray, drivers: np.ndarray,
              candidates: np.ndarray | None = None, *, n_random: int = 1000,
              seed: int = 0) -> dict:
    """The conditional-independence check of spec §7: regress the actual expression of A
    and of B (length T, over tissues or individuals) on the K key drivers' expression
    ``drivers`` (T × K); ``explained`` = 1 − r²(residuals) / r²(A, B), the share of the
    pair's squared correlation the drivers account for. ``candidates`` (T × C, the
    expression of every regulator binding A or B): the null of ``n_random`` random sets of K
    of them; ``p`` = (1 + #null ≥ explained) / (1 + n_random)."""
    def share(Xk):
        D = np.column_stack([np.ones(len(expr_a)), Xk])
        ra = expr_a - D @ np.linalg.lstsq(D, expr_a, rcond=None)[0]
        rb = expr_b - D @ np.linalg.lstsq(D, expr_b, rcond=None)[0]
        r2 = np.corrcoef(ra, rb)[0, 1] ** 2
        return 1 - r2 / base

    base = np.corrcoef(expr_a, expr_b)[0, 1] ** 2
    drivers = np.asarray(drivers, float).reshape(len(expr_a), -1)
    out = {"r2": float(base), "explained": float(share(drivers))}
    if candidates is not None:
        rng = np.random.default_rng(seed)
        C = np.asarray(candidates, float)
        k = drivers.shape[1]
        null = np.array([share(C[:, rng.choice(C.shape[1], k, replace=False)])
                         for _ in range(n_random)])
        out["null"] = null
        out["p"] = float((1 + (null >= out["explained"]).sum()) / (1 + n_random))
    return out
