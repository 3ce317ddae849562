"""IO layer: formats by suffix, atomic writes, metadata, matrices, gene sets, alignment, and a
clear error for each kind of bad input. Real fixtures from ../shared where they exist."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpu_engine import io
from gpu_engine.errors import InputError, InputFileNotFoundError


@pytest.fixture
def matrix():
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(5, 3)), index=pd.Index([f"G{i}" for i in range(5)], name="gene"),
                        columns=["t1", "t2", "t3"])


# ----------------------------------------------------------------------------- formats
@pytest.mark.parametrize("name", ["m.parquet", "m.tsv", "m.tsv.gz", "m.csv", "m.csv.gz", "m.txt", "m.txt.bz2"])
def test_matrix_round_trip_by_suffix(tmp_path, matrix, name):
    io.write_matrix(matrix, tmp_path / name)
    back = io.read_matrix(tmp_path / name)
    pd.testing.assert_frame_equal(back, matrix, check_exact=True, check_names=False)
    assert back.index.name == "gene"


def test_unknown_suffix_is_an_error(tmp_path):
    with pytest.raises(InputError, match="cannot tell the format"):
        io.table_format(tmp_path / "x.xlsx")


def test_parquet_metadata_round_trip(tmp_path, matrix):
    src = tmp_path / "in.tsv"
    io.write_matrix(matrix, src)
    meta = io.run_metadata(backend="cpu", parameters={"k": 3, "alpha": 0.5}, inputs=[src],
                           command="test")
    io.write_matrix(matrix, tmp_path / "out.parquet", metadata=meta)
    got = io.read_metadata(tmp_path / "out.parquet")
    assert got["engine"] == "gpu_engine" and got["backend"] == "cpu"
    assert got["parameters"] == {"k": 3, "alpha": 0.5}
    assert got["inputs"][0]["sha256"] == io.fingerprint(src)["sha256"]
    assert got["engine_version"] and got["device"] and got["created"]
    io.write_matrix(matrix, tmp_path / "plain.parquet")
    assert io.read_metadata(tmp_path / "plain.parquet") == {}


def test_fingerprint_large_file_uses_head_and_tail(tmp_path, monkeypatch):
    from gpu_engine.io import metadata as md

    monkeypatch.setattr(md, "_FULL_HASH_LIMIT", 10)
    p = tmp_path / "big.bin"
    p.write_bytes(b"x" * 100)
    assert md.fingerprint(p)["method"] == "sha256-head-tail"
    folder = md.fingerprint(tmp_path)
    assert folder["files"] == 1 and folder["size"] == 100


# ----------------------------------------------------------------------------- atomicity
def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(tmp_path, matrix):
    target = tmp_path / "out.parquet"
    io.write_matrix(matrix, target)
    bad = matrix.astype(object)
    bad.iloc[0, 0] = object()  # pyarrow cannot serialise this
    with pytest.raises((TypeError, ValueError, ArithmeticError)):  # pyarrow's own errors
        io.write_matrix(bad, target)
    pd.testing.assert_frame_equal(io.read_matrix(target), matrix, check_names=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]


def test_atomic_dir_refuses_existing_and_cleans_up(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        with io.atomic_dir(tmp_path / "d"):
            pass
    with pytest.raises(ValueError):
        with io.atomic_dir(tmp_path / "e") as tmp:
            (tmp / "f").write_text("x")
            raise ValueError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


# ----------------------------------------------------------------------------- bad input
def test_missing_file_names_path(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="expression not found: .*nope.parquet"):
        io.read_matrix(tmp_path / "nope.parquet", what="expression")
    with pytest.raises(FileNotFoundError):
        io.read_table(tmp_path / "nope.tsv")


def test_unknown_column_names_file_and_columns(tmp_path):
    p = tmp_path / "res.tsv"
    pd.DataFrame({"gene": ["A"], "pvalue": [0.1]}).to_csv(p, sep="\t", index=False)
    with pytest.raises(InputError, match=r"res.tsv: missing column\(s\) 'n_indep'.*'gene', 'pvalue'"):
        io.read_table(p, required=["gene", "n_indep"])
    with pytest.raises(InputError, match="missing column"):
        io.read_table(p, columns=["zscore"])
    pq = tmp_path / "res.parquet"
    io.write_table(pd.DataFrame({"gene": ["A"], "pvalue": [0.1]}), pq)
    with pytest.raises(InputError, match="'zscore'"):
        io.read_table(pq, columns=["gene", "zscore"])


def test_duplicated_gene_labels(tmp_path, matrix):
    dup = matrix.rename(index={"G3": "G1"})
    p = tmp_path / "dup.parquet"
    io.write_matrix(dup, p)
    with pytest.raises(InputError, match="duplicated row label.*'G1'.*make the labels unique"):
        io.read_matrix(p)
    kept = io.read_matrix(p, duplicates="first")
    assert list(kept.index) == ["G0", "G1", "G2", "G4"]
    assert kept.loc["G1", "t1"] == matrix.loc["G1", "t1"]
    assert kept.attrs["report"].duplicated == ["G1"]


def test_duplicated_column_labels(tmp_path):
    # pandas renames a repeated text header to a.1; a Parquet file can hold it verbatim
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"gene": ["G1"], "a": [1.0], "a_": [2.0]}).rename_columns(["gene", "a", "a"]),
                   tmp_path / "dupcol.parquet")
    with pytest.raises(InputError, match="duplicated column label.*'a'"):
        io.read_matrix(tmp_path / "dupcol.parquet")


def test_nan_in_complete_matrix_is_located(tmp_path, matrix):
    m = matrix.copy()
    m.loc["G2", "t3"] = np.nan
    m.loc["G4", "t1"] = np.inf
    p = tmp_path / "nan.parquet"
    io.write_matrix(m, p)
    with pytest.raises(InputError, match=r"2 missing \(NaN\) or infinite.*row 'G2', column 't3'"):
        io.read_matrix(p, what="expression")
    assert np.isnan(io.read_matrix(p, allow_nan=True).loc["G2", "t3"])


def test_non_numeric_and_empty_matrices(tmp_path):
    p = tmp_path / "text.tsv"
    pd.DataFrame({"gene": ["A", "B"], "x": ["1", "oops"]}).to_csv(p, sep="\t", index=False)
    with pytest.raises(InputError, match="'x' are not numeric"):
        io.read_matrix(p)
    q = tmp_path / "numeric_first.tsv"
    pd.DataFrame({"a": [1.0], "b": [2.0]}).to_csv(q, sep="\t", index=False)
    with pytest.raises(InputError, match="first column must hold the row labels"):
        io.read_matrix(q)
    e = tmp_path / "empty.parquet"
    io.write_table(pd.DataFrame({"gene": pd.Series([], dtype=str), "x": pd.Series([], dtype=float)}), e)
    with pytest.raises(InputError, match="empty"):
        io.read_matrix(e)


# ----------------------------------------------------------------------------- matrix folders
def test_matrix_parts_round_trip_and_mismatch(tmp_path, matrix):
    io.write_matrix_parts([matrix[["t1"]], matrix[["t2", "t3"]]], tmp_path / "parts")
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    pd.testing.assert_frame_equal(io.read_matrix(tmp_path / "parts"), matrix, check_names=False)
    with pytest.raises(InputError, match="other row labels"):
        io.write_matrix_parts([matrix[["t1"]], matrix[["t2"]].iloc[::-1]], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError, match="no part"):
        io.read_matrix(tmp_path / "none")


# ----------------------------------------------------------------------------- gene sets
def test_gmt_round_trip_and_errors(tmp_path):
    sets = {"PW_A": ["G1", "G2", "G3"], "PW_B": ["G3", "G4"]}
    io.write_gmt(sets, tmp_path / "s.gmt")
    assert io.read_gmt(tmp_path / "s.gmt") == sets
    io.write_gmt(sets, tmp_path / "s.gmt.gz")
    assert io.read_gene_sets(tmp_path / "s.gmt.gz") == sets
    (tmp_path / "dup.gmt").write_text("A\tx\tG1\nA\tx\tG2\n")
    with pytest.raises(InputError, match="line 2: gene set 'A' appears twice"):
        io.read_gmt(tmp_path / "dup.gmt")
    (tmp_path / "empty_set.gmt").write_text("A\tx\tG1\nB\tdesc\n")
    with pytest.raises(InputError, match="line 2: gene set 'B' lists no genes"):
        io.read_gmt(tmp_path / "empty_set.gmt")
    with pytest.raises(InputFileNotFoundError):
        io.read_gmt(tmp_path / "missing.gmt")


def test_gene_sets_to_matrix():
    m = io.gene_sets_to_matrix({"A": ["G1", "G2"], "B": ["G2", "GX"]}, genes=["G1", "G2", "G3"])
    assert m.to_numpy().tolist() == [[1, 0], [1, 1], [0, 0]]
    assert list(m.columns) == ["A", "B"]


def test_real_long_gene_set_table(shared):
    path = shared / "plier_data" / "pathways" / "svmMarkers.long.parquet"
    sets = io.read_gene_sets(path)
    long = pd.read_parquet(path)
    assert len(sets) == long["pathway"].nunique()
    assert sum(map(len, sets.values())) == len(long.drop_duplicates())
    wide = io.read_gene_sets(shared / "plier_data" / "pathways" / "svmMarkers.wide.parquet")
    assert {k: sorted(v) for k, v in wide.items()} == {k: sorted(v) for k, v in sets.items()}


# ----------------------------------------------------------------------------- alignment
def test_align_labels_reports_drops_and_keeps_order():
    a = pd.DataFrame({"x": [1, 2, 3]}, index=["G3", "G1", "G2"])
    b = pd.Series([10, 20, 30], index=["G1", "G2", "G9"])
    aligned, rep = io.align_labels({"R": a, "traits": b, "Z": ["G2", "G1", "G3", "G7"]})
    assert list(aligned["R"].index) == ["G1", "G2"]  # R's order
    assert list(aligned["traits"].index) == ["G1", "G2"]
    assert rep.n_in == {"R": 3, "traits": 3, "Z": 4} and rep.n_out == 2
    assert rep.dropped == {"R": ["G3"], "traits": ["G9"], "Z": ["G3", "G7"]}
    assert "kept 2" in rep.summary()
    aligned, _ = io.align_labels({"R": a, "traits": b}, order="traits")
    assert list(aligned["R"].index) == ["G1", "G2"]


def test_align_labels_errors():
    with pytest.raises(InputError, match="no overlap.*HGNC symbols vs Ensembl"):
        io.align_labels({"a": ["G1"], "b": ["ENSG1"]})
    with pytest.raises(InputError, match="duplicated genes 'G1'"):
        io.align_labels({"a": ["G1", "G1"], "b": ["G1"]})
    with pytest.raises(InputError, match="fewer than the 3 needed"):
        io.align_labels({"a": ["G1", "G2"], "b": ["G1", "G2"]}, min_overlap=3)


def test_reindex_fill_and_dedupe_reports():
    s = pd.DataFrame({"v": [1.0, 2.0]}, index=["G1", "G5"])
    out, rep = io.reindex_fill(s, ["G1", "G2", "G3"])
    assert out["v"].tolist() == [1.0, 0.0, 0.0]
    assert rep.filled == ["G2", "G3"] and rep.dropped == {"input": ["G5"]}
    d, rep = io.dedupe_labels(pd.DataFrame({"v": [1, 2, 3]}, index=["A", "B", "A"]))
    assert list(d.index) == ["A", "B"] and rep.duplicated == ["A"]


# ----------------------------------------------------------------------------- real formats
def test_real_production_gene_corr_matrix(shared):
    path = shared / "phenoplier_data" / "gene_corrs" / "phenomexcan_rapid_gwas-gtex_v8-mashr" / \
        "gene_corrs-symbols-within_distance_5mb.parquet"
    R = io.read_matrix(path, what="gene correlation")
    assert R.shape == (6428, 6428) and R.index.name == "gene"
    assert list(R.columns) == list(R.index)
    assert R.loc["NOC2L", "HES4"] == 0.11839658688874347  # README: exact float64
    v = R.to_numpy()
    assert np.array_equal(v, v.T)


def test_real_smultixcan_table(shared):
    path = shared / "phenoplier_data" / "gls" / "random.pheno0-gtex_v8-mashr-smultixcan.txt.gz"
    df = io.read_table(path, required=["gene", "gene_name", "pvalue", "n", "n_indep"],
                       what="S-MultiXcan result")
    assert len(df) == 22317
    assert df["pvalue"].isna().sum() == 3  # WNT10A, LINC00427, KIR3DL3 (README)
    with pytest.raises(InputError, match="missing column.*'pvalue'"):
        io.read_table(shared / "phenoplier_data" / "gls" / "random.pheno0-smultixcan-no_pvalue_column.txt",
                      required=["gene_name", "pvalue"], what="S-MultiXcan result")


def test_member_is_a_hash_membership():
    from gpu_engine.io import member

    got = member(np.array(["a", "b", "c", "a"], dtype=object), ["a", "z"])
    assert got.tolist() == [True, False, False, True]
    assert member([], ["a"]).tolist() == []


def test_damaged_inputs_name_the_file(tmp_path, shared):
    """Truncated gzip and random bytes in the TWAS readers: one InputError naming the file."""
    import gzip as gz

    from gpu_engine.twas import GwasColumns, read_covariance, read_gwas_file

    good = tmp_path / "g.txt.gz"
    with gz.open(good, "wt") as fh:
        fh.write("SNP\tA1\tA2\tZ\n" + "".join(f"rs{i}\tA\tG\t0.{i}\n" for i in range(5000)))
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    junk = tmp_path / "junk.txt"
    junk.write_bytes(bytes(range(256)) * 40)
    cols = GwasColumns(zscore="Z")
    for bad in (cut, junk):
        with pytest.raises(InputError, match=str(bad.name)):
            read_gwas_file(bad, cols)
    cov = next((shared / "metaxcan_data").rglob("*.txt.gz"))
    cutcov = tmp_path / "cov.txt.gz"
    cutcov.write_bytes(cov.read_bytes()[: max(200, cov.stat().st_size // 3)])
    with pytest.raises(InputError, match="cov.txt.gz"):
        read_covariance(cutcov)


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    import subprocess
    import sys

    from gpu_engine.io import atomic_dir

    # a writer killed mid-way leaves .<name>.tmp-<pid>-<id>; the next write of <name> removes it
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(proc.stdout)
    stale = tmp_path / f".model.tmp-{dead}-deadbeef"
    stale.mkdir()
    (stale / "Z.parquet").write_text("half")
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "ok").write_text("done")
    assert not stale.exists() and (tmp_path / "model" / "ok").read_text() == "done"
