"""``gpu-engine demo``: ``gpu-engine run --example`` plus the scoring of every stage against the
planted truth, summarised.

The stages themselves are the run's (:mod:`gpu_engine.pipeline`): the demo writes the example
(a synthetic world, a planted-regulator world and their config) into ``out``, runs it into
``out/results/``, and then scores each stage's outputs. Each scorer is ``score(ctx) -> rows``
(``stage, metric, value, target, ok``), in :data:`SCORES`. Where a check needs more than
the run wrote (S-PrediXcan of a GWAS computed from the genotype world, a knock-out, the
DEcode world's modules, ccc-coef parity), the scorer computes it from the run's outputs.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .backend import get_backend
from .datasets import World, check_world
from .io import write_table


@dataclass
class DemoContext:
    out: Path
    scale: str = "small"
    seed: int = 0
    backend: str | None = None
    progress: bool = False
    world: World | None = None
    results: Path | None = None
    timings: dict = field(default_factory=dict)


def _row(stage, metric, value, target, ok) -> dict:
    return {"stage": stage, "metric": metric, "value": float(value), "target": target,
            "ok": bool(ok)}


def stage_world(ctx: DemoContext) -> list[dict]:
    """The world's planted structure."""
    checks = check_world(ctx.world)
    return [{"stage": "world", "metric": r.check, "value": r.value, "target": r.target,
             "ok": r.ok} for r in checks.itertuples()]


def score_twas(ctx: DemoContext) -> list[dict]:
    """The run's S-MultiXcan of the trait with a GWAS: ROC AUC of −log10 p for the genes with
    planted signal; p < 0.05 among genes on chromosomes without signal. The engine's gene
    correlations against the pair-by-pair definition on 200 same-chromosome pairs."""
    from sklearn.metrics import roc_auc_score

    from .io import read_table
    from .twas import (
        gene_correlations,
        model_files,
        pairwise_reference,
        read_covariance,
        read_model_db,
    )

    w, res = ctx.world, ctx.results
    truth = w.truth("twas_genes")
    trait = str(truth["trait"].iloc[0])
    multi = pd.read_csv(res / "smultixcan" / trait / f"{trait}-smultixcan.txt", sep="\t")
    genes = read_table(w.twas_path / "genes.tsv")
    ok = multi.loc[multi["status"] == 0].merge(truth, left_on="gene", right_on="gene_id")
    auc = float(roc_auc_score(ok["causal"], -np.log10(ok["pvalue"].astype(float))))
    chrom = genes.set_index("gene")["chromosome"]
    hit = set(chrom.reindex(truth.loc[truth["causal"], "gene_id"]).astype(str))
    quiet = ~chrom.reindex(ok["gene_id"]).astype(str).isin(hit).to_numpy()
    type1 = float((ok["pvalue"].astype(float).to_numpy()[quiet] < 0.05).mean())
    # the engine's matrix against the pair-by-pair definition (the run's is this one
    # restricted to 5 Mb and repaired to positive definiteness)
    models = {t: read_model_db(f, tissue=t)
              for t, f in model_files(w.twas_path / "models", r"TW_(.*)\.db").items()}
    ld = read_covariance(w.twas_path / "ld.txt.gz")
    gc = gene_correlations(models, ld, genes=genes, repair=None, backend=ctx.backend)
    full = gc.to_frame("gene")
    rng = np.random.default_rng(0)
    by = gc.genes.groupby("chromosome")["gene"].apply(list)
    by = by[by.apply(len) > 1]
    pairs = [tuple(rng.choice(by.iloc[i], 2, replace=False))
             for i in rng.integers(0, len(by), 200)]
    ref = pairwise_reference(models, ld, pairs=pairs)
    diff = float(max(abs(full.loc[a, b] - ref.loc[a, b]) for a, b in pairs))
    return [
        _row("twas", "S-MultiXcan AUC for planted genes", auc, "≥ 0.8", auc >= 0.8),
        _row("twas", "S-MultiXcan p < 0.05 on chromosomes without signal", type1, "≤ 0.1",
             type1 <= 0.1),
        _row("twas", "gene corr vs pair-by-pair definition (max |Δ|)", diff, "≤ 1e-10",
             diff <= 1e-10),
    ]


