"""``gpu-engine expression``: world → train-en → the written database through
``gpu-engine twas spredixcan``, from the command line; output checks before work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gpu_engine.cli.main import cli


def _run(*args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


def test_world_train_export_and_spredixcan(tmp_path):
    w, m = tmp_path / "w", tmp_path / "m"
    res = _run("expression", "world", "--samples", "200", "--genes-per-architecture", "1",
               "--seed", "2", "--out", w)
    assert res.exit_code == 0, res.output
    res = _run("expression", "train-en", "--genotypes", w / "genotypes", "--expression",
               w / "expression.parquet", "--genes", w / "genes.tsv", "--tissue", "Synthetic",
               "--out", m)
    assert res.exit_code == 0, res.output
    assert "6 trained" in res.output and "pass the filter" in res.output
    for f in ("models.db", "covariance.txt.gz", "summary.parquet", "summary.tsv",
              "weights.parquet", "report.json", "performance.png"):
        assert (m / f).exists(), f
    summary = pd.read_csv(m / "summary.tsv", sep="\t")
    assert {"rho_avg", "zscore_pval", "cv_R2_avg", "nested_cv_fisher_pval"} <= set(summary)
    # a GWAS computed from the panel: z = √n · corr(SNP, trait), trait driven by gene 0
    from gpu_engine.expression import read_plink

    G = read_plink(w / "genotypes")
    E = pd.read_parquet(w / "expression.parquet").set_index("sample")
    rng = np.random.default_rng(0)
    t = E.iloc[:, 0].to_numpy() + rng.normal(size=len(E))
    Xc = G.dosages - G.dosages.mean(0)
    z = (Xc * (t - t.mean())[:, None]).sum(0) / np.sqrt((Xc ** 2).sum(0) * ((t - t.mean()) ** 2)
                                                          .sum()) * np.sqrt(len(t))
    pd.DataFrame({"SNP": G.snps.snp, "A1": G.snps.eff_allele, "A2": G.snps.ref_allele,
                  "Z": z}).to_csv(tmp_path / "gwas.tsv", sep="\t", index=False)
    res = _run("twas", "spredixcan", "--model_db_path", m / "models.db", "--covariance",
               m / "covariance.txt.gz", "--gwas_file", tmp_path / "gwas.tsv", "--snp_column",
               "SNP", "--effect_allele_column", "A1", "--non_effect_allele_column", "A2",
               "--zscore_column", "Z", "--output_file", tmp_path / "sp.csv")
    assert res.exit_code == 0, res.output
    sp = pd.read_csv(tmp_path / "sp.csv")
    written = set(summary.loc[summary.significant, "gene"])
    assert set(sp.gene) == written
    if E.columns[0] in written:
        assert sp.gene.iloc[0] == E.columns[0]  # the planted gene leads


def test_train_en_checks_its_output_first(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    res = _run("expression", "train-en", "--genotypes", tmp_path / "none", "--expression",
               blocker, "--genes", blocker, "--out", blocker / "m")
    assert res.exit_code == 1 and "is a file" in res.output and "Traceback" not in res.output


def test_cnn_train_fa_export_predixcan_from_the_command_line(tmp_path):
    pytest.importorskip("torch", reason="the CNN needs the [dl] extra (torch)")
    w = tmp_path / "w"
    assert _run("expression", "world", "--samples", "160", "--genes-per-architecture", "1",
                "--seed", "5", "--out", w).exit_code == 0
    train = ["--genotypes", w / "genotypes", "--expression", w / "expression.parquet",
             "--genes", w / "genes.tsv"]
    res = _run("expression", "train-cnn", *train, "--annotations", w / "annotations.parquet",
               "--restarts", "1", "--top", "1", "--epochs", "2", "--compare-en", "--truth",
               w / "truth" / "genes.parquet", "--out", tmp_path / "cnn")
    assert res.exit_code == 0, res.output
    assert "6 trained" in res.output and "CNN − EN" in res.output
    by = pd.read_csv(tmp_path / "cnn" / "comparison_by_class.tsv", sep="\t",
                     keep_default_na=False, na_values=[""])  # an architecture is "null"
    assert {"additive", "null", "all"} <= set(by.architecture)
    a = by.set_index("architecture").loc["all"]  # one gene per class: the CI needs them all
    assert a.genes == 6 and a.ci95_low <= a.difference_mean <= a.ci95_high
    assert (tmp_path / "cnn" / "cnn_vs_en.png").exists()
    res = _run("expression", "fa", "--model", tmp_path / "cnn", *train, "--annotations",
               w / "annotations.parquet", "--max-iter", "2", "--one-group", "--out",
               tmp_path / "fa")
    assert res.exit_code == 0, res.output
    assert "sign test" in res.output and (tmp_path / "fa" / "gamma.png").exists()
    for model in ("cnn", "fa"):
        res = _run("expression", "export", "--model", tmp_path / model, "--panel",
                   w / "genotypes", "--genes", w / "genes.tsv", "--out", tmp_path / f"{model}_db")
        assert res.exit_code == 0, res.output
        assert "R²_lin" in res.output
    # the exported database through S-PrediXcan, from the command line
    from gpu_engine.expression import read_plink

    G = read_plink(w / "genotypes")
    E = pd.read_parquet(w / "expression.parquet").set_index("sample")
    t = E.iloc[:, 0].to_numpy() + np.random.default_rng(0).normal(size=len(E))
    z = [np.corrcoef(G.dosages[:, j], t)[0, 1] * np.sqrt(len(t)) for j in range(G.dosages.shape[1])]
    pd.DataFrame({"SNP": G.snps.snp, "A1": G.snps.eff_allele, "A2": G.snps.ref_allele,
                  "Z": z}).to_csv(tmp_path / "gwas.tsv", sep="\t", index=False)
    res = _run("twas", "spredixcan", "--model_db_path", tmp_path / "cnn_db" / "models.db",
               "--covariance", tmp_path / "cnn_db" / "covariance.txt.gz", "--gwas_file",
               tmp_path / "gwas.tsv", "--snp_column", "SNP", "--effect_allele_column", "A1",
               "--non_effect_allele_column", "A2", "--zscore_column", "Z", "--output_file",
               tmp_path / "sp.csv")
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "sp.csv")) == 6
    # individual-level PrediXcan with the CNN and with the EN database
    pd.DataFrame({"sample": E.index, "trait": t}).to_csv(tmp_path / "trait.tsv", sep="\t",
                                                         index=False)
    for model in (tmp_path / "cnn", tmp_path / "cnn_db" / "models.db"):
        res = _run("expression", "predixcan", "--model", model, "--genotypes",
                   w / "genotypes", "--trait", tmp_path / "trait.tsv", "--out",
                   tmp_path / "px.tsv", "--overwrite")
        assert res.exit_code == 0, res.output
        px = pd.read_csv(tmp_path / "px.tsv", sep="\t")
        assert len(px) == 6 and (px.n == 160).all()
    res = _run("expression", "multixcan-covariance", "--panel", w / "genotypes", "--model-db",
               tmp_path / "cnn_db" / "models.db", "--model-db", tmp_path / "fa_db" / "models.db",
               "--out", tmp_path / "mx.txt.gz")
    assert res.exit_code == 0, res.output
