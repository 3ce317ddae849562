"""Verify the planted structure of a synthetic world from its files.

:func:`check_world` reads a world back through the same readers the pipeline uses and
returns one row per check — what was measured, the target and whether it holds:

- R is symmetric with unit diagonal, positive definite (per chromosome block), exactly zero
  across chromosomes and beyond the LD window (block-banded), with ~1% non-zero entries;
- null traits' p-values are uniform (Kolmogorov–Smirnov over genes that are exactly
  independent: on different chromosomes or further apart than the LD window), and their
  genomic inflation λ_GC is ≈ 1;
- causal modules' top genes carry the trait signal (median p-value on them);
- the true module loadings are recoverable from the expression data: each loading vector
  lies almost entirely in the top principal subspace of the row-standardized expression;
- the drug gold standard has both labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .world import World


def _row(check: str, value: float, target: str, ok: bool) -> dict:
    return {"check": check, "value": float(value), "target": target, "ok": bool(ok)}


def independent_genes(genes: pd.DataFrame, window_mb: float) -> np.ndarray:
    """Row positions of a set of genes pairwise independent under R: per chromosome, greedily
    keep genes more than ``window_mb`` apart (R is exactly 0 between them)."""
    mid = (genes["start"].to_numpy() + genes["end"].to_numpy()) / 2e6
    keep = []
    for _, idx in genes.groupby("chromosome").indices.items():
        idx = idx[np.argsort(mid[idx])]
        last = -np.inf
        for i in idx:
            if mid[i] - last > window_mb:
                keep.append(i)
                last = mid[i]
    return np.array(sorted(keep))


def module_recovery(world: World, k: int | None = None) -> np.ndarray:
    """For each true module, the fraction of its loading vector's norm inside the top-``k``
    principal subspace (``k`` = number of modules) of the row-standardized expression.

    Streams the expression parts twice (row moments, then the genes × genes Gram matrix), so
    the full 37,000-sample matrix is never in memory."""
    Z = world.truth("Z")
    k = k or Z.shape[1]
    n = 0
    s1 = s2 = None
    for part in world.iter_expression():
        v = part.to_numpy()
        s1 = v.sum(1) if s1 is None else s1 + v.sum(1)
        s2 = (v * v).sum(1) if s2 is None else s2 + (v * v).sum(1)
        n += v.shape[1]
    mean = s1 / n
    sd = np.sqrt(np.maximum(s2 / n - mean ** 2, 0) * n / (n - 1))
    G = None
    genes = None
    for part in world.iter_expression():
        genes = part.index
        v = (part.to_numpy() - mean[:, None]) / sd[:, None]
        G = v @ v.T if G is None else G + v @ v.T
    _, vecs = np.linalg.eigh(G)
    U = vecs[:, -k:]
    # in standardized coordinates a module's loading pattern is Z[g, m] / sd_g
    Zv = Z.loc[genes].to_numpy() / (sd / np.median(sd))[:, None]
    captured = np.linalg.norm(U.T @ Zv, axis=0) / np.linalg.norm(Zv, axis=0)
    return captured


def check_world(world: World | str, *, recovery: bool = True) -> pd.DataFrame:
    """Check a world's planted structure; returns a table ``check, value, target, ok``."""
    if not isinstance(world, World):
        world = World(world)
    cfg = world.config
    rows = []
    genes = world.genes()
    R = world.gene_corr()
    if not R.index.equals(pd.Index(genes["gene"])):
        raise AssertionError("gene_corr rows are not in genes.parquet order")
    Rv = R.to_numpy()
    rows.append(_row("R symmetric (max |R - Rᵀ|)", np.abs(Rv - Rv.T).max(), "0", np.array_equal(Rv, Rv.T)))
    diag_err = np.abs(np.diag(Rv) - 1).max()
    rows.append(_row("R unit diagonal (max |diag - 1|)", diag_err, "0", diag_err == 0))
    chrom = genes["chromosome"].to_numpy()
    mid = (genes["start"].to_numpy() + genes["end"].to_numpy()) / 2e6
    min_eig = np.inf
    for idx in genes.groupby("chromosome").indices.values():
        min_eig = min(min_eig, np.linalg.eigvalsh(Rv[np.ix_(idx, idx)])[0])
    cross = chrom[:, None] != chrom[None, :]
    far = (~cross) & (np.abs(mid[:, None] - mid[None, :]) > cfg.ld_window_mb)
    rows.append(_row("R positive definite (min eigenvalue)", min_eig, "> 0", min_eig > 0))
    rows.append(_row("R zero across chromosomes (max |r|)", np.abs(Rv[cross]).max(), "0",
                     not Rv[cross].any()))
    far_max = np.abs(Rv[far]).max() if far.any() else 0.0
    rows.append(_row(f"R zero beyond {cfg.ld_window_mb:g} Mb (max |r|)", far_max, "0",
                     far_max == 0))
    density = (np.count_nonzero(Rv) - len(Rv)) / (Rv.size - len(Rv))
    rows.append(_row("R off-diagonal non-zero fraction", density, "0.1%–5% (sparse, banded)",
                     0.001 <= density <= 0.05))
    del Rv, cross, far

    truth_traits = world.truth("traits")
    null = truth_traits.loc[truth_traits["is_null"], "trait"].tolist()
    active = truth_traits.loc[~truth_traits["is_null"], "trait"].tolist()
    indep = genes["gene"].to_numpy()[independent_genes(genes, cfg.ld_window_mb)]
    pvals = []
    chi2 = []
    for t in null:
        p = world.smultixcan(t).set_index("gene_name")["pvalue"]
        pvals.append(p.loc[indep].to_numpy())
        chi2.append(sps.chi2.isf(p.to_numpy(), 1))
    if pvals:
        pooled = np.concatenate(pvals)
        ks = sps.kstest(pooled, "uniform").pvalue
        rows.append(_row(f"null traits uniform (KS p, {len(null)} traits × {len(indep)} "
                         "independent genes)", ks, "> 0.001", ks > 0.001))
        lam = np.median(np.concatenate(chi2)) / sps.chi2.ppf(0.5, 1)
        rows.append(_row("null traits λ_GC", lam, "0.9–1.1", 0.9 <= lam <= 1.1))

    tm = world.truth("trait_modules")
    Z = world.truth("Z")
    n_top = max(cfg.min_top_genes, int(round(cfg.top_fraction * cfg.n_genes)))
    top = {m: Z[m].nlargest(n_top).index for m in Z.columns}
    sample = tm[tm["trait"].isin(active[:50])]
    med = []
    for t, group in sample.groupby("trait"):
        p = world.smultixcan(t).set_index("gene_name")["pvalue"]
        med.extend(float(np.median(p.loc[top[m]])) for m in group["module"])
    if med:
        value = float(np.median(med))
        rows.append(_row(f"signal on causal modules' top {n_top} genes (median p)", value,
                         "< 0.25 (null: 0.5)", value < 0.25))

    if recovery:
        captured = module_recovery(world)
        frac = float((captured >= 0.8).mean())
        rows.append(_row("module loadings recoverable (share of modules with ≥ 80% of their "
                         "norm in the top principal subspace)", frac, "≥ 0.95", frac >= 0.95))

    gold = world.gold_standard()
    rows.append(_row("drug gold standard positives", gold["label"].sum(), "> 0 and < all",
                     0 < gold["label"].sum() < len(gold)))
    return pd.DataFrame(rows)
