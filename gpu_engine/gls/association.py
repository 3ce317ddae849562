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


def _task(plan: GroupPlan, Y: np.ndarray, C, trait_names, covar_names, backend: str,
          terms=None):
    """One Dask/local task: the plan's LVs × a chunk of traits. Returns (5, L', T) (with
    ``terms``: (len(terms), 5, L', T))."""
    be = get_backend(backend)
    ops = _OPS.get(be.name) or _OPS.setdefault(be.name, Ops.for_backend(be))
    return run_chunk(plan, Y, C, ops, trait_names=trait_names, covar_names=covar_names,
                     terms=terms)


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
              standardize_y_over: str = "fitted", coefficients: bool = False) -> GLSResults:
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
    coefficients : also report the other terms of each fit (the reference's
        ``results.params``, ``bse``, ``tvalues``, ``pvalues``): columns ``intercept_beta,
        intercept_beta_se, intercept_t, intercept_pvalue_twosided`` and the same four for each
        covariate, ``<covariate>_beta`` …, on the standardized covariates' scale (marginal
        model only).

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
        if coefficients:
            raise InputError("coefficients=True is offered for the marginal model only, not "
                             "with condition_on")
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
    terms = list(range(2 + len(problem.covars))) if coefficients else None
    stats, n_genes, skipped = compute(problem, be, client=client, progress=progress, ops=ops,
                                      terms=terms)
    every = stats if coefficients else None
    stats = stats[1] if coefficients else stats
    table = GLSResults.from_frame(result_table(problem, stats, n_genes))
    if every is not None:
        ok = ~np.isnan(stats[0])
        names = ["intercept", None, *problem.covars]
        for j, name in enumerate(names):
            if name is None:
                continue
            for k, stat in enumerate(COEFFICIENT_STATS):
                table[f"{name}_{stat}"] = every[j, k][ok]
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


COEFFICIENT_STATS = ("beta", "beta_se", "t", "pvalue_twosided")  # kernels.gls.STAT_NAMES[:4]


def pool_results(parts, traits=None) -> GLSResults:
    """GLS tables of disjoint sets of traits (e.g. chunks of one :func:`associate` call's
    traits) as one result: rows in :func:`associate`'s order (LVs in the order of the first
    part, then traits in ``traits`` order, default first appearance) and BH FDR over all
    pairs, as one call with every trait gives."""
    t = pd.concat([pd.DataFrame(x).astype({"lv": str, "trait": str}) for x in parts],
                  ignore_index=True)
    lvs = list(dict.fromkeys(t["lv"]))
    traits = [str(x) for x in traits] if traits is not None else list(dict.fromkeys(t["trait"]))
    t["lv"] = pd.Categorical(t["lv"], categories=lvs)
    t["trait"] = pd.Categorical(t["trait"], categories=traits)
    t = t.sort_values(["lv", "trait"], kind="stable").reset_index(drop=True)
    t["fdr"] = fdr_bh(t["pvalue_onesided"].to_numpy())
    return GLSResults(t)


def compute(problem: Problem, be, *, client=None, progress=False, ops: Ops | None = None,
            terms=None):
    """All statistics of a prepared problem: ``(stats (5, L, T), n (T,), skipped)``; NaN
    where a pair was not fitted (listed in ``skipped``). ``terms`` (design columns: 0 the
    intercept, 1 the LV, 2… the covariates): ``stats`` is (len(terms), 5, L, T)."""
    L, T = len(problem.lv_names), len(problem.trait_names)
    stats = np.full((5, L, T) if terms is None else (len(terms), 5, L, T), np.nan)
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
        results = [run_chunk(p, Y, C, ops, trait_names=nm, covar_names=cv, terms=terms)
                   for p, Y, C, nm, cv in tasks]
    else:
        results = map_tasks(_task, tasks, total=len(where),
                            shared={"backend": be.name, "terms": terms},
                            client=client, progress=progress, description="GLS")
    where = [(plan.lvs, cols) for plan, cols in where]
    for (lvs, cols), res in zip(where, results):
        stats[..., lvs[:, None], cols[None, :]] = res
    fitted = np.zeros((L, T), bool)
    for lvs, cols in where:
        fitted[np.ix_(lvs, cols)] = True
    lv_beta = stats[0] if terms is None else stats[list(terms).index(1), 0]
    singular = fitted & np.isnan(lv_beta)
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
    factor, shift = {}, {}
    for mask, cols in problem.groups:
        for t in cols:
            name = problem.trait_names[t]
            y_all = Y[name].to_numpy(np.float64)[in_z]
            sd_model = np.nanstd(y_all, ddof=1)
            y_fit = problem.Y[mask, t]
            factor[name] = np.std(y_fit, ddof=1) / sd_model
            shift[name] = (np.mean(y_fit) - np.nanmean(y_all)) / sd_model
    trait = table["trait"].astype(str)
    f = trait.map(factor).to_numpy(np.float64)
    for c in table.columns:  # every term's β and SE scale with y (the LV's and the others')
        if c in ("beta", "beta_se") or c.endswith(("_beta", "_beta_se")):
            table[c] = table[c].to_numpy() * f
    if "intercept_beta" in table:  # y' = f·y + shift: the intercept moves by the shift
        from scipy.special import stdtr

        b = table["intercept_beta"].to_numpy() + trait.map(shift).to_numpy(np.float64)
        t = b / table["intercept_beta_se"].to_numpy()
        df = table["n"].to_numpy(np.float64) - 2 - len(problem.covars)
        table["intercept_beta"] = b
        table["intercept_t"] = t
        table["intercept_pvalue_twosided"] = 2 * stdtr(df, -np.abs(t))
