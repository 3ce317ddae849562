"""Gene–gene correlation matrices from prediction models and LD (PhenoPLIER's "SSM
correlation"), the input of the GLS regression.

Definition, for genes i, j on the same chromosome, each gene's tissue models restricted to the
SNP set (the GWAS's SNPs present in the LD reference, or every model SNP in it):

- C_ij (tissues_i × tissues_j): C_ij[k, l] = w_kᵀΓw_l / √(var_k · var_l), var_k = w_kᵀΓw_k;
  tissues whose restricted model has var_k = 0 are dropped;
- per gene, SVD C_ii = U S Vᵀ, keep s ≥ s_max / c (c = ``condition_number``, 30; the first is
  always kept): k_i components, A_i = diag(s^−½)·Vᵀ[:k_i] (k_i × tissues_i);
- T_ij = A_i C_ij A_jᵀ, r_ij = ‖T_ij‖²_F / √(k_i k_j); different chromosomes 0; diagonal 1.

Computation (no gene pairs are looped over): with W the SNPs × (gene, tissue) weight matrix
of a chromosome, the whitened weights Ŵ = W·D^−½·blockdiag(A_iᵀ) (SNPs × Σk) give every T_ij
as a block of ŴᵀΓŴ — one sparse (or dense) product — and r_ij as block sums of squares. The
per-gene C_ii come from the segmented Gram kernel; the small SVDs are batched by size.

Positive definiteness: each chromosome block is checked (smallest eigenvalue) and, if needed,
repaired by ``repair="clip"`` (eigenvalues raised to ``min_eigenvalue``, then rescaled to a
unit diagonal) or ``"corr_nearest"`` (statsmodels, as the reference did); how far the matrix
moved is reported. The distance filter (``within_mb`` = d) keeps r_ij only for genes whose
intervals, each widened by d/2 Mb on both sides, overlap; positive definiteness is re-checked.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..backend import Backend, get_backend
from ..distributed import map_tasks
from ..errors import InputError, preview
from ..results import register
from .covariance import CovarianceBlocks, gene_blocks, sparse_ld
from .models import ModelDB
from .quadratic import gram

log = logging.getLogger(__name__)
_VARID_CHR = re.compile(r"^(?:chr)?([0-9XYMT]+)_")


@register
@dataclass
class GeneCorrelation:
    """Result of :func:`gene_correlations`.

    ``matrix``: genes × genes (scipy CSR, float64) in the order of ``genes``; ``genes``: one
    row per gene with ``gene, gene_name, chromosome, start, end, n_tissues, k`` (k = kept
    components); ``report``: one row per chromosome with the positive-definiteness check and
    repair (``min_eig_before``, ``min_eig_after``, ``frobenius_change``, ``max_abs_change``).
    """

    matrix: sp.csr_matrix
    genes: pd.DataFrame
    report: pd.DataFrame = field(default_factory=pd.DataFrame)
    params: dict = field(default_factory=dict)

    kind = "gene_corr"

    def to_frame(self, labels: str = "gene") -> pd.DataFrame:
        """Dense genes × genes DataFrame labelled by ``gene`` ids or ``gene_name``. Where two
        genes share a symbol, the first (in chromosome order) is kept and the rest logged."""
        lab = self.genes[labels].astype(str)
        keep = ~lab.duplicated().to_numpy()
        if not keep.all():
            log.warning("gene correlations: %d gene(s) share a %s with an earlier gene and are "
                        "left out: %s", int((~keep).sum()), labels,
                        preview(self.genes["gene"][~keep]))
        idx = np.flatnonzero(keep)
        M = self.matrix[idx][:, idx].toarray()
        lab = lab.to_numpy()[idx]
        return pd.DataFrame(M, index=pd.Index(lab, name="gene"), columns=lab)

    def save(self, path: str | os.PathLike, *, labels: str = "gene",
             overwrite: bool = True) -> Path:
        """The condensed form: a folder with ``genes.parquet`` (order, positions, chromosome,
        and the ``label`` the dense form uses), ``pairs.parquet`` (upper-triangle non-zero
        ``i, j, r``), ``report.parquet`` (per chromosome) and ``result.json``, written
        atomically. :meth:`load` reads it back as it was; :func:`read_gene_corr` (and
        ``gpu-engine gls``) read it as a dense matrix."""
        import json

        from ..io import atomic_dir, write_table
        from ..results import _jsonable

        up = sp.triu(self.matrix, k=1).tocoo()
        with atomic_dir(path, overwrite=overwrite) as tmp:
            genes = self.genes.assign(label=self.genes[labels].astype(str))
            write_table(genes, Path(tmp) / "genes.parquet", metadata=self.params)
            write_table(pd.DataFrame({"i": up.row.astype(np.int32), "j": up.col.astype(np.int32),
                                      "r": up.data}), Path(tmp) / "pairs.parquet")
            write_table(self.report, Path(tmp) / "report.parquet")
            (Path(tmp) / "result.json").write_text(json.dumps(
                {"kind": self.kind, "labels": labels, "params": _jsonable(self.params)},
                indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GeneCorrelation:
        """Read a folder written by :meth:`save` (the sparse matrix, genes, report, params)."""
        import json

        from ..io import read_table

        p = Path(path)
        if not is_condensed(p):
            raise InputError(f"{p}: not a condensed gene correlation folder (genes.parquet and "
                             "pairs.parquet); a dense matrix file is read by read_gene_corr")
        genes = read_table(p / "genes.parquet", what="gene correlation genes")
        pairs = read_table(p / "pairs.parquet", what="gene correlation pairs")
        n = len(genes)
        i, j, r = (pairs[c].to_numpy() for c in ("i", "j", "r"))
        if n and (i.max(initial=0) >= n or j.max(initial=0) >= n):
            raise InputError(f"{p}: pairs.parquet refers to genes beyond genes.parquet "
                             f"({n} genes)")
        up = sp.coo_matrix((r, (i, j)), shape=(n, n))
        M = (up + up.T + sp.identity(n, format="coo")).tocsr()
        meta = p / "result.json"
        params = (json.loads(meta.read_text()).get("params", {}) if meta.is_file() else {})
        report = (read_table(p / "report.parquet", what="gene correlation report")
                  if (p / "report.parquet").is_file() else pd.DataFrame())
        return cls(M, genes.drop(columns="label"), report, params)


def is_condensed(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "genes.parquet").is_file() and (p / "pairs.parquet").is_file()


def read_gene_corr(path: str | os.PathLike) -> pd.DataFrame:
    """A gene correlation matrix as a dense genes × genes DataFrame, from the condensed folder
    written by :meth:`GeneCorrelation.save` or a dense matrix file (Parquet/TSV)."""
    from ..io import read_matrix, read_table

    if not is_condensed(path):
        return read_matrix(path, what="gene correlation matrix")
    p = Path(path)
    genes = read_table(p / "genes.parquet")
    pairs = read_table(p / "pairs.parquet")
    n = len(genes)
    M = np.eye(n)
    i, j, r = pairs["i"].to_numpy(), pairs["j"].to_numpy(), pairs["r"].to_numpy()
    if n and (i.max(initial=0) >= n or j.max(initial=0) >= n):
        raise InputError(f"{p}: pairs.parquet refers to genes beyond genes.parquet ({n} genes)")
    M[i, j] = r
    M[j, i] = r
    lab = genes["label"].astype(str).to_numpy()
    return pd.DataFrame(M, index=pd.Index(lab, name="gene"), columns=lab)


# --------------------------------------------------------------------- pieces
def _gene_table(genes_in: list[str], names: pd.Series, genes: pd.DataFrame | None,
                weights: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"gene": genes_in})
    out["gene_name"] = names.reindex(genes_in).to_numpy()
    if genes is not None:
        src = genes.attrs.get("source", "gene table")
        need = {"gene", "chromosome"}
        if not need <= set(genes.columns):
            raise InputError(f"{src}: needs columns 'gene', 'chromosome' (and 'start', "
                             f"'end' for the distance filter); found {preview(genes.columns)}")
        g = genes.drop_duplicates("gene").set_index("gene")
        key = out["gene"].where(out["gene"].isin(g.index), out["gene_name"])
        if not key.isin(g.index).all():
            missing = out.loc[~key.isin(g.index), "gene"]
            raise InputError(f"{src}: no row for {len(missing)} gene(s) with models, e.g. "
                             f"{preview(missing)}; add them (by id or symbol)")
        for c in ("chromosome", "start", "end"):
            out[c] = g[c].reindex(key).to_numpy() if c in g else np.nan
        out["chromosome"] = out["chromosome"].astype(str).str.replace("^chr", "", regex=True)
        return out
    chrom = weights.assign(c=weights["snp"].astype(str).str.extract(_VARID_CHR)[0])
    by = chrom.dropna(subset=["c"]).groupby("gene")["c"].first()
    out["chromosome"] = by.reindex(out["gene"]).fillna("all").to_numpy()
    out["start"] = np.nan
    out["end"] = np.nan
    return out


def _pd_repair(block: np.ndarray, repair: str | None, min_eigenvalue: float) -> tuple:
    lam = np.linalg.eigvalsh(block)
    before = float(lam[0]) if lam.size else np.nan
    if not lam.size or before >= min_eigenvalue or repair is None:
        return block, before, before, 0.0, 0.0
    if repair == "clip":
        val, vec = np.linalg.eigh(block)
        fixed = (vec * np.maximum(val, min_eigenvalue)) @ vec.T
        d = np.sqrt(np.diag(fixed))
        fixed = fixed / d[:, None] / d[None, :]
    elif repair == "corr_nearest":
        import warnings

        from statsmodels.stats.correlation_tools import corr_nearest

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fixed = corr_nearest(block, threshold=min_eigenvalue, n_fact=100)
        if caught:
            log.warning("corr_nearest: %s", caught[-1].message)
    else:
        raise InputError(f"unknown positive-definiteness repair {repair!r}: use 'clip', "
                         "'corr_nearest' or None")
    fixed = (fixed + fixed.T) / 2
    np.fill_diagonal(fixed, 1.0)
    diff = fixed - block
    after = float(np.linalg.eigvalsh(fixed)[0])
    return fixed, before, after, float(np.linalg.norm(diff)), float(np.abs(diff).max())


def _distance_mask(g: pd.DataFrame, within_mb: float) -> np.ndarray:
    if g["start"].isna().any() or g["end"].isna().any():
        raise InputError("the distance filter needs gene positions: pass a gene table with "
                         "'start' and 'end' (base pairs) for every gene")
    half = within_mb * 1e6 / 2
    lo = g["start"].to_numpy(float) - half
    hi = g["end"].to_numpy(float) + half
    return (lo[:, None] <= hi[None, :]) & (lo[None, :] <= hi[:, None])


# --------------------------------------------------------------------- main
def gene_correlations(models: Mapping[str, ModelDB], covariance: CovarianceBlocks, *,
                      snps: Iterable | None = None, genes: pd.DataFrame | None = None,
                      condition_number: float = 30.0, within_mb: float | None = None,
                      repair: str | None = "clip", min_eigenvalue: float = 1e-8,
                      backend: Backend | str | None = None, progress: bool = False,
                      client=None, kernel: str | None = None) -> GeneCorrelation:
    """The gene–gene correlation matrix (see the module docstring).

    ``models``: tissue → model. ``covariance``: the LD reference (SNP covariance blocks of any
    grouping, e.g. per gene or per LD region; pairs of SNPs never in a common block count as
    uncorrelated). ``snps``: the SNP set (e.g. the GWAS's SNPs); None: all. ``genes``: table
    with ``gene`` (id or symbol), ``chromosome`` and, for ``within_mb``, ``start``/``end``;
    without it chromosomes come from ``varID`` keys (``chr1_…``) or all genes form one group.
    ``client``: a Dask client; chromosomes then run as Dask tasks (the LD matrix is broadcast
    once). Results are identical with and without it.
    """
    be = get_backend(backend)
    if not condition_number > 0:
        raise InputError("condition_number must be positive (the reference uses 30)")
    keep = None if snps is None else pd.Index(pd.unique(np.asarray(list(snps), dtype=object)))
    ids, LD = sparse_ld(covariance, keep)
    sindex = pd.Index(ids)
    parts = []
    for tissue, m in sorted(models.items()):
        if m.empty:
            continue
        w = m.weights[["gene", "snp", "weight"]]
        w = w.loc[sindex.get_indexer(w["snp"]) >= 0]
        parts.append(w.assign(tissue=tissue))
    W = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if W.empty:
        raise InputError("gene correlations: no model SNP is in the LD reference ∩ the SNP set "
                         "(check the SNP key: rsid vs varID)")
    names = pd.concat([m.extra.set_index("gene")["gene_name"] for m in models.values()])
    names = names[~names.index.duplicated()]
    # per gene: the union of its SNPs, as one pseudo-block for the within-gene Gram matrix
    W["col_key"] = W["gene"] + "\x00" + W["tissue"]
    gene_ids = np.sort(W["gene"].unique())
    W["gi"] = pd.Index(gene_ids).get_indexer(W["gene"])
    W = W.sort_values(["gi", "tissue"], kind="mergesort")
    W["col"] = W.groupby("gi", sort=False)["tissue"].transform(
        lambda s: pd.factorize(s)[0]).astype(np.int64)
    W["s"] = sindex.get_indexer(W["snp"])
    per_gene = _within_gene(W, LD, condition_number, be, kernel)
    # whitened weights Ŵ: one column per kept component
    A_rows, A_cols, A_vals = [], [], []
    kept = np.zeros(len(gene_ids), np.int64)
    n_t = np.zeros(len(gene_ids), np.int64)
    offs = 0
    comp_start = np.zeros(len(gene_ids), np.int64)
    for gi, (Wg_snp, Wg_col, Wg_w, n_ok, A) in enumerate(per_gene):
        comp_start[gi] = offs
        if A is None:
            continue
        # Ŵ_g = W_g · Aᵀ (SNPs × k_g); A already holds D^−½
        uniq, inv = np.unique(Wg_snp, return_inverse=True)
        Wd = np.zeros((uniq.size, A.shape[1]))
        Wd[inv, Wg_col] = Wg_w
        H = Wd @ A.T  # SNPs × k
        rr, cc = np.nonzero(H)
        A_rows.append(uniq[rr])
        A_cols.append(offs + cc)
        A_vals.append(H[rr, cc])
        kept[gi] = A.shape[0]
        n_t[gi] = n_ok
        offs += A.shape[0]
    gtab = _gene_table(list(gene_ids), names, genes, W)
    gtab["n_tissues"] = n_t
    gtab["k"] = kept
    usable = kept > 0
    if not usable.any():
        raise InputError("gene correlations: no gene has a tissue model with SNPs in the LD "
                         "reference")
    Wh = sp.csc_matrix((np.concatenate(A_vals), (np.concatenate(A_rows), np.concatenate(A_cols))),
                       shape=(len(ids), int(offs)))
    comp_gene = np.repeat(np.arange(len(gene_ids)), kept)
    gtab = gtab.loc[usable].copy()
    gtab["_gi"] = np.flatnonzero(usable)
    gtab["_start"] = pd.to_numeric(gtab["start"], errors="coerce")
    gtab = gtab.sort_values(["chromosome", "_start", "gene"], kind="mergesort",
                            key=lambda s: s.map(_chrom_key) if s.name == "chromosome" else s)
    order_of_gi = np.full(len(gene_ids), -1, np.int64)
    order_of_gi[gtab["_gi"].to_numpy()] = np.arange(len(gtab))
    n_out = len(gtab)
    tasks = []
    for chrom, grp in gtab.groupby("chromosome", sort=False):
        gis = grp["_gi"].to_numpy()
        cols = np.concatenate([np.arange(comp_start[g], comp_start[g] + kept[g]) for g in gis])
        cg = order_of_gi[comp_gene[cols]]
        pos = grp[["start", "end"]] if within_mb is not None else None
        tasks.append((chrom, Wh[:, cols].tocsc(), cg - cg.min(), kept[gis], pos))
    out = map_tasks(_chromosome, tasks, client=client, progress=progress,
                    description="gene correlations",
                    shared={"LD": LD, "repair": repair, "min_eigenvalue": min_eigenvalue,
                            "within_mb": within_mb, "backend": be.name})
    blocks, reports = [], []
    for (_chrom, grp), (R, rep) in zip(gtab.groupby("chromosome", sort=False), out):
        blocks.append((int(order_of_gi[grp["_gi"].to_numpy()].min()), sp.coo_matrix(R)))
        reports.append(rep)
    rows = np.concatenate([b.row + f for f, b in blocks])
    cols = np.concatenate([b.col + f for f, b in blocks])
    data = np.concatenate([b.data for f, b in blocks])
    M = sp.csr_matrix((data, (rows, cols)), shape=(n_out, n_out))
    out_genes = gtab.drop(columns=["_gi", "_start"]).reset_index(drop=True)
    params = {"condition_number": condition_number, "within_mb": within_mb, "repair": repair,
              "min_eigenvalue": min_eigenvalue, "snps_in_ld": int(len(ids))}
    return GeneCorrelation(M, out_genes, pd.DataFrame(reports), params)


def _chromosome(chrom, Wc, local, kept, positions, *, LD, repair, min_eigenvalue, within_mb,
                backend):
    """One chromosome: T = ŴᵀΓŴ, r_ij = block sums of T² / √(k_i k_j), the positive-
    definiteness check/repair and the distance filter. Returns (dense R, report row)."""
    be = get_backend(backend)
    T = be.sandwich(Wc, LD)
    ng = len(kept)
    R = sp.coo_matrix((T.data ** 2, (local[T.row], local[T.col])), shape=(ng, ng)).toarray()
    kk = np.asarray(kept, float)
    R /= np.sqrt(np.outer(kk, kk))
    R = (R + R.T) / 2
    np.fill_diagonal(R, 1.0)
    rep = {"chromosome": chrom, "genes": ng}
    R, b, a, fro, mx = _pd_repair(R, repair, min_eigenvalue)
    rep.update(min_eig_before=b, min_eig_after=a, frobenius_change=fro, max_abs_change=mx)
    if within_mb is not None:
        R = np.where(_distance_mask(positions, within_mb), R, 0.0)
        R, b, a, fro, mx = _pd_repair(R, repair, min_eigenvalue)
        rep.update(filtered_min_eig_before=b, filtered_min_eig_after=a,
                   filtered_frobenius_change=fro, filtered_max_abs_change=mx)
    return R, rep


def _chrom_key(c):
    c = str(c)
    return (0, int(c), "") if c.isdigit() else (1, 0, c)


def _within_gene(W: pd.DataFrame, LD: sp.csr_matrix, condition_number: float, be, kernel):
    """Per gene: (SNP codes, usable-tissue column, weight, usable tissues, A = diag(s^−½)Vᵀ[:k]D^−½)."""
    groups = [g for _, g in W.groupby("gi", sort=True)]
    pseudo = gene_blocks(LD, [g["s"].to_numpy() for g in groups])
    rows = np.concatenate([pseudo.snp_off[i] + np.searchsorted(
        pseudo.snps[pseudo.snp_off[i]:pseudo.snp_off[i + 1]], g["s"].to_numpy())
        for i, g in enumerate(groups)])
    colsv = np.concatenate([g["col"].to_numpy() for g in groups])
    m = np.array([int(g["col"].max()) + 1 for g in groups], np.int64)
    Gs = gram(pseudo, np.arange(len(groups)), rows, colsv,
              np.concatenate([g["weight"].to_numpy() for g in groups]), m, backend=be,
              kernel=kernel)
    out = []
    for g, G in zip(groups, Gs):
        var = np.diag(G).copy()
        ok = var > 0
        if not ok.any():
            out.append((None, None, None, 0, None))
            continue
        remap = np.cumsum(ok) - 1
        sel = ok[g["col"].to_numpy()]
        d = np.sqrt(var[ok])
        C = G[np.ix_(ok, ok)] / d[:, None] / d[None, :]
        _, s, Vt = np.linalg.svd(C)
        k = max(1, int((s >= s[0] / condition_number).sum()))
        A = (Vt[:k] / np.sqrt(s[:k])[:, None]) / d[None, :]
        out.append((g["s"].to_numpy()[sel], remap[g["col"].to_numpy()[sel]],
                    g["weight"].to_numpy()[sel], int(ok.sum()), A))
    return out



class PairwiseReference:
    """The definition, one gene pair at a time — the reference's algorithm (slow; tests and
    ``bench/``). Construction indexes the weights and the LD (setup); :meth:`gene` computes
    and caches a gene's tissue SVD; :meth:`pair` computes r_ij for one pair."""

    def __init__(self, models: Mapping[str, ModelDB], covariance: CovarianceBlocks, *,
                 snps: Iterable | None = None, condition_number: float = 30.0):
        keep = None if snps is None else pd.Index(pd.unique(np.asarray(list(snps),
                                                                        dtype=object)))
        ids, self.LD = sparse_ld(covariance, keep)
        sindex = pd.Index(ids)
        self.c = condition_number
        self.by_gene: dict[str, dict[str, pd.Series]] = {}
        for tissue, m in sorted(models.items()):
            for gene, w in m.weights.groupby("gene", sort=False):
                code = sindex.get_indexer(w["snp"])
                if (code >= 0).any():
                    self.by_gene.setdefault(gene, {})[tissue] = pd.Series(
                        w["weight"].to_numpy()[code >= 0], index=code[code >= 0])
        self.svd: dict[str, tuple | None] = {}

    def vectors(self, gene, snp_union) -> np.ndarray:
        """SNPs × tissues weight matrix of ``gene`` over ``snp_union`` (tissues by name)."""
        pos = {s: i for i, s in enumerate(snp_union)}
        out = []
        for tissue in sorted(self.by_gene[gene]):
            v = np.zeros(len(snp_union))
            ser = self.by_gene[gene][tissue]
            v[[pos[s] for s in ser.index]] = ser.to_numpy()
            out.append(v)
        return np.array(out).T

    def gene(self, gene):
        """(SNP union, usable tissues, variances, kept singular values, kept Vᵀ rows)."""
        if gene not in self.svd:
            u = np.unique(np.concatenate([x.index.to_numpy()
                                          for x in self.by_gene[gene].values()]))
            Wg = self.vectors(gene, u)
            G = Wg.T @ self.LD[u][:, u].toarray() @ Wg
            var = np.diag(G)
            ok = var > 0
            if not ok.any():
                self.svd[gene] = None
            else:
                C = G[np.ix_(ok, ok)] / np.sqrt(np.outer(var[ok], var[ok]))
                _, s_, Vt = np.linalg.svd(C)
                k = max(1, int((s_ >= s_[0] / self.c).sum()))
                self.svd[gene] = (u, ok, var, s_[:k], Vt[:k])
        return self.svd[gene]

    def pair(self, a, b) -> float:
        ua, oka, vara, sa, Va = self.gene(a)
        ub, okb, varb, sb, Vb = self.gene(b)
        Wa = self.vectors(a, ua)[:, oka]
        Wb = self.vectors(b, ub)[:, okb]
        Cab = (Wa.T @ self.LD[ua][:, ub].toarray() @ Wb) / np.sqrt(np.outer(vara[oka],
                                                                             varb[okb]))
        T = np.diag(sa ** -0.5) @ Va @ Cab @ Vb.T @ np.diag(sb ** -0.5)
        return float((T ** 2).sum() / np.sqrt(sa.size * sb.size))


def pairwise_reference(models: Mapping[str, ModelDB], covariance: CovarianceBlocks, *,
                       snps: Iterable | None = None, condition_number: float = 30.0,
                       chromosome: Mapping[str, str] | None = None,
                       pairs: Iterable[tuple[str, str]] | None = None) -> pd.DataFrame:
    """r_ij by :class:`PairwiseReference` for every pair of genes on the same chromosome
    (``chromosome``: gene → chromosome; None: all one group), or only for ``pairs``. No
    positive-definiteness repair. A dense frame over the genes with a usable tissue, sorted."""
    ref = PairwiseReference(models, covariance, snps=snps, condition_number=condition_number)
    genes = sorted(g for g in ref.by_gene if ref.gene(g) is not None)
    out = pd.DataFrame(np.eye(len(genes)), index=genes, columns=genes)
    todo = pairs if pairs is not None else [
        (a, b) for i, a in enumerate(genes) for b in genes[i + 1:]
        if chromosome is None or chromosome.get(a) == chromosome.get(b)]
    for a, b in todo:
        out.loc[a, b] = out.loc[b, a] = ref.pair(a, b)
    return out
