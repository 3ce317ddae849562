"""`gpu-engine drugs score|evaluate` on a synthetic world; the S-PrediXcan file reader."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from gpu_engine import results
from gpu_engine.cli.main import cli
from gpu_engine.drugs import Comparison, DrugScores, evaluate, score, top_predictions
from gpu_engine.drugs.inputs import spredixcan_files, tissue_matrices


def _run(*args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


def test_score_and_evaluate_chain(small_world, tmp_path):
    w = small_world
    res = _run("drugs", "score", "--signatures", w.path / "drugs" / "signatures.parquet",
               "--twas-z", w.path / "spredixcan", "--top-k", "all,50",
               "--trait-disease", w.path / "trait_disease.tsv", "--out", tmp_path / "gene")
    assert res.exit_code == 0, res.output
    for f in ("drug_trait.parquet", "best_tissue.parquet", "drug_disease.parquet",
              "disease_trait.parquet", "top_predictions.tsv", "report.json"):
        assert (tmp_path / "gene" / f).is_file(), f
    api = score(w.drug_signatures(), {t: w.spredixcan(t) for t in w.tissues},
                top_k=("all", 50), trait_disease=w.trait_disease())
    got = pd.read_parquet(tmp_path / "gene" / "drug_disease.parquet").set_index("drug")
    np.testing.assert_array_equal(got.to_numpy(), api.drug_disease.to_numpy())
    rep = json.loads((tmp_path / "gene" / "report.json").read_text())
    assert rep["tissues"] == w.tissues and rep["top_k"] == ["all", "50"]
    # the folder is what DrugScores.save writes: it loads back equal to the API's result
    loaded = results.load(tmp_path / "gene")
    assert isinstance(loaded, DrugScores) and loaded.metadata["command"] == "drugs score"
    api.top = top_predictions(api, n=20)
    assert results.equal(loaded, api)

    # module space from already projected inputs (LVs × drugs, LVs × traits per tissue)
    from gpu_engine.plier import LVModel

    m = LVModel(w.truth("Z"), 1.0, backend="cpu")
    (tmp_path / "proj").mkdir()
    from gpu_engine.io import write_matrix

    write_matrix(m.transform(w.drug_signatures()), tmp_path / "drug_lv.parquet", label="lv")
    for t in w.tissues:
        write_matrix(m.transform(w.spredixcan(t).astype(float)), tmp_path / "proj" /
                     f"{t}.parquet", label="lv")
    res = _run("drugs", "score", "--space", "module", "--projected", "--signatures",
               tmp_path / "drug_lv.parquet", "--twas-z", tmp_path / "proj", "--trait-disease",
               w.path / "trait_disease.tsv", "--top", 5, "--out", tmp_path / "module")
    assert res.exit_code == 0, res.output
    top = pd.read_csv(tmp_path / "module" / "top_predictions.tsv", sep="\t")
    assert len(top) == 5 and top["top_lvs"].str.contains("M0").all()

    res = _run("drugs", "evaluate", "--scores", f"gene={tmp_path / 'gene'}", "--scores",
               f"module={tmp_path / 'module'}", "--gold", w.path / "drugs" / "gold_standard.tsv",
               "--permutations", 50, "--out", tmp_path / "ev")
    assert res.exit_code == 0, res.output
    metrics = pd.read_csv(tmp_path / "ev" / "metrics.tsv", sep="\t").set_index("method")
    want = evaluate(api, w.gold_standard(), n_permutations=50)
    assert metrics.loc["gene", "auc"] == want.auc and metrics.loc["gene", "ap"] == want.ap
    assert (tmp_path / "ev" / "curves.png").is_file()
    comp = results.load(tmp_path / "ev")
    assert isinstance(comp, Comparison) and list(comp.evaluations) == ["gene", "module"]
    assert results.equal(comp.evaluations["gene"], want)
    # errors are messages, not tracebacks; no half-written folder
    res = _run("drugs", "evaluate", "--scores", tmp_path / "proj", "--gold",
               w.path / "drugs" / "gold_standard.tsv", "--out", tmp_path / "ev2")
    assert res.exit_code != 0 and "not a folder written by `drugs score`" in res.output
    assert not (tmp_path / "ev2").exists()


def test_spredixcan_reader(tmp_path):
    rng = np.random.default_rng(0)
    z = {}
    for tissue in ("Liver", "Whole_Blood"):
        for trait in ("t1", "t2"):
            genes = [f"G{i}" for i in rng.permutation(6)]
            vals = rng.normal(size=6)
            vals[0] = np.nan
            pd.DataFrame({"gene": [f"ENSG{g}" for g in genes], "gene_name": genes,
                          "zscore": vals, "pvalue": 0.5}).to_csv(
                tmp_path / f"{trait}-gtex_v8-mashr-{tissue}.csv", index=False)
            z[(tissue, trait)] = pd.Series(vals, index=genes)
    (tmp_path / "README.txt").write_text("not a result")
    got = spredixcan_files(tmp_path, "{trait}-gtex_v8-mashr-{tissue}.csv")
    assert sorted(got) == ["Liver", "Whole_Blood"]
    frame = got["Liver"]()
    assert list(frame.columns) == ["t1", "t2"]
    pd.testing.assert_series_equal(frame["t2"].loc[z[("Liver", "t2")].index],
                                   z[("Liver", "t2")], check_names=False)
    ens = spredixcan_files(tmp_path, "{trait}-gtex_v8-mashr-{tissue}.csv", gene_column="gene")
    assert ens["Liver"]().index[0].startswith("ENSG")
    import pytest

    from gpu_engine.errors import InputError

    with pytest.raises(InputError, match="no file matches"):
        spredixcan_files(tmp_path, "{trait}__{tissue}.txt")
    with pytest.raises(InputError, match="needs both"):
        spredixcan_files(tmp_path, "{trait}.csv")
    with pytest.raises(InputError, match="no matrix files"):
        tissue_matrices(tmp_path / "empty") if (tmp_path / "empty").mkdir() is None else None


def test_module_space_with_a_plier_model_folder(small_world, tmp_path):
    from gpu_engine.io.gene_sets import gene_sets_to_matrix
    from gpu_engine.plier import PLIER

    w = small_world
    Y = w.expression()
    model = PLIER(k=12, backend="cpu", max_iter=60).fit(
        Y, gene_sets_to_matrix(w.gene_sets(), genes=Y.index))
    model.save(tmp_path / "plier")
    res = _run("drugs", "score", "--space", "module", "--lv-model", tmp_path / "plier",
               "--signatures", w.path / "drugs" / "signatures.parquet", "--twas-z",
               w.path / "spredixcan", "--trait-disease", w.path / "trait_disease.tsv",
               "--top", 3, "--out", tmp_path / "module")
    assert res.exit_code == 0, res.output
    api = score(w.drug_signatures(), {t: w.spredixcan(t) for t in w.tissues}, space="module",
                lv_model=PLIER.load(tmp_path / "plier", backend="cpu"),
                trait_disease=w.trait_disease())
    got = pd.read_parquet(tmp_path / "module" / "drug_disease.parquet").set_index("drug")
    np.testing.assert_array_equal(got.to_numpy(), api.drug_disease.to_numpy())
    top = pd.read_csv(tmp_path / "module" / "top_predictions.tsv", sep="\t")
    assert len(top) == 3 and top["top_lvs"].notna().all()
    res = _run("drugs", "score", "--lv-model", tmp_path / "plier", "--signatures",
               w.path / "drugs" / "signatures.parquet", "--twas-z", w.path / "spredixcan",
               "--out", tmp_path / "bad")
    assert res.exit_code != 0 and "--space module" in res.output
