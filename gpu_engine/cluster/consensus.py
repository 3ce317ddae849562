"""Consensus partitions from a clustering ensemble, their agreement with it, and selection.

- EAC: hierarchical clustering (single, complete, average linkage) of the co-association
  distance D, cut into k clusters;
- SCC: spectral clustering of the similarity exp(−D²/(2δ²)), δ ∈ {0.20, 0.25, 0.30, 0.50};
- agreement of a partition with the ensemble: ARI (and AMI, NMI) against each member on the
  objects the member labels, multiplied by the member's labelled fraction; mean and median;
- selection: per k the consensus partition with the highest median weighted ARI; keep the k
  whose best is at or above the 75th percentile over k.

Pairs no member labels both get D = 1 (never clustered together).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..backend import Backend
from ..errors import InputError
from .coassociation import coassociation

EAC_LINKAGES = ("single", "complete", "average")
SCC_DELTAS = (0.20, 0.25, 0.30, 0.50)


def ari(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two integer label vectors (pair counts from the contingency
    table; equals scikit-learn's ``adjusted_rand_score`` to rounding)."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    kb = int(bi.max()) + 1
    C = np.bincount(ai * kb + bi).astype(np.float64)
    n = float(len(a))
    sum_c = (C * (C - 1)).sum() / 2
    ra = np.bincount(ai).astype(np.float64)
    rb = np.bincount(bi).astype(np.float64)
    sa = (ra * (ra - 1)).sum() / 2
    sb = (rb * (rb - 1)).sum() / 2
    expected = sa * sb / (n * (n - 1) / 2)
    top = (sa + sb) / 2
    if top == expected:  # both partitions trivial and identical
        return 1.0
    return float((sum_c - expected) / (top - expected))


def agreement(partition: np.ndarray, ensemble: np.ndarray, *,
              metrics=("ari",)) -> dict:
    """Weighted agreement (mean and median over members) of ``partition`` (n,) with the
    ``ensemble`` (members × n, NaN = missing): each member's score on the objects it labels,
    times its labelled fraction. ``metrics``: any of ``ari`` (fast), ``ami``, ``nmi``
    (scikit-learn; slower)."""
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    fns = {"ari": ari, "ami": adjusted_mutual_info_score, "nmi": normalized_mutual_info_score}
    unknown = set(metrics) - set(fns)
    if unknown:
        raise InputError(f"agreement: unknown metric(s) {sorted(unknown)}; use ari, ami, nmi")
    scores = {m: [] for m in metrics}
    for member in ensemble:
        ok = np.isfinite(member)
        w = ok.mean()
        if ok.sum() < 2:
            continue
        a, b = partition[ok], member[ok].astype(np.int64)
        for m in metrics:
            scores[m].append(w * fns[m](a, b))
    out = {}
    for m, v in scores.items():
        out[f"{m}_mean"] = float(np.mean(v)) if v else np.nan
        out[f"{m}_median"] = float(np.median(v)) if v else np.nan
    return out


def consensus(ensemble: np.ndarray, *, k_range=None, eac_linkages=EAC_LINKAGES,
              scc_deltas=SCC_DELTAS, seed: int = 0, backend: Backend | str = "cpu",
              D: np.ndarray | None = None,
              metrics=("ari",)) -> tuple[pd.DataFrame, np.ndarray]:
    """Consensus partitions for each k and method, scored against the ensemble.

    Returns ``(table, partitions)``: one row per (method, k) with the agreement scores, and
    the partitions (rows × objects) in the table's order. ``D``: a precomputed condensed
    co-association distance (else computed on ``backend``). ``metrics``: agreement scores
    (``ari`` always used for selection; add ``ami``, ``nmi`` to report them too).
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    from sklearn.cluster import SpectralClustering

    E = np.asarray(ensemble, dtype=float)
    n = E.shape[1]
    if D is None:
        D = coassociation(E, backend=backend)
    D = np.where(np.isnan(D), 1.0, D)
    ks = list(k_range) if k_range is not None else list(range(2, max(3, int(np.sqrt(n))) + 1))
    ks = [k for k in ks if 2 <= k < n]
    if not ks:
        raise InputError(f"consensus: no k in 2 … {n - 1} to cut {n} objects into")
    rows, parts = [], []
    for method in eac_linkages:
        Z = linkage(D, method=method)
        for k in ks:
            lab = fcluster(Z, k, criterion="maxclust") - 1
            rows.append({"method": f"eac_{method}", "k": k,
                         "n_clusters": len(np.unique(lab))})
            parts.append(lab)
    S = squareform(D)
    for delta in scc_deltas:
        A = np.exp(-(S ** 2) / (2 * delta ** 2))
        for k in ks:
            lab = SpectralClustering(k, affinity="precomputed", random_state=seed,
                                     assign_labels="kmeans").fit_predict(A)
            rows.append({"method": f"scc_{delta:.2f}", "k": k,
                         "n_clusters": len(np.unique(lab))})
            parts.append(lab)
    table = pd.DataFrame(rows)
    scores = pd.DataFrame([agreement(p, E, metrics=metrics) for p in parts])
    return pd.concat([table, scores], axis=1), np.vstack(parts)


def select(table: pd.DataFrame, *, quantile: float = 0.75) -> pd.DataFrame:
    """Per k the row with the highest median weighted ARI; keep the k at or above the
    ``quantile`` of those bests."""
    best = table.loc[table.groupby("k")["ari_median"].idxmax()]
    cut = best["ari_median"].quantile(quantile)
    return best.loc[best["ari_median"] >= cut].sort_values("ari_median", ascending=False)
