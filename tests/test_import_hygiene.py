"""Importing gpu_engine (and its CPU-side modules, and the CLI) must not import cupy, cudf,
cuml or numba.cuda, nor initialise CUDA. Checked in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

FORBIDDEN = ("cupy", "cupyx", "cudf", "cuml", "dask_cuda", "numba.cuda", "pynvml")


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
