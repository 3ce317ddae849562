"""The honest comparison (spec ``dl_expression.md`` §6.1): the dlfa CNN with the reference's
full protocol (5 folds × 20 restarts, top 5, 100 epochs) vs PredictDB's elastic net on the
same 80/20 split, per architecture class of a planted world, with bootstrap 95 % intervals
over genes. Not a speed benchmark: it records what the methods achieve.

    python bench/compare_cnn_en.py [--genes-per-architecture 3] [--samples 670] \
        [--p-min 200 --p-max 400] [--restarts 20] [--epochs 100] [--device cpu]

Appends one record to ``bench/results/cnn_vs_en.jsonl`` (machine, versions, sizes, per-class
table, seconds) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes-per-architecture", type=int, default=3)
    ap.add_argument("--samples", type=int, default=670)
    ap.add_argument("--p-min", type=int, default=200)
    ap.add_argument("--p-max", type=int, default=400)
    ap.add_argument("--restarts", type=int, default=20)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "cnn_vs_en.jsonl"))
    a = ap.parse_args()

    from gpu_engine.backend import get_backend
    from gpu_engine.benchmarking import machine_info
    from gpu_engine.datasets.expr_world import generate_expr_world
    from gpu_engine.expression import read_plink
    from gpu_engine.expression.cnn_predictor import DLFAPredictor
    from gpu_engine.expression.compare import compare, en_test_r

    with tempfile.TemporaryDirectory() as tmp:
        w = generate_expr_world(Path(tmp) / "w", n_samples=a.samples,
                                genes_per_architecture=a.genes_per_architecture,
                                p_range=(a.p_min, a.p_max), seed=a.seed, h2=(0.3,),
                                k_causal=(3,))
        G = read_plink(w.genotypes)
        E = w.expression()
        t0 = time.perf_counter()
        cnn = DLFAPredictor(restarts=a.restarts, top=min(a.top, a.restarts), epochs=a.epochs,
                            device=a.device, progress="log").fit(G, E, w.genes)
        t_cnn = time.perf_counter() - t0
        t0 = time.perf_counter()
        en = en_test_r(G, E, w.genes, cnn.split_["train"], cnn.split_["test"], backend="cpu")
        t_en = time.perf_counter() - t0
        rows = {}
        for ens in ("nbest", "best", "best1"):
            per, by = compare(cnn.summary_.set_index("gene")[f"test_pearson_{ens}"], en,
                              w.truth)
            rows[ens] = by.to_dict("records")
        per, by = compare(cnn.summary_.set_index("gene")["test_pearson_nbest"], en, w.truth)
    print(by.round(3).to_string(index=False))
    rec = {"benchmark": "cnn_vs_en", "date": datetime.now(timezone.utc).isoformat(
        timespec="seconds"), "machine": machine_info(get_backend("cpu")),
        "device": cnn.report_["device"],
        "world": {"samples": a.samples, "genes_per_architecture": a.genes_per_architecture,
                  "p_range": [a.p_min, a.p_max], "h2": 0.3, "k_causal": 3, "seed": a.seed},
        "protocol": {"restarts": a.restarts, "top": a.top, "folds": 5, "epochs": a.epochs},
        "seconds": {"cnn": round(t_cnn, 1), "en": round(t_en, 1)},
        "models_trained": cnn.report_["models_trained"], "by_class": rows,
        "per_gene": per.to_dict("records")}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh:
        fh.write(json.dumps(rec, default=float) + "\n")
    print(f"CNN {t_cnn:.0f} s, EN {t_en:.0f} s; appended to {out}")


if __name__ == "__main__":
    main()
