"""One reading layer: every reader turns the ways a file can be broken into one
:class:`~gpu_engine.errors.InputError` that names the file and says what to do.

A truncated gzip raises ``EOFError`` (which click would print as a bare ``Aborted!``), zlib
errors or pyarrow's ``OSError: Truncated compressed stream`` (without the file's name);
random bytes raise ``UnicodeDecodeError``. :func:`reading` wraps a reader's body::

    with reading(path, "GWAS file"):
        ... parse ...
"""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib

from ..errors import GpuEngineError, InputError

_DAMAGED = ("truncated", "compressed", "corrupt", "crc", "invalid", "not a gzip")


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str):
    """Re-raise any failure to read ``path`` as an InputError naming it (``what``: which
    input it is, e.g. ``"SNP covariance file"``)."""
    try:
        yield
    except GpuEngineError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"{what} {path}: the compressed file is truncated or damaged ({exc}); "
                         "download or write it again") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path}: not a text file (byte {exc.start:,} is not UTF-8 "
                         "text); check that this is the right file") from None
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        text = str(exc)
        hint = ("the compressed file is truncated or damaged; download or write it again"
                if any(w in text.lower() for w in _DAMAGED) else "check the file")
        raise InputError(f"{what} {path}: could not be read ({text}); {hint}") from None
