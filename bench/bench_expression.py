"""Expression models: PredictDB's nested-CV elastic net per gene, ours (covariance-form
coordinate descent batched over the 66 fits of a gene's nested CV) vs scikit-learn.

Baseline: the same protocol with scikit-learn ``ElasticNetCV(l1_ratio=0.5)`` on standardised
columns (5 outer folds, each an ``ElasticNetCV`` over 10 inner folds, plus the final 10-fold
``ElasticNetCV``: 6 per gene). One ``ElasticNetCV`` is timed and the baseline scaled by 6
(``baseline_scale``). Data: one simulated gene, n = 670 samples (the spec's world) and p cis
SNPs with block LD (AR(1) haplotypes, ρ = 0.9), 3 causal SNPs, h² = 0.3. ``quick``: p = 1,000;
``full``: p = 1,000 and 3,000 (the issue's range).

CNN (with torch installed): training throughput of G dlfa models one at a time vs the
gene-batched trainer (:mod:`gpu_engine.expression.packed`), on the GPU with a GPU backend.
"""

from __future__ import annotations

import numpy as np

from gpu_engine.benchmarking import Case

SIZES = {"quick": (1000,), "full": (1000, 3000)}


def _gene(p: int, n: int = 670, seed: int = 0):
    from gpu_engine.datasets.expr_world import _haplotypes

    rng = np.random.default_rng(seed)
    H = _haplotypes(rng, 2 * n, p)
    X = (H[:n] + H[n:]).astype(float)
    X = X[:, X.std(0) > 0]
    g = X[:, rng.choice(X.shape[1], 3, replace=False)] @ rng.normal(size=3)
    y = np.sqrt(0.3) * (g - g.mean()) / g.std() + np.sqrt(0.7) * rng.normal(size=n)
    return X, (y - y.mean()) / y.std(ddof=1)


def cases(size: str, backend) -> list[Case]:
    from sklearn.linear_model import ElasticNetCV
    from sklearn.model_selection import PredefinedSplit

    from gpu_engine.expression import NestedFolds, nested_cv

    out = []
    for p in SIZES[size]:
        X, y = _gene(p)
        n = len(y)
        folds = NestedFolds.draw(n, np.random.default_rng(1))
        Xs = (X - X.mean(0)) / X.std(0)

        def sklearn_one(Xs=Xs, y=y, folds=folds):
            return ElasticNetCV(l1_ratio=0.5, cv=PredefinedSplit(folds.final)).fit(Xs, y).alpha_

        def ours(X=X, y=y, folds=folds):
            return nested_cv(X, y, folds, backend=backend)["rho_avg"]

        out.append(Case(f"nested CV, p={X.shape[1]}", {"samples": n, "snps": int(X.shape[1]),
                                                      "fits_per_gene": 66},
                        sklearn_one, ours, "sklearn ElasticNetCV ×6", "ours (batched CD)",
                        backend.name, baseline_scale=6.0, repeats=1, warmup=0,
                        notes={"baseline": "one 10-fold ElasticNetCV timed, scaled by the 6 "
                               "a PredictDB gene needs"}))
    return out + _cnn_cases(size, backend)


def _cnn_cases(size: str, backend) -> list[Case]:
    """CNN training throughput: G models trained one at a time (the reference's loop) vs the
    gene-batched trainer (one packed network), 1 epoch each on n = 400 samples, p = 256;
    the figure is models × epochs per second (``notes``). CPU: torch's own threads."""
    try:
        import torch
    except ImportError:
        return []
    from gpu_engine.expression.cnn import build_network
    from gpu_engine.expression.dlfa import train_model
    from gpu_engine.expression.packed import train_packed

    device = "cuda" if backend.is_gpu and torch.cuda.is_available() else "cpu"
    out = []
    n, p = 400, 256
    for G in ((16, 64) if size == "quick" else (64, 256, 1024)):
        rng = np.random.default_rng(0)
        X = torch.as_tensor(rng.integers(0, 3, (n, G, p)).astype(np.float32), device=device)
        y = torch.as_tensor(rng.normal(size=(n, G)).astype(np.float32), device=device)
        states = [build_network(p, seed=g).state_dict() for g in range(G)]
        loop_models = min(G, 8)  # the loop is timed on 8 models and scaled to G

        def one_at_a_time(X=X, y=y, states=states, k=loop_models):
            for g in range(k):
                train_model(X[:, g], y[:, g], g, epochs=1, init=states[g], device=device)

        def packed(X=X, y=y, states=states):
            train_packed(X, y, [{k: v.to(device) for k, v in s.items()} for s in states],
                         epochs=1)
            if device == "cuda":
                torch.cuda.synchronize()

        out.append(Case(f"cnn training, G={G}", {"samples": n, "snps": p, "models": G,
                                                 "epochs": 1},
                        one_at_a_time, packed, "one model at a time", "packed trainer",
                        backend.name if device == "cuda" else "cpu",
                        baseline_scale=G / loop_models, repeats=1, warmup=1,
                        notes={"device": device, "torch": torch.__version__}))
    return out
