"""``gpu-engine gls-cli``: PhenoPLIER's ``libs/gls_cli.py`` command line, unchanged.

A drop-in for ``python libs/gls_cli.py -i … -o … -p … -g …``: the same flags (short and long),
the same input checks and exit statuses, the same output table (tab-separated, ``lv, beta,
beta_se, t, pvalue_twosided, pvalue_onesided``). The fit is the engine's :func:`gls.associate`
(the same code as ``gpu-engine gls``), with y = −log10 p as the reference's CLI path.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ._common import CONTEXT, Obj
from ._common import backend as _backend
from ._common import console as _console

log = logging.getLogger("gpu_engine.cli")

COVAR_OPTIONS = ("all", "gene_size", "gene_size_log", "gene_density", "gene_density_log",
                 "gene_n_snps_used", "gene_n_snps_used_log", "gene_n_snps_used_density",
                 "gene_n_snps_used_density_log")


class _ArgparseLists(click.Command):
    """argparse's ``nargs="+"`` (``-l LV1 LV2``, ``--covars a b``) as click's repeated form."""

    multi = ("-l", "--lv-list", "--covars")

    def parse_args(self, ctx, args):
        out, i = [], 0
        while i < len(args):
            a = args[i]
            out.append(a)
            i += 1
            if a in self.multi:
                first = True
                while i < len(args) and not args[i].startswith("-"):
                    if not first:
                        out.append(a)
                    out.append(args[i])
                    first = False
                    i += 1
        return super().parse_args(ctx, out)


def _fail(msg: str, status: int) -> None:
    _console(stderr=True).print(f"[red]error[/red]: {msg}")
    sys.exit(status)


def _read_frame(path: Path, what: str):
    """A genes × columns frame: pickle (as the reference), Parquet or TSV (first column the
    genes)."""
    import pandas as pd

    from ..io import read_matrix

    name = path.name.lower()
    if any(name.endswith(s) for s in (".pkl", ".pkl.gz", ".pkl.xz", ".pickle")):
        return pd.read_pickle(path)  # the user's own file, as the reference reads it
    return read_matrix(path, what=what)


@click.command("gls-cli", cls=_ArgparseLists, context_settings=CONTEXT)
@click.option("-i", "--input-file", required=True, type=Path,
              help="S-MultiXcan result file (tab-separated; columns gene_name and pvalue, "
              "and n, n_indep for the gene-level covariates).")
@click.option("-o", "--output-file", required=True, type=Path,
              help="Result table (tab-separated). An existing file is left alone (exit 0).")
@click.option("-p", "--lv-model-file", type=Path, default=None,
              help="LV model Z, genes (symbols) × LVs: pickle as the reference, or "
              "Parquet/TSV. Required here (the reference has a built-in default).")
@click.option("-g", "--gene-corr-file", type=Path, default=None,
              help="Gene correlation matrix, genes × genes (pickle, Parquet, TSV, or a "
              "`twas gene-corr` folder), or the reference's per-LV folder (gene_names.parquet "
              "and <LV>.npz inverse Cholesky factors; y is then standardized over trait ∩ Z, "
              "as the reference's production runs). Required unless --debug-use-ols.")
@click.option("--debug-use-ols", is_flag=True, help="Ordinary least squares (R = I).")
@click.option("--debug-use-sub-gene-corr", is_flag=True,
              help="Accepted, no effect: the fit always uses the per-LV sub-matrix of R (the "
              "identity outside the LV's top genes), as the reference's default.")
@click.option("-l", "--lv-list", multiple=True,
              help="LVs to test (several after one flag, as the reference); unknown ones are "
              "skipped and counted.")
@click.option("--covars", multiple=True, type=click.Choice(COVAR_OPTIONS),
              help="Covariates (several after one flag), or 'all' for the eight.")
@click.option("--cohort-metadata-dir", type=Path, default=None,
              help="Folder with gene_tissues.pkl[.gz] (or .parquet): the SNP-level "
              "covariates' source.")
@click.option("--batch-id", type=int, default=None, help="This batch (1-based) of the LVs.")
@click.option("--batch-n-splits", type=int, default=None,
              help="Split the LVs into this many batches (numpy.array_split).")
@click.option("--duplicated-genes-action", default=None,
              type=click.Choice(["keep-first", "keep-last", "remove-all"]),
              help="What to do with repeated gene symbols; without it they are an error.")
@click.pass_obj
def gls_cli(obj: Obj, input_file, output_file, lv_model_file, gene_corr_file, debug_use_ols,
            debug_use_sub_gene_corr, lv_list, covars, cohort_metadata_dir, batch_id,
            batch_n_splits, duplicated_genes_action) -> None:
    """PhenoPLIER's gls_cli.py: LV–trait GLS for one S-MultiXcan result file.

    \b
    Example (the reference's command line, program name replaced):
      gpu-engine gls-cli -i smultixcan.txt -o gls.tsv -p lv_model.pkl \\
          -g gene_corrs.pkl --covars gene_size gene_size_log gene_density gene_density_log \\
          --duplicated-genes-action keep-first -l LV1 LV45
    """
    import numpy as np
    import pandas as pd

    from ..gls import SNP_COVARIATES, associate
    from ..gls.corr_folder import check_blocks, is_lv_corr_folder, read_lv_corr_folder

    con = _console(stderr=True)
    lv_list = list(lv_list)
    if lv_list and (batch_id is not None or batch_n_splits is not None):
        _fail("Incompatible parameters: LV list and batches cannot be used together", 2)
    if (batch_id is None) != (batch_n_splits is None):
        _fail("Both --batch-id and --batch-n-splits have to be provided (not only one of "
              "them)", 2)
    if batch_id is not None and batch_id < 1:
        _fail("--batch-id must be >= 1", 2)
    if batch_id is not None and batch_id > batch_n_splits:
        _fail("--batch-id must be <= --batch-n-splits", 2)
    if output_file.exists():
        con.print(f"[yellow]warning[/yellow]: Skipping, output file exists: {output_file}")
        sys.exit(0)
    if not output_file.parent.exists():
        _fail(f"Parent directory of output file does not exist: {output_file.parent}", 1)
    if not input_file.exists():
        _fail(f"Input file does not exist: {input_file}", 2)
    if debug_use_ols and gene_corr_file is not None:
        _fail("Incompatible arguments: you cannot specify both --gene-corr-file and "
              "--debug-use-ols", 1)
    if lv_model_file is None:
        _fail("give the LV model with -p/--lv-model-file (the reference's built-in default "
              "model is not shipped here)", 2)
    if gene_corr_file is None and not debug_use_ols:
        _fail("give the gene correlation matrix with -g/--gene-corr-file (the reference's "
              "built-in default is not shipped here), or --debug-use-ols", 2)
    if debug_use_sub_gene_corr:
        con.print("[yellow]warning[/yellow]: --debug-use-sub-gene-corr accepted, no effect: "
                  "the per-LV sub-matrix is always used")

    data = pd.read_csv(input_file, sep="\t")
    for col in ("gene_name", "pvalue"):
        if col not in data.columns:
            _fail(f"Mandatory columns not present in data '{col}'", 1)
    data = data.set_index("gene_name")
    keep = None
    if duplicated_genes_action is not None:
        keep = duplicated_genes_action.split("-")[1] \
            if duplicated_genes_action.startswith("keep") else False
        data = data.loc[~data.index.duplicated(keep=keep)]
    if not data.index.is_unique:
        _fail("Duplicated genes in input data. Use option --duplicated-genes-action if you "
              "want to skip them.", 1)
    y = data["pvalue"]
    con.print(f"{input_file.name}: {len(data):,} genes; p-values min={y.min():.1e} "
              f"mean={y.mean():.1e} max={y.max():.1e}, {int(y.isna().sum()):,} missing")

    covars_selected = sorted(c for c in COVAR_OPTIONS[1:] if "all" in covars or c in covars)
    for c in covars_selected:
        if c.endswith("_log") and c[:-4] not in covars_selected:
            _fail("If log version of covar is selected, covar has to be selected as well "
                  f"({c[:-4]} not present)", 1)
    trait = input_file.stem  # as the reference names the series
    traits = pd.DataFrame({trait: y})
    traits.index.name = "gene"
    cov = None
    if covars_selected:
        cov = pd.DataFrame({"gene": data.index, "trait": trait,
                            "n": data.get("n"), "n_indep": data.get("n_indep")}
                           ).reset_index(drop=True)
        if set(covars_selected) & set(SNP_COVARIATES):
            if cohort_metadata_dir is None:
                _fail("To use SNP-level covariates, a cohort metadata folder must be provided "
                      "(--cohort-metadata-dir)", 1)
            from ..gls import snp_covariates

            gt = _gene_tissues(cohort_metadata_dir)
            if not gt["gene_name"].is_unique:
                if duplicated_genes_action is None:
                    _fail("There are duplicated gene names in cohort metadata files, "
                          "--duplicated-genes-action must be specified", 1)
                gt = gt.loc[~gt["gene_name"].duplicated(keep=keep)]
            cov = cov.merge(snp_covariates(gt), on="gene", how="left")

    Z = _read_frame(lv_model_file, "LV model")
    lvs_all = [str(c) for c in Z.columns]
    Z.columns = lvs_all
    if batch_n_splits is not None and batch_n_splits > len(lvs_all):
        _fail(f"--batch-n-splits cannot be greater than LVs in the model ({len(lvs_all)} LVs)",
              2)
    if lv_list:
        selected = [lv for lv in lv_list if lv in set(lvs_all)]
        con.print(f"A list of {len(lv_list)} LVs was provided, and {len(selected)} are "
                  "present in LV models")
    else:
        selected = lvs_all
    if batch_id is not None:
        selected = [a.tolist() for a in np.array_split(selected, batch_n_splits)][batch_id - 1]
    if not selected:
        _fail("No LVs were selected", 1)
    y_over = "fitted"
    if debug_use_ols:
        genes = Z.index.intersection(traits.index)
        R = pd.DataFrame(np.eye(len(genes)), index=genes, columns=genes)
    elif gene_corr_file.is_dir() and is_lv_corr_folder(gene_corr_file):
        # the production input: y standardized over trait ∩ Z, as the reference does there
        R, blocks = read_lv_corr_folder(gene_corr_file, selected)
        check_blocks(blocks, Z)
        y_over = "trait_and_model"
    else:
        from ..twas import read_gene_corr

        R = _read_frame(gene_corr_file, "gene correlation matrix") \
            if not gene_corr_file.is_dir() else read_gene_corr(gene_corr_file)
    res = associate(Z, traits, R, cov, lvs=selected, covars=covars_selected,
                    scale="pvalue", standardize_y_over=y_over, backend=_backend(obj))
    out = res.set_index("lv").loc[selected, ["beta", "beta_se", "t", "pvalue_twosided",
                                             "pvalue_onesided"]]
    from ..io import atomic_path

    with atomic_path(output_file) as tmp:
        out.to_csv(tmp, sep="\t", na_rep="NA")
    con.print(f"gls-cli: {len(out):,} LVs on {int(res['n'].iloc[0]):,} genes "
              f"({', '.join(covars_selected) or 'no covariates'}); wrote {output_file}")


def _gene_tissues(folder: Path):
    import pandas as pd

    for name in ("gene_tissues.pkl", "gene_tissues.pkl.gz", "gene_tissues.parquet"):
        p = folder / name
        if p.exists():
            return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_pickle(p)
    _fail(f"No gene_tissues.pkl[.gz] (or .parquet) exists in cohort metadata folder: {folder}",
          1)
