"""``gpu-engine decode``: DEcode — expression across tissues (or any gene-level table) from
regulator binding maps, explained by DeepLIFT and in-silico knock-outs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ._common import CONTEXT, check_output, lv_model_options, split_list
from ._common import console as _console
from ._common import progress_enabled as _progress_enabled

_BINDING = click.option("--binding", type=click.Path(exists=True, file_okay=False,
                                                     path_type=Path), required=True,
                        help="Binding-map folder (`gpu-engine decode features`, or the long "
                        "Parquet format: rna, promoter, features, genes .parquet).")
_OVERWRITE = click.option("--overwrite", is_flag=True, help="Replace an existing output.")


def _model_option(f):
    return click.option("--model", type=click.Path(exists=True, file_okay=False,
                                                   path_type=Path), required=True,
                        help="A fitted DEcode model folder (`gpu-engine decode fit`).")(f)


@click.group(context_settings=CONTEXT)
def decode() -> None:
    """DEcode (Tasaki et al. 2020): predict each gene's expression profile across tissues
    from where transcription factors bind its promoter and RNA-binding proteins / miRNAs bind
    its transcript; then ask the network which regulators drive each tissue (DeepLIFT), which
    drive the co-expression of two genes (in-silico knock-out), and which regulators' binding
    predicts membership of a gene module or a trait's gene scores.

    \b
      gpu-engine decode world --out dw/
      gpu-engine decode features --gtf genes.gtf --regulators regulators.tsv --out binding/
      gpu-engine decode fit --binding dw/binding --expression dw/expression.parquet \\
          --splits dw/splits.parquet --out model/
      gpu-engine decode predict --model model/ --binding dw/binding --out predicted.parquet
      gpu-engine decode explain --model model/ --binding dw/binding \\
          --regulator-expression dw/regulator_expression.parquet --out explained/
      gpu-engine decode explain --lv-model dw/modules/Z.parquet --lv-l2 1 \\
          --binding dw/binding --out modules/
      gpu-engine decode ko --model model/ --binding dw/binding --pair G00012,G00345 --out ko/

    Needs torch (pip install 'gpu-engine[dl]'; bioframe for `features`).
    """


# ------------------------------------------------------------------------------- world
@decode.command("world", context_settings=CONTEXT)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: binding/, expression.parquet, splits.parquet, "
              "regulator_expression.parquet, modules/Z.parquet, truth/.")
@click.option("--genes", "n_genes", type=click.IntRange(min=100), default=3000,
              show_default=True)
@click.option("--tissues", "n_tissues", type=click.IntRange(min=4), default=24,
              show_default=True, help="A multiple of --group-size.")
@click.option("--group-size", type=click.IntRange(min=2), default=6, show_default=True,
              help="Tissues per group that share regulator activities.")
@click.option("--tfs", "n_tf", type=click.IntRange(min=13), default=80, show_default=True)
@click.option("--rbps", "n_rbp", type=click.IntRange(min=13), default=40, show_default=True)
@click.option("--mirnas", "n_mirna", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--individuals", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also write a person level (persons/: TPM of tissue01 in N individuals, "
              "covariates, the regulators' expression across individuals).")
@click.option("--seed", type=int, default=0, show_default=True)
@_OVERWRITE
def world(out, n_genes, n_tissues, group_size, n_tf, n_rbp, n_mirna, individuals, seed,
          overwrite) -> None:
    """The planted-regulator world (spec decode.md §8): binding maps in the real format,
    expression across tissues driven by 8 planted regulators (plus decoys whose expression
    follows the tissues but whose binding does nothing, shadows that co-bind with drivers,
    an interaction, a co-expressed gene pair and 3 modules), with the truth in truth/."""
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    from ..datasets.decode_world import generate_decode_world
    from ..io import atomic_dir

    t0 = time.perf_counter()
    with atomic_dir(out, overwrite=overwrite) as tmp:
        generate_decode_world(tmp, n_genes=n_genes, n_tissues=n_tissues,
                              group_size=group_size, n_tf=n_tf, n_rbp=n_rbp,
                              n_mirna=n_mirna, n_individuals=individuals, seed=seed)
        info = json.loads((tmp / "truth" / "world.json").read_text())
    con = _console()
    con.print(f"world: {n_genes:,} genes × {n_tissues} tissues, {n_tf + n_rbp + n_mirna} "
              f"regulators; drivers {', '.join(info['drivers'])}; pair "
              f"{' / '.join(info['pair']['genes'])} (driven by "
              f"{' and '.join(info['pair']['drivers'])}); {time.perf_counter() - t0:.1f} s")
    con.print(f"wrote {out}/")


# ---------------------------------------------------------------------------- features
@decode.command("features", context_settings=CONTEXT)
@click.option("--gtf", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Gene annotation (GTF, plain or .gz): one representative "
              "transcript per gene is chosen (Ensembl canonical tag, else the longest).")
@click.option("--regulators", "regulators_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Table (TSV/CSV/Parquet) with columns name, type (TF | RBP | miRNA) and "
              "path (a BED file of peaks or sites; relative paths are read from the table's "
              "folder). TFs map to the promoter (±1.5 kb of the TSS), RBPs and miRNAs to the "
              "transcript's exons.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Binding-map folder (rna, promoter, features, genes .parquet).")
@_OVERWRITE
def features(gtf, regulators_path, out, overwrite) -> None:
    """Binding maps from a GTF and one BED file per regulator: for each gene, the bases of
    each 100-nt bin covered by the regulator's peaks (overlapping peaks merged; strand-aware
    for stranded peaks), channel 0 the bin's own length."""
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    from ..decode.features import build_binding_maps
    from ..io import read_table

    t0 = time.perf_counter()
    regs = read_table(regulators_path, what="regulator table")
    if "path" in regs.columns:
        base = regulators_path.parent
        regs["path"] = [str(p) if Path(p).is_absolute() else str(base / p)
                        for p in regs["path"].astype(str)]
    maps = build_binding_maps(gtf, regs, progress=_progress_enabled())
    maps.save(out, overwrite=overwrite, plots=False)
    bound = maps.bound_genes()
    con = _console()
    con.print(f"genes: {len(maps.genes):,}; regulators: {len(regs)} "
              f"({int((regs['type'] == 'TF').sum())} TF, {int((regs['type'] != 'TF').sum())} "
              f"RBP/miRNA); bound genes per regulator: median {int(bound.median()):,}, "
              f"{int((bound < 30).sum())} bound in fewer than 30 (dropped by `fit` unless "
              f"--min-genes is lowered); {time.perf_counter() - t0:.1f} s")
    con.print(f"wrote {out}/")


