"""DeepLIFT (Rescale rule) for the DEcode network against one "no binding" reference gene.

Reference x⁰ (spec §6): zeros, except channel 0 = 1 over the first ``L_rna`` RNA bins and the
first ``L_prom`` promoter bins. Attribution of input element e to output o is
(x_e − x⁰_e)·(∂z/∂x_e)ᵀ·∂*y_o/∂*z, where z is the linear trunk and

    ∂*y_o/∂*z = W₁ᵀ[s₁ ⊙ m₁ ⊙ W₂ᵀ(s₂ ⊙ m₂ ⊙ w_o)],

m_k = (ReLU(u_k) − ReLU(u_k⁰)) / (u_k − u_k⁰) the Rescale multipliers of the two ReLUs (the
ReLU derivative where u_k = u_k⁰) and s_k = γ_k/√(var_k + ε) the inference-mode BatchNorm
scales. :func:`deeplift` evaluates this closed form for every output at once (one pass);
:func:`deeplift_captum` runs captum's ``DeepLift`` (the peer). Both sum each gene's
attributions over its real bins (where channel 0 > 0) and return (genes, outputs, features)
for the RNA and the promoter channels. Completeness: over all bins, Σ attributions =
f_o(x) − f_o(x⁰); the regulator channels (≥ 1) are zero in x⁰ and in the padding, so their
per-gene sums are complete by themselves.
"""

from __future__ import annotations

import numpy as np

from ..dl import require_captum, require_torch
from .network import pad_batch


def reference_inputs(f_rna: int, f_prom: int, length: int, l_rna: int, l_prom: int = 30, *,
                     dtype=None):
    """x⁰ padded to ``length`` RNA bins: ``(rna (1, F, length), prom (1, F', 30))``."""
    torch = require_torch("DeepLIFT")
    dt = dtype or torch.float32
    r = torch.zeros((1, f_rna, length), dtype=dt)
    r[0, 0, :min(l_rna, length)] = 1.0
    p = torch.zeros((1, f_prom, 30), dtype=dt)
    p[0, 0, :l_prom] = 1.0
    return r, p


def _multipliers(u, u0):
    torch = require_torch("DeepLIFT")
    du = u - u0
    dr = torch.relu(u) - torch.relu(u0)
    same = du == 0
    slope = torch.where(same, (u > 0).to(u.dtype), dr / torch.where(same, torch.ones_like(du),
                                                                     du))
    return slope


