"""`gpu-engine gls --condition-on / --joint` and `gpu-engine lv genes | enrich | context` on
the small world: each command's output equals the Python API's, and bad input is refused
with a message naming what is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gpu_engine.cli.main import cli
from gpu_engine.gls import associate, read_smultixcan


def _run(*args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


@pytest.fixture(scope="module")
def w(small_world):
    return small_world


def _gls_args(w, out, *extra):
    return ("gls", "--lv-model", w.path / "truth" / "Z.parquet", "--traits",
            w.path / "smultixcan", "--gene-corr", w.path / "gene_corr.parquet", *extra,
            "--out", out)


def test_gls_condition_on_significant_equals_the_api(w, tmp_path):
    out = tmp_path / "cond.parquet"
    res = _run(*_gls_args(w, out, "--condition-on", "significant", "--condition-predictor",
                          "continuous"))
    assert res.exit_code == 0, res.output
    assert "pairs fitted with other LVs" in res.output and "conditionally" in res.output
    got = pd.read_parquet(out)
    Z = w.truth("Z")
    P = read_smultixcan(w.path / "smultixcan").pvalue
    ref = associate(Z, P, w.gene_corr(), backend="cpu", condition_on="significant",
                    condition_predictor="continuous")
    np.testing.assert_array_equal(got["pvalue_onesided"], ref["pvalue_onesided"])
    assert list(got["conditioned_on"].astype(str)) == list(ref["conditioned_on"].astype(str))


def test_gls_condition_on_a_list_and_joint(w, tmp_path):
    res = _run(*_gls_args(w, tmp_path / "a.tsv", "--lvs", "M0001,M0002", "--condition-on",
                          "M0003,M0004"))
    assert res.exit_code == 0, res.output
    a = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    assert set(a["conditioned_on"]) == {"M0003,M0004"}
    res = _run(*_gls_args(w, tmp_path / "j.tsv", "--lvs", "M0001,M0002", "--joint"))
    assert res.exit_code == 0, res.output
    j = pd.read_csv(tmp_path / "j.tsv", sep="\t")
    assert set(j["conditioned_on"]) == {"M0001", "M0002"} and len(j) == 2 * len(w.traits)


@pytest.mark.parametrize("extra, message", [
    (("--lvs", "M0001,M0002", "--condition-on", "M0002"), "M0002 cannot be conditioned on itself"),
    (("--condition-on", "M9999"), "unknown LV.*M9999"),
    (("--joint",), "--joint needs --lvs"),
])
def test_gls_bad_conditioning(w, tmp_path, extra, message):
    out = tmp_path / "x.tsv"
    res = _run(*_gls_args(w, out, *extra))
    assert res.exit_code != 0 and "Traceback" not in res.output
    import re

    assert re.search(message, res.output), res.output
    assert not out.exists()


def test_lv_genes_enrich_context(w, tmp_path):
    gls = tmp_path / "gls.parquet"
    assert _run(*_gls_args(w, gls)).exit_code == 0
    res = _run("lv", "genes", "--gls", gls, "--lv-model", w.path / "truth" / "Z.parquet",
               "--traits", w.path / "smultixcan", "--out", tmp_path / "core.tsv", "--scores",
               tmp_path / "scores.parquet", "--plot", tmp_path / "core.png")
    assert res.exit_code == 0, res.output
    assert "missed by the TWAS alone" in res.output
    core = pd.read_csv(tmp_path / "core.tsv", sep="\t")
    assert {"trait", "lv", "gene", "loading", "twas_pvalue", "module_only"} <= set(core.columns)
    assert (tmp_path / "core.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_parquet(tmp_path / "scores.parquet")["rank"].min() == 1

    Z = w.truth("Z")
    hits = tmp_path / "hits.txt"
    hits.write_text("\n".join(list(Z.index[Z["M0005"] > 0][:20]) + ["NOT_A_GENE"]) + "\n")
    res = _run("lv", "enrich", "--lv-model", w.path / "truth" / "Z.parquet", "--gene-set", hits,
               "--out", tmp_path / "enrich.tsv", "--plot", tmp_path / "enrich.png")
    assert res.exit_code == 0, res.output
    enr = pd.read_csv(tmp_path / "enrich.tsv", sep="\t")
    assert enr["lv"].iloc[0] == "M0005" and enr["fdr"].iloc[0] < 1e-6
    res = _run("lv", "enrich", "--lv-model", w.path / "truth" / "Z.parquet", "--gene-set",
               w.path / "pathways.gmt", "--out", tmp_path / "e2.tsv")
    assert res.exit_code != 0 and "choose one with --set" in res.output

    B = pd.read_parquet(w.path / "truth" / "B" / "part-00000.parquet")
    B = B.set_index(B.columns[0]) if "module" in B.columns else B
    top = B.loc["M0003"].rank(ascending=False) <= 0.05 * B.shape[1]
    meta = pd.DataFrame({"sample": B.columns, "tissue": np.where(top, "liver", "other")})
    meta.loc[::7, "tissue"] = "blood"
    meta.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    B.reset_index().to_parquet(tmp_path / "B.parquet")
    res = _run("lv", "context", "--b", tmp_path / "B.parquet", "--metadata",
               tmp_path / "samples.tsv", "--out", tmp_path / "ctx.tsv", "--plot",
               tmp_path / "ctx.png")
    assert res.exit_code == 0, res.output
    ctx = pd.read_csv(tmp_path / "ctx.tsv", sep="\t")
    assert tuple(ctx.iloc[0][["lv", "value"]]) == ("M0003", "liver")
    meta.assign(sample=[f"x{i}" for i in range(len(meta))]).to_csv(tmp_path / "bad.tsv",
                                                                   sep="\t", index=False)
    res = _run("lv", "context", "--b", tmp_path / "B.parquet", "--metadata",
               tmp_path / "bad.tsv", "--out", tmp_path / "c2.tsv")
    assert res.exit_code != 0 and "is a sample of B" in res.output
    assert not (tmp_path / "c2.tsv").exists()