# --------------------------------------------------------------------------------- fit
@decode.command("fit", context_settings=CONTEXT)
@_BINDING
@click.option("--expression", "expression_path", required=True,
              type=click.Path(exists=True, path_type=Path),
              help="Targets, genes × columns (Parquet/TSV; first column the gene). With "
              "--target tissue: log2(TPM + 0.25) per tissue (or TPM with --tpm), turned into "
              "fold changes from each gene's median plus MedianExp. With --target person: TPM, "
              "genes × individuals of one tissue (filtered, log2, quantile-normalised, "
              "--covariates regressed out, fold changes from the median over individuals; use "
              "with --transfer-from). With --target columns: any gene-level table (LV "
              "loadings, a trait's gene z-scores), each column learned as is.")
@click.option("--target", type=click.Choice(["tissue", "person", "columns"]),
              default="tissue", show_default=True)
@click.option("--tpm", is_flag=True, help="--expression holds TPM, not log2(TPM + 0.25) "
              "(--target tissue; person targets are always TPM).")
@click.option("--covariates", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="--target person: samples × covariates (RIN, rRNA rate, "
              "intronic rate…), regressed out of each gene.")
@click.option("--no-median", is_flag=True, help="--target person: leave out the MedianExp "
              "output.")
@click.option("--splits", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Table gene, set (train | validation | test). Default: "
              "chromosome 1 for test, 10 %% of the rest for validation.")
@click.option("--restarts", type=click.IntRange(min=1), default=10, show_default=True,
              help="Trainings from different seeds; the lowest validation loss is kept.")
@click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--patience", type=click.IntRange(min=1), default=10, show_default=True,
              help="Early stopping: epochs without a lower validation loss.")
@click.option("--batch-size", type=click.IntRange(min=2), default=128, show_default=True)
@click.option("--min-genes", type=click.IntRange(min=0), default=30, show_default=True,
              help="Regulators bound in fewer genes are dropped (reported).")
@click.option("--padding", type=click.Choice(["fixed", "keras"]), default="fixed",
              show_default=True, help="keras: the reference's batch-dependent padding.")
@click.option("--shuffle", type=click.Choice(["none", "all", "promoter", "rna"]),
              default="none", show_default=True,
              help="Control: permute the genes' binding maps within each split before training.")
