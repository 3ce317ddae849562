"""DEcode (Tasaki et al., Nat Mach Intell 2020): expression profiles across tissues from where
regulators bind a gene's promoter and transcript, explained by DeepLIFT.

Modules: :mod:`.features` (binding maps from a GTF and BED files, the long Parquet format),
:mod:`.data` (targets, feature filter, scaling, splits), :mod:`.network` (the released
architecture, Keras' initialization, ``padding="fixed"|"keras"``, the fast exact mode),
:mod:`.deeplift` (the closed form for every output at once; captum as the peer),
:mod:`.training` (early stopping with the best epoch's weights, restarts), :mod:`.model`
(the :class:`~.model.DEcode` estimator, knock-outs, site removal), :mod:`.perturb`,
:mod:`.explain` (modules and traits explained by regulators), :mod:`.plots`. The world:
:mod:`gpu_engine.datasets.decode_world`. Docs: ``docs/decode.md``. Spec:
``shared/specs/decode.md``. torch and captum (the ``[dl]`` extra) are imported only inside
the functions that need them.
"""

from .network import PADDINGS, RELEASED, Architecture, n_parameters

__all__ = ["PADDINGS", "RELEASED", "Architecture", "n_parameters"]
