"""Every flag of MetaXcan 0.7.5's ``SPrediXcan.py`` and ``SMulTiXcan.py``, replayed as a
command line with the program name replaced (``gpu-engine twas spredixcan|smultixcan``).

Each flag either has the reference's effect (checked against the recorded MetaXcan outputs
or an independent recomputation) or, where it has no meaning here, is accepted, documented
as such in ``--help`` and logged as a warning. An unknown flag stays an error.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import special

from gpu_engine.cli.main import cli

# The reference's argparse options (SPrediXcan.py, SMulTiXcan.py and metax.gwas.Utilities'
# add_gwas_arguments_to_parser / add_gwas_format_json_to_parser, MetaXcan 0.7.5).
GWAS_FLAGS = ("snp_column", "effect_allele_column", "non_effect_allele_column",
              "chromosome_column", "position_column", "freq_column", "beta_column",
              "beta_sign_column", "or_column", "se_column", "zscore_column", "pvalue_column",
              "separator", "skip_until_header", "handle_empty_columns", "input_pvalue_fix",
              "keep_non_rsid", "snp_map_file", "split_column", "input_gwas_format_json")
SPREDIXCAN_FLAGS = ("model_db_path", "model_db_snp_key", "gwas_file", "gwas_folder",
                    "gwas_file_pattern", *GWAS_FLAGS, "single_snp_model", "covariance",
                    "stream_covariance", "output_file", "remove_ens_version", "verbosity",
                    "throw", "overwrite", "additional_output", "MAX_R", "gwas_h2", "gwas_N")
SMULTIXCAN_FLAGS = ("cleared_snps", "models_folder", "models_name_filter",
                    "models_name_pattern", "model_db_snp_key", "gwas_folder",
                    "gwas_file_pattern", "gwas_file", *GWAS_FLAGS, "regularization",
                    "cutoff_condition_number", "cutoff_eigen_ratio", "cutoff_threshold",
                    "cutoff_trace_ratio", "metaxcan_folder", "metaxcan_filter",
                    "metaxcan_file_name_parse_pattern", "model_product",
                    "permissive_model_product", "snp_covariance", "output", "verbosity",
                    "throw", "trimmed_ensemble_id", "MAX_M")

TISSUE = "Whole_Blood"
HLA_B, PITRM1 = "ENSG00000234745.5", "ENSG00000107959.11"


def _run(args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


@pytest.fixture(scope="module")
def mx(shared):
    return shared / "metaxcan_data"


def _sp_args(mx, out, gwas=None, columns=("--beta_column", "BETA", "--se_column", "SE",
                                          "--pvalue_column", "P")):
    """The recorded S-PrediXcan command line of one tissue (golden/commands.txt)."""
    src = ["--gwas_folder", mx / "golden" / "gwas", "--gwas_file_pattern", r".*\.txt\.gz"] \
        if gwas is None else ["--gwas_file", gwas]
    return ["twas", "spredixcan", "--model_db_path", mx / "dbs_3" / f"TW_{TISSUE}_0.5.db",
            "--covariance", mx / "cov_3" / f"TW_{TISSUE}.txt.gz", *src, "--snp_column", "SNP",
            "--effect_allele_column", "A1", "--non_effect_allele_column", "A2", *columns,
            "--output_file", out, "--verbosity", "9"]


def _sp(args, out):
    res = _run(args)
    assert res.exit_code == 0, res.output
    return pd.read_csv(out), " ".join(res.output.split())


def _beta_se(mx) -> pd.DataFrame:
    return pd.read_csv(mx / "golden" / "gwas" / "gwas_part_beta_se.txt.gz", sep="\t")


def _write(df: pd.DataFrame, path, sep="\t"):
    df.to_csv(path, sep=sep, index=False, na_rep="NA")
    return path


@pytest.mark.parametrize("command,flags", [("spredixcan", SPREDIXCAN_FLAGS),
                                           ("smultixcan", SMULTIXCAN_FLAGS)])
def test_every_reference_flag_is_an_option(command, flags):
    from gpu_engine.cli.twas_commands import twas

    cmd = twas.commands[command]
    opts = {o for p in cmd.params for o in p.opts}
    missing = [f for f in flags if f"--{f}" not in opts]
    assert not missing
    help_text = " ".join(_run(["twas", command, "--help"]).output.split())
    for f in flags:
        assert f"--{f}" in help_text or f"--{f.replace('_', '-')}" in help_text


def test_unknown_flag_is_an_error(mx, tmp_path):
    res = _run([*_sp_args(mx, tmp_path / "o.csv"), "--no_such_flag", "1"])
    assert res.exit_code == 2 and "no_such_flag" in res.output


def test_recorded_command_lines(mx, tmp_path):
    """The golden command line (gwas folder, both files, three statistics columns)."""
    got, _ = _sp(_sp_args(mx, tmp_path / "o.csv"), tmp_path / "o.csv")
    ref = pd.read_csv(mx / "golden" / "spredixcan" / f"TW_{TISSUE}.csv")
    assert list(got.columns) == list(ref.columns)
    np.testing.assert_allclose(got["zscore"], ref["zscore"], rtol=1e-10)


@pytest.fixture(scope="module")
def one_file(mx, tmp_path_factory):
    """--gwas_file on the beta/se part alone: the reference for the GWAS-format flags."""
    d = tmp_path_factory.mktemp("one")
    gwas = mx / "golden" / "gwas" / "gwas_part_beta_se.txt.gz"
    got, _ = _sp(_sp_args(mx, d / "o.csv", gwas, ("--beta_column", "BETA", "--se_column", "SE")),
                 d / "o.csv")
    return got.set_index("gene")


def _same(got: pd.DataFrame, ref: pd.DataFrame, rtol=1e-12):
    got = got.set_index("gene")
    assert set(got.index) == set(ref.index)
    np.testing.assert_allclose(got.loc[ref.index, "zscore"], ref["zscore"], rtol=rtol)
    np.testing.assert_array_equal(got.loc[ref.index, "n_snps_used"], ref["n_snps_used"])


@pytest.mark.parametrize("variant", ["zscore_column", "or_column", "beta_sign_column",
                                     "separator", "skip_until_header", "chromosome_column",
                                     "input_gwas_format_json", "freq_column", "split_column",
                                     "single_snp_model", "stream_covariance", "throw"])
def test_gwas_format_flags(mx, tmp_path, one_file, variant):
    """Each way of giving the same GWAS gives the same result as the plain beta/se file."""
    g = _beta_se(mx)
    out = tmp_path / "o.csv"
    cols = ["--beta_column", "BETA", "--se_column", "SE"]
    extra: list = []
    path = tmp_path / "g.txt"
    rtol = 1e-12
    if variant == "zscore_column":
        g["Z"] = g["BETA"] / g["SE"]
        g = g.drop(columns=["BETA", "SE"])
        cols = ["--zscore_column", "Z"]
    elif variant == "or_column":  # beta = log OR
        g["OR"] = np.exp(g["BETA"])
        g = g.drop(columns=["BETA"])
        cols = ["--or_column", "OR", "--se_column", "SE"]
        rtol = 1e-6  # OR written with finite digits
    elif variant == "beta_sign_column":  # |z| from p, the sign from a +/− column
        g["P"] = 2 * special.ndtr(-np.abs(g["BETA"] / g["SE"]))
        g["SIGN"] = np.where(g["BETA"] >= 0, "+", "-")
        g = g.drop(columns=["BETA", "SE"])
        cols = ["--pvalue_column", "P", "--beta_sign_column", "SIGN"]
        rtol = 1e-6
    elif variant == "separator":
        _write(g, path, sep=",")
        extra = ["--separator", ","]
    elif variant == "skip_until_header":
        body = g.to_csv(sep="\t", index=False, na_rep="NA")
        path.write_text("## produced by a pipeline\n#junk line\n" + body)
        extra = ["--skip_until_header", "SNP\tA1"]
    elif variant == "chromosome_column":
        g["CHR"], g["BP"] = "10", np.arange(len(g))
        extra = ["--chromosome_column", "CHR", "--position_column", "BP"]
    elif variant == "input_gwas_format_json":
        g = g.rename(columns={"BETA": "effect", "SE": "stderr", "SNP": "variant"})
        spec = tmp_path / "format.json"
        spec.write_text(json.dumps({"column_snp": "variant", "column_beta": "effect",
                                    "column_se": "stderr"}))
        cols = ["--input_gwas_format_json", spec]
    elif variant == "freq_column":
        g["FRQ"] = 0.3
        extra = ["--freq_column", "FRQ"]
    elif variant == "split_column":  # argparse nargs="+": several values after one flag
        extra = ["--split_column", "SNP", "_", "chromosome"]
    else:
        extra = [f"--{variant}"]
    if not path.exists():
        _write(g, path)
    args = _sp_args(mx, out, path, cols) + extra
    if variant == "input_gwas_format_json":  # the JSON names the SNP column: drop the flag
        i = args.index("--snp_column")
        del args[i:i + 2]
    got, text = _sp(args, out)
    _same(got, one_file, rtol=rtol)
    if variant in ("freq_column", "split_column", "single_snp_model", "stream_covariance"):
        assert "no effect here" in text


def test_handle_empty_columns(mx, tmp_path, one_file):
    """A line with a field count other than the header's is skipped (the reference's parser);
    --handle_empty_columns reads an empty field as a missing value instead."""
    g = _beta_se(mx)
    g["NOTE"] = "x"
    text = g.to_csv(sep="\t", index=False, na_rep="NA").splitlines()
    target = g["SNP"].iloc[0]
    text[1] = text[1].rsplit("\t", 1)[0] + "\t"  # the first row's last field left empty
    path = tmp_path / "g.txt"
    path.write_text("\n".join(text) + "\n")
    report = tmp_path / "r.json"
    args = _sp_args(mx, tmp_path / "a.csv", path, ("--beta_column", "BETA", "--se_column",
                                                   "SE")) + ["--report", report]
    got, _ = _sp(args, tmp_path / "a.csv")
    assert json.loads(report.read_text())["files"][0]["malformed_lines"] == 1
    args = _sp_args(mx, tmp_path / "b.csv", path, ("--beta_column", "BETA", "--se_column",
                                                   "SE")) + ["--handle_empty_columns"]
    kept, _ = _sp(args, tmp_path / "b.csv")
    _same(kept, one_file)
    # the skipped line was a model SNP of this tissue: one SNP fewer somewhere
    assert got["n_snps_used"].sum() == one_file["n_snps_used"].sum() - 1 or \
        target not in set(pd.read_sql("SELECT rsid FROM weights", sqlite3.connect(
            mx / "dbs_3" / f"TW_{TISSUE}_0.5.db"))["rsid"])


def test_input_pvalue_fix_and_keep_non_rsid(mx, tmp_path):
    g = pd.read_csv(mx / "golden" / "gwas" / "gwas_part_pvalue.txt.gz", sep="\t")
    base = ("--beta_column", "BETA", "--pvalue_column", "P")
    path = _write(g, tmp_path / "g.txt")
    rep1, rep2 = tmp_path / "r1.json", tmp_path / "r2.json"
    _sp(_sp_args(mx, tmp_path / "a.csv", path, base) + ["--report", rep1], tmp_path / "a.csv")
    _sp(_sp_args(mx, tmp_path / "b.csv", path, base) + ["--report", rep2, "--keep_non_rsid",
                                                        "--input_pvalue_fix", "0"],
        tmp_path / "b.csv")
    f1, f2 = (json.loads(r.read_text())["files"][0] for r in (rep1, rep2))
    assert f1["non_rsid_dropped"] > 0 and f2["non_rsid_dropped"] == 0
    assert f1["zero_pvalues"] == f2["zero_pvalues"]


def test_snp_map_file(mx, tmp_path, one_file):
    """GWAS ids and alleles re-keyed through a map (with swap = −1 where the panel counts the
    other allele) give the plain result."""
    g = _beta_se(mx)
    rng = np.random.default_rng(0)
    swap = np.where(rng.random(len(g)) < 0.3, -1, 1)
    gw = g.assign(SNP=[f"rs77{i:07d}" for i in range(len(g))])
    # panel alleles: swapped rows count the other allele, so the map flips them back
    a1 = np.where(swap == 1, g["A1"], g["A2"])
    a0 = np.where(swap == 1, g["A2"], g["A1"])
    m = pd.DataFrame({"rsid": gw["SNP"], "a0": a0, "a1": a1, "panel_variant_id": g["SNP"],
                      "panel_variant_a0": g["A2"], "panel_variant_a1": g["A1"], "swap": swap})
    # the GWAS as written counts the map's a1
    gw["BETA"] = g["BETA"] * swap
    gw["A1"], gw["A2"] = a1, a0
    path = _write(gw, tmp_path / "g.txt")
    mp = _write(m, tmp_path / "map.txt.gz")
    got, _ = _sp(_sp_args(mx, tmp_path / "o.csv", path, ("--beta_column", "BETA", "--se_column",
                                                           "SE")) + ["--snp_map_file", mp],
                 tmp_path / "o.csv")
    _same(got, one_file)


def test_model_flags(mx, tmp_path, one_file):
    gwas = mx / "golden" / "gwas" / "gwas_part_beta_se.txt.gz"
    cols = ("--beta_column", "BETA", "--se_column", "SE")
    got, _ = _sp(_sp_args(mx, tmp_path / "a.csv", gwas, cols) + ["--model_db_snp_key", "rsid",
                                                                 "--remove_ens_version"],
                 tmp_path / "a.csv")
    assert set(got["gene"]) == {g.split(".")[0] for g in one_file.index}
    got, _ = _sp(_sp_args(mx, tmp_path / "b.csv", gwas, cols) + ["--MAX_R", "1"],
                 tmp_path / "b.csv")
    assert len(got) == 1
    res = _run(_sp_args(mx, tmp_path / "c.csv", gwas, cols) + ["--model_db_snp_key", "varID"])
    assert res.exit_code == 1 and "varID" in res.output
    # --overwrite: an existing output is replaced; without it, kept
    (tmp_path / "d.csv").write_text("old\n")
    _run(_sp_args(mx, tmp_path / "d.csv", gwas, cols))
    assert (tmp_path / "d.csv").read_text() == "old\n"
    _sp(_sp_args(mx, tmp_path / "d.csv", gwas, cols) + ["--overwrite"], tmp_path / "d.csv")


def test_additional_output(mx, tmp_path, one_file):
    gwas = mx / "golden" / "gwas" / "gwas_part_beta_se.txt.gz"
    got, _ = _sp(_sp_args(mx, tmp_path / "o.csv", gwas, ("--beta_column", "BETA", "--se_column",
                                                          "SE")) + ["--additional_output"],
                 tmp_path / "o.csv")
    assert list(got.columns[-2:]) == ["best_gwas_p", "largest_weight"]
    # independent: the model SNPs used for PITRM1 (harmonized, in the covariance block)
    con = sqlite3.connect(mx / "dbs_3" / f"TW_{TISSUE}_0.5.db")
    w = pd.read_sql(f"SELECT * FROM weights WHERE gene = '{PITRM1}'", con)
    g = _beta_se(mx).merge(w, left_on="SNP", right_on="rsid")
    cov = pd.read_csv(mx / "cov_3" / f"TW_{TISSUE}.txt.gz", sep=r"\s+")
    in_cov = set(cov.loc[cov["GENE"] == PITRM1, "RSID1"])
    g = g.loc[g["SNP"].isin(in_cov) & (g[["A1", "A2"]].apply(lambda r: set(r.str.upper()),
                                                             axis=1)
                                       == g[["eff_allele", "ref_allele"]].apply(set, axis=1))]
    z = (g["BETA"] / g["SE"]).astype(np.float32).astype(np.float64)
    z = z[np.isfinite(z)]
    row = got.set_index("gene").loc[PITRM1]
    assert row["n_snps_used"] == len(z)
    np.testing.assert_allclose(row["best_gwas_p"], 2 * special.ndtr(-np.abs(z).max()),
                               rtol=1e-10)
    np.testing.assert_allclose(row["largest_weight"],
                               np.abs(g.loc[z.index, "weight"]).max(), rtol=1e-12)


def test_phi_calibration(mx, tmp_path, one_file):
    db = tmp_path / "TW_phi.db"
    shutil.copy(mx / "dbs_3" / f"TW_{TISSUE}_0.5.db", db)
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE extra ADD COLUMN phi REAL")
    genes = [r[0] for r in con.execute("SELECT gene FROM extra")]
    phi = {g: v for g, v in zip(genes, [2e-6, -1e-6, None][:len(genes)])}
    for g, v in phi.items():
        con.execute("UPDATE extra SET phi = ? WHERE gene = ?", (v, g))
    con.commit()
    con.close()
    gwas = mx / "golden" / "gwas" / "gwas_part_beta_se.txt.gz"
    args = _sp_args(mx, tmp_path / "o.csv", gwas, ("--beta_column", "BETA", "--se_column", "SE"))
    args[args.index("--model_db_path") + 1] = db
    got, _ = _sp(args + ["--gwas_N", "50000", "--gwas_h2", "0.3"], tmp_path / "o.csv")
    got = got.set_index("gene")
    kept = [g for g, v in phi.items() if v is not None and g in one_file.index]
    assert sorted(got.index) == sorted(kept)  # genes without phi dropped, as the reference
    for g in kept:
        f = max(phi[g], 0.0)
        np.testing.assert_allclose(got.loc[g, "zscore"],
                                   one_file.loc[g, "zscore"] / np.sqrt(1 + f * 50000 * 0.3),
                                   rtol=1e-12)
        np.testing.assert_allclose(got.loc[g, "uncalibrated_zscore"], one_file.loc[g, "zscore"],
                                   rtol=1e-12)
    res = _run(args + ["--gwas_N", "50000", "--overwrite"])
    assert res.exit_code == 2 and "--gwas_h2" in res.output
    plain = _run(_sp_args(mx, tmp_path / "p.csv", gwas, ("--beta_column", "BETA")) +
                 ["--gwas_N", "5", "--gwas_h2", "0.1", "--se_column", "SE"])
    assert plain.exit_code == 1 and "phi" in plain.output


def test_na_row_for_gene_without_covariance(mx, tmp_path):
    """A model gene with GWAS SNPs but no covariance block: a row of NA statistics."""
    cov = pd.read_csv(mx / "cov_3" / f"TW_{TISSUE}.txt.gz", sep=r"\s+")
    path = tmp_path / "cov.txt.gz"
    with gzip.open(path, "wt") as fh:
        cov.loc[cov["GENE"] != PITRM1].to_csv(fh, sep=" ", index=False)
    args = _sp_args(mx, tmp_path / "o.csv")
    args[args.index("--covariance") + 1] = path
    got, _ = _sp(args, tmp_path / "o.csv")
    row = got.set_index("gene").loc[PITRM1]
    assert np.isnan(row["zscore"]) and np.isnan(row["pvalue"]) and np.isnan(row["var_g"])
    assert row["n_snps_used"] == 0 and row["n_snps_in_cov"] == 0
    assert row["n_snps_in_model"] > 0 and got["gene"].iloc[-1] == PITRM1  # NA sorted last


# ---- S-MultiXcan -------------------------------------------------------------------------

def _sm_args(mx, out, *extra, gwas=True):
    args = ["twas", "smultixcan", "--models_folder", mx / "dbs_3", "--models_name_pattern",
            "TW_(.*)_0.5.db", "--snp_covariance", mx / "meta_covariance" / "snps_covariance.txt.gz",
            "--metaxcan_folder", mx / "golden" / "spredixcan", "--metaxcan_filter", "TW_(.*).csv",
            "--metaxcan_file_name_parse_pattern", "TW_(.*).csv"]
    if gwas:
        args += ["--gwas_folder", mx / "golden" / "gwas", "--gwas_file_pattern", r".*\.txt\.gz",
                 "--snp_column", "SNP", "--effect_allele_column", "A1",
                 "--non_effect_allele_column", "A2", "--beta_column", "BETA", "--se_column",
                 "SE", "--pvalue_column", "P"]
    return [*args, *extra, "--verbosity", "7", "--throw", "--output", out]


def _sm(args, out):
    res = _run(args)
    assert res.exit_code == 0, res.output
    return pd.read_csv(out, sep="\t").set_index("gene"), " ".join(res.output.split())


@pytest.fixture(scope="module")
def golden_sm(mx):
    return pd.read_csv(mx / "golden" / "smultixcan" / "smultixcan_cn30.txt",
                       sep="\t").set_index("gene")


def _capinv_reference(R, rule, v, eps=None):
    """The reference's cutoff rules and capped pseudo-inverse, written out as loops."""
    lam = sorted(np.linalg.eigh(R)[0], reverse=True)
    if rule != "condition_number" and v == 0:
        cut = 0.0
    elif rule == "eigen_ratio":
        cut = v * lam[0]
    elif rule == "condition_number":
        cut = lam[0] / v
    elif rule == "trace_ratio":
        cut = v * np.trace(R)
    else:
        cs, objective, cut = np.cumsum(lam), np.sum(lam) * (1 - v), lam[0]
        for i in range(len(cs)):
            if cs[i] > objective:
                break
            cut = lam[i]
    A = R + eps * np.eye(len(R)) if eps else R
    u, s, vt = np.linalg.svd(A)
    inv_s = np.array([1 / x if (x >= cut or i == 0) else 0.0 for i, x in enumerate(s)])
    return vt.T @ np.diag(inv_s) @ u.T, int((inv_s != 0).sum()), s


