"""DEcode's inputs: regulator binding maps binned along each gene's transcript and promoter
(spec ``decode.md`` §2.1), built from a GTF and per-regulator peak/site BED files.

Regions, per gene (one representative transcript):

- **RNA**: the transcript's exons concatenated in transcript orientation (RNA positions
  1…W); bin b holds positions (100·b, 100·(b+1)], so a gene has ⌈W/100⌉ bins;
- **promoter**: 2,000 bp upstream to 1,000 bp downstream of the TSS, strand-aware, 30 bins
  of 100 bp, bin 0 the most upstream.

A value is the number of distinct bases of the bin covered by at least one peak of the
regulator: the regulator's peaks are merged first (bioframe), so overlapping peaks are not
counted twice. A stranded peak maps to genes on its strand only; an unstranded one (``.``)
to both. Channel 0 is structural: ``exon`` (RNA: the bases the bin has, 100 except the last
bin's W mod 100) and ``mask`` (promoter: 100 in every bin).

Representative transcript: the one tagged ``Ensembl_canonical`` when the GTF has the tag,
else the longest (total exon length), ties broken by transcript id.

The stored format (:class:`BindingMaps`): ``rna.parquet`` and ``promoter.parquet`` (long:
``gene, feature, bin, value``; only non-zero values), ``features.parquet`` (``name, type,
region``; type ∈ mask, TF, RBP, miRNA; channel order = row order within a region) and
``genes.parquet`` (``gene, n_bins, chromosome, strand, transcript``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from ..errors import InputError, InputFileNotFoundError
from ..results import FolderResult, register

BIN = 100
PROMOTER_UPSTREAM = 2000
PROMOTER_DOWNSTREAM = 1000
PROMOTER_BINS = (PROMOTER_UPSTREAM + PROMOTER_DOWNSTREAM) // BIN
MASKS = {"rna": "exon", "promoter": "mask"}
REGION_OF_TYPE = {"TF": "promoter", "RBP": "rna", "miRNA": "rna"}


def _bioframe():
    try:
        import bioframe
    except ImportError:
        raise InputError("building DEcode binding maps needs bioframe: pip install "
                         "'gpu-engine[dl]'") from None
    return bioframe


# ------------------------------------------------------------------------------- reading
def read_gtf_exons(path) -> pd.DataFrame:
    """The exons of a GTF: ``gene, transcript, chrom, start (0-based), end, strand,
    canonical`` (the transcript carries the ``Ensembl_canonical`` tag)."""
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"GTF {path} does not exist")
    cols = ["chrom", "source", "feature", "start", "end", "score", "strand", "frame", "attr"]
    try:
        gtf = pd.read_csv(path, sep="\t", comment="#", header=None, names=cols,
                          dtype={"chrom": str}, low_memory=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"GTF {path}: cannot be read as a 9-column tab-separated file "
                         f"({exc})") from None
    ex = gtf[gtf["feature"] == "exon"].copy()
    if ex.empty:
        raise InputError(f"GTF {path}: no 'exon' lines; DEcode needs the exons of each "
                         "transcript")
    ex["gene"] = ex["attr"].str.extract(r'gene_id "([^"]+)"', expand=False)
    ex["transcript"] = ex["attr"].str.extract(r'transcript_id "([^"]+)"', expand=False)
    bad = ex["gene"].isna() | ex["transcript"].isna()
    if bad.any():
        raise InputError(f"GTF {path}: {int(bad.sum())} exon lines without gene_id or "
                         f"transcript_id (first at data row {int(np.flatnonzero(bad)[0]) + 1})")
    if not ex["strand"].isin(["+", "-"]).all():
        raise InputError(f"GTF {path}: exons must have strand '+' or '-'")
    ex["canonical"] = ex["attr"].str.contains('tag "Ensembl_canonical"', regex=False)
    ex["start"] = ex["start"].astype(np.int64) - 1  # GTF is 1-based, closed
    ex["end"] = ex["end"].astype(np.int64)
    return ex[["gene", "transcript", "chrom", "start", "end", "strand", "canonical"]]


def representative_transcripts(exons: pd.DataFrame) -> pd.DataFrame:
    """One transcript per gene (see the module docstring): its exons, in transcript order,
    with ``offset`` (RNA bases before the exon)."""
    ex = exons.assign(length=exons["end"] - exons["start"])
    tx = ex.groupby(["gene", "transcript"], sort=True).agg(
        length=("length", "sum"), canonical=("canonical", "any")).reset_index()
    tx = tx.sort_values(["gene", "canonical", "length", "transcript"],
                        ascending=[True, False, False, True])
    chosen = tx.drop_duplicates("gene")["transcript"]
    ex = ex[ex["transcript"].isin(set(chosen))].copy()
    ex["order"] = np.where(ex["strand"] == "+", ex["start"], -ex["start"])
    ex = ex.sort_values(["gene", "order"]).reset_index(drop=True)
    ex["offset"] = ex.groupby("gene")["length"].cumsum() - ex["length"]
    return ex.drop(columns=["order", "canonical"])


def read_peaks(path) -> pd.DataFrame:
    """A BED file of peaks or sites: ``chrom, start, end, strand`` (strand from column 6
    when present, else ``.``)."""
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"peak file {path} does not exist")
    try:
        raw = pd.read_csv(path, sep="\t", comment="#", header=None, dtype={0: str})
    except pd.errors.EmptyDataError:
        return pd.DataFrame({"chrom": [], "start": [], "end": [], "strand": []})
    if raw.shape[1] < 3:
        raise InputError(f"peak file {path}: a BED file needs chrom, start and end columns")
    peaks = pd.DataFrame({"chrom": raw[0].astype(str),
                          "start": pd.to_numeric(raw[1], errors="coerce"),
                          "end": pd.to_numeric(raw[2], errors="coerce"),
                          "strand": raw[5].astype(str) if raw.shape[1] >= 6 else "."})
    bad = peaks["start"].isna() | peaks["end"].isna() | (peaks["end"] <= peaks["start"])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"peak file {path}: line {i + 1} has no valid interval "
                         f"(start {raw.iloc[i, 1]!r}, end {raw.iloc[i, 2]!r})")
    if not peaks["strand"].isin(["+", "-", "."]).all():
        raise InputError(f"peak file {path}: strand (column 6) must be '+', '-' or '.'")
    peaks[["start", "end"]] = peaks[["start", "end"]].astype(np.int64)
    return peaks


# ----------------------------------------------------------------------------- binning
def _bin_intervals(keys: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Split local half-open intervals [a, b) into 100-base bins: ``(key, bin, bases)``."""
    first, last = a // BIN, (b - 1) // BIN
    n = (last - first + 1).astype(np.int64)
    rep = np.repeat(np.arange(len(a)), n)
    k = first[rep] + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
    bases = np.minimum(b[rep], (k + 1) * BIN) - np.maximum(a[rep], k * BIN)
    return keys[rep], k, bases


