"""GLS kernels: the batched block-whitened Gram matrices and the fused regression statistics.

PhenoPLIER's model for one LV ℓ and one trait (see ``gpu_engine.gls``) is a GLS regression of
y on the columns ``[1, s, c_1 … c_k]`` with error covariance R_ℓ. With W any whitener
(WᵀW = R_ℓ⁻¹) and A = [1, s, C, y] (n × q, q = k + 3), everything the fit needs is the q × q
whitened Gram matrix G = (WA)ᵀ(WA). Two kernels compute it and use it:

``gls_gram``
    Assemble G for a chunk of ``Lc`` LVs × ``T`` traits. In sub-matrix mode R_ℓ is the identity
    outside a block B_ℓ of the LV's top genes, so with W_B = chol(R_BB)⁻¹

        G = AᵀA − A_BᵀA_B + (W_B A_B)ᵀ(W_B A_B).

    Inputs (float64):

    - ``lv_gram`` (Lc, 2, 2): ``[1, s]ᵀ[1, s]`` over all genes;
    - ``trait_gram`` (T, m+1, m+1): ``[1, C, y]ᵀ[1, C, y]`` over all genes (m = k + 1);
    - ``cross`` (Lc, T, m): ``sᵀ[C, y]`` over all genes;
    - ``ub``, ``wub`` (Lc, b, 2): the block rows of ``[1, s]``, raw and whitened;
    - ``yb``, ``wyb`` (Lc, b, T·m): the block rows of ``[C, y]`` (trait t's column j at
      ``t·m + j``), raw and whitened.

    Rows of the block beyond an LV's block size are zero padding (they add nothing). Full mode
    passes the whitened products in the first three inputs and a zero block. Output
    ``G`` (Lc, T, q, q) with columns ordered ``[1, s, c_1 … c_k, y]``.

``gls_stats``
    For each Gram matrix G (N, q, q): β = (XᵀX)⁻¹Xᵀy by Cholesky, σ² = (yᵀy − βᵀXᵀy)/(n − p)
    with p = q − 1, se(β_s) = √(σ²·[(XᵀX)⁻¹]_ss), t = β_s/se, two-sided p = 2·T_df(−|t|) and
    one-sided p = T_df(−t) (H1: β_s > 0), df = n − p — statsmodels' GLS. The Student t tail is
    the regularized incomplete beta function by its continued fraction (shared by the CPU and
    CUDA kernels; the reference uses ``scipy.special.stdtr``). A singular design gives NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numba import float64, njit, prange

from ._arrays import array_module
from ._cuda import LazyCuda

cuda = LazyCuda()  # numba.cuda is imported when a CUDA kernel is first used

MAX_Q = 16  # largest Gram matrix the kernels solve: intercept, LV, ≤ 13 covariates, y
_WORK_COLS = MAX_Q + 3  # scratch of one regression: factor, z, β, L⁻¹e
THREADS = 128
_EPS = 1e-16
_TINY = 1e-300
_MAX_ITER = 20000
_SINGULAR = 1e-10  # a Cholesky pivot below this fraction of its column's norm² is singular


# --------------------------------------------------------------------- Student t tail
def _betacf(a, b, x):
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _TINY:
        d = _TINY
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITER):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            break
    return h


def _stirling_rest(x):
    """lgamma(x) − [(x − ½)·log x − x + ½·log 2π] for x ≥ 25 (error < 1e-16)."""
    x2 = x * x
    return (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - (1.0 / 1680.0 - 1.0 / (1188.0 * x2))
                                          / x2) / x2) / x2) / x


def _log_beta_half(a):
    """log B(a, ½) = lgamma(a) + lgamma(½) − lgamma(a + ½), without the cancellation of
    three lgamma calls when a is large (a = df/2 is ~3,200 in PhenoPLIER's regressions)."""
    if a < 25.0:
        return math.lgamma(a) + math.lgamma(0.5) - math.lgamma(a + 0.5)
    diff = ((a - 0.5) * math.log1p(0.5 / a) + 0.5 * math.log(a + 0.5) - 0.5
            + _stirling_rest(a + 0.5) - _stirling_rest(a))  # lgamma(a + ½) − lgamma(a)
    return math.lgamma(0.5) - diff


def _student_t_sf(t, df):
    """P(T > t) for Student's t with ``df`` degrees of freedom (float64 scalars)."""
    if math.isnan(t) or math.isnan(df) or df <= 0.0:
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    t2 = t * t
    if t2 == 0.0:
        return 0.5
    # I_x(df/2, 1/2) with x = df/(df + t²) and 1 − x = t²/(df + t²), each computed directly
    a = 0.5 * df
    b = 0.5
    x = df / (df + t2)
    y = t2 / (df + t2)
    lfront = (-_log_beta_half(a) - a * math.log1p(t2 / df)
              + b * (math.log(t2) - math.log(df + t2)))
    if x < (a + 1.0) / (a + b + 2.0):
        tail = 0.5 * math.exp(lfront) * _betacf(a, b, x) / a  # = P(|T| > |t|) / 2
    else:
        tail = 0.5 * (1.0 - math.exp(lfront) * _betacf(b, a, y) / b)
    return tail if t > 0 else 1.0 - tail


# --------------------------------------------------------------------- one regression
def _solve_gram(G, p, col, n, work):
    """β_col, se, t, p two-sided, p one-sided from one q × q Gram matrix ``G`` (q = p + 1).

    ``work`` is a p × (p + 3) scratch array: the Cholesky factor, then z, β and L⁻¹e_col.
    """
    for i in range(p):
        for j in range(i + 1):
            s = G[i, j]
            for k in range(j):
                s -= work[i, k] * work[j, k]
            if i == j:
                if not s > _SINGULAR * G[i, i]:  # collinear column: relative pivot ~ 0
                    return math.nan, math.nan, math.nan, math.nan, math.nan
                work[i, i] = math.sqrt(s)
            else:
                work[i, j] = s / work[j, j]
    zc = p
    bc = p + 1
    wc = p + 2
    for i in range(p):  # L z = Xᵀy
        s = G[i, p]
        for k in range(i):
            s -= work[i, k] * work[k, zc]
        work[i, zc] = s / work[i, i]
    for i in range(p - 1, -1, -1):  # Lᵀ β = z
        s = work[i, zc]
        for k in range(i + 1, p):
            s -= work[k, i] * work[k, bc]
        work[i, bc] = s / work[i, i]
    inv_cc = 0.0
    for i in range(p):  # L w = e_col; [(XᵀX)⁻¹]_col,col = ‖w‖²
        s = 1.0 if i == col else 0.0
        for k in range(i):
            s -= work[i, k] * work[k, wc]
        w = s / work[i, i]
        work[i, wc] = w
        inv_cc += w * w
    rss = G[p, p]
    for i in range(p):
        rss -= work[i, bc] * G[i, p]
    if rss < 0.0:
        rss = 0.0
    df = n - p
    beta = work[col, bc]
    se = math.sqrt(rss / df * inv_cc) if df > 0 else math.nan
    if not se > 0.0:
        return beta, se, math.nan, math.nan, math.nan
    t = beta / se
    tail = _student_t_sf(abs(t), float(df))  # P(T > |t|)
    return beta, se, t, 2.0 * tail, (tail if t >= 0 else 1.0 - tail)


def _retarget(fn, namespace):
    """A copy of ``fn`` whose global names resolve in ``namespace``, so that one Python source
    compiles for the CPU (calling njit functions) and for CUDA (calling device functions)."""
    import types

    return types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__,
                              fn.__closure__)


