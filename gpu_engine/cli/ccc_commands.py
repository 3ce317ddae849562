"""``gpu-engine ccc``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ._common import CONTEXT, Obj, check_output, scheduler_option
from ._common import console as _console
from ._common import progress_enabled as _progress_enabled


@click.command("ccc", context_settings=CONTEXT)
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Features × samples matrix (Parquet/TSV/CSV; first column "
              "the feature labels), e.g. genes × samples expression.")
@click.option("--features", type=click.Choice(["rows", "columns"]), default="rows",
              show_default=True, help="rows: numeric features × samples; columns: a table "
              "whose columns are features, numeric or categorical (strings, booleans).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Result: .parquet/.tsv. Condensed (one row per pair: feature_i, "
              "feature_j, ccc[, pvalue], k_i, k_j), written block by block, or with "
              "--square a features × features matrix.")
@click.option("--square", is_flag=True, help="Write the square matrix (diagonal 1) instead.")
@click.option("--k-max", type=click.IntRange(min=2), default=10, show_default=True,
              help="Largest k of the quantile partitions (k = 2 … min(round(√n), this)).")
@click.option("--pvalue-perms", type=click.IntRange(min=0), default=0, show_default=True,
              help="Permutation p-values with this many permutations (seeded).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--block-pairs", type=click.IntRange(min=1), default=1_000_000, show_default=True,
              help="Pairs per block (memory and Dask task size).")
@scheduler_option("pair blocks")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.pass_obj
def ccc_cmd(obj: Obj, data, features, out, square, k_max, pvalue_perms, seed, block_pairs,
            scheduler, overwrite) -> None:
    """CCC (Clustermatch correlation coefficient) of every pair of features.

    A not-only-linear correlation in [0, 1]: the largest adjusted Rand index between quantile
    partitions of the two features. Equal to the reference package ccc-coef bit for bit;
    constant features give NaN (listed in the summary).

    \b
    Examples:
      gpu-engine ccc --data expr.parquet --out ccc_pairs.parquet
      gpu-engine --backend gpu ccc --data expr.parquet --square --out ccc.parquet
      gpu-engine ccc --data traits.tsv --features columns --pvalue-perms 1000 --out p.tsv
    """
    import numpy as np
    import pandas as pd

    from ..backend import get_backend
    from ..ccc import iter_blocks, pair_index, prepare
    from ..distributed import get_client
    from ..io import atomic_path, read_matrix, read_table, run_metadata, write_matrix

    check_output(out, folder=None, overwrite=overwrite, what="--out")
    con = _console()
    be = get_backend(obj.backend)
    t0 = time.perf_counter()
    client = None
    try:
        if features == "rows":
            X = read_matrix(data, what="CCC input")
            F = prepare(X.to_numpy(), k_max=k_max)
            names = [str(x) for x in X.index]
        else:
            T = read_table(data, what="CCC input")
            F = prepare(T, k_max=k_max)
            names = [str(c) for c in T.columns]
        client = get_client(scheduler)
        G = len(names)
        total = G * (G - 1) // 2
        blocks = iter_blocks(F, block_pairs=block_pairs, backend=be, client=client,
                             pvalue_n_perms=pvalue_perms, seed=seed,
                             progress=_progress_enabled())
        ks = F.ks
        top = []
        if square:
            M = np.eye(G)
            for s, v, _b, _p in blocks:
                ij = pair_index(G, s, s + len(v))
                M[ij[:, 0], ij[:, 1]] = v
                M[ij[:, 1], ij[:, 0]] = v
                top.append(pd.DataFrame({"i": ij[:, 0], "j": ij[:, 1], "ccc": v}))
            write_matrix(pd.DataFrame(M, index=pd.Index(names, name="feature"), columns=names),
                         out, metadata=run_metadata(backend=be, inputs=[data], command="ccc",
                                                    parameters={"k_max": k_max}))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            lab = np.asarray(names, dtype=object)
            parquet = out.suffix == ".parquet"
            with atomic_path(out) as tmp:
                writer = None
                for s, v, b, p in blocks:
                    ij = pair_index(G, s, s + len(v))
                    df = pd.DataFrame({"feature_i": lab[ij[:, 0]], "feature_j": lab[ij[:, 1]],
                                       "ccc": v})
                    if p is not None:
                        df["pvalue"] = p
                    df["k_i"] = ks[b[:, 0]]
                    df["k_j"] = ks[b[:, 1]]
                    if parquet:
                        tbl = pa.Table.from_pandas(df, preserve_index=False)
                        if writer is None:
                            writer = pq.ParquetWriter(tmp, tbl.schema)
                        writer.write_table(tbl)
                    else:
                        df.to_csv(tmp, sep="\t" if ".tsv" in out.name else ",", index=False,
                                  header=s == 0, mode="w" if s == 0 else "a", na_rep="NA")
                    keep = np.argsort(-np.nan_to_num(v, nan=-1))[:10]
                    top.append(pd.DataFrame({"i": ij[keep, 0], "j": ij[keep, 1],
                                             "ccc": v[keep]}))
                if writer is not None:
                    writer.close()
    finally:
        if client is not None:
            client.close()
    secs = time.perf_counter() - t0
    con.print(f"CCC: {G:,} features × {F.n:,} samples, {total:,} pairs, k = {ks[0]}…{ks[-1]}, "
              f"{secs:.1f} s on {be.name}; wrote {out}")
    if F.constant.any():
        bad = [names[i] for i in np.flatnonzero(F.constant)]
        con.print(f"[yellow]{len(bad)} constant feature(s), their pairs are NaN: "
                  f"{', '.join(bad[:8])}{' …' if len(bad) > 8 else ''}[/]")
    if top:
        t = pd.concat(top).sort_values("ccc", ascending=False).head(5)
        for r in t.itertuples():
            con.print(f"  {names[r.i]} – {names[r.j]}: {r.ccc:.4f}")
