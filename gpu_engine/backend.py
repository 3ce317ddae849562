"""Compute backends: ``cpu``, ``gpu``, ``rapids`` and ``auto``.

Every module gets its array namespace, its host/device transfers and its memory-aware
batching from here, and nowhere else::

    be = get_backend("auto")          # or "cpu", "gpu", "rapids"; None reads $GPU_ENGINE_BACKEND
    xp = be.xp                        # numpy or cupy
    Xd = be.asarray(X)                # host -> device (no copy on the cpu backend)
    for sl in be.batches(n_traits, bytes_per_item=8 * n_genes * 3):
        ...                           # slices whose working set fits in device memory
    out = be.to_host(Yd)              # device -> host numpy

- ``cpu``: numpy, scipy, numba CPU kernels. Always available; the reference for every number.
- ``gpu``: cupy (cuBLAS/cuSOLVER) and numba-cuda kernels. Needs a CUDA device, cupy and
  numba-cuda; no cuDF or cuML.
- ``rapids``: ``gpu`` plus cuDF and cuML, when both import.
- ``auto``: the richest of those that work here.

One default rule for every public function and estimator that takes ``backend``: ``None``
(the default) means ``$GPU_ENGINE_BACKEND`` if set, else ``auto`` — the same rule as the
CLI's ``--backend``.

Importing this module imports neither cupy, cudf, cuml nor ``numba.cuda`` and never
initialises CUDA; that happens the first time a GPU backend is asked for.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import platform
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import BackendUnavailableError

BACKENDS = ("cpu", "gpu", "rapids")
CHOICES = BACKENDS + ("auto",)
ENV_BACKEND = "GPU_ENGINE_BACKEND"
ENV_MEMORY_LIMIT = "GPU_ENGINE_MEMORY_LIMIT"


# ----------------------------------------------------------------------------- probing
@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, why (a sentence for the user)."""

    name: str
    ok: bool
    reason: str = ""


def _simulator_enabled() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def _probe_gpu() -> Availability:
    if _simulator_enabled():
        return Availability("gpu", False, "NUMBA_ENABLE_CUDASIM is set: CUDA kernels run in the "
                            "simulator, which is for tests only")
    if importlib.util.find_spec("cupy") is None:
        return Availability("gpu", False, 'cupy is not installed (pip install "gpu-engine[gpu]")')
    try:
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError, missing driver library, …
        return Availability("gpu", False, f"no usable CUDA device ({type(exc).__name__}: {exc})")
    if n < 1:
        return Availability("gpu", False, "no CUDA device found")
    try:
        from numba import cuda

        if not cuda.is_available():
            return Availability("gpu", False, "numba-cuda cannot use the CUDA driver")
    except Exception as exc:
        return Availability("gpu", False, f"numba-cuda is unusable ({type(exc).__name__}: {exc})")
    return Availability("gpu", True)


def _probe_rapids() -> Availability:
    gpu = probe("gpu")
    if not gpu.ok:
        return Availability("rapids", False, gpu.reason)
    missing = [m for m in ("cudf", "cuml") if importlib.util.find_spec(m) is None]
    if missing:
        return Availability("rapids", False, f"{' and '.join(missing)} not installed "
                            '(pip install "gpu-engine[rapids]" or use the RAPIDS image)')
    for mod in ("cudf", "cuml"):
        try:
            importlib.import_module(mod)
        except Exception as exc:
            return Availability("rapids", False, f"{mod} fails to import ({exc})")
    return Availability("rapids", True)


_PROBES = {"cpu": lambda: Availability("cpu", True), "gpu": _probe_gpu, "rapids": _probe_rapids}


@functools.cache
def probe(name: str) -> Availability:
    """Check (once per process) whether backend ``name`` can run here."""
    if name not in _PROBES:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(CHOICES)}")
    return _PROBES[name]()


def available_backends() -> dict[str, Availability]:
    """Availability of every concrete backend, richest last."""
    return {name: probe(name) for name in BACKENDS}


def resolve(name: str | None = "auto") -> str:
    """The concrete backend name that ``name`` selects.

    ``None`` means the environment variable ``GPU_ENGINE_BACKEND`` (default ``auto``).
    ``auto`` picks rapids, then gpu, then cpu, whichever works first. A concrete name that
    cannot run here raises :class:`BackendUnavailableError`; it never falls back silently.
    """
    if name is None:
        name = os.environ.get(ENV_BACKEND, "auto") or "auto"
    name = str(name).lower()
    if name not in CHOICES:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(CHOICES)}")
    if name == "auto":
        for candidate in ("rapids", "gpu"):
            if probe(candidate).ok:
                return candidate
        return "cpu"
    avail = probe(name)
    if not avail.ok:
        raise BackendUnavailableError(
            f"backend {name!r} was requested but cannot run here: {avail.reason}. "
            f"Use --backend cpu (or backend='cpu') to run on the CPU.")
    return name


