"""SNP covariance files (MetaXcan format) as dense per-gene blocks.

Format: text (gzipped or not) with header ``GENE RSID1 RSID2 VALUE``, whitespace separated
(tabs or spaces), one row per SNP pair of a gene block, one triangle including the diagonal,
the rows of a gene contiguous, ``NA`` values skipped. Per-tissue files hold each model's SNPs
(S-PrediXcan); a global file holds the union of a gene's SNPs over tissues (S-MultiXcan, gene
correlations). SNP order inside a block is not meaningful: blocks are indexed by SNP id.

:class:`CovarianceBlocks` packs all blocks into one flat buffer — the layout the segmented
Gram kernel (``gpu_engine.kernels.twas``) reads.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, InputFileNotFoundError
from ..io.align import member

HEADER = ("GENE", "RSID1", "RSID2", "VALUE")


@dataclass
class CovarianceBlocks:
    """Dense symmetric covariance blocks of many genes.

    - ``genes`` (G,): gene ids in file order;
    - ``snps`` (Σn,): each block's SNP ids (in the order they first appear in the file),
      blocks concatenated;
      block g's are ``snps[snp_off[g]:snp_off[g+1]]``;
    - ``values`` (Σn²,): block g (n_g × n_g, row-major, both triangles) at ``cov_off[g]``;
      pairs absent from the file (or ``NA``) are 0;
    - ``has_diag`` (Σn,): whether the SNP's variance was given (a SNP without it is unusable);
    - ``n_in_cov`` (G,): distinct RSID1 values of each block with a value (not NA) —
      MetaXcan's ``n_snps_in_cov``, which counts only SNPs present in the matrix.
    """

    genes: np.ndarray
    snps: np.ndarray
    snp_off: np.ndarray
    values: np.ndarray
    cov_off: np.ndarray
    has_diag: np.ndarray
    n_in_cov: np.ndarray
    source: str = ""

    def __post_init__(self):
        self._index = {g: i for i, g in enumerate(self.genes)}

    def __len__(self) -> int:
        return len(self.genes)

    def __contains__(self, gene) -> bool:
        return gene in self._index

    def index(self, gene) -> int:
        return self._index[gene]

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.snp_off)

    def block(self, gene) -> tuple[np.ndarray, np.ndarray]:
        """``(snp ids, n × n matrix)`` of one gene."""
        g = self._index[gene]
        a, b = self.snp_off[g], self.snp_off[g + 1]
        n = b - a
        return self.snps[a:b], self.values[self.cov_off[g]:self.cov_off[g] + n * n].reshape(n, n)


def _sniff(path: Path, skip: int = 0) -> tuple[str | None, bool]:
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rt") as fh:
        header = fh.readline().rstrip("\r\n")
    fields = header.split()
    if tuple(fields) != HEADER:
        raise InputError(f"{path}: a SNP covariance file must start with the header "
                         f"'GENE RSID1 RSID2 VALUE', found {header[:80]!r}")
    for sep in ("\t", " "):
        if header.split(sep) == list(HEADER):
            return sep, True
    return None, False  # mixed whitespace: the slower reader


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _read_columns(path: Path):
    """GENE, RSID1, RSID2 as pyarrow arrays and VALUE as float64 NumPy (NaN for NA)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sep, simple = _sniff(path)
    if simple:
        try:
            stream = pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None)
            tbl = pacsv.read_csv(
                stream,
                parse_options=pacsv.ParseOptions(delimiter=sep),
                convert_options=pacsv.ConvertOptions(
                    column_types={"GENE": pa.string(), "RSID1": pa.string(),
                                  "RSID2": pa.string(), "VALUE": pa.float64()},
                    null_values=["NA", "NaN", "nan", ""], strings_can_be_null=False))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(f"{path}: cannot parse as a SNP covariance file ({exc})") from None
        cols = [tbl.column(c).combine_chunks() for c in HEADER]
        value = cols[3].to_numpy(zero_copy_only=False).astype(np.float64)
        return cols[0], cols[1], cols[2], value
    df = pd.read_csv(path, sep=r"\s+", dtype={"GENE": str, "RSID1": str, "RSID2": str},
                     na_values=["NA"], compression="infer")
    try:
        value = pd.to_numeric(df["VALUE"]).to_numpy(np.float64)
    except ValueError as exc:
        raise InputError(f"{path}: column VALUE is not numeric ({exc})") from None
    return (pa_array(df["GENE"]), pa_array(df["RSID1"]), pa_array(df["RSID2"]), value)


