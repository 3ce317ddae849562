"""Synthetic TWAS inputs in the real formats: PredictDB model databases, SNP covariance files
(per tissue, and a global LD reference), a gene table and GWAS summary statistics.

- SNPs: ``snps_per_gene`` per gene, placed in the gene's window (± ``flank_kb``); genes close
  together interleave their SNPs, so nearby genes share LD. Allele frequency f ~ U(0.05, 0.5);
  dosage variance 2f(1 − f).
- LD: along each chromosome, consecutive SNPs form blocks of ``ld_block`` SNPs with
  correlation exp(−|Δposition| / ``ld_decay_kb``) inside a block (positive semi-definite) and
  0 between blocks: Γ_ij = sd_i sd_j corr_ij.
- Models: each gene has a model in a tissue with probability ``model_fraction``; a model holds
  1–``max_model_snps`` of the gene's SNPs with weights N(0, 0.5²) (MASHR-like small models).
- GWAS: z = N(0, corr) per LD block plus, for causal genes, γ_g times the LD-propagated
  tissue-averaged weight vector (scaled so the gene's S-PrediXcan z is about γ_g).
"""

from __future__ import annotations

import gzip
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..twas.covariance import CovarianceBlocks
from ..twas.models import ModelDB
from .genome import make_genes

_BASES = np.array(list("ACGT"))
_COMPLEMENT_PAIRS = {("A", "T"), ("T", "A"), ("C", "G"), ("G", "C")}


