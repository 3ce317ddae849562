"""Every command against a table of bad inputs, one class at a time.

For each command the table below names its inputs (option → fixture path in the small world)
and its output. Each test replaces one of them with something bad and asserts what a batch
user needs: a non-zero exit, no traceback, a message that names the offending file or
option, and nothing left where the output would have been.

Classes: damaged inputs (empty, random bytes, truncated; in a folder input, one damaged file),
outputs that cannot be written (checked before any work, timed), existing outputs without
``--overwrite``, inputs that share nothing with each other, required inputs missing.
"""

from __future__ import annotations

import gzip
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gpu_engine.cli.main import cli

# command → (argv with {input} and {out} placeholders, {placeholder: world-relative path},
# the output's name: a file name with its format's suffix, or a folder name ending in "/")
COMMANDS: dict[str, tuple[list[str], dict[str, str], str]] = {
    "plier fit": (["plier", "fit", "--expr", "{expr}", "--prior", "{prior}", "--k", "4",
                   "--max-iter", "2", "--out", "{out}"],
                  {"expr": "expression/part-00000.parquet", "prior": "pathways.gmt"}, "model/"),
    "plier project": (["plier", "project", "--lv-model", "{model}", "--lv-l2", "1", "--data",
                       "{data}", "--out", "{out}"],
                      {"model": "truth/Z.parquet", "data": "expression/part-00000.parquet"},
                      "lv.parquet"),
    "gls": (["gls", "--lv-model", "{model}", "--traits", "{traits}", "--gene-corr", "{corr}",
             "--lvs", "M0001", "--out", "{out}"],
            {"model": "truth/Z.parquet", "traits": "smultixcan", "corr": "gene_corr.parquet"},
            "gls.parquet"),
    "gls-null": (["gls-null", "--lv-model", "{model}", "--gene-corr", "{corr}", "--n-null",
                  "20", "--lvs", "M0001", "--out", "{out}"],
                 {"model": "truth/Z.parquet", "corr": "gene_corr.parquet"}, "null/"),
    "cluster ensemble": (["cluster", "ensemble", "--data", "{data}", "--families", "kmeans",
                          "--n-seeds", "1", "--out", "{out}"], {"data": "X.parquet"}, "ens/"),
    "cluster interpret": (["cluster", "interpret", "--data", "{data}", "--labels", "{labels}",
                           "--out", "{out}"], {"data": "X.parquet", "labels": "labels.tsv"},
                          "drivers.tsv"),
    "drugs score": (["drugs", "score", "--signatures", "{sig}", "--twas-z", "{z}", "--out",
                     "{out}"],
                    {"sig": "drugs/signatures.parquet", "z": "spredixcan"}, "scores/"),
    "ccc": (["ccc", "--data", "{data}", "--out", "{out}"], {"data": "truth/B/part-00000.parquet"},
            "ccc.parquet"),
    "twas spredixcan": (["twas", "spredixcan", "--model_db_path", "{db}", "--covariance",
                         "{cov}", "--gwas_file", "{gwas}", "--zscore_column", "ZSCORE",
                         "--output_file", "{out}"],
                        {"db": "twas/models/TW_Adrenal_Gland.db",
                         "cov": "twas/covariances/TW_Adrenal_Gland.txt.gz",
                         "gwas": "twas/gwas/trait_0001.tsv.gz"}, "out.csv"),
    "twas gene-corr": (["twas", "gene-corr", "--models_folder", "{models}",
                        "--models_name_pattern", r"TW_(.*)\.db", "--snp_covariance", "{ld}",
                        "--genes", "{genes}", "--out", "{out}"],
                       {"models": "twas/models", "ld": "twas/ld.txt.gz",
                        "genes": "twas/genes.tsv"}, "gc/"),
    "world": (["world", "--scale", "small", "--out", "{out}"], {}, "world/"),
    "cluster consensus": (["cluster", "consensus", "--ensemble", "{ens}", "--out", "{out}"],
                          {"ens": "ensemble"}, "cons/"),
    "drugs evaluate": (["drugs", "evaluate", "--scores", "{scores}", "--gold", "{gold}",
                        "--permutations", "10", "--out", "{out}"],
                       {"scores": "drug_scores", "gold": "drugs/gold_standard.tsv"}, "eval/"),
}
# MetaXcan's own rule for an existing output is "skip it" (with a warning): not an error
METAXCAN_SKIPS = {"twas spredixcan"}


