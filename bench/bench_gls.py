"""GLS module–trait association: every LV × trait pair vs per-pair statsmodels.

Sizes: ``quick`` 2,000 genes × 100 LVs × 200 traits (20,000 pairs); ``full`` PhenoPLIER
scale, 6,750 genes × 987 LVs × 4,091 traits (4.04 M pairs). Synthetic data: genes on 22
chromosomes with an LD-like gene–gene correlation that is zero beyond 5 Mb (the production
"within 5 Mb" matrix's structure), sparse non-negative loadings, null S-MultiXcan-like
p-values drawn from MVN(0, R).

Baseline: the reference's per-pair fit with precomputed per-LV inverse Cholesky factors
(its fastest path): build y and X, whiten with the dense L⁻¹, ``statsmodels.OLS`` fit and
one-sided t tail. It is timed on a sample of pairs (4 LVs × 5 traits) and extrapolated to
all pairs (``baseline_extrapolated`` in the record); the factor precomputation — ~27 h per
cohort for the reference — is not counted. Ours: :func:`gpu_engine.gls.associate` on all
pairs, in each mode, on the backend in use; on a GPU also ours-GPU vs ours-CPU.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gpu_engine.benchmarking import Case

SIZES = {"quick": (2000, 100, 200), "full": (6750, 987, 4091)}
SAMPLE_LVS, SAMPLE_TRAITS = 4, 5


def make_data(n_genes: int, n_lvs: int, n_traits: int, seed: int = 0):
    from gpu_engine.datasets.gls_inputs import gls_inputs

    Z, P, R, _ = gls_inputs(n_genes, n_lvs, n_traits, seed=seed)
    return Z, P, R


def per_pair_baseline(Z, P, R, mode, lvs, traits):
    """The reference's loop: one statsmodels fit per (LV, trait) with precomputed L⁻¹."""
    import scipy.linalg as sla
    import statsmodels.api as sm
    from scipy import stats

    genes = list(R.index)
    Rv = R.to_numpy()
    factors = {}
    for lv in lvs:
        if mode == "full":
            Sig = Rv
        else:
            top = np.flatnonzero((Z[lv] >= Z[lv].quantile(0.99)).loc[genes].to_numpy())
            Sig = np.eye(len(genes))
            Sig[np.ix_(top, top)] = Rv[np.ix_(top, top)]
        factors[lv] = sla.solve_triangular(np.linalg.cholesky(Sig), np.eye(len(genes)),
                                           lower=True)

    def run():
        out = []
        for lv in lvs:
            W = factors[lv]
            x = Z.loc[genes, lv]
            s = ((x > 0) & (x >= x.quantile(0.99))).astype(float).to_numpy()
            for t in traits:
                y = -np.log10(P.loc[genes, t])
                y = ((y - y.mean()) / y.std()).to_numpy()
                X = np.column_stack([np.ones(len(genes)), s])
                f = sm.OLS(W @ y, W @ X).fit()
                out.append(stats.t.sf(f.tvalues[1], f.df_resid))
        return np.array(out)

    return run


def cases(size: str, backend) -> list[Case]:
    from gpu_engine.gls import associate

    n_genes, n_lvs, n_traits = SIZES[size]
    Z, P, R = make_data(n_genes, n_lvs, n_traits)
    lvs = list(Z.columns[:SAMPLE_LVS])
    traits = list(P.columns[:SAMPLE_TRAITS])
    scale = (n_lvs * n_traits) / (len(lvs) * len(traits))
    shape = {"genes": n_genes, "LVs": n_lvs, "traits": n_traits}
    repeats = 1 if size == "full" else None
    out = []
    for mode in ("submatrix", "full"):
        base = per_pair_baseline(Z, P, R, mode, lvs, traits)

        def check(b, o, mode=mode):
            got = o.set_index(["lv", "trait"]).loc[
                pd.MultiIndex.from_product([lvs, traits]), "pvalue_onesided"].to_numpy()
            return float(np.max(np.abs(got - b)))

        notes = {"mode": mode, "pairs": n_lvs * n_traits,
                 "baseline_sample_pairs": len(lvs) * len(traits),
                 "baseline": "statsmodels OLS on L⁻¹-whitened data per pair, factors "
                             "precomputed (not timed); extrapolated to all pairs"}
        out.append(Case(f"{mode}, {backend.name} vs statsmodels per pair", shape, base,
                        lambda mode=mode: associate(Z, P, R, mode=mode, backend=backend),
                        "statsmodels per pair (extrapolated)", f"gpu_engine {backend.name}",
                        backend.name, check, notes, baseline_scale=scale, repeats=repeats))
        if backend.is_gpu:
            out.append(Case(f"{mode}, gpu vs cpu (ours)", shape,
                            lambda mode=mode: associate(Z, P, R, mode=mode, backend="cpu"),
                            lambda mode=mode: associate(Z, P, R, mode=mode, backend=backend),
                            "gpu_engine cpu", f"gpu_engine {backend.name}", backend.name,
                            lambda a, b: float((a["pvalue_onesided"] - b["pvalue_onesided"]
                                                ).abs().max()), {"mode": mode},
                            repeats=repeats))
    out.extend(conditional_cases(Z, P, R, shape, backend, repeats))
    return out


def conditional_cases(Z, P, R, shape, backend, repeats):
    """Conditional GLS beside the marginal run on the same data (the marginal run is the
    baseline; a ratio of 0.33 means 3× the marginal time): the overlap rule (Jaccard ≥ 0.2 of
    top genes; few LVs of the synthetic model overlap, so this is the rule's overhead), and
    every LV given two others (three top-gene blocks per design: the heavy case)."""
    from gpu_engine.gls import associate

    lvs = list(Z.columns)
    two = {lv: [lvs[(i + 1) % len(lvs)], lvs[(i + 2) % len(lvs)]] for i, lv in enumerate(lvs)}

    def marginal():
        return associate(Z, P, R, backend=backend)

    def check(b, o):  # LVs without a conditioning set keep the marginal p exactly
        same = (o["conditioned_on"].astype(str) == "").to_numpy()
        return float(np.max(np.abs(o["pvalue_onesided"].to_numpy()[same]
                                   - b["pvalue_onesided"].to_numpy()[same]), initial=0.0))

    out = []
    for label, kw in (("overlap rule (Jaccard ≥ 0.2)", {"condition_on": "overlap"}),
                      ("every LV given two others", {"condition_on": two})):
        out.append(Case(f"conditional, {label}, {backend.name} vs marginal", shape, marginal,
                        lambda kw=kw: associate(Z, P, R, backend=backend, **kw),
                        "gpu_engine marginal", f"gpu_engine conditional {backend.name}",
                        backend.name, check, {"mode": "submatrix", "rule": label},
                        repeats=repeats))
    return out
