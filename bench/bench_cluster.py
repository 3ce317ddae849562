"""Trait clustering: the whole ensemble + consensus, and its two steps that changed algorithm.

Data: traits × LVs with planted clusters (30 clusters of unequal size, each shifted on a few
LVs, in Gaussian noise). Sizes: ``quick`` 600 traits × 200 LVs; ``full`` the reference's
3,752 traits × 987 LVs.

Cases:
- ``SCC consensus``: spectral clustering of exp(−D²/2δ²) for 4 δ × k = 2…K. Baseline:
  scikit-learn's ``SpectralClustering`` per (δ, k), as the reference ran it, timed on 3 of
  them and extrapolated; ours: one eigendecomposition per δ (labels equal scikit-learn's —
  ``max_abs_diff`` is 1 − ARI of the sampled partitions).
- ``agreement``: weighted ARI of every consensus partition with every ensemble member.
  Baseline: scikit-learn's ``adjusted_rand_score`` member by member, timed on 3 partitions
  and extrapolated; ours: all members at once.
- ``ensemble members, thread policy``: k-means and GMM members on 600 traits × 50 PCA
  components, each member with every thread pool at the machine's core count (baseline: what
  ran before the policy) vs limited to one thread per member (ours: ``gpu_engine.threads``).
  Identical partitions (``max_abs_diff`` 0). Run it once on a quiet machine and once beside
  other work (e.g. another process busy on one core) — the case the policy is for.
- ``ensemble + consensus``: the whole pipeline (5 families × ≤ 295 members, co-association,
  EAC + SCC consensus, agreement, selection), our time only; ``max_abs_diff`` is 1 − ARI of
  the selected partition with the planted clusters. The co-association kernel itself is
  compared in ``bench_coassoc``. Representations: z-score and PCA at ``quick``; PCA only at
  ``full`` on the cpu backend, where the z-score members alone (987 dimensions: k-means ~3 s,
  a full-covariance GMM ~21 s per member on 2 cores) would take about two hours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gpu_engine.benchmarking import Case

SIZES = {"quick": (600, 200), "full": (3752, 987)}


def make_traits(n: int, n_lv: int, n_clusters: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = rng.dirichlet(np.full(n_clusters, 2.0)) * n
    y = np.repeat(np.arange(n_clusters), np.maximum(1, np.round(sizes).astype(int)))[:n]
    y = np.concatenate([y, np.full(n - len(y), n_clusters - 1)])
    X = rng.normal(size=(n, n_lv))
    for c in range(n_clusters):
        lvs = rng.choice(n_lv, 5, replace=False)
        X[np.ix_(y == c, lvs)] += rng.normal(0, 3.0, 5)
    return pd.DataFrame(X, index=[f"trait{i}" for i in range(n)],
                        columns=[f"LV{j + 1}" for j in range(n_lv)]), y


def cases(size: str, backend) -> list[Case]:
    from scipy.spatial.distance import squareform
    from sklearn.cluster import SpectralClustering
    from sklearn.metrics import adjusted_rand_score

    from gpu_engine.cluster import ClusterEnsemble, coassociation, consensus, select
    from gpu_engine.cluster.consensus import SCC_DELTAS, _Members

    n, n_lv = SIZES[size]
    X, y = make_traits(n, n_lv)
    shape = {"traits": n, "lvs": n_lv}
    K = int(round(np.sqrt(n)))
    ks = list(range(2, K + 1))
    reps = ("pca",) if size == "full" and not backend.is_gpu else ("z_score", "pca")
    ens = ClusterEnsemble(backend=backend.name, representations=reps,
                          family_size=295 if size == "full" else 100)

    def pipeline():
        e = ens.fit(X)
        table, parts = consensus(e.partitions_, backend=backend)
        best = select(table)
        return e, parts[table.index.get_loc(best.index[0])]

    out = [Case(f"ensemble + consensus, {backend.name}", shape, None, pipeline,
                "none (reference: a cluster run)", f"gpu_engine {backend.name}", backend.name,
                lambda _, r: 1.0 - adjusted_rand_score(y, r[1]),
                {"check": "max_abs_diff = 1 − ARI(selected, planted)",
                 "families": "kmeans, spectral, gmm, agglomerative, dbscan",
                 "representations": ", ".join(reps)},
                repeats=1, warmup=0 if size == "full" else None,
                baseline_recorded_s=float("nan"))]

    # the thread policy for many small fits (members on the quick size, whatever the size)
    import os

    Xq = make_traits(600, 50)[0]
    small = ClusterEnsemble(families=("kmeans", "gmm"), representations=("pca",), k_max=20,
                            n_seeds=2, family_size=1000, backend="cpu")

    def members_with(threads):
        old = os.environ.get("GPU_ENGINE_TASK_THREADS")
        os.environ["GPU_ENGINE_TASK_THREADS"] = str(threads)
        try:
            return small.fit(Xq).partitions_.copy()
        finally:
            if old is None:
                os.environ.pop("GPU_ENGINE_TASK_THREADS")
            else:
                os.environ["GPU_ENGINE_TASK_THREADS"] = old

    cores = os.cpu_count() or 1
    out.append(Case("ensemble members, thread policy (k-means + GMM, 76 members)",
                    {"traits": 600, "pca": 50, "members": 76}, lambda: members_with(cores),
                    lambda: members_with(1), f"every pool at {cores} threads per member",
                    "1 thread per member (gpu_engine.threads)", "cpu",
                    lambda a, b: float(np.nanmax(np.abs(a - b))),
                    {"load": os.environ.get("BENCH_LOAD", "as found")}, repeats=3))

    # the consensus steps, on a fixed ensemble
    members = ClusterEnsemble(families=("kmeans", "agglomerative", "dbscan"), n_seeds=1,
                              representations=("pca",), family_size=295).fit(X).partitions_
    D = np.nan_to_num(coassociation(members, backend=backend), nan=1.0)
    S = squareform(D)
    sample = [(0.25, 2), (0.25, K // 2), (0.50, K)]
    n_units = len(SCC_DELTAS) * len(ks)

    def scc_sklearn():
        return [SpectralClustering(k, affinity="precomputed", random_state=0).fit_predict(
            np.exp(-S ** 2 / (2 * d ** 2))) for d, k in sample]

    def scc_ours():
        _, parts = consensus(members, k_range=ks, eac_linkages=(), D=D, backend=backend)
        return parts

    def scc_check(ref, parts):
        idx = [SCC_DELTAS.index(d) * len(ks) + ks.index(k) for d, k in sample]
        return max(1.0 - adjusted_rand_score(r, parts[i]) for r, i in zip(ref, idx))

    out.append(Case(f"SCC consensus (4 δ × k = 2…{K}), {backend.name} vs scikit-learn",
                    {**shape, "partitions": int(members.shape[0])}, scc_sklearn, scc_ours,
                    "sklearn SpectralClustering per (δ, k) [extrapolated]",
                    f"gpu_engine {backend.name}", backend.name, scc_check,
                    {"check": "max_abs_diff = 1 − ARI on the sampled (δ, k)"},
                    baseline_scale=n_units / len(sample), repeats=1))

    rng = np.random.default_rng(1)
    parts = rng.integers(0, K, (7 * len(ks), n))

    def agree_sklearn():
        out = []
        for p in parts[:3]:
            v = []
            for m in members:
                ok = np.isfinite(m)
                v.append(ok.mean() * adjusted_rand_score(p[ok], m[ok]))
            out.append(v)
        return np.array(out)

    def agree_ours():
        M = _Members(members)
        return np.array([M.ari(p) for p in parts])

    out.append(Case(f"agreement ({len(parts)} partitions), {backend.name} vs scikit-learn",
                    {**shape, "partitions": int(members.shape[0])}, agree_sklearn, agree_ours,
                    "sklearn adjusted_rand_score per member [extrapolated]",
                    f"gpu_engine {backend.name}", backend.name,
                    lambda a, b: float(np.nanmax(np.abs(a - b[:3]))),
                    {}, baseline_scale=len(parts) / 3, repeats=1))
    return out
