"""The DEcode estimator: fit, predict, evaluate, DeepLIFT, knock-outs, site removal, transfer.

``DEcode(...).fit(maps, targets, splits)`` with :class:`~.features.BindingMaps`, a genes ×
outputs target table (:func:`~.data.tissue_targets` for the tissue model; any gene-level
table with ``target="columns"``: PLIER loadings, trait scores) and a gene → train |
validation | test split. Training follows spec §4 (:mod:`.training`); predictions are in the
targets' units (the scaling is undone). Fitted attributes end in ``_``; ``save``/``load`` write
a folder with the tables, ``model.json`` and the weights (``weights.pt`` and ``weights.npz``,
canonical names, with ``norm_stats`` and ``features``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ..dl import require_torch
from ..errors import InputError
from ..results import FolderResult, SavedEstimator, register
from . import data as D
from .features import MASKS, BindingMaps
from .network import PADDINGS, build_network, pad_batch
from .perturb import knockout_draws, ols, perturbed_summaries, profile_spearman, site_removal_draws
from .training import BatchPredictor, mean_loss, train_once

SHUFFLES = ("none", "all", "promoter", "rna")


def _device(device):
    torch = require_torch("DEcode")
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class DEcode(SavedEstimator, BaseEstimator):
    """DEcode (Tasaki et al. 2020) — see the module docstring and ``docs/decode.md``.

    Parameters: ``target`` ("tissue": fold changes + ``MedianExp``, scaled as the reference;
    "columns": each column by its own sd), ``min_genes`` (30: regulators bound in fewer genes
    are dropped), ``filter_on`` ("all" | "train"), ``padding`` ("fixed" | "keras"),
    ``epochs`` (100), ``patience`` (10), ``restarts`` (10), ``batch_size`` (128), ``lr``
    (1e-3), ``shuffle`` (none | all | promoter | rna: the feature-randomisation control),
    ``head_init`` ("fresh" | "tissue", for transfer), ``random_state`` (0), ``dtype``,
    ``device`` (None: CUDA when available), ``mode`` ("auto": "fast" — training through the
    trunk's exact summary form, see :mod:`.training` — with ``padding="fixed"``, "explicit"
    convolutions with ``"keras"``), ``progress``.

    After :meth:`fit`: ``outputs_``, ``maxima_`` (region, feature, max), ``divisors_``
    (output, divisor, ddof), ``split_`` (gene, set), ``runs_`` (restart, seed, best_epoch,
    best_val_loss, test_loss, epochs), ``history_`` (restart, epoch, loss, val_loss),
    ``evaluation_`` (test Spearman per output), ``best_run_``, ``l_rna_`` (the DeepLIFT
    reference's RNA length: the median test-gene length), ``report_``, ``net_``.
    """

    FORMAT = "gpu_engine.decode/1"
    _FITTED_TABLES = {"maxima_": "maxima", "divisors_": "divisors", "split_": "split",
                      "runs_": "runs", "history_": "history", "evaluation_": "evaluation"}
    _FITTED_JSON = ("outputs_", "best_run_", "l_rna_", "report_", "kind_")

    def __init__(self, target: str = "tissue", min_genes: int = 30, filter_on: str = "all",
                 padding: str = "fixed", epochs: int = 100, patience: int = 10,
                 restarts: int = 10, batch_size: int = 128, lr: float = 1e-3,
                 shuffle: str = "none", head_init: str = "fresh", random_state: int = 0,
                 dtype: str = "float32", device: str | None = None,
                 mode: str = "auto", progress: bool | str = False):
        self.target = target
        self.min_genes = min_genes
        self.filter_on = filter_on
        self.padding = padding
        self.epochs = epochs
        self.patience = patience
        self.restarts = restarts
        self.batch_size = batch_size
        self.lr = lr
        self.shuffle = shuffle
        self.head_init = head_init
        self.random_state = random_state
        self.dtype = dtype
        self.device = device
        self.mode = mode
        self.progress = progress

    # ----------------------------------------------------------------------------- fit
    def _check_params(self):
        if self.padding not in PADDINGS:
            raise InputError(f"padding must be one of {PADDINGS}, not {self.padding!r}")
        if self.shuffle not in SHUFFLES:
            raise InputError(f"shuffle must be one of {SHUFFLES}, not {self.shuffle!r}")
        if self.target not in ("tissue", "columns"):
            raise InputError(f"target must be 'tissue' or 'columns', not {self.target!r}")
        if self.head_init not in ("fresh", "tissue"):
            raise InputError(f"head_init must be 'fresh' or 'tissue', not {self.head_init!r}")
        if self.mode not in ("auto", "fast", "explicit"):
            raise InputError(f"mode must be 'auto', 'fast' or 'explicit', not {self.mode!r}")
        if self.restarts < 1 or self.epochs < 1:
            raise InputError("restarts and epochs must be ≥ 1")

    def _torch_dtype(self):
        torch = require_torch("DEcode")
        return {"float32": torch.float32, "float64": torch.float64}[self.dtype]

    def fit(self, maps: BindingMaps, targets: pd.DataFrame, splits,
            transfer_from: DEcode | None = None) -> DEcode:
        """Train (spec §4). ``transfer_from``: a fitted tissue model whose two convolution
        stacks are copied and frozen (person-specific and DE-prior models); its channels and
        maxima are used, and only the head is trained (``head_init="tissue"`` starts the
        hidden layers from the tissue model's values; the output layer is always new)."""
        require_torch("DEcode")
        from ..progress import track

        self._check_params()
        if transfer_from is not None:
            prep = D.prepare(maps, targets, splits, min_genes=0, filter_on=self.filter_on)
            rna, prom = D.scaled_inputs(maps, prep.genes, transfer_from.maxima_)
            prep.rna, prep.prom = rna, prom
            prep.maxima = transfer_from.maxima_.copy()
            prep.rna_channels = prep.maxima.loc[prep.maxima.region == "rna", "feature"].tolist()
            prep.prom_channels = prep.maxima.loc[prep.maxima.region == "promoter",
                                                 "feature"].tolist()
        else:
            prep = D.prepare(maps, targets, splits, min_genes=self.min_genes,
                             filter_on=self.filter_on)
        train, val, test = (prep.index(s) for s in D.SETS)
        div = D.target_divisors(prep.targets, [prep.genes[i] for i in train], kind=self.target)
        Y = prep.targets.to_numpy(float) / div["divisor"].to_numpy()[None, :]
        rna, prom = prep.rna, prep.prom
        if self.shuffle != "none":
            rna, prom = list(rna), list(prom)
            rng = np.random.default_rng(self.random_state)
            for idx in (train, val, test):  # within each split separately
                perm = idx[rng.permutation(len(idx))]
                if self.shuffle in ("all", "rna"):
                    for i, j in zip(idx, perm):
                        rna[i] = prep.rna[j]
                if self.shuffle in ("all", "promoter"):
                    for i, j in zip(idx, perm):
                        prom[i] = prep.prom[j]
        dev, dt = _device(self.device), self._torch_dtype()
        mode = self.mode if self.mode != "auto" else \
            ("fast" if self.padding == "fixed" else "explicit")
        batches = BatchPredictor(rna, prom, padding=self.padding, mode=mode, dtype=dt, device=dev)
        runs, history, best, best_net = [], [], None, None
        for k in track(range(self.restarts), "DEcode restarts", total=self.restarts,
                       enabled=self.progress):
            seed = int(self.random_state) + k
            init, trainable = None, None
            if transfer_from is not None:
                init = build_network(len(prep.rna_channels), len(prep.prom_channels),
                                     Y.shape[1], seed=seed, dtype=dt, device=dev)
                base = transfer_from.net_.state_dict()
                keep = ("rna.", "prom.") + (("head.",) if self.head_init == "tissue" else ())
                state = init.state_dict()
                state.update({n: v.to(dtype=dt) if v.is_floating_point() else v
                              for n, v in base.items() if n.startswith(keep)})
                init.load_state_dict(state)
                trainable = ("head.", "out.")
            net, run = train_once(rna, prom, Y, train, val, seed=seed, epochs=self.epochs,
                                  patience=self.patience, batch_size=self.batch_size,
                                  padding=self.padding, lr=self.lr, dtype=dt, device=dev,
                                  net=init, trainable=trainable, batches=batches)
            test_loss = mean_loss(net, batches, Y, test, batch_size=self.batch_size)
            runs.append({"restart": k, "seed": seed, "best_epoch": run.best_epoch,
                         "best_val_loss": run.best_val_loss, "test_loss": test_loss,
                         "epochs": len(run.history)})
            history += [{"restart": k, "epoch": e, **h} for e, h in enumerate(run.history)]
            if best is None or run.best_val_loss < runs[best]["best_val_loss"]:
                best, best_net = k, net
        for p in best_net.parameters():
            p.requires_grad_(False)
        self.net_ = best_net.eval()
        self.kind_ = self.target
        self.outputs_ = list(prep.targets.columns)
        self.maxima_ = prep.maxima.reset_index(drop=True)
        self.divisors_ = div
        self.split_ = pd.DataFrame({"gene": prep.genes, "set": prep.sets})
        self.runs_ = pd.DataFrame(runs)
        self.history_ = pd.DataFrame(history)
        self.best_run_ = int(best)
        lengths = np.array([prep.rna[i].shape[1] for i in test])
        self.l_rna_ = int(np.median(lengths))
        self.report_ = prep.report | {"n_parameters": int(sum(p.numel() for p in
                                                              best_net.parameters())),
                                      "shuffle": self.shuffle, "mode": mode,
                                      "transfer": transfer_from is not None}
        scale = div["divisor"].to_numpy()[None, :]  # evaluated in the targets' units
        self.evaluation_ = _spearman_table(Y[test] * scale,
                                           self._predict_scaled(rna, prom, test) * scale,
                                           self.outputs_)
        return self

    # ------------------------------------------------------------------------- predict
    def _check_fitted(self):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "net_")

    def _predict_scaled(self, rna, prom, idx=None) -> np.ndarray:
        torch = require_torch("DEcode")
        net = self.net_
        idx = np.arange(len(rna)) if idx is None else np.asarray(idx)
        dt = next(net.parameters()).dtype
        dev = next(net.parameters()).device
        out = []
        with torch.no_grad():
            for s in range(0, len(idx), self.batch_size):
                sel = idx[s:s + self.batch_size]
                r, p, _ = pad_batch([rna[i] for i in sel], [prom[i] for i in sel],
                                    padding=self.padding, dtype=dt)
                out.append(net(r.to(dev), p.to(dev)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.outputs_)))

    def _inputs(self, maps: BindingMaps, genes):
        return D.scaled_inputs(maps, genes, self.maxima_)

    def predict(self, maps: BindingMaps, genes=None) -> pd.DataFrame:
        """genes × outputs, in the targets' units (default: every gene of the maps)."""
        self._check_fitted()
        genes = list(maps.genes["gene"]) if genes is None else list(genes)
        rna, prom = self._inputs(maps, genes)
        pred = self._predict_scaled(rna, prom) * self.divisors_["divisor"].to_numpy()[None, :]
        return pd.DataFrame(pred, index=pd.Index(genes, name="gene"), columns=self.outputs_)

    def evaluate(self, maps: BindingMaps, targets: pd.DataFrame, genes=None) -> pd.DataFrame:
        """Spearman ρ (and p) per output between actual and predicted over ``genes``
        (default: the fit's test genes), the mean over the fold-change outputs last."""
        self._check_fitted()
        if genes is None:
            genes = self.split_.loc[self.split_["set"] == "test", "gene"].tolist()
        genes = [g for g in genes if g in targets.index]
        pred = self.predict(maps, genes)
        return _spearman_table(targets.loc[genes, self.outputs_].to_numpy(float),
                               pred.to_numpy(), self.outputs_)

    def cross_output_matrix(self, maps, targets, genes=None) -> pd.DataFrame:
        """ρ(predicted output i, actual output j) over ``genes`` (Fig. 2c), fold changes."""
        from scipy.stats import spearmanr

        if genes is None:
            genes = self.split_.loc[self.split_["set"] == "test", "gene"].tolist()
        outs = self._fold_change_outputs()
        pred = self.predict(maps, genes)[outs].to_numpy()
        act = targets.loc[genes, outs].to_numpy(float)
        rho = spearmanr(pred, act).statistic[:len(outs), len(outs):]
        return pd.DataFrame(rho, index=pd.Index(outs, name="predicted"),
                            columns=pd.Index(outs, name="actual"))

    def _fold_change_outputs(self) -> list:
        return [o for o in self.outputs_ if not (self.kind_ == "tissue" and o == D.MEDIAN)]

    # ------------------------------------------------------------------------ DeepLIFT
    def attribute(self, maps: BindingMaps, genes=None, *, return_gene_scores: bool = False):
        """DeepLIFT (spec §6) for ``genes`` (default: the test genes): an
        :class:`Attribution`; with ``return_gene_scores`` also the per-gene scores
        ``(genes, outputs, regulators)`` (memory: genes × outputs × regulators floats)."""
        from .deeplift import attribute

        self._check_fitted()
        if genes is None:
            genes = self.split_.loc[self.split_["set"] == "test", "gene"].tolist()
        genes = list(genes)
        rna, prom = self._inputs(maps, genes)
        sums, abs_sums, keep = None, None, [] if return_gene_scores else None
        for s in range(0, len(genes), 512):
            a, b = attribute(self.net_, rna[s:s + 512], prom[s:s + 512], l_rna=self.l_rna_,
                             batch_size=self.batch_size, padding=self.padding)
            sc = np.concatenate([a[..., 1:], b[..., 1:]], axis=2)  # regulators only
            sums = sc.sum(0) if sums is None else sums + sc.sum(0)
            abs_sums = np.abs(sc).sum(0) if abs_sums is None else abs_sums + np.abs(sc).sum(0)
            if keep is not None:
                keep.append(sc)
        regs = self.regulators()
        mean = pd.DataFrame(sums / len(genes), index=pd.Index(self.outputs_, name="output"),
                            columns=regs["name"])
        mean_abs = pd.DataFrame(abs_sums / len(genes), index=mean.index, columns=regs["name"])
        res = Attribution.from_means(mean, mean_abs, regs, self._fold_change_outputs(),
                                     n_genes=len(genes))
        if return_gene_scores:
            return res, np.concatenate(keep)
        return res

    def regulators(self) -> pd.DataFrame:
        """The model's regulator channels (channel 0 of each region excluded), in input
        order: ``name, region``."""
        m = self.maxima_
        regs = m[~m["feature"].isin(list(MASKS.values()))]
        return pd.DataFrame({"name": regs["feature"].to_numpy(),
                             "region": regs["region"].to_numpy()})

    # ------------------------------------------------------------------- perturbations
    def _gene_tensor(self, maps, gene):
        rna, prom = self._inputs(maps, [gene])
        dt = next(self.net_.parameters()).dtype
        r, p, _ = pad_batch(rna, prom, padding=self.padding, dtype=dt)
        return r[0], p[0], rna[0], prom[0]

    def _forward_summaries(self, summ, chunk: int = 4096) -> np.ndarray:
        torch = require_torch("DEcode")
        dev = next(self.net_.parameters()).device
        n = next(iter(summ.values())).shape[0]
        out = []
        with torch.no_grad():
            for s in range(0, n, chunk):
                part = {k: v[s:s + chunk].to(dev) for k, v in summ.items()}
                out.append(self.net_.forward_summary(part).cpu().numpy())
        return np.concatenate(out)

    def _profiles_columns(self) -> np.ndarray:
        return np.array([self.outputs_.index(o) for o in self._fold_change_outputs()])

    def knockout(self, maps: BindingMaps, pair, *, n: int = 10000, perturb: str = "first",
                 seed: int = 0, method: str = "batched") -> KnockoutResult:
        """In-silico regulator knock-out for ``pair`` = (A, B) (spec §7): ``n`` random KO
        sets of the regulators bound in A or B, ρ between the two genes' predicted
        fold-change profiles, OLS ρ ~ 1 + KO indicators. ``perturb``: "first" (A only, the
        repository) or "both". ``method``: "batched" (the fast exact mode, one pass) or
        "loop" (one explicit forward per draw; for benchmarks and checks)."""
        torch = require_torch("DEcode")
        self._check_fitted()
        if perturb not in ("first", "both"):
            raise InputError(f"perturb must be 'first' or 'both', not {perturb!r}")
        a, b = pair
        ra, pa, xa, qa = self._gene_tensor(maps, a)
        rb, pb, xb, qb = self._gene_tensor(maps, b)
        regs = self.regulators()
        nr = int((regs["region"] == "rna").sum())
        bound = np.concatenate([(xa[1:] > 0).any(1) | (xb[1:] > 0).any(1),
                                (qa[1:] > 0).any(1) | (qb[1:] > 0).any(1)])
        cand = np.flatnonzero(bound)
        if cand.size == 0:
            raise InputError(f"knockout: no regulator of the model binds {a!r} or {b!r}")
        X = knockout_draws(cand.size, n, seed)
        keep = np.ones((X.shape[0], len(regs)), np.float64)
        keep[:, cand] = 1 - X
        dt = ra.dtype
        kr = torch.as_tensor(np.column_stack([np.ones(len(keep)), keep[:, :nr]]), dtype=dt)
        kp = torch.as_tensor(np.column_stack([np.ones(len(keep)), keep[:, nr:]]), dtype=dt)
        cols = self._profiles_columns()

        def predict(r, p):
            if method == "batched":
                return self._forward_summaries(perturbed_summaries(
                    r, p, channel_keep_rna=kr, channel_keep_prom=kp))[:, cols]
            if method != "loop":
                raise InputError(f"method must be 'batched' or 'loop', not {method!r}")
            out = np.empty((len(kr), len(cols)))
            with torch.no_grad():
                for i in range(len(kr)):
                    y = self.net_((r * kr[i][:, None])[None], (p * kp[i][:, None])[None])
                    out[i] = y[0, cols].cpu().numpy()
            return out

        ya = predict(ra, pa)
        if perturb == "both":
            yb = predict(rb, pb)
        else:
            with torch.no_grad():
                yb = self.net_(rb[None].to(next(self.net_.parameters()).device),
                               pb[None].to(next(self.net_.parameters()).device)
                               ).cpu().numpy()[0, cols]
        rho = profile_spearman(ya, yb)
        names = regs["name"].to_numpy()[cand].tolist()
        return KnockoutResult.from_regression(rho, X, names, pair=[a, b], mode=perturb,
                                              what="regulator")

    def remove_sites(self, maps: BindingMaps, pair, *, n: int = 10000,
                     seed: int = 0) -> dict:
        """Binding-site removal (spec §7): for each gene of ``pair`` in turn, ``n`` random
        masks removing each RNA and promoter bin with probability ½ (every channel but 0),
        ρ of the two predicted profiles, OLS on the bin indicators. Returns
        ``{gene: KnockoutResult}`` (terms ``rna:<bin>`` / ``promoter:<bin>``)."""
        torch = require_torch("DEcode")
        self._check_fitted()
        a, b = pair
        t = {g: self._gene_tensor(maps, g) for g in (a, b)}
        cols = self._profiles_columns()
        dev = next(self.net_.parameters()).device
        out = {}
        for k, (g, other) in enumerate(((a, b), (b, a))):
            r, p, x, _ = t[g]
            L, P = x.shape[1], r.shape[1]
            X = site_removal_draws(L + 30, n, seed + k)
            keep_r = np.ones((len(X), P))
            keep_r[:, :L] = 1 - X[:, :L]
            keep_p = 1 - X[:, L:]
            y = self._forward_summaries(perturbed_summaries(
                r, p, bin_keep_rna=torch.as_tensor(keep_r, dtype=r.dtype),
                bin_keep_prom=torch.as_tensor(keep_p, dtype=r.dtype)))[:, cols]
            ro, po = t[other][:2]
            with torch.no_grad():
                yo = self.net_(ro[None].to(dev), po[None].to(dev)).cpu().numpy()[0, cols]
            names = [f"rna:{i}" for i in range(L)] + [f"promoter:{i}" for i in range(30)]
            out[g] = KnockoutResult.from_regression(profile_spearman(y, yo), X, names,
                                                    pair=[g, other], mode="sites", what="bin")
        return out

    # ---------------------------------------------------------------------- save/load
    def _write_extras(self, folder: Path) -> None:
        torch = require_torch("DEcode")
        state = {k: v.detach().cpu() for k, v in self.net_.state_dict().items()}
        meta = {"norm_stats": {"maxima": self.maxima_["max"].tolist(),
                               "divisors": self.divisors_["divisor"].tolist()},
                "features": self.maxima_["feature"].tolist(),
                "regions": self.maxima_["region"].tolist(), "outputs": self.outputs_}
        torch.save({"state_dict": state, **meta}, folder / "weights.pt")
        np.savez(folder / "weights.npz", **{k: v.numpy() for k, v in state.items()},
                 norm_maxima=np.asarray(meta["norm_stats"]["maxima"]),
                 norm_divisors=np.asarray(meta["norm_stats"]["divisors"]),
                 features=np.asarray(meta["features"]), regions=np.asarray(meta["regions"]))

    @classmethod
    def load(cls, folder) -> DEcode:
        """Read a saved model (weights from ``weights.npz``)."""
        torch = require_torch("DEcode")
        self = super().load(folder)
        z = np.load(Path(folder) / "weights.npz")
        nr = int((self.maxima_["region"] == "rna").sum())
        net = build_network(nr, len(self.maxima_) - nr, len(self.outputs_),
                            dtype=self._torch_dtype(), device=_device(self.device))
        state = {k: torch.as_tensor(z[k]) for k in net.state_dict()}
        net.load_state_dict(state)
        for p in net.parameters():
            p.requires_grad_(False)
        self.net_ = net.eval()
        return self


