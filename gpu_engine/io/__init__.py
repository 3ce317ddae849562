"""Readers and writers: Parquet first, TSV/CSV by suffix, GMT gene sets, label alignment.

See :mod:`~gpu_engine.io.tables` (tables, matrices, matrix folders),
:mod:`~gpu_engine.io.gene_sets`, :mod:`~gpu_engine.io.align`,
:mod:`~gpu_engine.io.metadata` and :mod:`~gpu_engine.io.atomic`.
"""

from .align import AlignmentReport, align_labels, dedupe_labels, member, reindex_fill
from .atomic import atomic_dir, atomic_path
from .gene_sets import gene_sets_to_matrix, read_gene_sets, read_gmt, write_gmt
from .metadata import fingerprint, read_metadata, run_metadata
from .tables import (
                     check_columns,
                     check_finite,
                     iter_matrix_parts,
                     read_matrix,
                     read_table,
                     table_format,
                     write_matrix,
                     write_matrix_parts,
                     write_table,
)

__all__ = [
    "AlignmentReport", "align_labels", "dedupe_labels", "member", "reindex_fill",
    "atomic_dir", "atomic_path",
    "gene_sets_to_matrix", "read_gene_sets", "read_gmt", "write_gmt",
    "fingerprint", "read_metadata", "run_metadata",
    "check_columns", "check_finite", "iter_matrix_parts", "read_matrix", "read_table",
    "table_format", "write_matrix", "write_matrix_parts", "write_table",
]
