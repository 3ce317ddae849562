"""Clustering ensemble and consensus (issue in progress): planted clusters recovered, the
agreement score's definition, selection, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from gpu_engine.cluster import ClusterEnsemble, agreement, consensus, select
from gpu_engine.errors import InputError

SMALL = dict(k_max=6, n_seeds=2, agglomerative_k_max=8, dbscan_min_samples_max=8,
             dbscan_n_eps=5, family_size=25)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(120, n_features=6, centers=4, cluster_std=0.6, random_state=0)
    return pd.DataFrame(X, index=[f"t{i}" for i in range(120)]), y


@pytest.fixture(scope="module")
def fitted(blobs):
    return ClusterEnsemble(**SMALL).fit(blobs[0])


def test_ensemble_members_and_report(fitted):
    rep = fitted.report_.set_index("family")
    assert list(rep.index) == ["kmeans", "spectral", "gmm", "agglomerative", "dbscan"]
    # two representations (z-score, PCA) × k = 2…6 × 2 seeds
    assert (rep["kept"] <= 25).all() and rep.loc["kmeans", "generated"] == 2 * 5 * 2
    assert rep.loc["agglomerative", "parameter_sets"] == 2 * 7 * 4
    assert rep.loc["agglomerative", "generated"] == 2 * 25  # sampled: 56 > 2 × family_size
    assert fitted.partitions_.shape == (int(rep["kept"].sum()), 120)
    assert (fitted.members_["n_clusters"] > 1).all()
    dbs = fitted.members_["family"] == "dbscan"
    assert np.isnan(fitted.partitions_[dbs.to_numpy()]).any()  # noise became missing


def test_consensus_recovers_planted_clusters(blobs, fitted):
    table, parts = consensus(fitted.partitions_, k_range=range(2, 7))
    best = select(table)
    assert best.iloc[0]["k"] == 4
    chosen = parts[table.index.get_loc(best.index[0])]
    assert adjusted_rand_score(blobs[1], chosen) >= 0.9
    assert set(table["method"]) == {"eac_single", "eac_complete", "eac_average", "scc_0.20",
                                    "scc_0.25", "scc_0.30", "scc_0.50"}


def test_agreement_is_the_weighted_ari():
    from sklearn.metrics import adjusted_mutual_info_score

    from gpu_engine.cluster.consensus import ari

    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 5, 50), rng.integers(0, 3, 50) * 7
        assert ari(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
    assert ari(np.zeros(5, int), np.zeros(5, int)) == 1.0
    part = np.array([0, 0, 1, 1, 2, 2])
    ens = np.array([[0, 0, 1, 1, 2, 2], [0, np.nan, 1, 1, 0, np.nan]], float)
    got = agreement(part, ens, metrics=("ari", "ami"))
    assert got["ami_mean"] == pytest.approx(
        (1.0 + (4 / 6) * adjusted_mutual_info_score([0, 1, 1, 2], [0, 1, 1, 0])) / 2)
    with pytest.raises(InputError, match="unknown metric"):
        agreement(part, ens, metrics=("vi",))
    a1 = adjusted_rand_score(part, ens[0].astype(int))
    ok = np.isfinite(ens[1])
    a2 = (4 / 6) * adjusted_rand_score(part[ok], ens[1][ok].astype(int))
    assert got["ari_mean"] == pytest.approx((a1 + a2) / 2, abs=1e-15)
    assert got["ari_median"] == pytest.approx(np.median([a1, a2]), abs=1e-15)


def test_bad_input():
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(10, 3)))
    X.iloc[2, 1] = np.nan
    with pytest.raises(InputError, match="NaN or infinite value at object 2"):
        ClusterEnsemble(**SMALL).fit(X)
    with pytest.raises(InputError, match="too few"):
        ClusterEnsemble(**SMALL).fit(pd.DataFrame(np.eye(2)))
    with pytest.raises(InputError, match="unknown clustering family"):
        ClusterEnsemble(families=("kmeans", "birch"), **SMALL).fit(
            pd.DataFrame(np.random.default_rng(1).normal(size=(20, 3))))
    with pytest.raises(InputError, match="no k"):
        consensus(np.array([[0, 1, 0], [1, 0, 1]], float), k_range=[5])


def test_interpreter_finds_the_driving_features():
    from gpu_engine.cluster import ClusterInterpreter

    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame(rng.normal(size=(n, 12)), columns=[f"LV{i}" for i in range(12)])
    labels = np.where(np.arange(n) < 40, "A", np.where(np.arange(n) < 90, "B", "C"))
    X.loc[labels == "A", "LV3"] += 4.0     # A: high LV3, then LV7
    X.loc[labels == "A", "LV7"] += 2.5
    X.loc[labels == "B", "LV5"] -= 4.0     # B: low LV5 only → threshold < 1, not a driver
    it = ClusterInterpreter(max_explored=6).fit(X, labels)
    a = it.drivers_.loc[it.drivers_["cluster"] == "A"]
    assert list(a["feature"][:2]) == ["LV3", "LV7"] and (a["threshold"] >= 1.0).all()
    assert a["rank"].tolist()[:2] == [1, 2] and (a["cluster_size"] == 40).all()
    assert "LV5" not in set(it.drivers_.loc[it.drivers_["cluster"] == "B", "feature"])
    b = it.stumps_.loc[it.stumps_["cluster"] == "B"]
    assert b["feature"].iloc[0] == "LV5" and not b["kept"].iloc[0]  # explored, not kept
    assert max(it.explored_.values()) <= 6
    with pytest.raises(InputError, match="labels for"):
        ClusterInterpreter().fit(X, labels[:10])


@pytest.mark.parametrize("data,method", [("circles", "eac_single"), ("iris", "eac_average")])
def test_consensus_beats_every_member(data, method):
    """As in the reference's own tests: on iris and two concentric circles, the EAC consensus
    of a k-means ensemble (k = 2…30, 3 seeds) agrees with the truth better than any member."""
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_iris, make_circles

    X, y = (make_circles(300, factor=0.4, noise=0.04, random_state=0) if data == "circles"
            else load_iris(return_X_y=True))
    k_true = len(np.unique(y))
    members = [KMeans(k, n_init=1, random_state=s).fit_predict(X)
               for k in range(2, 31) for s in range(3)]
    table, parts = consensus(np.array(members, float), k_range=[k_true], scc_deltas=())
    got = adjusted_rand_score(y, parts[int(np.flatnonzero(table["method"] == method)[0])])
    assert got > max(adjusted_rand_score(y, m) for m in members)
