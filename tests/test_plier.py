"""PLIER against the reference R package's recorded runs (../shared/plier_data).

Step level: num_pc, the Z and B updates, the U step against scikit-learn, the annotation
table and LV names, the projection. End to end: each reference run refitted with its
held-out genes; the LV–pathway pairs at FDR < 0.05 must overlap the reference's (Jaccard),
B must track the measured cell types as well as the reference's, and the planted pathways of
the synthetic fixture must be recovered.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu, spearmanr
from sklearn.linear_model import ElasticNet

from gpu_engine.errors import InputError
from gpu_engine.plier import PLIER, LVModel, annotate, merge_priors, num_pc, read_prior
from gpu_engine.plier import prior as priors
from gpu_engine.plier.model import b_update, z_update
from gpu_engine.plier.ustep import UStep

from .conftest import SHARED

DATA = SHARED / "plier_data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="plier fixtures not found")

BLOOD = "expression/dataWholeBlood.parquet"
SYNTH = "synthetic_5000x300/Y.parquet"
HEAD_PRIOR = "pathways/combined/combinePaths_bloodCell_canonical.head.wide.parquet"
A2D_PRIOR = "pathways/combined/combinePaths_bloodCell_canonical.a2d4a2a.wide.parquet"
CANONICAL = "pathways/canonicalPathways.wide.parquet"
RUNS = {  # run: (mode, data, prior, k given)
    "wholeblood_head": ("current", BLOOD, HEAD_PRIOR, None),
    "wholeblood_a2d": ("multiplier", BLOOD, A2D_PRIOR, None),
    "wholeblood_k30_a2d": ("multiplier", BLOOD, A2D_PRIOR, 30),
    "synth_5000x300_head": ("current", SYNTH, CANONICAL, 30),
    "synth_5000x300_a2d": ("multiplier", SYNTH, CANONICAL, 30),
}


@functools.cache
def _read(rel: str) -> pd.DataFrame:
    return pd.read_parquet(DATA / rel)


def _run(name: str) -> dict:
    base = f"reference_runs/{name}/"
    out = {k: _read(base + f"{k}.parquet") for k in ("Z", "B", "U", "Uauc", "Up", "heldOutGenes")}
    summ = _read(base + "summary.parquet").copy()
    summ.columns = ["pathway", "lv", "auc", "pvalue", "fdr"]
    summ["lv"] = summ["lv"].astype(np.int64)
    out["summary"] = summ
    out["params"] = json.loads((DATA / base / "params.json").read_text())
    return out


def _aligned_prior(name: str) -> pd.DataFrame:
    mode, _, prior_file, _ = RUNS[name]
    ref = _run(name)
    P = _read(prior_file).astype(float).loc[ref["Z"].index, ref["U"].index]
    return priors.zero_small_pathways(P, 10)[0]


@functools.cache
def _fit(name: str) -> PLIER:
    mode, data, prior_file, k = RUNS[name]
    return PLIER(k=k, mode=mode, heldout=_run(name)["heldOutGenes"], backend="cpu",
                 trace=True).fit(_read(data), _read(prior_file))


# ------------------------------------------------------------------ step level
@pytest.mark.parametrize("mode,expected", [("current", 15), ("multiplier", 14)])
def test_num_pc_gives_the_reference_k_on_whole_blood(mode, expected):
    # R: k = 30 (current: 2·num_pc) and k = 14 (multiplier: num_pc) on these genes
    Y = _read(BLOOD)
    prior = _read(HEAD_PRIOR if mode == "current" else A2D_PRIOR)
    Y = Y.loc[Y.index.isin(prior.index)]
    Yz = Y.sub(Y.mean(axis=1), axis=0).div(Y.std(axis=1, ddof=1), axis=0)
    d = np.linalg.svd(Yz.to_numpy(), compute_uv=False)
    assert num_pc(d, mode) == expected


def test_num_pc_rejects_too_few_values():
    with pytest.raises(InputError, match="at least 4"):
        num_pc([3.0, 2.0, 1.0])


@pytest.mark.parametrize("name", ["wholeblood_head", "synth_5000x300_a2d"])
def test_b_update_reproduces_the_trained_b(name):
    # B is the last update of every iteration: B = (ZᵀZ + L2·I)⁻¹ZᵀY with the reference Z
    ref = _run(name)
    mode, data, _, _ = RUNS[name]
    Y = _read(data).loc[ref["Z"].index, ref["B"].columns]
    Y = Y.sub(Y.mean(axis=1), axis=0).div(Y.std(axis=1, ddof=1), axis=0).to_numpy()
    Z = ref["Z"].to_numpy()
    B = b_update(Z.T @ Z, Z.T @ Y, ref["params"]["L2"])
    np.testing.assert_allclose(B, ref["B"].to_numpy(), atol=1e-10)


def test_z_update_is_the_clipped_least_squares_formula():
    ref = _run("wholeblood_head")
    rng = np.random.default_rng(0)
    Z0, B = ref["Z"].to_numpy(), ref["B"].to_numpy()
    Y = Z0 @ B + rng.normal(size=(Z0.shape[0], B.shape[1]))
    L1 = ref["params"]["L1"]
    CU = L1 * _aligned_prior("wholeblood_head").to_numpy() @ ref["U"].to_numpy()
    got = z_update(Y @ B.T, B @ B.T, L1, CU)
    want = np.linalg.solve(B @ B.T + L1 * np.eye(B.shape[0]), (Y @ B.T + CU).T).T
    np.testing.assert_allclose(got, np.maximum(want, 0), atol=1e-10)
    assert (got == 0).any() and (want < 0).any()


def _u_step_case(name, penalty):
    mode = RUNS[name][0]
    ref = _run(name)
    P0 = _aligned_prior(name)
    mask = priors.mask_from_table(P0, ref["heldOutGenes"])
    C = np.where(mask, 0.0, P0.to_numpy())
    X = P0.to_numpy() if mode == "multiplier" else C
    step = UStep(X, C, mode=mode, penalty=penalty)
    step.chat = priors.chat(C)  # the dense Ĉ, for the tests' independent ranking
    Z = ref["Z"].to_numpy()
    L3 = ref["params"]["L3"]
    return step, X, Z, L3, step.candidates(Z)


@pytest.mark.parametrize("name", ["wholeblood_head", "wholeblood_a2d"])
@pytest.mark.parametrize("penalty", ["glmnet", "sklearn"])
def test_u_step_equals_sklearn_elastic_net(name, penalty):
    step, X, Z, L3, idx = _u_step_case(name, penalty)
    U = step.fit(Z, L3)
    multiplier = RUNS[name][0] == "multiplier"
    checked = 0
    for i in range(0, Z.shape[1], 3):
        cand = idx[i][idx[i] >= 0]
        Xi, z = X[:, cand], Z[:, i]
        sd = Xi.std(axis=0) if multiplier else np.ones(cand.size)  # glmnet standardize=TRUE
        Xs = Xi / np.where(sd > 0, sd, 1.0)
        ys = z.std() if penalty == "glmnet" else 1.0  # glmnet also solves for y/sd(y)
        est = ElasticNet(alpha=L3 / ys, l1_ratio=0.9, positive=True, tol=1e-14,
                         max_iter=1_000_000).fit(Xs, z / ys)
        want = np.where(sd > 0, est.coef_ * ys / np.where(sd > 0, sd, 1.0), 0.0)
        np.testing.assert_allclose(U[cand, i], want, atol=1e-6)
        assert (U[np.setdiff1d(np.arange(U.shape[0]), cand), i] == 0).all()
        checked += int((want > 0).any())
    assert checked >= 2


def test_u_step_candidates_follow_the_modes():
    step, X, Z, L3, idx = _u_step_case("wholeblood_head", "glmnet")
    assert (idx == idx[0]).all()  # complete: one set for every LV
    ranks = pd.DataFrame(-(step.chat @ Z)).rank(axis=0)  # average ties
    assert set(idx[0]) == set(np.flatnonzero(ranks.min(axis=1) <= 10))
    step, X, Z, L3, idx = _u_step_case("wholeblood_a2d", "glmnet")
    norm = Z / np.linalg.norm(Z, axis=0)
    score = np.maximum(step.chat @ norm, 0)
    for i in range(Z.shape[1]):
        top = np.flatnonzero(pd.Series(-score[:, i]).rank() <= 10)
        assert set(idx[i][idx[i] >= 0]) == set(top)


@pytest.mark.parametrize("name", list(RUNS))
def test_annotation_equals_reference_summary(name):
    mode = RUNS[name][0]
    ref = _run(name)
    P0 = _aligned_prior(name)
    mask = priors.mask_from_table(P0, ref["heldOutGenes"])
    summary, Uauc, Up = annotate.crossval(ref["Z"].to_numpy(), ref["U"].to_numpy(),
                                          P0.to_numpy(), mask, list(P0.columns), mode)
    merged = summary.merge(ref["summary"], on=["pathway", "lv"], how="outer",
                           suffixes=("", "_r"), indicator=True)
    assert (merged["_merge"] == "both").all() and len(merged) == len(ref["summary"])
    for col in ("auc", "pvalue", "fdr"):
        np.testing.assert_allclose(merged[col], merged[f"{col}_r"], rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(Uauc, ref["Uauc"].to_numpy(), atol=1e-10)
    np.testing.assert_allclose(Up, ref["Up"].to_numpy(), rtol=1e-10)
    # names from the reference's own p-values are exactly R's nameB
    names = annotate.lv_names(ref["U"].to_numpy(), ref["Up"].to_numpy(), ref["summary"],
                              list(P0.columns), fallback=mode == "current")
    assert names == ref["params"]["B_rownames_from_nameB"]


def test_mann_whitney_equals_scipy_with_ties():
    rng = np.random.default_rng(4)
    pos = np.round(rng.normal(0.3, 1, 40), 1)
    neg = np.round(rng.normal(0, 1, 300), 1)
    auc, p = annotate.mann_whitney_greater(pos, neg)
    want = mannwhitneyu(pos, neg, alternative="greater", method="asymptotic",
                        use_continuity=True)
    assert auc == pytest.approx(want.statistic / (40 * 300), rel=1e-14)
    assert p == pytest.approx(want.pvalue, rel=1e-12)
    assert annotate.mann_whitney_greater(pos, neg[:0])[0] == 0.5


@pytest.mark.parametrize("name", ["Bnew_full", "Bnew_drop10pct"])
def test_projection_equals_multiplier_get_new_data_b(name):
    ref = _run("wholeblood_head")
    base = DATA / "reference_runs/wholeblood_head/projection"
    Y = _read(BLOOD)
    if "drop" in name:
        Y = Y.drop(index=json.loads((base / "dropped_genes.json").read_text()), errors="ignore")
    model = LVModel(ref["Z"], ref["params"]["L2"], backend="cpu")
    got = model.transform(Y)
    want = pd.read_parquet(base / f"{name}.parquet")
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=1e-10)
    assert list(got.columns) == list(Y.columns)
    if "drop" in name:
        assert model.report_["missing_genes"] > 0


# ------------------------------------------------------------------ end to end
@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_end_to_end_matches_the_reference_run(name):
    m = _fit(name)
    ref = _run(name)
    prm = ref["params"]
    assert m.k_ == prm["k"]
    assert m.L2_ == pytest.approx(prm["L2"], rel=1e-10)
    assert m.L1_ == pytest.approx(prm["L1"], rel=1e-10)
    ours = set(m.significant(0.05)[["pathway", "lv"]].itertuples(index=False, name=None))
    s = ref["summary"]
    theirs = set(s[s["fdr"] < 0.05][["pathway", "lv"]].itertuples(index=False, name=None))
    jaccard = len(ours & theirs) / len(ours | theirs)
    print(f"{name}: Jaccard {jaccard:.3f} ({len(ours)} vs {len(theirs)}), {m.n_iter_} "
          f"iterations ({m.stop_reason_}), L3 {m.L3_:.6g} vs {prm['L3']:.6g}")
    assert jaccard >= 0.8
    assert m.Z_.shape == ref["Z"].shape and m.B_.shape == ref["B"].shape
    assert list(m.trace_["iteration"]) == list(range(1, m.n_iter_ + 1))


@pytest.mark.slow
def test_whole_blood_b_tracks_measured_cell_types():
    m = _fit("wholeblood_head")
    ref = _run("wholeblood_head")
    cells = _read("expression/majorCellTypes.parquet")
    for c in cells.columns:
        ours = max(abs(spearmanr(m.B_.loc[lv, cells.index], cells[c]).statistic)
                   for lv in m.B_.index)
        theirs = max(abs(spearmanr(ref["B"].loc[lv, cells.index], cells[c]).statistic)
                     for lv in ref["B"].index)
        assert ours >= theirs - 0.05, c


@pytest.mark.slow
@pytest.mark.parametrize("name", ["synth_5000x300_head", "synth_5000x300_a2d"])
def test_synthetic_planted_pathways_recovered(name):
    truth = json.loads((DATA / "synthetic_5000x300/true_pathways.json").read_text())
    planted = set(truth["true_pathways_LV1_to_LV20"])
    m = _fit(name)
    found = planted & set(m.significant(0.05)["pathway"])
    assert len(found) >= 19  # the reference recovers 19 of 20 in both versions


@pytest.mark.slow
def test_transform_of_training_data_is_b_and_save_load_roundtrip(tmp_path):
    m = _fit("wholeblood_a2d")
    Y = _read(BLOOD).loc[m.genes_]
    np.testing.assert_allclose(m.transform(Y).to_numpy(), m.B_.to_numpy(), atol=1e-9)
    m.save(tmp_path / "model")
    back = PLIER.load(tmp_path / "model", backend="cpu")
    for attr in ("Z_", "B_", "U_", "Uauc_", "Up_"):
        pd.testing.assert_frame_equal(getattr(back, attr), getattr(m, attr))
    pd.testing.assert_frame_equal(back.summary_, m.summary_)
    assert back.lv_names_ == m.lv_names_ and back.L2_ == m.L2_ and back.mode == "multiplier"
    with pytest.raises(FileExistsError):
        m.save(tmp_path / "model")


# ------------------------------------------------------------------ engines agree
def _tiny():
    rng = np.random.default_rng(7)
    genes = [f"G{i}" for i in range(300)]
    prior = pd.DataFrame((rng.random((300, 25)) < 0.12).astype(float), index=genes,
                         columns=[f"P{j}" for j in range(25)])
    Zt = prior.to_numpy()[:, :6] * rng.random(6)
    Y = pd.DataFrame(Zt @ rng.normal(size=(6, 30)) + rng.normal(0, 0.5, (300, 30)),
                     index=genes, columns=[f"S{i}" for i in range(30)])
    return Y, prior


@pytest.mark.sim
def test_cuda_u_step_kernel_gives_the_same_fit():
    from gpu_engine.kernels import plier as kp
    from gpu_engine.plier import ustep

    Y, prior = _tiny()
    cpu = PLIER(k=4, max_iter=20, L3=0.01, backend="cpu").fit(Y, prior)
    original = ustep.UStep.__post_init__

    def with_cuda(self):
        self.kernel = kp.enet_cd_cuda
        original(self)

    try:
        ustep.UStep.__post_init__ = with_cuda
        sim = PLIER(k=4, max_iter=20, L3=0.01, backend="cpu").fit(Y, prior)
    finally:
        ustep.UStep.__post_init__ = original
    np.testing.assert_allclose(sim.U_.to_numpy(), cpu.U_.to_numpy(), atol=1e-9)
    np.testing.assert_allclose(sim.Z_.to_numpy(), cpu.Z_.to_numpy(), atol=1e-9)
    assert (cpu.U_.to_numpy() > 0).any()


def test_tiny_fit_defaults_and_heldout_seed():
    Y, prior = _tiny()
    a = PLIER(max_iter=30, backend="cpu").fit(Y, prior)
    b = PLIER(max_iter=30, backend="cpu").fit(Y, prior)
    pd.testing.assert_frame_equal(a.heldout_, b.heldout_)
    counts = prior.sum()
    held = a.heldout_.groupby("pathway").size()
    assert (held == (counts[held.index] // 5)).all()  # trunc(n/5) per pathway
    assert a.k_ <= int(0.9 * 30) and a.stop_reason_ in ("converged", "bdiff_not_decreasing",
                                                           "max_iter")


# ------------------------------------------------------------------ bad input
def test_bad_inputs_get_clear_errors():
    Y, prior = _tiny()
    const = Y.copy()
    const.iloc[5] = 3.0
    with pytest.raises(InputError, match="zero variance.*G5"):
        PLIER(k=4, backend="cpu").fit(const, prior)
    ok = PLIER(k=4, max_iter=21, drop_constant_genes=True, backend="cpu").fit(const, prior)
    assert "G5" not in ok.Z_.index and ok.report_["constant_genes_dropped"] == 1
    nan = Y.copy()
    nan.iloc[2, 3] = np.nan
    with pytest.raises(InputError, match="NaN.*G2"):
        PLIER(k=4, backend="cpu").fit(nan, prior)
    other = prior.set_axis([f"X{i}" for i in range(len(prior))])
    with pytest.raises(InputError, match="no genes in common"):
        PLIER(k=4, backend="cpu").fit(Y, other)
    with pytest.raises(InputError, match="min_genes"):
        PLIER(k=4, min_genes=500, backend="cpu").fit(Y, prior)
    with pytest.raises(InputError, match="k=31 is not allowed"):
        PLIER(k=31, backend="cpu").fit(Y, prior)
    with pytest.raises(InputError, match="only 0 and 1"):
        PLIER(k=4, backend="cpu").fit(Y, prior * 2)
    with pytest.raises(InputError, match="mode"):
        PLIER(mode="2018").fit(Y, prior)
    bad_heldout = pd.DataFrame({"pathway": ["P1"], "gene": ["nope"]})
    with pytest.raises(InputError, match="heldout"):
        PLIER(k=4, heldout=bad_heldout, backend="cpu").fit(Y, prior)


def test_merge_priors_by_exact_symbol_and_read_formats(tmp_path):
    a = pd.DataFrame({"A": [1.0, 0.0]}, index=["CD9", "CD93"])
    b = pd.DataFrame({"B": [1.0]}, index=["CD9"])
    merged = merge_priors(a, b)
    assert merged.loc["CD93", "B"] == 0 and merged.loc["CD9", "B"] == 1  # no prefix match
    with pytest.raises(InputError, match="repeat"):
        merge_priors(a, a)
    (tmp_path / "p.gmt").write_text("A\tna\tCD9\tCD4\nB\tna\tCD4\n")
    gmt = read_prior(tmp_path / "p.gmt")
    assert gmt.loc["CD4"].tolist() == [1.0, 1.0] and gmt.loc["CD9", "B"] == 0
    long = pd.DataFrame({"gene": ["CD9", "CD4", "CD4"], "pathway": ["A", "A", "B"]})
    long.to_parquet(tmp_path / "long.parquet")
    pd.testing.assert_frame_equal(read_prior(tmp_path / "long.parquet"), gmt)
    wide = _read("pathways/svmMarkers.wide.parquet")
    wide.to_parquet(tmp_path / "wide.parquet")
    assert read_prior(tmp_path / "wide.parquet").shape == wide.shape


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["wholeblood_a2d", "wholeblood_head"])
def test_gpu_fit_agrees_with_cpu(name):
    mode, data, prior_file, k = RUNS[name]
    gpu = PLIER(k=k, mode=mode, heldout=_run(name)["heldOutGenes"], backend="gpu").fit(
        _read(data), _read(prior_file))
    cpu = _fit(name)
    assert gpu.k_ == cpu.k_ and gpu.L2_ == pytest.approx(cpu.L2_, rel=1e-12)
    a = set(gpu.significant(0.05)[["pathway", "lv"]].itertuples(index=False, name=None))
    b = set(cpu.significant(0.05)[["pathway", "lv"]].itertuples(index=False, name=None))
    assert len(a & b) / len(a | b) >= 0.95
    corr = [np.corrcoef(gpu.Z_.iloc[:, i], cpu.Z_.iloc[:, i])[0, 1] for i in range(cpu.k_)]
    assert min(corr) > 0.999


def test_long_labels_are_shortened_in_the_middle():
    from gpu_engine.plotting import shorten

    a = "REACTOME_VERY_LONG_PATHWAY_NAME_ABOUT_SIGNALLING_PATHWAY_0047"
    b = a.replace("0047", "0048")
    assert len(shorten(a, 45)) == 45 and "…" in shorten(a, 45)
    assert shorten(a, 45) != shorten(b, 45)  # the distinguishing end is kept
    assert shorten(a, 45).startswith("REACTOME_") and shorten("short", 45) == "short"
