"""Building PhenoPLIER's GLS model: validation, gene alignment, y, covariates, LV predictors
and the per-LV correlation blocks (``gpu_engine.gls`` documents the semantics).

:func:`prepare` turns user inputs into a :class:`Problem` (aligned NumPy arrays and the
groups of traits that share a gene set); :func:`plan_group` builds, for one group, everything
that depends on the LVs but not on the traits (a :class:`GroupPlan`): the predictor columns,
each LV's block of top genes and its whitener chol(R_BB)⁻¹ (sub-matrix mode), or the
Cholesky factor of the whole correlation matrix by diagonal blocks (full mode).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as sla

from ..errors import InputError, preview
from ..io import AlignmentReport, align_labels, dedupe_labels
from .inputs import COVARIATES, covariate_matrices, trait_values

log = logging.getLogger(__name__)

MODES = ("submatrix", "full")
PREDICTORS = ("binary", "continuous")
SYMMETRY_TOL = 1e-8
DIAGONAL_TOL = 1e-6
MAX_LV_CHUNK = 64      # LVs solved together
MAX_BLOCK_ROWS = 4096  # Σ block sizes of one LV chunk (bounds the gathered block rows)


@dataclass
class Problem:
    """Aligned inputs of one GLS run (host NumPy, float64).

    ``genes`` (n0, in the correlation matrix's order), ``R`` (n0 × n0), ``Z`` (n0 × L) loadings
    of the LVs tested, ``top_all`` (n0 × L) the sub-matrix rule's top genes (Z ≥ the LV's
    quantile over all genes of the LV model), ``Y`` (n0 × T) responses before standardization
    (NaN: gene missing for that trait), ``C`` (n0 × T × k) covariates or None, ``groups``:
    (gene mask, trait positions) for each set of traits that share the same genes.
    """

    genes: pd.Index
    R: np.ndarray
    Z: np.ndarray
    top_all: np.ndarray
    lv_names: list[str]
    trait_names: list[str]
    Y: np.ndarray
    C: np.ndarray | None
    covars: list[str]
    mode: str
    predictor: str
    top_fraction: float
    groups: list[tuple[np.ndarray, np.ndarray]]
    alignment: AlignmentReport
    skipped: list[dict] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)  # trait -> genes missing (NaN)

    @property
    def n_params(self) -> int:
        return 2 + len(self.covars)


def _frame(obj, what: str) -> pd.DataFrame:
    if isinstance(obj, pd.Series):
        obj = obj.to_frame()
    if not isinstance(obj, pd.DataFrame):
        raise InputError(f"{what}: expected a pandas DataFrame with gene labels as the index, "
                         f"got {type(obj).__name__}")
    return obj


def check_gene_corr(gene_corr: pd.DataFrame) -> pd.DataFrame:
    """Validate a genes × genes correlation matrix: square, same labels on both axes (columns
    are reordered to the rows' order), unique labels, finite, symmetric, unit diagonal.
    Positive-definiteness is checked where it is factorized. Returns the matrix (float64)."""
    R = _frame(gene_corr, "gene correlation matrix")
    if R.shape[0] != R.shape[1]:
        raise InputError(f"gene correlation matrix: must be square, got {R.shape[0]} rows × "
                         f"{R.shape[1]} columns")
    if R.index.has_duplicates:
        raise InputError(f"gene correlation matrix: duplicated genes "
                         f"{preview(R.index[R.index.duplicated()].unique())}")
    if not R.columns.equals(R.index):
        if set(R.columns) != set(R.index):
            extra = [c for c in R.columns if c not in set(R.index)]
            raise InputError(f"gene correlation matrix: row and column genes differ (e.g. "
                             f"{preview(extra, 3)} only among the columns)")
        R = R.loc[:, R.index]
    values = R.to_numpy(np.float64)
    if not np.isfinite(values).all():
        i, j = np.argwhere(~np.isfinite(values))[0]
        raise InputError(f"gene correlation matrix: non-finite value at ({R.index[i]!r}, "
                         f"{R.index[j]!r})")
    worst, i, j = 0.0, 0, 0
    for a in range(0, values.shape[0], 512):  # row blocks: no n × n temporaries
        d = np.abs(values[a:a + 512] - values[:, a:a + 512].T)
        k = int(np.argmax(d))
        if d.flat[k] > worst:
            worst, (i, j) = d.flat[k], (a + k // d.shape[1], k % d.shape[1])
    if worst > SYMMETRY_TOL:
        raise InputError(
            f"gene correlation matrix: not symmetric: R[{R.index[i]!r}, {R.index[j]!r}] = "
            f"{values[i, j]:.6g} but R[{R.index[j]!r}, {R.index[i]!r}] = {values[j, i]:.6g}; "
            "symmetrize it ((R + Rᵀ)/2) or rebuild it")
    diag = np.abs(np.diag(values) - 1.0)
    if diag.max() > DIAGONAL_TOL:
        i = int(diag.argmax())
        raise InputError(f"gene correlation matrix: the diagonal must be 1 (a correlation "
                         f"matrix), but R[{R.index[i]!r}, {R.index[i]!r}] = {values[i, i]:.6g}")
    return R if R.dtypes.eq(np.float64).all() else R.astype(np.float64)


def prepare(lv_loadings, traits, gene_corr, covariates=None, *, mode: str = "submatrix",
            predictor: str = "binary", top_fraction: float = 0.01, covars=(),
            scale: str = "pvalue", lvs=None) -> Problem:
    """Validate and align the inputs of :func:`gpu_engine.gls.associate`."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, not {mode!r}")
    if predictor not in PREDICTORS:
        raise InputError(f"predictor must be one of {PREDICTORS}, not {predictor!r}")
    if not 0 < top_fraction < 1:
        raise InputError(f"top_fraction must lie in (0, 1), not {top_fraction!r}")
    covars = sorted(set(covars))  # the reference orders covariate columns by name
    bad = [c for c in covars if c not in COVARIATES]
    if bad:
        raise InputError(f"unknown covariate(s) {preview(bad)}; choose from "
                         f"{', '.join(COVARIATES)}")
    if covars and covariates is None:
        raise InputError(f"covariates {preview(covars)} were asked for but no covariates "
                         "table was given (S-MultiXcan n / n_indep)")

    Z = _frame(lv_loadings, "LV model")
    if Z.index.has_duplicates:
        raise InputError(f"LV model: duplicated genes {preview(Z.index[Z.index.duplicated()])}")
    if Z.columns.has_duplicates:
        raise InputError(f"LV model: duplicated LV names "
                         f"{preview(Z.columns[Z.columns.duplicated()])}")
    if lvs is not None:
        lvs = [lvs] if isinstance(lvs, str) else list(lvs)
        missing = [x for x in lvs if x not in Z.columns]
        if missing:
            raise InputError(f"LV model: unknown LV(s) {preview(missing)}; it has "
                             f"{preview(Z.columns)}")
        Z = Z.loc[:, lvs]
    zvals = Z.to_numpy(np.float64)
    if not np.isfinite(zvals).all():
        i, j = np.argwhere(~np.isfinite(zvals))[0]
        raise InputError(f"LV model: non-finite loading for LV {Z.columns[j]!r}, gene "
                         f"{Z.index[i]!r}")
    # sub-matrix rule: top genes by the quantile over ALL genes of the LV model
    thresholds = np.quantile(zvals, 1.0 - top_fraction, axis=0)

    T = _frame(traits, "traits")
    if T.columns.has_duplicates:
        raise InputError(f"traits: duplicated trait names "
                         f"{preview(T.columns[T.columns.duplicated()])}")
    if T.index.has_duplicates:
        T, dedup = dedupe_labels(T, source="traits")
        log.warning("traits: %s", dedup.summary())
    R = check_gene_corr(gene_corr)
    aligned, report = align_labels({"gene correlation": R.index, "LV model": Z.index,
                                    "traits": T.index}, what="genes")
    genes = aligned["gene correlation"]
    log.info("%s", report.summary())
    pos = R.index.get_indexer(genes)
    Rv = np.ascontiguousarray(R.to_numpy(np.float64)[np.ix_(pos, pos)])
    zpos = Z.index.get_indexer(genes)
    Zal = np.ascontiguousarray(zvals[zpos])
    top_all = Zal >= thresholds[None, :]
    Y = trait_values(T, scale=scale).reindex(genes).to_numpy(np.float64)
    trait_names = [str(t) for t in T.columns]
    C = None
    if covars:
        C = covariate_matrices(covariates, covars, genes, list(T.columns))
    missing = np.isnan(Y)
    if C is not None:
        missing |= np.isnan(C).any(axis=2)
    n_min = 2 + len(covars) + 2
    skipped = []
    keys: dict[bytes, list[int]] = {}
    for t in range(Y.shape[1]):
        n_t = int((~missing[:, t]).sum())
        if n_t < n_min:
            skipped.append({"lv": None, "trait": trait_names[t], "reason":
                            f"only {n_t} genes with values (need ≥ {n_min})"})
            continue
        keys.setdefault(np.packbits(missing[:, t]).tobytes(), []).append(t)
    groups = [(~missing[:, idx[0]], np.asarray(idx)) for idx in keys.values()]
    if skipped:
        log.warning("skipped %d trait(s) with too few genes: %s", len(skipped),
                    preview([s["trait"] for s in skipped]))
    n_missing = missing.sum(axis=0)
    missing_by_trait = {trait_names[t]: int(n_missing[t]) for t in np.flatnonzero(n_missing)}
    if missing_by_trait:
        log.info("%d trait(s) lack values (NaN) for some of the %d aligned genes and are fitted "
                 "on their own gene sets (%d groups)", len(missing_by_trait), len(genes),
                 len(groups))
    return Problem(genes=genes, R=Rv, Z=Zal, top_all=top_all,
                   lv_names=[str(c) for c in Z.columns], trait_names=trait_names, Y=Y, C=C,
                   covars=covars, mode=mode, predictor=predictor, top_fraction=top_fraction,
                   groups=groups, alignment=report, skipped=skipped, missing=missing_by_trait)


