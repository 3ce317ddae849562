"""TWAS: gene–gene correlation matrices and S-PrediXcan vs straightforward per-pair / per-gene
implementations, and S-PrediXcan at GWAS scale.

Data: :func:`gpu_engine.datasets.twas.make_twas_world` — genes on 22 chromosomes, 13 SNPs per
gene in its ±100 kb window, LD blocks of 200 consecutive SNPs (exponential decay, 50 kb),
MASHR-like models (1–5 SNPs) in 60 % of the tissues per gene.

Cases (``quick`` / ``full``):

- ``gene-corr``: 800 genes × 10 tissues / PhenoPLIER's cohort scale, 6,400 genes × 49
  tissues (83,200 SNPs, ~188,000 gene–tissue models). Baseline: the pair-by-pair definition
  (:class:`gpu_engine.twas.PairwiseReference`: per gene pair, the two genes' weight
  matrices, the LD sub-matrix, T_ij), the reference's algorithm, timed on a random sample of
  same-chromosome pairs and extrapolated to all of them; its setup and the per-gene SVDs are
  precomputed and not timed (they are once per gene, not per pair).
  Ours: :func:`gpu_engine.twas.gene_correlations` (with the positive-definiteness check).
  ``max_abs_diff``: over the sampled pairs.
- ``spredixcan``: one tissue, 2,000 / 20,000 genes: all genes at once (harmonization +
  segmented Gram kernel) vs a per-gene loop like the reference's (select the gene's SNPs,
  build its covariance sub-matrix, two dot products), the loop timed on a sample of genes
  and extrapolated.

Not a ``Case`` either: ``python bench/bench_twas.py pipeline-traits [--traits 4]`` runs the
``gpu-engine run`` S-PrediXcan stage over T traits (copies of that GWAS file) in a fresh
process: each GWAS is read once and all 49 tissues computed from it, the tissues'
covariances read once per run (the stage's cache). It records traits per hour and where the
time goes (GWAS parsing, S-PrediXcan with the covariance reads of the first trait, writing)
in ``results/pipeline.jsonl``.

Not a ``Case``: ``python bench/bench_twas.py spredixcan-scale [--genes 20000 --tissues 49
--variants 10000000]`` writes the real-format inputs (a 10-million-variant GWAS file, 49
model databases and covariance files) and runs the whole S-PrediXcan pass over 49 tissues in
a fresh process, recording wall time and peak memory in ``results/twas.jsonl``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gpu_engine.benchmarking import Case

GENE_CORR = {"quick": (800, 10), "full": (6400, 49)}
SPREDIXCAN = {"quick": 2000, "full": 20000}
SAMPLE_PAIRS = {"quick": 100, "full": 300}
SAMPLE_GENES = 500


def _same_chrom_pairs(genes: pd.DataFrame, n: int, rng) -> tuple[list, int]:
    by = genes.groupby("chromosome")["gene"].apply(list)
    total = int(sum(len(v) * (len(v) - 1) // 2 for v in by))
    sizes = np.array([len(v) * (len(v) - 1) // 2 for v in by], float)
    pairs = []
    for ci in rng.choice(len(by), n, p=sizes / sizes.sum()):
        a, b = rng.choice(by.iloc[ci], 2, replace=False)
        pairs.append((a, b))
    return pairs, total


def _gene_corr_case(size, backend) -> Case:
    from gpu_engine.datasets.twas import make_twas_world
    from gpu_engine.twas import PairwiseReference, gene_correlations

    n_genes, n_tissues = GENE_CORR[size]
    tw = make_twas_world(n_genes, n_tissues, seed=0)
    rng = np.random.default_rng(0)
    pairs, total = _same_chrom_pairs(tw.genes, SAMPLE_PAIRS[size], rng)
    ref = PairwiseReference(tw.models, tw.ld)  # setup and per-gene SVDs: not timed
    pairs = [(a, b) for a, b in pairs if ref.gene(a) is not None and ref.gene(b) is not None]

    def ours():
        return gene_correlations(tw.models, tw.ld, genes=tw.genes, backend=backend)

    def base():
        return [ref.pair(a, b) for a, b in pairs]

    def check(b, o):
        M = o.to_frame("gene")
        return float(max(abs(M.loc[x, y] - r) for (x, y), r in zip(pairs, b)))

    shape = {"genes": n_genes, "tissues": n_tissues, "snps": len(tw.snps),
             "models": int(sum(len(m.extra) for m in tw.models.values()))}
    notes = {"same_chromosome_pairs": total, "baseline_sample_pairs": len(pairs),
             "baseline": "pair-by-pair definition, timed per pair on a sample and "
                         "extrapolated; its setup and per-gene SVDs precomputed, not timed",
             "reference": "PhenoPLIER needed 22–28 core-hours per cohort (6,400 genes × 49 "
                          "tissues, 84,708 SNPs)"}
    return Case(f"gene-corr, {backend.name} vs pair by pair", shape, base, ours,
                "pair by pair (extrapolated)", f"gpu_engine {backend.name}", backend.name,
                check, notes, baseline_scale=total / len(pairs),
                repeats=1 if size == "full" else 3)


def per_gene_spredixcan(model, cov, harmonized, genes):
    """The reference's loop: one gene at a time."""
    h = harmonized.set_index("snp")
    w_by = {g: d for g, d in model.weights.groupby("gene")}
    out = {}
    for gene in genes:
        if gene not in cov:
            continue
        ids, G = cov.block(gene)
        w = w_by[gene].set_index("snp")["weight"]
        pos = {s: i for i, s in enumerate(ids)}
        use = [s for s in w.index if s in h.index and s in pos]
        if not use:
            continue
        idx = [pos[s] for s in use]
        Gs = G[np.ix_(idx, idx)]
        wv = w.loc[use].to_numpy()
        var = float(wv @ Gs @ wv)
        sd = np.sqrt(np.diag(Gs))
        out[gene] = float(np.sum(wv * sd * h.loc[use, "zscore"].to_numpy()) / np.sqrt(var))
    return pd.Series(out)


