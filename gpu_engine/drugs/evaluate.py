"""Evaluation of drug–disease predictions on a gold standard (PharmacotherapyDB style:
``drug, disease, label`` with 1 = disease-modifying indication, 0 = non-indication).

ROC AUC and average precision follow scikit-learn's definitions exactly (ties in the scores
handled as it does; tested against it). The permutation baseline shuffles the labels over the
evaluated pairs ``n_permutations`` times (seeded): its AUC / AP distribution gives the
chance level of this gold standard and a one-sided p-value (1 + #{null ≥ observed}) /
(1 + n_permutations).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError, preview
from ..io import member
from ..results import FolderResult, register


@register
@dataclass
class Evaluation(FolderResult):
    """``auc``, ``ap``; ``null_auc`` / ``null_ap`` (permutation baseline), their p-values;
    ``roc`` (fpr, tpr, threshold) and ``pr`` (precision, recall, threshold) curves;
    ``pairs`` (drug, disease, label, score) evaluated; ``report`` (pairs dropped and why).

    Saved as a folder: ``roc.parquet``, ``pr.parquet``, ``pairs.parquet``,
    ``null_auc.parquet``, ``null_ap.parquet``, ``result.json``."""

    auc: float
    ap: float
    null_auc: np.ndarray
    null_ap: np.ndarray
    auc_pvalue: float
    ap_pvalue: float
    roc: pd.DataFrame
    pr: pd.DataFrame
    pairs: pd.DataFrame
    report: dict = field(default_factory=dict)

    kind = "drug_evaluation"
    _TABLES = ("roc", "pr", "pairs")
    _ARRAYS = ("null_auc", "null_ap")

    def summary(self) -> dict:
        return {"pairs": len(self.pairs), "positives": int(self.pairs["label"].sum()),
                "auc": self.auc, "auc_null_mean": float(self.null_auc.mean()),
                "auc_pvalue": self.auc_pvalue, "ap": self.ap,
                "ap_null_mean": float(self.null_ap.mean()), "ap_pvalue": self.ap_pvalue}


@register
@dataclass
class Comparison(FolderResult):
    """Several methods' :class:`Evaluation` on one gold standard: ``metrics`` (one row per
    method) and ``evaluations`` (name → Evaluation, in the order given; not a field).

    Saved as a folder: ``metrics.parquet`` (and ``metrics.tsv``), one Evaluation folder per
    method (``<name>/``), ``curves.png`` (ROC and precision–recall), ``result.json``."""

    metrics: pd.DataFrame

    kind = "drug_comparison"
    _TABLES = ("metrics",)

    def __post_init__(self):
        self.evaluations: dict[str, Evaluation] = {}

    @classmethod
    def of(cls, evaluations: dict) -> Comparison:
        bad = [n for n in evaluations if not n or "/" in n or n.startswith(".")]
        if bad:
            raise InputError(f"evaluation names {preview(bad)} cannot name folders")
        rows = [{"method": n, **e.summary(),
                 "dropped_drug_not_scored": e.report["dropped_drug_not_scored"],
                 "dropped_disease_not_scored": e.report["dropped_disease_not_scored"]}
                for n, e in evaluations.items()]
        out = cls(metrics=pd.DataFrame(rows))
        out.evaluations = dict(evaluations)
        return out

    def _write_parts(self, folder, metadata) -> None:
        for n, e in self.evaluations.items():
            e.save(folder / n, metadata=metadata)

    def _write_extras(self, folder) -> None:
        from ..io import write_table

        write_table(self.metrics, folder / "metrics.tsv")
        plot_curves(self.evaluations, folder / "curves.png")

    @classmethod
    def load(cls, folder):
        from pathlib import Path

        out = super().load(folder)
        out.evaluations = {n: Evaluation.load(Path(folder) / n) for n in out.metrics["method"]}
        return out


def _order(score: np.ndarray):
    """Descending order and the last index of each run of equal scores in it."""
    o = np.argsort(-score, kind="stable")
    s = score[o]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    return o, last


def roc_auc(labels: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``labels`` (rows × pairs, 0/1) for one ``score`` vector: the
    Mann–Whitney statistic with average ranks (= scikit-learn's trapezoid area)."""
    from scipy.stats import rankdata

    Y = np.atleast_2d(labels).astype(np.float64)
    r = rankdata(score)
    pos = Y.sum(1)
    neg = Y.shape[1] - pos
    return (Y @ r - pos * (pos + 1) / 2) / (pos * neg)


