"""Plots of a fitted PLIER model (matplotlib, written to PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..plotting import pyplot, shorten


def significant_u(model, *, fdr: float = 0.05, auc: float = 0.6, top: int = 3):
    """U restricted as R's ``plotU``: entries with AUC < ``auc`` or p above the cutoff implied
    by FDR < ``fdr`` are zeroed, then each LV keeps its ``top`` largest; empty rows and
    columns are dropped; columns scaled to a maximum of 1."""
    U = model.U_.copy()
    s = model.summary_
    sig = s.loc[s["fdr"] < fdr, "pvalue"]
    cutoff = sig.max() if len(sig) else -np.inf
    values = U.to_numpy(copy=True)
    values[(model.Uauc_.to_numpy() < auc) | (model.Up_.to_numpy() > cutoff)] = 0.0
    for i in range(values.shape[1]):
        col = values[:, i]
        if (col > 0).sum() > top:
            col[col < np.sort(col)[-top]] = 0.0
    U = pd.DataFrame(values, index=U.index, columns=U.columns)
    U = U.loc[(U > 0).any(axis=1), (U > 0).any(axis=0)]
    return U / U.max(axis=0)


def u_heatmap(model, path: str | Path, *, fdr: float = 0.05) -> Path | None:
    """Heatmap of U's significant entries (pathways × LVs); None when there are none."""
    plt = pyplot()
    U = significant_u(model, fdr=fdr)
    path = Path(path)
    if U.empty:
        return None
    h = max(3.0, 0.22 * U.shape[0] + 1.5)
    w = max(6.0, 0.3 * U.shape[1] + 5.5)
    fig, ax = plt.subplots(figsize=(w, h))
    im = ax.imshow(U.to_numpy(), aspect="auto", cmap="Purples", vmin=0, vmax=1,
                   interpolation="nearest")
    ax.set_xticks(range(U.shape[1]), U.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(U.shape[0]), [shorten(p, 45) for p in U.index], fontsize=7)
    ax.set_title(f"PLIER U: pathways at FDR < {fdr}\n(top 3 per LV, scaled per LV)",
                 fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.6, label="U / max over the LV")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
