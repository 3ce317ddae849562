"""``gpu-engine expression``: world → train-en → the written database through
``gpu-engine twas spredixcan``, from the command line; output checks before work."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