def average_precision(labels: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Average precision of each row of ``labels`` (scikit-learn's step-wise definition:
    Σ (R_n − R_{n−1}) P_n over the distinct score thresholds, descending)."""
    Y = np.atleast_2d(labels).astype(np.float64)
    o, last = _order(np.asarray(score, np.float64))
    tps = np.cumsum(Y[:, o], axis=1)[:, last]
    fps = (last + 1)[None, :] - tps
    precision = tps / (tps + fps)
    recall = tps / tps[:, -1:]
    dr = np.diff(np.concatenate([np.zeros((len(Y), 1)), recall], axis=1), axis=1)
    return (dr * precision).sum(1)


def gold_pairs(predictions: pd.DataFrame, gold_standard: pd.DataFrame,
               report: dict | None = None) -> pd.DataFrame:
    """The gold-standard pairs that ``predictions`` (drugs × diseases) scores, with their
    score. Pairs whose drug or disease is not scored are dropped and counted in ``report``;
    exact duplicates are merged; a pair with both labels is an error."""
    src = gold_standard.attrs.get("source", "gold standard")
    need = {"drug", "disease", "label"}
    if not need <= set(gold_standard.columns):
        raise InputError(f"{src}: missing column(s) {sorted(need - set(gold_standard.columns))}"
                         " (need drug, disease, label)")
    g = gold_standard[["drug", "disease", "label"]].copy()
    g["drug"], g["disease"] = g["drug"].astype(str), g["disease"].astype(str)
    lab = pd.to_numeric(g["label"], errors="coerce")
    if lab.isna().any() or not lab.isin([0, 1]).all():
        bad = g.loc[lab.isna() | ~lab.isin([0, 1])].iloc[0]
        raise InputError(f"{src}: labels must be 0 or 1; pair ({bad['drug']}, "
                         f"{bad['disease']}) has {str(bad['label'])!r} (empty or cut row?)")
    g["label"] = lab.astype(int)
    n0 = len(g)
    g = g.drop_duplicates()
    conflict = g.duplicated(["drug", "disease"], keep=False)
    if conflict.any():
        c = g.loc[conflict].iloc[0]
        raise InputError(f"{src}: pair ({c['drug']}, {c['disease']}) is labelled both "
                         "0 and 1; fix the table")
    drugs = predictions.index.astype(str).to_numpy()
    diseases = predictions.columns.astype(str).to_numpy()
    has_drug = member(g["drug"].to_numpy(), drugs)
    has_dis = member(g["disease"].to_numpy(), diseases)
    rep = {"gold_pairs": n0, "duplicates_merged": n0 - len(g),
           "dropped_drug_not_scored": int((~has_drug).sum()),
           "dropped_disease_not_scored": int((has_drug & ~has_dis).sum()),
           "missing_drugs": sorted(set(g.loc[~has_drug, "drug"])),
           "missing_diseases": sorted(set(g.loc[~has_dis, "disease"]))}
    g = g.loc[has_drug & has_dis].reset_index(drop=True)
    if report is not None:
        report.update(rep)
    if g.empty:
        raise InputError("gold standard: no pair has both its drug and its disease scored "
                         f"(gold drugs {preview(rep['missing_drugs'])}, diseases "
                         f"{preview(rep['missing_diseases'])}; scored drugs "
                         f"{preview(drugs)}, diseases {preview(diseases)})")
    r = pd.Index(drugs).get_indexer(g["drug"])
    c = pd.Index(diseases).get_indexer(g["disease"])
    g["score"] = predictions.to_numpy(np.float64)[r, c]
    if g["label"].nunique() < 2:
        raise InputError(f"{src}: the {len(g)} scored pairs all have label "
                         f"{int(g['label'].iloc[0])}; AUC and AP need both classes")
    return g


def evaluate(scores, gold_standard: pd.DataFrame, *, n_permutations: int = 1000,
             seed: int = 0) -> Evaluation:
    """ROC AUC, average precision, their permutation baseline and curves.

    ``scores``: a :class:`DrugScores` with diseases, or a drugs × diseases frame."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    pred = getattr(scores, "drug_disease", scores)
    if pred is None:
        raise InputError("evaluate: these scores have no diseases; score with a trait → "
                         "disease map (trait_disease=)")
    report: dict = {}
    pairs = gold_pairs(pred, gold_standard, report)
    y = pairs["label"].to_numpy()
    s = pairs["score"].to_numpy()
    auc = float(roc_auc(y, s)[0])
    ap = float(average_precision(y, s)[0])
    rng = np.random.default_rng(seed)
    if n_permutations > 0:
        Y = np.stack([rng.permutation(y) for _ in range(n_permutations)])
        null_auc, null_ap = roc_auc(Y, s), average_precision(Y, s)
    else:
        null_auc = null_ap = np.empty(0)
    pval = lambda null, obs: float((1 + (null >= obs - 1e-12).sum()) / (1 + len(null)))
    fpr, tpr, thr = roc_curve(y, s)
    prec, rec, thr2 = precision_recall_curve(y, s)
    return Evaluation(auc, ap, null_auc, null_ap, pval(null_auc, auc), pval(null_ap, ap),
                      pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr}),
                      pd.DataFrame({"precision": prec, "recall": rec,
                                    "threshold": np.r_[thr2, np.nan]}),
                      pairs, report)


def plot_curves(evaluations: dict, path) -> None:
    """ROC and precision–recall curves of one or more evaluations (label → Evaluation), with
    the permutation baseline's mean AUC / AP in the legend."""
    from ..plotting import pyplot

    plt = pyplot()

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.5))
    for name, ev in evaluations.items():
        a.plot(ev.roc["fpr"], ev.roc["tpr"],
               label=f"{name}: AUC {ev.auc:.3f} (null {ev.null_auc.mean():.3f})"
               if len(ev.null_auc) else f"{name}: AUC {ev.auc:.3f}")
        b.step(ev.pr["recall"], ev.pr["precision"], where="post",
               label=f"{name}: AP {ev.ap:.3f} (null {ev.null_ap.mean():.3f})"
               if len(ev.null_ap) else f"{name}: AP {ev.ap:.3f}")
    a.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    first = next(iter(evaluations.values()))
    b.axhline(first.pairs["label"].mean(), color="grey", lw=0.8, ls="--")
    a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    b.set(xlabel="recall", ylabel="precision", title="precision–recall")
    a.legend(fontsize=8, loc="lower right")
    b.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
