"""GLS parity with statsmodels on the real PhenoPLIER fixtures (5 Mb production matrix, the
MultiPLIER LV subset, null-phenotype S-MultiXcan results), in both modes, with and without
the four covariates. Tolerances (issue 3): β, SE and t relative 1e-9; p-values relative 1e-7.

The oracle is ``statsmodels.api.GLS(y, X, sigma=R_ℓ).fit()`` with R_ℓ built densely by the
spec's rules, independently of our code. statsmodels factorizes sigma (Cholesky + inverse,
~2 s at 6,421 genes) in its ``_get_sigma``; the oracle memoizes that one function per sigma so
that several traits reuse it — everything else is statsmodels' own GLS.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import scipy.stats

sm = pytest.importorskip("statsmodels.api")
import statsmodels.regression.linear_model as lm  # noqa: E402

from gpu_engine.gls import associate  # noqa: E402

RTOL_COEF = 1e-9
RTOL_P = 1e-7
LVS = ["LV1", "LV2", "LV3", "LV4", "LV5"]
COVARS = ["gene_density", "gene_density_log", "gene_size", "gene_size_log"]
R5 = ("gene_corrs/phenomexcan_rapid_gwas-gtex_v8-mashr/"
      "gene_corrs-symbols-within_distance_5mb.parquet")


@pytest.fixture(scope="module")
def fx(shared):
    d = shared / "phenoplier_data"
    Z = pd.read_parquet(d / "gls" / "sample-lv-model.parquet").set_index("gene")
    R = pd.read_parquet(d / R5).set_index("gene")
    traits = {}
    for name in ("random_phenotype0", "random_phenotype6", "random_phenotype10",
                 "phenomexcan-whooping_cough"):
        traits[name] = pd.read_parquet(d / "gls" / f"multixcan-{name}-pvalues.parquet"
                                       ).set_index("gene")["value"]
    T = pd.DataFrame(traits)
    cov0 = pd.read_parquet(d / "gls" / "multixcan-random_phenotype0-covars.parquet")
    cov6 = pd.read_parquet(d / "gls" / "multixcan-random_phenotype6-covars.parquet")
    cov6["gene_size_log"] = np.log(cov6["gene_size"])
    cov6["gene_density_log"] = -np.log(cov6["gene_density"])
    cov = pd.concat([cov0.assign(trait="random_phenotype0"),
                     cov6.assign(trait="random_phenotype6")])[["trait", "gene", *COVARS]]
    return {"Z": Z, "R": R, "T": T, "cov": cov, "cov_by_trait": {
        "random_phenotype0": cov0.set_index("gene"), "random_phenotype6": cov6.set_index("gene")}}


@pytest.fixture(scope="module")
def oracle():
    """statsmodels GLS with its sigma factorization memoized per sigma object."""
    original = lm._get_sigma
    memo = {}

    @functools.wraps(original)
    def cached(sigma, nobs):
        key = id(sigma)
        if key not in memo:
            memo[key] = (sigma, original(sigma, nobs))
        return memo[key][1]

    lm._get_sigma = cached
    yield _Oracle()
    lm._get_sigma = original


class _Oracle:
    def __init__(self):
        self.sigmas = {}

    def sigma(self, Z, R, genes, lv, mode):
        key = (tuple(genes), lv, mode)
        if key not in self.sigmas:
            if mode == "full":
                S = R.loc[genes, genes].to_numpy()
            else:  # identity, plus R among the LV's top genes (quantile over ALL Z genes)
                z = Z[lv].astype(np.float64)
                top = set(z.index[z >= z.quantile(0.99)])
                blk = [g for g in genes if g in top]
                pos = pd.Index(genes).get_indexer(blk)
                S = np.eye(len(genes))
                S[np.ix_(pos, pos)] = R.loc[blk, blk].to_numpy()
            self.sigmas[key] = S
        return self.sigmas[key]

    def fit(self, Z, R, y, lv, mode, cov=None, covars=COVARS, y_over="fitted"):
        keep = set(Z.index) & set(y.dropna().index)
        genes = [g for g in R.index if g in keep]
        yv = y.loc[genes].astype(np.float64)
        if y_over == "fitted":
            yv = (yv - yv.mean()) / yv.std()  # ddof = 1
        else:  # PhenoPLIER production: over trait ∩ Z, then restricted to R's genes
            yz = y.loc[sorted(keep)].astype(np.float64)
            yv = (yv - yz.mean()) / yz.std()
        x = Z.loc[genes, lv].astype(np.float64)
        s = ((x > 0) & (x >= x.quantile(0.99))).astype(np.float64)
        cols = [np.ones(len(genes)), s.to_numpy()]
        if cov is not None:
            for c in covars:
                v = cov.loc[genes, c].astype(np.float64)
                cols.append(((v - v.mean()) / v.std()).to_numpy())
        X = np.column_stack(cols)
        res = sm.GLS(yv.to_numpy(), X, sigma=self.sigma(Z, R, genes, lv, mode)).fit()
        return {"fit": res, "n": len(genes), "beta": res.params[1], "beta_se": res.bse[1],
                "t": res.tvalues[1], "pvalue_twosided": res.pvalues[1],
                "pvalue_onesided": scipy.stats.t.sf(res.tvalues[1], res.df_resid),
                "n_top": int(s.sum())}


def _compare(ours: pd.Series, ref: dict):
    assert ours["n"] == ref["n"]
    for k in ("beta", "beta_se", "t"):
        np.testing.assert_allclose(ours[k], ref[k], rtol=RTOL_COEF, atol=0, err_msg=k)
    for k in ("pvalue_twosided", "pvalue_onesided"):
        np.testing.assert_allclose(ours[k], ref[k], rtol=RTOL_P, atol=0, err_msg=k)


@pytest.mark.parametrize("mode", ["submatrix", "full"])
def test_parity_without_covariates(fx, oracle, mode):
    res = associate(fx["Z"], fx["T"], fx["R"], scale="neglog10p", mode=mode, backend="cpu")
    assert len(res) == len(LVS) * fx["T"].shape[1]
    assert (res["n"] == 6421).all()  # the README's alignment: 6442 ∩ 6750 ∩ 6428
    res = res.set_index(["lv", "trait"])
    for lv in LVS:
        for trait in fx["T"].columns:
            _compare(res.loc[(lv, trait)], oracle.fit(fx["Z"], fx["R"], fx["T"][trait], lv, mode))


@pytest.mark.parametrize("mode", ["submatrix", "full"])
def test_parity_with_four_covariates(fx, oracle, mode):
    traits = fx["T"][["random_phenotype0", "random_phenotype6"]]
    res = associate(fx["Z"], traits, fx["R"], fx["cov"], covars=COVARS, scale="neglog10p",
                    mode=mode, backend="cpu").set_index(["lv", "trait"])
    for lv in LVS:
        for trait in traits.columns:
            ref = oracle.fit(fx["Z"], fx["R"], traits[trait], lv, mode,
                             cov=fx["cov_by_trait"][trait])
            _compare(res.loc[(lv, trait)], ref)


@pytest.mark.parametrize("y_over", ["fitted", "trait_and_model"])
def test_intercept_and_covariate_coefficients(fx, oracle, y_over):
    """coefficients=True: the intercept's and each covariate's β, SE, t and p equal
    statsmodels' params, bse, tvalues and pvalues (both standardizations of y)."""
    traits = fx["T"][["random_phenotype0"]]
    res = associate(fx["Z"], traits, fx["R"], fx["cov"], covars=COVARS, scale="neglog10p",
                    backend="cpu", coefficients=True, lvs=LVS[:2],
                    standardize_y_over=y_over).set_index(["lv", "trait"])
    for lv in LVS[:2]:
        fit = oracle.fit(fx["Z"], fx["R"], traits["random_phenotype0"], lv, "submatrix",
                         cov=fx["cov_by_trait"]["random_phenotype0"], y_over=y_over)["fit"]
        row = res.loc[(lv, "random_phenotype0")]
        for j, term in enumerate(["intercept", None, *COVARS]):
            if term is None:
                continue
            for stat, ref in (("beta", fit.params), ("beta_se", fit.bse),
                              ("t", fit.tvalues)):
                np.testing.assert_allclose(row[f"{term}_{stat}"], ref[j], rtol=RTOL_COEF,
                                           atol=1e-12, err_msg=f"{term} {stat}")
            np.testing.assert_allclose(row[f"{term}_pvalue_twosided"], fit.pvalues[j],
                                       rtol=RTOL_P, atol=1e-15)


