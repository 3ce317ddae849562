"""The gpu-engine command: help on every command, info, world, demo, bench."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gpu_engine.cli.main import cli

from .conftest import HAS_CUPY, HAS_GPU

COMMANDS = ["info", "world", "demo", "bench", "gls", "gls-null", "lv", "lv genes", "lv enrich",
            "decode", "decode fit", "decode ko", "run",
            "lv context"]


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)
    return invoke


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(run, command):
    res = run(*command.split(), "--help")
    assert res.exit_code == 0
    assert "Usage: " in res.output and len(res.output.splitlines()) > 8


def test_top_level_help_and_version(run):
    res = run("--help")
    assert res.exit_code == 0 and all(c.split()[0] in res.output for c in COMMANDS)
    assert "--backend" in res.output and "--verbose" in res.output
    assert run("--version").output.startswith("gpu-engine, version")


def test_info_json(run):
    res = run("info", "--json")
    assert res.exit_code == 0
    report = json.loads(res.output)
    assert report["backends"]["cpu"]["available"] is True
    assert report["selected_backend"] in ("cpu", "gpu", "rapids")
    assert "numpy" in report["versions"]


@pytest.mark.skipif(HAS_GPU and HAS_CUPY, reason="this machine has a GPU")
def test_gpu_backend_request_fails_clearly(run, tmp_path):
    res = CliRunner().invoke(cli, ["--backend", "gpu", "demo", "--out", str(tmp_path / "d")])
    assert res.exit_code != 0
    assert "'gpu' was requested but cannot run here" in res.output
    assert not (tmp_path / "d").exists()


def test_world_command(run, tmp_path):
    out = tmp_path / "w"
    res = run("world", "--scale", "small", "--seed", "0", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert (out / "world.json").exists() and (out / "gene_corr.parquet").exists()
    assert "1,000 genes" in res.output and "summary" in res.output
    res = CliRunner().invoke(cli, ["world", "--out", str(out), "--no-check"])
    assert res.exit_code != 0 and "already exists" in res.output


def test_demo_command(run, tmp_path):
    out = tmp_path / "demo"
    res = run("--backend", "cpu", "demo", "--out", str(out))
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert summary["ok"].all() and set(summary["stage"]) >= {"world", "gls"}
    assert "checks passed" in res.output
    meta = json.loads((out / "summary.json").read_text())
    assert meta["all_ok"] and meta["backend"] == "cpu"


def test_bench_list_and_unknown(run):
    res = run("bench", "--list")
    assert res.exit_code == 0 and "standardize" in res.output
    res = CliRunner().invoke(cli, ["bench", "nonexistent"])
    assert res.exit_code != 0 and "unknown benchmark" in res.output


@pytest.mark.parametrize("argv", [
    ["gls", "--lv-model", "{f}", "--traits", "{f}", "--gene-corr", "{f}", "--out", "{bad}"],
    ["gls-null", "--lv-model", "{f}", "--gene-corr", "{f}", "--out", "{bad}"],
    ["plier", "fit", "--expr", "{f}", "--prior", "{f}", "--out", "{bad}"],
    ["plier", "project", "--lv-model", "{f}", "--data", "{f}", "--out", "{bad}"],
    ["cluster", "ensemble", "--data", "{f}", "--out", "{bad}"],
    ["drugs", "score", "--signatures", "{f}", "--twas-z", "{f}", "--out", "{bad}"],
    ["ccc", "--data", "{f}", "--out", "{bad}"],
    ["world", "--out", "{bad}"],
], ids=lambda a: " ".join(a[:2]))
def test_unwritable_output_fails_before_any_work(tmp_path, argv):
    # the output's parent is a file: one clean message naming it, before any input is read
    # (the input here is not even a valid table), and nothing written
    f = tmp_path / "not_a_table.txt"
    f.write_text("x")
    bad = f / "out.parquet"
    res = CliRunner().invoke(cli, ["--backend", "cpu",
                                   *[a.format(f=f, bad=bad) for a in argv]])
    assert res.exit_code == 1, res.output
    assert "is a file" in res.output and "Traceback" not in res.output
    assert "could not be read" not in res.output and f.read_text() == "x"


def test_one_overwrite_rule(tmp_path, small_world):
    # an existing output is refused unless --overwrite, for the commands that used to replace
    w = small_world
    out = tmp_path / "gls.tsv"
    out.write_text("keep me")
    args = ["--backend", "cpu", "gls", "--lv-model", str(w.path / "truth" / "Z.parquet"),
            "--traits", str(w.path / "smultixcan"), "--gene-corr",
            str(w.path / "gene_corr.parquet"), "--lvs", "M0001", "--out", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1 and "--overwrite" in res.output and out.read_text() == "keep me"
    res = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert out.read_text() != "keep me"


@pytest.mark.parametrize("argv, option", [
    (["plier", "fit", "--expr", "{f}", "--prior", "{f}", "--L1", "-3", "--out", "{o}"], "--L1"),
    (["plier", "fit", "--expr", "{f}", "--prior", "{f}", "--L2", "-5", "--out", "{o}"], "--L2"),
    (["plier", "project", "--lv-model", "{f}", "--lv-l2", "-1", "--data", "{f}", "--out",
      "{o}"], "--lv-l2"),
    (["drugs", "score", "--signatures", "{f}", "--twas-z", "{f}", "--top-k", "all,abc",
      "--out", "{o}"], "--top-k"),
    (["ccc", "--data", "{f}", "--pvalue-perms", "-5", "--out", "{o}"], "--pvalue-perms"),
    (["gls-null", "--lv-model", "{f}", "--gene-corr", "{f}", "--n-null", "0", "--out", "{o}"],
     "--n-null"),
    (["cluster", "ensemble", "--data", "{f}", "--k-max", "1", "--out", "{o}"], "--k-max"),
    (["gls", "--lv-model", "{f}", "--traits", "{f}", "--gene-corr", "{f}", "--top-fraction",
      "1.5", "--out", "{o}"], "--top-fraction"),
], ids=lambda a: a if isinstance(a, str) else " ".join(a[:2]))
def test_options_are_range_checked_at_parse_time(tmp_path, argv, option):
    f = tmp_path / "input.txt"
    f.write_text("x")
    res = CliRunner().invoke(cli, [a.format(f=f, o=tmp_path / "out") for a in argv])
    assert res.exit_code == 2 and option in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_runs_that_would_do_nothing_are_errors(tmp_path, small_world):
    w = small_world
    run = lambda *a: CliRunner().invoke(cli, ["--backend", "cpu", *map(str, a)])
    # gls: a correlation matrix sharing no gene with the model
    R = w.gene_corr()
    R.index = R.columns = [f"other{i}" for i in range(len(R))]
    R.rename_axis("gene").reset_index().to_parquet(tmp_path / "R.parquet")
    res = run("gls", "--lv-model", w.path / "truth" / "Z.parquet", "--traits",
              w.path / "smultixcan", "--gene-corr", tmp_path / "R.parquet", "--out",
              tmp_path / "gls.parquet")
    assert res.exit_code == 1 and "gene" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "gls.parquet").exists()
    # cluster interpret: labels for other objects
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(10, 3)),
                     index=[f"t{i}" for i in range(10)], columns=list("abc"))
    X.rename_axis("trait").reset_index().to_parquet(tmp_path / "X.parquet")
    pd.DataFrame({"object": [f"u{i}" for i in range(10)], "cluster": [0, 1] * 5}).to_csv(
        tmp_path / "labels.tsv", sep="\t", index=False)
    res = run("cluster", "interpret", "--data", tmp_path / "X.parquet", "--labels",
              tmp_path / "labels.tsv", "--out", tmp_path / "drivers.tsv")
    assert res.exit_code == 1 and "none of the 10 objects" in res.output
    assert not (tmp_path / "drivers.tsv").exists()
    # drugs score in module space with neither a model nor --projected
    res = run("drugs", "score", "--space", "module", "--signatures",
              w.path / "drugs" / "signatures.parquet", "--twas-z", w.path / "spredixcan",
              "--out", tmp_path / "d")
    assert res.exit_code == 2 and "--projected" in res.output and not (tmp_path / "d").exists()


def test_pvalues_outside_their_domain_are_errors(tmp_path):
    from gpu_engine.errors import InputError
    from gpu_engine.twas import GwasColumns, read_gwas_file

    pd.DataFrame({"SNP": ["rs1", "rs2"], "A1": ["A", "C"], "A2": ["G", "T"],
                  "BETA": [0.1, -0.2], "P": [0.5, 1.7]}).to_csv(tmp_path / "g.tsv", sep="\t",
                                                                index=False)
    cols = GwasColumns(snp="SNP", effect_allele="A1", non_effect_allele="A2", beta="BETA",
                       pvalue="P")
    with pytest.raises(InputError, match=r"outside \[0, 1\].*1\.7.*row 2"):
        read_gwas_file(tmp_path / "g.tsv", cols)


def test_interrupt_exits_130_and_leaves_nothing_half_written(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = tmp_path / "w"
    proc = subprocess.Popen([sys.executable, "-m", "gpu_engine", "--backend", "cpu", "world",
                             "--scale", "medium", "--no-check", "--out", str(out)],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(tmp_path.glob(".w.tmp-*")):
        time.sleep(0.2)  # until the writer has started
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".w.tmp-*"))
