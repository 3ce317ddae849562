"""CNN vs elastic net on the same 80/20 split (spec ``dl_expression.md`` §3.6, §6.1): the
PredictDB elastic net trained on the CNN's training samples (its own nested CV inside them),
scored on the CNN's test samples; per-gene differences of test Pearson r and, per
architecture class when the truth is known, their mean with a bootstrap 95 % interval over
genes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cnn_predictor import pearson


def en_test_r(genotypes, expression: pd.DataFrame, genes: pd.DataFrame, train, test,
              covariates=None, **en_params) -> pd.Series:
    """Test Pearson r per gene of the PredictDB elastic net fitted on the ``train`` sample ids
    and evaluated on the ``test`` ones; a gene with no SNP selected predicts a constant and
    scores 0 (it has found nothing)."""
    from .predictdb import ElasticNetPredictor
    from .prepare import prepare_expression

    train, test = list(map(str, train)), list(map(str, test))
    E = expression.copy()
    E.index = E.index.astype(str)
    en = ElasticNetPredictor(**en_params).fit(genotypes, E.loc[train], genes,
                                              None if covariates is None
                                              else covariates.loc[train])
    y, _ = prepare_expression(E, covariates, genotypes.samples)
    P = en.predict(genotypes.subset(samples=test))
    out = {}
    for g in en.summary_["gene"]:
        if g in P.columns and np.std(P[g]) > 0:
            out[g] = float(pearson(P[g].to_numpy()[:, None], y.loc[test, g].to_numpy()[:, None])[0])
        else:
            out[g] = 0.0
    return pd.Series(out, name="en_test_pearson")


def bootstrap_mean(x: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the mean of x (resampling its entries)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (n_boot, x.size))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def compare(cnn_r: pd.Series, en_r: pd.Series, truth: pd.DataFrame | None = None,
            n_boot: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per gene: cnn, en, difference [, architecture]; per class: genes, mean CNN r, mean EN
    r, mean difference with its bootstrap 95 % interval, genes where the CNN is better).
    Classes: the truth's ``architecture`` column, else one class "all". A NaN r (a constant
    prediction) counts as 0, as a gene without selected SNPs does for the elastic net."""
    per = pd.DataFrame({"cnn_test_pearson": cnn_r, "en_test_pearson": en_r})
    per = per.loc[per.index.isin(cnn_r.index) & per.index.isin(en_r.index)].fillna(0.0)
    per["difference"] = per["cnn_test_pearson"] - per["en_test_pearson"]
    per.index.name = "gene"
    per = per.reset_index()
    if truth is not None and "architecture" in truth:
        per = per.merge(truth[["gene", "architecture"]], on="gene", how="left")
        per["architecture"] = per["architecture"].fillna("unknown")
    else:
        per["architecture"] = "all"
    rows = []
    groups = list(per.groupby("architecture", sort=True))
    if per["architecture"].nunique() > 1:
        groups.append(("all", per))
    for arch, t in groups:
        lo, hi = bootstrap_mean(t["difference"].to_numpy(), n_boot, seed)
        rows.append({"architecture": arch, "genes": len(t),
                     "cnn_mean": float(t["cnn_test_pearson"].mean()),
                     "en_mean": float(t["en_test_pearson"].mean()),
                     "difference_mean": float(t["difference"].mean()),
                     "ci95_low": lo, "ci95_high": hi,
                     "cnn_better": int((t["difference"] > 0).sum())})
    return per, pd.DataFrame(rows)


def comparison_plot(per: pd.DataFrame, path, title: str = "") -> None:
    """Test r of the CNN vs the elastic net per gene, coloured by architecture."""
    from ..plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for arch, t in per.groupby("architecture"):
        ax.scatter(t["en_test_pearson"], t["cnn_test_pearson"], s=22, label=arch, alpha=0.8)
    lo = min(per[["en_test_pearson", "cnn_test_pearson"]].min().min(), 0) - 0.05
    hi = max(per[["en_test_pearson", "cnn_test_pearson"]].max().max(), 0.1) + 0.05
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("elastic net test r (PredictDB, same split)")
    ax.set_ylabel("CNN test r")
    ax.set_title(title or "CNN vs elastic net per gene (above the line: CNN better)",
                 fontsize=9)
    ax.legend(fontsize=8, title="architecture", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
