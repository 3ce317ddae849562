"""Core genes of significant LV–trait pairs, and a per-trait gene score from a trait's modules.

:func:`core_genes`: for every LV–trait pair significant in a GLS run, the LV's top genes
(the binary predictor's rule: x > 0 and x ≥ the (1 − top_fraction) quantile of the LV's
loadings over the genes tested) with their loading, the trait's gene-level p-value and TWAS
rank, and ``module_only``: the gene is among the module's top genes but the TWAS alone misses
it (p ≥ ``twas_threshold``, by default Bonferroni 0.05 / the trait's genes).

:func:`gene_scores`: for trait t with significant LVs S_t (FDR < ``fdr``),

    score(g, t) = Σ_{ℓ ∈ S_t} β̂_ℓt · z̃_gℓ,   z̃_gℓ = Z_gℓ / max_g' Z_g'ℓ

Rationale: in the GLS model β̂_ℓt is the rise in the trait's standardized −log10 p that
membership of module ℓ predicts; z̃ is a gene's membership of ℓ on [0, 1] (its loading relative
to the LV's largest), so the score is the association the trait's significant modules predict
for the gene, whether or not its own TWAS signal reaches significance. Only β̂ > 0 counts
(the test is one-sided). Genes outside every significant module score 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError, preview
from ..results import TableResult, register

CORE_COLUMNS = ("trait", "lv", "gene", "loading", "loading_rank", "twas_pvalue", "twas_rank",
                "module_only", "lv_beta", "lv_fdr")
SCORE_COLUMNS = ("trait", "gene", "score", "rank", "n_lvs", "twas_pvalue", "twas_rank")


@register
class CoreGenes(TableResult):
    """Top genes of each significant LV–trait pair (columns :data:`CORE_COLUMNS`)."""

    kind = "lv_core_genes"


@register
class GeneScores(TableResult):
    """Per-trait module-based gene scores (columns :data:`SCORE_COLUMNS`)."""

    kind = "lv_gene_scores"


def _significant(gls: pd.DataFrame, fdr: float) -> pd.DataFrame:
    need = {"lv", "trait", "beta", "fdr"}
    if not need <= set(gls.columns):
        raise InputError(f"GLS results: missing column(s) {preview(sorted(need - set(gls.columns)))}"
                         " (give the table `gpu-engine gls` writes)")
    sig = gls[(gls["fdr"] < fdr) & (gls["beta"] > 0)]
    return pd.DataFrame({"lv": sig["lv"].astype(str).to_numpy(),
                         "trait": sig["trait"].astype(str).to_numpy(),
                         "beta": sig["beta"].to_numpy(np.float64),
                         "fdr": sig["fdr"].to_numpy(np.float64)})


def _check(Z: pd.DataFrame, pvalues: pd.DataFrame, sig: pd.DataFrame):
    if not isinstance(Z, pd.DataFrame) or not isinstance(pvalues, pd.DataFrame):
        raise InputError("the LV model and the trait p-values must be DataFrames (genes as the "
                         "index)")
    lvs = set(Z.columns.astype(str))
    bad = sorted(set(sig["lv"]) - lvs)
    if bad:
        raise InputError(f"GLS results name LV(s) {preview(bad)} that the LV model lacks; give "
                         "the LV model the GLS run used")
    bad = sorted(set(sig["trait"]) - set(pvalues.columns.astype(str)))
    if bad:
        raise InputError(f"GLS results name trait(s) {preview(bad)} without gene p-values; give "
                         "the S-MultiXcan results the GLS run used")
    genes = Z.index.intersection(pvalues.index)
    if genes.empty:
        raise InputError("the LV model and the trait p-values share no gene; check that both use "
                         "gene symbols (or both Ensembl ids)")
    return genes


def _twas(pvalues: pd.DataFrame, trait: str, genes: pd.Index):
    p = pvalues[trait].reindex(genes).to_numpy(np.float64)
    rank = pd.Series(p).rank(method="min").to_numpy()  # 1 = strongest; NaN stays NaN
    return p, rank


def core_genes(gls: pd.DataFrame, lv_loadings: pd.DataFrame, pvalues: pd.DataFrame, *,
               fdr: float = 0.05, top_fraction: float = 0.01,
               twas_threshold: float | None = None) -> CoreGenes:
    """The top genes of every significant LV–trait pair (see the module docstring).

    gls : a GLS result table (``lv, trait, beta, fdr``); pairs with FDR < ``fdr`` and β > 0.
    lv_loadings : genes × LVs Z. pvalues : genes × traits gene-level p-values (S-MultiXcan).
    Returns :class:`CoreGenes`, pairs by FDR then genes by loading; ``attrs["twas_thresholds"]``
    holds each trait's TWAS threshold.
    """
    Z = lv_loadings.copy()
    Z.columns = Z.columns.astype(str)
    pvalues = pvalues.copy()
    pvalues.columns = pvalues.columns.astype(str)
    sig = _significant(gls, fdr).sort_values(["fdr", "trait", "lv"], kind="stable")
    genes = _check(Z, pvalues, sig)
    Zg = Z.loc[genes]
    rows = []
    cache = {}
    for r in sig.itertuples():
        if r.trait not in cache:
            p, rank = _twas(pvalues, r.trait, genes)
            n = int(np.isfinite(p).sum())
            thr = twas_threshold if twas_threshold is not None else 0.05 / max(n, 1)
            cache[r.trait] = (p, rank, thr)
        p, rank, thr = cache[r.trait]
        ok = np.isfinite(p)
        x = Zg[r.lv].to_numpy(np.float64)
        q = np.quantile(x[ok], 1.0 - top_fraction)
        top = np.flatnonzero(ok & (x > 0) & (x >= q))
        top = top[np.argsort(-x[top], kind="stable")]
        for k, i in enumerate(top, start=1):
            rows.append((r.trait, r.lv, genes[i], x[i], k, p[i], rank[i], bool(p[i] >= thr),
                         r.beta, r.fdr))
    out = pd.DataFrame(rows, columns=list(CORE_COLUMNS))
    return CoreGenes.from_frame(out, fdr=fdr, top_fraction=top_fraction,
                                twas_thresholds={t: c[2] for t, c in cache.items()})


def gene_scores(gls: pd.DataFrame, lv_loadings: pd.DataFrame, pvalues: pd.DataFrame, *,
                fdr: float = 0.05, traits=None) -> GeneScores:
    """Per trait with a significant LV: every gene's module score (module docstring), its rank
    (1 = highest), the number of significant LVs it loads on, and its own TWAS p and rank."""
    Z = lv_loadings.copy()
    Z.columns = Z.columns.astype(str)
    pvalues = pvalues.copy()
    pvalues.columns = pvalues.columns.astype(str)
    sig = _significant(gls, fdr)
    if traits is not None:
        sig = sig[sig["trait"].isin(set(traits))]
    genes = _check(Z, pvalues, sig)
    Zg = Z.loc[genes].to_numpy(np.float64)
    zmax = Zg.max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        Zn = np.where(zmax > 0, Zg / zmax, 0.0)
    col = {lv: j for j, lv in enumerate(Z.columns)}
    parts = []
    for trait, block in sig.groupby("trait", sort=False):
        idx = [col[lv] for lv in block["lv"]]
        score = Zn[:, idx] @ block["beta"].to_numpy()
        n_lvs = (Zn[:, idx] > 0).sum(axis=1)
        p, prank = _twas(pvalues, trait, genes)
        rank = pd.Series(-score).rank(method="min").to_numpy()
        parts.append(pd.DataFrame({"trait": trait, "gene": genes, "score": score,
                                   "rank": rank.astype(np.int64), "n_lvs": n_lvs,
                                   "twas_pvalue": p, "twas_rank": prank}))
    out = (pd.concat(parts, ignore_index=True) if parts
           else pd.DataFrame(columns=list(SCORE_COLUMNS)))
    out = out.sort_values(["trait", "rank"], kind="stable").reset_index(drop=True)
    return GeneScores.from_frame(out[list(SCORE_COLUMNS)], fdr=fdr)


def prioritization_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """AUC of ``scores`` for the genes with ``truth`` True (ties count ½): the probability that
    a true gene outranks a false one."""
    from ..plier.annotate import mann_whitney_greater

    ok = np.isfinite(scores)
    s, t = scores[ok], truth[ok]
    if t.all() or not t.any():
        return float("nan")
    return float(mann_whitney_greater(s[t], s[~t])[0])