@dataclass
class TwasWorld:
    """In-memory synthetic TWAS inputs; :func:`write_twas_world` writes the real formats."""

    genes: pd.DataFrame        # gene (id), gene_name, chromosome, start, end
    snps: pd.DataFrame         # snp, varID, chromosome, position, eff_allele, ref_allele, sd, block
    models: dict               # tissue → ModelDB
    ld: CovarianceBlocks       # blocks = LD blocks (labels chr<c>_block<k>)
    seed: int = 0

    @property
    def tissues(self) -> list[str]:
        return list(self.models)

    def corr_block(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(SNP row indices into ``snps``, correlation matrix) of LD block ``b``."""
        rows = np.flatnonzero(self.snps["block"].to_numpy() == b)
        pos = self.snps["position"].to_numpy(float)[rows]
        return rows, np.exp(-np.abs(pos[:, None] - pos[None, :]) / (self._decay * 1e3))

    _decay: float = 50.0

    def tissue_covariance(self, tissue: str) -> pd.DataFrame:
        """The tissue's covariance file rows (per gene: its model SNPs, one triangle)."""
        w = self.models[tissue].weights
        idx = pd.Index(self.snps["snp"])
        sd = self.snps["sd"].to_numpy()
        pos = self.snps["position"].to_numpy(float)
        blk = self.snps["block"].to_numpy()
        ids = self.snps["snp"].to_numpy(dtype=object)
        code = idx.get_indexer(w["snp"])
        gene_col = w["gene"].to_numpy(dtype=object)
        order = np.argsort(gene_col, kind="stable")
        bounds = np.flatnonzero(gene_col[order][1:] != gene_col[order][:-1]) + 1
        parts = np.split(order, bounds) if order.size else []
        sizes = np.array([len(p) for p in parts])
        out = []
        for k in np.unique(sizes):  # all genes with k model SNPs at once
            sel = [parts[i] for i in np.flatnonzero(sizes == k)]
            r = code[np.stack(sel)]                                  # genes × k
            r = np.take_along_axis(r, np.argsort(pos[r], axis=1, kind="stable"), 1)
            i, j = np.triu_indices(k)
            a, b = r[:, i].ravel(), r[:, j].ravel()
            val = np.where(blk[a] == blk[b], sd[a] * sd[b] *
                           np.exp(-np.abs(pos[a] - pos[b]) / (self._decay * 1e3)), 0.0)
            genes = np.repeat(gene_col[[p[0] for p in sel]], i.size)
            out.append(pd.DataFrame({"GENE": genes, "RSID1": ids[a], "RSID2": ids[b],
                                     "VALUE": val}))
        if not out:
            return pd.DataFrame(columns=["GENE", "RSID1", "RSID2", "VALUE"])
        # rows of a gene contiguous, genes in first-appearance order of the model
        df = pd.concat(out, ignore_index=True)
        first = {g: n for n, g in enumerate(pd.unique(w["gene"]))}
        return df.iloc[np.argsort(df["GENE"].map(first).to_numpy(), kind="stable")] \
            .reset_index(drop=True)

    def gwas(self, effects: dict | None = None, *, seed: int = 1) -> pd.DataFrame:
        """GWAS summary statistics (``SNP A1 A2 BETA SE P ZSCORE``, A1 the effect allele) over
        every SNP; ``effects``: gene id → γ (the expected S-PrediXcan z, roughly)."""
        rng = np.random.default_rng(seed)
        n = len(self.snps)
        z = np.zeros(n)
        mean = np.zeros(n)
        if effects:
            wsum = {}
            for m in self.models.values():
                for gene, g in m.weights.groupby("gene", sort=False):
                    if gene in effects:
                        wsum.setdefault(gene, []).append(g)
            idx = pd.Index(self.snps["snp"])
            sd = self.snps["sd"].to_numpy()
            for gene, parts in wsum.items():
                w = pd.concat(parts).groupby("snp")["weight"].mean()
                r = idx.get_indexer(w.index)
                v = np.zeros(n)
                v[r] = w.to_numpy() * sd[r]
                lv = np.zeros(n)
                for b in np.unique(self.snps["block"].to_numpy()[r]):
                    rows, C = self.corr_block(b)
                    lv[rows] = C @ v[rows]
                norm = np.sqrt(v @ lv) if v @ lv > 0 else 1.0
                mean += effects[gene] * lv / norm
        for b in np.unique(self.snps["block"].to_numpy()):
            rows, C = self.corr_block(b)
            val, vec = np.linalg.eigh(C)
            z[rows] = vec @ (np.sqrt(np.clip(val, 0, None)) * rng.standard_normal(rows.size))
        z += mean
        se = 1.0 / np.sqrt(self.snps["sd"].to_numpy() ** 2 * 50_000)
        from scipy import stats

        return pd.DataFrame({"SNP": self.snps["snp"], "A1": self.snps["eff_allele"],
                             "A2": self.snps["ref_allele"], "BETA": z * se, "SE": se,
                             "P": 2 * stats.norm.sf(np.abs(z)), "ZSCORE": z})


def make_twas_world(n_genes: int = 300, n_tissues: int = 5, *, snps_per_gene: int = 13,
                    model_fraction: float = 0.6, max_model_snps: int = 5, ld_block: int = 200,
                    ld_decay_kb: float = 50.0, flank_kb: float = 100.0,
                    gene_spacing_mb: float = 0.45, genes: pd.DataFrame | None = None,
                    tissues: list[str] | None = None, seed: int = 0) -> TwasWorld:
    """Build synthetic TWAS inputs (see the module docstring). ``genes``: an existing gene
    table (``gene`` symbol, ``gene_id``, ``chromosome``, ``start``, ``end``), e.g. a world's."""
    from .world import tissue_names

    rng = np.random.default_rng([seed, 7])
    g = genes if genes is not None else make_genes(n_genes, rng, gene_spacing_mb)
    g = g.sort_values(["chromosome", "start"]).reset_index(drop=True)
    n_genes = len(g)
    tissues = tissues or tissue_names(n_tissues)
    # SNPs in each gene's window
    gi = np.repeat(np.arange(n_genes), snps_per_gene)
    lo = g["start"].to_numpy()[gi] - flank_kb * 1e3
    hi = g["end"].to_numpy()[gi] + flank_kb * 1e3
    pos = np.maximum(1, rng.uniform(lo, hi)).astype(np.int64)
    chrom = g["chromosome"].to_numpy()[gi]
    order = np.lexsort((pos, chrom))
    gi, pos, chrom = gi[order], pos[order], chrom[order]
    n = gi.size
    ea = rng.integers(0, 4, n)
    ra = (ea + rng.integers(1, 4, n)) % 4
    # avoid palindromic pairs (A/T, C/G), as curated model SNPs do
    pal = np.array([(a, b) in _COMPLEMENT_PAIRS for a, b in zip(_BASES[ea], _BASES[ra])])
    ra[pal] = (ra[pal] + 1) % 4
    pal = np.array([(a, b) in _COMPLEMENT_PAIRS for a, b in zip(_BASES[ea], _BASES[ra])])
    ra[pal] = (ra[pal] + 1) % 4
    f = rng.uniform(0.05, 0.5, n)
    block = np.zeros(n, np.int64)
    k = 0
    for c in np.unique(chrom):
        rows = np.flatnonzero(chrom == c)
        block[rows] = k + np.arange(rows.size) // ld_block
        k = block[rows].max() + 1
    snps = pd.DataFrame({
        "snp": [f"rs{100000 + i}" for i in range(n)],
        "chromosome": chrom, "position": pos,
        "eff_allele": _BASES[ea], "ref_allele": _BASES[ra], "sd": np.sqrt(2 * f * (1 - f)),
        "block": block, "gene_index": gi})
    snps["varID"] = ("chr" + snps["chromosome"].astype(str) + "_" + snps["position"].astype(str)
                     + "_" + snps["ref_allele"] + "_" + snps["eff_allele"] + "_b38")
    # models
    gene_ids = g["gene_id"].to_numpy() if "gene_id" in g else g["gene"].to_numpy()
    gene_names = g["gene"].to_numpy()
    og = np.argsort(gi, kind="stable")
    by_gene = np.split(og, np.searchsorted(gi[og], np.arange(1, n_genes)))
    models = {}
    for t in tissues:
        has = rng.uniform(size=n_genes) < model_fraction
        rows, genes_w = [], []
        for j in np.flatnonzero(has):
            pool = by_gene[j]
            k = int(rng.integers(1, min(max_model_snps, pool.size) + 1))
            pick = rng.choice(pool, k, replace=False)
            rows.append(pick)
            genes_w.append(np.full(k, j))
        rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        gw = np.concatenate(genes_w) if genes_w else np.zeros(0, np.int64)
        w = pd.DataFrame({"gene": gene_ids[gw], "snp": snps["snp"].to_numpy()[rows],
                          "weight": rng.normal(0, 0.5, rows.size),
                          "eff_allele": snps["eff_allele"].to_numpy()[rows],
                          "ref_allele": snps["ref_allele"].to_numpy()[rows],
                          "varID": snps["varID"].to_numpy()[rows]})
        cnt = w.groupby("gene", sort=False).size()
        extra = pd.DataFrame({"gene": cnt.index, "gene_name": pd.Series(
            gene_names, index=gene_ids).reindex(cnt.index).to_numpy(),
            "n_snps_in_model": cnt.to_numpy(), "pred_perf_r2": rng.uniform(0.01, 0.4, cnt.size),
            "pred_perf_pval": 10 ** -rng.uniform(2, 20, cnt.size), "pred_perf_qval": np.nan})
        models[t] = ModelDB(f"<synthetic {t}>", w, extra, t)
    gtab = pd.DataFrame({"gene": gene_ids, "gene_name": gene_names,
                         "chromosome": g["chromosome"].to_numpy(), "start": g["start"].to_numpy(),
                         "end": g["end"].to_numpy()})
    tw = TwasWorld(gtab, snps, models, ld=None, seed=seed)  # type: ignore[arg-type]
    tw._decay = ld_decay_kb
    tw.ld = _ld_blocks(tw)
    return tw


def _ld_blocks(tw: TwasWorld) -> CovarianceBlocks:
    blk = tw.snps["block"].to_numpy()
    ids = tw.snps["snp"].to_numpy().astype(object)
    sd = tw.snps["sd"].to_numpy()
    bounds = np.flatnonzero(np.diff(blk)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [blk.size]])
    values, sizes, snps, labels = [], [], [], []
    for a, _b in zip(starts, ends):
        rows, C = tw.corr_block(blk[a])
        order = np.argsort(ids[rows])  # blocks hold their SNPs sorted by id
        rows = rows[order]
        C = C[np.ix_(order, order)] * sd[rows][:, None] * sd[rows][None, :]
        values.append(C.ravel())
        sizes.append(rows.size)
        snps.append(ids[rows])
        labels.append(f"chr{tw.snps['chromosome'].iat[a]}_block{blk[a]}")
    sizes = np.asarray(sizes, np.int64)
    snp_off = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes, out=snp_off[1:])
    cov_off = np.zeros(sizes.size, np.int64)
    np.cumsum((sizes * sizes)[:-1], out=cov_off[1:])
    return CovarianceBlocks(genes=np.asarray(labels, dtype=object), snps=np.concatenate(snps),
                            snp_off=snp_off, values=np.concatenate(values), cov_off=cov_off,
                            has_diag=np.ones(int(sizes.sum()), bool), n_in_cov=sizes,
                            source="<synthetic LD>")


