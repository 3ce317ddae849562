"""Feeding the TWAS layer with CNN models (spec ``dl_expression.md`` §5).

**Route B, the linear projection** (for S-PrediXcan, S-MultiXcan, gene correlations): on a
reference panel X (n × p, the training genotypes by default) with f = the model's prediction
(ensemble mean),

    w* = (Γ + εI)⁻¹ c,   Γ = Cov(X_S), c = Cov(X_S, f), ε = 1e-6·tr(Γ)/|S|  (ddof 1),

over the model SNPs S: the smallest set of SNPs whose |input-scaler weight| (averaged over
the ensemble's members) sums to ``coverage`` (99 %) of the total, at most ``max_snps``
(500). R²_lin = w*ᵀΓw*/Var(f) is the fraction of the model's variance that GWAS summary
statistics can see (z_f = z_{Pf}·√R²_lin for an additive trait); ``linear_r2_all_snps`` is
the same over all p SNPs, so ``linear_r2_lost`` = their difference is what restricting to S
costs. Genes with R²_lin < 0.5 are flagged (``low_linear_r2``).

Written as a PredictDB database (same schema as the elastic net's; ``extra`` adds
``model_type`` = 'dlfa_cnn', ``linear_r2``, ``test_pearson``; ``pred.perf.R2`` = test r²,
``pred.perf.pval`` = the test correlation's p) and the covariance of the model SNPs on the
panel. :func:`multixcan_covariance` writes the per-gene covariance over the union of a gene's
SNPs across several tissues' databases (what S-MultiXcan's ``--snp_covariance`` needs).

**Route A, individual-level PrediXcan**: :func:`predixcan` — OLS of a trait on each gene's
predicted expression and the covariates (t-test of the prediction's coefficient).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError, preview
from .cnn_predictor import _padded, _width, predict_states

log = logging.getLogger(__name__)
LOW_LINEAR_R2 = 0.5


def model_snps(states: list[dict], p: int, coverage: float = 0.99, max_snps: int = 500
               ) -> np.ndarray:
    """Positions (sorted) of the smallest set of the p inputs whose mean |scaler weight|
    reaches ``coverage`` of the total, at most ``max_snps``."""
    w = np.mean([np.abs(s["scaler.w"].double().numpy()[:p]) for s in states], axis=0)
    order = np.argsort(-w, kind="stable")
    total = w.sum()
    if total <= 0:
        return order[:1]
    k = int(np.searchsorted(np.cumsum(w[order]), coverage * total) + 1)
    return np.sort(order[:min(k, max_snps, p)])


def projection(X: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, float]:
    """(w*, R²_lin) of the best linear predictor of f (n,) from the columns of X (n × k)."""
    Xc = X - X.mean(0)
    fc = f - f.mean()
    n = len(f)
    Gam = Xc.T @ Xc / (n - 1)
    c = Xc.T @ fc / (n - 1)
    k = Gam.shape[0]
    eps = 1e-6 * np.trace(Gam) / k if k else 0.0
    w = np.linalg.solve(Gam + eps * np.eye(k), c) if k else np.zeros(0)
    vf = fc @ fc / (n - 1)
    return w, float(w @ Gam @ w / vf) if vf > 0 else float("nan")


def _test_pval(r: float, n: int) -> float:
    if not np.isfinite(r) or n < 3:
        return float("nan")
    t = r * np.sqrt((n - 2) / max(1e-300, 1 - r * r))
    return float(2 * stats.t.sf(abs(t), n - 2))


def project_models(models: dict, snps: pd.DataFrame, genotypes, summary: pd.DataFrame, *,
                   coverage: float = 0.99, max_snps: int = 500, device=None):
    """Route B for every gene of ``models`` (gene → member states; inputs = rows of ``snps``)
    on the panel ``genotypes`` (matched by varID; absent model SNPs take the training mean).
    ``summary``: the CNN's per-gene table (``test_pearson_<ensemble>`` or
    ``test_pearson_fa``, ``n_test``). Returns (projection summary, weights (long table),
    covariances gene → (rsids, Γ))."""
    from .genotypes import impute_mean

    ids = pd.Index(genotypes.snps["varID"].astype(str))
    X, _ = impute_mean(genotypes.dosages)
    info = summary.set_index("gene")
    rows, weights, covs = [], [], {}
    for g, states in models.items():
        s = snps.loc[snps["gene"] == g].sort_values("index").reset_index(drop=True)
        pos = ids.get_indexer(s["varID"].astype(str))
        ok = pos >= 0
        Xg = np.tile(s["mean_dosage"].to_numpy(float), (len(X), 1))
        Xg[:, ok] = X[:, pos[ok]]
        f = predict_states(_padded(Xg, _width(len(s))), states, device=device).mean(1)
        sel = model_snps(states, len(s), coverage, max_snps)
        w, r2 = projection(Xg[:, sel], f)
        _, r2_all = projection(Xg, f)
        pf = (Xg[:, sel] - Xg[:, sel].mean(0)) @ w
        r_test = float(info.at[g, "test_pearson"]) if "test_pearson" in info else float("nan")
        n_test = int(info.at[g, "n_test"]) if "n_test" in info else 0
        rows.append({"gene": g, "n_snps_in_window": len(s), "n_snps_in_model": len(sel),
                     "linear_r2": r2, "linear_r2_all_snps": r2_all,
                     "linear_r2_lost": r2_all - r2,
                     "projection_pearson": float(np.corrcoef(pf, f)[0, 1])
                     if np.std(f) > 0 else float("nan"),
                     "fraction_snps_missing_in_panel": float((~ok).mean()),
                     "test_pearson": r_test, "test_pval": _test_pval(r_test, n_test),
                     "low_linear_r2": bool(not r2 >= LOW_LINEAR_R2)})
        ss = s.iloc[sel]
        weights.append(pd.DataFrame({"rsid": ss["rsid"].to_numpy(), "gene": g, "weight": w,
                                     "ref_allele": ss["ref_allele"].to_numpy(),
                                     "eff_allele": ss["eff_allele"].to_numpy(),
                                     "varID": ss["varID"].to_numpy()}))
        covs[g] = (ss["rsid"].to_numpy(), np.atleast_2d(np.cov(Xg[:, sel], rowvar=False)))
    return pd.DataFrame(rows), pd.concat(weights, ignore_index=True), covs


def write_projection(db_path, covariance_path, proj: pd.DataFrame, weights: pd.DataFrame,
                     covariances: dict, genes_info: pd.DataFrame, *, n_samples: int,
                     tissue: str = "", population: str = "") -> None:
    """The projection as a PredictDB database and covariance file (both atomic)."""
    from .predictdb import write_covariance, write_database

    info = genes_info.set_index("gene")
    s = proj.copy()
    s["genename"] = [info.at[g, "genename"] if g in info.index else g for g in s["gene"]]
    s["gene_type"] = [info.at[g, "gene_type"] if "gene_type" in info and g in info.index
                      else "NA" for g in s["gene"]]
    s["chromosome"] = [str(info.at[g, "chromosome"]) if g in info.index else "NA"
                       for g in s["gene"]]
    s["rho_avg_squared"] = s["test_pearson"] ** 2
    s["zscore_pval"] = s["test_pval"]
    write_database(db_path, s, weights, n_samples=n_samples, tissue=tissue,
                   population=population,
                   extra_columns={"model_type": "dlfa_cnn", "linear_r2": s["linear_r2"],
                                  "linear_r2_all_snps": s["linear_r2_all_snps"],
                                  "test_pearson": s["test_pearson"]})
    write_covariance(covariance_path, {g: covariances[g] for g in s["gene"]})


def multixcan_covariance(path, genotypes, databases) -> int:
    """Write S-MultiXcan's SNP covariance: per gene, the covariance (ddof 1) on the panel
    ``genotypes`` of the union of its model SNPs over the PredictDB ``databases`` (paths),
    SNPs matched by rsid. Returns the number of genes written; SNPs absent from the panel are
    left out with a warning."""
    from ..twas.models import read_model_db
    from .genotypes import impute_mean
    from .predictdb import write_covariance

    union: dict = {}
    for db in databases:
        m = read_model_db(db)
        for g, snp in m.weights[["gene", "snp"]].itertuples(index=False):
            union.setdefault(str(g), dict())[str(snp)] = None
    ids = pd.Index(genotypes.snps["snp"].astype(str))
    X, _ = impute_mean(genotypes.dosages)
    covs, absent = {}, set()
    for g, snps in union.items():
        rs = np.array(list(snps))
        pos = ids.get_indexer(rs)
        absent |= set(rs[pos < 0])
        rs, pos = rs[pos >= 0], pos[pos >= 0]
        if len(rs):
            covs[g] = (rs, np.atleast_2d(np.cov(X[:, pos], rowvar=False)))
    if absent:
        log.warning("multixcan covariance: %d model SNP(s) not in the panel, left out (%s)",
                    len(absent), preview(sorted(absent)))
    if not covs:
        raise InputError("multixcan covariance: no model SNP is in the panel (rsids differ?)")
    write_covariance(path, covs)
    return len(covs)


def predixcan(predicted: pd.DataFrame, trait: pd.Series, covariates: pd.DataFrame | None = None
              ) -> pd.DataFrame:
    """Individual-level PrediXcan: per gene, OLS trait ~ 1 + covariates + predicted
    expression; (gene, effect, se, zscore = t, pvalue, n). Samples: those with a finite
    trait, covariates and prediction (matched by id). Batched over genes (Frisch–Waugh:
    trait and predictions residualised on the covariates once)."""
    P = predicted.copy()
    P.index = P.index.astype(str)
    t = trait.copy()
    t.index = t.index.astype(str)
    samples = P.index.intersection(t.index[np.isfinite(t.to_numpy(float))], sort=False)
    D = np.ones((len(samples), 1))
    if covariates is not None:
        C = covariates.copy()
        C.index = C.index.astype(str)
        samples = samples.intersection(C.index, sort=False)
        Cv = C.loc[samples].to_numpy(float)
        if not np.isfinite(Cv).all():
            raise InputError("predixcan: covariates with missing values; complete them first")
        D = np.column_stack([np.ones(len(samples)), Cv])
    n, q = len(samples), D.shape[1]
    if n < q + 3:
        raise InputError(f"predixcan: {n} samples with trait, covariates and predictions "
                         f"(trait ids e.g. {preview(t.index[:3])}, prediction ids e.g. "
                         f"{preview(P.index[:3])}); need at least {q + 3}")
    Q, _ = np.linalg.qr(D)
    y = t.loc[samples].to_numpy(float)
    X = P.loc[samples].to_numpy(float)
    ry = y - Q @ (Q.T @ y)
    RX = X - Q @ (Q.T @ X)
    sxx = (RX * RX).sum(0)
    sxy = RX.T @ ry
    dof = n - q - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = sxy / sxx
        rss = ry @ ry - beta * sxy
        se = np.sqrt(rss / dof / sxx)
        z = beta / se
    ok = sxx > 1e-12 * n
    beta, se, z = (np.where(ok, v, np.nan) for v in (beta, se, z))
    pv = 2 * stats.t.sf(np.abs(z), dof)
    return pd.DataFrame({"gene": P.columns.astype(str), "effect": beta, "se": se, "zscore": z,
                         "pvalue": pv, "n": n})


def predict_database(db_path, genotypes) -> pd.DataFrame:
    """Predicted expression (samples × genes) Σ w·dosage of a PredictDB database's linear
    models; SNPs matched by varID, else by rsid with the dosage flipped (2 − x) where the
    database's effect allele is the genotypes' other allele; unmatched SNPs contribute 0
    (as PrediXcan) and are counted in the log."""
    import sqlite3

    from .genotypes import impute_mean

    with sqlite3.connect(db_path) as con:
        cols = [r[1] for r in con.execute('PRAGMA table_info("weights")')]
        w = pd.read_sql(f"SELECT rsid, gene, weight, eff_allele"
                        f"{', varID' if 'varID' in cols else ''} FROM weights", con)
    X, _ = impute_mean(genotypes.dosages)
    snps = genotypes.snps
    by_var = pd.Index(snps["varID"].astype(str))
    by_rs = pd.Index(snps["snp"].astype(str))
    pos = (by_var.get_indexer(w["varID"].astype(str)) if "varID" in w
           else np.full(len(w), -1))
    rs = by_rs.get_indexer(w["rsid"].astype(str)) if not by_rs.has_duplicates else \
        np.full(len(w), -1)
    use = np.where(pos >= 0, pos, rs)
    ok = use >= 0
    eff = snps["eff_allele"].to_numpy().astype(str)
    ref = snps["ref_allele"].to_numpy().astype(str)
    we = w["eff_allele"].astype(str).str.upper().to_numpy()
    flip = np.zeros(len(w), bool)
    flip[ok] = (we[ok] != eff[use[ok]]) & (we[ok] == ref[use[ok]])
    unaligned = ok & (we != np.where(ok, eff[np.maximum(use, 0)], "")) & ~flip
    ok &= ~unaligned
    out = {}
    for g, idx in w.groupby("gene", sort=False).indices.items():
        idx = idx[ok[idx]]
        D = X[:, use[idx]]
        D = np.where(flip[idx], 2.0 - D, D)
        out[str(g)] = D @ w["weight"].to_numpy()[idx]
    dropped = int((~ok).sum())
    if dropped:
        log.warning("%s: %d of %d model SNPs not in the genotypes (or with other alleles): "
                    "they contribute 0", db_path, dropped, len(w))
    return pd.DataFrame(out, index=pd.Index(genotypes.samples, name="sample"))


def total_variance_z(results: pd.DataFrame, linear_r2: pd.Series) -> pd.Series:
    """The individual-level-equivalent (more conservative) S-PrediXcan z of a projected CNN
    model: z·√R²_lin (``linear_r2`` indexed by gene)."""
    r2 = results["gene"].map(linear_r2).to_numpy(float)
    return pd.Series(results["zscore"].to_numpy(float) * np.sqrt(r2), index=results.index,
                     name="zscore_total_variance")
