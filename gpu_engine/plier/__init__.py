"""PLIER gene modules and the MultiPLIER projection (issue 4).

- :class:`PLIER`: fit on genes × samples data and a genes × pathways prior, in the
  reference's ``current`` or ``multiplier`` semantics; ``transform`` projects new data.
- :class:`LVModel`: project with an external model (Z and L2 from files).
- :func:`num_pc`, :func:`read_prior`, :func:`merge_priors`: public helpers.
"""

from .model import PLIER, LVModel, zscore_rows
from .numpc import num_pc, smooth_3rs3r
from .prior import merge_priors, read_prior

__all__ = ["PLIER", "LVModel", "zscore_rows", "num_pc", "smooth_3rs3r", "merge_priors",
           "read_prior"]
