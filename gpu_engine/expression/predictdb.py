"""PredictDB models trained here: the estimator, the significance filter and the writers of
what MetaXcan (and :mod:`gpu_engine.twas`) read.

Database (SQLite), following the real GTEx databases' schema column for column and adding
the GTEx v7 columns: ``weights(rsid, gene, weight, ref_allele, eff_allele, varID)`` (effect
allele = the counted allele, weight per dosage unit); ``extra(gene, genename,
"pred.perf.R2", "n.snps.in.model", "pred.perf.pval", "pred.perf.qval", gene_type, …the
summary columns…)`` with pred.perf.R2 = rho_avg², pred.perf.pval = zscore_pval,
pred.perf.qval NULL; ``construction(chr, "cv.seed")``; ``sample_info("n.samples",
population, tissue)``; the real databases' indexes. Covariance: gzipped text
``GENE RSID1 RSID2 VALUE``, per written gene the sample covariance (ddof 1) of the training
dosages of its model SNPs, upper triangle with the diagonal, a gene's rows together.
"""

from __future__ import annotations

import gzip
import logging
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ..errors import InputError
from .elastic_net import ALPHA, N_LAMBDA, SUMMARY_COLUMNS, NestedFolds, fit_genes
from .genotypes import Genotypes, impute_mean
from .prepare import training_data

log = logging.getLogger(__name__)
WEIGHT_COLUMNS = ("rsid", "gene", "weight", "ref_allele", "eff_allele", "varID")


