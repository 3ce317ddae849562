"""The DEcode network (Tasaki et al. 2020), the released tissue-gene configuration, in PyTorch.

Inputs are channels-first: RNA ``(B, F_rna, L)`` (100-nt bins of the transcript, channel 0
the exon-base count) and promoter ``(B, F_prom, 30)`` (channel 0 the mask). Layers (spec
``decode.md`` §3):

- RNA branch: Conv1d(F_rna → 160, kernel 2) → Conv1d(160 → 160, kernel 2), no bias, no
  activation, then the sum over positions;
- promoter branch: Conv1d(F_prom → 120, kernel 1) → 4 × Conv1d(120 → 120, kernel 1), no bias,
  no activation, sum over positions;
- head: concat (280) → [Linear(→160) → ReLU → BatchNorm1d(160)] × 2 → Linear(160 → n_out).

Keras conventions kept: Glorot-uniform kernels, zero dense biases, BatchNorm eps 1e-3 and
momentum 0.99 (PyTorch's ``momentum=0.01``). Canonical parameter names: ``rna.conv{1,2}``,
``prom.conv{1..5}``, ``head.fc{1,2}``, ``head.bn{1,2}``, ``out``.

Two structural facts (pinned by tests): the trunk is linear, so the promoter branch is B·S
with S the per-channel sum over bins, and the RNA branch, for a gene followed by two zero bins,
is K·S − (K₀₁ + K₁₀)·x₀ − K₁₁·(x₀ + x₁) with K_ab = W₂[b]·W₁[a]. :func:`summarize` and
:meth:`DEcodeNet.forward_summary` use this (the fast exact mode); ``padding="fixed"`` appends
those two zero bins to every gene (predictions independent of the batch), ``"keras"`` pads to
the batch's longest gene only (the reference, whose longest genes lose taps).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..dl import require_torch
from ..errors import InputError

PROMOTER_BINS = 30
PADDINGS = ("fixed", "keras")


@dataclass(frozen=True)
class Architecture:
    """The released hyper-parameters (tissue-gene model)."""

    rna_channels: int = 160
    rna_kernel: int = 2
    rna_layers: int = 2
    prom_channels: int = 120
    prom_layers: int = 5
    hidden: int = 160
    n_hidden: int = 2
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01  # Keras' 0.99

    def to_dict(self) -> dict:
        return asdict(self)


RELEASED = Architecture()


def n_parameters(f_rna: int, f_prom: int, n_out: int, arch: Architecture = RELEASED) -> int:
    """Trainable parameters (395,014 for 372 RNA and 726 promoter channels, 54 outputs)."""
    a = arch
    rna = a.rna_kernel * f_rna * a.rna_channels + (a.rna_layers - 1) * a.rna_kernel * \
        a.rna_channels ** 2
    prom = f_prom * a.prom_channels + (a.prom_layers - 1) * a.prom_channels ** 2
    width = a.rna_channels + a.prom_channels
    head = (width * a.hidden + a.hidden) + (a.n_hidden - 1) * (a.hidden ** 2 + a.hidden)
    bn = a.n_hidden * 2 * a.hidden
    return rna + prom + head + bn + a.hidden * n_out + n_out


def build_network(f_rna: int, f_prom: int, n_out: int, *, arch: Architecture = RELEASED,
                  seed: int | None = None, dtype=None, device=None):
    """A freshly initialized :class:`DEcodeNet` (Keras' initialization, seeded)."""
    torch = require_torch("DEcode")
    cls = _network_class()
    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    net = cls(f_rna, f_prom, n_out, arch)
    net.reset_parameters(gen)
    return net.to(dtype=dtype or torch.float32, device=device or "cpu")


_CLASS = None


def _network_class():
    """The nn.Module subclass, defined on first use so that torch is imported lazily."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    torch = require_torch("DEcode")
    nn = torch.nn

    class Branch(nn.Module):
        def __init__(self, channels_in, width, layers, kernel):
            super().__init__()
            for k in range(1, layers + 1):
                self.add_module(f"conv{k}", nn.Conv1d(channels_in if k == 1 else width, width,
                                                      kernel, bias=False))
            self.layers = layers

        def forward(self, x):
            for k in range(1, self.layers + 1):
                x = getattr(self, f"conv{k}")(x)
            return x.sum(-1)

    class Head(nn.Module):
        def __init__(self, width, arch):
            super().__init__()
            self.n_hidden = arch.n_hidden
            for k in range(1, arch.n_hidden + 1):
                self.add_module(f"fc{k}", nn.Linear(width if k == 1 else arch.hidden,
                                                    arch.hidden))
                self.add_module(f"relu{k}", nn.ReLU())  # one module per use (captum)
                self.add_module(f"bn{k}", nn.BatchNorm1d(arch.hidden, eps=arch.bn_eps,
                                                         momentum=arch.bn_momentum))

        def forward(self, h):
            for k in range(1, self.n_hidden + 1):
                h = getattr(self, f"bn{k}")(getattr(self, f"relu{k}")(getattr(self, f"fc{k}")(h)))
            return h

    class DEcodeNet(nn.Module):
        """See the module docstring. ``forward(rna, prom)`` → (B, n_out)."""

        def __init__(self, f_rna, f_prom, n_out, arch=RELEASED):
            super().__init__()
            self.arch = arch
            self.f_rna, self.f_prom, self.n_out = int(f_rna), int(f_prom), int(n_out)
            self.rna = Branch(f_rna, arch.rna_channels, arch.rna_layers, arch.rna_kernel)
            self.prom = Branch(f_prom, arch.prom_channels, arch.prom_layers, 1)
            self.head = Head(arch.rna_channels + arch.prom_channels, arch)
            self.out = nn.Linear(arch.hidden, n_out)

        def reset_parameters(self, generator=None):
            with torch.no_grad():
                for name, p in self.named_parameters():
                    if name.endswith("bias"):
                        p.zero_()
                    elif ".bn" in name:
                        p.fill_(1.0)
                    else:  # Glorot-uniform; conv fans include the kernel width
                        fan_out, fan_in = p.shape[0], p.shape[1]
                        rf = p[0, 0].numel()
                        bound = float(np.sqrt(6.0 / (fan_in * rf + fan_out * rf)))
                        p.uniform_(-bound, bound, generator=generator)
                for m in self.modules():
                    if isinstance(m, nn.BatchNorm1d):
                        m.reset_running_stats()

        def trunk(self, rna, prom):
            """The 280 linear features z = [RNA branch, promoter branch]."""
            return torch.cat([self.rna(rna), self.prom(prom)], dim=1)

        def forward(self, rna, prom):
            return self.out(self.head(self.trunk(rna, prom)))

        # ---- the fast exact mode (the linear trunk as effective matrices) ----
        def effective(self):
            """``(K (4, 160, F_rna) for taps (a, b) = 00, 01, 10, 11, B (120, F_prom))``:
            RNA conv taps composed (K_ab = W₂[b]·W₁[a]) and the promoter stack multiplied
            out (B = W₅···W₁). Released configuration only (two RNA layers, kernel 2)."""
            a = self.arch
            if a.rna_layers != 2 or a.rna_kernel != 2:
                raise InputError("the fast exact mode is written for two RNA layers of kernel "
                                 "2 (the released configuration)")
            W1, W2 = self.rna.conv1.weight, self.rna.conv2.weight  # (out, in, 2)
            K = torch.stack([W2[:, :, b] @ W1[:, :, a_] for a_, b in
                             ((0, 0), (0, 1), (1, 0), (1, 1))])
            B = self.prom.conv1.weight[:, :, 0]
            for k in range(2, a.prom_layers + 1):
                B = getattr(self.prom, f"conv{k}").weight[:, :, 0] @ B
            return K, B

        def trunk_summary(self, summary):
            """z from :func:`summarize`'s per-gene summaries (equal to :meth:`trunk`)."""
            K, B = self.effective()
            S, x0, x1, xm2, xm1, sp = (summary[k] for k in ("S", "x0", "x1", "xm2", "xm1",
                                                            "S_prom"))

            def mv(M, v):
                return v @ M.T

            r = (mv(K[0], S - xm2 - xm1) + mv(K[1] + K[2], S - x0 - xm1)
                 + mv(K[3], S - x0 - x1))
            return torch.cat([r, mv(B, sp)], dim=1)

        def forward_summary(self, summary):
            return self.out(self.head(self.trunk_summary(summary)))

    _CLASS = DEcodeNet
    return _CLASS


def pad_batch(rna: list, prom: list, *, padding: str = "fixed", min_length: int = 0,
              dtype=None):
    """Stack per-gene arrays into channels-first tensors.

    ``rna``: per gene an array (F_rna, L_g); ``prom``: per gene (F_prom, 30). ``padding``:
    ``"fixed"`` pads every gene with two zero bins at least (predictions independent of the
    batch), ``"keras"`` only to the batch's longest gene (the reference). ``min_length``: pad to
    at least this many bins (before the fixed two). Returns ``(rna (B, F, P), prom (B, F', 30),
    lengths (B,))``.
    """
    torch = require_torch("DEcode")
    if padding not in PADDINGS:
        raise InputError(f"padding must be one of {PADDINGS}, not {padding!r}")
    lengths = np.array([a.shape[1] for a in rna], np.int64)
    if (lengths < 1).any():
        raise InputError("a gene with no RNA bins cannot be encoded")
    P = max(int(lengths.max()), int(min_length)) + (2 if padding == "fixed" else 0)
    P = max(P, 3)  # the two kernel-2 convolutions need three positions
    F = rna[0].shape[0]
    R = np.zeros((len(rna), F, P), np.float64)
    for i, a in enumerate(rna):
        R[i, :, :a.shape[1]] = a
    Pm = np.stack([np.asarray(p, np.float64) for p in prom])
    dt = dtype or torch.float32
    return torch.as_tensor(R, dtype=dt), torch.as_tensor(Pm, dtype=dt), lengths


def summarize(rna, prom) -> dict:
    """The per-gene quantities the linear trunk depends on, from padded tensors: the RNA
    per-channel sum ``S``, the first two bins ``x0``, ``x1``, the last two padded positions
    ``xm2``, ``xm1`` (zero under ``padding="fixed"``), and the promoter sum ``S_prom``."""
    return {"S": rna.sum(-1), "x0": rna[:, :, 0], "x1": rna[:, :, 1], "xm2": rna[:, :, -2],
            "xm1": rna[:, :, -1], "S_prom": prom.sum(-1)}


def gene_summaries(rna: list, prom: list, *, dtype=None, device=None) -> dict:
    """:func:`summarize` for unpadded per-gene arrays under ``padding="fixed"`` (the two
    last padded positions are zero): ``S``, ``x0``, ``x1`` (zero for a one-bin gene),
    ``S_prom`` stacked over genes, ``xm2 = xm1 = 0``. Computed once, these make every
    forward and backward pass independent of the genes' lengths (the fast training mode)."""
    torch = require_torch("DEcode")
    F = rna[0].shape[0]
    S = np.stack([a.sum(1) for a in rna])
    x0 = np.stack([a[:, 0] for a in rna])
    x1 = np.stack([a[:, 1] if a.shape[1] > 1 else np.zeros(F) for a in rna])
    sp = np.stack([np.asarray(p, np.float64).sum(1) for p in prom])
    dt = dtype or torch.float32

    def t(x):
        return torch.as_tensor(x, dtype=dt, device=device)

    zero = t(np.zeros_like(S))
    return {"S": t(S), "x0": t(x0), "x1": t(x1), "xm2": zero, "xm1": zero, "S_prom": t(sp)}
