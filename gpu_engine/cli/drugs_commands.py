"""``gpu-engine drugs score|evaluate``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ._common import (
    CONTEXT,
    Obj,
    check_output,
    dask_client,
    load_lv_model,
    lv_model_options,
    scheduler_option,
)
from ._common import backend as _backend
from ._common import console as _console
from ._common import progress_enabled as _progress_enabled


def _top_k(value: str | None):
    """``--top-k``: 'all' or positive integers, comma-separated; checked at parse time."""
    if not value:
        return None
    out = []
    for item in value.split(","):
        item = item.strip()
        if item == "all":
            out.append("all")
        elif item.isdigit() and int(item) > 0:
            out.append(int(item))
        else:
            raise click.BadParameter(f"{item!r} is not 'all' or a positive integer "
                                     "(e.g. --top-k all,50,100)", param_hint="--top-k")
    return tuple(out)


@click.group(context_settings=CONTEXT)
def drugs() -> None:
    """Drug repurposing: drug signatures vs trait signatures, in gene or module space.

    \b
      gpu-engine drugs score --signatures lincs.parquet --twas-z spredixcan/ \\
          --trait-disease trait_disease.tsv --out gene_scores/
      gpu-engine drugs score --space module --lv-model plier_model/ --signatures lincs.parquet \\
          --twas-z spredixcan/ --trait-disease trait_disease.tsv --out module_scores/
      gpu-engine drugs evaluate --scores gene=gene_scores/ --scores module=module_scores/ \\
          --gold gold_standard.tsv --out evaluation/
    """


@drugs.command("score", context_settings=CONTEXT)
@click.option("--signatures", type=click.Path(exists=True, path_type=Path), required=True,
              help="Drug signatures, genes × drugs (Parquet/TSV/CSV, first column the genes), "
              "e.g. LINCS L1000 consensus signatures. With --space module and no --lv-model: "
              "already projected, LVs × drugs.")
@click.option("--twas-z", type=click.Path(exists=True, path_type=Path), required=True,
              help="Signed TWAS z per tissue: a folder with one genes × traits matrix per "
              "tissue (file or matrix folder, named after the tissue), one matrix file, or, "
              "with --spredixcan-pattern, a folder of S-PrediXcan CSVs.")
@click.option("--spredixcan-pattern", default=None,
              help="File names of S-PrediXcan outputs in --twas-z, e.g. "
              "'{trait}-gtex_v8-mashr-{tissue}.csv'.")
@click.option("--gene-column", default="gene_name", show_default=True,
              help="Gene column of the S-PrediXcan CSVs (gene_name: symbols, gene: Ensembl).")
@click.option("--space", type=click.Choice(["gene", "module"]), default="gene",
              show_default=True)
@lv_model_options(required=False, help="Module space: the gene-module model (a PLIER model "
                  "folder, an LV model folder, or a genes × LVs Z matrix with --lv-l2); "
                  "signatures and z are projected with it (per tissue). Without it, module "
                  "space takes signatures and z already projected.")
@click.option("--projected", is_flag=True,
              help="Module space without --lv-model: the signatures and the z are already "
              "projected (LVs × drugs, LVs × traits per tissue).")
@click.option("--top-k", default=None, callback=lambda ctx, param, v: _top_k(v),
              help="Comma-separated k values ('all' or integers). Default: all,50,100,250,500 "
              "(gene) or all,5,10,25,50 (module).")
@click.option("--tissues", default=None, help="Comma-separated subset of tissues.")
@click.option("--trait-disease", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Table with columns trait, disease: scores per disease are "
              "the maximum over its traits.")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Top predictions listed (module space: with their top 5 LVs).")
@click.option("--batch-traits", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Traits per piece (memory: top-k × batch × drugs floats; Dask task size).")
@scheduler_option("(tissue, trait batch) pieces")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: drug_trait.parquet, best_tissue.parquet, drug_disease.parquet, "
              "disease_trait.parquet, top_predictions.tsv, report.json.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.pass_obj
def score_cmd(obj: Obj, signatures, twas_z, spredixcan_pattern, gene_column, space, lv_model,
              lv_l2, projected,
              top_k, tissues, trait_disease, top, batch_traits, scheduler, out,
              overwrite) -> None:
    """Score every drug against every trait and disease.

    Per tissue and k: −(drug signature)ᵀ(trait's signed z, top-k genes by |z|); the scores
    become ranks of the drugs within each trait, averaged over k, maximum over tissues; a
    disease takes the maximum over its traits. Higher = stronger predicted reversal.

    \b
    Examples:
      gpu-engine drugs score --signatures lincs.parquet --twas-z spredixcan_by_tissue/ \\
          --trait-disease trait_disease.tsv --out gene_scores/
      gpu-engine drugs score --signatures lincs.parquet --twas-z results/ \\
          --spredixcan-pattern '{trait}-gtex_v8-mashr-{tissue}.csv' --out gene_scores/
      gpu-engine drugs score --space module --lv-model plier_model/ \\
          --signatures lincs.parquet --twas-z spredixcan_by_tissue/ --out module_scores/
    """
    from ..drugs import score, top_predictions
    from ..drugs.inputs import spredixcan_files, tissue_matrices
    from ..io import read_matrix, read_table, run_metadata

    if lv_model is not None and space != "module":
        raise click.UsageError("--lv-model is for --space module")
    if space == "module" and lv_model is None and not projected:
        raise click.UsageError("--space module needs --lv-model to project the gene-level "
                               "signatures and z, or --projected when they are already LVs")
    if projected and (space != "module" or lv_model is not None):
        raise click.UsageError("--projected is for --space module without --lv-model")
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    con = _console()
    t0 = time.perf_counter()
    be = _backend(obj)
    D = read_matrix(signatures, allow_nan=True, what="drug signatures")
    Z = (spredixcan_files(twas_z, spredixcan_pattern, gene_column=gene_column)
         if spredixcan_pattern else tissue_matrices(twas_z))
    model = load_lv_model(lv_model, lv_l2, obj) if lv_model is not None else None
    ks = top_k
    td = read_table(trait_disease, what="trait → disease map") if trait_disease else None
    with dask_client(scheduler) as client:
        s = score(D, Z, space=space, lv_model=model, top_k=ks,
                  tissues=tissues.split(",") if tissues else None, trait_disease=td,
                  backend=be, client=client, batch_traits=batch_traits,
                  progress=_progress_enabled())
    s.top = best = top_predictions(s, Z, n=top, lv_model=model)
    inputs = [signatures] + ([lv_model] if lv_model is not None else [])
    s.save(out, overwrite=overwrite, metadata=run_metadata(
        backend=be, command="drugs score", inputs=inputs,
        parameters={"space": space, "top_k": [str(k) for k in s.top_k], "tissues": s.tissues,
                    "batch_traits": batch_traits}))
    con.print(f"[bold]drug scores ({space} space)[/bold]: {s.report['drugs']:,} drugs × "
              f"{s.report['traits']:,} traits × {len(s.tissues)} tissues × k = "
              f"{', '.join(map(str, s.top_k))}"
              + (f" → {s.drug_disease.shape[1]:,} diseases" if s.drug_disease is not None
                 else "") + f" in {time.perf_counter() - t0:.1f} s")
    used = [p["features_used"] for p in s.report["per_tissue"]]
    con.print(f"{'genes' if space == 'gene' else 'LVs'} used per tissue: {min(used):,}–"
              f"{max(used):,}")
    for key, v in s.report.items():
        if ("dropped" in key or "set_to_0" in key or "missing" in key or "absent" in key
                or "not_scored" in key) and v:
            con.print(f"  {key}: {v if not isinstance(v, list) else f'{len(v)} ({v[:5]})'}")
    from rich.table import Table

    t = Table(title=f"top {len(best)} predictions",
              caption="score: mean rank over k (max over tissues); equal scores ordered by "
                      "raw_score, the mean raw score −Dᵀz in the best tissue")
    for c in best.columns:
        t.add_column(str(c))
    for r in best.itertuples(index=False):
        t.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r])
    con.print(t)
    con.print(f"written to {out}/")


@drugs.command("evaluate", context_settings=CONTEXT)
@click.option("--scores", "score_dirs", multiple=True, required=True,
              help="A folder written by `drugs score` (its drug_disease.parquet), optionally "
              "named: module=dir. Repeat to compare methods in one plot.")
@click.option("--gold", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Gold standard: columns drug, disease, label (1 indication, "
              "0 non-indication), e.g. PharmacotherapyDB.")
@click.option("--permutations", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Label permutations for the baseline.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: metrics.tsv, pairs_<name>.parquet, curves.png.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def evaluate_cmd(score_dirs, gold, permutations, seed, out, overwrite) -> None:
    """ROC AUC and average precision of drug–disease predictions on a gold standard, with a
    permutation baseline, ROC and precision–recall curves.

    \b
    Example:
      gpu-engine drugs evaluate --scores gene=gene_scores/ --scores module=module_scores/ \\
          --gold pharmacotherapydb.tsv --permutations 1000 --out evaluation/
    """
    from ..drugs import Comparison, DrugScores, evaluate
    from ..errors import InputFileNotFoundError
    from ..io import read_table

    check_output(out, folder=True, overwrite=overwrite, what="--out")

    con = _console()
    evals = {}
    g = read_table(gold, what="gold standard")
    g.attrs["source"] = f"gold standard {gold}"
    for item in score_dirs:
        name, _, d = item.rpartition("=")
        d = Path(d)
        name = name or d.name
        if not (d / "result.json").is_file():
            raise InputFileNotFoundError(f"{d}: not a folder written by `drugs score` (no "
                                         "result.json); give the --out folder of that command")
        scores = DrugScores.load(d)
        if scores.drug_disease is None:
            raise InputFileNotFoundError(f"{d}: no drug–disease scores; run `drugs score` "
                                         "with --trait-disease")
        evals[name] = evaluate(scores.drug_disease, g, n_permutations=permutations, seed=seed)
    comparison = Comparison.of(evals)
    comparison.save(out, overwrite=overwrite)
    metrics = comparison.metrics
    from rich.table import Table

    t = Table(title="drug–disease prediction on the gold standard")
    for c in ("method", "pairs", "positives", "AUC", "null AUC", "p", "AP", "null AP", "p"):
        t.add_column(c)
    for r in metrics.itertuples(index=False):
        t.add_row(r.method, f"{r.pairs:,}", f"{r.positives:,}", f"{r.auc:.3f}",
                  f"{r.auc_null_mean:.3f}", f"{r.auc_pvalue:.3g}", f"{r.ap:.3f}",
                  f"{r.ap_null_mean:.3f}", f"{r.ap_pvalue:.3g}")
    con.print(t)
    for n, e in evals.items():
        dropped = e.report["dropped_drug_not_scored"] + e.report["dropped_disease_not_scored"]
        if dropped:
            con.print(f"  {n}: {dropped} gold pairs dropped (drug or disease not scored: "
                      f"{e.report['missing_drugs'][:5]} {e.report['missing_diseases'][:5]})")
    con.print(f"written to {out}/ (metrics.tsv, curves.png)")