def _spearman_table(actual: np.ndarray, pred: np.ndarray, outputs: list) -> pd.DataFrame:
    from scipy.stats import spearmanr

    rows = []
    for j, o in enumerate(outputs):
        r = spearmanr(actual[:, j], pred[:, j])
        rows.append({"output": o, "spearman": float(r.statistic), "p": float(r.pvalue),
                     "rmse": float(np.sqrt(np.mean((actual[:, j] - pred[:, j]) ** 2)))})
    t = pd.DataFrame(rows)
    fc = t[t["output"] != D.MEDIAN]
    t = pd.concat([t, pd.DataFrame([{"output": "mean_fold_change", "spearman":
                                     float(fc["spearman"].mean()), "p": np.nan,
                                     "rmse": float(fc["rmse"].mean())}])], ignore_index=True)
    return t


# ---------------------------------------------------------------------------- results
@register
@dataclass
class Attribution(FolderResult):
    """DeepLIFT summaries: ``mean_scores`` (outputs × regulators, the signed mean over genes:
    what the reference writes), ``mean_abs_scores`` (the mean of |gene scores|) and
    ``importance`` (per regulator: ``collective`` = mean over the fold-change outputs of
    |mean score| (spec §6's default reading), ``mean_abs_gene`` = mean over those outputs of
    the mean |gene score| (the other reading), and ``rank`` by ``collective``)."""

    kind: ClassVar[str] = "decode.attribution"
    _TABLES: ClassVar[tuple[str, ...]] = ("mean_scores", "mean_abs_scores", "importance")

    mean_scores: pd.DataFrame
    mean_abs_scores: pd.DataFrame
    importance: pd.DataFrame
    n_genes: int = 0

    @classmethod
    def from_means(cls, mean, mean_abs, regs, fc_outputs, *, n_genes):
        coll = mean.loc[fc_outputs].abs().mean(axis=0)
        mag = mean_abs.loc[fc_outputs].mean(axis=0)
        imp = pd.DataFrame({"regulator": mean.columns, "region": regs["region"].to_numpy(),
                            "collective": coll.to_numpy(), "mean_abs_gene": mag.to_numpy()})
        imp = imp.sort_values("collective", ascending=False, kind="stable")
        imp["rank"] = np.arange(1, len(imp) + 1)
        obj = cls(mean, mean_abs, imp.reset_index(drop=True), int(n_genes))
        obj.metadata = {}
        return obj

    def association(self, regulator_expression: pd.DataFrame, *, min_abs_rho: float = 0.0
                    ) -> pd.DataFrame:
        """Spearman over outputs between each regulator's per-output mean score and its own
        expression (``regulator_expression``: regulators × outputs), BH FDR; ``significant``
        at FDR < 5 % and |ρ| > ``min_abs_rho`` (0.3 for person-specific models)."""
        from scipy.stats import spearmanr

        from ..stats import fdr_bh

        outs = [o for o in self.mean_scores.index if o in regulator_expression.columns]
        if len(outs) < 3:
            raise InputError("regulator expression: needs the model's outputs as columns "
                             f"(found {len(outs)} of {len(self.mean_scores.index)})")
        regs = [r for r in self.mean_scores.columns if r in regulator_expression.index]
        rows = []
        for r in regs:
            a, b = self.mean_scores.loc[outs, r], regulator_expression.loc[r, outs]
            if a.nunique() < 2 or b.nunique() < 2:  # undefined (e.g. never bound in the genes)
                continue
            res = spearmanr(a, b)
            rows.append((r, float(res.statistic), float(res.pvalue)))
        t = pd.DataFrame(rows, columns=["regulator", "rho", "p"]).dropna()
        t["fdr"] = fdr_bh(t["p"].to_numpy())
        t["significant"] = (t["fdr"] < 0.05) & (t["rho"].abs() > min_abs_rho)
        return t.sort_values("p").reset_index(drop=True)

    def _write_extras(self, folder: Path) -> None:
        from .plots import plot_top_regulators

        plot_top_regulators(self, folder / "top_regulators.png")


