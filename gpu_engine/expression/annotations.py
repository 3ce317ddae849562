"""Functional-annotation sharing, the γ-step (spec ``dl_expression.md`` §4; dlfa's variant of
PriLer): penalty factors from SNP annotations, shared by the genes of a chromosome group.

For SNP j of gene g with (scaled) annotation row a_gj ∈ ℝ^K:

    ν_gj(γ) = ½(1 + exp(−a_gjᵀγ))        (ν(0) = 1; a positive γ_k lowers the penalty of
                                            SNPs carrying annotation k)

and with the weights w fixed the γ-step minimises the convex

    J(γ) = (1/G) Σ_g λ Σ_j ν_gj(γ) pen(w_gj) + η‖γ‖₁,   pen(w) = α|w| + ½(1 − α)w².

Stacking every gene's SNPs as rows (A: N × K, c_i = λ·pen(w_i)/G ≥ 0) the smooth part is
S(γ) = Σ_i c_i ν_i(γ) with ∇S = −½ Σ_i c_i exp(−a_iᵀγ) a_i. Two solvers that must agree:
proximal gradient (FISTA with backtracking, warm-started) and L-BFGS-B on γ = u − v,
u, v ≥ 0 (the L1 term is then linear). Optimality: |∂_k S| ≤ η where γ_k = 0,
∂_k S = −η·sign(γ_k) elsewhere.

Annotation tables: LDSC baseline style (``SNP, CHR, BP, A1, A2`` then one column per
annotation); "scaled" = each column z-scored over all SNPs of the table, constant columns
(``base``) dropped. Rows join the genotypes by rsid; SNPs without a row are dropped and
counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError, preview

ID_COLUMNS = ("SNP", "CHR", "BP", "A1", "A2", "CM")
# the chromosome groups of the reference, each with its own γ
CHROMOSOME_GROUPS = ((1, 21), (2, 3), (4, 5, 6), (7, 8, 9), (11, 12, 13), (14, 15, 16),
                     (10, 17, 18), (19, 20, 22))


def penalty_factors(A: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """ν = ½(1 + exp(−Aγ)) per row of A (N × K)."""
    return 0.5 * (1.0 + np.exp(-(A @ gamma)))


def smooth(A, c, gamma) -> tuple[float, np.ndarray]:
    """(S(γ), ∇S(γ)) with S = Σ c_i ν_i(γ)."""
    e = np.exp(-(A @ gamma))
    return float(c @ (0.5 * (1.0 + e))), -0.5 * (A.T @ (c * e))


def gamma_weights(weights: list, lam: float, alpha: float) -> np.ndarray:
    """c (N,) from each gene's weights (a list of arrays, genes in order): λ·pen(w)/G."""
    w = np.concatenate([np.asarray(x, float) for x in weights])
    return lam * (alpha * np.abs(w) + 0.5 * (1 - alpha) * w * w) / len(weights)


def solve_gamma_fista(A, c, eta: float, gamma0=None, *, tol: float = 1e-10,
                      max_iter: int = 100_000) -> np.ndarray:
    """argmin S(γ) + η‖γ‖₁ by FISTA with backtracking; stops when the relative change of γ
    is below ``tol``."""
    K = A.shape[1]
    x = np.zeros(K) if gamma0 is None else np.asarray(gamma0, float).copy()
    yk, t, step = x.copy(), 1.0, 1.0
    for _ in range(max_iter):
        f, g = smooth(A, c, yk)
        while True:
            z = yk - step * g
            new = np.sign(z) * np.maximum(np.abs(z) - step * eta, 0.0)
            fn, _ = smooth(A, c, new)
            d = new - yk
            if fn <= f + g @ d + d @ d / (2 * step) + 1e-15 * abs(f):
                break
            step *= 0.5
        t_next = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        change = np.linalg.norm(new - x) / max(np.linalg.norm(new), 1e-12)
        yk = new + (t - 1) / t_next * (new - x)
        x, t = new, t_next
        if change < tol:
            break
    return x


def solve_gamma_lbfgs(A, c, eta: float, gamma0=None) -> np.ndarray:
    """argmin S(γ) + η‖γ‖₁ by L-BFGS-B on γ = u − v with u, v ≥ 0."""
    from scipy.optimize import minimize

    K = A.shape[1]
    g0 = np.zeros(K) if gamma0 is None else np.asarray(gamma0, float)
    z0 = np.concatenate([np.maximum(g0, 0), np.maximum(-g0, 0)])

    def fun(z):
        f, g = smooth(A, c, z[:K] - z[K:])
        return f + eta * z.sum(), np.concatenate([g + eta, -g + eta])

    res = minimize(fun, z0, jac=True, method="L-BFGS-B", bounds=[(0, None)] * (2 * K),
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 100_000,
                            "maxcor": 30})
    return res.x[:K] - res.x[K:]


def optimality_violation(A, c, eta, gamma) -> float:
    """The largest violation of the L1 optimality conditions at ``gamma``."""
    _, g = smooth(A, c, gamma)
    zero = gamma == 0
    v = np.where(zero, np.maximum(np.abs(g) - eta, 0.0), np.abs(g + eta * np.sign(gamma)))
    return float(v.max(initial=0.0))


def read_annotations(path) -> pd.DataFrame:
    """A baseline-style annotation table (Parquet or text): rows indexed by SNP id, the
    annotation columns as floats."""
    from ..io.tables import read_table

    t = read_table(path, what="annotation table")
    if "SNP" not in t.columns:
        raise InputError(f"annotation table {path}: no 'SNP' column (found "
                         f"{preview(t.columns)}); LDSC baseline tables start SNP, CHR, BP, …")
    t = t.drop_duplicates("SNP").set_index("SNP")
    cols = [c for c in t.columns if c not in ID_COLUMNS]
    ann = t[cols].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in cols if ann[c].isna().any()]
    if bad:
        raise InputError(f"annotation table {path}: non-numeric or missing values in "
                         f"{preview(bad)}")
    return ann.astype(float)


def scale_annotations(ann: pd.DataFrame) -> pd.DataFrame:
    """Each column z-scored over all SNPs of the table; constant columns dropped."""
    sd = ann.std(ddof=0)
    keep = sd > 0
    return (ann.loc[:, keep] - ann.loc[:, keep].mean()) / sd[keep]


def join_annotations(snps, ann: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(rows of ``ann`` for the SNP ids ``snps`` that have one (n_found × K), a boolean mask
    over ``snps`` of those found). SNPs without annotation are dropped for every model, as
    the reference does."""
    snps = pd.Index(pd.Series(snps).astype(str))
    pos = ann.index.get_indexer(snps)
    found = pos >= 0
    return ann.to_numpy()[pos[found]], found
