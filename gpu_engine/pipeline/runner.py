"""Plan and run the stages of a config: fingerprints, reuse, checkpoints, logs.

- **Plan** (:func:`plan`): every stage in order with its action — ``run``, ``reuse`` or
  ``skip`` — and why. A stage's fingerprint hashes its parameters, the content of every input
  file it reads (:func:`gpu_engine.io.metadata.fingerprint`, cached by size and mtime in
  ``out/.fingerprints.json``) and its upstream stages' fingerprints. It is reused when
  ``out/<stage>/stage.json`` records the same fingerprint; so touching one input or one
  parameter re-runs exactly the stages that read it and those downstream.
- **Run** (:func:`run`): each stage writes into ``out/.partial/<stage>/``; when it succeeds,
  ``stage.json`` is written and the folder replaces ``out/<stage>/`` in one rename, so a
  killed run never leaves a stage folder that looks complete. Chunked stages write one
  sub-folder per chunk (atomically); a re-run with the same fingerprint keeps the finished
  chunks and computes only the rest.
- One log per stage (``out/logs/<stage>.log``), one Dask client for the run
  (``scheduler``), per-stage backends.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .._version import __version__
from ..errors import GpuEngineError, InputError
from .config import Config
from .stages import STAGES, Stage, StageContext

log = logging.getLogger("gpu_engine.pipeline")
STAGE_JSON = "stage.json"


class StageFailed(GpuEngineError):
    """A stage raised: names the stage, its error and its log."""


@dataclass
class PlanItem:
    stage: Stage
    action: str  # run | reuse | skip
    reason: str
    fingerprint: str | None = None
    inputs: list = field(default_factory=list)
    upstream: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.stage.name


def stage_names() -> list[str]:
    return [s.name for s in STAGES]


# ------------------------------------------------------------------------ fingerprints
class _FileHashes:
    """Content fingerprints cached by (path, size, mtime) so that a re-run does not re-read
    every input."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.cache = json.loads(path.read_text())
        except (OSError, ValueError):
            self.cache = {}

    def __call__(self, p: Path) -> dict:
        from ..io.metadata import fingerprint

        p = Path(p).resolve()
        if p.is_dir():
            files = sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith("."))
            stamp = [(str(x.relative_to(p)), x.stat().st_size, x.stat().st_mtime_ns)
                     for x in files]
        else:
            st = p.stat()
            stamp = [st.st_size, st.st_mtime_ns]
        key = str(p)
        hit = self.cache.get(key)
        if hit and hit["stamp"] == json.loads(json.dumps(stamp)):
            return hit["fingerprint"]
        fp = fingerprint(p)
        self.cache[key] = {"stamp": stamp, "fingerprint": fp}
        return fp

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.cache))
        os.replace(tmp, self.path)


def _recorded(out: Path, name: str) -> dict | None:
    p = out / name / STAGE_JSON
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return doc if doc.get("status") == "complete" else None


def plan(cfg: Config, *, force=(), from_stage: str | None = None,
         until: str | None = None) -> list[PlanItem]:
    """The plan (see the module docstring). ``force``: stages to re-run even if reusable;
    ``from_stage``: re-run it and every stage downstream of it; ``until``: run no stage after
    it (in the order of :data:`~.stages.STAGES`)."""
    names = stage_names()
    for n in [*force, from_stage, until]:
        if n is not None and n not in names:
            raise InputError(f"unknown stage {n!r}; the stages are {', '.join(names)}")
    hashes = _FileHashes(cfg.out / ".fingerprints.json")
    items: dict[str, PlanItem] = {}
    after_until = False
    from_set = {from_stage} if from_stage else set()  # it and the stages that read it
    for st in STAGES:
        enabled = getattr(cfg.stages, st.name).enabled
        why = None if enabled else "disabled in the config (enabled: false)"
        why = why or st.requires(cfg)
        needs = st.needs(cfg) if why is None else []
        for n in needs:
            if why is None and items[n].action == "skip":
                why = f"needs stage {n}, which does not run ({items[n].reason})"
        if why is None and after_until:
            why = f"after --until {until}"
        if why is not None:
            items[st.name] = PlanItem(st, "skip", why)
            after_until = after_until or st.name == until
            continue
        inputs = [hashes(p) for p in st.files(cfg)]
        upstream = {n: items[n].fingerprint for n in needs}
        doc = {"stage": st.name, "params": st.params(cfg),
               "inputs": sorted(f["sha256"] for f in inputs), "upstream": upstream}
        fp = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
        rec = _recorded(cfg.out, st.name)
        if st.name in force:
            action, reason = "run", "--force"
        elif st.name == from_stage or from_set & set(needs):
            from_set.add(st.name)
            action, reason = "run", f"--from {from_stage}"
        elif rec is None:
            action, reason = "run", "no complete result yet"
        elif rec.get("fingerprint") != fp:
            action, reason = "run", _changed(rec, doc)
        else:
            action, reason = "reuse", "same parameters and inputs"
        items[st.name] = PlanItem(st, action, reason, fp, inputs, upstream)
        after_until = after_until or st.name == until
    hashes.save()
    return list(items.values())


