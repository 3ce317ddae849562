"""Plots of the module analyses (PNG, matplotlib's Agg backend via :mod:`gpu_engine.plotting`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..plotting import pyplot, shorten


def core_genes_plot(core: pd.DataFrame, path: str | os.PathLike, *, trait: str | None = None,
                    lv: str | None = None, n_labels: int = 12) -> Path:
    """One LV–trait pair's top genes: loading (x) against the gene's own −log10 TWAS p (y),
    the TWAS threshold as a line, genes the TWAS alone misses in orange, the strongest
    labelled. Default pair: the first (most significant) of ``core``."""
    if core.empty:
        raise InputError("no significant LV–trait pair: nothing to plot")
    trait = trait or str(core["trait"].iloc[0])
    lv = lv or str(core.loc[core["trait"] == trait, "lv"].iloc[0])
    d = core[(core["trait"] == trait) & (core["lv"] == lv)]
    if d.empty:
        raise InputError(f"LV {lv} is not significant for trait {trait} in these results")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    y = -np.log10(d["twas_pvalue"].clip(lower=1e-300))
    miss = d["module_only"].to_numpy(bool)
    ax.scatter(d["loading"][~miss], y[~miss], s=28, color="#1f77b4", label="TWAS significant")
    ax.scatter(d["loading"][miss], y[miss], s=28, color="#ff7f0e",
               label="implicated by the module only")
    thr = (core.attrs.get("twas_thresholds") or {}).get(trait)
    if thr:
        ax.axhline(-np.log10(thr), color="grey", ls="--", lw=1, label="TWAS threshold")
    for r in d.nlargest(n_labels, "loading").itertuples():
        ax.annotate(shorten(r.gene, 14), (r.loading, -np.log10(max(r.twas_pvalue, 1e-300))),
                    fontsize=7, xytext=(3, 2), textcoords="offset points")
    beta, fdr = float(d["lv_beta"].iloc[0]), float(d["lv_fdr"].iloc[0])
    ax.set_xlabel(f"loading on {shorten(lv, 20)}")
    ax.set_ylabel("−log10 TWAS p of the gene")
    ax.set_title(f"{shorten(lv, 20)} × {shorten(trait, 30)}: {len(d)} top genes "
                 f"(β = {beta:.3g}, FDR = {fdr:.2g}); {int(miss.sum())} missed by the TWAS",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def enrichment_plot(table: pd.DataFrame, path: str | os.PathLike, *, n: int = 20,
                    title: str | None = None) -> Path:
    """Bars of −log10 p for the ``n`` most enriched rows of a gene-set enrichment (one bar
    per LV, labelled with its AUC) or a context enrichment (one bar per LV × attribute value,
    labelled with its fold enrichment); bars at FDR < 0.05 are dark."""
    if table.empty:
        raise InputError("an empty enrichment table: nothing to plot")
    d = table.nsmallest(n, "pvalue").iloc[::-1]
    context = "attribute" in d.columns
    labels = ([f"{shorten(r.lv, 14)} · {shorten(f'{r.attribute}={r.value}', 26)}"
               for r in d.itertuples()]
              if context else [shorten(x, 24) for x in d["lv"]])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(d) + 1.5))
    y = -np.log10(d["pvalue"].clip(lower=1e-300))
    colors = np.where(d["fdr"] < 0.05, "#1f4e79", "#9dc3e6")
    ax.barh(range(len(d)), y, color=colors)
    ax.set_yticks(range(len(d)), labels, fontsize=8)
    for i, r in enumerate(d.itertuples()):
        note = f"fold {r.fold:.1f}" if context else f"AUC {r.auc:.2f}"
        ax.text(y.iloc[i], i, " " + note, va="center", fontsize=7)
    ax.set_xlabel("−log10 p (dark: FDR < 0.05)")
    ax.set_xlim(0, float(y.max()) * 1.2 + 0.1)
    ax.set_title(title or ("LV context enrichment" if context else "gene-set enrichment by LV"),
                 fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
