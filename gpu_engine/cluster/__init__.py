"""Trait clustering in LV space: ensemble generation over k-means, spectral, Gaussian
mixture, agglomerative (4 linkages) and DBSCAN on z-score / PCA / UMAP representations
(cuML's estimators on the rapids backend); the co-association distance
(``gpu_engine.kernels.coassoc``); EAC and SCC consensus partitions, their agreement with the
ensemble, selection, and the decision-stump interpreter of driving features. CLI:
``gpu-engine cluster ensemble|consensus|interpret``."""

from .coassociation import coassociation, ensemble_matrix
from .consensus import Consensus, agreement, consensus, select
from .ensemble import FAMILIES, ClusterEnsemble, representations
from .interpret import ClusterInterpreter, Drivers

__all__ = ["coassociation", "ensemble_matrix", "agreement", "consensus", "select", "Consensus",
           "FAMILIES", "ClusterEnsemble", "representations", "ClusterInterpreter", "Drivers"]