@register
@dataclass
class KnockoutResult(FolderResult):
    """A perturbation regression: ``coefficients`` (term, coef, se, t, p, p_bonferroni,
    significant at Bonferroni p < 0.05; sorted by coef, most negative — "potentiating
    co-expression" — first), ``rho`` (per draw; row 0 unperturbed), the pair and mode."""

    kind: ClassVar[str] = "decode.knockout"
    _TABLES: ClassVar[tuple[str, ...]] = ("coefficients",)
    _ARRAYS: ClassVar[tuple[str, ...]] = ("rho",)

    coefficients: pd.DataFrame
    rho: np.ndarray
    pair: list
    mode: str
    base_rho: float = float("nan")

    @classmethod
    def from_regression(cls, rho, X, names, *, pair, mode, what):
        ok = np.isfinite(rho)
        fit = ols(rho[ok], X[ok], names).iloc[1:].rename(columns={"term": what})
        fit["p_bonferroni"] = np.minimum(1.0, fit["p"] * len(names))
        fit["significant"] = fit["p_bonferroni"] < 0.05
        fit = fit.sort_values("coef", kind="stable").reset_index(drop=True)
        obj = cls(fit, np.asarray(rho), list(pair), mode, float(rho[0]))
        obj.metadata = {}
        return obj

    def _write_extras(self, folder: Path) -> None:
        from .plots import plot_knockout

        plot_knockout(self, folder / "knockout.png")
