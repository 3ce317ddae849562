"""PredictDB prediction models (SQLite): reading one database or a folder of them.

Schema (PredictDB / MetaXcan): ``weights(rsid, gene, weight, ref_allele, eff_allele[, varID])``
— ``weight`` is the effect per dosage (0..2) of ``eff_allele`` — and
``extra(gene, genename, n.snps.in.model, pred.perf.R2, pred.perf.pval, pred.perf.qval[, …])``.
Variants are keyed by ``rsid`` or, for GTEx v8 / MASHR databases, by ``varID``
(``chr1_123_A_G_b38``); the user chooses with ``snp_key``.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, InputFileNotFoundError, preview
from ..io.align import member

EXTRA_COLUMNS = {"gene": "gene", "genename": "gene_name", "n.snps.in.model": "n_snps_in_model",
                 "pred.perf.R2": "pred_perf_r2", "pred.perf.pval": "pred_perf_pval",
                 "pred.perf.qval": "pred_perf_qval"}


@dataclass
class ModelDB:
    """One tissue's models.

    ``weights``: one row per (gene, SNP) with columns ``gene, snp, weight, eff_allele,
    ref_allele`` (alleles upper-cased; ``snp`` is the chosen key). ``extra``: one row per gene
    with ``gene, gene_name, n_snps_in_model, pred_perf_r2, pred_perf_pval, pred_perf_qval``
    (NaN where the database lacks a column, as in MASHR databases without q-values).
    """

    path: str
    weights: pd.DataFrame
    extra: pd.DataFrame
    tissue: str | None = None

    @property
    def genes(self) -> list[str]:
        return list(self.extra["gene"])

    @property
    def empty(self) -> bool:
        return self.weights.empty

    def alleles(self) -> pd.DataFrame:
        """One row per SNP: ``snp, eff_allele, ref_allele`` (the first model's alleles)."""
        return self.weights.drop_duplicates("snp")[["snp", "eff_allele", "ref_allele"]]


def _columns(con, table: str) -> list[str]:
    return [row[1] for row in con.execute(f'PRAGMA table_info("{table}")')]


def read_model_db(path: str | os.PathLike, *, snp_key: str = "rsid",
                  tissue: str | None = None, genes=None) -> ModelDB:
    """Read a PredictDB SQLite model database.

    ``snp_key``: the weights column that identifies variants (``rsid`` or ``varID``).
    ``genes``: optional subset of gene ids to read. A database with no weights is returned as
    an empty model (``.empty``); callers report it instead of failing (the reference crashes).
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(f"model database {p} does not exist")
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{p}: not a readable SQLite model database ({exc})") from None
    try:
        missing = {"weights", "extra"} - tables
        if missing:
            raise InputError(f"{p}: not a PredictDB model database: no table "
                             f"{preview(sorted(missing))} (tables: {preview(sorted(tables))})")
        wcols = _columns(con, "weights")
        need = [snp_key, "gene", "weight", "ref_allele", "eff_allele"]
        absent = [c for c in need if c not in wcols]
        if absent:
            hint = (" (this database keys variants by another column: pass --model_db_snp_key "
                    f"with one of {preview(wcols)})" if snp_key in absent else "")
            raise InputError(f"{p}: table weights has no column {preview(absent)}{hint}")
        where, params = "", ()
        if genes is not None:
            genes = list(genes)
            where = f" WHERE gene IN ({','.join('?' * len(genes))})"
            params = tuple(genes)
        w = pd.read_sql_query(
            f'SELECT gene, "{snp_key}" AS snp, weight, eff_allele, ref_allele FROM weights{where}',
            con, params=params)
        ecols = _columns(con, "extra")
        sel = ", ".join(f'"{c}"' for c in EXTRA_COLUMNS if c in ecols)
        if "gene" not in ecols:
            raise InputError(f"{p}: table extra has no column 'gene'")
        e = pd.read_sql_query(f"SELECT {sel} FROM extra{where}", con, params=params)
    finally:
        con.close()
    e = e.rename(columns=EXTRA_COLUMNS)
    for c in EXTRA_COLUMNS.values():
        if c not in e:
            e[c] = np.nan
    e = e[list(EXTRA_COLUMNS.values())]
    w["eff_allele"] = w["eff_allele"].astype(str).str.upper()
    w["ref_allele"] = w["ref_allele"].astype(str).str.upper()
    w["weight"] = w["weight"].astype(np.float64)
    w = w.dropna(subset=["snp"])
    bad = ~np.isfinite(w["weight"].to_numpy())
    if bad.any():
        r = w[bad].iloc[0]
        raise InputError(f"{p}: weights has {int(bad.sum())} non-finite weight(s), e.g. gene "
                         f"{r.gene!r} SNP {r.snp!r}; fix or remove them")
    dup = w.duplicated(["gene", "snp"])
    if dup.any():
        r = w[dup].iloc[0]
        raise InputError(f"{p}: SNP {r.snp!r} appears twice in the model of gene {r.gene!r}")
    # genes with weights but no extra row still get a row (names unknown)
    genes_w = pd.unique(w["gene"].to_numpy(dtype=object))
    lost = genes_w[~member(genes_w, e["gene"].to_numpy(dtype=object))]
    if lost.size:
        e = pd.concat([e, pd.DataFrame({"gene": lost})], ignore_index=True)
    return ModelDB(str(p), w.reset_index(drop=True), e.reset_index(drop=True), tissue)


def read_phi(path: str | os.PathLike) -> pd.DataFrame:
    """``gene, phi`` from a database's ``extra`` table (the inflation-calibration factor of
    newer PredictDB releases); an error naming the database when it has none."""
    p = Path(path)
    con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    try:
        if "phi" not in _columns(con, "extra"):
            raise InputError(f"{p}: table extra has no column 'phi', which --gwas_h2/--gwas_N "
                             "calibration needs; use models released with phi, or run "
                             "without calibration")
        phi = pd.read_sql_query("SELECT gene, phi FROM extra", con)
    finally:
        con.close()
    phi["phi"] = pd.to_numeric(phi["phi"], errors="coerce")
    return phi


def model_files(folder: str | os.PathLike, pattern: str, *, what: str = "model",
                key: str = "tissue") -> dict[str, Path]:
    """Tissue → model database for the files of ``folder`` matching ``pattern``, whose first
    group is the tissue name (MetaXcan's ``--models_name_pattern``, e.g. ``TW_(.*)_0.5.db``).
    Sorted by tissue name. ``what`` and ``key`` name the files and their key in errors, for
    other per-name folders (GWAS files by trait, S-MultiXcan results by trait)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputFileNotFoundError(f"{what}s folder {root} does not exist")
    rx = re.compile(pattern)
    out = {}
    for f in sorted(root.iterdir()):
        m = rx.match(f.name)
        if m and f.is_file():
            name = m.group(1) if m.groups() else f.stem
            if name in out:
                raise InputError(f"{root}: two {what} files give {key} {name!r} "
                                 f"({out[name].name}, {f.name}); tighten the pattern")
            out[name] = f
    if not out:
        raise InputError(f"{root}: no file matches the {what} name pattern {pattern!r}")
    return dict(sorted(out.items()))
