"""Null calibration of the GLS test without GWAS.

Under the null, gene-level S-MultiXcan statistics are correlated like the gene–gene
correlation matrix R. :func:`simulate_null_traits` draws z ~ MVN(0, R) (R factorized by its
diagonal blocks) and turns each into p = 2Φ(−|z|), or sums n_indep such draws into χ²
statistics; :func:`null_calibration` runs the same
GLS on them and reports, per LV, the empirical type-I error of the one-sided test at each α
with a one-sided binomial test for excess (Bonferroni over LVs and levels) and the genomic
inflation factor λ of the two-sided p-values; :func:`qq_plot` draws the QQ plot. The
reference needed 1,000 simulated GWAS + TWAS runs for this and excluded 127 LVs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import ndtr

from ..errors import InputError, preview
from ..io import write_table
from ..io.checkpoint import as_checkpoint
from ..results import FolderResult, register
from .association import associate, pool_results
from .model import _cholesky, check_gene_corr, diagonal_blocks

log = logging.getLogger(__name__)

ALPHAS = (0.05, 0.01)


def simulate_null_traits(gene_corr: pd.DataFrame, n_null: int, *, genes=None, seed: int = 0,
                         model: str = "normal", n_indep=None) -> pd.DataFrame:
    """genes × ``n_null`` p-values of null traits drawn from the correlation structure.

    ``model="normal"``: z ~ MVN(0, R), p = 2Φ(−|z|). ``model="chi2"``: S-MultiXcan-like
    statistics T_g = Σ_{j < k_g} z_{g,j}², with k_g the gene's ``n_indep`` (a Series or a
    ``gene, n_indep`` table) and each z_{·,j} ~ MVN(0, R) independently, p = P(χ²_{k_g} > T_g);
    a gene with k_g = 1 gets exactly the normal model's p. ``genes`` restricts (and orders)
    the genes; default all of R's. Traits are named ``null_0001`` …; the same seed gives the
    same traits.
    """
    if n_null < 1:
        raise InputError(f"n_null must be at least 1, not {n_null}")
    if model not in ("normal", "chi2"):
        raise InputError(f"null model must be 'normal' or 'chi2', not {model!r}")
    R = check_gene_corr(gene_corr)
    if genes is not None:
        R = R.loc[list(genes), list(genes)]
    values = R.to_numpy(np.float64)
    factors = [(a, b, _cholesky(values[a:b, a:b], "the matrix", R.index[a:b]))
               for a, b in diagonal_blocks(values)]
    rng = np.random.default_rng(seed)

    def draw():
        e = rng.standard_normal((values.shape[0], n_null))
        z = np.empty_like(e)
        for a, b, L in factors:
            z[a:b] = L @ e[a:b]
        return z

    if model == "normal":
        p = 2.0 * ndtr(-np.abs(draw()))
    else:
        k = _n_indep(n_indep, R.index)
        stat = np.zeros((values.shape[0], n_null))
        for j in range(int(k.max())):
            z = draw()
            stat += np.where((k > j)[:, None], z * z, 0.0)
        p = stats.chi2.sf(stat, k[:, None])
    return pd.DataFrame(p, index=R.index, columns=[f"null_{i + 1:04d}" for i in range(n_null)])


def _n_indep_series(n_indep) -> pd.Series:
    """gene → n_indep from a Series or a table with columns ``gene`` (or ``gene_name``, as in
    S-MultiXcan outputs; the first of duplicated names is kept) and ``n_indep``."""
    if n_indep is None:
        raise InputError("the chi2 null model needs each gene's n_indep (e.g. from an "
                         "S-MultiXcan result: --n-indep FILE)")
    if isinstance(n_indep, pd.DataFrame):
        key = "gene_name" if "gene_name" in n_indep.columns else "gene"
        if key not in n_indep.columns or "n_indep" not in n_indep.columns:
            raise InputError("n_indep table: expected columns 'gene' (or 'gene_name') and "
                             f"'n_indep', found {preview(n_indep.columns)}")
        n_indep = n_indep.dropna(subset=["n_indep"]).drop_duplicates(key).set_index(key)[
            "n_indep"]
    return pd.Series(n_indep).dropna()


def _n_indep(n_indep, genes: pd.Index) -> np.ndarray:
    k = _n_indep_series(n_indep).reindex(genes)
    absent = genes[k.isna().to_numpy()]
    if len(absent):
        raise InputError(f"n_indep: no value for {len(absent)} gene(s) "
                         f"{preview(absent)}; give every gene of the matrix and LV model one")
    k = k.to_numpy(np.float64)
    if (k < 1).any() or (k != np.round(k)).any():
        raise InputError("n_indep must be whole numbers ≥ 1")
    return k.astype(np.int64)


@register
@dataclass
class NullCalibration(FolderResult):
    """Per-LV calibration (``table``) and the GLS results on the null traits (``results``).

    Saved as a folder: ``calibration.parquet`` (and a ``calibration.tsv`` copy),
    ``null_results.parquet``, ``result.json`` and the QQ plot ``qq.png``."""

    table: pd.DataFrame
    results: pd.DataFrame
    alphas: tuple[float, ...]

    kind = "gls_null"
    _TABLES = ("table", "results")
    _FILES = {"table": "calibration", "results": "null_results"}

    @property
    def inflated(self) -> list[str]:
        return self.table.loc[self.table["inflated"], "lv"].tolist()

    def _write_extras(self, folder: Path) -> None:
        write_table(self.table, folder / "calibration.tsv")
        qq_plot(self.results, folder / "qq.png", highlight=self.inflated[:6] or None)

    @classmethod
    def _from_saved(cls, kw: dict):
        from .association import GLSResults

        kw["alphas"] = tuple(kw["alphas"])
        kw["results"] = GLSResults.from_frame(kw["results"])
        return cls(**kw)


def calibration_table(results: pd.DataFrame, alphas=ALPHAS, *,
                      level: float = 0.05) -> pd.DataFrame:
    """Per LV: number of null traits, empirical type-I error of the one-sided p at each α,
    one-sided binomial p-value for an excess, λ_GC of the two-sided p, and ``inflated``
    (binomial p < level / (LVs × levels) at any α)."""
    rows = []
    n_lv = results["lv"].nunique()
    for lv, g in results.groupby("lv", sort=False, observed=True):
        p1 = g["pvalue_onesided"].to_numpy()
        row = {"lv": lv, "n_null": int(p1.size)}
        for a in alphas:
            k = int((p1 < a).sum())
            row[f"type1_{a:g}"] = k / p1.size
            row[f"binom_p_{a:g}"] = float(stats.binom.sf(k - 1, p1.size, a))
        chi2 = stats.chi2.isf(np.clip(g["pvalue_twosided"].to_numpy(), 1e-300, 1), 1)
        row["lambda_gc"] = float(np.median(chi2) / stats.chi2.ppf(0.5, 1))
        rows.append(row)
    table = pd.DataFrame(rows)
    threshold = level / max(1, n_lv * len(alphas))
    table["inflated"] = np.zeros(len(table), bool)
    for a in alphas:
        table["inflated"] |= table[f"binom_p_{a:g}"] < threshold
    return table


def null_calibration(lv_loadings, gene_corr, *, n_null: int = 1000, covariates=None,
                     covars=(), mode: str = "submatrix", predictor: str = "binary",
                     top_fraction: float = 0.01, lvs=None, alphas=ALPHAS, seed: int = 0,
                     null_model: str = "normal", n_indep=None, backend=None, client=None,
                     progress: bool = False, checkpoint=None,
                     batch: int = 200) -> NullCalibration:
    """Simulate ``n_null`` null traits from ``gene_corr`` and report each LV's empirical
    type-I error (see the module doc). ``null_model`` and ``n_indep`` are those of
    :func:`simulate_null_traits`. ``covariates`` must be gene-level (one value per gene,
    shared by the null traits) when ``covars`` is given. ``checkpoint``: a folder (or
    :class:`~gpu_engine.io.checkpoint.Checkpoint`) where the GLS of each ``batch`` null traits
    is saved; called again with it after a kill, the finished batches are loaded (the
    results equal one uninterrupted call's)."""
    R = check_gene_corr(gene_corr)
    genes = [g for g in R.index if g in set(lv_loadings.index)]
    if not genes:
        raise InputError("no overlap of genes between the LV model and the gene correlation "
                         "matrix; check that they use the same identifiers")
    if covariates is not None and "trait" in getattr(covariates, "columns", ()):
        raise InputError("null calibration needs gene-level covariates (no 'trait' column): "
                         "the simulated traits have no S-MultiXcan n / n_indep of their own")
    if null_model == "chi2":  # genes without an n_indep cannot be simulated: leave them out
        known = set(_n_indep_series(n_indep).index)
        dropped = [g for g in genes if g not in known]
        genes = [g for g in genes if g in known]
        if dropped:
            log.warning("chi2 null model: %d gene(s) without n_indep left out (%s)",
                        len(dropped), preview(dropped))
        if not genes:
            raise InputError("chi2 null model: no gene of the matrix has an n_indep value")
    traits = simulate_null_traits(R, n_null, genes=genes, seed=seed, model=null_model,
                                  n_indep=n_indep)
    kw = dict(mode=mode, predictor=predictor, top_fraction=top_fraction, covars=covars,
              lvs=lvs, backend=backend, client=client)
    cp = as_checkpoint(checkpoint)
    if cp is None:
        results = associate(lv_loadings, traits, R, covariates, progress=progress, **kw)
    else:
        parts = []
        for b in range(0, n_null, batch):
            name = f"null_{b // batch:05d}"
            part = cp.load_frame(name)
            if part is None:
                part = pd.DataFrame(associate(lv_loadings, traits.iloc[:, b:b + batch], R,
                                              covariates, **kw))
                cp.save_frame(name, part)
            parts.append(part)
        results = pool_results(parts, traits.columns)
    table = calibration_table(results, alphas)
    log.info("null calibration: %d of %d LVs inflated", int(table["inflated"].sum()),
             len(table))
    return NullCalibration(table=table, results=results, alphas=tuple(alphas))


def qq_plot(results: pd.DataFrame, path, *, highlight=None, max_highlight: int = 6,
            title: str = "GLS on null traits"):
    """QQ plot (PNG) of the one-sided p-values: all LVs pooled, plus the ``highlight`` LVs
    (default: the most inflated), with the 95% band of uniform order statistics."""
    from ..plotting import pyplot, shorten

    plt = pyplot()

    from ..io import atomic_path

    def qq(p):
        p = np.sort(p[~np.isnan(p)])
        n = p.size
        expected = -np.log10((np.arange(1, n + 1) - 0.5) / n)
        return expected, -np.log10(np.maximum(p, 1e-300)), n

    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=120)
    e, o, n = qq(results["pvalue_onesided"].to_numpy())
    k = np.arange(1, n + 1)
    lo = -np.log10(stats.beta.ppf(0.975, k, n - k + 1))
    hi = -np.log10(stats.beta.ppf(0.025, k, n - k + 1))
    ax.fill_between(e, lo, hi, color="0.85", label="95% band (all pairs)")
    ax.plot(e, o, ".", ms=2, color="0.35", label=f"all LVs ({n:,} pairs)")
    if highlight is None:
        g = results.groupby("lv", observed=True)["pvalue_onesided"].apply(
            lambda s: (s < 0.05).mean())
        highlight = g.sort_values(ascending=False).index[:max_highlight].tolist()
    for lv in highlight:
        e2, o2, _ = qq(results.loc[results["lv"] == lv, "pvalue_onesided"].to_numpy())
        ax.plot(e2, o2, ".", ms=3, label=shorten(lv, 30))
    top = max(e.max(), o.max()) * 1.05
    ax.plot([0, top], [0, top], "k-", lw=0.8)
    ax.set_xlabel("expected −log10 p")
    ax.set_ylabel("observed −log10 p (one-sided)")
    two = results["pvalue_twosided"].to_numpy() if "pvalue_twosided" in results else None
    if two is not None and np.isfinite(two).any():
        chi2 = stats.chi2.isf(np.clip(two[np.isfinite(two)], 1e-300, 1), 1)
        lam = float(np.median(chi2) / stats.chi2.ppf(0.5, 1))
        title = f"{title}\nλ_GC = {lam:.3f} (two-sided p, all pairs)"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
