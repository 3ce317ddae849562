"""The benchmark harness behind ``gpu-engine bench``.

A benchmark is a file ``bench/bench_<name>.py`` defining ``cases(size, backend)`` that returns
:class:`Case` objects: a baseline and our implementation on the same data. The harness runs
both in the same process, ``warmup`` untimed calls then ``repeats`` timed ones each
(synchronizing the GPU before reading the clock), takes medians, prints
``name, size, baseline_s, ours_s, ratio`` and appends one JSON record per case (machine, CPU
and GPU model, library versions, sizes, all times) to ``bench/results/<name>.jsonl``.
Benchmarks never assert timings; a case may compare outputs (``check``) and report the
largest difference, so a fast wrong answer shows.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backend import Backend, _cpu_model, _host_memory

RESULTS_DIRNAME = "results"
ENV_BENCH_DIR = "GPU_ENGINE_BENCH_DIR"
_VERSIONED = ("numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "numba", "numba-cuda",
              "dask", "distributed", "cupy-cuda13x", "cupy-cuda12x", "cudf-cu13", "cuml-cu13",
              "dask-cuda", "statsmodels", "ccc-coef")


@dataclass
class Case:
    """One comparison: ``baseline()`` vs ``ours()`` on the same, already prepared, data."""

    name: str
    size: dict
    baseline: Callable[[], Any]
    ours: Callable[[], Any]
    baseline_label: str
    ours_label: str
    backend: str = "cpu"
    check: Callable[[Any, Any], float] | None = None
    notes: dict = field(default_factory=dict)
    # the baseline timed on a sample and extrapolated: its times are multiplied by this
    # (e.g. total pairs / sampled pairs); records keep the measured times too
    baseline_scale: float = 1.0
    repeats: int | None = None  # override the run's repeats (e.g. 1 for minute-long cases)
    warmup: int | None = None  # override the warm-up calls (0: a case of many minutes whose
    # kernel compilation is negligible beside it)
    # a baseline that cannot run here (e.g. the reference R package): its recorded time in
    # seconds is used instead of calling ``baseline``; the record says so
    baseline_recorded_s: float | None = None


def find_bench_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder holding ``bench_*.py``: ``explicit``, ``$GPU_ENGINE_BENCH_DIR``, ``./bench``,
    or the ``bench/`` beside the installed package's source checkout."""
    candidates = [explicit, os.environ.get(ENV_BENCH_DIR), Path.cwd() / "bench",
                  Path(__file__).resolve().parents[1] / "bench"]
    for c in candidates:
        if c and Path(c).is_dir() and any(Path(c).glob("bench_*.py")):
            return Path(c)
    raise FileNotFoundError(
        "no benchmark folder found (bench/ with bench_*.py files): run from the source "
        "checkout or pass --bench-dir")


def discover(bench_dir: Path) -> dict[str, Path]:
    """Benchmark name -> file, for every ``bench_<name>.py`` in ``bench_dir``."""
    return {p.stem[len("bench_"):]: p for p in sorted(Path(bench_dir).glob("bench_*.py"))}


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"gpu_engine_bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def machine_info(backend: Backend) -> dict:
    """Host, CPU model, cores, memory, and the GPU when the backend uses one."""
    _, total = _host_memory()
    info = {"host": socket.gethostname(), "platform": platform.platform(),
            "cpu": _cpu_model(), "cpu_cores": os.cpu_count(),
            "memory_gib": round(total / 2**30, 1), "backend": backend.name}
    if backend.gpu_name() is not None:
        info["gpu"] = backend.gpu_name()
    info["versions"] = versions()
    return info


def time_call(fn: Callable[[], Any], *, repeats: int, warmup: int,
              sync: Callable[[], None]) -> tuple[list[float], Any]:
    """Times of ``repeats`` calls after ``warmup`` untimed ones; also the last result."""
    result = None
    for _ in range(warmup):
        result = fn()
        sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times, result