def _compile(decorate):
    ns = dict(globals())
    for name in ("_betacf", "_stirling_rest", "_log_beta_half"):
        ns[name] = decorate(_retarget(globals()[name], ns))
    ns["_student_t_sf"] = decorate(_retarget(_student_t_sf, ns))
    return ns["_student_t_sf"], decorate(_retarget(_solve_gram, ns))


_student_t_sf_cpu, _solve_gram_cpu = _compile(njit)
_student_t_sf_cuda, _solve_gram_cuda = _compile(cuda.jit(device=True, inline="always"))


# --------------------------------------------------------------------- Student t: vectorized
def student_t_sf_reference(t, df):
    """``scipy.special.stdtr(df, -t)``: the reference tail."""
    from scipy.special import stdtr

    return stdtr(np.asarray(df, np.float64), -np.asarray(t, np.float64))


@njit(parallel=True, cache=True)
def _student_t_sf_cpu_kernel(t, df, out):
    for i in prange(t.size):
        out[i] = _student_t_sf_cpu(t[i], df[i])


def student_t_sf_cpu(t, df):
    """Numba CPU kernel: P(T > t) elementwise (``t`` and ``df`` broadcast, float64)."""
    t, df = (np.array(a, np.float64) for a in
             np.broadcast_arrays(np.asarray(t, np.float64), np.asarray(df, np.float64)))
    out = np.empty(t.shape)
    _student_t_sf_cpu_kernel(t.ravel(), df.ravel(), out.ravel())
    return out