def _spredixcan_case(size, backend) -> Case:
    from gpu_engine.datasets.twas import make_twas_world
    from gpu_engine.twas import harmonize, read_covariance, spredixcan

    n_genes = SPREDIXCAN[size]
    tw = make_twas_world(n_genes, 1, seed=1, model_fraction=1.0)
    tissue = tw.tissues[0]
    model = tw.models[tissue]
    import tempfile

    from gpu_engine.datasets.twas import write_covariance

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "cov.txt.gz"
        write_covariance(tw.tissue_covariance(tissue), p)
        cov = read_covariance(p)
    gw = tw.gwas({g: 5.0 for g in tw.genes["gene"].iloc[:50]})
    gwas = pd.DataFrame({"snp": gw["SNP"], "effect_allele": gw["A1"],
                         "non_effect_allele": gw["A2"], "zscore": gw["ZSCORE"],
                         "beta": gw["BETA"]})
    h, _ = harmonize(gwas, model.alleles(), finite_only=True)
    rng = np.random.default_rng(0)
    sample = list(rng.choice(model.genes, min(SAMPLE_GENES, len(model.genes)), replace=False))

    def check(b, o):
        z = o[0].set_index("gene")["zscore"]
        return float((z.loc[b.index] - b).abs().max())

    return Case(f"spredixcan one tissue, {backend.name} vs per-gene loop",
                {"genes": len(model.genes), "model_snps": len(model.weights)},
                lambda: per_gene_spredixcan(model, cov, h, sample),
                lambda: spredixcan(model, cov, gwas, backend=backend),
                "per-gene loop (extrapolated)", f"gpu_engine {backend.name}", backend.name,
                check, {"baseline_sample_genes": len(sample)},
                baseline_scale=len(model.genes) / len(sample))


def cases(size: str, backend) -> list[Case]:
    return [_gene_corr_case(size, backend), _spredixcan_case(size, backend)]


