"""gpu_engine.distributed: clients from command-line strings and ordered task mapping, locally
and on a process-based LocalCluster (the Dask tier of DESIGN.md)."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from gpu_engine.distributed import chunks, describe, get_client, map_tasks


def _square_plus(x, *, offset):
    return x * x + offset


def test_local_map_keeps_order_and_accepts_generators():
    assert get_client(None) is None and describe(None) == {"scheduler": None}
    gen = ((i,) for i in range(5))
    assert map_tasks(_square_plus, gen, total=5, shared={"offset": 1}) == [1, 2, 5, 10, 17]
    assert [(s.start, s.stop) for s in chunks(7, 3)] == [(0, 3), (3, 6), (6, 7)]


def test_local_cluster_and_cli_scheduler(small_world, tmp_path):
    from gpu_engine.cli.main import cli

    client = get_client("local", n_workers=2)
    try:
        info = describe(client)
        assert info["workers"] == 2 and info["threads"] == 2
        out = map_tasks(_square_plus, [(i,) for i in range(6)], shared={"offset": 2},
                        client=client)
        assert out == [i * i + 2 for i in range(6)]
    finally:
        client.close()
    w = small_world
    args = ["--backend", "cpu", "gls", "--lv-model", str(w.path / "truth" / "Z.parquet"),
            "--traits", str(w.path / "smultixcan"), "--gene-corr",
            str(w.path / "gene_corr.parquet"), "--lvs", "M0001,M0002,M0003"]
    local = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "a.parquet")])
    dist = CliRunner().invoke(cli, args + ["--scheduler", "local",
                                           "--out", str(tmp_path / "b.parquet")])
    assert local.exit_code == 0 and dist.exit_code == 0, dist.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a.parquet"),
                                  pd.read_parquet(tmp_path / "b.parquet"))


def test_local_cuda_needs_dask_cuda():
    pytest.importorskip("distributed")
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        from gpu_engine.errors import BackendUnavailableError

        with pytest.raises(BackendUnavailableError, match="dask-cuda"):
            get_client("local-cuda")
    else:
        pytest.skip("dask-cuda is installed")


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    from gpu_engine.distributed import get_client
    from gpu_engine.errors import InputError

    monkeypatch.setenv("GPU_ENGINE_SCHEDULER_TIMEOUT", "1s")
    with pytest.raises(InputError, match="no Dask scheduler answered"):
        get_client("tcp://127.0.0.1:1")
    with pytest.raises(InputError, match="give 'local'"):
        get_client("nowhere")
