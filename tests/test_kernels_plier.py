"""PLIER U-step kernel: NumPy reference == numba CPU == CUDA (simulator) == scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import ElasticNet

from gpu_engine.kernels import plier as kp


def _problem(seed=0, n=400, P=30, k=5, m=8, zero_col=True):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, P)) < 0.15).astype(float)
    if zero_col:
        X[:, 3] = 0.0  # a pathway zeroed for having too few genes
    Z = np.abs(X[:, :6] @ rng.random((6, k)) + rng.normal(0, 0.3, (n, k)))
    mean = X.mean(axis=0)
    G = X.T @ X / n - np.outer(mean, mean)
    c = X.T @ Z / n - np.outer(mean, Z.mean(axis=0))
    idx = np.full((k, m + 2), -1, np.int64)
    for i in range(k):
        cand = rng.choice(P, size=m - (i % 3), replace=False)
        cand[0] = 3 if i == 0 else cand[0]
        idx[i, :cand.size] = cand
    return X, Z, G, c, idx


def _sklearn(X, Z, idx, lam, alpha):
    out = np.zeros(idx.shape)
    for i in range(idx.shape[0]):
        cand = idx[i][idx[i] >= 0]
        est = ElasticNet(alpha=lam, l1_ratio=alpha, positive=True, tol=1e-14,
                         max_iter=1_000_000).fit(X[:, cand], Z[:, i])
        out[i, :cand.size] = est.coef_
    return out


@pytest.mark.parametrize("lam", [0.05, 0.01, 0.002])
def test_reference_and_cpu_equal_sklearn(lam):
    X, Z, G, c, idx = _problem()
    want = _sklearn(X, Z, idx, lam, 0.9)
    assert (want > 0).any() and (want == 0).any()  # the case has active and inactive terms
    for kernel in (kp.enet_cd_reference, kp.enet_cd_cpu):
        u = np.zeros(idx.shape)
        kernel(G, c, idx, lam * 0.9, lam * 0.1, u)
        np.testing.assert_allclose(u, want, atol=1e-9, rtol=1e-7)
        assert (u[idx < 0] == 0).all()


def test_warm_start_and_per_lv_penalties():
    X, Z, G, c, idx = _problem(seed=1)
    lam = np.array([0.02, 0.005, 0.01, 0.03, 0.001])
    cold = np.zeros(idx.shape)
    kp.enet_cd_cpu(G, c, idx, lam * 0.9, lam * 0.1, cold)
    warm = np.abs(np.random.default_rng(2).normal(size=idx.shape))  # a poor start
    kp.enet_cd_cpu(G, c, idx, lam * 0.9, lam * 0.1, warm)
    np.testing.assert_allclose(warm, cold, atol=1e-10)
    for i, li in enumerate(lam):
        want = _sklearn(X, Z[:, [i]], idx[[i]], li, 0.9)
        np.testing.assert_allclose(cold[i], want[0], atol=1e-9, rtol=1e-7)


@pytest.mark.sim
def test_cuda_equals_reference():
    X, Z, G, c, idx = _problem(seed=3, n=60, P=12, k=3, m=5)
    lam = 0.01
    ref = np.zeros(idx.shape)
    kp.enet_cd_reference(G, c, idx, lam * 0.9, lam * 0.1, ref)
    u = np.zeros(idx.shape)
    kp.enet_cd_cuda(G, c, idx, lam * 0.9, lam * 0.1, u)
    u = u.get() if hasattr(u, "get") else u
    np.testing.assert_allclose(u, ref, atol=1e-11)
    assert (ref > 0).any()


def _signed_problems(seed=5, n=80, P=9, k=4):
    """k signed problems, each with its own design (its own Gram matrix), as the expression
    models' elastic net uses the kernel."""
    rng = np.random.default_rng(seed)
    Xs = [rng.normal(size=(n, P)) for _ in range(k)]
    ys = [X[:, :3] @ rng.normal(size=3) + rng.normal(size=n) for X in Xs]
    G = np.stack([np.cov(X.T, bias=True) for X in Xs])
    c = np.stack([((X - X.mean(0)) * (y - y.mean())[:, None]).mean(0) for X, y in zip(Xs, ys)],
                 axis=1)
    idx = np.tile(np.arange(P), (k, 1))
    idx[1, -2:] = -1  # a problem with fewer coordinates
    return Xs, ys, G, c, idx


@pytest.mark.parametrize("impl", ["reference", "cpu", pytest.param("cuda", marks=pytest.mark.sim)])
def test_signed_problems_with_their_own_gram_equal_sklearn(impl):
    Xs, ys, G, c, idx = _signed_problems()
    lam = np.array([0.05, 0.1, 0.02, 0.3])
    u = np.zeros(idx.shape)
    getattr(kp, f"enet_cd_{impl}")(G, c, idx, lam * 0.5, lam * 0.5, u, 1e-13, positive=False)
    u = u.get() if hasattr(u, "get") else u
    for i, (X, y) in enumerate(zip(Xs, ys)):
        cols = idx[i][idx[i] >= 0]
        want = ElasticNet(alpha=lam[i], l1_ratio=0.5, tol=1e-14, max_iter=10**6).fit(
            X[:, cols], y).coef_
        np.testing.assert_allclose(u[i, :cols.size], want, atol=1e-9)
        assert (want < 0).any() and (u[i, cols.size:] == 0).all()