def _plier(ctx: DemoContext):
    from .plier import PLIER

    return PLIER.load(ctx.results / "plier" / "model", backend=ctx.backend)


def _matched_lvs(ctx: DemoContext, model) -> dict:
    """Planted module → the run's LV whose loadings correlate best with it (r ≥ 0.7)."""
    Zt = ctx.world.truth("Z")
    Zf = model.Z_.loc[Zt.index]
    C = np.nan_to_num(np.corrcoef(Zt.to_numpy().T, Zf.to_numpy().T)[:Zt.shape[1],
                                                                    Zt.shape[1]:])
    return {m: Zf.columns[int(C[i].argmax())] for i, m in enumerate(Zt.columns)
            if C[i].max() >= 0.7}


def score_plier(ctx: DemoContext) -> list[dict]:
    """The run's PLIER: planted module pathways found at FDR < 0.05 (any LV); true modules
    whose loadings correlate ≥ 0.7 with some LV's."""
    model = _plier(ctx)
    modules = ctx.world.truth("modules")
    planted = set(modules.loc[modules["annotated"], "pathway"])
    found = planted & set(model.significant(0.05)["pathway"])
    matched = len(_matched_lvs(ctx, model)) / ctx.world.truth("Z").shape[1]
    recovered = len(found) / max(1, len(planted))
    return [
        _row("plier", "planted pathways recovered (FDR < 0.05)", recovered, "≥ 0.8",
             recovered >= 0.8),
        _row("plier", "true modules matched by an LV (r ≥ 0.7)", matched, "≥ 0.7",
             matched >= 0.7),
    ]


def score_gls(ctx: DemoContext) -> list[dict]:
    """The run's GLS of PLIER's LVs with every trait, each planted module read as its
    matched LV (r ≥ 0.7). Power: planted (module, trait) effects found at FDR < 0.05.
    False-discovery proportion: raw, and unexplained (an LV sharing none of its top-50 genes
    with a planted module of the trait), marginal and conditional (forward selection). Null
    type-I error among the null traits. Prioritization: per trait, the AUC of the run's
    module gene score (the lv_genes stage) for the genes of its planted modules, against the
    TWAS p alone."""
    from .lv_analysis import prioritization_auc

    w = ctx.world
    model = _plier(ctx)
    Z = model.Z_
    Zt = w.truth("Z")
    match = _matched_lvs(ctx, model)
    planted = w.truth("trait_modules")
    truth = {(match[m], t) for m, t in zip(planted["module"], planted["trait"]) if m in match}
    n_planted = len(planted)
    top = {c: set(Z[c].nlargest(50).index) for c in Z.columns}
    top_t = {c: set(Zt[c].nlargest(50).index) for c in Zt.columns}
    causal = planted.groupby("trait")["module"].apply(set).to_dict()
    traits = w.truth("traits")
    nulls = set(traits.loc[traits["is_null"], "trait"])

    def score(table):
        lv, tr = table["lv"].astype(str).to_numpy(), table["trait"].astype(str).to_numpy()
        is_true = np.array([(a, b) in truth for a, b in zip(lv, tr)])
        found = (table["fdr"] < 0.05).to_numpy()
        related = np.array([any(top[a] & top_t[m] for m in causal.get(b, ()))
                            for a, b in zip(lv, tr)])
        n_found = max(1, int(found.sum()))
        null = np.isin(tr, list(nulls))
        return (float((found & is_true).sum() / max(1, n_planted)),
                float((found & ~is_true).sum() / n_found),
                float((found & ~is_true & ~related).sum() / n_found),
                float((table["pvalue_onesided"].to_numpy()[null] < 0.05).mean()))

    res = pd.read_parquet(ctx.results / "gls" / "gls.parquet")
    power, fdp, fdp_unexplained, type1 = score(res)
    rows = [
        _row("gls", "power (FDR < 0.05)", power, "≥ 0.8", power >= 0.8),
        _row("gls", "false-discovery proportion", fdp, "≤ 0.35 (overlapping modules)",
             fdp <= 0.35),
        _row("gls", "unexplained false discoveries", fdp_unexplained, "≤ 0.1",
             fdp_unexplained <= 0.1),
        _row("gls", "null type-I error at 0.05", type1, "0.02–0.09", 0.02 <= type1 <= 0.09),
    ]
    cond_path = ctx.results / "gls" / "gls_conditional.parquet"
    if cond_path.exists():
        c_power, c_fdp, c_unexplained, c_type1 = score(pd.read_parquet(cond_path))
        rows += [
            _row("gls", "conditional: false-discovery proportion", c_fdp,
                 f"< marginal ({fdp:.3f})", c_fdp < fdp),
            _row("gls", "conditional: unexplained false discoveries", c_unexplained,
                 "≤ 0.1", c_unexplained <= 0.1),
            _row("gls", "conditional: power (FDR < 0.05)", c_power,
                 f"≥ marginal − 0.05 ({power - 0.05:.3f})", c_power >= power - 0.05),
            _row("gls", "conditional: null type-I error at 0.05", c_type1, "0.02–0.09",
                 0.02 <= c_type1 <= 0.09),
        ]
    gs = pd.read_parquet(ctx.results / "lv_genes" / "gene_scores.parquet")
    members = {m: Zt[m].reindex(Z.index).fillna(0).to_numpy() > 0 for m in Zt.columns}
    auc_mod, auc_twas = [], []
    for trait, blk in gs.groupby("trait", sort=False):
        if trait not in causal:
            continue
        zpos = Z.index.get_indexer(blk["gene"])
        is_causal = np.any([members[m][zpos] for m in causal[trait]], axis=0)
        auc_mod.append(prioritization_auc(blk["score"].to_numpy(), is_causal))
        auc_twas.append(prioritization_auc(-np.log10(blk["twas_pvalue"].to_numpy()), is_causal))
    auc_mod, auc_twas = float(np.nanmean(auc_mod)), float(np.nanmean(auc_twas))
    rows += [
        _row("gls", "prioritization AUC, module gene score", auc_mod,
             f"> TWAS p alone ({auc_twas:.3f})", auc_mod > auc_twas),
        _row("gls", "prioritization AUC, TWAS p alone", auc_twas, "(baseline)", True),
    ]
    return rows