# ----------------------------------------------------------------------------- memory
def _parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?i?b?)?\s*", text.lower())
    if not m:
        raise ValueError(f"{ENV_MEMORY_LIMIT}={text!r} is not a size such as 4GB or 512MiB")
    unit = (m.group(2) or "b").rstrip("b").rstrip("i")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[unit]
    return int(float(m.group(1)) * scale)


def _host_memory() -> tuple[int, int]:
    """(available, total) bytes of host memory."""
    total = avail = None
    try:
        with open("/proc/meminfo") as fh:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh}
        total, avail = info.get("MemTotal"), info.get("MemAvailable")
    except OSError:
        pass
    if total is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = 8 * 2**30
    if avail is None:
        avail = total // 2
    return int(avail), int(total)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ----------------------------------------------------------------------------- backend
@dataclass(frozen=True)
class Backend:
    """A resolved backend: the array namespace plus transfer and batching helpers."""

    name: str
    _xp: Any = field(repr=False, compare=False, default=None)

    # -- namespaces
    @property
    def xp(self):
        """``numpy`` on cpu, ``cupy`` on gpu/rapids."""
        if self._xp is not None:
            return self._xp
        return np if self.name == "cpu" else importlib.import_module("cupy")

    @property
    def is_gpu(self) -> bool:
        return self.name in ("gpu", "rapids")

    @property
    def special(self):
        """``scipy.special`` or ``cupyx.scipy.special``."""
        return importlib.import_module("cupyx.scipy.special" if self.is_gpu else "scipy.special")

    @property
    def linalg(self):
        """``scipy.linalg`` or ``cupyx.scipy.linalg`` (cuSOLVER)."""
        return importlib.import_module("cupyx.scipy.linalg" if self.is_gpu else "scipy.linalg")

    @property
    def sparse(self):
        """``scipy.sparse`` or ``cupyx.scipy.sparse``."""
        return importlib.import_module("cupyx.scipy.sparse" if self.is_gpu else "scipy.sparse")

    # -- the few operations whose best form differs between host and device
    def lowest_eigenvectors(self, A, k: int):
        """Eigenvectors of the ``k`` smallest eigenvalues of the symmetric ``A`` (overwritten):
        LAPACK's subset solver on the host; cuSOLVER's full ``eigh`` on the device (it has no
        subset mode, and a full solve there is faster than a subset one here)."""
        if self.is_gpu:
            return self.xp.linalg.eigh(A)[1][:, :k]
        from scipy.linalg import eigh

        return eigh(A, subset_by_index=(0, k - 1), overwrite_a=True)[1]

    def operator(self, M):
        """A mostly-zero matrix prepared for repeated products: scipy CSR on the host; a dense
        device array on the GPU (cuBLAS on dense beats cuSPARSE at the densities we see)."""
        if self.is_gpu:
            return self.xp.asarray(M.toarray() if hasattr(M, "toarray") else M)
        from scipy.sparse import csr_matrix

        return csr_matrix(M)

    def sandwich(self, W, A):
        """WᵀAW for scipy sparse ``W`` and ``A``, computed on this backend; a host scipy COO."""
        import scipy.sparse as sp

        if not self.is_gpu:
            return (W.T @ (A @ W)).tocoo()
        Wg = self.sparse.csc_matrix(W)
        T = (Wg.T @ (self.sparse.csr_matrix(A) @ Wg)).tocoo()
        return sp.coo_matrix((self.to_host(T.data), (self.to_host(T.row), self.to_host(T.col))),
                             shape=T.shape)

    def gpu_name(self) -> str | None:
        """The GPU this backend computes on, or None for the cpu backend."""
        return self.device() if self.is_gpu else None

    # -- transfers
    def asarray(self, x, dtype=None):
        """Host or device array-like -> an array of this backend (no copy when already there)."""
        if hasattr(x, "to_numpy") and not self.is_gpu:  # pandas
            x = x.to_numpy()
        if self.is_gpu and hasattr(x, "to_cupy"):  # cudf
            return x.to_cupy(dtype=dtype) if dtype is not None else x.to_cupy()
        if self.is_gpu and hasattr(x, "to_numpy"):  # pandas -> host numpy first
            x = x.to_numpy()
        return self.xp.asarray(x, dtype=dtype)

    def to_host(self, x) -> np.ndarray:
        """Any array of this backend (or numpy) -> numpy."""
        if isinstance(x, np.ndarray):
            return x
        if hasattr(x, "get") and array_kind(x) == "cupy":
            return x.get()
        return np.asarray(x)

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on cpu); call before reading a timer."""
        if self.is_gpu:
            self.xp.cuda.Device().synchronize()

    # -- memory
    def memory(self) -> tuple[int, int]:
        """(free, total) bytes of the memory this backend computes in.

        On GPU the free bytes include blocks cupy's pool holds but does not use.
        ``$GPU_ENGINE_MEMORY_LIMIT`` (e.g. ``2GB``) caps the free figure, to force small batches.
        """
        if self.is_gpu:
            cp = self.xp
            free, total = cp.cuda.Device().mem_info
            free += cp.get_default_memory_pool().free_bytes()
        else:
            free, total = _host_memory()
        limit = os.environ.get(ENV_MEMORY_LIMIT)
        if limit:
            free = min(free, _parse_bytes(limit))
        return int(free), int(total)

    def batch_size(self, n_items: int, bytes_per_item: int, *, fixed_bytes: int = 0,
                   fraction: float = 0.5, max_items: int | None = None) -> int:
        """How many items fit at once in ``fraction`` of free memory, after ``fixed_bytes``.

        ``bytes_per_item`` is the peak working set one item adds (all temporaries included).
        Raises :class:`MemoryError` naming the sizes when not even one item fits.
        """
        if n_items <= 0:
            return 0
        free, _ = self.memory()
        budget = int(free * fraction) - int(fixed_bytes)
        per = max(int(bytes_per_item), 1)
        size = budget // per
        if size < 1:
            raise MemoryError(
                f"{self.name} backend: one item needs {per / 2**20:.1f} MiB on top of "
                f"{fixed_bytes / 2**20:.1f} MiB of shared data, but only {free / 2**20:.1f} MiB "
                f"is free; free memory or use a smaller problem")
        if max_items is not None:
            size = min(size, int(max_items))
        return int(min(size, n_items))

    def batches(self, n_items: int, bytes_per_item: int, **kwargs) -> list[slice]:
        """Contiguous slices covering ``range(n_items)``, each sized by :meth:`batch_size`."""
        size = self.batch_size(n_items, bytes_per_item, **kwargs)
        return [slice(i, min(i + size, n_items)) for i in range(0, n_items, size)] if size else []

    # -- description
    def device(self) -> str:
        """Human-readable device, e.g. ``'NVIDIA H100 80GB HBM3 (GPU 0, 79.2 GiB)'``."""
        if self.is_gpu:
            cp = self.xp
            dev = cp.cuda.Device()
            props = cp.cuda.runtime.getDeviceProperties(dev.id)
            name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            return f"{name} (GPU {dev.id}, {dev.mem_info[1] / 2**30:.1f} GiB)"
        _, total = _host_memory()
        return f"{_cpu_model()} ({os.cpu_count()} cores, {total / 2**30:.1f} GiB)"

    def describe(self) -> dict:
        """Backend name, device and library versions, as stored in output metadata."""
        info = {"backend": self.name, "device": self.device(), "numpy": np.__version__}
        if self.is_gpu:
            cp = self.xp
            info["cupy"] = cp.__version__
            info["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
        if self.name == "rapids":
            for mod in ("cudf", "cuml"):
                info[mod] = importlib.import_module(mod).__version__
        return info


@functools.cache
def _backend(name: str) -> Backend:
    return Backend(name)


def get_backend(name: str | Backend | None = "auto") -> Backend:
    """Resolve ``name`` (see :func:`resolve`) to a :class:`Backend`; a Backend passes through."""
    if isinstance(name, Backend):
        return name
    return _backend(resolve(name))


# ----------------------------------------------------------------------------- output kinds
def array_kind(x) -> str:
    """``'numpy'``, ``'cupy'``, ``'pandas'``, ``'cudf'`` or ``'other'`` — without importing any."""
    mod = type(x).__module__.split(".")[0]
    if mod in ("numpy", "cupy", "pandas", "cudf"):
        return mod
    return "other"


def as_kind(frame, kind: str):
    """Return a pandas DataFrame/Series ``frame`` as the caller's kind.

    ``'pandas'``/``'other'`` -> unchanged; ``'numpy'`` -> ``frame.to_numpy()``; ``'cudf'`` ->
    ``cudf.from_pandas``; ``'cupy'`` -> a cupy array of the values.
    """
    if kind in ("pandas", "other"):
        return frame
    if kind == "numpy":
        return frame.to_numpy()
    if kind == "cudf":
        return importlib.import_module("cudf").from_pandas(frame)
    if kind == "cupy":
        return importlib.import_module("cupy").asarray(frame.to_numpy())
    raise ValueError(f"unknown output kind {kind!r}")