def test_two_top_gene_rules(fx, oracle):
    """s = 1 for 65 genes (quantile over the 6,421 aligned genes, x > 0); the sub-matrix block
    has 57–68 genes (quantile over all 6,750 Z genes, no x > 0 check). Using one rule for both
    changes the result."""
    from gpu_engine.gls import prepare
    from gpu_engine.gls.model import plan_group

    p = prepare(fx["Z"], fx["T"][["random_phenotype0"]], fx["R"], scale="neglog10p")
    plan = plan_group(p, p.groups[0][0])
    assert (plan.S.sum(axis=0) == 65).all()
    sizes = {p.lv_names[plan.lvs[k]]: int((ch.idx[r] < plan.n).sum())
             for ch in plan.chunks for r, k in enumerate(ch.lvs)}
    assert sizes["LV1"] == 68 and all(57 <= v <= 68 for v in sizes.values()), sizes
    # a block built with the s = 1 genes instead would give another answer
    genes = list(p.genes)
    y = fx["T"]["random_phenotype0"].loc[genes]
    y = ((y - y.mean()) / y.std()).to_numpy()
    s = plan.S[:, 0]
    wrong = np.eye(len(genes))
    pos = np.flatnonzero(s)
    wrong[np.ix_(pos, pos)] = fx["R"].loc[genes, genes].to_numpy()[np.ix_(pos, pos)]
    alt = sm.GLS(y, np.column_stack([np.ones(len(genes)), s]), sigma=wrong).fit()
    ours = associate(fx["Z"], fx["T"][["random_phenotype0"]], fx["R"], scale="neglog10p",
                     lvs=["LV1"], backend="cpu").iloc[0]
    assert abs(alt.params[1] / ours["beta"] - 1) > 1e-6


