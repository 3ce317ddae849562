"""PLIER (Mao et al. 2019) and the MultiPLIER projection, scikit-learn style.

    min over Z ≥ 0, B, U ≥ 0:  ‖Y − Z B‖²_F + L1‖Z − C U‖²_F + L2‖B‖²_F + L3‖U‖₁

Y genes × samples (z-scored per gene), C genes × pathways (0/1 prior, cross-validation
genes masked), Z genes × k (the LV loadings), B k × samples, U pathways × k. The semantics
are those of the reference R package in two versions (``mode``): ``"current"`` (PLIER
fe4e9b2) and ``"multiplier"`` (PLIER a2d4a2a, which trained the MultiPLIER recount2 model
PhenoPLIER uses). See docs/plier.md and the docstrings of :mod:`.ustep`,
:mod:`.annotate` and :mod:`.numpc`.

The big products (Y·Bᵀ, Zᵀ·Y, C·U) run on the backend's BLAS (cuBLAS with cupy); the U
step's elastic nets run in :mod:`gpu_engine.kernels.plier`. No genes × samples residual is
formed: the trace's error uses ‖Y − ZB‖² = ‖Y‖² − 2⟨ZᵀY, B⟩ + ⟨ZᵀZ, BBᵀ⟩.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ..backend import get_backend
from ..errors import InputError, preview
from ..lvmodel import LVModel
from ..progress import track
from . import annotate
from . import prior as priors
from .numpc import num_pc
from .ustep import UStep

log = logging.getLogger(__name__)

MODES = ("current", "multiplier")
DEFAULT_TOL = {"current": 1e-6, "multiplier": 1e-5}
ITER_FULL_START = 20


def _as_frame(X, what: str) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    raise InputError(f"{what}: expected a pandas DataFrame (genes in rows), got {type(X).__name__}")


def zscore_rows(Y: pd.DataFrame, *, what: str = "expression data",
                drop_constant: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Per-gene z-scores with the sample sd (ddof = 1). NaN is an error; a zero-variance gene
    is an error unless ``drop_constant`` (then it is dropped and returned)."""
    values = np.array(Y.to_numpy(), dtype=np.float64, order="C")  # the one working copy
    if not np.isfinite(values).all():
        bad = Y.index[~np.isfinite(values).all(axis=1)]
        raise InputError(f"{what}: {len(bad)} gene(s) hold NaN or infinite values: "
                         f"{preview(bad)}; impute or drop them first")
    from ..kernels.standardize import _standardize_rows_cpu

    # in place (the numba row kernel: no full-size temporaries)
    mean = np.empty(len(values))
    sd = np.empty(len(values))
    if values.size:
        _standardize_rows_cpu(values, 1, values, mean, sd)
    const = ~(sd > 1e-12 * np.maximum(np.abs(mean), 1e-300))
    dropped = list(Y.index[const])
    if dropped and not drop_constant:
        raise InputError(f"{what}: {len(dropped)} gene(s) have zero variance across samples: "
                         f"{preview(dropped)}; drop them (or pass drop_constant=True / "
                         "--drop-constant-genes)")
    Z = values[~const] if dropped else values
    return pd.DataFrame(Z, index=Y.index[~const], columns=Y.columns, copy=False), dropped


def z_update(YBt, BBt, L1: float, prior_term=None):
    """Z = max((Y·Bᵀ [+ L1·C·U])·(B·Bᵀ + L1·I)⁻¹, 0): the least-squares Z, clipped at 0 (a
    projection, not NNLS). ``YBt`` genes × k, ``BBt`` k × k, ``prior_term`` = L1·C·U."""
    xp = _namespace(YBt)
    k = BBt.shape[0]
    rhs = YBt if prior_term is None else YBt + prior_term
    return xp.maximum(rhs @ xp.linalg.inv(BBt + L1 * xp.eye(k)), 0.0)


def b_update(ZtZ, ZtY, L2: float):
    """B = (ZᵀZ + L2·I)⁻¹ ZᵀY (unconstrained ridge)."""
    xp = _namespace(ZtZ)
    return xp.linalg.solve(ZtZ + L2 * xp.eye(ZtZ.shape[0]), ZtY)


