"""TWAS readers, GWAS harmonization, S-PrediXcan and S-MultiXcan against MetaXcan's recorded
outputs on the real fixture (``../shared/metaxcan_data``)."""

from __future__ import annotations

import gzip
import sqlite3

import numpy as np
import pandas as pd
import pytest

from gpu_engine.errors import InputError
from gpu_engine.twas import (
    GwasColumns,
    harmonize,
    model_files,
    read_covariance,
    read_gwas,
    read_gwas_file,
    read_model_db,
    smultixcan,
    spredixcan,
)

GOLDEN_COLUMNS = GwasColumns(snp="SNP", effect_allele="A1", non_effect_allele="A2",
                             beta="BETA", se="SE", pvalue="P")
GOLDEN_PATTERN = r".*\.txt\.gz"


@pytest.fixture(scope="module")
def mx(shared):
    return shared / "metaxcan_data"


@pytest.fixture(scope="module")
def models(mx):
    return {t: read_model_db(f, tissue=t)
            for t, f in model_files(mx / "dbs_3", r"TW_(.*)_0.5.db").items()}


# --------------------------------------------------------------------- readers
def test_model_db_reader(mx, models):
    assert len(models) == 44
    wb = models["Whole_Blood"]
    assert set(wb.extra.columns) >= {"gene", "gene_name", "n_snps_in_model", "pred_perf_r2"}
    counts = wb.weights.groupby("gene").size()
    assert (wb.extra.set_index("gene")["n_snps_in_model"] == counts.reindex(wb.genes)).all()
    assert models["Pituitary"].empty and models["Pituitary"].extra.empty
    assert sum(len(m.weights) for m in models.values()) == 2350
    with pytest.raises(InputError, match="varID"):
        read_model_db(mx / "dbs_3" / "TW_Whole_Blood_0.5.db", snp_key="varID")


def test_covariance_reader_blocks(mx):
    cov = read_covariance(mx / "meta_covariance" / "snps_covariance.txt.gz")
    assert len(cov) == 3
    sizes = dict(zip(cov.genes, cov.sizes))
    assert sizes == {"ENSG00000107937.14": 181, "ENSG00000107959.11": 705,
                     "ENSG00000234745.5": 325}
    snps, G = cov.block("ENSG00000107937.14")
    np.testing.assert_array_equal(G, G.T)
    assert len(snps) == 181
    raw = pd.read_csv(mx / "meta_covariance" / "snps_covariance.txt.gz", sep=r"\s+")
    row = raw.iloc[123]
    _, B = cov.block(row.GENE)
    ids = list(cov.block(row.GENE)[0])
    assert B[ids.index(row.RSID1), ids.index(row.RSID2)] == row.VALUE
    # a per-tissue file (space separated) gives the same numbers as the pandas parse
    t = read_covariance(mx / "cov_3" / "TW_Whole_Blood.txt.gz")
    raw = pd.read_csv(mx / "cov_3" / "TW_Whole_Blood.txt.gz", sep=r"\s+")
    for r in raw.sample(50, random_state=0).itertuples():
        ids, B = t.block(r.GENE)
        ids = list(ids)
        assert B[ids.index(r.RSID1), ids.index(r.RSID2)] == r.VALUE
        assert B[ids.index(r.RSID2), ids.index(r.RSID1)] == r.VALUE


def _write_cov(path, rows, sep=" "):
    with gzip.open(path, "wt") as fh:
        fh.write(sep.join(["GENE", "RSID1", "RSID2", "VALUE"]) + "\n")
        for r in rows:
            fh.write(sep.join(map(str, r)) + "\n")


