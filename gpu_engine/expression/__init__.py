"""TWAS stage 1: expression prediction models trained from genotypes (PredictDB's elastic
net), exported as PredictDB databases and covariances for the TWAS layer.

- :mod:`.genotypes`: PLINK / GTEx dosage / Parquet readers, SNP filters, cis windows;
- :mod:`.prepare`: expression residualised on covariates and standardised;
- :mod:`.elastic_net`: glmnet-equivalent paths, cv.glmnet, the nested CV (batched);
- :mod:`.predictdb`: the estimator :class:`ElasticNetPredictor` and the database writer.
"""

from .elastic_net import NestedFolds, fit_path, fold_ids, nested_cv
from .genotypes import Genotypes, cis_windows, read_dosage_text, read_genotypes, read_plink
from .predictdb import ElasticNetPredictor, write_covariance, write_database
from .prepare import prepare_expression

__all__ = ["ElasticNetPredictor", "Genotypes", "NestedFolds", "cis_windows", "fit_path", "fold_ids",
           "nested_cv", "prepare_expression", "read_dosage_text", "read_genotypes",
           "read_plink", "write_covariance", "write_database"]