def _namespace(a):
    if type(a).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


@dataclass
class _Prepared:
    """The fit's inputs after :meth:`PLIER._prepare`: ``Y`` genes × samples z-scored,
    ``prior`` genes × pathways (small pathways zeroed), ``C`` the prior with the held-out
    genes masked, ``mask``, the ``heldout`` table and the labels."""

    Y: np.ndarray
    prior: np.ndarray
    C: np.ndarray
    mask: np.ndarray
    heldout: pd.DataFrame
    genes: list
    pathways: list
    samples: list


@dataclass
class PlierState:
    """What one PLIER iteration reads and writes: ``Z`` genes × k and ``B`` k × samples (on
    the backend), ``U`` pathways × k (host), ``L3`` (None until tuned), the next iteration
    that re-tunes L3, the fraction of LVs with a pathway, the Bdiff history and the
    not-decreasing counter of the stop rule."""

    Z: object
    B: object
    U: np.ndarray
    L3: float | None
    iter_full: int = ITER_FULL_START
    curfrac: float = 0.0
    bdiffs: list = field(default_factory=list)
    count: int = 0


def plier_iteration(state: PlierState, it: int, *, Y, C, ustep: UStep, L1: float, L2: float,
                    frac: float, mode: str, tune_L3: bool, trace: bool = False,
                    ysq: float = 0.0) -> tuple[PlierState, dict | None]:
    """One iteration of the reference's loop (iteration ``it``, from 1): from iteration 20 the
    U step (re-tuning L3 every 20 iterations when ``tune_L3``), then
    Z = max((Y·Bᵀ + L1·C·U)(BBᵀ + L1·I)⁻¹, 0) and B = (ZᵀZ + L2·I)⁻¹ZᵀY, and Bdiff.

    ``Y`` genes × samples and ``C`` (:meth:`Backend.operator` of the masked prior) are on the
    backend. Returns the new state (``state`` itself is not modified) and, with ``trace``,
    the iteration's statistics (MSE from ‖Y‖² = ``ysq`` without forming Y − ZB)."""
    xp = _namespace(state.B)
    Z, B, U, L3 = state.Z, state.B, state.U, state.L3
    iter_full, curfrac = state.iter_full, state.curfrac
    k = B.shape[0]
    ratio = math.nan
    YBt = Y @ B.T
    Z2 = None
    if it >= ITER_FULL_START:
        if it == iter_full and tune_L3:
            if mode == "current":
                U, L3 = ustep.tune_path(Z, frac, U)
            else:
                Unew, L3, _ = ustep.bisect(Z, frac, L3, curfrac, U)
                U = ustep.fit(Z, L3, U if Unew is None else Unew)
            iter_full += ITER_FULL_START
        else:
            U = ustep.fit(Z, L3, U)
        curfrac = float((U.max(axis=0) > 0).sum()) / k
        Z2 = L1 * (C @ xp.asarray(U))
        if trace:
            both = (Z2 > 0) & (YBt > 0)
            ratio = float(_host(xp.median((Z2 / xp.where(both, YBt, 1.0))[both]))) \
                if bool(both.any()) else math.nan
    Z = z_update(YBt, B @ B.T, L1, Z2)
    old = B
    ZtY = Z.T @ Y
    ZtZ = Z.T @ Z
    B = b_update(ZtZ, ZtY, L2)
    bdiff = float(xp.sum((B - old) ** 2) / xp.sum(B * B))
    row = None
    if trace:
        BBt = B @ B.T
        err = ysq - 2 * float(xp.sum(ZtY * B)) + float(xp.sum(ZtZ * BBt))
        ev = _host(xp.linalg.eigvalsh(BBt))
        n_genes, n_samples = Y.shape
        row = {"iteration": it, "mse": err / (n_genes * n_samples), "bdiff": bdiff,
               "b_condition": float(math.sqrt(ev[-1] / ev[0])) if ev[0] > 0 else math.inf,
               "prior_ratio": ratio, "lvs_with_prior": int((U.max(axis=0) > 0).sum()),
               "L3": L3 if L3 is not None else math.nan}
    bdiffs = [*state.bdiffs, bdiff]
    count = state.count
    if it > 52 and bdiff > bdiffs[it - 51]:
        count += 1
    elif count > 1:
        count -= 1
    return PlierState(Z=Z, B=B, U=U, L3=L3, iter_full=iter_full, curfrac=curfrac,
                      bdiffs=bdiffs, count=count), row


