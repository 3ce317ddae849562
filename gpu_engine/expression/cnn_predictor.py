"""The dlfa CNN over many genes: :class:`DLFAPredictor` runs the protocol of
:mod:`.dlfa` for every gene of a training set, with the models packed by :mod:`.packed`.

Packing: the reference protocol trains folds × restarts models per gene (5 × 20). Models
that share their training samples (one fold) and their input width (max(p, 32); a window
with p < 32 SNPs is zero-padded to 32, which is what the network does itself) are trained as
one packed network: the genes of a fold are bucketed by width and each bucket's
genes × restarts models train together, ``max_models`` at a time. A model's result does not
depend on which others it was packed with: its initial state comes from its restart seed,
its stochastic-depth decisions from a generator of that seed, and the batch order of a fold
is one generator per fold (seeded from the fold's first restart seed) — the packed
trainer's "one index set serves every model" (the reference shuffles per model; bitwise
equality with it is not a goal, spec §3.3).

SNP order (§3.4): ``position`` (default; the genotypes' order within a chromosome) or
``rsid`` (sorted ids, as the reference's tables are); the same order is used for exported
weights and annotations.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ..errors import InputError
from ..results import SavedEstimator
from .cnn import MIN_SNPS, _torch
from .dlfa import ENSEMBLES, Protocol, generators, select

log = logging.getLogger(__name__)
STATES_FILE = "states.pt"


def _width(p: int) -> int:
    return max(int(p), MIN_SNPS)


def _padded(X: np.ndarray, width: int) -> np.ndarray:
    return X if X.shape[1] == width else np.pad(X, ((0, 0), (0, width - X.shape[1])))


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise Pearson r of a and b (n × k each); NaN where either is constant."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(0) / den, np.nan)


def resolve_device(device: str | None):
    """``None``/"auto" → CUDA when torch sees a GPU, else CPU."""
    torch = _torch()
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _dtype(name: str):
    torch = _torch()
    try:
        return {"float32": torch.float32, "float64": torch.float64}[name]
    except KeyError:
        raise InputError(f"dtype must be 'float32' or 'float64', not {name!r}") from None


def predict_states(X: np.ndarray, states: list[dict], *, dtype=None, device=None,
                   chunk: int = 4096) -> np.ndarray:
    """Predictions (n × M) of M networks of one width on X (n × width), packed."""
    torch = _torch()
    from .packed import pack

    dtype = dtype or torch.float64
    net = pack(states, X.shape[1]).to(dtype=dtype, device=device).eval()
    Xt = torch.as_tensor(X, dtype=dtype, device=device)[:, None, :]
    out = []
    with torch.no_grad():
        for s in range(0, len(X), chunk):
            out.append(net(Xt[s:s + chunk]).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


class DLFAPredictor(SavedEstimator, BaseEstimator):
    """dlfa CNN expression models for many genes (spec ``dl_expression.md`` §3).

    Parameters: ``restarts`` (20 per fold), ``top`` (5 kept per fold), ``n_folds`` (5),
    ``epochs`` (100), ``batch`` (32), ``lr`` (2e-3), ``weight_decay`` (1e-5), ``window``,
    ``maf``, ``maf_filter`` (as :class:`~.predictdb.ElasticNetPredictor`), ``snp_order``
    ("position" | "rsid"), ``random_state`` (42: the split, folds and restart seeds),
    ``dtype`` ("float32" | "float64"), ``device`` (None = CUDA when available),
    ``max_models`` (models per packed network), ``progress``.

    After :meth:`fit`: ``summary_`` (gene, genename, chromosome, p, n_train, n_test, the
    best validation r and ``test_{mse,pearson,spearman}_{nbest,best,best1}``), ``snps_``
    (gene, position in the model's input, rsid, varID, ref/eff allele, training mean dosage),
    ``members_`` (gene → ensemble → [(fold, restart)]), ``scores_`` (gene → folds × restarts
    validation r), ``states_`` (gene → {(fold, restart): state dict} of the members),
    ``best1_init_`` (gene → the initial state of its ``best1`` model), ``split_`` (train and
    test sample ids), ``report_``.
    """

    FORMAT = "gpu_engine.dlfa/1"
    _FITTED_TABLES = {"summary_": "summary", "snps_": "snps"}
    _FITTED_JSON = ("members_", "scores_", "split_", "report_")

    def __init__(self, restarts: int = 20, top: int = 5, n_folds: int = 5, epochs: int = 100,
                 batch: int = 32, lr: float = 2e-3, weight_decay: float = 1e-5,
                 window: float = 1e6, maf: float = 0.01, maf_filter: str = "min",
                 snp_order: str = "position", random_state: int = 42, dtype: str = "float32",
                 device: str | None = None, max_models: int = 512,
                 progress: bool | str = False):
        self.restarts = restarts
        self.top = top
        self.n_folds = n_folds
        self.epochs = epochs
        self.batch = batch
        self.lr = lr
        self.weight_decay = weight_decay
        self.window = window
        self.maf = maf
        self.maf_filter = maf_filter
        self.snp_order = snp_order
        self.random_state = random_state
        self.dtype = dtype
        self.device = device
        self.max_models = max_models
        self.progress = progress

    # ------------------------------------------------------------------------------ fit
    def fit(self, genotypes, expression: pd.DataFrame, genes: pd.DataFrame,
            covariates: pd.DataFrame | None = None, annotations: pd.DataFrame | None = None
            ) -> DLFAPredictor:
        """Train every gene with ≥ 2 cis SNPs. ``annotations`` (SNP-indexed, e.g.
        :func:`~.annotations.scale_annotations` output): SNPs without a row are dropped for
        every model, as the reference does (needed before :class:`~.fa.FASharing`)."""
        torch = _torch()
        from scipy.stats import spearmanr

        from ..progress import track

        if self.snp_order not in ("position", "rsid"):
            raise InputError(f"snp_order must be 'position' or 'rsid', not {self.snp_order!r}")
        if not 1 <= self.top <= self.restarts:
            raise InputError(f"top ({self.top}) must be between 1 and restarts "
                             f"({self.restarts})")
        d = model_inputs(self, genotypes, expression, genes, covariates, annotations)
        n = len(d.samples)
        pr = Protocol.reference(n, n_folds=self.n_folds, restarts=self.restarts,
                                random_state=self.random_state)
        if min(len(v) for _, v in pr.folds) < 2 or len(pr.test) < 3:
            raise InputError(f"{n} samples are too few for an 80/20 split with "
                             f"{self.n_folds} folds")
        dtype, device = _dtype(self.dtype), resolve_device(self.device)
        R, F = self.restarts, len(pr.folds)
        scores = {g: np.full((F, R), np.nan) for g in d.genes}
        trained: dict = {}
        inits: dict = {}
        tasks = [(f, width, chunk) for f in range(F)
                 for width, chunk in _buckets(d, max(1, self.max_models // R))]
        for f, width, chunk in track(tasks, "CNN packs (fold × width)", enabled=self.progress):
            fit_idx, val_idx = pr.train[pr.folds[f][0]], pr.train[pr.folds[f][1]]
            states, drops = [], []
            for _g in chunk:
                for seed in pr.seeds[f][:R]:
                    from .cnn import build_network

                    net = build_network(width, seed=int(seed), dtype=dtype)
                    states.append({k: v.clone() for k, v in net.state_dict().items()})
                    drops.append(generators(int(seed))[1])
            Xg = np.stack([_padded(d.inputs(g)[fit_idx], width) for g in chunk], axis=1)
            yg = np.repeat(d.y[chunk].to_numpy()[fit_idx], R, axis=1)
            net = _train(self, Xg, yg, states, drops, int(pr.seeds[f][0]) + f, dtype, device)
            Xv = np.stack([_padded(d.inputs(g)[val_idx], width) for g in chunk], axis=1)
            with torch.no_grad():
                pv = net(torch.as_tensor(Xv, dtype=dtype, device=device)).cpu().numpy()
            yv = np.repeat(d.y[chunk].to_numpy()[val_idx], R, axis=1)
            r = pearson(pv.astype(np.float64), yv)
            for gi, g in enumerate(chunk):
                scores[g][f] = r[gi * R:(gi + 1) * R]
                for k in range(R):
                    trained[(g, f, k)] = net.state(gi * R + k)
                    inits[(g, f, k)] = states[gi * R + k]
        rows, members, kept, best1 = [], {}, {}, {}
        info = d.gene_table.set_index("gene")
        for g in d.genes:
            m = select(scores[g], self.top)
            members[g] = {e: [list(x) for x in v] for e, v in m.items()}
            keep = sorted({tuple(x) for v in m.values() for x in v})
            kept[g] = {x: {k: v.cpu() for k, v in trained[(g, *x)].items()} for x in keep}
            best1[g] = {k: v.cpu() for k, v in inits[(g, *m["best1"][0])].items()}
            p = len(d.windows[g])
            Xt = _padded(d.inputs(g)[pr.test], _width(p))
            yt = d.y[g].to_numpy()[pr.test]
            row = {"gene": g, "genename": info.at[g, "genename"],
                   "chromosome": str(info.at[g, "chromosome"]).removeprefix("chr"), "p": p,
                   "n_train": len(pr.train), "n_test": len(pr.test),
                   "val_pearson_best": float(np.nanmax(scores[g]))
                   if np.isfinite(scores[g]).any() else np.nan}
            for e in ENSEMBLES:
                pred = predict_states(Xt, [kept[g][tuple(x)] for x in m[e]]).mean(1)
                row[f"test_mse_{e}"] = float(np.mean((pred - yt) ** 2))
                row[f"test_pearson_{e}"] = float(pearson(pred[:, None], yt[:, None])[0])
                row[f"test_spearman_{e}"] = (float(spearmanr(pred, yt).statistic)
                                             if np.std(pred) > 0 else np.nan)
            rows.append(row)
        self.summary_ = pd.DataFrame(rows)
        self.snps_ = d.snp_table()
        self.members_ = members
        self.scores_ = {g: s.tolist() for g, s in scores.items()}
        self.states_ = kept
        self.best1_init_ = best1
        self.split_ = {"train": [str(s) for s in d.samples[pr.train]],
                       "test": [str(s) for s in d.samples[pr.test]]}
        self.report_ = {**d.report, "device": str(device), "models_trained": len(trained)}
        return self

    # -------------------------------------------------------------------------- predict
    def gene_models(self, ensemble: str = "nbest") -> dict:
        """gene → list of the ensemble's member state dicts."""
        self._check_fitted()
        if ensemble not in ENSEMBLES:
            raise InputError(f"ensemble must be one of {ENSEMBLES}, not {ensemble!r}")
        return {g: [self.states_[g][tuple(x)] for x in self.members_[g][ensemble]]
                for g in self.summary_["gene"]}

    def predict(self, genotypes, ensemble: str = "nbest") -> pd.DataFrame:
        """Predicted expression (samples × genes, the ensemble's mean) for the samples of
        ``genotypes``; model SNPs absent from them (matched by varID) take the training mean
        dosage, counted in ``predict_report_`` (a warning above 10 % of a gene's SNPs)."""
        return predict_models(self.snps_, self.gene_models(ensemble), genotypes, self,
                              device=resolve_device(self.device))

    def _check_fitted(self):
        if not hasattr(self, "summary_"):
            raise InputError("DLFAPredictor: call fit first")

    # ----------------------------------------------------------------------- save/load
    def _write_extras(self, folder: Path) -> None:
        torch = _torch()
        torch.save({"states": {f"{g}|{f}|{r}": s for g, ss in self.states_.items()
                               for (f, r), s in ss.items()},
                    "best1_init": self.best1_init_}, folder / STATES_FILE)

    @classmethod
    def load(cls, folder):
        torch = _torch()
        self = super().load(folder)
        blob = torch.load(Path(folder) / STATES_FILE, map_location="cpu", weights_only=True)
        states: dict = {}
        for key, s in blob["states"].items():
            g, f, r = key.rsplit("|", 2)
            states.setdefault(g, {})[(int(f), int(r))] = s
        self.states_ = states
        self.best1_init_ = blob["best1_init"]
        return self


def _train(est, X, y, states, drops, batch_seed, dtype, device):
    torch = _torch()
    from .packed import train_packed

    return train_packed(torch.as_tensor(X, dtype=dtype, device=device),
                        torch.as_tensor(y, dtype=dtype, device=device), states,
                        epochs=est.epochs, batch=est.batch, lr=est.lr,
                        weight_decay=est.weight_decay,
                        batch_generator=torch.Generator().manual_seed(batch_seed),
                        drop_generators=drops)


def _buckets(d, per_pack: int):
    """(width, genes) packs: genes of equal input width, ``per_pack`` at a time."""
    by: dict = {}
    for g in d.genes:
        by.setdefault(_width(len(d.windows[g])), []).append(g)
    for width in sorted(by):
        gs = by[width]
        for s in range(0, len(gs), per_pack):
            yield width, gs[s:s + per_pack]


class ModelInputs:
    """:class:`~.prepare.TrainingData` plus each gene's SNP columns in the model's order."""

    def __init__(self, data, snp_order: str):
        self.__dict__.update(data.__dict__)
        if snp_order == "rsid":
            rs = self.snps["snp"].astype(str).to_numpy()
            self.windows = {g: w[np.argsort(rs[w], kind="stable")] for g, w in
                            self.windows.items()}

    def inputs(self, gene: str) -> np.ndarray:
        return self.X[:, self.windows[gene]]

    def snp_table(self) -> pd.DataFrame:
        parts = []
        for g in self.genes:
            w = self.windows[g]
            s = self.snps.iloc[w]
            parts.append(pd.DataFrame({
                "gene": g, "index": np.arange(len(w)), "rsid": s["snp"].to_numpy(),
                "varID": s["varID"].to_numpy(), "chromosome": s["chromosome"].astype(str),
                "position": s["position"].to_numpy(),
                "ref_allele": s["ref_allele"].to_numpy(),
                "eff_allele": s["eff_allele"].to_numpy(),
                "mean_dosage": self.X[:, w].mean(0)}))
        return pd.concat(parts, ignore_index=True)


def model_inputs(est, genotypes, expression, genes, covariates=None, annotations=None):
    """The training data of an estimator with ``window``/``maf``/``maf_filter``/``snp_order``
    parameters; SNPs without an annotation row dropped (and counted) when given."""
    from .prepare import training_data

    if annotations is not None:
        have = genotypes.snps["snp"].astype(str).isin(annotations.index.astype(str)).to_numpy()
        if not have.any():
            raise InputError("annotations: none of the genotypes' SNP ids has a row (the "
                             "annotation table's SNP column holds rsids; e.g. "
                             f"{list(annotations.index[:3])} vs "
                             f"{list(genotypes.snps['snp'][:3])})")
        n_drop = int((~have).sum())
        if n_drop:
            log.warning("annotations: %d of %d SNPs have no annotation row and are dropped",
                        n_drop, len(have))
        genotypes = genotypes.subset(snps=np.flatnonzero(have))
    d = training_data(genotypes, expression, genes, covariates, window=est.window,
                      maf=est.maf, maf_filter=est.maf_filter)
    if annotations is not None:
        d.report["snps_without_annotation_dropped"] = n_drop
    return ModelInputs(d, est.snp_order)


def predict_models(snps: pd.DataFrame, models: dict, genotypes, owner=None, *,
                   device=None) -> pd.DataFrame:
    """Ensemble-mean predictions (samples × genes) of per-gene CNN models (gene → member
    states) whose inputs are the rows of ``snps`` (gene, index, varID, mean_dosage)."""
    from .genotypes import impute_mean

    ids = pd.Index(genotypes.snps["varID"].astype(str))
    X, _ = impute_mean(genotypes.dosages)
    out, missing = {}, {}
    for g, states in models.items():
        s = snps.loc[snps["gene"] == g].sort_values("index")
        pos = ids.get_indexer(s["varID"].astype(str))
        ok = pos >= 0
        Xg = np.tile(s["mean_dosage"].to_numpy(float), (len(X), 1))
        Xg[:, ok] = X[:, pos[ok]]
        missing[g] = float((~ok).mean())
        out[g] = predict_states(_padded(Xg, _width(len(s))), states, device=device).mean(1)
    high = [g for g, f in missing.items() if f > 0.1]
    if high:
        log.warning("predict: %d gene(s) miss > 10 %% of their model SNPs in the genotypes "
                    "(training means used), e.g. %s", len(high), high[:3])
    if owner is not None:
        owner.predict_report_ = {"fraction_snps_missing": missing}
    return pd.DataFrame(out, index=pd.Index(genotypes.samples, name="sample"))


def summary_json(est) -> str:
    """A one-line JSON summary for logs: genes, median test r per ensemble."""
    s = est.summary_
    return json.dumps({"genes": len(s), **{f"median_test_pearson_{e}":
                                           float(s[f"test_pearson_{e}"].median())
                                           for e in ENSEMBLES}})
