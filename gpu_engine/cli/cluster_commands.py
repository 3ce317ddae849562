"""``gpu-engine cluster ensemble|consensus|interpret``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ._common import CONTEXT, Obj, check_output, dask_client, scheduler_option
from ._common import backend as _backend
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
@click.option("--k-max", type=click.IntRange(min=2), default=None,
              help="Largest k for k-means / spectral / GMM (default round(√n), ≤ 60).")
@click.option("--n-seeds", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--family-size", type=click.IntRange(min=1), default=295, show_default=True,
              help="Members kept per family (seeded resampling).")
@click.option("--seed", type=int, default=0, show_default=True)
@scheduler_option("the ensemble members")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: partitions.parquet (members × objects, NaN = missing), "
              "members.parquet, report.tsv.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.pass_obj
def ensemble_cmd(obj: Obj, data, transpose, families, representations, k_max, n_seeds,
                 family_size, seed, scheduler, out, overwrite) -> None:
    """Generate a clustering ensemble of the objects (see gpu_engine.cluster.ensemble).

    On --backend rapids, PCA, UMAP, k-means and DBSCAN come from cuML (same parameters and
    seeds); on gpu and rapids the spectral eigendecompositions run on the GPU."""
    from ..backend import resolve
    from ..cluster import ClusterEnsemble

    check_output(out, folder=True, overwrite=overwrite, what="--out")
    con = _console()
    t0 = time.perf_counter()
    X = _read_data(data, transpose)
    ens = ClusterEnsemble(families=tuple(f.strip() for f in families.split(",")),
                          representations=tuple(r.strip() for r in representations.split(",")),
                          k_max=k_max, n_seeds=n_seeds, family_size=family_size, seed=seed,
                          backend=resolve(obj.backend))
    with dask_client(scheduler) as client:
        ens.fit(X, client=client, progress=_progress_enabled())
    ens.save(out, overwrite=overwrite)
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
@click.option("--k-min", type=click.IntRange(min=2), default=2, show_default=True)
@click.option("--k-max", type=click.IntRange(min=2), default=None, help="Default round(√n).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder: consensus.parquet (method, k, agreement scores), partitions.parquet"
              ", selected.tsv, agreement_by_k.png, coassociation.png.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.pass_obj
def consensus_cmd(obj: Obj, ens_dir, k_min, k_max, seed, out, overwrite) -> None:
    """Consensus partitions (EAC linkages, spectral on the co-association), their agreement
    with the ensemble (weighted ARI / AMI / NMI) and the selected ones."""
    import numpy as np

    from ..cluster import ClusterEnsemble, coassociation, consensus

    check_output(out, folder=True, overwrite=overwrite, what="--out")
    con = _console()
    t0 = time.perf_counter()
    be = _backend(obj)
    ens = ClusterEnsemble.load(ens_dir)
    E = ens.partitions_
    n = E.shape[1]
    kmax = k_max or max(3, int(round(np.sqrt(n))))
    D = coassociation(E, backend=be)
    cons = consensus(E, k_range=range(k_min, kmax + 1), seed=seed, D=D, objects=ens.objects_)
    cons.save(out, overwrite=overwrite)
    best, top = cons.selected, cons.best()
    con.print(f"{len(cons.table):,} consensus partitions (k = {k_min}…{kmax}) of {n:,} objects "
              f"from {E.shape[0]:,} members in {time.perf_counter() - t0:.1f} s on {be.name}")
    con.print(f"selected k: {', '.join(str(int(k)) for k in best['k'])}; best {top['method']} "
              f"k = {int(top['k'])}, median weighted ARI {top['ari_median']:.3f}; wrote {out}")


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
@click.option("--max-features", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--max-explored", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Drivers table (.tsv/.parquet); a bar plot of the top drivers is written "
              "beside it (.png).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def interpret_cmd(data, transpose, cons_dir, labels, min_threshold, max_features,
                  max_explored, out, overwrite) -> None:
    """Which features (LVs) drive each cluster (decision stumps, threshold ≥ 1 SD)."""
    from ..cluster import ClusterInterpreter, Consensus
    from ..errors import InputError, preview
    from ..io import read_table

    if (cons_dir is None) == (labels is None):
        raise click.UsageError("give exactly one of --consensus and --labels")
    check_output(out, overwrite=overwrite, what="--out", table=True)
    check_output(out.with_suffix(".png"), overwrite=overwrite, what="the drivers plot")
    con = _console()
    X = _read_data(data, transpose)
    if cons_dir is not None:
        lab = Consensus.load(cons_dir).labels()
    else:
        lab = read_table(labels).astype({"object": str}).set_index("object")["cluster"]
    names = [str(o) for o in X.index]
    lab = lab.reindex(names)
    if lab.isna().all():
        src = cons_dir if cons_dir is not None else labels
        raise InputError(f"{src}: the labels name none of the {len(names):,} objects of "
                         f"{data} ({preview(names)}); were the labels made from this data "
                         "(and --transpose given alike)?")
    if lab.isna().any():
        _console(stderr=True).print(f"[yellow]warning[/yellow]: {int(lab.isna().sum()):,} "
                                    "object(s) have no label and are left out")
    lab = lab.to_numpy()
    it = ClusterInterpreter(min_threshold=min_threshold, max_features=max_features,
                            max_explored=max_explored).fit(X, lab)
    d = it.drivers_
    d.save(out)
    d.plot(out.with_suffix(".png"))
    con.print(f"{d['cluster'].nunique()} clusters with drivers, {len(d)} driving features; "
              f"wrote {out}")
    for c, g in d.groupby("cluster"):
        con.print(f"  cluster {c} ({int(g['cluster_size'].iloc[0])}): "
                  f"{', '.join(g['feature'].astype(str).head(5))}")
