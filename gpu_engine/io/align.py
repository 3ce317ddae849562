"""Label alignment that reports what it did.

Genes from different sources never line up by accident: every helper here returns, beside
the aligned data, an :class:`AlignmentReport` saying how many labels each input had, which
were dropped (and from which input), which were filled and which duplicates were removed.
Callers log ``report.summary()`` and store ``report.to_dict()`` in output metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError, preview


@dataclass
class AlignmentReport:
    """What an alignment step did. Label lists keep their input order."""

    what: str
    n_in: dict[str, int] = field(default_factory=dict)
    n_out: int = 0
    dropped: dict[str, list[str]] = field(default_factory=dict)
    filled: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.what}: kept {self.n_out}"]
        if self.n_in:
            parts.append("of " + ", ".join(f"{k} {v}" for k, v in self.n_in.items()))
        for name, labels in self.dropped.items():
            if labels:
                parts.append(f"dropped {len(labels)} only in {name} ({preview(labels, 3)})")
        if self.filled:
            parts.append(f"filled {len(self.filled)} ({preview(self.filled, 3)})")
        if self.duplicated:
            parts.append(f"removed duplicates of {len(self.duplicated)} label(s) "
                         f"({preview(self.duplicated, 3)}), kept the first")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"what": self.what, "n_in": dict(self.n_in), "n_out": self.n_out,
                "dropped": {k: len(v) for k, v in self.dropped.items()},
                "filled": len(self.filled), "duplicated": len(self.duplicated)}


def dedupe_labels(obj, *, axis: int = 0, source: str = "labels"):
    """Keep the first of duplicated labels along ``axis``. Returns ``(obj, report)``."""
    labels = obj.index if axis == 0 else obj.columns
    mask = labels.duplicated(keep="first")
    dups = list(dict.fromkeys(str(x) for x in labels[mask]))
    out = obj.loc[~mask] if axis == 0 else obj.loc[:, ~mask]
    report = AlignmentReport(f"{source} de-duplication", n_in={source: len(labels)},
                             n_out=int((~mask).sum()), duplicated=dups)
    return out, report


def align_labels(named: dict[str, pd.DataFrame | pd.Series | pd.Index | Sequence], *,
                 order: str | None = None, what: str = "genes", min_overlap: int = 1):
    """Intersect the labels of several inputs and reorder each to the common order.

    ``named`` maps an input's name (used in the report and in errors) to a DataFrame or
    Series (its index is aligned) or to a plain list/Index of labels. The common order is
    that of the input named ``order`` (default: the first). Labels must be unique in each
    input (de-duplicate first with :func:`dedupe_labels`).

    Returns ``(aligned, report)`` where ``aligned`` maps the same names to the reindexed
    objects (a list/Index becomes the common Index).
    """
    if not named:
        raise ValueError("align_labels needs at least one input")
    indexes = {}
    for name, obj in named.items():
        idx = obj.index if isinstance(obj, (pd.DataFrame, pd.Series)) else pd.Index(obj)
        if idx.has_duplicates:
            raise InputError(f"{name}: duplicated {what} {preview(idx[idx.duplicated()].unique())};"
                             " de-duplicate before aligning")
        indexes[name] = idx
    order = order or next(iter(named))
    if order not in indexes:
        raise ValueError(f"order={order!r} is not one of the inputs {list(named)}")
    common_set = set.intersection(*(set(i) for i in indexes.values()))
    common = pd.Index([x for x in indexes[order] if x in common_set], name=indexes[order].name)
    report = AlignmentReport(
        f"{what} alignment", n_in={k: len(v) for k, v in indexes.items()}, n_out=len(common),
        dropped={k: [str(x) for x in v if x not in common_set] for k, v in indexes.items()})
    if len(common) < min_overlap:
        raise InputError(f"no overlap of {what} between {', '.join(named)} "
                         f"({report.summary()}); check that they use the same identifiers "
                         "(HGNC symbols vs Ensembl IDs)" if len(common) == 0 else
                         f"only {len(common)} {what} are shared by {', '.join(named)}, "
                         f"fewer than the {min_overlap} needed")
    aligned = {}
    for name, obj in named.items():
        if isinstance(obj, (pd.DataFrame, pd.Series)):
            aligned[name] = obj.loc[common]
        else:
            aligned[name] = common
    return aligned, report


def reindex_fill(obj, labels: Sequence, *, fill_value=0.0, what: str = "genes",
                 source: str = "input"):
    """Reindex ``obj`` rows to ``labels``, filling absent ones with ``fill_value``.

    Returns ``(obj, report)``; the report lists filled labels and dropped extra ones.
    """
    labels = pd.Index(labels)
    present = obj.index.isin(labels)
    filled = [str(x) for x in labels[~labels.isin(obj.index)]]
    report = AlignmentReport(f"{what} reindexing of {source}",
                             n_in={source: len(obj.index), "target": len(labels)},
                             n_out=len(labels),
                             dropped={source: [str(x) for x in obj.index[~present]]},
                             filled=filled)
    return obj.reindex(labels, fill_value=fill_value), report


def _arrow_strings(x):
    """``x`` as an Arrow string array when it holds strings (Arrow-backed pandas strings
    convert without copying), else None."""
    import pyarrow as pa

    if isinstance(x, (pd.Series, pd.Index)) and isinstance(x.dtype, pd.StringDtype) and \
            x.dtype.storage == "pyarrow":
        a = pa.array(x)
        return a if pa.types.is_string(a.type) or pa.types.is_large_string(a.type) else None
    return None


def member(values, pool) -> np.ndarray:
    """Boolean mask: which ``values`` are in ``pool`` (hash lookup; pandas' ``isin`` on Arrow
    strings iterates in Python, which costs minutes on a 10-million-row GWAS). Arrow strings
    (a pandas ``str`` column) are looked up by Arrow's hash set, 5× faster than an object
    index at that size."""
    v = _arrow_strings(values)
    if v is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        p = _arrow_strings(pool)
        if p is None:
            if not isinstance(pool, pd.Index):
                pool = list(pool)
            try:  # raises when an item is not a string: then the object lookup below
                p = pa.array(pool if isinstance(pool, list) else pool.to_numpy(object),
                             type=pa.string())
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                p = None
        if p is not None:
            found = pc.is_in(v, value_set=p.unique(), skip_nulls=True)
            return found.to_numpy(zero_copy_only=False).astype(bool)
    if not isinstance(pool, pd.Index):
        pool = pd.Index(pd.unique(np.asarray(list(pool), dtype=object)))
    return pool.get_indexer(np.asarray(values, dtype=object)) >= 0