@pytest.mark.parametrize("rule,v,eps", [("eigen_ratio", 0.05, None), ("trace_ratio", 0.01, None),
                                        ("threshold", 0.1, None), ("threshold", 0.0, None),
                                        ("condition_number", 30.0, 0.1),
                                        ("eigen_ratio", 0.0, None)])
def test_cutoff_rules_match_the_reference_loops(rule, v, eps):
    from gpu_engine.twas.smultixcan import _solve

    rng = np.random.default_rng(1)
    Rs, zs = [], []
    for _ in range(6):
        X = rng.standard_normal((5, 12)) @ np.diag([3, 2, 1, 0.5, 0.1, 0.01, 0, 0, 0, 0, 0, 0])
        C = X @ X.T + 1e-9 * np.eye(5)
        d = np.sqrt(np.diag(C))
        Rs.append(C / d[:, None] / d[None, :])
        zs.append(rng.standard_normal(5))
    out = _solve(np.stack(Rs), np.stack(zs), (rule, v), eps)
    for b, (R, z) in enumerate(zip(Rs, zs)):
        inv, n_indep, s = _capinv_reference(R, rule, v, eps)
        assert out["n_indep"][b] == n_indep
        np.testing.assert_allclose(out["T"][b], z @ inv @ z, rtol=1e-10)
        np.testing.assert_allclose(out["tmi"][b], np.trace(R @ inv), rtol=1e-10)
        np.testing.assert_allclose(out["eigen_max"][b], s.max(), rtol=1e-12)
        np.testing.assert_allclose(out["eigen_min_kept"][b], s[:n_indep].min(), rtol=1e-12)


