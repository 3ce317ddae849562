"""The dlfa CNN of Ramprasad, Ren & Pan (2025): a learnable per-SNP input scaling followed by a
small convolutional encoder (spec ``dl_expression.md`` §3; the repository ``pratik-r/dlfa``
defines it). One network per gene; p = the gene's number of cis SNPs.

| # | layer | shape (channels × length) |
|---|---|---|
| 0 | scaler: x̃_j = w_j·x_j, w initialised to 0 | 1 × p |
| 1 | stem: Conv1d(1→2, k 4, s 4) → GroupNorm(1, 2) | 2 × ⌊p/4⌋ |
| 2 | stage 1: GroupNorm(1, 2) → Conv1d(2→2, k 2, s 2) → block(2, drop 0.0) | 2 × ⌊p/8⌋ |
| 3 | stage 2: GroupNorm(1, 2) → Conv1d(2→4, k 2, s 2) → block(4, drop 0.4) | 4 × ⌊p/16⌋ |
| 4 | stage 3: GroupNorm(1, 4) → Conv1d(4→8, k 2, s 2) → block(8, drop 0.8) | 8 × ⌊p/32⌋ |
| 5 | head: flatten (channel-major) → LayerNorm(d) → Linear(d→1), d = 8·⌊p/32⌋ | 1 |

Block(c, q): depthwise Conv1d(c, k 7, zero "same" padding, no bias) → GroupNorm(1, c) →
Conv1d(c→c, k 1) → GELU (erf) → Conv1d(c→c, k 1) → per-channel LayerScale γ (init 1e-6) →
stochastic depth q in "batch" mode (training: the branch is dropped for the whole batch with
probability q, else scaled by 1/(1 − q); identity in evaluation) → residual add. Norm eps 1e-5;
other initialisations are PyTorch's defaults. Parameters: p + 469 + 24⌊p/32⌋. Windows with
p < 32 SNPs are padded with zero columns to 32 (the reference would fail).

Quirks kept on purpose (the reference has them): the p mod 4 SNPs past 4⌊p/4⌋ never reach the
stem, and GroupNorm normalises each sample over all its channels and positions, so the model
is not additive in x even when every block is near identity.

Parameter names are canonical (§3.7: ``scaler.w``, ``stem.conv.weight``, …,
``head.linear.bias``); :func:`save_state` writes them as ``.pt`` (a state dict) or ``.npz``.

torch is imported only inside these functions (the ``[dl]`` extra); ``import gpu_engine``
never imports it.
"""

from __future__ import annotations

from pathlib import Path

MIN_SNPS = 32
PENALTY_LAMBDA = 0.05
PENALTY_ALPHA = 0.7
DROP_PATH = (0.0, 0.4, 0.8)  # linspace(0, 0.8, 3)
CHANNELS = ((2, 2), (2, 4), (4, 8))  # (in, out) of the three stages


