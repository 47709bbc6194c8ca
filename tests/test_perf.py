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


# ------------------------------------------------------------------------------------------- bench perf sra
def test_phase_projection_is_setup_plus_rate_times_steps():
    from benchmark.perf_sra import Phase, SRACost
    model, learner = Phase("model", 10, 2.0, 1000, setup_s=5.0), Phase("learner", 100, 1.0, 10_000)
    assert model.projected_s == pytest.approx(205.0) and learner.projected_s == pytest.approx(100.0)
    cost = SRACost("sra", "t", "paper", "cpu", "cpu", 1, 0, [model, Phase("augmentation", 1, 3.0, 5), learner])
    assert cost.ratio == pytest.approx((205 + 15) / 100)


def test_perf_sra_projects_every_phase_to_the_profiles_run(umaze_smoke):
    from benchmark.profiles import get_profile
    result = CliRunner().invoke(main, ["perf", "sra", "--profile", "smoke", "--device", "cpu", "--threads", "1",
                                       "--model-steps", "5", "--learner-updates", "20"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()
            if line.split()[:1] in (["model"], ["augmentation"], ["learner"]) and line.split()[1].isdigit()}
    smoke = get_profile("smoke")
    sra_smoke = smoke.method_overrides["sra"]
    rounds = len(range(sra_smoke["warmup_steps"], smoke.num_steps, sra_smoke["round_every"]))
    # whole-run step counts: the model's capped fit, the run's rounds, the profile's learner updates
    assert rows["model"][1] == "5" and int(rows["model"][5].replace(",", "")) == sra_smoke["model"]["max_steps"]
    assert rows["augmentation"][1] == "1" and int(rows["augmentation"][5]) == rounds
    assert rows["learner"][1] == "20" and int(rows["learner"][5].replace(",", "")) == smoke.num_steps
    assert "% of the learner's" in result.output and "target <= 25%" in result.output


def test_perf_sra_refuses_other_methods_and_missing_data_in_one_line(umaze_smoke):
    result = CliRunner().invoke(main, ["perf", "sra", "--method", "milo", "--profile", "smoke"])
    assert result.exit_code == 2 and "valid methods: sra" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["perf", "sra", "--task", "maze2d-large-sparse", "--profile", "smoke"])
    assert result.exit_code == 2 and "bench data generate" in result.output and "Traceback" not in result.output
