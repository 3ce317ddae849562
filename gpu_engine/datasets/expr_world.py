"""A synthetic genotype → expression world with planted architectures (spec
``dl_expression.md`` §6), deterministic by seed.

Genotypes: per gene a cis window of p SNPs on its own stretch of a chromosome; haplotypes from
a latent AR(1) Gaussian along the SNPs (ρ = 0.9 within LD blocks of 20–200 SNPs, independent
between blocks) thresholded at per-SNP allele frequencies f ~ U(0.05, 0.5); dosage = the sum
of two haplotypes. Or (``real_genotypes``) the dosages of a real PLINK panel, windows drawn
from its SNPs.

Architectures (genetic value g standardised; y = √h²·g + √(1 − h²)·ε, then standardised):
``additive`` (k ∈ {1, 3, 10} causal SNPs, effects N(0, 1)), ``dominance`` (Σβ·1[x ≥ 1]),
``recessive`` (Σβ·1[x = 2]), ``epistasis`` ((x_a − x̄_a)(x_b − x̄_b), a and b in different LD
blocks: no additive effect by construction), ``mixed`` (additive + epistatic, equal variance),
``null`` (h² = 0), ``annotated`` (additive, the causal SNPs drawn with probability
∝ exp(aᵀγ*) from the SNPs' annotation rows a: :data:`N_ANNOTATIONS` simulated annotations —
binary with frequencies 1–25 % and two continuous — written to ``annotations.parquet`` in
the LDSC baseline layout, z-scored with their expected moments; γ*_1 = γ*_2 = 2 on two
binary ones, the others 0).

Written: ``genotypes.{bed,bim,fam}`` (PLINK; A1 = the effect allele counted), ``expression.parquet``
(samples × genes, first column ``sample``), ``genes.tsv`` (gene, genename, gene_type,
chromosome, start, end), ``annotations.parquet`` (SNP, CHR, BP, A1, A2, one column per
annotation; every SNP), ``truth/genes.parquet`` (gene, architecture, h2, causal SNPs, effects,
the oracle test r is computable from ``truth/genetic_value.parquet``) and ``world.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ARCHITECTURES = ("additive", "dominance", "recessive", "epistasis", "mixed", "null")
N_ANNOTATIONS = 10
INFORMATIVE = ("ann1", "ann2")  # γ* = 2 on these (binary), 0 elsewhere
GAMMA_STAR = 2.0


def _annotations(rng, p: int, freq: np.ndarray) -> np.ndarray:
    """p × K annotation rows: K − 2 binary (frequencies ``freq``) and 2 continuous N(0, 1),
    each z-scored with its expected mean and sd."""
    B = (rng.random((p, freq.size)) < freq).astype(float)
    B = (B - freq) / np.sqrt(freq * (1 - freq))
    return np.column_stack([B, rng.normal(size=(p, 2))])


@dataclass
class ExprWorld:
    """Paths and tables of a written world."""

    path: Path
    genes: pd.DataFrame
    truth: pd.DataFrame

    @property
    def genotypes(self) -> Path:
        """The PLINK prefix of the world's genotypes."""
        return Path(json.loads((self.path / "world.json").read_text())["genotypes"])

    def expression(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "expression.parquet").set_index("sample")

    def genetic_value(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "truth" / "genetic_value.parquet").set_index("sample")

    def gwas(self, trait_genes, *, noise: float = 2.0, seed: int = 0) -> pd.DataFrame:
        """Summary statistics of a trait driven by ``trait_genes``' genetic values (summed,
        scaled to unit variance, plus N(0, noise²)) on the world's own genotypes: per SNP the
        marginal correlation's z = r·√n, with ``beta = z/√n``, ``se = 1/√n`` (standardised
        units). Columns ``SNP, A1`` (effect allele: the counted one), ``A2, BETA, SE,
        ZSCORE``."""
        from ..expression import read_plink

        gv = self.genetic_value()
        T = gv[list(trait_genes)].sum(axis=1).to_numpy()
        T = T / T.std() + np.random.default_rng(seed).normal(scale=noise, size=len(T))
        G = read_plink(self.genotypes)
        Xc, Tc = G.dosages - G.dosages.mean(0), T - T.mean()
        n = len(T)
        z = (Xc.T @ Tc) / np.sqrt((Xc * Xc).sum(0) * (Tc @ Tc)) * np.sqrt(n)
        return pd.DataFrame({"SNP": G.snps["snp"].to_numpy(),
                             "A1": G.snps["eff_allele"].to_numpy(),
                             "A2": G.snps["ref_allele"].to_numpy(),
                             "BETA": z / np.sqrt(n), "SE": 1 / np.sqrt(n), "ZSCORE": z})


