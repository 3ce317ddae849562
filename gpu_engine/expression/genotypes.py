"""Genotypes for expression models: readers, the SNP filters of PredictDB and cis windows.

A :class:`Genotypes` holds dosages (samples × SNPs, float64, the count of the **effect
allele** in [0, 2], NaN where missing) and a SNP table with columns ``snp`` (rsid), ``varID``
(``chr_pos_ref_alt``), ``chromosome`` (text, no ``chr`` prefix), ``position`` (int),
``ref_allele`` and ``eff_allele``.

Readers: PLINK 1 ``.bed/.bim/.fam`` through ``bed-reader`` — the dosage counts the ``.bim``'s
fifth column (A1), which therefore becomes ``eff_allele``, and the sixth (A2) ``ref_allele``;
GTEx-style dosage text (first column ``Id`` = ``chr_pos_ref_alt[_b37]``, one column per
sample; the effect allele is ``alt``); and Parquet (a SNP-table part and a dosage part, as
:meth:`Genotypes.save` writes).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, InputFileNotFoundError, preview
from ..io.reading import reading

SNP_COLUMNS = ("snp", "varID", "chromosome", "position", "ref_allele", "eff_allele")
AMBIGUOUS = {("A", "T"), ("T", "A"), ("C", "G"), ("G", "C")}


@dataclass
class Genotypes:
    """``dosages``: samples × SNPs float64 (NaN = missing); ``samples``: their ids;
    ``snps``: the SNP table (see the module docstring), one row per dosage column."""

    dosages: np.ndarray
    samples: pd.Index
    snps: pd.DataFrame
    source: str = "genotypes"

    def __post_init__(self):
        self.samples = pd.Index(self.samples, name="sample").astype(str)
        n, p = self.dosages.shape
        if n != len(self.samples) or p != len(self.snps):
            raise InputError(f"{self.source}: {n} × {p} dosages for {len(self.samples)} samples "
                             f"and {len(self.snps)} SNPs")
        if self.samples.has_duplicates:
            raise InputError(f"{self.source}: duplicated sample id(s) "
                             f"{preview(self.samples[self.samples.duplicated()].unique())}; "
                             "make them unique")
        ids = self.snps["varID"]
        if ids.duplicated().any():
            raise InputError(f"{self.source}: duplicated SNP id(s) "
                             f"{preview(ids[ids.duplicated()].unique())}; keep one row each")

    @property
    def n_samples(self) -> int:
        return self.dosages.shape[0]

    def subset(self, samples=None, snps=None) -> Genotypes:
        """A copy restricted to ``samples`` (ids, in that order) and ``snps`` (positions)."""
        rows = slice(None) if samples is None else self.samples.get_indexer(pd.Index(samples))
        if samples is not None and (rows < 0).any():
            missing = pd.Index(samples)[rows < 0]
            raise InputError(f"{self.source}: no genotypes for sample(s) {preview(missing)}")
        cols = slice(None) if snps is None else np.asarray(snps)
        return Genotypes(self.dosages[rows][:, cols], self.samples[rows] if samples is not None
                         else self.samples, self.snps.iloc[cols].reset_index(drop=True),
                         self.source)

    def save(self, path) -> Path:
        """Parquet: ``<path>/snps.parquet`` and ``<path>/dosages.parquet`` (samples × varID)."""
        from ..io import atomic_dir

        path = Path(path)
        with atomic_dir(path) as tmp:
            self.snps.to_parquet(tmp / "snps.parquet", index=False)
            pd.DataFrame(self.dosages, index=self.samples,
                         columns=self.snps["varID"]).to_parquet(tmp / "dosages.parquet")
        return path


def _snp_table(rsid, chromosome, position, ref, eff) -> pd.DataFrame:
    chrom = pd.Series(np.asarray(chromosome).astype(str)).str.replace("^chr", "", regex=True)
    pos = np.asarray(position).astype(np.int64)
    ref = pd.Series(np.asarray(ref).astype(str)).str.upper()
    eff = pd.Series(np.asarray(eff).astype(str)).str.upper()
    return pd.DataFrame({"snp": np.asarray(rsid).astype(str),
                         "varID": chrom + "_" + pd.Series(pos).astype(str) + "_" + ref + "_" + eff,
                         "chromosome": chrom, "position": pos, "ref_allele": ref,
                         "eff_allele": eff})


def read_plink(prefix: str | os.PathLike) -> Genotypes:
    """PLINK 1 binary genotypes (``prefix.bed/.bim/.fam``). Dosage = count of A1 (the
    ``.bim``'s 5th column) = ``eff_allele``; A2 = ``ref_allele``; missing calls → NaN.
    Samples are the ``.fam``'s individual ids (column 2)."""
    prefix = Path(str(prefix).removesuffix(".bed"))
    for ext in (".bed", ".bim", ".fam"):
        if not prefix.with_name(prefix.name + ext).exists():
            raise InputFileNotFoundError(f"PLINK genotypes: {prefix}{ext} not found (give the "
                                         "path without .bed; .bed, .bim and .fam must exist)")
    from bed_reader import open_bed

    bed = prefix.with_name(prefix.name + ".bed")
    with reading(bed, "PLINK genotypes"):
        try:
            with open_bed(bed, count_A1=True) as b:
                X = b.read(dtype="float64")
                snps = _snp_table(b.sid, b.chromosome, b.bp_position, b.allele_2, b.allele_1)
                samples = b.iid
        except (ValueError, RuntimeError) as exc:
            raise InputError(f"PLINK genotypes {bed}: could not be read ({exc}); check that the "
                             ".bed/.bim/.fam files belong together") from None
    return Genotypes(X, samples, snps, source=str(bed))


def read_dosage_text(path: str | os.PathLike, *, rsids: pd.DataFrame | None = None) -> Genotypes:
    """GTEx-style dosage text: first column ``Id`` (``chr_pos_ref_alt[_b37|_b38]``), then one
    column per sample; ``NA`` = missing. ``rsids``: optional table ``varID, rsid`` (a GTEx
    lookup) giving the SNPs' rsids (otherwise the varID is used as the id)."""
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"dosage file not found: {path} (check the path)")
    with reading(path, "dosage file"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as fh:
            df = pd.read_csv(fh, sep=r"\s+", na_values=["NA", "."])
    if df.empty or df.shape[1] < 2:
        raise InputError(f"dosage file {path}: no samples or no variants")
    ids = df.iloc[:, 0].astype(str)
    parts = ids.str.split("_", expand=True)
    if parts.shape[1] < 4:
        raise InputError(f"dosage file {path}: the first column must hold chr_pos_ref_alt ids, "
                         f"got e.g. {preview(ids[:3])}")
    rsid = ids.str.replace(r"_b3[78]$", "", regex=True)
    if rsids is not None:
        lookup = rsids.set_index(rsids.columns[0])[rsids.columns[1]]
        rsid = ids.map(lookup).fillna(rsid)
    X = df.iloc[:, 1:].to_numpy(np.float64).T
    snps = _snp_table(rsid, parts[0], pd.to_numeric(parts[1], errors="raise"), parts[2], parts[3])
    return Genotypes(X, df.columns[1:], snps, source=str(path))


def read_genotypes(path: str | os.PathLike) -> Genotypes:
    """Any supported genotype input: a PLINK prefix (or ``.bed``), GTEx-style dosage text
    (``.txt``/``.txt.gz``) or a Parquet folder written by :meth:`Genotypes.save`."""
    path = Path(path)
    if path.suffix == ".bed" or path.with_name(path.name + ".bed").exists():
        return read_plink(path)
    if path.is_dir() and (path / "snps.parquet").exists():
        with reading(path, "genotype folder"):
            snps = pd.read_parquet(path / "snps.parquet")
            d = pd.read_parquet(path / "dosages.parquet")
        return Genotypes(d.to_numpy(np.float64), d.index, snps, source=str(path))
    if path.exists():
        return read_dosage_text(path)
    raise InputFileNotFoundError(f"genotypes not found: {path} (a PLINK prefix, a dosage text "
                                 "file or a genotype folder)")


# ----------------------------------------------------------------------------- filters
def snp_filter(snps: pd.DataFrame, dosages: np.ndarray, *, maf: float = 0.01,
               maf_filter: str = "min") -> tuple[np.ndarray, dict]:
    """PredictDB's SNP filters: biallelic SNVs (single-base alleles), not strand-ambiguous
    (A/T, C/G), with an rsid, not monomorphic; and the MAF rule — ``"min"`` keeps
    min(EAF, 1 − EAF) ≥ ``maf``, ``"reference"`` reproduces the GTEx v7 script's
    ``EAF ≥ maf or EAF ≤ 1 − maf`` (which keeps almost everything). Returns (a boolean mask
    over SNPs, counts of what each rule dropped)."""
    if maf_filter not in ("min", "reference"):
        raise InputError(f"maf_filter must be 'min' or 'reference', not {maf_filter!r}")
    ref, eff = snps["ref_allele"].to_numpy(), snps["eff_allele"].to_numpy()
    snv = (pd.Series(ref).str.fullmatch("[ACGT]") & pd.Series(eff).str.fullmatch("[ACGT]")
           ).to_numpy()
    ambiguous = np.array([(a, b) in AMBIGUOUS for a, b in zip(ref, eff)], bool)
    has_rsid = snps["snp"].astype(str).str.startswith("rs").to_numpy()
    with np.errstate(invalid="ignore"):
        eaf = np.nanmean(dosages, axis=0) / 2 if dosages.shape[0] else np.zeros(len(snps))
        spread = np.nanmax(dosages, axis=0) - np.nanmin(dosages, axis=0) \
            if dosages.shape[0] else np.zeros(len(snps))
    mono = ~(spread > 0)
    ok_maf = (np.minimum(eaf, 1 - eaf) >= maf) if maf_filter == "min" else \
        ((eaf >= maf) | (eaf <= 1 - maf))
    keep = snv & ~ambiguous & has_rsid & ~mono & ok_maf
    counts = {"not_snv": int((~snv).sum()), "ambiguous": int((snv & ambiguous).sum()),
              "no_rsid": int((snv & ~ambiguous & ~has_rsid).sum()),
              "monomorphic": int((snv & ~ambiguous & has_rsid & mono).sum()),
              "maf": int((snv & ~ambiguous & has_rsid & ~mono & ~ok_maf).sum()),
              "kept": int(keep.sum())}
    return keep, counts


def impute_mean(dosages: np.ndarray) -> tuple[np.ndarray, int]:
    """Missing dosages → the SNP's mean over the samples given (PredictDB's convention).
    Returns (a filled copy, number of values filled)."""
    X = np.array(dosages, dtype=np.float64, copy=True)
    bad = np.isnan(X)
    n = int(bad.sum())
    if n:
        means = np.nanmean(np.where(bad.all(0), 0.0, X.T).T, axis=0)
        X[bad] = np.broadcast_to(means, X.shape)[bad]
    return X, n


def cis_windows(snps: pd.DataFrame, genes: pd.DataFrame, window: float = 1e6) -> dict:
    """gene → positions (int array, in SNP-table order) of the SNPs with
    start − window ≤ position ≤ end + window on the gene's chromosome (PredictDB: gene start
    and end from the annotation, not TSS-centred). ``genes``: columns gene, chromosome,
    start, end."""
    need = {"gene", "chromosome", "start", "end"}
    if not need <= set(genes.columns):
        raise InputError(f"gene table: needs columns {sorted(need)}; found "
                         f"{preview(genes.columns)}")
    chrom = snps["chromosome"].astype(str).to_numpy()
    pos = snps["position"].to_numpy()
    out = {}
    by_chrom = {c: np.flatnonzero(chrom == c) for c in np.unique(chrom)}
    for g, c, s, e in genes[["gene", "chromosome", "start", "end"]].itertuples(index=False):
        c = str(c).removeprefix("chr")
        rows = by_chrom.get(c, np.zeros(0, np.int64))
        sel = rows[(pos[rows] >= s - window) & (pos[rows] <= e + window)]
        out[str(g)] = sel
    return out
