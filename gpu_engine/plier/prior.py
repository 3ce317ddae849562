"""Prior gene sets for PLIER: reading, merging by exact symbol, aligning to the data, the
cross-validation hold-out mask and the ridge pseudo-inverse Ĉ used to rank pathways.

A prior is a genes × pathways 0/1 DataFrame (index: gene symbols, columns: pathway names).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, preview

log = logging.getLogger(__name__)


def read_prior(path: str | os.PathLike) -> pd.DataFrame:
    """Read a prior: GMT, a long ``gene, pathway`` table or a wide 0/1 genes × pathways
    matrix (Parquet/TSV/CSV). Returns a float64 0/1 DataFrame, pathways in file order."""
    from ..io.gene_sets import gene_sets_to_matrix, read_gene_sets
    from ..io.tables import read_matrix, read_table

    path = Path(path)
    lower = path.name.lower()
    if not (lower.endswith(".gmt") or lower.endswith(".gmt.gz")) and path.exists():
        head = read_table(path, what="prior")
        if not ({"gene", "pathway"} <= set(head.columns) and len(head.columns) == 2):
            mat = read_matrix(path, what="prior matrix")
            values = mat.to_numpy()
            if not np.isin(values, (0, 1)).all():
                raise InputError(f"{path}: a wide prior matrix must hold only 0 and 1 "
                                 "(genes in rows, pathways in columns)")
            return mat.astype(np.float64)
    return gene_sets_to_matrix(read_gene_sets(path))


def merge_priors(*priors: pd.DataFrame) -> pd.DataFrame:
    """Column-bind priors, matching genes by EXACT symbol (R's ``combinePaths`` matched row
    names by prefix; the fixtures keep that quirk, this does not). Genes: the union in
    first-seen order; a gene absent from one prior is 0 there. Pathway names must be unique."""
    if not priors:
        raise InputError("merge_priors: give at least one prior")
    names = [c for p in priors for c in p.columns]
    dup = pd.Index(names)[pd.Index(names).duplicated()]
    if len(dup):
        raise InputError(f"merge_priors: pathway names repeat across priors: {preview(dup)}; "
                         "rename them first")
    genes = pd.Index(dict.fromkeys(str(g) for p in priors for g in p.index), name="gene")
    parts = [p.set_axis(p.index.astype(str)).reindex(genes, fill_value=0) for p in priors]
    return pd.concat(parts, axis=1).astype(np.float64)


@dataclass
class Aligned:
    """Data and prior on the common genes (rows in the same order)."""

    Y: pd.DataFrame
    prior: pd.DataFrame
    n_data_genes: int
    n_prior_genes: int


def align(Y: pd.DataFrame, prior: pd.DataFrame) -> Aligned:
    """Keep the genes in both, in the data's order (R's ``commonRows``)."""
    for what, frame in (("expression data", Y), ("prior", prior)):
        if frame.index.has_duplicates:
            raise InputError(f"{what}: duplicated gene names {preview(frame.index[frame.index.duplicated()])}; "
                             "make genes unique first")
    common = Y.index[Y.index.isin(prior.index)]
    if len(common) == 0:
        raise InputError(f"no genes in common between the data ({preview(Y.index)}) and the "
                         f"prior ({preview(prior.index)}); are both gene symbols?")
    Yc = Y if len(common) == len(Y) else Y.loc[common]  # no copy when every gene is kept
    return Aligned(Yc, prior.loc[common].astype(np.float64), len(Y), len(prior))


def zero_small_pathways(prior: pd.DataFrame, min_genes: int) -> tuple[pd.DataFrame, list[str]]:
    """Zero the columns with fewer than ``min_genes`` member genes (columns are kept)."""
    counts = prior.sum(axis=0)
    small = list(prior.columns[counts < min_genes])
    if len(small) == prior.shape[1]:
        raise InputError(f"every pathway of the prior has fewer than min_genes={min_genes} genes "
                         "among the genes shared with the data (largest: "
                         f"{int(counts.max())}); lower min_genes or use a larger prior")
    out = prior.copy()
    out.loc[:, small] = 0.0
    return out, small


def heldout_table(prior: pd.DataFrame, seed: int, frac: float = 0.2) -> pd.DataFrame:
    """Draw the cross-validation hold-out: for each pathway with members, trunc(n·frac) of
    its genes at random (NumPy's generator; R's RNG is not reproduced). Columns
    ``pathway, gene``."""
    rng = np.random.default_rng(seed)
    rows = []
    values = prior.to_numpy()
    for j, name in enumerate(prior.columns):
        members = np.flatnonzero(values[:, j] > 0)
        take = int(len(members) * frac)
        if take:
            for g in rng.choice(members, size=take, replace=False):
                rows.append((name, prior.index[g]))
    return pd.DataFrame(rows, columns=["pathway", "gene"])


def mask_from_table(prior: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """Boolean genes × pathways mask of held-out memberships from a ``pathway, gene`` table
    (e.g. a reference run's ``heldOutGenes.parquet``). Rows naming pathways or genes outside
    the aligned prior are an error (they would silently change the cross-validation)."""
    if not {"pathway", "gene"} <= set(table.columns):
        raise InputError(f"heldout: expected columns 'pathway' and 'gene', got {list(table.columns)}")
    gpos = pd.Series(np.arange(len(prior)), index=prior.index)
    ppos = pd.Series(np.arange(prior.shape[1]), index=prior.columns)
    gi = gpos.reindex(table["gene"].astype(str).to_numpy())
    pi = ppos.reindex(table["pathway"].astype(str).to_numpy())
    bad = gi.isna().to_numpy() | pi.isna().to_numpy()
    if bad.any():
        raise InputError(f"heldout: {int(bad.sum())} row(s) name a gene or pathway not in the "
                         f"aligned prior, e.g. {preview(table[bad].apply(tuple, axis=1))}; the "
                         "table must come from a run on the same data and prior")
    mask = np.zeros(prior.shape, bool)
    mask[gi.to_numpy(int), pi.to_numpy(int)] = True
    if (prior.to_numpy()[mask] == 0).any():
        raise InputError("heldout: some held-out (pathway, gene) pairs are not memberships of "
                         "the prior (after zeroing pathways below min_genes)")
    return mask


def ridge_pinv(C: np.ndarray, alpha: float = 5.0) -> np.ndarray:
    """pinv_ridge(CᵀC, α) = V·diag(d/(d² + α²))·Uᵀ from the SVD of CᵀC (pathways ×
    pathways). Zero singular values drop out."""
    U, d, Vt = np.linalg.svd(C.T @ C)
    w = d / (d * d + alpha * alpha)
    return (Vt.T * w) @ U.T


def chat(C: np.ndarray, alpha: float = 5.0) -> np.ndarray:
    """Ĉ = pinv_ridge(CᵀC, α)·Cᵀ (pathways × genes), used to rank pathways per LV. The fit
    never forms it: Ĉ·Z = pinv_ridge(CᵀC, α)·(CᵀZ) with a sparse CᵀZ."""
    return ridge_pinv(C, alpha) @ C.T
