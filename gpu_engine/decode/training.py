"""DEcode's training recipe (spec §4): Adam (lr 1e-3, ε 1e-7), mean squared error over the
batch and the outputs, mini-batches of 128 genes reshuffled every epoch, up to 100 epochs,
early stopping on the validation loss with patience 10 (Keras semantics: stop after 10
epochs without a new minimum, min_delta 0) keeping the best epoch's weights, and 10 restarts
of which the lowest best validation loss wins.

``mode="fast"`` trains through the summary form of the linear trunk
(:meth:`~.network.DEcodeNet.forward_summary` on :func:`~.network.gene_summaries`, computed
once): the same function and gradients as the explicit convolutions under
``padding="fixed"``, at a cost independent of the genes' lengths. ``mode="explicit"`` runs
the convolutions (needed for ``padding="keras"``, whose padding depends on the batch).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ..dl import require_torch
from .network import build_network, gene_summaries, pad_batch


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


class BatchPredictor:
    """Predictions for a batch of gene indices, explicit (padded convolutions) or fast (the
    precomputed summaries)."""

    def __init__(self, rna, prom, *, padding: str, mode: str, dtype, device):
        from ..errors import InputError

        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "fast" and padding != "fixed":
            raise InputError('the fast mode needs padding="fixed"; use mode="explicit" for '
                             'padding="keras"')
        self.rna, self.prom, self.padding, self.mode = rna, prom, padding, mode
        self.dtype, self.device = dtype, device
        self.summaries = (gene_summaries(rna, prom, dtype=dtype, device=device)
                          if mode == "fast" else None)

    def __call__(self, net, sel):
        torch = require_torch("DEcode")
        if self.summaries is not None:
            idx = torch.as_tensor(sel, device=self.device)
            return net.forward_summary({k: v[idx] for k, v in self.summaries.items()})
        r, p, _ = pad_batch([self.rna[i] for i in sel], [self.prom[i] for i in sel],
                            padding=self.padding, dtype=self.dtype)
        return net(r.to(self.device), p.to(self.device))


MODES = ("fast", "explicit")


def mean_loss(net, batches: BatchPredictor, Y, idx, *, batch_size, rng=None, train=False, opt=None):
    torch = require_torch("DEcode")
    total, count = 0.0, 0
    dev = next(net.parameters()).device
    dtype = next(net.parameters()).dtype
    for b in _batches(len(idx), batch_size, rng):
        sel = idx[b]
        y = torch.as_tensor(Y[sel], dtype=dtype, device=dev)
        if train:
            opt.zero_grad()
            loss = torch.mean((batches(net, sel) - y) ** 2)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                loss = torch.mean((batches(net, sel) - y) ** 2)
        total += float(loss.detach()) * len(sel)
        count += len(sel)
    return total / max(count, 1)


def train_once(rna, prom, Y, train_idx, val_idx, *, seed: int, epochs: int = 100,
               patience: int = 10, batch_size: int = 128, padding: str = "fixed",
               lr: float = 1e-3, dtype=None, device=None, net=None,
               trainable=None, mode: str = "explicit", batches: BatchPredictor | None = None
               ) -> tuple:
    """One training run from a fresh network (or ``net``); returns ``(net with the best
    epoch's weights, Run)``. ``trainable``: parameter-name prefixes to train (the others are
    frozen; transfer models train ``("head.", "out.")``). ``mode``: see the module
    docstring; ``batches``: a prepared :class:`BatchPredictor` (reused over restarts)."""
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
    if batches is None:
        p0 = next(net.parameters())
        batches = BatchPredictor(rna, prom, padding=padding, mode=mode, dtype=p0.dtype,
                           device=p0.device)
    rng = np.random.default_rng(seed)
    stop = EarlyStopping(patience)
    run = Run(seed)
    train_idx, val_idx = np.asarray(train_idx), np.asarray(val_idx)
    for _ in range(epochs):
        net.train()
        tr = mean_loss(net, batches, Y, train_idx, batch_size=batch_size, rng=rng, train=True,
                   opt=opt)
        net.eval()
        va = mean_loss(net, batches, Y, val_idx, batch_size=batch_size)
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