def score_cluster(ctx: DemoContext) -> list[dict]:
    """The run's clusters of the traits with an LV at FDR < 0.05: ARI with the planted trait
    clusters (over the clustered traits that are not null); the share of clusters whose
    first decision stump is an LV matched to one of the cluster's planted causal modules."""
    from sklearn.metrics import adjusted_rand_score

    w = ctx.world
    lab = pd.read_parquet(ctx.results / "cluster" / "labels.parquet").set_index("trait")
    traits = w.truth("traits").set_index("trait")
    active = traits.loc[~traits["is_null"]]
    common = lab.index.intersection(active.index)
    ari = float(adjusted_rand_score(active.loc[common, "cluster"], lab.loc[common, "cluster"]))
    covered = len(common) / len(active)
    match = _matched_lvs(ctx, _plier(ctx))
    planted = w.truth("clusters").groupby("cluster")["module"].apply(
        lambda s: {match[m] for m in s if m in match}).to_dict()
    stumps = pd.read_parquet(ctx.results / "cluster" / "stumps.parquet")
    hits, n = 0, 0
    for c, g in stumps.groupby("cluster"):
        members = lab.index[lab["cluster"] == c].intersection(active.index)
        if len(members) == 0:
            continue
        best = active.loc[members, "cluster"].value_counts().idxmax()
        n += 1
        hits += g.sort_values("rank")["feature"].iloc[0] in planted.get(best, set())
    share = hits / n if n else 0.0
    return [
        _row("cluster", "ARI of the selected consensus with planted clusters", ari, "≥ 0.8",
             ari >= 0.8),
        _row("cluster", "non-null traits clustered (an LV at FDR < 0.05)", covered, "≥ 0.9",
             covered >= 0.9),
        _row("cluster", "clusters whose first stump is a planted causal module", share,
             "≥ 0.5", share >= 0.5),
    ]


