"""The DEcode estimator (spec decode.md §4–§8): perturbations (batched == explicit, the OLS
against statsmodels, a planted effect recovered), save/load, controls, transfer, bad input,
and the planted-regulator world at a reduced size."""

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch", reason="DEcode needs torch (the [dl] extra)")

from gpu_engine.datasets.decode_world import generate_decode_world  # noqa: E402
from gpu_engine.decode import data as D  # noqa: E402
from gpu_engine.decode.features import BindingMaps  # noqa: E402
from gpu_engine.decode.model import DEcode, KnockoutResult  # noqa: E402
from gpu_engine.decode.perturb import ols, perturbed_summaries, profile_spearman  # noqa: E402
from gpu_engine.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = generate_decode_world(tmp_path_factory.mktemp("dw") / "w", n_genes=600, n_tissues=12,
                                n_tf=24, n_rbp=16, n_mirna=6, seed=3)
    maps = BindingMaps.read(out / "binding")
    E = pd.read_parquet(out / "expression.parquet").set_index("gene")
    return out, maps, D.tissue_targets(E), pd.read_parquet(out / "splits.parquet")


@pytest.fixture(scope="module")
def small_model(world):
    _, maps, T, sp = world
    return DEcode(restarts=2, epochs=3, patience=2, min_genes=10, dtype="float64",
                  random_state=1).fit(maps, T, sp)


def test_world_is_deterministic(tmp_path):
    a = generate_decode_world(tmp_path / "a", n_genes=200, n_tissues=12, n_tf=20, n_rbp=14,
                              n_mirna=4, seed=5)
    b = generate_decode_world(tmp_path / "b", n_genes=200, n_tissues=12, n_tf=20, n_rbp=14,
                              n_mirna=4, seed=5)
    for f in ("expression.parquet", "binding/rna.parquet", "binding/promoter.parquet",
              "truth/regulators.parquet", "modules/Z.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / f), pd.read_parquet(b / f))
    info = json.loads((a / "truth" / "world.json").read_text())
    regs = pd.read_parquet(a / "truth" / "regulators.parquet")
    assert (regs["role"] == "driver").sum() == 8 and (regs["role"] == "decoy").sum() == 8
    assert set(info["pair"]["drivers"]) <= set(info["drivers"])


def test_fit_records_and_predicts(world, small_model):
    _, maps, T, _ = world
    m = small_model
    assert len(m.runs_) == 2 and m.best_run_ == int(m.runs_["best_val_loss"].idxmin())
    assert set(m.history_.columns) == {"restart", "epoch", "loss", "val_loss"}
    assert m.outputs_[-1] == "MedianExp" and len(m.outputs_) == 13
    pred = m.predict(maps, ["G00000", "G00001"])
    assert pred.shape == (2, 13) and np.isfinite(pred.to_numpy()).all()
    ev = m.evaluate(maps, T)
    pd.testing.assert_frame_equal(ev, m.evaluation_, atol=1e-12)


def test_save_load_roundtrip(world, small_model, tmp_path):
    _, maps, _, _ = world
    small_model.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.pt").exists() and (tmp_path / "m" / "weights.npz").exists()
    back = DEcode.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict(maps).to_numpy(),
                                  small_model.predict(maps).to_numpy())
    z = np.load(tmp_path / "m" / "weights.npz")
    assert "rna.conv1.weight" in z and "head.bn2.running_var" in z and "out.bias" in z
    assert list(z["features"]) == small_model.maxima_["feature"].tolist()


