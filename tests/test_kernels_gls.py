"""GLS kernels: NumPy reference == numba CPU == CUDA (simulator here, the device in the gpu
tier), the Student t tail against scipy, and PTX compilation of every CUDA kernel."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import stdtr

from gpu_engine.kernels import gls as k

from .conftest import HAS_CUPY, HAS_GPU


def _inputs(rng, Lc=3, T=5, m=3, bmax=4, n=40):
    """Consistent Gram pieces from real data: S, M, blocks with whiteners."""
    S = (rng.uniform(size=(n, Lc)) < 0.25).astype(float)
    M = rng.normal(size=(n, T, m))
    idx = np.full((Lc, bmax), n)
    W = np.zeros((Lc, bmax, bmax))
    for l in range(Lc):
        b = bmax - l  # ragged blocks, zero padded
        idx[l, :b] = rng.choice(n, b, replace=False)
        A = rng.normal(size=(b, b + 3))
        C = A @ A.T
        d = np.sqrt(np.diag(C))
        W[l, :b, :b] = np.linalg.inv(np.linalg.cholesky(C / d[:, None] / d[None, :]))
    Mpad = np.concatenate([M.reshape(n, T * m), np.zeros((1, T * m))])
    ub = np.stack([np.where(idx < n, 1.0, 0.0),
                   np.take_along_axis(np.vstack([S, np.zeros((1, Lc))]), idx.T, 0).T], axis=2)
    yb = Mpad[idx]
    s1 = S.sum(0)
    lv_gram = np.stack([np.stack([np.full(Lc, float(n)), s1]),
                        np.stack([s1, (S * S).sum(0)])]).transpose(2, 0, 1)
    A1 = np.concatenate([np.ones((n, T, 1)), M], axis=2)
    trait_gram = np.einsum("ita,itb->tab", A1, A1)
    cross = np.einsum("il,itj->ltj", S, M)
    return dict(lv_gram=lv_gram, trait_gram=trait_gram, cross=cross, ub=ub, wub=W @ ub,
                yb=yb, wyb=W @ yb), (S, M, idx, W)


def test_gram_reference_is_the_whitened_gram():
    rng = np.random.default_rng(0)
    args, (S, M, idx, W) = _inputs(rng)
    G = k.gls_gram_reference(**args)
    n, T, m = M.shape
    for l in range(S.shape[1]):
        blk = idx[l][idx[l] < n]
        Wfull = np.eye(n)
        Wfull[np.ix_(blk, blk)] = W[l, :blk.size, :blk.size]
        for t in range(T):
            A = np.column_stack([np.ones(n), S[:, l], M[:, t, :]])
            np.testing.assert_allclose(G[l, t], (Wfull @ A).T @ (Wfull @ A), rtol=1e-12,
                                       atol=1e-12)


@pytest.mark.parametrize("m", [1, 3, 5])
def test_gram_cpu_equals_reference(m):
    args, _ = _inputs(np.random.default_rng(m), m=m)
    np.testing.assert_allclose(k.gls_gram_cpu(**args), k.gls_gram_reference(**args),
                               rtol=1e-13, atol=1e-12)


@pytest.mark.sim
@pytest.mark.parametrize("m", [1, 3])
def test_gram_cuda_equals_reference(m):
    args, _ = _inputs(np.random.default_rng(10 + m), m=m)
    np.testing.assert_allclose(k.gls_gram_cuda(**args), k.gls_gram_reference(**args),
                               rtol=1e-13, atol=1e-12)


def _grams(rng, N=40, q=4, n=60):
    G = np.empty((N, q, q))
    for i in range(N):
        A = np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
        A[:, -1] += 0.3 * A[:, 1] * (i % 3)  # some real signal in the LV column
        G[i] = A.T @ A
    return G, np.full(N, float(n))


def test_stats_cpu_equals_reference_and_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(1)
    n = 60
    A = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    A[:, -1] += 0.5 * A[:, 1]
    G = (A.T @ A)[None]
    fit = sm.OLS(A[:, -1], A[:, :-1]).fit()
    out = k.gls_stats_cpu(G, n)
    np.testing.assert_allclose(out[:, 0], [fit.params[1], fit.bse[1], fit.tvalues[1],
                                           fit.pvalues[1], fit.pvalues[1] / 2], rtol=1e-10)
    G, nn = _grams(rng)
    np.testing.assert_allclose(k.gls_stats_cpu(G, nn), k.gls_stats_reference(G, nn),
                               rtol=1e-10, atol=1e-300)


@pytest.mark.sim
def test_stats_cuda_equals_reference():
    G, nn = _grams(np.random.default_rng(2), N=30)
    np.testing.assert_allclose(k.gls_stats_cuda(G, nn), k.gls_stats_reference(G, nn),
                               rtol=1e-10, atol=1e-300)


def test_stats_singular_design_is_nan():
    G = np.zeros((1, 3, 3))
    G[0] = [[10, 10, 1], [10, 10, 1], [1, 1, 5]]  # s == intercept
    assert np.isnan(k.gls_stats_cpu(G, 10)).all()
    assert np.isnan(k.gls_stats_reference(G, 10)).all()


@pytest.mark.parametrize("df", [1, 2, 5.5, 30, 300, 6419, 100_000])
def test_student_t_tail_matches_scipy(df):
    t = np.concatenate([np.random.default_rng(3).normal(0, 4, 3000),
                        [0.0, 1e-6, -1e-6, 8.0, -8.0, 25.0, 60.0]])
    ref = stdtr(df, -t)
    ours = k.student_t_sf_cpu(t, df)
    ok = ref > 1e-280
    # scipy itself loses accuracy near t = 0 for df = 1; elsewhere we agree to 1e-9 or better
    tol = 1e-9 if df == 1 else 1e-10
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=tol, atol=0)
    assert k.student_t_sf_cpu(np.inf, df) == 0 and k.student_t_sf_cpu(-np.inf, df) == 1
    assert np.isnan(k.student_t_sf_cpu(np.nan, df))


@pytest.mark.sim
def test_student_t_tail_cuda():
    t = np.random.default_rng(4).normal(0, 5, 300)
    df = np.full(300, 6419.0)
    np.testing.assert_allclose(k.student_t_sf_cuda(t, df), stdtr(df, -t), rtol=1e-10)



@pytest.mark.gpu
def test_gpu_kernels_on_device():
    import cupy as cp

    assert HAS_GPU and HAS_CUPY
    args, _ = _inputs(np.random.default_rng(5), Lc=8, T=300, m=5, bmax=70, n=500)
    G = k.gls_gram_cuda(**{a: cp.asarray(v) for a, v in args.items()})
    np.testing.assert_allclose(G.get(), k.gls_gram_reference(**args), rtol=1e-12, atol=1e-10)
    Gs, nn = _grams(np.random.default_rng(6), N=2000, q=7)
    np.testing.assert_allclose(k.gls_stats_cuda(cp.asarray(Gs), cp.asarray(nn)).get(),
                               k.gls_stats_reference(Gs, nn), rtol=1e-10, atol=1e-300)
