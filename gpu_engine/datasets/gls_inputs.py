"""Stand-alone synthetic GLS inputs (no world folder): for tests and benchmarks at any size.

:func:`gls_inputs` returns an LV model, trait p-values, a gene–gene correlation matrix and
S-MultiXcan-like covariates with the structure of the real ones: genes on 22 chromosomes,
an LD-like correlation that is exactly zero beyond ``window_mb`` (the production matrices
are "within 5 Mb"), sparse non-negative loadings, and null p-values drawn from MVN(0, R).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

from .genome import ld_factor, make_genes


def gls_inputs(n_genes: int, n_lvs: int, n_traits: int, *, seed: int = 0,
               spacing_mb: float = 0.45, window_mb: float = 5.0, decay_mb: float = 1.0,
               source_spacing_mb: float = 0.2, strength: float = 0.5, density: float = 0.2,
               signal: float = 0.0, covariates: bool = False):
    """``(Z, P, R, cov)``: Z genes × LVs (``LV1`` …; a fraction ``density`` of the loadings
    non-zero, exponential), P genes × traits p-values (``trait1`` …), R genes × genes, and
    ``cov`` a long ``trait, gene, n, n_indep`` table (None unless ``covariates``).
    ``signal`` > 0 adds that much to trait1's z-scores of LV1's top-10% genes."""
    rng = np.random.default_rng(seed)
    genes = make_genes(n_genes, rng, spacing_mb=spacing_mb)
    ld = ld_factor(genes, rng, window_mb=window_mb, decay_mb=decay_mb,
                   source_spacing_mb=source_spacing_mb, strength=strength)
    names = genes["gene"].to_numpy()
    R = pd.DataFrame(ld.correlation(), index=names, columns=names)
    Z = pd.DataFrame(np.where(rng.uniform(size=(n_genes, n_lvs)) < density,
                              rng.exponential(size=(n_genes, n_lvs)), 0.0),
                     index=names, columns=[f"LV{i + 1}" for i in range(n_lvs)])
    z = ld.sample(n_traits, rng)
    if signal:
        z[:, 0] += signal * (Z["LV1"].to_numpy() > np.quantile(Z["LV1"], 0.9))
    P = pd.DataFrame(2 * ndtr(-np.abs(z)), index=names,
                     columns=[f"trait{i + 1}" for i in range(n_traits)])
    cov = None
    if covariates:
        size = n_genes * n_traits
        cov = pd.DataFrame({"trait": np.repeat(P.columns, n_genes),
                            "gene": np.tile(names, n_traits),
                            "n": rng.integers(5, 40, size).astype(float)})
        cov["n_indep"] = np.maximum(1.0, np.floor(cov["n"] * rng.uniform(0.1, 0.9, size)))
    return Z, P, R, cov