def test_perturbed_summaries_equal_explicit_inputs():
    g = torch.Generator().manual_seed(0)
    r = torch.rand((5, 9), generator=g, dtype=torch.float64)
    r[:, 7:] = 0
    p = torch.rand((4, 30), generator=g, dtype=torch.float64)
    from gpu_engine.decode.network import build_network, summarize

    net = build_network(5, 4, 3, seed=0, dtype=torch.float64).eval()
    kr = (torch.rand((6, 5), generator=g) < 0.5).double()
    kr[:, 0] = 1
    kp = (torch.rand((6, 4), generator=g) < 0.5).double()
    kp[:, 0] = 1
    s = perturbed_summaries(r, p, channel_keep_rna=kr, channel_keep_prom=kp)
    explicit = net(r[None] * kr[:, :, None], p[None] * kp[:, :, None])
    torch.testing.assert_close(net.forward_summary(s), explicit, rtol=0, atol=1e-12)
    br = (torch.rand((6, 9), generator=g) < 0.5).double()
    bp = (torch.rand((6, 30), generator=g) < 0.5).double()
    s = perturbed_summaries(r, p, bin_keep_rna=br, bin_keep_prom=bp)
    rr = r[None] * br[:, None, :]
    rr[:, 0] = r[0]
    pp = p[None] * bp[:, None, :]
    pp[:, 0] = p[0]
    torch.testing.assert_close(net.forward_summary(s), net(rr, pp), rtol=0, atol=1e-12)
    torch.testing.assert_close(net.forward_summary(summarize(rr, pp)), net(rr, pp), rtol=0,
                               atol=1e-12)


def test_ols_equals_statsmodels_and_recovers_a_planted_effect():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(0)
    X = (rng.random((2000, 6)) < 0.5).astype(float)
    y = 0.8 - 0.3 * X[:, 2] + 0.1 * X[:, 4] + rng.normal(0, 0.05, 2000)
    fit = ols(y, X, [f"r{i}" for i in range(6)])
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    np.testing.assert_allclose(fit["coef"], ref.params, rtol=1e-10)
    np.testing.assert_allclose(fit["se"], ref.bse, rtol=1e-10)
    np.testing.assert_allclose(fit["p"], ref.pvalues, rtol=1e-8, atol=1e-300)
    r = KnockoutResult.from_regression(y, X.astype(np.int8), [f"r{i}" for i in range(6)],
                                       pair=["a", "b"], mode="first", what="regulator")
    assert r.coefficients["regulator"].iloc[0] == "r2"
    assert r.coefficients.set_index("regulator")["significant"].to_dict() == {
        "r0": False, "r1": False, "r2": True, "r3": False, "r4": True, "r5": False}
    with pytest.raises(InputError, match="only 7 usable draws"):  # fewer draws than terms
        ols(y[:7], X[:7], [f"r{i}" for i in range(6)])


def test_profile_spearman_equals_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(7, 12)), rng.normal(size=12)
    A[0, :3] = A[0, 0]  # ties
    want = [spearmanr(a, B).statistic for a in A]
    np.testing.assert_allclose(profile_spearman(A, B), want, rtol=1e-12)


def test_knockout_batched_equals_loop_and_is_reproducible(world, small_model):
    out, maps, _, _ = world
    pair = json.loads((out / "truth" / "world.json").read_text())["pair"]["genes"]
    a = small_model.knockout(maps, pair, n=60, seed=4)
    b = small_model.knockout(maps, pair, n=60, seed=4, method="loop")
    np.testing.assert_allclose(a.rho, b.rho, atol=1e-10)
    c = small_model.knockout(maps, pair, n=60, seed=4)
    np.testing.assert_array_equal(a.rho, c.rho)
    both = small_model.knockout(maps, pair, n=60, seed=4, perturb="both")
    assert both.mode == "both" and not np.array_equal(both.rho, a.rho)
    sites = small_model.remove_sites(maps, pair, n=80)
    assert set(sites) == set(pair)
    assert sites[pair[0]].coefficients["bin"].str.startswith(("rna:", "promoter:")).all()
    with pytest.raises(InputError, match="perturb"):
        small_model.knockout(maps, pair, perturb="second")


def test_shuffle_control_and_transfer(world, small_model):
    _, maps, T, sp = world
    sh = DEcode(restarts=1, epochs=2, patience=2, min_genes=10, shuffle="all").fit(maps, T, sp)
    assert sh.report_["shuffle"] == "all"
    people = T.drop(columns="MedianExp").iloc[:, :5].add_prefix("person_")
    tr = DEcode(target="columns", restarts=1, epochs=2, patience=2, dtype="float64").fit(
        maps, people, sp, transfer_from=small_model)
    for name in ("rna.conv1.weight", "prom.conv5.weight"):
        torch.testing.assert_close(tr.net_.state_dict()[name],
                                   small_model.net_.state_dict()[name], rtol=0, atol=0)
    assert tr.outputs_ == list(people.columns)
    assert tr.maxima_.equals(small_model.maxima_)