def test_covariance_bad_input(tmp_path):
    p = tmp_path / "c.txt.gz"
    _write_cov(p, [("A", "rs1", "rs1", 1), ("B", "rs2", "rs2", 1), ("A", "rs3", "rs3", 1)])
    with pytest.raises(InputError, match="'A' are not contiguous"):
        read_covariance(p)
    _write_cov(p, [("A", "rs1", "rs1", 1), ("A", "rs1", "rs2", 0.5), ("A", "rs2", "rs1", 0.5)])
    with pytest.raises(InputError, match="twice"):
        read_covariance(p)
    with gzip.open(p, "wt") as fh:
        fh.write("gene snp1 snp2 cov\nA rs1 rs1 1\n")
    with pytest.raises(InputError, match="GENE RSID1 RSID2 VALUE"):
        read_covariance(p)
    # NA entries are skipped; a SNP without its variance is flagged; mixed whitespace parses
    with gzip.open(p, "wt") as fh:
        fh.write("GENE RSID1\tRSID2 VALUE\nA rs1 rs1 2\nA rs1\trs2 NA\nA rs2 rs2 NA\n")
    cov = read_covariance(p)
    ids, B = cov.block("A")
    assert list(ids) == ["rs1", "rs2"] and B[0, 0] == 2 and B[0, 1] == 0
    assert list(cov.has_diag) == [True, False]


def test_empty_and_broken_model_db(tmp_path, mx):
    p = tmp_path / "bad.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE extra(gene TEXT)")
    con.commit()
    con.close()
    with pytest.raises(InputError, match="no table 'weights'"):
        read_model_db(p)
    (tmp_path / "junk.db").write_text("not sqlite")
    with pytest.raises(InputError, match="SQLite"):
        read_model_db(tmp_path / "junk.db")


# --------------------------------------------------------------------- GWAS parsing
PARSING = [  # reference file, GwasColumns, extra kwargs, GWAS file
    ("scz2_zscore", dict(zscore="ZSCORE"), {}, "scz2"),
    ("scz2_p_betasign_beta", dict(pvalue="P", beta="BETA"), {}, "scz2"),
    ("scz2_p_betasign_col", dict(pvalue="P", beta_sign="BETA_SIGN"), {}, "scz2"),
    ("scz2_p_or", dict(pvalue="P", odds_ratio="OR"), {}, "scz2"),
    ("scz2_beta_se", dict(beta="BETA", se="SE"), {}, "scz2"),
    ("scz2_or_se", dict(odds_ratio="OR", se="SE"), {}, "scz2"),
    ("scz2c_skip_header_p_beta", dict(pvalue="P", beta="BETA"),
     dict(skip_until_header="HG19CHRC"), "scz2c"),
    ("scz2d_p0_p_beta", dict(pvalue="P", beta="BETA"), {}, "scz2d"),
    ("scz2d_p0_p_or", dict(pvalue="P", odds_ratio="OR"), {}, "scz2d"),
    ("scz2d_p0_p_beta_nofix", dict(pvalue="P", beta="BETA"), dict(input_pvalue_fix=0), "scz2d"),
    ("scz2d_beta_se", dict(beta="BETA", se="SE"), {}, "scz2d"),
]


@pytest.mark.parametrize("ref,cols,kw,folder", PARSING, ids=[p[0] for p in PARSING])
def test_gwas_z_derivation_matches_metaxcan(mx, ref, cols, kw, folder):
    expect = pd.read_csv(mx / "golden" / "gwas_parsing" / f"{ref}.txt", sep="\t")
    c = GwasColumns(snp="SNPID", effect_allele="A1", non_effect_allele="A2", **cols)
    got, rep = read_gwas_file(mx / "GWAS" / folder / "scz2.gwas.results.txt.gz", c, **kw)
    assert list(got["snp"]) == list(expect["snp"])
    assert list(got["effect_allele"]) == list(expect["effect_allele"])
    # MetaXcan prints float32 z with repr(float32): compare in float32, exactly
    np.testing.assert_array_equal(got["zscore"].to_numpy(np.float32),
                                  expect["zscore"].to_numpy(np.float32))
    if "beta" in expect:
        np.testing.assert_allclose(got["beta"], expect["beta"], rtol=1e-10)


