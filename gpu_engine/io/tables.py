"""Tables and labelled matrices on disk: Parquet (native), TSV/CSV (optionally compressed).

The format follows the file name: ``.parquet``/``.pq``; ``.tsv``/``.txt``/``.tab`` (tab
separated); ``.csv``; each text format optionally with ``.gz``, ``.bz2``, ``.xz`` or ``.zst``.

A *matrix* is a wide table whose first column holds the row labels (genes, usually, named
``gene``) and whose other columns are numeric and named by their labels (samples, traits,
LVs). In memory it is a pandas DataFrame indexed by the labels. A *matrix folder* holds the
same matrix split into column blocks ``part-00000.parquet``, ``part-00001.parquet``, … with
identical row labels; it is how matrices too wide to build in memory at once (37,000
samples) are written and streamed.

Every writer is atomic (see :mod:`gpu_engine.io.atomic`) and Parquet outputs carry run
metadata (see :mod:`gpu_engine.io.metadata`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, InputFileNotFoundError, preview
from .align import AlignmentReport, dedupe_labels
from .atomic import atomic_dir, atomic_path
from .metadata import METADATA_KEY, encode_metadata

log = logging.getLogger(__name__)

_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
_TEXT = {".tsv": "\t", ".txt": "\t", ".tab": "\t", ".csv": ","}
PART_PATTERN = "part-{:05d}.parquet"


def table_format(path: str | os.PathLike) -> tuple[str, str | None, str | None]:
    """(``'parquet'`` | ``'text'``, separator, compression) for a file name."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    compression = None
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        compression = _COMPRESSIONS[suffixes.pop()]
    last = suffixes[-1] if suffixes else ""
    if last in (".parquet", ".pq") and compression is None:
        return "parquet", None, None
    if last in _TEXT:
        return "text", _TEXT[last], compression
    raise InputError(
        f"{path}: cannot tell the format from the file name; use .parquet, .tsv, .txt, .csv "
        "(text formats may end in .gz, .bz2, .xz or .zst)")


def _require_exists(path: Path, what: str) -> None:
    if not path.exists():
        raise InputFileNotFoundError(f"{what} not found: {path} (check the path)")


