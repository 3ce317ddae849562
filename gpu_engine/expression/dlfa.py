"""The dlfa training protocol for one gene's CNN (spec ``dl_expression.md`` §3.2–3.3).

1. Samples split 80/20 into train/test (scikit-learn ``train_test_split(test_size=0.2,
   random_state=42)`` over the expression table's sample order).
2. On train: ``KFold(5, shuffle=True, random_state=42)``.
3. Restart seeds: NumPy ``RandomState(42).choice(100, 100, replace=False)`` split into 5
   consecutive groups of 20; fold f trains ``restarts`` models with the first seeds of its
   group (a seed fixes the initial parameters and the batch order).
4. Each model trains on the fold's 4/5 (AdamW lr 2e-3, betas (0.9, 0.999), eps 1e-8, weight
   decay 1e-5, batch 32 reshuffled per epoch with the last batch kept, 100 epochs, loss MSE +
   the scaler penalty at every step) and is scored by Pearson r on the fold's 1/5.
5. The top ``top`` (5) per fold by validation r are kept. Ensembles (prediction = the members'
   mean): ``nbest`` (top × folds), ``best`` (the best of each fold), ``best1`` (the single best
   overall). The **initial** parameters of ``best1`` are kept (they seed the FA stage).
6. Test MSE, Pearson and Spearman of each ensemble on the 20 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cnn import PENALTY_ALPHA, PENALTY_LAMBDA, _torch, build_network, penalty

ENSEMBLES = ("nbest", "best", "best1")


@dataclass
class Protocol:
    """Where every sample and seed goes: ``train``/``test`` sample positions, ``folds``
    (a list of (fit, validation) positions within ``train``), ``seeds[f]`` (the fold's restart
    seeds)."""

    train: np.ndarray
    test: np.ndarray
    folds: list
    seeds: list

    @classmethod
    def reference(cls, n: int, *, n_folds: int = 5, restarts: int = 20,
                  random_state: int = 42) -> Protocol:
        from sklearn.model_selection import KFold, train_test_split

        train, test = train_test_split(np.arange(n), test_size=0.2, random_state=random_state)
        folds = list(KFold(n_folds, shuffle=True, random_state=random_state).split(train))
        perm = np.random.RandomState(random_state).choice(100, 100, replace=False)
        groups = np.array_split(perm, n_folds)
        return cls(np.asarray(train), np.asarray(test), folds,
                   [g[:restarts].tolist() for g in groups])


def select(scores: np.ndarray, top: int = 5) -> dict:
    """Ensemble membership from validation scores (folds × restarts, NaN = failed): (fold,
    restart) pairs of ``nbest`` (each fold's ``top`` best), ``best`` (each fold's best) and
    ``best1`` (the best overall). Ties keep the earlier restart."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-s, axis=1, kind="stable")
    nbest = [(f, int(r)) for f in range(s.shape[0]) for r in order[f, :top]]
    best = [(f, int(order[f, 0])) for f in range(s.shape[0])]
    f1, r1 = np.unravel_index(int(np.argmax(s)), s.shape)  # first maximum, row-major
    return {"nbest": nbest, "best": best, "best1": [(int(f1), int(r1))]}


DROP_SEED_OFFSET = 1_000_003  # the stochastic-depth stream of a seed: its own generator


def generators(seed: int):
    """(batch-order generator, stochastic-depth generator) of a restart seed."""
    torch = _torch()
    return (torch.Generator().manual_seed(int(seed)),
            torch.Generator().manual_seed(int(seed) + DROP_SEED_OFFSET))


