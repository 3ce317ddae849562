"""Synthetic world: formats, determinism, planted structure (small always, medium as a slow
test), consistency of the truth with the inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpu_engine import io
from gpu_engine.datasets import World, check_world, generate_world, world_config
from gpu_engine.datasets.checks import independent_genes
from gpu_engine.datasets.world import SMULTIXCAN_COLUMNS
from gpu_engine.errors import InputFileNotFoundError


def test_small_world_files_in_real_formats(small_world):
    w, cfg = small_world, small_world.config
    genes = w.genes()
    assert list(genes.columns) == ["gene", "gene_id", "chromosome", "start", "end"]
    assert genes["gene"].is_unique and genes["gene_id"].str.match(r"ENSG9\d{10}\.1").all()
    R = w.gene_corr()
    assert list(R.index) == list(genes["gene"]) and R.shape == (cfg.n_genes, cfg.n_genes)
    sets = w.gene_sets()
    sizes = np.array([len(v) for v in sets.values()])
    assert len(sets) == cfg.n_pathways and sizes.min() >= 15 and sizes.max() <= 500
    Y = w.expression()
    assert Y.shape == (cfg.n_genes, cfg.n_samples) and np.isfinite(Y.to_numpy()).all()
    t = w.smultixcan(w.traits[0])
    assert tuple(t.columns) == SMULTIXCAN_COLUMNS and len(t) == cfg.n_genes
    assert t["pvalue"].is_monotonic_increasing  # sorted by p, as MetaXcan writes them
    assert ((t["n_indep"] >= 1) & (t["n_indep"] <= t["n"]) & (t["n"] <= cfg.n_tissues)).all()
    assert (t["eigen_min_kept"] >= t["eigen_max"] / 30).all()
    assert set(t["t_i_best"]) <= set(w.tissues)
    # per-tissue z: only the genes with a model in that tissue, consistent with n
    n_models = pd.Series(np.concatenate([w.spredixcan(tis).index for tis in w.tissues])).value_counts()
    pd.testing.assert_series_equal(n_models.sort_index(), t.set_index("gene_name")["n"]
                                   .sort_index(), check_names=False, check_dtype=False)
    sig = w.drug_signatures()
    assert sig.shape[1] == cfg.n_drugs and 0.9 * cfg.n_genes < len(sig) < cfg.n_genes
    gold = w.gold_standard()
    assert list(gold.columns) == ["drug", "disease", "label"] and set(gold["label"]) == {0, 1}


def test_world_is_deterministic_by_seed(tmp_path, small_world):
    cfg = world_config("small").replace(n_genes=300, n_samples=40, n_traits=20, n_drugs=10,
                                        n_pathways=30, n_modules=10, sample_block=16, trait_block=8)
    a = generate_world(tmp_path / "a", config=cfg, seed=5)
    b = generate_world(tmp_path / "b", config=cfg, seed=5)
    c = generate_world(tmp_path / "c", config=cfg, seed=6)
    for read in (World.expression, World.gene_corr, World.drug_signatures):
        pd.testing.assert_frame_equal(read(a), read(b), check_exact=True)
    pd.testing.assert_frame_equal(a.smultixcan("trait_0007"), b.smultixcan("trait_0007"))
    assert not a.expression().equals(c.expression())
    assert len(list((tmp_path / "a" / "expression").iterdir())) == 3  # 40 samples in blocks of 16


def test_world_refuses_existing_folder(tmp_path):
    (tmp_path / "w").mkdir()
    with pytest.raises(FileExistsError):
        generate_world(tmp_path / "w")
    with pytest.raises(InputFileNotFoundError, match="not a synthetic world"):
        World(tmp_path / "w")


def test_invalid_config_is_explained():
    with pytest.raises(ValueError, match="annotated modules need as many pathways"):
        world_config("small", n_pathways=5)
    with pytest.raises(ValueError, match="unknown scale"):
        world_config("huge")


def test_small_world_planted_structure(small_world):
    table = check_world(small_world)
    assert table["ok"].all(), table[~table["ok"]].to_string()


def test_truth_is_consistent_with_inputs(small_world):
    w = small_world
    traits = w.truth("traits")
    tm = w.truth("trait_modules")
    null = set(traits.loc[traits["is_null"], "trait"])
    assert null and not (set(tm["trait"]) & null)  # null traits have no causal module
    modules = w.truth("modules")
    sets = w.gene_sets()
    Z = w.truth("Z")
    for row in modules[modules["annotated"]].itertuples():
        members = set(Z.index[Z[row.module] > 0])
        assert len(members & set(sets[row.pathway])) == row.n_pathway_genes
    # gold standard: label 1 exactly where a drug reverses a causal module of the disease
    clusters = w.truth("clusters")
    drugs = w.truth("drug_modules")
    dmap = w.trait_disease().merge(traits[["trait", "cluster"]], on="trait")
    disease_cluster = dict(zip(dmap["disease"], dmap["cluster"]))
    net = drugs.assign(e=drugs["direction"] * drugs["strength"]).groupby(["drug", "module"])["e"].sum()
    for row in w.gold_standard().itertuples():
        c = clusters[clusters["cluster"] == disease_cluster.get(row.disease, int(row.disease[3:]) - 1)]
        reverses = any(np.sign(net.get((row.drug, m), 0.0)) == -s for m, s in zip(c["module"], c["sign"]))
        assert reverses == bool(row.label), row


def test_null_trait_genes_are_independent_where_chosen(small_world):
    genes = small_world.genes()
    idx = independent_genes(genes, small_world.config.ld_window_mb)
    R = small_world.gene_corr().to_numpy()[np.ix_(idx, idx)]
    assert np.count_nonzero(R - np.eye(len(idx))) == 0


@pytest.mark.slow
def test_medium_world_planted_structure(medium_world):
    table = check_world(medium_world)
    assert table["ok"].all(), table[~table["ok"]].to_string()
    density = table.set_index("check").loc["R off-diagonal non-zero fraction", "value"]
    assert 0.001 < density < 0.02  # ~1%, block-banded


def test_expression_parts_are_a_matrix_folder(small_world):
    parts = list(small_world.iter_expression())
    assert sum(p.shape[1] for p in parts) == small_world.config.n_samples
    assert io.read_metadata(small_world.path / "expression") == {}  # inputs, not results
