"""Thread pools where many small fits run.

A k-means or GMM member of a clustering ensemble on 600 × 50 takes 0.05 s alone, but BLAS
(OpenBLAS/MKL), OpenMP (scikit-learn's k-means) and numba each start one thread per core,
so on a machine already busy with other work the pools fight and the same member takes
seconds. The policy:

- **many small independent tasks** (ensemble members, embeddings, per-gene models): each
  task runs with every pool limited to ``$GPU_ENGINE_TASK_THREADS`` threads (default 1);
  the cores are used by running tasks side by side (Dask workers, one thread each), not by
  threading inside each small task;
- **one large computation** (a GLS chunk, a PLIER iteration, a gene-correlation product)
  keeps the full pools: it is where threads pay.

:func:`limit_threads` applies a limit to BLAS/OpenMP (threadpoolctl) and numba together and
restores them afterwards; :func:`gpu_engine.distributed.map_tasks` uses it for tasks it is
told are small.
"""

from __future__ import annotations

import contextlib
import os
import sys

ENV_TASK_THREADS = "GPU_ENGINE_TASK_THREADS"


def task_threads() -> int:
    """Threads per small task: ``$GPU_ENGINE_TASK_THREADS`` (default 1)."""
    try:
        return max(1, int(os.environ.get(ENV_TASK_THREADS, "1")))
    except ValueError:
        return 1


@contextlib.contextmanager
def limit_threads(n: int | None = None):
    """Limit BLAS, OpenMP and (when numba is loaded) numba to ``n`` threads (default
    :func:`task_threads`) inside the block."""
    from threadpoolctl import threadpool_limits

    n = task_threads() if n is None else max(1, int(n))
    numba = sys.modules.get("numba")
    old = None
    if numba is not None:
        old = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        if numba is not None and old is not None:
            numba.set_num_threads(old)


def _limited(fn, n, *args, **kwargs):
    with limit_threads(n):
        return fn(*args, **kwargs)
