"""DEcode network, DeepLIFT and training recipe: the spec's §9 tests 1–4, 6 and 7."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="DEcode needs PyTorch (the [dl] extra)")

from gpu_engine.decode.network import (  # noqa: E402
    build_network,
    n_parameters,
    pad_batch,
    summarize,
)
from gpu_engine.decode.training import EarlyStopping, train_once, train_restarts  # noqa: E402
from gpu_engine.errors import InputError  # noqa: E402


def _genes(rng, n, f_rna, f_prom, lengths=None, density=0.2):
    """Random sparse inputs with channel 0 structural (exon bases / mask), scaled to [0, 1]."""
    rna, prom = [], []
    for i in range(n):
        L = int(lengths[i]) if lengths is not None else int(rng.integers(1, 12))
        r = rng.random((f_rna, L)) * (rng.random((f_rna, L)) < density)
        r[0] = 1.0
        r[0, -1] = rng.uniform(0.1, 1.0)
        p = rng.random((f_prom, 30)) * (rng.random((f_prom, 30)) < density)
        p[0] = 1.0
        rna.append(r)
        prom.append(p)
    return rna, prom


def _randomize_head(net, rng):
    """Non-trivial biases and BatchNorm statistics (a trained-like state)."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias") or ".bn" in name:
                p.copy_(torch.as_tensor(rng.normal(0, 0.5, p.shape), dtype=p.dtype))
        for m in (net.head.bn1, net.head.bn2):
            m.running_mean.copy_(torch.as_tensor(rng.normal(0, 0.3, m.running_mean.shape)))
            m.running_var.copy_(torch.as_tensor(rng.uniform(0.5, 2, m.running_var.shape)))
    net.eval()
    return net


def test_parameter_count_and_names():
    net = build_network(372, 726, 54, seed=0)
    assert sum(p.numel() for p in net.parameters()) == n_parameters(372, 726, 54) == 395_014
    for shape in ((10, 7, 3), (1, 1, 1), (50, 900, 200)):
        small = build_network(*shape, seed=0)
        assert sum(p.numel() for p in small.parameters()) == n_parameters(*shape)
    names = set(net.state_dict())
    expected = {"rna.conv1.weight", "rna.conv2.weight", "out.weight", "out.bias",
                *(f"prom.conv{k}.weight" for k in range(1, 6)),
                *(f"head.fc{k}.{w}" for k in (1, 2) for w in ("weight", "bias")),
                *(f"head.bn{k}.{w}" for k in (1, 2)
                  for w in ("weight", "bias", "running_mean", "running_var"))}
    assert expected <= names
    assert net.rna.conv1.weight.shape == (160, 372, 2) and net.prom.conv1.weight.shape == (
        120, 726, 1)


def test_initialization_and_batchnorm_settings():
    net = build_network(300, 400, 54, seed=1)
    W = net.rna.conv1.weight.detach().numpy()
    bound = np.sqrt(6 / (300 * 2 + 160 * 2))
    assert np.abs(W).max() <= bound and np.abs(W).max() > 0.99 * bound
    np.testing.assert_allclose(W.std(), bound / np.sqrt(3), rtol=0.02)
    fc = net.head.fc1.weight.detach().numpy()
    np.testing.assert_allclose(np.abs(fc).max(), np.sqrt(6 / (280 + 160)), rtol=0.01)
    for name, p in net.named_parameters():
        if name.endswith("bias"):
            assert not p.detach().any(), name
    for bn in (net.head.bn1, net.head.bn2):
        assert bn.eps == 1e-3 and bn.momentum == pytest.approx(0.01)
        assert (bn.weight == 1).all() and not bn.bias.any()
    again = build_network(300, 400, 54, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                 again.state_dict().values()))


