"""Drug–disease scores in gene or module space (So et al. 2017, as used by PhenoPLIER).

For each tissue t and each k:

    S_{t,k}(drug, trait) = − Σ_g D[g, drug] · z_k[g, trait]

with D the drug signatures (genes × drugs) and z_k the trait's signed TWAS z in that tissue
keeping only its k genes of largest |z| (the others 0; ``"all"`` keeps every gene). Genes are
those in both the signatures and the tissue's results. In module space D is replaced by the
projected signatures L̂ (LVs × drugs) and z by the projected trait z M̂ (LVs × traits), and k
counts LVs.

Aggregation: each S_{t,k} becomes the ranks of the drugs within each trait (1 = lowest score,
ties averaged, as pandas' ``rank``), the ranks are averaged over k, and the maximum over
tissues is taken. A trait → disease map then gives drugs × diseases: the maximum over the
disease's traits. Higher = a stronger predicted reversal.

Top-k ties: among genes with equal |z| the one listed first in the tissue's results wins
(pandas' ``nlargest(keep="first")``).
Missing values: NaN trait z count as 0 (a gene a tissue did not test for a trait); NaN drug
signature entries count as 0; both are counted in ``report``; a drug or trait with no finite
value at all is dropped and named in ``report``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..backend import Backend, get_backend
from ..errors import InputError, preview
from ..io import member
from ..results import FolderResult, register

GENE_TOP_K = ("all", 50, 100, 250, 500)
MODULE_TOP_K = ("all", 5, 10, 25, 50)


@register
@dataclass
class DrugScores(FolderResult):
    """Result of :func:`score`.

    ``drug_trait``: drugs × traits, the mean rank over k, maximum over tissues;
    ``best_tissue``: drugs × traits, the tissue giving that maximum;
    ``drug_disease``: drugs × diseases (max over each disease's traits) or None without a map;
    ``disease_trait``: drugs × diseases, the trait giving that maximum (or None);
    ``drug_features``: in module space the projected signatures L̂ (LVs × drugs) used;
    ``drug_trait_raw``: drugs × traits, the mean over k of the raw scores S_{t,k} in the best
    tissue (ranks tie often: this breaks the ties of the top predictions);
    ``report``: counts of genes / LVs used, values set to 0, dropped drugs and traits;
    ``top``: the strongest predictions (:func:`top_predictions`), when computed.

    Saved as a folder: ``drug_trait.parquet``, ``best_tissue.parquet``,
    ``drug_disease.parquet``, ``disease_trait.parquet``, ``drug_lv.parquet`` (module space),
    ``top_predictions.parquet`` (and ``.tsv``), ``report.json`` and ``result.json``; every
    matrix has its row labels in its first column (``drug``, or ``lv``)."""

    space: str
    top_k: tuple
    tissues: list
    drug_trait: pd.DataFrame
    best_tissue: pd.DataFrame
    drug_disease: pd.DataFrame | None = None
    disease_trait: pd.DataFrame | None = None
    drug_features: pd.DataFrame | None = None
    report: dict = field(default_factory=dict)
    top: pd.DataFrame | None = None
    drug_trait_raw: pd.DataFrame | None = None

    kind = "drug_scores"
    _TABLES = ("drug_trait", "best_tissue", "drug_disease", "disease_trait", "drug_features",
               "top", "drug_trait_raw")
    _FILES = {"drug_features": "drug_lv", "top": "top_predictions"}
    _INDEX_LABELS = {"drug_trait": "drug", "best_tissue": "drug", "drug_disease": "drug",
                     "disease_trait": "drug", "drug_features": "lv", "drug_trait_raw": "drug"}

    def _write_extras(self, folder) -> None:
        import json

        from ..io import write_table

        if self.top is not None:
            write_table(self.top, folder / "top_predictions.tsv")
        (folder / "report.json").write_text(json.dumps(
            {**self.report, "top_k": [str(k) for k in self.top_k], "tissues": self.tissues,
             "backend": getattr(self, "metadata", {}).get("backend")}, indent=1, default=str))

    @classmethod
    def _from_saved(cls, kw: dict):
        kw["top_k"] = tuple(kw["top_k"])
        return cls(**kw)


def top_order(A: np.ndarray, k: int) -> np.ndarray:
    """Per row of ``A`` (rows × features, non-negative, e.g. |z|), the indices of its ``k``
    largest values, largest first; equal values in feature order. rows × min(k, features)."""
    n = A.shape[1]
    if k >= n:
        return np.argsort(-A, axis=1, kind="stable")
    thr = np.partition(A, n - k, axis=1)[:, n - k]  # each row's k-th largest value
    take = A >= thr[:, None]
    over = take.sum(1) - k  # > 0: values equal to the threshold straddle position k
    if over.any():
        rows = np.flatnonzero(over)
        eq = A[rows] == thr[rows, None]
        drop = eq & (np.cumsum(eq[:, ::-1], axis=1)[:, ::-1] <= over[rows, None])
        take[rows] &= ~drop  # keep the first-listed of the tied values
    idx = np.nonzero(take)[1].reshape(A.shape[0], k)
    o = np.argsort(-np.take_along_axis(A, idx, 1), axis=1, kind="stable")
    return np.take_along_axis(idx, o, 1)


def _ks(top_k) -> tuple[bool, list]:
    """Split ``top_k`` into (has 'all', sorted distinct numeric k); bad values are errors."""
    numeric = []
    for k in top_k:
        if k == "all" or k is None:
            continue
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"drug scores: top_k values are 'all' or positive integers, got {k!r}")
        numeric.append(int(k))
    return any(k == "all" or k is None for k in top_k), sorted(set(numeric))


def _buffer(ws: dict | None, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
    """A ``shape`` array from the workspace ``ws`` (reused across tissues and batches: fresh
    large allocations cost page faults on every call), or a new one without a workspace."""
    if ws is None:
        return np.empty(shape, dtype)
    size = int(np.prod(shape))
    flat = ws.get(name)
    if flat is None or flat.size < size or flat.dtype != dtype:
        flat = ws[name] = np.empty(size, dtype)
    return flat[:size].reshape(shape)


def raw_scores(D: np.ndarray, Zt: np.ndarray, top_k, *, backend: Backend | str | None = None,
               ws: dict | None = None, on_device: bool = False) -> list[np.ndarray]:
    """The score matrices of one tissue: ``D`` features × drugs, ``Zt`` traits × features
    (float64, no NaN). Returns a list of traits × drugs matrices in ``top_k``'s order (a k
    larger than the number of features equals ``"all"``). With a workspace ``ws`` the
    matrices live in its buffers and are valid until the next call with it. ``on_device``:
    leave them on the backend's device (cupy arrays on a GPU) instead of copying to host."""
    from ..kernels import registry
    from ..kernels import topk as kt

    be = get_backend(backend)
    impl = registry.implementation(be)
    has_all, ks = _ks(top_k)
    n = D.shape[0]
    out = {}
    if ks:
        kmax = min(ks[-1], n)
        capped = np.asarray([min(k, n) for k in ks])
        if kmax < n and impl == "cpu":
            order = kt.top_order_cpu(Zt, kmax)
        else:
            if kmax < n:
                registry.fallback("top_order", "the top-k gene order (stable, first-listed "
                                  "wins ties) has no CUDA version: NumPy on the host")
            order = top_order(np.abs(Zt), kmax)
        if impl == "cuda":
            S = registry.call("topk_scores", be, Zt, order, D, capped)
        else:
            S = kt.topk_scores_cpu(Zt, order, D, capped,
                                   out=_buffer(ws, "topk", (len(ks), len(Zt), D.shape[1])))
        out.update({k: S[i] for i, k in enumerate(ks)})
    if has_all:
        if impl == "cuda":
            out["all"] = -(be.asarray(Zt) @ be.asarray(D))
        else:
            A = _buffer(ws, "all", (len(Zt), D.shape[1]))
            np.matmul(Zt, D, out=A)
            out["all"] = np.negative(A, out=A)
    res = [out["all" if (k == "all" or k is None) else int(k)] for k in top_k]
    return res if on_device else [be.to_host(s) for s in res]