@click.option("--transfer-from", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="A fitted tissue model: its convolution trunk is frozen and "
              "only a new head is trained (person-specific models).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True)
@click.option("--device", default=None, help="torch device (default: cuda when available).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Model folder: model.json, weights.pt and weights.npz, the tables, and "
              "predicted_vs_actual.png, cross_output.png, training.png.")
@_OVERWRITE
def fit(binding, expression_path, target, tpm, covariates, no_median, splits, restarts,
        epochs, patience, batch_size, min_genes, padding, shuffle, transfer_from, seed, dtype,
        device, out, overwrite) -> None:
    """Train DEcode (spec §4): restarts with early stopping on the validation loss (the
    best epoch's weights), the lowest-validation-loss restart kept; evaluated by Spearman ρ
    per output on the test genes."""
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    from ..decode import data as D
    from ..decode.features import BindingMaps
    from ..decode.model import DEcode
    from ..io import read_matrix, read_table

    t0 = time.perf_counter()
    maps = BindingMaps.read(binding)
    E = read_matrix(expression_path, what="expression", allow_nan=True)
    if target == "tissue":
        targets = D.tissue_targets(E, tpm=tpm)
    elif target == "person":
        C = read_matrix(covariates, what="covariates") if covariates else None
        targets = D.person_targets(E, C, median=not no_median)
        rep = targets.attrs["report"]
        _console().print(f"person targets: {rep['genes_kept']:,} of {rep['genes_in']:,} genes "
                         f"with > 1 TPM in ≥ 50 % of {rep['samples']} samples"
                         + (f"; {C.shape[1]} covariates regressed out" if C is not None else ""))
    else:
        targets = E
    if splits is not None:
        split = read_table(splits, what="splits")
    else:
        split = D.chromosome_split(maps.genes, seed=seed)
    base = DEcode.load(transfer_from) if transfer_from else None
    model = DEcode(target="columns" if target == "columns" else "tissue",
                   min_genes=min_genes, padding=padding, epochs=epochs,
                   patience=patience, restarts=restarts, batch_size=batch_size,
                   shuffle=shuffle, random_state=seed, dtype=dtype, device=device,
                   progress=_progress_enabled())
    model.fit(maps, targets, split, transfer_from=base)
    _save_model(model, maps, targets, out, overwrite)
    _fit_summary(model, time.perf_counter() - t0, out)


def _save_model(model, maps, targets, out: Path, overwrite: bool) -> None:
    from ..decode.plots import plot_cross_output, plot_predicted_vs_actual, plot_training
    from ..io import atomic_dir

    test = model.split_.loc[model.split_["set"] == "test", "gene"].tolist()
    with atomic_dir(out, overwrite=overwrite) as tmp:
        model.save(tmp, overwrite=True)  # into the new folder, which is renamed when done
        plot_predicted_vs_actual(model.predict(maps, test), targets.loc[test, model.outputs_],
                                 tmp / "predicted_vs_actual.png")
        if len(model._fold_change_outputs()) >= 2:
            plot_cross_output(model.cross_output_matrix(maps, targets),
                              tmp / "cross_output.png")
        plot_training(model.history_, model.best_run_, tmp / "training.png")


def _fit_summary(model, seconds: float, out: Path) -> None:
    r = model.report_
    con = _console()
    drops = {k.removeprefix("dropped_"): v for k, v in r.items()
             if k.startswith("dropped_") and v}
    con.print(f"genes: train {r['genes']['train']:,}, validation {r['genes']['validation']:,}, "
              f"test {r['genes']['test']:,}; dropped {drops or 'none'}"
              + (f" (e.g. no maps: {r['examples_no_binding_maps']})"
                 if r.get("dropped_no_binding_maps") else ""))
    eg = ", ".join(r["examples_dropped_regulators"][:5])
    con.print(f"regulators: {r['regulators_kept']} kept, {r['dropped_regulators']} dropped "
              f"(bound in too few genes{': e.g. ' + eg if eg else ''}); "
              f"{r['n_parameters']:,} parameters")
    best = model.runs_.loc[model.best_run_]
    ev = model.evaluation_.set_index("output")
    mean = ev.loc["mean_fold_change", "spearman"] if "mean_fold_change" in ev.index else \
        ev["spearman"].mean()
    con.print(f"restart {model.best_run_} kept (best epoch {int(best['best_epoch'])}, "
              f"validation loss {best['best_val_loss']:.4f}); test Spearman: mean "
              f"{mean:.3f}" + (f", MedianExp {ev.loc['MedianExp', 'spearman']:.3f}"
                               if "MedianExp" in ev.index else "")
              + f"; {seconds:.1f} s")
    con.print(f"wrote {out}/")


# ----------------------------------------------------------------------------- predict
@decode.command("predict", context_settings=CONTEXT)
@_model_option
@_BINDING
@click.option("--genes", default=None, help="Comma-separated genes (default: every gene of "
              "the maps).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Table genes × outputs in the targets' units (Parquet/TSV/CSV).")
@_OVERWRITE
def predict(model, binding, genes, out, overwrite) -> None:
    """Predicted profiles (fold changes and MedianExp, or the table's columns)."""
    check_output(out, overwrite=overwrite, what="--out", table=True)
    from ..decode.features import BindingMaps
    from ..decode.model import DEcode
    from ..io import write_table

    m = DEcode.load(model)
    maps = BindingMaps.read(binding)
    want = split_list(genes) or None
    _check_genes(maps, want)
    pred = m.predict(maps, want)
    write_table(pred.reset_index(), out)
    _console().print(f"predicted {len(pred):,} genes × {pred.shape[1]} outputs; wrote {out}")


def _check_genes(maps, genes) -> None:
    from ..errors import InputError

    if genes:
        known = set(maps.genes["gene"])
        missing = [g for g in genes if g not in known]
        if missing:
            raise InputError(f"gene {missing[0]!r} has no binding maps in the --binding folder "
                             f"({len(missing)} of {len(genes)} requested are missing)")


# ----------------------------------------------------------------------------- explain
@decode.command("explain", context_settings=CONTEXT)
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="A fitted model: DeepLIFT on its test genes (or --genes).")
@lv_model_options(required=False, help="Explain gene modules instead: train DEcode on the "
                  "model's loadings Z (a PLIER/LV model folder, or a genes × LVs matrix with "
                  "--lv-l2) and rank, per LV, the regulators whose binding predicts membership.")