def _changed(rec: dict, doc: dict) -> str:
    what = []
    if rec.get("params") != json.loads(json.dumps(doc["params"], default=str)):
        old, new = rec.get("params", {}), doc["params"]
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        what.append("parameters changed (" + ", ".join(keys) + ")")
    if sorted(rec.get("input_hashes", [])) != doc["inputs"]:
        what.append("an input file changed")
    up = rec.get("upstream", {})
    moved = [n for n, v in doc["upstream"].items() if up.get(n) != v]
    if moved:
        what.append("upstream changed (" + ", ".join(moved) + ")")
    return "; ".join(what) or "fingerprint changed"


# --------------------------------------------------------------------------------- run
class _PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 0.2 s)."""

    def __enter__(self):
        self.peak, self._stop = _rss(), threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss())


def _rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # pragma: no cover - not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextlib.contextmanager
def _stage_log(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    # the file gets INFO; the console handlers keep the level the user chose (-v)
    quiet = [(h, h.level) for h in root.handlers]
    for h, lvl in quiet:
        h.setLevel(max(lvl, old_level))
    root.addHandler(handler)
    root.setLevel(min(old_level or logging.INFO, logging.INFO))
    logging.captureWarnings(True)
    warned: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                warned.append(record.getMessage()[:500])

    collect = _Collect()
    root.addHandler(collect)
    try:
        yield warned
    finally:
        root.removeHandler(handler)
        root.removeHandler(collect)
        root.setLevel(old_level)
        for h, lvl in quiet:
            h.setLevel(lvl)
        logging.captureWarnings(False)
        handler.close()


def _chunker(partial: Path):
    from ..io.atomic import atomic_dir

    @contextlib.contextmanager
    def chunk(name: str):
        target = partial / name
        if target.is_dir():
            log.info("chunk %s: done in an earlier run, kept", name)
            yield None
            return
        with atomic_dir(target, overwrite=True) as tmp:
            yield tmp
    return chunk


def _device(backend: str | None) -> str:
    try:
        from ..backend import get_backend

        return get_backend(backend).device()
    except Exception:
        return str(backend)


def run(cfg: Config, *, force=(), from_stage=None, until=None, dry_run: bool = False,
        progress: bool | str = False, on_event=None) -> list[dict]:
    """Run the plan. ``on_event(kind, item, info)`` is called with ``"start"``, ``"done"``,
    ``"reuse"`` and ``"skip"``. Returns one row per stage (stage, action, reason, seconds,
    peak_rss_mib). A stage that raises stops the run with :class:`StageFailed` naming it, its
    error and its log; finished stages stay reusable."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    items = plan(cfg, force=force, from_stage=from_stage, until=until)
    rows = [{"stage": it.name, "action": it.action, "reason": it.reason} for it in items]
    if dry_run:
        return rows
    from ..distributed import get_client

    client = get_client(cfg.scheduler) if any(it.action == "run" for it in items) else None
    try:
        for it, row in zip(items, rows):
            if it.action != "run":
                if on_event:
                    on_event(it.action, it, row)
                continue
            if on_event:
                on_event("start", it, row)
            row.update(_run_stage(cfg, it, items, client, progress))
            if on_event:
                on_event("done", it, row)
    finally:
        if client is not None:
            client.close()
    (cfg.out / "run.json").write_text(json.dumps({
        "engine_version": __version__, "finished": _now(), "stages": rows}, indent=1,
        default=str))
    from ..report import write_report

    write_report(cfg.out, cfg, rows)
    return rows


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _run_stage(cfg: Config, it: PlanItem, items: list[PlanItem], client, progress) -> dict:
    st = it.stage
    final = cfg.out / st.name
    partial = cfg.out / ".partial" / st.name
    marker = partial / ".fingerprint"
    if partial.exists() and (not marker.exists() or marker.read_text() != it.fingerprint):
        shutil.rmtree(partial)  # an interrupted run of other parameters or inputs
    partial.mkdir(parents=True, exist_ok=True)
    marker.write_text(it.fingerprint)
    upstream = {n: cfg.out / n for n in it.upstream}
    params = st.params(cfg)
    backend = params.get("backend")
    log_path = cfg.out / "logs" / f"{st.name}.log"
    started, t0 = _now(), time.perf_counter()
    ctx = StageContext(cfg, partial, upstream, backend, client, _chunker(partial), progress)
    with _stage_log(log_path) as warned, _PeakRSS() as mem:
        log.info("stage %s: %s", st.name, it.reason)
        try:
            counts = st.run(ctx) or {}
        except Exception as exc:
            log.error("stage %s failed:\n%s", st.name, traceback.format_exc())
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StageFailed(f"stage {st.name} failed: {msg} (log: {log_path}); the stages "
                              "before it are kept and will be reused") from exc
    seconds = time.perf_counter() - t0
    doc = {"stage": st.name, "title": st.title, "status": "complete",
           "fingerprint": it.fingerprint, "params": json.loads(json.dumps(params, default=str)),
           "inputs": it.inputs, "input_hashes": sorted(f["sha256"] for f in it.inputs),
           "upstream": it.upstream, "engine_version": __version__, "backend": backend,
           "device": _device(backend), "started": started, "finished": _now(),
           "seconds": seconds, "peak_rss_mib": mem.peak / 2**20, "counts": counts,
           "warnings": warned[:50], "log": str(log_path)}
    marker.unlink()
    (partial / STAGE_JSON).write_text(json.dumps(doc, indent=1, default=str))
    if final.exists():
        old = cfg.out / ".partial" / f"{st.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(partial, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(partial, final)
    return {"seconds": seconds, "peak_rss_mib": mem.peak / 2**20, "counts": counts}