def _regions(tx: pd.DataFrame):
    """Per-gene target intervals: RNA exons with offsets, and the promoter window."""
    genes = tx.groupby("gene", sort=True).agg(chrom=("chrom", "first"),
                                              strand=("strand", "first"),
                                              transcript=("transcript", "first"),
                                              start=("start", "min"), end=("end", "max"),
                                              width=("length", "sum")).reset_index()
    plus = genes["strand"] == "+"
    tss = np.where(plus, genes["start"], genes["end"])
    genes["p_start"] = np.where(plus, tss - PROMOTER_UPSTREAM, tss - PROMOTER_DOWNSTREAM)
    genes["p_end"] = np.where(plus, tss + PROMOTER_DOWNSTREAM, tss + PROMOTER_UPSTREAM)
    genes["tss"] = tss
    genes["p_start"] = genes["p_start"].clip(lower=0)
    return genes


def _map_region(bf, targets: pd.DataFrame, peaks: pd.DataFrame, region: str):
    """(gene, bin, bases) of one regulator's merged peaks over one region's targets."""
    out = []
    for strand in ("+", "-"):
        t = targets[targets["strand"] == strand]
        p = peaks[peaks["strand"].isin([strand, "."])]
        if t.empty or p.empty:
            continue
        merged = bf.merge(p[["chrom", "start", "end"]])[["chrom", "start", "end"]]
        ov = bf.overlap(t, merged, how="inner", return_overlap=True, suffixes=("", "_p"))
        if ov.empty:
            continue
        s, e = ov["overlap_start"].to_numpy(np.int64), ov["overlap_end"].to_numpy(np.int64)
        if region == "rna":
            o, xs, xe = (ov[c].to_numpy(np.int64) for c in ("offset", "start", "end"))
            a, b = (o + s - xs, o + e - xs) if strand == "+" else (o + xe - e, o + xe - s)
        else:
            tss = ov["tss"].to_numpy(np.int64)
            # window coordinates: 0 = 2,000 bp upstream of the TSS (the window is clipped
            # at the chromosome start, its coordinates are not)
            if strand == "+":
                a, b = s - (tss - PROMOTER_UPSTREAM), e - (tss - PROMOTER_UPSTREAM)
            else:
                a, b = tss + PROMOTER_UPSTREAM - e, tss + PROMOTER_UPSTREAM - s
        out.append(_bin_intervals(ov["gene"].to_numpy(), a, b))
    if not out:
        return np.array([], object), np.array([], np.int64), np.array([], np.int64)
    return tuple(np.concatenate(x) for x in zip(*out))


