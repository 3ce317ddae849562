"""One LV-model contract: `--lv-model` means the same in gls, drugs score and plier project —
a PLIER model folder, an LV model folder, or a Z matrix with --lv-l2 — and gives the same
numbers whichever form holds the same model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gpu_engine.cli.main import cli
from gpu_engine.errors import InputError
from gpu_engine.io import read_matrix, write_matrix
from gpu_engine.lvmodel import GeneModuleModel, LVModel, as_lv_model, load_lv_model


def _run(*args):
    return CliRunner().invoke(cli, ["--backend", "cpu", *map(str, args)])


@pytest.fixture(scope="module")
def models(small_world, tmp_path_factory):
    """The same fitted model three ways: PLIER folder, LV model folder, Z file + L2."""
    from gpu_engine.io.gene_sets import gene_sets_to_matrix
    from gpu_engine.plier import PLIER

    w = small_world
    tmp = tmp_path_factory.mktemp("lv_models")
    Y = w.expression()
    plier = PLIER(k=10, backend="cpu", max_iter=40).fit(
        Y, gene_sets_to_matrix(w.gene_sets(), genes=Y.index))
    plier.save(tmp / "plier", plots=False)
    plier.lv_model().save(tmp / "lv")
    write_matrix(plier.Z_, tmp / "Z.parquet")
    return {"plier": (tmp / "plier", None), "lv": (tmp / "lv", None),
            "z": (tmp / "Z.parquet", plier.L2_), "L2": plier.L2_, "tmp": tmp}


def _lv_args(models, form):
    path, l2 = models[form]
    return ["--lv-model", path] + (["--lv-l2", l2] if l2 is not None else [])


def test_loader_dispatches_on_the_recorded_format(models):
    a = load_lv_model(models["plier"][0])
    b = load_lv_model(models["lv"][0])
    c = load_lv_model(models["z"][0], l2=models["L2"])
    for m in (a, b, c):
        assert isinstance(m, GeneModuleModel) and m.L2 == pytest.approx(models["L2"])
    pd.testing.assert_frame_equal(a.Z, b.Z, check_names=False)
    np.testing.assert_array_equal(a.P_, c.P_)
    assert as_lv_model(a) is a and as_lv_model(models["lv"][0]).lv_names == a.lv_names
    # a bare Z serves GLS (Z only) but projection needs its L2
    bare = load_lv_model(models["z"][0])
    assert bare.L2 is None and bare.Z.shape == a.Z.shape
    with pytest.raises(InputError, match="--lv-l2"):
        bare.transform(read_matrix(models["z"][0]))
    with pytest.raises(InputError, match="records L2"):
        load_lv_model(models["lv"][0], l2=models["L2"] + 1)
    (models["tmp"] / "empty").mkdir(exist_ok=True)
    with pytest.raises(FileNotFoundError, match="no model.json"):
        load_lv_model(models["tmp"] / "empty")


@pytest.mark.parametrize("form", ["plier", "lv", "z"])
def test_every_command_takes_every_form(models, small_world, form, tmp_path):
    w = small_world
    # plier project
    res = _run("plier", "project", *_lv_args(models, form), "--data",
               w.path / "drugs" / "signatures.parquet", "--out", tmp_path / "proj.parquet")
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(tmp_path / "proj.parquet").set_index("lv")
    want = load_lv_model(models["plier"][0]).transform(w.drug_signatures())
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=1e-12)
    # gls (uses Z only)
    res = _run("gls", *_lv_args(models, form), "--traits", w.path / "smultixcan",
               "--gene-corr", w.path / "gene_corr.parquet", "--lvs",
               ",".join(want.index[:3].astype(str)), "--out", tmp_path / "gls.parquet")
    assert res.exit_code == 0, res.output
    gls = pd.read_parquet(tmp_path / "gls.parquet")
    assert len(gls) == 3 * len(w.traits) and np.isfinite(gls["beta"]).all()
    # drugs score in module space
    res = _run("drugs", "score", "--space", "module", *_lv_args(models, form), "--signatures",
               w.path / "drugs" / "signatures.parquet", "--twas-z", w.path / "spredixcan",
               "--tissues", w.tissues[0], "--top-k", "all,5", "--out", tmp_path / "drugs")
    assert res.exit_code == 0, res.output



def test_forms_agree_in_gls(models, small_world, tmp_path):
    w = small_world
    tables = []
    for form in ("plier", "z"):
        out = tmp_path / f"{form}.parquet"
        res = _run("gls", *_lv_args(models, form), "--traits", w.path / "smultixcan",
                   "--gene-corr", w.path / "gene_corr.parquet", "--out", out)
        assert res.exit_code == 0, res.output
        tables.append(pd.read_parquet(out))
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_projection_without_l2_is_a_clear_error(models, small_world, tmp_path):
    res = _run("plier", "project", "--lv-model", models["z"][0], "--data",
               small_world.path / "drugs" / "signatures.parquet", "--out", tmp_path / "x.parquet")
    assert res.exit_code == 1 and "--lv-l2" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.parquet").exists()


def test_lvmodel_is_importable_from_plier_too():
    from gpu_engine.plier import LVModel as FromPlier

    assert FromPlier is LVModel
