"""Run metadata stored in every result file.

Parquet files written by gpu_engine carry one JSON document under the schema metadata key
``gpu_engine``: engine version, backend, device, parameters, input fingerprints, time.
:func:`read_metadata` returns it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._version import __version__

METADATA_KEY = b"gpu_engine"
_FULL_HASH_LIMIT = 64 * 2**20
_EDGE = 2**20


def fingerprint(path: str | os.PathLike) -> dict:
    """Identify an input file or folder: size and a sha256.

    Files up to 64 MiB are hashed whole (``method='sha256'``); larger files hash their size,
    first and last MiB (``method='sha256-head-tail'``), so fingerprinting a 10 GB matrix stays
    instant. A folder hashes the sorted fingerprints of the files in it.
    """
    path = Path(path)
    if path.is_dir():
        members = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        h = hashlib.sha256()
        size = 0
        for p in members:
            fp = fingerprint(p)
            size += fp["size"]
            h.update(f"{p.relative_to(path)}:{fp['sha256']}\n".encode())
        return {"path": str(path), "size": size, "files": len(members), "sha256": h.hexdigest(),
                "method": "sha256-of-members"}
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
            method = "sha256"
        else:
            h.update(str(size).encode())
            h.update(fh.read(_EDGE))
            fh.seek(max(0, size - _EDGE))
            h.update(fh.read(_EDGE))
            method = "sha256-head-tail"
    return {"path": str(path), "size": size, "sha256": h.hexdigest(), "method": method}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return repr(value)


def run_metadata(*, backend=None, parameters: dict | None = None,
                 inputs: Iterable[str | os.PathLike] = (), command: str | None = None) -> dict:
    """The metadata document for one output.

    ``backend`` is a :class:`~gpu_engine.backend.Backend` or a backend name (``None``: cpu,
    nothing resolved). ``inputs`` are paths to fingerprint.
    """
    from ..backend import Backend, get_backend
    from ..kernels import registry

    if backend is None:
        be_info = {"backend": "cpu"}
    else:
        be = backend if isinstance(backend, Backend) else get_backend(backend)
        be_info = be.describe()
    return {
        "engine": "gpu_engine",
        "engine_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        **be_info,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "parameters": _jsonable(parameters or {}),
        "inputs": [fingerprint(p) for p in inputs],
        # kernels that ran their CPU version on a GPU backend in this process, and why
        "kernel_fallbacks": list(registry.FALLBACKS),
    }


def encode_metadata(meta: dict) -> bytes:
    return json.dumps(_jsonable(meta), sort_keys=True).encode()


def read_metadata(path: str | os.PathLike) -> dict:
    """The gpu_engine metadata of a Parquet file written by :func:`~gpu_engine.io.write_table`
    (``{}`` when it has none). For a folder of parts, the first part's."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        parts = sorted(path.glob("*.parquet"))
        if not parts:
            return {}
        path = parts[0]
    md = pq.read_schema(path).metadata or {}
    raw = md.get(METADATA_KEY)
    return json.loads(raw) if raw else {}
