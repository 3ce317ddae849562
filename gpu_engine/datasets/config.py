"""Sizes and knobs of a synthetic world, and the three named scales."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class WorldConfig:
    """Every size and knob of a synthetic world (see docs/tools.md, "gpu-engine world").

    Genome: ``n_genes`` genes over 22 chromosomes, one every ``gene_spacing_mb`` Mb on average.
    Gene–gene correlation R: genes load on local LD "sources" (every ``source_spacing_mb`` Mb,
    included with probability exp(−distance/``ld_decay_mb``), only within
    ``ld_window_mb``/2), so R is positive definite and exactly 0 for genes more than
    ``ld_window_mb`` apart or on different chromosomes.
    Modules: ``n_modules`` non-negative loading vectors; ``annotated_fraction`` of them follow
    a pathway (a fraction of its genes plus a few extra genes), the rest are unannotated.
    Expression: Y = offset + scale·(Z·B + ``expression_noise``·E), B heavy-tailed (t, 4 df).
    Traits: ``null_fraction`` are pure null; the others belong to one of ``n_trait_clusters``
    clusters, each with ``modules_per_cluster`` causal modules; gene z = signal + MVN(0, R).
    Drugs: ``targeted_drug_fraction`` act on a causal module of a disease.
    TWAS: ``twas`` adds SNP-level inputs (models, covariances, LD, one trait's GWAS).
    """

    n_genes: int = 1000
    n_pathways: int = 80
    n_modules: int = 30
    n_samples: int = 300
    n_traits: int = 120
    n_tissues: int = 5
    twas: bool = True
    n_drugs: int = 60
    n_trait_clusters: int = 4
    modules_per_cluster: int = 2
    annotated_fraction: float = 0.6
    null_fraction: float = 0.25
    top_fraction: float = 0.01
    min_top_genes: int = 10
    pathway_size_range: tuple[int, int] = (15, 500)
    module_size_range: tuple[int, int] = (20, 200)
    gene_spacing_mb: float = 0.45
    ld_window_mb: float = 5.0
    ld_decay_mb: float = 1.0
    source_spacing_mb: float = 0.2
    ld_strength: float = 0.5
    expression_noise: float = 1.0
    trait_effect_range: tuple[float, float] = (1.5, 3.0)
    drug_effect_range: tuple[float, float] = (2.0, 4.0)
    targeted_drug_fraction: float = 0.5
    disease_fraction: float = 0.8
    gold_negative_ratio: float = 1.5
    sample_block: int = 512
    trait_block: int = 256

    def replace(self, **changes) -> WorldConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        problems = []
        if self.n_genes < 100:
            problems.append("n_genes must be at least 100")
        n_annot = round(self.annotated_fraction * self.n_modules)
        if n_annot > self.n_pathways:
            problems.append(f"{n_annot} annotated modules need as many pathways "
                            f"(n_pathways={self.n_pathways})")
        if self.n_trait_clusters * self.modules_per_cluster > self.n_modules:
            problems.append("n_trait_clusters × modules_per_cluster exceeds n_modules")
        if not 0 <= self.null_fraction < 1:
            problems.append("null_fraction must be in [0, 1)")
        if self.n_traits < self.n_trait_clusters:
            problems.append("fewer traits than trait clusters")
        for name in ("n_samples", "n_traits", "n_tissues", "n_drugs", "n_pathways", "n_modules"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be positive")
        if problems:
            raise ValueError("invalid world configuration: " + "; ".join(problems))


SCALES: dict[str, WorldConfig] = {
    # end-to-end in about a minute on 2 CPU cores
    "small": WorldConfig(),
    # minutes on 2 CPU cores
    "medium": WorldConfig(n_genes=3000, n_pathways=300, n_modules=100, n_samples=1000,
                          n_traits=500, n_tissues=10, n_drugs=200, n_trait_clusters=8),
    # PhenoPLIER scale (MultiPLIER: 6,750 genes × 37,032 samples, 987 LVs; PhenomeXcan:
    # 4,091 traits × 49 tissues; LINCS L1000: 1,170 drugs)
    "full": WorldConfig(n_genes=6750, n_pathways=1000, n_modules=987, n_samples=37032,
                        n_traits=4091, n_tissues=49, n_drugs=1170, n_trait_clusters=30,
                        modules_per_cluster=3, annotated_fraction=0.4),
}


def world_config(scale: str = "small", **overrides) -> WorldConfig:
    """The configuration of a named scale, with field overrides."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}")
    cfg = SCALES[scale].replace(**overrides) if overrides else SCALES[scale]
    cfg.validate()
    return cfg