# --------------------------------------------------------------------- GWAS-scale S-PrediXcan
def write_scale_inputs(root: Path, n_genes: int, n_tissues: int, n_variants: int) -> dict:
    """49 model databases + covariances over ``n_genes`` genes and a GWAS file of
    ``n_variants`` rows (the model SNPs plus random other variants)."""
    import gzip

    from gpu_engine.datasets.twas import make_twas_world, write_covariance, write_model_db

    t0 = time.perf_counter()
    tw = make_twas_world(n_genes, n_tissues, seed=2)
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "covariances").mkdir(exist_ok=True)
    for t, m in tw.models.items():
        write_model_db(m, root / "models" / f"TW_{t}.db")
        write_covariance(tw.tissue_covariance(t), root / "covariances" / f"TW_{t}.txt.gz")
    gw = tw.gwas({g: 5.0 for g in tw.genes["gene"].iloc[:100]})
    rng = np.random.default_rng(3)
    extra = n_variants - len(gw)
    bases = np.array(list("ACGT"))
    a1 = rng.integers(0, 4, extra)
    a2 = (a1 + rng.integers(1, 4, extra)) % 4
    z = rng.standard_normal(extra)
    se = rng.uniform(0.005, 0.05, extra)
    from scipy import stats

    decoy = pd.DataFrame({"SNP": np.char.add("rs", (50_000_000 + np.arange(extra)).astype(str)),
                          "A1": bases[a1], "A2": bases[a2], "BETA": z * se, "SE": se,
                          "P": 2 * stats.norm.sf(np.abs(z)), "ZSCORE": z})
    full = pd.concat([gw, decoy], ignore_index=True).sample(frac=1.0, random_state=0)
    with gzip.open(root / "gwas.tsv.gz", "wt", compresslevel=1) as fh:
        full.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    return {"generate_s": time.perf_counter() - t0, "gwas_rows": len(full)}


