"""Small statistical building blocks shared by every method.

- :func:`standardize`: z-scores along rows or columns (ddof = 1 by default, as R's ``sd`` and
  the reference tools use), on any backend, through the kernels in
  :mod:`gpu_engine.kernels.standardize`.
- :func:`fdr_bh`: Benjamini–Hochberg adjusted p-values (``p.adjust(method="BH")``).
"""

from __future__ import annotations

import numpy as np

from .backend import array_kind, get_backend
from .errors import InputError, preview


def standardize(X, *, axis: int = 1, ddof: int = 1, backend=None, labels=None,
                what: str = "matrix", return_moments: bool = False):
    """Standardize ``X`` to mean 0 and sd 1 along ``axis`` (1: each row, 0: each column).

    ``X`` may be NumPy, cupy or a pandas DataFrame; the result has the same kind (a
    DataFrame keeps its labels). A row/column whose sd is at most 1e-12 of its |mean| counts
    as constant (its computed sd is rounding noise). ``backend`` chooses where to compute; by default cupy input
    stays on the GPU and anything else runs on the CPU kernel. A constant or NaN-holding
    row/column is an :class:`InputError` naming it (``labels`` names rows/columns for arrays).
    With ``return_moments`` also returns the per-row/column means and sds (float64 NumPy).
    """
    from .kernels import registry

    kind = array_kind(X)
    frame = X if kind == "pandas" else None
    if frame is not None:
        labels = frame.index if axis == 1 else frame.columns
        X = frame.to_numpy()
    be = get_backend(backend if backend is not None else ("gpu" if kind == "cupy" else "cpu"))
    data = be.asarray(X)
    if data.ndim != 2:
        raise InputError(f"{what}: expected a 2-D matrix, got shape {tuple(data.shape)}")
    if data.dtype not in (np.float32, np.float64):
        data = data.astype(np.float64)
    rows = data if axis == 1 else data.T
    Z, mean, sd = registry.call("standardize_rows", be, be.xp.ascontiguousarray(rows), ddof)
    mean, sd = be.to_host(mean), be.to_host(sd)
    # a constant row's sd is rounding noise (~1e-16·|mean|), not 0: treat sd ≤ 1e-12·|mean|
    # as zero variance, or its "z-scores" would be amplified noise
    bad = ~(np.isfinite(sd) & (sd > 0) & (sd > 1e-12 * np.abs(mean)))
    if bad.any():
        names = np.asarray(labels)[bad] if labels is not None else np.flatnonzero(bad)
        dim = "row" if axis == 1 else "column"
        nan_rows = ~np.isfinite(mean[bad])
        cause = ("missing (NaN) or infinite values" if nan_rows.all() else
                 "zero variance" if not nan_rows.any() else "zero variance or NaN values")
        raise InputError(f"{what}: {int(bad.sum())} {dim}(s) cannot be standardized "
                         f"({cause}): {preview(names)}; drop or fix them first")
    if axis == 0:
        Z = Z.T
    if frame is not None:
        import pandas as pd

        Z = pd.DataFrame(be.to_host(Z), index=frame.index, columns=frame.columns)
    elif kind == "numpy":
        Z = be.to_host(Z)
    return (Z, mean, sd) if return_moments else Z


def fdr_bh(pvalues, *, backend=None):
    """Benjamini–Hochberg adjusted p-values of any-shaped ``pvalues`` (NaN stays NaN and does
    not count towards the number of tests). Same kind and shape as the input.

    q_(i) = min_{j ≥ i} p_(j)·m/j over the sorted p-values, capped at 1 — R's
    ``p.adjust(p, "BH")`` and ``scipy.stats.false_discovery_control``.
    """
    kind = array_kind(pvalues)
    be = get_backend(backend if backend is not None else ("gpu" if kind == "cupy" else "cpu"))
    p = be.to_host(be.asarray(pvalues, dtype=np.float64))
    flat = p.ravel()
    ok = ~np.isnan(flat)
    if ((flat[ok] < 0) | (flat[ok] > 1)).any():
        raise InputError("fdr_bh: p-values must lie in [0, 1]")
    q = np.full_like(flat, np.nan)
    vals = flat[ok]
    m = vals.size
    if m:
        order = np.argsort(vals, kind="stable")
        ranked = vals[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        out = np.empty(m)
        out[order] = np.minimum(ranked, 1.0)
        q[ok] = out
    q = q.reshape(p.shape)
    if kind == "pandas":
        return pvalues.__class__(q, index=pvalues.index,
                                 **({"columns": pvalues.columns} if q.ndim == 2 else
                                    {"name": pvalues.name}))
    return be.asarray(q) if kind == "cupy" else q
