"""gpu_engine: gene-module genetics (PLIER, TWAS, PhenoPLIER GLS, clustering, drugs, CCC)
on a laptop CPU, one GPU or many GPUs with Dask-CUDA — with the reference tools' numbers.

Importing this package is cheap and side-effect free: it imports neither cupy, cudf, cuml
nor numba.cuda and never initialises CUDA. Submodules load on first use::

    import gpu_engine
    be = gpu_engine.backend.get_backend("auto")
    world = gpu_engine.datasets.generate_world("world_dir", scale="small", seed=0)
"""

from __future__ import annotations

import importlib
import pkgutil

from ._version import __version__

_SUBMODULES = sorted(m.name for m in pkgutil.iter_modules(__path__)
                     if not m.name.startswith("_"))


def __getattr__(name):
    if name in _SUBMODULES or name == "kernels":
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'gpu_engine' has no attribute {name!r}")


__all__ = ["__version__", *_SUBMODULES]
