"""CCC kernels: the maximum adjusted Rand index over all partition pairs of two features,
for many feature pairs, from per-feature "atoms" (the atom-histogram formulation).

Every partition of a feature is a grouping of its atoms into contiguous ranges:

- numeric feature: atom = the number of distinct quantile thresholds (over all k) strictly
  below the sample's position rank/n; partition k groups atoms by how many of k's own
  thresholds lie below — exactly the reference's quantile labels;
- categorical feature: atom = category code, one partition (the identity grouping).

Inputs, for G features, n samples, P partitions per feature, W = widest grouping:

- ``atoms`` (G, n) int32; ``n_atoms`` (G,) int32;
- ``bounds`` (G, P, W + 1) int32: group g of partition p is atoms ``bounds[f, p, g] ..
  bounds[f, p, g + 1] − 1``; ``n_groups`` (G, P) int32;
- ``valid`` (G, P) bool: the partition exists and has more than one cluster (the reference
  skips the others, leaving ARI 0);
- ``sq`` (G, P) int64: Σ over groups of (group size)², the ARI's row/column constant;
- ``pairs`` (Q, 2) int64: feature pairs.

Per pair: the joint atom histogram H, its 2-D prefix sums, then for every (p, q) the
contingency sum of squares S = Σ n_ij² from the prefix sums and

    tp = S − n, fp = sq_y − S, fn = sq_x − S, tn = n² − fp − fn − S,
    ARI = 1 if fn = fp = 0 else (2·float(tp·tn − fn·fp)) / float((tp+fn)(fn+tn) + (tp+fp)(fp+tn)),

in exact integers — int64 products up to n = 50,000, 128-bit products (two uint64 halves)
beyond, to n < 2³¹ — then float(num) and float(den) correctly rounded: the reference's float
arithmetic on Python integers, bit for bit. Output:
the largest ARI (first maximum in row-major (p, q) order wins) clipped at 0 and its (p, q).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._arrays import array_module
from ._cuda import LazyCuda

cuda = LazyCuda()  # numba.cuda is imported when a CUDA kernel is first used

EXACT_INT64_SAMPLES = 50_000  # up to here tp·tn and the denominator stay below 2⁶³
MAX_SAMPLES = 2**31 - 1  # int32 atoms; n² < 2⁶² keeps tp, fp, fn, tn in int64
CUDA_MAX_ATOMS = 64   # the CUDA kernel keeps H in shared memory (64 × 64 int32)
THREADS = 128
_H_SIZE = (CUDA_MAX_ATOMS + 1) * (CUDA_MAX_ATOMS + 1)  # shared int64 histogram: 33 KB


_U32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_UMAX = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mul128(a, b):
    """(hi, lo) of the exact product of two uint64 < 2⁶³ (32-bit limbs; nothing wraps)."""
    a0, a1 = a & _U32, a >> _S32
    b0, b1 = b & _U32, b >> _S32
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> _S32) + (p01 & _U32) + (p10 & _U32)
    return p11 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32), (p00 & _U32) | ((mid & _U32) << _S32)


def _add128(ah, al, bh, bl):
    if al > _UMAX - bl:
        return ah + bh + _U1, al - (_UMAX - bl) - _U1
    return ah + bh, al + bl


def _sub128(ah, al, bh, bl):
    """a − b for a ≥ b."""
    if al >= bl:
        return ah - bh, al - bl
    return ah - bh - _U1, al + (_UMAX - bl) + _U1


def _float128(hi, lo):
    """The correctly rounded float of hi·2⁶⁴ + lo (hi < 2⁶²): shifted to 63 bits with a sticky
    bit, so that the one rounding of the uint64 → float conversion is the value's."""
    if hi == _U0:
        return float(lo)
    s = np.uint64(1)
    while (hi >> s) != _U0:
        s += _U1
    s += _U1  # bit length of hi plus one: the shifted value has 63 bits
    m = (hi << (np.uint64(64) - s)) | (lo >> s)
    if (lo & ((_U1 << s) - _U1)) != _U0:
        m |= _U1
    return float(m) * 2.0 ** float(s)


def _ari(S, n, sx, sy):
    tp = S - n
    fp = sy - S
    fn = sx - S
    tn = n * n - fp - fn - S
    if fn == 0 and fp == 0:
        return 1.0
    if n <= EXACT_INT64_SAMPLES:
        num = tp * tn - fn * fp
        den = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
        return (2.0 * float(num)) / float(den)
    # past 50,000 samples the products leave int64: exact 128-bit integers, as the
    # reference's Python integers, then the same two roundings (float(num), float(den))
    utp, ufp, ufn, utn = np.uint64(tp), np.uint64(fp), np.uint64(fn), np.uint64(tn)
    ah, al = _mul128(utp, utn)
    bh, bl = _mul128(ufn, ufp)
    if ah > bh or (ah == bh and al >= bl):
        h, lo = _sub128(ah, al, bh, bl)
        num = _float128(h, lo)
    else:
        h, lo = _sub128(bh, bl, ah, al)
        num = -_float128(h, lo)
    ch, cl = _mul128(utp + ufn, ufn + utn)
    dh, dl = _mul128(utp + ufp, ufp + utn)
    h, lo = _add128(ch, cl, dh, dl)
    return (2.0 * num) / _float128(h, lo)


