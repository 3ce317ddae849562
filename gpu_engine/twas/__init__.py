"""TWAS layer: S-PrediXcan, S-MultiXcan and gene–gene correlation matrices, from the formats
users have (PredictDB SQLite models, MetaXcan SNP covariance files, GWAS summary statistics).

- :func:`read_model_db`, :func:`model_files` — prediction models (rsid or varID keys);
- :func:`read_covariance` — ``GENE RSID1 RSID2 VALUE`` covariance files as dense blocks;
- :func:`read_gwas`, :class:`GwasColumns`, :func:`harmonize` — GWAS parsing, z derivation and
  allele alignment with MetaXcan's semantics;
- :func:`spredixcan` (one tissue), :func:`spredixcan_tissues` (many, optionally over Dask),
  :func:`smultixcan` — the reference's statistics and output columns;
- :func:`gene_correlations` → :class:`GeneCorrelation` (dense or condensed output, read back
  by :func:`read_gene_corr` and by ``gpu-engine gls``).

All genes of a tissue (or all gene pairs of a chromosome) are computed at once: the
per-gene quadratic forms by the segmented Gram kernel (``gpu_engine.kernels.twas``), the
cross-gene products as one sparse matrix product per chromosome.
"""

from .covariance import CovarianceBlocks, read_covariance
from .gene_corr import (
                        GeneCorrelation,
                        PairwiseReference,
                        gene_correlations,
                        pairwise_reference,
                        read_gene_corr,
)
from .gwas import Gwas, GwasColumns, harmonize, read_gwas, read_gwas_file
from .models import ModelDB, model_files, read_model_db
from .smultixcan import SMultiXcanTable, smultixcan, write_smultixcan
from .spredixcan import SPrediXcanTable, spredixcan, spredixcan_tissues, write_spredixcan

__all__ = ["CovarianceBlocks", "read_covariance", "GeneCorrelation", "PairwiseReference", "gene_correlations",
           "pairwise_reference", "read_gene_corr", "Gwas", "GwasColumns", "harmonize",
           "read_gwas", "read_gwas_file", "ModelDB", "model_files", "read_model_db",
           "smultixcan", "write_smultixcan", "spredixcan", "spredixcan_tissues",
           "write_spredixcan", "SMultiXcanTable", "SPrediXcanTable"]
