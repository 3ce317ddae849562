"""DEcode inputs (spec decode.md §2, §9 test 5): binning from a hand-made GTF and BED files,
distinct-base counting with overlapping peaks, strands, channel 0, the feature filter, the
scaling, the targets."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("bioframe", reason="the binding-map builder needs bioframe ([dl] extra)")

from gpu_engine.decode import data, features
from gpu_engine.errors import InputError


def _gtf(tmp_path):
    rows = [
        # A, + strand, exons [10000,10100) and [11000,11001): W = 101 -> 2 bins
        ("1", "exon", 10001, 10100, "+", "A", "A1", ""),
        ("1", "exon", 11001, 11001, "+", "A", "A1", ""),
        # a shorter, non-canonical-tagged transcript of A that must not be chosen
        ("1", "exon", 10001, 10050, "+", "A", "A2", ""),
        # B, - strand, one exon [50000,50250): W = 250 -> 3 bins
        ("1", "exon", 50001, 50250, "-", "B", "B1", ""),
        # C, + strand, W = 100 -> exactly 1 bin; the canonical tag beats a longer transcript
        ("2", "exon", 20001, 20100, "+", "C", "C1", ' tag "Ensembl_canonical";'),
        ("2", "exon", 20001, 20400, "+", "C", "C2", ""),
    ]
    lines = ["#comment"]
    for chrom, feat, s, e, strand, g, t, extra in rows:
        lines.append("\t".join([chrom, "test", feat, str(s), str(e), ".", strand, ".",
                                f'gene_id "{g}"; transcript_id "{t}";{extra}']))
    lines.append("\t".join(["1", "test", "gene", "10001", "11001", ".", "+", ".",
                            'gene_id "A";']))
    p = tmp_path / "genes.gtf"
    p.write_text("\n".join(lines) + "\n")
    return p


def _bed(tmp_path, name, rows):
    p = tmp_path / f"{name}.bed"
    p.write_text("".join("\t".join(map(str, r)) + "\n" for r in rows))
    return p


@pytest.fixture
def maps(tmp_path):
    regs = pd.DataFrame([
        # RBP1: two overlapping peaks in A's exon 1 ([10010,10050) merged = 40 bases), one
        # across A's exon junction (10 bases of bin 0, 1 base of bin 1)
        ("RBP1", "RBP", _bed(tmp_path, "RBP1", [("1", 10010, 10030), ("1", 10020, 10050),
                                                  ("1", 10090, 11001)])),
        # RBP2: a '+' peak on B (a '-' gene: ignored) and a '-' peak at B's genomic start
        # (the transcript's 3' end: RNA bases 240-249, bin 2)
        ("RBP2", "RBP", _bed(tmp_path, "RBP2", [("1", 50100, 50200, "p", 0, "+"),
                                                  ("1", 50000, 50010, "p", 0, "-")])),
        # TF1: 2,000 bp upstream of A's TSS (bin 0, 50 bases), across A's window end (bin 29,
        # 10 bases), and upstream of B (a '-' gene: bin 0, 50 bases)
        ("TF1", "TF", _bed(tmp_path, "TF1", [("1", 8000, 8050), ("1", 10990, 11100),
                                               ("1", 52200, 52300)])),
    ], columns=["name", "type", "path"])
    return features.build_binding_maps(_gtf(tmp_path), regs)


def _value(long, gene, feature, b):
    v = long[(long.gene == gene) & (long.feature == feature) & (long.bin == b)]["value"]
    return float(v.sum())


def test_bins_channel0_and_representative_transcript(maps):
    g = maps.genes.set_index("gene")
    assert g.loc["A", "n_bins"] == 2 and g.loc["B", "n_bins"] == 3 and g.loc["C", "n_bins"] == 1
    assert g.loc["A", "transcript"] == "A1" and g.loc["C", "transcript"] == "C1"
    assert [_value(maps.rna, "A", "exon", b) for b in (0, 1)] == [100, 1]
    assert [_value(maps.rna, "B", "exon", b) for b in (0, 1, 2)] == [100, 100, 50]
    assert _value(maps.rna, "C", "exon", 0) == 100
    prom = maps.promoter[maps.promoter.feature == "mask"]
    assert len(prom) == 3 * 30 and (prom["value"] == 100).all()
    assert maps.channels("rna") == ["exon", "RBP1", "RBP2"]
    assert maps.channels("promoter") == ["mask", "TF1"]


def test_overlapping_peaks_and_exon_junction(maps):
    assert _value(maps.rna, "A", "RBP1", 0) == 40 + 10
    assert _value(maps.rna, "A", "RBP1", 1) == 1


def test_strands(maps):
    assert _value(maps.rna, "B", "RBP2", 2) == 10
    assert maps.rna[(maps.rna.gene == "B") & (maps.rna.feature == "RBP2")]["value"].sum() == 10


def test_promoter_window(maps):
    assert _value(maps.promoter, "A", "TF1", 0) == 50
    assert _value(maps.promoter, "A", "TF1", 29) == 10
    assert _value(maps.promoter, "B", "TF1", 0) == 50
    assert maps.promoter[(maps.promoter.feature == "TF1")]["value"].sum() == 110


def test_save_read_and_dense(maps, tmp_path):
    maps.save(tmp_path / "maps")
    back = features.BindingMaps.read(tmp_path / "maps")
    pd.testing.assert_frame_equal(back.rna, maps.rna)
    rna, prom = back.dense(["A", "B"])
    assert rna[0].shape == (3, 2) and prom[1].shape == (2, 30)
    assert rna[0][1].tolist() == [50, 1]
    with pytest.raises(InputError, match="'Z'"):
        back.dense(["Z"])


def test_feature_filter_scaling_and_drops(maps):
    targets = pd.DataFrame({"t1": [1.0, 2.0, 3.0, np.nan], "t2": [0.0, 1.0, 1.0, 1.0]},
                           index=["A", "B", "C", "NOMAP"])
    splits = {"train": ["A", "B"], "validation": ["C"], "test": ["NOMAP"]}
    with pytest.raises(InputError, match="test set is empty"):
        data.prepare(maps, targets, splits, min_genes=1)
    splits = pd.Series({"A": "train", "B": "validation", "C": "test", "NOMAP": "test"})
    targets.loc["D"] = [1.0, 1.0]
    p = data.prepare(maps, targets, splits, min_genes=1)
    assert p.report["dropped_nan_targets"] == 1
    assert p.report["dropped_no_binding_maps"] == 1 and p.report["examples_no_binding_maps"] == ["D"]
    assert p.rna_channels == ["exon", "RBP1", "RBP2"]
    mx = p.maxima.set_index("feature")["max"]
    # training gene A only: RBP2 never bound there -> maximum 0 -> 1
    assert mx["exon"] == 100 and mx["RBP1"] == 50 and mx["RBP2"] == 1 and mx["TF1"] == 50
    assert p.rna[0][1].tolist() == [1.0, 0.02]
    # the < min_genes filter (counted over every gene with targets by default)
    p2 = data.prepare(maps, targets, splits, min_genes=2)
    assert p2.rna_channels == ["exon"] and p2.prom_channels == ["mask", "TF1"]
    assert p2.report["dropped_regulators"] == 2
    p3 = data.prepare(maps, targets, splits, min_genes=1, filter_on="train")  # train = A
    assert p3.rna_channels == ["exon", "RBP1"] and p3.prom_channels == ["mask", "TF1"]
    with pytest.raises(InputError, match="no regulator"):
        data.prepare(maps, targets, splits, min_genes=5)


def test_targets_and_divisors():
    E = pd.DataFrame([[1.0, 2.0, 4.0, 10.0], [0.0, 0.0, 1.0, 1.0], [3, 3, 3, 4]],
                     index=["a", "b", "c"], columns=["t1", "t2", "t3", "t4"])
    T = data.tissue_targets(E)
    assert T["MedianExp"].tolist() == [3.0, 0.5, 3.0]  # even count: mean of the middle two
    assert T.loc["a", "t1"] == -2.0
    d = data.target_divisors(T, ["a", "b", "c"]).set_index("output")
    fc = T.drop(columns="MedianExp").to_numpy()
    assert d.loc["t1", "divisor"] == pytest.approx(fc.std(ddof=0))
    assert d.loc["MedianExp", "divisor"] == pytest.approx(np.std([3, 0.5, 3], ddof=1))
    assert d.loc["MedianExp", "ddof"] == 1
    tpm = data.tissue_targets(2 ** E - 0.25, tpm=True)
    np.testing.assert_allclose(tpm.to_numpy(), T.to_numpy(), atol=1e-12)
    c = data.target_divisors(E, ["a", "b"], kind="columns").set_index("output")
    assert c.loc["t4", "divisor"] == pytest.approx(4.5)
    with pytest.raises(InputError, match="constant"):
        data.target_divisors(E.assign(t1=1.0), ["a", "b"], kind="columns")


def test_chromosome_split():
    genes = pd.DataFrame({"gene": [f"g{i}" for i in range(50)],
                          "chromosome": ["chr1"] * 10 + ["2"] * 40})
    s = data.chromosome_split(genes, seed=3)
    assert (s.iloc[:10] == "test").all() and (s == "validation").sum() == 4
    assert s.equals(data.chromosome_split(genes, seed=3))


def test_quantile_normalization_textbook_case():
    """The textbook example (ties get the mean of their ranks' values)."""
    E = np.array([[5, 4, 3], [2, 1, 4], [3, 4, 6], [4, 2, 8]], float)
    want = np.array([[17 / 3, 31 / 6, 2], [2, 2, 3], [3, 31 / 6, 14 / 3], [14 / 3, 3, 17 / 3]])
    np.testing.assert_allclose(data.quantile_normalize(E), want, rtol=1e-12)


def test_person_targets_filter_covariates_and_median():
    rng = np.random.default_rng(0)
    n, g = 80, 30
    people = [f"p{i}" for i in range(n)]
    C = pd.DataFrame({"RIN": rng.normal(size=n)}, index=people)
    E = 5 + rng.normal(0, 0.3, size=(g, n))
    E[0] += 2.0 * C["RIN"].to_numpy()  # gene 0: all its variation is the covariate
    tpm = pd.DataFrame(2 ** E - 0.25, index=[f"g{i}" for i in range(g)], columns=people)
    tpm.iloc[1] = 0.5  # below 1 TPM everywhere: filtered
    tpm.iloc[2, : n // 2 + 1] = 0.0  # > 1 TPM in fewer than half the samples: filtered
    P = data.person_targets(tpm, C)
    assert list(P.columns) == people + [data.MEDIAN] and len(P) == g - 2
    assert P.attrs["report"] == {"genes_in": g, "genes_kept": g - 2, "samples": n}
    np.testing.assert_allclose(np.median(P[people].to_numpy(), axis=1), 0, atol=1e-12)
    raw = data.person_targets(tpm)
    rin = C["RIN"].to_numpy()
    assert abs(np.corrcoef(raw.loc["g0", people], rin)[0, 1]) > 0.8
    assert abs(np.corrcoef(P.loc["g0", people], rin)[0, 1]) < 0.1
    assert data.MEDIAN not in data.person_targets(tpm, C, median=False).columns
    d = data.target_divisors(data.person_targets(tpm, C, median=False), P.index)
    assert d["divisor"].nunique() == 1 and (d["ddof"] == 0).all()
    with pytest.raises(InputError, match="no row for sample 'p3'"):
        data.person_targets(tpm, C.drop(index="p3"))
    with pytest.raises(InputError, match="no gene has"):
        data.person_targets(tpm * 0)
