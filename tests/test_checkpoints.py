"""Checkpoints inside long library calls (the clustering ensemble's member blocks, the null
calibration's batches, the drug scores' tissues): with a checkpoint folder the result equals
the plain call's, a second call loads the saved blocks instead of recomputing them (a block
altered on disk shows up in the result, so the test fails if they were recomputed), and a
missing block is recomputed."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import make_blobs

from gpu_engine.cluster import ClusterEnsemble
from gpu_engine.drugs import score
from gpu_engine.gls.null import null_calibration
from gpu_engine.io.checkpoint import Checkpoint

from .test_cluster import SMALL
from .test_drugs import _world
from .test_gls import make_problem


def test_checkpoint_blocks_round_trip_and_are_atomic(tmp_path):
    cp = Checkpoint(tmp_path / "cp")
    assert cp.load("a") is None and not (tmp_path / "cp").exists()
    cp.save("a", x=np.arange(3), s=np.array(["u", "v"]))
    got = cp.load("a")
    assert got["x"].tolist() == [0, 1, 2] and got["s"].tolist() == ["u", "v"]
    cp.save_frame("f", pd.DataFrame({"lv": ["LV1"], "p": [0.5]}))
    assert cp.load_frame("f")["p"].tolist() == [0.5]
    assert sorted(p.name for p in (tmp_path / "cp").iterdir()) == ["a.npz", "f.parquet"]
    assert (cp.saved, cp.loaded) == (2, 2)


def test_ensemble_member_blocks(tmp_path):
    X, _ = make_blobs(60, n_features=4, centers=3, cluster_std=0.6, random_state=1)
    X = pd.DataFrame(X, index=[f"t{i}" for i in range(60)])
    plain = ClusterEnsemble(**SMALL).fit(X)
    cp = Checkpoint(tmp_path / "ens")
    first = ClusterEnsemble(**SMALL).fit(X, checkpoint=cp, block=10)
    np.testing.assert_array_equal(first.partitions_, plain.partitions_)
    pd.testing.assert_frame_equal(first.members_, plain.members_)
    blocks = sorted((tmp_path / "ens").glob("members_*.npz"))
    assert len(blocks) >= 3 and cp.saved == len(blocks)
    # a second fit loads every block: alter block 0 on disk and see it in the result
    b0 = np.load(blocks[0])["labels"]
    np.savez(blocks[0], labels=b0[:, ::-1])
    (blocks[-1]).unlink()  # a block the "killed" run had not finished
    cp2 = Checkpoint(tmp_path / "ens")
    again = ClusterEnsemble(**SMALL).fit(X, checkpoint=cp2, block=10)
    assert cp2.loaded == len(blocks) - 1 and cp2.saved == 1
    assert not np.array_equal(again.partitions_, plain.partitions_, equal_nan=True)
    np.savez(blocks[0], labels=b0)
    restored = ClusterEnsemble(**SMALL).fit(X, checkpoint=tmp_path / "ens", block=10)
    np.testing.assert_array_equal(restored.partitions_, plain.partitions_)


def test_null_calibration_batches(tmp_path):
    Z, _, R, _ = make_problem(n=120, L=4, T=1, seed=3)
    plain = null_calibration(Z, R, n_null=50, seed=4)
    cp = Checkpoint(tmp_path / "null")
    got = null_calibration(Z, R, n_null=50, seed=4, checkpoint=cp, batch=15)
    assert cp.saved == 4
    pd.testing.assert_frame_equal(got.results.astype({"lv": str, "trait": str}),
                                  plain.results.astype({"lv": str, "trait": str}), rtol=1e-12)
    pd.testing.assert_frame_equal(got.table.astype({"lv": str}),
                                  plain.table.astype({"lv": str}), rtol=1e-12)
    f = tmp_path / "null" / "null_00000.parquet"
    part = pd.read_parquet(f)
    part["pvalue_onesided"] = 1e-12  # altered on disk: a reload must show it
    part.to_parquet(f)
    cp2 = Checkpoint(tmp_path / "null")
    again = null_calibration(Z, R, n_null=50, seed=4, checkpoint=cp2, batch=15)
    assert cp2.loaded == 4 and cp2.saved == 0
    assert (again.results["pvalue_onesided"] == 1e-12).sum() == len(part)


def test_drug_scores_per_tissue(tmp_path):
    rng = np.random.default_rng(0)
    D, Z = _world(rng)
    td = pd.DataFrame({"trait": ["trait0", "trait1"], "disease": ["d0", "d1"]})
    plain = score(D, Z, top_k=(5, "all"), trait_disease=td)
    cp = Checkpoint(tmp_path / "drugs")
    got = score(D, Z, top_k=(5, "all"), trait_disease=td, checkpoint=cp)
    assert cp.saved == len(Z)
    for name in ("drug_trait", "best_tissue", "drug_disease", "drug_trait_raw"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(plain, name), obj=name)
    assert got.report == plain.report
    (tmp_path / "drugs" / "tissue_00002.npz").unlink()  # the tissue a kill interrupted
    f = tmp_path / "drugs" / "tissue_00000.npz"
    blk = dict(np.load(f))
    blk["rank"] = blk["rank"] + 1e6  # altered on disk: tissue 0 then wins everywhere
    np.savez(f, **blk)
    cp2 = Checkpoint(tmp_path / "drugs")
    again = score(D, Z, top_k=(5, "all"), trait_disease=td, checkpoint=cp2)
    assert (cp2.loaded, cp2.saved) == (len(Z) - 1, 1)
    assert (again.best_tissue == list(Z)[0]).all().all()
