"""GLS association on small synthetic problems: every engine agrees, the parity traps of the
spec (zero p-values, gene order, duplicated genes, traits with missing genes, result
independent of the other traits), bad input, and Dask partitioning. Real-data parity with
statsmodels is in test_gls_parity.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpu_engine.errors import InputError
from gpu_engine.gls import associate
from gpu_engine.gls.engine import Ops

sm = pytest.importorskip("statsmodels.api")


def make_problem(n=240, L=5, T=4, seed=0):
    """Small inputs (``trait0`` carries a real LV1 signal), traits named trait0 …"""
    from gpu_engine.datasets.gls_inputs import gls_inputs

    Z, P, R, cov = gls_inputs(n, L, T, seed=seed, spacing_mb=0.4, window_mb=2.0,
                              decay_mb=0.5, source_spacing_mb=0.3, strength=1.0, density=0.3,
                              signal=2.0, covariates=True)
    rename = {f"trait{i + 1}": f"trait{i}" for i in range(T)}
    return Z, P.rename(columns=rename), R, cov.assign(trait=cov["trait"].map(rename))


def oracle(Z, P, R, lv, trait, *, mode="submatrix", covars=(), cov=None, top=0.01,
           predictor="binary"):
    """statsmodels GLS for one pair, built from the spec's rules (small n: cheap)."""
    y = P[trait].dropna()
    genes = [g for g in R.index if g in set(Z.index) & set(y.index)]
    yv = -np.log10(y.loc[genes])
    yv = (yv - yv.mean()) / yv.std()
    x = Z.loc[genes, lv]
    if predictor == "binary":
        s = ((x > 0) & (x >= x.quantile(1 - top))).astype(float)
    else:
        s = (x - x.mean()) / x.std()
    cols = [np.ones(len(genes)), s.to_numpy()]
    if covars:
        c = cov[cov.trait == trait].set_index("gene").loc[genes]
        d = {"gene_size": c.n_indep, "gene_size_log": np.log(c.n_indep),
             "gene_density": c.n_indep / c.n, "gene_density_log": -np.log(c.n_indep / c.n)}
        for name in sorted(covars):
            v = d[name]
            cols.append(((v - v.mean()) / v.std()).to_numpy())
    if mode == "full":
        sigma = R.loc[genes, genes].to_numpy()
    else:
        top_genes = set(Z.index[Z[lv] >= Z[lv].quantile(1 - top)])
        blk = [g for g in genes if g in top_genes]
        pos = pd.Index(genes).get_indexer(blk)
        sigma = np.eye(len(genes))
        sigma[np.ix_(pos, pos)] = R.loc[blk, blk].to_numpy()
    f = sm.GLS(yv.to_numpy(), np.column_stack(cols), sigma=sigma).fit()
    return np.array([f.params[1], f.bse[1], f.tvalues[1], f.pvalues[1]]), len(genes)


STATS = ["beta", "beta_se", "t", "pvalue_twosided"]


@pytest.fixture(scope="module")
def prob():
    return make_problem()


@pytest.mark.parametrize("mode", ["submatrix", "full"])
@pytest.mark.parametrize("covars", [(), ("gene_size", "gene_size_log", "gene_density",
                                         "gene_density_log")])
@pytest.mark.parametrize("top", [0.01, 0.1])
def test_matches_statsmodels(prob, mode, covars, top):
    Z, P, R, cov = prob
    res = associate(Z, P, R, cov, mode=mode, covars=covars, top_fraction=top,
                    backend="cpu").set_index(["lv", "trait"])
    for lv in Z.columns:
        for trait in P.columns:
            ref, n = oracle(Z, P, R, lv, trait, mode=mode, covars=covars, cov=cov, top=top)
            row = res.loc[(lv, trait)]
            assert row["n"] == n
            np.testing.assert_allclose(row[STATS].to_numpy(float), ref, rtol=1e-9)
    assert res.loc[("LV1", "trait0"), "pvalue_onesided"] < 1e-3  # the planted signal


def test_continuous_predictor(prob):
    Z, P, R, _ = prob
    res = associate(Z, P, R, predictor="continuous", backend="cpu").set_index(["lv", "trait"])
    ref, _ = oracle(Z, P, R, "LV2", "trait1", predictor="continuous")
    np.testing.assert_allclose(res.loc[("LV2", "trait1"), STATS].to_numpy(float), ref,
                               rtol=1e-9)