def train_model(X, y, seed: int, *, epochs: int = 100, batch: int = 32, lr: float = 2e-3,
                weight_decay: float = 1e-5, lam: float = PENALTY_LAMBDA,
                alpha: float = PENALTY_ALPHA, dtype=None, device=None, init=None,
                batch_generator=None, drop_generator=None, nu=None):
    """One network trained as the reference does (see the module docstring); ``X`` (n × p)
    and ``y`` (n,) tensors. ``init``: a state dict to start from (else drawn from ``seed``).
    The batch order and the stochastic-depth decisions come from two generators
    (:func:`generators` of ``seed`` unless given). Returns (the trained network, its initial
    state dict). ``nu``: penalty factors per SNP (functional annotations; ν ≡ 1 if None)."""
    torch = _torch()
    net = build_network(X.shape[1], seed=seed, dtype=dtype or X.dtype, device=device)
    if init is not None:
        net.load_state_dict(init)
    start = {k: v.detach().clone() for k, v in net.state_dict().items()}
    opt = torch.optim.AdamW(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=weight_decay)
    bgen, dgen = generators(seed)
    bgen = batch_generator or bgen
    dgen = drop_generator or dgen
    for blk in (net.stage1.block, net.stage2.block, net.stage3.block):
        blk.generator = dgen
    net.train()
    n = len(y)
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=bgen).split(batch):
            opt.zero_grad()
            loss = (torch.nn.functional.mse_loss(net(X[idx]), y[idx])
                    + penalty(net, lam, alpha, nu))
            loss.backward()
            opt.step()
    net.eval()
    return net, start


def _pearson(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class GeneFit:
    """One gene's protocol result: validation scores (folds × restarts), the ensembles'
    members ((fold, restart) pairs), the members' state dicts, the test metrics per ensemble,
    and ``best1_init`` (the initial state of the best single model)."""

    scores: np.ndarray
    members: dict
    states: dict = field(repr=False)
    test: dict
    best1_init: dict = field(repr=False)


def fit_gene(X: np.ndarray, y: np.ndarray, protocol: Protocol | None = None, *,
             restarts: int = 20, top: int = 5, epochs: int = 100, dtype=None,
             device=None) -> GeneFit:
    """The full dlfa protocol for one gene (``X`` n × p dosages, ``y`` n standardised
    expression). Threads: run it under :func:`gpu_engine.threads.limit_threads` when many
    genes train in parallel."""
    torch = _torch()
    from scipy.stats import spearmanr

    dtype = dtype or torch.float32
    protocol = protocol or Protocol.reference(len(y), restarts=restarts)
    Xt = torch.as_tensor(np.asarray(X), dtype=dtype, device=device)
    yt = torch.as_tensor(np.asarray(y), dtype=dtype, device=device)
    tr = protocol.train
    scores = np.full((len(protocol.folds), restarts), np.nan)
    states, inits = {}, {}
    for f, (fit, val) in enumerate(protocol.folds):
        fi, vi = tr[fit], tr[val]
        for r, seed in enumerate(protocol.seeds[f][:restarts]):
            net, start = train_model(Xt[fi], yt[fi], seed, epochs=epochs, dtype=dtype,
                                     device=device)
            with torch.no_grad():
                pred = net(Xt[vi]).cpu().numpy()
            scores[f, r] = _pearson(pred, y[vi])
            states[(f, r)] = {k: v.detach().clone() for k, v in net.state_dict().items()}
            inits[(f, r)] = start
    members = select(scores, top)
    keep = {m for ms in members.values() for m in ms}
    states = {m: s for m, s in states.items() if m in keep}
    te = protocol.test
    test = {}
    for name, ms in members.items():
        preds = []
        for m in ms:
            net = build_network(X.shape[1], dtype=dtype, device=device)
            net.load_state_dict(states[m])
            net.eval()
            with torch.no_grad():
                preds.append(net(Xt[te]).cpu().numpy())
        p = np.mean(preds, axis=0)
        test[name] = {"mse": float(np.mean((p - y[te]) ** 2)), "pearson": _pearson(p, y[te]),
                      "spearman": float(spearmanr(p, y[te]).statistic)}
    return GeneFit(scores, members, states, test, inits[members["best1"][0]])
