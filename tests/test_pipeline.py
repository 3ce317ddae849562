"""``gpu-engine run``: the config's errors all at once, the plan, reuse, exactly the right
stages re-run after a change, resume after SIGKILL with the finished chunks kept and the
same outputs as an uninterrupted run, and the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from gpu_engine.cli.main import cli
from gpu_engine.pipeline import ConfigError, load_config, plan, run
from gpu_engine.pipeline.example import write_example

HAS_TORCH = importlib.util.find_spec("torch") is not None  # the DEcode stage needs it
N_STAGES = 12 if HAS_TORCH else 11
SECTIONS = ("run", "inputs", "expression", "twas", "modules", "association", "enrichment",
            "clusters", "drugs", "decode", "ccc")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The small example, run once (every stage)."""
    d = tmp_path_factory.mktemp("pipe")
    cfg_path = write_example(d / "ex", scale="small", seed=0, backend="cpu")
    rows = run(load_config(cfg_path))
    return cfg_path, rows


def _absolute(cfg_path: Path) -> str:
    """The example's config text with its relative input paths made absolute."""
    import re

    base = cfg_path.parent
    text = cfg_path.read_text()
    text = re.sub(r"(?<![\w/])(world|decode_world|expr_world|enrich)/",
                  lambda m: f"{base / m.group(1)}/", text)
    # the derived runs test the TWAS and GLS stages: skip the (slow) expression models
    return re.sub(r"expression_models: \{cnn: \w+\}", "expression_models: {enabled: false}",
                  text)


def _actions(rows):
    return {r["stage"]: r["action"] for r in rows}


def test_three_mistakes_reported_at_once_and_nothing_runs(tmp_path):
    (tmp_path / "genes.tsv").write_text("gene\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("out: res/\n"
                   "inputs:\n"
                   "  genes: genes.tsv\n"
                   "  expression: missing.parquet\n"     # line 4: a missing file
                   "stages:\n"
                   "  gls: {mdoe: full}\n"               # line 6: an unknown key
                   "  plier: {k: many}\n")               # line 7: a wrong type
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    by_key = {k: (line, msg) for k, line, msg in err.value.errors}
    assert len(err.value.errors) == 3, err.value.errors
    assert by_key["inputs.expression"][0] == 4 and "does not exist" in by_key[
        "inputs.expression"][1]
    assert by_key["stages.gls.mdoe"][0] == 6 and "unknown key" in by_key["stages.gls.mdoe"][1]
    assert by_key["stages.plier.k"][0] == 7 and "integer" in by_key["stages.plier.k"][1]
    res = CliRunner().invoke(cli, ["run", str(cfg)])
    assert res.exit_code == 1 and "3 errors; nothing was run" in res.output
    assert "line 6: stages.gls.mdoe" in res.output
    assert not (tmp_path / "res").exists()


