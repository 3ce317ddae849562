"""The benchmark harness: same-run baseline vs ours, medians, ratio, JSON records."""

from __future__ import annotations

import json
import time

import numpy as np
from click.testing import CliRunner

from gpu_engine import benchmarking as bm
from gpu_engine.backend import get_backend
from gpu_engine.cli.main import cli

FAKE = '''
"""A fake benchmark for tests."""
import time
from gpu_engine.benchmarking import Case

def cases(size, backend):
    return [Case("sleepy", {"items": 3}, lambda: time.sleep(0.02) or 1.0,
                 lambda: time.sleep(0.001) or 1.5, "slow", "fast", "cpu",
                 check=lambda a, b: abs(a - b))]
'''


def test_run_case_records_medians_and_ratio():
    case = bm.Case("c", {"n": 1}, lambda: time.sleep(0.01), lambda: None, "b", "o")
    rec = bm.run_case("demo", case, get_backend("cpu"), repeats=3, warmup=1)
    assert len(rec["baseline_times_s"]) == 3 and rec["baseline_s"] >= 0.009
    assert rec["ratio"] == rec["baseline_s"] / rec["ours_s"] > 1


def test_cli_bench_appends_records(tmp_path):
    (tmp_path / "bench_fake.py").write_text(FAKE)
    res = CliRunner().invoke(cli, ["--backend", "cpu", "bench", "fake", "--bench-dir", str(tmp_path),
                                   "--repeats", "2"])
    assert res.exit_code == 0, res.output
    assert "fake/sleepy, 3 items," in res.output
    lines = (tmp_path / "results" / "fake.jsonl").read_text().splitlines()
    rec = json.loads(lines[-1])
    assert rec["max_abs_diff"] == 0.5 and rec["ratio"] > 1
    assert rec["machine"]["cpu_cores"] and rec["machine"]["versions"]["numpy"] == np.__version__


def test_real_standardize_benchmark_cases_agree():
    bdir = bm.find_bench_dir()
    module = bm.load(bm.discover(bdir)["standardize"])
    module.SIZES["tiny"] = (20, 30)
    for case in module.cases("tiny", get_backend("cpu")):
        assert case.check(case.baseline(), case.ours()) < 1e-12


def test_ours_only_takes_the_baseline_from_the_cpu_record(tmp_path):
    from gpu_engine import benchmarking as bm
    from gpu_engine.backend import get_backend

    case = bm.Case("thing, gpu", {"n": 3}, None, lambda: sum(range(1000)), "numpy", "ours",
                   "cpu")
    for date, base, ours in (("2026-01-01", 9.0, 3.0), ("2026-02-01", 8.0, 2.0)):
        bm.append_record(tmp_path, {"benchmark": "b", "case": "thing, cpu", "size": {"n": 3},
                                    "backend": "cpu", "baseline_s": base, "ours_s": ours,
                                    "baseline": "numpy", "date": date})
    bm.append_record(tmp_path, {"benchmark": "b", "case": "thing, cpu", "size": {"n": 4},
                                "backend": "cpu", "baseline_s": 1.0, "ours_s": 1.0,
                                "date": "2026-03-01"})
    rec = bm.run_case_ours_only("b", case, get_backend("cpu"), records=tmp_path)
    assert rec["baseline_from_record"] and rec["baseline_s"] == 8.0 and rec["cpu_ours_s"] == 2.0
    assert rec["ratio"] == 8.0 / rec["ours_s"]
    other = bm.Case("other, gpu", {"n": 3}, None, lambda: 0, "numpy", "ours", "cpu")
    rec = bm.run_case_ours_only("b", other, get_backend("cpu"), records=tmp_path)
    assert not rec["baseline_from_record"] and rec["baseline_s"] != rec["baseline_s"]  # NaN