def test_onesided_and_fdr(prob):
    from scipy import stats

    from gpu_engine.stats import fdr_bh

    Z, P, R, _ = prob
    res = associate(Z, P, R, backend="cpu")
    df = res["n"] - 2
    np.testing.assert_allclose(res["pvalue_onesided"], stats.t.sf(res["t"], df), rtol=1e-10)
    np.testing.assert_allclose(res["fdr"], fdr_bh(res["pvalue_onesided"].to_numpy()))
    assert list(res.columns) == ["lv", "trait", "n", "beta", "beta_se", "t",
                                 "pvalue_twosided", "pvalue_onesided", "fdr"]


@pytest.mark.parametrize("mode", ["submatrix", "full"])
def test_engines_agree(mode):
    """NumPy reference kernels, numba CPU kernels and CUDA kernels (simulator) agree."""
    Z, P, R, cov = make_problem(n=90, L=3, T=2, seed=3)
    covars = ("gene_size", "gene_density")
    kw = dict(mode=mode, covars=covars, top_fraction=0.05)
    cpu = associate(Z, P, R, cov, backend="cpu", **kw)
    ref = associate(Z, P, R, cov, ops=Ops.reference(), **kw)
    sim = associate(Z, P, R, cov, ops=Ops.simulated(), **kw)
    cols = STATS + ["pvalue_onesided"]
    np.testing.assert_allclose(cpu[cols], ref[cols], rtol=1e-10)
    np.testing.assert_allclose(sim[cols], ref[cols], rtol=1e-10)


@pytest.mark.parametrize("mode", ["submatrix", "full"])
def test_coefficients_kernels_agree(mode):
    """coefficients=True: every term's statistics from the reference, CPU and CUDA
    (simulator) kernels agree; the LV's columns are the plain run's."""
    Z, P, R, cov = make_problem(n=90, L=3, T=2, seed=3)
    kw = dict(mode=mode, covars=("gene_size", "gene_density"), top_fraction=0.05,
              coefficients=True)
    cpu = associate(Z, P, R, cov, backend="cpu", **kw)
    ref = associate(Z, P, R, cov, ops=Ops.reference(), **kw)
    sim = associate(Z, P, R, cov, ops=Ops.simulated(), **kw)
    extra = [f"{t}_{s}" for t in ("intercept", "gene_density", "gene_size")
             for s in ("beta", "beta_se", "t", "pvalue_twosided")]
    assert list(cpu.columns[-len(extra):]) == extra
    np.testing.assert_allclose(cpu[extra], ref[extra], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sim[extra], ref[extra], rtol=1e-10, atol=1e-14)
    plain = associate(Z, P, R, cov, backend="cpu", **{**kw, "coefficients": False})
    np.testing.assert_allclose(cpu[STATS], plain[STATS], rtol=1e-12)


def test_trait_result_independent_of_other_traits(prob):
    Z, P, R, cov = prob
    covars = ("gene_size_log",)
    P2 = P.copy()
    P2.iloc[:30, 2] = np.nan  # another gene set, another group
    together = associate(Z, P2, R, cov, covars=covars, backend="cpu").set_index(
        ["lv", "trait"])
    for trait in P2.columns:
        alone = associate(Z, P2[[trait]], R, cov, covars=covars, backend="cpu").set_index(
            ["lv", "trait"])
        cols = STATS + ["pvalue_onesided", "n"]
        np.testing.assert_allclose(together.loc[alone.index, cols].to_numpy(float),
                                   alone[cols].to_numpy(float), rtol=1e-12)


def test_missing_genes_of_one_trait(prob):
    """NaN p-values mark genes missing for that trait only: same as dropping those genes."""
    Z, P, R, _ = prob
    P2 = P.copy()
    drop = P.index[::7]
    P2.loc[drop, "trait1"] = np.nan
    res = associate(Z, P2, R, backend="cpu").set_index(["lv", "trait"])
    ref = associate(Z, P2[["trait1"]].drop(drop), R, backend="cpu").set_index(["lv", "trait"])
    np.testing.assert_allclose(res.loc[ref.index, STATS].to_numpy(float),
                               ref[STATS].to_numpy(float), rtol=1e-12)
    assert (res.xs("trait1", level="trait")["n"] == len(P) - len(drop)).all()
    assert res.attrs["missing_genes"] == {"trait1": len(drop)}
    assert (res.xs("trait0", level="trait")["n"] == len(P)).all()
    r, n = oracle(Z, P2, R, "LV3", "trait1")
    np.testing.assert_allclose(res.loc[("LV3", "trait1"), STATS].to_numpy(float), r, rtol=1e-9)


