"""Enrichment of LVs: in a user's gene set, and in sample contexts.

:func:`gene_set_enrichment` — per LV, do the set's genes load higher than the other genes of
the model? The test PLIER's annotation uses (``gpu_engine.plier.annotate``): Mann–Whitney U of
the set's loadings against the rest, AUC = U / (n_in · n_out), one-sided p from the normal
approximation with the tie-corrected variance and continuity correction (scipy's
``mannwhitneyu(alternative="greater", method="asymptotic")``), BH FDR over the LVs tested.

:func:`context_enrichment` — per LV, which sample attributes (tissue, cell type, condition…)
are over-represented among the samples where the LV is most active: the top ``top_fraction``
of samples by B (LVs × samples, the PLIER fit of the compendium), against all samples with a
value for that attribute. One-sided hypergeometric test (Fisher's exact test for
over-representation), BH FDR over every LV × attribute value tested.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

from ..errors import InputError, preview
from ..plier.annotate import mann_whitney_greater
from ..results import TableResult, register
from ..stats import fdr_bh

log = logging.getLogger(__name__)

ENRICH_COLUMNS = ("lv", "auc", "pvalue", "fdr", "n_in_set", "n_genes", "top_set_genes")
CONTEXT_COLUMNS = ("lv", "attribute", "value", "n_top_with", "n_top", "n_with", "n_samples",
                   "fold", "pvalue", "fdr")


@register
class GeneSetEnrichment(TableResult):
    """Per-LV enrichment of one gene set (columns :data:`ENRICH_COLUMNS`); ``attrs`` holds
    ``set_genes`` (each set gene's top LVs) and the genes not in the model."""

    kind = "lv_gene_set_enrichment"


@register
class ContextEnrichment(TableResult):
    """Per LV × attribute value over-representation among the LV's top samples (columns
    :data:`CONTEXT_COLUMNS`)."""

    kind = "lv_context_enrichment"


def gene_set_enrichment(lv_loadings: pd.DataFrame, gene_set, *, lvs=None, n_top_lvs: int = 3,
                        name: str = "gene set") -> GeneSetEnrichment:
    """Enrichment of ``gene_set`` (genes, as in the LV model's index) in every LV.

    Returns a :class:`GeneSetEnrichment`, most enriched first: ``lv, auc, pvalue, fdr,
    n_in_set, n_genes, top_set_genes`` (the set's five highest-loading genes in that LV);
    ``attrs["set_genes"]`` maps each set gene to its ``n_top_lvs`` highest-loading LVs and
    ``attrs["missing_genes"]`` lists the set's genes the model lacks.
    """
    if not isinstance(lv_loadings, pd.DataFrame):
        raise InputError("the LV model must be a DataFrame of loadings (genes × LVs)")
    Z = lv_loadings
    if lvs is not None:
        lvs = [lvs] if isinstance(lvs, str) else list(lvs)
        bad = [x for x in lvs if x not in Z.columns]
        if bad:
            raise InputError(f"LV model: unknown LV(s) {preview(bad)}")
        Z = Z[lvs]
    genes = list(dict.fromkeys(str(g) for g in gene_set))
    index = Z.index.astype(str)
    member = index.isin(genes)
    missing = sorted(set(genes) - set(index[member]))
    if not member.any():
        raise InputError(f"{name}: none of its {len(genes)} genes ({preview(genes, 4)}) is in "
                         f"the LV model ({preview(list(index), 4)} …); use the model's gene "
                         "identifiers (symbols or Ensembl ids)")
    if member.all():
        raise InputError(f"{name}: every gene of the LV model is in the set; nothing to compare "
                         "it with")
    if missing:
        log.warning("%s: %d of its %d genes are not in the LV model and are left out: %s", name,
                    len(missing), len(genes), preview(missing))
    values = Z.to_numpy(np.float64)
    auc, p = np.array([mann_whitney_greater(values[member, j], values[~member, j])
                       for j in range(values.shape[1])]).reshape(-1, 2).T
    set_idx = np.flatnonzero(member)
    top_genes = []
    for j in range(values.shape[1]):
        order = set_idx[np.argsort(-values[set_idx, j], kind="stable")[:5]]
        top_genes.append(",".join(index[order]))
    out = pd.DataFrame({"lv": [str(c) for c in Z.columns], "auc": auc, "pvalue": p,
                        "fdr": fdr_bh(p), "n_in_set": int(member.sum()),
                        "n_genes": len(index), "top_set_genes": top_genes})
    out = out.sort_values(["pvalue", "lv"], kind="stable", na_position="last"
                          ).reset_index(drop=True)
    set_genes = {}
    for i in set_idx:
        order = np.argsort(-values[i], kind="stable")[:n_top_lvs]
        set_genes[str(index[i])] = [str(Z.columns[j]) for j in order if values[i, j] > 0]
    return GeneSetEnrichment.from_frame(out, name=name, set_genes=set_genes,
                                        missing_genes=missing)


def context_enrichment(B: pd.DataFrame, metadata: pd.DataFrame, *, attributes=None,
                       top_fraction: float = 0.05, min_samples: int = 3,
                       lvs=None) -> ContextEnrichment:
    """Over-representation of sample attributes among each LV's top samples by B.

    B : LVs × samples (a PLIER fit's ``B_``). metadata : samples × attributes (index: sample
    ids as B's columns; categorical columns such as tissue, cell_type, condition).
    attributes : the columns to test (default every column with 2–1,000 distinct values).
    top_fraction : the LV's top samples (ceil(top_fraction · samples), by B, highest first).
    min_samples : attribute values held by fewer samples are not tested.
    """
    if not isinstance(B, pd.DataFrame) or not isinstance(metadata, pd.DataFrame):
        raise InputError("B and the sample metadata must be DataFrames (B: LVs × samples; "
                         "metadata: samples as the index)")
    if not 0 < top_fraction < 1:
        raise InputError(f"top_fraction must lie in (0, 1), not {top_fraction!r}")
    if lvs is not None:
        lvs = [lvs] if isinstance(lvs, str) else list(lvs)
        bad = [x for x in lvs if x not in B.index]
        if bad:
            raise InputError(f"B: unknown LV(s) {preview(bad)}")
        B = B.loc[lvs]
    samples = B.columns.astype(str)
    meta = metadata.copy()
    meta.index = meta.index.astype(str)
    if meta.index.has_duplicates:
        raise InputError(f"sample metadata: duplicated sample ids "
                         f"{preview(meta.index[meta.index.duplicated()].unique())}")
    common = samples[samples.isin(meta.index)]
    if common.empty:
        raise InputError(f"sample metadata: none of its {len(meta)} samples "
                         f"({preview(list(meta.index), 3)}) is a sample of B "
                         f"({preview(list(samples), 3)}); the metadata must describe the "
                         "samples the PLIER model was fitted on, with the same ids")
    if len(common) < len(samples):
        log.warning("sample metadata: %d of B's %d samples have no metadata and are left out",
                    len(samples) - len(common), len(samples))
    if attributes is None:
        attributes = [c for c in meta.columns if 2 <= meta[c].nunique() <= 1000]
        if not attributes:
            raise InputError("sample metadata: no column with 2–1,000 distinct values to test; "
                             "name the attributes to test")
    else:
        attributes = [attributes] if isinstance(attributes, str) else list(attributes)
        bad = [a for a in attributes if a not in meta.columns]
        if bad:
            raise InputError(f"sample metadata: unknown column(s) {preview(bad)}; it has "
                             f"{preview(list(meta.columns))}")
    values = B.loc[:, B.columns[samples.isin(meta.index)]].to_numpy(np.float64)
    meta = meta.loc[common]
    rows = []
    for attr in attributes:
        col = meta[attr]
        have = col.notna().to_numpy()
        N = int(have.sum())
        n_top = max(1, math.ceil(top_fraction * N))
        labels = col.astype(str).to_numpy()
        levels = [v for v, k in col[have].astype(str).value_counts().items() if k >= min_samples]
        if not levels:
            continue
        vals = values[:, have]
        lab = labels[have]
        order = np.argsort(-vals, axis=1, kind="stable")[:, :n_top]
        for v in levels:
            with_v = lab == v
            K = int(with_v.sum())
            k = with_v[order].sum(axis=1)
            p = hypergeom.sf(k - 1, N, K, n_top)
            for i, lv in enumerate(B.index):
                rows.append((str(lv), attr, v, int(k[i]), n_top, K, N,
                             (k[i] / n_top) / (K / N), float(p[i])))
    out = pd.DataFrame(rows, columns=[c for c in CONTEXT_COLUMNS if c != "fdr"])
    out["fdr"] = fdr_bh(out["pvalue"].to_numpy()) if len(out) else []
    out = out.sort_values(["pvalue", "lv", "attribute", "value"], kind="stable"
                          ).reset_index(drop=True)
    return ContextEnrichment.from_frame(out[list(CONTEXT_COLUMNS)], top_fraction=top_fraction,
                                        attributes=list(attributes))