def test_linear_trunk_facts():
    rng = np.random.default_rng(0)
    net = build_network(6, 5, 4, seed=2, dtype=torch.float64)
    rna, prom = _genes(rng, 5, 6, 5, lengths=[7, 9, 4, 12, 6])
    r, p, ln = pad_batch(rna, prom, padding="fixed", dtype=torch.float64)
    z = net.trunk(r, p)
    # promoter: any permutation of its 30 bins gives the same features
    zp = net.trunk(r, p[:, :, torch.randperm(30)])
    torch.testing.assert_close(zp, z, rtol=1e-13, atol=1e-13)
    # RNA: the closed form K·S − (K01 + K10)·x0 − K11·(x0 + x1)
    K, _ = net.effective()
    S, x0, x1 = r.sum(-1), r[:, :, 0], r[:, :, 1]
    closed = S @ K.sum(0).T - x0 @ (K[1] + K[2]).T - (x0 + x1) @ K[3].T
    torch.testing.assert_close(z[:, :160], closed, rtol=1e-13, atol=1e-13)
    # interior bins (2 … L−1) of a gene can be permuted with padding="fixed"
    g = 3
    perm = list(range(ln[g]))
    perm[2:] = list(np.random.default_rng(1).permutation(perm[2:]))
    rna2 = list(rna)
    rna2[g] = rna[g][:, perm]
    r2, p2, _ = pad_batch(rna2, prom, padding="fixed", dtype=torch.float64)
    torch.testing.assert_close(net.trunk(r2, p2), z, rtol=1e-13, atol=1e-13)


def test_batch_dependence_with_keras_padding():
    """padding="keras": the batch's longest gene loses taps, so its prediction changes when a
    longer gene joins the batch; padding="fixed": it does not."""
    rng = np.random.default_rng(3)
    net = _randomize_head(build_network(6, 5, 4, seed=4, dtype=torch.float64), rng)
    rna, prom = _genes(rng, 3, 6, 5, lengths=[5, 8, 20])
    for padding, changes in (("keras", True), ("fixed", False)):
        r, p, _ = pad_batch(rna[:2], prom[:2], padding=padding, dtype=torch.float64)
        alone = net(r, p)[1]
        r, p, _ = pad_batch(rna, prom, padding=padding, dtype=torch.float64)
        together = net(r, p)[1]
        assert (not torch.allclose(alone, together, rtol=1e-9, atol=1e-12)) == changes, padding


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
@pytest.mark.parametrize("padding", ["fixed", "keras"])
def test_fast_exact_mode_equals_explicit(dtype, tol, padding):
    rng = np.random.default_rng(5)
    net = _randomize_head(build_network(9, 7, 5, seed=6, dtype=dtype), rng)
    rna, prom = _genes(rng, 16, 9, 7)
    r, p, _ = pad_batch(rna, prom, padding=padding, dtype=dtype)
    explicit = net(r, p)
    fast = net.forward_summary(summarize(r, p))
    torch.testing.assert_close(fast, explicit, rtol=tol, atol=tol * explicit.abs().max().item())


def test_deeplift_closed_form_equals_captum_and_is_complete():
    pytest.importorskip("captum", reason="the peer DeepLIFT needs captum (the [dl] extra)")
    from gpu_engine.decode.deeplift import deeplift, deeplift_captum, reference_inputs

    rng = np.random.default_rng(7)
    net = _randomize_head(build_network(8, 6, 5, seed=8, dtype=torch.float64), rng)
    rna, prom = _genes(rng, 6, 8, 6, lengths=[3, 10, 7, 1, 14, 5])
    l_ref = 6
    r, p, ln = pad_batch(rna, prom, padding="fixed", min_length=l_ref, dtype=torch.float64)
    ours_r, ours_p = deeplift(net, r, p, ln, l_rna=l_ref)
    ref_r, ref_p = deeplift_captum(net, r, p, ln, l_rna=l_ref)
    np.testing.assert_allclose(ours_r, ref_r, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours_p, ref_p, rtol=1e-10, atol=1e-12)
    # completeness over the regulator channels (zero in x0 and in the padding) plus the
    # structural channel summed over every bin
    r0, p0 = reference_inputs(8, 6, r.shape[2], l_ref, dtype=torch.float64)
    with torch.no_grad():
        diff = (net(r, p) - net(r0, p0)).numpy()
    full_r, full_p = deeplift(net, r, p, np.full(len(rna), r.shape[2]), l_rna=l_ref)
    np.testing.assert_allclose(full_r.sum(-1) + full_p.sum(-1), diff, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours_r[:, :, 1:], full_r[:, :, 1:], rtol=1e-12, atol=1e-14)
    # a subset of outputs is the same as their rows of all outputs
    sub_r, _ = deeplift(net, r, p, ln, l_rna=l_ref, outputs=[4, 1])
    np.testing.assert_allclose(sub_r, ours_r[:, [4, 1]], rtol=1e-12, atol=1e-15)