def _haplotypes(rng, n_hap: int, p: int) -> np.ndarray:
    """n_hap × p 0/1 haplotypes with block LD (AR(1) latent Gaussian, ρ = 0.9 in blocks)."""
    Z = np.empty((n_hap, p))
    j = 0
    while j < p:
        size = int(rng.integers(20, 201))
        e = rng.normal(size=(n_hap, min(size, p - j)))
        for t in range(1, e.shape[1]):
            e[:, t] = 0.9 * e[:, t - 1] + np.sqrt(1 - 0.81) * e[:, t]
        Z[:, j:j + e.shape[1]] = e
        j += e.shape[1]
    from scipy.stats import norm

    f = rng.uniform(0.05, 0.5, p)
    return (Z < norm.ppf(f)).astype(np.int8)


def _blocks_of(X: np.ndarray) -> np.ndarray:
    """A crude LD-block label per SNP (|r| with the previous SNP < 0.2 starts a block)."""
    Xc = X - X.mean(0)
    sd = Xc.std(0) + 1e-12
    r = (Xc[:, 1:] * Xc[:, :-1]).mean(0) / (sd[1:] * sd[:-1])
    return np.concatenate([[0], np.cumsum(np.abs(r) < 0.2)])


def _genetic_value(rng, X: np.ndarray, arch: str, k: int, ann=None, gamma=None):
    poly = np.flatnonzero(X.std(0) > 0)
    if arch == "null":
        return np.zeros(X.shape[0]), [], []
    if arch in ("additive", "dominance", "recessive", "annotated"):
        prob = None
        if arch == "annotated":
            e = np.exp(ann[poly] @ gamma)
            prob = e / e.sum()
        causal = rng.choice(poly, size=min(k, poly.size), replace=False, p=prob)
        beta = rng.normal(size=causal.size)
        F = X[:, causal]
        F = F if arch in ("additive", "annotated") else (F >= 1) if arch == "dominance" else (F == 2)
        return F.astype(float) @ beta, causal.tolist(), beta.tolist()
    blocks = _blocks_of(X)
    a = int(rng.choice(poly))
    others = poly[blocks[poly] != blocks[a]]
    b = int(rng.choice(others if others.size else poly))
    epi = (X[:, a] - X[:, a].mean()) * (X[:, b] - X[:, b].mean())
    if arch == "epistasis":
        return epi, [a, b], [1.0]
    add_snps = rng.choice(poly, size=min(k, poly.size), replace=False)
    add = X[:, add_snps] @ rng.normal(size=add_snps.size)
    z = lambda v: (v - v.mean()) / (v.std() + 1e-300)
    return z(add) + z(epi), [*add_snps.tolist(), a, b], [1.0]


