"""`gpu-engine twas …`: MetaXcan's own command lines work with the program name replaced."""

from __future__ import annotations

import os
import shlex

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gpu_engine.cli.main import cli
from gpu_engine.datasets.twas import make_twas_world, write_twas_world


def _run(args, cwd=None):
    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])
    finally:
        os.chdir(old)


def _text(res) -> str:
    return " ".join(res.output.split())  # rich wraps lines at the terminal width


def _metaxcan_commands(mx):
    """The recorded command lines, program replaced, outputs redirected by the caller."""
    lines = (mx / "golden" / "commands.txt").read_text().replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.startswith("python")]


def _redirect(argv, flag, path):
    argv = list(argv)
    argv[argv.index(flag) + 1] = str(path)
    return argv


def test_spredixcan_drop_in(shared, tmp_path):
    mx = shared / "metaxcan_data"
    cmds = [c for c in _metaxcan_commands(mx) if c[1].endswith("SPrediXcan.py")]
    assert len(cmds) == 44
    for argv in cmds:
        tissue = argv[argv.index("--output_file") + 1].split("/")[-1]
        if tissue not in ("TW_Whole_Blood.csv", "TW_Pituitary.csv", "TW_Liver.csv"):
            continue
        out = tmp_path / tissue
        res = _run(["twas", "spredixcan", *_redirect(argv[2:], "--output_file", out)], cwd=mx)
        assert res.exit_code == 0, res.output
        got = pd.read_csv(out)
        ref_file = mx / "golden" / "spredixcan" / tissue
        if not ref_file.exists():  # the empty Pituitary model: an empty result, no crash
            assert got.empty and "no weights" in _text(res)
            continue
        ref = pd.read_csv(ref_file)
        assert list(got.columns) == list(ref.columns) and list(got["gene"]) == list(ref["gene"])
        np.testing.assert_allclose(got["zscore"], ref["zscore"], rtol=1e-10)
        np.testing.assert_array_equal(got["n_snps_used"], ref["n_snps_used"])
        assert "GWAS harmonization" in _text(res) and "flipped" in _text(res)
    # an existing output is left alone, as the reference does
    before = (tmp_path / "TW_Liver.csv").read_bytes()
    argv = _redirect(cmds[0][2:], "--output_file", tmp_path / "TW_Liver.csv")
    res = _run(["twas", "spredixcan", *argv], cwd=mx)
    assert res.exit_code == 0 and "already exists" in _text(res)
    assert (tmp_path / "TW_Liver.csv").read_bytes() == before


def test_smultixcan_drop_in(shared, tmp_path):
    mx = shared / "metaxcan_data"
    argv = [c for c in _metaxcan_commands(mx) if c[1].endswith("SMulTiXcan.py")][0]
    out = tmp_path / "smulti.txt"
    res = _run(["twas", "smultixcan", *_redirect(argv[2:], "--output", out)], cwd=mx)
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, sep="\t")
    ref = pd.read_csv(mx / "golden" / "smultixcan" / "smultixcan_cn30.txt", sep="\t")
    assert list(got.columns) == list(ref.columns) and list(got["gene"]) == list(ref["gene"])
    np.testing.assert_allclose(got["pvalue"], ref["pvalue"], rtol=1e-12)
    np.testing.assert_array_equal(got["n_indep"], ref["n_indep"])
    # without the condition number: a usage error naming the flag
    argv2 = [a for a in argv[2:] if a not in ("--cutoff_condition_number", "30")]
    res = _run(["twas", "smultixcan", *_redirect(argv2, "--output", tmp_path / "x.txt")], cwd=mx)
    assert res.exit_code != 0 and "--cutoff_condition_number" in _text(res)


