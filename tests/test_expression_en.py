"""PredictDB elastic net: the solver against scikit-learn, glmnet's λ path and early stop, the
nested-CV columns against an independent recomputation (scikit-learn's ``enet_path``), the
PLINK reader against a hand decoding of the .bed bytes, and the planted-world criteria."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import ElasticNet, enet_path

from gpu_engine.expression import NestedFolds, fit_path, nested_cv
from gpu_engine.expression.elastic_net import early_stop, fold_ids


def _gene(seed=0, n=200, p=60, causal=(3, 20, 29), h2=0.4, duplicate=True):
    rng = np.random.default_rng(seed)
    X = rng.binomial(2, rng.uniform(0.05, 0.5, p), size=(n, p)).astype(float)
    if duplicate:
        X[:, 10] = X[:, 9]  # perfect LD: the elastic net shares the effect
    g = X[:, list(causal)] @ rng.normal(size=len(causal))
    y = np.sqrt(h2) * g / g.std() + np.sqrt(1 - h2) * rng.normal(size=n)
    return X, (y - y.mean()) / y.std(ddof=1)


def _standardised(X, y):
    m, sd = X.mean(0), X.std(0)
    sy = y.std()
    return (X - m) / sd, (y - y.mean()) / sy, m, sd, sy


@pytest.mark.parametrize("lam", [0.2, 0.05, 0.01])
def test_solver_equals_sklearn_on_standardised_data(lam):
    X, y = _gene()
    _, beta, b0 = fit_path(X, y, [lam], backend="cpu", tol=1e-12)
    Xs, ys, m, sd, sy = _standardised(X, y)
    b = ElasticNet(alpha=lam / sy, l1_ratio=0.5, tol=1e-15, max_iter=10**6).fit(Xs, ys).coef_
    want = b * sy / sd
    np.testing.assert_allclose(beta[0], want, atol=1e-8)
    np.testing.assert_allclose(b0[0], y.mean() - m @ want, atol=1e-8)
    assert (want != 0).sum() > 1 and (want == 0).any()


def test_lambda_path_and_early_stop():
    X, y = _gene(seed=1)
    lam, beta, _ = fit_path(X, y, backend="cpu")
    Xs, ys, *_ = _standardised(X, y)
    lmax = np.abs(Xs.T @ (y - y.mean())).max() / (len(y) * 0.5)
    assert lam[0] == pytest.approx(lmax, rel=1e-12)
    ratio = 1e-4  # n ≥ p
    np.testing.assert_allclose(np.diff(np.log(lam)), np.log(ratio) / 99, rtol=1e-10)
    assert (beta[0] == 0).all() and 5 <= len(lam) < 100  # stopped early
    # early stop: the first m ≥ 5 with a fractional gain < 1e-5 or R² > 0.999
    assert early_stop(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.5000001, 0.6])) == 6
    assert early_stop(np.array([0.1, 0.2, 0.3, 0.4, 0.9995])) == 5
    assert early_stop(np.linspace(0.1, 0.5, 8)) == 8
    # p > n: ratio 1e-2
    lam2, _, _ = fit_path(X[:40], y[:40], backend="cpu")
    np.testing.assert_allclose(np.diff(np.log(lam2))[0], np.log(1e-2) / 99, rtol=1e-10)


def test_fold_ids_are_balanced():
    f = fold_ids(23, 5, np.random.default_rng(0))
    assert sorted(np.bincount(f)) == [4, 4, 5, 5, 5]


# ------------------------------------------------------------------- independent nested CV
def _ref_path(X, y, lam_y=None):
    """cv.glmnet's full fit with scikit-learn: λ on y's scale (default path with glmnet's
    early stop when lam_y is None), coefficients per dosage unit, intercepts."""
    Xs, ys, m, sd, sy = _standardised(X, y)
    n, p = X.shape
    if lam_y is None:
        lmax = np.abs(Xs.T @ ys).max() / n / 0.5
        lam_s = lmax * (1e-4 if n >= p else 1e-2) ** (np.arange(100) / 99)
    else:
        lam_s = np.asarray(lam_y) / sy
    _, coefs, _ = enet_path(Xs, ys, l1_ratio=0.5, alphas=lam_s, tol=1e-13, max_iter=10**6)
    B = coefs.T  # L × p
    if lam_y is None:
        rsq = np.array([1 - np.mean((ys - Xs @ b) ** 2) for b in B])
        keep = len(rsq)
        for k in range(5, len(rsq) + 1):
            if rsq[k - 1] - rsq[k - 2] < 1e-5 * rsq[k - 1] or rsq[k - 1] > 0.999:
                keep = k
                break
        B, lam_s = B[:keep], lam_s[:keep]
    beta = B * sy / sd
    return lam_s * sy, beta, y.mean() - beta @ m


def _ref_cv(X, y, folds):
    lam, beta, b0 = _ref_path(X, y)
    preval = np.zeros((len(y), len(lam)))
    for f in range(folds.max() + 1):
        tr, te = folds != f, folds == f
        _, bf, b0f = _ref_path(X[tr], y[tr], lam)
        preval[te] = X[te] @ bf.T + b0f
    cvm = ((y[:, None] - preval) ** 2).mean(0)
    best = int(np.flatnonzero(cvm == cvm.min())[0])
    return lam[best], beta[best], b0[best], preval[:, best]


def _ref_metrics(y, pred):
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum(y ** 2)
    r = np.corrcoef(pred, y)[0, 1]
    n = len(y)
    t = r * np.sqrt((n - 2) / (1 - r * r))
    return r2, r, np.arctanh(r) * np.sqrt(n - 3), 2 * stats.t.sf(abs(t), n - 2)


def test_nested_cv_columns_equal_an_independent_recomputation():
    # no SNPs in perfect LD here: both solvers then converge fast to 1e-11
    X, y = _gene(seed=2, n=150, p=40, duplicate=False)
    folds = NestedFolds.draw(len(y), np.random.default_rng(5))
    got = nested_cv(X, y, folds, backend="cpu", tol=1e-11)
    outer = []
    for o in range(5):
        tr, te = folds.outer != o, folds.outer == o
        _, b, b0, _ = _ref_cv(X[tr], y[tr], folds.inner[o])
        outer.append(_ref_metrics(y[te], X[te] @ b + b0))
    lam, b, b0, preval = _ref_cv(X, y, folds.final)
    cv = [_ref_metrics(y[folds.final == f], preval[folds.final == f]) for f in range(10)]
    outer, cv = np.array(outer), np.array(cv)
    np.testing.assert_allclose(got["outer_metrics"], outer, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got["cv_metrics"], cv, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got["weights"], b, atol=1e-7)
    want = {
        "lambda_min_mse": lam, "n_snps_in_model": int((b != 0).sum()),
        "test_R2_avg": outer[:, 0].mean(), "test_R2_sd": outer[:, 0].std(ddof=1),
        "rho_avg": outer[:, 1].mean(), "rho_se": outer[:, 1].std(ddof=1),
        "rho_avg_squared": outer[:, 1].mean() ** 2, "rho_zscore": outer[:, 2].sum() / np.sqrt(5),
        "zscore_pval": 2 * stats.norm.sf(abs(outer[:, 2].sum() / np.sqrt(5))),
        "nested_cv_fisher_pval": stats.chi2.sf(-2 * np.log(outer[:, 3]).sum(), 10),
        "cv_R2_avg": cv[:, 0].mean(), "cv_R2_sd": cv[:, 0].std(ddof=1),
        "cv_rho_avg": cv[:, 1].mean(), "cv_rho_se": cv[:, 1].std(ddof=1),
        "cv_rho_avg_squared": cv[:, 1].mean() ** 2, "cv_zscore_est": cv[:, 2].sum() / np.sqrt(10),
        "cv_zscore_pval": 2 * stats.norm.sf(abs(cv[:, 2].sum() / np.sqrt(10))),
        "cv_pval_est": stats.chi2.sf(-2 * np.log(cv[:, 3]).sum(), 20),
        "in_sample_R2": 1 - np.sum((y - X @ b - b0) ** 2) / np.sum(y ** 2)}
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k


def test_batched_over_genes_equals_one_at_a_time():
    from gpu_engine.expression.elastic_net import fit_genes

    genes = [(*_gene(seed=s, n=120, p=30 + 5 * s), NestedFolds.draw(120, np.random.default_rng(s)))
             for s in range(3)]
    together = fit_genes(genes, backend="cpu", rngs=[np.random.default_rng(0)] * 3)
    for s, (X, y, f) in enumerate(genes):
        alone = nested_cv(X, y, f, backend="cpu", rng=np.random.default_rng(0))
        np.testing.assert_allclose(together[s]["weights"], alone["weights"], atol=1e-12)
        assert together[s]["rho_avg"] == pytest.approx(alone["rho_avg"], abs=1e-12)


@pytest.mark.sim
def test_cuda_kernel_path_equals_cpu():
    from gpu_engine.backend import get_backend

    X, y = _gene(seed=4, n=40, p=6, causal=(1, 5), duplicate=False)
    want = fit_path(X, y, [0.3, 0.1], backend="cpu", tol=1e-9)[1]

    class Sim:  # the CPU backend's arrays, the CUDA kernel (Numba's simulator here)
        name, xp = "gpu-sim", np
        to_host = staticmethod(np.asarray)

    import gpu_engine.kernels.registry as reg

    orig = reg.implementation
    reg.implementation = lambda be: "cuda" if getattr(be, "name", "") == "gpu-sim" else orig(be)
    try:
        from gpu_engine.expression import elastic_net as en

        data = en._GeneData(X, y)
        pr = en._Problem(0, np.arange(len(y)), np.zeros(0, np.int64))
        G, c = en._moments(data, [], pr)
        pr.lam = np.array([0.3, 0.1]) / pr.sy
        b = en._solve_paths([G], [c], [pr], 0.5, Sim(), 1e-9)[0]
        got = en._to_dosage_scale(b, pr)[0]
    finally:
        reg.implementation = orig
    np.testing.assert_allclose(got, want, atol=1e-8)
    assert get_backend("cpu").name == "cpu"
