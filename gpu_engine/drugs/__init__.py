"""Drug repurposing in gene and module space (So et al. 2017, as used by PhenoPLIER): the
negative dot product of drug signatures with signed TWAS z per tissue and top-k, rank
aggregation over k and tissues, trait → disease mapping (:func:`score`); ROC AUC, average
precision, a permutation baseline and curves on a gold standard (:func:`evaluate`); the LVs
behind a module-based prediction (:func:`explain`, :func:`lv_contributions`)."""

from .evaluate import (
    Comparison,
    Evaluation,
    average_precision,
    evaluate,
    gold_pairs,
    plot_curves,
    roc_auc,
)
from .scoring import (
    GENE_TOP_K,
    MODULE_TOP_K,
    DrugScores,
    explain,
    lv_contributions,
    raw_scores,
    score,
    to_diseases,
    top_order,
    top_predictions,
)

__all__ = ["Comparison", "Evaluation", "average_precision", "evaluate", "gold_pairs",
           "plot_curves", "roc_auc", "GENE_TOP_K", "MODULE_TOP_K", "DrugScores", "explain",
           "lv_contributions", "raw_scores", "score", "to_diseases", "top_order",
           "top_predictions"]