def _out(command: str, where: Path) -> Path:
    return where / COMMANDS[command][2].rstrip("/")


def _argv(command: str, world: Path, out: Path, **replace: Path) -> list[str]:
    template, inputs, _ = COMMANDS[command]
    values = {k: replace.get(k, world / v) for k, v in inputs.items()} | {"out": out}
    return ["--backend", "cpu", *[a.format(**{k: str(v) for k, v in values.items()})
                                  for a in template]]


def _run(argv):
    return CliRunner().invoke(cli, argv)


def _clean_failure(res, *names: str):
    text = res.output
    assert res.exit_code != 0, text
    assert "Traceback" not in text and res.exc_info[0] is SystemExit, text
    assert any(n in text for n in names), f"none of {names} named in:\n{text}"
    assert "np.float" not in text and "np.int" not in text, text  # no NumPy reprs


@pytest.fixture(scope="module")
def world(small_world, tmp_path_factory):
    """The small world (linked) plus the inputs the table needs that it does not hold: an
    objects × features matrix and cluster labels for its objects."""
    base = tmp_path_factory.mktemp("bad_inputs")
    for entry in small_world.path.iterdir():
        (base / entry.name).symlink_to(entry)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 6)), index=[f"t{i}" for i in range(40)],
                     columns=[f"LV{j}" for j in range(6)])
    X.iloc[:20, 0] += 3
    X.rename_axis("trait").reset_index().to_parquet(base / "X.parquet")
    pd.DataFrame({"object": X.index, "cluster": [0] * 20 + [1] * 20}).to_csv(
        base / "labels.tsv", sep="\t", index=False)
    # outputs of earlier commands that later ones read: an ensemble, drug scores
    for argv in (["cluster", "ensemble", "--data", base / "X.parquet", "--families", "kmeans",
                  "--n-seeds", "1", "--out", base / "ensemble"],
                 ["drugs", "score", "--signatures", base / "drugs" / "signatures.parquet",
                  "--twas-z", base / "spredixcan", "--trait-disease",
                  base / "trait_disease.tsv", "--out", base / "drug_scores"]):
        res = _run(["--backend", "cpu", *map(str, argv)])
        assert res.exit_code == 0, res.output
    return base


def _damage(src: Path, dst_dir: Path, how: str) -> Path:
    """A damaged copy of ``src`` (same name, so the same reader is chosen). A folder is
    copied with its first data file damaged."""
    dst = dst_dir / how / src.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
        victim = sorted(p for p in dst.rglob("*") if p.is_file())[0]
        _damage_file(victim, how)
        return dst
    shutil.copy(src, dst)
    _damage_file(dst, how)
    return dst


