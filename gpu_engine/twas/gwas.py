"""GWAS summary statistics: reading with user-mapped columns, z derivation, harmonization.

Semantics are MetaXcan's (``M03_betas`` / ``SPrediXcan``), which users' results depend on:

- Columns are mapped per file: a declared column missing from a file is ignored, so files of
  one study may carry different statistics (``--gwas_folder`` input). The SNP and allele
  columns must exist.
- A line whose number of fields differs from the header's is skipped and counted
  (``malformed_lines``), as the reference's parser does; with ``handle_empty_columns`` fields
  are split at every single separator character (tab, or any one whitespace character), so
  an empty field is a missing value instead of shifting the line.
- Ids without the substring ``rs`` are dropped unless ``keep_non_rsid``.
- z comes, **per file**, from: a z column; else |z| = −Φ⁻¹(p/2) with the sign of beta (or
  log OR, or a ``+``/``-`` sign column; ``sign(0) = 0``); else beta/se (or log OR/se). A row
  whose chosen input is NA gets NaN (it is not rescued from another column).
- p = 0 gives |z| = −Φ⁻¹(min(smallest non-zero p of the file's loaded rows, fix)/2), fix =
  1e-50 by default; ``input_pvalue_fix=0`` gives ±∞. When ``snps`` is given, only rows of
  those SNPs are loaded (S-PrediXcan loads the current model's SNPs).
- z is stored as float64(float32(z)), as the reference does.
- ``snp_map`` (the reference's ``--snp_map_file``: columns ``rsid a0 a1 panel_variant_id
  panel_variant_a0 panel_variant_a1 swap``): each GWAS row is aligned to the map's alleles as
  :func:`harmonize` does (a1 is the effect allele), z and beta are multiplied by ``swap``, and
  the row takes the panel's id and alleles (``panel_variant_a1`` the effect allele).
- :func:`harmonize`: inner join with the model's SNPs; alleles upper-cased; a row is kept only
  if {effect, non-effect} == {eff_allele, ref_allele}; z and beta are negated when the
  effect allele is the model's ref allele. Strand flips are not rescued.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

from ..errors import InputError, InputFileNotFoundError, preview
from ..io.align import member

DEFAULT_PVALUE_FIX = 1e-50


@dataclass
class GwasColumns:
    """Column names of a GWAS file (MetaXcan's ``--*_column`` flags and defaults)."""

    snp: str = "SNP"
    effect_allele: str = "A1"
    non_effect_allele: str = "A2"
    zscore: str | None = None
    pvalue: str | None = None
    beta: str | None = None
    se: str | None = None
    odds_ratio: str | None = None
    beta_sign: str | None = None
    chromosome: str | None = None
    position: str | None = None

    def validate(self) -> None:
        if self.zscore:
            return
        if self.pvalue:
            if not (self.beta or self.odds_ratio or self.beta_sign):
                raise InputError("GWAS columns: a p-value column needs a sign: give a beta, odds "
                                 "ratio or beta-sign column (--beta_column / --or_column / "
                                 "--beta_sign_column)")
            return
        if self.se:
            if not (self.beta or self.odds_ratio):
                raise InputError("GWAS columns: a standard-error column needs a beta or odds "
                                 "ratio column (--beta_column / --or_column)")
            return
        raise InputError("GWAS columns: no way to get z: give a z-score column, or a p-value "
                         "column with beta / odds ratio / beta sign, or beta (or odds ratio) "
                         "with a standard-error column")


@dataclass
class Gwas:
    """Parsed GWAS: ``frame`` with ``snp, effect_allele, non_effect_allele, zscore, beta,
    source_file`` (plus ``se``/``pvalue`` where given); ``files`` one row per file with the z
    source and counts."""

    frame: pd.DataFrame
    files: pd.DataFrame = field(default_factory=pd.DataFrame)
    _lookup: object = field(default=None, init=False, repr=False, compare=False)

    def snp_lookup(self) -> _SnpLookup:
        """The frame's :class:`_SnpLookup`, built once (every tissue harmonizes against the
        same GWAS) and rebuilt if ``frame`` was replaced."""
        if self._lookup is None or self._lookup.frame is not self.frame:
            self._lookup = _SnpLookup(self.frame)
        return self._lookup


class _SnpLookup:
    """A GWAS frame's SNPs as a hash index of their first rows, with the columns harmonizing
    reads as NumPy arrays (converting Arrow strings once instead of once per tissue)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        snp = frame["snp"]
        dup = snp.duplicated().to_numpy()
        self.first = np.flatnonzero(~dup)
        self.snp = snp.to_numpy(dtype=object)
        self.index = pd.Index(self.snp[self.first])
        self.duplicates = snp[dup]  # the rows after a SNP's first
        self.effect_allele = frame["effect_allele"].to_numpy(dtype=object)
        self.non_effect_allele = frame["non_effect_allele"].to_numpy(dtype=object)
        self.zscore = frame["zscore"].to_numpy(dtype=np.float64)
        self.beta = frame["beta"].to_numpy(dtype=np.float64)
        self.source = (frame["source_file"].to_numpy(dtype=object) if "source_file" in frame
                       else None)


def gwas_files(folder: str | os.PathLike, pattern: str | None = None) -> list[Path]:
    """The files of ``folder`` whose names match ``pattern`` (a regular expression, searched as
    MetaXcan does), sorted by name."""
    root = Path(folder)
    if not root.is_dir():
        raise InputFileNotFoundError(f"GWAS folder {root} does not exist")
    rx = re.compile(pattern) if pattern else None
    files = sorted(f for f in root.iterdir() if f.is_file() and (rx is None or rx.search(f.name)))
    if not files:
        raise InputError(f"{root}: no GWAS file matches the pattern {pattern!r}")
    return files


def _opener(path: Path):
    with open(path, "rb") as fh:
        return gzip.open if fh.read(2) == b"\x1f\x8b" else open


def _header_line(path: Path, skip_until_header: str | None) -> tuple[int, str]:
    with _opener(path)(path, "rt") as fh:
        for i, line in enumerate(fh):
            if skip_until_header is None:
                return i, line.rstrip("\r\n")
            at = line.find(skip_until_header)
            if at >= 0:  # junk may precede the header on its own line
                return i, line[at:].rstrip("\r\n")
    if skip_until_header is None:
        raise InputError(f"{path}: the GWAS file is empty")
    raise InputError(f"{path}: no line contains the header {skip_until_header!r} "
                     "(--skip_until_header)")


NA_STRINGS = ["NA", "na", "NaN", "nan", "."]


def _header_names(header: str, separator: str | None, handle_empty_columns: bool) -> list[str]:
    if handle_empty_columns:
        return re.split(re.escape(separator) if separator else r"\s", header)
    return header.split(separator) if separator else header.split()


def _read_frame(path: Path, usecols: list[str], separator: str | None,
                skip_until_header: str | None, string_cols: Sequence[str],
                handle_empty_columns: bool = False) -> tuple[pd.DataFrame, int]:
    """The used columns of a GWAS file and the number of malformed lines skipped (a field
    count other than the header's)."""
    skip, header = _header_line(path, skip_until_header)
    if (separator is None and not handle_empty_columns and "\t" in header
            and header.split("\t") == header.split()):
        separator = "\t"  # pure tabs: the fast parser; anything else: any whitespace
    names = _header_names(header, separator, handle_empty_columns)
    missing = [c for c in usecols if c not in names]
    if missing:
        raise InputError(f"{path}: no column {preview(missing)} (columns: {preview(names, 12)}); "
                         "name the right ones with --snp_column / --effect_allele_column / "
                         "--non_effect_allele_column")
    if len(set(names)) < len(names):  # the reference uses the first of duplicated columns
        seen: set[str] = set()
        unique = []
        for i, n in enumerate(names):
            unique.append(f"{n}.duplicate{i}" if n in seen else n)
            seen.add(n)
        names = unique
    dtype = {c: str for c in string_cols if c in usecols}
    compression = "gzip" if _opener(path) is gzip.open else None
    try:
        if separator is not None and not handle_empty_columns:
            try:
                return _read_arrow(path, names, usecols, dtype, separator, skip), 0
            except Exception:  # ragged lines, non-numeric values etc.: the careful reader
                pass
        return _read_lenient(path, names, usecols, dtype, separator, skip, compression,
                             handle_empty_columns)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot parse the GWAS file ({exc})") from None


def _read_arrow(path, names, usecols, dtype, separator, skip) -> pd.DataFrame:
    """The fast path: Arrow's multithreaded CSV reader (gzip streamed), with the NA strings of
    pandas' reader (its defaults, the empty field and :data:`NA_STRINGS`); string columns stay
    Arrow strings. Raises on anything the careful reader treats differently: a ragged line,
    an empty last field (the reference's whitespace split sees a short line, which the
    careful reader skips and counts), a non-numeric value in a numeric column."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pandas._libs.parsers import STR_NA_VALUES
    from pyarrow import csv

    strings = [c for c in usecols if c in dtype]
    last = names[-1]
    na = sorted(set(STR_NA_VALUES) | set(NA_STRINGS) | {""})
    raw = set(strings) | {last}  # read as text; NA strings nulled below
    table = csv.read_csv(
        path, read_options=csv.ReadOptions(column_names=names, skip_rows=skip + 1,
                                           block_size=1 << 24),
        parse_options=csv.ParseOptions(delimiter=separator),
        convert_options=csv.ConvertOptions(
            include_columns=list(dict.fromkeys(usecols + [last])), null_values=na,
            strings_can_be_null=False, column_types={c: pa.string() for c in raw}))
    if pc.any(pc.equal(table.column(last), "")).as_py():
        raise ValueError("a line with an empty last field")
    na_set = pa.array(na, type=pa.string())
    cols = {}
    for c in usecols:
        col = table.column(c)
        if c in raw:
            col = pc.if_else(pc.is_in(col, value_set=na_set), pa.scalar(None, pa.string()), col)
        if c not in strings:
            t = col.type
            if not (pa.types.is_string(t) or pa.types.is_floating(t) or pa.types.is_integer(t)
                    or pa.types.is_null(t)):
                raise ValueError(f"column {c} is not numeric")
            col = pc.cast(col, pa.float64())  # raises on a non-numeric string
        cols[c] = col
    sdt = pd.StringDtype("pyarrow", na_value=np.nan)
    return pa.table(cols).to_pandas(types_mapper={pa.string(): sdt,
                                                  pa.large_string(): sdt}.get)


def _read_lenient(path, names, usecols, dtype, separator, skip, compression,
                  handle_empty_columns) -> tuple[pd.DataFrame, int]:
    """Skip lines with too many fields (the parser's bad lines) and with too few (their last
    column is empty), counting both. The last column is read raw to tell the two apart."""
    import warnings

    last = names[-1]
    cols = list(dict.fromkeys(usecols + [last]))
    na = {c: NA_STRINGS + [""] for c in cols if c != last}
    if handle_empty_columns:
        sep, engine = (re.escape(separator) if separator else r"\s"), "python"
    else:
        sep, engine = (separator or r"\s+"), "c"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        df = pd.read_csv(path, sep=sep, engine=engine, header=None, names=names, usecols=cols,
                         dtype={**dtype, last: str}, na_values=na, keep_default_na=False,
                         skiprows=skip + 1, compression=compression, on_bad_lines="warn")
    long_lines = sum(str(w.message).count("Skipping line") for w in caught
                     if issubclass(w.category, pd.errors.ParserWarning))
    raw = df[last].fillna("")
    short = (raw == "").to_numpy() if not handle_empty_columns else np.zeros(len(df), bool)
    df = df.loc[~short]
    if last in usecols:  # read raw: its missing values still to mark (numbers: _numeric)
        df[last] = df[last].where(~df[last].isin(NA_STRINGS + [""]))
    else:
        df = df.drop(columns=[last])
    return df.reset_index(drop=True), int(long_lines + short.sum())


def _numeric(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    try:
        return pd.to_numeric(df[col]).to_numpy(np.float64)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: column {col!r} is not numeric ({exc})") from None


def _check_pvalues(pv: np.ndarray, col: str, path: Path) -> None:
    """p-values outside [0, 1] are an error (NaN is a missing value): they would give a
    silently wrong z."""
    bad = np.flatnonzero(np.isfinite(pv) & ((pv < 0) | (pv > 1)))
    if bad.size:
        first = int(bad[0])
        raise InputError(f"{path}: column {col!r} has {bad.size:,} p-value(s) outside [0, 1] "
                         f"(the first: {pv[first]:g}, data row {first + 1:,}); check the column "
                         "mapping (--pvalue_column) or fix the file")


def read_gwas_file(path: str | os.PathLike, columns: GwasColumns | None = None, *,
                   separator: str | None = None, skip_until_header: str | None = None,
                   input_pvalue_fix: float = DEFAULT_PVALUE_FIX, keep_non_rsid: bool = False,
                   handle_empty_columns: bool = False, snps=None) -> tuple[pd.DataFrame, dict]:
    """Parse one GWAS file (see the module docstring). Returns the frame and a report. A
    damaged or non-text file is an :class:`InputError` naming it."""
    from ..io.reading import reading

    with reading(path, "GWAS file"):
        return _read_gwas_file(path, columns, separator=separator,
                               skip_until_header=skip_until_header,
                               input_pvalue_fix=input_pvalue_fix,
                               keep_non_rsid=keep_non_rsid,
                               handle_empty_columns=handle_empty_columns, snps=snps)


def _read_gwas_file(path: str | os.PathLike, columns: GwasColumns | None = None, *,
                   separator: str | None = None, skip_until_header: str | None = None,
                   input_pvalue_fix: float = DEFAULT_PVALUE_FIX, keep_non_rsid: bool = False,
                   handle_empty_columns: bool = False, snps=None) -> tuple[pd.DataFrame, dict]:
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFoundError(f"GWAS file {p} does not exist")
    c = columns or GwasColumns()
    c.validate()
    _, header = _header_line(p, skip_until_header)
    present = set(_header_names(header, separator, handle_empty_columns))
    stat = {k: v for k, v in asdict(c).items() if v and v in present
            and k not in ("snp", "effect_allele", "non_effect_allele")}
    base = [c.snp, c.effect_allele, c.non_effect_allele]
    usecols = list(dict.fromkeys(base + list(stat.values())))
    df, malformed = _read_frame(p, usecols, separator, skip_until_header,
                                string_cols=base + [v for k, v in stat.items()
                                                    if k in ("beta_sign", "chromosome")],
                                handle_empty_columns=handle_empty_columns)
    rep = {"file": p.name, "rows": len(df), "malformed_lines": malformed}
    snp = df[c.snp].astype(str)
    keep = (np.ones(len(df), bool) if keep_non_rsid
            else snp.str.contains("rs", regex=False).to_numpy(dtype=bool, copy=True))
    rep["non_rsid_dropped"] = int((~keep).sum())
    if snps is not None:
        keep &= member(snp, snps)
    df = df.loc[keep]
    out = pd.DataFrame({"snp": snp[keep].to_numpy(),
                        "effect_allele": df[c.effect_allele].astype(str).str.upper().to_numpy(),
                        "non_effect_allele": df[c.non_effect_allele].astype(str).str.upper()
                        .to_numpy()})
    beta = None
    if "odds_ratio" in stat:
        oratio = _numeric(df, stat["odds_ratio"], p)
        if np.any(oratio <= 0):
            raise InputError(f"{p}: column {stat['odds_ratio']!r} (odds ratio) has values ≤ 0; "
                             "was a beta given as --or_column?")
        beta = np.log(oratio)
    elif "beta" in stat:
        beta = _numeric(df, stat["beta"], p)
    if "zscore" in stat:
        z = _numeric(df, stat["zscore"], p)
        rep["z_from"] = "zscore"
    elif "pvalue" in stat:
        pv = _numeric(df, stat["pvalue"], p)
        _check_pvalues(pv, stat["pvalue"], p)
        if beta is not None:
            sign = np.sign(beta)
        elif "beta_sign" in stat:
            sign = np.where(df[stat["beta_sign"]].astype(str).isin(["+", "1", "1.0"]), 1.0, -1.0)
        else:
            raise InputError(f"{p}: has p-values but no beta, odds ratio or sign column to sign "
                             "them; map one with --beta_column / --or_column / --beta_sign_column")
        zero = pv == 0
        rep["zero_pvalues"] = int(zero.sum())
        if zero.any():
            if input_pvalue_fix:
                nonzero = pv[(pv > 0) & np.isfinite(pv)]
                fill = min(nonzero.min(), input_pvalue_fix) if nonzero.size else input_pvalue_fix
                pv = np.where(zero, fill, pv)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = -special.ndtri(pv / 2.0) * sign
        rep["z_from"] = "pvalue"
    elif "se" in stat and beta is not None:
        se = _numeric(df, stat["se"], p)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = beta / se
        rep["z_from"] = "beta/se"
    else:
        want = [x for x in (c.zscore, c.pvalue, c.se) if x]
        raise InputError(f"{p}: no usable z: none of the columns {preview(want)} is in this "
                         f"file (columns: {preview(sorted(present), 12)}); map a z-score, a "
                         "p-value with a sign, or beta with its standard error")
    out["zscore"] = np.asarray(z, np.float32).astype(np.float64)
    out["beta"] = beta if beta is not None else np.nan
    if "se" in stat:
        out["se"] = _numeric(df, stat["se"], p)
    if "pvalue" in stat:
        out["pvalue"] = _numeric(df, stat["pvalue"], p)
    out["source_file"] = p.name
    rep["loaded"] = len(out)
    rep["non_finite_z"] = int((~np.isfinite(out["zscore"].to_numpy())).sum())
    return out, rep


def read_gwas(source, columns: GwasColumns | None = None, *, file_pattern: str | None = None,
              separator: str | None = None, skip_until_header: str | None = None,
              input_pvalue_fix: float = DEFAULT_PVALUE_FIX, keep_non_rsid: bool = False,
              handle_empty_columns: bool = False, snp_map=None, snps=None) -> Gwas:
    """Read GWAS summary statistics from a file, a list of files, or a folder (files matching
    ``file_pattern``, parsed independently and concatenated in name order).

    ``snps``: load only rows of these SNPs (ids of the models; with ``snp_map``, the rows whose
    mapped panel id is one of them). ``snp_map``: a path or frame, see the module docstring.
    """
    if snp_map is not None:
        snp_map = read_snp_map(snp_map)
        if snps is not None:
            snps = snp_map.loc[member(snp_map["panel_variant_id"], pd.unique(
                np.asarray(list(snps), dtype=object))), "rsid"]
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        files = gwas_files(source, file_pattern)
    elif isinstance(source, (str, os.PathLike)):
        files = [Path(source)]
    else:
        files = [Path(f) for f in source]
    if snps is not None and not isinstance(snps, pd.Index):
        snps = pd.Index(pd.unique(np.asarray(list(snps), dtype=object)))
    frames, reps = [], []
    for f in files:
        fr, rep = read_gwas_file(f, columns, separator=separator,
                                 skip_until_header=skip_until_header,
                                 input_pvalue_fix=input_pvalue_fix,
                                 keep_non_rsid=keep_non_rsid,
                                 handle_empty_columns=handle_empty_columns, snps=snps)
        if snp_map is not None:
            fr, counts = apply_snp_map(fr, snp_map)
            rep.update({f"snp_map_{k}": v for k, v in counts.items()})
        frames.append(fr)
        reps.append(rep)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Gwas(frame, pd.DataFrame(reps))


SNP_MAP_COLUMNS = ("rsid", "a0", "a1", "panel_variant_id", "panel_variant_a0",
                   "panel_variant_a1", "swap")


def read_snp_map(source) -> pd.DataFrame:
    """The reference's SNP map (``--snp_map_file``): a tab- or space-separated table (gz or
    plain) with ``SNP_MAP_COLUMNS``; alleles upper-cased, ``swap`` ±1."""
    if isinstance(source, pd.DataFrame):
        m = source
        where = "the SNP map"
    else:
        where = str(source)
        if not Path(source).is_file():
            raise InputFileNotFoundError(f"SNP map file {source} does not exist")
        m = pd.read_csv(source, sep=r"\s+", dtype=str, compression="infer")
    missing = [c for c in SNP_MAP_COLUMNS if c not in m.columns]
    if missing:
        raise InputError(f"{where}: no column {preview(missing)} (a SNP map has "
                         f"{', '.join(SNP_MAP_COLUMNS)})")
    m = m[list(SNP_MAP_COLUMNS)].drop_duplicates().copy()
    for c in ("a0", "a1", "panel_variant_a0", "panel_variant_a1"):
        m[c] = m[c].astype(str).str.upper()
    m["swap"] = pd.to_numeric(m["swap"], errors="coerce")
    bad = ~m["swap"].isin([1, -1])
    if bad.any():
        raise InputError(f"{where}: column 'swap' must be 1 or -1; {int(bad.sum()):,} row(s) are "
                         f"not (e.g. SNP {m.loc[bad, 'rsid'].iloc[0]!r})")
    return m.reset_index(drop=True)


def apply_snp_map(frame: pd.DataFrame, snp_map: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """GWAS rows re-keyed to the panel's variants (module docstring); rows without a map
    entry with matching alleles are dropped and counted."""
    m = frame.merge(snp_map, left_on="snp", right_on="rsid", how="inner", sort=False)
    ea, nea = m["effect_allele"].to_numpy(), m["non_effect_allele"].to_numpy()
    same = (ea == m["a1"].to_numpy()) & (nea == m["a0"].to_numpy())
    flip = (ea == m["a0"].to_numpy()) & (nea == m["a1"].to_numpy()) & ~same
    ok = same | flip
    sign = (np.where(flip, -1.0, 1.0) * m["swap"].to_numpy(np.float64))[ok]
    out = m.loc[ok].copy()
    out["zscore"] = out["zscore"].to_numpy() * sign
    out["beta"] = out["beta"].to_numpy() * sign
    out["snp"] = out["panel_variant_id"]
    out["effect_allele"] = out["panel_variant_a1"]
    out["non_effect_allele"] = out["panel_variant_a0"]
    out = out[list(frame.columns)].reset_index(drop=True)
    return out, {"mapped": int(ok.sum()), "not_in_map": int(len(frame) - len(m)),
                 "allele_mismatch": int((~ok).sum())}


HARMONIZE_REPORT = ("model_snps", "in_gwas", "kept", "flipped", "allele_mismatch",
                    "duplicated", "missing_from_gwas", "non_finite_z")


def harmonize(gwas: Gwas | pd.DataFrame, alleles: pd.DataFrame, *,
              finite_only: bool = False) -> tuple[pd.DataFrame, dict]:
    """Align GWAS rows to a model's alleles.

    ``alleles``: one row per model SNP with ``snp, eff_allele, ref_allele``. Returns a frame
    with ``snp, zscore, beta`` (signed for the model's ``eff_allele``; plus ``source_file``)
    and a report with counts (``HARMONIZE_REPORT``): model SNPs, found in the GWAS, kept,
    flipped, dropped for allele mismatch (incl. strand flips), duplicated GWAS rows (the first
    is used), model SNPs missing from the GWAS, kept SNPs whose z is not finite.
    ``finite_only`` drops the latter (S-PrediXcan does; S-MultiXcan's SNP set keeps them).
    """
    lk = gwas.snp_lookup() if isinstance(gwas, Gwas) else _SnpLookup(gwas)
    a = alleles.drop_duplicates("snp")
    asnp = a["snp"].to_numpy(dtype=object)
    pos = lk.index.get_indexer(asnp)
    hit = np.flatnonzero(pos >= 0)
    rows = lk.first[pos[hit]]
    order = np.argsort(rows, kind="stable")  # the GWAS's row order, as an inner merge gives
    rows, hit = rows[order], hit[order]
    ea, nea = lk.effect_allele[rows], lk.non_effect_allele[rows]
    eff = a["eff_allele"].to_numpy(dtype=object)[hit]
    ref = a["ref_allele"].to_numpy(dtype=object)[hit]
    same = (ea == eff) & (nea == ref)
    swap = (ea == ref) & (nea == eff) & ~same
    ok = same | swap
    sign = np.where(swap, -1.0, 1.0)[ok]
    rows = rows[ok]
    out = pd.DataFrame({"snp": lk.snp[rows], "zscore": lk.zscore[rows] * sign,
                        "beta": lk.beta[rows] * sign})
    if lk.source is not None:
        out["source_file"] = lk.source[rows]
    n_dup = int(member(lk.duplicates, asnp).sum()) if len(lk.duplicates) else 0
    finite = np.isfinite(out["zscore"].to_numpy())
    report = {"model_snps": int(len(a)), "in_gwas": int(hit.size), "kept": int(ok.sum()),
              "flipped": int(swap.sum()), "allele_mismatch": int((~ok).sum()),
              "duplicated": n_dup, "missing_from_gwas": int(len(a) - hit.size),
              "non_finite_z": int((~finite).sum())}
    if finite_only:
        out = out.loc[finite].reset_index(drop=True)
    return out, report
