"""The gene-batched trainer: G dlfa networks (genes × folds × restarts) with the same number of
SNPs p trained as one packed network, so that a GPU step is one set of kernels for all G
models instead of G launch-bound ones (spec ``dl_expression.md`` §7.2, option (a): buckets
of identical p).

Packing: channels of model g occupy the block [g·C, (g + 1)·C); every convolution is grouped
(groups = G, the depthwise ones G·C); GroupNorm(1 group per model) becomes GroupNorm(G
groups) over G·C channels; the head reshapes (batch, G·8, L) to (batch, G, 8·L) and applies a
per-model LayerNorm and Linear. The loss is the sum of the models' losses (their parameters
are disjoint, so each model's gradient is its own), AdamW is elementwise: packed training is
the same computation as G separate trainings with the same initial states, the same batch
order (one index set per step serves every model: they share the samples) and the same
stochastic-depth decisions (one generator per model). A test proves it in float64.

Inputs: X (n × G × p) — each model's own cis dosages — or (n × G/R × p) when R consecutive
models (restarts of one gene) share their dosages (repeated per batch, not in memory); y
(n × G). Penalty factors ν (G × p, functional annotations) weight each model's scaler penalty.
"""

from __future__ import annotations

from .cnn import CHANNELS, DROP_PATH, PENALTY_ALPHA, PENALTY_LAMBDA, _torch

_STAGE_KEYS = ("norm.weight", "norm.bias", "down.weight", "down.bias", "block.dw.weight",
               "block.norm.weight", "block.norm.bias", "block.pw1.weight", "block.pw1.bias",
               "block.pw2.weight", "block.pw2.bias", "block.gamma")


