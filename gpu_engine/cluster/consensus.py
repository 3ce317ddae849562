"""Consensus partitions from a clustering ensemble, their agreement with it, and selection.

- EAC: hierarchical clustering (single, complete, average linkage) of the co-association
  distance D, cut into k clusters;
- SCC: spectral clustering of the similarity exp(−D²/(2δ²)), δ ∈ {0.20, 0.25, 0.30, 0.50}
  (scikit-learn's semantics, one eigendecomposition per δ for all k);
- agreement of a partition with the ensemble: ARI (and AMI, NMI) against each member on the
  objects the member labels, multiplied by the member's labelled fraction; mean and median;
- selection: per k the consensus partition with the highest median weighted ARI; keep the k
  whose best is at or above the 75th percentile over k.

Pairs no member labels both get D = 1 (never clustered together).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..backend import Backend, get_backend
from ..errors import InputError, preview
from ..io import write_table
from ..results import FolderResult, register
from .coassociation import coassociation
from .spectral import spectral_embedding, spectral_labels

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


class _Members:
    """An ensemble (members × n, NaN = missing) prepared once for many agreement scores:
    each member's labelled objects, codes and the pair-count terms that depend on it alone."""

    def __init__(self, ensemble: np.ndarray):
        E = np.asarray(ensemble, dtype=float)
        self.E = E
        ok = np.isfinite(E)
        self.ok = ok
        self.weight = ok.mean(1)
        self.usable = ok.sum(1) >= 2
        codes = np.zeros(E.shape, np.int64)
        self.k = np.ones(E.shape[0], np.int64)
        for m in np.flatnonzero(self.usable):
            _, c = np.unique(E[m, ok[m]], return_inverse=True)
            codes[m, ok[m]] = c
            self.k[m] = c.max() + 1
        self.codes = codes
        self.rows, self.cols = np.nonzero(ok)
        self.labels = codes[ok]
        self.offset = np.concatenate([[0], np.cumsum(self.k)])
        self.offset_rows, self.k_rows = self.offset[self.rows], self.k[self.rows]
        sizes = [np.bincount(codes[m, ok[m]]) for m in range(E.shape[0])]
        self.sb = np.array([(c * (c - 1.0) / 2).sum() for c in sizes])

    def ari(self, partition: np.ndarray) -> np.ndarray:
        """Weighted ARI of ``partition`` with every usable member (NaN for the others)."""
        _, p = np.unique(partition, return_inverse=True)
        kp = int(p.max()) + 1
        M = self.E.shape[0]
        pairs = lambda x: x * (x - 1) / 2
        # one bincount gives every member's contingency table with the partition, member m's
        # kp × k_m cells at offset kp·Σ_{m'<m} k_m'
        start = kp * self.offset
        pk = p[self.cols]
        cell = kp * self.offset_rows + pk * self.k_rows + self.labels
        sum_c = np.add.reduceat(pairs(np.bincount(cell, minlength=start[-1]).astype(float)),
                                start[:-1])
        sa = pairs(np.bincount(self.rows * kp + pk, minlength=M * kp).reshape(M, kp)
                   .astype(float)).sum(1)
        sb, nn = self.sb, self.ok.sum(1).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = sa * sb / pairs(nn)
            top = (sa + sb) / 2
            out = np.where(top == expected, 1.0, (sum_c - expected) / (top - expected))
        out = out * self.weight
        out[~self.usable] = np.nan
        return out


def agreement(partition: np.ndarray, ensemble, *, metrics=("ari",)) -> dict:
    """Weighted agreement (mean and median over members) of ``partition`` (n,) with the
    ``ensemble`` (members × n, NaN = missing): each member's score on the objects it labels,
    times its labelled fraction. ``metrics``: any of ``ari`` (fast, all members at once),
    ``ami``, ``nmi`` (scikit-learn; slower). Members labelling fewer than two objects are
    skipped."""
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    fns = {"ami": adjusted_mutual_info_score, "nmi": normalized_mutual_info_score}
    unknown = set(metrics) - set(fns) - {"ari"}
    if unknown:
        raise InputError(f"agreement: unknown metric(s) {sorted(unknown)}; use ari, ami, nmi")
    members = ensemble if isinstance(ensemble, _Members) else _Members(ensemble)
    partition = np.asarray(partition)
    out = {}
    for m in metrics:
        if m == "ari":
            v = members.ari(partition)[members.usable]
        else:
            v = np.array([members.weight[i] * fns[m](partition[members.ok[i]],
                                                     members.codes[i, members.ok[i]])
                          for i in np.flatnonzero(members.usable)])
        out[f"{m}_mean"] = float(np.mean(v)) if len(v) else np.nan
        out[f"{m}_median"] = float(np.median(v)) if len(v) else np.nan
    return out


