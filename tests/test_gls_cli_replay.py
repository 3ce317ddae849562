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


def test_per_lv_correlation_folder(d, tmp_path):
    """-g the reference's per-LV folder (inverse Cholesky factors of R_ℓ, the production
    input): equal to statsmodels GLS with sigma = (L⁻¹)⁻¹(L⁻¹)⁻ᵀ from the files and y
    standardized over trait ∩ Z. The real LV45/LV455 loadings are not shipped, so the LV
    model is built with the folder's blocks inside each LV's top 1 %."""
    import scipy.sparse
    import scipy.stats

    sm = pytest.importorskip("statsmodels.api")
    folder = d / "gls" / "corr_mat_folder"
    order = pd.read_parquet(folder / "gene_names.parquet").sort_values("position")["gene"]
    zgenes = pd.read_parquet(d / "gls" / "sample-lv-model.parquet")["gene"]
    rng = np.random.default_rng(0)
    Z = pd.DataFrame(index=pd.Index(zgenes, name="gene"))
    Linv = {}
    for lv in ("LV45", "LV455"):
        L = scipy.sparse.load_npz(folder / f"{lv}.npz").toarray()
        Linv[lv] = L
        off = np.tril(L, -1) != 0
        blk = set(order.to_numpy()[np.flatnonzero(off.any(0) | off.any(1))])
        z = rng.uniform(0, 0.5, len(Z))
        z[Z.index.isin(blk)] = rng.uniform(2, 3, int(Z.index.isin(blk).sum()))
        extra = rng.choice(np.flatnonzero(~Z.index.isin(blk)), 4, replace=False)
        z[extra] = rng.uniform(2, 3, extra.size)  # other top genes without correlations
        Z[lv] = z
    zfile = tmp_path / "Z.parquet"
    Z.reset_index().to_parquet(zfile)
    out = tmp_path / "folder.tsv"
    smx = d / "gls" / "random.pheno0-gtex_v8-mashr-smultixcan.txt.gz"
    res = _run(["gls-cli", "-i", smx, "-o", out, "-p", zfile, "-g", folder,
                "--duplicated-genes-action", "keep-first", "-l", "LV45", "LV455"])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, sep="\t").set_index("lv")
    data = pd.read_csv(smx, sep="\t")
    data = data.loc[~data["gene_name"].duplicated()].set_index("gene_name")["pvalue"].dropna()
    y_all = -np.log10(data.loc[data.index.isin(Z.index)])
    for lv in ("LV45", "LV455"):
        fit = [i for i, g in enumerate(order) if g in y_all.index]
        genes = order.to_numpy()[fit]
        y = ((y_all.loc[genes] - y_all.mean()) / y_all.std()).to_numpy()
        x = Z.loc[genes, lv]
        s = ((x > 0) & (x >= x.quantile(0.99))).astype(float).to_numpy()
        Lfull = np.linalg.inv(Linv[lv])
        sigma = (Lfull @ Lfull.T)[np.ix_(fit, fit)]
        r = sm.GLS(y, np.column_stack([np.ones(len(y)), s]), sigma=sigma).fit()
        np.testing.assert_allclose(got.loc[lv, "beta"], r.params[1], rtol=1e-8)
        np.testing.assert_allclose(got.loc[lv, "beta_se"], r.bse[1], rtol=1e-8)
        np.testing.assert_allclose(got.loc[lv, "pvalue_onesided"],
                                   scipy.stats.t.sf(r.tvalues[1], r.df_resid), rtol=1e-7)
    # a folder built for another LV model is refused, not silently used
    bad = Z.copy()
    bad["LV45"] = rng.uniform(0, 1, len(bad))
    bad.reset_index().to_parquet(tmp_path / "bad.parquet")
    res = _run(["gls-cli", "-i", smx, "-o", tmp_path / "bad.tsv", "-p", tmp_path / "bad.parquet",
                "-g", folder, "--duplicated-genes-action", "keep-first", "-l", "LV45"])
    assert res.exit_code == 1 and "another LV model" in " ".join(res.output.split())
