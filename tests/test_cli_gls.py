"""`gpu-engine gls` and `gpu-engine gls-null` on a small synthetic world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gpu_engine import results
from gpu_engine.cli.main import cli
from gpu_engine.gls import GLSResults, associate, read_smultixcan
from gpu_engine.gls.null import NullCalibration
from gpu_engine.io import read_metadata


def _run(*args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


@pytest.fixture(scope="module")
def world(small_world):
    return small_world


def test_gls_from_smultixcan_folder(world, tmp_path):
    out = tmp_path / "gls.parquet"
    # a cohort metadata folder as PhenoPLIER's: the SNP-level covariates of --covars all
    meta_dir = tmp_path / "cohort_metadata"
    meta_dir.mkdir()
    smx = read_smultixcan(world.path / "smultixcan")
    rng = np.random.default_rng(0)
    used = rng.integers(20, 400, len(smx.pvalue))
    gene_tissues = pd.DataFrame({"gene_name": smx.pvalue.index, "n_snps_used_sum": used,
                                 "unique_n_snps_used": np.maximum(1, used // rng.integers(
                                     1, 5, len(used)))})
    gene_tissues.to_parquet(meta_dir / "gene_tissues.parquet")
    res = _run("gls", "--lv-model", world.path / "truth" / "Z.parquet",
               "--traits", world.path / "smultixcan", "--gene-corr",
               world.path / "gene_corr.parquet", "--covars", "all", "--cohort-metadata-dir",
               meta_dir, "--out", out, "--qq", tmp_path / "qq.png")
    assert res.exit_code == 0, res.output
    assert "significant at FDR < 0.05" in res.output and "top 10 associations" in res.output
    assert f"read {len(world.traits)} S-MultiXcan files" in res.output
    assert (tmp_path / "qq.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_parquet(out)
    assert list(table.columns) == ["lv", "trait", "n", "beta", "beta_se", "t",
                                   "pvalue_twosided", "pvalue_onesided", "fdr"]
    Z = world.truth("Z")
    assert len(table) == Z.shape[1] * len(world.traits)
    meta = read_metadata(out)
    assert meta["backend"] == "cpu" and meta["parameters"]["covars"] == [
        "gene_density", "gene_density_log", "gene_n_snps_used", "gene_n_snps_used_density",
        "gene_n_snps_used_density_log", "gene_n_snps_used_log", "gene_size", "gene_size_log"]
    # the same as the Python API
    from gpu_engine.gls import COVARIATES, snp_covariates, with_gene_table

    cov = with_gene_table(smx.covariates(), snp_covariates(gene_tissues), smx.traits)
    api = associate(Z, smx.pvalue, world.gene_corr(), cov, covars=list(COVARIATES),
                    backend="cpu")
    np.testing.assert_allclose(table["beta"], api["beta"], rtol=1e-12)
    # the CLI's file is what GLSResults.save writes: it loads back as the API's result
    loaded = GLSResults.load(out)
    assert isinstance(loaded, GLSResults) and isinstance(results.load(out), GLSResults)
    pd.testing.assert_frame_equal(pd.DataFrame(loaded), pd.DataFrame(api), check_exact=False,
                                  rtol=1e-12)
    assert loaded.attrs["alignment"] == api.attrs["alignment"]
    # --coefficients: the intercept's and each covariate's terms, as the API's
    res = _run("gls", "--lv-model", world.path / "truth" / "Z.parquet", "--traits",
               world.path / "smultixcan", "--gene-corr", world.path / "gene_corr.parquet",
               "--covars", "gene_size,gene_density", "--coefficients", "--out",
               tmp_path / "coef.tsv")
    assert res.exit_code == 0, res.output
    coef = pd.read_csv(tmp_path / "coef.tsv", sep="\t")
    api = associate(Z, smx.pvalue, world.gene_corr(), smx.covariates(),
                    covars=["gene_size", "gene_density"], coefficients=True, backend="cpu")
    for c in ("intercept_beta", "gene_size_t", "gene_density_pvalue_twosided"):
        np.testing.assert_allclose(coef[c], api[c], rtol=1e-10)
    res = _run("gls", "--lv-model", world.path / "truth" / "Z.parquet", "--traits",
               world.path / "smultixcan", "--gene-corr", world.path / "gene_corr.parquet",
               "--coefficients", "--condition-on", "overlap", "--out", tmp_path / "x.tsv")
    assert res.exit_code == 2 and "marginal model only" in res.output


def test_gls_from_matrix_and_bad_input(world, tmp_path):
    P = world.trait_pvalues().iloc[:, :5]
    mat = tmp_path / "traits.parquet"
    P.reset_index().to_parquet(mat)
    out = tmp_path / "gls.tsv"
    res = _run("gls", "--lv-model", world.path / "truth" / "Z.parquet", "--traits", mat,
               "--gene-corr", world.path / "gene_corr.parquet", "--mode", "full",
               "--lvs", "M0001,M0002", "--out", out)
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out, sep="\t")) == 10
    bad = tmp_path / "bad.parquet"
    P.assign(**{P.columns[0]: P.iloc[:, 0] * 10}).reset_index().to_parquet(bad)
    out2 = tmp_path / "never.parquet"
    res = _run("gls", "--lv-model", world.path / "truth" / "Z.parquet", "--traits", bad,
               "--gene-corr", world.path / "gene_corr.parquet", "--out", out2)
    assert res.exit_code != 0 and "outside [0, 1]" in res.output
    assert not out2.exists()
    res = _run("gls", "--lv-model", world.path / "truth" / "Z.parquet", "--traits", mat,
               "--gene-corr", world.path / "gene_corr.parquet", "--covars", "gene_size",
               "--out", out2)
    assert res.exit_code != 0 and "no covariates table" in res.output
    # --covars all without the cohort metadata: the SNP-level ones are named, nothing written
    res = _run("gls", "--lv-model", world.path / "truth" / "Z.parquet", "--traits",
               world.path / "smultixcan", "--gene-corr", world.path / "gene_corr.parquet",
               "--covars", "all", "--out", out2)
    assert res.exit_code != 0 and "gene_n_snps_used" in res.output
    assert "--cohort-metadata-dir" in res.output and not out2.exists()


def test_gls_null_command(world, tmp_path):
    out = tmp_path / "null"
    res = _run("gls-null", "--lv-model", world.path / "truth" / "Z.parquet", "--gene-corr",
               world.path / "gene_corr.parquet", "--n-null", 100, "--out", out)
    assert res.exit_code == 0, res.output
    assert "type-I error at α = 0.05" in res.output and "inflated LVs" in res.output
    assert {p.name for p in out.iterdir()} == {"calibration.tsv", "calibration.parquet",
                                               "null_results.parquet", "qq.png", "result.json"}
    table = pd.read_csv(out / "calibration.tsv", sep="\t")
    cal = results.load(out)
    assert isinstance(cal, NullCalibration) and isinstance(cal.results, GLSResults)
    assert cal.metadata["command"] == "gls-null" and cal.alphas == (0.05, 0.01)
    pd.testing.assert_frame_equal(cal.table, table, check_dtype=False)
    assert len(table) == world.truth("Z").shape[1] and (table["n_null"] == 100).all()
    res = _run("gls-null", "--lv-model", world.path / "truth" / "Z.parquet", "--gene-corr",
               world.path / "gene_corr.parquet", "--n-null", 10, "--out", out)
    assert res.exit_code != 0 and "already exists" in res.output


def test_gls_null_chi2_model(world, tmp_path):
    out = tmp_path / "null_chi2"
    res = _run("gls-null", "--lv-model", world.path / "truth" / "Z.parquet", "--gene-corr",
               world.path / "gene_corr.parquet", "--n-null", 50, "--null-model", "chi2",
               "--n-indep", world.smultixcan_path(world.traits[0]), "--out", out)
    assert res.exit_code == 0, res.output
    from gpu_engine.io import read_metadata

    assert read_metadata(out / "calibration.parquet")["parameters"]["null_model"] == "chi2"
    res = _run("gls-null", "--lv-model", world.path / "truth" / "Z.parquet", "--gene-corr",
               world.path / "gene_corr.parquet", "--n-null", 50, "--null-model", "chi2",
               "--out", tmp_path / "never")
    assert res.exit_code != 0 and "n_indep" in res.output
    assert not (tmp_path / "never").exists()
