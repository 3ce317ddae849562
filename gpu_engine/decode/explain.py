"""Gene modules and traits explained by their regulators (spec ``decode.md`` §12).

:func:`explain_table` trains DEcode with any gene-level table as the target — PLIER loadings Z
(one output per LV, ``target="columns"``: each LV scaled by its training sd) or a trait's
gene-level association scores (S-MultiXcan −log10 p, mean S-PrediXcan z) — and reports, per
column (LV or trait) and regulator:

- ``score``: the signed mean DeepLIFT score over the held-out genes (which binding predicts
  membership, and in which direction), ``rank`` by |score| within the column;
- ``perm_p``: the permutation baseline — the same training with the feature matrices shuffled
  across genes within each split (``shuffle="all"``), ``permutations`` times; the null pool
  of a column is every regulator's |score| under the shuffled models, and
  perm_p = (1 + #null ≥ |score|) / (1 + pool size);
- ``binding_rho``, ``binding_p``, ``binding_fdr``: the model-free association, Spearman over
  all genes between the regulator's total (scaled) binding and the column, BH FDR per column.

:func:`explain_modules` takes any model of the LV-model contract (a PLIER folder, an LV model
folder, a Z file, a fitted PLIER, a Z DataFrame). DEcode learns gene-level regularities of
binding vs expression across genes; nothing here is a genotype effect, and none of it may be
mixed into TWAS statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from ..errors import InputError
from ..results import FolderResult, register
from . import data as D
from .features import MASKS, BindingMaps


def binding_totals(maps: BindingMaps, genes, regulators) -> pd.DataFrame:
    """genes × regulators: total bound bases (over both regions), 0 where unbound."""
    parts = [getattr(maps, r) for r in ("rna", "promoter")]
    long = pd.concat(parts)
    long = long[~long["feature"].isin(list(MASKS.values())) & long["gene"].isin(set(genes))]
    tot = long.groupby(["gene", "feature"])["value"].sum().unstack(fill_value=0.0)
    return tot.reindex(index=list(genes), columns=list(regulators), fill_value=0.0)


def _binding_association(totals: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    from scipy.stats import rankdata
    from scipy.stats import t as tdist

    from ..stats import fdr_bh

    rows = []
    Rb = rankdata(totals.to_numpy(), axis=0)
    Rb = Rb - Rb.mean(0)
    n = len(totals)
    for col in table.columns:
        y = rankdata(table[col].to_numpy())
        y = y - y.mean()
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = (Rb * y[:, None]).sum(0) / np.sqrt((Rb ** 2).sum(0) * (y ** 2).sum())
            tt = rho * np.sqrt((n - 2) / np.maximum(1e-300, 1 - rho ** 2))
        p = 2 * tdist.sf(np.abs(tt), n - 2)
        p = np.where(np.isfinite(p), p, 1.0)
        rows.append(pd.DataFrame({"column": col, "regulator": totals.columns,
                                  "binding_rho": rho, "binding_p": p,
                                  "binding_fdr": fdr_bh(p)}))
    return pd.concat(rows, ignore_index=True)


@register
@dataclass
class TableExplanation(FolderResult):
    """What :func:`explain_table` returns: ``regulators`` (one row per column × regulator,
    see the module docstring), ``evaluation`` (test Spearman per column), ``columns``."""

    kind: ClassVar[str] = "decode.explanation"
    _TABLES: ClassVar[tuple[str, ...]] = ("regulators", "evaluation")

    regulators: pd.DataFrame
    evaluation: pd.DataFrame
    columns: list
    permutations: int = 0

    def top(self, column, n: int = 10) -> pd.DataFrame:
        r = self.regulators
        return r[r["column"] == column].sort_values("rank").head(n).reset_index(drop=True)

    def _write_extras(self, folder: Path) -> None:
        from ..plotting import pyplot, shorten

        plt = pyplot()
        r = self.regulators
        top = (r[r["rank"] <= 5]["regulator"].drop_duplicates().tolist())[:30]
        M = r[r["regulator"].isin(top)].pivot(index="column", columns="regulator",
                                                values="score").reindex(columns=top)
        fig, ax = plt.subplots(figsize=(2.5 + 0.3 * len(top), 1.8 + 0.3 * len(M)))
        v = float(np.nanmax(np.abs(M.to_numpy()))) or 1.0
        im = ax.imshow(M.to_numpy(), cmap="RdBu_r", vmin=-v, vmax=v, aspect="auto")
        ax.set_xticks(range(len(top)), [shorten(t, 14) for t in top], rotation=90, fontsize=7)
        ax.set_yticks(range(len(M)), [shorten(c, 18) for c in M.index], fontsize=8)
        fig.colorbar(im, ax=ax, label="mean DeepLIFT score", shrink=0.8)
        ax.set_title("Regulators whose binding predicts each column (top 5 each)")
        fig.tight_layout()
        fig.savefig(folder / "regulators.png", dpi=110)
        plt.close(fig)


def explain_table(maps: BindingMaps, table: pd.DataFrame, splits=None, *,
                  permutations: int = 1, **params) -> TableExplanation:
    """Train DEcode on ``table`` (genes × columns) and rank regulators per column (see the
    module docstring). ``splits``: default test = chromosome 1, validation 10 % of the rest.
    ``params``: :class:`~.model.DEcode` parameters (``target`` is "columns")."""
    from .model import DEcode

    table = table.copy()
    table.index = table.index.astype(str)
    genes = [g for g in table.index if g in set(maps.genes["gene"])]
    if not genes:
        raise InputError("explain: no gene of the table has binding maps (are the gene ids "
                         "of the same kind, e.g. both Ensembl or both symbols?)")
    table = table.loc[genes]
    if splits is None:
        g = maps.genes[maps.genes["gene"].isin(set(genes))]
        splits = D.chromosome_split(g, seed=params.get("random_state", 0))
    params = {"target": "columns"} | params
    model = DEcode(**params).fit(maps, table, splits)
    att = model.attribute(maps)
    regs = model.regulators()
    null = {c: [] for c in table.columns}
    for k in range(int(permutations)):
        perm = DEcode(**(params | {"shuffle": "all",
                                   "random_state": params.get("random_state", 0) + 1000 + k}))
        pa = perm.fit(maps, table, splits).attribute(maps)
        for c in table.columns:
            null[c].append(np.abs(pa.mean_scores.loc[c].to_numpy()))
    rows = []
    for c in table.columns:
        s = att.mean_scores.loc[c].to_numpy()
        order = np.argsort(-np.abs(s), kind="stable")
        rank = np.empty(len(s), int)
        rank[order] = np.arange(1, len(s) + 1)
        if null[c]:
            pool = np.concatenate(null[c])
            perm_p = (1 + (pool[None, :] >= np.abs(s)[:, None]).sum(1)) / (1 + pool.size)
        else:
            perm_p = np.full(len(s), np.nan)
        rows.append(pd.DataFrame({"column": c, "regulator": regs["name"], "region":
                                  regs["region"], "score": s, "abs_score": np.abs(s),
                                  "rank": rank, "perm_p": perm_p}))
    out = pd.concat(rows, ignore_index=True)
    assoc = _binding_association(binding_totals(maps, genes, regs["name"]), table)
    out = out.merge(assoc, on=["column", "regulator"], how="left")
    out = out.sort_values(["column", "rank"]).reset_index(drop=True)
    ev = model.evaluation_[model.evaluation_["output"].isin(table.columns)].rename(
        columns={"output": "column"}).reset_index(drop=True)
    res = TableExplanation(out, ev, [str(c) for c in table.columns], int(permutations))
    res.metadata = {"report": model.report_}
    res.model = model
    return res


def explain_modules(maps: BindingMaps, lv_model, splits=None, *, lvs=None,
                    permutations: int = 1, **params) -> TableExplanation:
    """:func:`explain_table` on the LV loadings Z of ``lv_model`` (any model of the LV-model
    contract), optionally only the LVs ``lvs``."""
    from ..lvmodel import as_lv_model

    Z = as_lv_model(lv_model).Z
    if lvs is not None:
        missing = [v for v in lvs if v not in Z.columns]
        if missing:
            raise InputError(f"LV model has no LV {missing[0]!r}")
        Z = Z[list(lvs)]
    return explain_table(maps, Z, splits, permutations=permutations, **params)
