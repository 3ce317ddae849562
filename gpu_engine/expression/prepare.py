"""What every expression model trains on: expression prepared as PredictDB does (per gene,
OLS of expression on the covariates with an intercept, residuals standardised: mean 0, sd
with ddof 1), the genotypes of the same samples after the SNP filters with missing dosages
set to the SNP's mean, and each gene's cis window."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError, preview
from .genotypes import Genotypes, cis_windows, impute_mean, snp_filter

log = logging.getLogger(__name__)


def prepare_expression(expression: pd.DataFrame, covariates: pd.DataFrame | None,
                       genotype_samples: pd.Index, report: dict | None = None
                       ) -> tuple[pd.DataFrame, pd.Index]:
    """(standardised residual expression, samples × genes; the samples used): the samples
    with both expression and genotypes (and covariates), in the expression table's order.
    NaN expression is an error naming the genes; constant genes are dropped and counted."""
    report = {} if report is None else report
    if not isinstance(expression, pd.DataFrame) or expression.empty:
        raise InputError("expression: expected a non-empty samples × genes table")
    expr = expression.copy()
    expr.index = expr.index.astype(str)
    expr.columns = expr.columns.astype(str)
    if expr.index.has_duplicates:
        raise InputError(f"expression: duplicated sample id(s) "
                         f"{preview(expr.index[expr.index.duplicated()].unique())}")
    samples = expr.index.intersection(pd.Index(genotype_samples).astype(str), sort=False)
    if covariates is not None:
        covariates = covariates.copy()
        covariates.index = covariates.index.astype(str)
        samples = samples.intersection(covariates.index, sort=False)
    report["samples_expression"] = len(expr)
    report["samples_genotyped"] = len(genotype_samples)
    report["samples_used"] = len(samples)
    if len(samples) < 10:
        raise InputError(f"only {len(samples)} sample(s) have both expression and genotypes "
                         f"(expression e.g. {preview(expr.index[:3])}, genotypes e.g. "
                         f"{preview(pd.Index(genotype_samples)[:3])}): the sample ids must "
                         "match (the .fam's individual ids, or the dosage file's columns)")
    Y = expr.loc[samples].to_numpy(np.float64)
    bad = ~np.isfinite(Y)
    if bad.any():
        genes = expr.columns[bad.any(0)]
        raise InputError(f"expression: {int(bad.sum())} missing or non-finite value(s) in "
                         f"{len(genes)} gene(s), e.g. {preview(genes)}; impute or drop them "
                         "first (PredictDB needs complete expression)")
    D = np.ones((len(samples), 1))
    if covariates is not None:
        C = covariates.loc[samples].to_numpy(np.float64)
        if not np.isfinite(C).all():
            raise InputError("covariates: missing or non-finite values; complete them first")
        D = np.column_stack([D, C])
    coef, *_ = np.linalg.lstsq(D, Y, rcond=None)
    R = Y - D @ coef
    sd = R.std(axis=0, ddof=1)
    const = ~(sd > 1e-12)
    report["genes_constant_dropped"] = [str(g) for g in expr.columns[const]]
    R = (R[:, ~const] - R[:, ~const].mean(0)) / sd[~const]
    return pd.DataFrame(R, index=samples, columns=expr.columns[~const]), samples


@dataclass
class TrainingData:
    """The inputs of every per-gene fit: ``X`` (n × m filtered, imputed dosages of the
    ``samples``), ``y`` (n × genes standardised residual expression), ``snps`` (the m SNPs'
    table), ``windows`` (gene → column positions of its cis SNPs, in SNP-table order, i.e.
    by position within a chromosome), ``genes`` (the genes with ≥ 2 cis SNPs, in gene-table
    order), ``gene_table`` and ``report`` (samples used, SNP-filter counts, dosages imputed,
    genes skipped)."""

    X: np.ndarray = field(repr=False)
    y: pd.DataFrame = field(repr=False)
    snps: pd.DataFrame = field(repr=False)
    windows: dict = field(repr=False)
    genes: list
    gene_table: pd.DataFrame = field(repr=False)
    report: dict
    samples: pd.Index = field(repr=False)


def training_data(genotypes: Genotypes, expression: pd.DataFrame, genes: pd.DataFrame,
                  covariates: pd.DataFrame | None = None, *, window: float = 1e6,
                  maf: float = 0.01, maf_filter: str = "min") -> TrainingData:
    """Samples matched, expression prepared, SNPs filtered and imputed, cis windows found;
    genes with < 2 cis SNPs skipped and counted (an error when none is left)."""
    report: dict = {}
    y_all, samples = prepare_expression(expression, covariates, genotypes.samples, report)
    geno = genotypes.subset(samples=samples)
    keep, counts = snp_filter(geno.snps, geno.dosages, maf=maf, maf_filter=maf_filter)
    report["snp_filter"] = counts
    X_all, n_imputed = impute_mean(geno.dosages[:, keep])
    snps = geno.snps.loc[keep].reset_index(drop=True)
    report["dosages_imputed"] = n_imputed
    if n_imputed:
        log.warning("%s: %d missing dosages set to the SNP's mean", genotypes.source, n_imputed)
    gtab = _gene_table(genes, y_all.columns)
    windows = cis_windows(snps, gtab, window)
    few = [g for g in gtab["gene"] if len(windows[g]) < 2]
    report["genes_skipped_fewer_than_2_snps"] = few
    todo = [g for g in gtab["gene"] if len(windows[g]) >= 2]
    if not todo:
        raise InputError(f"no gene has ≥ 2 cis SNPs within {window:,.0f} bp after the SNP "
                         f"filters ({len(few)} genes, {len(snps):,} SNPs kept: {counts}); "
                         "check the gene table's chromosome names and positions against the "
                         "genotypes")
    return TrainingData(X_all, y_all, snps, windows, todo, gtab, report, samples)


def _gene_table(genes: pd.DataFrame, expressed) -> pd.DataFrame:
    need = {"gene", "chromosome", "start", "end"}
    if not need <= set(genes.columns):
        raise InputError(f"gene table: needs columns {sorted(need)} (and optionally genename, "
                         f"gene_type); found {preview(genes.columns)}")
    g = genes.copy()
    g["gene"] = g["gene"].astype(str)
    if g["gene"].duplicated().any():
        raise InputError(f"gene table: duplicated gene(s) "
                         f"{preview(g.loc[g['gene'].duplicated(), 'gene'])}")
    for col, default in (("genename", g["gene"]), ("gene_type", "NA")):
        if col not in g:
            g[col] = default
    expressed = pd.Index(expressed).astype(str)
    absent = expressed.difference(g["gene"])
    if len(absent):
        log.warning("gene table: no row for %d expressed gene(s) (%s): not trained",
                    len(absent), preview(absent))
    g = g.loc[g["gene"].isin(expressed)]
    if g.empty:
        raise InputError(f"gene table: none of its genes is in the expression table "
                         f"({preview(expressed)}); check the gene ids (versions?)")
    return g.reset_index(drop=True)


