"""`gpu-engine plier fit` and `gpu-engine plier project`."""

from __future__ import annotations

import numpy as np
import pandas as pd
from click.testing import CliRunner

from gpu_engine.cli.main import cli
from gpu_engine.io.gene_sets import write_gmt
from gpu_engine.plier import PLIER


def _run(*args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


def _inputs(tmp_path):
    rng = np.random.default_rng(11)
    genes = [f"G{i}" for i in range(400)]
    members = {f"P{j}": list(rng.choice(genes, 40, replace=False)) for j in range(30)}
    prior = pd.DataFrame(0.0, index=genes, columns=list(members))
    for p, g in members.items():
        prior.loc[g, p] = 1.0
    Zt = prior.to_numpy()[:, :8] * rng.gamma(2, 0.5, (400, 8))
    Y = pd.DataFrame(5 + Zt @ rng.standard_t(4, (8, 60)) + rng.normal(0, 0.5, (400, 60)),
                     index=pd.Index(genes, name="gene"), columns=[f"S{i}" for i in range(60)])
    Y.reset_index().to_parquet(tmp_path / "expr.parquet")
    half = dict(list(members.items())[:15])
    rest = dict(list(members.items())[15:])
    write_gmt(half, tmp_path / "a.gmt")
    write_gmt(rest, tmp_path / "b.gmt")
    return Y


def test_fit_then_project(tmp_path):
    _inputs(tmp_path)
    out = tmp_path / "model"
    res = _run("plier", "fit", "--expr", tmp_path / "expr.parquet", "--prior", tmp_path / "a.gmt",
               "--prior", tmp_path / "b.gmt", "--k", 8, "--out", out)
    assert res.exit_code == 0, res.output
    assert "k = 8" in res.output and "stopped:" in res.output and "FDR < 0.05" in res.output
    assert (out / "U_heatmap.png").read_bytes()[:4] == b"\x89PNG"
    model = PLIER.load(out)
    assert model.k_ == 8 and len(model.pathways_) == 30 and model.trace_ is not None
    assert model.significant(0.05)["pathway"].isin([f"P{j}" for j in range(8)]).mean() > 0.5
    again = _run("plier", "fit", "--expr", tmp_path / "expr.parquet", "--prior",
                 tmp_path / "a.gmt", "--k", 8, "--out", out)
    assert again.exit_code != 0 and "already exists" in again.output

    proj = tmp_path / "lv.parquet"
    res = _run("plier", "project", "--model", out, "--data", tmp_path / "expr.parquet",
               "--out", proj)
    assert res.exit_code == 0, res.output
    B = pd.read_parquet(proj).set_index("lv")
    np.testing.assert_allclose(B.to_numpy(), model.B_.to_numpy(), atol=1e-8)
    model.Z_.reset_index().to_parquet(tmp_path / "Z.parquet")
    res = _run("plier", "project", "--z", tmp_path / "Z.parquet", "--l2", model.L2_,
               "--data", tmp_path / "expr.parquet", "--out", tmp_path / "lv2.tsv")
    assert res.exit_code == 0, res.output
    B2 = pd.read_csv(tmp_path / "lv2.tsv", sep="\t").set_index("lv")
    np.testing.assert_allclose(B2.to_numpy(), B.to_numpy(), atol=1e-8)


def test_bad_input_is_a_clear_error(tmp_path):
    _inputs(tmp_path)
    res = _run("plier", "fit", "--expr", tmp_path / "expr.parquet", "--prior",
               tmp_path / "a.gmt", "--k", 500, "--out", tmp_path / "m")
    assert res.exit_code != 0 and "k=500 is not allowed" in res.output
    assert not (tmp_path / "m").exists()
    res = _run("plier", "project", "--z", tmp_path / "expr.parquet", "--data",
               tmp_path / "expr.parquet", "--out", tmp_path / "x.parquet")
    assert res.exit_code != 0 and "--lv-l2" in res.output
    assert "plier fit --expr" in _run("plier", "--help").output
