"""CCC — the Clustermatch Correlation Coefficient (Pividori et al., Cell Systems 2024).

CCC(x, y) = max(0, max over k_x, k_y of ARI(π_kx(x), π_ky(y))), with quantile partitions
π_k (k = 2 … min(round(√n), 10) by default) of numeric features and the category partition of
categorical ones — the reference package ``ccc-coef``'s semantics, reproduced bit for bit:

- π_k: average ranks r, position r/n, thresholds (1.0/k)·i; label = number of thresholds
  strictly below the position (ties never split, labels of empty bins are skipped);
- a partition with one cluster is not compared (ARI 0); a numeric feature whose k = 2
  partition has one cluster (a constant feature) gives NaN for all its pairs (reported in
  ``constant_``-style attributes of :func:`ccc_details`);
- the ARI from the contingency table with exact integers; the first maximum in (k_x, k_y)
  order is the reported best pair of partitions.

Computation (``gpu_engine.kernels.ccc``): one small integer "atom" per sample and feature;
every partition is a contiguous grouping of atoms, so each pair needs one joint atom
histogram and its prefix sums, from which all contingency tables' sums of squares follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError, preview

__all__ = ["ccc", "k_values", "prepare", "Features", "iter_blocks"]


def k_values(n: int, *, k_max: int = 10, n_clusters=None) -> np.ndarray:
    """The k of the partitions: 2 … min(round(√n), ``k_max``), or the explicit
    ``n_clusters`` (an int K → 2 … K, or a list; values outside 2 … n − 1 dropped). Empty
    when no k fits, as the reference's ``get_range_n_clusters`` (:func:`prepare` then
    refuses the data)."""
    if n_clusters is not None:
        ks = range(2, n_clusters + 1) if isinstance(n_clusters, (int, np.integer)) \
            else n_clusters
        out = sorted({int(k) for k in ks if 1 < k < n})
    else:
        out = list(range(2, min(int(np.round(np.sqrt(n))), k_max) + 1))
    return np.array(out, np.int64)


def thresholds(k: int) -> list[float]:
    """The reference's quantile thresholds of partition k, in float64: (1.0/k)·i."""
    return [(1.0 / k) * i for i in range(1, k)]


@dataclass
class Features:
    """Prepared features (see ``gpu_engine.kernels.ccc`` for the arrays' meaning)."""

    atoms: np.ndarray
    n_atoms: np.ndarray
    bounds: np.ndarray
    n_groups: np.ndarray
    valid: np.ndarray
    sq: np.ndarray
    numeric: np.ndarray
    constant: np.ndarray  # numeric features whose k = 2 partition is a single cluster
    ks: np.ndarray
    names: list

    @property
    def n(self) -> int:
        return self.atoms.shape[1]

    def labels(self) -> np.ndarray:
        """(G, P, n) int16 partitions in the reference's encoding: −1 for a categorical
        feature's unused rows, −2 for a one-cluster numeric partition."""
        G, P = self.valid.shape
        out = np.full((G, P, self.n), -1, np.int16)
        for f in range(G):
            for p in range(P):
                if not self.numeric[f] and p > 0:
                    continue
                m = self.n_atoms[f]
                lut = np.repeat(np.arange(self.n_groups[f, p]),
                                np.diff(self.bounds[f, p, :self.n_groups[f, p] + 1]))[:m]
                lab = lut[self.atoms[f]]
                if self.numeric[f] and not self.valid[f, p]:
                    lab = np.full(self.n, -2)
                out[f, p] = lab
        return out


