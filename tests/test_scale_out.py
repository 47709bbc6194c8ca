"""Scale-out: the Ray executor matches the local one, retries then fails a raising run without stopping
the grid, driver-written results; named grids; the dry run's plan and cost on a half-finished directory."""
from __future__ import annotations

import dataclasses
import sys

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.executor import run_grid
from benchmark.grid import expand_grid
from benchmark.grids import named_grid
from benchmark.profiles import get_profile
from benchmark.runner import RunOptions
from benchmark.store import run_dir
from envs import BenchError

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
