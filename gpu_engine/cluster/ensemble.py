"""Clustering ensembles: many partitions of the same objects from several algorithm
families and data representations (PhenoPLIER's trait clustering).

Families (defaults scale with the number of objects n; every range is a parameter):

| family | members |
|---|---|
| ``kmeans`` | k = 2 … K (K = round(√n), ≤ 60), ``n_seeds`` seeds, n_init 10 |
| ``spectral`` | k = 2 … K, ``n_seeds`` seeds, rbf affinity (γ = ``spectral_gamma``) |
| ``gmm`` | k = 2 … K, ``n_seeds`` seeds, full covariance |
| ``agglomerative`` | k = 2 … min(75, n − 1) × linkage ward / complete / average / single |
| ``dbscan`` | min_samples 2 … min(125, n/4) × 33 eps between the 5th and 50th percentile of the
  representation's k-nearest-neighbour distances |

Noise labels (−1) become missing; partitions with ≤ 1 cluster are dropped (counted in
``report_``); each family is then resampled (seeded) to at most ``family_size`` members. A
family with more than 2 × ``family_size`` parameter sets runs only a seeded sample of that
many (the reference generated all of them, then resampled).
Members are independent: with a Dask client they run as tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError, preview

FAMILIES = ("kmeans", "spectral", "gmm", "agglomerative", "dbscan")


def representations(data: pd.DataFrame, *, pca_components: int = 50,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """``z_score`` (each column standardized) and ``pca`` (its first ``pca_components``
    principal components) of an objects × features frame."""
    X = np.asarray(data, dtype=np.float64)
    if not np.isfinite(X).all():
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise InputError(f"clustering input: NaN or infinite value at object "
                         f"{data.index[r]!r}, feature {data.columns[c]!r}; impute or drop it")
    sd = X.std(0, ddof=0)
    Z = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    out = {"z_score": Z}
    if pca_components and min(Z.shape) > 2:
        from sklearn.decomposition import PCA

        n = min(pca_components, min(Z.shape) - 1)
        out["pca"] = PCA(n_components=n, random_state=seed).fit_transform(Z)
    return out


def _member(family: str, params: dict, X: np.ndarray) -> np.ndarray:
    from sklearn import cluster, mixture

    if family == "kmeans":
        return cluster.KMeans(params["k"], n_init=10, random_state=params["seed"]).fit_predict(X)
    if family == "spectral":
        return cluster.SpectralClustering(params["k"], affinity="rbf", gamma=params["gamma"],
                                          random_state=params["seed"],
                                          assign_labels="kmeans").fit_predict(X)
    if family == "gmm":
        return mixture.GaussianMixture(params["k"], covariance_type="full",
                                       random_state=params["seed"]).fit(X).predict(X)
    if family == "agglomerative":
        return cluster.AgglomerativeClustering(params["k"],
                                               linkage=params["linkage"]).fit_predict(X)
    if family == "dbscan":
        return cluster.DBSCAN(eps=params["eps"],
                              min_samples=params["min_samples"]).fit_predict(X)
    raise InputError(f"unknown clustering family {family!r}; choose from {FAMILIES}")


def _run_member(rep_name, family, params, *, reps):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = _member(family, params, reps[rep_name])
    return np.asarray(labels, np.int64)


@dataclass
class ClusterEnsemble:
    """Generate an ensemble (see the module docstring). ``fit(data)`` with data objects ×
    features (e.g. traits × LVs) sets ``partitions_`` (members × objects, float with NaN for
    missing), ``members_`` (one row per member: family, representation, parameters,
    n_clusters, labelled fraction) and ``report_`` (per family: parameter sets, members run,
    dropped with ≤ 1 cluster, kept after resampling)."""

    families: tuple = FAMILIES
    k_max: int | None = None
    n_seeds: int = 5
    agglomerative_k_max: int = 75
    linkages: tuple = ("ward", "complete", "average", "single")
    dbscan_min_samples_max: int = 125
    dbscan_n_eps: int = 33
    spectral_gamma: float = 1e-3
    family_size: int = 295
    pca_components: int = 50
    seed: int = 0

    def _tasks(self, reps: dict, n: int) -> list[tuple]:
        K = self.k_max or max(2, min(60, int(round(np.sqrt(n)))))
        K = min(K, n - 1)
        if K < 2:
            raise InputError(f"clustering: {n} objects are too few for k ≥ 2 clusters")
        tasks = []
        for rep, X in reps.items():
            for fam in self.families:
                if fam in ("kmeans", "spectral", "gmm"):
                    for k in range(2, K + 1):
                        for s in range(self.n_seeds):
                            p = {"k": k, "seed": self.seed * 1000 + s}
                            if fam == "spectral":
                                p["gamma"] = self.spectral_gamma
                            tasks.append((rep, fam, p))
                elif fam == "agglomerative":
                    for k in range(2, min(self.agglomerative_k_max, n - 1) + 1):
                        for link in self.linkages:
                            tasks.append((rep, fam, {"k": k, "linkage": link}))
                elif fam == "dbscan":
                    from sklearn.neighbors import NearestNeighbors

                    ms_max = max(2, min(self.dbscan_min_samples_max, n // 4))
                    d, _ = NearestNeighbors(n_neighbors=min(ms_max, n - 1)).fit(X).kneighbors(X)
                    lo, hi = np.percentile(d[:, 1:], [5, 50])
                    for ms in range(2, ms_max + 1):
                        for eps in np.linspace(lo, hi, self.dbscan_n_eps):
                            tasks.append((rep, fam, {"eps": float(eps), "min_samples": ms}))
                else:
                    raise InputError(f"unknown clustering family {fam!r}; choose from "
                                     f"{preview(FAMILIES)}")
        return tasks

    def fit(self, data: pd.DataFrame, *, client=None, progress: bool = False):
        from ..distributed import map_tasks

        if not isinstance(data, pd.DataFrame):
            data = pd.DataFrame(np.asarray(data))
        n = data.shape[0]
        reps = representations(data, pca_components=self.pca_components, seed=self.seed)
        all_tasks = self._tasks(reps, n)
        rng = np.random.default_rng(self.seed)
        # a family with far more parameter sets than members kept (DBSCAN: thousands) runs a
        # seeded sample of 2 × family_size of them: one-cluster results are dropped afterwards
        n_params = {f: sum(t[1] == f for t in all_tasks) for f in self.families}
        tasks = []
        for fam in self.families:
            fam_tasks = [t for t in all_tasks if t[1] == fam]
            if len(fam_tasks) > 2 * self.family_size:
                pick = np.sort(rng.choice(len(fam_tasks), 2 * self.family_size, replace=False))
                fam_tasks = [fam_tasks[i] for i in pick]
            tasks.extend(fam_tasks)
        labels = map_tasks(_run_member, tasks, shared={"reps": reps}, client=client,
                           progress=progress, description="ensemble members")
        rows, parts = [], []
        report = []
        for fam in self.families:
            idx = [i for i, t in enumerate(tasks) if t[1] == fam]
            kept = []
            for i in idx:
                lab = labels[i].astype(float)
                lab[lab < 0] = np.nan
                k = len(np.unique(lab[np.isfinite(lab)]))
                if k > 1:
                    kept.append((i, lab, k))
            n_ok = len(kept)
            if len(kept) > self.family_size:
                pick = np.sort(rng.choice(len(kept), self.family_size, replace=False))
                kept = [kept[j] for j in pick]
            report.append({"family": fam, "parameter_sets": n_params[fam],
                           "generated": len(idx), "dropped_one_cluster": len(idx) - n_ok,
                           "kept": len(kept)})
            for i, lab, k in kept:
                rep, _, params = tasks[i]
                rows.append({"family": fam, "representation": rep, "n_clusters": k,
                             "labelled": float(np.isfinite(lab).mean()),
                             "params": dict(params)})
                parts.append(lab)
        if not parts:
            raise InputError("clustering: every ensemble member had a single cluster")
        self.partitions_ = np.vstack(parts)
        self.members_ = pd.DataFrame(rows)
        self.report_ = pd.DataFrame(report)
        self.objects_ = list(data.index)
        return self
