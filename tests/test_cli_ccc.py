"""`gpu-engine ccc`: condensed (block-written) and square outputs equal the API."""

from __future__ import annotations

import numpy as np
import pandas as pd
from click.testing import CliRunner

from gpu_engine.ccc import ccc
from gpu_engine.cli.main import cli


def _run(*args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


def test_ccc_cli(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 60))
    X[3] = 1.0
    genes = [f"G{i}" for i in range(12)]
    pd.DataFrame(X, index=pd.Index(genes, name="gene"),
                 columns=[f"s{i}" for i in range(60)]).reset_index().to_parquet(
        tmp_path / "x.parquet")
    want = ccc(X)
    res = _run("ccc", "--data", tmp_path / "x.parquet", "--out", tmp_path / "c.parquet",
               "--block-pairs", 7)
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(tmp_path / "c.parquet")
    assert len(got) == 66 and list(got.columns) == ["feature_i", "feature_j", "ccc", "k_i",
                                                    "k_j"]
    np.testing.assert_array_equal(got["ccc"].to_numpy(), want)
    assert (got["feature_i"].iloc[0], got["feature_j"].iloc[0]) == ("G0", "G1")
    assert "constant feature" in " ".join(res.output.split()) and "G3" in res.output
    res = _run("ccc", "--data", tmp_path / "x.parquet", "--square", "--out",
               tmp_path / "sq.parquet")
    assert res.exit_code == 0, res.output
    from gpu_engine.io import read_matrix

    M = read_matrix(tmp_path / "sq.parquet", allow_nan=True)
    assert M.loc["G0", "G1"] == want[0] and M.loc["G1", "G0"] == want[0]
    res = _run("ccc", "--data", tmp_path / "x.parquet", "--out", tmp_path / "c.parquet")
    assert res.exit_code != 0 and "--overwrite" in res.output
    # mixed features as columns, TSV output with p-values
    df = pd.DataFrame({"a": X[0], "b": np.where(X[1] > 0, "u", "v"), "c": X[2]})
    df.to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    res = _run("ccc", "--data", tmp_path / "m.tsv", "--features", "columns", "--pvalue-perms",
               20, "--out", tmp_path / "m_out.tsv")
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "m_out.tsv", sep="\t")
    assert len(got) == 3 and "pvalue" in got and (got["pvalue"] > 0).all()
    assert "Examples" in _run("ccc", "--help").output