def deeplift(net, rna, prom, lengths, *, l_rna: int, l_prom: int = 30, outputs=None):
    """Closed-form DeepLIFT for padded inputs (see :func:`gpu_engine.decode.network.pad_batch`).

    ``net`` in eval mode; ``lengths``: each gene's real RNA bins; ``outputs``: output indices
    (default all). Returns ``(rna_scores (B, O, F_rna), prom_scores (B, O, F_prom))`` summed
    over real bins, as NumPy arrays in the inputs' precision.
    """
    torch = require_torch("DeepLIFT")
    net.eval()
    with torch.no_grad():
        B, F, P = rna.shape
        r0, p0 = reference_inputs(net.f_rna, net.f_prom, P, l_rna, l_prom, dtype=rna.dtype)
        z, z0 = net.trunk(rna, prom), net.trunk(r0, p0)
        h = net.head
        u1, u10 = h.fc1(z), h.fc1(z0)
        s1 = h.bn1.weight / torch.sqrt(h.bn1.running_var + h.bn1.eps)
        a1, a10 = h.bn1(torch.relu(u1)), h.bn1(torch.relu(u10))
        u2, u20 = h.fc2(a1), h.fc2(a10)
        s2 = h.bn2.weight / torch.sqrt(h.bn2.running_var + h.bn2.eps)
        m1, m2 = _multipliers(u1, u10), _multipliers(u2, u20)  # (B, 160)
        W = net.out.weight if outputs is None else net.out.weight[list(outputs)]  # (O, 160)
        g2 = (s2 * m2)[:, None, :] * W[None]                       # (B, O, 160)
        g1 = (s1 * m1)[:, None, :] * (g2 @ h.fc2.weight)           # (B, O, 160)
        g = g1 @ h.fc1.weight                                      # (B, O, 280)
        c = net.arch.rna_channels
        g_rna, g_prom = g[..., :c], g[..., c:]
        K, Bm = net.effective()                                    # (4, 160, F), (120, F')
        v = torch.einsum("boc,kcf->bokf", g_rna, K)                # (B, O, 4 taps, F)
        # position i gets tap (a, b) where a + b ≤ i ≤ P − 3 + a + b
        i = torch.arange(P)
        sums = torch.tensor([0, 1, 1, 2])
        valid = ((i[None, :] >= sums[:, None]) & (i[None, :] <= P - 3 + sums[:, None])).to(
            rna.dtype)                                             # (4, P)
        real = (torch.arange(P)[None, :] < torch.as_tensor(lengths)[:, None]).to(rna.dtype)
        dx = (rna - r0) * real[:, None, :]                         # (B, F, P), real bins only
        # Σ_i Δx[f, i] · Σ_taps valid[t, i] v[t, f]
        per_tap = torch.einsum("bfp,tp->btf", dx, valid)           # (B, 4, F)
        rna_scores = torch.einsum("botf,btf->bof", v, per_tap)
        # promoter: every bin of the 30 is real; ∂z_prom/∂x = B for each bin
        dp = (prom - p0).sum(-1)                                   # (B, F')
        prom_scores = (g_prom @ Bm) * dp[:, None, :]
    return rna_scores.cpu().numpy(), prom_scores.cpu().numpy()


def deeplift_captum(net, rna, prom, lengths, *, l_rna: int, l_prom: int = 30, outputs=None):
    """The same scores from captum's ``DeepLift`` (one call per output), summed over real
    bins. Slow; the peer the closed form is tested against."""
    torch = require_torch("DeepLIFT")
    attr = require_captum()
    net.eval()
    B, F, P = rna.shape
    r0, p0 = reference_inputs(net.f_rna, net.f_prom, P, l_rna, l_prom, dtype=rna.dtype)
    dl = attr.DeepLift(net)
    outs = range(net.n_out) if outputs is None else list(outputs)
    real = (torch.arange(P)[None, :] < torch.as_tensor(lengths)[:, None]).to(rna.dtype)
    rs, ps = [], []
    for o in outs:
        a_r, a_p = dl.attribute((rna.clone().requires_grad_(), prom.clone().requires_grad_()),
                                baselines=(r0.expand_as(rna), p0.expand_as(prom)),
                                target=int(o))
        rs.append((a_r * real[:, None, :]).sum(-1).detach())
        ps.append(a_p.sum(-1).detach())
    return (torch.stack(rs, 1).cpu().numpy(), torch.stack(ps, 1).cpu().numpy())


def attribute(net, rna_list, prom_list, *, l_rna: int | None = None, batch_size: int = 128,
              padding: str = "fixed", outputs=None):
    """Closed-form DeepLIFT for many genes (lists of per-gene arrays), batched. ``l_rna``: the
    reference's RNA length (default: the median length of these genes, integer part)."""
    lengths = np.array([a.shape[1] for a in rna_list])
    l_ref = int(np.median(lengths)) if l_rna is None else int(l_rna)
    dtype = next(net.parameters()).dtype
    parts_r, parts_p = [], []
    for s in range(0, len(rna_list), batch_size):
        r, p, ln = pad_batch(rna_list[s:s + batch_size], prom_list[s:s + batch_size],
                             padding=padding, min_length=l_ref, dtype=dtype)
        dev = next(net.parameters()).device
        a, b = deeplift(net, r.to(dev), p.to(dev), ln, l_rna=l_ref, outputs=outputs)
        parts_r.append(a)
        parts_p.append(b)
    return np.concatenate(parts_r), np.concatenate(parts_p)