def score_enrich(ctx: DemoContext) -> list[dict]:
    """The run's lv_enrich stage against the example's planted answers
    (:func:`~gpu_engine.pipeline.example.write_enrichment_inputs`): each planted gene set
    (part of one module's genes) is most enriched, at FDR < 0.05, in the LV matched to its
    module; each planted tissue is the top context of that LV at FDR < 0.05; the random
    attribute (``batch``) has no LV × value at FDR < 0.05."""
    from .pipeline.example import ENRICH_MODULES

    res = ctx.results / "lv_enrich"
    gs = pd.read_parquet(res / "gene_sets.parquet")
    cx = pd.read_parquet(res / "contexts.parquet")
    match = _matched_lvs(ctx, _plier(ctx))
    modules = list(ctx.world.truth("Z").columns[:ENRICH_MODULES])
    set_ok = ctx_ok = 0
    for m in modules:
        lv = match.get(m)
        best = gs[gs["gene_set"] == f"planted_{m}"].sort_values("pvalue").iloc[0]
        set_ok += bool(lv is not None and best["lv"] == lv and best["fdr"] < 0.05)
        rows = cx[cx["lv"] == lv].sort_values("pvalue") if lv is not None else cx.iloc[:0]
        ctx_ok += bool(len(rows) and rows.iloc[0]["value"] == f"tissue_{m}"
                       and rows.iloc[0]["fdr"] < 0.05)
    batch = int((cx.loc[cx["attribute"] == "batch", "fdr"] < 0.05).sum())
    n = len(modules)
    return [
        _row("enrich", "planted gene sets whose top LV is their module's (FDR < 0.05)",
             set_ok / n, "1.0", set_ok == n),
        _row("enrich", "planted tissues that are their module LV's top context", ctx_ok / n,
             "1.0", ctx_ok == n),
        _row("enrich", "random attribute (batch): LV × values at FDR < 0.05", batch, "0",
             batch == 0),
    ]


def score_drugs(ctx: DemoContext) -> list[dict]:
    """The run's drug–disease scores in gene space (top-k all, 50, 100, 250 genes) and module
    space (PLIER's model): ROC AUC and average precision on the planted gold standard, each
    against its label-permutation baseline."""
    rows = []
    for space in ("gene", "module"):
        ev = ctx.results / "drugs" / space / "evaluation"
        f = json.loads((ev / "result.json").read_text())["fields"]
        null_auc = float(pd.read_parquet(ev / "null_auc.parquet").iloc[:, 0].mean())
        null_ap = float(pd.read_parquet(ev / "null_ap.parquet").iloc[:, 0].mean())
        rows += [
            _row("drugs", f"{space}-based ROC AUC on the gold standard (null {null_auc:.2f})",
                 f["auc"], "≥ 0.7", f["auc"] >= 0.7),
            _row("drugs", f"{space}-based average precision (null {null_ap:.2f})", f["ap"],
                 "> null + 0.1", f["ap"] > null_ap + 0.1),
        ]
    return rows


