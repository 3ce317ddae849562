"""The results convention: every class round-trips (save → load → equal), `results.load`
dispatches on the recorded kind, and damaged or foreign folders are clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gpu_engine import results
from gpu_engine.drugs import DrugScores, Evaluation
from gpu_engine.errors import InputError
from gpu_engine.gls import GLSResults


def _scores():
    drugs = pd.Index(["d1", "d2"], name="drug")
    traits = pd.Index(["t1", "t2", "t3"], name="trait")
    dt = pd.DataFrame(np.arange(6.0).reshape(2, 3), index=drugs, columns=traits)
    bt = pd.DataFrame([["liver"] * 3, ["blood"] * 3], index=drugs, columns=traits)
    return DrugScores("gene", ("all", 50), ["liver", "blood"], dt, bt,
                      report={"drugs": 2, "per_tissue": [{"tissue": "liver"}]})


def test_folder_result_round_trip_keeps_labels_types_and_nones(tmp_path):
    s = _scores()
    s.save(tmp_path / "s", metadata={"command": "test"})
    back = results.load(tmp_path / "s")
    assert isinstance(back, DrugScores) and results.equal(back, s)
    assert back.top_k == ("all", 50) and back.drug_disease is None
    assert back.drug_trait.index.name == "drug" and back.drug_trait.columns.name == "trait"
    assert back.metadata["command"] == "test"
    # any Parquet reader sees the row labels as the first column
    assert list(pd.read_parquet(tmp_path / "s" / "drug_trait.parquet").columns) == [
        "drug", "t1", "t2", "t3"]
    with pytest.raises(FileExistsError, match="overwrite"):
        s.save(tmp_path / "s")
    s.save(tmp_path / "s", overwrite=True)


def test_arrays_round_trip(tmp_path):
    ev = Evaluation(0.7, 0.5, np.array([0.4, 0.5, 0.6]), np.array([0.3, 0.2, 0.1]), 0.25, 0.5,
                    pd.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]}),
                    pd.DataFrame({"precision": [1.0], "recall": [0.5]}),
                    pd.DataFrame({"drug": ["d"], "disease": ["x"], "label": [1], "score": [2.0]}),
                    {"dropped": 0})
    ev.save(tmp_path / "e")
    back = Evaluation.load(tmp_path / "e")
    assert results.equal(back, ev) and back.null_auc.dtype == np.float64


def test_table_result_round_trip_with_categoricals_and_attrs(tmp_path):
    t = GLSResults(pd.DataFrame({"lv": pd.Categorical(["LV1", "LV2"]),
                                 "trait": pd.Categorical(["a", "a"]), "beta": [0.1, np.nan]}))
    t.attrs["skipped"] = [{"lv": "LV3", "reason": "no genes"}]
    t.save(tmp_path / "g.parquet")
    back = results.load(tmp_path / "g.parquet")
    assert isinstance(back, GLSResults) and results.equal(back, t)
    assert back.attrs["skipped"] == t.attrs["skipped"]
    assert isinstance(back[back["beta"] > 0], GLSResults)  # slices keep the class
    t.save(tmp_path / "g.tsv")
    assert results.equal(GLSResults.load(tmp_path / "g.tsv").astype({"lv": "category",
                                                                    "trait": "category"}), t)


def test_damaged_and_foreign_results_are_clear_errors(tmp_path):
    _scores().save(tmp_path / "s")
    with pytest.raises(InputError, match="holds a 'drug_scores' result"):
        Evaluation.load(tmp_path / "s")
    (tmp_path / "s" / "result.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        results.load(tmp_path / "s")
    (tmp_path / "x").mkdir()
    with pytest.raises(FileNotFoundError, match="no result.json"):
        results.load(tmp_path / "x")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "result.json").write_text(json.dumps({"kind": "from_the_future"}))
    with pytest.raises(InputError, match="unknown result kind"):
        results.load(tmp_path / "y")
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(InputError, match="not a saved gpu_engine result"):
        results.load(tmp_path / "plain.parquet")
