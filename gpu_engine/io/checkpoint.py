"""Checkpoints inside long computations: named blocks of arrays in a folder.

A long function (the clustering ensemble, the null calibration, the drug scores) that is
given ``checkpoint=folder`` saves each finished block of its work as ``<folder>/<name>.npz``
(written atomically: a block killed half-way leaves no file) and, when called again with the
same folder, loads the finished blocks instead of recomputing them. The caller guarantees
that the folder belongs to the same inputs and parameters (``gpu-engine run`` keys it by the
stage's fingerprint); the results do not depend on whether blocks were loaded or computed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path

log = logging.getLogger(__name__)


class Checkpoint:
    """Blocks of named arrays under ``folder`` (created when the first block is saved)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.loaded = 0
        self.saved = 0

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.npz"

    def load(self, name: str) -> dict[str, np.ndarray] | None:
        """The arrays of block ``name``, or None when it has not been saved."""
        p = self._path(name)
        if not p.is_file():
            return None
        with np.load(p, allow_pickle=False) as f:
            out = {k: f[k] for k in f.files}
        self.loaded += 1
        log.debug("checkpoint %s: block %s loaded", self.folder, name)
        return out

    def save(self, name: str, **arrays: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self._path(name)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        self.saved += 1


    def load_frame(self, name: str):
        """Block ``name`` saved by :meth:`save_frame` (a DataFrame), or None."""
        import pandas as pd

        p = self.folder / f"{name}.parquet"
        if not p.is_file():
            return None
        self.loaded += 1
        return pd.read_parquet(p)

    def save_frame(self, name: str, frame) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"{name}.parquet") as tmp:
            frame.to_parquet(tmp)
        self.saved += 1


def as_checkpoint(checkpoint) -> Checkpoint | None:
    """None, a folder, or a :class:`Checkpoint` → a :class:`Checkpoint` (or None)."""
    if checkpoint is None or isinstance(checkpoint, Checkpoint):
        return checkpoint
    return Checkpoint(checkpoint)
