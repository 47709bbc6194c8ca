"""Scale-out: the Ray executor matches the local one, retries then fails a raising run without stopping
the grid, driver-written results; named grids; the dry run's plan and cost on a half-finished directory."""
from __future__ import annotations

import dataclasses
import sys

import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.executor import run_grid
from benchmark.grid import expand_grid
from benchmark.grids import named_grid
from benchmark.profiles import get_profile
from benchmark.runner import RunOptions
from benchmark.store import run_dir
from core.errors import BenchError

SMOKE = get_profile("smoke")
TASKS = ["maze2d-umaze-sparse", "maze2d-umaze-dense"]


def options(root, **kw):
    return RunOptions(root=root, device="cpu", show_progress=False, threads=1, **kw)


def curves(summary) -> dict:
    return {(r["method"], r["task"], r["seed"]): r["curve"] for r in summary.done}


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_matches_local_and_retries_then_fails(umaze_smoke, ray_cluster, tmp_path):
    from benchmark.ray_executor import ATTEMPTS_FILE, RayExecutor
    specs = expand_grid(["bc-exp"], TASKS, [0], SMOKE)  # sparse/dense twins: one Ray task
    # a run that raises on the worker: lr -1 (Adam raises), set past the grid's validation, which refuses it
    broken = [dataclasses.replace(s, config={**s.config, "lr": -1.0}, overrides={"lr": -1.0})
              for s in expand_grid(["bc-exp"], TASKS[:1], [1], SMOKE)]
    local = run_grid(specs, options(tmp_path / "local"), workers=1, warn=lambda *_: None)
    on_ray = run_grid(specs + broken, options(tmp_path / "ray"), executor=RayExecutor(max_retries=1),
                      warn=lambda *_: None)
    assert curves(on_ray) == curves(local) and len(on_ray.done) == 2
    [failed] = on_ray.failed
    assert failed["run_key"] == broken[0].run_key and "after 2 attempts" in failed["error"]
    assert "learning rate" in failed["error"].lower()
    attempts = (run_dir(tmp_path / "ray", failed["run_key"]) / ATTEMPTS_FILE).read_text().splitlines()
    assert len(attempts) == 2
    # clusters without a shared filesystem: the driver writes what the workers return
    by_driver = run_grid(specs, options(tmp_path / "driver"), executor=RayExecutor(results="driver"),
                         warn=lambda *_: None)
    assert curves(by_driver) == curves(local)
    for result in by_driver.done:
        directory = run_dir(tmp_path / "driver", result["run_key"])
        assert {p.name for p in directory.iterdir()} >= {"result.json", "config.json"}
    assert (run_dir(tmp_path / "driver", specs[0].run_key) / "log.csv").exists()  # the job's log, with its lead
    again = run_grid(specs, options(tmp_path / "driver"), executor=RayExecutor(results="driver"),
                     warn=lambda *_: None)
    assert len(again.skipped) == 2 and not again.done  # a re-run skips what the driver wrote


def test_ray_missing_says_how_to_install(monkeypatch):
    from benchmark.ray_executor import import_ray
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(BenchError, match=r"pip install -e '\.\[ray\]'"):
        import_ray()


def test_named_grids_leave_out_what_is_missing():
    grid, notes = named_grid("paper-table4")
    assert grid.profile == "paper" and grid.seeds == 4
    assert {"sra", "uds", "sra-awac", "uds-sacn"} <= set(grid.methods)
    assert "maze2d-umaze-sparse" in grid.envs and "maze2d-umaze-dense" not in grid.envs
    table1, _ = named_grid("paper-table1")
    assert len(table1.envs) >= 6 and "sra" in table1.methods
    for note in notes:
        assert note.startswith("paper-table4: leaving out")
    with pytest.raises(BenchError, match="unknown grid 'nope'; named grids: paper-table1, paper-table4"):
        named_grid("nope")


def test_dry_run_on_a_half_finished_directory(umaze_smoke, tmp_path):
    run_grid(expand_grid(["bc-exp"], TASKS, [0], SMOKE), options(tmp_path), workers=1, warn=lambda *_: None)
    args = ["run", "--methods", "bc-exp,uds", "--envs", ",".join(TASKS), "--seeds", "2", "--profile", "smoke",
            "--out", str(tmp_path), "--dry-run", "--workers", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "8 runs = 2 methods x 2 tasks x 2 seeds" in result.output
    assert "2 done, 0 failed earlier, 6 to run in 3 trainings" in result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.startswith(("bc-exp", "uds"))}
    assert "earlier results" in rows["bc-exp"] and "calibration" in rows["uds"]
    assert "with 2 runs at a time (local executor)" in result.output
    assert not list(tmp_path.glob("runs/uds/**/result.json"))  # nothing ran


