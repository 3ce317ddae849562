"""``gpu-engine gls`` and ``gpu-engine gls-null``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ._common import (
    CONTEXT,
    Obj,
    check_output,
    load_lv_model,
    lv_model_options,
    scheduler_option,
    split_list,
)
from ._common import backend as _backend
from ._common import console as _console
from ._common import progress_enabled as _progress_enabled

_COVARS_HELP = ("Covariates, comma-separated, or 'all' (PhenoPLIER's eight): gene_size "
                "(n_indep), gene_size_log, gene_density (n_indep / n), gene_density_log (−log "
                "density) — derived from the S-MultiXcan files' n and n_indep, or read from "
                "--covariates — and the SNP-level gene_n_snps_used (Σ over tissues of SNPs "
                "used), gene_n_snps_used_log, gene_n_snps_used_density (that sum / distinct "
                "SNPs used), gene_n_snps_used_density_log (−log) from --cohort-metadata-dir.")

def _covars(value: str | None) -> list[str]:
    from ..gls import COVARIATES

    if value == "all":
        return list(COVARIATES)
    return split_list(value)


def _read_gene_corr(path: Path):
    from ..twas import read_gene_corr

    return read_gene_corr(path)


def _summary(con, res, *, seconds: float, be, out: Path, n_top: int = 10) -> None:
    from rich.table import Table

    from ..stats import fdr_bh

    sig = res[res["fdr"] < 0.05]
    n_genes = f"{res['n'].min():,}–{res['n'].max():,}" if len(res) else "0"
    con.print(f"[bold]GLS[/bold]: {len(res):,} LV–trait pairs ({res['lv'].nunique():,} LVs × "
              f"{res['trait'].nunique():,} traits, {n_genes} genes) in {seconds:.1f} s on "
              f"{be.name}; {len(sig):,} significant at FDR < 0.05")
    al = res.attrs.get("alignment") or {}
    dropped = {k: v for k, v in (al.get("dropped") or {}).items() if v}
    if al:
        con.print(f"genes aligned: {al.get('n_out', 0):,} in common"
                  + "".join(f"; {v:,} only in {k} (left out)" for k, v in dropped.items()))
    missing = res.attrs.get("missing_genes") or {}
    if missing:
        con.print(f"{len(missing):,} trait(s) lack some genes (NaN; up to "
                  f"{max(missing.values()):,}) and were fitted on their own gene sets")
    skipped = res.attrs.get("skipped") or []
    if skipped:
        con.print(f"[yellow]{len(skipped)} skipped[/yellow] (see the log): "
                  + "; ".join(f"{s.get('lv') or ''} {s.get('trait') or ''}: {s['reason']}"
                              for s in skipped[:3]))
    top = res.nsmallest(n_top, "pvalue_onesided")
    t = Table(title=f"top {len(top)} associations (one-sided p)")
    for c in ("lv", "trait", "n", "beta", "beta_se", "pvalue_onesided", "fdr"):
        t.add_column(c, justify="left" if c in ("lv", "trait") else "right")
    for r in top.itertuples():
        t.add_row(str(r.lv), str(r.trait), f"{r.n:,}", f"{r.beta:.4g}", f"{r.beta_se:.3g}",
                  f"{r.pvalue_onesided:.3g}", f"{r.fdr:.3g}")
    con.print(t)
    if "pvalue_onesided_marginal" in res.columns:
        cond = res["conditioned_on"].astype(str) != ""
        marg = fdr_bh(res["pvalue_onesided_marginal"].to_numpy())
        con.print(f"conditioning: {int(cond.sum()):,} pairs fitted with other LVs; "
                  f"{int((marg < 0.05).sum()):,} significant marginally → {len(sig):,} "
                  "conditionally")
    con.print(f"results written to {out}")


@click.command(context_settings=CONTEXT)
@lv_model_options()
@click.option("--traits", "traits_path", type=click.Path(exists=True, path_type=Path),
              required=True,
              help="A folder of S-MultiXcan results (one file per trait: gene, gene_name, "
                   "pvalue, n, n_indep, …; genes matched by gene_name, duplicates keep the "
                   "first), one such file, or a genes × traits matrix of p-values.")
@click.option("--gene-corr", type=click.Path(exists=True, path_type=Path), required=True,
              help="Genes × genes correlation matrix (Parquet; first column the genes) or the "
                   "condensed folder of `twas gene-corr`, e.g. the cohort's 'within 5 Mb' "
                   "matrix.")
@click.option("--covars", default=None, help=_COVARS_HELP)
@click.option("--covariates", type=click.Path(exists=True, path_type=Path), default=None,
              help="Covariates table when --traits is a matrix: long 'trait, gene, n, "
                   "n_indep' (or the covariate columns), or gene-level without 'trait'.")
@click.option("--cohort-metadata-dir", type=click.Path(exists=True, file_okay=False,
                                                       path_type=Path), default=None,
              help="The cohort's metadata folder (PhenoPLIER's): its gene_tissues.parquet "
                   "(gene_name, n_snps_used_sum, unique_n_snps_used) gives the SNP-level "
                   "covariates.")
@click.option("--standardize-y-over", type=click.Choice(["fitted", "trait-and-model"]),
              default="fitted", show_default=True,
              help="fitted: y standardized over the genes of each fit (trait ∩ LV model ∩ "
                   "correlation matrix); trait-and-model: over trait ∩ LV model, then "
                   "restricted to the matrix's genes, as PhenoPLIER's production runs do "
                   "(same t and p; β and SE rescaled).")
@click.option("--mode", type=click.Choice(["submatrix", "full"]), default="submatrix",
              show_default=True,
              help="submatrix: R is the identity except among each LV's top genes (the "
                   "reference); full: the whole matrix for every LV.")
@click.option("--predictor", type=click.Choice(["binary", "continuous"]), default="binary",
              show_default=True, help="binary: 1 for the LV's top genes (the reference); "
                                      "continuous: the standardized loadings.")
@click.option("--top-fraction", type=click.FloatRange(min=0, max=1, min_open=True),
              default=0.01, show_default=True,
              help="Fraction of top genes per LV (predictor and sub-matrix block).")
@click.option("--scale", type=click.Choice(["pvalue", "neglog10p"]), default="pvalue",
              show_default=True, help="What the trait values are (matrix input).")
@click.option("--lvs", default=None, help="Only these LVs (comma-separated names).")
@click.option("--condition-on", default=None,
              help="Test each LV given other LVs in the design: 'overlap' (the LVs whose top "
                   "genes overlap its own, Jaccard ≥ --overlap-threshold), 'significant' "
                   "(per trait, forward selection among its marginal discoveries at FDR < "
                   "0.05, each step logged), or comma-separated LV names. Adds the columns "
                   "conditioned_on and pvalue_onesided_marginal.")
@click.option("--overlap-threshold", type=click.FloatRange(0, 1, min_open=True), default=0.2,
              show_default=True, help="Jaccard index of top-gene sets for --condition-on "
                                      "overlap.")
@click.option("--condition-predictor", type=click.Choice(["binary", "continuous"]),
              default=None, help="The conditioning LVs' columns (default: as --predictor); "
                                 "continuous: their loadings, the whole module rather than "
                                 "its top genes.")
@click.option("--joint", is_flag=True,
              help="Fit the LVs of --lvs together per trait; one row per LV with its "
                   "coefficient given the others.")
@click.option("--coefficients", is_flag=True,
              help="Also report the intercept's and every covariate's beta, SE, t and "
              "two-sided p (columns intercept_beta, <covariate>_beta, …); marginal model only.")
@click.option("--name-pattern", default=None,
              help="Regex with a (?P<trait>…) group taking trait names from file names "
                   "(default strips '-gtex_v8…', '-smultixcan…' and the extension).")
@scheduler_option("trait chunks")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Result table (.parquet with run metadata, or .tsv/.csv[.gz]): lv, trait, "
                   "n, beta, beta_se, t, pvalue_twosided, pvalue_onesided, fdr.")
@click.option("--qq", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a QQ plot (PNG) of all one-sided p-values here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out (and --qq) file.")
@click.pass_obj
def gls(obj: Obj, lv_model, lv_l2, traits_path, gene_corr, covars, covariates,
        cohort_metadata_dir, standardize_y_over, mode, predictor,
        top_fraction, scale, lvs, condition_on, overlap_threshold, condition_predictor, joint,
        name_pattern, coefficients, scheduler, out, qq, overwrite) -> None:
    """PhenoPLIER's GLS association of every LV with every trait.

    For each LV and trait: y = −log10 p (standardized) regressed on the LV's top-gene
    indicator (and covariates) with gene–gene correlated errors; reports β, SE, t, two- and
    one-sided p (H1: β > 0) and BH FDR over all pairs.

    \b
    Examples:
      gpu-engine gls --lv-model Z.parquet --traits smultixcan/ \\
          --gene-corr gene_corrs-within_5mb.parquet --out gls.parquet
      gpu-engine --backend gpu gls --lv-model Z.parquet --traits smultixcan/ \\
          --gene-corr R.parquet --covars all --mode full --out gls_full.parquet
      gpu-engine gls --lv-model Z.parquet --traits smultixcan/ --gene-corr R.parquet \\
          --condition-on significant --condition-predictor continuous --out gls_cond.parquet
      gpu-engine gls … --lvs LV246,LV45 --joint --out joint.tsv
    """
    from ..distributed import describe, get_client
    from ..gls import associate, read_traits
    from ..io import read_table, run_metadata

    check_output(out, overwrite=overwrite, what="--out", table=True)
    check_output(qq, overwrite=overwrite, what="--qq")
    if joint and (condition_on or len(split_list(lvs)) < 2):
        raise click.UsageError("--joint needs --lvs with two or more LVs and no --condition-on")
    if coefficients and (joint or condition_on):
        raise click.UsageError("--coefficients is offered for the marginal model only (not "
                               "with --joint or --condition-on)")
    if standardize_y_over != "fitted" and (joint or condition_on):
        raise click.UsageError("--standardize-y-over trait-and-model is offered for the "
                               "marginal model only (not with --joint or --condition-on)")
    if condition_on is not None and condition_on not in ("overlap", "significant"):
        condition_on = split_list(condition_on)
    con = _console()
    be = _backend(obj)
    covar_list = _covars(covars)
    progress = _progress_enabled()
    t0 = time.perf_counter()
    client = None
    try:
        Z = load_lv_model(lv_model, lv_l2, obj).Z
        R = _read_gene_corr(gene_corr)
        traits, derived, report = read_traits(traits_path, with_counts=bool(covar_list)
                                          and covariates is None,
                                          name_pattern=name_pattern, progress=progress)
        cov = read_table(covariates, what="covariates") if covariates else derived
        from ..gls import SNP_COVARIATES

        if cohort_metadata_dir is not None and set(covar_list) & set(SNP_COVARIATES):
            from ..gls import snp_covariates, with_gene_table

            gt = read_table(cohort_metadata_dir / "gene_tissues.parquet",
                            what="cohort gene_tissues metadata")
            cov = with_gene_table(cov if isinstance(cov, dict) else None,
                                  snp_covariates(gt), list(traits.columns)) \
                if not hasattr(cov, "columns") else cov.merge(snp_covariates(gt), on="gene",
                                                             how="left")
        client = get_client(scheduler)
        common = {"mode": mode, "predictor": predictor, "top_fraction": top_fraction,
                  "covars": covar_list, "scale": "pvalue" if report is not None else scale,
                  "backend": be}
        if joint:
            from ..gls import joint_associate

            res = joint_associate(Z, traits, R, cov, lvs=split_list(lvs), **common)
        else:
            res = associate(Z, traits, R, cov, lvs=split_list(lvs) or None, client=client,
                            progress=progress, condition_on=condition_on,
                            overlap_threshold=overlap_threshold,
                            condition_predictor=condition_predictor,
                            standardize_y_over=standardize_y_over.replace("-", "_"),
                            coefficients=coefficients, **common)
        params = {"condition_on": condition_on, "standardize_y_over": standardize_y_over,
                  "coefficients": coefficients,
                  "overlap_threshold": overlap_threshold,
                  "condition_predictor": condition_predictor, "joint": joint,
                  "selection": res.attrs.get("selection"),
                  "mode": mode, "predictor": predictor, "top_fraction": top_fraction,
                  "covars": covar_list, "scale": scale, "lvs": split_list(lvs),
                  "alignment": res.attrs.get("alignment"), "skipped": res.attrs.get("skipped"),
                  "missing_genes": res.attrs.get("missing_genes"),
                  "cluster": describe(client)}
        inputs = [lv_model, gene_corr] + ([traits_path] if traits_path.is_file() else [])
        res.attrs.update(run_metadata(backend=be, parameters=params, inputs=inputs,
                                      command="gls"))
        res.save(out)
        if qq:
            from ..gls import qq_plot

            qq_plot(res, qq, highlight=[], title="GLS one-sided p-values, all pairs")
    finally:
        if client is not None:
            client.close()
    if report is not None:
        con.print(f"read {len(report):,} S-MultiXcan files: {int(report['duplicated'].sum()):,} "
                  "duplicated gene names (first kept), "
                  f"{int(report['nan_pvalue'].sum()):,} NaN p-values (dropped), "
                  f"{int(report['zero_pvalue'].sum()):,} zero p-values (→ smallest / 10)")
    _summary(con, res, seconds=time.perf_counter() - t0, be=be, out=out)
    if qq:
        con.print(f"QQ plot written to {qq}")


@click.command("gls-null", context_settings=CONTEXT)
@lv_model_options()
@click.option("--gene-corr", type=click.Path(exists=True, path_type=Path), required=True,
              help="Genes × genes correlation matrix the null traits are drawn from.")
@click.option("--n-null", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Number of simulated null traits.")
@click.option("--mode", type=click.Choice(["submatrix", "full"]), default="submatrix",
              show_default=True, help="GLS mode (as in `gpu-engine gls`).")
@click.option("--predictor", type=click.Choice(["binary", "continuous"]), default="binary",
              show_default=True, help="LV predictor (as in `gpu-engine gls`).")
@click.option("--top-fraction", type=click.FloatRange(min=0, max=1, min_open=True),
              default=0.01, show_default=True, help="Fraction of top genes per LV.")
@click.option("--lvs", default=None, help="Only these LVs (comma-separated names).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--null-model", type=click.Choice(["normal", "chi2"]), default="normal",
              show_default=True,
              help="normal: z ~ MVN(0, R), p = 2Φ(−|z|); chi2: S-MultiXcan-like statistics, the "
                   "sum of n_indep squared MVN(0, R) draws per gene (needs --n-indep).")
@click.option("--n-indep", "n_indep_path", type=click.Path(exists=True, path_type=Path),
              default=None,
              help="Table with each gene's n_indep (columns gene or gene_name, n_indep), e.g. "
                   "one S-MultiXcan result of the cohort; for --null-model chi2.")
@scheduler_option("trait chunks")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to create: calibration.tsv (per LV), null_results.parquet, qq.png.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@click.pass_obj
def gls_null(obj: Obj, lv_model, lv_l2, gene_corr, n_null, mode, predictor, top_fraction, lvs, seed,
             null_model, n_indep_path, scheduler, out, overwrite) -> None:
    """Null calibration: each LV's empirical type-I error on simulated null traits.

    Null gene-level statistics are drawn as z ~ MVN(0, R) from the gene correlation matrix
    (p = 2Φ(−|z|); or, with --null-model chi2, S-MultiXcan-like χ² statistics with each
    gene's n_indep degrees of freedom), run through the same GLS, and each LV's rate of one-sided p < 0.05 and
    < 0.01 is compared with α (one-sided binomial test, Bonferroni over LVs and levels);
    LVs with an excess are flagged as inflated. Also writes a QQ plot.

    \b
    Example:
      gpu-engine gls-null --lv-model Z.parquet --gene-corr R.parquet --n-null 1000 \\
          --out gls_null/
    """
    from ..distributed import get_client
    from ..gls import null_calibration
    from ..io import read_table, run_metadata

    check_output(out, folder=True, overwrite=overwrite, what="--out")
    con = _console()
    be = _backend(obj)
    t0 = time.perf_counter()
    client = None
    try:
        Z = load_lv_model(lv_model, lv_l2, obj).Z
        R = _read_gene_corr(gene_corr)
        n_indep = (read_table(n_indep_path, what="n_indep table") if n_indep_path else None)
        client = get_client(scheduler)
        cal = null_calibration(Z, R, n_null=n_null, mode=mode, predictor=predictor,
                               top_fraction=top_fraction, lvs=split_list(lvs) or None, seed=seed,
                               null_model=null_model, n_indep=n_indep, backend=be,
                               client=client, progress=_progress_enabled())
        meta = run_metadata(backend=be, inputs=[lv_model, gene_corr], command="gls-null",
                            parameters={"n_null": n_null, "mode": mode, "seed": seed,
                                        "null_model": null_model,
                                        "predictor": predictor, "top_fraction": top_fraction})
        cal.save(out, overwrite=overwrite, metadata=meta)
    finally:
        if client is not None:
            client.close()
    tab = cal.table
    con.print(f"[bold]GLS null calibration[/bold]: {n_null:,} null traits × {len(tab):,} LVs "
              f"in {time.perf_counter() - t0:.1f} s on {be.name}")
    for a in cal.alphas:
        col = tab[f"type1_{a:g}"]
        con.print(f"  type-I error at α = {a:g}: median {col.median():.4f}, "
                  f"range {col.min():.4f}–{col.max():.4f}")
    n_inf = int(tab["inflated"].sum())
    con.print(f"  inflated LVs: {n_inf}" + (f" ({', '.join(cal.inflated[:10])}"
                                            f"{' …' if n_inf > 10 else ''})" if n_inf else ""))
    con.print(f"written to {out}/ (calibration.tsv, null_results.parquet, qq.png)")