@register
@dataclass
class Consensus(FolderResult):
    """The consensus partitions of an ensemble, scored and selected.

    ``table``: one row per (method, k) — ``method, k, n_clusters`` and the agreement scores
    (``ari_mean``, ``ari_median``, …); ``partitions``: the same rows × objects (columns are
    the object names), the labels 0 … k−1; ``selected``: the rows :func:`select` keeps, best
    first. ``labels()`` / ``best()`` read them without index arithmetic. Unpacks as
    ``table, partitions_array = consensus(...)``.

    Saved as a folder: ``consensus.parquet``, ``partitions.parquet``, ``selected.parquet``
    (and ``selected.tsv``), ``result.json``, ``agreement_by_k.png`` and, when the
    co-association distance is at hand, ``coassociation.png``.
    """

    table: pd.DataFrame
    partitions: pd.DataFrame
    selected: pd.DataFrame

    kind = "cluster_consensus"
    _TABLES = ("table", "partitions", "selected")
    _FILES = {"table": "consensus"}

    def __iter__(self):
        yield self.table
        yield self.partitions.to_numpy()

    def best(self) -> pd.Series:
        """The selected row with the highest median weighted ARI (method, k, scores)."""
        return self.selected.iloc[0]

    def labels(self, k: int | None = None, method: str | None = None) -> pd.Series:
        """Cluster labels per object: the best selected partition (no arguments), the best
        method at ``k``, or ``method`` at ``k``."""
        t = self.table.reset_index(drop=True)
        if k is None and method is None:
            b = self.best()
            k, method = int(b["k"]), b["method"]
        rows = t.index[t["k"] == k] if k is not None else t.index
        if method is not None:
            rows = rows[(t.loc[rows, "method"] == method).to_numpy()]
        if not len(rows):
            raise InputError(f"consensus: no partition with k = {k}"
                             + (f" and method {method!r}" if method else "")
                             + f"; k ranges over {sorted(t['k'].unique().tolist())} and methods "
                             f"are {preview(t['method'].unique())}")
        row = int(t.loc[rows, "ari_median"].idxmax())
        return pd.Series(self.partitions.iloc[row].to_numpy(), index=self.partitions.columns,
                         name=f"{t.loc[row, 'method']}_k{int(t.loc[row, 'k'])}")

    def _write_extras(self, folder: Path) -> None:
        from .plots import agreement_plot, coassociation_plot

        write_table(self.selected, folder / "selected.tsv")
        agreement_plot(self.table, folder / "agreement_by_k.png", self.selected)
        D = getattr(self, "distance_", None)
        if D is not None:
            coassociation_plot(D, self.labels().to_numpy(), folder / "coassociation.png")


def consensus(ensemble: np.ndarray, *, k_range=None, eac_linkages=EAC_LINKAGES,
              scc_deltas=SCC_DELTAS, seed: int = 0, backend: Backend | str | None = None,
              D: np.ndarray | None = None, metrics=("ari",), objects=None,
              quantile: float = 0.75) -> Consensus:
    """Consensus partitions for each k and method, scored against the ensemble.

    Returns a :class:`Consensus`: one row per (method, k) with the agreement scores, the
    partitions (rows × objects) in the table's order, and the selection (:func:`select`
    with ``quantile``). ``ensemble``: members × objects labels (NaN = missing); ``objects``:
    their names (default 0 … n−1). ``D``: a precomputed condensed co-association distance
    (else computed on ``backend``; kept on the result as ``distance_`` for its plot, not
    saved). ``metrics``: agreement scores (``ari`` always used for selection; add ``ami``,
    ``nmi`` to report them too).
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

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
    be = get_backend(backend)
    for delta in scc_deltas:
        # one embedding per δ serves every k (see cluster.spectral)
        emb = spectral_embedding(np.exp(-(S ** 2) / (2 * delta ** 2)), max(ks), backend=be)
        for k in ks:
            lab = spectral_labels(emb, k, seed)
            rows.append({"method": f"scc_{delta:.2f}", "k": k,
                         "n_clusters": len(np.unique(lab))})
            parts.append(lab)
    table = pd.DataFrame(rows)
    members = _Members(E)
    scores = pd.DataFrame([agreement(p, members, metrics=metrics) for p in parts])
    table = pd.concat([table, scores], axis=1)
    names = [str(o) for o in (objects if objects is not None else range(n))]
    if len(names) != n:
        raise InputError(f"consensus: {len(names)} object names for {n} objects")
    out = Consensus(table=table, partitions=pd.DataFrame(np.vstack(parts), columns=names),
                    selected=select(table, quantile=quantile))
    out.distance_ = D
    return out


def select(table: pd.DataFrame, *, quantile: float = 0.75) -> pd.DataFrame:
    """Per k the row with the highest median weighted ARI; keep the k at or above the
    ``quantile`` of those bests."""
    best = table.loc[table.groupby("k")["ari_median"].idxmax()]
    cut = best["ari_median"].quantile(quantile)
    return best.loc[best["ari_median"] >= cut].sort_values("ari_median", ascending=False)
