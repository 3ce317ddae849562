"""The gene-module model contract: what every command and function that takes "an LV model"
accepts, and the one loader for it.

A gene-module model has genes, LV names, loadings ``Z`` (genes × LVs, non-negative in PLIER)
and the ridge ``L2`` of the fit that produced it; it projects new data into LV space with
MultiPLIER's rule (:meth:`LVModel.transform`). Its producers: a fitted
:class:`~gpu_engine.plier.PLIER` (``.lv_model()``), a saved PLIER folder, a saved LV model
folder (:meth:`LVModel.save`), or a bare Z matrix with its L2 (e.g. MultiPLIER's recount2
model: 6,750 genes × 987 LVs, L2 = 241.13217). Its consumers: the GLS association (which
needs only ``Z``), projection, drug scores in module space.

:func:`load_lv_model` reads any of them from a path, dispatching on the ``format`` recorded
in the folder's ``model.json``; :func:`as_lv_model` accepts an object or a path.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from .errors import InputError, InputFileNotFoundError, preview

log = logging.getLogger(__name__)

FORMAT = "gpu_engine.lv_model/1"
PLIER_FORMAT = "gpu_engine.plier/1"


@runtime_checkable
class GeneModuleModel(Protocol):
    """What a gene-module model offers (see the module docstring)."""

    Z: pd.DataFrame
    L2: float | None

    @property
    def genes(self) -> list: ...

    @property
    def lv_names(self) -> list[str]: ...

    def transform(self, Y_new: pd.DataFrame) -> pd.DataFrame: ...


class LVModel:
    """A gene-module model that projects new data into LV space — MultiPLIER's
    ``GetNewDataB``: B_new = (ZᵀZ + L2·I)⁻¹ Zᵀ Ŷ, with Ŷ the new data z-scored per gene
    across ITS OWN columns (ddof = 1), restricted to the model's genes in its order, missing
    genes filled with 0. The result depends on all columns together.

    ``Z``: genes × LVs DataFrame; ``L2``: the model's L2 (``None`` for a bare Z: it can then
    serve the GLS association, which needs only Z, but not projection)."""

    def __init__(self, Z: pd.DataFrame, L2: float | None = None, *, backend=None):
        if not isinstance(Z, pd.DataFrame):
            raise InputError(f"LV model Z: expected a pandas DataFrame (genes × LVs), got "
                             f"{type(Z).__name__}")
        self.Z = Z
        self.L2 = None if L2 is None else float(L2)
        self.backend = backend
        if self.Z.index.has_duplicates:
            dup = self.Z.index[self.Z.index.duplicated()]
            raise InputError(f"LV model Z: duplicated genes {preview(dup)}")
        self._P = None
        self.report_ = {}

    @property
    def genes(self) -> list:
        return list(self.Z.index)

    @property
    def lv_names(self) -> list[str]:
        return [str(c) for c in self.Z.columns]

    lv_names_ = lv_names  # the fitted-attribute spelling used by PLIER

    @property
    def P_(self) -> np.ndarray:
        """P = (ZᵀZ + L2·I)⁻¹ Zᵀ (LVs × genes), computed once: projection is one product."""
        if self.L2 is None:
            raise InputError("LV model: this model is a bare Z matrix without its L2, which "
                             "projection needs; give the L2 of the fit that produced it "
                             "(--lv-l2; MultiPLIER recount2: 241.13217)")
        if self._P is None:
            Zv = self.Z.to_numpy(np.float64)
            k = Zv.shape[1]
            self._P = np.linalg.solve(Zv.T @ Zv + self.L2 * np.eye(k), Zv.T)
        return self._P

    def lv_model(self) -> LVModel:
        return self

    def transform(self, Y_new: pd.DataFrame) -> pd.DataFrame:
        """LVs × columns projection of ``Y_new`` (genes × columns, e.g. samples, traits or
        drugs). Genes of the new data with zero variance are treated as missing (0) and
        counted in ``report_``."""
        from .backend import get_backend
        from .io import member
        from .plier.model import zscore_rows

        if not isinstance(Y_new, pd.DataFrame):
            raise InputError(f"data to project: expected a pandas DataFrame (genes in rows), "
                             f"got {type(Y_new).__name__}")
        if Y_new.index.has_duplicates:
            dup = Y_new.index[Y_new.index.duplicated()]
            raise InputError(f"data to project: duplicated genes {preview(dup)}; "
                             "make genes unique first")
        if Y_new.shape[1] < 2:
            raise InputError("data to project: need at least 2 columns (genes are z-scored "
                             "across the columns)")
        P = self.P_
        rows = np.flatnonzero(member(Y_new.index.to_numpy(), self.Z.index.to_numpy()))
        if len(rows) == 0:
            raise InputError(f"data to project: no gene in common with the model "
                             f"(data {preview(Y_new.index)}, model {preview(self.Z.index)})")
        Yz, constant = zscore_rows(Y_new.iloc[rows], what="data to project", drop_constant=True)
        # genes the data lacks count as 0: only the model's columns for the genes present
        pos = self.Z.index.get_indexer(Yz.index)
        be = get_backend(self.backend)
        xp = be.xp
        B = be.to_host(xp.asarray(P[:, pos]) @ xp.asarray(Yz.to_numpy()))
        self.report_ = {"model_genes": len(self.Z), "data_genes": len(Y_new),
                        "used_genes": len(Yz), "missing_genes": len(self.Z) - len(Yz),
                        "constant_genes": len(constant)}
        if constant:
            log.warning("projection: %d gene(s) with zero variance were treated as missing: %s",
                        len(constant), preview(constant))
        return pd.DataFrame(B, index=self.Z.columns, columns=Y_new.columns)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``Z.parquet`` (first column ``gene``) and ``model.json`` (format, L2)."""
        from .io import write_matrix
        from .io.atomic import atomic_dir

        directory = Path(directory)
        with atomic_dir(directory, overwrite=overwrite) as tmp:
            write_matrix(self.Z, tmp / "Z.parquet")
            (tmp / "model.json").write_text(json.dumps({"format": FORMAT, "L2": self.L2},
                                                       indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, *, backend=None) -> LVModel:
        return load_lv_model(directory, backend=backend)


def _model_format(folder: Path) -> str:
    meta = folder / "model.json"
    if not meta.is_file():
        raise InputFileNotFoundError(
            f"{folder}: a folder, but not a saved model (no model.json); give a PLIER model "
            "folder (`gpu-engine plier fit`), an LV model folder, or a genes × LVs Z matrix file")
    try:
        return json.loads(meta.read_text()).get("format", "")
    except json.JSONDecodeError as exc:
        raise InputError(f"{meta}: not valid JSON ({exc}); the model folder is damaged") from None


def load_lv_model(path: str | os.PathLike, *, l2: float | None = None,
                  backend=None) -> LVModel:
    """The gene-module model at ``path``: a PLIER model folder, an LV model folder, or a
    genes × LVs Z matrix file (Parquet/TSV/CSV, first column the genes) with ``l2``.

    ``l2`` given with a model folder must equal the folder's own (else an error: two
    different models are meant)."""
    from .io import read_matrix

    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"LV model {path} does not exist")
    if path.is_dir() and not any(path.glob("part-*.parquet")):
        fmt = _model_format(path)
        if fmt == PLIER_FORMAT:
            from .plier import PLIER

            model = PLIER.load(path, backend=backend).lv_model()
        elif fmt == FORMAT:
            meta = json.loads((path / "model.json").read_text())
            model = LVModel(read_matrix(path / "Z.parquet", what=f"LV model Z ({path})"),
                            meta.get("L2"), backend=backend)
        else:
            raise InputError(f"{path}: model.json records format {fmt!r}, which is not a "
                             "gene-module model (expected a PLIER or LV model folder)")
        if l2 is not None and model.L2 is not None and not np.isclose(l2, model.L2):
            raise InputError(f"{path}: the model folder records L2 = {model.L2:g}, but "
                             f"L2 = {l2:g} was given; leave --lv-l2 out for a model folder")
        return model
    return LVModel(read_matrix(path, what="LV model Z"), l2, backend=backend)


def as_lv_model(model, *, l2: float | None = None, backend=None) -> LVModel:
    """An :class:`LVModel` from a path, a fitted PLIER, an LVModel or a Z DataFrame."""
    if isinstance(model, (str, os.PathLike)):
        return load_lv_model(model, l2=l2, backend=backend)
    if isinstance(model, pd.DataFrame):
        return LVModel(model, l2, backend=backend)
    if hasattr(model, "lv_model"):
        return model.lv_model()
    raise InputError(f"LV model: expected a path, a PLIER model, an LVModel or a Z DataFrame, "
                     f"got {type(model).__name__}")