def _as_features(x, y=None):
    """(list of 1-D arrays, numeric flags, names) from the reference's input conventions:
    x and y 1-D → two features; a 2-D NumPy (or cupy) array → rows are features; a DataFrame →
    columns are features (numeric or categorical)."""
    if y is not None:
        x, y = np.asarray(_host(x)), np.asarray(_host(y))
        if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
            raise InputError(f"CCC: x and y must be 1-D of the same length, got shapes "
                             f"{x.shape} and {y.shape}")
        cols, names = [x, y], ["x", "y"]
    elif isinstance(x, pd.DataFrame):
        cols = [x.iloc[:, j].to_numpy() for j in range(x.shape[1])]
        names = list(x.columns)
    else:
        X = np.asarray(_host(x))
        if X.ndim != 2:
            raise InputError("CCC: give a 2-D features × samples array (or a DataFrame with "
                             f"features as columns), or two 1-D arrays; got {X.ndim}-D")
        if X.dtype.kind not in "fiu":
            raise InputError("CCC: a 2-D array must be numeric; use a DataFrame to mix "
                             "numeric and categorical features")
        cols, names = list(X), list(range(X.shape[0]))
    numeric = np.array([c.dtype.kind in "fiu" for c in cols])
    for c, num, name in zip(cols, numeric, names):
        if num and not np.isfinite(c.astype(np.float64)).all():
            raise InputError(f"CCC: feature {name!r} has NaN or infinite values; CCC is not "
                             "defined for them (the reference silently returns wrong values): "
                             "remove or impute them first")
        if not num and pd.isna(c).any():
            raise InputError(f"CCC: categorical feature {name!r} has missing values; encode "
                             "them as their own category or drop those samples")
    return cols, numeric, names


def _host(a):
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return a


def prepare(x, y=None, *, k_max: int = 10, n_clusters=None) -> Features:
    """Atoms and partition groupings of every feature."""
    from scipy.stats import rankdata

    cols, numeric, names = _as_features(x, y)
    G = len(cols)
    n = len(cols[0]) if G else 0
    if n <= 2:
        raise InputError(f"CCC: needs more than 2 samples, got {n}")
    ks = k_values(n, k_max=k_max, n_clusters=n_clusters)
    if not ks.size:
        raise InputError(f"CCC: too few samples ({n}) for any partition with k ≥ 2; it "
                         "needs at least 3 (at least 7 with the default k range)")
    P = len(ks)
    T = {k: thresholds(int(k)) for k in ks}
    U = np.unique(np.concatenate([np.asarray(t, np.float64) for t in T.values()]))
    m_num = U.size + 1
    cat_codes = {}
    for f in np.flatnonzero(~numeric):
        _, codes = np.unique(cols[f].astype(str) if cols[f].dtype == object else cols[f],
                             return_inverse=True)
        cat_codes[f] = codes.astype(np.int32)
    W = max([int(ks.max())] + [int(c.max()) + 1 for c in cat_codes.values()])
    atoms = np.zeros((G, n), np.int32)
    n_atoms = np.full(G, m_num, np.int32)
    bounds = np.zeros((G, P, W + 1), np.int32)
    n_groups = np.zeros((G, P), np.int32)
    valid = np.zeros((G, P), bool)
    sq = np.zeros((G, P), np.int64)
    num_idx = np.flatnonzero(numeric)
    if num_idx.size:
        X = np.vstack([cols[f].astype(np.float64) for f in num_idx])
        pos = rankdata(X, axis=1, method="average") / n
        atoms[num_idx] = np.searchsorted(U, pos, side="left")
        for p, k in enumerate(ks):
            b = np.concatenate([[0], np.searchsorted(U, T[k]) + 1, [m_num]])
            bounds[num_idx, p, :k + 1] = b
            n_groups[num_idx, p] = k
    for f in num_idx:
        counts = np.bincount(atoms[f], minlength=m_num)
        cum = np.concatenate([[0], np.cumsum(counts)])
        for p, k in enumerate(ks):
            g = np.diff(cum[bounds[f, p, :k + 1]])
            sq[f, p] = int((g.astype(np.int64) ** 2).sum())
            valid[f, p] = np.count_nonzero(g) > 1
    for f, codes in cat_codes.items():
        c = int(codes.max()) + 1
        atoms[f] = codes
        n_atoms[f] = c
        bounds[f, 0, :c + 1] = np.arange(c + 1)
        n_groups[f, 0] = c
        valid[f, 0] = True
        sq[f, 0] = int((np.bincount(codes).astype(np.int64) ** 2).sum())
    constant = numeric & ~valid[:, 0]
    return Features(atoms, n_atoms, bounds, n_groups, valid, sq, numeric, constant, ks, names)