@cuda.jit
def _student_t_sf_cuda_kernel(t, df, out):
    for i in range(cuda.grid(1), t.shape[0], cuda.gridsize(1)):
        out[i] = _student_t_sf_cuda(float64(t[i]), float64(df[i]))


def student_t_sf_cuda(t, df):
    """CUDA kernel: P(T > t) elementwise; ``t``, ``df`` 1-D float64 (cupy, or NumPy in the
    simulator) of the same length."""
    xp = array_module(t)
    out = xp.empty(t.shape[0], xp.float64)
    if t.shape[0]:
        _student_t_sf_cuda_kernel[_blocks(t.shape[0]), THREADS](t, df, out)
    return out


# --------------------------------------------------------------------- Gram assembly
def _gram_layout(m):
    return m + 2  # q: [1, s, C (m − 1 columns), y]


def gls_gram_reference(lv_gram, trait_gram, cross, ub, wub, yb, wyb):
    """The definition in NumPy: ``G`` (Lc, T, q, q)."""
    Lc, T, m = cross.shape
    q = _gram_layout(m)
    G = np.zeros((Lc, T, q, q))
    tg_idx = [0] + list(range(2, q))  # trait_gram index -> column of G
    G[:, :, 0:2, 0:2] = lv_gram[:, None]
    for a, ca in enumerate(tg_idx):
        for b, cb in enumerate(tg_idx):
            G[:, :, ca, cb] = trait_gram[None, :, a, b]
    G[:, :, 1, 2:] = cross
    G[:, :, 2:, 1] = cross
    bmax = yb.shape[1]
    raw = np.concatenate([np.broadcast_to(ub[:, :, None, :], (Lc, bmax, T, 2)),
                          yb.reshape(Lc, bmax, T, m)], axis=3)
    white = np.concatenate([np.broadcast_to(wub[:, :, None, :], (Lc, bmax, T, 2)),
                            wyb.reshape(Lc, bmax, T, m)], axis=3)
    G += np.einsum("lrta,lrtb->ltab", white, white) - np.einsum("lrta,lrtb->ltab", raw, raw)
    return G


@njit(parallel=True, cache=True)
def _gls_gram_cpu(lv_gram, trait_gram, cross, ub, wub, yb, wyb, G):
    Lc, T, m = cross.shape
    bmax = yb.shape[1]
    for l in prange(Lc):
        for t in range(T):
            G[l, t, 0, 0] = lv_gram[l, 0, 0]
            G[l, t, 0, 1] = lv_gram[l, 0, 1]
            G[l, t, 1, 0] = lv_gram[l, 1, 0]
            G[l, t, 1, 1] = lv_gram[l, 1, 1]
            for a in range(m + 1):
                ca = 0 if a == 0 else a + 1
                for b in range(m + 1):
                    cb = 0 if b == 0 else b + 1
                    G[l, t, ca, cb] = trait_gram[t, a, b]
            for j in range(m):
                G[l, t, 1, 2 + j] = cross[l, t, j]
                G[l, t, 2 + j, 1] = cross[l, t, j]
        # block corrections: rows outer, traits inner (streams yb / wyb)
        for r in range(bmax):
            u0 = ub[l, r, 0]
            u1 = ub[l, r, 1]
            w0 = wub[l, r, 0]
            w1 = wub[l, r, 1]
            if u0 == 0.0 and u1 == 0.0 and w0 == 0.0 and w1 == 0.0:
                continue  # padding row
            G_l = G[l]
            d00 = w0 * w0 - u0 * u0
            d01 = w0 * w1 - u0 * u1
            d11 = w1 * w1 - u1 * u1
            for t in range(T):
                Gt = G_l[t]
                Gt[0, 0] += d00
                Gt[0, 1] += d01
                Gt[1, 0] += d01
                Gt[1, 1] += d11
                base = t * m
                for a in range(m):
                    ya = yb[l, r, base + a]
                    wa = wyb[l, r, base + a]
                    d0 = w0 * wa - u0 * ya
                    d1 = w1 * wa - u1 * ya
                    Gt[0, 2 + a] += d0
                    Gt[2 + a, 0] += d0
                    Gt[1, 2 + a] += d1
                    Gt[2 + a, 1] += d1
                    for b in range(a + 1):
                        dab = wa * wyb[l, r, base + b] - ya * yb[l, r, base + b]
                        Gt[2 + a, 2 + b] += dab
                        if b != a:
                            Gt[2 + b, 2 + a] += dab
    return G


