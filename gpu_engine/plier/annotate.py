"""Cross-validated annotation of LVs with pathways, and LV names.

For each LV i with a positive U column and each pathway j with U[j, i] > 0:

- positives: the genes of pathway j held out of the fit (the cross-validation mask);
- negatives: genes in none of the LV's positive pathways (``current`` mode) or genes not in
  pathway j (``multiplier`` mode);
- scores: Z[:, i]. AUC = U/(n_pos·n_neg) (Mann–Whitney U of the positives); the p-value is
  the one-sided ("greater") normal approximation with tie correction and continuity
  correction (R's ``wilcox.test`` asymptotic; scipy's ``mannwhitneyu(..., method=
  "asymptotic")``). FDR: Benjamini–Hochberg over all rows. Rows without positives or
  negatives get AUC 0.5 and p NaN, as in the reference.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import ndtr
from scipy.stats import rankdata

from ..stats import fdr_bh


def mann_whitney_greater(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """(AUC, one-sided p) of ``pos`` > ``neg`` (see the module docstring)."""
    n1, n2 = pos.size, neg.size
    if n1 == 0 or n2 == 0:
        return 0.5, math.nan
    both = np.concatenate([pos, neg])
    ranks = rankdata(both)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    _, counts = np.unique(both, return_counts=True)
    ties = float((counts.astype(np.float64) ** 3 - counts).sum())
    sigma = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))))
    if sigma == 0:
        return u / (n1 * n2), math.nan
    z = (u - n1 * n2 / 2.0 - 0.5) / sigma
    return u / (n1 * n2), float(ndtr(-z))


def crossval(Z: np.ndarray, U: np.ndarray, prior: np.ndarray, heldout: np.ndarray,
             pathways, mode: str = "current"):
    """The annotation table and matrices. ``Z`` genes × k, ``U`` P × k, ``prior`` genes × P
    (unmasked, small pathways zeroed), ``heldout`` genes × P bool. Returns
    ``(summary, Uauc, Up)``: summary columns ``pathway, lv, auc, pvalue, fdr`` (lv 1-based),
    Uauc (0 where not tested) and Up (1 where not tested), both P × k."""
    P, k = U.shape
    Uauc = np.zeros((P, k))
    Up = np.ones((P, k))
    rows = []
    member = prior > 0
    for i in range(k):
        paths = np.flatnonzero(U[:, i] > 0)
        if paths.size == 0:
            continue
        outside = ~member[:, paths].any(axis=1)
        for j in paths:
            pos_mask = heldout[:, j]
            neg_mask = outside if mode == "current" else ~member[:, j]
            auc, p = mann_whitney_greater(Z[pos_mask, i], Z[neg_mask & ~pos_mask, i])
            Uauc[j, i] = auc
            Up[j, i] = p
            # the reference builds its table as a character matrix: AUC and p pass through
            # 15 significant digits there (Uauc/Up keep full precision), which decides ties
            # at the naming cutoff below
            rows.append((pathways[j], i + 1, _r15(auc), _r15(p)))
    summary = pd.DataFrame(rows, columns=["pathway", "lv", "auc", "pvalue"])
    summary["lv"] = summary["lv"].astype(np.int64)
    summary["fdr"] = fdr_bh(summary["pvalue"].to_numpy()) if len(summary) else []
    return summary, Uauc, Up


def _r15(x: float) -> float:
    return float(f"{x:.15g}") if math.isfinite(x) else x


def lv_names(U: np.ndarray, Up: np.ndarray, summary: pd.DataFrame, pathways,
             fdr_cutoff: float = 0.01, fallback: bool = True) -> list[str]:
    """R's ``nameB``: zero U entries whose p (``Up``) exceeds the largest summary p with
    FDR < ``fdr_cutoff``; an LV is named "i,<pathway with the largest remaining
    coefficient>", else (``fallback``, current mode only) after its largest raw coefficient,
    else "LV i"."""
    sig = summary.loc[summary["fdr"] < fdr_cutoff, "pvalue"]
    cutoff = sig.max() if len(sig) else -np.inf
    Uuse = np.where(Up > cutoff, 0.0, U)
    names = []
    pathways = list(pathways)
    for i in range(U.shape[1]):
        if Uuse[:, i].max(initial=0) > 0:
            names.append(f"{i + 1},{pathways[int(np.argmax(Uuse[:, i]))]}")
        elif fallback and U[:, i].max(initial=0) > 0:
            names.append(f"{i + 1},{pathways[int(np.argmax(U[:, i]))]}")
        else:
            names.append(f"LV {i + 1}")
    return names