def test_gwas_folder_per_chromosome_and_lower_case_header(mx):
    g = read_gwas(mx / "GWAS" / "scz2b", GwasColumns(snp="SNPID", zscore="ZSCORE"),
                  file_pattern=r"\.txt\.gz$")
    assert len(g.frame) == 9 and list(g.files["rows"]) == [7, 2]
    low = read_gwas_file(mx / "GWAS" / "scz2.gwas.results.txt.gz.b",
                         GwasColumns(snp="snpid", effect_allele="a1", non_effect_allele="a2",
                                     pvalue="p", odds_ratio="or"))[0]
    ref = pd.read_csv(mx / "golden" / "gwas_parsing" / "scz2_p_or.txt", sep="\t")
    np.testing.assert_array_equal(low["zscore"].to_numpy(np.float32),
                                  ref["zscore"].to_numpy(np.float32))


def test_gwas_bad_input(mx, tmp_path):
    f = mx / "GWAS" / "scz2" / "scz2.gwas.results.txt.gz"
    with pytest.raises(InputError, match="no column 'rsid'"):
        read_gwas_file(f, GwasColumns(snp="rsid", zscore="ZSCORE"))
    with pytest.raises(InputError, match="no usable z"):
        read_gwas_file(f, GwasColumns(snp="SNPID", zscore="Z_NOT_THERE"))
    with pytest.raises(InputError, match="needs a sign"):
        GwasColumns(pvalue="P").validate()
    with pytest.raises(InputError, match="no way to get z"):
        GwasColumns().validate()
    with pytest.raises(InputError, match="odds ratio"):
        read_gwas_file(f, GwasColumns(snp="SNPID", odds_ratio="BETA", se="SE"))
    with pytest.raises(InputError, match="no line contains"):
        read_gwas_file(f, GwasColumns(snp="SNPID", zscore="ZSCORE"), skip_until_header="XYZ")


