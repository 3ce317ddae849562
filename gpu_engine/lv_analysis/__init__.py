"""Module analysis beyond PhenoPLIER's marginal test: what a significant LV means.

- :func:`core_genes`: the top genes of every significant LV–trait pair with their loading and
  the trait's own TWAS p, flagging the genes the module implicates but the TWAS alone misses.
- :func:`gene_scores`: a per-trait gene score from the trait's significant LVs (loading × LV
  effect, summed), ranked beside the genes' own TWAS rank.
- :func:`gene_set_enrichment`: per LV, the rank-based (Mann–Whitney) enrichment of a user's
  gene set in its loadings.
- :func:`context_enrichment`: per LV, the sample attributes over-represented among the samples
  where it is most active (hypergeometric, FDR).
- :mod:`gpu_engine.lv_analysis.plots`: the top genes against their TWAS p; enrichment bars.

The conditional and joint LV–trait tests are part of the GLS engine
(``gpu_engine.gls.associate(..., condition_on=...)``, ``gpu_engine.gls.joint_associate``).
"""

from .enrichment import (
    ContextEnrichment,
    GeneSetEnrichment,
    context_enrichment,
    gene_set_enrichment,
)
from .genes import CoreGenes, GeneScores, core_genes, gene_scores, prioritization_auc

__all__ = ["ContextEnrichment", "GeneSetEnrichment", "context_enrichment", "gene_set_enrichment",
           "CoreGenes", "GeneScores", "core_genes", "gene_scores", "prioritization_auc"]