def n_parameters(p: int) -> int:
    """The network's parameter count for p cis SNPs (after padding to ≥ 32)."""
    p = max(p, MIN_SNPS)
    return p + 469 + 24 * (p // 32)


def _torch():
    from ..dl import require_torch

    return require_torch("the CNN expression model")


def build_network(p: int, *, seed: int | None = None, dtype=None, device=None):
    """The dlfa network for ``p`` cis SNPs (a ``torch.nn.Module``; input (batch, p) dosages,
    output (batch,)). ``seed`` fixes the initial parameters (PyTorch's default initialisers
    drawn from a generator seeded with it)."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class Scaler(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(p))

        def forward(self, x):
            return x * self.w

    class Stem(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 2, kernel_size=4, stride=4)
            self.norm = nn.GroupNorm(1, 2, eps=1e-5)

        def forward(self, x):
            return self.norm(self.conv(x))

    class Block(nn.Module):
        def __init__(self, c, drop):
            super().__init__()
            self.dw = nn.Conv1d(c, c, kernel_size=7, padding=3, groups=c, bias=False)
            self.norm = nn.GroupNorm(1, c, eps=1e-5)
            self.pw1 = nn.Conv1d(c, c, kernel_size=1)
            self.pw2 = nn.Conv1d(c, c, kernel_size=1)
            self.gamma = nn.Parameter(torch.full((c,), 1e-6))
            self.drop = drop
            self.generator = None  # per-gene stochastic-depth decisions (batched trainer)

        def forward(self, x):
            h = self.pw2(F.gelu(self.pw1(self.norm(self.dw(x))), approximate="none"))
            h = h * self.gamma[None, :, None]
            if self.training and self.drop > 0:
                u = torch.rand((), generator=self.generator, device=x.device) \
                    if self.generator is not None else torch.rand((), device=x.device)
                h = h * 0.0 if u < self.drop else h / (1.0 - self.drop)
            return x + h

    class Stage(nn.Module):
        def __init__(self, cin, cout, drop):
            super().__init__()
            self.norm = nn.GroupNorm(1, cin, eps=1e-5)
            self.down = nn.Conv1d(cin, cout, kernel_size=2, stride=2)
            self.block = Block(cout, drop)

        def forward(self, x):
            return self.block(self.down(self.norm(x)))

    class Head(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.norm = nn.LayerNorm(d, eps=1e-5)
            self.linear = nn.Linear(d, 1)

        def forward(self, x):
            return self.linear(self.norm(x.flatten(1)))[:, 0]

    class DLFANet(nn.Module):
        """The dlfa CNN (see :mod:`gpu_engine.expression.cnn`)."""

        def __init__(self, p):
            super().__init__()
            self.p = p
            self.width = max(p, MIN_SNPS)
            self.scaler = Scaler(self.width)
            self.stem = Stem()
            self.stage1 = Stage(*CHANNELS[0], DROP_PATH[0])
            self.stage2 = Stage(*CHANNELS[1], DROP_PATH[1])
            self.stage3 = Stage(*CHANNELS[2], DROP_PATH[2])
            self.head = Head(8 * (self.width // 32))

        def forward(self, x):
            if x.shape[1] != self.p:
                raise ValueError(f"expected {self.p} SNP columns, got {x.shape[1]}")
            if self.width > self.p:
                x = F.pad(x, (0, self.width - self.p))
            h = self.stem(self.scaler(x)[:, None, :])
            return self.head(self.stage3(self.stage2(self.stage1(h))))

    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = DLFANet(p)
    else:
        net = DLFANet(p)
    if dtype is not None or device is not None:
        net = net.to(device=device, dtype=dtype)
    return net


def penalty(net, lam: float = PENALTY_LAMBDA, alpha: float = PENALTY_ALPHA, weights=None):
    """λ[α Σ ν_j|w_j| + ½(1 − α) Σ ν_j w_j²] on the input scaler only (ν ≡ 1 without
    functional annotations; ``weights`` gives ν per SNP). The L1 subgradient at 0 is 0."""
    w = net.scaler.w
    nu = 1.0 if weights is None else weights
    return lam * (alpha * (nu * w.abs()).sum() + 0.5 * (1 - alpha) * (nu * w * w).sum())


def save_state(net, path) -> Path:
    """The state dict under its canonical names: ``.pt`` (torch.save) or ``.npz`` (NumPy,
    float64 copies, for language-neutral checks). Written atomically."""
    from ..io import atomic_path

    torch = _torch()
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        if path.suffix == ".npz":
            import numpy as np

            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: v.double().numpy() for k, v in state.items()})
        else:
            torch.save(state, tmp)
    return path


def load_state(path, p: int | None = None, **kwargs):
    """A network with the parameters of a ``.pt`` or ``.npz`` state (``p`` read from
    ``scaler.w`` when not given; a padded window needs ``p``)."""
    torch = _torch()
    path = Path(path)
    if path.suffix == ".npz":
        import numpy as np

        with np.load(path) as z:
            state = {k: torch.from_numpy(z[k]) for k in z.files}
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    net = build_network(p or int(state["scaler.w"].shape[0]), **kwargs)
    ref = net.state_dict()
    net.load_state_dict({k: v.to(ref[k].dtype) for k, v in state.items()})
    return net
