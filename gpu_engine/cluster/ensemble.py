"""Clustering ensembles: many partitions of the same objects from several algorithm
families and data representations (PhenoPLIER's trait clustering).

Families (defaults scale with the number of objects n; every range is a parameter):

| family | members |
|---|---|
| ``kmeans`` | k = 2 … K (K = round(√n), ≤ 60), ``n_seeds`` seeds, n_init 10 |
| ``spectral`` | k = 2 … K, ``n_seeds`` seeds, rbf affinity (γ = ``spectral_gamma``, 1e-3; on
  UMAP ``spectral_gamma_umap``, 1e-2) |
| ``gmm`` | k = 2 … K, ``n_seeds`` seeds, full covariance |
| ``agglomerative`` | k = 2 … min(A, n − 1) × linkage ward / complete / average / single; A =
  ``agglomerative_k_max``, else ``k_max``, else 75 |
| ``dbscan`` | min_samples 2 … min(125, n/20) × 33 eps between the 15th and 80th percentile of
  each min_samples' own k-distance (the distance of every object to its min_samples-th
  neighbour, itself included) |

The DBSCAN range is chosen so that most members are informative: a min_samples above the
smallest cluster's size, or an eps far from the k-distances, gives one cluster or only noise.
On 600 objects × 50 PCA components (15 equal or 7 unequal Gaussian clusters in 200
dimensions) and on the demo's 120 traits × 30 LVs, the share of DBSCAN parameter sets with
≥ 2 clusters is 1.00 / 1.00 / 0.62 with this range, against 0.22 / 0.50 / 0.12 with the
earlier one (min_samples ≤ n/4, eps over the 5th–50th percentile of all neighbour
distances), where almost every member was dropped.

Noise labels (−1) become missing; partitions with ≤ 1 cluster are dropped (counted in
``report_``); each family is then resampled (seeded) to at most ``family_size`` members. A
family with more than 2 × ``family_size`` parameter sets runs only a seeded sample of that
many (the reference generated all of them, then resampled).
Representations (``representations``): ``z_score``, ``pca`` (50 components) and ``umap`` (50
components, optional: umap-learn or cuML).

Members equal scikit-learn's estimators with the same parameters and seeds, but shared work is
done once: one spectral embedding per representation serves every (k, seed) (see
``cluster.spectral``) and one tree per linkage is cut at every k. Members are independent:
with a Dask client they (and the shared embeddings and trees) run as tasks.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ..backend import Backend, get_backend
from ..errors import InputError, preview
from ..results import SavedEstimator
from .spectral import rbf_affinity, spectral_embedding, spectral_labels

FAMILIES = ("kmeans", "spectral", "gmm", "agglomerative", "dbscan")
REPRESENTATIONS = ("z_score", "pca", "umap")


def _check_finite(X: np.ndarray, data: pd.DataFrame) -> None:
    if not np.isfinite(X).all():
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise InputError(f"clustering input: NaN or infinite value at object "
                         f"{data.index[r]!r}, feature {data.columns[c]!r}; impute or drop it")


def representations(data: pd.DataFrame, *, names=("z_score", "pca"), pca_components: int = 50,
                    umap_components: int = 50, seed: int = 0,
                    backend: Backend | str | None = None) -> dict[str, np.ndarray]:
    """Representations of an objects × features frame, each objects × dimensions float64:
    ``z_score`` (each column standardized), ``pca`` (the first ``pca_components`` principal
    components of the z-scores) and ``umap`` (``umap_components`` UMAP dimensions of the
    z-scores; needs umap-learn, or cuML on the rapids backend; not reproducible across
    machines). On the rapids backend PCA and UMAP come from cuML."""
    unknown = set(names) - set(REPRESENTATIONS)
    if unknown:
        raise InputError(f"clustering: unknown representation(s) {sorted(unknown)}; choose "
                         f"from {', '.join(REPRESENTATIONS)}")
    be = get_backend(backend)
    X = np.asarray(data, dtype=np.float64)
    _check_finite(X, data)
    sd = X.std(0, ddof=0)
    Z = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    out = {}
    if "z_score" in names:
        out["z_score"] = Z
    small = min(Z.shape) <= 2
    if "pca" in names and pca_components and not small:
        n = min(pca_components, min(Z.shape) - 1)
        if be.name == "rapids":
            from cuml import PCA
            out["pca"] = np.asarray(PCA(n_components=n, random_state=seed,
                                        output_type="numpy").fit_transform(Z))
        else:
            from sklearn.decomposition import PCA
            out["pca"] = PCA(n_components=n, random_state=seed).fit_transform(Z)
    if "umap" in names and umap_components and not small:
        n = min(umap_components, Z.shape[0] - 2)
        if be.name == "rapids":
            from cuml import UMAP
        else:
            try:
                from umap import UMAP
            except ImportError as exc:
                raise InputError("clustering: the umap representation needs umap-learn "
                                 '(pip install "gpu-engine[umap]") or cuML on the rapids '
                                 "backend; or leave umap out of the representations") from exc
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {"output_type": "numpy"} if be.name == "rapids" else {}
            out["umap"] = np.asarray(UMAP(n_components=n, random_state=seed,
                                          **kw).fit_transform(Z), np.float64)
    return out


def _member(family: str, params: dict, X: np.ndarray, backend: str = "cpu") -> np.ndarray:
    """Labels of one k-means, GMM or DBSCAN member (cuML's k-means and DBSCAN on rapids)."""
    from sklearn import cluster, mixture

    if family == "kmeans":
        if backend == "rapids":
            from cuml.cluster import KMeans
            return np.asarray(KMeans(n_clusters=params["k"], n_init=10,
                                     random_state=params["seed"],
                                     output_type="numpy").fit_predict(X))
        return cluster.KMeans(params["k"], n_init=10, random_state=params["seed"]).fit_predict(X)
    if family == "gmm":
        return mixture.GaussianMixture(params["k"], covariance_type="full",
                                       random_state=params["seed"]).fit(X).predict(X)
    if family == "dbscan":
        if backend == "rapids":
            from cuml.cluster import DBSCAN
            return np.asarray(DBSCAN(eps=params["eps"], min_samples=params["min_samples"],
                                     output_type="numpy").fit_predict(X))
        return cluster.DBSCAN(eps=params["eps"],
                              min_samples=params["min_samples"]).fit_predict(X)
    raise InputError(f"unknown clustering family {family!r}; choose from {FAMILIES}")


def _run_member(rep_name, family, params, *, reps, embeddings, backend):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if family == "spectral":
            labels = spectral_labels(embeddings[rep_name], params["k"], params["seed"])
        else:
            labels = _member(family, params, reps[rep_name], backend)
    return np.asarray(labels, np.int64)


def _prepare(rep_name, what, arg, *, reps, backend):
    """Work shared by many members: a spectral embedding (``arg`` = (γ, K)) or the cuts of
    one agglomerative tree (``arg`` = (linkage, ks)) → labels objects × len(ks)."""
    X = reps[rep_name]
    if what == "spectral":
        gamma, K = arg
        return spectral_embedding(rbf_affinity(X, gamma), K, backend=backend)
    from scipy.cluster.hierarchy import cut_tree, linkage
    from scipy.spatial.distance import pdist

    method, ks = arg
    # equals scikit-learn's AgglomerativeClustering(k, linkage=method) for every k (tested)
    Z = linkage(pdist(X), method=method)
    return cut_tree(Z, n_clusters=list(ks)).astype(np.int64)


class ClusterEnsemble(SavedEstimator, BaseEstimator):
    """Generate an ensemble (see the module docstring). ``fit(data)`` with data objects ×
    features (e.g. traits × LVs) sets ``partitions_`` (members × objects, float with NaN for
    missing), ``members_`` (one row per member: family, representation, parameters,
    n_clusters, labelled fraction), ``report_`` (per family: parameter sets, members run,
    dropped with ≤ 1 cluster, kept after resampling) and ``objects_`` (the object names).

    ``k_max`` bounds k for every family that takes a k: k-means, spectral and GMM (default
    round(√n), ≤ 60) and agglomerative (default 75) — unless ``agglomerative_k_max`` is set
    on its own. ``backend``: ``cpu``, ``gpu`` (spectral eigendecompositions on the GPU) or
    ``rapids`` (also cuML's PCA, UMAP, k-means and DBSCAN, same parameters and seeds).

    ``save(folder)`` writes ``partitions.parquet`` (members × objects), ``members.parquet``,
    ``report.parquet`` (and ``report.tsv``) and ``model.json``; ``ClusterEnsemble.load``
    reads it back."""

    FORMAT = "gpu_engine.cluster_ensemble/1"
    _FITTED_TABLES = {"partitions_": "partitions", "members_": "members", "report_": "report"}
    _FITTED_JSON = ("objects_",)

    def __init__(self, families=FAMILIES, representations=("z_score", "pca"), k_max=None,
                 n_seeds=5, agglomerative_k_max=None,
                 linkages=("ward", "complete", "average", "single"),
                 dbscan_min_samples_max=125, dbscan_min_samples_fraction=0.05, dbscan_n_eps=33,
                 dbscan_eps_percentiles=(15, 80),
                 spectral_gamma=1e-3, spectral_gamma_umap=1e-2, family_size=295,
                 pca_components=50, umap_components=50, seed=0, backend=None):
        self.families = families
        self.representations = representations
        self.k_max = k_max
        self.n_seeds = n_seeds
        self.agglomerative_k_max = agglomerative_k_max
        self.linkages = linkages
        self.dbscan_min_samples_max = dbscan_min_samples_max
        self.dbscan_min_samples_fraction = dbscan_min_samples_fraction
        self.dbscan_n_eps = dbscan_n_eps
        self.dbscan_eps_percentiles = dbscan_eps_percentiles
        self.spectral_gamma = spectral_gamma
        self.spectral_gamma_umap = spectral_gamma_umap
        self.family_size = family_size
        self.pca_components = pca_components
        self.umap_components = umap_components
        self.seed = seed
        self.backend = backend

    # ------------------------------------------------------------------ persistence
    def _encode(self, name, value):
        if name == "partitions_":
            return pd.DataFrame(value, columns=[str(o) for o in self.objects_])
        if name == "members_":
            return value.assign(params=value["params"].map(json.dumps))
        return value

    @classmethod
    def _decode(cls, name, frame, fitted):
        if name == "partitions_":
            return frame.to_numpy(np.float64)
        if name == "members_":
            return frame.assign(params=frame["params"].map(json.loads))
        return frame

    def _write_extras(self, folder):
        from ..io import write_table

        write_table(self.report_, folder / "report.tsv")

    def _agglomerative_k_max(self) -> int:
        if self.agglomerative_k_max is not None:
            return self.agglomerative_k_max
        return self.k_max if self.k_max is not None else 75

    def _K(self, n: int) -> int:
        K = self.k_max or max(2, min(60, int(round(np.sqrt(n)))))
        K = min(K, n - 1)
        if K < 2:
            raise InputError(f"clustering: {n} objects are too few for k ≥ 2 clusters")
        return K

    def _tasks(self, reps: dict, n: int) -> list[tuple]:
        K = self._K(n)
        tasks = []
        for rep, X in reps.items():
            for fam in self.families:
                if fam in ("kmeans", "spectral", "gmm"):
                    for k in range(2, K + 1):
                        for s in range(self.n_seeds):
                            tasks.append((rep, fam, {"k": k, "seed": self.seed * 1000 + s}))
                elif fam == "agglomerative":
                    for k in range(2, min(self._agglomerative_k_max(), n - 1) + 1):
                        for link in self.linkages:
                            tasks.append((rep, fam, {"k": k, "linkage": link}))
                elif fam == "dbscan":
                    from sklearn.neighbors import NearestNeighbors

                    ms_max = max(2, min(self.dbscan_min_samples_max, n - 1,
                                        int(n * self.dbscan_min_samples_fraction)))
                    # d[:, j]: distance to the j-th neighbour, the point itself being the 0th;
                    # a point is core at eps ≥ d[:, min_samples − 1]
                    d, _ = NearestNeighbors(n_neighbors=ms_max).fit(X).kneighbors(X)
                    for ms in range(2, ms_max + 1):
                        lo, hi = np.percentile(d[:, ms - 1], list(self.dbscan_eps_percentiles))
                        for eps in np.linspace(lo, hi, self.dbscan_n_eps):
                            tasks.append((rep, fam, {"eps": float(eps), "min_samples": ms}))
                else:
                    raise InputError(f"unknown clustering family {fam!r}; choose from "
                                     f"{preview(FAMILIES)}")
        return tasks

    def fit(self, data: pd.DataFrame, *, client=None, progress: bool = False,
            checkpoint=None, block: int = 64):
        """Fit the ensemble on ``data`` (objects × features). ``checkpoint``: a folder (or
        :class:`~gpu_engine.io.checkpoint.Checkpoint`) where the members' labels are saved
        in blocks of ``block`` members; a fit killed part-way and called again with it loads
        the finished blocks (same members either way)."""
        from ..distributed import map_tasks
        from ..io.checkpoint import as_checkpoint

        if not isinstance(data, pd.DataFrame):
            data = pd.DataFrame(np.asarray(data))
        n = data.shape[0]
        backend = get_backend(self.backend).name
        reps = representations(data, names=self.representations,
                                pca_components=self.pca_components,
                                umap_components=self.umap_components, seed=self.seed,
                                backend=backend)
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
        # shared work: one spectral embedding per representation, one tree per linkage
        prep = []
        if any(t[1] == "spectral" for t in tasks):
            K = self._K(n)
            for rep in reps:
                gamma = self.spectral_gamma_umap if rep == "umap" else self.spectral_gamma
                prep.append((rep, "spectral", (gamma, K)))
        agglo_ks = sorted({t[2]["k"] for t in tasks if t[1] == "agglomerative"})
        for rep in reps:
            for link in self.linkages:
                if any(t[1] == "agglomerative" and t[0] == rep and t[2]["linkage"] == link
                       for t in tasks):
                    prep.append((rep, "agglomerative", (link, agglo_ks)))
        prepared = map_tasks(_prepare, prep, shared={"reps": reps, "backend": backend},
                             client=client, progress=progress,
                             description="embeddings and trees")
        embeddings = {p[0]: r for p, r in zip(prep, prepared) if p[1] == "spectral"}
        cuts = {(p[0], p[2][0]): r for p, r in zip(prep, prepared) if p[1] == "agglomerative"}
        col = {k: j for j, k in enumerate(agglo_ks)}
        run = [t for t in tasks if t[1] != "agglomerative"]
        cp = as_checkpoint(checkpoint)
        shared = {"reps": reps, "embeddings": embeddings, "backend": backend}
        if cp is None:
            ran = map_tasks(_run_member, run, shared=shared, client=client, progress=progress,
                            description="ensemble members", small=True)
        else:
            ran = []
            for b in range(0, len(run), block):
                name = f"members_{b // block:05d}"
                got = cp.load(name)
                if got is None:
                    part = map_tasks(_run_member, run[b:b + block], shared=shared,
                                     client=client, description="ensemble members",
                                     small=True)
                    got = {"labels": np.vstack(part)}
                    cp.save(name, **got)
                ran.extend(got["labels"])
        by_task = dict(zip(map(id, run), ran))
        labels = [cuts[(t[0], t[2]["linkage"])][:, col[t[2]["k"]]] if t[1] == "agglomerative"
                  else by_task[id(t)] for t in tasks]
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
                params = dict(params)
                if fam == "spectral":
                    params["gamma"] = (self.spectral_gamma_umap if rep == "umap"
                                       else self.spectral_gamma)
                rows.append({"family": fam, "representation": rep, "n_clusters": k,
                             "labelled": float(np.isfinite(lab).mean()), "params": params})
                parts.append(lab)
        if not parts:
            raise InputError("clustering: every ensemble member had a single cluster")
        self.partitions_ = np.vstack(parts)
        self.members_ = pd.DataFrame(rows)
        self.report_ = pd.DataFrame(report)
        self.objects_ = list(data.index)
        return self