@click.option("--table", "table_path", type=click.Path(exists=True, path_type=Path),
              default=None, help="Explain any gene-level table (genes × columns, e.g. a "
              "trait's S-MultiXcan z-scores) as with --lv-model.")
@_BINDING
@click.option("--lvs", default=None, help="With --lv-model: comma-separated LVs only.")
@click.option("--genes", default=None, help="With --model: comma-separated genes "
              "(default: the model's test genes).")
@click.option("--regulator-expression", type=click.Path(exists=True, path_type=Path),
              default=None, help="With --model: regulators × tissues expression; adds the "
              "association of each regulator's DeepLIFT score with its own expression.")
@click.option("--min-abs-rho", type=click.FloatRange(min=0, max=1), default=0.0,
              show_default=True, help="Association also requires |ρ| above this (0.3 for "
              "person-specific models).")
@click.option("--permutations", type=click.IntRange(min=0), default=1, show_default=True,
              help="With --lv-model/--table: shuffled-binding retrainings for the permutation "
              "baseline.")
@click.option("--restarts", type=click.IntRange(min=1), default=3, show_default=True,
              help="With --lv-model/--table.")
@click.option("--epochs", type=click.IntRange(min=1), default=60, show_default=True,
              help="With --lv-model/--table.")
@click.option("--min-genes", type=click.IntRange(min=0), default=30, show_default=True,
              help="With --lv-model/--table.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: importance, mean scores (and association) or the per-column "
              "regulator ranking, with heat maps.")
