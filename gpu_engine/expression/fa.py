"""Functional-annotation sharing for the dlfa CNN: the alternating w-step / γ-step of spec
``dl_expression.md`` §4.3 over the genes of each chromosome group.

0. γ ← 0 (ν ≡ 1): this iteration's fits are the no-FA single-model baseline.
1. w-step: every gene of the group trains one model on its whole 80 % training split (no
   inner CV, no ensemble) from the initial state of its no-FA ``best1`` model, with the
   ν-weighted scaler penalty and weight decay 0 (packed: one network per input width).
2. γ-step: with the scaler weights w fixed, γ ← argmin mean_g λ Σ_j ν_gj(γ) pen(w_gj) + η‖γ‖₁
   (:func:`~.annotations.solve_gamma_fista`, warm-started).
3. L = mean_g MSE_g(train) + J(γ); stop when |ΔL|/max(L_old, L_new) < ``tol`` or after
   ``max_iter`` w-steps. The reported models are the last w-step's.

The test samples (the 20 % of the base predictor's split) never enter the fits or γ; test r
is reported per iteration. The EN variant of §4.3 (``fa_en``) is not implemented here.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ..errors import InputError, preview
from ..results import SavedEstimator
from .annotations import (
    CHROMOSOME_GROUPS,
    gamma_weights,
    penalty_factors,
    smooth,
    solve_gamma_fista,
)
from .cnn import PENALTY_ALPHA, PENALTY_LAMBDA, _torch
from .cnn_predictor import (
    _dtype,
    _padded,
    _width,
    model_inputs,
    pearson,
    predict_models,
    predict_states,
    resolve_device,
)
from .dlfa import Protocol, generators

log = logging.getLogger(__name__)


def chromosome_group(chrom: str, groups=CHROMOSOME_GROUPS) -> str:
    """The group label ("1,21", …) of a chromosome; one outside every group is its own."""
    c = str(chrom).removeprefix("chr")
    for grp in groups:
        if c in {str(x) for x in grp}:
            return ",".join(str(x) for x in grp)
    return c


class FASharing(SavedEstimator, BaseEstimator):
    """The FA stage on top of a fitted :class:`~.cnn_predictor.DLFAPredictor` trained with
    the same ``annotations`` (so that both see the same SNPs).

    Parameters: ``eta`` (1e-3, the L1 weight on γ), ``lam``/``alpha`` (the scaler penalty,
    0.05/0.7), ``max_iter`` (20 w-steps), ``tol`` (1e-4), ``groups`` (the reference's
    chromosome groups), ``epochs`` (None = the base predictor's), ``dtype``, ``device``,
    ``progress``.

    After :meth:`fit`: ``summary_`` (gene, group, p, test Pearson/MSE at γ = 0 and with FA,
    train MSE), ``gamma_`` (groups × annotations), ``history_`` (group, iteration, loss,
    mean train MSE, J, ‖γ‖₁), ``states_`` (gene → the final model's state), ``snps_``,
    ``report_`` (the paired comparison: genes improved, sign-test p).
    """

    FORMAT = "gpu_engine.dlfa_fa/1"
    _FITTED_TABLES = {"summary_": "summary", "gamma_": "gamma", "history_": "history",
                      "snps_": "snps"}
    _FITTED_JSON = ("report_",)

    def __init__(self, eta: float = 1e-3, lam: float = PENALTY_LAMBDA,
                 alpha: float = PENALTY_ALPHA, max_iter: int = 20, tol: float = 1e-4,
                 groups=CHROMOSOME_GROUPS, epochs: int | None = None, dtype: str = "float32",
                 device: str | None = None, progress: bool | str = False):
        self.eta = eta
        self.lam = lam
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.groups = groups
        self.epochs = epochs
        self.dtype = dtype
        self.device = device
        self.progress = progress

    def fit(self, base, genotypes, expression: pd.DataFrame, genes: pd.DataFrame,
            annotations: pd.DataFrame, covariates: pd.DataFrame | None = None) -> FASharing:
        """``annotations``: SNP-indexed annotation columns (scaled, as
        :func:`~.annotations.scale_annotations` returns), the table ``base`` was fitted
        with."""
        from scipy.stats import binomtest

        from ..progress import track

        base._check_fitted()
        d = model_inputs(base, genotypes, expression, genes, covariates, annotations)
        genes_ = list(base.summary_["gene"])
        missing = [g for g in genes_ if g not in d.windows]
        if missing:
            raise InputError(f"FA: gene(s) {preview(missing)} of the base model are not in "
                             "these training data; fit both on the same inputs")
        for g in genes_:
            want = base.snps_.loc[base.snps_["gene"] == g].sort_values("index")["rsid"]
            got = d.snps["snp"].to_numpy()[d.windows[g]]
            if list(want.astype(str)) != [str(x) for x in got]:
                raise InputError(f"FA: gene {g}'s SNPs differ from the base model's (was it "
                                 "fitted with the same annotations, window and filters?)")
        pos = pd.Index(d.samples.astype(str))
        train = pos.get_indexer(base.split_["train"])
        test = pos.get_indexer(base.split_["test"])
        if (train < 0).any() or (test < 0).any():
            raise InputError("FA: the base model's samples are not all in these data")
        ann = annotations
        A = {g: ann.loc[d.snps["snp"].astype(str).to_numpy()[d.windows[g]]].to_numpy(float)
             for g in genes_}
        seeds = Protocol.reference(len(d.samples), n_folds=base.n_folds,
                                   restarts=base.restarts, random_state=base.random_state).seeds
        best_seed = {g: int(seeds[base.members_[g]["best1"][0][0]]
                            [base.members_[g]["best1"][0][1]]) for g in genes_}
        chrom = base.summary_.set_index("gene")["chromosome"].astype(str)
        by_group: dict = {}
        for g in genes_:
            by_group.setdefault(chromosome_group(chrom[g], self.groups), []).append(g)
        dtype, device = _dtype(self.dtype), resolve_device(self.device)
        epochs = self.epochs or base.epochs
        rows, hist, gammas, states = {}, [], {}, {}
        for grp, gs in track(list(by_group.items()), "FA chromosome groups",
                             enabled=self.progress):
            gamma = np.zeros(ann.shape[1])
            old = None
            Ag = np.concatenate([A[g] for g in gs])
            for it in range(self.max_iter):
                fits = self._w_step(d, gs, A, gamma, base, best_seed, train, test, epochs,
                                    dtype, device)
                if it == 0:
                    for g in gs:
                        rows[g] = {"gene": g, "group": grp, "p": len(d.windows[g]),
                                   "n_train": len(train), "n_test": len(test),
                                   "test_pearson_nofa": fits[g]["test_r"],
                                   "test_mse_nofa": fits[g]["test_mse"]}
                c = gamma_weights([fits[g]["w"] for g in gs], self.lam, self.alpha)
                gamma = solve_gamma_fista(Ag, c, self.eta, gamma, tol=1e-8)
                S, _ = smooth(Ag, c, gamma)
                J = S + self.eta * np.abs(gamma).sum()
                mse = float(np.mean([fits[g]["train_mse"] for g in gs]))
                loss = mse + J
                hist.append({"group": grp, "iteration": it, "loss": loss, "train_mse": mse,
                             "J": J, "gamma_l1": float(np.abs(gamma).sum()),
                             "mean_test_pearson": float(np.nanmean([fits[g]["test_r"]
                                                                    for g in gs]))})
                for g in gs:
                    rows[g].update({"test_pearson_fa": fits[g]["test_r"],
                                    "test_mse_fa": fits[g]["test_mse"],
                                    "train_mse_fa": fits[g]["train_mse"], "iterations": it + 1})
                    states[g] = fits[g]["state"]
                if old is not None and abs(loss - old) / max(old, loss) < self.tol:
                    break
                old = loss
            gammas[grp] = gamma
        self.summary_ = pd.DataFrame([rows[g] for g in genes_])
        self.gamma_ = pd.DataFrame(gammas, index=ann.columns).T.rename_axis("group")
        self.history_ = pd.DataFrame(hist)
        self.states_ = states
        self.snps_ = base.snps_.loc[base.snps_["gene"].isin(genes_)].reset_index(drop=True)
        diff = (self.summary_["test_pearson_fa"] - self.summary_["test_pearson_nofa"]).dropna()
        up, down = int((diff > 0).sum()), int((diff < 0).sum())
        self.report_ = {"genes": len(genes_), "groups": len(by_group),
                        "mean_test_pearson_nofa": float(self.summary_["test_pearson_nofa"].mean()),
                        "mean_test_pearson_fa": float(self.summary_["test_pearson_fa"].mean()),
                        "improved": up, "worse": down,
                        "sign_test_p_one_sided": float(binomtest(up, up + down, 0.5,
                                                                 alternative="greater").pvalue)
                        if up + down else float("nan")}
        return self

    def _w_step(self, d, gs, A, gamma, base, best_seed, train, test, epochs, dtype, device):
        torch = _torch()
        from .packed import train_packed

        out = {}
        by: dict = {}
        for g in gs:
            by.setdefault(_width(len(d.windows[g])), []).append(g)
        for width, chunk in by.items():
            nu = np.ones((len(chunk), width))
            for i, g in enumerate(chunk):
                nu[i, :len(d.windows[g])] = penalty_factors(A[g], gamma)
            Xg = np.stack([_padded(d.inputs(g)[train], width) for g in chunk], axis=1)
            yg = d.y[chunk].to_numpy()[train]
            net = train_packed(torch.as_tensor(Xg, dtype=dtype, device=device),
                               torch.as_tensor(yg, dtype=dtype, device=device),
                               [base.best1_init_[g] for g in chunk], epochs=epochs,
                               batch=base.batch, lr=base.lr, weight_decay=0.0, lam=self.lam,
                               alpha=self.alpha, nu=nu,
                               batch_generator=torch.Generator().manual_seed(base.random_state),
                               drop_generators=[generators(best_seed[g])[1] for g in chunk])
            for i, g in enumerate(chunk):
                st = {k: v.cpu() for k, v in net.state(i).items()}
                Xi = _padded(d.inputs(g), width)
                pred = predict_states(Xi, [st])[:, 0]
                y = d.y[g].to_numpy()
                out[g] = {"state": st, "w": st["scaler.w"].double().numpy()[:len(d.windows[g])],
                          "train_mse": float(np.mean((pred[train] - y[train]) ** 2)),
                          "test_mse": float(np.mean((pred[test] - y[test]) ** 2)),
                          "test_r": float(pearson(pred[test, None], y[test, None])[0])}
        return out

    def gene_models(self, ensemble: str | None = None) -> dict:
        """gene → [the FA model's state] (one model per gene; ``ensemble`` is ignored)."""
        return {g: [s] for g, s in self.states_.items()}

    def predict(self, genotypes) -> pd.DataFrame:
        """Predicted expression of the FA models (samples × genes)."""
        return predict_models(self.snps_, self.gene_models(), genotypes, self,
                              device=resolve_device(self.device))

    def _encode(self, name, value):
        return value.reset_index() if name == "gamma_" else value

    @classmethod
    def _decode(cls, name, frame, fitted):
        return frame.set_index("group") if name == "gamma_" else frame

    def _write_extras(self, folder) -> None:
        _torch().save(self.states_, folder / "states.pt")

    @classmethod
    def load(cls, folder):
        from pathlib import Path

        self = super().load(folder)
        self.states_ = _torch().load(Path(folder) / "states.pt", map_location="cpu",
                                     weights_only=True)
        return self
