"""Weights aligned to covariance blocks, and the batched quadratic forms WᵀΓW over genes.

Every TWAS statistic here is built from per-gene quadratic forms of model weights with a SNP
covariance block. :func:`block_rows` turns long ``(gene, snp, column, weight)`` tables into
the ragged buffers of :mod:`gpu_engine.kernels.twas`; :func:`gram` runs the kernel for the
chosen backend and returns one m_g × m_g matrix per gene.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..backend import Backend, get_backend
from .covariance import CovarianceBlocks


def snp_table(cov: CovarianceBlocks) -> pd.DataFrame:
    """One row per (block, SNP): ``gene``, ``snp``, ``block`` (gene index), ``row`` (flat
    position in ``cov.snps``), ``local`` (index inside the block), ``var`` (Γ_ii, NaN where the
    file gave no variance)."""
    sizes = cov.sizes
    block = np.repeat(np.arange(len(cov), dtype=np.int64), sizes)
    local = np.arange(block.size, dtype=np.int64) - cov.snp_off[:-1][block]
    var = cov.values[cov.cov_off[block] + local * sizes[block] + local]
    var = np.where(cov.has_diag, var, np.nan)
    return pd.DataFrame({"gene": cov.genes[block], "snp": cov.snps, "block": block,
                         "row": np.arange(block.size, dtype=np.int64), "local": local,
                         "var": var})


def gram(cov: CovarianceBlocks, blocks: np.ndarray, W_rows: np.ndarray, W_cols: np.ndarray,
         W_vals: np.ndarray, m: np.ndarray, *, backend: Backend | str = "cpu",
         kernel: str | None = None) -> list[np.ndarray]:
    """WᵀΓW for the genes ``blocks`` (indices into ``cov``), gene i with ``m[i]`` columns.

    ``W_rows`` (flat SNP positions in ``cov.snps``, which fixes the block), ``W_cols`` (column
    within the gene) and ``W_vals`` give the non-zero weights. ``kernel``: ``"reference"``
    (NumPy), or the backend's compiled kernel (default). Returns host matrices, one per gene.
    """
    from ..kernels import registry
    from ..kernels import twas as kt

    be = get_backend(backend)
    blocks = np.asarray(blocks, np.int64)
    m = np.asarray(m, np.int64)
    n = cov.sizes[blocks]
    _, w_off, out_off = kt.pack_offsets(n, m)
    # gene index of each weight: map the flat SNP row to its block, then to the position
    owner = np.searchsorted(cov.snp_off, W_rows, side="right") - 1
    pos = np.full(len(cov), -1, np.int64)
    pos[blocks] = np.arange(blocks.size)
    gi = pos[owner]
    if np.any(gi < 0):
        raise ValueError("weights reference a block not in `blocks`")
    local = W_rows - cov.snp_off[owner]
    W = np.zeros(int((n * m).sum()), np.float64)
    W[w_off[gi] + local * m[gi] + W_cols] = W_vals
    # the covariance blocks of these genes, repacked contiguously
    c_off = np.zeros(blocks.size, np.int64)
    np.cumsum((n * n)[:-1], out=c_off[1:])
    if blocks.size == len(cov) and np.array_equal(blocks, np.arange(len(cov))):
        C = cov.values
    else:
        C = np.concatenate([cov.values[cov.cov_off[b]:cov.cov_off[b] + nn * nn]
                            for b, nn in zip(blocks, n)]) if blocks.size else np.zeros(0)
    out = be.asarray(np.zeros(int((m * m).sum()), np.float64))
    registry.call("segmented_gram", be, np.ascontiguousarray(C), c_off, W, w_off, n, m,
                  out_off, out, kernel=kernel)
    out = be.to_host(out)
    return [out[o:o + k * k].reshape(k, k) for o, k in zip(out_off, m)]
