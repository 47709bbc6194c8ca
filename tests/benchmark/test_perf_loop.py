"""`bench perf loop`: a real run through the runner, cut short and projected to the profile's budget."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.perf_loop import time_loop
from benchmark.profiles import get_profile


def test_a_cut_run_is_projected_to_the_full_budget(umaze_smoke):
    smoke = get_profile("smoke")
    cut = smoke.num_steps // 3
    timing = time_loop("bc-exp", umaze_smoke.name, "smoke", steps=cut)
    assert (timing.steps, timing.full_steps) == (cut, smoke.num_steps)
    assert timing.evaluations == 2 and timing.full_evaluations > timing.evaluations  # step 0 and the cut's end
    assert timing.update_s > 0 and timing.eval_s > 0
    expected = (timing.pretrain_s + smoke.num_steps * timing.update_s / cut
                + timing.full_evaluations * timing.eval_s / timing.evaluations)
    assert timing.full_run_s == pytest.approx(expected)
    assert timing.whole_steps_per_s < timing.steps_per_s  # evaluations cost something


def test_perf_loop_prints_a_row_per_method(umaze_smoke):
    result = CliRunner().invoke(main, ["perf", "loop", "--methods", "bc-exp", "--task", umaze_smoke.name,
                                       "--profile", "smoke", "--steps", "50"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith("bc-exp ")]
    row = next(r for r in rows if len(r) == 9 and r[2].isdigit())  # not the progress bar's lines
    assert row[1] == umaze_smoke.name and int(row[2]) == 50 and float(row[3]) > 0


def test_perf_loop_compiled_shows_the_one_off_compilation_apart(umaze_smoke):
    """``--compile``: runs as ``bench run --compile``; the compilation is its own column, in the full run's time
    but not in steps/s."""
    result = CliRunner().invoke(main, ["perf", "loop", "--methods", "uds", "--task", umaze_smoke.name,
                                       "--profile", "smoke", "--steps", "50", "--compile"])
    assert result.exit_code == 0, result.output
    assert "compiled updates" in result.output and "compile s" in result.output
    row = next(r for r in (line.split() for line in result.output.splitlines() if line.startswith("uds "))
               if len(r) == 10 and r[2].isdigit())
    steps, steps_per_s, compile_s = int(row[2]), float(row[3]), float(row[5])
    assert steps == 50 and steps_per_s > 0 and compile_s > 0
    assert compile_s > steps / steps_per_s  # were it in the update time, the 50 steps would take longer than it


def test_perf_loop_wants_one_task_and_its_data(minari_root):
    result = CliRunner().invoke(main, ["perf", "loop", "--task", "maze2d-umaze", "--profile", "smoke"])
    assert result.exit_code != 0 and "give one" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["perf", "loop", "--task", "maze2d-large-sparse", "--profile", "smoke"])
    assert result.exit_code != 0 and "bench data generate" in result.output and "Traceback" not in result.output