class ElasticNetPredictor(BaseEstimator):
    """PredictDB's elastic-net expression models (GTEx v7 nested CV; see
    :mod:`gpu_engine.expression.elastic_net` for the exact semantics).

    Parameters: ``alpha`` (0.5), ``n_lambda`` (100), ``window`` (cis window in bp, 1 Mb),
    ``maf`` / ``maf_filter`` (see :func:`~.genotypes.snp_filter`), ``outer_folds`` (5),
    ``inner_folds`` (10), ``final_folds`` (10), ``folds`` (a :class:`NestedFolds` used for
    every gene, else drawn per gene from ``seed``), ``rho_threshold`` (0.1),
    ``pval_threshold`` (0.05), ``backend``.

    After :meth:`fit`: ``summary_`` (one row per trained gene: gene, genename, gene_type,
    chromosome and the :data:`SUMMARY_COLUMNS`, plus ``significant``), ``weights_`` (long
    table of the non-zero weights of every trained gene, :data:`WEIGHT_COLUMNS`),
    ``covariances_`` (gene → (rsids, covariance matrix of its model SNPs)), ``report_``
    (samples used, SNP filter counts, dosages imputed, genes skipped and why), ``n_samples_``.
    """

    def __init__(self, alpha: float = ALPHA, n_lambda: int = N_LAMBDA, window: float = 1e6,
                 maf: float = 0.01, maf_filter: str = "min", outer_folds: int = 5,
                 inner_folds: int = 10, final_folds: int = 10, folds: NestedFolds | None = None,
                 seed: int = 0, rho_threshold: float = 0.1, pval_threshold: float = 0.05,
                 backend=None, progress: bool | str = False):
        self.alpha = alpha
        self.n_lambda = n_lambda
        self.window = window
        self.maf = maf
        self.maf_filter = maf_filter
        self.outer_folds = outer_folds
        self.inner_folds = inner_folds
        self.final_folds = final_folds
        self.folds = folds
        self.seed = seed
        self.rho_threshold = rho_threshold
        self.pval_threshold = pval_threshold
        self.backend = backend
        self.progress = progress

    def fit(self, genotypes: Genotypes, expression: pd.DataFrame, genes: pd.DataFrame,
            covariates: pd.DataFrame | None = None) -> ElasticNetPredictor:
        """``expression``: samples × genes (columns = gene ids of ``genes``); ``genes``: table
        gene, chromosome, start, end (and genename, gene_type); ``covariates``: samples × q,
        regressed out of expression before standardising (PredictDB)."""
        from ..progress import track

        if not 0 < self.alpha <= 1:
            raise InputError(f"alpha must be in (0, 1], not {self.alpha}")
        d = training_data(genotypes, expression, genes, covariates, window=self.window,
                          maf=self.maf, maf_filter=self.maf_filter)
        X_all, y_all, snps, windows, todo, gtab, report = (d.X, d.y, d.snps, d.windows,
                                                           d.genes, d.gene_table, d.report)
        samples = d.samples
        n = len(samples)
        items, rngs = [], []
        for gi, g in enumerate(todo):
            rng = np.random.default_rng([self.seed, gi])
            nf = self.folds or NestedFolds.draw(n, rng, self.outer_folds, self.inner_folds,
                                                self.final_folds)
            items.append((g, nf))
            rngs.append(rng)
        results = []
        chunk = 32
        for start in track(range(0, len(items), chunk), "elastic net genes",
                           total=-(-len(items) // chunk), enabled=self.progress):
            part = items[start:start + chunk]
            results += fit_genes([(X_all[:, windows[g]], y_all[g].to_numpy(), nf)
                                  for g, nf in part], alpha=self.alpha,
                                 n_lambda=self.n_lambda, backend=self.backend,
                                 rngs=rngs[start:start + chunk])
        rows, weights, covs = [], [], {}
        info = gtab.set_index("gene")
        for g, res in zip(todo, results):
            sel = windows[g]
            nz = np.flatnonzero(res["weights"])
            row = {"gene": g, "genename": info.at[g, "genename"],
                   "gene_type": info.at[g, "gene_type"],
                   "chromosome": str(info.at[g, "chromosome"]).removeprefix("chr"),
                   "n_snps_in_window": len(sel)}
            row.update({c: res[c] for c in SUMMARY_COLUMNS if c in res})
            rows.append(row)
            if nz.size:
                s = snps.iloc[sel[nz]]
                weights.append(pd.DataFrame({"rsid": s["snp"].to_numpy(), "gene": g,
                                             "weight": res["weights"][nz],
                                             "ref_allele": s["ref_allele"].to_numpy(),
                                             "eff_allele": s["eff_allele"].to_numpy(),
                                             "varID": s["varID"].to_numpy()}))
                Xm = X_all[:, sel[nz]]
                covs[g] = (s["snp"].to_numpy(), np.atleast_2d(np.cov(Xm, rowvar=False, ddof=1)))
        summary = pd.DataFrame(rows)
        summary["significant"] = ((summary["rho_avg"] > self.rho_threshold)
                                  & (summary["zscore_pval"] < self.pval_threshold)
                                  & (summary["n_snps_in_model"] >= 1))
        self.summary_ = summary
        self.weights_ = (pd.concat(weights, ignore_index=True) if weights
                         else pd.DataFrame(columns=list(WEIGHT_COLUMNS)))
        self.covariances_ = covs
        self.n_samples_ = n
        self.report_ = report
        return self

    def predict(self, genotypes: Genotypes) -> pd.DataFrame:
        """Predicted expression (samples × genes) Σ w·dosage, SNPs matched by varID; a model
        SNP missing from ``genotypes`` counts as its training mean of 0 contribution and is
        reported in the log."""
        self._check_fitted()
        ids = pd.Index(genotypes.snps["varID"])
        X, _ = impute_mean(genotypes.dosages)
        out = {}
        missing = 0
        for g, w in self.weights_.groupby("gene", sort=False):
            pos = ids.get_indexer(w["varID"])
            ok = pos >= 0
            missing += int((~ok).sum())
            out[g] = X[:, pos[ok]] @ w["weight"].to_numpy()[ok]
        if missing:
            log.warning("predict: %d model SNP(s) absent from the genotypes were left out",
                        missing)
        return pd.DataFrame(out, index=genotypes.samples)

    def _check_fitted(self):
        if not hasattr(self, "summary_"):
            raise InputError("ElasticNetPredictor: call fit first")

    def write(self, db_path, covariance_path, *, tissue: str = "", population: str = "",
              significant_only: bool = True) -> pd.DataFrame:
        """Write the PredictDB database and covariance file (atomically; neither is left
        half-written). Returns the rows of ``summary_`` written."""
        self._check_fitted()
        s = self.summary_
        written = s.loc[s["significant"]] if significant_only else s.loc[s["n_snps_in_model"] > 0]
        write_database(db_path, written, self.weights_, n_samples=self.n_samples_,
                       tissue=tissue, population=population, seed=self.seed)
        write_covariance(covariance_path, {g: self.covariances_[g] for g in written["gene"]})
        return written


def write_database(path, summary: pd.DataFrame, weights: pd.DataFrame, *, n_samples: int,
                   tissue: str = "", population: str = "", seed: int = 0,
                   extra_columns: dict | None = None) -> Path:
    """The PredictDB SQLite database of the genes in ``summary`` (see the module docstring;
    the nested-CV columns that ``summary`` has are written). ``extra_columns``: further
    ``extra`` columns (name → value or per-gene values)."""
    from ..io import atomic_path

    path = Path(path)
    extra = pd.DataFrame({
        "gene": summary["gene"].to_numpy(), "genename": summary["genename"].to_numpy(),
        "pred.perf.R2": summary["rho_avg_squared"].to_numpy(),
        "n.snps.in.model": summary["n_snps_in_model"].to_numpy(),
        "pred.perf.pval": summary["zscore_pval"].to_numpy(),
        "pred.perf.qval": np.full(len(summary), np.nan),
        "gene_type": summary["gene_type"].to_numpy()})
    for c in SUMMARY_COLUMNS:
        if c not in extra and c in summary:
            extra[c] = summary[c].to_numpy()
    for c, v in (extra_columns or {}).items():
        extra[c] = np.asarray(v) if not np.isscalar(v) else v
    w = weights.loc[weights["gene"].isin(summary["gene"]), list(WEIGHT_COLUMNS)]
    chroms = sorted(set(summary["chromosome"].astype(str)))
    with atomic_path(path) as tmp:
        con = sqlite3.connect(tmp)
        try:
            w.to_sql("weights", con, index=False)
            extra.to_sql("extra", con, index=False)
            pd.DataFrame({"chr": chroms, "cv.seed": seed}).to_sql("construction", con,
                                                                  index=False)
            pd.DataFrame({"n.samples": [n_samples], "population": [population],
                          "tissue": [tissue]}).to_sql("sample_info", con, index=False)
            for sql in ("CREATE INDEX weights_rsid ON weights (rsid)",
                        "CREATE INDEX weights_gene ON weights (gene)",
                        "CREATE INDEX weights_rsid_gene ON weights (rsid, gene)",
                        "CREATE INDEX extra_gene ON extra (gene)",
                        "CREATE INDEX construction_chr ON construction (chr)"):
                con.execute(sql)
            con.commit()
        finally:
            con.close()
    return path


def write_covariance(path, covariances: dict) -> Path:
    """MetaXcan's covariance text (gzip): ``GENE RSID1 RSID2 VALUE`` rows, for each gene the
    upper triangle of its model SNPs' covariance including the diagonal."""
    from ..io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, gzip.open(tmp, "wt") as fh:
        fh.write("GENE RSID1 RSID2 VALUE\n")
        for g, (rsids, C) in covariances.items():
            iu, ju = np.triu_indices(len(rsids))
            fh.writelines(f"{g} {rsids[i]} {rsids[j]} {float(C[i, j])!r}\n" for i, j in zip(iu, ju))
    return path