def _stop_rule(state: PlierState, it: int, tol: float) -> str | None:
    """The reference's stop rules after iteration ``it``: Bdiff below ``tol``, or Bdiff not
    decreasing (more than 5 of the recent iterations above the value 50 earlier)."""
    if state.bdiffs[-1] < tol:
        return "converged"
    if state.count > 5:
        return "bdiff_not_decreasing"
    return None


class PLIER(BaseEstimator):
    """Pathway-level information extractor.

    Parameters follow the R package (``L1``, ``L2``, ``L3``, ``frac``, ``max_iter``, ``tol``,
    ``max_path``, ``pathway_selection``, ``glm_alpha``, ``min_genes``, ``crossval``,
    ``seed``) plus ``mode`` ("current" or "multiplier", see the module docstring),
    ``heldout`` (a ``pathway, gene`` table fixing the cross-validation genes, e.g. a
    reference run's ``heldOutGenes.parquet``), ``trace`` (record per-iteration statistics
    in ``trace_``), ``drop_constant_genes`` and ``backend``.

    After :meth:`fit`: ``Z_`` (genes × k), ``B_`` (k × samples), ``U_``/``Uauc_``/``Up_``
    (pathways × k), ``summary_`` (pathway, lv, auc, pvalue, fdr), ``L1_``, ``L2_``, ``L3_``,
    ``k_``, ``n_iter_``, ``stop_reason_`` ("converged", "bdiff_not_decreasing",
    "max_iter"), ``heldout_`` (pathway, gene), ``lv_names_``, ``trace_``, ``report_``.
    """

    def __init__(self, k=None, *, mode="current", L1=None, L2=None, L3=None, frac=0.7,
                 max_iter=350, tol=None, max_path=10, pathway_selection="complete",
                 glm_alpha=0.9, min_genes=10, crossval=True, heldout=None, seed=123456,
                 trace=False, drop_constant_genes=False, backend=None, progress=False):
        self.k = k
        self.mode = mode
        self.L1 = L1
        self.L2 = L2
        self.L3 = L3
        self.frac = frac
        self.max_iter = max_iter
        self.tol = tol
        self.max_path = max_path
        self.pathway_selection = pathway_selection
        self.glm_alpha = glm_alpha
        self.min_genes = min_genes
        self.crossval = crossval
        self.heldout = heldout
        self.seed = seed
        self.trace = trace
        self.drop_constant_genes = drop_constant_genes
        self.backend = backend
        self.progress = progress

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        if self.mode not in MODES:
            raise InputError(f"PLIER: mode must be one of {MODES}, got {self.mode!r}")
        if self.pathway_selection not in ("complete", "fast"):
            raise InputError("PLIER: pathway_selection must be 'complete' or 'fast', got "
                             f"{self.pathway_selection!r}")
        if not 0 < self.glm_alpha <= 1:
            raise InputError(f"PLIER: glm_alpha must be in (0, 1], got {self.glm_alpha}")
        if not 0 < self.frac <= 1:
            raise InputError(f"PLIER: frac must be in (0, 1], got {self.frac}")
        if int(self.max_iter) < 1 or int(self.max_path) < 1:
            raise InputError("PLIER: max_iter and max_path must be at least 1")

    # ------------------------------------------------------------------ fit
    def fit(self, Y: pd.DataFrame, prior: pd.DataFrame) -> PLIER:
        """Fit on ``Y`` (genes × samples, raw or normalized expression; z-scored here) and
        ``prior`` (genes × pathways, 0/1): :meth:`_prepare` the inputs, :meth:`_initialise`
        from the SVD, iterate :func:`plier_iteration` until a stop rule holds, then annotate
        the LVs with the held-out genes (:meth:`_finish`)."""
        self._check_params()
        t0 = time.perf_counter()
        prep = self._prepare(Y, prior)
        be = get_backend(self.backend)
        xp = be.xp
        k, L1, L2, tol, d, state = self._initialise(prep, be)
        X = prep.prior if self.mode == "multiplier" else prep.C
        ustep = UStep(X, prep.C, mode=self.mode, selection=self.pathway_selection,
                      max_path=int(self.max_path), alpha=float(self.glm_alpha), xp=xp)
        Ydev = xp.asarray(prep.Y)
        Cdev = be.operator(prep.C)
        ysq = float(xp.sum(Ydev * Ydev)) if self.trace else 0.0
        trace_rows, stop, it = [], "max_iter", 0
        for it in track(range(1, int(self.max_iter) + 1), "PLIER iterations",
                        total=int(self.max_iter), enabled=self.progress):
            state, row = plier_iteration(state, it, Y=Ydev, C=Cdev, ustep=ustep, L1=L1,
                                         L2=L2, frac=self.frac, mode=self.mode,
                                         tune_L3=self.L3 is None, trace=self.trace, ysq=ysq)
            if row is not None:
                trace_rows.append(row)
            stop = _stop_rule(state, it, tol)
            if stop is not None:
                break
        stop = stop or "max_iter"
        self.k_, self.L1_, self.L2_, self.L3_ = k, L1, L2, state.L3
        self.n_iter_, self.stop_reason_ = it, stop
        self._finish(prep, be, state, d, trace_rows)
        self.report_.update({"seconds": time.perf_counter() - t0, "backend": be.name,
                             "max_cd_sweeps": max(ustep.sweeps, default=0)})
        return self

    def _prepare(self, Y: pd.DataFrame, prior: pd.DataFrame) -> _Prepared:
        """Validate and align the inputs: z-score Y per gene, align genes with the prior,
        zero the pathways below ``min_genes``, hold out the cross-validation genes."""
        Y = _as_frame(Y, "expression data")
        prior = _as_frame(prior, "prior")
        pvals = prior.to_numpy()
        if not np.isin(pvals[~np.isnan(pvals)], (0, 1)).all() or np.isnan(pvals).any():
            raise InputError("prior: must hold only 0 and 1 (genes in rows, pathways in columns)")
        Yz, dropped = zscore_rows(Y, drop_constant=self.drop_constant_genes)
        al = priors.align(Yz, prior)
        if self.mode == "multiplier" and not (len(al.Y) == len(Y) == len(prior)):
            log.info("multiplier mode: data and prior aligned to %d common genes (the 2018 "
                     "package required pre-aligned inputs)", len(al.Y))
        P0, small = priors.zero_small_pathways(al.prior, self.min_genes)
        Yv = al.Y.to_numpy(np.float64)
        prior_v = P0.to_numpy(np.float64)
        if self.crossval:
            table = (self.heldout if self.heldout is not None
                     else priors.heldout_table(P0, self.seed))
            mask = priors.mask_from_table(P0, table)
        else:
            table = pd.DataFrame(columns=["pathway", "gene"])
            mask = np.zeros(prior_v.shape, bool)
        self.report_ = {"data_genes": len(Y), "prior_genes": al.n_prior_genes,
                        "common_genes": Yv.shape[0], "samples": Yv.shape[1],
                        "pathways": P0.shape[1], "small_pathways_zeroed": len(small),
                        "constant_genes_dropped": len(dropped)}
        return _Prepared(Y=Yv, prior=prior_v, C=np.where(mask, 0.0, prior_v), mask=mask,
                         heldout=table, genes=list(al.Y.index), pathways=list(P0.columns),
                         samples=list(Y.columns))

    def _initialise(self, prep: _Prepared, be):
        """k, L1, L2 and the tolerance from the SVD (unless given), and the first Z and B:
        B from the leading right singular vectors, Z the ridge least squares, clipped at 0.
        Returns ``(k, L1, L2, tol, singular values, state)``."""
        xp = be.xp
        n_genes, n_samples = prep.Y.shape
        d, V = _svd(prep.Y, xp, be)
        k = self.k
        if k is None:
            npc = num_pc(d, self.mode)
            k = min(2 * npc, int(math.floor(0.9 * n_samples))) if self.mode == "current" else npc
        k = int(k)
        kmax = min(n_genes, n_samples, d.size)
        if not 1 <= k <= kmax:
            raise InputError(f"PLIER: k={k} is not allowed: it must be between 1 and "
                             f"min(genes, samples) = {kmax} ({n_genes} common genes, "
                             f"{n_samples} samples)")
        L2 = float(d[k - 1]) if self.L2 is None else float(self.L2)
        L1 = L2 / 2 if self.L1 is None else float(self.L1)
        tol = DEFAULT_TOL[self.mode] if self.tol is None else float(self.tol)
        Ydev = xp.asarray(prep.Y)
        B = xp.asarray((V[:, :k] * d[:k]).T.copy())
        Z = (Ydev @ B.T) @ xp.linalg.inv(B @ B.T + L1 * xp.eye(k))
        if self.mode == "current":
            flip = xp.all(Z <= 0, axis=0)
            Z = xp.where(flip[None, :], -Z, Z)
            B = xp.where(flip[:, None], -B, B)
        Z = xp.maximum(Z, 0.0)
        state = PlierState(Z=Z, B=B, U=np.zeros((len(prep.pathways), k)),
                           L3=None if self.L3 is None else float(self.L3))
        return k, L1, L2, tol, d, state

    def _finish(self, prep: _Prepared, be, state: PlierState, d, trace_rows) -> None:
        """The fitted attributes, with the cross-validation annotation of the LVs."""
        Zh, Bh, U = be.to_host(state.Z), be.to_host(state.B), state.U
        k = Zh.shape[1]
        self.genes_, self.pathways_, self.samples_ = prep.genes, prep.pathways, prep.samples
        summary, Uauc, Up = (annotate.crossval(Zh, U, prep.prior, prep.mask, prep.pathways,
                                               self.mode)
                             if self.crossval else _empty_annotation(U))
        self.summary_ = summary
        self.lv_names_ = annotate.lv_names(U, Up, summary, prep.pathways,
                                           fallback=self.mode == "current")
        lvs = [f"LV{i}" for i in range(1, k + 1)]
        gidx = pd.Index(prep.genes, name="gene")
        pidx = pd.Index(prep.pathways, name="pathway")
        self.Z_ = pd.DataFrame(Zh, index=gidx, columns=lvs)
        self.B_ = pd.DataFrame(Bh, index=pd.Index(lvs, name="lv"), columns=prep.samples)
        self.U_ = pd.DataFrame(U, index=pidx, columns=lvs)
        self.Uauc_ = pd.DataFrame(Uauc, index=pidx, columns=lvs)
        self.Up_ = pd.DataFrame(Up, index=pidx, columns=lvs)
        self.heldout_ = prep.heldout.reset_index(drop=True)
        self.trace_ = pd.DataFrame(trace_rows) if self.trace else None
        self.singular_values_ = d

    # ------------------------------------------------------------------ use
    def _check_fitted(self):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "Z_", msg="PLIER: call fit() (or PLIER.load()) first")

    def lv_model(self) -> LVModel:
        self._check_fitted()
        return LVModel(self.Z_, self.L2_, backend=self.backend)

    def transform(self, Y_new: pd.DataFrame) -> pd.DataFrame:
        """MultiPLIER projection of new data (genes × columns) into LV space (LVs × columns);
        see :class:`LVModel`."""
        return self.lv_model().transform(Y_new)

    def significant(self, fdr: float = 0.05) -> pd.DataFrame:
        """Rows of ``summary_`` with FDR below ``fdr``."""
        self._check_fitted()
        return self.summary_[self.summary_["fdr"] < fdr].reset_index(drop=True)

    # ------------------------------------------------------------------ persistence
    PARAMS = ("k", "mode", "L1", "L2", "L3", "frac", "max_iter", "tol", "max_path",
              "pathway_selection", "glm_alpha", "min_genes", "crossval", "seed")

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False,
             plots: bool = True) -> Path:
        """Write the model to ``directory`` (Parquet tables + ``model.json``, and with
        ``plots`` the heatmap ``U_heatmap.png`` of U's significant entries), atomically."""
        from ..io.atomic import atomic_dir
        from ..io.tables import write_table

        self._check_fitted()
        directory = Path(directory)
        with atomic_dir(directory, overwrite=overwrite) as tmp:
            for name in ("Z", "B", "U", "Uauc", "Up"):
                frame = getattr(self, f"{name}_")
                write_table(frame.reset_index(), tmp / f"{name}.parquet")
            write_table(self.summary_, tmp / "summary.parquet")
            write_table(self.heldout_, tmp / "heldout.parquet")
            if self.trace_ is not None:
                write_table(self.trace_, tmp / "trace.parquet")
            meta = {"params": {p: getattr(self, p) for p in self.PARAMS},
                    "fitted": {"k": self.k_, "L1": self.L1_, "L2": self.L2_, "L3": self.L3_,
                               "n_iter": self.n_iter_, "stop_reason": self.stop_reason_,
                               "lv_names": self.lv_names_},
                    "report": self.report_, "format": "gpu_engine.plier/1"}
            (tmp / "model.json").write_text(json.dumps(meta, indent=1, default=_jsonable))
            if plots:
                from .plots import u_heatmap

                u_heatmap(self, tmp / "U_heatmap.png")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, *, backend=None) -> PLIER:
        """Read a model written by :meth:`save`."""
        from ..errors import InputFileNotFoundError
        from ..io.tables import read_table

        directory = Path(directory)
        meta_path = directory / "model.json"
        if not meta_path.exists():
            raise InputFileNotFoundError(f"{directory}: not a saved PLIER model (no model.json)")
        meta = json.loads(meta_path.read_text())
        self = cls(**{p: v for p, v in meta["params"].items()}, backend=backend)
        fitted = meta["fitted"]
        self.k_, self.L1_, self.L2_, self.L3_ = (fitted["k"], fitted["L1"], fitted["L2"],
                                                 fitted["L3"])
        self.n_iter_, self.stop_reason_ = fitted["n_iter"], fitted["stop_reason"]
        self.lv_names_ = fitted["lv_names"]
        for name in ("Z", "B", "U", "Uauc", "Up"):
            frame = read_table(directory / f"{name}.parquet", what=f"PLIER {name}")
            setattr(self, f"{name}_", frame.set_index(frame.columns[0]))
        self.summary_ = read_table(directory / "summary.parquet", what="PLIER summary")
        self.heldout_ = read_table(directory / "heldout.parquet", what="PLIER held-out genes")
        tr = directory / "trace.parquet"
        self.trace_ = read_table(tr, what="PLIER trace") if tr.exists() else None
        self.genes_ = list(self.Z_.index)
        self.pathways_ = list(self.U_.index)
        self.samples_ = list(self.B_.columns)
        self.report_ = meta.get("report", {})
        return self


