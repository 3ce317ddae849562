"""What the kernel launchers share: the array module (numpy or cupy) of an input."""

from __future__ import annotations

import numpy as np


def array_module(a):
    """``cupy`` for a cupy array, else ``numpy`` (the simulator runs on NumPy arrays)."""
    if type(a).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np