_SCALE_SCRIPT = r"""
import json, resource, sys, time
from pathlib import Path
root = Path(sys.argv[1]); backend = sys.argv[2]
from gpu_engine.twas import (GwasColumns, model_files, read_covariance, read_gwas,
                             read_model_db, spredixcan, write_spredixcan)
t0 = time.perf_counter()
files = model_files(root / "models", r"TW_(.*)\.db")
models = {t: read_model_db(f, tissue=t) for t, f in files.items()}
snps = set().union(*(set(m.weights["snp"]) for m in models.values()))
t1 = time.perf_counter()
gwas = read_gwas(root / "gwas.tsv.gz", GwasColumns(beta="BETA", se="SE"), snps=snps)
t2 = time.perf_counter()
out = root / "out"; out.mkdir(exist_ok=True)
genes = 0
for t, m in models.items():
    cov = read_covariance(root / "covariances" / f"TW_{t}.txt.gz", genes=m.genes)
    res, rep = spredixcan(m, cov, gwas, backend=backend)
    write_spredixcan(res, out / f"{t}.csv")
    genes += len(res)
t3 = time.perf_counter()
print("SCALE" + json.dumps({"total_s": t3 - t0, "read_models_s": t1 - t0, "read_gwas_s": t2 - t1,
      "tissues_s": t3 - t2, "gene_tissue_results": genes, "gwas_rows_loaded": len(gwas.frame),
      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def spredixcan_scale(n_genes=20000, n_tissues=49, n_variants=10_000_000, data=None,
                     backend="cpu") -> dict:
    from gpu_engine.backend import get_backend
    from gpu_engine.benchmarking import append_record, machine_info

    root = Path(data or Path(__file__).parent / ".data" / f"spredixcan_{n_genes}_{n_variants}")
    gen = {}
    if not (root / "gwas.tsv.gz").exists():
        gen = write_scale_inputs(root, n_genes, n_tissues, n_variants)
    proc = subprocess.run([sys.executable, "-c", _SCALE_SCRIPT, str(root), backend],
                          capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("SCALE")]
    if not line:
        raise RuntimeError(proc.stderr[-3000:])
    rec = json.loads(line[0][5:])
    rec.update(gen)
    be = get_backend(backend)
    record = {"benchmark": "twas", "case": f"spredixcan {n_tissues} tissues, GWAS scale",
              "size": {"genes": n_genes, "tissues": n_tissues, "gwas_variants": n_variants},
              "backend": be.name, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": machine_info(be), **rec,
              "notes": "whole pass in a fresh process: read 49 model DBs, parse the GWAS "
                       "(only model SNPs kept), per tissue read the covariance, harmonize, "
                       "S-PrediXcan, write the CSV"}
    append_record(Path(__file__).parent / "results", record)
    return record


def pipeline_traits(n_traits=4, n_genes=20000, n_tissues=49, n_variants=10_000_000,
                    data=None, backend="cpu") -> dict:
    from gpu_engine.backend import get_backend
    from gpu_engine.benchmarking import append_record, machine_info

    root = Path(data or Path(__file__).parent / ".data" / f"spredixcan_{n_genes}_{n_variants}")
    if not (root / "gwas.tsv.gz").exists():
        write_scale_inputs(root, n_genes, n_tissues, n_variants)
    run_dir = root / f"pipeline_{n_traits}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    (run_dir / "gwas").mkdir(parents=True)
    for k in range(n_traits):
        os.symlink(root / "gwas.tsv.gz", run_dir / "gwas" / f"trait{k + 1:03d}.tsv.gz")
    (run_dir / "config.yaml").write_text(
        f"out: results/\nbackend: {backend}\ninputs:\n"
        "  gwas: {folder: gwas, columns: {beta: BETA, se: SE}}\n"
        f"  models: {{folder: {root / 'models'}, pattern: 'TW_(.*)\\.db'}}\n"
        f"  covariances: {{folder: {root / 'covariances'}, pattern: 'TW_(.*)\\.txt\\.gz'}}\n")
    script = ("import json, sys, time; from gpu_engine.pipeline import load_config, run; "
              "t = time.perf_counter(); run(load_config(sys.argv[1]), until='spredixcan'); "
              "print('WALL', time.perf_counter() - t)")
    proc = subprocess.run([sys.executable, "-c", script, str(run_dir / "config.yaml")],
                          capture_output=True, text=True)
    wall = [x for x in proc.stdout.splitlines() if x.startswith("WALL")]
    if not wall:
        raise RuntimeError(proc.stderr[-3000:])
    doc = json.loads((run_dir / "results" / "spredixcan" / "stage.json").read_text())
    c = doc["counts"]
    be = get_backend(backend)
    record = {"benchmark": "pipeline", "case": f"S-PrediXcan stage, {n_traits} traits",
              "size": {"traits": n_traits, "genes": n_genes, "tissues": n_tissues,
                       "gwas_variants": n_variants},
              "backend": be.name, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": machine_info(be), "wall_s": float(wall[0].split()[1]),
              "stage_s": doc["seconds"], "peak_rss_mib": doc["peak_rss_mib"],
              "parse_s": c["parse_s"], "compute_s": c["compute_s"], "write_s": c["write_s"],
              "traits_per_hour": 3600 * n_traits / doc["seconds"],
              "covariances_cached": c.get("covariances_cached"),
              "covariance_cache_gib": c.get("covariance_cache_gib"),
              "notes": "gpu-engine run with only the spredixcan stage: the 49 model DBs read "
                       "once per run, each GWAS parsed once (model SNPs kept), the tissues' "
                       "covariances read once and kept across traits (cache_covariances_gib, "
                       "default 4), per trait S-PrediXcan computed in every tissue"}
    append_record(Path(__file__).parent / "results", record)
    shutil.rmtree(run_dir / "results", ignore_errors=True)
    return record


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["spredixcan-scale", "pipeline-traits"])
    ap.add_argument("--traits", type=int, default=4)
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--tissues", type=int, default=49)
    ap.add_argument("--variants", type=int, default=10_000_000)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--data", default=None)
    a = ap.parse_args()
    if a.what == "pipeline-traits":
        print(json.dumps(pipeline_traits(a.traits, a.genes, a.tissues, a.variants, a.data,
                                         a.backend), indent=1, default=str))
    else:
        print(json.dumps(spredixcan_scale(a.genes, a.tissues, a.variants, a.data, a.backend),
                         indent=1, default=str))