def _with_helpers(fn, jit):
    """``fn`` with its 128-bit helpers replaced by ``jit``-compiled ones (one source for the
    CPU and CUDA kernels)."""
    import types

    names = ("_mul128", "_add128", "_sub128", "_float128")
    env = {**fn.__globals__, **{k: jit(fn.__globals__[k]) for k in names}}
    return types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__, fn.__closure__)


_ari_cpu = njit(inline="always", cache=True)(
    _with_helpers(_ari, lambda f: njit(inline="always", cache=True)(f)))
_ari_cuda = cuda.jit(device=True, inline="always")(
    _with_helpers(_ari, lambda f: cuda.jit(device=True, inline="always")(f)))


# --------------------------------------------------------------------- NumPy reference
def ari_reference(a: np.ndarray, b: np.ndarray) -> float:
    """ARI of two label vectors with Python integers (the reference's definition)."""
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    C = np.zeros((ka, kb), np.int64)
    np.add.at(C, (a, b), 1)
    n = int(a.size)
    S = int((C.astype(object) ** 2).sum())
    sx = int((C.sum(1).astype(object) ** 2).sum())
    sy = int((C.sum(0).astype(object) ** 2).sum())
    tp, fp, fn = S - n, sy - S, sx - S
    tn = n * n - fp - fn - S
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def ccc_pairs_reference(labels: np.ndarray, valid: np.ndarray, pairs: np.ndarray):
    """The definition on explicit partitions: ``labels`` (G, P, n) cluster labels, ``valid``
    (G, P); for each pair the max ARI over valid partition pairs (others 0), first maximum,
    clipped at 0. Returns (values (Q,), best (Q, 2))."""
    Q = len(pairs)
    val = np.zeros(Q)
    best = np.zeros((Q, 2), np.int64)
    P = labels.shape[1]
    for q in range(Q):
        i, j = pairs[q]
        res = np.zeros((P, P))
        for p in range(P):
            if not valid[i, p]:
                continue
            for r in range(P):
                if valid[j, r]:
                    res[p, r] = ari_reference(labels[i, p], labels[j, r])
        flat = int(res.argmax())
        best[q] = divmod(flat, P)
        val[q] = max(res.flat[flat], 0.0)
    return val, best


# --------------------------------------------------------------------- CPU
@njit(cache=True)
def _pair_cpu(ax, ay, mx, my, bx, by, ngx, ngy, vx, vy, sqx, sqy):
    """One pair: (max ARI clipped at 0, p, q) from the two features' atoms and groupings."""
    n = ax.shape[0]
    P = bx.shape[0]
    nn = np.int64(n)
    H = np.zeros((mx + 1, my + 1), np.int64)  # 2-D prefix sums of the joint histogram
    for s in range(n):
        H[ax[s] + 1, ay[s] + 1] += 1
    for a in range(1, mx + 1):
        for b in range(1, my + 1):
            H[a, b] += H[a - 1, b] + H[a, b - 1] - H[a - 1, b - 1]
    top = -np.inf
    bp = 0
    bq = 0
    for p in range(P):
        for r in range(P):
            v = 0.0
            if vx[p] and vy[r]:
                S = np.int64(0)
                for gi in range(ngx[p]):
                    a0 = bx[p, gi]
                    a1 = bx[p, gi + 1]
                    for gj in range(ngy[r]):
                        b0 = by[r, gj]
                        b1 = by[r, gj + 1]
                        c = H[a1, b1] - H[a0, b1] - H[a1, b0] + H[a0, b0]
                        S += c * c
                v = _ari_cpu(S, nn, sqx[p], sqy[r])
            if v > top:
                top = v
                bp = p
                bq = r
    return max(top, 0.0), bp, bq


@njit(parallel=True, cache=True)
def _ccc_pairs_cpu(atoms, n_atoms, bounds, n_groups, valid, sq, pairs, out, best):
    for q in prange(pairs.shape[0]):
        x = pairs[q, 0]
        y = pairs[q, 1]
        v, p, r = _pair_cpu(atoms[x], atoms[y], n_atoms[x], n_atoms[y], bounds[x], bounds[y],
                            n_groups[x], n_groups[y], valid[x], valid[y], sq[x], sq[y])
        out[q] = v
        best[q, 0] = p
        best[q, 1] = r


@njit(parallel=True, cache=True)
def _permutation_counts(atoms, n_atoms, bounds, n_groups, valid, sq, pairs, obs, perms,
                        counts):
    """For each pair, how many permutations of its second feature give CCC ≥ observed."""
    for q in prange(pairs.shape[0]):
        x = pairs[q, 0]
        y = pairs[q, 1]
        c = 0
        ay = atoms[y]
        for t in range(perms.shape[0]):
            v, _, _ = _pair_cpu(atoms[x], ay[perms[t]], n_atoms[x], n_atoms[y], bounds[x],
                                bounds[y], n_groups[x], n_groups[y], valid[x], valid[y],
                                sq[x], sq[y])
            if v >= obs[q]:
                c += 1
        counts[q] = c


