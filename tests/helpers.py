"""Helpers shared by tests: the PTX compile check for CUDA kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent("""
    import importlib, json, sys
    from numba import cuda
    from numba.cuda.dispatcher import CUDADispatcher
    mod = importlib.import_module(sys.argv[1])
    from gpu_engine.kernels._cuda import realize
    realize(mod)  # the kernels are compiled lazily: make them real dispatchers first
    sigs = getattr(mod, "CUDA_SIGNATURES", {})
    kernels = sorted(n for n, v in vars(mod).items() if isinstance(v, CUDADispatcher)
                     and not v.targetoptions.get("device"))  # device functions compile inline
    out = {"kernels": kernels, "declared": sorted(sigs), "compiled": [], "error": None}
    try:
        for name, signatures in sigs.items():
            for sig in signatures:
                ptx, _ = cuda.compile_ptx(getattr(mod, name).py_func, sig, cc=(9, 0))
                assert ".entry" in ptx or ".visible" in ptx
                out["compiled"].append(f"{name}: {sig}")
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    print("PTXRESULT" + json.dumps(out))
""")

NVVM_MISSING = ("libNVVM", "NVVM", "nvvm", "CUDA_HOME", "cuda toolkit")


def compile_ptx(module: str) -> dict:
    """Compile every CUDA kernel of ``module`` (``gpu_engine.kernels.x``) to PTX for sm_90 in
    a fresh interpreter without the simulator. Returns a dict with ``kernels`` (CUDA
    dispatchers found in the module), ``declared`` (keys of CUDA_SIGNATURES), ``compiled`` and
    ``error``, or ``{"unavailable": reason}`` when this machine has no NVVM."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, module], capture_output=True,
                          text=True, env=env, timeout=600)
    for line in proc.stdout.splitlines():
        if line.startswith("PTXRESULT"):
            result = json.loads(line[len("PTXRESULT"):])
            err = result.get("error") or ""
            if err and any(s in err for s in NVVM_MISSING) and not result["compiled"]:
                return {"unavailable": err}
            return result
    raise AssertionError(f"PTX compile subprocess failed:\n{proc.stdout}\n{proc.stderr}")