def test_gene_order_does_not_matter(prob):
    Z, P, R, _ = prob
    base = associate(Z, P, R, backend="cpu").set_index(["lv", "trait"])
    rng = np.random.default_rng(1)
    shuffled = associate(Z.iloc[rng.permutation(len(Z))], P.iloc[rng.permutation(len(P))], R,
                         backend="cpu").set_index(["lv", "trait"])
    np.testing.assert_allclose(shuffled.loc[base.index, STATS], base[STATS], rtol=1e-12)
    perm = rng.permutation(len(R))
    Rp = R.iloc[perm, perm]  # another gene order for the matrix: same model, other rounding
    other = associate(Z, P, Rp, backend="cpu").set_index(["lv", "trait"])
    np.testing.assert_allclose(other.loc[base.index, STATS], base[STATS], rtol=1e-9)


def test_zero_pvalues_replaced_by_min_over_ten(prob):
    Z, P, R, _ = prob
    P2 = P[["trait0"]].copy()
    P2.iloc[[3, 50], 0] = 0.0
    smallest = P2.loc[P2["trait0"] > 0, "trait0"].min()
    manual = -np.log10(P2.replace(0.0, smallest / 10))
    a = associate(Z, P2, R, backend="cpu")
    b = associate(Z, manual, R, scale="neglog10p", backend="cpu")
    np.testing.assert_allclose(a[STATS], b[STATS], rtol=1e-12)


def test_duplicated_trait_genes_keep_first(prob, caplog):
    Z, P, R, _ = prob
    dup = pd.concat([P.iloc[:5].assign(trait0=0.5), P])  # first copies win
    res = associate(Z, dup, R, backend="cpu")
    ref = associate(Z, pd.concat([P.iloc[:5].assign(trait0=0.5), P.iloc[5:]]), R,
                    backend="cpu")
    np.testing.assert_allclose(res[STATS], ref[STATS], rtol=1e-12)
    assert "duplicates" in caplog.text


# ----------------------------------------------------------------------------- bad input
def test_not_positive_definite(prob):
    Z, P, R, _ = prob
    top = Z.index[Z["LV1"] >= Z["LV1"].quantile(0.99)][:2]
    R2 = R.copy()
    R2.loc[top[0], top[1]] = R2.loc[top[1], top[0]] = 1.5
    with pytest.raises(InputError, match="LV1.*not positive definite"):
        associate(Z, P, R2, backend="cpu")
    with pytest.raises(InputError, match="not positive definite"):
        associate(Z, P, R2, mode="full", backend="cpu")


def test_asymmetric_or_bad_diagonal(prob):
    Z, P, R, _ = prob
    R2 = R.copy()
    R2.iloc[0, 1] += 0.01
    with pytest.raises(InputError, match="not symmetric.*" + R.index[0]):
        associate(Z, P, R2, backend="cpu")
    R3 = R.copy()
    R3.iloc[4, 4] = 2.0
    with pytest.raises(InputError, match="diagonal must be 1"):
        associate(Z, P, R3, backend="cpu")


def test_no_overlapping_genes(prob):
    Z, P, R, _ = prob
    P2 = P.copy()
    P2.index = [f"ENSG{i:05d}" for i in range(len(P))]
    with pytest.raises(InputError, match="no overlap.*identifiers"):
        associate(Z, P2, R, backend="cpu")


def test_lv_without_positive_loadings_is_skipped(prob, caplog):
    Z, P, R, _ = prob
    Z2 = Z.copy()
    Z2["LV4"] = 0.0
    res = associate(Z2, P, R, backend="cpu")
    assert "LV4" not in set(res["lv"]) and len(res) == 4 * P.shape[1]
    skipped = res.attrs["skipped"]
    assert any(s["lv"] == "LV4" and "no positive loadings" in s["reason"] for s in skipped)
    assert "LV4" in caplog.text


