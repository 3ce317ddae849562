"""Start-up: what a user waits for before any work — imports, one tiny S-PrediXcan call, and
the first ``gpu-engine demo`` after an install (every kernel compiled) against a cached one.

Every command runs in a fresh process, as a user's does. Cases (``quick`` / ``full``):

- ``import``: ``python -c "import gpu_engine"`` against the floor every tool of this field
  pays, ``import numpy, pandas, scipy.special``.
- ``cli``: ``gpu-engine --help`` against the same floor.
- ``spredixcan one gene``: ``gpu-engine twas spredixcan`` on a one-gene, one-tissue world
  (kernels cached) against MetaXcan 0.7.5's ``SPrediXcan.py`` on its 3-gene fixture, 1.6 s
  on this machine type (recorded by hand when the gap was reported; MetaXcan needs numpy < 2
  and is not installed here).
- ``demo first run`` (``full`` only): ``gpu-engine demo`` with an empty Numba cache (what a
  fresh install pays) against the same with the cache warm.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from gpu_engine.benchmarking import Case

_FLOOR = [sys.executable, "-c", "import numpy, pandas, scipy.special"]
_CLI = [sys.executable, "-m", "gpu_engine"]


def _run(argv, env=None, cwd=None):
    def call():
        p = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
        if p.returncode:
            raise RuntimeError(f"{' '.join(map(str, argv))} failed:\n{p.stderr[-2000:]}")
        return p.returncode
    return call


def _one_gene_world(root: Path) -> list[str]:
    from gpu_engine.datasets.twas import make_twas_world, write_twas_world

    tw = make_twas_world(n_genes=1, n_tissues=1, model_fraction=1.0, seed=3)
    write_twas_world(tw, root)
    tissue = next(iter(tw.models))
    return ["twas", "spredixcan", "--model_db_path", str(root / "models" / f"TW_{tissue}.db"),
            "--covariance", str(root / "covariances" / f"TW_{tissue}.txt.gz"),
            "--gwas_file", str(root / "gwas" / "gwas.tsv.gz"), "--beta_column", "BETA",
            "--se_column", "SE", "--output_file", str(root / "out.csv"), "--overwrite"]


def cases(size: str, backend) -> list[Case]:
    tmp = Path(tempfile.mkdtemp(prefix="gpu_engine_startup_"))
    out = [
        Case("import", {"processes": 1}, _run(_FLOOR),
             _run([sys.executable, "-c", "import gpu_engine"]),
             "import numpy, pandas, scipy.special", "import gpu_engine", "cpu"),
        Case("cli", {"processes": 1}, _run(_FLOOR), _run([*_CLI, "--help"]),
             "import numpy, pandas, scipy.special", "gpu-engine --help", "cpu"),
    ]
    sp = _one_gene_world(tmp / "world")
    out.append(Case("spredixcan one gene", {"genes": 1, "tissues": 1}, lambda: None,
                    _run([*_CLI, "--backend", "cpu", *sp]), "MetaXcan 0.7.5 SPrediXcan.py",
                    "gpu-engine twas spredixcan", "cpu", baseline_recorded_s=1.6,
                    notes={"baseline": "MetaXcan on its own 3-gene fixture, one tissue, "
                                       "measured by hand (issue 16)"}))
    if size == "full":
        def first_run():
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "NUMBA_CACHE_DIR": cache}
                return _run([*_CLI, "demo", "--out", str(tmp / "demo_first")], env=env)()

        warm = {**os.environ, "NUMBA_CACHE_DIR": str(tmp / "numba_cache")}
        out.append(Case("demo first run", {"scale": "small"}, first_run,
                        _run([*_CLI, "demo", "--out", str(tmp / "demo_cached")], env=warm),
                        "first run (empty Numba cache)", "cached kernels", "cpu", repeats=1,
                        warmup=1, notes={"baseline": "every kernel compiled, as after a "
                                                     "fresh install"}))
    return out
