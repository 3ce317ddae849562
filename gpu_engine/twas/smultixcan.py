"""S-MultiXcan: one joint test per gene over its tissues' S-PrediXcan z-scores.

Per gene (the reference semantics, MetaXcan 0.7.5):

- tissues: those whose S-PrediXcan z is finite, sorted by name; z_t their z-scores;
- SNPs: each tissue model's SNPs ∩ the SNP set ∩ the gene's block of the global covariance
  (with a variance). The SNP set is the GWAS after allele alignment to the models — *including*
  SNPs whose z is NaN or infinite — or all model SNPs when no GWAS is given;
- R_tt' = w_tᵀΓw_t' / √(w_tᵀΓw_t · w_t'ᵀΓw_t');
- cutoff, from the eigenvalues λ of R (the reference's four rules; the first given wins, in
  this order): ``eigen_ratio`` r → r·λ_max; ``trace_ratio`` r → r·tr R; ``threshold`` t → the
  eigenvalue before the one at which the descending cumulative sum first exceeds (1 − t)·tr R;
  ``condition_number`` c → λ_max / c (the publications use c = 30). A ratio or threshold of 0
  gives cutoff 0;
- ``regularization`` ε: the SVD is of R + εI (the cutoff still from R); SVD = U S Vᵀ; keep
  s ≥ cutoff (the first always); R⁺ = V diag(1/s) Uᵀ over the kept ones;
- T = zᵀR⁺z ~ χ²(n_indep), p = χ²_sf. ``tmi`` = trace(R R⁺); ``eigen_*`` are singular values;
  ``z_sd`` uses ddof = 1; ``p_i_best/worst`` = 2Φ(−max/min |z|) with their tissues.

``status``: 0 OK; −2 no finite S-PrediXcan z; −3 no tissue with a usable model SNP;
−4 the χ² tail underflowed to 0. As the reference, the genes listed are the model genes whose
block of the (per-gene) covariance holds a SNP of the SNP set; others are omitted.

All genes' WᵀΓW come from one segmented-Gram kernel call; the small eigen- and
singular-value decompositions are batched by tissue count.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import special

from ..backend import Backend
from ..errors import InputError
from ..io.align import member
from ..results import TableResult, register
from .covariance import CovarianceBlocks, gene_blocks, sparse_ld
from .gwas import Gwas, harmonize
from .models import ModelDB
from .quadratic import gram, snp_table

COLUMNS = ("gene", "gene_name", "pvalue", "n", "n_indep", "p_i_best", "t_i_best", "p_i_worst",
           "t_i_worst", "eigen_max", "eigen_min", "eigen_min_kept", "z_min", "z_max", "z_mean",
           "z_sd", "tmi", "status")
STATUS = {0: "ok", -2: "no S-PrediXcan z", -3: "no usable model SNP", -4: "p underflow"}


@register
class SMultiXcanTable(TableResult):
    """S-MultiXcan results across tissues (a DataFrame with MetaXcan's columns, sorted by p).
    ``save("x.txt")`` writes the reference's tab-separated table (``NA`` for missing);
    ``save("x.parquet")`` Parquet with ``attrs``."""

    kind = "smultixcan"

    def _write_text(self, frame, path) -> None:
        from ..io import atomic_path

        with atomic_path(path) as tmp:  # tab-separated whatever the name, as the reference
            frame.to_csv(tmp, sep="\t", index=False, na_rep="NA")


def _zscores(spredixcan: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for tissue, df in spredixcan.items():
        if not {"gene", "zscore"} <= set(df.columns):
            raise InputError(f"S-PrediXcan results of tissue {tissue!r}: need columns 'gene' and "
                             f"'zscore', found {list(df.columns)[:8]}")
        d = df[["gene", "zscore"]].copy()
        d["zscore"] = pd.to_numeric(d["zscore"], errors="coerce")
        d["tissue"] = tissue
        rows.append(d)
    z = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["gene", "zscore", "tissue"])
    return z.drop_duplicates(["gene", "tissue"])


def _weights(models: Mapping[str, ModelDB], gwas) -> pd.DataFrame:
    parts = []
    for tissue, model in models.items():
        if model.empty:
            continue
        w = model.weights[["gene", "snp", "weight"]]
        if gwas is not None:
            h, _ = harmonize(gwas, model.alleles())
            w = w.loc[member(w["snp"], h["snp"].to_numpy())]
        parts.append(w.assign(tissue=tissue))
    if not parts:
        return pd.DataFrame(columns=["gene", "snp", "weight", "tissue"])
    return pd.concat(parts, ignore_index=True)


def _per_gene_blocks(ld: CovarianceBlocks, w: pd.DataFrame) -> CovarianceBlocks:
    """An LD reference in blocks that are not genes (LD regions, chromosomes): cut one block
    per gene over its model SNPs."""
    ids, LD = sparse_ld(ld, None)
    index = pd.Index(ids)
    genes, members = [], []
    for gene, g in w.groupby("gene", sort=False):
        code = index.get_indexer(g["snp"])
        genes.append(gene)
        members.append(code[code >= 0])
    return gene_blocks(LD, members, labels=genes, ids=ids)


CUTOFF_RULES = ("eigen_ratio", "trace_ratio", "threshold", "condition_number")


def cutoff_rule(*, condition_number: float | None = None, eigen_ratio: float | None = None,
                trace_ratio: float | None = None, threshold: float | None = None
                ) -> tuple[str, float]:
    """The SVD truncation rule of the given ones, in the reference's precedence
    (``CUTOFF_RULES``); an error when none is given or a value is out of range."""
    given = dict(condition_number=condition_number, eigen_ratio=eigen_ratio,
                 trace_ratio=trace_ratio, threshold=threshold)
    for rule in CUTOFF_RULES:
        v = given[rule]
        if v is None:
            continue
        v = float(v)
        if rule == "condition_number" and not v > 0:
            raise InputError(f"S-MultiXcan: the condition number must be positive, got {v:g} "
                             "(--cutoff_condition_number; the publications use 30)")
        if rule != "condition_number" and not (v >= 0 and np.isfinite(v)):
            raise InputError(f"S-MultiXcan: --cutoff_{rule} must be ≥ 0, got {v:g}")
        return rule, v
    raise InputError("S-MultiXcan needs an SVD truncation rule: --cutoff_condition_number "
                     "(e.g. 30), --cutoff_eigen_ratio, --cutoff_trace_ratio or "
                     "--cutoff_threshold")


def _cutoff(R: np.ndarray, rule: str, v: float) -> np.ndarray:
    """Per matrix of the batch R (B, t, t), the singular-value cutoff of ``rule``."""
    if rule != "condition_number" and v == 0:
        return np.zeros(R.shape[0])
    if rule == "trace_ratio":
        return v * np.einsum("bii->b", R)
    # eigh as the reference (eigvalsh can differ in the last bits, and the threshold rule's
    # cutoff *is* an eigenvalue, compared with singular values)
    lam = np.linalg.eigh(R)[0][:, ::-1]  # descending
    if rule == "eigen_ratio":
        return v * lam[:, 0]
    if rule == "condition_number":
        return lam[:, 0] / v
    # threshold: the last eigenvalue before the cumulative sum passes (1 − t)·trace
    cs = np.cumsum(lam, axis=1)
    passed = cs > (lam.sum(1) * (1.0 - v))[:, None]
    first = np.where(passed.any(1), passed.argmax(1), lam.shape[1])
    return np.take_along_axis(lam, np.maximum(first - 1, 0)[:, None], 1)[:, 0]


def _solve(R: np.ndarray, z: np.ndarray, rule: tuple[str, float],
           regularization: float | None = None) -> dict:
    """The per-gene statistics for a batch of same-size R (B, t, t) and z (B, t)."""
    cut = _cutoff(R, *rule)
    A = R + regularization * np.eye(R.shape[1]) if regularization else R
    U, s, Vt = np.linalg.svd(A)
    keep = s >= cut[:, None]
    keep[:, 0] = True
    inv_s = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
    Rp = np.einsum("bji,bj,bkj->bik", Vt, inv_s, U)  # V diag(1/s) Uᵀ
    T = np.einsum("bi,bij,bj->b", z, Rp, z)
    n_indep = keep.sum(1)
    tmi = np.einsum("bij,bji->b", R, Rp)
    return dict(T=T, n_indep=n_indep, eigen_max=s[:, 0], eigen_min=s[:, -1],
                eigen_min_kept=np.take_along_axis(s, (n_indep - 1)[:, None], 1)[:, 0], tmi=tmi)


def smultixcan(models: Mapping[str, ModelDB], covariance: CovarianceBlocks,
               spredixcan: Mapping[str, pd.DataFrame], *, condition_number: float | None = None,
               eigen_ratio: float | None = None, trace_ratio: float | None = None,
               threshold: float | None = None, regularization: float | None = None,
               gwas: Gwas | pd.DataFrame | None = None, snps=None,
               max_genes: int | None = None, backend: Backend | str | None = None,
               kernel: str | None = None) -> pd.DataFrame:
    """S-MultiXcan for every gene of ``models`` (tissue → model).

    ``covariance``: the global SNP covariance: blocks per gene (MetaXcan's file), or any LD
    reference whose blocks are regions (then each gene's block is cut from it). ``spredixcan``: tissue →
    S-PrediXcan results (``gene``, ``zscore``). The SVD truncation: one of
    ``condition_number`` (usually 30), ``eigen_ratio``, ``trace_ratio``, ``threshold`` (see
    the module docstring; no default, as in the reference); ``regularization`` adds εI.
    ``gwas``: the parsed GWAS whose aligned SNPs form the SNP set; or ``snps``, the SNP set
    itself (the reference's ``--cleared_snps``); neither: every model SNP. ``max_genes``: only
    the first M genes, in the order of the covariance's blocks (``--MAX_M``). Rows sorted by
    (pvalue, status).
    """
    rule = cutoff_rule(condition_number=condition_number, eigen_ratio=eigen_ratio,
                       trace_ratio=trace_ratio, threshold=threshold)
    if regularization is not None and not (np.isfinite(regularization)
                                           and regularization >= 0):
        raise InputError(f"S-MultiXcan: --regularization must be ≥ 0, got {regularization:g}")
    if gwas is not None and snps is not None:
        raise InputError("S-MultiXcan: give the GWAS or the SNP set (--cleared_snps), not both")
    models = dict(sorted(models.items()))
    names = pd.concat([m.extra[["gene", "gene_name"]] for m in models.values()],
                      ignore_index=True).drop_duplicates("gene")
    if max_genes is not None:
        order = pd.Index(covariance.genes).get_indexer(names["gene"])
        order = np.where(order < 0, np.iinfo(np.int64).max, order)
        names = names.iloc[np.argsort(order, kind="stable")[:max(int(max_genes), 0)]]
    z = _zscores(spredixcan)
    z = z.loc[np.isfinite(z["zscore"].to_numpy()) & z["tissue"].isin(list(models))
              & member(z["gene"], names["gene"].to_numpy())].sort_values(["gene", "tissue"])
    w = _weights(models, gwas)
    snp_set = pd.unique(np.asarray(list(snps), dtype=object)) if snps is not None \
        else pd.unique(w["snp"].to_numpy(dtype=object))
    w = w.merge(z[["gene", "tissue"]], on=["gene", "tissue"])
    if snps is not None:
        w = w.loc[member(w["snp"], snp_set)]
    per_gene = any(g in covariance for g in z["gene"].unique())
    if not per_gene:
        covariance = _per_gene_blocks(covariance, w)
    tab = snp_table(covariance)
    # the reference lists the genes whose covariance block holds a SNP of the set
    listed = pd.unique(tab.loc[member(tab["snp"], snp_set), "gene"].to_numpy(dtype=object)) \
        if per_gene else None
    w = w.merge(tab.loc[np.isfinite(tab["var"].to_numpy()), ["gene", "snp", "row", "block"]],
                on=["gene", "snp"])
    # tissues with at least one usable SNP, per gene, in name order
    usable = w[["gene", "tissue"]].drop_duplicates().sort_values(["gene", "tissue"])
    usable["col"] = usable.groupby("gene", sort=False).cumcount()
    w = w.merge(usable, on=["gene", "tissue"])
    genes_u = usable["gene"].drop_duplicates().to_numpy()
    m = usable.groupby("gene", sort=False).size().reindex(genes_u).to_numpy()
    blocks = np.array([covariance.index(g) for g in genes_u], np.int64)
    G = gram(covariance, blocks, w["row"].to_numpy(), w["col"].to_numpy(np.int64),
             w["weight"].to_numpy(), m, backend=backend, kernel=kernel) if len(blocks) else []
    zt = z.merge(usable, on=["gene", "tissue"])
    zmat = {g: d["zscore"].to_numpy() for g, d in zt.groupby("gene", sort=False)}
    tis = {g: d["tissue"].to_numpy() for g, d in zt.groupby("gene", sort=False)}
    stats_by_gene: dict[str, dict] = {}
    by_size: dict[int, list[int]] = {}
    for i, k in enumerate(m):
        by_size.setdefault(int(k), []).append(i)
    for _k, idx in by_size.items():
        Gs = np.stack([G[i] for i in idx])
        d = np.sqrt(np.einsum("bii->bi", Gs))
        with np.errstate(divide="ignore", invalid="ignore"):
            R = Gs / d[:, :, None] / d[:, None, :]
        zs = np.stack([zmat[genes_u[i]] for i in idx])
        out = _solve(R, zs, rule, regularization)
        for j, i in enumerate(idx):
            stats_by_gene[genes_u[i]] = {key: v[j] for key, v in out.items()}
    rows = []
    zall = {g: d for g, d in z.groupby("gene", sort=False)}
    for gene, gname in names.itertuples(index=False):
        row = {"gene": gene, "gene_name": gname}
        zg = zall.get(gene)
        if zg is None or zg.empty:
            row["status"] = -2
            rows.append(row)
            continue
        st = stats_by_gene.get(gene)
        if st is None:
            row.update(n=len(zg), status=-3)
            rows.append(row)
            continue
        zz, tt = zmat[gene], tis[gene]
        a = np.abs(zz)
        # χ² survival as scipy.stats.chi2.sf (NaN for 0 degrees of freedom, as it gives)
        p = float(special.chdtrc(st["n_indep"], st["T"])) if st["n_indep"] > 0 else np.nan
        row.update(pvalue=p, n=len(zz), n_indep=int(st["n_indep"]),
                   p_i_best=2 * special.ndtr(-a.max()), t_i_best=tt[int(np.argmax(a))],
                   p_i_worst=2 * special.ndtr(-a.min()), t_i_worst=tt[int(np.argmin(a))],
                   eigen_max=st["eigen_max"], eigen_min=st["eigen_min"],
                   eigen_min_kept=st["eigen_min_kept"], z_min=zz.min(), z_max=zz.max(),
                   z_mean=zz.mean(), z_sd=zz.std(ddof=1) if len(zz) > 1 else np.nan,
                   tmi=st["tmi"], status=-4 if p == 0.0 else 0)
        rows.append(row)
    res = pd.DataFrame(rows, columns=list(COLUMNS))
    if listed is not None:
        res = res.loc[member(res["gene"], listed)]
    for c in ("n", "n_indep", "status"):
        res[c] = res[c].astype("Int64")
    return SMultiXcanTable.from_frame(res.sort_values(["pvalue", "status"], kind="mergesort",
                                                      na_position="last").reset_index(drop=True))


def write_smultixcan(res: pd.DataFrame, path) -> None:
    """Write results as the reference does (tab-separated, ``NA`` for missing), atomically
    (the same as ``SMultiXcanTable(res).save(path)``)."""
    SMultiXcanTable.from_frame(res).save(path)
