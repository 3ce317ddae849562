"""Expression models end to end: the PLINK reader against the .bed bytes, the planted world's
elastic-net criteria, the PredictDB database and covariance (schema of the real GTEx
databases, read back by the TWAS layer, S-PrediXcan equal to the hand formula), bad inputs."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from gpu_engine.errors import InputError
from gpu_engine.expression import ElasticNetPredictor, Genotypes, read_plink


def test_plink_reader_counts_a1_as_the_bytes_say(shared):
    prefix = shared / "expr_data" / "genotypes" / "chr1"
    G = read_plink(prefix)
    bim = pd.read_csv(f"{prefix}.bim", sep=r"\s+", header=None)
    fam = pd.read_csv(f"{prefix}.fam", sep=r"\s+", header=None)
    assert G.dosages.shape == (len(fam), len(bim)) == (489, 966)
    assert list(G.samples[:2]) == list(fam[1].astype(str)[:2])
    assert (G.snps["eff_allele"] == bim[4].str.upper()).all()  # A1 (5th column) is counted
    assert (G.snps["ref_allele"] == bim[5].str.upper()).all()
    raw = np.fromfile(f"{prefix}.bed", dtype=np.uint8)
    assert list(raw[:3]) == [0x6C, 0x1B, 0x01]  # SNP-major
    per_snp = -(-len(fam) // 4)
    code = {0b00: 2.0, 0b10: 1.0, 0b11: 0.0, 0b01: np.nan}  # copies of A1
    for j in (0, 1, 500, 965):
        block = raw[3 + j * per_snp: 3 + (j + 1) * per_snp]
        calls = [(int(b) >> (2 * k)) & 3 for b in block for k in range(4)][:len(fam)]
        np.testing.assert_array_equal(G.dosages[:, j], [code[c] for c in calls])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from gpu_engine.datasets.expr_world import generate_expr_world

    return generate_expr_world(tmp_path_factory.mktemp("expr") / "w", n_samples=400,
                               genes_per_architecture=6, p_range=(60, 200), seed=3,
                               architectures=("additive", "epistasis", "null"))


@pytest.fixture(scope="module")
def fitted(world):
    G = read_plink(world.genotypes)
    return ElasticNetPredictor(backend="cpu").fit(G, world.expression(), world.genes), G


def test_planted_world_criteria(world, fitted):
    m, _ = fitted
    s = m.summary_.merge(world.truth, on="gene")
    gv, y = world.genetic_value(), world.expression()
    oracle = {g: np.corrcoef(gv[g], y[g])[0, 1] for g in s.loc[s.h2 > 0, "gene"]}
    add = s.loc[s.architecture == "additive"]
    shortfall = np.mean([oracle[g] - r for g, r in zip(add.gene, add.rho_avg)])
    assert shortfall <= 0.12 and (add.rho_avg > 0.3).mean() >= 0.9
    assert add.significant.mean() >= 0.95
    assert s.loc[s.architecture == "epistasis", "rho_avg"].mean() < 0.1
    assert s.loc[s.architecture == "null", "significant"].mean() <= 0.05 + 1 / 6


def test_database_follows_the_real_schema_and_round_trips(shared, world, fitted, tmp_path):
    from gpu_engine.twas import read_covariance, read_model_db

    m, G = fitted
    db, cov = tmp_path / "m.db", tmp_path / "m.txt.gz"
    written = m.write(db, cov, tissue="Synthetic", population="EUR")
    assert len(written) == int(m.summary_.significant.sum()) > 0
    real = sorted((shared / "metaxcan_data" / "dbs_3").glob("*.db"))[0]

    def schema(path):
        con = sqlite3.connect(path)
        try:
            tables = {t: [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')]
                      for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            idx = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        finally:
            con.close()
        return tables, idx

    ours, our_idx = schema(db)
    ref, ref_idx = schema(real)
    for table, cols in ref.items():
        assert ours[table][:len(cols)] == cols, table  # the real columns first, in order
    assert ref_idx <= our_idx
    model = read_model_db(db)
    assert set(model.genes) == set(written.gene)
    w = m.weights_.loc[m.weights_.gene.isin(written.gene)]
    merged = model.weights.merge(w, left_on=["gene", "snp"], right_on=["gene", "rsid"])
    assert len(merged) == len(w) and np.allclose(merged.weight_x, merged.weight_y)
    blocks = read_covariance(cov, genes=model.genes)
    assert set(blocks.genes) == set(written.gene)
    # S-PrediXcan on the written model and a GWAS computed from the panel = the hand formula
    from gpu_engine.twas import spredixcan

    rng = np.random.default_rng(0)
    X = G.dosages
    t = X[:, :50] @ rng.normal(size=50) * 0.05 + rng.normal(size=len(X))
    snps = G.snps.assign(z=[np.corrcoef(X[:, j], t)[0, 1] * np.sqrt(len(t))
                            for j in range(X.shape[1])])
    gwas = pd.DataFrame({"snp": snps.snp, "zscore": snps.z, "beta": snps.z / np.sqrt(len(t)),
                         "effect_allele": snps.eff_allele, "non_effect_allele": snps.ref_allele})
    res, _ = spredixcan(model, blocks, gwas.assign(pvalue=np.nan)[["snp", "zscore", "beta"]],
                        harmonized=True, backend="cpu")
    for g in written.gene[:5]:
        wg = w.loc[w.gene == g]
        cols = G.snps.reset_index().set_index("snp").loc[wg.rsid, "index"].to_numpy()
        S = np.atleast_2d(np.cov(X[:, cols], rowvar=False, ddof=1))
        sd = np.sqrt(np.diag(S))
        z = snps.z.to_numpy()[cols]
        want = (wg.weight.to_numpy() * sd) @ z / np.sqrt(wg.weight.to_numpy() @ S @ wg.weight)
        assert res.set_index("gene").at[g, "zscore"] == pytest.approx(want, rel=1e-9)


def test_bad_inputs_are_clear_errors_or_counted_skips(world):
    G = read_plink(world.genotypes)
    E = world.expression()
    genes = world.genes
    est = ElasticNetPredictor(backend="cpu", n_lambda=20)
    # samples that do not match
    with pytest.raises(InputError, match="sample ids must match"):
        est.fit(G, E.set_axis([f"X{i}" for i in range(len(E))]), genes)
    # NaN expression names the gene
    bad = E.copy()
    bad.iloc[3, 2] = np.nan
    with pytest.raises(InputError, match=E.columns[2]):
        est.fit(G, bad, genes)
    # duplicated sample / SNP ids
    with pytest.raises(InputError, match="duplicated sample"):
        Genotypes(G.dosages[:3], ["a", "a", "b"], G.snps)
    with pytest.raises(InputError, match="duplicated SNP"):
        Genotypes(G.dosages[:, :2], G.samples, G.snps.iloc[[0, 0]])
    # a gene with < 2 cis SNPs (a window on an empty chromosome stretch): a counted skip;
    # monomorphic SNPs are filtered and counted
    g2 = genes.iloc[:3].copy()
    g2.loc[g2.index[0], ["start", "end"]] = [500_000_000, 500_010_000]
    X = G.dosages.copy()
    X[:, 0] = 1.0
    m = ElasticNetPredictor(backend="cpu", n_lambda=20).fit(
        Genotypes(X, G.samples, G.snps), E[g2.gene], g2)
    assert m.report_["genes_skipped_fewer_than_2_snps"] == [g2.gene.iloc[0]]
    assert m.report_["snp_filter"]["monomorphic"] == 1 and len(m.summary_) == 2
    # no gene trainable: an error, not an empty database
    with pytest.raises(InputError, match="no gene has ≥ 2 cis SNPs"):
        est.fit(G, E[g2.gene[:1]], g2.iloc[:1])
