"""Gene–gene correlation matrices: the vectorized computation against the pair-by-pair
definition (real fixture and synthetic cohorts), structure, distance filter, repair, output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpu_engine.datasets.twas import make_twas_world
from gpu_engine.errors import InputError
from gpu_engine.twas import (
    ModelDB,
    gene_correlations,
    model_files,
    pairwise_reference,
    read_covariance,
    read_gene_corr,
    read_model_db,
)
from gpu_engine.twas.gene_corr import _pd_repair

PITRM1 = "ENSG00000107959.11"


@pytest.fixture(scope="module")
def cohort():
    return make_twas_world(150, 6, seed=3)


@pytest.fixture(scope="module")
def result(cohort):
    return gene_correlations(cohort.models, cohort.ld, genes=cohort.genes, repair=None)


def test_fixture_genes_with_a_pseudo_gene(shared):
    """The real models and global LD: PITRM1's tissues split into two genes sharing SNPs give
    a non-trivial pair; genes with disjoint SNPs (no cross-gene LD in the file) give 0."""
    mx = shared / "metaxcan_data"
    models = {}
    for i, (t, f) in enumerate(model_files(mx / "dbs_3", r"TW_(.*)_0.5.db").items()):
        m = read_model_db(f, tissue=t)
        if i % 2:
            w, e = m.weights.copy(), m.extra.copy()
            w.loc[w["gene"] == PITRM1, "gene"] = "PSEUDO"
            e.loc[e["gene"] == PITRM1, ["gene", "gene_name"]] = ["PSEUDO", "PSEUDO"]
            m = ModelDB(m.path, w, e, t)
        models[t] = m
    cov = read_covariance(mx / "meta_covariance" / "snps_covariance.txt.gz")
    gc = gene_correlations(models, cov, repair=None)
    ref = pairwise_reference(models, cov)
    got = gc.to_frame("gene").loc[ref.index, ref.columns]
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-14)
    assert 0.2 < ref.loc[PITRM1, "PSEUDO"] < 0.6
    assert ref.loc[PITRM1, "ENSG00000107937.14"] == 0.0
    k = gc.genes.set_index("gene")["k"]
    assert (k <= gc.genes.set_index("gene")["n_tissues"]).all() and (k >= 1).all()


def test_matches_pairwise_definition_on_a_cohort(cohort, result):
    chrom = dict(zip(cohort.genes["gene"], cohort.genes["chromosome"].astype(str)))
    ref = pairwise_reference(cohort.models, cohort.ld, chromosome=chrom)
    got = result.to_frame("gene").loc[ref.index, ref.columns]
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-10, atol=1e-13)
    off = ~np.eye(len(ref), dtype=bool)
    assert (ref.to_numpy()[off] > 1e-6).sum() > 50  # the test exercises non-trivial pairs


def test_structure(cohort, result):
    M = result.matrix.toarray()
    np.testing.assert_array_equal(M, M.T)
    np.testing.assert_array_equal(np.diag(M), 1.0)
    assert (M >= 0).all() and (M <= 1 + 1e-12).all()
    chrom = result.genes["chromosome"].to_numpy()
    assert (M[chrom[:, None] != chrom[None, :]] == 0).all()
    # genes are ordered by chromosome, then position
    g = result.genes.assign(c=result.genes["chromosome"].astype(int))
    assert g.sort_values(["c", "start"]).index.equals(g.index)
    assert np.linalg.eigvalsh(M).min() > 0


def test_distance_filter(cohort, result):
    gc = gene_correlations(cohort.models, cohort.ld, genes=cohort.genes, within_mb=0.5,
                           repair=None)
    g = gc.genes
    half = 0.25e6
    lo, hi = g["start"].to_numpy() - half, g["end"].to_numpy() + half
    near = (lo[:, None] <= hi[None, :]) & (lo[None, :] <= hi[:, None])
    M, full = gc.matrix.toarray(), result.matrix.toarray()
    assert (M[~near] == 0).all()
    np.testing.assert_array_equal(M[near], full[near])
    assert (full[~near] != 0).any()  # the filter removed something
    assert "filtered_min_eig_before" in gc.report


def test_positive_definiteness_repair():
    R = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.5], [0.9, -0.5, 1.0]])
    assert np.linalg.eigvalsh(R)[0] < 0
    for how in ("clip", "corr_nearest"):
        fixed, before, after, fro, mx = _pd_repair(R, how, 1e-8)
        assert before < 0 and after > 0 and fro > 0 and mx > 0
        np.testing.assert_allclose(np.diag(fixed), 1.0)
        np.testing.assert_allclose(fixed, fixed.T)
        assert np.isclose(fro, np.linalg.norm(fixed - R))
    same, *rest = _pd_repair(np.eye(3), "clip", 1e-8)
    assert rest[2] == 0.0 and np.array_equal(same, np.eye(3))
    with pytest.raises(InputError, match="unknown positive-definiteness repair"):
        _pd_repair(R, "magic", 1e-8)


def test_condensed_output_round_trip(tmp_path, result):
    result.save(tmp_path / "gc", labels="gene_name")
    back = read_gene_corr(tmp_path / "gc")
    want = result.to_frame("gene_name")
    pd.testing.assert_frame_equal(back, want, check_names=False)
    from gpu_engine.gls.model import check_gene_corr

    check_gene_corr(back)  # the GLS code accepts it


def test_snp_set_and_errors(cohort):
    some = cohort.snps["snp"].iloc[::2]
    gc = gene_correlations(cohort.models, cohort.ld, snps=some, genes=cohort.genes)
    assert gc.params["snps_in_ld"] == len(some)
    with pytest.raises(InputError, match="no model SNP"):
        gene_correlations(cohort.models, cohort.ld, snps=["rs_nothing"])
    with pytest.raises(InputError, match="gene positions"):
        gene_correlations(cohort.models, cohort.ld, within_mb=5)
    with pytest.raises(InputError, match="no row for"):
        gene_correlations(cohort.models, cohort.ld, genes=cohort.genes.iloc[5:])


def test_chromosomes_from_varid_keys(cohort):
    models = {}
    for t, m in cohort.models.items():
        w = m.weights.assign(snp=m.weights["varID"])
        models[t] = ModelDB(m.path, w, m.extra, t)
    ld = cohort.ld
    vid = dict(zip(cohort.snps["snp"], cohort.snps["varID"]))
    from dataclasses import replace

    ld2 = replace(ld, snps=np.array([vid[s] for s in ld.snps], dtype=object))
    gc = gene_correlations(models, ld2)
    by = dict(zip(cohort.genes["gene"], cohort.genes["chromosome"].astype(str)))
    assert all(by[g] == c for g, c in zip(gc.genes["gene"], gc.genes["chromosome"]))


@pytest.mark.gpu
def test_gpu_backend_equals_cpu(cohort, result):
    gc = gene_correlations(cohort.models, cohort.ld, genes=cohort.genes, repair=None,
                           backend="gpu")
    np.testing.assert_allclose(gc.matrix.toarray(), result.matrix.toarray(), rtol=1e-10,
                               atol=1e-12)


def test_dask_partitioned_runs_equal_local(cohort, result, tmp_path):
    """Chromosomes (gene correlations) and tissues (S-PrediXcan) as tasks on a process-based
    LocalCluster give exactly the single-process results."""
    from gpu_engine.datasets.twas import write_covariance
    from gpu_engine.distributed import get_client
    from gpu_engine.twas import spredixcan_tissues

    covs = {}
    for t in cohort.tissues[:3]:
        covs[t] = tmp_path / f"{t}.txt.gz"
        write_covariance(cohort.tissue_covariance(t), covs[t])
    models = {t: cohort.models[t] for t in covs}
    gw = cohort.gwas({cohort.genes["gene"].iloc[0]: 5.0})
    gwas = pd.DataFrame({"snp": gw["SNP"], "effect_allele": gw["A1"],
                         "non_effect_allele": gw["A2"], "zscore": gw["ZSCORE"],
                         "beta": gw["BETA"]})
    local, rep = spredixcan_tissues(models, covs, gwas)
    client = get_client("local", n_workers=2)
    try:
        dist, rep2 = spredixcan_tissues(models, covs, gwas, client=client)
        gc = gene_correlations(cohort.models, cohort.ld, genes=cohort.genes, repair=None,
                               client=client)
    finally:
        client.close()
    for t in covs:
        pd.testing.assert_frame_equal(local[t], dist[t])
    assert list(rep["tissue"]) == list(covs) and (rep["genes_tested"] > 0).all()
    np.testing.assert_array_equal(gc.matrix.toarray(), result.matrix.toarray())
