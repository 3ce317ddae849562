"""DEcode on the default planted-regulator world (spec ``decode.md`` §8): what the method
achieves with the reference's training recipe, scored against the planted truth. Not a speed
benchmark (times are recorded beside the outcomes).

    python bench/decode_world.py [--genes 3000] [--tissues 24] [--restarts 10] \
        [--epochs 100] [--patience 10] [--seed 0] [--device cpu]

Outcomes: test Spearman (mean over tissues, MedianExp); the ranks of the 8 drivers by
collective DeepLIFT importance, the best decoy's rank, each shadow's rank against its
driver's; Spearman between each driver's per-tissue DeepLIFT and its planted activity;
the regulator-expression association (drivers significant with the right sign, non-drivers
significant); the pair's knock-out (10,000 draws, A only and both genes) with the two
drivers' coefficients and ranks; the shuffled-feature control's test Spearman; the module
explanation (each LV's planted regulators' ranks, with one permuted model); the person
level (a transfer model on 200 individuals' TPM with the covariates regressed out: test
Spearman over individuals, drivers whose DeepLIFT follows their own expression across
individuals at FDR < 5 % and |ρ| > 0.3 with the planted sign, non-drivers that do). Appends one
record to ``bench/results/decode_world.jsonl`` and prints it.
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
    ap.add_argument("--genes", type=int, default=3000)
    ap.add_argument("--tissues", type=int, default=24)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--individuals", type=int, default=200,
                    help="The person level (0: skip): individuals of tissue01.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                         "decode_world.jsonl"))
    a = ap.parse_args()

    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr

    from gpu_engine.backend import get_backend
    from gpu_engine.benchmarking import machine_info
    from gpu_engine.datasets.decode_world import generate_decode_world
    from gpu_engine.decode import data as D
    from gpu_engine.decode.explain import explain_modules
    from gpu_engine.decode.features import BindingMaps
    from gpu_engine.decode.model import DEcode

    tmp = Path(tempfile.mkdtemp(prefix="decode_world_"))
    out = generate_decode_world(tmp / "w", n_genes=a.genes, n_tissues=a.tissues,
                                n_individuals=a.individuals, seed=a.seed)
    info = json.loads((out / "truth" / "world.json").read_text())
    truth = pd.read_parquet(out / "truth" / "regulators.parquet").set_index("name")
    maps = BindingMaps.read(out / "binding")
    T = D.tissue_targets(pd.read_parquet(out / "expression.parquet").set_index("gene"))
    sp = pd.read_parquet(out / "splits.parquet")
    params = dict(restarts=a.restarts, epochs=a.epochs, patience=a.patience,
                  random_state=a.seed, device=a.device)
    t0 = time.perf_counter()
    m = DEcode(**params).fit(maps, T, sp)
    fit_s = time.perf_counter() - t0
    ev = m.evaluation_.set_index("output")["spearman"]
    t0 = time.perf_counter()
    att = m.attribute(maps)
    deeplift_s = time.perf_counter() - t0
    imp = att.importance.set_index("regulator")
    tissues = [c for c in T.columns if c != D.MEDIAN]
    drivers, decoys = info["drivers"], info["decoys"]
    profile = {d: float(spearmanr(att.mean_scores.loc[tissues, d],
                                  truth.loc[d, tissues].astype(float)).statistic)
               for d in drivers}
    X = pd.read_parquet(out / "regulator_expression.parquet").set_index("regulator")
    assoc = att.association(X).set_index("regulator")
    sig = assoc[assoc["significant"]]
    right_sign = {d: bool(np.sign(assoc.loc[d, "rho"]) == np.sign(truth.loc[d, "sign"]))
                  for d in drivers if d in assoc.index}
    ko = {}
    for mode in ("first", "both"):
        t0 = time.perf_counter()
        r = m.knockout(maps, info["pair"]["genes"], n=10000, perturb=mode)
        c = r.coefficients.reset_index(drop=True)
        ko[mode] = {"seconds": time.perf_counter() - t0, "base_rho": r.base_rho,
                    "drivers": {d: {"rank": int(c.index[c["regulator"] == d][0]) + 1,
                                    "coef": float(c.loc[c["regulator"] == d, "coef"].iloc[0])}
                                for d in info["pair"]["drivers"] if d in set(c["regulator"])},
                    "top5": c["regulator"].head(5).tolist(),
                    "significant": int(c["significant"].sum()), "terms": len(c)}
    t0 = time.perf_counter()
    ctrl = DEcode(**(params | {"shuffle": "all", "restarts": min(a.restarts, 3)})).fit(
        maps, T, sp)
    ctrl_s = time.perf_counter() - t0
    cev = ctrl.evaluation_.set_index("output")["spearman"]
    Z = pd.read_parquet(out / "modules" / "Z.parquet").set_index("gene")
    t0 = time.perf_counter()
    ex = explain_modules(maps, Z, sp, permutations=1, restarts=min(a.restarts, 3),
                         epochs=a.epochs, patience=a.patience, batch_size=32,
                         random_state=a.seed, device=a.device)
    modules_s = time.perf_counter() - t0
    mods = {}
    for lv, regs in info["modules"].items():
        t = ex.regulators[ex.regulators["column"] == lv].set_index("regulator")
        mods[lv] = {r: {"rank": int(t.loc[r, "rank"]), "score": float(t.loc[r, "score"]),
                        "binding_fdr": float(t.loc[r, "binding_fdr"])} for r in regs}
        mods[lv]["test_spearman"] = float(
            ex.evaluation.set_index("column").loc[lv, "spearman"])
    person = None
    if a.individuals:
        t0 = time.perf_counter()
        tpm = pd.read_parquet(out / "persons" / "tpm.parquet").set_index("gene")
        C = pd.read_parquet(out / "persons" / "covariates.parquet").set_index("sample")
        P = D.person_targets(tpm, C)
        pm = DEcode(**params).fit(maps, P, sp, transfer_from=m)
        patt = pm.attribute(maps)
        PX = pd.read_parquet(out / "persons" / "regulator_expression.parquet").set_index(
            "regulator")
        pa = patt.association(PX, min_abs_rho=0.3).set_index("regulator")
        psig = pa[pa["significant"]]
        signs = info["persons"]["signs"]
        person = {"seconds": time.perf_counter() - t0, "individuals": a.individuals,
                  "genes_kept": P.attrs["report"]["genes_kept"],
                  "test_spearman": float(pm.evaluation_.set_index("output").loc[
                      "mean_fold_change", "spearman"]),
                  "drivers_significant_right_sign": int(sum(
                      d in psig.index and np.sign(psig.loc[d, "rho"]) == s
                      for d, s in signs.items())),
                  "non_drivers_significant": int(len(set(psig.index) - set(signs))),
                  "non_drivers": int(len(pa) - len(signs)),
                  "driver_rho": {d: float(pa.loc[d, "rho"]) for d in signs if d in pa.index}}
    rec = {
        "benchmark": "decode_world", "date": datetime.now(timezone.utc).isoformat(
            timespec="seconds"), "machine": machine_info(get_backend("cpu")),
        "size": {"genes": a.genes, "tissues": a.tissues, "regulators": len(truth),
                 "seed": a.seed}, "params": params,
        "seconds": {"fit": fit_s, "deeplift": deeplift_s, "shuffle_control": ctrl_s,
                    "modules": modules_s},
        "runs": m.runs_.to_dict("records"),
        "test_spearman": {"mean_fold_change": float(ev["mean_fold_change"]),
                          "MedianExp": float(ev[D.MEDIAN])},
        "driver_ranks": {d: int(imp.loc[d, "rank"]) for d in drivers},
        "best_decoy_rank": int(min(imp.loc[d, "rank"] for d in decoys)),
        "shadows": {s: {"rank": int(imp.loc[s, "rank"]), "driver": d,
                        "driver_rank": int(imp.loc[d, "rank"])}
                    for s, d in info["shadows"].items()},
        "tissue_profile_spearman": profile,
        "association": {"drivers_significant": int(sum(d in sig.index for d in drivers)),
                        "drivers_right_sign": int(sum(right_sign.values())),
                        "non_drivers_significant": int(len(set(sig.index) - set(drivers))),
                        "non_drivers": int(len(assoc) - len(drivers))},
        "knockout": ko,
        "shuffle_control_test_spearman": float(cev["mean_fold_change"]),
        "modules": mods,
        "person": person,
    }
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(rec, default=float) + "\n")
    print(json.dumps({k: v for k, v in rec.items() if k not in ("machine", "runs")},
                     indent=1, default=float))


if __name__ == "__main__":
    main()