def test_smultixcan_recorded_and_cutoff_flags(mx, tmp_path, golden_sm):
    got, _ = _sm(_sm_args(mx, tmp_path / "a.txt", "--cutoff_condition_number", "30"),
                 tmp_path / "a.txt")
    np.testing.assert_allclose(got.loc[golden_sm.index, "pvalue"], golden_sm["pvalue"],
                               rtol=1e-6)
    # 1/30 as an eigen ratio is the same rule; it takes precedence over a condition number
    same, _ = _sm(_sm_args(mx, tmp_path / "b.txt", "--cutoff_eigen_ratio", str(1 / 30),
                           "--cutoff_condition_number", "1000"), tmp_path / "b.txt")
    np.testing.assert_allclose(same.loc[got.index, "pvalue"], got["pvalue"], rtol=1e-12)
    for flags in (["--cutoff_trace_ratio", "0.01"], ["--cutoff_threshold", "0.05"],
                  ["--cutoff_condition_number", "30", "--regularization", "0.1"]):
        other, _ = _sm(_sm_args(mx, tmp_path / "c.txt", *flags), tmp_path / "c.txt")
        assert (other["status"] == 0).all() and (other["n_indep"] >= 1).all()
        (tmp_path / "c.txt").unlink()
    res = _run(_sm_args(mx, tmp_path / "d.txt"))
    assert res.exit_code == 1 and "truncation rule" in res.output


