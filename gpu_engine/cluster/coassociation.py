"""Co-association distance of a clustering ensemble (EAC), on the CPU or GPU backend.

D_ij = fraction of the partitions labelling both i and j that put them in different clusters;
missing labels (NaN, negative, e.g. DBSCAN noise) are ignored; NaN where no partition labels
both. Returned condensed (``squareform`` order, float64), ready for
``scipy.cluster.hierarchy.linkage`` — see ``gpu_engine.kernels.coassoc``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..backend import Backend, get_backend
from ..errors import InputError


def ensemble_matrix(partitions) -> np.ndarray:
    """Partitions × objects labels (array or DataFrame; NaN / negative = missing) → objects ×
    partitions int16 with −1 for missing and each partition's labels re-coded 0…k−1."""
    P = partitions.to_numpy() if isinstance(partitions, pd.DataFrame) else np.asarray(partitions)
    if P.ndim != 2:
        raise InputError(f"ensemble: expected a 2-D partitions × objects array, got {P.ndim}-D")
    P = P.astype(np.float64)
    L = np.full(P.shape, -1, np.int16)
    for r in range(P.shape[0]):
        ok = np.isfinite(P[r]) & (P[r] >= 0)
        if ok.any():
            _, codes = np.unique(P[r, ok], return_inverse=True)
            if codes.max() >= np.iinfo(np.int16).max:
                raise InputError(f"ensemble: partition {r} has more than 32,766 clusters")
            L[r, ok] = codes
    return np.ascontiguousarray(L.T)


def coassociation(partitions, *, backend: Backend | str | None = None,
                  kernel: str | None = None) -> np.ndarray:
    """Condensed co-association distance of the objects (columns of ``partitions``)."""
    from ..kernels import registry

    be = get_backend(backend)
    L = ensemble_matrix(partitions)
    return be.to_host(registry.call("coassoc", be, L, kernel=kernel))
