"""``gpu-engine lv genes | enrich | context``: what a significant LV means."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ._common import CONTEXT, Obj, check_output, load_lv_model, lv_model_options, split_list
from ._common import console as _console


@click.group(context_settings=CONTEXT)
def lv() -> None:
    """Module analysis: the genes behind a significant LV, and where an LV is enriched.

    \b
      genes    top genes of every significant LV–trait pair with their TWAS p; a module
               gene score per trait ranked beside the TWAS ranking
      enrich   per LV, the enrichment of a gene set (e.g. CRISPR screen hits) in its loadings
      context  per LV, the sample attributes (tissue, cell type…) over-represented among the
               samples where it is most active
    """


def _table(path: Path, what: str):
    from ..io import read_table

    return read_table(path, what=what)


@lv.command("genes", context_settings=CONTEXT)
@click.option("--gls", "gls_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="GLS results (`gpu-engine gls --out`): lv, trait, beta, fdr.")
@lv_model_options(help="The LV model the GLS run used (folder or genes × LVs Z matrix).")
@click.option("--traits", "traits_path", type=click.Path(exists=True, path_type=Path),
              required=True, help="The trait gene p-values the GLS run used (a folder of "
                                  "S-MultiXcan results, one file, or a genes × traits matrix).")
@click.option("--fdr", type=click.FloatRange(0, 1, min_open=True), default=0.05,
              show_default=True, help="Pairs with FDR below this (and β > 0) are analysed.")
@click.option("--top-fraction", type=click.FloatRange(0, 1, min_open=True), default=0.01,
              show_default=True, help="An LV's top genes: this fraction, by loading.")
@click.option("--twas-threshold", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="A gene's TWAS p at or above this is 'missed by the TWAS' (default: "
                   "Bonferroni, 0.05 / the trait's genes).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Core-gene table (.tsv/.csv/.parquet): trait, lv, gene, loading, "
                   "loading_rank, twas_pvalue, twas_rank, module_only, lv_beta, lv_fdr.")
@click.option("--scores", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the per-trait module gene scores here: trait, gene, score, "
                   "rank, n_lvs, twas_pvalue, twas_rank.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG: one pair's top genes, loading against −log10 TWAS p.")
@click.option("--plot-trait", default=None, help="The pair to plot: its trait (default: the "
                                                 "most significant pair).")
@click.option("--plot-lv", default=None, help="The pair to plot: its LV.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.pass_obj
def genes(obj: Obj, gls_path, lv_model, lv_l2, traits_path, fdr, top_fraction, twas_threshold,
          out, scores, plot, plot_trait, plot_lv, overwrite) -> None:
    """Top genes of every significant LV–trait pair, and module gene scores.

    For each pair with FDR < --fdr: the LV's top genes with their loading and the trait's
    own TWAS p; 'module_only' marks genes the module implicates but the TWAS alone misses.
    With --scores: per trait, score(g) = Σ β_ℓ · Z_gℓ / max Z_ℓ over the trait's significant
    LVs (the association the trait's modules predict for the gene), ranked.

    \b
    Example:
      gpu-engine lv genes --gls gls.parquet --lv-model Z.parquet --traits smultixcan/ \\
          --out core_genes.tsv --scores gene_scores.parquet --plot core.png
    """
    from ..gls import GLSResults, read_traits
    from ..lv_analysis import core_genes, gene_scores

    for path, what in ((out, "--out"), (scores, "--scores")):
        check_output(path, overwrite=overwrite, what=what, table=True)
    check_output(plot, overwrite=overwrite, what="--plot")
    con = _console()
    t0 = time.perf_counter()
    res = GLSResults.load(gls_path)
    Z = load_lv_model(lv_model, lv_l2, obj).Z
    traits, _, report = read_traits(traits_path)
    if report is None:  # a matrix: values as given (p-values)
        traits = traits.astype(float)
    core = core_genes(res, Z, traits, fdr=fdr, top_fraction=top_fraction,
                      twas_threshold=twas_threshold)
    core.save(out)
    if scores:
        gs = gene_scores(res, Z, traits, fdr=fdr)
        gs.save(scores)
    if plot and len(core):
        from ..lv_analysis.plots import core_genes_plot

        core_genes_plot(core, plot, trait=plot_trait, lv=plot_lv)
    pairs = core[["trait", "lv"]].drop_duplicates()
    con.print(f"[bold]core genes[/bold]: {len(pairs):,} significant LV–trait pairs "
              f"(FDR < {fdr:g}), {len(core):,} top genes, {int(core['module_only'].sum()):,} "
              f"of them missed by the TWAS alone, in {time.perf_counter() - t0:.1f} s")
    if len(core):
        first = core.iloc[0]
        miss = core[(core["trait"] == first["trait"]) & (core["lv"] == first["lv"])
                    & core["module_only"]]["gene"].head(8).tolist()
        con.print(f"most significant pair: {first['lv']} × {first['trait']}; implicated by "
                  f"the module only: {', '.join(map(str, miss)) or 'none'}")
    con.print(f"written to {out}" + (f", {scores}" if scores else "")
              + (f", {plot}" if plot and len(core) else ""))


def _gene_set(path: Path, name: str | None):
    from ..errors import InputError
    from ..io import read_gene_sets

    low = path.name.lower()
    if low.endswith((".gmt", ".gmt.gz", ".parquet")) or name:
        sets = read_gene_sets(path)
        if name is None:
            if len(sets) != 1:
                raise InputError(f"{path}: holds {len(sets)} gene sets; choose one with --set "
                                 f"({', '.join(list(sets)[:5])}{' …' if len(sets) > 5 else ''})")
            name = next(iter(sets))
        if name not in sets:
            raise InputError(f"{path}: no gene set named {name!r}")
        return name, list(sets[name])
    from ..io.reading import reading

    with reading(path, what="gene list"):
        genes = [line.split("\t")[0].strip() for line in path.read_text().splitlines()]
    genes = [g for g in genes if g and not g.startswith("#")]
    if not genes:
        raise InputError(f"{path}: no genes (one gene per line expected)")
    return path.stem, genes


@lv.command("enrich", context_settings=CONTEXT)
@lv_model_options()
@click.option("--gene-set", "gene_set", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path), required=True,
              help="The genes: a text file with one gene per line, or a GMT / long (gene, "
                   "pathway) table with --set naming the set.")
@click.option("--set", "set_name", default=None, help="The set's name in a GMT or table.")
@click.option("--lvs", default=None, help="Only these LVs (comma-separated).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Per-LV table (.tsv/.csv/.parquet): lv, auc, pvalue, fdr, n_in_set, "
                   "n_genes, top_set_genes.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG: −log10 p of the 20 most enriched LVs.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.pass_obj
def enrich(obj: Obj, lv_model, lv_l2, gene_set, set_name, lvs, out, plot, overwrite) -> None:
    """Enrichment of a gene set in every LV's loadings.

    The set's loadings against the other genes' (Mann–Whitney U: AUC and one-sided p with
    the tie-corrected normal approximation — the test of PLIER's pathway annotation), BH FDR
    over LVs; and each set gene's top LVs.

    \b
    Example:
      gpu-engine lv enrich --lv-model Z.parquet --gene-set crispr_hits.txt \\
          --out enrich.tsv --plot enrich.png
    """
    from ..lv_analysis import gene_set_enrichment

    check_output(out, overwrite=overwrite, what="--out", table=True)
    check_output(plot, overwrite=overwrite, what="--plot")
    con = _console()
    Z = load_lv_model(lv_model, lv_l2, obj).Z
    name, genes_ = _gene_set(gene_set, set_name)
    res = gene_set_enrichment(Z, genes_, lvs=split_list(lvs) or None, name=name)
    res.save(out)
    if plot:
        from ..lv_analysis.plots import enrichment_plot

        enrichment_plot(res, plot, title=f"enrichment of {name} by LV")
    sig = res[res["fdr"] < 0.05]
    con.print(f"[bold]{name}[/bold]: {int(res['n_in_set'].iloc[0]):,} of its "
              f"{len(set(genes_)):,} genes in the model; {len(sig):,} of {len(res):,} LVs "
              "enriched at FDR < 0.05")
    for r in res.head(5).itertuples():
        con.print(f"  {r.lv}: AUC {r.auc:.3f}, p {r.pvalue:.3g}, FDR {r.fdr:.3g} "
                  f"(top set genes {r.top_set_genes})")
    con.print(f"written to {out}" + (f", {plot}" if plot else ""))


def _read_B(path: Path):
    from ..io import read_matrix

    if path.is_dir():
        path = path / "B.parquet"
    return read_matrix(path, what="B (LVs × samples)")


@lv.command("context", context_settings=CONTEXT)
@click.option("--b", "b_path", type=click.Path(exists=True, path_type=Path), required=True,
              help="A PLIER model folder (`gpu-engine plier fit`; its B) or a B matrix, LVs × "
                   "samples (first column the LVs).")
@click.option("--metadata", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Sample metadata table: first column the sample ids of B, "
                                  "then attributes (tissue, cell_type, condition…).")
@click.option("--attributes", default=None,
              help="Columns to test (comma-separated; default all with 2–1,000 values).")
@click.option("--top-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True, help="An LV's top samples by B.")
@click.option("--lvs", default=None, help="Only these LVs (comma-separated).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Table (.tsv/.csv/.parquet): lv, attribute, value, n_top_with, n_top, "
                   "n_with, n_samples, fold, pvalue, fdr.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG: −log10 p of the 20 strongest LV × attribute values.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
def context(b_path, metadata, attributes, top_fraction, lvs, out, plot, overwrite) -> None:
    """Sample contexts over-represented among each LV's most active samples.

    For each LV, its top --top-fraction samples by B; for each attribute value, a one-sided
    hypergeometric test (Fisher's exact test) of over-representation against all samples
    with that attribute; BH FDR over every LV × value.

    \b
    Example:
      gpu-engine lv context --b plier_model/ --metadata samples.tsv --out context.tsv \\
          --plot context.png
    """
    from ..lv_analysis import context_enrichment

    check_output(out, overwrite=overwrite, what="--out", table=True)
    check_output(plot, overwrite=overwrite, what="--plot")
    con = _console()
    B = _read_B(b_path)
    meta = _table(metadata, "sample metadata")
    meta = meta.set_index(meta.columns[0])
    res = context_enrichment(B, meta, attributes=split_list(attributes) or None,
                             top_fraction=top_fraction, lvs=split_list(lvs) or None)
    res.save(out)
    if plot and len(res):
        from ..lv_analysis.plots import enrichment_plot

        enrichment_plot(res, plot)
    sig = res[res["fdr"] < 0.05]
    con.print(f"[bold]LV contexts[/bold]: {res['lv'].nunique():,} LVs × "
              f"{len(res.attrs.get('attributes', [])):,} attribute(s), {len(res):,} tests; "
              f"{len(sig):,} over-represented at FDR < 0.05")
    for r in sig.head(8).itertuples():
        con.print(f"  {r.lv}: {r.attribute} = {r.value} ({r.n_top_with}/{r.n_top} top samples "
                  f"vs {r.n_with}/{r.n_samples}; fold {r.fold:.1f}, FDR {r.fdr:.2g})")
    con.print(f"written to {out}" + (f", {plot}" if plot and len(res) else ""))