def test_smultixcan_snp_set_and_model_flags(mx, tmp_path, golden_sm):
    # --cleared_snps: the SNP set written out (the harmonized GWAS, NaN z included)
    h = pd.read_csv(mx / "golden" / "harmonized_gwas_metaxcan_M03.tsv", sep="\t")
    cleared = _write(pd.DataFrame({"rsid": h["snp"]}), tmp_path / "cleared.txt")
    got, _ = _sm(_sm_args(mx, tmp_path / "a.txt", "--cutoff_condition_number", "30",
                          "--cleared_snps", cleared, gwas=False), tmp_path / "a.txt")
    np.testing.assert_allclose(got.loc[golden_sm.index, "pvalue"], golden_sm["pvalue"],
                               rtol=1e-6)
    # two result filters after one flag (argparse nargs="+"), a model-name filter, MAX_M
    got, _ = _sm(_sm_args(mx, tmp_path / "b.txt", "--cutoff_condition_number", "30",
                          "--models_name_filter", "Liver", "Lung", "--MAX_M", "2",
                          "--trimmed_ensemble_id", "--model_db_snp_key", "rsid",
                          "--metaxcan_filter", "TW_Liver.csv", "TW_Lung.csv"),
                 tmp_path / "b.txt")
    assert len(got) == 2 and got["n"].max() <= 2
    for flags in (["--model_product", cleared], ["--permissive_model_product"]):
        res = _run(_sm_args(mx, tmp_path / "c.txt", "--cutoff_condition_number", "30", *flags))
        assert res.exit_code == 2 and "--model_product is not supported" in res.output


def test_smultixcan_lists_the_reference_genes(mx, tmp_path, golden_sm):
    """A gene whose block is missing from the global covariance is omitted, as the reference
    (its streamed covariance yields only the genes it holds); the others are unchanged."""
    cov = pd.read_csv(mx / "meta_covariance" / "snps_covariance.txt.gz", sep=r"\s+")
    path = tmp_path / "cov.txt.gz"
    with gzip.open(path, "wt") as fh:
        cov.loc[cov["GENE"] != PITRM1].to_csv(fh, sep="\t", index=False)
    args = _sm_args(mx, tmp_path / "o.txt", "--cutoff_condition_number", "30")
    args[args.index("--snp_covariance") + 1] = path
    got, _ = _sm(args, tmp_path / "o.txt")
    assert set(got.index) == set(golden_sm.index) - {PITRM1}
    np.testing.assert_allclose(got["pvalue"], golden_sm.loc[got.index, "pvalue"], rtol=1e-6)
