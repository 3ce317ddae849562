"""``associate``: every LV × trait GLS regression of a run, with FDR."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from ..backend import get_backend
from ..distributed import chunks, map_tasks
from ..errors import InputError
from ..results import TableResult, register
from ..stats import fdr_bh
from .engine import Ops, run_chunk
from .model import GroupPlan, Problem, plan_group, prepare

log = logging.getLogger(__name__)

RESULT_COLUMNS = ("lv", "trait", "n", "beta", "beta_se", "t", "pvalue_twosided",
                  "pvalue_onesided", "fdr")
_MAX_TRAITS_PER_TASK = 1024


@register
class GLSResults(TableResult):
    """The LV × trait table of :func:`associate` (a DataFrame: ``lv, trait, n, beta,
    beta_se, t, pvalue_twosided, pvalue_onesided, fdr``). ``attrs`` holds the alignment,
    skipped pairs, genes missing per trait and, once written by the CLI, the run metadata.
    ``save("gls.parquet")`` / ``GLSResults.load(...)``."""

    kind = "gls"

    def significant(self, fdr: float = 0.05) -> pd.DataFrame:
        """The pairs with ``fdr`` below the threshold, most significant first."""
        return self[self["fdr"] < fdr].sort_values("pvalue_onesided", kind="stable")


def _task(plan: GroupPlan, Y: np.ndarray, C, trait_names, covar_names, backend: str):
    """One Dask/local task: the plan's LVs × a chunk of traits. Returns (5, L', T)."""
    be = get_backend(backend)
    ops = _OPS.get(be.name) or _OPS.setdefault(be.name, Ops.for_backend(be))
    return run_chunk(plan, Y, C, ops, trait_names=trait_names, covar_names=covar_names)


_OPS: dict[str, Ops] = {}


def _traits_per_task(be, plan: GroupPlan, n_traits: int, m: int) -> int:
    """Trait chunk size: what fits in memory next to the plan (and ≤ 1,024 so that a Dask
    cluster gets several tasks)."""
    rows = max([c.idx.size for c in plan.chunks] + [plan.n])
    q = m + 2
    per_trait = 8 * m * (5 * plan.n + 3 * rows) + 8 * 64 * (q * q + 8)
    return be.batch_size(n_traits, per_trait, fixed_bytes=plan.nbytes(), fraction=0.4,
                         max_items=_MAX_TRAITS_PER_TASK)


def associate(lv_loadings, traits, gene_corr, covariates=None, *, mode: str = "submatrix",
              predictor: str = "binary", top_fraction: float = 0.01, covars=(),
              scale: str = "pvalue", lvs=None, backend=None, client=None,
              progress: bool = False, ops: Ops | None = None, condition_on=None,
              overlap_threshold: float = 0.2, fdr: float = 0.05,
              condition_predictor: str | None = None,
              standardize_y_over: str = "fitted") -> GLSResults:
    """PhenoPLIER's GLS association of every LV with every trait.

    For LV ℓ and trait t, over the genes shared by the LV model, the correlation matrix and
    the trait (in the correlation matrix's order), fits

        y = β0 + βs·s + Σ βi·ci + ε,   ε ~ MVN(0, σ²·R_ℓ)

    with y = −log10 p standardized (ddof = 1; p = 0 replaced by the trait's smallest
    non-zero p / 10), s the LV predictor, c the covariates (standardized), and R_ℓ the
    gene correlation matrix: in ``mode="submatrix"`` (the reference default) the identity
    except among the LV's top genes; in ``mode="full"`` the whole matrix.

    Parameters
    ----------
    lv_loadings : DataFrame, genes × LVs
        Gene loadings Z (e.g. the MultiPLIER model, 6,750 × 987), non-negative.
    traits : DataFrame, genes × traits
        S-MultiXcan p-values (``scale="pvalue"``) or −log10 p (``scale="neglog10p"``);
        NaN marks a gene missing for that trait. Traits with the same missing genes are
        fitted together; a trait's result does not depend on the other traits in the call.
    gene_corr : DataFrame, genes × genes
        Symmetric gene–gene correlation matrix with unit diagonal (e.g. the "within 5 Mb"
        matrix of the cohort).
    covariates : long table ``trait, gene, n, n_indep`` (S-MultiXcan), a gene-level table,
        or ``{"n": genes × traits, "n_indep": genes × traits}``; needed when ``covars`` is set.
    mode : "submatrix" or "full".
    predictor : "binary" (the reference: 1 for genes with x > 0 and x ≥ the
        (1 − top_fraction) quantile of the LV's loadings over the genes tested) or
        "continuous" (the standardized loadings).
    top_fraction : float
        Fraction of top genes for the predictor and the sub-matrix block (0.01).
    covars : any of ``gene_size``, ``gene_size_log``, ``gene_density``, ``gene_density_log``.
    lvs : LV names to test (default all).
    backend : "cpu", "gpu", "rapids", "auto", a Backend, or None ($GPU_ENGINE_BACKEND, else
        auto).
    client : a ``dask.distributed.Client``: trait chunks run as Dask tasks (same results).
    progress : show a progress bar over chunks.
    condition_on : None (the marginal model), a list of LV names, ``{lv: [lvs]}``,
        ``"overlap"`` (LVs whose top genes overlap with Jaccard ≥ ``overlap_threshold``) or
        ``"significant"`` (forward selection among each trait's marginal discoveries at
        FDR < ``fdr``): each LV tested with these LVs' predictors in the design — see
        :mod:`gpu_engine.gls.conditional`, which defines the model, the rules and the two
        extra result columns; ``condition_predictor="continuous"`` puts the conditioning
        LVs' standardized loadings in the design instead of their top-gene indicators.
    standardize_y_over : "fitted" (the spec, the default: y standardized over the genes of
        the fit, trait ∩ Z ∩ R) or "trait_and_model" (PhenoPLIER's production setup with a
        per-LV correlation folder and full S-MultiXcan files: y standardized over trait ∩ Z,
        then restricted to R's genes without re-standardizing). t and p are the same; β and
        SE scale by sd_fitted(y)/sd_trait∩Z(y).

    Returns
    -------
    :class:`GLSResults` (a DataFrame) with columns ``lv, trait, n, beta, beta_se, t, pvalue_twosided,
    pvalue_onesided, fdr`` (one row per LV × trait, LVs in model order, traits in input
    order; ``lv`` and ``trait`` are categoricals, cheap at millions of rows). ``fdr`` is
    Benjamini–Hochberg over all one-sided p-values of the call. ``attrs``
    holds ``alignment`` (genes kept and dropped), ``skipped`` (LVs or traits not tested and
    why), ``missing_genes`` (trait → number of aligned genes with a NaN value, fitted
    without them) and ``seconds``.
    """
    if standardize_y_over not in ("fitted", "trait_and_model"):
        raise InputError(f"standardize_y_over must be 'fitted' or 'trait_and_model', not "
                         f"{standardize_y_over!r}")
    if condition_on is not None:
        if standardize_y_over != "fitted":
            raise InputError("standardize_y_over='trait_and_model' is offered for the "
                             "marginal model only, not with condition_on")
        from .conditional import conditional_associate

        return conditional_associate(
            lv_loadings, traits, gene_corr, covariates, condition_on=condition_on,
            overlap_threshold=overlap_threshold, fdr=fdr,
            condition_predictor=condition_predictor, mode=mode, predictor=predictor,
            top_fraction=top_fraction, covars=covars, scale=scale, lvs=lvs, backend=backend,
            client=client, progress=progress, ops=ops)
    t0 = time.perf_counter()
    be = get_backend(backend)
    problem = prepare(lv_loadings, traits, gene_corr, covariates, mode=mode,
                      predictor=predictor, top_fraction=top_fraction, covars=covars,
                      scale=scale, lvs=lvs)
    stats, n_genes, skipped = compute(problem, be, client=client, progress=progress, ops=ops)
    table = GLSResults.from_frame(result_table(problem, stats, n_genes))
    if not len(table) or not np.isfinite(table["beta"].to_numpy(np.float64)).any():
        reasons = sorted({str(s.get("reason")) for s in skipped})
        raise InputError(
            "GLS: no LV × trait pair could be tested "
            f"({len(problem.lv_names)} LV(s) × {len(problem.trait_names)} trait(s)); "
            + ("; ".join(reasons[:3]) if reasons else "every regression was singular")
            + ". Check that the LV model, the traits and the gene correlation matrix use the "
            "same gene identifiers and share genes")
    if standardize_y_over == "trait_and_model":
        _rescale_to_trait_and_model(table, problem, lv_loadings, traits, scale)
    table.attrs["alignment"] = problem.alignment.to_dict()
    table.attrs["skipped"] = skipped
    table.attrs["missing_genes"] = problem.missing
    table.attrs["seconds"] = time.perf_counter() - t0
    return table


def compute(problem: Problem, be, *, client=None, progress=False, ops: Ops | None = None):
    """All statistics of a prepared problem: ``(stats (5, L, T), n (T,), skipped)``; NaN
    where a pair was not fitted (listed in ``skipped``)."""
    L, T = len(problem.lv_names), len(problem.trait_names)
    stats = np.full((5, L, T), np.nan)
    n_genes = np.zeros(T, dtype=np.int64)
    skipped = list(problem.skipped)
    m = len(problem.covars) + 1
    where = []
    for mask, tidx in problem.groups:
        plan = plan_group(problem, mask)
        for s in plan.skipped:
            skipped.append({**s, "trait": f"{tidx.size} trait(s)" if len(problem.groups) > 1
                            else "all"})
        n_genes[tidx] = plan.n
        size = _traits_per_task(be, plan, tidx.size, m)
        where.extend((plan, tidx[sl]) for sl in chunks(tidx.size, size))

    def task_inputs(plan, cols):
        # materialized one chunk at a time, so that a local run never holds a second copy
        # of all traits and covariates
        Y = np.ascontiguousarray(problem.Y[np.ix_(plan.genes, cols)])
        C = (None if problem.C is None else
             np.ascontiguousarray(problem.C[np.ix_(plan.genes, cols)]))
        return plan, Y, C, [problem.trait_names[c] for c in cols], problem.covars

    tasks = (task_inputs(plan, cols) for plan, cols in where)
    if client is not None and ops is None:  # ship each group plan to the workers once
        refs = {p.token: client.scatter(p, broadcast=True) for p, _ in where}
        tasks = ((refs[t[0].token], *t[1:]) for t in tasks)
    if ops is not None:  # explicit kernels (tests): run here
        results = [run_chunk(p, Y, C, ops, trait_names=nm, covar_names=cv)
                   for p, Y, C, nm, cv in tasks]
    else:
        results = map_tasks(_task, tasks, total=len(where), shared={"backend": be.name},
                            client=client, progress=progress, description="GLS")
    where = [(plan.lvs, cols) for plan, cols in where]
    for (lvs, cols), res in zip(where, results):
        stats[:, lvs[:, None], cols[None, :]] = res
    fitted = np.zeros((L, T), bool)
    for lvs, cols in where:
        fitted[np.ix_(lvs, cols)] = True
    singular = fitted & np.isnan(stats[0])
    if singular.any():
        for i, j in np.argwhere(singular)[:1000]:
            skipped.append({"lv": problem.lv_names[i], "trait": problem.trait_names[j],
                            "reason": "singular design (the LV predictor is collinear with "
                                      "the intercept or covariates)"})
        log.warning("%d LV-trait pair(s) have a singular design and were not fitted",
                    int(singular.sum()))
    for s in skipped:
        log.warning("skipped LV %s / trait %s: %s", s.get("lv"), s.get("trait"), s["reason"])
    return stats, n_genes, skipped


def result_table(problem: Problem, stats: np.ndarray, n_genes: np.ndarray) -> pd.DataFrame:
    """The long result table (fitted pairs only) with pooled BH FDR."""
    L, T = len(problem.lv_names), len(problem.trait_names)
    ok = ~np.isnan(stats[0])
    li, ti = np.nonzero(ok)
    table = pd.DataFrame({
        "lv": pd.Categorical.from_codes(li, problem.lv_names) if L else [],
        "trait": pd.Categorical.from_codes(ti, problem.trait_names) if T else [],
        "n": n_genes[ti],
    })
    for k, name in enumerate(RESULT_COLUMNS[3:8]):  # kernels.gls.STAT_NAMES order
        table[name] = stats[k][ok]
    table["fdr"] = fdr_bh(table["pvalue_onesided"].to_numpy())
    return table[list(RESULT_COLUMNS)]


def _rescale_to_trait_and_model(table, problem, lv_loadings, traits, scale) -> None:
    """β and SE as if y had been standardized over trait ∩ Z (PhenoPLIER's production
    path) instead of over the fitted genes: both scale by sd_fitted(y) / sd_trait∩Z(y)."""
    from .inputs import trait_values

    Y = trait_values(pd.DataFrame(traits), scale=scale)
    Y.index = Y.index.astype(str)
    Y.columns = Y.columns.astype(str)
    Y = Y.loc[~Y.index.duplicated()]  # the first of duplicated genes, as prepare keeps
    in_z = Y.index.isin(pd.Index(pd.DataFrame(lv_loadings).index.astype(str)))
    factor = {}
    for mask, cols in problem.groups:
        for t in cols:
            name = problem.trait_names[t]
            y_all = Y[name].to_numpy(np.float64)[in_z]
            sd_model = np.nanstd(y_all, ddof=1)
            sd_fit = np.std(problem.Y[mask, t], ddof=1)
            factor[name] = sd_fit / sd_model
    f = table["trait"].astype(str).map(factor).to_numpy(np.float64)
    table["beta"] = table["beta"].to_numpy() * f
    table["beta_se"] = table["beta_se"].to_numpy() * f
