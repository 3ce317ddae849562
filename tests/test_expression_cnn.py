"""The dlfa CNN (spec dl_expression.md §3): shapes, the parameter count, canonical names, the
initial state, stochastic depth, the penalty, determinism and save/load. CPU, float64."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the CNN needs PyTorch (the [dl] extra)")

from gpu_engine.expression.cnn import (  # noqa: E402
    build_network,
    load_state,
    n_parameters,
    penalty,
    save_state,
)

CANONICAL = {"scaler.w", "stem.conv.weight", "stem.conv.bias", "stem.norm.weight",
             "stem.norm.bias", "head.norm.weight", "head.norm.bias", "head.linear.weight",
             "head.linear.bias"} | {
    f"stage{i}.{part}" for i in (1, 2, 3) for part in (
        "norm.weight", "norm.bias", "down.weight", "down.bias", "block.dw.weight",
        "block.norm.weight", "block.norm.bias", "block.pw1.weight", "block.pw1.bias",
        "block.pw2.weight", "block.pw2.bias", "block.gamma")}


@pytest.mark.parametrize("p", [32, 33, 100, 1000, 1003])
def test_shapes_and_parameter_count(p):
    net = build_network(p, seed=0, dtype=torch.float64)
    assert sum(t.numel() for t in net.parameters()) == n_parameters(p) == \
        p + 469 + 24 * (p // 32)
    assert set(net.state_dict()) == CANONICAL
    sd = net.state_dict()
    assert sd["stem.conv.weight"].shape == (2, 1, 4)
    assert sd["stage3.block.dw.weight"].shape == (8, 1, 7)
    assert sd["head.linear.weight"].shape == (1, 8 * (p // 32))
    assert net(torch.rand(5, p, dtype=torch.float64) * 2).shape == (5,)


def test_parameter_counts_of_the_spec():
    assert [n_parameters(p) for p in (100, 1000, 3000, 8000)] == [641, 2213, 5701, 14469]


def test_few_snps_are_padded_to_32():
    net = build_network(10, seed=0, dtype=torch.float64)
    assert n_parameters(10) == 32 + 469 + 24 and net(torch.ones(3, 10, dtype=torch.float64)).shape == (3,)


def test_initial_state():
    net = build_network(100, seed=1, dtype=torch.float64).eval()
    assert (net.scaler.w == 0).all()
    assert all(torch.allclose(getattr(net, f"stage{i}").block.gamma,
                              torch.full_like(getattr(net, f"stage{i}").block.gamma, 1e-6))
               for i in (1, 2, 3))
    out = net(torch.randint(0, 3, (8, 100)).double())
    assert torch.allclose(out, out[0].expand(8), atol=0, rtol=0)  # w = 0: one constant


def test_stochastic_depth():
    net = build_network(64, seed=2, dtype=torch.float64)
    blk = net.stage3.block  # drop 0.8
    x = torch.randn(4, 8, 2, dtype=torch.float64)
    blk.eval()
    with torch.no_grad():
        blk.gamma.fill_(1.0)
        branch = blk(x) - x
        blk.train()
        g = torch.Generator().manual_seed(0)
        blk.generator = g
        draws = [blk(x) - x for _ in range(4000)]
    dropped = np.mean([bool((d == 0).all()) for d in draws])
    assert abs(dropped - 0.8) < 0.03
    mean = torch.stack(draws).mean(0)
    assert torch.allclose(mean, branch, rtol=0.15, atol=0.05 * branch.abs().max().item())
    kept = next(d for d in draws if not (d == 0).all())
    assert torch.allclose(kept, branch / 0.2)


def test_penalty_value_and_gradient():
    net = build_network(40, seed=3, dtype=torch.float64)
    with torch.no_grad():
        net.scaler.w.copy_(torch.linspace(-1, 1, 40, dtype=torch.float64))
    pen = penalty(net)
    w = net.scaler.w.detach().numpy()
    assert pen.item() == pytest.approx(0.05 * (0.7 * np.abs(w).sum() + 0.15 * (w ** 2).sum()))
    pen.backward()
    want = 0.05 * (0.7 * np.sign(w) + 0.3 * w)
    np.testing.assert_allclose(net.scaler.w.grad.numpy(), want, atol=1e-15)
    assert all(p.grad is None for n, p in net.named_parameters() if n != "scaler.w")


def test_deterministic_by_seed_and_save_load(tmp_path):
    def train(seed):
        torch.manual_seed(seed)
        net = build_network(64, seed=seed, dtype=torch.float64)
        opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-5)
        g = torch.Generator().manual_seed(seed)
        x = torch.randint(0, 3, (64, 64), generator=g).double()
        y = x[:, 3] - x[:, 40] + torch.randn(64, generator=g, dtype=torch.float64)
        for _ in range(3):
            for idx in torch.randperm(64, generator=g).split(32):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(net(x[idx]), y[idx]) + penalty(net)
                loss.backward()
                opt.step()
        return net

    a, b = train(7), train(7)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.scaler.w, torch.zeros(64))
    for suffix in (".pt", ".npz"):
        path = save_state(a, tmp_path / f"m{suffix}")
        c = load_state(path, dtype=torch.float64)
        for (k, va), vc in zip(a.state_dict().items(), c.state_dict().values()):
            assert torch.equal(va, vc), (suffix, k)
    with np.load(tmp_path / "m.npz") as z:
        assert set(z.files) == CANONICAL


# ------------------------------------------------------------------- the dlfa protocol
def test_protocol_splits_and_seeds():
    from sklearn.model_selection import train_test_split

    from gpu_engine.expression.dlfa import Protocol

    pr = Protocol.reference(670)
    assert len(pr.train) == 536 and len(pr.test) == 134
    assert set(pr.train) | set(pr.test) == set(range(670)) and not set(pr.train) & set(pr.test)
    assert list(pr.train) == list(train_test_split(np.arange(670), test_size=0.2,
                                                   random_state=42)[0])
    assert [len(v) for _, v in pr.folds] == [108, 107, 107, 107, 107]
    seeds = [s for g in pr.seeds for s in g]
    assert sorted(seeds) == list(range(100)) and all(len(g) == 20 for g in pr.seeds)
    assert seeds == list(np.random.RandomState(42).choice(100, 100, replace=False))


def test_ensemble_selection_on_scripted_scores():
    from gpu_engine.expression.dlfa import select

    s = np.array([[0.1, 0.5, 0.3, 0.5, np.nan, 0.2, 0.0],
                  [0.9, 0.1, 0.2, 0.3, 0.4, 0.8, 0.7]])
    m = select(s, top=3)
    assert m["nbest"] == [(0, 1), (0, 3), (0, 2), (1, 0), (1, 5), (1, 6)]  # ties: earlier
    assert m["best"] == [(0, 1), (1, 0)] and m["best1"] == [(1, 0)]


def test_gene_protocol_reduced():
    from gpu_engine.expression.cnn import build_network
    from gpu_engine.expression.dlfa import Protocol, fit_gene

    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, (120, 40)).astype(float)
    y = X[:, 5] - X[:, 30] + rng.normal(size=120)
    y = (y - y.mean()) / y.std(ddof=1)
    pr = Protocol.reference(120, restarts=2)
    fit = fit_gene(X, y, pr, restarts=2, top=1, epochs=2, dtype=torch.float64)
    assert fit.scores.shape == (5, 2) and np.isfinite(fit.scores).all()
    assert len(fit.members["nbest"]) == 5 and len(fit.members["best"]) == 5
    f, r = fit.members["best1"][0]
    assert fit.scores[f, r] == np.nanmax(fit.scores)
    # the best model's initial state is the one its seed draws
    init = build_network(40, seed=pr.seeds[f][r], dtype=torch.float64).state_dict()
    assert all(torch.equal(init[k], v) for k, v in fit.best1_init.items())
    # the "best" ensemble's test Pearson recomputed from the stored members
    preds = []
    for m in fit.members["best"]:
        net = build_network(40, dtype=torch.float64)
        net.load_state_dict(fit.states[m])
        net.eval()
        with torch.no_grad():
            preds.append(net(torch.as_tensor(X[pr.test])).numpy())
    p = np.mean(preds, axis=0)
    assert fit.test["best"]["pearson"] == pytest.approx(np.corrcoef(p, y[pr.test])[0, 1])
    assert set(fit.test) == {"nbest", "best", "best1"}


# ------------------------------------------------------------------- the gene-batched trainer
@pytest.mark.parametrize("p", [64, 40])
def test_packed_training_equals_separate_training(p):
    from gpu_engine.expression.dlfa import train_model
    from gpu_engine.expression.packed import pack, train_packed

    rng = np.random.default_rng(1)
    G, n = 3, 160
    X = rng.integers(0, 3, (n, G, p)).astype(float)
    y = X[:, :, 2] - X[:, :, p - 5] + rng.normal(size=(n, G))
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    states = [build_network(p, seed=10 + g, dtype=torch.float64).state_dict() for g in range(G)]
    # the packed forward pass equals the separate ones (evaluation mode)
    packed = pack(states, p).double().eval()
    with torch.no_grad():
        out = packed(Xt[:7])
        for g in range(G):
            net = build_network(p, dtype=torch.float64).eval()
            net.load_state_dict(states[g])
            torch.testing.assert_close(out[:, g], net(Xt[:7, g]), rtol=0, atol=1e-12)
    # the packed gradients equal the separate ones
    packed.zero_grad()
    err = packed(Xt[:32]) - yt[:32]
    ((err * err).mean(0).sum() + packed.penalties().sum()).backward()
    grads = {k: v.grad for k, v in packed.params.items()}
    for g in range(G):
        net = build_network(p, dtype=torch.float64).eval()
        net.load_state_dict(states[g])
        from gpu_engine.expression.cnn import penalty

        (torch.nn.functional.mse_loss(net(Xt[:32, g]), yt[:32, g]) + penalty(net)).backward()
        torch.testing.assert_close(grads["scaler_w"][g], net.scaler.w.grad, rtol=1e-12,
                                   atol=1e-15)
        torch.testing.assert_close(grads["head_linear_weight"][g], net.head.linear.weight.grad[0],
                                   rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(grads["stage3_block_pw2_weight"][8 * g:8 * (g + 1)],
                                   net.stage3.block.pw2.weight.grad, rtol=1e-10, atol=1e-18)
    # 5 AdamW steps (one epoch) with stochastic depth on. Measured agreement: 4e-10 (p = 64)
    # and 1e-7 (p = 40, padded): gradients that are zero up to rounding (e.g. the stem bias
    # before a GroupNorm, ~1e-14) move by ~lr·g/eps under Adam, so rounding differences of
    # the grouped convolutions' sums grow to that size; a wrong packing would differ by O(1)
    trained = train_packed(Xt, yt, states, epochs=1,
                           batch_generator=torch.Generator().manual_seed(123),
                           drop_generators=[torch.Generator().manual_seed(1000 + g)
                                            for g in range(G)])
    for g in range(G):
        alone, _ = train_model(Xt[:, g], yt[:, g], 10 + g, epochs=1, init=states[g],
                               batch_generator=torch.Generator().manual_seed(123),
                               drop_generator=torch.Generator().manual_seed(1000 + g))
        got = trained.state(g)
        for k, v in alone.state_dict().items():
            torch.testing.assert_close(got[k], v, rtol=0, atol=1e-6, msg=k)
        assert not torch.equal(got["scaler.w"], states[g]["scaler.w"])  # it trained