def score_decode(ctx: DemoContext) -> list[dict]:
    """The run's DEcode on the planted-regulator world: test Spearman, the 8 planted drivers
    among the top 8 by DeepLIFT, no decoy in the top 10, and — computed here from the run's
    model — the co-expressed pair's knock-out finding a driver first, and each module's two
    planted regulators ranked first when that world's LV loadings are the targets. One
    skipped row without torch."""
    d = ctx.results / "decode"
    if not (d / "stage.json").exists():
        return [_row("decode", "DEcode (needs torch: pip install 'gpu-engine[dl]')",
                     float("nan"), "skipped", True)]
    from .decode.explain import explain_modules
    from .decode.features import BindingMaps
    from .decode.model import DEcode

    dw = ctx.out / "decode_world"
    info = json.loads((dw / "truth" / "world.json").read_text())
    counts = json.loads((d / "stage.json").read_text())["counts"]
    imp = pd.read_parquet(d / "attribution" / "importance.parquet")
    top8 = len(set(imp["regulator"].head(8)) & set(info["drivers"]))
    decoys = len(set(imp["regulator"].head(10)) & set(info["decoys"]))
    maps = BindingMaps.read(dw / "binding")
    m = DEcode.load(d / "model")
    first = m.knockout(maps, info["pair"]["genes"], n=2000).coefficients["regulator"].iloc[0]
    Z = pd.read_parquet(dw / "modules" / "Z.parquet").set_index("gene")
    ex = explain_modules(maps, Z, pd.read_parquet(dw / "splits.parquet"), permutations=0,
                         restarts=1, epochs=30, patience=10, batch_size=32,
                         random_state=ctx.seed, device="cpu")
    mods = sum(set(ex.top(lv, 2)["regulator"]) == set(regs)
               for lv, regs in info["modules"].items())
    rho = counts["test_spearman"]
    return [
        _row("decode", "mean test Spearman of the tissue fold changes", rho, "≥ 0.3",
             rho >= 0.3),
        _row("decode", "planted drivers among the top 8 (DeepLIFT)", top8, "≥ 6 of 8",
             top8 >= 6),
        _row("decode", "decoys among the top 10", decoys, "0", decoys == 0),
        _row("decode", f"KO of the co-expressed pair: first is a driver ({first})",
             first in info["pair"]["drivers"], "1", first in info["pair"]["drivers"]),
        _row("decode", "modules whose 2 planted regulators rank first", mods,
             f"{len(info['modules'])}", mods == len(info["modules"])),
    ]


def score_ccc(ctx: DemoContext) -> list[dict]:
    """The run's CCC among the LVs' top 15 genes: the ROC AUC of CCC for pairs that share an
    LV against pairs that do not (PLIER's LVs match the planted modules, so these are the
    planted co-expression); 30 of those genes checked bit for bit against ccc-coef when it
    is installed."""
    from sklearn.metrics import roc_auc_score

    from .ccc import ccc

    t = pd.read_parquet(ctx.results / "ccc" / "pairs.parquet")
    auc = float(roc_auc_score(t["shared_lvs"] > 0, t["ccc"]))
    rows = [_row("ccc", "CCC AUC for pairs sharing an LV's top genes", auc, "≥ 0.8",
                 auc >= 0.8)]
    try:
        from ccc.coef import ccc as reference
    except ImportError:
        return rows
    genes = list(dict.fromkeys(t["gene_a"]))[:30]
    sub = ctx.world.expression().loc[genes].to_numpy()
    equal = bool(np.array_equal(ccc(sub), reference(sub), equal_nan=True))
    rows.append(_row("ccc", "equal to ccc-coef (30 genes, bit for bit)", equal, "1", equal))
    return rows


def score_expression(ctx: DemoContext) -> list[dict]:
    """The run's expression models (TWAS stage 1) on the genotype world: the elastic-net
    criteria of the spec (additive genes pass the filter, epistatic genes r < 0.1), and the
    ranks of two planted trait genes when a GWAS computed from the same genotypes (a trait
    driven by two additive genes) goes through S-PrediXcan with the run's databases — the
    elastic net's and, with torch, the CNN's (with its median R²_lin)."""
    from .datasets.expr_world import ExprWorld
    from .twas import read_covariance, read_model_db, spredixcan

    ew = ctx.out / "expr_world"
    genes = pd.read_csv(ew / "genes.tsv", sep="\t")
    w = ExprWorld(ew, genes, pd.read_parquet(ew / "truth" / "genes.parquet"))
    res = ctx.results / "expression_models"
    s = pd.read_parquet(res / "en" / "summary.parquet").merge(w.truth, on="gene")
    add = s.loc[s["architecture"] == "additive"]
    epi = s.loc[s["architecture"] == "epistasis"]
    trait_genes = list(add.sort_values("rho_avg", ascending=False)["gene"][:2])
    g = w.gwas(trait_genes, seed=ctx.seed)
    gwas = pd.DataFrame({"snp": g["SNP"], "zscore": g["ZSCORE"], "beta": g["BETA"]})

    def ranks(folder):
        m = read_model_db(folder / "models.db")
        r, _ = spredixcan(m, read_covariance(folder / "covariance.txt.gz", genes=m.genes),
                          gwas, harmonized=True, backend=ctx.backend)
        order = list(r.assign(a=r["zscore"].abs()).sort_values("a", ascending=False)["gene"])
        return [order.index(g) + 1 if g in order else len(genes) for g in trait_genes]

    r_en = ranks(res / "en")
    rows = [
        _row("expression", "EN: additive genes passing the filter", add["significant"].mean(),
             "≥ 0.95", add["significant"].mean() >= 0.95),
        _row("expression", "EN: mean nested-CV r of epistatic genes", epi["rho_avg"].mean(),
             "< 0.1", epi["rho_avg"].mean() < 0.1),
        _row("expression", "EN → S-PrediXcan: worst rank of the 2 trait genes", max(r_en),
             "≤ 2", max(r_en) <= 2),
    ]
    if not (res / "cnn").exists():
        rows.append(_row("expression", "CNN (needs torch: pip install 'gpu-engine[dl]')",
                         float("nan"), "skipped", True))
        return rows
    r_cnn = ranks(res / "cnn")
    lin = pd.read_parquet(res / "cnn" / "projection.parquet").merge(w.truth, on="gene")
    r2_add = float(lin.loc[lin["architecture"] == "additive", "linear_r2"].median())
    rows += [
        _row("expression", "CNN → S-PrediXcan: worst rank of the 2 trait genes", max(r_cnn),
             "≤ 3", max(r_cnn) <= 3),
        _row("expression", "CNN projection: median R²_lin of additive genes", r2_add, "≥ 0.8",
             r2_add >= 0.8),
    ]
    return rows