def test_bad_input(world):
    _, maps, T, sp = world
    with pytest.raises(InputError, match="padding"):
        DEcode(padding="same").fit(maps, T, sp)
    # fold changes alone (a person model with median=False): one pooled divisor
    m = DEcode(restarts=1, epochs=1, min_genes=10).fit(maps, T.drop(columns="MedianExp"), sp)
    assert m.divisors_["divisor"].nunique() == 1 and "MedianExp" not in m.outputs_
    with pytest.raises(InputError, match="constant"):
        DEcode(restarts=1, epochs=1, min_genes=10).fit(maps, T.assign(MedianExp=1.0), sp)
    empty = sp.assign(set=np.where(sp["set"] == "validation", "train", sp["set"]))
    with pytest.raises(InputError, match="validation set is empty"):
        DEcode(restarts=1, epochs=1).fit(maps, T, empty)


# The planted world's §8 outcomes at a reduced size (test Spearman, drivers first, no decoy in
# the top 10, the pair's KO, the modules' regulators first) are the demo's decode stage,
# which tests/test_cli.py::test_demo_command runs and requires to pass.


def test_modules_explained_by_their_planted_regulators(world):
    """Spec §12: with the LV loadings as targets, each LV's two planted regulators rank first,
    above the permutation baseline, and the model-free binding association agrees."""
    from gpu_engine.decode.explain import explain_modules

    out, maps, _, sp = world
    info = json.loads((out / "truth" / "world.json").read_text())
    Z = pd.read_parquet(out / "modules" / "Z.parquet").set_index("gene")
    ex = explain_modules(maps, Z, sp, permutations=1, restarts=1, epochs=40, patience=10,
                         batch_size=32, min_genes=10)
    assert list(ex.columns) == ["LV1", "LV2", "LV3"]
    for lv, regs in info["modules"].items():
        top = ex.top(lv, 2)
        assert set(top["regulator"]) == set(regs), (lv, top)
        assert (top["score"] > 0).all() and (top["perm_p"] < 0.05).all()
        assert (top["binding_fdr"] < 1e-6).all()
    one = explain_modules(maps, Z, sp, lvs=["LV2"], permutations=0, restarts=1, epochs=2,
                          min_genes=10)
    assert one.columns == ["LV2"] and one.regulators["perm_p"].isna().all()
    with pytest.raises(InputError, match="LV9"):
        explain_modules(maps, Z, sp, lvs=["LV9"])


def test_regulator_expression_association_and_mediation():
    from gpu_engine.decode.model import Attribution
    from gpu_engine.decode.perturb import mediation

    rng = np.random.default_rng(0)
    outs = [f"t{i}" for i in range(20)]
    act = rng.normal(size=20)
    scores = pd.DataFrame(rng.normal(0, 0.01, (20, 30)), index=outs,
                          columns=[f"r{i}" for i in range(30)])
    scores["r0"] += act
    scores["r1"] -= act
    imp = Attribution.from_means(scores, scores.abs(),
                                 pd.DataFrame({"region": ["rna"] * 30}), outs, n_genes=5)
    expr = pd.DataFrame(rng.normal(size=(30, 20)), index=scores.columns, columns=outs)
    expr.loc["r0"] = act + rng.normal(0, 0.1, 20)
    expr.loc["r1"] = act + rng.normal(0, 0.1, 20)
    t = imp.association(expr).set_index("regulator")
    assert t.loc["r0", "significant"] and t.loc["r0", "rho"] > 0.8
    assert t.loc["r1", "significant"] and t.loc["r1", "rho"] < -0.8
    assert t["significant"].sum() <= 3
    # mediation: A and B share two drivers -> they explain most of the co-expression
    d = rng.normal(size=(60, 2))
    a = d @ [1.0, 0.5] + rng.normal(0, 0.3, 60)
    b = d @ [0.8, 1.0] + rng.normal(0, 0.3, 60)
    cand = np.column_stack([d, rng.normal(size=(60, 10))])
    m = mediation(a, b, d, cand, n_random=200, seed=1)
    assert m["explained"] > 0.9 and m["p"] < 0.05
    assert mediation(a, b, cand[:, 5:7])["explained"] < 0.3