def gls_gram_cpu(lv_gram, trait_gram, cross, ub, wub, yb, wyb):
    """Numba CPU kernel (parallel over LVs): ``G`` (Lc, T, q, q)."""
    Lc, T, m = cross.shape
    G = np.empty((Lc, T, m + 2, m + 2))
    c = np.ascontiguousarray
    return _gls_gram_cpu(c(lv_gram), c(trait_gram), c(cross), c(ub), c(wub), c(yb), c(wyb), G)


@cuda.jit
def _gls_gram_cuda(lv_gram, trait_gram, cross, ub, wub, yb, wyb, G):
    # one thread per (LV, trait) pair; threads of a block are consecutive traits of one LV,
    # so reads of yb / wyb are coalesced
    Lc = cross.shape[0]
    T = cross.shape[1]
    m = cross.shape[2]
    bmax = yb.shape[1]
    for idx in range(cuda.grid(1), Lc * T, cuda.gridsize(1)):
        l = idx // T
        t = idx - l * T
        acc = cuda.local.array((MAX_Q, MAX_Q), dtype=float64)
        q = m + 2
        for a in range(q):
            for b in range(q):
                acc[a, b] = 0.0
        base = t * m
        for r in range(bmax):
            u0 = ub[l, r, 0]
            u1 = ub[l, r, 1]
            w0 = wub[l, r, 0]
            w1 = wub[l, r, 1]
            acc[0, 0] += w0 * w0 - u0 * u0
            acc[0, 1] += w0 * w1 - u0 * u1
            acc[1, 1] += w1 * w1 - u1 * u1
            for a in range(m):
                ya = yb[l, r, base + a]
                wa = wyb[l, r, base + a]
                acc[0, 2 + a] += w0 * wa - u0 * ya
                acc[1, 2 + a] += w1 * wa - u1 * ya
                for b in range(a, m):
                    acc[2 + a, 2 + b] += wa * wyb[l, r, base + b] - ya * yb[l, r, base + b]
        for a in range(q):
            for b in range(a, q):
                if b < 2:
                    v = lv_gram[l, a, b]
                elif a == 1:
                    v = cross[l, t, b - 2]
                else:
                    ta = 0 if a == 0 else a - 1
                    v = trait_gram[t, ta, b - 1]
                v += acc[a, b]
                G[l, t, a, b] = v
                G[l, t, b, a] = v


def gls_gram_cuda(lv_gram, trait_gram, cross, ub, wub, yb, wyb):
    """Launch the CUDA Gram kernel (cupy arrays, or NumPy in the simulator)."""
    xp = array_module(cross)
    Lc, T, m = cross.shape
    if m + 2 > MAX_Q:
        raise ValueError(f"at most {MAX_Q - 3} covariates are supported")
    G = xp.empty((Lc, T, m + 2, m + 2), xp.float64)
    c = xp.ascontiguousarray
    if Lc * T:
        _gls_gram_cuda[_blocks(Lc * T), THREADS](c(lv_gram), c(trait_gram), c(cross), c(ub),
                                                  c(wub), c(yb), c(wyb), G)
    return G


