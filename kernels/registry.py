"""The one kernel dispatch: a kernel name and a backend (or an explicit implementation) give
the function to call.

Every kernel exists three times, side by side in its module (see the package docstring):
``<name>_reference`` (NumPy), ``<name>_cpu`` (numba) and ``<name>_cuda`` (numba-cuda
launcher). :data:`KERNELS` maps each name to its module; the test suite checks the table
against the modules (a kernel missing from it, or a missing version, fails), runs every
entry's agreement test and compiles every CUDA kernel to PTX from it.

- :func:`implementation`: ``"reference"`` | ``"cpu"`` | ``"cuda"`` for a backend and an
  optional override — the only place that asks whether a backend is a GPU one;
- :func:`get`: the function (its module imported on first use);
- :func:`call`: the function applied to the arguments, NumPy inputs moved to the device for
  the CUDA version; results are left where the kernel put them (on the device for CUDA), so a
  caller can chain kernels without host round trips and copy back once (``be.to_host``);
- :func:`fallback`: record that a GPU run used the CPU version for a reason (logged at
  WARNING and kept in :data:`FALLBACKS`, which :func:`gpu_engine.io.run_metadata` writes into
  every output's metadata) — never silent.
"""

from __future__ import annotations

import importlib
import logging

import numpy as np

log = logging.getLogger(__name__)

IMPLEMENTATIONS = ("reference", "cpu", "cuda")

KERNELS: dict[str, str] = {
    "standardize_rows": "standardize",
    "student_t_sf": "gls",
    "gls_gram": "gls",
    "gls_stats": "gls",
    "enet_cd": "plier",
    "segmented_gram": "twas",
    "ccc_pairs": "ccc",
    "coassoc": "coassoc",
    "row_ranks": "ranks",
    "topk_scores": "topk",
}
"""Kernel name → module under ``gpu_engine.kernels``."""

FALLBACKS: list[dict] = []
"""GPU → CPU fallbacks since the last :func:`take_fallbacks` (kernel, reason)."""


def implementation(backend=None, kernel: str | None = None) -> str:
    """Which version runs: ``kernel`` when given (``"reference"``, ``"cpu"``, ``"cuda"``),
    else ``"cuda"`` on a GPU backend and ``"cpu"`` otherwise."""
    if kernel is not None:
        if kernel not in IMPLEMENTATIONS:
            raise ValueError(f"kernel must be one of {IMPLEMENTATIONS}, not {kernel!r}")
        return kernel
    return "cuda" if backend is not None and backend.is_gpu else "cpu"


def get(name: str, impl: str):
    """The ``impl`` version of kernel ``name``."""
    if name not in KERNELS:
        raise KeyError(f"unknown kernel {name!r}; known: {', '.join(sorted(KERNELS))}")
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, not {impl!r}")
    module = importlib.import_module(f"gpu_engine.kernels.{KERNELS[name]}")
    return getattr(module, f"{name}_{impl}")


def call(name: str, backend, *args, kernel: str | None = None, **kwargs):
    """Run kernel ``name`` on ``backend`` (or the explicit ``kernel`` version)."""
    impl = implementation(backend, kernel)
    if impl == "cuda" and backend is not None:
        args = tuple(backend.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
    return get(name, impl)(*args, **kwargs)


def fallback(name: str, reason: str) -> str:
    """Record that kernel ``name`` runs its CPU version on a GPU backend, and why. Returns
    ``"cpu"`` (the implementation to use)."""
    entry = {"kernel": name, "to": "cpu", "reason": reason}
    if entry not in FALLBACKS:  # once per kernel and reason, however many batches
        FALLBACKS.append(entry)
        log.warning("kernel %s: running the CPU version on the GPU backend (%s)", name, reason)
    return "cpu"


def take_fallbacks() -> list[dict]:
    """The fallbacks recorded so far, and forget them."""
    out = list(FALLBACKS)
    FALLBACKS.clear()
    return out