def _damage_file(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif how == "truncated":
        if path.suffix == ".gmt" or path.suffix in (".tsv", ".txt", ".csv"):
            # a text table cut in the middle of a line, and a header only
            path.write_bytes(data[: data.index(b"\n") + 1] + data.split(b"\n")[1][:3])
        else:
            path.write_bytes(data[: max(len(data) // 2, 10)])


# a text file cut at a line end is still a valid table; in a folder of per-trait files the
# trait is skipped and the skip reported by name
REPORTED_SKIPS = {("gls", "traits", "truncated")}
CASES = [(cmd, key, how) for cmd, (_, inputs, _) in COMMANDS.items() for key in inputs
         for how in ("empty", "garbage", "truncated")]


@pytest.mark.parametrize("command, key, how", CASES,
                         ids=[f"{c}-{k}-{h}" for c, k, h in CASES])
def test_damaged_input_is_named(world, tmp_path, command, key, how):
    src = world / COMMANDS[command][1][key]
    bad = _damage(src, tmp_path, how)
    out = _out(command, tmp_path)
    res = _run(_argv(command, world, out, **{key: bad}))
    # the message names the damaged file (or, for a folder input, the folder or the file in it)
    victim = sorted(p for p in bad.rglob("*") if p.is_file())[0] if bad.is_dir() else bad
    if (command, key, how) in REPORTED_SKIPS:
        # one of many independent files cut after a line: a counted, reported skip
        assert res.exit_code == 0 and "1 skipped" in res.output, res.output
        assert victim.name.split("-")[0] in res.output
        return
    _clean_failure(res, victim.name, bad.name)
    assert not out.exists() and not list(tmp_path.glob(f".{out.name}*"))


OUTPUT_CASES = list(COMMANDS)


@pytest.mark.parametrize("command", OUTPUT_CASES)
def test_unwritable_output_is_refused_before_any_work(world, tmp_path, command):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    t0 = time.perf_counter()
    res = _run(_argv(command, world, _out(command, blocker)))
    elapsed = time.perf_counter() - t0
    _clean_failure(res, "a_file")
    assert "is a file" in res.output and blocker.read_text() == "x"
    assert elapsed < 2.0, f"{command}: the output check took {elapsed:.1f} s (after work?)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only folder")
@pytest.mark.parametrize("command", OUTPUT_CASES)
def test_read_only_output_folder_is_refused(world, tmp_path, command):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res = _run(_argv(command, world, _out(command, ro)))
        _clean_failure(res, str(ro))
        assert "permission denied" in res.output and not list(ro.iterdir())
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in METAXCAN_SKIPS])
def test_existing_output_needs_overwrite(world, tmp_path, command):
    out = _out(command, tmp_path)
    if COMMANDS[command][2].endswith("/"):
        out.mkdir()
        (out / "keep.txt").write_text("keep me")
        kept = out / "keep.txt"
    else:
        out.write_text("keep me")
        kept = out
    res = _run(_argv(command, world, out))
    _clean_failure(res, "--overwrite")
    assert kept.read_text() == "keep me"


def test_metaxcan_drop_in_skips_an_existing_output_with_a_warning(world, tmp_path):
    out = _out("twas spredixcan", tmp_path)
    out.write_text("keep me")
    res = _run(_argv("twas spredixcan", world, out))
    assert res.exit_code == 0 and "exists" in res.output and out.read_text() == "keep me"


def _other_genes(src: Path, dst: Path, axis: str) -> Path:
    """A copy of a table whose gene labels match nothing in the world."""
    df = pd.read_parquet(src)
    if axis == "index":
        df.iloc[:, 0] = [f"NOTAGENE{i}" for i in range(len(df))]
    else:
        df.columns = [df.columns[0], *[f"NOTAGENE{i}" for i in range(df.shape[1] - 1)]]
    df.to_parquet(dst)
    return dst


@pytest.mark.parametrize("command, key", [
    ("plier fit", "expr"), ("plier project", "data"), ("gls-null", "corr"),
    ("drugs score", "sig"),
])
def test_no_shared_genes_is_an_error(world, tmp_path, command, key):
    src = world / COMMANDS[command][1][key]
    bad = _other_genes(src, tmp_path / src.name, "index")
    out = _out(command, tmp_path)
    res = _run(_argv(command, world, out, **{key: bad}))
    _clean_failure(res, "gene", "overlap", "share")
    assert not out.exists()


def test_spredixcan_gwas_sharing_no_snp_is_an_error(world, tmp_path):
    src = world / "twas" / "gwas" / "trait_0001.tsv.gz"
    with gzip.open(src, "rt") as fh:
        df = pd.read_csv(fh, sep="\t")
    df["SNP"] = [f"rsX{i}" for i in range(len(df))]
    bad = tmp_path / "gwas.tsv.gz"
    df.to_csv(bad, sep="\t", index=False)
    out = _out("twas spredixcan", tmp_path)
    res = _run(_argv("twas spredixcan", world, out, gwas=bad))
    _clean_failure(res, "SNP", "snp")
    assert not out.exists()


def test_temporaries_of_a_killed_run_are_removed_by_the_next(tmp_path):
    # SIGKILL leaves the hidden temporary folder; the next writer of the same output removes it
    import signal
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = tmp_path / "w"
    proc = subprocess.Popen([sys.executable, "-m", "gpu_engine", "--backend", "cpu", "world",
                             "--scale", "medium", "--no-check", "--out", str(out)],
                            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(tmp_path.glob(".w.tmp-*")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert list(tmp_path.glob(".w.tmp-*")), "the writer had not started"
    res = _run(["--backend", "cpu", "world", "--scale", "small", "--no-check", "--out",
                str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_dir() and not list(tmp_path.glob(".w.tmp-*"))


def test_progress_lines_in_a_batch_log(capsys, monkeypatch):
    # not a terminal: plain periodic lines on stderr (every LOG_EVERY_S; 0 here)
    from gpu_engine import progress
    from gpu_engine.cli._common import progress_enabled

    assert progress_enabled() == "log"  # pytest's stderr is not a TTY
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    assert list(progress.track(range(3), "genes", total=3, enabled="log")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "genes: 2/3 (67 %)" in err and "genes: 3 done in" in err
