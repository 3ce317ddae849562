"""Numba kernels, installed as ``gpu_engine.kernels``.

Each module holds, side by side, for one computation:

- ``<name>_reference``: plain NumPy, slow and obviously right — the definition;
- ``<name>_cpu``: a ``numba.njit`` kernel (parallel where it pays);
- ``<name>_cuda``: a ``numba.cuda.jit`` kernel plus its launcher.

and a ``CUDA_SIGNATURES`` dict mapping every CUDA kernel's name to the signatures it is
compiled for, which the test suite compiles to PTX. Tests assert the three versions agree.
Modules are imported on first use; importing :mod:`gpu_engine` does not import them.
CUDA device functions are declared ``@cuda.jit(device=True, inline="always")``: inlined, they
compile to PTX on machines without a CUDA driver, where the PTX check runs.
"""

KERNEL_MODULES = ("standardize", "gls", "plier", "twas", "ccc", "coassoc", "ranks", "topk")
"""Every kernel module; :mod:`gpu_engine.kernels.registry` maps kernel names to them and is
the one dispatch (name + backend → implementation)."""
