"""Which features (LVs) drive a cluster: PhenoPLIER's decision-stump procedure.

For each cluster, one-vs-rest labels; a depth-1 decision tree (gini) on the objects × features
data (z-scored per feature); its root feature and threshold are recorded, and the feature is
kept as a driver if the threshold is ≥ ``min_threshold`` (1.0 = one standard deviation above
the mean); the feature is then removed either way and the tree refitted, until
``max_features`` drivers are kept, ``max_explored`` features were tried, or no split is left.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ..errors import InputError
from ..results import TableResult, register


@register
class Drivers(TableResult):
    """The driving features of each cluster (a DataFrame): ``cluster, feature, threshold,
    impurity_decrease, rank, cluster_size``, in the order found. ``save("drivers.tsv")``
    (or ``.parquet``), ``Drivers.load``; :meth:`plot` draws the top ones."""

    kind = "cluster_drivers"

    def plot(self, path, *, top: int = 5) -> None:
        from .plots import driver_plot

        driver_plot(pd.DataFrame(self), path, top=top)


class ClusterInterpreter(BaseEstimator):
    """``fit(data, labels)`` sets ``stumps_``: every stump explored, in order, with ``cluster,
    feature, threshold, impurity_decrease, kept, cluster_size``; ``drivers_``
    (:class:`Drivers`): the kept ones with their ``rank`` (1 = found first); ``explored_``:
    cluster → number of stumps tried."""

    def __init__(self, min_threshold=1.0, max_features=20, max_explored=100, seed=0):
        self.min_threshold = min_threshold
        self.max_features = max_features
        self.max_explored = max_explored
        self.seed = seed

    def fit(self, data: pd.DataFrame, labels):
        from sklearn.tree import DecisionTreeClassifier

        if not isinstance(data, pd.DataFrame):
            data = pd.DataFrame(np.asarray(data))
        labels = np.asarray(labels)
        if len(labels) != len(data):
            raise InputError(f"interpreter: {len(labels)} labels for {len(data)} objects")
        labels = pd.Series(labels, index=data.index)
        X = data.to_numpy(np.float64)
        if not np.isfinite(X).all():
            raise InputError("interpreter: the data have NaN or infinite values")
        sd = X.std(0, ddof=0)
        Z = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
        rows, explored = [], {}
        for c in pd.unique(labels.dropna()):
            y = (labels == c).to_numpy()
            feats = list(range(Z.shape[1]))
            kept = 0
            tried = 0
            while feats and kept < self.max_features and tried < self.max_explored:
                tree = DecisionTreeClassifier(max_depth=1, criterion="gini",
                                              random_state=self.seed).fit(Z[:, feats], y)
                t = tree.tree_
                if t.node_count < 3:  # no split left
                    break
                f = feats[int(t.feature[0])]
                thr = float(t.threshold[0])
                n = t.weighted_n_node_samples
                dec = float(t.impurity[0] - (n[1] * t.impurity[1] + n[2] * t.impurity[2]) / n[0])
                tried += 1
                keep = thr >= self.min_threshold
                kept += keep
                rows.append({"cluster": c, "feature": data.columns[f], "threshold": thr,
                             "impurity_decrease": dec, "kept": bool(keep),
                             "rank": kept if keep else 0, "cluster_size": int(y.sum())})
                feats.remove(f)
            explored[c] = tried
        cols = ["cluster", "feature", "threshold", "impurity_decrease", "kept", "rank",
                "cluster_size"]
        self.stumps_ = pd.DataFrame(rows, columns=cols)
        self.drivers_ = Drivers(self.stumps_.loc[self.stumps_["kept"]].drop(columns="kept")
                                .reset_index(drop=True))
        self.explored_ = explored
        return self