def test_ray_flags_need_the_ray_executor(tmp_path):
    result = CliRunner().invoke(main, ["run", "--gpus-per-run", "0.5", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--gpus-per-run only apply to --executor ray" in result.output


def test_calibration_of_runs_sharing_a_device_times_every_copy_at_once():
    from benchmark.estimate import Calibrator
    spec = expand_grid(["bc-exp"], ["maze2d-umaze-sparse"], [0], SMOKE)[0]
    with Calibrator("cpu", share=2, threads=1, seconds=0.2) as calibrator:
        first, second = calibrator.updates(spec), calibrator.updates(spec)  # one pool serves every method
        assert calibrator._pool is not None
    assert 0 < first < 1 and 0 < second < 1
    assert calibrator._stack is None  # the sharers are gone


def test_dry_run_calibrates_where_the_runs_will_run():
    from benchmark.cli import _calibration_device
    from benchmark.executor import LocalExecutor
    assert _calibration_device("cpu", LocalExecutor(3)) == ("cpu", 1, 3)
    if not torch.cuda.is_available():  # a device this machine lacks (a cluster's): calibrate on the CPU here
        assert _calibration_device("cuda", LocalExecutor(3)) == ("cpu", 1, 3)


def test_a_method_that_cannot_calibrate_costs_only_its_row(monkeypatch):
    from dataclasses import replace

    import benchmark.estimate as est
    spec = expand_grid(["bc-exp"], ["maze2d-umaze-sparse"], [0], SMOKE)[0]
    with est.Calibrator("cpu", share=2, threads=1, seconds=0.1) as calibrator:  # a sharer fails before the barrier
        with pytest.raises(BenchError, match="unknown task"):
            calibrator.updates(replace(spec, task="no-such-task"))
        assert calibrator.updates(spec) > 0  # the others were released and the barrier is whole again
    real = est.Calibrator.updates
    monkeypatch.setattr(est.Calibrator, "updates", lambda self, s: (_ for _ in ()).throw(ModuleNotFoundError(
        "No module named 'ot'")) if s.method == "uds" else real(self, s))
    specs = expand_grid(["bc-exp", "uds"], ["maze2d-umaze-sparse"], [0], SMOKE)
    cost = est.estimate(specs, [[s] for s in specs], [], parallel=1, log=lambda *_: None)
    rows = {row["method"]: row for row in cost.rows}
    assert rows["uds"]["source"].startswith("calibration failed (ModuleNotFoundError: No module named 'ot')")
    assert rows["bc-exp"]["hours"] > 0 and cost.total_core_hours == pytest.approx(rows["bc-exp"]["hours"])
    assert any("calibration failed" in note for note in cost.notes)


def test_estimates_use_earlier_runs_that_updated_the_same_way():
    """Compiled (``--compile``) and eager runs update at different rates: each estimate reads its own kind, and
    a compiled run's one-off compilation counts with its pretraining."""
    from benchmark.estimate import build_for_timing, estimate
    from methods.learners import LearnerBase
    eager, compiled = (expand_grid(["uds"], ["maze2d-umaze-sparse"], [0], SMOKE, compile=c)[0] for c in (False, True))
    steps = eager.settings["num_steps"]

    def result(spec, update_s, compile_s=None):
        phases = {"pretrain": 1.0, "update": update_s, "eval": 0.0, **({"compile": compile_s} if compile_s else {})}
        return {"status": "done", "method": "uds", "family": "maze2d", "profile": "smoke", "task": spec.task,
                "settings": spec.settings, "phase_times_s": phases, "curve": {"step": [0, steps]}}

    results = [result(eager, 10.0), result(compiled, 5.0, compile_s=3.0)]
    for spec, per_update, one_off in ((eager, 10.0, 1.0), (compiled, 5.0, 4.0)):
        cost = estimate([spec], [[spec]], results, parallel=1, calibrate=False, log=lambda *_: None)
        row = cost.rows[0]
        assert row["s_per_update"] == pytest.approx(per_update / steps) and row["source"] == "earlier results"
        assert row["seconds"] == pytest.approx(one_off + per_update)  # evaluations cost 0 in these results
    assert any("--compile" in note for note in estimate([compiled], [[compiled]], results, 1, calibrate=False,
                                                        log=lambda *_: None).notes)
    learners = [p for p in build_for_timing(compiled).parts().values() if isinstance(p, LearnerBase)]
    assert learners and all(learner._compiled is not None for learner in learners)  # calibration compiles too


@pytest.mark.parametrize("onednn", [False, True])
def test_compile_says_when_eager_updates_would_take_onednn(umaze_smoke, tmp_path, monkeypatch, onednn):
    """Compiled updates use the stock matmuls; where the eager ones take oneDNN's (AMD with AVX-512 by default),
    ``--compile`` may be the slower choice, and the command says so."""
    from methods import nets
    monkeypatch.setattr(nets, "ONEDNN_LINEAR", onednn)
    result = CliRunner().invoke(main, ["run", "--methods", "bc-exp", "--envs", "maze2d-umaze-sparse", "--seeds", "1",
                                       "--profile", "smoke", "--out", str(tmp_path), "--dry-run", "--compile"])
    assert result.exit_code == 0, result.output
    assert ("bench perf --compile" in result.output) == onednn
