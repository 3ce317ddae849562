"""PhenoPLIER's ``libs/gls_cli.py`` command lines replayed as ``gpu-engine gls-cli`` (every
flag), on the real fixtures: the output equals the engine's GLS (itself equal to statsmodels,
``test_gls_parity``) on the same genes, with the reference's input checks and exit statuses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gpu_engine.cli.main import cli

R5 = ("gene_corrs/phenomexcan_rapid_gwas-gtex_v8-mashr/"
      "gene_corrs-symbols-within_distance_5mb.parquet")
# the reference's flags (argparse, gls_cli.py at the fixtures' PhenoPLIER version)
FLAGS = ("--input-file", "--output-file", "--lv-model-file", "--gene-corr-file",
         "--debug-use-ols", "--debug-use-sub-gene-corr", "--lv-list", "--covars",
         "--cohort-metadata-dir", "--batch-id", "--batch-n-splits", "--duplicated-genes-action")


def _run(args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


@pytest.fixture(scope="module")
def d(shared):
    return shared / "phenoplier_data"


def _base(d, out, *extra):
    return ["gls-cli", "-i", d / "gls" / "random.pheno0-gtex_v8-mashr-smultixcan.txt.gz",
            "-o", out, "-p", d / "gls" / "sample-lv-model.parquet", "-g", d / R5, *extra]


def _engine(d, lvs, covars=(), keep="first"):
    from gpu_engine.gls import associate, snp_covariates

    data = pd.read_csv(d / "gls" / "random.pheno0-gtex_v8-mashr-smultixcan.txt.gz", sep="\t")
    data = data.loc[~data["gene_name"].duplicated(keep=keep)].set_index("gene_name")
    traits = pd.DataFrame({"t": data["pvalue"]})
    cov = pd.DataFrame({"gene": data.index, "trait": "t", "n": data["n"],
                        "n_indep": data["n_indep"]}).reset_index(drop=True)
    gt = pd.read_parquet(d / "gls" / "cohort_1000g_eur_metadata" / "gene_tissues.parquet")
    cov = cov.merge(snp_covariates(gt.loc[~gt["gene_name"].duplicated(keep=keep)]), on="gene",
                    how="left")
    Z = pd.read_parquet(d / "gls" / "sample-lv-model.parquet").set_index("gene")
    R = pd.read_parquet(d / R5).set_index("gene")
    return associate(Z, traits, R, cov, lvs=lvs, covars=sorted(covars),
                     backend="cpu").set_index("lv")


def test_every_flag_is_an_option():
    from gpu_engine.cli.gls_cli_command import gls_cli

    opts = {o for p in gls_cli.params for o in p.opts}
    assert set(FLAGS) <= opts and {"-i", "-o", "-p", "-g", "-l"} <= opts


def test_reference_command_line(d, tmp_path):
    out = tmp_path / "gls.tsv"
    covars = ["gene_size", "gene_size_log", "gene_density", "gene_density_log"]
    res = _run(_base(d, out, "--covars", *covars, "--duplicated-genes-action", "keep-first",
                     "-l", "LV1", "LV3", "LV_unknown"))
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, sep="\t")
    assert list(got.columns) == ["lv", "beta", "beta_se", "t", "pvalue_twosided",
                                 "pvalue_onesided"]
    ref = _engine(d, ["LV1", "LV3"], covars)
    got = got.set_index("lv")
    for c in got.columns:
        np.testing.assert_allclose(got[c], ref.loc[got.index, c], rtol=1e-12)
    assert "2 are present" in " ".join(res.output.split())
    # an existing output is left alone (exit 0), as the reference
    before = out.read_text()
    assert _run(_base(d, out)).exit_code == 0 and out.read_text() == before


def test_all_covariates_batches_and_duplicates(d, tmp_path):
    meta = d / "gls" / "cohort_1000g_eur_metadata"
    out = tmp_path / "b.tsv"
    res = _run(_base(d, out, "--covars", "all", "--cohort-metadata-dir", meta,
                     "--duplicated-genes-action", "keep-last", "--batch-id", "2",
                     "--batch-n-splits", "2"))
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, sep="\t").set_index("lv")
    assert list(got.index) == ["LV4", "LV5"]  # numpy.array_split of LV1..LV5 into 2
    from gpu_engine.gls import COVARIATES

    ref = _engine(d, ["LV4", "LV5"], COVARIATES, keep="last")
    np.testing.assert_allclose(got["beta"], ref.loc[got.index, "beta"], rtol=1e-12)


def test_ols_and_no_effect_flag(d, tmp_path):
    out = tmp_path / "ols.tsv"
    args = ["gls-cli", "-i", d / "gls" / "random.pheno0-gtex_v8-mashr-smultixcan.txt.gz", "-o",
            out, "-p", d / "gls" / "sample-lv-model.parquet", "--debug-use-ols",
            "--duplicated-genes-action", "remove-all", "-l", "LV2", "--debug-use-sub-gene-corr"]
    res = _run(args)
    assert res.exit_code == 0, res.output and "no effect" in res.output
    assert np.isfinite(pd.read_csv(out, sep="\t")["beta"]).all()


@pytest.mark.parametrize("extra,status,message", [
    (["-l", "LV1", "--batch-id", "1", "--batch-n-splits", "2"], 2, "cannot be used together"),
    (["--batch-id", "1"], 2, "Both --batch-id"),
    (["--batch-id", "0", "--batch-n-splits", "2"], 2, ">= 1"),
    (["--batch-id", "3", "--batch-n-splits", "2"], 2, "<= --batch-n-splits"),
    (["--batch-id", "1", "--batch-n-splits", "9", "--duplicated-genes-action", "keep-first"], 2,
     "cannot be greater"),
    ([], 1, "Duplicated genes"),
    (["--duplicated-genes-action", "keep-first", "--debug-use-ols"], 1, "Incompatible"),
    (["--duplicated-genes-action", "keep-first", "--covars", "gene_size_log"], 1,
     "has to be selected as well"),
    (["--duplicated-genes-action", "keep-first", "--covars", "gene_n_snps_used"], 1,
     "cohort metadata folder"),
    (["--duplicated-genes-action", "keep-first", "-l", "LV_x"], 1, "No LVs were selected"),
])
def test_reference_errors(d, tmp_path, extra, status, message):
    res = _run(_base(d, tmp_path / "x.tsv", *extra))
    assert res.exit_code == status, res.output
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "x.tsv").exists()