def _batch_ranks(Zt, D, top_k, backend, ws: dict | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean over k of the within-trait ranks of the drugs, and mean over k of the raw scores
    S_{t,k} (the tie-break of :func:`top_predictions`): two traits × drugs arrays (the first
    in ``ws``'s buffer when given)."""
    from ..kernels import ranks as kr
    from ..kernels import registry

    be = get_backend(backend)
    # the score matrices stay where the kernels wrote them (no host round trip on a GPU)
    S = raw_scores(D, Zt, top_k, backend=be, ws=ws, on_device=True)
    if registry.implementation(be) == "cuda":
        R = be.xp.zeros(S[0].shape)
        raw = be.xp.zeros(S[0].shape)
        for s in S:
            R += registry.call("row_ranks", be, s)
            raw += s
        return be.to_host(R / len(S)), be.to_host(raw / len(S))
    R = _buffer(ws, "ranks", S[0].shape)
    R[:] = 0.0
    raw = np.zeros(S[0].shape)
    for s in S:
        kr.row_ranks_cpu(s, out=R, add=True)
        raw += s
    R /= len(S)
    raw /= len(S)
    return R, raw


def _clean(frame: pd.DataFrame, what: str, axis_name: str, report: dict, *,
           drop: bool = True) -> pd.DataFrame:
    """Zero and count non-finite entries; columns with no finite value are dropped (``drop``)
    or kept as zeros, and named in ``report`` either way."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what}: expected a DataFrame (rows × {axis_name}), got "
                         f"{type(frame).__name__}")
    v = frame.to_numpy()
    if v.dtype.kind not in "fiu":
        raise InputError(f"{what}: values must be numeric (got {v.dtype})")
    bad = ~np.isfinite(v)
    if not bad.any() and not frame.index.has_duplicates:
        report[f"{what}_values_set_to_0"] = 0
        return frame
    v = v.astype(np.float64)
    dead = bad.all(0) if drop else np.zeros(v.shape[1], bool)
    empty = bad.all(0)
    if empty.any():
        key = f"{what}_{'dropped' if drop else 'all_missing'}_{axis_name}"
        report[key] = [str(c) for c in frame.columns[empty]]
    report[f"{what}_values_set_to_0"] = int(bad[:, ~dead & ~empty].sum())
    v[bad] = 0.0
    out = pd.DataFrame(v[:, ~dead], index=frame.index, columns=frame.columns[~dead])
    if out.index.has_duplicates:
        raise InputError(f"{what}: duplicated genes / LVs {preview(out.index[out.index.duplicated()])}"
                         "; make them unique first")
    return out


def _tissue_matrix(z: pd.DataFrame, tissue: str, D_index: pd.Index, traits: list, space: str,
                   report: dict, ws: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One tissue's z as traits × common features (float64, NaN → 0, in ``traits`` order and
    the tissue's feature order) and the common features' rows in the drug matrix."""
    what = f"trait signatures ({tissue})"
    if not isinstance(z, pd.DataFrame):
        raise InputError(f"{what}: expected a DataFrame (genes × traits), got {type(z).__name__}")
    if z.index.has_duplicates:
        raise InputError(f"{what}: duplicated genes {preview(z.index[z.index.duplicated()])}; "
                         "make them unique first")
    v = z.to_numpy()
    if v.dtype.kind not in "fiu":
        raise InputError(f"{what}: values must be numeric (got {v.dtype})")
    bad = ~np.isfinite(v)
    n_bad = int(bad.sum())
    if n_bad:
        report[f"{what}_values_set_to_0"] = n_bad
        empty = bad.all(0)
        if empty.any():
            report[f"{what}_all_missing_traits"] = [str(c) for c in z.columns[empty]]
    cols = pd.Index(z.columns)
    extra = cols.difference(pd.Index(traits))
    if len(extra):
        raise InputError(f"{what}: traits not in the first tissue: {preview(sorted(extra))}; "
                         "give every tissue the same traits (missing values may be NaN)")
    col_idx = cols.get_indexer(traits)
    if (col_idx < 0).any():
        report[f"{what}_absent_traits"] = int((col_idx < 0).sum())
    rows_z = np.flatnonzero(member(z.index.to_numpy(), D_index.to_numpy()))
    if not len(rows_z):
        raise InputError(f"drug scores: no {'gene' if space == 'gene' else 'LV'} in common "
                         f"between the drug signatures ({preview(D_index)}) and the {what} "
                         f"({preview(z.index)})")
    rows_D = D_index.get_indexer(z.index[rows_z])
    from ..kernels.topk import gather_traits_cpu

    Zt = gather_traits_cpu(v, rows_z, col_idx,
                           out=_buffer(ws, "Zt", (len(traits), len(rows_z))))
    return Zt, rows_D


def _keep_best(rank, raw, best, R, S, rows, ti) -> None:
    """Max over tissues (the earlier tissue wins ties): where tissue ``ti``'s ranks ``R``
    beat ``rank[rows]``, take them, its raw scores ``S`` and its index."""
    better = R > rank[rows]
    np.copyto(rank[rows], R, where=better)
    np.copyto(raw[rows], S, where=better)
    best[rows][better] = ti


def score(drug_signatures: pd.DataFrame, trait_signatures, *, space: str = "gene",
          lv_model=None, top_k=None, tissues=None, trait_disease: pd.DataFrame | None = None,
          backend: Backend | str | None = None, client=None, batch_traits: int = 4096,
          progress: bool = False, checkpoint=None) -> DrugScores:
    """Score every drug against every trait (and disease); see the module docstring.

    ``drug_signatures``: genes × drugs (e.g. LINCS L1000 consensus signatures); in module
    space with ``lv_model=None``, already projected LVs × drugs. ``trait_signatures``: a
    mapping tissue → genes × traits signed z (S-PrediXcan), whose values may be frames or
    zero-argument callables returning one (read when needed), or one frame (a single
    "tissue"). In module space with an ``lv_model`` (:class:`gpu_engine.plier.LVModel` or a
    fitted PLIER) both are projected with it (per tissue for the traits); without one they
    must already be LVs × columns. ``top_k``: default ``GENE_TOP_K`` / ``MODULE_TOP_K``.
    ``trait_disease``: a table with columns ``trait, disease``. ``client``: a Dask client;
    (tissue, trait batch) pieces then run as tasks. Memory: one tissue's z and one batch's
    len(top_k) × batch × drugs scores at a time. ``checkpoint``: a folder (or
    :class:`~gpu_engine.io.checkpoint.Checkpoint`) where each tissue's scores are saved; called
    again with it after a kill, the finished tissues are loaded (same result).
    """
    from ..distributed import map_tasks
    from ..io.checkpoint import as_checkpoint

    if space not in ("gene", "module"):
        raise InputError(f"drug scores: space must be 'gene' or 'module', not {space!r}")
    top_k = tuple(top_k if top_k is not None else (GENE_TOP_K if space == "gene"
                                                   else MODULE_TOP_K))
    if not top_k:
        raise InputError("drug scores: top_k is empty")
    _ks(top_k)
    be = get_backend(backend)
    if isinstance(trait_signatures, pd.DataFrame):
        trait_signatures = {"all": trait_signatures}
    tissues = list(tissues) if tissues is not None else list(trait_signatures)
    missing = [t for t in tissues if t not in trait_signatures]
    if missing:
        raise InputError(f"drug scores: no trait signatures for tissue(s) {preview(missing)}")
    if not tissues:
        raise InputError("drug scores: no tissues")
    report: dict = {"space": space, "tissues": len(tissues)}
    if lv_model is not None and hasattr(lv_model, "lv_model"):
        lv_model = lv_model.lv_model()
    if space == "gene" and lv_model is not None:
        raise InputError("drug scores: lv_model is for space='module'")

    D = _clean(drug_signatures, "drug signatures", "drugs", report)
    if space == "module" and lv_model is not None:
        D = lv_model.transform(D)
    drugs = list(D.columns)
    if not drugs:
        raise InputError("drug scores: no drug with a finite signature")

    traits: list | None = None
    best = rank = None
    per_tissue = []
    ws: dict | None = {} if client is None else None  # buffers reused across tissues
    D_index = pd.Index(D.index)
    D_values = D.to_numpy(np.float64)
    from ..progress import track

    cp = as_checkpoint(checkpoint)
    for ti, tissue in track(list(enumerate(tissues)), "tissues", enabled=progress):
        done = cp.load(f"tissue_{ti:05d}") if cp is not None else None
        if done is not None and str(done["tissue"]) == str(tissue):
            if traits is None:
                traits = [str(t) for t in done["traits"]]
                rank = np.full((len(traits), len(drugs)), -np.inf)
                raw = np.zeros((len(traits), len(drugs)))
                best = np.zeros((len(traits), len(drugs)), np.int16)
            per_tissue.append(json.loads(str(done["report"])))
            _keep_best(rank, raw, best, done["rank"], done["raw"], slice(None), ti)
            continue
        z = trait_signatures[tissue]
        z = z() if callable(z) else z
        if space == "module" and lv_model is not None:
            z = lv_model.transform(_clean(z, f"trait signatures ({tissue})", "traits", report,
                                          drop=False))
        if traits is None:
            traits = list(z.columns)
            rank = np.full((len(traits), len(drugs)), -np.inf)
            raw = np.zeros((len(traits), len(drugs)))
            best = np.zeros((len(traits), len(drugs)), np.int16)
        Zt, rows_D = _tissue_matrix(z, tissue, D_index, traits, space, report, ws)
        per_tissue.append({"tissue": tissue, "features_used": len(rows_D),
                           "features_drugs": len(D), "features_traits": len(z)})
        Dm = np.take(D_values, rows_D, axis=0,
                     out=_buffer(ws, "D", (len(rows_D), D_values.shape[1])))
        batches = [slice(s, min(s + batch_traits, len(traits)))
                   for s in range(0, len(traits), batch_traits)]
        if client is None:
            res = (_batch_ranks(Zt[b], Dm, top_k, be, ws) for b in batches)
        else:
            res = map_tasks(_batch_ranks, [(Zt[b],) for b in batches],
                            shared={"D": Dm, "top_k": top_k, "backend": be.name},
                            client=client)
        if cp is not None:
            R_t = np.empty((len(traits), len(drugs)))
            S_t = np.empty((len(traits), len(drugs)))
        for b, (R, S) in zip(batches, res):
            _keep_best(rank, raw, best, R, S, b, ti)
            if cp is not None:
                R_t[b], S_t[b] = R, S
        if cp is not None:
            cp.save(f"tissue_{ti:05d}", tissue=np.array(str(tissue)),
                    traits=np.array([str(t) for t in traits]), rank=R_t, raw=S_t,
                    report=np.array(json.dumps(per_tissue[-1])))
    report["per_tissue"] = per_tissue
    report["drugs"], report["traits"] = len(drugs), len(traits)
    drug_trait = pd.DataFrame(rank.T, index=pd.Index(drugs, name="drug"),
                              columns=pd.Index(traits, name="trait"))
    best_tissue = pd.DataFrame(np.asarray(tissues, dtype=object)[best.T], index=drug_trait.index,
                               columns=drug_trait.columns)
    out = DrugScores(space, top_k, tissues, drug_trait, best_tissue, report=report,
                     drug_features=D if space == "module" else None,
                     drug_trait_raw=pd.DataFrame(raw.T, index=drug_trait.index,
                                                 columns=drug_trait.columns))
    if trait_disease is not None:
        out.drug_disease, out.disease_trait = to_diseases(drug_trait, trait_disease, report)
    return out


def to_diseases(drug_trait: pd.DataFrame, trait_disease: pd.DataFrame,
                report: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """drugs × diseases: for each disease the maximum over its traits (``trait_disease``:
    columns trait, disease; a trait may map to several diseases); and the trait giving it
    (the first such trait in ``drug_trait``'s order on ties). Traits of the map that were
    not scored are counted in ``report``; a disease with none of its traits scored is
    dropped there too."""
    for col in ("trait", "disease"):
        if col not in trait_disease.columns:
            raise InputError(f"trait → disease map: missing column {col!r} (need trait, disease)")
    m = trait_disease[["trait", "disease"]].astype(str).drop_duplicates()
    scored = member(m["trait"].to_numpy(), drug_trait.columns.astype(str).to_numpy())
    if report is not None:
        report["map_traits_not_scored"] = sorted(set(m.loc[~scored, "trait"]))
    m = m.loc[scored]
    if m.empty:
        raise InputError("trait → disease map: none of its traits were scored "
                         f"(map {preview(trait_disease['trait'])}, scores "
                         f"{preview(drug_trait.columns)})")
    cols = {str(c): i for i, c in enumerate(drug_trait.columns)}
    V = drug_trait.to_numpy()
    diseases = list(dict.fromkeys(m["disease"]))
    out = np.empty((V.shape[0], len(diseases)))
    arg = np.empty((V.shape[0], len(diseases)), dtype=object)
    for j, (_dis, g) in enumerate(m.groupby("disease", sort=False)):
        idx = sorted(cols[t] for t in g["trait"])
        sub = V[:, idx]
        a = sub.argmax(1)
        out[:, j] = sub[np.arange(len(sub)), a]
        arg[:, j] = drug_trait.columns.to_numpy()[np.asarray(idx)[a]]
    if report is not None:
        report["diseases"] = len(diseases)
    index = drug_trait.index
    cols_ = pd.Index(diseases, name="disease")
    return (pd.DataFrame(out, index=index, columns=cols_),
            pd.DataFrame(arg, index=index, columns=cols_))


def lv_contributions(drug_lv: pd.DataFrame, trait_lv: pd.DataFrame, drug: str, trait: str, *,
                     top_k="all") -> pd.DataFrame:
    """The module-based score of one (drug, trait) in one tissue as a sum over LVs:
    contribution_lv = −L̂[lv, drug] · M̂_k[lv, trait] (M̂_k keeps the trait's top-k LVs by |M̂|).
    ``drug_lv``: LVs × drugs, ``trait_lv``: LVs × traits (projected). Returns lv,
    contribution, drug_value, trait_value sorted by contribution (largest first); the
    contributions sum to the score."""
    for name, frame, col in (("drug", drug_lv, drug), ("trait", trait_lv, trait)):
        if col not in frame.columns:
            raise InputError(f"LV contributions: {name} {col!r} is not in the projected "
                             f"{name}s ({preview(frame.columns)})")
    lvs = drug_lv.index.intersection(trait_lv.index, sort=False)
    d = drug_lv.loc[lvs, drug].to_numpy(np.float64)
    m = np.nan_to_num(trait_lv.loc[lvs, trait].to_numpy(np.float64))
    if top_k != "all":
        keep = top_order(np.abs(m)[None, :], int(top_k))[0]
        mask = np.zeros(len(m), bool)
        mask[keep] = True
        m = np.where(mask, m, 0.0)
    c = -d * m
    out = pd.DataFrame({"lv": lvs, "contribution": c, "drug_value": d, "trait_value": m})
    return out.sort_values("contribution", ascending=False, kind="stable").reset_index(drop=True)


def explain(scores: DrugScores, drug: str, target: str, trait_signatures, *, lv_model=None,
            top_k="all") -> pd.DataFrame:
    """Which LVs make a module-based prediction: for ``target`` a disease (the trait and
    tissue giving its maximum are used) or a trait (its best tissue), the LV contributions
    (:func:`lv_contributions`) of the raw score −L̂ᵀM̂ in that tissue, with the trait's
    projection recomputed from ``trait_signatures`` (as passed to :func:`score`)."""
    if scores.space != "module" or scores.drug_features is None:
        raise InputError("explain: LV contributions need module-space scores")
    if scores.drug_disease is not None and target in scores.drug_disease.columns:
        trait = scores.disease_trait.loc[drug, target]
    elif target in scores.drug_trait.columns:
        trait = target
    else:
        raise InputError(f"explain: {target!r} is neither a scored disease nor a scored trait")
    if drug not in scores.drug_trait.index:
        raise InputError(f"explain: drug {drug!r} was not scored")
    tissue = scores.best_tissue.loc[drug, trait]
    if isinstance(trait_signatures, pd.DataFrame):
        trait_signatures = {"all": trait_signatures}
    z = trait_signatures[tissue]
    z = _clean(z() if callable(z) else z, f"trait signatures ({tissue})", "traits", {},
               drop=False)
    if lv_model is not None:
        lv_model = lv_model.lv_model() if hasattr(lv_model, "lv_model") else lv_model
        z = lv_model.transform(z)
    out = lv_contributions(scores.drug_features, z, drug, trait, top_k=top_k)
    return out.assign(drug=drug, trait=trait, tissue=tissue)


def top_predictions(scores: DrugScores, trait_signatures=None, *, n: int = 20, lv_model=None,
                    n_lvs: int = 5) -> pd.DataFrame:
    """The ``n`` strongest drug–disease (or drug–trait, without a disease map) predictions:
    ``drug, disease|trait, score, [trait,] tissue`` and, in module space with the trait
    signatures at hand, ``top_lvs``: the ``n_lvs`` LVs contributing most (see
    :func:`explain`), as ``"LV (contribution)"`` text.

    Ties: ranks tie often (every trait has a drug at the top rank), so pairs with equal
    score are ordered by ``raw_score``, the mean over k of the raw score S_{t,k} of the
    pair's trait in its best tissue (larger first), then by the order listed."""
    target = scores.drug_disease if scores.drug_disease is not None else scores.drug_trait
    kind = "disease" if scores.drug_disease is not None else "trait"
    best = target.stack().rename("score").reset_index()
    best.columns = ["drug", kind, "score"]
    cut = best["score"].nlargest(n, keep="all").min() if len(best) else 0.0
    best = best.loc[best["score"] >= cut]  # every pair tied with the n-th, then break ties
    if kind == "disease":
        best["trait"] = [scores.disease_trait.loc[d, x] for d, x in zip(best["drug"], best[kind])]
    tcol = best["trait"] if kind == "disease" else best[kind]
    if scores.drug_trait_raw is not None:
        raw = scores.drug_trait_raw
        best["raw_score"] = raw.to_numpy()[raw.index.get_indexer(best["drug"]),
                                           raw.columns.get_indexer(tcol)]
        best = best.sort_values(["score", "raw_score"], ascending=False, kind="stable")
    else:
        best = best.sort_values("score", ascending=False, kind="stable")
    best = best.head(n)
    tcol = best["trait"] if kind == "disease" else best[kind]
    best["tissue"] = [scores.best_tissue.loc[d, t] for d, t in zip(best["drug"], tcol)]
    if scores.space == "module" and trait_signatures is not None:
        tops = []
        for d, x in zip(best["drug"], best[kind]):
            c = explain(scores, d, x, trait_signatures, lv_model=lv_model).head(n_lvs)
            tops.append(", ".join(f"{lv} ({v:+.2f})" for lv, v in zip(c["lv"], c["contribution"])))
        best["top_lvs"] = tops
    return best.reset_index(drop=True)