# ----------------------------------------------------------------------------- group plans
@dataclass
class LVChunk:
    """LVs solved together in sub-matrix mode, their blocks padded to ``bmax`` rows.

    ``lvs`` positions into the plan's fitted LVs; ``idx`` (Lc, bmax) block rows as positions
    into the group's genes (n_g = a zero padding row); ``W`` (Lc, bmax, bmax) whiteners
    chol(R_BB)⁻¹ (zero padding); ``ub``/``wub`` (Lc, bmax, 2) block rows of [1, s], raw and
    whitened."""

    lvs: np.ndarray
    idx: np.ndarray
    W: np.ndarray
    ub: np.ndarray
    wub: np.ndarray


@dataclass
class GroupPlan:
    """Everything one group of traits needs that does not depend on the traits."""

    genes: np.ndarray          # positions into Problem.genes (n_g)
    lvs: np.ndarray            # positions into Problem.lv_names of the LVs fitted
    S: np.ndarray              # (n_g, L') predictor columns
    mode: str
    n_covars: int
    chunks: list[LVChunk] = field(default_factory=list)          # sub-matrix mode
    factor: list[tuple[int, int, np.ndarray]] = field(default_factory=list)  # full mode
    W1: np.ndarray | None = None   # full mode: L⁻¹1 (n_g,)
    WS: np.ndarray | None = None   # full mode: L⁻¹S (n_g, L')
    skipped: list[dict] = field(default_factory=list)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # identifies device copies

    @property
    def n(self) -> int:
        return int(self.genes.size)

    def nbytes(self) -> int:
        total = self.S.nbytes
        for c in self.chunks:
            total += c.W.nbytes + c.ub.nbytes * 2 + c.idx.nbytes
        for _, _, L in self.factor:
            total += L.nbytes
        if self.WS is not None:
            total += self.WS.nbytes + self.W1.nbytes
        return int(total)