def pair_index(G: int, start: int, stop: int) -> np.ndarray:
    """Feature pairs (i, j), i < j, at condensed positions ``start … stop − 1`` (scipy's
    ``squareform`` order)."""
    idx = np.arange(start, stop, dtype=np.int64)
    r = np.arange(G, dtype=np.int64)
    row_start = r * (2 * G - r - 1) // 2
    i = np.searchsorted(row_start, idx, side="right") - 1
    return np.column_stack([i, idx - row_start[i] + i + 1])


def _run_pairs(F: Features, pairs: np.ndarray, be, kernel: str | None):
    from ..kernels import ccc as kc
    from ..kernels import registry

    impl = registry.implementation(be, kernel)
    if impl == "reference":
        return kc.ccc_pairs_reference(F.labels(), F.valid, pairs)
    if impl == "cuda" and int(F.n_atoms.max()) > kc.CUDA_MAX_ATOMS:
        impl = registry.fallback("ccc_pairs", f"a feature has more than {kc.CUDA_MAX_ATOMS} "
                                 "distinct-value atoms, beyond the CUDA kernel's shared memory")
    args = (F.atoms, F.n_atoms, F.bounds, F.n_groups, F.valid, F.sq, pairs)
    v, b = registry.call("ccc_pairs", be, *args, kernel=impl)
    return be.to_host(v), be.to_host(b)


def _block(start, stop, *, F, backend, kernel, n_perms, seed):
    from ..backend import get_backend

    be = get_backend(backend)
    pairs = pair_index(len(F.names), start, stop)
    v, b = _run_pairs(F, pairs, be, kernel)
    bad = F.constant[pairs[:, 0]] | F.constant[pairs[:, 1]]
    v[bad] = np.nan
    b[bad] = 0
    pv = None
    if n_perms:
        from ..kernels import ccc as kc

        # permute the feature with more partitions (the second on ties), as the reference
        nv = F.valid.sum(1)
        swap = nv[pairs[:, 0]] > nv[pairs[:, 1]]
        pp = np.where(swap[:, None], pairs[:, ::-1], pairs)
        rng = np.random.default_rng([seed, start])
        perms = np.stack([rng.permutation(F.n) for _ in range(n_perms)])
        cnt = kc.permutation_counts(F.atoms, F.n_atoms, F.bounds, F.n_groups, F.valid, F.sq,
                                    pp, np.nan_to_num(v, nan=np.inf), perms)
        pv = np.where(bad, np.nan, (cnt + 1) / (n_perms + 1))
    return v, b, pv


def iter_blocks(F: Features, *, block_pairs: int = 1_000_000, backend=None, client=None,
                kernel: str | None = None, pvalue_n_perms: int = 0, seed: int = 0,
                progress: bool = False):
    """Yield ``(start, values, best, pvalues)`` per block of condensed positions, in order —
    the whole result never needs to be held (the CLI writes blocks as they come)."""
    from ..backend import get_backend
    from ..distributed import map_tasks

    be = get_backend(backend)
    G = len(F.names)
    total = G * (G - 1) // 2
    starts = list(range(0, total, block_pairs))
    tasks = [(s, min(s + block_pairs, total)) for s in starts]
    shared = {"F": F, "backend": be.name, "kernel": kernel, "n_perms": pvalue_n_perms,
              "seed": seed}
    if client is None:
        from ..progress import track

        for s, e in track(tasks, "CCC pair blocks", enabled=progress):
            v, b, pv = _block(s, e, **shared)
            yield s, v, b, pv
        return
    for (s, _), (v, b, pv) in zip(tasks, map_tasks(_block, tasks, shared=shared, client=client,
                                                   progress=progress,
                                                   description="CCC pair blocks")):
        yield s, v, b, pv