def test_synthetic_chain_and_gene_corr(tmp_path):
    tw = make_twas_world(80, 3, seed=5)
    causal = list(tw.genes["gene"].iloc[:5])
    root = write_twas_world(tw, tmp_path / "tw", effects={g: 6.0 for g in causal})
    sp = tmp_path / "sp"
    sp.mkdir()
    for t in tw.tissues:
        res = _run(["twas", "spredixcan", "--model-db-path", root / "models" / f"TW_{t}.db",
                    "--covariance", root / "covariances" / f"TW_{t}.txt.gz",
                    "--gwas_file", root / "gwas" / "gwas.tsv.gz", "--zscore_column", "ZSCORE",
                    "--output_file", sp / f"{t}.csv"])
        assert res.exit_code == 0, res.output
    res = _run(["twas", "smultixcan", "--models_folder", root / "models",
                "--models_name_pattern", r"TW_(.*)\.db", "--snp_covariance", root / "ld.txt.gz",
                "--metaxcan_folder", sp, "--metaxcan_filter", r".*\.csv",
                "--metaxcan_file_name_parse_pattern", r"(.*)\.csv",
                "--cutoff_condition_number", "30", "--output", tmp_path / "multi.tsv"])
    assert res.exit_code == 0, res.output
    multi = pd.read_csv(tmp_path / "multi.tsv", sep="\t")
    from gpu_engine.twas import SMultiXcanTable, SPrediXcanTable

    # the commands' files are what the result classes write, and load back as them
    loaded = SMultiXcanTable.load(tmp_path / "multi.tsv")
    assert isinstance(loaded, SMultiXcanTable)
    pd.testing.assert_frame_equal(pd.DataFrame(loaded), multi)
    one = SPrediXcanTable.load(sp / f"{tw.tissues[0]}.csv")
    pd.testing.assert_frame_equal(pd.DataFrame(one), pd.read_csv(sp / f"{tw.tissues[0]}.csv"))
    top = set(multi.loc[multi["status"] == 0].head(len(causal))["gene"])
    tested = set(multi.loc[multi["status"] == 0, "gene"])
    assert len(top & set(causal)) >= 0.6 * len(set(causal) & tested)
    res = _run(["twas", "gene-corr", "--models_folder", root / "models",
                "--models_name_pattern", r"TW_(.*)\.db", "--snp_covariance", root / "ld.txt.gz",
                "--genes", root / "genes.tsv", "--within-mb", "5", "--out", tmp_path / "gc"])
    assert res.exit_code == 0, res.output
    assert "positive definiteness" in _text(res)
    from gpu_engine.twas import read_gene_corr

    R = read_gene_corr(tmp_path / "gc")
    assert R.shape[0] == R.shape[1] > 50 and np.allclose(np.diag(R), 1.0)
    # the folder is what GeneCorrelation.save writes; load gives the object back
    from gpu_engine import results
    from gpu_engine.twas import GeneCorrelation

    gc = results.load(tmp_path / "gc")
    assert isinstance(gc, GeneCorrelation) and gc.params["within_mb"] == 5
    np.testing.assert_array_equal(gc.to_frame().to_numpy(), R.to_numpy())
    assert len(gc.report) >= 1 and "min_eig_after" in gc.report
    gc.save(tmp_path / "gc2")
    again = GeneCorrelation.load(tmp_path / "gc2")
    assert (again.matrix != gc.matrix).nnz == 0 and again.genes.equals(gc.genes)
    # the TWAS tables: the reference's text formats, and Parquet that loads back as the class
    tab = SMultiXcanTable.from_frame(multi)
    tab.save(tmp_path / "multi.parquet")
    assert isinstance(results.load(tmp_path / "multi.parquet"), SMultiXcanTable)
    one = pd.read_csv(sp / f"{tw.tissues[0]}.csv")
    SPrediXcanTable.from_frame(one).save(tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == (sp / f"{tw.tissues[0]}.csv").read_bytes()
    res = _run(["twas", "gene-corr", "--models_folder", root / "models",
                "--models_name_pattern", r"TW_(.*)\.db", "--snp_covariance", root / "ld.txt.gz",
                "--out", tmp_path / "gc"])
    assert res.exit_code != 0 and "--overwrite" in _text(res)


def test_bad_input_messages(shared, tmp_path):
    mx = shared / "metaxcan_data"
    res = _run(["twas", "spredixcan", "--model_db_path", mx / "dbs_3" / "TW_Liver_0.5.db",
                "--covariance", mx / "cov_3" / "TW_Liver.txt.gz", "--gwas_folder",
                mx / "golden" / "gwas", "--snp_column", "RSID", "--zscore_column", "Z",
                "--output_file", tmp_path / "o.csv"])
    assert res.exit_code != 0 and "no column 'RSID'" in _text(res)
    assert not (tmp_path / "o.csv").exists()
    res = _run(["twas", "spredixcan", "--model_db_path", mx / "dbs_3" / "TW_Liver_0.5.db",
                "--covariance", mx / "cov_3" / "TW_Liver.txt.gz", "--gwas_folder",
                mx / "golden" / "gwas", "--output_file", tmp_path / "o.csv"])
    assert res.exit_code != 0 and "no way to get z" in _text(res)


@pytest.mark.parametrize("cmd", ["spredixcan", "smultixcan", "gene-corr"])
def test_help(cmd):
    res = _run(["twas", cmd, "--help"])
    assert res.exit_code == 0 and "Example" in _text(res)


def test_spredixcan_all_tissues_in_one_call(shared, tmp_path):
    # the 44 real tissues from one call, the GWAS read once: each tissue's file equals the
    # reference's own output for that tissue
    mx = shared / "metaxcan_data"
    argv = [c for c in _metaxcan_commands(mx) if c[1].endswith("SPrediXcan.py")][0][2:]
    keep = []
    skip = {"--model_db_path", "--covariance", "--output_file"}
    it = iter(argv)
    for a in it:
        if a in skip:
            next(it)
        else:
            keep.append(a)
    out = tmp_path / "sp"
    res = _run(["twas", "spredixcan", "--models_folder", "dbs_3", "--models_name_pattern",
                r"TW_(.*)_0\.5\.db", "--covariance_pattern", "cov_3/TW_{tissue}.txt.gz",
                "--output_folder", out, "--output_pattern", "TW_{tissue}.csv", *keep], cwd=mx)
    assert res.exit_code == 0, res.output
    assert "GWAS read once" in _text(res)
    files = sorted(out.glob("TW_*.csv"))
    assert len(files) == 44
    for f in files:
        ref_file = mx / "golden" / "spredixcan" / f.name
        got = pd.read_csv(f)
        if not ref_file.exists():  # the empty model
            assert got.empty
            continue
        ref = pd.read_csv(ref_file)
        assert list(got["gene"]) == list(ref["gene"]), f.name
        np.testing.assert_allclose(got["zscore"], ref["zscore"], rtol=1e-10, err_msg=f.name)
    # a second call skips the tissues already written, with a warning
    res = _run(["twas", "spredixcan", "--models_folder", "dbs_3", "--models_name_pattern",
                r"TW_(.*)_0\.5\.db", "--covariance_pattern", "cov_3/TW_{tissue}.txt.gz",
                "--output_folder", out, "--output_pattern", "TW_{tissue}.csv", *keep], cwd=mx)
    assert res.exit_code == 0 and "44 skipped" in _text(res) and "warning" in _text(res)
    res = _run(["twas", "spredixcan", "--models_folder", "dbs_3", "--models_name_pattern",
                r"TW_(.*)_0\.5\.db", "--output_folder", out, *keep], cwd=mx)
    assert res.exit_code == 2 and "--covariance_pattern" in _text(res)
