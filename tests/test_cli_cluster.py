"""`gpu-engine cluster ensemble|consensus|interpret` on planted clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
from click.testing import CliRunner
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from gpu_engine import results
from gpu_engine.cli.main import cli
from gpu_engine.cluster import ClusterEnsemble, Consensus, Drivers, consensus


def _run(*args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


def test_cluster_cli_chain(tmp_path):
    # a small cluster (10 of 90) high on LV0: its stump threshold is above 1 SD
    X, y = make_blobs([40, 40, 10], centers=[[0, 0, 0, 0, 0], [0, 5, 0, 0, 0], [8, 0, 0, 0, 0]],
                      cluster_std=0.5, random_state=1)
    traits = [f"trait{i}" for i in range(90)]
    df = pd.DataFrame(X, index=pd.Index(traits, name="trait"),
                      columns=[f"LV{i}" for i in range(5)])
    df.T.reset_index(names="lv").to_parquet(tmp_path / "lvs_traits.parquet")
    res = _run("cluster", "ensemble", "--data", tmp_path / "lvs_traits.parquet", "--transpose",
               "--k-max", 5, "--n-seeds", 2, "--family-size", 20,
               "--families", "kmeans,gmm,agglomerative", "--representations", "z_score,pca",
               "--out", tmp_path / "ens")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ens" / "partitions.parquet").is_file()
    # the folder is what ClusterEnsemble.save writes, and the API gives the same members
    ens = ClusterEnsemble.load(tmp_path / "ens")
    assert ens.objects_ == traits and ens.k_max == 5 and ens.family_size == 20
    api = clone(ens).fit(df)
    np.testing.assert_array_equal(api.partitions_, ens.partitions_)
    assert api.members_["params"].tolist() == ens.members_["params"].tolist()
    res = _run("cluster", "consensus", "--ensemble", tmp_path / "ens", "--k-max", 5, "--out",
               tmp_path / "cons")
    assert res.exit_code == 0, res.output
    for f in ("consensus.parquet", "partitions.parquet", "selected.tsv", "agreement_by_k.png",
              "coassociation.png"):
        assert (tmp_path / "cons" / f).is_file(), f
    table = pd.read_parquet(tmp_path / "cons" / "consensus.parquet")
    parts = pd.read_parquet(tmp_path / "cons" / "partitions.parquet")
    k3 = table.loc[table["k"] == 3, "ari_median"].idxmax()
    assert adjusted_rand_score(y, parts.iloc[k3].to_numpy()) >= 0.9
    assert len(pd.read_csv(tmp_path / "cons" / "selected.tsv", sep="\t")) >= 1
    cons = results.load(tmp_path / "cons")
    assert isinstance(cons, Consensus)
    assert adjusted_rand_score(y, cons.labels(k=3).loc[traits]) >= 0.9
    api = consensus(ens.partitions_, k_range=range(2, 6), objects=traits)
    assert results.equal(api, cons) and cons.best()["method"] == api.best()["method"]
    res = _run("cluster", "interpret", "--data", tmp_path / "lvs_traits.parquet", "--transpose",
               "--consensus", tmp_path / "cons", "--out", tmp_path / "drivers.tsv")
    assert res.exit_code == 0, res.output
    d = pd.read_csv(tmp_path / "drivers.tsv", sep="\t")
    assert isinstance(Drivers.load(tmp_path / "drivers.tsv"), Drivers)
    assert (d["threshold"] >= 1.0).all()
    assert d.loc[d["cluster_size"] == 10, "feature"].iloc[0] == "LV0"
    assert (tmp_path / "drivers.png").is_file()
    res = _run("cluster", "interpret", "--data", tmp_path / "lvs_traits.parquet", "--out",
               tmp_path / "x.tsv")
    assert res.exit_code != 0 and "exactly one of" in res.output
