"""Trait signatures (signed TWAS z per tissue) in the formats users have.

- a folder of per-tissue matrices: each entry ``<tissue>.parquet`` / ``.tsv`` / ``.csv`` or a
  matrix folder ``<tissue>/part-*.parquet`` holds genes × traits (first column the genes);
- one matrix file: a single "tissue" named after the file;
- a folder of S-PrediXcan outputs, one CSV per (trait, tissue), named by a ``pattern`` with
  ``{trait}`` and ``{tissue}`` (e.g. ``"{trait}-gtex_v8-mashr-{tissue}.csv"``); the gene
  column (``gene_name`` by default, or ``gene``) and ``zscore`` are read.

Tissues are returned as zero-argument loaders, read one at a time by :func:`score`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, InputFileNotFoundError, preview

_SUFFIXES = (".parquet", ".tsv", ".tsv.gz", ".csv", ".csv.gz", ".txt", ".txt.gz")


def _stem(p: Path) -> str | None:
    for s in _SUFFIXES:
        if p.name.endswith(s):
            return p.name[: -len(s)]
    return None


def tissue_matrices(path: str | os.PathLike) -> dict[str, Callable[[], pd.DataFrame]]:
    """Tissue → loader of its genes × traits z (NaN allowed) from a folder or one file."""
    from ..io import read_matrix

    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"trait signatures: {path} does not exist")

    def loader(p: Path, name: str):
        return lambda: read_matrix(p, allow_nan=True, what=f"trait signatures ({name})")

    if path.is_file():
        name = _stem(path) or path.stem
        return {name: loader(path, name)}
    if any(path.glob("part-*.parquet")):
        return {path.name: loader(path, path.name)}
    out = {}
    for p in sorted(path.iterdir()):
        name = p.name if p.is_dir() and any(p.glob("part-*.parquet")) else _stem(p)
        if name:
            out[name] = loader(p, name)
    if not out:
        raise InputError(f"trait signatures: {path} holds no matrix files (.parquet/.tsv/.csv) "
                         "or matrix folders; one per tissue, genes × traits")
    return out


def spredixcan_files(folder: str | os.PathLike, pattern: str, *,
                     gene_column: str = "gene_name") -> dict[str, Callable[[], pd.DataFrame]]:
    """Tissue → loader of genes × traits z gathered from S-PrediXcan CSVs named ``pattern``."""
    folder = Path(folder)
    if "{trait}" not in pattern or "{tissue}" not in pattern:
        raise InputError(f"S-PrediXcan pattern {pattern!r}: needs both {{trait}} and {{tissue}}")
    if not folder.is_dir():
        raise InputFileNotFoundError(f"S-PrediXcan folder {folder} does not exist")
    rx = re.compile("^" + re.escape(pattern).replace(r"\{trait\}", "(?P<trait>.+?)")
                    .replace(r"\{tissue\}", "(?P<tissue>.+?)") + "$")
    files: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.iterdir()):
        m = rx.match(p.name)
        if m:
            files.setdefault(m["tissue"], {})[m["trait"]] = p
    if not files:
        raise InputError(f"S-PrediXcan folder {folder}: no file matches {pattern!r} (files: "
                         f"{preview(sorted(q.name for q in folder.iterdir()))})")

    def load(tissue: str) -> pd.DataFrame:
        from ..io import read_table

        cols = {}
        for trait, p in files[tissue].items():
            t = read_table(p, what="S-PrediXcan result")
            for c in (gene_column, "zscore"):
                if c not in t.columns:
                    raise InputError(f"S-PrediXcan result {p}: no column {c!r} (columns "
                                     f"{preview(t.columns)}); set the gene column")
            t = t.dropna(subset=[gene_column]).drop_duplicates(gene_column)
            cols[trait] = pd.Series(pd.to_numeric(t["zscore"], errors="coerce").to_numpy(
                np.float64), index=t[gene_column].astype(str).to_numpy())
        return pd.DataFrame(cols).rename_axis("gene")

    return {t: (lambda t=t: load(t)) for t in files}
