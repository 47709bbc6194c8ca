"""Opt-in bf16 learner updates (benchmark/precision.py): their own runs, really in bf16, fp32 untouched."""
from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.grid import expand_grid
from benchmark.precision import update_precision
from benchmark.profiles import get_profile
from benchmark.runner import RunOptions, run_one
from core.errors import BenchError


def _spec(task: str, precision: str = "fp32"):
    return expand_grid(["bc-exp"], [task], [0], get_profile("smoke"), precision=precision)[0]


def test_bf16_runs_are_their_own_runs_and_fp32_keys_stay(umaze_smoke):
    fp32, bf16 = _spec(umaze_smoke.name), _spec(umaze_smoke.name, "bf16")
    assert "precision" not in fp32.settings  # the keys of every run made before the setting stay the same
    assert bf16.settings["precision"] == "bf16" and bf16.run_key != fp32.run_key
    with pytest.raises(BenchError, match="unknown precision 'fp16'; valid: fp32, bf16"):
        _spec(umaze_smoke.name, "fp16")


def test_a_bf16_run_trains_in_bf16_and_records_it(umaze_smoke, tmp_path):
    options = RunOptions(root=tmp_path, device="cpu", show_progress=False, threads=1)
    fp32 = run_one(_spec(umaze_smoke.name), options)
    bf16 = run_one(_spec(umaze_smoke.name, "bf16"), options)
    assert bf16["status"] == "done" and bf16["settings"]["precision"] == "bf16"
    assert all(math.isfinite(score) for score in bf16["curve"]["score"])
    logs = [(tmp_path / "runs" / r["run_key"] / "log.csv").read_text() for r in (fp32, bf16)]
    assert logs[0] != logs[1]  # bf16 matmuls round differently: the losses differ


def test_update_precision_autocasts_matmuls_only_for_bf16():
    x, w = torch.randn(4, 8), torch.randn(8, 3)
    with update_precision("cpu", "fp32"):
        assert (x @ w).dtype == torch.float32
    with update_precision("cpu", "bf16"):
        assert (x @ w).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown precision"):
        update_precision("cpu", "int8")


def test_bench_run_and_perf_take_the_flag():
    result = CliRunner().invoke(main, ["run", "--precision", "fp16", "--dry-run"])
    assert result.exit_code == 2 and "fp16" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["perf", "--device", "cpu", "--learners", "td3bc", "--seconds", "0.01",
                                       "--repeats", "1", "--threads", "1", "--bf16"])
    assert result.exit_code == 0, result.output
    assert "bf16 autocast on (bf16 hardware:" in result.output.splitlines()[0]
