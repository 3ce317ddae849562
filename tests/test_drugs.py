"""Drug repurposing: scores equal a direct loop implementation, rank aggregation and disease
mapping on hand-made cases (ties included), LV contributions sum to the module score, AUC /
AP equal scikit-learn's, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from gpu_engine.drugs import (
    average_precision,
    evaluate,
    explain,
    lv_contributions,
    raw_scores,
    roc_auc,
    score,
    to_diseases,
    top_order,
)
from gpu_engine.errors import InputError


def _world(rng, n_genes=40, n_drugs=9, n_traits=6, tissues=("T1", "T2", "T3")):
    genes = [f"G{i:03d}" for i in range(n_genes)]
    D = pd.DataFrame(rng.normal(size=(n_genes, n_drugs)), index=genes,
                     columns=[f"DB{j}" for j in range(n_drugs)])
    D = D.drop(index=genes[:3])                      # genes no drug measures
    Z = {}
    for t in tissues:
        keep = rng.permutation(genes)[: n_genes - 5]  # each tissue tests its own genes, shuffled
        z = pd.DataFrame(rng.normal(size=(len(keep), n_traits)), index=keep,
                         columns=[f"trait{j}" for j in range(n_traits)])
        z.iloc[0, 0] = np.nan                         # untested gene for one trait
        z.iloc[4, 1] = z.iloc[7, 1] = -z.iloc[4, 1]   # |z| ties
        Z[t] = z
    return D, Z


def _loop(D, Z, top_k):
    """The definition, drug by drug, trait by trait, with pandas: per tissue and k the
    negative dot product over the trait's top-k genes (|z|, first listed on ties), pandas
    ranks within each trait, mean over k, max over tissues."""
    best = None
    for _t, z in Z.items():
        z = z.fillna(0.0)
        common = [g for g in z.index if g in D.index]
        per_k = []
        for k in top_k:
            S = pd.DataFrame(index=D.columns, columns=z.columns, dtype=float)
            for trait in z.columns:
                col = z.loc[common, trait]
                if k != "all":
                    col = col.loc[col.abs().nlargest(k, keep="first").index]
                for drug in D.columns:
                    S.loc[drug, trait] = -float(np.dot(D.loc[col.index, drug], col))
            per_k.append(S.rank())
        R = sum(per_k) / len(per_k)
        best = R if best is None else np.maximum(best, R)
    return best


def test_scores_equal_the_loop_definition():
    D, Z = _world(np.random.default_rng(0))
    top_k = ("all", 1, 3, 10, 1000)
    got = score(D, Z, top_k=top_k)
    want = _loop(D, Z, top_k)
    pd.testing.assert_frame_equal(got.drug_trait, want, check_names=False, rtol=0, atol=1e-12)
    assert got.report["per_tissue"][0]["features_used"] == len(
        [g for g in Z["T1"].index if g in D.index])
    assert got.report["trait signatures (T1)_values_set_to_0"] == 1
    # the best tissue is where the maximum comes from
    for t in ("T1", "T2", "T3"):
        one = score(D, {t: Z[t]}, top_k=top_k).drug_trait
        sel = got.best_tissue == t
        np.testing.assert_array_equal(one.to_numpy()[sel.to_numpy()],
                                      got.drug_trait.to_numpy()[sel.to_numpy()])


def test_raw_scores_by_k_and_top_order_ties():
    A = np.array([[3.0, 1.0, 3.0, 2.0, 3.0]])
    assert top_order(A, 2).tolist() == [[0, 2]]           # equal |z|: first listed wins
    assert top_order(A, 4).tolist() == [[0, 2, 4, 3]]
    assert top_order(A, 9).tolist() == [[0, 2, 4, 3, 1]]
    rng = np.random.default_rng(7)
    for _ in range(100):  # many ties: equal to a stable sort by −|z|
        B = np.abs(np.round(rng.normal(size=(5, 30)), 1))
        k = int(rng.integers(1, 30))
        np.testing.assert_array_equal(top_order(B, k),
                                      np.argsort(-B, axis=1, kind="stable")[:, :k])
    rng = np.random.default_rng(1)
    Dm, Zt = rng.normal(size=(8, 4)), rng.normal(size=(3, 8))
    S = raw_scores(Dm, Zt, ("all", 2, 8))
    np.testing.assert_allclose(S[0], -(Zt @ Dm), atol=1e-12)
    np.testing.assert_allclose(S[2], S[0], atol=1e-12)   # k = number of genes is 'all'
    o = np.argsort(-np.abs(Zt), axis=1)[:, :2]
    for t in range(3):
        np.testing.assert_allclose(S[1][t], -(Zt[t, o[t]] @ Dm[o[t]]), atol=1e-12)
    with pytest.raises(InputError, match="positive integers"):
        raw_scores(Dm, Zt, (0,))


def test_rank_aggregation_and_disease_mapping_by_hand():
    # 3 drugs, 2 traits, 1 gene: scores are −d·z, so the ranks are known
    D = pd.DataFrame([[1.0, 1.0, -2.0]], index=["g"], columns=["a", "b", "c"])
    Z = {"T1": pd.DataFrame([[1.0, -1.0]], index=["g"], columns=["t1", "t2"]),
         "T2": pd.DataFrame([[0.0, 3.0]], index=["g"], columns=["t1", "t2"])}
    s = score(D, Z, top_k=("all",),
              trait_disease=pd.DataFrame({"trait": ["t1", "t2", "t2"],
                                          "disease": ["X", "X", "Y"]}))
    # T1: t1 scores (−1, −1, 2) → ranks (1.5, 1.5, 3); t2 scores (1, 1, −2) → (2.5, 2.5, 1)
    # T2: t1 all 0 → ranks 2, 2, 2; t2 scores (−3, −3, 6) → (1.5, 1.5, 3)
    want = pd.DataFrame({"t1": [2.0, 2.0, 3.0], "t2": [2.5, 2.5, 3.0]}, index=["a", "b", "c"])
    np.testing.assert_array_equal(s.drug_trait.to_numpy(), want.to_numpy())
    assert s.best_tissue.loc["a", "t1"] == "T2" and s.best_tissue.loc["c", "t2"] == "T2"
    assert s.best_tissue.loc["c", "t1"] == "T1"           # tie 3 vs 2? no: T1 gives 3
    np.testing.assert_array_equal(s.drug_disease["X"].to_numpy(), [2.5, 2.5, 3.0])
    np.testing.assert_array_equal(s.drug_disease["Y"].to_numpy(), [2.5, 2.5, 3.0])
    assert s.disease_trait.loc["c", "X"] == "t1"          # tie t1 = t2 = 3: first trait
    assert s.disease_trait.loc["a", "X"] == "t2"


def test_to_diseases_reports_unscored_traits():
    M = pd.DataFrame([[1.0, 5.0]], index=["a"], columns=["t1", "t2"])
    rep = {}
    dd, dt = to_diseases(M, pd.DataFrame({"trait": ["t1", "t9"], "disease": ["X", "Z"]}), rep)
    assert list(dd.columns) == ["X"] and rep["map_traits_not_scored"] == ["t9"]
    with pytest.raises(InputError, match="none of its traits"):
        to_diseases(M, pd.DataFrame({"trait": ["t9"], "disease": ["Z"]}))


def test_module_space_and_lv_contributions():
    from gpu_engine.plier import LVModel

    rng = np.random.default_rng(2)
    D, Z = _world(rng, n_genes=60, n_drugs=8, n_traits=7, tissues=("T1", "T2"))
    lvs = pd.DataFrame(np.abs(rng.normal(size=(60, 6))), index=[f"G{i:03d}" for i in range(60)],
                       columns=[f"LV{i + 1}" for i in range(6)])
    model = LVModel(lvs, L2=1.5, backend="cpu")
    s = score(D, Z, space="module", lv_model=model, top_k=("all", 2, 4))
    # equal to scoring the projections directly
    Zp = {t: model.transform(z.fillna(0.0)) for t, z in Z.items()}
    Lp = model.transform(D)
    direct = score(Lp, Zp, space="module", top_k=("all", 2, 4))
    pd.testing.assert_frame_equal(s.drug_trait, direct.drug_trait, rtol=0, atol=1e-12)
    # contributions of the LVs sum to the module-based score of that tissue
    for k in ("all", 2):
        c = lv_contributions(Lp, Zp["T1"], "DB3", "trait2", top_k=k)
        raw = raw_scores(Lp.to_numpy(), Zp["T1"].to_numpy().T, (k,))[0]
        assert c["contribution"].sum() == pytest.approx(raw[2, 3], abs=1e-12)
        assert (c["trait_value"] != 0).sum() == (6 if k == "all" else 2)
        assert c["contribution"].is_monotonic_decreasing
    e = explain(s, "DB3", "trait2", Z, lv_model=model)
    tissue = s.best_tissue.loc["DB3", "trait2"]
    raw = raw_scores(Lp.to_numpy(), Zp[tissue].to_numpy().T, ("all",))[0]
    assert e["contribution"].sum() == pytest.approx(raw[2, 3], abs=1e-12)
    assert (e["tissue"] == tissue).all()
    with pytest.raises(InputError, match="module-space"):
        explain(score(D, Z), "DB3", "trait2", Z)


def test_evaluate_equals_scikit_learn():
    rng = np.random.default_rng(3)
    drugs, diseases = [f"DB{i}" for i in range(30)], [f"D{j}" for j in range(8)]
    P = pd.DataFrame(np.round(rng.normal(size=(30, 8)), 1), index=drugs, columns=diseases)
    gold = pd.DataFrame([(d, x, int(rng.uniform() < 0.3)) for d in drugs for x in diseases
                         if rng.uniform() < 0.5], columns=["drug", "disease", "label"])
    gold = pd.concat([gold, gold.iloc[:3],                     # exact duplicates
                      pd.DataFrame([("DB99", "D1", 1), ("DB1", "D99", 0)],
                                   columns=gold.columns)], ignore_index=True)
    ev = evaluate(P, gold, n_permutations=200, seed=1)
    pairs = ev.pairs
    y, s = pairs["label"].to_numpy(), pairs["score"].to_numpy()
    assert len(np.unique(s)) < len(s)                          # ties in the scores
    assert ev.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert ev.ap == pytest.approx(average_precision_score(y, s), abs=1e-12)
    perm = np.random.default_rng(5).permutation(y)
    assert roc_auc(perm, s)[0] == pytest.approx(roc_auc_score(perm, s), abs=1e-12)
    assert average_precision(perm, s)[0] == pytest.approx(average_precision_score(perm, s),
                                                          abs=1e-12)
    assert ev.report["duplicates_merged"] == 3
    assert ev.report["missing_drugs"] == ["DB99"] and ev.report["missing_diseases"] == ["D99"]
    assert len(ev.null_auc) == 200 and abs(ev.null_auc.mean() - 0.5) < 0.05
    assert 0 < ev.auc_pvalue <= 1 and ev.roc["fpr"].iloc[-1] == 1.0
    summary = ev.summary()
    assert summary["pairs"] == len(pairs) and summary["positives"] == int(y.sum())


def test_bad_input():
    rng = np.random.default_rng(4)
    D, Z = _world(rng)
    other = pd.DataFrame(rng.normal(size=(3, 2)), index=["X1", "X2", "X3"], columns=["a", "b"])
    with pytest.raises(InputError, match="no gene in common"):
        score(D, other)
    Dn = D.copy()
    Dn["DB0"] = np.nan                 # a drug with no value: dropped, named
    Dn.iloc[2, 1] = np.nan             # one missing value: counted, set to 0
    s = score(Dn, Z, top_k=("all",))
    assert "DB0" not in s.drug_trait.index
    assert s.report["drug signatures_dropped_drugs"] == ["DB0"]
    assert s.report["drug signatures_values_set_to_0"] == 1
    with pytest.raises(InputError, match="space must be"):
        score(D, Z, space="pathway")
    with pytest.raises(InputError, match="no trait signatures for tissue"):
        score(D, Z, tissues=["T9"])
    gold = pd.DataFrame({"drug": ["DBx"], "disease": ["Dx"], "label": [1]})
    P = pd.DataFrame(np.zeros((2, 2)), index=["DB0", "DB1"], columns=["D0", "D1"])
    with pytest.raises(InputError, match="no pair has both"):
        evaluate(P, gold)
    with pytest.raises(InputError, match="both classes"):
        evaluate(P, pd.DataFrame({"drug": ["DB0"], "disease": ["D0"], "label": [1]}))
    with pytest.raises(InputError, match="labelled both"):
        evaluate(P, pd.DataFrame({"drug": ["DB0", "DB0"], "disease": ["D0", "D0"],
                                  "label": [1, 0]}))
    with pytest.raises(InputError, match="no diseases"):
        evaluate(score(D, Z, top_k=("all",)), gold)


def test_dask_client_gives_the_local_result():
    from dask.distributed import Client, LocalCluster

    D, Z = _world(np.random.default_rng(6), n_traits=9)
    local = score(D, Z, top_k=("all", 3), batch_traits=4)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as lc, Client(lc) as client:
        dist = score(D, Z, top_k=("all", 3), batch_traits=4, client=client)
    pd.testing.assert_frame_equal(local.drug_trait, dist.drug_trait)


def test_top_prediction_ties_are_broken_by_the_raw_score():
    # every trait has a drug at the top rank; those tied pairs are ordered by −Dᵀz
    from gpu_engine.drugs import score, top_predictions

    rng = np.random.default_rng(3)
    genes = [f"g{i}" for i in range(30)]
    D = pd.DataFrame(rng.normal(size=(30, 4)), index=genes, columns=[f"d{j}" for j in range(4)])
    z = pd.DataFrame(rng.normal(size=(30, 3)) * [1, 3, 10], index=genes,
                     columns=["t0", "t1", "t2"])
    s = score(D, z, top_k=("all",), backend="cpu")
    raw = -(D.T @ z)  # drugs × traits
    np.testing.assert_allclose(s.drug_trait_raw.to_numpy(), raw.to_numpy(), rtol=1e-12)
    top = top_predictions(s, n=3)
    assert (top["score"] == 4).all()  # three tied at the top rank
    expected = sorted(((raw[t].max(), raw[t].idxmax(), t) for t in z.columns), reverse=True)
    assert list(zip(top["drug"], top["trait"])) == [(d, t) for _, d, t in expected]
    assert top["raw_score"].is_monotonic_decreasing
