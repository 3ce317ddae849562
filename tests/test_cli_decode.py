"""``gpu-engine decode``: world → fit → predict / explain / ko from the command line, what each
writes, the numbers they print against the Python API, and clean errors on bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("torch", reason="DEcode needs torch (the [dl] extra)")

from gpu_engine.cli.main import cli


def _run(*args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("dcli")
    w, m = d / "w", d / "m"
    res = _run("decode", "world", "--out", w, "--genes", 300, "--tissues", 12, "--tfs", 16,
               "--rbps", 14, "--mirnas", 4, "--individuals", 30, "--seed", 4)
    assert res.exit_code == 0, res.output
    res = _run("decode", "fit", "--binding", w / "binding", "--expression",
               w / "expression.parquet", "--splits", w / "splits.parquet", "--restarts", 2,
               "--epochs", 3, "--patience", 2, "--min-genes", 5, "--dtype", "float64",
               "--out", m)
    assert res.exit_code == 0, res.output
    return d, w, m, res.output


def test_fit_writes_model_and_plots(fitted):
    from gpu_engine.decode.model import DEcode

    _, _, m, output = fitted
    for f in ("model.json", "weights.pt", "weights.npz", "evaluation.parquet", "runs.parquet",
              "predicted_vs_actual.png", "cross_output.png", "training.png"):
        assert (m / f).exists(), f
    model = DEcode.load(m)
    assert len(model.runs_) == 2 and model.outputs_[-1] == "MedianExp"
    mean = model.evaluation_.set_index("output").loc["mean_fold_change", "spearman"]
    assert f"mean {mean:.3f}" in output and "test Spearman" in output


def test_predict_equals_api(fitted):
    from gpu_engine.decode.features import BindingMaps
    from gpu_engine.decode.model import DEcode

    d, w, m, _ = fitted
    res = _run("decode", "predict", "--model", m, "--binding", w / "binding", "--genes",
               "G00000,G00007", "--out", d / "pred.parquet")
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(d / "pred.parquet").set_index("gene")
    want = DEcode.load(m).predict(BindingMaps.read(w / "binding"), ["G00000", "G00007"])
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=0, atol=1e-12)
    res = _run("decode", "predict", "--model", m, "--binding", w / "binding", "--genes",
               "G00000,NOPE", "--out", d / "pred2.parquet")
    assert res.exit_code == 1 and "'NOPE' has no binding maps" in res.output
    assert not (d / "pred2.parquet").exists()


def test_explain_model_with_association(fitted):
    d, w, m, _ = fitted
    out = d / "ex"
    res = _run("decode", "explain", "--model", m, "--binding", w / "binding",
               "--regulator-expression", w / "regulator_expression.parquet", "--out", out)
    assert res.exit_code == 0, res.output
    for f in ("importance.parquet", "mean_scores.parquet", "association.tsv",
              "top_regulators.png"):
        assert (out / f).exists(), f
    imp = pd.read_parquet(out / "importance.parquet")
    assert imp["rank"].tolist() == list(range(1, len(imp) + 1))
    assert imp["regulator"].iloc[0] in res.output
    res = _run("decode", "explain", "--model", m, "--lv-model", w / "modules" / "Z.parquet",
               "--binding", w / "binding", "--out", d / "ex2")
    assert res.exit_code == 2 and "exactly one of" in res.output


def test_ko_and_sites(fitted):
    d, w, m, _ = fitted
    pair = json.loads((w / "truth" / "world.json").read_text())["pair"]["genes"]
    out = d / "ko"
    res = _run("decode", "ko", "--model", m, "--binding", w / "binding", "--pair",
               ",".join(pair), "--draws", 300, "--sites", "--out", out)
    assert res.exit_code == 0, res.output
    c = pd.read_parquet(out / "coefficients.parquet")
    assert c["coef"].is_monotonic_increasing and {"se", "p_bonferroni"} <= set(c)
    assert (out / "knockout.png").exists()
    for g in pair:
        assert (out / f"sites_{g}" / "coefficients.parquet").exists()
    res = _run("decode", "ko", "--model", m, "--binding", w / "binding", "--pair", pair[0],
               "--out", d / "ko2")
    assert res.exit_code == 2 and "two different genes" in res.output


def test_explain_table_trains_and_ranks(fitted):
    d, w, _, _ = fitted
    out = d / "mods"
    res = _run("decode", "explain", "--lv-model", w / "modules" / "Z.parquet", "--lvs", "LV1",
               "--binding", w / "binding", "--restarts", 1, "--epochs", 2, "--min-genes", 5,
               "--permutations", 1, "--out", out)
    assert res.exit_code == 0, res.output
    r = pd.read_parquet(out / "regulators.parquet")
    assert set(r["column"]) == {"LV1"} and r["perm_p"].between(0, 1).all()
    assert (out / "regulators.png").exists() and "LV1 (test Spearman" in res.output


def test_fit_bad_inputs(fitted, tmp_path):
    _, w, _, _ = fitted
    E = pd.read_parquet(w / "expression.parquet")
    # a split naming only train genes: the validation and test sets are empty
    sp = pd.DataFrame({"gene": E["gene"], "set": "train"})
    sp.to_parquet(tmp_path / "sp.parquet", index=False)
    res = _run("decode", "fit", "--binding", w / "binding", "--expression",
               w / "expression.parquet", "--splits", tmp_path / "sp.parquet", "--epochs", 1,
               "--restarts", 1, "--out", tmp_path / "m")
    assert res.exit_code == 1 and "set is empty" in res.output
    assert not (tmp_path / "m").exists()
    # genes without maps and NaN targets are counted and reported, not fatal
    E2 = pd.concat([E, pd.DataFrame({"gene": ["EXTRA1"], **{c: [1.0] for c in E.columns[1:]}})])
    E2.loc[E2["gene"] == "G00001", E.columns[1]] = np.nan
    E2.to_parquet(tmp_path / "e.parquet", index=False)
    res = _run("decode", "fit", "--binding", w / "binding", "--expression",
               tmp_path / "e.parquet", "--splits", w / "splits.parquet", "--epochs", 1,
               "--restarts", 1, "--min-genes", 5, "--out", tmp_path / "m3")
    assert res.exit_code == 0, res.output
    assert "'no_binding_maps': 1" in res.output and "'nan_targets': 1" in res.output
    assert "EXTRA1" in res.output


def test_person_model_by_transfer(fitted):
    from gpu_engine.decode.model import DEcode

    d, w, m, _ = fitted
    out = d / "person"
    res = _run("decode", "fit", "--binding", w / "binding", "--expression",
               w / "persons" / "tpm.parquet", "--target", "person", "--covariates",
               w / "persons" / "covariates.parquet", "--splits", w / "splits.parquet",
               "--transfer-from", m, "--restarts", 1, "--epochs", 2, "--dtype", "float64",
               "--out", out)
    assert res.exit_code == 0, res.output
    assert "3 covariates regressed out" in res.output
    pm, tm = DEcode.load(out), DEcode.load(m)
    assert pm.outputs_[:2] == ["person001", "person002"] and pm.outputs_[-1] == "MedianExp"
    assert pm.report_["transfer"]
    for k, v in tm.net_.state_dict().items():  # the trunk is the tissue model's, frozen
        if k.startswith(("rna.", "prom.")):
            assert np.array_equal(pm.net_.state_dict()[k].numpy(), v.numpy()), k
