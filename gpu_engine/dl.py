"""The optional deep-learning dependencies (the ``[dl]`` extra), imported only when needed:
``import gpu_engine`` never imports torch or captum."""

from __future__ import annotations

from .errors import GpuEngineError

_HINT = ("pip install 'gpu-engine[dl]' (CPU machines: pip install torch==2.13.0 first, or pip "
         "downloads a CUDA build)")


def require_torch(what: str = "this model"):
    """``torch``, or an error saying how to install it."""
    try:
        import torch
    except ImportError:  # pragma: no cover - the message is the point
        raise GpuEngineError(f"{what} needs PyTorch: {_HINT}") from None
    return torch


def require_captum(what: str = "DeepLIFT with captum"):
    """``captum.attr``, or an error saying how to install it."""
    try:
        import captum.attr as attr
    except ImportError:  # pragma: no cover
        raise GpuEngineError(f"{what} needs captum: {_HINT}") from None
    return attr
