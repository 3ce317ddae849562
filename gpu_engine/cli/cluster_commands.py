"""``gpu-engine cluster ensemble|consensus|interpret``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ._common import CONTEXT, Obj
from ._common import console as _console
from ._common import progress_enabled as _progress_enabled


def _read_data(path: Path, transpose: bool):
    from ..io import read_matrix

    X = read_matrix(path, what="clustering input")
    return X.T if transpose else X


@click.group(context_settings=CONTEXT)
def cluster() -> None:
    """Trait clustering in LV space: ensemble, consensus, driving LVs.

    \b
      gpu-engine cluster ensemble --data traits_lvs.parquet --out ens/
      gpu-engine cluster consensus --ensemble ens/ --out cons/
      gpu-engine cluster interpret --data traits_lvs.parquet --consensus cons/ --out drivers.tsv
    """


@cluster.command("ensemble", context_settings=CONTEXT)
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Objects × features matrix (e.g. traits × LVs; first column "
              "the labels). Use --transpose for LVs × traits.")
@click.option("--transpose", is_flag=True, help="The file is features × objects.")
@click.option("--families", default="kmeans,spectral,gmm,agglomerative,dbscan",
              show_default=True, help="Comma-separated algorithm families.")
@click.option("--representations", default="z_score,pca", show_default=True,
              help="Comma-separated: z_score, pca (50 components), umap (50 components; "
              "needs umap-learn, or cuML with --backend rapids).")
@click.option("--k-max", type=int, default=None,
              help="Largest k for k-means / spectral / GMM (default round(√n), ≤ 60).")
@click.option("--n-seeds", type=int, default=5, show_default=True)
@click.option("--family-size", type=int, default=295, show_default=True,
              help="Members kept per family (seeded resampling).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--scheduler", default=None,
              help="Run members on a Dask cluster: 'local' or a scheduler address.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: partitions.parquet (members × objects, NaN = missing), "
              "members.parquet, report.tsv.")
@click.option("--overwrite", is_flag=True)
@click.pass_obj
def ensemble_cmd(obj: Obj, data, transpose, families, representations, k_max, n_seeds,
                 family_size, seed, scheduler, out, overwrite) -> None:
    """Generate a clustering ensemble of the objects (see gpu_engine.cluster.ensemble).

    On --backend rapids, PCA, UMAP, k-means and DBSCAN come from cuML (same parameters and
    seeds); on gpu and rapids the spectral eigendecompositions run on the GPU."""
    import pandas as pd

    from ..backend import resolve
    from ..cluster import ClusterEnsemble
    from ..distributed import get_client
    from ..io import atomic_dir, write_table

    con = _console()
    t0 = time.perf_counter()
    client = None
    try:
        X = _read_data(data, transpose)
        client = get_client(scheduler)
        ens = ClusterEnsemble(families=tuple(f.strip() for f in families.split(",")),
                              representations=tuple(r.strip() for r in
                                                    representations.split(",")),
                              k_max=k_max, n_seeds=n_seeds, family_size=family_size,
                              seed=seed, backend=resolve(obj.backend))
        ens.fit(X, client=client, progress=_progress_enabled())
        with atomic_dir(out, overwrite=overwrite) as tmp:
            parts = pd.DataFrame(ens.partitions_, columns=[str(o) for o in ens.objects_])
            write_table(parts, Path(tmp) / "partitions.parquet")
            members = ens.members_.assign(params=ens.members_["params"].map(json.dumps))
            write_table(members, Path(tmp) / "members.parquet")
            write_table(ens.report_, Path(tmp) / "report.tsv")
    finally:
        if client is not None:
            client.close()
    from rich.table import Table

    t = Table(title="ensemble members per family")
    for c in ens.report_.columns:
        t.add_column(c)
    for r in ens.report_.itertuples(index=False):
        t.add_row(*map(str, r))
    con.print(t)
    con.print(f"{len(ens.members_):,} partitions of {len(ens.objects_):,} objects in "
              f"{time.perf_counter() - t0:.1f} s; wrote {out}")


@cluster.command("consensus", context_settings=CONTEXT)
@click.option("--ensemble", "ens_dir", type=click.Path(exists=True, file_okay=False,
              path_type=Path), required=True, help="Folder written by `cluster ensemble`.")
@click.option("--k-min", type=int, default=2, show_default=True)
@click.option("--k-max", type=int, default=None, help="Default round(√n).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: consensus.parquet (method, k, agreement scores), partitions.parquet"
              ", selected.tsv, agreement_by_k.png, coassociation.png.")
@click.option("--overwrite", is_flag=True)
@click.pass_obj
def consensus_cmd(obj: Obj, ens_dir, k_min, k_max, seed, out, overwrite) -> None:
    """Consensus partitions (EAC linkages, spectral on the co-association), their agreement
    with the ensemble (weighted ARI / AMI / NMI) and the selected ones."""
    import numpy as np
    import pandas as pd

    from ..backend import get_backend
    from ..cluster import coassociation, consensus, select
    from ..io import atomic_dir, read_table, write_table

    con = _console()
    t0 = time.perf_counter()
    be = get_backend(obj.backend)
    parts = read_table(ens_dir / "partitions.parquet")
    E = parts.to_numpy(np.float64)
    n = E.shape[1]
    kmax = k_max or max(3, int(round(np.sqrt(n))))
    D = coassociation(E, backend=be)
    table, cons = consensus(E, k_range=range(k_min, kmax + 1), seed=seed, D=D)
    best = select(table)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        tmp = Path(tmp)
        write_table(table, tmp / "consensus.parquet")
        write_table(pd.DataFrame(cons, columns=parts.columns), tmp / "partitions.parquet")
        write_table(best, tmp / "selected.tsv")
        _plots(table, D, cons[table.index.get_loc(best.index[0])], tmp)
    top = best.iloc[0]
    con.print(f"{len(table):,} consensus partitions (k = {k_min}…{kmax}) of {n:,} objects from "
              f"{E.shape[0]:,} members in {time.perf_counter() - t0:.1f} s on {be.name}")
    con.print(f"selected k: {', '.join(str(int(k)) for k in best['k'])}; best {top['method']} "
              f"k = {int(top['k'])}, median weighted ARI {top['ari_median']:.3f}; wrote {out}")


def _plots(table, D, chosen, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy.spatial.distance import squareform

    fig, ax = plt.subplots(figsize=(7, 4))
    for m, g in table.groupby("method"):
        ax.plot(g["k"], g["ari_median"], marker="o", ms=3, label=m)
    ax.set_xlabel("k")
    ax.set_ylabel("median weighted ARI with the ensemble")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "agreement_by_k.png", dpi=120)
    plt.close(fig)
    order = np.argsort(chosen, kind="stable")
    S = 1 - squareform(np.where(np.isnan(D), 1.0, D))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(S[np.ix_(order, order)], cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title("co-association, ordered by the selected partition")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out / "coassociation.png", dpi=120)
    plt.close(fig)


@cluster.command("interpret", context_settings=CONTEXT)
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Objects × features (e.g. traits × LVs).")
@click.option("--transpose", is_flag=True, help="The file is features × objects.")
@click.option("--consensus", "cons_dir", type=click.Path(exists=True, file_okay=False,
              path_type=Path), default=None, help="Folder of `cluster consensus`: its best "
              "selected partition is interpreted.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Or a table with columns object, cluster.")
@click.option("--min-threshold", type=float, default=1.0, show_default=True)
@click.option("--max-features", type=int, default=20, show_default=True)
@click.option("--max-explored", type=int, default=100, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Drivers table (.tsv/.parquet); a bar plot of the top drivers is written "
              "beside it (.png).")
def interpret_cmd(data, transpose, cons_dir, labels, min_threshold, max_features,
                  max_explored, out) -> None:
    """Which features (LVs) drive each cluster (decision stumps, threshold ≥ 1 SD)."""
    import numpy as np

    from ..cluster import ClusterInterpreter
    from ..io import read_table, write_table

    con = _console()
    X = _read_data(data, transpose)
    if (cons_dir is None) == (labels is None):
        raise click.UsageError("give exactly one of --consensus and --labels")
    if cons_dir is not None:
        table = read_table(cons_dir / "consensus.parquet")
        best = read_table(cons_dir / "selected.tsv").iloc[0]
        parts = read_table(cons_dir / "partitions.parquet")
        row = int(np.flatnonzero((table["method"] == best["method"])
                                 & (table["k"] == best["k"]))[0])
        lab = parts.iloc[row]
        lab = lab.reindex([str(o) for o in X.index]).to_numpy()
    else:
        t = read_table(labels).astype({"object": str}).set_index("object")["cluster"]
        lab = t.reindex([str(o) for o in X.index]).to_numpy()
    it = ClusterInterpreter(min_threshold=min_threshold, max_features=max_features,
                            max_explored=max_explored).fit(X, lab)
    write_table(it.drivers_, out)
    _driver_plot(it.drivers_, out.with_suffix(".png"))
    d = it.drivers_
    con.print(f"{d['cluster'].nunique()} clusters with drivers, {len(d)} driving features; "
              f"wrote {out}")
    for c, g in d.groupby("cluster"):
        con.print(f"  cluster {c} ({int(g['cluster_size'].iloc[0])}): "
                  f"{', '.join(g['feature'].astype(str).head(5))}")


def _driver_plot(drivers, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(drivers.groupby("cluster"))
    if not groups:
        return
    fig, axes = plt.subplots(len(groups), 1, figsize=(6, 1.6 * len(groups) + 0.5),
                             squeeze=False)
    for ax, (c, g) in zip(axes[:, 0], groups):
        g = g.head(5)
        ax.barh(g["feature"].astype(str)[::-1], g["threshold"][::-1])
        ax.set_title(f"cluster {c}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("stump threshold (SD)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
