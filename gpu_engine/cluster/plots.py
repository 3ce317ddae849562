"""Plots of the clustering results (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..plotting import pyplot, shorten


def agreement_plot(table: pd.DataFrame, path: str | Path,
                   selected: pd.DataFrame | None = None) -> None:
    """Median weighted ARI with the ensemble against k, one line per consensus method; the
    ``selected`` (method, k) rows marked, the best one labelled."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for m, g in table.groupby("method"):
        ax.plot(g["k"], g["ari_median"], marker="o", ms=3, label=m)
    if selected is not None and len(selected):
        ax.scatter(selected["k"], selected["ari_median"], s=90, facecolors="none",
                   edgecolors="black", linewidths=1.2, zorder=3, label="selected")
        best = selected.iloc[0]
        ax.annotate(f"best: {best['method']}, k = {int(best['k'])}",
                    (best["k"], best["ari_median"]), textcoords="offset points",
                    xytext=(8, -14), fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("k (number of clusters)")
    ax.set_ylabel("median weighted ARI with the ensemble")
    ax.set_title("agreement of each consensus partition with the ensemble")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def coassociation_plot(D: np.ndarray, labels: np.ndarray, path: str | Path) -> None:
    """The co-association similarity 1 − D (condensed ``D``), objects ordered by ``labels``."""
    from scipy.spatial.distance import squareform

    plt = pyplot()
    order = np.argsort(labels, kind="stable")
    S = 1 - squareform(np.where(np.isnan(D), 1.0, D))
    fig, ax = plt.subplots(figsize=(5.8, 5))
    im = ax.imshow(S[np.ix_(order, order)], cmap="viridis", vmin=0, vmax=1,
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                 label="fraction of members clustering the pair together")
    edges = np.flatnonzero(np.diff(np.asarray(labels)[order])) + 0.5
    for e in edges:  # cluster boundaries of the selected partition
        ax.axhline(e, color="white", lw=0.6)
        ax.axvline(e, color="white", lw=0.6)
    ax.set_title(f"co-association, ordered by the selected partition "
                 f"({len(edges) + 1} clusters)", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def driver_plot(drivers: pd.DataFrame, path: str | Path, *, top: int = 5) -> None:
    """Per cluster (with its size), the ``top`` first driving features by importance (the
    stump's Gini impurity decrease) on one common scale, each labelled with its threshold."""
    groups = list(drivers.groupby("cluster"))
    if not groups:
        return
    plt = pyplot()
    fig, axes = plt.subplots(len(groups), 1, figsize=(6.5, 1.6 * len(groups) + 0.7),
                             squeeze=False, sharex=True)
    for ax, (c, g) in zip(axes[:, 0], groups):
        g = g.head(top)
        y = [shorten(f) for f in g["feature"]][::-1]
        bars = ax.barh(y, g["impurity_decrease"][::-1])
        for b, thr in zip(bars, g["threshold"][::-1]):
            ax.annotate(f"≥ {thr:.1f} SD", (b.get_width(), b.get_y() + b.get_height() / 2),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=6)
        size = int(g["cluster_size"].iloc[0]) if "cluster_size" in g else None
        ax.set_title(f"cluster {c}" + (f" ({size} objects)" if size is not None else ""),
                     fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("importance (Gini impurity decrease of the stump)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
