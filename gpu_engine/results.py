"""Results that save and load: one convention for every stage's output.

Two shapes, both written atomically (a reader never sees half a result):

- :class:`TableResult` — a result that *is* one long table (GLS associations, S-PrediXcan,
  driving features…). It is a :class:`pandas.DataFrame` subclass, so everything a table
  does it does; ``save(path)`` writes one file: Parquet (``.parquet``) carries the result's
  kind and its ``attrs`` (run metadata, alignment reports, skipped pairs) in the schema
  metadata; a text table (``.tsv``, ``.csv``, ``.gz``) carries the rows only.
- :class:`FolderResult` — a result made of several tables and values (null calibration,
  drug scores, an evaluation, a consensus…). ``save(folder)`` writes one Parquet file per
  table plus ``result.json`` (the kind, the scalar fields, the run metadata), and the plots
  the result knows how to draw.

``load(path)`` on a class reads what its ``save`` wrote; :func:`load` (module level) reads
any saved result and returns an object of the class recorded in it. Estimators (PLIER, the
cluster ensemble) save their fitted state the same way, with ``model.json`` in place of
``result.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .errors import InputError, InputFileNotFoundError

RESULT_JSON = "result.json"
_KINDS: dict[str, type] = {}


def register(cls: type) -> type:
    """Record ``cls`` under its ``kind`` so that :func:`load` can find it."""
    _KINDS[cls.kind] = cls
    return cls


def _jsonable(value: Any) -> Any:
    from .io.metadata import _jsonable as base

    if isinstance(value, np.ndarray):
        return value.tolist()
    return base(value)


def _kind_class(kind: str, path: Path) -> type:
    if kind not in _KINDS:
        _import_all()
    if kind not in _KINDS:
        raise InputError(f"{path}: unknown result kind {kind!r}; it was written by a newer "
                         "gpu_engine, or is not a gpu_engine result")
    return _KINDS[kind]


def _import_all() -> None:
    """Import every module of the package, so that every result class has registered."""
    import importlib
    import pkgutil

    import gpu_engine

    for m in pkgutil.walk_packages(gpu_engine.__path__, "gpu_engine."):
        if m.name != "gpu_engine.__main__" and not m.name.startswith("gpu_engine.cli"):
            importlib.import_module(m.name)


def load(path: str | os.PathLike):
    """Read any saved result (a result folder or a result Parquet file) as its own class."""
    path = Path(path)
    if path.is_dir():
        meta = _read_result_json(path)
        return _kind_class(meta["kind"], path).load(path)
    from .io import read_metadata

    if not path.exists():
        raise InputFileNotFoundError(f"{path}: no such result file or folder")
    kind = read_metadata(path).get("result_kind")
    if kind is None:
        raise InputError(f"{path}: not a saved gpu_engine result (no result kind in its "
                         "metadata); read it with gpu_engine.io.read_table")
    return _kind_class(kind, path).load(path)


def _read_result_json(folder: Path, name: str = RESULT_JSON) -> dict:
    p = folder / name
    if not p.is_file():
        raise InputFileNotFoundError(f"{folder}: not a saved gpu_engine result (no {name})")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON ({exc}); the result folder is damaged") from None


# ----------------------------------------------------------------------------- one table
class TableResult(pd.DataFrame):
    """A result that is one table. Subclasses set ``kind`` and may set ``columns_``.

    ``attrs`` (a dict, pandas' own) holds the run metadata and reports; it is saved in the
    Parquet metadata and restored on load. Slicing or transforming the table keeps the class.
    """

    kind: ClassVar[str] = "table"
    _metadata: ClassVar[list] = []

    @property
    def _constructor(self):
        return type(self)

    @property
    def _constructor_from_mgr(self):
        cls = type(self)

        def make(mgr, axes):
            obj = pd.DataFrame._from_mgr(mgr, axes=axes)
            return cls(obj)
        return make

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, **attrs):
        """Wrap ``frame`` (no copy of the data) and merge ``attrs`` into its attrs."""
        out = cls(frame, copy=False)
        out.attrs = {**frame.attrs, **attrs}
        return out

    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
        """Write the table to ``path``: ``.parquet`` with the kind and ``attrs`` in its
        metadata, anything else as text by :meth:`_write_text`."""
        from .io import write_table

        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; choose another output file or pass "
                                  "overwrite=True (--overwrite)")
        frame = pd.DataFrame(self, copy=False)
        if path.suffix.lower() in (".parquet", ".pq"):
            meta = {**_jsonable(dict(self.attrs)), "result_kind": self.kind}
            return write_table(frame, path, metadata=meta)
        self._write_text(frame, path)
        return path

    def _write_text(self, frame: pd.DataFrame, path: Path) -> None:
        """A text table (format from the suffix: ``.tsv``, ``.csv``, ``.gz`` …), atomically.
        Subclasses that must write a reference tool's exact format override this."""
        from .io import write_table

        write_table(frame, path)

    @classmethod
    def load(cls, path: str | os.PathLike):
        """Read what :meth:`save` wrote (attrs come back from Parquet files)."""
        from .io import read_metadata, read_table
        from .io.tables import table_format

        path = Path(path)
        frame = read_table(path, what=f"{cls.kind} result")
        out = cls(frame, copy=False)
        if table_format(path)[0] == "parquet":
            meta = read_metadata(path)
            kind = meta.pop("result_kind", cls.kind)
            if kind != cls.kind:
                raise InputError(f"{path}: holds a {kind!r} result, not {cls.kind!r}; load it "
                                 f"with gpu_engine.results.load")
            out.attrs = meta
        return out


# ----------------------------------------------------------------------------- a folder
class FolderResult:
    """A result of several tables and values, saved as a folder.

    Subclasses are dataclasses; ``_TABLES`` names the fields that are DataFrames (saved as
    ``<name>.parquet``), ``_ARRAYS`` the NumPy array fields (saved as one-column or
    row-per-item Parquet), everything else goes into ``result.json``. ``_write_extras``
    adds plots after the data are written.
    """

    kind: ClassVar[str] = "folder"
    _TABLES: ClassVar[tuple[str, ...]] = ()
    _ARRAYS: ClassVar[tuple[str, ...]] = ()
    _FILES: ClassVar[dict[str, str]] = {}  # field → file stem, where it is not the field name
    _INDEX_LABELS: ClassVar[dict[str, str]] = {}  # field → column name for an unnamed index

    def _write_extras(self, folder: Path) -> None:
        """Plots and human-readable copies; nothing that :meth:`load` needs."""

    def _write_parts(self, folder: Path, metadata: dict) -> None:
        """Further files that :meth:`load` needs (nested results); none by default."""

    def save(self, folder: str | os.PathLike, *, overwrite: bool = False,
             plots: bool = True, metadata: dict | None = None) -> Path:
        """Write the result into a new ``folder`` (replaced only with ``overwrite``).

        ``metadata`` (default: the ``metadata`` attribute, set by :meth:`load` or the
        caller) is the run metadata; it goes into ``result.json`` and every Parquet file."""
        from .io import write_table
        from .io.atomic import atomic_dir

        folder = Path(folder)
        meta = _jsonable(metadata if metadata is not None else getattr(self, "metadata", {}))
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        doc: dict[str, Any] = {"kind": self.kind, "fields": {}, "tables": {}, "arrays": {},
                               "metadata": meta}
        with atomic_dir(folder, overwrite=overwrite) as tmp:
            for name, value in values.items():
                file = f"{self._FILES.get(name, name)}.parquet"
                if name in self._TABLES:
                    if value is None:
                        doc["tables"][name] = None
                        continue
                    frame = pd.DataFrame(value, copy=False)
                    spec = {"file": file, "columns": _column_names(frame), "index": None,
                            "columns_name": frame.columns.name}
                    if not isinstance(frame.index, pd.RangeIndex):
                        # the index is written as ordinary leading columns, so that any
                        # Parquet reader sees the labels (e.g. a 'drug' column)
                        names = list(frame.index.names)
                        label = self._INDEX_LABELS.get(name, "index")
                        cols = [n if n is not None else (label if len(names) == 1
                                                        else f"{label}_{i}")
                                for i, n in enumerate(names)]
                        spec["index"], spec["index_names"] = cols, names
                        frame = frame.rename_axis(cols).reset_index()
                    doc["tables"][name] = spec
                    write_table(frame, tmp / file, metadata=meta)
                elif name in self._ARRAYS:
                    arr = np.asarray(value)
                    doc["arrays"][name] = {"file": file, "shape": list(arr.shape),
                                           "dtype": str(arr.dtype)}
                    flat = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr[:, None]
                    write_table(pd.DataFrame(flat, columns=[str(i) for i in
                                                            range(flat.shape[1])]),
                                tmp / file, metadata=meta)
                else:
                    doc["fields"][name] = _jsonable(value)
            (tmp / RESULT_JSON).write_text(json.dumps(doc, indent=1))
            self._write_parts(tmp, meta)
            if plots:
                self._write_extras(tmp)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike):
        """Read a folder written by :meth:`save`."""
        from .io import read_table

        folder = Path(folder)
        doc = _read_result_json(folder)
        if doc.get("kind") != cls.kind:
            raise InputError(f"{folder}: holds a {doc.get('kind')!r} result, not {cls.kind!r}; "
                             "load it with gpu_engine.results.load")
        kw = dict(doc["fields"])
        for name, spec in doc["tables"].items():
            if spec is None:
                kw[name] = None
                continue
            frame = read_table(folder / spec["file"], what=f"{cls.kind} {name}")
            if spec.get("index"):
                frame = frame.set_index(spec["index"])
                frame.index.names = spec["index_names"]
            frame.columns = _restore_columns(frame.columns, spec["columns"])
            frame.columns.name = spec.get("columns_name")
            kw[name] = frame
        for name, spec in doc["arrays"].items():
            flat = read_table(folder / spec["file"], what=f"{cls.kind} {name}").to_numpy()
            kw[name] = flat.astype(spec["dtype"]).reshape(spec["shape"])
        obj = cls._from_saved(kw)
        obj.metadata = doc.get("metadata", {})
        return obj

    @classmethod
    def _from_saved(cls, kw: dict):
        """Build the object from loaded fields; subclasses fix up JSON-decoded types."""
        return cls(**kw)


