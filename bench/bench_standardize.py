"""Row standardization (PLIER rowNorm, GLS z-scoring): NumPy vs our kernels.

Sizes: ``quick`` 2,000 genes × 5,000 samples; ``full`` the MultiPLIER recount2 compendium,
6,750 genes × 37,032 samples (2.0 GB in float64).
CPU: NumPy ``(X - mean) / std`` vs the numba CPU kernel (parallel over rows).
GPU: the same NumPy baseline vs the CUDA kernel on device-resident data, and cupy's
``(X - mean) / std`` vs the CUDA kernel (both on the GPU).
"""

from __future__ import annotations

import numpy as np

from gpu_engine.benchmarking import Case
from gpu_engine.kernels import standardize as k

SIZES = {"quick": (2000, 5000), "full": (6750, 37032)}


def _maxdiff(a, b):
    a = a[0] if isinstance(a, tuple) else a
    b = b[0] if isinstance(b, tuple) else b
    a = a.get() if hasattr(a, "get") else a
    b = b.get() if hasattr(b, "get") else b
    return float(np.nanmax(np.abs(a - b)))


def cases(size: str, backend) -> list[Case]:
    n_genes, n_samples = SIZES[size]
    X = np.random.default_rng(0).lognormal(1.0, 1.0, (n_genes, n_samples))
    shape = {"genes": n_genes, "samples": n_samples}
    out = [Case("cpu kernel", shape, lambda: k.standardize_rows_reference(X),
                lambda: k.standardize_rows_cpu(X), "numpy", "numba cpu", "cpu", _maxdiff)]
    if backend.is_gpu:
        cp = backend.xp
        Xd = cp.asarray(X)

        def cupy_naive():
            m = Xd.mean(axis=1, keepdims=True)
            return (Xd - m) / Xd.std(axis=1, ddof=1, keepdims=True)

        out.append(Case("cuda kernel vs numpy", shape, lambda: k.standardize_rows_reference(X),
                        lambda: k.standardize_rows_cuda(Xd), "numpy", "numba cuda", backend.name,
                        _maxdiff))
        out.append(Case("cuda kernel vs cupy", shape, cupy_naive,
                        lambda: k.standardize_rows_cuda(Xd), "cupy", "numba cuda", backend.name,
                        _maxdiff))
    return out
