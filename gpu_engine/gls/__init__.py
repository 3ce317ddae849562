"""PhenoPLIER's GLS module–trait association, for every LV × trait pair at once.

- :func:`associate`: the regressions (sub-matrix or full correlation mode, binary or
  continuous LV predictor, optional gene covariates) with β, SE, t, two- and one-sided p
  and BH FDR, on the CPU or GPU backend, partitioned over a Dask cluster when given one.
- :func:`read_smultixcan`, :func:`trait_values`, :func:`covariate_matrices`: inputs in the
  reference's formats and semantics.
- :func:`associate` with ``condition_on``, :func:`joint_associate`: an LV tested given other
  LVs (a list, the overlapping LVs, or each trait's forward-selected discoveries), and sets
  of LVs fitted jointly (:mod:`gpu_engine.gls.conditional`).
- :func:`null_calibration`: per-LV empirical type-I error on null traits simulated from
  the correlation structure, with a QQ plot.

The model, its parity traps and why it is fast are described in docs/gls.md; the
reference is ``phenoplier``'s ``gls.GLSPhenoplier`` (statsmodels GLS per pair).
"""

from .association import RESULT_COLUMNS, GLSResults, associate
from .conditional import conditional_associate, joint_associate
from .inputs import (
    COVARIATES,
    GENE_COVARIATES,
    SNP_COVARIATES,
    SMultiXcanResults,
    covariate_matrices,
    read_smultixcan,
    read_traits,
    snp_covariates,
    trait_values,
    with_gene_table,
)
from .model import diagonal_blocks, predictor_columns, prepare

__all__ = ["RESULT_COLUMNS", "GLSResults", "associate", "conditional_associate", "joint_associate",
           "COVARIATES", "GENE_COVARIATES", "SNP_COVARIATES", "SMultiXcanResults",
           "snp_covariates", "with_gene_table",
           "covariate_matrices", "read_smultixcan", "read_traits", "trait_values", "diagonal_blocks",
           "predictor_columns", "prepare", "null_calibration", "qq_plot"]


def __getattr__(name):
    if name in ("null_calibration", "qq_plot", "simulate_null_traits", "NullCalibration"):
        from . import null

        return getattr(null, name)
    raise AttributeError(name)
