"""`bench perf` wiring: a row per learner (and the reference IQL) per thread count, and both ratio lines.
Not a timing assertion: the machine running the tests may be busy."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.perf import REFERENCE, parse_learners
from envs import BenchError


def test_perf_prints_a_row_per_learner_and_the_ratios():
    threads_before = torch.get_num_threads()
    # one thread only: on a busy machine a 2-thread SAC-N(25) update can take seconds
    result = CliRunner().invoke(main, ["perf", "--device", "cpu", "--learners", "iql,td3bc,awac,sacn",
                                       "--seconds", "0.2", "--repeats", "1", "--threads", "1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    counts = [1]
    for learner in ("iql", REFERENCE, "td3bc", "awac", "sacn-25"):
        rows = [line.split() for line in lines if line.split()[:1] == [learner]]
        assert [int(r[1]) for r in rows] == counts, (learner, result.output)
        assert all(float(r[2]) > 0 for r in rows), result.output
    assert any(line.startswith("IQL / reference IQL:") and "target >= 1.5x" in line for line in lines), result.output
    assert any(line.startswith("SAC-N(25) / IQL:") and "n/a" not in line for line in lines), result.output
    assert lines[0].startswith("device: cpu (") and "torch " in lines[0], result.output
    assert torch.get_num_threads() == threads_before, "the thread count must be restored"


def test_perf_rejects_unknown_learners_in_one_line():
    result = CliRunner().invoke(main, ["perf", "--learners", "iql,dqn"])
    assert result.exit_code == 2
    assert "unknown learner 'dqn'" in result.output and "Traceback" not in result.output


def test_perf_rejects_bad_thread_counts_in_one_line():
    result = CliRunner().invoke(main, ["perf", "--threads", "0"])
    assert result.exit_code == 2 and "bad --threads" in result.output and "Traceback" not in result.output


def test_sacn_critic_count_is_a_suffix():
    assert parse_learners("iql, sacn,sacn10") == [("iql", None), ("sacn", 25), ("sacn", 10)]
    with pytest.raises(BenchError, match="critic count"):
        parse_learners("sacn0")