# --------------------------------------------------------------------- statistics
STAT_NAMES = ("beta", "beta_se", "t", "pvalue_twosided", "pvalue_onesided")


def gls_stats_reference(G, n, col=1):
    """The definition: NumPy solves and ``scipy.special.stdtr``. ``G`` (N, q, q), ``n``
    (N,) genes per regression. Returns a (5, N) array in :data:`STAT_NAMES` order."""
    from scipy.special import stdtr

    G = np.asarray(G, np.float64)
    N, q, _ = G.shape
    p = q - 1
    n = np.broadcast_to(np.asarray(n, np.float64), (N,))
    out = np.full((5, N), np.nan)
    for i in range(N):
        XtX, Xty, yty = G[i, :p, :p], G[i, :p, p], G[i, p, p]
        try:
            chol = np.linalg.cholesky(XtX)
        except np.linalg.LinAlgError:
            continue
        if (np.diag(chol) ** 2 <= _SINGULAR * np.diag(XtX)).any():
            continue
        inv = np.linalg.inv(XtX)
        beta = inv @ Xty
        rss = max(yty - beta @ Xty, 0.0)
        df = n[i] - p
        se = np.sqrt(rss / df * inv[col, col])
        t = beta[col] / se
        out[:, i] = beta[col], se, t, 2 * stdtr(df, -abs(t)), stdtr(df, -t)
    return out


@njit(parallel=True, cache=True)
def _gls_stats_cpu(G, n, col, out):
    N, q, _ = G.shape
    p = q - 1
    n_chunks = min(N, 256)
    for c in prange(n_chunks):
        work = np.empty((p, p + 3))
        for i in range(c, N, n_chunks):
            b, se, t, p2, p1 = _solve_gram_cpu(G[i], p, col, n[i], work)
            out[0, i] = b
            out[1, i] = se
            out[2, i] = t
            out[3, i] = p2
            out[4, i] = p1


def gls_stats_cpu(G, n, col=1):
    """Numba CPU kernel, parallel over regressions. Same output as the reference."""
    G = np.ascontiguousarray(G, np.float64)
    N = G.shape[0]
    n = np.ascontiguousarray(np.broadcast_to(np.asarray(n, np.float64), (N,)))
    out = np.empty((5, N))
    if N:
        _gls_stats_cpu(G, n, col, out)
    return out


@cuda.jit
def _gls_stats_cuda(G, n, col, out):
    N = G.shape[0]
    p = G.shape[1] - 1
    for i in range(cuda.grid(1), N, cuda.gridsize(1)):
        work = cuda.local.array((MAX_Q, _WORK_COLS), dtype=float64)
        b, se, t, p2, p1 = _solve_gram_cuda(G[i], p, col, n[i], work)
        out[0, i] = b
        out[1, i] = se
        out[2, i] = t
        out[3, i] = p2
        out[4, i] = p1


def gls_stats_cuda(G, n, col=1):
    """Launch the CUDA statistics kernel (cupy arrays, or NumPy in the simulator)."""
    xp = array_module(G)
    G = xp.ascontiguousarray(G, dtype=xp.float64)
    N, q, _ = G.shape
    if q > MAX_Q:
        raise ValueError(f"at most {MAX_Q - 3} covariates are supported")
    n = xp.broadcast_to(xp.asarray(n, dtype=xp.float64), (N,)).copy()
    out = xp.empty((5, N), xp.float64)
    if N:
        _gls_stats_cuda[_blocks(N), THREADS](G, n, col, out)
    return out


# --------------------------------------------------------------------- helpers
def _blocks(n_items: int) -> int:
    return max(1, min(65535, -(-n_items // THREADS)))


CUDA_SIGNATURES = {
    "_student_t_sf_cuda_kernel": ["void(float64[::1], float64[::1], float64[::1])"],
    "_gls_gram_cuda": [
        "void(float64[:, :, ::1], float64[:, :, ::1], float64[:, :, ::1], float64[:, :, ::1], "
        "float64[:, :, ::1], float64[:, :, ::1], float64[:, :, ::1], float64[:, :, :, ::1])"],
    "_gls_stats_cuda": [
        "void(float64[:, :, ::1], float64[::1], int64, float64[:, ::1])"],
}