def test_pvalues_outside_unit_interval(prob):
    Z, P, R, _ = prob
    P2 = P.copy()
    P2.iloc[7, 1] = 1.5
    with pytest.raises(InputError, match=f"trait1.*{P.index[7]}"):
        associate(Z, P2, R, backend="cpu")
    P2.iloc[7, 1] = -0.1
    with pytest.raises(InputError, match="outside"):
        associate(Z, P2, R, backend="cpu")
    P3 = -np.log10(P)
    P3.iloc[2, 0] = np.inf
    with pytest.raises(InputError, match="infinite"):
        associate(Z, P3, R, scale="neglog10p", backend="cpu")


def test_bad_parameters_and_covariates(prob):
    Z, P, R, cov = prob
    with pytest.raises(InputError, match="mode"):
        associate(Z, P, R, mode="blocks", backend="cpu")
    with pytest.raises(InputError, match="unknown covariate"):
        associate(Z, P, R, cov, covars=["gene_length"], backend="cpu")
    with pytest.raises(InputError, match="no covariates table"):
        associate(Z, P, R, covars=["gene_size"], backend="cpu")
    with pytest.raises(InputError, match="unknown LV"):
        associate(Z, P, R, lvs=["LV99"], backend="cpu")
    bad = cov.copy()
    bad.loc[0, "n_indep"] = 0
    with pytest.raises(InputError, match="n_indep"):
        associate(Z, P, R, bad, covars=["gene_size_log"], backend="cpu")


def test_covariate_forms_agree(prob):
    """Long n/n_indep table == long table of derived covariates == wide matrices."""
    Z, P, R, cov = prob
    covars = ["gene_density_log", "gene_size"]
    a = associate(Z, P, R, cov, covars=covars, backend="cpu")
    derived = cov.assign(gene_size=cov.n_indep, gene_density_log=-np.log(cov.n_indep / cov.n))
    b = associate(Z, P, R, derived[["trait", "gene", *covars]], covars=covars, backend="cpu")
    wide = {c: cov.pivot(index="gene", columns="trait", values=c) for c in ("n", "n_indep")}
    c = associate(Z, P, R, wide, covars=covars, backend="cpu")
    np.testing.assert_allclose(a[STATS], b[STATS], rtol=1e-12)
    np.testing.assert_allclose(a[STATS], c[STATS], rtol=1e-12)


# ----------------------------------------------------------------------------- dask
def test_dask_cluster_gives_identical_results(prob, monkeypatch):
    from dask.distributed import Client, LocalCluster

    import gpu_engine.gls.association as assoc

    Z, P, R, cov = prob
    monkeypatch.setattr(assoc, "_MAX_TRAITS_PER_TASK", 1)  # several tasks
    local = associate(Z, P, R, cov, covars=["gene_size"], backend="cpu")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        dist = associate(Z, P, R, cov, covars=["gene_size"], backend="cpu", client=client)
    pd.testing.assert_frame_equal(local, dist, check_exact=False, rtol=1e-13)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["submatrix", "full"])
def test_gpu_backend_equals_cpu(prob, mode):
    Z, P, R, cov = prob
    kw = dict(mode=mode, covars=("gene_size", "gene_density_log"))
    cpu = associate(Z, P, R, cov, backend="cpu", **kw)
    gpu = associate(Z, P, R, cov, backend="gpu", **kw)
    np.testing.assert_allclose(gpu[STATS + ["pvalue_onesided"]],
                               cpu[STATS + ["pvalue_onesided"]], rtol=1e-10)


def test_device_cache_is_per_plan():
    """Device copies are keyed by a plan token, never by id() (which Python reuses)."""
    from gpu_engine.gls.model import GroupPlan

    class FakeXp:  # stands in for cupy: any module that is not numpy
        asarray = staticmethod(lambda a: np.array(a, copy=True))

    ops = Ops(FakeXp, None, None, None, None, {})
    plans = [GroupPlan(genes=np.arange(3), lvs=np.arange(1), S=np.full((3, 1), float(i)),
                       mode="submatrix", n_covars=0) for i in range(3)]
    assert len({p.token for p in plans}) == 3
    for i, p in enumerate(plans):
        assert ops.device(p, "S", p.S)[0, 0] == i
    assert len(ops.cache) == 2 and plans[0].token not in ops.cache


def test_constant_trait_is_an_error(prob):
    Z, P, R, _ = prob
    P2 = P.copy()
    P2["trait2"] = 0.3
    with pytest.raises(InputError, match="traits: 1 column.*cannot be standardized.*trait2"):
        associate(Z, P2, R, backend="cpu")