def test_plan_explains_skips(tmp_path):
    (tmp_path / "z.tsv").write_text("gene\tLV1\ng1\t1\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("out: res/\ninputs: {lv_model: z.tsv}\nstages: {drugs: {enabled: false}}\n")
    items = {it.name: it for it in plan(load_config(cfg))}
    assert items["plier"].action == "skip" and "lv_model given" in items["plier"].reason
    assert items["spredixcan"].reason == "needs inputs gwas, models, covariances"
    assert "needs inputs smultixcan" in items["gls"].reason
    assert items["drugs"].reason.startswith("disabled")


def test_example_runs_every_stage_then_reuses_all(example):
    cfg_path, rows = example
    assert len(rows) == 12 and sum(a == "run" for a in _actions(rows).values()) == N_STAGES
    out = load_config(cfg_path).out
    for r in (r for r in rows if r["action"] == "run"):
        doc = json.loads((out / r["stage"] / "stage.json").read_text())
        assert doc["status"] == "complete" and doc["seconds"] > 0 and doc["peak_rss_mib"] > 0
        assert (out / "logs" / f"{r['stage']}.log").exists()
        assert not (out / r["stage"] / ".checkpoints").exists()  # dropped once complete
    assert (out / "gls" / "null" / "calibration.parquet").exists()
    gls = pd.read_parquet(out / "gls" / "gls.parquet")
    assert {"lv", "trait", "pvalue_onesided", "fdr"} <= set(gls.columns) and len(gls) == 30 * 120
    again = run(load_config(cfg_path))  # how fast is measured in bench/, not asserted here
    assert sum(a == "reuse" for a in _actions(again).values()) == N_STAGES


def test_a_changed_parameter_or_input_reruns_exactly_downstream(example, tmp_path):
    cfg_path, _ = example
    d = tmp_path / "copy"
    shutil.copytree(cfg_path.parent, d, symlinks=True)
    text = (d / "config.yaml").read_text()
    (d / "config.yaml").write_text(text.replace(
        "gls: {mode: submatrix, conditional: true,",
        "gls: {mode: submatrix, conditional: true, predictor: continuous,"))
    items = plan(load_config(d / "config.yaml"))
    assert {it.name for it in items if it.action == "run"} == {"gls", "lv_genes", "cluster"}
    assert "parameters changed (predictor)" in next(i for i in items if i.name == "gls").reason
    (d / "config.yaml").write_text(text)
    meta = (d / "enrich" / "samples.tsv").read_text()
    (d / "enrich" / "samples.tsv").write_text(meta.replace("\tb1\n", "\tb2\n", 1))
    assert {it.name for it in plan(load_config(d / "config.yaml")) if it.action == "run"} == {
        "lv_enrich"}
    with open(d / "world" / "pathways.gmt", "a") as fh:  # touch one input: the priors
        fh.write("EXTRA_SET\tna\tSG00001\tSG00002\tSG00003\n")
    items = plan(load_config(d / "config.yaml"))
    assert {it.name for it in items if it.action == "run"} == {"plier", "gls", "lv_genes",
                                                               "lv_enrich", "cluster", "drugs",
                                                               "ccc"} | (
        {"decode"} if HAS_TORCH else set())
    assert next(i for i in items if i.name == "plier").reason == "an input file changed"
    rows = run(load_config(d / "config.yaml"), until="plier")
    assert _actions(rows) == {"expression_models": "reuse", "spredixcan": "reuse",
                              "smultixcan": "reuse",
                              "gene_corr": "reuse", "plier": "run", "gls": "skip",
                              "lv_genes": "skip", "lv_enrich": "skip", "cluster": "skip",
                              "drugs": "skip",
                              "decode": "skip", "ccc": "skip"}


def _three_trait_config(example, d: Path) -> Path:
    cfg_path, _ = example
    world = cfg_path.parent / "world"
    g = d / "gwas"
    g.mkdir(parents=True)
    src = next((world / "twas" / "gwas").glob("*.tsv.gz"))
    for name in ("traitA", "traitB", "traitC", "traitD"):
        shutil.copy(src, g / f"{name}.tsv.gz")
    text = _absolute(cfg_path).replace(f"folder: {world}/twas/gwas", f"folder: {g}")
    cfg = d / "config.yaml"
    cfg.write_text(text.replace("out: results/", f"out: {d / 'results'}/"))
    return cfg


def test_sigkill_mid_stage_resumes_keeping_finished_chunks(example, tmp_path):
    cfg = _three_trait_config(example, tmp_path / "killed")
    env = dict(os.environ, GPU_ENGINE_BACKEND="cpu")
    cmd = [sys.executable, "-m", "gpu_engine", "run", str(cfg), "--until", "smultixcan",
           "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = tmp_path / "killed" / "results" / ".partial" / "smultixcan"
    deadline = time.time() + 120
    while time.time() < deadline and not (partial / "traitA").is_dir():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {proc.stderr.read()}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    out = tmp_path / "killed" / "results"
    assert not (out / "smultixcan").exists()  # never a stage folder that looks complete
    done_before = sorted(p.name for p in partial.iterdir() if p.is_dir())
    assert "traitA" in done_before and len(done_before) < 4
    stamp = (partial / "traitA" / "traitA-smultixcan.txt").stat().st_mtime_ns
    rows = run(load_config(cfg), until="smultixcan")
    assert _actions(rows)["spredixcan"] == "reuse" and _actions(rows)["smultixcan"] == "run"
    assert (out / "smultixcan" / "traitA" / "traitA-smultixcan.txt").stat().st_mtime_ns == stamp
    assert "done in an earlier run, kept" in (out / "logs" / "smultixcan.log").read_text()
    # the same outputs as an uninterrupted run
    ref = _three_trait_config(example, tmp_path / "clean")
    run(load_config(ref), until="smultixcan")
    for t in ("traitA", "traitB", "traitC", "traitD"):
        a = pd.read_csv(out / "smultixcan" / t / f"{t}-smultixcan.txt", sep="\t")
        b = pd.read_csv(tmp_path / "clean" / "results" / "smultixcan" / t /
                        f"{t}-smultixcan.txt", sep="\t")
        pd.testing.assert_frame_equal(a, b)
    # z/<tissue>.parquet (assembled one tissue at a time) equals the z of the CSV files
    spx = tmp_path / "clean" / "results" / "spredixcan"
    for f in sorted((spx / "z").glob("*.parquet")):
        want = pd.DataFrame({t: pd.read_csv(spx / t / f"{f.stem}.csv").dropna(
            subset=["zscore"]).drop_duplicates("gene_name").set_index("gene_name")["zscore"]
            for t in ("traitA", "traitB", "traitC", "traitD")}).sort_index().rename_axis("gene")
        pd.testing.assert_frame_equal(pd.read_parquet(f), want, check_index_type=False,
                                      check_column_type=False)
    assert len(list((spx / "z").glob("*.parquet"))) == 5
    # the covariance cache (4 traits: kept after the first) changes the speed only: turning
    # it off re-runs nothing, and a forced run without it writes the same files
    counts = json.loads((spx / "stage.json").read_text())["counts"]
    assert counts["covariances_cached"] == 5 and counts["covariance_cache_gib"] > 0
    cached = {f.relative_to(spx): f.read_bytes() for f in spx.glob("trait*/*.csv")}
    text = ref.read_text()
    assert "stages:\n" in text
    ref.write_text(text.replace("stages:\n", "stages:\n  spredixcan: {cache_covariances_gib: 0}\n"))
    assert _actions(run(load_config(ref), until="spredixcan"))["spredixcan"] == "reuse"
    run(load_config(ref), until="spredixcan", force=["spredixcan"])
    assert json.loads((spx / "stage.json").read_text())["counts"]["covariances_cached"] == 0
    assert {f.relative_to(spx): f.read_bytes() for f in spx.glob("trait*/*.csv")} == cached


def test_cli_dry_run_and_unknown_stage(example):
    cfg_path, _ = example
    res = CliRunner().invoke(cli, ["run", str(cfg_path), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "plan" in res.output and "reuse" in res.output
    res = CliRunner().invoke(cli, ["run", str(cfg_path), "--force", "glss"])
    assert res.exit_code == 1 and "unknown stage 'glss'" in res.output
    res = CliRunner().invoke(cli, ["run"])
    assert res.exit_code == 2 and "--example" in res.output


def test_report_numbers_equal_the_stage_outputs(example):
    import re

    cfg_path, _ = example
    out = load_config(cfg_path).out
    html = (out / "report.html").read_text()
    got = dict(re.findall(r'data-check="([^"]+)" data-value="([^"]+)"', html))
    gls = pd.read_parquet(out / "gls" / "gls.parquet")
    labels = pd.read_parquet(out / "cluster" / "labels.parquet")
    auc = {s: json.loads((out / "drugs" / s / "evaluation" / "result.json").read_text())[
        "fields"]["auc"] for s in ("gene", "module")}
    z = pd.read_parquet(out / "plier" / "model" / "Z.parquet")
    gs = pd.read_parquet(out / "lv_enrich" / "gene_sets.parquet")
    cx = pd.read_parquet(out / "lv_enrich" / "contexts.parquet")
    want = {"lv_enrich.gene_sets": gs["gene_set"].nunique(),
            "lv_enrich.set_pairs": int((gs["fdr"] < 0.05).sum()),
            "lv_enrich.context_tests": len(cx),
            "lv_enrich.contexts": int((cx["fdr"] < 0.05).sum()),
            "run.stages_complete": N_STAGES, "gls.pairs": len(gls),
            "gls.significant": int((gls["fdr"] < 0.05).sum()),
            "gls.traits_hit": gls.loc[gls["fdr"] < 0.05, "trait"].nunique(),
            "cluster.traits": len(labels), "cluster.clusters": labels["cluster"].nunique(),
            "plier.k": z.shape[1] - ("gene" in z.columns), "twas.traits": 120,
            "inputs.tissues": 5}
    for k, v in want.items():
        assert int(got[k]) == v, k
    for s, v in auc.items():
        assert abs(float(got[f"drugs.{s}.auc"]) - v) < 1e-4
    assert "<script src=" not in html and "http://" not in html and "https://" not in html
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in html
    assert "could not be drawn" not in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_report_renders_in_headless_chromium_without_console_errors(example):
    cfg_path, _ = example
    report = load_config(cfg_path).out / "report.html"
    res = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                          "--enable-logging=stderr", "--v=0", "--dump-dom",
                          report.resolve().as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    console = [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln]
    assert not console, console
    for sec in SECTIONS:
        assert f'id="{sec}"' in res.stdout


def test_scheduler_local_equals_the_in_process_run(example, tmp_path):
    pytest.importorskip("distributed")
    cfg_path, _ = example
    text = _absolute(cfg_path).replace("scheduler: null", "scheduler: local").replace(
        "out: results/", f"out: {tmp_path / 'results'}/")
    (tmp_path / "config.yaml").write_text(text)
    rows = run(load_config(tmp_path / "config.yaml"), until="gls")
    assert {r["stage"] for r in rows if r["action"] == "run"} == {
        "spredixcan", "smultixcan", "gene_corr", "plier", "gls"}  # --until gls
    ref = load_config(cfg_path).out
    for f in ("gls/gls.parquet",):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results" / f),
                                      pd.read_parquet(ref / f), rtol=1e-12, atol=1e-14)
    for sub in ("smultixcan/trait_0001/trait_0001-smultixcan.txt",
                "spredixcan/trait_0001/Adrenal_Gland.csv"):
        a = pd.read_csv(tmp_path / "results" / sub, sep=None, engine="python")
        b = pd.read_csv(ref / sub, sep=None, engine="python")
        pd.testing.assert_frame_equal(a, b, rtol=1e-12, atol=1e-14)


def test_gls_trait_chunks_pool_to_the_single_call(example):
    """The GLS stage's per-chunk checkpoints give the one-call table (rows, values, FDR)."""
    from gpu_engine.gls import associate, read_smultixcan
    from gpu_engine.gls.association import pool_results
    from gpu_engine.lvmodel import load_lv_model
    from gpu_engine.twas.gene_corr import read_gene_corr

    cfg_path, _ = example
    out = load_config(cfg_path).out
    Z = load_lv_model(out / "plier" / "model").Z
    P = read_smultixcan(cfg_path.parent / "world" / "smultixcan").pvalue.iloc[:, :25]
    R = read_gene_corr(out / "gene_corr" / "gene_corr")
    whole = pd.DataFrame(associate(Z, P, R))
    traits = list(P.columns)
    parts = [pd.DataFrame(associate(Z, P[traits[k:k + 7]], R)) for k in range(0, 25, 7)]
    pooled = pd.DataFrame(pool_results(parts[::-1], traits))  # any order of the chunks
    pd.testing.assert_frame_equal(pooled.astype({"lv": str, "trait": str}),
                                  whole.astype({"lv": str, "trait": str}), rtol=1e-12)


def test_cli_example_until(tmp_path):
    res = CliRunner().invoke(cli, ["--backend", "cpu", "run", "--example", "small", "--dir",
                                   str(tmp_path / "ex"), "--until", "spredixcan"])
    assert res.exit_code == 0, res.output
    assert "2 stage(s) run, 0 reused, 10 skipped" in res.output
    assert (tmp_path / "ex" / "config.yaml").exists()
    assert (tmp_path / "ex" / "results" / "spredixcan" / "stage.json").exists()
    assert (tmp_path / "ex" / "results" / "report.html").exists()


def test_trained_models_feed_the_runs_twas(example, tmp_path):
    """``stages.spredixcan.trained_models: [en]`` without given models: S-PrediXcan,
    S-MultiXcan and the gene correlations run on the elastic net trained in the same run
    (the cohort's LD from the expression stage); the S-PrediXcan output equals a direct call
    on the written database, and a GWAS computed on the cohort's genotypes from two planted
    additive genes ranks those two first."""
    from gpu_engine.datasets.expr_world import ExprWorld
    from gpu_engine.twas import GwasColumns, read_covariance, read_gwas, read_model_db
    from gpu_engine.twas import spredixcan as spx

    cfg_path, _ = example
    ew = cfg_path.parent / "expr_world"
    w = ExprWorld(ew, pd.read_csv(ew / "genes.tsv", sep="\t"),
                  pd.read_parquet(ew / "truth" / "genes.parquet"))
    trait_genes = list(w.truth.loc[w.truth["architecture"] == "additive", "gene"][:2])
    (tmp_path / "gwas").mkdir()
    w.gwas(trait_genes, seed=1).to_csv(tmp_path / "gwas" / "cohort_trait.tsv.gz", sep="\t",
                                       index=False)
    cfg = tmp_path / "config.yaml"
    base = f"""out: res/
backend: cpu
inputs:
  gwas: {{folder: gwas, columns: {{beta: BETA, se: SE}}}}
  expression_models: {{genotypes: {ew}/genotypes, expression: {ew}/expression.parquet,
                       genes: {ew}/genes.tsv, tissue: Cohort}}
stages:
  spredixcan: {{trained_models: [{{kinds}}]}}
"""
    cfg.write_text(base.replace("{kinds}", "en, cnn"))
    with pytest.raises(ConfigError, match="trained_models lists cnn"):
        load_config(cfg)
    cfg.write_text(base.replace("{kinds}", "en"))
    rows = run(load_config(cfg))
    ran = {r["stage"] for r in rows if r["action"] == "run"}
    assert ran == {"expression_models", "spredixcan", "smultixcan", "gene_corr"}
    res = tmp_path / "res"
    got = pd.read_csv(res / "spredixcan" / "cohort_trait" / "Cohort.csv")
    en = res / "expression_models" / "en"
    m = read_model_db(en / "models.db")
    want, _ = spx(m, read_covariance(en / "covariance.txt.gz"),
                  read_gwas(tmp_path / "gwas" / "cohort_trait.tsv.gz",
                            GwasColumns(beta="BETA", se="SE")), backend="cpu")
    both = got.merge(want, on="gene", suffixes=("", "_direct"))
    assert len(both) == len(want) > 0
    assert (both["zscore"] - both["zscore_direct"]).abs().max() < 1e-10
    top = list(got.assign(a=got["zscore"].abs()).sort_values("a", ascending=False)["gene"][:2])
    assert set(top) == set(trait_genes)
    smx = pd.read_csv(res / "smultixcan" / "cohort_trait" / "cohort_trait-smultixcan.txt",
                      sep="\t")
    assert set(trait_genes) <= set(smx.dropna(subset=["pvalue"])["gene"])
    assert (res / "expression_models" / "ld.txt.gz").exists()


def test_inflated_lvs_are_excluded_when_asked(example, tmp_path, monkeypatch):
    """``null_calibration.exclude_inflated``: the LVs the calibration flags leave gls.parquet
    (BH FDR recomputed over the rest, the full table kept), the conditional tests and the
    later stages; the report says so. The calibration is made to flag two LVs."""
    import gpu_engine.gls as gls_mod
    from gpu_engine.stats import fdr_bh

    real = gls_mod.null_calibration

    def flagging(*a, **k):
        cal = real(*a, **k)
        cal.table["inflated"] = cal.table["lv"].astype(str).isin(["LV1", "LV2"])
        return cal

    monkeypatch.setattr(gls_mod, "null_calibration", flagging)
    cfg_path, _ = example
    text = _absolute(cfg_path).replace("null_calibration: {n_null: 200, batch: 100}",
                                       "null_calibration: {n_null: 20, batch: 10, "
                                       "exclude_inflated: true}")
    assert "exclude_inflated: true" in text
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text.replace("out: results/", f"out: {tmp_path / 'res'}/"))
    rows = run(load_config(cfg), until="lv_genes")
    out = tmp_path / "res" / "gls"
    assert _actions(rows)["gls"] == "run"
    kept = pd.read_parquet(out / "gls.parquet")
    full = pd.read_parquet(out / "gls_all_lvs.parquet")
    assert set(full["lv"].astype(str)) - set(kept["lv"].astype(str)) == {"LV1", "LV2"}
    rest = full[~full["lv"].astype(str).isin(["LV1", "LV2"])]
    assert len(kept) == len(rest)
    assert abs(kept["fdr"].to_numpy() - fdr_bh(rest["pvalue_onesided"].to_numpy())).max() < 1e-12
    cond = pd.read_parquet(out / "gls_conditional.parquet")
    assert not cond["lv"].astype(str).isin(["LV1", "LV2"]).any()
    json_counts = json.loads((out / "stage.json").read_text())["counts"]
    assert json_counts["lvs_excluded"] == 2
    core = pd.read_parquet(tmp_path / "res" / "lv_genes" / "core_genes.parquet")
    assert not core["lv"].astype(str).isin(["LV1", "LV2"]).any()
    html = (tmp_path / "res" / "report.html").read_text()
    assert 'data-check="gls.inflated" data-value="2"' in html and "<b>excluded</b>" in html
