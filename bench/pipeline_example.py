"""``gpu-engine run --example SCALE`` end to end in a fresh process: time per stage and peak
resident memory per stage (from each ``stage.json``), the world's generation time, the whole
run's wall time and peak memory, and a second run's (every stage reused). Appends one record
to ``bench/results/pipeline.jsonl``.

    python bench/pipeline_example.py [--scale medium] [--backend cpu] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = r"""
import json, resource, sys, time
from gpu_engine.pipeline import load_config, run
from gpu_engine.pipeline.example import write_example
t0 = time.perf_counter()
cfg = write_example(sys.argv[1], scale=sys.argv[2], backend=sys.argv[3])
t1 = time.perf_counter()
rows = run(load_config(cfg))
t2 = time.perf_counter()
again = run(load_config(cfg))
t3 = time.perf_counter()
print("REC" + json.dumps({"world_s": t1 - t0, "run_s": t2 - t1, "rerun_s": t3 - t2,
      "rerun_actions": sorted({r["action"] for r in again}),
      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="medium", choices=["small", "medium"])
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results",
                    help="folder of pipeline.jsonl (default bench/results)")
    a = ap.parse_args()
    from gpu_engine.backend import get_backend
    from gpu_engine.benchmarking import append_record, machine_info

    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.run([sys.executable, "-c", SCRIPT, d, a.scale, a.backend],
                              capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("REC")]
        if not line:
            raise RuntimeError(proc.stderr[-3000:])
        rec = json.loads(line[0][3:])
        stages = {}
        for p in sorted((Path(d) / "results").glob("*/stage.json")):
            doc = json.loads(p.read_text())
            stages[doc["stage"]] = {"seconds": doc["seconds"], "peak_rss_mib": doc["peak_rss_mib"],
                                    "counts": doc["counts"]}
    be = get_backend(a.backend)
    record = {"benchmark": "pipeline", "case": f"run --example {a.scale}",
              "size": {"scale": a.scale}, "backend": be.name,
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(be),
              **rec, "stages": stages,
              "notes": "peak_rss_gib: the whole process (both runs); per stage: the process's "
                       "resident memory sampled every 0.2 s while the stage ran"}
    append_record(a.results, record)
    print(json.dumps({k: v for k, v in record.items() if k != "machine"}, indent=1))



if __name__ == "__main__":
    main()
