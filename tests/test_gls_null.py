"""Null calibration: simulated null traits follow R; GLS on Gaussian nulls is exactly
calibrated (the t test is exact there); inflated LVs are flagged; the QQ plot is written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gpu_engine.gls import associate
from gpu_engine.gls.null import calibration_table, null_calibration, qq_plot, simulate_null_traits

from .test_gls import make_problem


@pytest.fixture(scope="module")
def prob():
    return make_problem(n=300, L=6, T=1, seed=5)


def test_null_traits_follow_the_correlation(prob):
    _, _, R, _ = prob
    P = simulate_null_traits(R, 4000, seed=2)
    z = stats.norm.isf(P.to_numpy() / 2)  # |z|
    assert P.shape == (300, 4000) and ((P > 0) & (P <= 1)).all().all()
    # |z| of MVN(0, R) is half-normal with mean √(2/π) for every gene
    np.testing.assert_allclose(z.mean(axis=1).mean(), np.sqrt(2 / np.pi), rtol=0.01)
    # and strongly correlated genes give strongly correlated |z|
    Rv = R.to_numpy()
    i, j = np.unravel_index(np.argmax(np.triu(Rv, 1)), Rv.shape)
    assert np.corrcoef(z[i], z[j])[0, 1] > 0.5 * Rv[i, j] ** 2
    pd.testing.assert_frame_equal(P, simulate_null_traits(R, 4000, seed=2))


def test_gaussian_nulls_are_exactly_calibrated(prob):
    """With y ~ MVN(0, R) the full-mode GLS t test is exact: the type-I error is α within
    binomial noise (this checks the whole GLS chain, not the simulation)."""
    Z, _, R, _ = prob
    rng = np.random.default_rng(7)
    L = np.linalg.cholesky(R.to_numpy())
    Y = pd.DataFrame(L @ rng.standard_normal((len(R), 3000)), index=R.index)
    res = associate(Z, Y, R, scale="neglog10p", mode="full", backend="cpu")
    n = len(res)
    for a in (0.05, 0.01):
        k = int((res["pvalue_onesided"] < a).sum())
        lo, hi = stats.binom.ppf([0.0005, 0.9995], n, a)
        assert lo <= k <= hi, (a, k / n)


def test_calibration_flags_inflated_lvs():
    rng = np.random.default_rng(0)
    rows = []
    for lv, scale in (("ok1", 1.0), ("ok2", 1.0), ("bad", 0.3)):
        p = rng.uniform(size=1000) ** (1 / scale) if scale == 1 else rng.uniform(size=1000) ** 2
        rows.append(pd.DataFrame({"lv": lv, "pvalue_onesided": p,
                                  "pvalue_twosided": np.minimum(1, 2 * np.minimum(p, 1 - p))}))
    table = calibration_table(pd.concat(rows)).set_index("lv")
    assert table.loc["bad", "inflated"] and not table.loc[["ok1", "ok2"], "inflated"].any()
    assert 0.03 < table.loc["ok1", "type1_0.05"] < 0.07
    assert table.loc["bad", "type1_0.05"] > 0.15


def test_null_calibration_end_to_end(prob, tmp_path):
    Z, _, R, _ = prob
    cal = null_calibration(Z, R, n_null=200, backend="cpu", seed=1)
    assert list(cal.table["lv"]) == list(Z.columns)
    assert (cal.table["n_null"] == 200).all()
    assert {"type1_0.05", "type1_0.01", "binom_p_0.05", "lambda_gc", "inflated"} <= set(
        cal.table.columns)
    png = qq_plot(cal.results, tmp_path / "qq.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chi2_null_model(prob):
    _, _, R, _ = prob
    rng = np.random.default_rng(3)
    k = pd.Series(rng.integers(1, 6, len(R)), index=R.index)
    k.iloc[:50] = 1
    P = simulate_null_traits(R, 3000, seed=4, model="chi2", n_indep=k)
    normal = simulate_null_traits(R, 3000, seed=4)
    # n_indep = 1: exactly the normal model (same first draw)
    np.testing.assert_allclose(P.iloc[:50], normal.iloc[:50], rtol=1e-10)
    # every gene's p is uniform under the null, whatever its degrees of freedom
    multi = P.to_numpy()[(k > 2).to_numpy()]
    assert abs((multi < 0.05).mean() - 0.05) < 0.005 and abs(multi.mean() - 0.5) < 0.01
    table = pd.DataFrame({"gene_name": k.index, "n_indep": k.to_numpy(), "pvalue": 0.5})
    pd.testing.assert_frame_equal(simulate_null_traits(R, 10, model="chi2", n_indep=table),
                                  simulate_null_traits(R, 10, model="chi2", n_indep=k))
    from gpu_engine.errors import InputError

    with pytest.raises(InputError, match="needs each gene's n_indep"):
        simulate_null_traits(R, 10, model="chi2")
    with pytest.raises(InputError, match="no value for 1 gene"):
        simulate_null_traits(R, 10, model="chi2", n_indep=k.iloc[1:])
