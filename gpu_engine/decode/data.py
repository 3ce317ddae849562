"""Targets, the feature filter, scaling and splits of DEcode (spec ``decode.md`` §2.2–2.4).

- :func:`tissue_targets`: E = log2(TPM + 0.25) per gene × tissue (or E given), the 53 (T)
  fold changes E − m against the per-gene median m (NumPy's median: the mean of the two
  middle values for an even T), and m last as ``MedianExp``.
- :func:`person_targets`: the person-specific model's targets (genes × individuals of one
  tissue): genes with > 1 TPM in ≥ 50 % of the samples, log2(TPM + 0.25), quantile
  normalisation across samples, the covariates (RIN, rRNA and intronic rates…) regressed out
  per gene, quantile normalisation again, then fold changes against the per-gene median over
  individuals (and ``MedianExp``, switchable).
- :func:`target_divisors`: the reference's scaling — the fold-change columns share one
  divisor, the pooled sd of all training fold-change values (ddof 0), and ``MedianExp`` its
  own training sd (ddof 1); ``kind="columns"`` (any gene-level table: LV loadings, trait
  scores) divides each column by its training sd (ddof 0).
- :func:`filter_features`: regulators bound (any non-zero bin) in fewer than ``min_genes``
  genes are dropped; counted over every gene with targets (``on="all"``, the reference, a
  mild leak) or over the training genes (``on="train"``).
- :func:`channel_maxima`: each channel's maximum over all bins of all training genes (a zero
  maximum becomes 1); every set is divided by the training maxima.
- :func:`chromosome_split`: test = the genes of one chromosome, validation a random 10 % of
  the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from .features import MASKS, BindingMaps

MEDIAN = "MedianExp"
SETS = ("train", "validation", "test")


def tissue_targets(expression: pd.DataFrame, *, tpm: bool = False) -> pd.DataFrame:
    """genes × (T fold changes, ``MedianExp``) from a genes × tissues table of log2(TPM +
    0.25) (or of TPM with ``tpm=True``)."""
    E = expression.astype(float)
    if tpm:
        if (E < 0).any().any():
            raise InputError("expression: TPM must be ≥ 0")
        E = np.log2(E + 0.25)
    m = np.median(E.to_numpy(), axis=1)
    out = E.sub(m, axis=0)
    out[MEDIAN] = m
    return out


def quantile_normalize(E: np.ndarray) -> np.ndarray:
    """Quantile normalisation of the columns (samples) of ``E`` (genes × samples): each value
    becomes the mean over samples of the values of its within-sample rank (ties get the mean
    of their ranks' values, as ``preprocessCore``'s average ties)."""
    from scipy.stats import rankdata

    E = np.asarray(E, float)
    ref = np.sort(E, axis=0).mean(1)                   # the mean quantile distribution
    out = np.empty_like(E)
    grid = np.arange(1, len(ref) + 1)
    for j in range(E.shape[1]):
        r = rankdata(E[:, j])                          # average ranks for ties
        out[:, j] = np.interp(r, grid, ref)
    return out


def person_targets(tpm: pd.DataFrame, covariates: pd.DataFrame | None = None, *,
                   min_tpm: float = 1.0, min_fraction: float = 0.5,
                   median: bool = True) -> pd.DataFrame:
    """genes × (individuals, ``MedianExp``) for a person-specific model (see the module
    docstring). ``tpm``: genes × samples (one tissue, one sample per individual);
    ``covariates``: samples × q, regressed out of each gene (with an intercept) between the
    two quantile normalisations. ``median=False`` leaves out the ``MedianExp`` column. The
    number of genes kept is in ``attrs["report"]``."""
    X = tpm.astype(float)
    if X.isna().any().any():
        bad = X.columns[X.isna().any()][0]
        raise InputError(f"person expression: NaN TPM in sample {bad!r}; remove or impute it")
    if (X < 0).any().any():
        raise InputError("person expression: TPM must be ≥ 0")
    keep = (X > min_tpm).mean(axis=1) >= min_fraction
    if not keep.any():
        raise InputError(f"person expression: no gene has > {min_tpm} TPM in ≥ "
                         f"{min_fraction:.0%} of the samples")
    X = X[keep]
    E = quantile_normalize(np.log2(X.to_numpy() + 0.25))
    if covariates is not None:
        C = covariates.copy()
        C.index = C.index.astype(str)
        missing = [s for s in X.columns.astype(str) if s not in C.index]
        if missing:
            raise InputError(f"covariates: no row for sample {missing[0]!r} "
                             f"({len(missing)} of {X.shape[1]} samples missing)")
        D = np.column_stack([np.ones(X.shape[1]),
                             C.loc[X.columns.astype(str)].to_numpy(float)])
        beta, *_ = np.linalg.lstsq(D, E.T, rcond=None)
        E = quantile_normalize((E.T - D @ beta).T + E.mean(1, keepdims=True))
    m = np.median(E, axis=1)
    out = pd.DataFrame(E - m[:, None], index=X.index, columns=X.columns)
    if median:
        out[MEDIAN] = m
    out.attrs["report"] = {"genes_in": int(len(tpm)), "genes_kept": int(keep.sum()),
                           "samples": int(X.shape[1])}
    return out


def target_divisors(targets: pd.DataFrame, train_genes, *, kind: str = "tissue") -> pd.DataFrame:
    """Per output: ``divisor`` and ``ddof`` (see the module docstring)."""
    T = targets.loc[list(train_genes)]
    if kind == "tissue":  # fold changes pooled; MedianExp (when present) by its own sd
        names = list(T.columns)  # in the targets' order
        pooled = float(np.std(T[[c for c in names if c != MEDIAN]].to_numpy(float), ddof=0))
        med = float(T[MEDIAN].std(ddof=1)) if MEDIAN in names else None
        div = [med if c == MEDIAN else pooled for c in names]
        ddof = [1 if c == MEDIAN else 0 for c in names]
    elif kind == "columns":
        names = list(T.columns)
        div = [float(np.std(T[c].to_numpy(float), ddof=0)) for c in names]
        ddof = [0] * len(names)
    else:
        raise InputError(f"target kind must be 'tissue' or 'columns', not {kind!r}")
    d = pd.DataFrame({"output": names, "divisor": div, "ddof": ddof})
    flat = d["divisor"] <= 0
    if flat.any():
        raise InputError(f"target {d.loc[flat, 'output'].iloc[0]!r} is constant over the "
                         "training genes; it cannot be learned")
    return d


def chromosome_split(genes: pd.DataFrame, *, test_chromosome: str = "1",
                     validation: float = 0.1, seed: int = 0) -> pd.Series:
    """gene → train | validation | test (``genes`` has ``gene`` and ``chromosome``)."""
    chrom = genes["chromosome"].astype(str).str.removeprefix("chr")
    out = pd.Series("train", index=genes["gene"].to_numpy(), name="set")
    test = (chrom == str(test_chromosome).removeprefix("chr")).to_numpy()
    out[test] = "test"
    rest = np.flatnonzero(~test)
    rng = np.random.default_rng(seed)
    val = rng.choice(rest, size=int(round(validation * len(rest))), replace=False)
    out.iloc[val] = "validation"
    return out


def read_splits(splits) -> pd.Series:
    """gene → set from a Series, a DataFrame (``gene``, ``set``) or a dict of gene lists."""
    if isinstance(splits, dict):
        s = pd.Series({g: k for k, gs in splits.items() for g in gs}, name="set")
    elif isinstance(splits, pd.DataFrame):
        if not {"gene", "set"} <= set(splits.columns):
            raise InputError("splits: a table with columns 'gene' and 'set' is expected")
        s = splits.set_index("gene")["set"]
    else:
        s = pd.Series(splits)
    bad = ~s.isin(SETS)
    if bad.any():
        raise InputError(f"splits: set must be one of {SETS}; gene {s.index[bad][0]!r} has "
                         f"{s[bad].iloc[0]!r}")
    return s


@dataclass
class Prepared:
    """Aligned, filtered and scaled inputs (per-gene dense arrays, unscaled targets)."""

    genes: list
    sets: np.ndarray
    rna: list
    prom: list
    targets: pd.DataFrame
    rna_channels: list
    prom_channels: list
    maxima: pd.DataFrame
    report: dict = field(default_factory=dict)

    def index(self, which: str) -> np.ndarray:
        return np.flatnonzero(self.sets == which)


def filter_features(maps: BindingMaps, genes, *, min_genes: int = 30) -> tuple[list, list, list]:
    """``(rna channels kept, promoter channels kept, dropped regulators)``."""
    parts = []
    gs = set(genes)
    for region in ("rna", "promoter"):
        long = getattr(maps, region)
        long = long[(long["feature"] != MASKS[region]) & long["gene"].isin(gs)]
        parts.append(long.groupby("feature")["gene"].nunique())
    counts = pd.concat(parts)
    kept, dropped = [], []
    for region in ("rna", "promoter"):
        names = maps.channels(region)
        keep = [names[0]] + [n for n in names[1:] if counts.get(n, 0) >= min_genes]
        kept.append(keep)
        dropped += [n for n in names[1:] if counts.get(n, 0) < min_genes]
    return kept[0], kept[1], dropped


def channel_maxima(arrays: list, names: list) -> np.ndarray:
    m = np.zeros(len(names))
    for a in arrays:
        if a.size:
            np.maximum(m, a.max(axis=1), out=m)
    m[m == 0] = 1.0
    return m


def prepare(maps: BindingMaps, targets: pd.DataFrame, splits, *, min_genes: int = 30,
            filter_on: str = "all") -> Prepared:
    """Align genes of the maps, the targets and the splits; drop (and count) genes with NaN
    targets, genes without binding maps, genes without bins; filter regulators; scale by
    the training maxima. Errors when a set ends up empty."""
    if filter_on not in ("all", "train"):
        raise InputError(f"filter_on must be 'all' or 'train', not {filter_on!r}")
    split = read_splits(splits)
    report: dict = {}
    T = targets.copy()
    T.index = T.index.astype(str)
    nan = T.isna().any(axis=1)
    report["dropped_nan_targets"] = int(nan.sum())
    T = T[~nan]
    nb = maps.genes.set_index("gene")["n_bins"]
    no_maps = ~T.index.isin(nb.index)
    report["dropped_no_binding_maps"] = int(no_maps.sum())
    report["examples_no_binding_maps"] = list(T.index[no_maps][:5])
    T = T[~no_maps]
    empty = (nb.reindex(T.index) < 1).to_numpy()
    report["dropped_no_bins"] = int(empty.sum())
    report["examples_no_bins"] = list(T.index[empty][:5])
    T = T[~empty]
    report["maps_without_targets"] = int((~nb.index.isin(T.index)).sum())
    no_split = ~T.index.isin(split.index)
    report["dropped_no_split"] = int(no_split.sum())
    T = T[~no_split]
    sets = split.reindex(T.index).to_numpy()
    for s in SETS:
        if not (sets == s).any():
            raise InputError(f"splits: the {s} set is empty after aligning genes of the "
                             f"targets, the binding maps and the splits "
                             f"({len(T)} genes remain; report: {report})")
    genes = list(T.index)
    base = genes if filter_on == "all" else [g for g, s in zip(genes, sets) if s == "train"]
    rna_ch, prom_ch, dropped = filter_features(maps, base, min_genes=min_genes)
    report["dropped_regulators"] = len(dropped)
    report["examples_dropped_regulators"] = dropped[:10]
    report["regulators_kept"] = len(rna_ch) + len(prom_ch) - 2
    if report["regulators_kept"] == 0:
        raise InputError(f"no regulator is bound in ≥ {min_genes} genes; lower min_genes or "
                         "check the binding maps")
    rna, prom = maps.dense(genes, rna_ch, prom_ch)
    train = np.flatnonzero(sets == "train")
    mr = channel_maxima([rna[i] for i in train], rna_ch)
    mp = channel_maxima([prom[i] for i in train], prom_ch)
    rna = [a / mr[:, None] for a in rna]
    prom = [a / mp[:, None] for a in prom]
    maxima = pd.DataFrame({"region": ["rna"] * len(rna_ch) + ["promoter"] * len(prom_ch),
                           "feature": rna_ch + prom_ch, "max": np.concatenate([mr, mp])})
    report["genes"] = {s: int((sets == s).sum()) for s in SETS}
    return Prepared(genes, sets, rna, prom, T, rna_ch, prom_ch, maxima, report)


def scaled_inputs(maps: BindingMaps, genes, maxima: pd.DataFrame):
    """Dense arrays for ``genes`` with a fitted model's channels and training maxima."""
    rc = maxima.loc[maxima["region"] == "rna", "feature"].tolist()
    pc = maxima.loc[maxima["region"] == "promoter", "feature"].tolist()
    known = set(maps.features["name"])
    missing = [c for c in rc + pc if c not in known]
    if missing:
        raise InputError(f"binding maps lack {len(missing)} channels the model was trained "
                         f"with (e.g. {missing[:3]})")
    rna, prom = maps.dense(genes, rc, pc)
    mr = maxima.loc[maxima["region"] == "rna", "max"].to_numpy()
    mp = maxima.loc[maxima["region"] == "promoter", "max"].to_numpy()
    return [a / mr[:, None] for a in rna], [a / mp[:, None] for a in prom]
