"""Gene sets (pathways, priors): GMT files, long tables and 0/1 matrices.

In memory a collection of gene sets is an ordered ``dict[str, list[str]]`` (set name -> its
genes, in file order, without repeats). On disk:

- GMT (``.gmt``, optionally ``.gz``): one set per line, ``name<TAB>description<TAB>gene…``.
- a long table (Parquet/TSV/CSV) with columns ``gene`` and ``pathway``, one row per membership
  (the layout of ``../shared/plier_data/pathways/*.long.parquet``);
- a wide 0/1 matrix: genes × pathways (first column ``gene``).
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, InputFileNotFoundError, preview
from .atomic import atomic_path
from .reading import reading
from .tables import read_matrix, read_table

log = logging.getLogger(__name__)

GeneSets = dict[str, list[str]]


def _open_text(path: Path, mode: str = "rt"):
    return gzip.open(path, mode) if path.suffix.lower() == ".gz" else open(path, mode)


def read_gmt(path: str | os.PathLike) -> GeneSets:
    """Read a GMT file. Errors name the line: a set without a name or genes, a repeated name."""
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"gene-set file not found: {path} (check the path)")
    sets: GeneSets = {}
    repeated = 0
    with reading(path, "gene-set file"), _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            name = fields[0].strip()
            genes = [g.strip() for g in fields[2:] if g.strip()]
            if not name:
                raise InputError(f"{path}, line {lineno}: the gene set has no name (first field)")
            if len(fields) < 3 or not genes:
                raise InputError(f"{path}, line {lineno}: gene set {name!r} lists no genes; GMT "
                                 "lines are name<TAB>description<TAB>gene1<TAB>gene2…")
            if name in sets:
                raise InputError(f"{path}, line {lineno}: gene set {name!r} appears twice; "
                                 "set names must be unique")
            unique = list(dict.fromkeys(genes))
            repeated += len(genes) - len(unique)
            sets[name] = unique
    if not sets:
        raise InputError(f"{path}: no gene sets found (empty file?)")
    if repeated:
        log.warning("%s: ignored %d repeated gene(s) within sets", path, repeated)
    return sets


def write_gmt(sets: Mapping[str, Iterable[str]], path: str | os.PathLike, *,
              descriptions: Mapping[str, str] | None = None) -> Path:
    """Write gene sets as GMT, atomically (``.gz`` compresses)."""
    path = Path(path)
    descriptions = descriptions or {}
    with atomic_path(path) as tmp:
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(tmp, "wt") as fh:
            for name, genes in sets.items():
                if "\t" in name or "\n" in name:
                    raise InputError(f"gene set name {name!r} contains a tab or newline")
                fh.write("\t".join([name, descriptions.get(name, "na"), *map(str, genes)]) + "\n")
    return path


def read_gene_sets(path: str | os.PathLike) -> GeneSets:
    """Read gene sets from GMT, a long (gene, pathway) table or a wide 0/1 matrix."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".gmt") or name.endswith(".gmt.gz"):
        return read_gmt(path)
    if not path.exists():
        raise InputFileNotFoundError(f"gene-set file not found: {path} (check the path)")
    head = read_table(path, what="gene-set table")
    if {"gene", "pathway"} <= set(head.columns) and len(head.columns) == 2:
        if head[["gene", "pathway"]].isna().any().any():
            raise InputError(f"{path}: empty gene or pathway entries in the long gene-set table")
        sets: GeneSets = {}
        for pw, gene in zip(head["pathway"].astype(str), head["gene"].astype(str)):
            sets.setdefault(pw, [])
            sets[pw].append(gene)
        return {k: list(dict.fromkeys(v)) for k, v in sets.items()}
    mat = read_matrix(path, what="gene-set matrix")
    values = mat.to_numpy()
    if not np.isin(values, (0, 1)).all():
        raise InputError(f"{path}: a wide gene-set matrix must hold only 0 and 1")
    return {str(c): list(mat.index[values[:, j] == 1]) for j, c in enumerate(mat.columns)
            if values[:, j].any()}


def gene_sets_to_matrix(sets: Mapping[str, Iterable[str]], genes: Iterable[str] | None = None,
                        *, dtype=np.float64) -> pd.DataFrame:
    """Genes × sets 0/1 matrix. ``genes`` fixes the rows (members outside it are dropped and
    logged); by default the union of members in first-seen order."""
    if genes is None:
        genes = list(dict.fromkeys(g for members in sets.values() for g in members))
    genes = pd.Index([str(g) for g in genes], name="gene")
    if genes.has_duplicates:
        raise InputError(f"duplicated genes in the row list: {preview(genes[genes.duplicated()])}")
    pos = pd.Series(np.arange(len(genes)), index=genes)
    mat = np.zeros((len(genes), len(sets)), dtype=dtype)
    outside = set()
    for j, members in enumerate(sets.values()):
        members = list(members)
        hit = pos.reindex(members)
        outside.update(m for m, h in zip(members, hit.isna()) if h)
        mat[hit.dropna().astype(int).to_numpy(), j] = 1
    if outside:
        log.info("gene sets: %d member gene(s) are not among the %d rows and were dropped",
                 len(outside), len(genes))
    return pd.DataFrame(mat, index=genes, columns=list(sets.keys()))