def write_model_db(model: ModelDB, path: str | os.PathLike) -> None:
    """Write a PredictDB-schema SQLite database (``weights`` with ``varID``, ``extra``)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    w = model.weights.rename(columns={"snp": "rsid"})
    cols = ["rsid", "gene", "weight", "ref_allele", "eff_allele"] + \
        (["varID"] if "varID" in w else [])
    w[cols].to_sql("weights", con, index=False)
    e = model.extra.rename(columns={"gene_name": "genename", "n_snps_in_model": "n.snps.in.model",
                                    "pred_perf_r2": "pred.perf.R2",
                                    "pred_perf_pval": "pred.perf.pval",
                                    "pred_perf_qval": "pred.perf.qval"})
    e.to_sql("extra", con, index=False)
    con.execute("CREATE INDEX weights_rsid ON weights (rsid)")
    con.execute("CREATE INDEX weights_gene ON weights (gene)")
    con.commit()
    con.close()
    os.replace(tmp, p)


def write_covariance(rows: pd.DataFrame, path: str | os.PathLike, sep: str = " ") -> None:
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with gzip.open(tmp, "wt", compresslevel=1) as fh:
        rows.to_csv(fh, sep=sep, index=False, float_format="%.10g")
    os.replace(tmp, p)


def ld_rows(ld: CovarianceBlocks) -> pd.DataFrame:
    """The global LD reference as covariance-file rows (one triangle per block)."""
    parts = []
    for g in range(len(ld)):
        ids, C = ld.block(ld.genes[g])
        i, j = np.triu_indices(len(ids))
        parts.append(pd.DataFrame({"GENE": ld.genes[g], "RSID1": ids[i], "RSID2": ids[j],
                                   "VALUE": C[i, j]}))
    return pd.concat(parts, ignore_index=True)


def write_twas_world(tw: TwasWorld, out: str | os.PathLike, *, effects: dict | None = None,
                     gwas_seed: int = 1, tissue_covariances: bool = True) -> Path:
    """Write the real-format files under ``out``: ``models/TW_<tissue>.db``,
    ``covariances/TW_<tissue>.txt.gz`` (space-separated), ``ld.txt.gz`` (tab-separated),
    ``genes.tsv``, ``gwas/gwas.tsv.gz`` (``SNP A1 A2 BETA SE P ZSCORE``)."""
    root = Path(out)
    for d in ("models", "covariances", "gwas"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for t, m in tw.models.items():
        write_model_db(m, root / "models" / f"TW_{t}.db")
        if tissue_covariances:
            write_covariance(tw.tissue_covariance(t), root / "covariances" / f"TW_{t}.txt.gz")
    write_covariance(ld_rows(tw.ld), root / "ld.txt.gz", sep="\t")
    tw.genes.to_csv(root / "genes.tsv", sep="\t", index=False)
    gw = tw.gwas(effects, seed=gwas_seed)
    with gzip.open(root / "gwas" / "gwas.tsv.gz", "wt", compresslevel=1) as fh:
        gw.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    return root
