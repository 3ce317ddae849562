"""PhenoPLIER's per-LV gene-correlation folder (the production input of ``GLSPhenoplier``).

Layout: ``gene_names.parquet`` (``position``, ``gene``: the row and column order) and one
``<LV>.npz`` per LV, a scipy.sparse matrix holding the **inverse Cholesky factor** L⁻¹
(lower-triangular) of that LV's sub-matrix R_ℓ: the identity, plus R's entries among the LV's
top genes. :func:`read_lv_corr_folder` recovers R_ℓ = L Lᵀ on each LV's block (the genes with
an off-diagonal entry; everything else is the identity) and assembles one genes × genes
matrix holding every requested LV's block, which the sub-matrix GLS restricts per LV again —
exact as long as each block lies inside the LV model's top genes (checked by
:func:`check_blocks`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, InputFileNotFoundError, preview


def is_lv_corr_folder(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "gene_names.parquet").is_file() and any(p.glob("*.npz"))


def read_lv_corr_folder(path: str | os.PathLike, lvs) -> tuple[pd.DataFrame, dict]:
    """``(R, blocks)``: the genes × genes matrix with every LV's R_ℓ block, and LV → the block's
    genes. ``lvs``: the LVs to read (each needs ``<LV>.npz``)."""
    from scipy import sparse
    from scipy.linalg import solve_triangular

    root = Path(path)
    names = pd.read_parquet(root / "gene_names.parquet")
    if not {"position", "gene"} <= set(names.columns):
        raise InputError(f"{root / 'gene_names.parquet'}: needs columns 'position' and 'gene'")
    genes = names.sort_values("position")["gene"].astype(str).to_numpy()
    n = len(genes)
    missing = [lv for lv in lvs if not (root / f"{lv}.npz").is_file()]
    if missing:
        raise InputFileNotFoundError(f"{root}: no correlation file for LV(s) "
                                     f"{preview(missing)} (expected <LV>.npz)")
    R = np.eye(n)
    written = np.zeros((n, n), bool)
    blocks = {}
    for lv in lvs:
        f = root / f"{lv}.npz"
        Linv = sparse.load_npz(f).tocsr()
        if Linv.shape != (n, n):
            raise InputError(f"{f}: {Linv.shape[0]} × {Linv.shape[1]}, but gene_names.parquet "
                             f"lists {n:,} genes")
        off = sparse.tril(Linv, k=-1)
        if sparse.triu(Linv, k=1).nnz:
            raise InputError(f"{f}: not lower-triangular; expected the inverse Cholesky factor "
                             "of the LV's correlation sub-matrix")
        idx = np.unique(np.concatenate(off.nonzero())) if off.nnz else np.zeros(0, np.int64)
        if idx.size:
            B = Linv[idx][:, idx].toarray()
            Lb = solve_triangular(B, np.eye(idx.size), lower=True)
            Rb = Lb @ Lb.T
            prev = written[np.ix_(idx, idx)]
            if prev.any() and not np.allclose(R[np.ix_(idx, idx)][prev], Rb[prev], rtol=0,
                                              atol=1e-8):
                raise InputError(f"{f}: its correlations disagree with another LV's of the "
                                 "same folder for shared genes; the files come from different "
                                 "matrices")
            R[np.ix_(idx, idx)] = Rb
            written[np.ix_(idx, idx)] = True
        blocks[lv] = list(genes[idx])
    return pd.DataFrame(R, index=pd.Index(genes, name="gene"), columns=genes), blocks


def check_blocks(blocks: dict, lv_loadings: pd.DataFrame, top_fraction: float = 0.01) -> None:
    """Each LV's block must lie inside its top genes (loading ≥ the 1 − ``top_fraction``
    quantile over all the model's genes, the sub-matrix rule); otherwise the folder was built
    for another LV model and the fit would not be the reference's. Block genes absent from
    the model are not fitted and do not matter."""
    for lv, blk in blocks.items():
        z = lv_loadings[lv].astype(np.float64)
        z.index = z.index.astype(str)
        top = set(z.index[z >= z.quantile(1 - top_fraction)])
        outside = [g for g in blk if g in z.index and g not in top]
        if outside:
            raise InputError(f"correlation folder: LV {lv}'s block has {len(outside)} gene(s) "
                             f"outside the LV model's top {top_fraction:.0%} (e.g. "
                             f"{preview(outside)}); the folder was built for another LV model")
