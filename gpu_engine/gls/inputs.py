"""GLS inputs in the forms users have: S-MultiXcan result files, trait matrices, covariates.

- :func:`read_smultixcan`: a folder (or list) of S-MultiXcan outputs → genes × traits
  matrices of ``pvalue``, ``n`` and ``n_indep``, genes matched by symbol (``gene_name``),
  duplicated symbols keep their first row, rows with a NaN p-value are dropped — each step
  counted in the returned report.
- :func:`trait_values`: p-values (or −log10 p) → the regression's y before standardization:
  zeros replaced by (the trait's smallest non-zero p)/10, then −log10, as PhenoPLIER does.
- :func:`covariate_matrices`: the four gene covariates of the reference from ``n`` and
  ``n_indep`` (``gene_size = n_indep``, ``gene_size_log = log n_indep``,
  ``gene_density = n_indep / n``, ``gene_density_log = −log(n_indep / n)``), from a long
  table, per-trait wide matrices, or one gene-level table shared by all traits; and the
  four SNP-level ones of ``gls_cli.py`` (:func:`snp_covariates`: ``gene_n_snps_used`` = Σ over
  the gene's tissue models of the SNPs used, ``gene_n_snps_used_density`` = that sum / the
  number of distinct SNPs used, ``gene_n_snps_used_log`` = log, ``gene_n_snps_used_density_log``
  = −log of the density) from the cohort's ``gene_tissues`` metadata.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, InputFileNotFoundError, preview
from ..io import read_table

log = logging.getLogger(__name__)

GENE_COVARIATES = ("gene_density", "gene_density_log", "gene_size", "gene_size_log")
SNP_COVARIATES = ("gene_n_snps_used", "gene_n_snps_used_density",
                  "gene_n_snps_used_density_log", "gene_n_snps_used_log")
COVARIATES = tuple(sorted(GENE_COVARIATES + SNP_COVARIATES))
"""Every covariate of PhenoPLIER's ``gls_cli.py`` (``--covars all`` = these eight, sorted by
name as the reference orders them)."""
SMULTIXCAN_REQUIRED = ("gene_name", "pvalue")
DEFAULT_NAME_PATTERN = (r"^(?:smultixcan[_-])?(?P<trait>.+?)"
                        r"(?:[-_.](?:gtex_v8|smultixcan|ccn\d+)[^/]*)?"
                        r"\.(?:txt|tsv|csv|parquet)(?:\.(?:gz|bz2|xz|zst))?$")
"""File name → trait name: strips a leading ``smultixcan_``, a trailing ``-gtex_v8…`` /
``-smultixcan…`` / ``_ccn30…`` part and the extension (``random.pheno0-gtex_v8-mashr-
smultixcan.txt.gz`` → ``random.pheno0``; ``trait_0001-smultixcan.txt`` → ``trait_0001``)."""


@dataclass
class SMultiXcanResults:
    """S-MultiXcan results of many traits, as genes (symbols) × traits matrices."""

    pvalue: pd.DataFrame
    n: pd.DataFrame | None = None
    n_indep: pd.DataFrame | None = None
    files: dict[str, str] = field(default_factory=dict)
    report: pd.DataFrame | None = None  # per trait: rows, duplicated, nan_pvalue, zero_pvalue

    @property
    def traits(self) -> list[str]:
        return list(self.pvalue.columns)

    def covariates(self) -> dict[str, pd.DataFrame]:
        """``{"n": …, "n_indep": …}``: the input :func:`covariate_matrices` takes."""
        if self.n is None or self.n_indep is None:
            raise InputError("these S-MultiXcan results have no n / n_indep columns, so the "
                             "gene covariates cannot be derived")
        return {"n": self.n, "n_indep": self.n_indep}


def _trait_name(path: Path, pattern: re.Pattern) -> str:
    m = pattern.match(path.name)
    if not m or "trait" not in m.groupdict():
        raise InputError(f"{path}: cannot take a trait name from this file name with the "
                         f"pattern {pattern.pattern!r}; pass a pattern with a (?P<trait>…) group")
    return m.group("trait")


def smultixcan_files(source: str | os.PathLike | Sequence, *,
                     name_pattern: str = DEFAULT_NAME_PATTERN) -> dict[str, Path]:
    """Trait name → file for a folder of S-MultiXcan outputs (or a list of files)."""
    pattern = re.compile(name_pattern)
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        if not root.exists():
            raise InputFileNotFoundError(f"S-MultiXcan results: {root} does not exist")
        paths = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")
                       ) if root.is_dir() else [root]
    else:
        paths = [Path(p) for p in source]
    files: dict[str, Path] = {}
    for p in paths:
        if not p.exists():
            raise InputFileNotFoundError(f"S-MultiXcan result {p} does not exist")
        if not pattern.match(p.name):
            log.info("skipping %s (does not look like an S-MultiXcan result)", p)
            continue
        name = _trait_name(p, pattern)
        if name in files:
            raise InputError(f"two files give the trait name {name!r}: {files[name]} and {p}; "
                             "rename one or pass another --name-pattern")
        files[name] = p
    if not files:
        raise InputError(f"no S-MultiXcan result files found in {source} (expected "
                         "*.txt[.gz] / *.tsv[.gz] / *.parquet with columns gene_name, pvalue)")
    return files


def _read_one(trait: str, path: Path, with_counts: bool):
    cols = list(SMULTIXCAN_REQUIRED) + (["n", "n_indep"] if with_counts else [])
    df = read_table(path, required=cols, what=f"S-MultiXcan result ({trait})")
    rows = len(df)
    dup = df["gene_name"].duplicated(keep="first")
    df = df.loc[~dup]
    p = pd.to_numeric(df["pvalue"], errors="coerce")
    bad = p.isna() & df["pvalue"].notna()
    if bad.any():
        raise InputError(f"{path}: column 'pvalue' holds non-numeric values, e.g. at gene "
                         f"{df['gene_name'][bad].iloc[0]!r}")
    nan = p.isna().to_numpy()
    df = df.loc[~nan]
    p = p[~nan]
    stats = {"trait": trait, "file": str(path), "rows": rows, "duplicated": int(dup.sum()),
             "nan_pvalue": int(nan.sum()), "zero_pvalue": int((p == 0).sum()),
             "genes": int(len(df))}
    index = pd.Index(df["gene_name"].astype(str), name="gene")
    out = {"pvalue": pd.Series(p.to_numpy(np.float64), index=index, name=trait)}
    if with_counts:
        for c in ("n", "n_indep"):
            out[c] = pd.Series(pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64),
                               index=index, name=trait)
    return out, stats


def read_smultixcan(source: str | os.PathLike | Sequence, *, counts: bool = True,
                    name_pattern: str = DEFAULT_NAME_PATTERN, threads: int = 4,
                    progress: bool = False) -> SMultiXcanResults:
    """Read S-MultiXcan outputs (``gene, gene_name, pvalue, n, n_indep, …``) of many traits.

    ``source``: a folder (every file whose name matches ``name_pattern``), one file, or a
    list of files. Genes are matched by symbol (``gene_name``); of duplicated symbols the
    first row is kept; rows with a NaN p-value are dropped. ``counts`` also reads ``n`` and
    ``n_indep`` (needed for the gene covariates). The report has one row per trait with the
    counts of rows, duplicates, NaN and zero p-values.
    """
    from ..progress import track

    files = smultixcan_files(source, name_pattern=name_pattern)
    results, stats = {}, []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = {t: pool.submit(_read_one, t, p, counts) for t, p in files.items()}
        for t in track(files, "reading S-MultiXcan", total=len(files), enabled=progress):
            out, st = futures[t].result()
            results[t] = out
            stats.append(st)
    pvalue = pd.DataFrame({t: r["pvalue"] for t, r in results.items()})
    pvalue.index.name = "gene"
    n = n_indep = None
    if counts:
        n = pd.DataFrame({t: r["n"] for t, r in results.items()}).reindex(pvalue.index)
        n_indep = pd.DataFrame({t: r["n_indep"] for t, r in results.items()}).reindex(
            pvalue.index)
    report = pd.DataFrame(stats)
    if report["duplicated"].any() or report["nan_pvalue"].any():
        log.info("S-MultiXcan: %d traits; %d duplicated gene symbols (first kept) and %d NaN "
                 "p-values (dropped) in all", len(report), report["duplicated"].sum(),
                 report["nan_pvalue"].sum())
    return SMultiXcanResults(pvalue=pvalue, n=n, n_indep=n_indep,
                             files={t: str(p) for t, p in files.items()}, report=report)


def trait_values(traits: pd.DataFrame, *, scale: str = "pvalue",
                 what: str = "traits") -> pd.DataFrame:
    """The regression's response before standardization, genes × traits (NaN = missing).

    ``scale="pvalue"``: p-values in [0, 1]; a p of 0 becomes (the trait's smallest non-zero
    p)/10, then y = −log10 p (PhenoPLIER's rule). ``scale="neglog10p"``: the values are
    used as they are (−log10 p, or any other score where larger means more associated, such
    as S-MultiXcan z-scores). Values outside [0, 1] (p-value scale) or infinite values are an
    :class:`InputError` naming the trait and gene.
    """
    if scale not in ("pvalue", "neglog10p"):
        raise InputError(f"scale must be 'pvalue' or 'neglog10p', not {scale!r}")
    values = traits.to_numpy(dtype=np.float64, copy=True)
    finite = np.isfinite(values)
    nan = np.isnan(values)
    if scale == "pvalue":
        bad = ~nan & ((values < 0) | (values > 1))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InputError(
                f"{what}: {int(bad.sum())} p-value(s) outside [0, 1], e.g. trait "
                f"{traits.columns[j]!r}, gene {traits.index[i]!r}: {values[i, j]!r}; if these "
                "are −log10 p-values or z-scores, use scale='neglog10p' (--scale neglog10p)")
        zero = values == 0
        if zero.any():
            positive = np.where(values > 0, values, np.inf)
            smallest = positive.min(axis=0)
            cols = np.flatnonzero(zero.any(axis=0))
            empty = cols[~np.isfinite(smallest[cols])]
            if empty.size:
                raise InputError(f"{what}: every p-value of trait(s) "
                                 f"{preview(traits.columns[empty])} is 0")
            values = np.where(zero, smallest[None, :] / 10.0, values)
            log.info("%s: replaced %d zero p-value(s) in %d trait(s) by the trait's smallest "
                     "non-zero p / 10", what, int(zero.sum()), cols.size)
        with np.errstate(divide="ignore"):
            values = -np.log10(values)
    else:
        bad = ~nan & ~finite
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InputError(f"{what}: infinite value for trait {traits.columns[j]!r}, gene "
                             f"{traits.index[i]!r}; −log10 p-values must be finite (replace "
                             "p = 0 first, or pass p-values with scale='pvalue')")
    return pd.DataFrame(values, index=traits.index, columns=traits.columns)


def _derive(name: str, n: np.ndarray | None, n_indep: np.ndarray) -> np.ndarray:
    if name == "gene_size":
        return n_indep
    if name == "gene_size_log":
        return np.log(n_indep)
    density = n_indep / n
    return density if name == "gene_density" else -np.log(density)


def covariate_matrices(covariates, covars: Sequence[str], genes: pd.Index,
                       traits: Sequence[str]) -> np.ndarray:
    """genes × traits × covariates array (float64, NaN where missing), covariates in
    ``covars`` order (callers sort them by name, as the reference does).

    ``covariates`` is one of:

    - a long table with columns ``trait, gene`` and either the covariate columns themselves
      or ``n, n_indep`` to derive them from (what S-MultiXcan reports);
    - a gene-level table (``gene`` column or index, no ``trait`` column) used for every trait;
    - a mapping ``{"n": genes × traits, "n_indep": genes × traits}`` or
      ``{covariate: genes × traits}`` of DataFrames (what :func:`read_smultixcan` gives).
    """
    covars = list(covars)
    unknown = [c for c in covars if c not in COVARIATES]
    if unknown:
        raise InputError(f"unknown covariate(s) {preview(unknown)}; choose from "
                         f"{', '.join(COVARIATES)}")
    traits = list(traits)
    out = np.full((len(genes), len(traits), len(covars)), np.nan)
    if isinstance(covariates, Mapping):
        wide = {k: v for k, v in covariates.items()}
    else:
        df = covariates.reset_index() if "gene" not in covariates.columns else covariates
        if "gene" not in df.columns:
            raise InputError("covariates: expected a 'gene' column (and 'trait' for per-trait "
                             f"values); found {preview(df.columns)}")
        have = [c for c in covars if c in df.columns]
        derive = [c for c in covars if c not in df.columns]
        snp_missing = [c for c in derive if c in SNP_COVARIATES]
        if snp_missing:
            raise InputError(f"covariates: no column(s) {preview(snp_missing)}; the SNP-level "
                             "covariates come from the cohort's gene_tissues metadata "
                             "(--cohort-metadata-dir) or must be columns of this table")
        source_cols = have + (["n", "n_indep"] if derive else [])
        missing = [c for c in source_cols if c not in df.columns]
        if missing:
            raise InputError(f"covariates: missing column(s) {preview(missing)}; give "
                             f"'n' and 'n_indep' (S-MultiXcan) or the covariates "
                             f"{preview(covars)} themselves")
        if "trait" in df.columns:
            dups = df.duplicated(["trait", "gene"])
            if dups.any():
                r = df.loc[dups].iloc[0]
                raise InputError(f"covariates: duplicated (trait, gene) rows, e.g. "
                                 f"({r['trait']!r}, {r['gene']!r})")
            wide = {c: df.pivot(index="gene", columns="trait", values=c) for c in source_cols}
        else:
            g = df.drop_duplicates("gene", keep="first").set_index("gene")
            wide = {c: pd.DataFrame(np.repeat(g[[c]].to_numpy(np.float64), len(traits), 1),
                                    index=g.index, columns=traits) for c in source_cols}
    derive = [c for c in covars if c not in wide]
    snp_missing = [c for c in derive if c in SNP_COVARIATES]
    if snp_missing:
        raise InputError(f"covariates: no values for {preview(snp_missing)}; the SNP-level "
                         "covariates come from the cohort's gene_tissues metadata "
                         "(--cohort-metadata-dir, gls.snp_covariates)")
    if derive and not all(c in wide for c in ("n", "n_indep")):
        raise InputError(f"covariates: need either {preview(covars)} or 'n' and 'n_indep'; "
                         f"got {preview(wide)}")
    absent = [t for t in traits if t not in next(iter(wide.values())).columns]
    if absent:
        raise InputError(f"covariates: no values for trait(s) {preview(absent)}")

    def take(name):
        m = wide[name].reindex(index=genes, columns=traits)
        return m.to_numpy(np.float64)

    for k, c in enumerate(covars):
        if c in wide:
            out[:, :, k] = take(c)
    if derive:
        n_indep = take("n_indep")
        n = take("n")
        ok = ~np.isnan(n_indep) & ~np.isnan(n)
        bad = ok & ((n_indep <= 0) | (n <= 0) | (n_indep > n))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InputError(f"covariates: need 0 < n_indep ≤ n, but trait {traits[j]!r}, gene "
                             f"{genes[i]!r} has n = {n[i, j]}, n_indep = {n_indep[i, j]}")
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, c in enumerate(covars):
                if c in derive:
                    out[:, :, k] = _derive(c, n, n_indep)
    bad = np.isinf(out)
    if bad.any():
        i, j, k = np.argwhere(bad)[0]
        raise InputError(f"covariates: infinite {covars[k]} for trait {traits[j]!r}, gene "
                         f"{genes[i]!r}")
    return out


def snp_covariates(gene_tissues: pd.DataFrame) -> pd.DataFrame:
    """The SNP-level covariates of PhenoPLIER's ``gls_cli.py`` per gene symbol from the
    cohort's ``gene_tissues`` table (``gene_name``, ``n_snps_used_sum``,
    ``unique_n_snps_used``; a duplicated symbol keeps its first row, as upstream)."""
    need = {"gene_name", "n_snps_used_sum", "unique_n_snps_used"}
    if not need <= set(gene_tissues.columns):
        raise InputError(f"gene_tissues metadata: needs columns {sorted(need)}; found "
                         f"{preview(gene_tissues.columns)}")
    g = gene_tissues.drop_duplicates("gene_name", keep="first")
    used = g["n_snps_used_sum"].to_numpy(np.float64)
    uniq = g["unique_n_snps_used"].to_numpy(np.float64)
    bad = (used <= 0) | (uniq <= 0)
    if bad.any():
        raise InputError(f"gene_tissues metadata: genes with no SNP used, e.g. "
                         f"{preview(g['gene_name'][bad])}")
    density = used / uniq
    return pd.DataFrame({"gene": g["gene_name"].astype(str).to_numpy(),
                         "gene_n_snps_used": used, "gene_n_snps_used_density": density,
                         "gene_n_snps_used_density_log": -np.log(density),
                         "gene_n_snps_used_log": np.log(used)})


def with_gene_table(covariates, table: pd.DataFrame, traits: Sequence[str]) -> dict:
    """The covariate mapping of :func:`covariate_matrices` (genes × traits per name) with the
    columns of a gene-level ``table`` (column ``gene``) added, the same for every trait."""
    wide = dict(covariates) if covariates is not None else {}
    t = table.drop_duplicates("gene", keep="first").set_index("gene")
    traits = list(traits)
    for c in t.columns:
        wide[c] = pd.DataFrame(np.repeat(t[[c]].to_numpy(np.float64), len(traits), 1),
                               index=t.index, columns=traits)
    return wide


def read_traits(path: str | os.PathLike, *, with_counts: bool = False,
                name_pattern: str | None = None, progress: bool = False):
    """The traits of a GLS run from whatever the user has, told apart by content: a folder
    of S-MultiXcan results (one file per trait), one such file (columns ``gene_name`` and
    ``pvalue``), or a genes × traits matrix of values (a file, or a folder of matrix parts).

    Returns ``(traits genes × traits, covariates or None, reading report or None)``: the
    covariates (``n``, ``n_indep`` per gene and trait) only from S-MultiXcan input with
    ``with_counts``; the report (duplicated names, NaN and zero p-values per file) only for
    S-MultiXcan input. ``name_pattern``: regex with a ``(?P<trait>…)`` group naming traits
    from file names (default :data:`DEFAULT_NAME_PATTERN`)."""
    from ..io import read_matrix, read_table

    path = Path(path)
    pattern = name_pattern or DEFAULT_NAME_PATTERN
    if path.is_dir() and not any(path.glob("part-*.parquet")):
        res = read_smultixcan(path, counts=with_counts, name_pattern=pattern,
                              progress=progress)
        return res.pvalue, (res.covariates() if with_counts else None), res.report
    columns = set(read_table(path, what="traits").columns) if path.is_file() else set()
    if {"gene_name", "pvalue"} <= columns:
        res = read_smultixcan([path], counts=with_counts, name_pattern=pattern)
        return res.pvalue, (res.covariates() if with_counts else None), res.report
    return read_matrix(path, what="traits", allow_nan=True, duplicates="first"), None, None
