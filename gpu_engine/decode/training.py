"""DEcode's training recipe (spec §4): Adam (lr 1e-3, ε 1e-7), mean squared error over the
batch and the outputs, mini-batches of 128 genes reshuffled every epoch, up to 100 epochs,
early stopping on the validation loss with patience 10 (Keras semantics: stop after 10
epochs without a new minimum, min_delta 0) keeping the best epoch's weights, and 10 restarts
of which the lowest best validation loss wins.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ..dl import require_torch
from .network import build_network, pad_batch


@dataclass
class EarlyStopping:
    """Keras' ``EarlyStopping(patience, min_delta=0)`` with checkpoint-best.

    ``update(loss)`` after each epoch returns True when training should stop; ``best_epoch``
    (0-based) and ``best_loss`` are the checkpoint's."""

    patience: int = 10
    best_loss: float = float("inf")
    best_epoch: int = -1
    epoch: int = -1
    wait: int = 0

    def update(self, loss: float) -> bool:
        self.epoch += 1
        if loss < self.best_loss:  # min_delta 0: any decrease is an improvement
            self.best_loss, self.best_epoch, self.wait = float(loss), self.epoch, 0
            return False
        self.wait += 1
        return self.wait >= self.patience

    @property
    def improved(self) -> bool:
        return self.best_epoch == self.epoch


@dataclass
class Run:
    """One restart: its seed, per-epoch history and best validation loss."""

    seed: int
    history: list = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = float("inf")
    state: dict | None = None


def _batches(n: int, size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[s:s + size] for s in range(0, n, size)]


def _loss(net, rna, prom, Y, idx, *, batch_size, padding, rng=None, train=False, opt=None):
    torch = require_torch("DEcode")
    total, count = 0.0, 0
    dtype = next(net.parameters()).dtype
    dev = next(net.parameters()).device
    for b in _batches(len(idx), batch_size, rng):
        sel = idx[b]
        r, p, _ = pad_batch([rna[i] for i in sel], [prom[i] for i in sel], padding=padding,
                            dtype=dtype)
        y = torch.as_tensor(Y[sel], dtype=dtype, device=dev)
        if train:
            opt.zero_grad()
            loss = torch.mean((net(r.to(dev), p.to(dev)) - y) ** 2)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                loss = torch.mean((net(r.to(dev), p.to(dev)) - y) ** 2)
        total += float(loss.detach()) * len(sel)
        count += len(sel)
    return total / max(count, 1)


def train_once(rna, prom, Y, train_idx, val_idx, *, seed: int, epochs: int = 100,
               patience: int = 10, batch_size: int = 128, padding: str = "fixed",
               lr: float = 1e-3, dtype=None, device=None, net=None,
               trainable=None) -> tuple:
    """One training run from a fresh network (or ``net``); returns ``(net with the best
    epoch's weights, Run)``. ``trainable``: parameter-name prefixes to train (the others are
    frozen; transfer models train ``("head.", "out.")``)."""
    torch = require_torch("DEcode")
    torch.manual_seed(seed)
    if net is None:
        net = build_network(rna[0].shape[0], prom[0].shape[0], Y.shape[1], seed=seed,
                            dtype=dtype, device=device)
    params = [p for n, p in net.named_parameters()
              if trainable is None or n.startswith(tuple(trainable))]
    for n, p in net.named_parameters():
        p.requires_grad_(trainable is None or n.startswith(tuple(trainable)))
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-7)
    rng = np.random.default_rng(seed)
    stop = EarlyStopping(patience)
    run = Run(seed)
    train_idx, val_idx = np.asarray(train_idx), np.asarray(val_idx)
    for _ in range(epochs):
        net.train()
        tr = _loss(net, rna, prom, Y, train_idx, batch_size=batch_size, padding=padding,
                   rng=rng, train=True, opt=opt)
        net.eval()
        va = _loss(net, rna, prom, Y, val_idx, batch_size=batch_size, padding=padding)
        run.history.append({"loss": tr, "val_loss": va})
        halt = stop.update(va)
        if stop.improved:
            run.state = copy.deepcopy(net.state_dict())
        if halt:
            break
    run.best_epoch, run.best_val_loss = stop.best_epoch, stop.best_loss
    if run.state is not None:
        net.load_state_dict(run.state)
    net.eval()
    return net, run


def train_restarts(rna, prom, Y, train_idx, val_idx, *, restarts: int = 10, seed: int = 0,
                   **kw) -> tuple:
    """``restarts`` runs with seeds ``seed, seed + 1, …``; returns ``(best net, runs)`` where
    the best run has the lowest best-epoch validation loss (the first of ties)."""
    best, runs = None, []
    for k in range(restarts):
        net, run = train_once(rna, prom, Y, train_idx, val_idx, seed=seed + k, **kw)
        runs.append(run)
        if best is None or run.best_val_loss < runs[best].best_val_loss:
            best, best_net = k, net
    return best_net, runs
