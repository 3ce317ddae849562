"""``gpu-engine run --example small|medium``: a synthetic world (:mod:`gpu_engine.datasets`),
a planted-regulator world for DEcode, a genotype → expression world for the expression
models, and the config that runs every stage on them, written
side by side into one folder (the DEcode stage is skipped, with its reason, without
torch)."""

from __future__ import annotations

from pathlib import Path

EXAMPLE_CONFIG = """\
# gpu-engine run: every stage on a synthetic world ({scale}, seed {seed}).
# Paths are relative to this file. See docs/pipeline.md for every key.
out: results/
backend: {backend}
scheduler: null
inputs:
  gwas: {{folder: world/twas/gwas, pattern: '(.*)\\.tsv\\.gz', columns: {{beta: BETA, se: SE}}}}
  models: {{folder: world/twas/models, pattern: 'TW_(.*)\\.db'}}
  covariances: {{folder: world/twas/covariances, pattern: 'TW_(.*)\\.txt\\.gz'}}
  ld: world/twas/ld.txt.gz
  genes: world/twas/genes.tsv
  # the other traits' S-MultiXcan results (the world has a GWAS for one trait only)
  smultixcan: {{folder: world/smultixcan}}
  expression: world/expression
  priors: [world/pathways.gmt]
  drugs:
    signatures: world/drugs/signatures.parquet
    gold_standard: world/drugs/gold_standard.tsv
    trait_disease: world/trait_disease.tsv
    spredixcan: world/spredixcan
  decode:                   # a planted-regulator world (its genes are not the world's)
    binding: decode_world/binding
    expression: decode_world/expression.parquet
    splits: decode_world/splits.parquet
    regulator_expression: decode_world/regulator_expression.parquet
  gene_sets: [enrich/planted_sets.gmt]   # part of 3 planted modules' genes, and a random set
  sample_metadata: enrich/samples.tsv    # tissue: where 3 planted modules are most active
  expression_models:        # a genotype → expression world (TWAS stage 1)
    genotypes: expr_world/genotypes
    expression: expr_world/expression.parquet
    genes: expr_world/genes.tsv
    tissue: Synthetic
stages:
  smultixcan: {{cutoff_condition_number: 30}}
  gene_corr: {{within_mb: 5}}
  plier: {{k: {k}}}
  gls: {{mode: submatrix, conditional: true, null_calibration: {{n_null: 200, batch: 100}}}}
  cluster: {{families: [kmeans, gmm, agglomerative, dbscan], k_max: {k_max}}}
  drugs: {{spaces: [gene, module], n_permutations: 200}}
  decode: {{restarts: 2, epochs: 30, patience: 8}}
  ccc: {{enabled: true, lv_top_genes: 15}}
  expression_models: {{cnn: {cnn}}}
report: {{title: "Synthetic world ({scale}, seed {seed})"}}
"""


ENRICH_MODULES = 3  # the planted modules behind the example's gene sets and tissues


def write_enrichment_inputs(world, folder: Path, *, seed: int = 0) -> None:
    """The lv_enrich stage's planted answers, from the world's truth: ``planted_sets.gmt``
    (for each of the first :data:`ENRICH_MODULES` modules ``planted_<module>``: 60 % of its
    genes and 3 other genes; ``random_genes``: 20 random genes) and ``samples.tsv``
    (``tissue``: ``tissue_<module>`` for the 10 % of samples where that module's true B is
    highest, else ``other``; ``batch``: random, no signal)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed + 11)
    Z, B = world.truth("Z"), world.truth("B")
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for m in Z.columns[:ENRICH_MODULES]:
        own = list(Z.index[Z[m] > 0])
        others = list(Z.index[Z[m] == 0])
        genes = list(rng.choice(own, max(3, int(0.6 * len(own))), replace=False)) + list(
            rng.choice(others, 3, replace=False))
        lines.append("\t".join([f"planted_{m}", "planted", *genes]))
    lines.append("\t".join(["random_genes", "random", *rng.choice(Z.index, 20, replace=False)]))
    (folder / "planted_sets.gmt").write_text("\n".join(lines) + "\n")
    tissue = pd.Series("other", index=B.columns)
    n_top = int(0.1 * B.shape[1])
    for m in B.index[:ENRICH_MODULES]:
        top = [s for s in B.loc[m].sort_values(ascending=False).index if tissue[s] == "other"]
        tissue[top[:n_top]] = f"tissue_{m}"
    pd.DataFrame({"sample": B.columns, "tissue": tissue.to_numpy(),
                  "batch": rng.choice(["b1", "b2", "b3"], B.shape[1])}).to_csv(
        folder / "samples.tsv", sep="\t", index=False)


def write_example(folder: str | Path, *, scale: str = "small", seed: int = 0,
                  backend: str = "auto", overwrite: bool = False) -> Path:
    """Write ``folder/world/``, the other worlds, ``folder/enrich/`` and ``folder/config.yaml``;
    returns the config's path."""
    from ..datasets import World, generate_world

    folder = Path(folder)
    world = folder / "world"
    if not (world / "world.json").exists() or overwrite:
        generate_world(world, scale=scale, seed=seed, overwrite=True)
    dw = folder / "decode_world"
    if not (dw / "truth" / "world.json").exists() or overwrite:
        from ..datasets.decode_world import generate_decode_world

        generate_decode_world(dw, n_genes=1200 if scale == "small" else 3000,
                              n_tissues=12 if scale == "small" else 24, seed=seed + 3)
    ew = folder / "expr_world"
    if not (ew / "world.json").exists() or overwrite:
        from ..datasets.expr_world import generate_expr_world

        # one SNP count for every gene (64): the CNN then trains in few packs
        generate_expr_world(ew, n_samples=400, genes_per_architecture=3, p_range=(64, 64),
                            seed=seed, architectures=("additive", "epistasis", "null"),
                            overwrite=True)
    try:
        import torch  # noqa: F401
        cnn = "true"
    except ImportError:
        cnn = "false"
    w = World(world)
    write_enrichment_inputs(w, folder / "enrich", seed=seed)
    traits = w.truth("traits")
    k_clusters = int(traits.loc[~traits["is_null"], "cluster"].nunique())
    cfg = folder / "config.yaml"
    cfg.write_text(EXAMPLE_CONFIG.format(scale=scale, seed=seed, backend=backend,
                                         k=int(w.truth("Z").shape[1]),
                                         k_max=2 * k_clusters, cnn=cnn))
    return cfg
