"""Backend selection, availability errors, transfers, memory-aware batching, output kinds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpu_engine import backend as bk
from gpu_engine.errors import BackendUnavailableError

from .conftest import HAS_CUPY, HAS_GPU


@pytest.fixture
def fake_probes(monkeypatch):
    """Pretend-availability of each backend, without touching any GPU library."""
    def set_(gpu: bool, rapids: bool):
        monkeypatch.setitem(bk._PROBES, "gpu", lambda: bk.Availability("gpu", gpu, "" if gpu else "no GPU here"))
        monkeypatch.setitem(bk._PROBES, "rapids",
                            lambda: bk.Availability("rapids", rapids, "" if rapids else "no cuDF here"))
        bk.probe.cache_clear()
        bk._backend.cache_clear()
    yield set_
    bk.probe.cache_clear()
    bk._backend.cache_clear()


def test_cpu_always_available():
    be = bk.get_backend("cpu")
    assert be.name == "cpu" and be.xp is np and not be.is_gpu
    assert bk.probe("cpu").ok


@pytest.mark.parametrize("gpu,rapids,expected", [(False, False, "cpu"), (True, False, "gpu"),
                                                 (True, True, "rapids")])
def test_auto_picks_richest(fake_probes, gpu, rapids, expected):
    fake_probes(gpu, rapids)
    assert bk.resolve("auto") == expected


def test_explicit_gpu_without_device_is_an_error(fake_probes):
    fake_probes(False, False)
    with pytest.raises(BackendUnavailableError, match="'gpu' was requested but cannot run here: "
                                                      "no GPU here.*--backend cpu"):
        bk.get_backend("gpu")
    with pytest.raises(BackendUnavailableError, match="no cuDF here"):
        bk.get_backend("rapids")


@pytest.mark.skipif(HAS_GPU and HAS_CUPY, reason="this machine has a GPU")
def test_real_probe_refuses_gpu_here():
    bk.probe.cache_clear()
    assert not bk.probe("gpu").ok and bk.probe("gpu").reason
    with pytest.raises(BackendUnavailableError):
        bk.get_backend("gpu")
    assert bk.resolve("auto") == "cpu"


def test_unknown_backend_lists_choices():
    with pytest.raises(ValueError, match="cpu, gpu, rapids, auto"):
        bk.get_backend("tpu")


def test_environment_variable_sets_default(monkeypatch, fake_probes):
    fake_probes(False, False)
    monkeypatch.setenv(bk.ENV_BACKEND, "cpu")
    assert bk.resolve(None) == "cpu"
    monkeypatch.setenv(bk.ENV_BACKEND, "gpu")
    with pytest.raises(BackendUnavailableError):
        bk.resolve(None)


def test_transfers_on_cpu_are_identity():
    be = bk.get_backend("cpu")
    x = np.arange(6.0).reshape(2, 3)
    assert be.asarray(x) is x
    np.testing.assert_array_equal(be.asarray(pd.DataFrame(x)), x)
    assert be.to_host(x) is x


def test_batches_cover_everything_within_memory_limit(monkeypatch):
    be = bk.get_backend("cpu")
    monkeypatch.setenv(bk.ENV_MEMORY_LIMIT, "1MiB")
    free, _ = be.memory()
    assert free == 2**20
    sl = be.batches(1000, bytes_per_item=10_000, fraction=0.5)  # 52 items per batch
    assert sl[0] == slice(0, 52) and sl[-1].stop == 1000
    assert np.array_equal(np.concatenate([np.arange(s.start, s.stop) for s in sl]), np.arange(1000))
    assert be.batch_size(1000, 10_000, max_items=7) == 7
    assert be.batches(0, 10) == []
    with pytest.raises(MemoryError, match="only 1.0 MiB is free"):
        be.batch_size(10, bytes_per_item=2**21)


def test_memory_limit_parsing():
    assert bk._parse_bytes("4GB") == 4 * 2**30
    assert bk._parse_bytes("512 MiB") == 512 * 2**20
    with pytest.raises(ValueError, match="GPU_ENGINE_MEMORY_LIMIT"):
        bk._parse_bytes("lots")


def test_array_kind_and_output_kind():
    df = pd.DataFrame({"a": [1.0, 2.0]})
    assert bk.array_kind(df) == "pandas" and bk.array_kind(df.to_numpy()) == "numpy"
    assert bk.array_kind([1, 2]) == "other"
    assert isinstance(bk.as_kind(df, "numpy"), np.ndarray)
    assert bk.as_kind(df, "pandas") is df


def test_describe_cpu():
    d = bk.get_backend("cpu").describe()
    assert d["backend"] == "cpu" and "cores" in d["device"]


@pytest.mark.gpu
def test_gpu_backend_round_trip():
    be = bk.get_backend("gpu")
    x = np.arange(12.0).reshape(3, 4)
    xd = be.asarray(x)
    assert bk.array_kind(xd) == "cupy"
    np.testing.assert_array_equal(be.to_host(xd * 2), x * 2)
    free, total = be.memory()
    assert 0 < free <= total
    assert "GPU" in be.device()