def ccc(x, y=None, internal_n_clusters=None, return_parts: bool = False,
        n_chunks_threads_ratio: int = 1, n_jobs: int | None = None, pvalue_n_perms=None,
        partitioning_executor: str = "thread", *, k_max: int = 10, n_clusters=None,
        seed: int = 0, backend=None, client=None, block_pairs: int = 1_000_000,
        kernel: str | None = None, progress: bool = False):
    """CCC of every pair of features, in ``ccc-coef``'s conventions.

    ``x``: features × samples (2-D NumPy / cupy, numeric) or a DataFrame with features as
    columns (numeric or categorical); or ``x``, ``y`` two 1-D features. Returns the condensed
    vector of the G(G − 1)/2 pairs in ``squareform`` order (a float for two features); with
    ``pvalue_n_perms`` > 0 the values are ``(ccc, pvalues)`` (the feature with more partitions
    permuted, p = (#{perm ≥ obs} + 1)/(N + 1), seeded by ``seed``); with ``return_parts``
    also the best partition indices (Q, 2) and the partitions (G, P, n) as the reference.
    ``k_max`` caps the default k range; ``n_clusters`` gives it explicitly (the reference's
    ``internal_n_clusters``). NaN input is an error.

    The reference's signature is accepted as it is, positions included, so that code
    written for ccc-coef runs unchanged: ``internal_n_clusters`` (= ``n_clusters``),
    ``pvalue_n_perms`` (None = 0), ``n_jobs`` (the CPU kernel's threads for this call; None
    or ≤ 0: all cores), ``n_chunks_threads_ratio`` and ``partitioning_executor`` (how the
    reference splits its own work; they have no meaning here and are ignored). Up to
    2³¹ − 1 samples, bit for bit (exact 128-bit integers in the ARI beyond 50,000).
    """
    from ..kernels.ccc import MAX_SAMPLES

    if internal_n_clusters is not None:
        if n_clusters is not None:
            raise InputError("CCC: give internal_n_clusters or n_clusters, not both")
        n_clusters = internal_n_clusters
    pvalue_n_perms = int(pvalue_n_perms or 0)
    if n_jobs is not None and n_jobs > 0:
        from ..threads import limit_threads

        with limit_threads(n_jobs):
            return ccc(x, y, None, return_parts, pvalue_n_perms=pvalue_n_perms, k_max=k_max,
                       n_clusters=n_clusters, seed=seed, backend=backend, client=client,
                       block_pairs=block_pairs, kernel=kernel, progress=progress)

    F = prepare(x, y, k_max=k_max, n_clusters=n_clusters)
    if F.n > MAX_SAMPLES:
        raise InputError(f"CCC: {F.n:,} samples; the exact integer ARI supports up to "
                         f"{MAX_SAMPLES:,}")
    G = len(F.names)
    total = G * (G - 1) // 2
    vals = np.empty(total)
    best = np.zeros((total, 2), np.uint64)
    pv = np.empty(total) if pvalue_n_perms else None
    for s, v, b, p in iter_blocks(F, block_pairs=block_pairs, backend=backend, client=client,
                                  kernel=kernel, pvalue_n_perms=pvalue_n_perms, seed=seed,
                                  progress=progress):
        vals[s:s + len(v)] = v
        best[s:s + len(v)] = b
        if pv is not None:
            pv[s:s + len(v)] = p
    if F.constant.any():
        import logging

        logging.getLogger(__name__).info(
            "CCC: %d constant feature(s), their pairs are NaN: %s", int(F.constant.sum()),
            preview([F.names[i] for i in np.flatnonzero(F.constant)]))
    out = vals[0] if total == 1 else vals
    if pv is not None:
        out = (out, pv[0] if total == 1 else pv)
    if return_parts:
        return out, (best[0] if total == 1 else best), F.labels()
    return out