def test_ddof_one(fx, oracle):
    """y is standardized with ddof = 1: β on ddof = 0 data would be larger by √(n/(n−1))."""
    res = associate(fx["Z"], fx["T"][["random_phenotype0"]], fx["R"], scale="neglog10p",
                    lvs=["LV2"], mode="full", backend="cpu").iloc[0]
    genes = [g for g in fx["R"].index if g in fx["Z"].index and g in fx["T"].index]
    y = fx["T"]["random_phenotype0"].loc[genes]
    sigma = oracle.sigma(fx["Z"], fx["R"], genes, "LV2", "full")
    for ddof, match in ((1, True), (0, False)):
        yv = ((y - y.mean()) / y.std(ddof=ddof)).to_numpy()
        x = fx["Z"].loc[genes, "LV2"].astype(np.float64)
        s = ((x > 0) & (x >= x.quantile(0.99))).astype(float).to_numpy()
        ref = sm.GLS(yv, np.column_stack([np.ones(len(genes)), s]),
                     sigma=sigma).fit()
        assert np.isclose(ref.params[1], res["beta"], rtol=1e-9, atol=0) == match


def test_whooping_cough_zscores_keep_their_scale(fx):
    """The whooping-cough fixture holds z-scores: with scale='neglog10p' they are used as
    they are; with scale='pvalue' values above 1 are refused (no silent −log10)."""
    from gpu_engine.errors import InputError

    z = fx["T"][["phenomexcan-whooping_cough"]]
    with pytest.raises(InputError, match="outside \\[0, 1\\].*neglog10p"):
        associate(fx["Z"], z, fx["R"], scale="pvalue", backend="cpu")


def test_parity_from_smultixcan_tsv(shared, fx, oracle):
    """The CLI path (gls_cli semantics): the raw S-MultiXcan TSV — duplicates keep the
    first, NaN p dropped, −log10 p, covariates derived from n and n_indep."""
    from gpu_engine.gls import read_smultixcan

    path = shared / "phenoplier_data" / "gls" / "random.pheno0-gtex_v8-mashr-smultixcan.txt.gz"
    smx = read_smultixcan([path])
    res = associate(fx["Z"], smx.pvalue, fx["R"], smx.covariates(), covars=COVARS,
                    lvs=["LV1"], backend="cpu").iloc[0]
    raw = pd.read_csv(path, sep="\t").drop_duplicates("gene_name").dropna(subset=["pvalue"])
    raw = raw.set_index("gene_name")
    cov = pd.DataFrame({"gene_size": raw["n_indep"], "gene_size_log": np.log(raw["n_indep"]),
                        "gene_density": raw["n_indep"] / raw["n"],
                        "gene_density_log": -np.log(raw["n_indep"] / raw["n"])})
    ref = oracle.fit(fx["Z"], fx["R"], -np.log10(raw["pvalue"]), "LV1", "submatrix", cov=cov)
    _compare(res, ref)