def _empty_annotation(U):
    summary = pd.DataFrame({"pathway": pd.Series(dtype=str), "lv": pd.Series(dtype=np.int64),
                            "auc": pd.Series(dtype=float), "pvalue": pd.Series(dtype=float),
                            "fdr": pd.Series(dtype=float)})
    return summary, np.zeros_like(U), np.ones_like(U)


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _svd(Y: np.ndarray, xp, be) -> tuple[np.ndarray, np.ndarray]:
    """Singular values (all of them, or the leading max(200, samples/4) when samples > 500,
    as the reference's randomized SVD) and right singular vectors (samples × r)."""
    n_genes, n_samples = Y.shape
    if n_samples <= 500:
        _, d, Vt = np.linalg.svd(Y, full_matrices=False)
        return d, Vt.T
    r = int(min(n_samples, n_genes, max(200, n_samples // 4)))
    Ydev = xp.asarray(Y)
    # exact, through the smaller Gram matrix (the reference approximates the same values)
    if n_samples <= n_genes:
        w, V = xp.linalg.eigh(Ydev.T @ Ydev)
        w, V = w[::-1][:r], V[:, ::-1][:, :r]
    else:
        w, Ug = xp.linalg.eigh(Ydev @ Ydev.T)
        w, Ug = w[::-1][:r], Ug[:, ::-1][:, :r]
        d = xp.sqrt(xp.clip(w, 0, None))
        V = (Ydev.T @ Ug) / xp.where(d > 0, d, 1.0)
    d = xp.sqrt(xp.clip(w, 0, None))
    return be.to_host(d), be.to_host(V)