def permutation_counts(atoms, n_atoms, bounds, n_groups, valid, sq, pairs, obs, perms):
    """CPU: per pair, #{permutations of the pair's second feature with CCC ≥ ``obs``}."""
    counts = np.zeros(len(pairs), np.int64)
    if len(pairs):
        _permutation_counts(atoms, n_atoms, bounds, n_groups, valid, sq,
                            np.ascontiguousarray(pairs, np.int64), obs, perms, counts)
    return counts


def ccc_pairs_cpu(atoms, n_atoms, bounds, n_groups, valid, sq, pairs):
    """Numba CPU kernel, parallel over pairs. Returns (values, best)."""
    out = np.zeros(len(pairs))
    best = np.zeros((len(pairs), 2), np.int64)
    if len(pairs):
        _ccc_pairs_cpu(atoms, n_atoms, bounds, n_groups, valid, sq,
                       np.ascontiguousarray(pairs, np.int64), out, best)
    return out, best


# --------------------------------------------------------------------- CUDA
@cuda.jit
def _ccc_pairs_cuda(atoms, n_atoms, bounds, n_groups, valid, sq, pairs, out, best):
    H = cuda.shared.array(_H_SIZE, dtype=np.int64)
    vals = cuda.shared.array(THREADS, dtype=np.float64)
    idx = cuda.shared.array(THREADS, dtype=np.int64)
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n = atoms.shape[1]
    P = bounds.shape[1]
    nn = np.int64(n)
    for q in range(cuda.blockIdx.x, pairs.shape[0], cuda.gridDim.x):
        x = pairs[q, 0]
        y = pairs[q, 1]
        mx = n_atoms[x]
        my = n_atoms[y]
        w = my + 1
        for e in range(tid, (mx + 1) * w, nt):
            H[e] = 0
        cuda.syncthreads()
        for s in range(tid, n, nt):
            cuda.atomic.add(H, (atoms[x, s] + 1) * w + atoms[y, s] + 1, 1)
        cuda.syncthreads()
        for a in range(1 + tid, mx + 1, nt):  # prefix along b, one row per thread
            for b in range(1, my + 1):
                H[a * w + b] += H[a * w + b - 1]
        cuda.syncthreads()
        for b in range(1 + tid, my + 1, nt):  # then along a
            for a in range(1, mx + 1):
                H[a * w + b] += H[(a - 1) * w + b]
        cuda.syncthreads()
        top = -math.inf
        ti = 0
        for e in range(tid, P * P, nt):  # e increases per thread: strict > keeps the first
            p = e // P
            r = e - p * P
            v = 0.0
            if valid[x, p] and valid[y, r]:
                S = np.int64(0)
                for gi in range(n_groups[x, p]):
                    a0 = bounds[x, p, gi]
                    a1 = bounds[x, p, gi + 1]
                    for gj in range(n_groups[y, r]):
                        b0 = bounds[y, r, gj]
                        b1 = bounds[y, r, gj + 1]
                        c = H[a1 * w + b1] - H[a0 * w + b1] - H[a1 * w + b0] + H[a0 * w + b0]
                        S += c * c
                v = _ari_cuda(S, nn, sq[x, p], sq[y, r])
            if v > top:
                top = v
                ti = e
        vals[tid] = top
        idx[tid] = ti
        cuda.syncthreads()
        if tid == 0:
            bv = vals[0]
            bi = idx[0]
            for t in range(1, nt):
                if vals[t] > bv or (vals[t] == bv and idx[t] < bi):
                    bv = vals[t]
                    bi = idx[t]
            out[q] = max(bv, 0.0)
            best[q, 0] = bi // P
            best[q, 1] = bi - (bi // P) * P
        cuda.syncthreads()


def ccc_pairs_cuda(atoms, n_atoms, bounds, n_groups, valid, sq, pairs, threads: int = THREADS):
    """CUDA kernel, one thread block per pair (grid-stride). Every feature must have at most
    ``CUDA_MAX_ATOMS`` atoms (numeric features have ≤ 32 with the default k range)."""
    xp = array_module(atoms)
    out = xp.zeros(len(pairs))
    best = xp.zeros((len(pairs), 2), xp.int64)
    if len(pairs):
        _ccc_pairs_cuda[min(len(pairs), 65535), threads](atoms, n_atoms, bounds, n_groups,
                                                         valid, sq, pairs, out, best)
    return out, best


CUDA_SIGNATURES = {
    "_ccc_pairs_cuda": [
        "void(int32[:, ::1], int32[::1], int32[:, :, ::1], int32[:, ::1], boolean[:, ::1], "
        "int64[:, ::1], int64[:, ::1], float64[::1], int64[:, ::1])"],
}