def pa_array(s: pd.Series):
    import pyarrow as pa

    return pa.array(s.astype(str).to_numpy(), type=pa.string())


def read_covariance(path: str | os.PathLike, *, genes=None) -> CovarianceBlocks:
    """Read a MetaXcan SNP covariance file into dense blocks.

    ``genes``: keep only these genes' blocks (the rest of the file is parsed, not built).
    Raises :class:`InputError` when a gene's rows are not contiguous or a SNP pair is listed
    twice within a gene.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(f"SNP covariance file {p} does not exist")
    from ..io.reading import reading

    with reading(p, "SNP covariance file"):
        gene_col, r1, r2, value = _read_columns(p)
    genc = pc.dictionary_encode(gene_col)
    gcode = genc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    gnames = np.asarray(genc.dictionary.to_pylist(), dtype=object)
    # first-appearance codes: contiguous blocks ⇔ codes never decrease
    if gcode.size and np.any(np.diff(gcode) < 0):
        at = int(np.flatnonzero(np.diff(gcode) < 0)[0]) + 1
        raise InputError(f"{p}: the rows of gene {gnames[gcode[at]]!r} are not contiguous "
                         f"(it reappears at data line {at + 1}); sort the file by GENE")
    if genes is not None:
        keep_names = member(gnames, genes)
        rows = keep_names[gcode]
        if not rows.all():
            idx = pa.array(np.flatnonzero(rows))
            r1, r2 = r1.take(idx), r2.take(idx)
            gcode, value = gcode[rows], value[rows]
        remap = np.cumsum(keep_names) - 1
        gcode = remap[gcode]
        gnames = gnames[keep_names]
    snpenc = pc.dictionary_encode(pa.chunked_array([r1, r2]).combine_chunks())
    scode = snpenc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    snames = np.asarray(snpenc.dictionary.to_pylist(), dtype=object)
    nrow = gcode.size
    s1, s2 = scode[:nrow], scode[nrow:]
    S = max(len(snames), 1)
    k1 = gcode * S + s1
    k2 = gcode * S + s2
    keys, inv = np.unique(np.concatenate([k1, k2]), return_inverse=True)
    G = len(gnames)
    key_gene = keys // S
    snp_off = np.searchsorted(key_gene, np.arange(G + 1)).astype(np.int64)
    n = np.diff(snp_off)
    local = inv - snp_off[np.concatenate([gcode, gcode])]
    l1, l2 = local[:nrow], local[nrow:]
    cov_off = np.zeros(G + 1, np.int64)
    np.cumsum(n * n, out=cov_off[1:])
    pos1 = cov_off[gcode] + l1 * n[gcode] + l2
    pos2 = cov_off[gcode] + l2 * n[gcode] + l1
    if np.unique(np.minimum(pos1, pos2)).size != nrow:
        lo = np.minimum(pos1, pos2)
        order = np.argsort(lo, kind="stable")
        d = order[1:][lo[order][1:] == lo[order][:-1]][0]
        raise InputError(f"{p}: gene {gnames[gcode[d]]!r} lists the SNP pair "
                         f"({snames[s1[d]]}, {snames[s2[d]]}) twice")
    ok = np.isfinite(value)
    values = np.zeros(int(cov_off[-1]), np.float64)
    values[pos1[ok]] = value[ok]
    values[pos2[ok]] = value[ok]
    has_diag = np.zeros(keys.size, bool)
    diag = ok & (s1 == s2)
    has_diag[inv[:nrow][diag]] = True
    # MetaXcan's n_snps_in_cov: SNPs present in the matrix, i.e. rows with a value (a SNP
    # whose entries are all NA is not in it)
    rs1 = np.unique(k1[ok])
    n_in_cov = np.bincount(rs1 // S, minlength=G).astype(np.int64)
    return CovarianceBlocks(genes=gnames, snps=snames[keys % S], snp_off=snp_off,
                            values=values, cov_off=cov_off[:-1], has_diag=has_diag,
                            n_in_cov=n_in_cov, source=str(p))


def sparse_ld(cov: CovarianceBlocks, keep_snps: np.ndarray | None):
    """One sparse Γ over all SNPs with a variance (∩ ``keep_snps``), from blocks of any
    grouping: ``(sorted SNP ids, CSR matrix)``. A pair in two blocks takes the first block's
    value; pairs never in a common block are 0."""
    import scipy.sparse as sp

    from .quadratic import snp_table

    tab = snp_table(cov)
    ok = np.isfinite(tab["var"].to_numpy())
    if keep_snps is not None:
        ok &= pd.Index(keep_snps).get_indexer(tab["snp"]) >= 0
    ids = pd.unique(tab["snp"].to_numpy()[ok])
    ids = np.sort(np.asarray(ids, dtype=object))
    code = pd.Index(ids).get_indexer(tab["snp"].to_numpy())  # −1: unusable SNP
    rows, cols, vals = [], [], []
    n = cov.sizes
    for g in range(len(cov)):
        a = int(cov.snp_off[g])
        cg = code[a:a + n[g]]
        sel = np.flatnonzero(cg >= 0)
        if not sel.size:
            continue
        blk = cov.values[cov.cov_off[g]:cov.cov_off[g] + n[g] * n[g]].reshape(n[g], n[g])
        sub = blk[np.ix_(sel, sel)]
        ii, jj = np.nonzero(sub)
        rows.append(cg[sel][ii])
        cols.append(cg[sel][jj])
        vals.append(sub[ii, jj])
    if not rows:
        return ids, sp.csr_matrix((len(ids), len(ids)))
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    key = r.astype(np.int64) * len(ids) + c
    _, first = np.unique(key, return_index=True)  # a pair in two blocks: the first value
    G = sp.csr_matrix((v[first], (r[first], c[first])), shape=(len(ids), len(ids)))
    return ids, G


def gene_blocks(LD, members, labels=None, ids=None) -> CovarianceBlocks:
    """Dense per-gene blocks cut from a sparse Γ: gene i's block is Γ over the SNP codes
    ``members[i]`` (their union, sorted). ``ids`` (SNP ids of the codes) and ``labels`` (gene
    ids) name them; by default codes and positions are used."""
    snps_g, vals, sizes = [], [], []
    for u in members:
        u = np.unique(np.asarray(u, np.int64))
        snps_g.append(u)
        sizes.append(u.size)
        vals.append(LD[u][:, u].toarray().ravel())
    sizes = np.asarray(sizes, np.int64)
    snp_off = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes, out=snp_off[1:])
    cov_off = np.zeros(sizes.size, np.int64)
    np.cumsum((sizes * sizes)[:-1], out=cov_off[1:])
    codes = np.concatenate(snps_g) if snps_g else np.zeros(0, np.int64)
    return CovarianceBlocks(
        genes=np.asarray(labels if labels is not None else np.arange(sizes.size), dtype=object),
        snps=np.asarray(ids, dtype=object)[codes] if ids is not None else codes,
        snp_off=snp_off, values=np.concatenate(vals) if vals else np.zeros(0), cov_off=cov_off,
        has_diag=np.ones(int(sizes.sum()), bool), n_in_cov=sizes, source="<per-gene blocks>")
