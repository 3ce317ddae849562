"""TWAS stage 1: expression prediction models trained from genotypes (PredictDB's elastic
net and the dlfa CNN with functional-annotation sharing), exported as PredictDB databases
and covariances for the TWAS layer.

- :mod:`.genotypes`: PLINK / GTEx dosage / Parquet readers, SNP filters, cis windows;
- :mod:`.prepare`: expression residualised on covariates and standardised;
- :mod:`.elastic_net`: glmnet-equivalent paths, cv.glmnet, the nested CV (batched);
- :mod:`.predictdb`: the estimator :class:`ElasticNetPredictor` and the database writer;
- :mod:`.cnn`, :mod:`.dlfa`, :mod:`.packed`: the CNN, its per-gene protocol, the packed
  trainer; :mod:`.cnn_predictor`: :class:`~.cnn_predictor.DLFAPredictor` over many genes;
- :mod:`.annotations`, :mod:`.fa`: the γ-step and :class:`~.fa.FASharing`;
- :mod:`.export`: the linear projection to PredictDB databases, the S-MultiXcan covariance,
  individual-level PrediXcan; :mod:`.compare`: CNN vs EN on one split.

The torch-based modules are not imported here (``import gpu_engine.expression`` does not
import torch).
"""

from .elastic_net import NestedFolds, fit_path, fold_ids, nested_cv
from .genotypes import Genotypes, cis_windows, read_dosage_text, read_genotypes, read_plink
from .predictdb import ElasticNetPredictor, write_covariance, write_database
from .prepare import prepare_expression

__all__ = ["ElasticNetPredictor", "Genotypes", "NestedFolds", "cis_windows", "fit_path", "fold_ids",
           "nested_cv", "prepare_expression", "read_dosage_text", "read_genotypes",
           "read_plink", "write_covariance", "write_database"]
