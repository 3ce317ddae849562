"""Exceptions with messages a user can act on.

Every error raised for bad input names the file, the column or the label at fault and says
what to do. They subclass the built-in exception a caller would expect (``ValueError`` for
bad values, ``FileNotFoundError`` for missing files, ``RuntimeError`` for an unavailable
backend), so ordinary ``except`` clauses keep working.
"""

from __future__ import annotations


class GpuEngineError(Exception):
    """Base class of every error gpu_engine raises on purpose."""


class InputError(GpuEngineError, ValueError):
    """The input data are malformed: wrong shape, NaN, duplicated labels, unknown columns…"""


class InputFileNotFoundError(GpuEngineError, FileNotFoundError):
    """An input path does not exist."""


class BackendUnavailableError(GpuEngineError, RuntimeError):
    """The requested compute backend cannot run on this machine."""


def preview(labels, n: int = 5) -> str:
    """Short, readable list of labels for error messages: ``'A', 'B', 'C' … (12 in all)``."""
    labels = list(labels)
    shown = ", ".join(repr(str(x)) for x in labels[:n])
    if len(labels) > n:
        shown += f" … ({len(labels)} in all)"
    return shown