def test_harmonization_case_by_case():
    gwas = pd.DataFrame({
        "snp": ["rs1", "rs2", "rs3", "rs4", "rs5", "rs6"],
        "effect_allele": ["A", "G", "T", "A", "A", "C"],
        "non_effect_allele": ["G", "A", "C", "C", "G", "T"],
        "zscore": [1.0, 2.0, 3.0, 4.0, np.nan, 0.5], "beta": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    alleles = pd.DataFrame({"snp": ["rs1", "rs2", "rs3", "rs4", "rs5", "rs7"],
                            "eff_allele": ["A", "A", "A", "A", "A", "A"],
                            "ref_allele": ["G", "G", "G", "G", "G", "G"]})
    out, rep = harmonize(gwas, alleles)
    z = dict(zip(out["snp"], out["zscore"]))
    b = dict(zip(out["snp"], out["beta"]))
    assert z == {"rs1": 1.0, "rs2": -2.0, "rs5": z["rs5"]} and np.isnan(z["rs5"])
    assert b["rs2"] == -0.2  # swapped: z and beta negated
    # rs3 is the strand complement (T/C of A/G): dropped, as MetaXcan does; rs4 mismatched
    assert rep == {"model_snps": 6, "in_gwas": 5, "kept": 3, "flipped": 1, "allele_mismatch": 2,
                   "duplicated": 0, "missing_from_gwas": 1, "non_finite_z": 1}
    fin, _ = harmonize(gwas, alleles, finite_only=True)
    assert list(fin["snp"]) == ["rs1", "rs2"]


def _harmonize_by_merge(g: pd.DataFrame, alleles: pd.DataFrame):
    """The definition as pandas operations (an inner merge on the SNP, GWAS row order, the
    first of duplicated GWAS rows), to check the hash-lookup implementation against."""
    a = alleles.drop_duplicates("snp")
    m = g.merge(a[["snp", "eff_allele", "ref_allele"]], on="snp", how="inner", sort=False)
    dup = m.duplicated("snp")
    m = m.loc[~dup]
    same = (m["effect_allele"] == m["eff_allele"]) & (m["non_effect_allele"] == m["ref_allele"])
    swap = (m["effect_allele"] == m["ref_allele"]) & (m["non_effect_allele"] == m["eff_allele"])
    swap &= ~same
    ok = (same | swap).to_numpy()
    sign = np.where(swap, -1.0, 1.0)[ok]
    out = pd.DataFrame({"snp": m["snp"].to_numpy()[ok],
                        "zscore": m["zscore"].to_numpy()[ok] * sign,
                        "beta": m["beta"].to_numpy()[ok] * sign,
                        "source_file": m["source_file"].to_numpy()[ok]})
    return out, int(dup.sum()), len(m)


def test_harmonization_equals_the_merge_definition():
    """Random GWAS with duplicated SNPs, swapped, mismatched and strand-flipped alleles, NaN
    z, SNPs absent from either side, in shuffled orders; the same Gwas object harmonized
    against several models (its lookup is built once) equals the merge-based definition."""
    from gpu_engine.twas.gwas import Gwas

    rng = np.random.default_rng(11)
    n = 3000
    alle = np.array(list("ACGT"))
    snp = rng.choice([f"rs{i}" for i in range(4000)], n)  # duplicates included
    g = pd.DataFrame({"snp": snp, "effect_allele": rng.choice(alle, n),
                      "non_effect_allele": rng.choice(alle, n), "zscore": rng.normal(size=n),
                      "beta": rng.normal(size=n), "source_file": rng.choice(["f1", "f2"], n)})
    g.loc[rng.choice(n, 50, replace=False), "zscore"] = np.nan
    g = g.astype({"snp": "str", "effect_allele": "str", "non_effect_allele": "str"})
    gw = Gwas(g)
    for _ in range(4):  # one GWAS, several models
        m = 1500
        a = pd.DataFrame({"snp": rng.choice([f"rs{i}" for i in range(4500)], m),
                          "eff_allele": rng.choice(alle, m), "ref_allele": rng.choice(alle, m)})
        out, rep = harmonize(gw, a)
        want, n_dup, n_in = _harmonize_by_merge(g, a)
        pd.testing.assert_frame_equal(out, want, check_dtype=False)
        assert rep["duplicated"] == n_dup > 0 and rep["in_gwas"] == n_in
        assert rep["kept"] == len(want) and rep["missing_from_gwas"] == len(
            a.drop_duplicates("snp")) - n_in
    assert gw._lookup is not None and gw._lookup.frame is g


def test_harmonized_gwas_matches_metaxcan(mx, models):
    """The golden intermediate: MetaXcan's parsed + aligned GWAS, union over the tissues."""
    ref = pd.read_csv(mx / "golden" / "harmonized_gwas_metaxcan_M03.tsv", sep="\t",
                      na_values=["NA"]).set_index("snp")
    g = read_gwas(mx / "golden" / "gwas", GOLDEN_COLUMNS, file_pattern=GOLDEN_PATTERN)
    parts = [harmonize(g, m.alleles())[0] for m in models.values() if not m.empty]
    ours = pd.concat(parts).drop_duplicates("snp").set_index("snp")
    assert set(ours.index) == set(ref.index) and len(ref) == 1091
    ours = ours.loc[ref.index]
    np.testing.assert_array_equal(ours["zscore"].to_numpy(), ref["zscore"].to_numpy())
    np.testing.assert_allclose(ours["beta"], ref["beta"], rtol=1e-12)
    assert (ours["source_file"] == ref["source_file"]).all()


# --------------------------------------------------------------------- S-PrediXcan
def _spredixcan(mx, model, tissue, **kw):
    cov = read_covariance(mx / "cov_3" / f"TW_{tissue}.txt.gz", genes=model.genes)
    g = read_gwas(mx / "golden" / "gwas", GOLDEN_COLUMNS, file_pattern=GOLDEN_PATTERN,
                  snps=set(model.weights["snp"]))
    return spredixcan(model, cov, g, **kw)


def test_spredixcan_matches_metaxcan_all_tissues(mx, models):
    """All 43 recorded tissues: same genes in the same order; z, p, effect size, var_g at
    rtol 1e-10 (we mimic the float32 z, so agreement is ~1e-13); counts exactly."""
    for tissue, model in models.items():
        res, rep = _spredixcan(mx, model, tissue)
        ref_file = mx / "golden" / "spredixcan" / f"TW_{tissue}.csv"
        if not ref_file.exists():
            assert tissue == "Pituitary" and res.empty and rep["empty_model"]
            continue
        ref = pd.read_csv(ref_file)
        assert list(res.columns) == list(ref.columns)
        assert list(res["gene"]) == list(ref["gene"]), tissue
        for c in ("zscore", "effect_size", "pvalue", "var_g", "pred_perf_r2", "pred_perf_pval"):
            np.testing.assert_allclose(res[c], ref[c], rtol=1e-10, err_msg=f"{tissue} {c}")
        for c in ("n_snps_used", "n_snps_in_cov", "n_snps_in_model"):
            np.testing.assert_array_equal(res[c], ref[c], err_msg=f"{tissue} {c}")


def test_spredixcan_reference_kernel_and_float64_z(mx, models):
    m = models["Whole_Blood"]
    a, _ = _spredixcan(mx, m, "Whole_Blood")
    b, _ = _spredixcan(mx, m, "Whole_Blood", kernel="reference")
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)


def test_spredixcan_gene_without_usable_snp_is_omitted(mx, models):
    m = models["Whole_Blood"]
    cov = read_covariance(mx / "cov_3" / "TW_Whole_Blood.txt.gz", genes=m.genes)
    gw = pd.DataFrame({"snp": m.weights["snp"], "effect_allele": m.weights["eff_allele"],
                       "non_effect_allele": m.weights["ref_allele"], "zscore": 1.0, "beta": 0.1})
    hla = set(m.weights.loc[m.weights["gene"] == "ENSG00000234745.5", "snp"])
    gw = gw.loc[~gw["snp"].isin(hla)]
    res, rep = spredixcan(m, cov, gw)
    assert "ENSG00000234745.5" not in set(res["gene"]) and rep["genes_without_snps"] == 1


# --------------------------------------------------------------------- S-MultiXcan
def test_smultixcan_matches_metaxcan(mx, models):
    """p-values at rtol 1e-12 (they agree to ~1e-14: only the summation order differs from
    MetaXcan's), n and n_indep exactly, every other column at 1e-10."""
    cov = read_covariance(mx / "meta_covariance" / "snps_covariance.txt.gz")
    g = read_gwas(mx / "golden" / "gwas", GOLDEN_COLUMNS, file_pattern=GOLDEN_PATTERN)
    sp = {f.stem[3:]: pd.read_csv(f) for f in (mx / "golden" / "spredixcan").glob("TW_*.csv")}
    res = smultixcan(models, cov, sp, condition_number=30, gwas=g)
    ref = pd.read_csv(mx / "golden" / "smultixcan" / "smultixcan_cn30.txt", sep="\t")
    assert list(res.columns) == list(ref.columns)
    assert list(res["gene"]) == list(ref["gene"])
    np.testing.assert_allclose(res["pvalue"].astype(float), ref["pvalue"], rtol=1e-12)
    for c in ("n", "n_indep", "status"):
        np.testing.assert_array_equal(res[c].astype(int), ref[c])
    for c in ("t_i_best", "t_i_worst"):
        assert list(res[c]) == list(ref[c])
    for c in ("p_i_best", "p_i_worst", "eigen_max", "eigen_min", "eigen_min_kept", "z_min",
              "z_max", "z_mean", "z_sd", "tmi"):
        np.testing.assert_allclose(res[c].astype(float), ref[c], rtol=1e-10, err_msg=c)
    # the trap: using only finite-z SNPs for R moves HLA-B's p by ~5 %
    finite = g.frame.loc[np.isfinite(g.frame["zscore"])]
    other = smultixcan(models, cov, sp, condition_number=30, gwas=finite)
    hla = other.set_index("gene").loc["ENSG00000234745.5", "pvalue"]
    assert abs(hla / ref.set_index("gene").loc["ENSG00000234745.5", "pvalue"] - 1) > 0.01
    with pytest.raises(InputError, match="truncation rule"):
        smultixcan(models, cov, sp, condition_number=None)


def test_smultixcan_status_codes(mx, models):
    cov = read_covariance(mx / "meta_covariance" / "snps_covariance.txt.gz")
    sp = {"Whole_Blood": pd.DataFrame({"gene": ["ENSG00000107937.14"], "zscore": [np.nan]})}
    res = smultixcan({"Whole_Blood": models["Whole_Blood"]}, cov, sp, condition_number=30)
    assert set(res["status"]) == {-2}
    assert res["pvalue"].isna().all()


@pytest.mark.gpu
def test_spredixcan_and_smultixcan_on_gpu(mx, models):
    m = models["Whole_Blood"]
    a, _ = _spredixcan(mx, m, "Whole_Blood")
    b, _ = _spredixcan(mx, m, "Whole_Blood", backend="gpu")
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)
    cov = read_covariance(mx / "meta_covariance" / "snps_covariance.txt.gz")
    sp = {f.stem[3:]: pd.read_csv(f) for f in (mx / "golden" / "spredixcan").glob("TW_*.csv")}
    c = smultixcan(models, cov, sp, condition_number=30)
    d = smultixcan(models, cov, sp, condition_number=30, backend="gpu")
    np.testing.assert_allclose(c["pvalue"].astype(float), d["pvalue"].astype(float), rtol=1e-10)