def check_columns(df: pd.DataFrame, required: Iterable[str], source: str) -> None:
    """Raise :class:`InputError` naming ``source`` and the columns it lacks."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {preview(missing)}; "
                         f"the columns present are {preview(df.columns, 12)}")


# ----------------------------------------------------------------------------- tables
def read_table(path: str | os.PathLike, *, columns: Sequence[str] | None = None,
               required: Sequence[str] = (), what: str = "table", **read_kwargs) -> pd.DataFrame:
    """Read a table, choosing the reader from the file name.

    ``columns`` selects (and requires) columns; ``required`` only checks they exist.
    ``what`` names the input in error messages (``"S-MultiXcan result"``…).
    """
    path = Path(path)
    _require_exists(path, what)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file (.parquet, .tsv, .csv)")
    fmt, sep, compression = table_format(path)
    need = list(columns or []) + [c for c in required if c not in (columns or [])]
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            if columns is not None:
                names = set(pq.read_schema(path).names)
                check_columns(pd.DataFrame(columns=sorted(names)), need, f"{what} {path}")
            df = pq.ParquetFile(path).read(columns=list(columns) if columns else None,
                                           **read_kwargs).to_pandas()
        else:
            df = pd.read_csv(path, sep=sep, compression=compression,
                             usecols=(lambda c: c in set(columns)) if columns else None,
                             **read_kwargs)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{what} {path} could not be read as {fmt}: {exc}") from exc
    check_columns(df, need, f"{what} {path}")
    return df[list(columns)] if columns else df


def _to_arrow(df: pd.DataFrame, index: bool, metadata: dict | None):
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=index)
    if metadata is not None:
        md = dict(table.schema.metadata or {})
        md[METADATA_KEY] = encode_metadata(metadata)
        table = table.replace_schema_metadata(md)
    return table


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, metadata: dict | None = None,
                index: bool = False) -> Path:
    """Write ``df`` atomically; Parquet (zstd) stores ``metadata`` under key ``gpu_engine``.

    Text formats get no metadata (write a Parquet file when provenance matters).
    """
    path = Path(path)
    fmt, sep, compression = table_format(path)
    df = df.copy(deep=False)
    df.columns = [str(c) for c in df.columns]
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(_to_arrow(df, index, metadata), tmp, compression="zstd")
        else:
            import pyarrow as pa
            import pyarrow.csv as pacsv

            # tab-separated files are written unquoted, as the reference tools write them
            opts = pacsv.WriteOptions(delimiter=sep,
                                      quoting_style="none" if sep == "\t" else "needed")
            opts = pacsv.WriteOptions(delimiter=sep, include_header=False,
                                      quoting_style=opts.quoting_style)
            table = _to_arrow(df, index, None).replace_schema_metadata(None)
            names = [f'"{c}"' if (sep in c or '"' in c or "\n" in c) else c
                     for c in table.column_names]
            header = (sep.join(names) + "\n").encode()
            stream = (pa.OSFile(str(tmp), "wb") if compression is None
                      else pa.CompressedOutputStream(str(tmp), compression))
            with stream:
                stream.write(header)  # unquoted, as the reference tools write it
                pacsv.write_csv(table, stream, write_options=opts)
    return path


# ----------------------------------------------------------------------------- matrices
def _frame_to_matrix(df: pd.DataFrame, source: str, label_column: str | None) -> pd.DataFrame:
    if label_column is not None:
        check_columns(df, [label_column], source)
        df = df.set_index(label_column)
    elif not isinstance(df.index, pd.RangeIndex):
        pass  # labels already in the index (Parquet written with index metadata)
    elif len(df.columns) and not pd.api.types.is_numeric_dtype(df.iloc[:, 0]):
        df = df.set_index(df.columns[0])
    else:
        raise InputError(f"{source}: the first column must hold the row labels (e.g. 'gene'), "
                         "but it is numeric; pass label_column= to name the label column")
    df.columns = [str(c) for c in df.columns]
    df.index = df.index.astype(str)
    return df


def _check_numeric(df: pd.DataFrame, source: str) -> None:
    bad = [c for c in df.columns if not (pd.api.types.is_numeric_dtype(df[c])
                                         and not pd.api.types.is_bool_dtype(df[c]))]
    if bad:
        raise InputError(f"{source}: column(s) {preview(bad)} are not numeric; a matrix holds "
                         "labels in its first column and numbers in all others")


def check_finite(values: np.ndarray, rows: Sequence, cols: Sequence, source: str) -> None:
    """Raise :class:`InputError` locating the first NaN/inf of a matrix that must be complete."""
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(values[i, j]) else "infinite"
        raise InputError(
            f"{source}: {int(bad.sum())} missing (NaN) or infinite value(s), the first ({kind}) "
            f"at row {str(rows[i])!r}, column {str(cols[j])!r}; this matrix must be complete: "
            "fill or drop those entries first")


def read_matrix(path: str | os.PathLike, *, label_column: str | None = None,
                dtype=np.float64, allow_nan: bool = False, duplicates: str = "error",
                what: str = "matrix") -> pd.DataFrame:
    """Read a labelled numeric matrix (file or matrix folder) as a DataFrame indexed by label.

    Parameters
    ----------
    label_column : the column holding row labels; default: the index stored in the file, else
        the first column when it is not numeric.
    dtype : dtype of the values (float64 by default).
    allow_nan : accept NaN/inf; by default they are an error naming the first one.
    duplicates : ``"error"`` (default) or ``"first"`` (keep the first of duplicated row
        labels; the :class:`AlignmentReport` is logged and stored in ``df.attrs["report"]``).
    what : how the input is named in error messages.
    """
    path = Path(path)
    _require_exists(path, what)
    source = f"{what} {path}"
    if path.is_dir():
        frames = list(iter_matrix_parts(path, label_column=label_column, what=what))
        if not frames:
            raise InputError(f"{source}: the folder holds no part-*.parquet files")
        df = frames[0] if len(frames) == 1 else pd.concat(frames, axis=1)
    else:
        df = _frame_to_matrix(read_table(path, what=what), source, label_column)
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InputError(f"{source}: the matrix is empty ({df.shape[0]} rows × {df.shape[1]} "
                         "columns)")
    dup_cols = df.columns[df.columns.duplicated()].unique()
    if len(dup_cols):
        raise InputError(f"{source}: duplicated column label(s) {preview(dup_cols)}; "
                         "column labels must be unique")
    _check_numeric(df, source)
    if df.index.has_duplicates:
        if duplicates == "error":
            dups = df.index[df.index.duplicated()].unique()
            raise InputError(f"{source}: duplicated row label(s) {preview(dups)}; make the "
                             "labels unique (e.g. keep the first row of each) and run again")
        if duplicates != "first":
            raise ValueError("duplicates must be 'error' or 'first'")
        df, report = dedupe_labels(df, source=source)
        log.warning(report.summary())
        df.attrs["report"] = report
    df = df.astype(dtype)
    if not allow_nan:
        check_finite(df.to_numpy(), df.index, df.columns, source)
    return df


def write_matrix(df: pd.DataFrame, path: str | os.PathLike, *, metadata: dict | None = None,
                 label: str | None = None) -> Path:
    """Write a labelled matrix: first column ``label`` (default: the index name or ``gene``)."""
    out = df.copy(deep=False)
    name = label or df.index.name or "gene"
    out.index = out.index.astype(str)
    out = out.rename_axis(name).reset_index()
    return write_table(out, path, metadata=metadata)


def write_matrix_parts(frames: Iterable[pd.DataFrame], path: str | os.PathLike, *,
                       metadata: dict | None = None, label: str | None = None,
                       overwrite: bool = False) -> Path:
    """Write a matrix folder from column blocks that share the same row labels, atomically."""
    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        first_index = None
        for i, frame in enumerate(frames):
            if first_index is None:
                first_index = frame.index
            elif not frame.index.equals(first_index):
                raise InputError(f"matrix part {i} of {path} has other row labels than part 0")
            write_matrix(frame, tmp / PART_PATTERN.format(i), metadata=metadata, label=label)
    return path


def iter_matrix_parts(path: str | os.PathLike, *, label_column: str | None = None,
                      what: str = "matrix") -> Iterator[pd.DataFrame]:
    """Stream the column blocks of a matrix folder (each indexed by the same labels)."""
    path = Path(path)
    parts = sorted(path.glob("part-*.parquet"))
    first_index = None
    for part in parts:
        frame = _frame_to_matrix(read_table(part, what=what), f"{what} {part}", label_column)
        if first_index is None:
            first_index = frame.index
        elif not frame.index.equals(first_index):
            raise InputError(f"{what} {part}: its row labels differ from {parts[0].name}'s; "
                             "all parts of a matrix folder must share row labels and order")
        yield frame


__all__ = ["AlignmentReport", "read_table", "write_table", "read_matrix", "write_matrix",
           "write_matrix_parts", "iter_matrix_parts", "check_columns", "check_finite",
           "table_format"]
