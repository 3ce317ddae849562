"""DEcode (Tasaki et al., Nat Mach Intell 2020): expression profiles across tissues from where
regulators bind a gene's promoter and transcript, explained by DeepLIFT.

Status: the network (:mod:`.network`: the released architecture, Keras' initialization,
``padding="fixed"|"keras"``, the fast exact mode), DeepLIFT (:mod:`.deeplift`: the closed
form for every output at once, and captum's as the peer) and the training recipe
(:mod:`.training`: early stopping with the best epoch's weights, restarts). Spec:
``shared/specs/decode.md``. torch and captum (the ``[dl]`` extra) are imported only inside
the functions that need them.
"""

from .network import PADDINGS, RELEASED, Architecture, n_parameters

__all__ = ["PADDINGS", "RELEASED", "Architecture", "n_parameters"]