SCORES: list[tuple[str, Callable[[DemoContext], list[dict]]]] = [
    ("world", stage_world),
    ("twas", score_twas),
    ("plier", score_plier),
    ("gls", score_gls),
    ("cluster", score_cluster),
    ("drugs", score_drugs),
    ("enrich", score_enrich),
    ("ccc", score_ccc),
    ("expression", score_expression),
    ("decode", score_decode),
]


def run_demo(out: str | Path = "gpu_engine_demo", *, scale: str = "small", seed: int = 0,
             backend: str | None = None, progress: bool = False,
             on_stage: Callable[[str, float], None] | None = None,
             on_start: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Write the example into ``out``, run it (``out/results/``, with its report), score it;
    returns (and writes ``out/summary.tsv``) the summary. ``on_start(name)`` and
    ``on_stage(name, seconds)`` are called around each run stage and each scoring."""
    from .pipeline import load_config
    from .pipeline import run as run_pipeline
    from .pipeline.example import write_example

    be = get_backend(backend)
    ctx = DemoContext(out=Path(out), scale=scale, seed=seed, backend=be.name,
                      progress=progress)
    ctx.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if on_start:
        on_start("example world")
    cfg_path = write_example(ctx.out, scale=scale, seed=seed, backend=be.name,
                             overwrite=True)
    if on_stage:
        on_stage("example world", time.perf_counter() - t0)
    cfg = load_config(cfg_path)
    shutil.rmtree(cfg.out, ignore_errors=True)  # a demo runs every stage
    ctx.world, ctx.results = World(ctx.out / "world"), cfg.out

    def event(kind, item, row):
        if kind == "start" and on_start:
            on_start(f"run: {item.name}")
        elif kind == "done":
            ctx.timings[f"run: {item.name}"] = row["seconds"]
            if on_stage:
                on_stage(f"run: {item.name}", row["seconds"])

    run_pipeline(cfg, progress=progress, on_event=event)
    rows = []
    for name, score in SCORES:
        if on_start:
            on_start(f"score: {name}")
        t0 = time.perf_counter()
        rows.extend(score(ctx))
        ctx.timings[f"score: {name}"] = time.perf_counter() - t0
        if on_stage:
            on_stage(f"score: {name}", ctx.timings[f"score: {name}"])
    summary = pd.DataFrame(rows, columns=["stage", "metric", "value", "target", "ok"])
    write_table(summary, ctx.out / "summary.tsv")
    with open(ctx.out / "summary.json", "w") as fh:
        json.dump({"scale": scale, "seed": seed, "backend": be.name,
                   "timings_s": ctx.timings, "all_ok": bool(summary["ok"].all()),
                   "report": str(cfg.out / "report.html")}, fh, indent=1)
    return summary