def test_snp_level_covariates_from_the_cohort_metadata(shared):
    """gls_cli.py's SNP-level covariates from gene_tissues: equal to the recorded
    snplevel_covars fixture wherever the two S-MultiXcan runs agree (all but the README's 17
    genes); the density's log negated, as gls_cli.py does (the fixture's is not)."""
    from gpu_engine.gls import snp_covariates

    d = shared / "phenoplier_data" / "gls"
    ours = snp_covariates(pd.read_parquet(d / "cohort_1000g_eur_metadata" /
                                          "gene_tissues.parquet")).set_index("gene")
    rec = pd.read_parquet(d / "multixcan-random_phenotype0-snplevel_covars.parquet"
                          ).set_index("gene")
    g = rec.index.intersection(ours.index)
    same = rec.loc[g, "gene_n_snps_used"].to_numpy() == ours.loc[g, "gene_n_snps_used"]
    assert len(g) == 6442 and (~same).sum() == 17
    g = g[same]
    np.testing.assert_allclose(ours.loc[g, "gene_n_snps_used_density"],
                               rec.loc[g, "gene_n_snps_used_sharing"], rtol=1e-15)
    np.testing.assert_allclose(ours.loc[g, "gene_n_snps_used_log"],
                               rec.loc[g, "gene_n_snps_used_log"], rtol=1e-15)
    np.testing.assert_allclose(ours.loc[g, "gene_n_snps_used_density_log"],
                               -rec.loc[g, "gene_n_snps_used_sharing_log"], rtol=1e-14,
                               atol=1e-15)


def test_parity_with_all_eight_covariates(fx, oracle, shared):
    """--covars all: the four gene-level covariates and the four SNP-level ones (columns in
    name order, each standardised over the aligned genes), equal to statsmodels."""
    from gpu_engine.gls import COVARIATES, snp_covariates, with_gene_table

    assert len(COVARIATES) == 8 and list(COVARIATES) == sorted(COVARIATES)
    d = shared / "phenoplier_data" / "gls"
    snp = snp_covariates(pd.read_parquet(d / "cohort_1000g_eur_metadata" /
                                         "gene_tissues.parquet"))
    traits = fx["T"][["random_phenotype0"]]
    gene_level = {c: fx["cov_by_trait"]["random_phenotype0"][[c]].set_axis(
        ["random_phenotype0"], axis=1) for c in COVARS}
    cov = with_gene_table(gene_level, snp, traits.columns)
    res = associate(fx["Z"], traits, fx["R"], cov, covars=list(COVARIATES), lvs=LVS[:3],
                    scale="neglog10p", backend="cpu").set_index(["lv", "trait"])
    both = fx["cov_by_trait"]["random_phenotype0"].join(snp.set_index("gene"))
    for lv in LVS[:3]:
        ref = oracle.fit(fx["Z"], fx["R"], traits["random_phenotype0"], lv, "submatrix",
                         cov=both, covars=sorted(COVARIATES))
        _compare(res.loc[(lv, "random_phenotype0")], ref)


def test_production_standardization_of_y(fx, oracle):
    """standardize_y_over='trait_and_model': y standardized over trait ∩ Z before restricting
    to R's genes (PhenoPLIER's production path); equal to statsmodels on that y, t and p the
    same as the default's, β and SE not."""
    traits = fx["T"][["random_phenotype0", "phenomexcan-whooping_cough"]]
    kw = dict(lvs=LVS[:2], scale="neglog10p", backend="cpu")
    prod = associate(fx["Z"], traits, fx["R"], standardize_y_over="trait_and_model",
                     **kw).set_index(["lv", "trait"])
    plain = associate(fx["Z"], traits, fx["R"], **kw).set_index(["lv", "trait"])
    np.testing.assert_allclose(prod["t"], plain["t"], rtol=1e-12)
    assert not np.allclose(prod["beta"], plain["beta"], rtol=1e-6)
    for lv in LVS[:2]:
        for trait in traits.columns:
            ref = oracle.fit(fx["Z"], fx["R"], traits[trait], lv, "submatrix",
                             y_over="trait_and_model")
            _compare(prod.loc[(lv, trait)], ref)