def _column_names(frame: pd.DataFrame) -> list:
    return [c if isinstance(c, (str, int, float, bool)) else str(c) for c in frame.columns]


def _restore_columns(read, saved: list) -> pd.Index:
    """Column labels as they were (Parquet stores them as strings)."""
    if [str(c) for c in saved] == [str(c) for c in read]:
        return pd.Index(saved, name=read.name)
    return read


def equal(a, b) -> bool:
    """Whether two results hold the same data (tables compared exactly, NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, pd.DataFrame):
        try:
            pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), check_dtype=False)
        except AssertionError:
            return False
        return True
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, pd.DataFrame) or isinstance(y, pd.DataFrame):
            if (x is None) != (y is None):
                return False
            if x is not None:
                try:
                    pd.testing.assert_frame_equal(x, y, check_dtype=False,
                                                  check_index_type=False,
                                                  check_column_type=False)
                except AssertionError:
                    return False
        elif isinstance(x, np.ndarray):
            if not np.array_equal(x, np.asarray(y), equal_nan=x.dtype.kind == "f"):
                return False
        elif _jsonable(x) != _jsonable(y):
            return False
    return True


# ----------------------------------------------------------------------------- estimators
MODEL_JSON = "model.json"


class SavedEstimator:
    """Mixin for fitted estimators (scikit-learn ``BaseEstimator`` subclasses) that save
    their fitted state as a folder: one Parquet file per fitted table, ``model.json`` with
    the format, the parameters (``get_params``) and the JSON-able fitted attributes.

    Subclasses set ``FORMAT`` (``"gpu_engine.<name>/<version>"``), ``_FITTED_TABLES``
    (attribute → file stem) and ``_FITTED_JSON`` (attribute names), and may override
    ``_encode``/``_decode`` for a table that is not a plain DataFrame.
    """

    FORMAT: ClassVar[str] = ""
    _FITTED_TABLES: ClassVar[dict[str, str]] = {}
    _FITTED_JSON: ClassVar[tuple[str, ...]] = ()

    def _encode(self, name: str, value) -> pd.DataFrame:
        return value

    @classmethod
    def _decode(cls, name: str, frame: pd.DataFrame, fitted: dict):
        return frame

    def save(self, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the fitted estimator into a new ``folder`` (atomically)."""
        from sklearn.utils.validation import check_is_fitted

        from .io import write_table
        from .io.atomic import atomic_dir

        check_is_fitted(self)
        folder = Path(folder)
        with atomic_dir(folder, overwrite=overwrite) as tmp:
            for attr, stem in self._FITTED_TABLES.items():
                value = getattr(self, attr)
                if value is not None:
                    write_table(self._encode(attr, value), tmp / f"{stem}.parquet")
            doc = {"format": self.FORMAT, "params": _jsonable(self.get_params(deep=False)),
                   "fitted": {a: _jsonable(getattr(self, a)) for a in self._FITTED_JSON}}
            (tmp / MODEL_JSON).write_text(json.dumps(doc, indent=1))
            self._write_extras(tmp)
        return folder

    def _write_extras(self, folder: Path) -> None:
        """Human-readable copies and plots; nothing :meth:`load` needs."""

    @classmethod
    def load(cls, folder: str | os.PathLike):
        """Read an estimator written by :meth:`save`."""
        from .io import read_table

        folder = Path(folder)
        doc = _read_result_json(folder, MODEL_JSON)
        if doc.get("format") != cls.FORMAT:
            raise InputError(f"{folder}: holds a {doc.get('format')!r} model, not "
                             f"{cls.FORMAT!r}")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in doc["params"].items()}
        self = cls(**params)
        fitted = doc["fitted"]
        for a, v in fitted.items():
            setattr(self, a, v)
        for attr, stem in cls._FITTED_TABLES.items():
            p = folder / f"{stem}.parquet"
            value = None
            if p.exists():
                value = cls._decode(attr, read_table(p, what=f"{cls.__name__} {attr}"), fitted)
            setattr(self, attr, value)
        return self
