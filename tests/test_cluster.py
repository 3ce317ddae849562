"""Clustering ensemble and consensus: planted clusters recovered, the
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


def test_shared_work_members_equal_scikit_learn(blobs):
    """Spectral members from one shared embedding and agglomerative members cut from one tree
    equal scikit-learn's estimators run member by member (same parameters and seeds)."""
    from sklearn.cluster import AgglomerativeClustering, SpectralClustering

    ens = ClusterEnsemble(families=("spectral", "agglomerative"), representations=("pca",),
                          k_max=7, n_seeds=2, agglomerative_k_max=12, family_size=1000,
                          spectral_gamma=0.05).fit(blobs[0])
    from gpu_engine.cluster import representations

    ens_rep = representations(blobs[0], names=("pca",))["pca"]
    for row, part in zip(ens.members_.itertuples(), ens.partitions_):
        p = row.params
        if row.family == "spectral":
            X = SpectralClustering(p["k"], affinity="rbf", gamma=0.05, random_state=p["seed"]
                                   ).fit_predict(ens_rep)
            assert np.array_equal(X, part)  # same labels, not only the same partition
        else:
            X = AgglomerativeClustering(p["k"], linkage=p["linkage"]).fit_predict(ens_rep)
            assert adjusted_rand_score(X, part) == 1.0
    assert ens.report_.set_index("family").loc["agglomerative", "kept"] == 11 * 4


def test_scc_consensus_equals_spectral_clustering_on_the_similarity(fitted):
    from scipy.spatial.distance import squareform
    from sklearn.cluster import SpectralClustering

    from gpu_engine.cluster import coassociation

    D = coassociation(fitted.partitions_)
    table, parts = consensus(fitted.partitions_, k_range=[3, 5], eac_linkages=(),
                             scc_deltas=(0.3,), D=D)
    A = np.exp(-squareform(np.nan_to_num(D, nan=1.0)) ** 2 / (2 * 0.3 ** 2))
    for k, part in zip(table["k"], parts):
        ref = SpectralClustering(k, affinity="precomputed", random_state=0).fit_predict(A)
        assert np.array_equal(ref, part)


def test_agreement_vectorized_equals_member_by_member():
    from gpu_engine.cluster.consensus import _Members

    rng = np.random.default_rng(3)
    E = rng.integers(0, 9, (40, 60)).astype(float)
    E[rng.uniform(size=E.shape) < 0.2] = np.nan
    E[5] = np.nan          # labels nothing: skipped
    E[6] = 2.0             # one cluster: ARI 0 against a non-trivial partition
    E[7, 1:] = np.nan      # one labelled object: skipped
    p = rng.integers(0, 4, 60)
    got = _Members(E).ari(p)
    for m, e in enumerate(E):
        ok = np.isfinite(e)
        if ok.sum() < 2:
            assert np.isnan(got[m])
        else:
            assert got[m] == pytest.approx(ok.mean() * adjusted_rand_score(p[ok], e[ok]),
                                           abs=1e-14)


def test_umap_representation(blobs):
    pytest.importorskip("umap")
    ens = ClusterEnsemble(families=("kmeans",), representations=("umap",), umap_components=3,
                          k_max=5, n_seeds=1).fit(blobs[0])
    assert ens.members_["representation"].eq("umap").all()
    best = max(adjusted_rand_score(blobs[1], p) for p in ens.partitions_)
    assert best >= 0.9  # UMAP differs across machines: compared by ARI, never by labels
    with pytest.raises(InputError, match="unknown representation"):
        ClusterEnsemble(representations=("tsne",)).fit(blobs[0])


def test_rapids_backend_uses_cuml_with_the_same_parameters(blobs, monkeypatch):
    """On the rapids backend PCA, k-means and DBSCAN come from cuML. cuML is not installed
    here: a stand-in module records the calls and delegates to scikit-learn, so the ensemble
    must equal the cpu one exactly (parameters and seeds passed through unchanged)."""
    import sys
    import types

    from sklearn import cluster, decomposition

    import gpu_engine.cluster.ensemble as ens_mod

    calls = []

    def wrap(cls, name):
        def make(*args, output_type=None, **kw):
            assert output_type == "numpy"
            calls.append((name, kw))
            return cls(*args, **kw)
        return make

    cuml = types.ModuleType("cuml")
    cuml.PCA = wrap(decomposition.PCA, "PCA")
    cuml.cluster = types.ModuleType("cuml.cluster")
    cuml.cluster.KMeans = wrap(cluster.KMeans, "KMeans")
    cuml.cluster.DBSCAN = wrap(cluster.DBSCAN, "DBSCAN")
    monkeypatch.setitem(sys.modules, "cuml", cuml)
    monkeypatch.setitem(sys.modules, "cuml.cluster", cuml.cluster)
    real = ens_mod.get_backend
    monkeypatch.setattr(ens_mod, "get_backend",
                        lambda b: types.SimpleNamespace(name="rapids") if b == "rapids"
                        else real(b))
    kw = dict(families=("kmeans", "dbscan"), **{k: v for k, v in SMALL.items()})
    cpu = ClusterEnsemble(**kw).fit(blobs[0])
    gpu = ClusterEnsemble(backend="rapids", **kw).fit(blobs[0])
    np.testing.assert_array_equal(cpu.partitions_, gpu.partitions_)
    names = {c[0] for c in calls}
    assert names == {"PCA", "KMeans", "DBSCAN"}
    km = [c[1] for c in calls if c[0] == "KMeans"]
    assert all(c["n_init"] == 10 and "random_state" in c for c in km)
