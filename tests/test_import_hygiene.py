"""Importing gpu_engine (and its CPU-side modules, and the CLI) must not import cupy, cudf,
cuml, numba.cuda or torch, nor initialise CUDA. Checked in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# torch and captum too: the CNN expression model and DEcode import them inside their
# functions only (the [dl] extra)
FORBIDDEN = ("cupy", "cupyx", "cudf", "cuml", "dask_cuda", "numba.cuda", "pynvml", "torch",
             "captum")


def _modules_after(code: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, env=env, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("code", [
    "import gpu_engine",
    "import gpu_engine, gpu_engine.io, gpu_engine.datasets, gpu_engine.backend, gpu_engine.demo",
    "from gpu_engine.backend import get_backend; get_backend('cpu')",
    "import gpu_engine.cli.main",
    "import gpu_engine.gls, gpu_engine.gls.null, gpu_engine.distributed",
    "import gpu_engine.plier, gpu_engine.plier.plots",
    "import gpu_engine.expression, gpu_engine.expression.cnn, gpu_engine.cli.expression_commands",
    "import gpu_engine.expression.cnn_predictor, gpu_engine.expression.fa, "
    "gpu_engine.expression.export, gpu_engine.expression.compare",
    "import gpu_engine.decode, gpu_engine.decode.network, gpu_engine.decode.deeplift, "
    "gpu_engine.decode.training, gpu_engine.dl",
])
def test_no_gpu_library_imported(code):
    loaded = _modules_after(code)
    bad = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert not bad, f"{code!r} imported {bad}"


def test_plain_import_does_not_load_numba():
    # numba is heavy and the CLI's --help must answer at once
    loaded = _modules_after("import gpu_engine, gpu_engine.cli.main, gpu_engine.gls, "
                            "gpu_engine.plier")
    assert "numba" not in loaded


def test_cli_help_runs():
    out = subprocess.run([sys.executable, "-m", "gpu_engine", "--help"], capture_output=True,
                         text=True, check=True)
    assert "gpu-engine" in out.stdout and "demo" in out.stdout


def _all_modules() -> list[str]:
    """Every module of the package except the kernels (which hold the CUDA kernels) and the
    ``python -m gpu_engine`` entry point (which runs the CLI)."""
    import pkgutil

    import gpu_engine

    names = [m.name for m in pkgutil.walk_packages(gpu_engine.__path__, "gpu_engine.")]
    return sorted(n for n in names if not n.startswith("gpu_engine.kernels")
                  and n != "gpu_engine.__main__")


def test_every_subpackage_is_covered():
    mods = _all_modules()
    for pkg in ("gpu_engine.cluster", "gpu_engine.drugs", "gpu_engine.twas", "gpu_engine.ccc",
                "gpu_engine.lvmodel", "gpu_engine.results", "gpu_engine.cli._common"):
        assert pkg in mods


def test_no_module_imports_gpu_libraries():
    # one interpreter imports every module: none may pull in a GPU library, nor numba
    mods = _all_modules()
    loaded = _modules_after("\n".join(f"import {m}" for m in mods))
    bad = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert not bad, f"importing every module imported {bad}"
    assert "numba" not in loaded


def test_cpu_work_does_not_import_numba_cuda():
    # the CUDA kernels beside the CPU ones compile (and import numba.cuda) on first use only
    code = """
import numpy as np, pandas as pd
from gpu_engine.plier import PLIER
from gpu_engine.stats import standardize
from gpu_engine.cluster import coassociation
rng = np.random.default_rng(0)
genes = [f"g{i}" for i in range(80)]
prior = pd.DataFrame((rng.random((80, 8)) < 0.3).astype(float), index=genes,
                     columns=[f"p{j}" for j in range(8)])
Y = pd.DataFrame(rng.normal(size=(80, 20)), index=genes)
PLIER(k=3, max_iter=25, backend="cpu").fit(Y, prior)
standardize(Y, axis=1, backend="cpu")
coassociation(rng.integers(0, 3, (5, 12)).astype(float), backend="cpu")
"""
    loaded = _modules_after(code)
    assert "numba" in loaded  # the CPU kernels ran
    assert not any(m == "numba.cuda" or m.startswith("numba.cuda.") for m in loaded)
