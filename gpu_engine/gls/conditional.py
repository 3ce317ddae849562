"""Conditional and joint LV–trait GLS: an LV tested with other LVs' predictors in the design.

PhenoPLIER's marginal model (``gpu_engine.gls.associate``) regresses a trait's y on one LV's
predictor s_ℓ. Gene modules overlap, so a trait's true module drags its neighbours along.
The conditional model adds the predictors of a set C of other LVs (the same kind of column:
the top-gene indicator or the standardized loadings):

    y = β0 + βℓ·s_ℓ + Σ_{c ∈ C} βc·s_c + Σ βi·covariate_i + ε,   ε ~ MVN(0, σ²·R_{ℓ,C})

and reports βℓ, its SE, t and p exactly as the marginal model does (statsmodels' GLS). The
error covariance R_{ℓ,C}:

- ``mode="full"``: the whole gene correlation matrix, as in the marginal full mode;
- ``mode="submatrix"``: the identity except on the union of the top-gene blocks of ℓ and of
  every LV of C (each LV's block is its top genes by the all-gene quantile rule), where it is
  the gene correlation matrix restricted to that union. With C empty this is the marginal
  sub-matrix model.

A *joint* fit of a set J of LVs is the same regression with every LV of J in the design; it
reports each coefficient (LV ℓ ∈ J given J∖{ℓ}), all with the same R (the union of J's blocks).

Conditioning sets (``condition_on``):

- a list of LV names: the same set for every LV tested (an LV tested cannot be in it);
- a mapping ``{lv: [lvs]}``: a set per LV (LVs not in the mapping: the empty set);
- ``"overlap"``: the other LVs whose top genes (the binary predictor's, over the genes of the
  LV model, see :func:`top_gene_sets`) overlap ℓ's with Jaccard index ≥ ``overlap_threshold``;
- ``"significant"``: per trait, a forward selection among the LVs significant for that trait
  in the marginal run (FDR < ``fdr``): in order of marginal p, an LV is selected when its p
  conditional on the LVs already selected is ≤ the marginal run's BH cut-off (the largest
  marginal p that was a discovery); the first is selected unconditionally. Each step is
  logged (``selection`` in the result's attrs). Every candidate LV is then reported given the
  trait's selected LVs other than itself; the other pairs keep their marginal values.

An LV with an empty conditioning set gets the marginal run's numbers, bit for bit.
Computation: the whitened Gram matrix of [1, s_ℓ, S_C, covariates, y] for every trait of a gene
group at once — AᵀA − A_UᵀA_U + (W_U A_U)ᵀ(W_U A_U) with W_U = chol(R_UU)⁻¹ — and the marginal
engine's statistics kernel on it (with the column of ℓ as the target).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as sla

from ..backend import get_backend
from ..errors import InputError, preview
from ..stats import fdr_bh
from .association import RESULT_COLUMNS, GLSResults, compute, result_table
from .engine import Ops, _standardize, _trait_gram
from .model import (
    PREDICTORS,
    Problem,
    _cholesky,
    diagonal_blocks,
    plan_group,
    predictor_columns,
    prepare,
)

log = logging.getLogger(__name__)

RULES = ("overlap", "significant")
_WHITENER_CACHE_BYTES = 1 << 30
CONDITIONAL_COLUMNS = (*RESULT_COLUMNS, "conditioned_on", "pvalue_onesided_marginal")


@dataclass
class _Group:
    """One gene group of a problem: its plan, the traits in it and the LV position map."""

    plan: object
    traits: np.ndarray
    where: dict  # LV position in the problem → column of plan.S
    Sc: np.ndarray | None = None    # conditioning columns when they differ from plan.S
    WSc: np.ndarray | None = None   # full mode: L⁻¹ Sc
    whiteners: dict = field(default_factory=dict)  # diagonal block genes → chol⁻¹, reused
    cached_bytes: int = 0


def max_conditioning(n_covars: int) -> int:
    """The largest conditioning set the statistics kernel solves with ``n_covars``
    covariates (the Gram matrix [1, s_ℓ, S_C, covariates, y] has at most MAX_Q columns)."""
    from ..kernels.gls import MAX_Q  # imported here: numba loads only when work starts

    return MAX_Q - 3 - n_covars


def top_gene_sets(problem: Problem) -> np.ndarray:
    """(n0, L) boolean: each LV's top genes among the aligned genes, by the sub-matrix rule
    (x ≥ the (1 − top_fraction) quantile over all genes of the LV model) and x > 0: the sets
    whose overlap defines the ``"overlap"`` rule."""
    return problem.top_all & (problem.Z > 0)


def jaccard(top: np.ndarray) -> np.ndarray:
    """(L, L) Jaccard index of the columns of a boolean (n, L) matrix (0 where both are
    empty)."""
    A = top.astype(np.float64)
    inter = A.T @ A
    size = A.sum(axis=0)
    union = size[:, None] + size[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def overlap_sets(problem: Problem, tested: np.ndarray, threshold: float) -> dict[int, tuple]:
    """ℓ → the other LVs with Jaccard(top ℓ, top c) ≥ ``threshold`` (most overlapping first,
    at most :func:`max_conditioning` of them)."""
    J = jaccard(top_gene_sets(problem))
    cap = max_conditioning(len(problem.covars))
    sets = {}
    for j in tested:
        others = np.flatnonzero(J[j] >= threshold)
        others = others[others != j]
        others = others[np.argsort(-J[j, others], kind="stable")]
        if others.size > cap:
            log.warning("LV %s overlaps %d LVs at Jaccard ≥ %g; conditioning on the %d most "
                        "overlapping", problem.lv_names[j], others.size, threshold, cap)
            others = others[:cap]
        sets[int(j)] = tuple(int(c) for c in others)
    return sets


def _named_sets(problem: Problem, tested: np.ndarray, condition_on) -> dict[int, tuple]:
    pos = {name: i for i, name in enumerate(problem.lv_names)}
    tested_names = [problem.lv_names[j] for j in tested]

    def resolve(names, lv):
        names = [names] if isinstance(names, str) else list(names)
        unknown = [x for x in names if str(x) not in pos]
        if unknown:
            raise InputError(f"condition_on: unknown LV(s) {preview(unknown)}; the LV model "
                             f"has {preview(problem.lv_names)}")
        if lv in names:
            raise InputError(f"condition_on: LV {lv} cannot be conditioned on itself; leave it "
                             "out of its conditioning set (or out of the LVs tested)")
        cap = max_conditioning(len(problem.covars))
        if len(set(names)) > cap:
            raise InputError(f"condition_on: {len(set(names))} LVs to condition {lv} on; at "
                             f"most {cap} with {len(problem.covars)} covariate(s)")
        return tuple(sorted({pos[str(x)] for x in names}))

    if isinstance(condition_on, Mapping):
        unknown = [k for k in condition_on if str(k) not in set(tested_names)]
        if unknown:
            raise InputError(f"condition_on: LV(s) {preview(unknown)} are not among the LVs "
                             "tested (or not in the LV model)")
        return {int(j): resolve(condition_on.get(problem.lv_names[j], ()), problem.lv_names[j])
                for j in tested}
    common = list(condition_on)
    return {int(j): resolve(common, problem.lv_names[j]) for j in tested}


# ----------------------------------------------------------------------------- the fits
def _groups(problem: Problem, condition_predictor: str | None = None) -> list[_Group]:
    out = []
    own = condition_predictor not in (None, problem.predictor)
    for mask, tidx in problem.groups:
        plan = plan_group(problem, mask, block_whiteners=False)
        g = _Group(plan, tidx, {int(lv): i for i, lv in enumerate(plan.lvs)})
        if own:
            Zg = problem.Z[np.ix_(plan.genes, plan.lvs)]
            g.Sc = np.ascontiguousarray(predictor_columns(Zg, condition_predictor,
                                                          problem.top_fraction))
            if plan.mode == "full":
                g.WSc = np.empty_like(g.Sc)
                for a, b, Lf in plan.factor:
                    g.WSc[a:b] = sla.solve_triangular(Lf, g.Sc[a:b], lower=True)
        out.append(g)
    return out


def fit_sets(problem: Problem, group: _Group, cols: np.ndarray, sets, ops: Ops) -> dict:
    """Statistics of LV sets over one gene group's traits ``cols`` (positions into the
    problem's traits, all in ``group``).

    ``sets``: (members, targets) with members a tuple of LV positions (the design's LV
    columns, in this order) and targets the members whose coefficient is wanted; a set with
    one target, its first member, is a conditional fit (the other members take the
    conditioning columns). Returns ``{(members, target): (5, len(cols)) array}`` (NaN:
    singular design, or an LV without a predictor in this group).

    The products with the traits are shared: [1, S]ᵀM once for every column any set uses;
    per set only the union block U is whitened, by its diagonal blocks (R_UU is block
    diagonal when the LVs' top genes lie far apart, so the cost is about the sum of the
    LVs' own block costs, not |U|²)."""
    xp = ops.xp
    plan = group.plan
    n = plan.n
    names = [problem.trait_names[c] for c in cols]
    Y = xp.asarray(np.ascontiguousarray(problem.Y[np.ix_(plan.genes, cols)]))
    Yd = _standardize(ops, Y, names, "traits")
    if problem.C is not None and problem.C.shape[2]:
        k = problem.C.shape[2]
        C = xp.asarray(np.ascontiguousarray(problem.C[np.ix_(plan.genes, cols)]))
        labels = [f"covariate {c} of trait {t}" for t in names for c in problem.covars]
        Cd = _standardize(ops, C.reshape(n, len(cols) * k), labels, "covariates"
                          ).reshape(n, len(cols), k)
        M = xp.concatenate([Cd, Yd[:, :, None]], axis=2)
    else:
        M = Yd[:, :, None]
    T, m = len(cols), M.shape[2]
    M2 = xp.ascontiguousarray(M.reshape(n, T * m))
    out = {}
    wanted = []
    for members, targets in sets:
        if all(c in group.where for c in members):
            wanted.append((members, targets))
        else:
            for t in targets:
                out[(members, t)] = np.full((5, T), np.nan)
    if not wanted:
        return out
    full = plan.mode == "full"
    # every design column any set uses: ("s", j) the LV's predictor, ("c", j) its
    # conditioning column; column 0 is the intercept
    layout = {}
    designs = []
    for members, targets in wanted:
        conditional = len(targets) == 1 and targets[0] == members[0]
        keys = [("s", group.where[members[0]])] + [
            ("c" if conditional and group.Sc is not None else "s", group.where[c])
            for c in members[1:]]
        for key in keys:
            layout.setdefault(key, len(layout) + 1)
        designs.append([0] + [layout[key] for key in keys])
    if full:
        src = {"s": plan.WS, "c": group.WSc}
        first = plan.W1
    else:
        src = {"s": plan.S, "c": group.Sc}
        first = np.ones(n)
    A = np.empty((n, len(layout) + 1))
    A[:, 0] = first
    for (kind, j), c in layout.items():
        A[:, c] = src[kind][:, j]
    Ad = xp.asarray(A)
    if full:
        WM = xp.empty_like(M2)
        for a, b, Lf in plan.factor:
            WM[a:b] = ops.solve_triangular(ops.device(plan, f"L{a}", Lf), M2[a:b], lower=True)
        mm = _trait_gram(xp, xp.asarray(plan.W1), WM.reshape(n, T, m))
        AA, AM = Ad.T @ Ad, Ad.T @ WM
    else:
        mm = _trait_gram(xp, xp.ones(n), M)
        AA, AM = Ad.T @ Ad, Ad.T @ M2
    top = problem.top_all[plan.genes]
    for (members, targets), design in zip(wanted, designs):
        p0 = len(design)
        d = np.asarray(design)
        dd = xp.asarray(d)
        gxx = AA[np.ix_(d, d)] if xp is np else AA[dd[:, None], dd[None, :]]
        gxm = AM[dd]
        mm_set = mm
        if not full:
            U = np.flatnonzero(top[:, list(members)].any(axis=1))
            if U.size:
                gxx, gxm, mm_set = _whiten_union(problem, group, U, members, A[:, d],
                                                 M2, gxx, gxm, mm, T, m, xp)
        q = p0 + m
        G = xp.empty((T, q, q))
        G[:, :p0, :p0] = gxx[None]
        cross = gxm.reshape(p0, T, m).transpose(1, 0, 2)     # (T, p0, m)
        G[:, :p0, p0:] = cross
        G[:, p0:, :p0] = cross.transpose(0, 2, 1)
        G[:, p0:, p0:] = mm_set[:, 1:, 1:]
        G = xp.ascontiguousarray(G)
        for t in targets:
            col = 1 + members.index(t)
            out[(members, t)] = np.asarray(ops.to_host(ops.stats(G, float(n), col)))
    return out


def _whiten_union(problem, group, U, members, X, M2, gxx, gxm, mm, T, m, xp):
    """Replace the identity by R on the union block U in the Gram pieces: subtract the raw
    block rows' products and add the whitened ones, diagonal block by diagonal block of
    R_UU (a block of one gene with R_ii = 1 changes nothing and is skipped). Each block's
    whitener is kept for the next set that has the same block (up to 1 GiB per group)."""
    plan = group.plan
    gu = plan.genes[U]
    Ru = problem.R[np.ix_(gu, gu)]
    blocks = diagonal_blocks(Ru)
    rows, whiteners = [], []
    for a, b in blocks:
        if b - a == 1 and Ru[a, a] == 1.0:
            continue
        key = U[a:b].tobytes()
        W = group.whiteners.get(key)
        if W is None:
            L = _cholesky(Ru[a:b, a:b], "the union of the top-gene blocks of "
                          + ", ".join(problem.lv_names[c] for c in members),
                          problem.genes[gu[a:b]])
            W = sla.solve_triangular(L, np.eye(b - a), lower=True)
            if group.cached_bytes + W.nbytes <= _WHITENER_CACHE_BYTES:
                group.whiteners[key] = W
                group.cached_bytes += W.nbytes
        rows.append(U[a:b])
        whiteners.append(W)
    if not rows:
        return gxx, gxm, mm
    gxx = gxx.copy()
    gxm = gxm.copy()
    mm = mm.copy()
    for r, W in zip(rows, whiteners):
        XU = X[r]
        WXU = W @ XU
        gxx += xp.asarray(WXU.T @ WXU - XU.T @ XU)
        rd = xp.asarray(r)
        Wd = xp.asarray(W)
        MU = M2[rd]
        WMU = Wd @ MU
        gxm += xp.asarray(WXU.T) @ WMU - xp.asarray(XU.T) @ MU
        MU3, WMU3 = MU.reshape(r.size, T, m), WMU.reshape(r.size, T, m)
        mm[:, 1:, 1:] += (xp.einsum("ita,itb->tab", WMU3, WMU3)
                          - xp.einsum("ita,itb->tab", MU3, MU3))
    return gxx, gxm, mm


def _ops(be, ops):
    return ops if ops is not None else Ops.for_backend(be)


# ----------------------------------------------------------------------------- the API
def conditional_associate(lv_loadings, traits, gene_corr, covariates=None, *, condition_on,
                          overlap_threshold: float = 0.2, fdr: float = 0.05,
                          condition_predictor: str | None = None, mode: str = "submatrix",
                          predictor: str = "binary",
                          top_fraction: float = 0.01, covars=(), scale: str = "pvalue", lvs=None,
                          backend=None, client=None, progress: bool = False,
                          ops: Ops | None = None) -> GLSResults:
    """Every tested LV × trait, conditional on other LVs (the module docstring defines the
    model and the rules). Parameters as :func:`gpu_engine.gls.associate`, plus:

    condition_on : list of LV names, ``{lv: [lv names]}``, ``"overlap"`` or ``"significant"``.
    overlap_threshold : Jaccard index of top-gene sets for ``"overlap"`` (0.2).
    fdr : the marginal FDR defining the candidates of ``"significant"`` (0.05).
    condition_predictor : the conditioning LVs' columns: None (the same kind as ``predictor``)
        or ``"continuous"`` (their standardized loadings: the whole module, not only its top
        genes; on the worlds it prunes somewhat more spill-over, see docs/modules.md).

    Returns a :class:`GLSResults` with the marginal columns (FDR recomputed over this table),
    ``conditioned_on`` (the LVs in the design besides ℓ, comma-separated; empty: the marginal
    fit) and ``pvalue_onesided_marginal``; ``attrs["selection"]`` lists the forward
    selection's steps (``"significant"``).
    """
    import time

    t0 = time.perf_counter()
    if isinstance(condition_on, str) and condition_on not in RULES:
        raise InputError(f"condition_on must be a list of LVs, a mapping, or one of {RULES}; "
                         f"got {condition_on!r}")
    if condition_predictor is not None and condition_predictor not in PREDICTORS:
        raise InputError(f"condition_predictor must be one of {PREDICTORS}, not "
                         f"{condition_predictor!r}")
    if not 0 < overlap_threshold <= 1:
        raise InputError(f"overlap_threshold must lie in (0, 1], not {overlap_threshold!r}")
    be = get_backend(backend)
    problem = prepare(lv_loadings, traits, gene_corr, covariates, mode=mode,
                      predictor=predictor, top_fraction=top_fraction, covars=covars,
                      scale=scale)
    if lvs is None:
        tested = np.arange(len(problem.lv_names))
    else:
        lvs = [lvs] if isinstance(lvs, str) else list(lvs)
        pos = {name: i for i, name in enumerate(problem.lv_names)}
        missing = [x for x in lvs if x not in pos]
        if missing:
            raise InputError(f"LV model: unknown LV(s) {preview(missing)}")
        tested = np.asarray([pos[x] for x in lvs])
    sub = _subproblem(problem, tested)
    stats, n_genes, skipped = compute(sub, be, client=client, progress=progress, ops=ops)
    marginal = stats.copy()
    L, T = len(tested), len(problem.trait_names)
    cond = np.empty((L, T), dtype=object)
    cond[:] = ""
    selection: list[dict] = []
    op = _ops(be, ops)
    groups = _groups(problem, condition_predictor)
    if isinstance(condition_on, str) and condition_on == "significant":
        _forward_selection(problem, groups, tested, marginal, fdr, op, stats, cond, selection)
    else:
        sets = (overlap_sets(problem, tested, overlap_threshold)
                if isinstance(condition_on, str) else _named_sets(problem, tested, condition_on))
        requests: dict[tuple, list[int]] = {}
        for r, j in enumerate(tested):
            if sets[int(j)]:
                requests.setdefault((int(j), *sets[int(j)]), []).append(r)
        for g in groups:
            fits = fit_sets(problem, g, g.traits, [(k, (k[0],)) for k in requests], op)
            for key, rows in requests.items():
                res = fits[(key, key[0])]
                for r in rows:
                    stats[:, r, g.traits] = res
                    cond[r, g.traits] = ",".join(problem.lv_names[c] for c in key[1:])
    table = result_table(sub, stats, n_genes)
    ok = ~np.isnan(stats[0])
    table["conditioned_on"] = pd.Categorical(cond[ok])
    table["pvalue_onesided_marginal"] = marginal[4][ok]  # kernels.gls.STAT_NAMES: p one-sided
    table = GLSResults.from_frame(table[list(CONDITIONAL_COLUMNS)])
    table.attrs.update({"alignment": problem.alignment.to_dict(), "skipped": skipped,
                        "missing_genes": problem.missing, "selection": selection,
                        "condition_on": condition_on if isinstance(condition_on, str)
                        else "given", "seconds": time.perf_counter() - t0})
    return table


def _subproblem(problem: Problem, tested: np.ndarray) -> Problem:
    """The problem restricted to the tested LVs (what the marginal engine runs)."""
    from dataclasses import replace

    return replace(problem, Z=np.ascontiguousarray(problem.Z[:, tested]),
                   top_all=np.ascontiguousarray(problem.top_all[:, tested]),
                   lv_names=[problem.lv_names[j] for j in tested], skipped=list(problem.skipped))


def _forward_selection(problem, groups, tested, marginal, fdr, ops, stats, cond, selection):
    """The ``"significant"`` rule (module docstring), batched: in each round every trait's
    next candidate is tested given that trait's selection so far; traits with the same
    (candidate, selection) are fitted together."""
    p_marg = marginal[4]
    ok = ~np.isnan(p_marg)
    q = np.full(p_marg.shape, np.nan)
    q[ok] = fdr_bh(p_marg[ok])
    disc = ok & (q < fdr)
    if not disc.any():
        log.info("no marginal discovery at FDR < %g: nothing to condition on", fdr)
        return
    cutoff = float(p_marg[disc].max())
    cap = max_conditioning(len(problem.covars))
    trait_group = {}
    for gi, g in enumerate(groups):
        for t in g.traits:
            trait_group[int(t)] = gi
    cands = {t: [int(r) for r in np.argsort(p_marg[:, t], kind="stable") if disc[r, t]]
             for t in range(p_marg.shape[1]) if disc[:, t].any()}
    chosen = {t: [c[0]] for t, c in cands.items()}
    for t, c in cands.items():
        selection.append({"trait": problem.trait_names[t], "lv": problem.lv_names[tested[c[0]]],
                          "given": "", "pvalue_onesided": float(p_marg[c[0], t]),
                          "selected": True})
    step = 1
    while True:
        todo = {t: c[step] for t, c in cands.items() if len(c) > step}
        if not todo:
            break
        requests: dict[tuple, list[int]] = {}
        for t, r in todo.items():
            if len(chosen[t]) >= cap:
                selection.append({"trait": problem.trait_names[t],
                                  "lv": problem.lv_names[tested[r]], "given": "",
                                  "pvalue_onesided": float("nan"), "selected": False,
                                  "note": f"selection full ({cap} LVs)"})
                continue
            key = (int(tested[r]), *sorted(int(tested[c]) for c in chosen[t]))
            requests.setdefault((trait_group[t], key), []).append(t)
        for (gi, key), ts in requests.items():
            res = fit_sets(problem, groups[gi], np.asarray(ts), [(key, (key[0],))], ops)
            p = res[(key, key[0])][4]
            for t, pv in zip(ts, p):
                r = todo[t]
                keep = bool(pv <= cutoff)
                if keep:
                    chosen[t].append(r)
                selection.append({"trait": problem.trait_names[t],
                                  "lv": problem.lv_names[key[0]],
                                  "given": ",".join(problem.lv_names[c] for c in key[1:]),
                                  "pvalue_onesided": float(pv), "selected": keep})
        step += 1
    for line in selection:
        log.info("forward selection: trait %s, %s given {%s}: p = %.3g → %s", line["trait"],
                 line["lv"], line["given"], line["pvalue_onesided"],
                 "selected" if line["selected"] else "not selected")
    # final: every candidate given the trait's selected LVs other than itself
    requests = {}
    for t, c in cands.items():
        sel = chosen[t]
        for r in c:
            others = [x for x in sel if x != r]
            if not others:
                continue
            key = (int(tested[r]), *sorted(int(tested[x]) for x in others))
            requests.setdefault((trait_group[t], key), []).append((t, r))
    for (gi, key), pairs in requests.items():
        ts = np.asarray(sorted({t for t, _ in pairs}))
        res = fit_sets(problem, groups[gi], ts, [(key, (key[0],))], ops)[(key, key[0])]
        col = {int(t): i for i, t in enumerate(ts)}
        for t, r in pairs:
            stats[:, r, t] = res[:, col[t]]
            cond[r, t] = ",".join(problem.lv_names[c] for c in key[1:])


def joint_associate(lv_loadings, traits, gene_corr, covariates=None, *, lvs: Sequence[str],
                    mode: str = "submatrix", predictor: str = "binary",
                    top_fraction: float = 0.01, covars=(), scale: str = "pvalue", backend=None,
                    ops: Ops | None = None) -> GLSResults:
    """One regression per trait with every LV of ``lvs`` in the design; one row per LV ×
    trait with that LV's coefficient (given the others), ``conditioned_on`` the others.
    R: the union of the LVs' top-gene blocks (sub-matrix mode) or the whole matrix."""
    lvs = [lvs] if isinstance(lvs, str) else list(lvs)
    if len(set(lvs)) < 2:
        raise InputError("a joint fit needs at least two different LVs")
    problem = prepare(lv_loadings, traits, gene_corr, covariates, mode=mode,
                      predictor=predictor, top_fraction=top_fraction, covars=covars,
                      scale=scale)
    pos = {name: i for i, name in enumerate(problem.lv_names)}
    missing = [x for x in lvs if x not in pos]
    if missing:
        raise InputError(f"LV model: unknown LV(s) {preview(missing)}")
    if len(set(lvs)) - 1 > max_conditioning(len(problem.covars)):
        raise InputError(f"a joint fit of {len(set(lvs))} LVs is more than the "
                         f"{max_conditioning(len(problem.covars)) + 1} supported with "
                         f"{len(problem.covars)} covariate(s)")
    be = get_backend(backend)
    op = _ops(be, ops)
    members = tuple(dict.fromkeys(pos[x] for x in lvs))
    L, T = len(members), len(problem.trait_names)
    stats = np.full((5, L, T), np.nan)
    n_genes = np.zeros(T, dtype=np.int64)
    for g in _groups(problem):
        n_genes[g.traits] = g.plan.n
        fits = fit_sets(problem, g, g.traits, [(members, members)], op)
        for r, j in enumerate(members):
            stats[:, r, g.traits] = fits[(members, j)]
    sub = _subproblem(problem, np.asarray(members))
    table = result_table(sub, stats, n_genes)
    names = [problem.lv_names[j] for j in members]
    table["conditioned_on"] = pd.Categorical(
        [",".join(x for x in names if x != lv) for lv in table["lv"].astype(str)])
    table = GLSResults.from_frame(table[[*RESULT_COLUMNS, "conditioned_on"]])
    table.attrs["alignment"] = problem.alignment.to_dict()
    return table
