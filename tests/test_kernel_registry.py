"""The kernel registry drives the agreement and PTX checks of every kernel.

- the table matches the modules: every ``<name>_reference/_cpu/_cuda`` triple is registered
  and every registered name has all three;
- one agreement test per kernel: reference == CPU == CUDA (the simulator here, the device
  in the gpu tier) on a small case (a new kernel without a case here fails);
- one PTX test per kernel module: every CUDA kernel has signatures and compiles for sm_90;
- the dispatch picks the version by backend, honours an explicit one, and records fallbacks.

The per-kernel test files keep the edge cases (ties, empty inputs, grid strides, peers).
"""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest

from gpu_engine.backend import get_backend
from gpu_engine.kernels import KERNEL_MODULES, registry

from .conftest import HAS_CUPY, HAS_GPU
from .helpers import compile_ptx


def _standardize(rng):
    return (rng.normal(size=(6, 9)), 1), None


def _student_t(rng):
    return (rng.normal(0, 3, 30), rng.uniform(1, 40, 30)), None


def _gls_gram(rng):
    from .test_kernels_gls import _inputs

    args, _ = _inputs(rng, Lc=2, T=3, m=2, bmax=3, n=20)
    return tuple(args.values()), None


def _gls_stats(rng):
    from .test_kernels_gls import _grams

    return _grams(rng, N=12, q=4, n=30), None


def _enet_cd(rng):
    from .test_kernels_plier import _problem

    X, Z, G, c, idx = _problem(seed=int(rng.integers(100)), n=120, P=12, k=3, m=5)
    return (G, c, idx, 0.01, 0.001, np.zeros(idx.shape)), 5  # u (LVs × candidates) is updated


def _segmented_gram(rng):
    from .test_kernels_twas import _inputs

    return _inputs(rng, [3, 1, 4], [2, 1, 3]), 7  # out is filled


def _ccc_pairs(rng):
    from gpu_engine.ccc import pair_index, prepare

    F = prepare(rng.integers(0, 5, (4, 14)).astype(float))
    pairs = pair_index(4, 0, 6)
    return (F.atoms, F.n_atoms, F.bounds, F.n_groups, F.valid, F.sq, pairs), \
        ("reference", (F.labels(), F.valid, pairs))


def _coassoc(rng):
    from gpu_engine.cluster import ensemble_matrix

    return (ensemble_matrix(rng.integers(0, 3, (6, 10)).astype(float)),), None


def _row_ranks(rng):
    from .test_kernels_ranks import _scores

    return (_scores(rng, n=9, m=15),), None


def _topk(rng):
    from .test_kernels_topk import _inputs

    return _inputs(rng, T=3, G=15, n_drugs=5, kmax=6), None


CASES = {"standardize_rows": _standardize, "student_t_sf": _student_t, "gls_gram": _gls_gram,
         "gls_stats": _gls_stats, "enet_cd": _enet_cd, "segmented_gram": _segmented_gram,
         "ccc_pairs": _ccc_pairs, "coassoc": _coassoc, "row_ranks": _row_ranks,
         "topk_scores": _topk}


def test_registry_matches_the_modules():
    found = set()
    for mod in KERNEL_MODULES:
        m = importlib.import_module(f"gpu_engine.kernels.{mod}")
        names = {re.sub(r"_(reference|cpu|cuda)$", "", n) for n in vars(m)
                 if re.search(r"^[a-z]\w*_(reference|cpu|cuda)$", n)}
        triples = {n for n in names
                   if all(hasattr(m, f"{n}_{i}") for i in registry.IMPLEMENTATIONS)}
        found |= {(n, mod) for n in triples}
    assert found == set(registry.KERNELS.items())
    assert set(CASES) == set(registry.KERNELS), "every registered kernel needs a case here"
    assert set(registry.KERNELS.values()) <= set(KERNEL_MODULES)


def _result(ret, args, inplace):
    out = args[inplace] if inplace is not None and not isinstance(inplace, tuple) else ret
    out = out if isinstance(out, tuple) else (out,)
    return [np.asarray(getattr(o, "get", lambda o=o: o)()) for o in out]


def _assert_same(a, b, name):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-11, err_msg=name)


def _run(name, impl, make, seed, device=None):
    args, extra = make(np.random.default_rng(seed))
    if impl == "reference" and isinstance(extra, tuple):  # its own input form
        args = extra[1]
    inplace = extra if isinstance(extra, int) else None
    args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    if device is not None:
        args = tuple(device.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
    ret = registry.get(name, impl)(*args)
    return _result(ret, args, inplace)


@pytest.mark.parametrize("name", sorted(registry.KERNELS))
def test_cpu_equals_reference(name):
    _assert_same(_run(name, "cpu", CASES[name], 1), _run(name, "reference", CASES[name], 1),
                 name)


@pytest.mark.sim
@pytest.mark.parametrize("name", sorted(registry.KERNELS))
def test_cuda_equals_reference(name):
    if HAS_GPU:
        pytest.skip("the gpu tier runs the CUDA versions on the device")
    _assert_same(_run(name, "cuda", CASES[name], 2), _run(name, "reference", CASES[name], 2),
                 name)


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(registry.KERNELS))
def test_cuda_on_device_equals_reference(name):
    assert HAS_GPU and HAS_CUPY
    be = get_backend("gpu")
    _assert_same(_run(name, "cuda", CASES[name], 3, device=be),
                 _run(name, "reference", CASES[name], 3), name)


@pytest.mark.parametrize("module", sorted(set(registry.KERNELS.values())))
def test_cuda_kernels_compile_to_ptx(module):
    res = compile_ptx(f"gpu_engine.kernels.{module}")
    if "unavailable" in res:
        pytest.skip(f"no NVVM here: {res['unavailable']}")
    assert res["error"] is None, res["error"]
    assert sorted(res["kernels"]) == res["declared"], "a CUDA kernel lacks CUDA_SIGNATURES"
    assert res["compiled"]


def test_dispatch_and_fallbacks():
    cpu = get_backend("cpu")
    assert registry.implementation(cpu) == "cpu"
    assert registry.implementation(cpu, "reference") == "reference"
    with pytest.raises(ValueError, match="kernel must be one of"):
        registry.implementation(cpu, "fast")
    with pytest.raises(KeyError, match="unknown kernel"):
        registry.get("nope", "cpu")
    registry.take_fallbacks()
    assert registry.fallback("ccc_pairs", "why") == "cpu"
    registry.fallback("ccc_pairs", "why")  # recorded once
    from gpu_engine.io import run_metadata

    assert run_metadata()["kernel_fallbacks"] == [{"kernel": "ccc_pairs", "to": "cpu",
                                                   "reason": "why"}]
    assert registry.take_fallbacks() and registry.take_fallbacks() == []
