"""Trait clustering in LV space (issue in progress): so far the co-association distance of an
ensemble of partitions, the core of the evidence-accumulation consensus."""

from .coassociation import coassociation, ensemble_matrix

__all__ = ["coassociation", "ensemble_matrix"]
