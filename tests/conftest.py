"""Test setup: the CUDA simulator when no GPU is present, markers, shared fixtures.

This must run before numba is first imported: without a GPU, NUMBA_ENABLE_CUDASIM=1 makes
``numba.cuda`` kernels run in the simulator, so the kernel-agreement tests (marker ``sim``)
run everywhere. Tests marked ``gpu`` need a real device and cupy and are skipped elsewhere.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from pathlib import Path

import pytest


def _gpu_present() -> bool:
    """Ask the CUDA driver directly (no numba, no cupy) whether a device exists."""
    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if lib.cuInit(0) != 0:
                return False
            count = ctypes.c_int(0)
            return lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
        except AttributeError:
            return False
    return False


HAS_GPU = _gpu_present()
if not HAS_GPU:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
HAS_CUPY = importlib.util.find_spec("cupy") is not None
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GPU_ENGINE_SHARED", REPO.parent / "shared"))


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU and cupy")
    for item in items:
        if "gpu" in item.keywords and not (HAS_GPU and HAS_CUPY):
            item.add_marker(skip_gpu)


def pytest_report_header(config):
    mode = "real GPU" if HAS_GPU else "Numba CUDA simulator"
    return f"gpu_engine: CUDA kernels run on the {mode}; shared fixtures at {SHARED}"


@pytest.fixture(scope="session")
def shared() -> Path:
    """``../shared`` (or $GPU_ENGINE_SHARED): the real-data fixtures."""
    if not SHARED.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    from gpu_engine.datasets import generate_world

    return generate_world(tmp_path_factory.mktemp("worlds") / "small", scale="small", seed=0)


@pytest.fixture(scope="session")
def medium_world(tmp_path_factory):
    from gpu_engine.datasets import generate_world

    return generate_world(tmp_path_factory.mktemp("worlds") / "medium", scale="medium", seed=0)