def generate_expr_world(out, *, n_samples: int = 400, genes_per_architecture: int = 4,
                        architectures=ARCHITECTURES, p_range=(100, 400), h2=(0.3,),
                        k_causal=(1, 3), seed: int = 0, real_genotypes=None,
                        overwrite: bool = False) -> ExprWorld:
    """Write a world to ``out`` (see the module docstring) and return it.

    ``real_genotypes``: a PLINK prefix; its samples and SNPs are used (windows of p SNPs
    drawn from its chromosomes, p capped by what a chromosome has) instead of simulated ones.
    """
    from bed_reader import to_bed

    from ..io import atomic_dir

    rng = np.random.default_rng(seed)
    out = Path(out)
    real = None
    if real_genotypes is not None:
        from ..expression.genotypes import impute_mean, read_plink

        real = read_plink(real_genotypes)
        real.dosages = impute_mean(real.dosages)[0]
        n_samples = real.n_samples
    samples = [f"S{i:04d}" for i in range(n_samples)] if real is None else list(real.samples)
    # annotations from their own stream, so that worlds without them are unchanged
    arng = np.random.default_rng([seed, 7])
    freq = arng.uniform(0.01, 0.25, N_ANNOTATIONS - 2)
    freq[:2] = (0.10, 0.15)  # the informative ones: common enough to learn from
    gamma = np.zeros(N_ANNOTATIONS)
    gamma[:2] = GAMMA_STAR
    ann_rows = []
    ann_real = None if real is None else _annotations(arng, len(real.snps), freq)
    blocks, snp_rows, gene_rows, truth_rows, gv = [], [], [], [], {}
    expr = {}
    offset = {}
    gi = 0
    for arch in architectures:
        for rep in range(genes_per_architecture):
            gene = f"ENSG{90_000_000_000 + gi:011d}.1"
            h = 0.0 if arch == "null" else float(h2[rep % len(h2)])
            k = int(k_causal[rep % len(k_causal)])
            if real is None:
                p = int(rng.integers(p_range[0], p_range[1] + 1))
                H = _haplotypes(rng, 2 * n_samples, p)
                X = (H[:n_samples] + H[n_samples:]).astype(np.float64)
                chrom = str(1 + gi % 22)
                start = offset.get(chrom, 1_000_000)
                pos = start + np.arange(p) * 1_000
                offset[chrom] = int(pos[-1]) + 5_000_000
                ids = [f"rs{900_000_000 + len(snp_rows) + j}" for j in range(p)]
                alleles = rng.choice([("A", "G"), ("C", "T"), ("G", "A"), ("T", "C")], size=p)
                snp_rows += [(chrom, ids[j], int(pos[j]), alleles[j][0], alleles[j][1])
                             for j in range(p)]
                blocks.append(X)
                ann_rows.append(_annotations(arng, p, freq))
                ann = ann_rows[-1]
                g_start, g_end = int(pos[p // 2]), int(pos[p // 2]) + 10_000
            else:
                chrom = str(real.snps["chromosome"].iloc[rng.integers(len(real.snps))])
                on = np.flatnonzero(real.snps["chromosome"].to_numpy() == chrom)
                p = min(int(rng.integers(p_range[0], p_range[1] + 1)), on.size)
                first = int(rng.integers(0, on.size - p + 1))
                cols = on[first:first + p]
                X = real.dosages[:, cols]
                ann = ann_real[cols]
                pos = real.snps["position"].to_numpy()[cols]
                g_start = int(pos[p // 2])
                g_end = g_start + 10_000
                # the window around the gene must hold exactly these SNPs' span
            g, causal, effects = _genetic_value(rng, X, arch, k, ann, gamma)
            g = (g - g.mean()) / g.std() if g.std() > 0 else np.zeros(n_samples)
            y = np.sqrt(h) * g + np.sqrt(1 - h) * rng.normal(size=n_samples)
            y = (y - y.mean()) / y.std(ddof=1)
            expr[gene] = y
            gv[gene] = g
            gene_rows.append((gene, f"EG{gi:04d}", "protein_coding", chrom, g_start, g_end))
            truth_rows.append({"gene": gene, "architecture": arch, "h2": h, "p": p,
                               "k": len(causal), "causal": json.dumps([int(c) for c in causal]),
                               "effects": json.dumps([float(e) for e in effects])})
            gi += 1
    genes = pd.DataFrame(gene_rows, columns=["gene", "genename", "gene_type", "chromosome",
                                             "start", "end"])
    truth = pd.DataFrame(truth_rows)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "truth").mkdir()
        if real is None:
            X = np.concatenate(blocks, axis=1)
            snp = pd.DataFrame(snp_rows, columns=["chromosome", "sid", "bp", "a2", "a1"])
            to_bed(tmp / "genotypes.bed", X.astype(np.float32),
                   properties={"iid": samples, "fid": samples, "sid": snp["sid"].to_numpy(),
                               "chromosome": snp["chromosome"].to_numpy(),
                               "bp_position": snp["bp"].to_numpy(),
                               "allele_1": snp["a1"].to_numpy(),
                               "allele_2": snp["a2"].to_numpy()}, count_A1=True)
            geno = str(out / "genotypes")
            A = np.concatenate(ann_rows)
            ids = snp[["sid", "chromosome", "bp", "a1", "a2"]].to_numpy()
        else:
            geno = str(real_genotypes)
            A = ann_real
            ids = real.snps[["snp", "chromosome", "position", "eff_allele",
                             "ref_allele"]].to_numpy()
        at = pd.DataFrame(ids, columns=["SNP", "CHR", "BP", "A1", "A2"])
        for j in range(N_ANNOTATIONS):
            at[f"ann{j + 1}"] = A[:, j]
        at.to_parquet(tmp / "annotations.parquet", index=False)
        pd.DataFrame(expr, index=pd.Index(samples, name="sample")).reset_index().to_parquet(
            tmp / "expression.parquet", index=False)
        pd.DataFrame(gv, index=pd.Index(samples, name="sample")).reset_index().to_parquet(
            tmp / "truth" / "genetic_value.parquet", index=False)
        genes.to_csv(tmp / "genes.tsv", sep="\t", index=False)
        truth.to_parquet(tmp / "truth" / "genes.parquet", index=False)
        (tmp / "world.json").write_text(json.dumps({
            "kind": "expr_world", "seed": seed, "n_samples": n_samples,
            "genes": len(genes), "architectures": list(architectures), "genotypes": geno,
            "gamma_star": dict(zip([f"ann{j + 1}" for j in range(N_ANNOTATIONS)],
                                   gamma.tolist())),
            "window_note": "cis windows: use window ≥ the span of each gene's SNPs; the "
                           "simulated windows are 1 kb apart and 5 Mb from the next gene"},
            indent=1))
    return ExprWorld(out, genes, truth)