def build_binding_maps(gtf, regulators: pd.DataFrame, *, progress: bool | str = False
                       ) -> BindingMaps:
    """Binding maps from a GTF and one BED file per regulator.

    ``regulators``: a table with ``name``, ``type`` (TF | RBP | miRNA: TFs map to the
    promoter, RBPs and miRNAs to the RNA) and ``path`` (the BED file). Returns
    :class:`BindingMaps` with channel 0 first in each region and the regulators in table
    order.
    """
    from ..progress import track

    bf = _bioframe()
    need = {"name", "type", "path"}
    if not need <= set(regulators.columns):
        raise InputError(f"regulator table: needs columns {sorted(need)}, has "
                         f"{list(regulators.columns)}")
    bad = ~regulators["type"].isin(list(REGION_OF_TYPE))
    if bad.any():
        raise InputError(f"regulator table: type must be TF, RBP or miRNA; "
                         f"{regulators.loc[bad, 'name'].iloc[0]!r} has "
                         f"{regulators.loc[bad, 'type'].iloc[0]!r}")
    dup = regulators["name"].duplicated()
    if dup.any():
        raise InputError(f"regulator table: {regulators.loc[dup, 'name'].iloc[0]!r} appears "
                         "twice")
    tx = representative_transcripts(read_gtf_exons(gtf))
    genes = _regions(tx)
    n_bins = -(-genes["width"].to_numpy() // BIN)
    exon_t = tx[["chrom", "start", "end", "strand", "gene", "offset"]]
    prom_t = genes[["chrom", "p_start", "p_end", "strand", "gene", "tss"]].rename(
        columns={"p_start": "start", "p_end": "end"})
    # channel 0
    g_rep = np.repeat(genes["gene"].to_numpy(), n_bins)
    b_rep = np.concatenate([np.arange(n) for n in n_bins])
    w_rep = np.repeat(genes["width"].to_numpy(), n_bins)
    rna_parts = [pd.DataFrame({"gene": g_rep, "feature": MASKS["rna"], "bin": b_rep,
                               "value": np.minimum(BIN, w_rep - BIN * b_rep)})]
    prom_parts = [pd.DataFrame({"gene": np.repeat(genes["gene"].to_numpy(), PROMOTER_BINS),
                                "feature": MASKS["promoter"],
                                "bin": np.tile(np.arange(PROMOTER_BINS), len(genes)),
                                "value": BIN})]
    for row in track(list(regulators.itertuples(index=False)), "binding maps",
                     enabled=progress):
        region = REGION_OF_TYPE[row.type]
        peaks = read_peaks(row.path)
        g, b, v = _map_region(bf, exon_t if region == "rna" else prom_t, peaks, region)
        if region == "promoter":
            keep = (b >= 0) & (b < PROMOTER_BINS)
            g, b, v = g[keep], b[keep], v[keep]
        frame = pd.DataFrame({"gene": g, "feature": row.name, "bin": b, "value": v})
        frame = frame.groupby(["gene", "feature", "bin"], as_index=False)["value"].sum()
        (rna_parts if region == "rna" else prom_parts).append(frame)
    features = pd.DataFrame(
        [(MASKS["rna"], "mask", "rna")]
        + [(r.name, r.type, "rna") for r in regulators.itertuples() if r.type != "TF"]
        + [(MASKS["promoter"], "mask", "promoter")]
        + [(r.name, r.type, "promoter") for r in regulators.itertuples() if r.type == "TF"],
        columns=["name", "type", "region"])
    return BindingMaps(
        rna=_long(pd.concat(rna_parts, ignore_index=True)),
        promoter=_long(pd.concat(prom_parts, ignore_index=True)),
        features=features,
        genes=pd.DataFrame({"gene": genes["gene"], "n_bins": n_bins.astype(np.int32),
                            "chromosome": genes["chrom"].astype(str),
                            "strand": genes["strand"], "transcript": genes["transcript"]}))


def _long(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[frame["value"] > 0]
    return pd.DataFrame({"gene": frame["gene"].astype(str).to_numpy(),
                         "feature": frame["feature"].astype(str).to_numpy(),
                         "bin": frame["bin"].to_numpy(np.int32),
                         "value": frame["value"].to_numpy(np.float32)})


# ----------------------------------------------------------------------------- storage
@register
@dataclasses.dataclass
class BindingMaps(FolderResult):
    """Binding maps in the long format of the module docstring."""

    kind: ClassVar[str] = "decode.binding_maps"
    _TABLES: ClassVar[tuple[str, ...]] = ("rna", "promoter", "features", "genes")

    rna: pd.DataFrame
    promoter: pd.DataFrame
    features: pd.DataFrame
    genes: pd.DataFrame

    def __post_init__(self):
        self.metadata = {}
        self.check()

    @classmethod
    def read(cls, folder) -> BindingMaps:
        """The four Parquet files of ``folder`` (``result.json`` not needed)."""
        from ..io import read_table

        folder = Path(folder)
        if not folder.is_dir():
            raise InputFileNotFoundError(f"binding maps {folder}: not a folder (expected "
                                         "rna.parquet, promoter.parquet, features.parquet, "
                                         "genes.parquet)")
        parts = {}
        for name in cls._TABLES:
            p = folder / f"{name}.parquet"
            if not p.exists():
                raise InputFileNotFoundError(f"binding maps {folder}: {p.name} is missing")
            parts[name] = read_table(p, what=f"binding maps {name}")
        return cls(**parts)

    def check(self) -> None:
        where = "binding maps"
        for name, cols in (("rna", ("gene", "feature", "bin", "value")),
                           ("promoter", ("gene", "feature", "bin", "value")),
                           ("features", ("name", "type", "region")),
                           ("genes", ("gene", "n_bins", "chromosome"))):
            missing = set(cols) - set(getattr(self, name).columns)
            if missing:
                raise InputError(f"{where}: {name}.parquet lacks columns {sorted(missing)}")
        f = self.features
        for region in ("rna", "promoter"):
            names = f.loc[f["region"] == region, "name"].tolist()
            if not names or names[0] != MASKS[region]:
                raise InputError(f"{where}: the first {region} feature must be the structural "
                                 f"channel {MASKS[region]!r}")
            unknown = set(getattr(self, region)["feature"].unique()) - set(names)
            if unknown:
                raise InputError(f"{where}: {region}.parquet has features not in "
                                 f"features.parquet: {sorted(unknown)[:5]}")
        if self.genes["gene"].duplicated().any():
            raise InputError(f"{where}: genes.parquet lists "
                             f"{self.genes['gene'][self.genes['gene'].duplicated()].iloc[0]!r}"
                             " twice")
        big = self.promoter["bin"] >= PROMOTER_BINS
        if big.any():
            raise InputError(f"{where}: promoter bins run 0…{PROMOTER_BINS - 1}; gene "
                             f"{self.promoter.loc[big, 'gene'].iloc[0]!r} has bin "
                             f"{int(self.promoter.loc[big, 'bin'].iloc[0])}")

    def channels(self, region: str) -> list[str]:
        return self.features.loc[self.features["region"] == region, "name"].tolist()

    def bound_genes(self) -> pd.Series:
        """Per regulator (channels ≥ 1 of both regions): the number of genes it binds."""
        parts = [getattr(self, r).loc[lambda d, r=r: d["feature"] != MASKS[r]]
                 for r in ("rna", "promoter")]
        long = pd.concat(parts)
        counts = long.groupby("feature")["gene"].nunique()
        regs = self.features.loc[self.features["type"] != "mask", "name"]
        return counts.reindex(regs, fill_value=0).astype(int)

    def dense(self, genes, rna_channels=None, prom_channels=None):
        """Per gene the dense arrays: ``(rna list of (F_rna, n_bins), prom list of
        (F_prom, 30))``, channels in the given order (default: all)."""
        genes = list(genes)
        rc = self.channels("rna") if rna_channels is None else list(rna_channels)
        pc = self.channels("promoter") if prom_channels is None else list(prom_channels)
        nb = self.genes.set_index("gene")["n_bins"]
        missing = [g for g in genes if g not in nb.index]
        if missing:
            raise InputError(f"binding maps: no entry for gene {missing[0]!r} "
                             f"({len(missing)} genes missing)")
        lengths = nb.reindex(genes).to_numpy(np.int64)
        rna = _densify(self.rna, genes, rc, lengths)
        prom = _densify(self.promoter, genes, pc, np.full(len(genes), PROMOTER_BINS))
        return rna, prom


def _densify(long: pd.DataFrame, genes: list, channels: list, lengths: np.ndarray) -> list:
    gi = pd.Index(genes).get_indexer(long["gene"])
    fi = pd.Index(channels).get_indexer(long["feature"])
    ok = (gi >= 0) & (fi >= 0)
    gi, fi = gi[ok], fi[ok]
    b = long["bin"].to_numpy(np.int64)[ok]
    v = long["value"].to_numpy(np.float64)[ok]
    if (b >= lengths[gi]).any():
        j = int(np.flatnonzero(b >= lengths[gi])[0])
        raise InputError(f"binding maps: gene {genes[gi[j]]!r} has a value in bin {b[j]} but "
                         f"only {lengths[gi[j]]} bins")
    arrays = [np.zeros((len(channels), int(n))) for n in lengths]
    order = np.argsort(gi, kind="stable")
    gi, fi, b, v = gi[order], fi[order], b[order], v[order]
    starts = np.searchsorted(gi, np.arange(len(genes) + 1))
    for g in range(len(genes)):
        s, e = starts[g], starts[g + 1]
        if e > s:
            arrays[g][fi[s:e], b[s:e]] = v[s:e]
    return arrays
