"""Expression prepared as PredictDB does: per gene, OLS of expression on the covariates with
an intercept, residuals standardised (mean 0, sd with ddof 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError, preview


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