def test_n_snps_in_cov_counts_only_snps_with_values(tmp_path):
    from gpu_engine.twas import read_covariance

    f = tmp_path / "cov.txt"
    f.write_text("GENE RSID1 RSID2 VALUE\n"
                 "g1 rs1 rs1 1.0\ng1 rs1 rs2 0.5\ng1 rs2 rs2 1.0\n"
                 "g1 rs3 rs3 NA\n"          # rs3: in the file, not in the matrix
                 "g2 rs4 rs4 2.0\n")
    cov = read_covariance(f)
    assert dict(zip(cov.genes, cov.n_in_cov)) == {"g1": 2, "g2": 1}


def test_gwas_fast_reader_equals_the_careful_one(tmp_path, monkeypatch):
    """Arrow's reader (the fast path) and the careful reader give the same parsed GWAS: NA
    strings of every kind, an empty middle field, p-values with and without betas; a line
    with an empty last field sends the file to the careful reader, which skips and counts it."""
    import gpu_engine.twas.gwas as gw
    from gpu_engine.twas import GwasColumns, read_gwas_file

    rng = np.random.default_rng(3)
    n = 500
    g = pd.DataFrame({"SNP": [f"rs{i}" for i in range(n)], "A1": rng.choice(list("acgt"), n),
                      "A2": rng.choice(list("ACGT"), n), "BETA": rng.normal(size=n) / 7,
                      "SE": rng.uniform(0.01, 0.2, n), "P": rng.uniform(1e-300, 1, n),
                      "NOTE": "x"}).astype({"BETA": object, "SE": object, "P": object})
    g.loc[3, "BETA"], g.loc[4, "P"], g.loc[5, "BETA"] = "NA", ".", "nan"
    g.loc[6, "SNP"], g.loc[7, "SE"] = "NA", ""  # an NA SNP; an empty field mid-line
    text = g.to_csv(sep="\t", index=False, float_format="%.17g").splitlines()
    f = tmp_path / "g.txt"
    f.write_text("\n".join(text) + "\n")
    cols = [GwasColumns(beta="BETA", se="SE"), GwasColumns(pvalue="P", beta="BETA")]

    def careful(*a, **k):
        raise ValueError("forced")

    used, arrow = [], gw._read_arrow

    def spy(*a, **k):
        out = arrow(*a, **k)
        used.append(len(out))
        return out

    monkeypatch.setattr(gw, "_read_arrow", spy)
    for c in cols:
        fast, rep_fast = read_gwas_file(f, c)
        assert used and used[-1] == n  # the fast path read this file
        with monkeypatch.context() as m:
            m.setattr(gw, "_read_arrow", careful)
            slow, rep_slow = read_gwas_file(f, c)
        pd.testing.assert_frame_equal(fast, slow, check_dtype=False, rtol=0, atol=0)
        assert rep_fast == rep_slow
    assert not fast["zscore"].iloc[:10].notna().all()  # the NA rows are NaN, not dropped
    short = text[:]
    short[20] = short[20].rsplit("\t", 1)[0] + "\t"
    f.write_text("\n".join(short) + "\n")
    k = len(used)
    got, rep = read_gwas_file(f, cols[0])
    assert len(used) == k  # the fast reader refused the file
    assert rep["malformed_lines"] == 1 and len(got) == n - 2  # and the "NA" SNP
