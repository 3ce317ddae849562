"""``gpu-engine twas spredixcan|smultixcan|gene-corr``.

The first two are drop-in replacements for MetaXcan's ``SPrediXcan.py`` and ``SMulTiXcan.py``:
every flag of a user's command line is accepted under its MetaXcan spelling (``--model_db_path``)
and the same output file with the same columns is written. Flags also have the dashed
spelling (``--model-db-path``).
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import click

from ..errors import InputFileNotFoundError
from ._common import CONTEXT, Obj, check_output, scheduler_option
from ._common import console as _console
from ._common import progress_enabled as _progress_enabled
from ._metaxcan import MetaXcanCommand, apply_format_json, note_no_effect


def _opt(name: str, **kw):
    """An option spelled both as MetaXcan does (``--a_b``) and dashed (``--a-b``)."""
    flags = [f"--{name}"]
    if "_" in name:
        flags.append("--" + name.replace("_", "-"))
    return click.option(*flags, name, **kw)


def _gwas_options(f):
    opts = [
        _opt("gwas_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
             help="One GWAS file (alternative to --gwas_folder)."),
        _opt("gwas_folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
             help="Folder of GWAS files of one study (each parsed on its own, then joined)."),
        _opt("gwas_file_pattern", default=None,
             help="Regular expression selecting files in --gwas_folder."),
        _opt("snp_column", default="SNP", show_default=True, help="SNP id column."),
        _opt("effect_allele_column", default="A1", show_default=True),
        _opt("non_effect_allele_column", default="A2", show_default=True),
        _opt("chromosome_column", default=None), _opt("position_column", default=None),
        _opt("freq_column", default=None, help="Accepted; no effect (MetaXcan does not "
             "use it either)."),
        _opt("beta_column", default=None), _opt("beta_sign_column", default=None,
                                                 help="'+'/'-' sign column (with --pvalue_column)."),
        _opt("or_column", default=None, help="Odds ratio column; beta = log(OR)."),
        _opt("se_column", default=None), _opt("zscore_column", default=None),
        _opt("pvalue_column", default=None),
        _opt("separator", default=None, help="Field separator (default: any whitespace)."),
        _opt("skip_until_header", default=None,
             help="Skip everything before this text (the start of the header)."),
        _opt("input_pvalue_fix", type=float, default=1e-50, show_default=True,
             help="p = 0 is replaced by min(smallest non-zero p, this); 0 gives infinite z."),
        _opt("keep_non_rsid", is_flag=True, help="Keep SNP ids without 'rs' (needed with "
             "--model_db_snp_key varID)."),
        _opt("handle_empty_columns", is_flag=True, help="Split fields at every single "
             "separator character, so that empty fields are missing values (files with "
             "unfilled columns). Without it, a line whose field count differs from the "
             "header's is skipped and counted, as MetaXcan does."),
        _opt("snp_map_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
             default=None, help="Map of GWAS variants to the models' (columns rsid a0 a1 "
             "panel_variant_id panel_variant_a0 panel_variant_a1 swap): GWAS rows are aligned "
             "to a1/a0, signed by swap and re-keyed to the panel's ids and alleles."),
        _opt("input_gwas_format_json", type=click.Path(exists=True, dir_okay=False,
             path_type=Path), default=None, help="JSON of column names (column_snp, "
             "column_pvalue, …); column flags given on the command line override it."),
        _opt("split_column", multiple=True, help="Accepted, no effect (MetaXcan: 'present "
             "for future compatibility')."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _common(f):
    for o in reversed([
        _opt("verbosity", default="10", help="MetaXcan log level: 1 logs everything, 10 only "
             "high-level messages."),
        _opt("throw", is_flag=True, help="Show the full traceback on error."),
    ]):
        f = o(f)
    return f


def _columns(kw):
    from ..twas import GwasColumns

    return GwasColumns(snp=kw["snp_column"], effect_allele=kw["effect_allele_column"],
                       non_effect_allele=kw["non_effect_allele_column"],
                       zscore=kw["zscore_column"], pvalue=kw["pvalue_column"],
                       beta=kw["beta_column"], se=kw["se_column"], odds_ratio=kw["or_column"],
                       beta_sign=kw["beta_sign_column"], chromosome=kw["chromosome_column"],
                       position=kw["position_column"])


GWAS_NO_EFFECT = {"split_column": "MetaXcan reserves it for future use",
                  "freq_column": "no statistic uses the allele frequency"}


def _read_gwas(kw, snps=None):
    from ..twas import read_gwas

    apply_format_json(kw, click.get_current_context())
    if kw["gwas_folder"] is not None and kw["gwas_file"] is not None:
        raise click.UsageError("give --gwas_file or --gwas_folder, not both (the reference "
                               "would ignore one of them)")
    source = kw["gwas_folder"] or kw["gwas_file"]
    if source is None:
        raise click.UsageError("give --gwas_file, or --gwas_folder (with --gwas_file_pattern)")
    return read_gwas(source, _columns(kw), file_pattern=kw["gwas_file_pattern"],
                     separator=kw["separator"], skip_until_header=kw["skip_until_header"],
                     input_pvalue_fix=kw["input_pvalue_fix"], keep_non_rsid=kw["keep_non_rsid"],
                     handle_empty_columns=kw["handle_empty_columns"],
                     snp_map=kw["snp_map_file"], snps=snps)


def _logging(verbosity: str) -> None:
    try:
        level = int(verbosity)
    except ValueError:
        raise click.BadParameter(f"--verbosity must be an integer, got {verbosity!r}") from None
    logging.getLogger("gpu_engine").setLevel(max(1, level))


def _skip_existing(out: Path, what_to_do: str) -> None:
    """The reference tools' rule for an existing output: skip the run and exit 0. Kept for
    drop-in scripts, but said as a WARNING on standard error (not only a message), so that a
    batch log shows which outputs were not recomputed."""
    logging.getLogger("gpu_engine.cli").warning("%s already exists: skipped, as MetaXcan "
                                                "does (%s)", out, what_to_do)
    _console(stderr=True).print(f"[yellow]warning[/yellow]: {out} already exists: skipped, as "
                                f"MetaXcan does ({what_to_do})")


def _require_overlap(report: dict, kw: dict) -> None:
    """No model SNP in the GWAS is an error, not a file of NA rows: the usual cause is a
    mismatch of SNP ids (rsid vs chr_pos_ref_alt) or the wrong --snp_column."""
    if report.get("in_gwas", 1) == 0:
        from ..errors import InputError

        gwas = kw.get("gwas_file") or kw.get("gwas_folder")
        raise InputError(f"{gwas}: none of the models' {report.get('model_snps', 0):,} SNPs is "
                         f"in the GWAS (SNP column {kw.get('snp_column')!r}); check that the "
                         "GWAS and the models use the same SNP ids (rsid or varID: "
                         "--model_db_snp_key) and the --snp_column")


def _run(throw: bool, fn):

    if throw:
        return fn()
    return fn()


def _backend(obj: Obj):
    from ..backend import get_backend

    return get_backend(obj.backend if obj.backend else "cpu")


def _report_table(title: str, rows: dict):
    from rich.table import Table

    t = Table(title=title)
    t.add_column("item")
    t.add_column("count", justify="right")
    labels = {"non_finite_z": "NaN/inf z (dropped)"}
    for k, v in rows.items():
        t.add_row(labels.get(k, k.replace("_", " ")), f"{v:,}" if isinstance(v, int) else str(v))
    return t


def _strip_version(genes):
    return genes.astype(str).str.replace(r"\.\d+$", "", regex=True)


@click.group(context_settings=CONTEXT)
def twas() -> None:
    """TWAS: S-PrediXcan, S-MultiXcan and gene–gene correlation matrices.

    Drop-in for MetaXcan: replace 'SPrediXcan.py' by 'gpu-engine twas spredixcan' and
    'SMulTiXcan.py' by 'gpu-engine twas smultixcan', keep every flag.

    \b
      gpu-engine twas spredixcan --model_db_path TW_Liver.db --covariance TW_Liver.txt.gz \\
          --gwas_folder gwas/ --gwas_file_pattern '.*gz' --beta_column BETA --se_column SE \\
          --output_file Liver.csv
      gpu-engine twas gene-corr --models_folder dbs/ --models_name_pattern 'mashr_(.*).db' \\
          --snp_covariance ld.txt.gz --genes genes.tsv --within-mb 5 --out gene_corr/
    """


@twas.command("spredixcan", cls=MetaXcanCommand, context_settings=CONTEXT)
@_opt("model_db_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
      default=None, help="PredictDB SQLite model database of one tissue.")
@_opt("model_db_snp_key", default="rsid", show_default=True,
      help="Weights column identifying variants: rsid or varID.")
@_opt("covariance", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
      help="The tissue's SNP covariance (GENE RSID1 RSID2 VALUE, gz).")
@_opt("models_folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
      default=None, help="Many tissues in one call (not in MetaXcan): a folder of model "
      "databases, with --models_name_pattern, --covariance_pattern and --output_folder. The "
      "GWAS is read once.")
@_opt("models_name_pattern", default=None,
      help="Regex whose last group is the tissue name, e.g. 'TW_(.*)_0.5.db'.")
@_opt("covariance_pattern", default=None,
      help="Each tissue's covariance file, with {tissue}, e.g. 'cov/TW_{tissue}.txt.gz'.")
@_opt("output_folder", type=click.Path(file_okay=False, path_type=Path), default=None,
      help="Folder for the tissues' result CSVs (see --output_pattern).")
@_opt("output_pattern", default="{tissue}.csv", show_default=True,
      help="Result file name per tissue, with {tissue}.")
@_gwas_options
@_opt("output_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
      help="Result CSV (MetaXcan's columns).")
@_opt("overwrite", is_flag=True, help="Replace an existing output file.")
@_opt("remove_ens_version", is_flag=True, help="Drop the '.N' version of gene ids.")
@_opt("additional_output", is_flag=True, help="Add the columns best_gwas_p (2Φ(−max |z|) over "
      "the SNPs used) and largest_weight (max |w| over them).")
@_opt("single_snp_model", is_flag=True, help="Accepted, no effect: single-SNP models need no "
      "option here.")
@_opt("stream_covariance", is_flag=True, help="Accepted, no effect: only the model's genes' "
      "blocks of the covariance are built, whatever its size.")
@_opt("gwas_h2", type=float, default=None, help="With --gwas_N: calibrate for inflation, "
      "z / √(1 + φ N h²) with the models' phi (extra.phi); genes without phi are dropped and "
      "the uncalibrated z and p kept in extra columns, as MetaXcan does.")
@_opt("gwas_N", type=float, default=None, help="GWAS sample size, with --gwas_h2.")
@_opt("MAX_R", type=int, default=None, help="Only the first R genes of the model.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the harmonization report (JSON).")
@_common
@click.pass_obj
def spredixcan_cmd(obj: Obj, **kw) -> None:
    """S-PrediXcan for one tissue: gene z-scores from GWAS summary statistics.

    Harmonizes the GWAS with the model's alleles (kept, flipped, dropped are reported), then
    for every gene z = Σ w σ z_snp / √(wᵀΓw); writes MetaXcan's CSV sorted by p-value.

    \b
    Example (the reference's own command line, program name replaced):
      gpu-engine twas spredixcan --model_db_path dbs/TW_Whole_Blood_0.5.db \\
          --covariance cov/TW_Whole_Blood.txt.gz --gwas_folder gwas \\
          --gwas_file_pattern '.*\\.txt\\.gz' --snp_column SNP --effect_allele_column A1 \\
          --non_effect_allele_column A2 --beta_column BETA --se_column SE \\
          --pvalue_column P --output_file Whole_Blood.csv
    """
    _logging(kw["verbosity"])
    con = _console(stderr=True)
    if kw["models_folder"] is not None:
        return _spredixcan_many(obj, kw, con)
    if kw["model_db_path"] is None or kw["covariance"] is None or kw["output_file"] is None:
        raise click.UsageError("give --model_db_path, --covariance and --output_file (one "
                               "tissue), or --models_folder with --models_name_pattern, "
                               "--covariance_pattern and --output_folder (many)")
    out: Path = kw["output_file"]
    check_output(out, what="--output_file")
    if out.exists() and not kw["overwrite"]:
        _skip_existing(out, "pass --overwrite (or move it) to run again")
        return
    _check_calibration(kw)
    note_no_effect(kw, {**GWAS_NO_EFFECT, **SPREDIXCAN_NO_EFFECT})
    be = _backend(obj)
    t0 = time.perf_counter()

    def work():
        from ..twas import read_covariance, read_model_db, spredixcan, write_spredixcan

        model = read_model_db(kw["model_db_path"], snp_key=kw["model_db_snp_key"])
        if model.empty:
            from ..twas.spredixcan import empty_result

            write_spredixcan(empty_result(), out)
            return None, {"empty_model": True}, model
        if kw["MAX_R"]:
            keep = model.genes[:kw["MAX_R"]]
            model.weights = model.weights.loc[model.weights["gene"].isin(keep)]
            model.extra = model.extra.loc[model.extra["gene"].isin(keep)]
        gwas = _read_gwas(kw, snps=set(model.weights["snp"]))
        cov = read_covariance(kw["covariance"], genes=model.genes)
        res, rep = spredixcan(model, cov, gwas, additional=kw["additional_output"], backend=be)
        _require_overlap(rep, kw)
        res = _calibrate(res, kw, kw["model_db_path"])
        if kw["remove_ens_version"]:
            res["gene"] = _strip_version(res["gene"])
        write_spredixcan(res, out)
        rep["files"] = gwas.files.to_dict(orient="records")
        return res, rep, model

    res, rep, model = _run(kw["throw"], work)
    if kw["report"]:
        import json

        kw["report"].write_text(json.dumps(rep, indent=2, default=str))
    if res is None:
        con.print(f"[yellow]{kw['model_db_path']}: the model database has no weights; wrote an "
                  f"empty result to {out}[/]")
        return
    rows = {k: rep[k] for k in ("model_snps", "in_gwas", "kept", "flipped", "allele_mismatch",
                                "duplicated", "missing_from_gwas", "non_finite_z")
            if k in rep}
    con.print(_report_table("GWAS harmonization (model SNPs)", rows))
    sig = int((res["pvalue"] < 0.05 / max(len(res), 1)).sum())
    con.print(f"S-PrediXcan: {rep['genes_tested']:,} of {rep['genes_in_model']:,} genes tested "
              f"({rep['genes_without_snps']:,} without a usable SNP), {sig:,} Bonferroni-"
              f"significant; {time.perf_counter() - t0:.1f} s on {be.name}; wrote {out}")
    if len(res):
        top = res.iloc[0]
        con.print(f"top gene: {top['gene_name']} ({top['gene']}), z = {top['zscore']:.3f}, "
                  f"p = {top['pvalue']:.3g}")


SPREDIXCAN_NO_EFFECT = {
    "single_snp_model": "single-SNP models need no option",
    "stream_covariance": "only the model genes' covariance blocks are built"}


def _check_calibration(kw: dict) -> None:
    if (kw["gwas_h2"] is None) != (kw["gwas_N"] is None):
        raise click.UsageError("phi calibration needs both --gwas_h2 and --gwas_N (MetaXcan "
                               "calibrates only when both are given)")


def _calibrate(res, kw: dict, db: Path):
    """The reference's phi calibration, when --gwas_h2 and --gwas_N are given."""
    if kw["gwas_h2"] is None:
        logging.getLogger("gpu_engine.cli").info("the p-values and z-scores are not calibrated "
                                                 "for inflation (no --gwas_h2/--gwas_N)")
        return res
    from ..twas.models import read_phi
    from ..twas.spredixcan import calibrate_phi

    return calibrate_phi(res, read_phi(db), kw["gwas_N"], kw["gwas_h2"])


def _spredixcan_many(obj: Obj, kw: dict, con) -> None:
    """S-PrediXcan for every tissue of a model folder: the GWAS is read once (restricted to
    the union of the models' SNPs), then each tissue as in the one-tissue mode."""
    from ..twas import read_model_db, spredixcan_tissues, write_spredixcan

    missing = [f"--{k}" for k in ("models_name_pattern", "covariance_pattern", "output_folder")
               if kw[k] is None]
    if missing or kw["model_db_path"] is not None or kw["output_file"] is not None:
        raise click.UsageError("with --models_folder give " + ", ".join(
            missing or ["--models_name_pattern, --covariance_pattern and --output_folder"])
            + " (and no --model_db_path / --output_file)")
    for pat in ("covariance_pattern", "output_pattern"):
        if "{tissue}" not in kw[pat]:
            raise click.BadParameter(f"{kw[pat]!r} has no {{tissue}}", param_hint=f"--{pat}")
    _check_calibration(kw)
    note_no_effect(kw, {**GWAS_NO_EFFECT, **SPREDIXCAN_NO_EFFECT})
    be = _backend(obj)
    t0 = time.perf_counter()
    folder: Path = kw["output_folder"]
    check_output(folder, folder=True, what="--output_folder")
    from ..twas import model_files

    files = model_files(kw["models_folder"], kw["models_name_pattern"])
    outs = {t: folder / kw["output_pattern"].format(tissue=t) for t in files}
    todo = {t: f for t, f in files.items() if kw["overwrite"] or not outs[t].exists()}
    for t in sorted(set(files) - set(todo)):
        _skip_existing(outs[t], "pass --overwrite to run it again")
    covs = {t: Path(kw["covariance_pattern"].format(tissue=t)) for t in todo}
    absent = [str(c) for c in covs.values() if not c.is_file()]
    if absent:
        raise InputFileNotFoundError(f"no covariance file for {len(absent)} tissue(s): "
                                     f"{', '.join(absent[:3])}; check --covariance_pattern")
    models = {t: read_model_db(f, snp_key=kw["model_db_snp_key"], tissue=t)
              for t, f in todo.items()}
    snps = set().union(*(set(m.weights["snp"]) for m in models.values())) if models else set()
    t_read = time.perf_counter()
    gwas = _read_gwas(kw, snps=snps) if models else None
    t_read = time.perf_counter() - t_read
    results, report = (spredixcan_tissues(models, covs, gwas, backend=be,
                                          additional=kw["additional_output"],
                                          progress=_progress_enabled())
                       if models else ({}, None))
    if report is not None and "in_gwas" in report and report["in_gwas"].fillna(0).sum() == 0:
        _require_overlap({"in_gwas": 0, "model_snps": int(report["model_snps"].sum())}, kw)
    folder.mkdir(parents=True, exist_ok=True)
    for t, res in results.items():
        res = _calibrate(res, kw, todo[t])
        if kw["remove_ens_version"]:
            res["gene"] = _strip_version(res["gene"])
        write_spredixcan(res, outs[t])
    if kw["report"] and report is not None:
        report.to_json(kw["report"], orient="records", indent=1)
    tested = int(report["genes_tested"].sum()) if report is not None else 0
    con.print(f"S-PrediXcan: {len(results):,} tissue(s) ({len(files) - len(todo):,} skipped, "
              f"output present), {tested:,} gene–tissue tests; GWAS read once in "
              f"{t_read:.1f} s; {time.perf_counter() - t0:.1f} s in all on {be.name}; wrote "
              f"{folder}/")


def _tissue_from(name: str, pattern: re.Pattern | None) -> str:
    if pattern is None:
        return Path(name).stem
    m = pattern.search(name)
    return m.groups()[-1] if m and m.groups() else Path(name).stem


def _models(folder: Path, pattern: str, snp_key: str, progress: bool, name_filter=()):
    from ..progress import track
    from ..twas import model_files, read_model_db

    files = model_files(folder, pattern)
    if name_filter:
        rx = [re.compile(f) for f in name_filter]
        files = {t: f for t, f in files.items() if any(r.search(f.name) for r in rx)}
        if not files:
            raise click.BadParameter(f"no model file of {folder} matches {list(name_filter)}",
                                     param_hint="--models_name_filter")
    return {t: read_model_db(f, snp_key=snp_key, tissue=t)
            for t, f in track(files.items(), "models", total=len(files), enabled=progress)}


def _cleared_snps(path: Path):
    import pandas as pd

    from ..errors import InputError

    d = pd.read_csv(path, sep=r"\s+", dtype=str)
    if "rsid" not in d:
        raise InputError(f"{path}: no column 'rsid' (--cleared_snps is a table of the SNPs to "
                         f"use, with a column rsid; columns: {list(d.columns)[:6]})")
    return d["rsid"].dropna().unique()



@twas.command("smultixcan", cls=MetaXcanCommand, context_settings=CONTEXT)
@_opt("models_folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
      required=True, help="Folder of model databases.")
@_opt("models_name_pattern", required=True,
      help="Regex whose group is the tissue name, e.g. 'TW_(.*)_0.5.db'.")
@_opt("model_db_snp_key", default="rsid", show_default=True)
@_opt("snp_covariance", type=click.Path(exists=True, dir_okay=False, path_type=Path),
      required=True, help="Global SNP covariance (one block per gene over all its tissues).")
@_opt("metaxcan_folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
      required=True, help="Folder of S-PrediXcan results.")
@_opt("metaxcan_filter", multiple=True, default=(".*csv",), show_default=True,
      help="Regex selecting result files (repeatable).")
@_opt("metaxcan_file_name_parse_pattern", default=None,
      help="Regex whose last group is the tissue name, e.g. 'TW_(.*).csv'.")
@_gwas_options
@_opt("cutoff_condition_number", type=float, default=None,
      help="Keep SVD components with s ≥ λ_max / this (usually 30).")
@_opt("cutoff_eigen_ratio", type=float, default=None,
      help="Keep components with s ≥ this × λ_max.")
@_opt("cutoff_trace_ratio", type=float, default=None,
      help="Keep components with s ≥ this × trace(R).")
@_opt("cutoff_threshold", type=float, default=None,
      help="Keep components down to the eigenvalue before the one at which the descending "
      "cumulative sum first exceeds (1 − this) × trace(R). One cutoff rule is required; "
      "several: the first of eigen ratio, trace ratio, threshold, condition number.")
@_opt("regularization", type=float, default=None,
      help="Invert R + εI (the cutoff still from R).")
@_opt("cleared_snps", type=click.Path(exists=True, dir_okay=False, path_type=Path),
      default=None, help="The SNP set of the tissue correlations, instead of the GWAS's "
      "aligned SNPs: a table with a column 'rsid'.")
@_opt("models_name_filter", multiple=True,
      help="Only model files whose names match one of these regular expressions.")
@_opt("model_product", type=click.Path(exists=True, dir_okay=False, path_type=Path),
      default=None, help="Not supported: a precomputed model-product file (give "
      "--snp_covariance, from which the products are computed).")
@_opt("permissive_model_product", is_flag=True, help="Goes with --model_product (not "
      "supported).")
@_opt("MAX_M", type=int, default=None, help="Only the first M genes (in the covariance's "
      "order).")
@_opt("trimmed_ensemble_id", is_flag=True, help="Match result genes without their version.")
@_opt("output", type=click.Path(dir_okay=False, path_type=Path), required=True,
      help="Result table (tab-separated, MetaXcan's columns).")
@_common
@click.pass_obj
def smultixcan_cmd(obj: Obj, **kw) -> None:
    """S-MultiXcan: one test per gene over its tissues' S-PrediXcan z-scores.

    The tissue correlation R comes from the models and the global SNP covariance restricted to
    the GWAS's aligned SNPs; T = zᵀR⁺z with R⁺ truncated at the condition number ~ χ²(n_indep).

    \b
    Example (the reference's own command line, program name replaced):
      gpu-engine twas smultixcan --models_folder dbs --models_name_pattern 'TW_(.*)_0.5.db' \\
          --snp_covariance snps_covariance.txt.gz --metaxcan_folder spredixcan \\
          --metaxcan_filter 'TW_(.*).csv' --metaxcan_file_name_parse_pattern 'TW_(.*).csv' \\
          --gwas_folder gwas --gwas_file_pattern '.*\\.txt\\.gz' --beta_column BETA \\
          --se_column SE --pvalue_column P --cutoff_condition_number 30 --output smulti.txt
    """
    _logging(kw["verbosity"])
    con = _console(stderr=True)
    out: Path = kw["output"]
    check_output(out, what="--output")
    if out.exists():
        _skip_existing(out, "move or delete it to run again")
        return
    if kw["model_product"] is not None or kw["permissive_model_product"]:
        raise click.UsageError("--model_product is not supported: give --snp_covariance (the "
                               "global SNP covariance), from which the model products are "
                               "computed")
    if kw["cleared_snps"] is not None and (kw["gwas_folder"] or kw["gwas_file"]):
        raise click.UsageError("give --cleared_snps or the GWAS (--gwas_folder/--gwas_file), "
                               "not both")
    from ..twas.smultixcan import cutoff_rule

    rule = cutoff_rule(condition_number=kw["cutoff_condition_number"],
                       eigen_ratio=kw["cutoff_eigen_ratio"], trace_ratio=kw["cutoff_trace_ratio"],
                       threshold=kw["cutoff_threshold"])
    note_no_effect(kw, GWAS_NO_EFFECT)
    be = _backend(obj)
    progress = _progress_enabled()
    t0 = time.perf_counter()

    def work():
        import pandas as pd

        from ..progress import track
        from ..twas import read_covariance, smultixcan, write_smultixcan

        models = _models(kw["models_folder"], kw["models_name_pattern"], kw["model_db_snp_key"],
                         progress, name_filter=kw["models_name_filter"])
        filters = [re.compile(f) for f in kw["metaxcan_filter"]]
        parse = re.compile(kw["metaxcan_file_name_parse_pattern"]) \
            if kw["metaxcan_file_name_parse_pattern"] else None
        files = sorted(f for f in kw["metaxcan_folder"].iterdir()
                       if f.is_file() and any(r.search(f.name) for r in filters))
        if not files:
            raise click.ClickException(f"{kw['metaxcan_folder']}: no file matches "
                                       f"{list(kw['metaxcan_filter'])}")
        sp = {}
        for f in track(files, "S-PrediXcan results", enabled=progress):
            t = _tissue_from(f.name, parse)
            sp[t] = pd.read_csv(f, sep=None, engine="python") if f.suffix != ".csv" \
                else pd.read_csv(f)
        if kw["trimmed_ensemble_id"]:
            for t in sp:
                sp[t]["gene"] = _strip_version(sp[t]["gene"])
            for m in models.values():
                m.weights["gene"] = _strip_version(m.weights["gene"])
                m.extra["gene"] = _strip_version(m.extra["gene"])
        unknown = sorted(set(sp) - set(models))
        if unknown and not set(sp) & set(models):
            raise click.ClickException(
                f"no S-PrediXcan result file names a tissue of the models (results: "
                f"{unknown[:3]}, models: {sorted(models)[:3]}); check "
                "--metaxcan_file_name_parse_pattern and --models_name_pattern")
        gwas = None
        if kw["gwas_folder"] or kw["gwas_file"]:
            snps = set().union(*(set(m.weights["snp"]) for m in models.values()))
            gwas = _read_gwas(kw, snps=snps)
        genes = set().union(*(set(m.genes) for m in models.values()))
        cov = read_covariance(kw["snp_covariance"], genes=genes)
        snps = _cleared_snps(kw["cleared_snps"]) if kw["cleared_snps"] else None
        res = smultixcan(models, cov, sp, **{rule[0]: rule[1]},
                         regularization=kw["regularization"], gwas=gwas, snps=snps,
                         max_genes=kw["MAX_M"], backend=be)
        write_smultixcan(res, out)
        return res, len(sp)

    res, n_files = _run(kw["throw"], work)
    ok = res["status"] == 0
    n_sig = int((res["pvalue"] < 0.05 / max(int(ok.sum()), 1)).sum())
    con.print(f"S-MultiXcan: {len(res):,} genes ({int(ok.sum()):,} tested) from {n_files} "
              f"tissue result files; {n_sig:,} Bonferroni-significant; "
              f"{time.perf_counter() - t0:.1f} s on {be.name}; wrote {out}")
    if ok.any():
        top = res.loc[ok].iloc[0]
        con.print(f"top gene: {top['gene_name']} p = {top['pvalue']:.3g} over {top['n']} "
                  f"tissues ({top['n_indep']} independent components)")


@twas.command("gene-corr", context_settings=CONTEXT)
@_opt("models_folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
      required=True, help="Folder of model databases (all tissues).")
@_opt("models_name_pattern", required=True, help="Regex whose group is the tissue name.")
@_opt("model_db_snp_key", default="rsid", show_default=True)
@_opt("snp_covariance", type=click.Path(exists=True, dir_okay=False, path_type=Path),
      required=True, help="LD reference: SNP covariance blocks (per gene or per LD region); "
      "SNP pairs never in a common block count as uncorrelated.")
@click.option("--genes", "genes_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), default=None,
              help="Gene table (gene id or symbol, chromosome, start, end). Needed for "
              "--within-mb; without it chromosomes come from varID keys.")
@click.option("--gwas", "gwas_snps", type=click.Path(exists=True, path_type=Path),
              default=None, help="Restrict models to this GWAS's SNPs: a file or folder "
              "(columns named as for spredixcan; only SNP ids and alleles are used).")
@_opt("snp_column", default="SNP", show_default=True)
@click.option("--condition-number", type=float, default=30.0, show_default=True,
              help="Per-gene SVD truncation: keep s ≥ s_max / this.")
@click.option("--within-mb", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Keep correlations only for genes within this distance (2, 5, 10 Mb).")
@click.option("--repair", type=click.Choice(["clip", "corr_nearest", "none"]), default="clip",
              show_default=True, help="Make each chromosome block positive definite: clip "
              "eigenvalues (fast) or statsmodels' corr_nearest (the reference's choice).")
@click.option("--labels", type=click.Choice(["gene", "gene_name"]), default="gene_name",
              show_default=True, help="Label genes by id or symbol (GLS uses symbols).")
@scheduler_option("chromosomes")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="A folder (condensed: genes.parquet + pairs.parquet) or a .parquet/.tsv "
              "file (dense genes × genes).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@_common
@click.pass_obj
def gene_corr_cmd(obj: Obj, **kw) -> None:
    """Gene–gene correlation matrix from prediction models and LD (the GLS input).

    r_ij = ‖T_ij‖²_F / √(k_i k_j) with T_ij the whitened cross-correlation of the two genes'
    tissue-predicted expressions (PhenoPLIER). Reports the positive-definiteness repair per
    chromosome (smallest eigenvalue before/after, how far the matrix moved).

    \b
    Example:
      gpu-engine twas gene-corr --models_folder dbs --models_name_pattern 'mashr_(.*).db' \\
          --model_db_snp_key varID --snp_covariance ld_blocks.txt.gz --genes genes.tsv \\
          --within-mb 5 --out gene_corr_5mb/
    """
    _logging(kw["verbosity"])
    con = _console(stderr=True)
    out: Path = kw["out"]
    check_output(out, folder=None, overwrite=kw["overwrite"], what="--out")
    be = _backend(obj)
    progress = _progress_enabled()
    t0 = time.perf_counter()

    def work():
        from ..io import read_table, write_matrix
        from ..twas import gene_correlations, read_covariance

        models = _models(kw["models_folder"], kw["models_name_pattern"], kw["model_db_snp_key"],
                         progress)
        snps = None
        if kw["gwas_snps"]:
            snps = _gwas_snp_ids(kw["gwas_snps"], kw["snp_column"])
        genes = read_table(kw["genes_path"], what="gene table") if kw["genes_path"] else None
        if genes is not None:
            genes.attrs["source"] = f"gene table {kw['genes_path']}"
        cov = read_covariance(kw["snp_covariance"])
        from ..distributed import get_client

        client = get_client(kw["scheduler"])
        try:
            res = gene_correlations(models, cov, snps=snps, genes=genes,
                                    condition_number=kw["condition_number"],
                                    within_mb=kw["within_mb"],
                                    repair=None if kw["repair"] == "none" else kw["repair"],
                                    backend=be, progress=progress, client=client)
        finally:
            if client is not None:
                client.close()
        if out.suffix in (".parquet", ".tsv", ".csv", ".gz"):
            write_matrix(res.to_frame(kw["labels"]), out, metadata=res.params)
        else:
            res.save(out, labels=kw["labels"])
        return res

    res = _run(kw["throw"], work)
    from rich.table import Table

    t = Table(title="positive definiteness per chromosome")
    for c in ("chromosome", "genes", "min eig before", "after", "‖ΔR‖_F", "max |ΔR|"):
        t.add_column(c)
    pre = "filtered_" if kw["within_mb"] is not None else ""
    for r in res.report.to_dict(orient="records"):
        t.add_row(str(r["chromosome"]), str(r["genes"]), f"{r[pre + 'min_eig_before']:.3g}",
                  f"{r[pre + 'min_eig_after']:.3g}", f"{r[pre + 'frobenius_change']:.3g}",
                  f"{r[pre + 'max_abs_change']:.3g}")
    con.print(t)
    nnz = (res.matrix.nnz - res.matrix.shape[0]) // 2
    con.print(f"gene correlations: {res.matrix.shape[0]:,} genes, {nnz:,} non-zero pairs; "
              f"{time.perf_counter() - t0:.1f} s on {be.name}; wrote {out}")


def _gwas_snp_ids(path: Path, column: str):
    import pandas as pd

    from ..twas.gwas import gwas_files

    files = gwas_files(path) if path.is_dir() else [path]
    ids = []
    for f in files:
        d = pd.read_csv(f, sep=r"\s+", usecols=lambda c: c == column, dtype=str)
        if column not in d:
            from ..errors import InputError

            raise InputError(f"{f}: no column {column!r}; name the SNP column with --snp_column")
        ids.append(d[column])
    return pd.concat(ids).unique()