def _packed_module():
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class PackedDLFA(nn.Module):
        """G dlfa networks of the same p as one module (see :mod:`.packed`)."""

        def __init__(self, states: list[dict], p: int):
            super().__init__()
            self.G = G = len(states)
            self.p = p
            self.width = max(p, 32)
            self.params = nn.ParameterDict()

            def cat(key, dim=0):
                return nn.Parameter(torch.cat([s[key] for s in states], dim=dim).clone())

            self.params["scaler_w"] = nn.Parameter(torch.stack([s["scaler.w"] for s in states]))
            for key in ("stem.conv.weight", "stem.conv.bias", "stem.norm.weight",
                        "stem.norm.bias"):
                self.params[key.replace(".", "_")] = cat(key)
            for i in (1, 2, 3):
                for key in _STAGE_KEYS:
                    self.params[f"stage{i}_{key.replace('.', '_')}"] = cat(f"stage{i}.{key}")
            for key in ("head.norm.weight", "head.norm.bias", "head.linear.bias"):
                self.params[key.replace(".", "_")] = nn.Parameter(
                    torch.stack([s[key] for s in states]).reshape(G, -1).clone())
            self.params["head_linear_weight"] = nn.Parameter(
                torch.stack([s["head.linear.weight"][0] for s in states]).clone())
            self.drop_generators = [None] * G

        def _block(self, x, i, c):
            P, G = self.params, self.G
            pre = f"stage{i}_block_"
            h = F.conv1d(x, P[pre + "dw_weight"], padding=3, groups=G * c)
            h = F.group_norm(h, G, P[pre + "norm_weight"], P[pre + "norm_bias"], eps=1e-5)
            h = F.conv1d(h, P[pre + "pw1_weight"], P[pre + "pw1_bias"], groups=G)
            h = F.gelu(h, approximate="none")
            h = F.conv1d(h, P[pre + "pw2_weight"], P[pre + "pw2_bias"], groups=G)
            h = h * P[pre + "gamma"][None, :, None]
            q = DROP_PATH[i - 1]
            if self.training and q > 0:
                keep = torch.stack([
                    torch.rand((), generator=g, device=x.device) if g is not None
                    else torch.rand((), device=x.device) for g in self.drop_generators])
                scale = torch.where(keep < q, torch.zeros_like(keep),
                                    torch.full_like(keep, 1.0 / (1.0 - q))).to(h.dtype)
                h = h * scale.repeat_interleave(c)[None, :, None]
            return x + h

        def forward(self, x):
            """x: (batch, G, p) or (batch, G/R, p) → (batch, G)."""
            P, G = self.params, self.G
            if x.shape[1] != G:
                x = x.repeat_interleave(G // x.shape[1], dim=1)
            if self.width > self.p:
                x = F.pad(x, (0, self.width - self.p))
            h = x * P["scaler_w"][None]
            h = F.conv1d(h, P["stem_conv_weight"], P["stem_conv_bias"], stride=4, groups=G)
            h = F.group_norm(h, G, P["stem_norm_weight"], P["stem_norm_bias"], eps=1e-5)
            for i, (_, cout) in enumerate(CHANNELS, 1):
                h = F.group_norm(h, G, P[f"stage{i}_norm_weight"], P[f"stage{i}_norm_bias"],
                                 eps=1e-5)
                h = F.conv1d(h, P[f"stage{i}_down_weight"], P[f"stage{i}_down_bias"],
                             stride=2, groups=G)
                h = self._block(h, i, cout)
            B = h.shape[0]
            h = h.reshape(B, G, -1)  # channel-major per model
            h = F.layer_norm(h, (h.shape[-1],), eps=1e-5)
            h = h * P["head_norm_weight"][None] + P["head_norm_bias"][None]
            return (h * P["head_linear_weight"][None]).sum(-1) + P["head_linear_bias"][:, 0]

        def penalties(self, lam=PENALTY_LAMBDA, alpha=PENALTY_ALPHA, nu=None):
            """Each model's λ[α Σ ν|w| + ½(1 − α) Σ ν w²] (G,); ν ≡ 1 unless given (G × p)."""
            w = self.params["scaler_w"]
            nu = 1.0 if nu is None else nu
            return lam * (alpha * (nu * w.abs()).sum(1) + 0.5 * (1 - alpha) * (nu * w * w).sum(1))

        def state(self, g: int) -> dict:
            """Model g's state dict under the canonical names."""
            P, out = self.params, {"scaler.w": self.params["scaler_w"][g].detach().clone()}

            def part(key, c):
                t = P[key.replace(".", "_")]
                return t[g * c:(g + 1) * c].detach().clone()

            for key in ("stem.conv.weight", "stem.conv.bias", "stem.norm.weight",
                        "stem.norm.bias"):
                out[key] = part(key, 2)
            for i, (cin, cout) in enumerate(CHANNELS, 1):
                for key in _STAGE_KEYS:
                    c = cin if key.startswith("norm.") else cout
                    out[f"stage{i}.{key}"] = part(f"stage{i}.{key}", c)
            out["head.norm.weight"] = P["head_norm_weight"][g].detach().clone()
            out["head.norm.bias"] = P["head_norm_bias"][g].detach().clone()
            out["head.linear.weight"] = P["head_linear_weight"][g][None].detach().clone()
            out["head.linear.bias"] = P["head_linear_bias"][g].detach().clone()
            return out

    return PackedDLFA


def pack(states: list[dict], p: int):
    """A :class:`PackedDLFA` from G canonical state dicts of networks with ``p`` SNPs."""
    return _packed_module()(states, p)


def train_packed(X, y, states: list[dict], *, epochs: int = 100, batch: int = 32,
                 lr: float = 2e-3, weight_decay: float = 1e-5, lam: float = PENALTY_LAMBDA,
                 alpha: float = PENALTY_ALPHA, batch_generator=None, drop_generators=None,
                 nu=None):
    """Train G models at once from their initial ``states`` (X: n × G × p or n × G/R × p
    tensor, y: n × G). One batch order (``batch_generator``) serves every model;
    ``drop_generators``: one per model for its stochastic-depth decisions; ``nu``: penalty
    factors (G × p). Returns the trained packed module."""
    torch = _torch()
    net = pack(states, X.shape[2]).to(dtype=X.dtype, device=X.device)
    if nu is not None:
        nu = torch.as_tensor(nu, dtype=X.dtype, device=X.device)
    if drop_generators is not None:
        net.drop_generators = list(drop_generators)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=weight_decay)
    gen = batch_generator or torch.Generator().manual_seed(0)
    net.train()
    n = X.shape[0]
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=gen).split(batch):
            opt.zero_grad()
            err = net(X[idx]) - y[idx]
            loss = (err * err).mean(0).sum() + net.penalties(lam, alpha, nu).sum()
            loss.backward()
            opt.step()
    net.eval()
    return net
