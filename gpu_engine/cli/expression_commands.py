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
    """Expression models from genotypes (TWAS stage 1): PredictDB's elastic net, exported as
    PredictDB databases and covariances that `gpu-engine twas` (and MetaXcan) read.

    \b
      gpu-engine expression world --out expr_world/
      gpu-engine expression train-en --genotypes expr_world/genotypes \\
          --expression expr_world/expression.parquet --genes expr_world/genes.tsv \\
          --tissue Synthetic --out models/
      gpu-engine twas spredixcan --model_db_path models/models.db \\
          --covariance models/covariance.txt.gz --gwas_file gwas.tsv ... --output_file out.csv
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
