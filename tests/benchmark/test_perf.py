"""`bench perf` wiring: a row per learner (and the reference IQL) per thread count, and both ratio lines.
Not a timing assertion: the machine running the tests may be busy."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.perf import REFERENCE, parse_learners
from core.errors import BenchError


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
    iql = next(line.split() for line in lines if line.split()[:1] == ["iql"])
    assert 0.4 < float(iql[3]) < 0.7 and iql[5].endswith("%"), result.output  # ~0.54 GFLOP per IQL update
    assert any(line.startswith("fp32 matmul peak at the nets' shape") and "GFLOP/s at 1 thread" in line
               for line in lines), result.output
    assert any(line.startswith("IQL / reference IQL:") and "target >= 1.6x" in line for line in lines), result.output
    assert any(line.strip().startswith("ceiling: IQL's matmuls alone") for line in lines), result.output
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


def test_the_limit_is_peak_flops_over_flops_per_update():
    from benchmark.perf import Measurement, PerfReport, flops_per_update
    report = PerfReport("cpu", "cpu", "t", [1], 1, 1, False, True, [Measurement("iql", 1, 100, 2.0)],
                        flops={"iql": 1e9}, peak_flops={1: 1e11})
    assert report.fraction_of_limit("iql", 1) == pytest.approx(0.5)  # 50 updates/s of a 100/s limit
    assert report.fraction_of_limit("iql", 2) is None
    x, w = torch.ones(4, 8), torch.ones(16, 8)
    assert flops_per_update(lambda: x @ w.t()) == 2 * 4 * 8 * 16
    # 10 ms of matmuls per update vs a reference at 50 updates/s (20 ms each): at most 2x with zero overhead
    report.measurements.append(Measurement("ref", 1, 100, 2.0))
    report.matmul_seconds, report.matmul_threads = {"iql": 0.01}, 1
    assert report.zero_overhead_ratio("iql", "ref") == pytest.approx(2.0)
    assert report.zero_overhead_ratio("td3bc", "ref") is None


def test_matmul_replay_runs_the_updates_matmuls_and_nothing_else():
    from torch.utils.flop_counter import FlopCounterMode

    from benchmark.perf import matmul_replay
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    x = torch.randn(32, 8)
    ones = torch.ones_like(net[0].weight)

    def update():  # a forward, a backward and some non-matmul work
        net.zero_grad()
        net(x).exp().sum().backward()
        ones.mul_(1.0)
    with FlopCounterMode(display=False) as full:
        update()
    replay = matmul_replay(update)
    with FlopCounterMode(display=False) as replayed:
        replay()
    assert replayed.get_total_flops() == full.get_total_flops() > 0  # every matmul of forward and backward
    calls = []

    class Spy(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            calls.append(func._schema.name)
            return func(*args, **(kwargs or {}))
    with Spy():
        replay()
    assert set(calls) <= {"aten::mm", "aten::addmm"} and len(calls) == 5  # 2 forward; 3 backward, none for x
    assert matmul_replay(lambda: torch.ones(4).exp()) is not None  # no matmul: an empty replay


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
    from methods.registry import get_method
    result = CliRunner().invoke(main, ["perf", "sra", "--profile", "smoke", "--device", "cpu", "--threads", "1",
                                       "--model-steps", "5", "--learner-updates", "20"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()
            if line.split()[:1] in (["model"], ["augmentation"], ["learner"]) and line.split()[1].isdigit()}
    smoke = get_profile("smoke")
    sra_smoke = get_method("sra").budgets["smoke"]
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


# ------------------------------------------------------------------------------------------- bench perf profile
def test_profile_counts_launches_syncs_and_gpu_time_per_update():
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    from benchmark.perf_profile import summarize
    event = lambda key, count, device=DeviceType.CPU, gpu_us=0.0, cpu_us=0.0: SimpleNamespace(
        key=key, count=count, device_type=device, self_device_time_total=gpu_us, self_cpu_time_total=cpu_us)
    averages = [event("cudaLaunchKernel", 40), event("cudaLaunchKernelExC", 10), event("cudaStreamSynchronize", 4),
                event("aten::_local_scalar_dense", 2, cpu_us=100.0), event("aten::mm", 30, cpu_us=3000.0),
                event("ampere_sgemm_128x64_nn", 30, DeviceType.CUDA, gpu_us=600.0),
                event("Memcpy DtoH (Device -> Pinned)", 2, DeviceType.CUDA, gpu_us=20.0)]
    row = summarize("x", averages, wall_ms=1.0, updates=2)
    assert (row.launches, row.syncs, row.scalar_reads) == (25, 2, 1)
    assert row.gpu_ms == pytest.approx(0.31) and row.gpu_busy == pytest.approx(0.31)
    assert row.top_ops[0] == ("aten::mm", pytest.approx(1.5))


def test_perf_profile_prints_a_row_per_method_and_refuses_unknown_ones():
    result = CliRunner().invoke(main, ["perf", "profile", "--methods", "bc-exp,uds", "--device", "cpu",
                                       "--profile", "smoke", "--updates", "2", "--threads", "1"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines() if line.startswith(("bc-exp", "uds"))}
    assert set(rows) == {"bc-exp", "uds"} and all(float(r[1]) > 0 for r in rows.values()), result.output
    result = CliRunner().invoke(main, ["perf", "profile", "--methods", "bc-exp,nope"])
    assert result.exit_code == 2 and "unknown method 'nope'" in result.output and "Traceback" not in result.output
