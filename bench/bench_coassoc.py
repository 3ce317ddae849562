"""Co-association distance of a clustering ensemble: our kernel vs a straightforward NumPy
version (one object row at a time, vectorized over the others and the partitions).

Sizes: ``quick`` 1,000 objects × 1,000 partitions; ``full`` the reference's scale, 3,752
traits × 4,428 partitions (PhenoPLIER's code took 851 s). Labels: 2–75 clusters per
partition, 5 % missing (DBSCAN noise / unlabelled). Target: under 10 s on 2 CPU cores and
under 0.5 s on one H100. ``max_abs_diff`` is over the condensed vector (NaN-aware).
"""

from __future__ import annotations

import numpy as np

from gpu_engine.benchmarking import Case

SIZES = {"quick": (1000, 1000), "full": (3752, 4428)}


def make_ensemble(n: int, P: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = rng.integers(2, 76, P)
    L = (rng.uniform(size=(n, P)) * k).astype(np.int16)
    L[rng.uniform(size=L.shape) < 0.05] = -1
    return np.ascontiguousarray(L)


def cases(size: str, backend) -> list[Case]:
    from gpu_engine.kernels import coassoc as kc

    n, P = SIZES[size]
    L = make_ensemble(n, P)

    def diff(a, b):
        a, b = np.asarray(a), np.asarray(b)
        same_nan = np.array_equal(np.isnan(a), np.isnan(b))
        return float(np.nanmax(np.abs(a - b))) if same_nan else float("inf")

    def ours():
        if backend.is_gpu:
            d = kc.coassoc_cuda(backend.xp.asarray(L))
            backend.synchronize()
            return backend.to_host(d)
        return kc.coassoc_cpu(L)

    shape = {"objects": n, "partitions": P}
    notes = {"reference": "PhenoPLIER's co-association step took 851 s at 3,752 × 4,428"}
    out = [Case(f"co-association, {backend.name} vs NumPy rows", shape,
                lambda: kc.coassoc_reference(L), ours, "NumPy, one row at a time",
                f"gpu_engine {backend.name}", backend.name, diff, notes,
                repeats=1 if size == "full" else 3)]
    if backend.is_gpu:
        out.append(Case("co-association, gpu vs cpu (ours)", shape,
                        lambda: kc.coassoc_cpu(L), ours, "gpu_engine cpu",
                        f"gpu_engine {backend.name}", backend.name, diff, notes))
    return out
