"""Every estimator follows scikit-learn's conventions: parameters in ``__init__`` and
nothing else, ``get_params``/``set_params``, ``clone``, a readable repr, ``check_is_fitted``
raising ``NotFittedError`` before ``fit``, pickling of a fitted estimator.

The subset of scikit-learn's own estimator checks that applies runs on each. Skipped, and
why: every check that fits on a generic numeric ``X`` (and ``y``) — ``PLIER.fit`` takes a
genes × samples expression frame *and* a genes × pathways prior, the interpreter takes
objects × features *and* cluster labels, the ensemble needs enough objects for k ≥ 2 of
every family — so dtype, NaN, sparse, 1-sample, sample-weight, n_features_in_ and
predict/transform-shape checks have no meaning for them; those behaviours are tested on
real inputs in their own test files. The fitted-state checks that do apply (fit returns
self, fit leaves the parameters alone, clone of a fitted estimator is unfitted, pickle round
trip) are written out below on valid inputs.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks as ec
from sklearn.utils.validation import check_is_fitted

from gpu_engine.cluster import ClusterEnsemble, ClusterInterpreter
from gpu_engine.plier import PLIER

ESTIMATORS = [PLIER(k=4, max_iter=20, backend="cpu"),
              ClusterEnsemble(families=("kmeans", "agglomerative"), k_max=4, n_seeds=1,
                              backend="cpu"),
              ClusterInterpreter(max_features=3)]

CHECKS = ["check_estimator_cloneable", "check_estimator_repr", "check_get_params_invariance",
          "check_set_params", "check_no_attributes_set_in_init",
          "check_parameters_default_constructible",
          "check_do_not_raise_errors_in_init_or_set_params", "check_valid_tag_types",
          "check_estimator_tags_renamed", "check_mixin_order"]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_sklearn_checks(est, check):
    fn = getattr(ec, check)
    fn(type(est).__name__, clone(est))


def _fit_data(est):
    rng = np.random.default_rng(0)
    if isinstance(est, PLIER):
        genes = [f"g{i}" for i in range(120)]
        prior = pd.DataFrame((rng.random((120, 12)) < 0.2).astype(float), index=genes,
                             columns=[f"p{j}" for j in range(12)])
        Y = pd.DataFrame(rng.normal(size=(120, 30)) + prior.to_numpy() @ rng.normal(
            size=(12, 30)), index=genes, columns=[f"s{j}" for j in range(30)])
        return (Y, prior), "Z_"
    X = pd.DataFrame(np.vstack([rng.normal(0, 0.3, (15, 4)), rng.normal(3, 0.3, (15, 4))]),
                     columns=list("abcd"))
    if isinstance(est, ClusterInterpreter):
        return (X, np.repeat([0, 1], 15)), "drivers_"
    return (X,), "partitions_"


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_fitted_state(est):
    est = clone(est)
    args, attr = _fit_data(est)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    params = {k: v for k, v in est.get_params().items()}
    assert est.fit(*args) is est
    check_is_fitted(est)
    assert est.get_params() == params  # fit leaves the parameters alone
    with pytest.raises(NotFittedError):
        check_is_fitted(clone(est))
    again = pickle.loads(pickle.dumps(est))
    a, b = getattr(est, attr), getattr(again, attr)
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        np.testing.assert_array_equal(a, b)
    assert repr(est).startswith(type(est).__name__ + "(")


def test_plier_methods_need_a_fit():
    with pytest.raises(NotFittedError, match="call fit"):
        PLIER().transform(pd.DataFrame(np.ones((3, 2))))


def test_ensemble_k_max_bounds_every_family():
    # agglomerative follows k_max unless set on its own
    X = pd.DataFrame(np.random.default_rng(1).normal(size=(40, 3)))
    ens = ClusterEnsemble(families=("agglomerative",), representations=("z_score",), k_max=5,
                          linkages=("ward",)).fit(X)
    assert ens.members_["n_clusters"].max() == 5
    ens = ClusterEnsemble(families=("agglomerative",), representations=("z_score",), k_max=5,
                          agglomerative_k_max=9, linkages=("ward",)).fit(X)
    assert ens.members_["n_clusters"].max() == 9


def test_dbscan_range_is_mostly_informative():
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(600, n_features=200, centers=15, cluster_std=6.0, random_state=0)
    ens = ClusterEnsemble(families=("dbscan",), representations=("pca",), dbscan_n_eps=6,
                          family_size=1000, seed=0).fit(pd.DataFrame(X))
    r = ens.report_.set_index("family").loc["dbscan"]
    assert r["dropped_one_cluster"] <= 0.2 * r["generated"], r.to_dict()