def run_case(bench: str, case: Case, backend: Backend, *, repeats: int = 5,
             warmup: int = 1) -> dict:
    """Run one case and return its record (see the module docstring)."""
    sync = backend.synchronize if case.backend in ("gpu", "rapids") else (lambda: None)
    if case.repeats is not None:
        repeats = case.repeats
    if case.warmup is not None:
        warmup = case.warmup
    if case.baseline_recorded_s is not None:
        base_t, base_r = [case.baseline_recorded_s], None
    else:
        base_t, base_r = time_call(case.baseline, repeats=repeats, warmup=warmup, sync=sync)
    ours_t, ours_r = time_call(case.ours, repeats=repeats, warmup=warmup, sync=sync)
    b, o = statistics.median(base_t) * case.baseline_scale, statistics.median(ours_t)
    record = {
        "benchmark": bench, "case": case.name, "size": case.size,
        "baseline": case.baseline_label, "ours": case.ours_label, "backend": case.backend,
        "baseline_s": b, "ours_s": o, "ratio": b / o if o > 0 else float("inf"),
        "baseline_times_s": base_t, "ours_times_s": ours_t, "repeats": repeats,
        "warmup": warmup, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "notes": case.notes,
    }
    if case.baseline_scale != 1.0:
        record["baseline_extrapolated"] = True
        record["baseline_scale"] = case.baseline_scale
        record["baseline_measured_s"] = statistics.median(base_t)
    if case.baseline_recorded_s is not None:
        record["baseline_recorded"] = True
    if case.check is not None:
        record["max_abs_diff"] = float(case.check(base_r, ours_r))
    return record


def _case_key(name: str) -> str:
    """A case name without its backend words, so a GPU case finds its CPU record."""
    import re

    return re.sub(r"\b(cpu|gpu|rapids)\b", "", name).replace(" ,", ",").strip(" ,")


def recorded_baseline(results_dir: Path, bench: str, case: Case) -> dict | None:
    """The newest record of the same benchmark, case and size run on the cpu backend in
    ``results_dir`` (e.g. the committed ``bench/results``), or None."""
    path = Path(results_dir) / f"{bench}.jsonl"
    if not path.is_file():
        return None
    key = _case_key(case.name)
    best = None
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (r.get("backend") == "cpu" and r.get("size") == case.size
                and _case_key(r.get("case", "")) == key):
            if best is None or r.get("date", "") >= best.get("date", ""):
                best = r
    return best


def run_case_ours_only(bench: str, case: Case, backend: Backend, *, records: Path,
                       repeats: int = 1, warmup: int = 1) -> dict:
    """Run only our side of ``case``; the baseline figure comes from the newest cpu record of
    the same case and size under ``records`` (its baseline and its cpu time, so the ratio
    against both is stated). For a GPU machine whose time is short."""
    sync = backend.synchronize if case.backend in ("gpu", "rapids") else (lambda: None)
    if case.warmup is not None:
        warmup = case.warmup
    ours_t, _ = time_call(case.ours, repeats=repeats, warmup=warmup, sync=sync)
    o = statistics.median(ours_t)
    ref = recorded_baseline(records, bench, case)
    b = ref["baseline_s"] if ref else float("nan")
    record = {
        "benchmark": bench, "case": case.name, "size": case.size,
        "baseline": (ref or {}).get("baseline", case.baseline_label), "ours": case.ours_label,
        "backend": case.backend, "baseline_s": b, "ours_s": o,
        "ratio": b / o if o > 0 and ref else float("nan"), "ours_times_s": ours_t,
        "repeats": repeats, "warmup": warmup, "baseline_from_record": ref is not None,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "notes": case.notes,
    }
    if ref:
        record["baseline_record_date"] = ref.get("date")
        record["cpu_ours_s"] = ref.get("ours_s")
        record["ratio_vs_cpu_ours"] = ref["ours_s"] / o if o > 0 else float("inf")
        record["baseline_machine"] = (ref.get("machine") or {}).get("cpu")
    return record


def append_record(results_dir: Path, record: dict) -> Path:
    """Append ``record`` as one JSON line to ``results_dir/<benchmark>.jsonl``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{record['benchmark']}.jsonl"
    with open(path, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
    return path


def format_size(size: dict) -> str:
    return " × ".join(f"{v:,} {k}" if isinstance(v, int) else f"{k}={v}"
                      for k, v in size.items())