def predictor_columns(Zg: np.ndarray, predictor: str, top_fraction: float) -> np.ndarray:
    """The LV columns of the design over a group's genes (n_g × L): the reference's 0/1
    indicator of x > 0 and x ≥ quantile(x, 1 − top_fraction), or the standardized loadings."""
    if predictor == "binary":
        q = np.quantile(Zg, 1.0 - top_fraction, axis=0)
        return ((Zg > 0) & (Zg >= q[None, :])).astype(np.float64)
    sd = Zg.std(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (Zg - Zg.mean(axis=0)) / sd


def diagonal_blocks(R: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous ranges [a, b) such that R is block-diagonal over them (R's non-zeros never
    leave a range): chromosomes, or finer, for a gene-sorted "within x Mb" matrix."""
    n = R.shape[0]
    if n == 0:
        return []
    nz = R != 0
    last = n - 1 - np.argmax(nz[:, ::-1], axis=1)
    reach = np.maximum.accumulate(np.maximum(last, np.arange(n)))
    ends = np.flatnonzero(reach == np.arange(n)) + 1
    starts = np.concatenate([[0], ends[:-1]])
    return list(zip(starts.tolist(), ends.tolist()))


def _cholesky(A: np.ndarray, what: str, genes) -> np.ndarray:
    try:
        return np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        w = np.linalg.eigvalsh(A)
        raise InputError(
            f"gene correlation matrix: {what} ({len(genes)} genes: {preview(genes, 4)}) is not "
            f"positive definite (smallest eigenvalue {w.min():.3g}); repair the matrix (e.g. "
            "add a small ridge to the diagonal and rescale, or rebuild it with "
            "`gpu-engine twas gene-corr`, which makes it positive definite)") from None


def plan_group(problem: Problem, gene_mask: np.ndarray, *,
               block_whiteners: bool = True) -> GroupPlan:
    """Build the LV side of the model for the genes in ``gene_mask`` (see the module doc).
    ``block_whiteners=False`` leaves out the sub-matrix mode's per-LV block whiteners (for
    callers that whiten blocks of their own, like the conditional fits)."""
    gpos = np.flatnonzero(gene_mask)
    n = gpos.size
    Zg = problem.Z[gpos]
    S_all = predictor_columns(Zg, problem.predictor, problem.top_fraction)
    skipped = []
    keep = []
    for j, name in enumerate(problem.lv_names):
        if problem.predictor == "binary" and not (Zg[:, j] > 0).any():
            skipped.append({"lv": name, "trait": None, "reason": "no positive loadings among "
                            "the genes tested"})
        elif problem.predictor == "continuous" and not np.isfinite(S_all[:, j]).all():
            skipped.append({"lv": name, "trait": None, "reason": "constant loadings"})
        else:
            keep.append(j)
    lvs = np.asarray(keep, dtype=np.int64)
    S = np.ascontiguousarray(S_all[:, lvs])
    plan = GroupPlan(genes=gpos, lvs=lvs, S=S, mode=problem.mode,
                     n_covars=len(problem.covars), skipped=skipped)
    names = problem.genes[gpos]
    if problem.mode == "full":
        Rg = problem.R[np.ix_(gpos, gpos)]
        W1 = np.empty(n)
        WS = np.empty_like(S)
        for a, b in diagonal_blocks(Rg):
            L = _cholesky(Rg[a:b, a:b], "the matrix over the genes tested", names[a:b])
            plan.factor.append((a, b, L))
            W1[a:b] = sla.solve_triangular(L, np.ones(b - a), lower=True)
            WS[a:b] = sla.solve_triangular(L, S[a:b], lower=True)
        plan.W1, plan.WS = W1, WS
        return plan
    if not block_whiteners:
        return plan
    # sub-matrix mode: per LV, the top genes (all-gene rule) among the group's genes
    blocks = [np.flatnonzero(problem.top_all[gpos, j]) for j in lvs]
    order = np.argsort([b.size for b in blocks], kind="stable")
    start = 0
    while start < order.size:
        stop = start + 1
        while (stop < order.size and stop - start < MAX_LV_CHUNK
               and (stop - start + 1) * max(blocks[order[stop]].size, 1) <= MAX_BLOCK_ROWS):
            stop += 1
        members = order[start:stop]
        bmax = max(1, max(blocks[k].size for k in members))
        Lc = members.size
        idx = np.full((Lc, bmax), n, dtype=np.int64)
        W = np.zeros((Lc, bmax, bmax))
        ub = np.zeros((Lc, bmax, 2))
        for r, k in enumerate(members):
            blk = blocks[k]
            b = blk.size
            if b == 0:
                continue
            L = _cholesky(problem.R[np.ix_(gpos[blk], gpos[blk])],
                          f"the block of LV {problem.lv_names[lvs[k]]}'s top genes", names[blk])
            idx[r, :b] = blk
            W[r, :b, :b] = sla.solve_triangular(L, np.eye(b), lower=True)
            ub[r, :b, 0] = 1.0
            ub[r, :b, 1] = S[blk, k]
        wub = W @ ub
        plan.chunks.append(LVChunk(lvs=members, idx=idx, W=W, ub=ub, wub=wub))
        start = stop
    return plan
