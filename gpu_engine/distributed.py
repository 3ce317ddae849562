"""Dask clusters and partitioned execution.

Work that is independent (GLS trait chunks, drug-scoring trait blocks, CCC gene-pair
blocks, ensemble members) runs through :func:`map_tasks`: in this process when no client is
given, or as Dask tasks on a cluster. Tasks are the same either way, so the results are
identical. :func:`get_client` makes clients from what a user types on the command line::

    client = get_client("local")           # LocalCluster: one process per core, 1 thread each
    client = get_client("local-cuda")      # dask_cuda.LocalCUDACluster: one worker per GPU
    client = get_client("tcp://host:8786") # an existing scheduler
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)


def get_client(scheduler: str | None, *, n_workers: int | None = None):
    """A ``dask.distributed.Client`` for ``scheduler`` (see the module doc); None → None."""
    if not scheduler:
        return None
    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        cluster = LocalCluster(n_workers=n_workers or os.cpu_count(), threads_per_worker=1,
                               processes=True, dashboard_address=":0")
        return Client(cluster)
    if scheduler == "local-cuda":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as exc:
            from .errors import BackendUnavailableError

            raise BackendUnavailableError(
                'dask-cuda is not installed (pip install "gpu-engine[gpu]")') from exc
        return Client(LocalCUDACluster(dashboard_address=":0"))
    from .errors import InputError

    if "://" not in scheduler and ":" not in scheduler:
        raise InputError(f"--scheduler {scheduler!r}: give 'local', 'local-cuda' or a "
                         "scheduler address such as tcp://host:8786")
    try:
        return Client(scheduler, timeout=os.environ.get("GPU_ENGINE_SCHEDULER_TIMEOUT", "10s"))
    except (OSError, TimeoutError) as exc:
        raise InputError(f"--scheduler {scheduler}: no Dask scheduler answered ({exc}); "
                         "check the address and that the scheduler runs, or use "
                         "--scheduler local") from None


def map_tasks(fn: Callable, tasks: Iterable[tuple], *, total: int | None = None,
              shared: dict[str, Any] | None = None, client=None, progress: bool = False,
              description: str = "tasks", small: bool = False) -> list:
    """``[fn(*task, **shared) for task in tasks]``, in order.

    ``tasks`` may be a generator (``total`` then sizes the progress bar): locally each task's
    inputs are built just before it runs. With a Dask ``client`` each task is a Dask task;
    ``shared`` values are scattered once (broadcast) instead of being shipped with every
    task. A failing task raises its error here. ``small``: the tasks are many small fits;
    each then runs with its thread pools limited (:mod:`gpu_engine.threads`).
    """
    from .progress import track
    from .threads import _limited, limit_threads, task_threads

    shared = dict(shared or {})
    if total is None and hasattr(tasks, "__len__"):
        total = len(tasks)
    if client is None:
        with limit_threads() if small else contextlib.nullcontext():
            return [fn(*t, **shared) for t in track(tasks, description, total=total,
                                                    enabled=progress)]
    if small:
        fn = functools.partial(_limited, fn, task_threads())
    from dask.distributed import as_completed

    # hash=False: a fresh key per call; equal data scattered by consecutive calls would
    # otherwise share a key that the previous call's release can drop under the next one
    scattered = {k: client.scatter(v, broadcast=True, hash=False) for k, v in shared.items()}
    futures = [client.submit(fn, *t, **scattered, pure=False) for t in tasks]
    order = {f.key: i for i, f in enumerate(futures)}
    results: list = [None] * len(futures)
    for fut in track(as_completed(futures), description, total=len(futures), enabled=progress):
        results[order[fut.key]] = fut.result()
    return results


def describe(client) -> dict:
    """Workers and threads of a client (for run metadata)."""
    if client is None:
        return {"scheduler": None}
    info = client.scheduler_info()
    workers = info.get("workers", {})
    return {"scheduler": info.get("address"), "workers": len(workers),
            "threads": sum(w.get("nthreads", 0) for w in workers.values())}


def chunks(n: int, size: int) -> Iterable[slice]:
    """Consecutive slices of at most ``size`` covering ``range(n)``."""
    size = max(1, int(size))
    return (slice(i, min(i + size, n)) for i in range(0, n, size))
