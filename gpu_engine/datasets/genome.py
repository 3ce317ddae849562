"""Synthetic genome: genes on chromosomes, and an LD-like gene–gene correlation matrix.

The correlation comes from a sparse factor model. Along each chromosome sit LD "sources";
gene g loads on source k (at distance d from the gene's midpoint, d ≤ window/2) with
probability exp(−d/decay) and a N(0, strength²) weight. With A the genes × sources loadings
and ψ = 1 the private variance,

    R = D^{-1/2} (A Aᵀ + I) D^{-1/2},   D = diag(A Aᵀ + I),

so R is symmetric with unit diagonal, positive definite (smallest eigenvalue ≥ min 1/D), zero
between genes that share no source — in particular for genes more than ``window`` apart and
across chromosomes — and sampling z ~ MVN(0, R) costs one sparse product:
z = D^{-1/2}(A f + e) with f, e standard normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

# GRCh38 autosome lengths in Mb: the shape of the synthetic genome (scaled to its gene count).
CHROMOSOME_MB = np.array([248.96, 242.19, 198.30, 190.21, 181.54, 170.81, 159.35, 145.14,
                          138.39, 133.80, 135.09, 133.28, 114.36, 107.04, 101.99, 90.34, 83.26,
                          80.37, 58.62, 64.44, 46.71, 50.82])


def make_genes(n_genes: int, rng: np.random.Generator, spacing_mb: float) -> pd.DataFrame:
    """Genes sorted by (chromosome, start): columns ``gene`` (symbol-like, e.g. ``SG01234``),
    ``gene_id`` (Ensembl-like, ``ENSG9…``, versioned), ``chromosome`` (1–22), ``start``,
    ``end`` (bp, 1-based) and ``mid_mb`` (midpoint in Mb)."""
    lengths = CHROMOSOME_MB / CHROMOSOME_MB.sum() * n_genes * spacing_mb
    counts = rng.multinomial(n_genes, lengths / lengths.sum())
    chrom, mid = [], []
    for c, (n, length) in enumerate(zip(counts, lengths), start=1):
        # gene-dense regions, as in real genomes: most genes sit in clusters ~1 Mb wide
        centers = rng.uniform(0, length, size=max(1, int(length / 10)))
        clustered = rng.uniform(size=n) < 0.75
        pos = np.where(clustered, rng.choice(centers, size=n) + rng.normal(0, 0.6, size=n),
                       rng.uniform(0, length, size=n))
        chrom.append(np.full(n, c))
        mid.append(np.sort(np.clip(pos, 0.05, length)))
    chrom = np.concatenate(chrom)
    mid = np.concatenate(mid)
    gene_len = np.clip(rng.lognormal(np.log(25e3), 1.0, size=n_genes), 1e3, 1.5e6)
    start = np.maximum(1, (mid * 1e6 - gene_len / 2)).astype(np.int64)
    end = start + gene_len.astype(np.int64)
    symbols = rng.permutation(n_genes)  # symbols are not in genome order, as in real data
    return pd.DataFrame({
        "gene": [f"SG{i:05d}" for i in symbols],
        "gene_id": [f"ENSG9{i:010d}.1" for i in symbols],
        "chromosome": chrom.astype(np.int64),
        "start": start,
        "end": end,
        "mid_mb": (start + end) / 2e6,
    })


@dataclass
class LDFactor:
    """R = D^{-1/2}(A Aᵀ + I)D^{-1/2}; ``A`` genes × sources (CSR), ``scale`` = D^{-1/2}."""

    A: sp.csr_matrix
    scale: np.ndarray

    @property
    def n_genes(self) -> int:
        return self.A.shape[0]

    def correlation(self) -> np.ndarray:
        """The dense genes × genes correlation matrix R (float64)."""
        C = (self.A @ self.A.T).toarray()
        C = (C + C.T) / 2  # the sparse product's summation order is not symmetric in floats
        C[np.diag_indices_from(C)] += 1.0
        C *= self.scale[:, None] * self.scale[None, :]  # an exactly symmetric outer product
        C[np.diag_indices_from(C)] = 1.0
        return C

    def sample(self, n: int, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
        """``n`` independent draws of z ~ MVN(0, R), as a genes × n matrix."""
        f = rng.standard_normal((self.A.shape[1], n))
        e = rng.standard_normal((self.n_genes, n))
        z = self.A @ f
        z += e
        z *= self.scale[:, None]
        return z.astype(dtype, copy=False)


def ld_factor(genes: pd.DataFrame, rng: np.random.Generator, *, window_mb: float,
              decay_mb: float, source_spacing_mb: float, strength: float) -> LDFactor:
    """Build the sparse LD factor of :mod:`genome` for ``genes`` (see the module docstring)."""
    rows, cols, vals = [], [], []
    n_sources = 0
    half = window_mb / 2
    for _c, block in genes.groupby("chromosome", sort=True):
        mids = block["mid_mb"].to_numpy()
        idx = block.index.to_numpy()
        hi = mids.max() + half
        centers = np.arange(-half, hi + source_spacing_mb, source_spacing_mb)
        centers = centers + rng.uniform(0, source_spacing_mb, size=centers.size)
        for gi, m in zip(idx, mids):
            lo_k, hi_k = np.searchsorted(centers, [m - half, m + half])
            k = np.arange(lo_k, hi_k)
            d = np.abs(centers[k] - m)
            keep = k[(rng.uniform(size=k.size) < np.exp(-d / decay_mb)) & (d <= half)]
            rows.extend([gi] * keep.size)
            cols.extend((keep + n_sources).tolist())
            vals.extend((rng.standard_normal(keep.size) * strength).tolist())
        n_sources += centers.size
    A = sp.csr_matrix((vals, (rows, cols)), shape=(len(genes), n_sources))
    A.eliminate_zeros()
    diag = np.asarray(A.multiply(A).sum(axis=1)).ravel() + 1.0
    return LDFactor(A=A, scale=1.0 / np.sqrt(diag))
