"""``gpu-engine plier fit`` and ``gpu-engine plier project``."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CONTEXT, Obj, check_output, load_lv_model, lv_model_options
from ._common import console as _console
from ._common import progress_enabled as _progress_enabled


@click.group(context_settings=CONTEXT)
def plier() -> None:
    """PLIER gene modules: fit a model, project new data into LV space.

    \b
      gpu-engine plier fit --expr expr.parquet --prior prior.gmt --out model/
      gpu-engine plier project --model model/ --data new.parquet --out lvs.parquet
    """


@plier.command("fit", context_settings=CONTEXT)
@click.option("--expr", "expr", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Expression matrix, genes × samples (Parquet/TSV/CSV, first "
              "column the gene symbol). Raw or normalized; genes are z-scored here.")
@click.option("--prior", "prior_paths", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), required=True, multiple=True,
              help="Prior gene sets: GMT, a long gene,pathway table or a wide 0/1 genes × "
              "pathways matrix. Repeat to merge several priors (by exact gene symbol).")
@click.option("--k", type=click.IntRange(min=1), default=None,
              help="Number of LVs. Default: the elbow rule (current mode 2·num_pc capped at "
              "0.9·samples; multiplier mode num_pc).")
@click.option("--mode", type=click.Choice(["current", "multiplier"]), default="current",
              show_default=True, help="Reference semantics: today's R package, or the 2018 "
              "version that trained the MultiPLIER model PhenoPLIER uses.")
@click.option("--L1", "L1", type=click.FloatRange(min=0), default=None, help="Default: L2/2.")
@click.option("--L2", "L2", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Default: the k-th singular value.")
@click.option("--L3", "L3", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Default: re-tuned every 20 iterations so that --frac of the LVs use a "
              "pathway.")
@click.option("--frac", type=click.FloatRange(min=0, max=1, min_open=True), default=0.7, show_default=True)
@click.option("--max-iter", type=click.IntRange(min=1), default=350, show_default=True)
@click.option("--max-path", type=click.IntRange(min=1), default=10, show_default=True,
              help="Candidate pathways per LV in the U step.")
@click.option("--min-genes", type=click.IntRange(min=0), default=10, show_default=True,
              help="Pathways with fewer genes in the data are zeroed.")
@click.option("--heldout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Table with columns pathway,gene fixing the "
              "cross-validation genes (e.g. a reference run's heldOutGenes.parquet).")
@click.option("--seed", type=int, default=123456, show_default=True,
              help="Seed of the cross-validation hold-out.")
@click.option("--drop-constant-genes", is_flag=True,
              help="Drop zero-variance genes instead of stopping with an error.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: Z, B, U, Uauc, Up, summary (Parquet), model.json, "
              "trace.parquet and U_heatmap.png.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@click.pass_obj
def plier_fit(obj: Obj, expr: Path, prior_paths: tuple[Path, ...], k, mode, L1, L2, L3, frac,
              max_iter, max_path, min_genes, heldout, seed, drop_constant_genes, out: Path,
              overwrite: bool) -> None:
    """Fit PLIER on an expression matrix and prior gene sets.

    Prints k, L1/L2/L3, iterations and why the fit stopped, and the LVs with a pathway at
    FDR < 0.05; writes the model folder (readable by PLIER.load and `plier project`) and a
    heatmap of U's significant entries.

    \b
    Example:
      gpu-engine plier fit --expr blood.parquet --prior cells.gmt --prior canonical.gmt \\
          --out blood_model/
    """
    from ..io import read_matrix, read_table
    from ..plier import PLIER, merge_priors, read_prior
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    con = _console()
    Y = read_matrix(expr, what="expression matrix")
    prior = merge_priors(*(read_prior(p) for p in prior_paths))
    held = read_table(heldout, what="held-out genes") if heldout else None
    model = PLIER(k=k, mode=mode, L1=L1, L2=L2, L3=L3, frac=frac, max_iter=max_iter,
                  max_path=max_path, min_genes=min_genes, heldout=held, seed=seed,
                  trace=True, drop_constant_genes=drop_constant_genes,
                  backend=obj.backend, progress=_progress_enabled())
    model.fit(Y, prior)
    model.save(out, overwrite=overwrite)
    _fit_summary(con, model, out)


def _fit_summary(con, m, out: Path) -> None:
    from rich.table import Table

    r = m.report_
    con.print(f"[bold]PLIER[/bold] ({m.mode} mode): {r['common_genes']:,} genes "
              f"(data {r['data_genes']:,}, prior {r['prior_genes']:,}) × {r['samples']:,} "
              f"samples, {r['pathways']:,} pathways ({r['small_pathways_zeroed']:,} below "
              f"min_genes zeroed) in {r['seconds']:.1f} s on {r['backend']}")
    con.print(f"k = {m.k_}, L1 = {m.L1_:.6g}, L2 = {m.L2_:.6g}, L3 = {m.L3_:.6g}; "
              f"{m.n_iter_} iterations, stopped: {m.stop_reason_.replace('_', ' ')}")
    sig = m.significant(0.05)
    lvs = sig["lv"].nunique()
    con.print(f"{lvs} of {m.k_} LVs have a pathway at FDR < 0.05 ({len(sig)} LV–pathway pairs)")
    if len(sig):
        table = Table("LV", "top pathway", "AUC", "FDR")
        best = sig.sort_values("fdr").groupby("lv", sort=True).head(1).sort_values("lv")
        for row in best.head(20).itertuples():
            table.add_row(str(row.lv), str(row.pathway), f"{row.auc:.3f}", f"{row.fdr:.2e}")
        con.print(table)
    con.print(f"wrote {out}/ (Z, B, U, summary, model.json, U_heatmap.png)")


@plier.command("project", context_settings=CONTEXT)
@lv_model_options(help="The model: a PLIER model folder (`plier fit`), an LV model folder, or "
                  "an external model's genes × LVs Z matrix (e.g. the MultiPLIER recount2 Z) "
                  "with --lv-l2. (--model and --z are older names of this option.)")
@click.option("--model", "model_dir", type=click.Path(exists=True, path_type=Path),
              default=None, hidden=True)
@click.option("--z", "z_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, hidden=True)
@click.option("--l2", "l2", type=click.FloatRange(min=0), default=None, hidden=True,
              help="Older name of --lv-l2.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Data to project: genes × columns (samples, traits, drugs).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output LVs × columns matrix (.parquet, .tsv or .csv).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.pass_obj
def plier_project(obj: Obj, lv_model, lv_l2, model_dir, z_path, l2, data: Path,
                  out: Path, overwrite: bool) -> None:
    """Project new data into LV space (MultiPLIER's GetNewDataB).

    Each gene is z-scored across the new data's own columns, so project all columns in
    one call. Model genes missing from the data count as 0 (reported).

    \b
    Examples:
      gpu-engine plier project --lv-model blood_model/ --data new.parquet --out lvs.parquet
      gpu-engine plier project --lv-model recount2_Z.parquet --lv-l2 241.13217 \\
          --data traits.parquet --out traits_lv.parquet
    """
    from ..io import read_matrix, write_table

    given = [p for p in (lv_model, model_dir, z_path) if p is not None]
    if len(given) != 1:
        raise click.UsageError("give the model once, with --lv-model")
    if lv_l2 is not None and l2 is not None and lv_l2 != l2:
        raise click.UsageError("--lv-l2 and --l2 disagree; give one")
    check_output(out, overwrite=overwrite, what="--out", table=True)
    con = _console()
    lv = load_lv_model(given[0], lv_l2 if lv_l2 is not None else l2, obj)
    Y = read_matrix(data, what="data to project")
    B = lv.transform(Y)
    write_table(B.rename_axis("lv").reset_index(), out)
    r = lv.report_
    con.print(f"projected {B.shape[1]:,} columns onto {B.shape[0]:,} LVs; model genes "
              f"{r['model_genes']:,}, found in the data {r['used_genes']:,} (missing, set to 0: "
              f"{r['missing_genes']:,}; constant: {r['constant_genes']:,}); wrote {out}")
