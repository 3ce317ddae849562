"""``gpu-engine expression``: train expression prediction models from genotypes (TWAS stage 1)
and write them as PredictDB databases for ``gpu-engine twas``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ._common import CONTEXT, Obj, check_output
from ._common import console as _console
from ._common import progress_enabled as _progress_enabled


@click.group(context_settings=CONTEXT)
def expression() -> None:
    """Expression models from genotypes (TWAS stage 1): PredictDB's elastic net and the dlfa
    CNN (with functional-annotation sharing), exported as PredictDB databases and covariances
    that `gpu-engine twas` (and MetaXcan) read, or tested against a trait directly
    (individual-level PrediXcan).

    \b
      gpu-engine expression world --out w/
      gpu-engine expression train-en --genotypes w/genotypes --expression w/expression.parquet \\
          --genes w/genes.tsv --tissue Synthetic --out en/
      gpu-engine expression train-cnn --genotypes w/genotypes --expression w/expression.parquet \\
          --genes w/genes.tsv --compare-en --truth w/truth/genes.parquet --out cnn/
      gpu-engine expression fa --model cnn/ --annotations w/annotations.parquet ... --out fa/
      gpu-engine expression export --model cnn/ --panel w/genotypes --out cnn_db/
      gpu-engine expression predixcan --model cnn/ --genotypes cohort --trait trait.tsv --out r.tsv
      gpu-engine twas spredixcan --model_db_path cnn_db/models.db \\
          --covariance cnn_db/covariance.txt.gz --gwas_file gwas.tsv ... --output_file out.csv
    """


@expression.command("train-en", context_settings=CONTEXT)
@click.option("--genotypes", type=click.Path(path_type=Path), required=True,
              help="PLINK 1 prefix (.bed/.bim/.fam; the A1 allele is counted and becomes the "
              "effect allele), GTEx-style dosage text (Id = chr_pos_ref_alt, one column per "
              "sample) or a genotype folder (snps.parquet + dosages.parquet).")
@click.option("--expression", "expression_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Expression, samples × genes (Parquet/TSV/CSV; first column the sample id, "
              "as in the genotypes).")
@click.option("--genes", "genes_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Gene table: gene, chromosome, start, end (and genename, gene_type).")
@click.option("--covariates", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Covariates, samples × q (PEER factors, sex, genotype PCs…), "
              "regressed out of expression before it is standardised.")
@click.option("--window", type=click.FloatRange(min=0), default=1e6, show_default=True,
              help="Cis window around the gene's start and end (bp).")
@click.option("--maf", type=click.FloatRange(min=0, max=0.5), default=0.01, show_default=True)
@click.option("--maf-filter", type=click.Choice(["min", "reference"]), default="min",
              show_default=True, help="min: min(EAF, 1 − EAF) ≥ --maf; reference: the GTEx v7 "
              "script's rule (EAF ≥ maf or EAF ≤ 1 − maf, which keeps almost every SNP).")
@click.option("--alpha", type=click.FloatRange(min=0, max=1, min_open=True), default=0.5,
              show_default=True, help="Elastic-net mixing (PredictDB: 0.5).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the fold ids (drawn per gene from it) and the construction table.")
@click.option("--tissue", default="", help="Tissue name recorded in sample_info.")
@click.option("--population", default="", help="Population recorded in sample_info.")
@click.option("--all-genes", is_flag=True,
              help="Write every gene with weights, not only those passing the filter "
              "(rho_avg > 0.1 and zscore_pval < 0.05).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: models.db (PredictDB SQLite), covariance.txt.gz, summary.parquet "
              "and .tsv (every trained gene, all nested-CV columns), weights.parquet, "
              "report.json, performance.png.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@click.pass_obj
def train_en(obj: Obj, genotypes, expression_path, genes_path, covariates, window, maf,
             maf_filter, alpha, seed, tissue, population, all_genes, out, overwrite) -> None:
    """Train PredictDB's elastic-net models (GTEx v7 nested CV: 5 outer × 10 inner folds, a
    final 10-fold model; glmnet's λ path; rho_avg > 0.1 and zscore_pval < 0.05 kept), batched
    over folds and genes, and write them for the TWAS layer.
    """
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    from ..expression import ElasticNetPredictor, read_genotypes
    from ..io import atomic_dir, read_matrix, read_table, write_table

    con = _console()
    t0 = time.perf_counter()
    G = read_genotypes(genotypes)
    E = read_matrix(expression_path, what="expression", allow_nan=True)
    genes = read_table(genes_path, what="gene table")
    C = read_matrix(covariates, what="covariates") if covariates else None
    est = ElasticNetPredictor(alpha=alpha, window=window, maf=maf, maf_filter=maf_filter,
                              seed=seed, backend=obj.backend if obj else None,
                              progress=_progress_enabled())
    est.fit(G, E, genes, C)
    with atomic_dir(out) as tmp:
        written = est.write(tmp / "models.db", tmp / "covariance.txt.gz", tissue=tissue,
                            population=population, significant_only=not all_genes)
        write_table(est.summary_, tmp / "summary.parquet")
        write_table(est.summary_, tmp / "summary.tsv")
        est.weights_.to_parquet(tmp / "weights.parquet", index=False)
        (tmp / "report.json").write_text(json.dumps(est.report_, indent=1, default=str))
        _performance_plot(est.summary_, tmp / "performance.png")
    s = est.summary_
    r = est.report_
    con.print(f"samples: {r['samples_used']:,} with expression and genotypes (of "
              f"{r['samples_expression']:,} expressed, {r['samples_genotyped']:,} genotyped); "
              f"SNPs kept {r['snp_filter']['kept']:,} ({r['snp_filter']}); dosages imputed "
              f"{r['dosages_imputed']:,}")
    skipped = r["genes_skipped_fewer_than_2_snps"]
    con.print(f"genes: {len(s):,} trained, {len(skipped):,} skipped (< 2 cis SNPs), "
              f"{int(s['significant'].sum()):,} pass the filter, {len(written):,} written; "
              f"median nested-CV rho {s['rho_avg'].median():.3f}; "
              f"{time.perf_counter() - t0:.1f} s")
    con.print(f"wrote {out}/ (models.db, covariance.txt.gz, summary, weights, report.json, "
              "performance.png)")


def _performance_plot(summary, path) -> None:
    from ..plotting import pyplot

    plt = pyplot()
    s = summary.sort_values("rho_avg", ascending=False).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    colour = s["significant"].map({True: "tab:blue", False: "0.7"})
    ax.bar(range(len(s)), s["rho_avg"].fillna(0), color=colour, width=1.0)
    ax.axhline(0.1, color="tab:red", lw=0.8, ls="--", label="rho_avg = 0.1 (filter)")
    ax.set_xlabel("genes, by nested-CV rho")
    ax.set_ylabel("rho_avg (mean test Pearson r, 5 outer folds)")
    n_sig = int(s["significant"].sum())
    ax.set_title(f"elastic net: {n_sig} of {len(s)} genes pass the filter (blue)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@expression.command("world", context_settings=CONTEXT)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: genotypes.{bed,bim,fam}, expression.parquet, genes.tsv, truth/.")
@click.option("--samples", type=click.IntRange(min=20), default=400, show_default=True)
@click.option("--genes-per-architecture", type=click.IntRange(min=1), default=4,
              show_default=True, help="Genes of each of additive, dominance, recessive, "
              "epistasis, mixed and null.")
@click.option("--real-genotypes", type=click.Path(path_type=Path), default=None,
              help="A PLINK prefix whose samples and SNPs are used instead of simulated ones "
              "(e.g. ../shared/expr_data/genotypes/chr1).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
def world_cmd(out, samples, genes_per_architecture, real_genotypes, seed, overwrite) -> None:
    """A synthetic genotype → expression world with planted architectures and its truth."""
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    from ..datasets.expr_world import generate_expr_world

    t0 = time.perf_counter()
    w = generate_expr_world(out, n_samples=samples, genes_per_architecture=genes_per_architecture,
                            seed=seed, real_genotypes=real_genotypes)
    _console().print(f"expression world {out} written in {time.perf_counter() - t0:.1f} s: "
                     f"{len(w.genes):,} genes ({', '.join(w.truth['architecture'].unique())}), "
                     f"genotypes {w.genotypes}")


def _training_options(f):
    for opt in reversed([
        click.option("--genotypes", type=click.Path(path_type=Path), required=True,
                     help="PLINK 1 prefix, GTEx-style dosage text or a genotype folder (as "
                     "train-en)."),
        click.option("--expression", "expression_path", required=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Expression, samples × genes (first column the sample id)."),
        click.option("--genes", "genes_path", required=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Gene table: gene, chromosome, start, end (and genename)."),
        click.option("--covariates", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path), default=None,
                     help="Covariates (samples × q) regressed out of expression."),
    ]):
        f = opt(f)
    return f


def _read_training(genotypes, expression_path, genes_path, covariates):
    from ..expression import read_genotypes
    from ..io import read_matrix, read_table

    return (read_genotypes(genotypes), read_matrix(expression_path, what="expression",
                                                   allow_nan=True),
            read_table(genes_path, what="gene table"),
            read_matrix(covariates, what="covariates") if covariates else None)


def _read_scaled_annotations(path):
    from ..expression.annotations import read_annotations, scale_annotations

    return scale_annotations(read_annotations(path))


@expression.command("train-cnn", context_settings=CONTEXT)
@_training_options
@click.option("--annotations", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="LDSC baseline-style annotation table (SNP, CHR, BP, A1, A2, "
              "one column per annotation): SNPs without a row are dropped, as the reference "
              "does; needed to run `fa` on these models later.")
@click.option("--restarts", type=click.IntRange(min=1), default=20, show_default=True,
              help="Models per fold (the reference: 20).")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True,
              help="Models kept per fold for the nbest ensemble.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--window", type=click.FloatRange(min=0), default=1e6, show_default=True)
@click.option("--maf", type=click.FloatRange(min=0, max=0.5), default=0.01, show_default=True)
@click.option("--snp-order", type=click.Choice(["position", "rsid"]), default="position",
              show_default=True, help="Input order of a gene's SNPs (the reference: rsid).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True)
@click.option("--device", default=None, help="torch device (cpu, cuda, cuda:1); default: CUDA "
              "when available.")
@click.option("--max-models", type=click.IntRange(min=1), default=512, show_default=True,
              help="Models trained as one packed network.")
@click.option("--seed", type=int, default=42, show_default=True,
              help="random_state of the split, folds and restart seeds (the reference: 42).")
@click.option("--compare-en", is_flag=True, help="Also fit PredictDB's elastic net on the same "
              "training samples and report CNN − EN test r per gene (and per architecture "
              "with --truth) with bootstrap 95 % intervals.")
@click.option("--truth", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A table gene, architecture (a world's truth/genes.parquet) "
              "to group the comparison and colour the plot.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Model folder (load with DLFAPredictor.load): model.json, summary.parquet, "
              "snps.parquet, states.pt; plus summary.tsv, report.json, and with --compare-en "
              "comparison.tsv, comparison_by_class.tsv, cnn_vs_en.png.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@click.pass_obj
def train_cnn(obj: Obj, genotypes, expression_path, genes_path, covariates, annotations,
              restarts, top, folds, epochs, window, maf, snp_order, dtype, device, max_models,
              seed, compare_en, truth, out, overwrite) -> None:
    """Train the dlfa CNN per gene (Ramprasad, Ren & Pan 2025): 80/20 split, FOLDS folds ×
    RESTARTS models, the top models per fold kept; test MSE/Pearson/Spearman of the nbest,
    best and best1 ensembles. Genes × folds × restarts are trained as packed networks (one
    per fold and input width). Needs the [dl] extra (torch).
    """
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    from ..expression.cnn_predictor import DLFAPredictor
    from ..io import atomic_dir, read_table, write_table

    con = _console()
    t0 = time.perf_counter()
    G, E, genes, C = _read_training(genotypes, expression_path, genes_path, covariates)
    ann = _read_scaled_annotations(annotations) if annotations else None
    est = DLFAPredictor(restarts=restarts, top=min(top, restarts), n_folds=folds,
                        epochs=epochs, window=window, maf=maf, snp_order=snp_order,
                        random_state=seed, dtype=dtype, device=device, max_models=max_models,
                        progress=_progress_enabled())
    est.fit(G, E, genes, C, annotations=ann)
    t_cnn = time.perf_counter() - t0
    s = est.summary_
    comparison = None
    if compare_en:
        from ..expression.compare import compare, comparison_plot, en_test_r

        en_r = en_test_r(G, E, genes, est.split_["train"], est.split_["test"], C,
                         window=window, maf=maf, backend=obj.backend if obj else None)
        tt = read_table(truth, what="truth table") if truth else None
        per, by = compare(s.set_index("gene")["test_pearson_nbest"], en_r, tt)
        comparison = (per, by)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        est.save(tmp, overwrite=True)
        write_table(s, tmp / "summary.tsv")
        report = {**est.report_, "seconds": round(t_cnn, 1)}
        if comparison is not None:
            write_table(comparison[0], tmp / "comparison.tsv")
            write_table(comparison[1], tmp / "comparison_by_class.tsv")
            comparison_plot(comparison[0], tmp / "cnn_vs_en.png")
            report["comparison"] = comparison[1].to_dict("records")
        (tmp / "report.json").write_text(json.dumps(report, indent=1, default=str))
    con.print(f"genes: {len(s):,} trained ({est.report_['models_trained']:,} models on "
              f"{est.report_['device']}, {t_cnn:.1f} s); median test r: "
              + ", ".join(f"{e} {s[f'test_pearson_{e}'].median():.3f}"
                          for e in ("nbest", "best", "best1")))
    if comparison is not None:
        from rich.table import Table

        tab = Table(title="CNN − EN test r (same split; bootstrap 95 % CI over genes)")
        for c in ("architecture", "genes", "CNN", "EN", "CNN − EN", "95 % CI", "CNN better"):
            tab.add_column(c)
        for r in comparison[1].itertuples():
            tab.add_row(r.architecture, str(r.genes), f"{r.cnn_mean:.3f}", f"{r.en_mean:.3f}",
                        f"{r.difference_mean:+.3f}", f"[{r.ci95_low:+.3f}, {r.ci95_high:+.3f}]",
                        f"{r.cnn_better}/{r.genes}")
        con.print(tab)
    con.print(f"wrote {out}/")


@expression.command("fa", context_settings=CONTEXT)
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="A train-cnn folder fitted with the same --annotations.")
@_training_options
@click.option("--annotations", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The annotation table the model was trained with.")
@click.option("--eta", type=click.FloatRange(min=0), default=1e-3, show_default=True,
              help="L1 weight on γ (the reference: 1e-3 for the CNN).")
@click.option("--max-iter", type=click.IntRange(min=1), default=20, show_default=True,
              help="w-steps per chromosome group.")
@click.option("--tol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Stop when the loss changes by less than this (relative).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs of each w-step (default: the model's).")
@click.option("--one-group", is_flag=True, help="One γ for all chromosomes instead of the "
              "reference's eight chromosome groups (for small gene sets).")
@click.option("--device", default=None, help="torch device; default: CUDA when available.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="FA folder (FASharing.load): summary, gamma, history, snps, states.pt; "
              "gamma.png, report.json.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
def fa_cmd(model, genotypes, expression_path, genes_path, covariates, annotations, eta,
           max_iter, tol, epochs, one_group, device, out, overwrite) -> None:
    """Functional-annotation sharing (spec §4): alternate a w-step (one model per gene on
    its training split, penalty factors ν = ½(1 + exp(−aᵀγ)) on its input scaler) and a
    γ-step (L1-penalised, convex) per chromosome group; report γ, the loss history and each
    gene's test r with and without FA (paired sign test).
    """
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    from ..expression.cnn_predictor import DLFAPredictor
    from ..expression.fa import FASharing
    from ..io import atomic_dir, write_table

    con = _console()
    t0 = time.perf_counter()
    base = DLFAPredictor.load(model)
    G, E, genes, C = _read_training(genotypes, expression_path, genes_path, covariates)
    ann = _read_scaled_annotations(annotations)
    kw = {"groups": (tuple(range(1, 23)),)} if one_group else {}
    fa = FASharing(eta=eta, max_iter=max_iter, tol=tol, epochs=epochs, device=device,
                   progress=_progress_enabled(), **kw).fit(base, G, E, genes, ann, C)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        fa.save(tmp, overwrite=True)
        write_table(fa.summary_, tmp / "summary.tsv")
        write_table(fa.gamma_.reset_index(), tmp / "gamma.tsv")
        (tmp / "report.json").write_text(json.dumps(fa.report_, indent=1, default=str))
        _gamma_plot(fa.gamma_, tmp / "gamma.png")
    r = fa.report_
    top = fa.gamma_.abs().max().sort_values(ascending=False).index[:3]
    con.print(f"FA: {r['genes']:,} genes in {r['groups']} group(s), "
              f"{time.perf_counter() - t0:.1f} s; mean test r {r['mean_test_pearson_nofa']:.3f}"
              f" → {r['mean_test_pearson_fa']:.3f} (better for {r['improved']}, worse for "
              f"{r['worse']}; sign test p = {r['sign_test_p_one_sided']:.3g}); largest |γ|: "
              + ", ".join(top))
    con.print(f"wrote {out}/")


def _gamma_plot(gamma, path) -> None:
    from ..plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * gamma.shape[1] + 2), 3.6))
    width = 0.8 / max(1, len(gamma))
    x = range(gamma.shape[1])
    for i, (grp, row) in enumerate(gamma.iterrows()):
        ax.bar([j + i * width for j in x], row.to_numpy(), width=width,
               label=f"chr {grp}")
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xticks([j + 0.4 - width / 2 for j in x])
    ax.set_xticklabels(gamma.columns, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("γ (lower penalty where > 0)")
    ax.set_title("functional-annotation effects γ per chromosome group", fontsize=9)
    if len(gamma) <= 8:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _load_cnn(model):
    """A train-cnn or fa folder → (estimator, per-gene summary with test_pearson)."""
    from ..expression.cnn_predictor import DLFAPredictor
    from ..expression.fa import FASharing
    from ..results import MODEL_JSON

    fmt = json.loads((Path(model) / MODEL_JSON).read_text()).get("format", "")
    if fmt == FASharing.FORMAT:
        est = FASharing.load(model)
        return est, est.summary_.assign(test_pearson=est.summary_["test_pearson_fa"])
    return DLFAPredictor.load(model), None


@expression.command("export", context_settings=CONTEXT)
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="A train-cnn or fa folder.")
@click.option("--panel", type=click.Path(path_type=Path), required=True,
              help="Reference genotypes for the projection (the training genotypes, or a "
              "panel matching the GWAS).")
@click.option("--genes", "genes_path", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path), default=None,
              help="Gene table for genename/gene_type in the database (optional).")
@click.option("--ensemble", type=click.Choice(["nbest", "best", "best1"]), default="nbest",
              show_default=True)
@click.option("--coverage", type=click.FloatRange(min=0, max=1, min_open=True), default=0.99,
              show_default=True, help="Model SNPs: the fewest whose mean |scaler weight| "
              "reaches this share of the total…")
@click.option("--max-snps", type=click.IntRange(min=1), default=500, show_default=True,
              help="…and at most this many.")
@click.option("--tissue", default="")
@click.option("--population", default="")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: models.db (PredictDB schema; extra.model_type = dlfa_cnn, "
              "linear_r2, test_pearson), covariance.txt.gz, projection.tsv.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
def export_cmd(model, panel, genes_path, ensemble, coverage, max_snps, tissue, population,
               out, overwrite) -> None:
    """Export CNN models for S-PrediXcan / S-MultiXcan: the best linear predictor w* of each
    gene's model on PANEL (spec §5 route B), with R²_lin = the share of the model's variance
    summary statistics can see; genes with R²_lin < 0.5 are flagged.
    """
    check_output(out, folder=True, overwrite=overwrite, what="--out")
    import pandas as pd

    from ..expression import read_genotypes
    from ..expression.export import LOW_LINEAR_R2, project_models, write_projection
    from ..io import atomic_dir, read_table, write_table

    con = _console()
    est, summ = _load_cnn(model)
    if summ is None:
        summ = est.summary_.assign(test_pearson=est.summary_[f"test_pearson_{ensemble}"])
    P = read_genotypes(panel)
    proj, weights, covs = project_models(est.gene_models(ensemble), est.snps_, P, summ,
                                         coverage=coverage, max_snps=max_snps)
    info = (read_table(genes_path, what="gene table") if genes_path else
            pd.DataFrame({"gene": proj["gene"], "genename": proj["gene"],
                          "chromosome": [est.snps_.loc[est.snps_.gene == g, "chromosome"]
                                         .iloc[0] for g in proj["gene"]]}))
    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_projection(tmp / "models.db", tmp / "covariance.txt.gz", proj, weights, covs,
                         info, n_samples=P.n_samples, tissue=tissue, population=population)
        write_table(proj, tmp / "projection.tsv")
    low = int(proj["low_linear_r2"].sum())
    con.print(f"exported {len(proj):,} genes ({ensemble} ensemble) on {P.n_samples:,} panel "
              f"samples: median R²_lin {proj['linear_r2'].median():.3f}, {low} flagged "
              f"(R²_lin < {LOW_LINEAR_R2}: non-additive signal GWAS summaries cannot see); "
              f"median model SNPs {int(proj['n_snps_in_model'].median())}")
    con.print(f"wrote {out}/ (models.db, covariance.txt.gz, projection.tsv)")


@expression.command("multixcan-covariance", context_settings=CONTEXT)
@click.option("--panel", type=click.Path(path_type=Path), required=True,
              help="Reference genotypes (rsids as in the databases).")
@click.option("--model-db", "dbs", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              multiple=True, required=True, help="A PredictDB database (repeat per tissue).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Covariance file (gzip text GENE RSID1 RSID2 VALUE) for S-MultiXcan's "
              "--snp_covariance.")
@click.option("--overwrite", is_flag=True)
def multixcan_cov(panel, dbs, out, overwrite) -> None:
    """S-MultiXcan's SNP covariance: per gene, over the union of its model SNPs in every
    given tissue database, computed on PANEL."""
    check_output(out, overwrite=overwrite, what="--out")
    from ..expression import read_genotypes
    from ..expression.export import multixcan_covariance

    k = multixcan_covariance(out, read_genotypes(panel), dbs)
    _console().print(f"wrote {out}: {k:,} genes over {len(dbs)} database(s)")


@expression.command("predixcan", context_settings=CONTEXT)
@click.option("--model", type=click.Path(exists=True, path_type=Path), required=True,
              help="A train-cnn or fa folder, or a PredictDB database (.db).")
@click.option("--genotypes", type=click.Path(path_type=Path), required=True,
              help="The cohort's genotypes (PLINK prefix, dosage text or genotype folder).")
@click.option("--trait", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Table with a sample id column and the trait.")
@click.option("--trait-column", default=None, help="The trait's column (default: the only "
              "numeric one).")
@click.option("--covariates", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Covariates, samples × q.")
@click.option("--ensemble", type=click.Choice(["nbest", "best", "best1"]), default="nbest",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Result table (gene, effect, se, zscore, pvalue, n).")
@click.option("--overwrite", is_flag=True)
def predixcan_cmd(model, genotypes, trait, trait_column, covariates, ensemble, out,
                  overwrite) -> None:
    """Individual-level PrediXcan: predicted expression of every gene for the cohort, then
    OLS trait ~ 1 + covariates + prediction per gene (t-test). Model SNPs missing in the
    cohort take the training mean dosage (CNN) or contribute 0 (database)."""
    check_output(out, overwrite=overwrite, what="--out")
    from ..errors import InputError
    from ..expression import read_genotypes
    from ..expression.export import predict_database, predixcan
    from ..io import read_matrix, write_table

    G = read_genotypes(genotypes)
    if Path(model).is_dir():
        est, fa_summary = _load_cnn(model)
        P = est.predict(G) if fa_summary is not None else est.predict(G, ensemble=ensemble)
    else:
        P = predict_database(model, G)
    T = read_matrix(trait, what="trait", allow_nan=True)
    if trait_column is None:
        if T.shape[1] != 1:
            raise InputError(f"{trait}: {T.shape[1]} columns; choose one with --trait-column")
        trait_column = T.columns[0]
    if trait_column not in T:
        raise InputError(f"{trait}: no column {trait_column!r} (found {list(T.columns)[:8]})")
    C = read_matrix(covariates, what="covariates") if covariates else None
    res = predixcan(P, T[trait_column], C).sort_values("pvalue", na_position="last")
    write_table(res, out)
    best = res.iloc[0]
    _console().print(f"PrediXcan: {len(res):,} genes on {int(best['n']):,} samples; best "
                     f"{best['gene']} z = {best['zscore']:.2f}, p = {best['pvalue']:.3g}; "
                     f"wrote {out}")