def test_early_stopping_semantics():
    """Keras: stop after `patience` epochs without a new minimum (min_delta 0); the
    checkpoint is the epoch with the lowest validation loss."""
    es = EarlyStopping(patience=3)
    losses = [5.0, 4.0, 4.0, 3.9, 4.1, 3.9, 4.5, 5.0]
    stopped = None
    for epoch, v in enumerate(losses):
        if es.update(v):
            stopped = epoch
            break
    assert stopped == 6 and es.best_epoch == 3 and es.best_loss == 3.9
    es = EarlyStopping(patience=2)
    assert not any(es.update(v) for v in [3, 2, 1, 0.5])  # always improving: never stops


def test_training_restores_best_epoch_is_deterministic_and_picks_best_restart():
    rng = np.random.default_rng(9)
    rna, prom = _genes(rng, 60, 5, 4)
    w = rng.normal(size=(5, 3))
    Y = np.stack([np.asarray(r[1:].sum(1).tolist() + [0.0])[:5] for r in rna]) @ w
    Y = (Y - Y.mean(0)) / Y.std(0)
    tr, va = np.arange(40), np.arange(40, 60)
    kw = dict(epochs=6, patience=2, batch_size=16, dtype=torch.float64)
    net, run = train_once(rna, prom, Y, tr, va, seed=3, **kw)
    net2, run2 = train_once(rna, prom, Y, tr, va, seed=3, **kw)
    assert [h["val_loss"] for h in run.history] == [h["val_loss"] for h in run2.history]
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                 net2.state_dict().values()))
    vals = [h["val_loss"] for h in run.history]
    assert run.best_epoch == int(np.argmin(vals)) and run.best_val_loss == min(vals)
    from gpu_engine.decode.training import BatchPredictor, mean_loss

    exp = BatchPredictor(rna, prom, padding="fixed", mode="explicit", dtype=torch.float64,
                         device="cpu")
    got = mean_loss(net, exp, Y, va, batch_size=16)
    np.testing.assert_allclose(got, run.best_val_loss, rtol=1e-12)  # the best epoch's weights
    best, runs = train_restarts(rna, prom, Y, tr, va, restarts=3, seed=10, **kw)
    k = int(np.argmin([r.best_val_loss for r in runs]))
    np.testing.assert_allclose(mean_loss(best, exp, Y, va, batch_size=16),
                               runs[k].best_val_loss, rtol=1e-12)


def test_fast_training_equals_explicit_training():
    """The fast mode trains the same function with the same gradients (float64, 1e-10 of
    each parameter's largest gradient; lengths 1..40 bins, a one-bin gene included). Over
    Adam steps the two drift apart by rounding only (Adam divides by √v, which magnifies the
    last bits of near-zero gradients): after 2 epochs the losses agree to 1e-6."""
    from gpu_engine.decode.network import build_network, gene_summaries, pad_batch, summarize
    from gpu_engine.decode.training import BatchPredictor

    rng = np.random.default_rng(4)
    rna, prom = _genes(rng, 50, 6, 5)
    rna[0] = rna[0][:, :1]
    r, p, _ = pad_batch(rna, prom, padding="fixed", dtype=torch.float64)
    fast_s, ref_s = gene_summaries(rna, prom, dtype=torch.float64), summarize(r, p)
    for k in ref_s:
        torch.testing.assert_close(fast_s[k], ref_s[k], rtol=0, atol=1e-12)
    Y = rng.normal(size=(50, 3))
    net = build_network(6, 5, 3, seed=1, dtype=torch.float64).train()
    sel = np.arange(0, 50, 3)
    grads = []
    for mode in ("explicit", "fast"):
        net.zero_grad()
        bp = BatchPredictor(rna, prom, padding="fixed", mode=mode, dtype=torch.float64,
                            device="cpu")
        torch.mean((bp(net, sel) - torch.as_tensor(Y[sel])) ** 2).backward()
        grads.append({n: q.grad.clone() for n, q in net.named_parameters()})
    for n, g in grads[0].items():
        torch.testing.assert_close(grads[1][n], g, rtol=0, atol=1e-10 * float(g.abs().max()),
                                   msg=n)
    tr, va = np.arange(35), np.arange(35, 50)
    kw = dict(epochs=2, patience=10, batch_size=8, dtype=torch.float64)
    _, run_e = train_once(rna, prom, Y, tr, va, seed=2, mode="explicit", **kw)
    _, run_f = train_once(rna, prom, Y, tr, va, seed=2, mode="fast", **kw)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose([h[key] for h in run_f.history],
                                   [h[key] for h in run_e.history], rtol=1e-6)
    with pytest.raises(InputError, match="fast mode needs"):
        train_once(rna, prom, Y, tr, va, seed=2, mode="fast", padding="keras", **kw)
