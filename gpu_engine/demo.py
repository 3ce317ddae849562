"""``gpu-engine demo``: generate a small world, run every pipeline stage, score each against
the planted truth, and summarise.

Each stage is a function ``stage(ctx) -> list of rows`` where a row is a dict with keys
``stage, metric, value, target, ok``; stages register themselves in :data:`STAGES` in
pipeline order. Later issues add their stage (PLIER, GLS, clustering, drugs, …) here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from .backend import get_backend
from .datasets import World, check_world, generate_world
from .io import write_table


@dataclass
class DemoContext:
    out: Path
    scale: str = "small"
    seed: int = 0
    backend: str | None = "auto"
    progress: bool = False
    world: World | None = None
    timings: dict = field(default_factory=dict)


def stage_world(ctx: DemoContext) -> list[dict]:
    """Generate the world and verify its planted structure."""
    ctx.world = generate_world(ctx.out / "world", scale=ctx.scale, seed=ctx.seed, overwrite=True,
                               progress=ctx.progress)
    checks = check_world(ctx.world)
    return [{"stage": "world", "metric": r.check, "value": r.value, "target": r.target,
             "ok": r.ok} for r in checks.itertuples()]


STAGES: list[tuple[str, Callable[[DemoContext], list[dict]]]] = [
    ("world", stage_world),
]


def run_demo(out: str | Path = "gpu_engine_demo", *, scale: str = "small", seed: int = 0,
             backend: str | None = "auto", progress: bool = False,
             on_stage: Callable[[str, float], None] | None = None) -> pd.DataFrame:
    """Run every stage into ``out``; returns (and writes ``out/summary.tsv``) the summary."""
    ctx = DemoContext(out=Path(out), scale=scale, seed=seed, backend=backend, progress=progress)
    ctx.out.mkdir(parents=True, exist_ok=True)
    be = get_backend(backend)
    rows = []
    for name, stage in STAGES:
        t0 = time.perf_counter()
        rows.extend(stage(ctx))
        ctx.timings[name] = time.perf_counter() - t0
        if on_stage:
            on_stage(name, ctx.timings[name])
    summary = pd.DataFrame(rows, columns=["stage", "metric", "value", "target", "ok"])
    write_table(summary, ctx.out / "summary.tsv")
    with open(ctx.out / "summary.json", "w") as fh:
        json.dump({"scale": scale, "seed": seed, "backend": be.name,
                   "timings_s": ctx.timings, "all_ok": bool(summary["ok"].all())}, fh, indent=1)
    return summary
