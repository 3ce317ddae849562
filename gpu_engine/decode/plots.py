"""DEcode's plots: predicted vs actual per output, the cross-output correlation matrix, the top
regulators per output (heat map of mean DeepLIFT scores), and KO coefficients for a pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..plotting import pyplot, shorten


def plot_predicted_vs_actual(pred: pd.DataFrame, actual: pd.DataFrame, path, *,
                             max_panels: int = 12) -> Path:
    """One scatter panel per output (the first ``max_panels``), Spearman ρ in each title."""
    from scipy.stats import spearmanr

    plt = pyplot()
    outs = list(pred.columns)[:max_panels]
    ncol = min(4, len(outs))
    nrow = -(-len(outs) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 3.0 * nrow), squeeze=False)
    for ax, o in zip(axes.flat, outs):
        x, y = actual[o].to_numpy(float), pred[o].to_numpy(float)
        ax.scatter(x, y, s=6, alpha=0.5, lw=0)
        ax.set_title(f"{shorten(o, 20)}  ρ = {spearmanr(x, y).statistic:.2f}", fontsize=9)
        ax.set_xlabel("actual", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
    for ax in list(axes.flat)[len(outs):]:
        ax.axis("off")
    fig.suptitle("DEcode: predicted vs actual on the test genes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_cross_output(matrix: pd.DataFrame, path) -> Path:
    """Heat map of ρ(predicted i, actual j); a tissue-specific model is bright on the
    diagonal."""
    plt = pyplot()
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(2 + 0.25 * n, 1.5 + 0.25 * n))
    v = float(np.nanmax(np.abs(matrix.to_numpy()))) or 1.0
    im = ax.imshow(matrix.to_numpy(), cmap="RdBu_r", vmin=-v, vmax=v)
    ax.set_xticks(range(n), [shorten(c, 16) for c in matrix.columns], rotation=90, fontsize=7)
    ax.set_yticks(range(n), [shorten(c, 16) for c in matrix.index], fontsize=7)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    fig.colorbar(im, ax=ax, label="Spearman ρ", shrink=0.8)
    ax.set_title("Cross-output Spearman (test genes)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_top_regulators(attribution, path, *, top: int = 20) -> Path:
    """Mean DeepLIFT score per output for the ``top`` regulators by collective importance."""
    plt = pyplot()
    regs = attribution.importance["regulator"].head(top).tolist()
    M = attribution.mean_scores[regs]
    fig, ax = plt.subplots(figsize=(2.5 + 0.3 * len(regs), 1.8 + 0.22 * len(M)))
    v = float(np.nanmax(np.abs(M.to_numpy()))) or 1.0
    im = ax.imshow(M.to_numpy(), cmap="RdBu_r", vmin=-v, vmax=v, aspect="auto")
    ax.set_xticks(range(len(regs)), [shorten(r, 14) for r in regs], rotation=90, fontsize=7)
    ax.set_yticks(range(len(M)), [shorten(o, 18) for o in M.index], fontsize=7)
    fig.colorbar(im, ax=ax, label="mean DeepLIFT score", shrink=0.8)
    ax.set_title(f"Top {len(regs)} regulators (collective importance)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_knockout(result, path, *, top: int = 25) -> Path:
    """KO coefficients (most negative = strongest drivers of the pair's co-expression),
    Bonferroni-significant ones dark."""
    plt = pyplot()
    c = result.coefficients.head(top)
    term = c.columns[0]
    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.22 * len(c)))
    colors = np.where(c["significant"], "#b2182b", "#bbbbbb")
    ax.barh(range(len(c)), c["coef"], xerr=1.96 * c["se"], color=colors)
    ax.set_yticks(range(len(c)), [shorten(t, 18) for t in c[term]], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel("effect on the pair's profile Spearman ρ (OLS coefficient ± 1.96 SE)")
    what = {"first": f"knock-outs in {result.pair[0]} only",
            "both": "knock-outs in both genes",
            "sites": f"binding sites of {result.pair[0]} removed"}.get(result.mode, result.mode)
    ax.set_title(f"{result.pair[0]} vs {result.pair[1]}: {what} (ρ = {result.base_rho:.2f} "
                 "unperturbed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_training(history: pd.DataFrame, best_run: int, path) -> Path:
    """Training and validation loss per epoch for every restart; the kept restart bold."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for k, h in history.groupby("restart"):
        kept = int(k) == int(best_run)
        ax.plot(h["epoch"] + 1, h["val_loss"], color="tab:red" if kept else "0.7",
                lw=1.6 if kept else 0.8, label="validation (kept restart)" if kept else None)
        if kept:
            ax.plot(h["epoch"] + 1, h["loss"], color="tab:blue", lw=1.2,
                    label="training (kept restart)")
            best = h.loc[h["val_loss"].idxmin()]
            ax.axvline(best["epoch"] + 1, color="tab:red", ls=":", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean squared error, scaled targets)")
    ax.set_title(f"{history['restart'].nunique()} restarts; grey: validation loss of the "
                 "others", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