@_OVERWRITE
def explain(model, lv_model, lv_l2, table_path, binding, lvs, genes, regulator_expression,
            min_abs_rho, permutations, restarts, epochs, min_genes, seed, out,
            overwrite) -> None:
    """Which regulators drive the outputs: DeepLIFT against the "no binding" reference,
    summed over each gene's bins and averaged over genes (--model), or modules and traits
    explained by their regulators (--lv-model / --table)."""
    given = [n for n, v in (("--model", model), ("--lv-model", lv_model),
                            ("--table", table_path)) if v is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --model, --lv-model and --table")
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    from ..decode.features import BindingMaps

    t0 = time.perf_counter()
    maps = BindingMaps.read(binding)
    con = _console()
    if model is not None:
        _explain_model(model, maps, genes, regulator_expression, min_abs_rho, out, overwrite,
                       con)
    else:
        from ..decode.explain import explain_modules, explain_table
        from ..io import read_matrix

        params = {"restarts": restarts, "epochs": epochs, "min_genes": min_genes,
                  "random_state": seed, "progress": _progress_enabled()}
        if lv_model is not None:
            from ._common import load_lv_model

            res = explain_modules(maps, load_lv_model(lv_model, lv_l2), lvs=split_list(lvs)
                                  or None, permutations=permutations, **params)
        else:
            table = read_matrix(table_path, what="table", allow_nan=True)
            res = explain_table(maps, table, permutations=permutations, **params)
        res.save(out, overwrite=overwrite)
        for c in res.columns:
            top = res.top(c, 5)
            ev = res.evaluation.set_index("column")["spearman"]
            con.print(f"{c} (test Spearman {ev.get(c, float('nan')):.2f}): "
                      + ", ".join(f"{r.regulator} {r.score:+.3g}" for r in top.itertuples()))
    con.print(f"{time.perf_counter() - t0:.1f} s; wrote {out}/")


def _explain_model(model, maps, genes, regulator_expression, min_abs_rho, out, overwrite,
                   con) -> None:
    from ..decode.model import DEcode
    from ..io import atomic_dir, read_matrix, write_table

    m = DEcode.load(model)
    want = split_list(genes) or None
    _check_genes(maps, want)
    att = m.attribute(maps, want)
    assoc = None
    if regulator_expression is not None:
        X = read_matrix(regulator_expression, what="regulator expression")
        assoc = att.association(X, min_abs_rho=min_abs_rho)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        att.save(tmp, overwrite=True)  # into the new folder, which is renamed when done
        if assoc is not None:
            write_table(assoc, tmp / "association.parquet")
            write_table(assoc, tmp / "association.tsv")
    imp = att.importance
    con.print(f"DeepLIFT over {att.n_genes:,} genes × {len(att.mean_scores)} outputs; top "
              "regulators (collective importance): "
              + ", ".join(f"{r.regulator} {r.collective:.3g}" for r in imp.head(8).itertuples()))
    if assoc is not None:
        sig = assoc[assoc["significant"]]
        con.print(f"association with own expression: {len(sig)} of {len(assoc)} regulators at "
                  f"FDR < 5 %" + (": " + ", ".join(f"{r.regulator} ρ={r.rho:+.2f}" for r in
                                                   sig.head(8).itertuples()) if len(sig) else ""))


# ---------------------------------------------------------------------------------- ko
@decode.command("ko", context_settings=CONTEXT)
@_model_option
@_BINDING
@click.option("--pair", required=True, help="Two genes, A,B: the co-expression to explain.")
@click.option("--draws", "n", type=click.IntRange(min=10), default=10000, show_default=True,
              help="Random perturbations (each regulator knocked out with probability ½).")
@click.option("--perturb", type=click.Choice(["first", "both"]), default="first",
              show_default=True, help="Knock out in A only (the reference) or in both genes.")
@click.option("--sites", is_flag=True, help="Also remove binding sites bin by bin in each "
              "gene (which sites drive the co-expression).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: coefficients.parquet (regulator, coef, se, t, p, p_bonferroni, "
              "significant), the draws' ρ, knockout.png (and sites_<gene>/).")
@_OVERWRITE
def ko(model, binding, pair, n, perturb, sites, seed, out, overwrite) -> None:
    """In-silico knock-out (spec §7): random sets of the regulators bound in A or B are
    removed, the Spearman ρ of the two predicted fold-change profiles recomputed, and
    ρ ~ 1 + KO indicators fitted by OLS. The most negative coefficients are the regulators
    that make the pair co-expressed. All draws run in one batched pass."""
    genes = split_list(pair)
    if len(genes) != 2 or genes[0] == genes[1]:
        raise click.BadParameter("give two different genes, e.g. --pair ENSG1,ENSG2",
                                 param_hint="--pair")
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    from ..decode.features import BindingMaps
    from ..decode.model import DEcode
    from ..io import atomic_dir

    t0 = time.perf_counter()
    m = DEcode.load(model)
    maps = BindingMaps.read(binding)
    _check_genes(maps, genes)
    res = m.knockout(maps, genes, n=n, perturb=perturb, seed=seed)
    site_res = m.remove_sites(maps, genes, n=n, seed=seed) if sites else {}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        res.save(tmp, overwrite=True)  # into the new folder, which is renamed when done
        for g, r in site_res.items():
            r.save(tmp / f"sites_{g}", overwrite=True)
    c = res.coefficients
    sig = c[c["significant"]]
    con = _console()
    con.print(f"{genes[0]} vs {genes[1]}: predicted-profile ρ = {res.base_rho:.3f}; {n:,} "
              f"draws over {len(c)} bound regulators; {len(sig)} Bonferroni-significant")
    con.print("strongest drivers of co-expression (most negative): "
              + ", ".join(f"{getattr(r, c.columns[0])} {r.coef:+.3f}"
                          for r in c.head(5).itertuples()))
    for g, r in site_res.items():
        t = r.coefficients
        con.print(f"sites of {g}: {int(t['significant'].sum())} of {len(t)} bins significant; "
                  "top " + ", ".join(f"{getattr(x, t.columns[0])} {x.coef:+.3f}"
                                     for x in t.head(3).itertuples()))
    con.print(f"{time.perf_counter() - t0:.1f} s; wrote {out}/")
