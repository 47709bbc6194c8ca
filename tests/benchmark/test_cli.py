"""Bad input gives a one-line error naming the problem and the fix; never a traceback."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from benchmark.cli import main


def bench(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def assert_one_line_error(code: int, output: str, *fragments: str):
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in lines[0], output


@pytest.mark.parametrize("args, fragments", [
    (["run", "--methods", "nope"], ["unknown method 'nope'", "valid methods: bc-exp"]),
    (["run", "--envs", "maze3d"], ["unknown task 'maze3d'", "valid tasks:", "maze2d-umaze-sparse"]),
    (["run", "--profile", "huge"], ["unknown profile 'huge'", "smoke, quick, paper"]),
    (["run", "--set", "bc-exp.lrr=1"], ["no hyper-parameter 'lrr'", "valid keys: policy"]),
    (["run", "--set", "bc-exp.lr=fast"], ["bc-exp.lr: expected float, got 'fast'"]),
    (["run", "--set", "bc-exp.hidden_dims=3"], ["bc-exp.hidden_dims: expected a list"]),
    (["run", "--set", "nokey"], ["--set expects key=value"]),
    (["run", "--seeds", "a,b"], ["--seeds expects"]),
    (["run", "--device", "tpu"], ["unknown device 'tpu'"]),
    (["run", "--expert-draw", "random"], ["unknown expert draw 'random'", "valid draws: first, seeded"]),
    (["run", "--executor", "ray", "--device", "cuda"], ["needs --gpus-per-run"]),
    (["run", "--executor", "ray", "--threads", "2"], ["--threads applies to the local executor", "--cpus-per-run"]),
    (["data", "generate", "--envs", "maze2d-tiny"], ["unknown task"]),
])
def test_bad_input_is_one_clear_line(args, fragments, tmp_path):
    assert_one_line_error(*bench(*args, *(["--out", str(tmp_path)] if args[0] == "run" else [])), *fragments)


def test_missing_dataset_names_the_command_that_builds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "empty"))
    code, output = bench("run", "--envs", "maze2d-large-dense", "--profile", "smoke", "--out", str(tmp_path))
    assert_one_line_error(code, output, "bench/maze2d-large/expert-smoke-v1",
                          "bench data generate --envs maze2d-large --profile smoke", "--generate-missing")


def test_config_file_errors(tmp_path):
    bad = tmp_path / "grid.yaml"
    bad.write_text("methods: [bc-exp]\nlearning_rate: 3\n")
    assert_one_line_error(*bench("run", "--config", str(bad)), "unknown keys ['learning_rate']")
    bad.write_text("methods: [bc-exp\n")
    assert_one_line_error(*bench("run", "--config", str(bad)), "not valid YAML")
    assert_one_line_error(*bench("run", "--config", str(tmp_path / "none.toml")), "not found")
    bad.write_text("expert_draw: last\n")
    assert_one_line_error(*bench("run", "--config", str(bad), "--out", str(tmp_path)),
                          "unknown expert draw 'last'; valid draws: first, seeded")


def test_config_file_drives_a_run(umaze_smoke, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["bc-exp"]\nenvs = ["maze2d-umaze-sparse"]\nseeds = 1\nprofile = "smoke"\n'
                    '[overrides.bc-exp]\nlr = 0.001\n')
    code, output = bench("run", "--config", str(grid), "--out", str(tmp_path / "res"), "--no-progress", "--workers", "1")
    assert code == 0, output
    assert "bc-exp[lr=0.001]" in output and "maze2d-umaze-sparse" in output
    results = list((tmp_path / "res").glob("runs/bc-exp/maze2d-umaze-sparse/seed0-*/result.json"))
    assert len(results) == 1


def test_expert_draw_from_the_cli_gets_its_own_run_key_and_is_recorded(umaze_smoke, tmp_path):
    from benchmark.runner import expert_episode_ids
    code, output = bench("run", "--envs", "maze2d-umaze-sparse", "--seeds", "1", "--profile", "smoke",
                         "--expert-draw", "seeded", "--out", str(tmp_path / "res"), "--no-progress", "--workers", "1")
    assert code == 0, output
    [path] = (tmp_path / "res").glob("runs/bc-exp/maze2d-umaze-sparse/seed0-*/result.json")
    result = json.loads(path.read_text())
    assert result["settings"]["expert_draw"] == result["data"]["expert_draw"] == "seeded"
    assert result["data"]["expert_episode_ids"] == expert_episode_ids("seeded", 10, 5, 0)  # smoke: 10 episodes
    code, output = bench("report", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "rep"),
                         "--reps", "100")
    assert code == 0 and "D^E: 5 episodes drawn per seed." in output, output


def test_threads_sets_each_runs_torch_threads_and_is_recorded(umaze_smoke, tmp_path):
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # what an in-process run (--workers 1) would otherwise keep
    try:
        code, output = bench("run", "--envs", "maze2d-umaze-sparse", "--seeds", "1", "--profile", "smoke",
                             "--out", str(tmp_path), "--no-progress", "--workers", "1", "--threads", "1")
    finally:
        torch.set_num_threads(before)
    assert code == 0, output
    [path] = tmp_path.glob("runs/bc-exp/maze2d-umaze-sparse/seed0-*/result.json")
    assert json.loads(path.read_text())["settings"]["torch_threads"] == 1


def test_report_on_an_empty_directory(tmp_path):
    assert_one_line_error(*bench("report", "--results", str(tmp_path), "--out", str(tmp_path / "r")),
                          "no results")


def test_listing_commands():
    for command, expected in [("tasks", "maze2d-large-dense"), ("methods", "bc-exp"), ("profiles", "quick")]:
        code, output = bench(command)
        assert code == 0 and expected in output


def test_run_shares_models_through_a_cache_in_the_results_directory(umaze_smoke, tmp_path, monkeypatch):
    """MILO and CLARE need the same forward model: the grid trains it once (a cache under --out), and the
    variable that points the workers there is gone after the run."""
    monkeypatch.delenv("BENCH_MODEL_CACHE", raising=False)
    code, output = bench("run", "--methods", "milo,clare", "--envs", "maze2d-umaze-sparse", "--seeds", "1",
                         "--profile", "smoke", "--out", str(tmp_path / "res"), "--no-progress", "--workers", "1")
    assert code == 0, output
    assert len(list((tmp_path / "res" / "model-cache").glob("*.pt"))) == 1
    assert "BENCH_MODEL_CACHE" not in os.environ


# ------------------------------------------------------------------ issue 15: bad input refused in one line
@pytest.mark.parametrize("args, fragments", [
    (["--set", "bc-exp.batch_size=0"], ["bc-exp.batch_size=0 is out of range: must be >= 1"]),
    (["--set", "bc-exp.lr=-1"], ["bc-exp.lr=-1 is out of range: a learning rate must be >= 0"]),
    (["--set", "bc-exp.policy=foo"], ["bc-exp.policy=foo is not a valid choice: use one of deterministic, gaussian"]),
    (["--set", "bc-exp.hidden_dims=[256,0]"], ["bc-exp.hidden_dims=[256, 0] is out of range: must be >= 1"]),
    (["--methods", "sra", "--set", "sra.model.activation=tanh"], ["sra.model.activation=tanh is not a valid choice"]),
    (["--methods", "uds", "--set", "uds.learner.gamma=1.5"], ["uds.learner.gamma=1.5 is out of range: must be in [0, 1]"]),
    (["--methods", "uds", "--set", "bc-exp.lr=1e-3"], ["--set bc-exp.lr: bc-exp is not among the selected methods (uds)"]),
    (["--methods", ""], ["--methods is empty", "bench methods"]),
    (["--envs", " "], ["--envs is empty", "bench tasks"]),
])
def test_bad_config_values_are_refused_at_grid_expansion(args, fragments, tmp_path, monkeypatch):
    """Checked before any data is looked for (an empty datasets root: a data error would come first otherwise)."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "empty"))
    assert_one_line_error(*bench("run", *args, "--profile", "smoke", "--out", str(tmp_path / "res")), *fragments)
    assert not (tmp_path / "res").exists()


def test_every_method_default_config_passes_validation():
    from benchmark.grid import expand_grid
    from benchmark.profiles import PROFILES
    from methods.registry import available
    for profile in PROFILES.values():
        expand_grid(list(available()), ["maze2d-umaze-sparse", "hopper-medium"], [0], profile)


def test_numbers_parse_in_every_spelling(tmp_path):
    """YAML 1.1 reads 1e-3 as a string: the README's own `--set bc-exp.lr=1e-3` and grid files must still work."""
    from benchmark.config import load_grid_file, parse_set_options
    from benchmark.grid import expand_grid
    from benchmark.profiles import get_profile
    for raw, lr in [("1e-3", 1e-3), ("1E-3", 1e-3), (".001", 1e-3), ("3", 3.0), ("+2.5e-4", 2.5e-4)]:
        overrides = parse_set_options([f"bc-exp.lr={raw}", "bc-exp.batch_size=1e2"], ["bc-exp"])
        spec = expand_grid(["bc-exp"], ["maze2d-umaze-sparse"], [0], get_profile("smoke"), overrides)[0]
        assert spec.config["lr"] == lr and spec.config["batch_size"] == 100, raw
    grid = tmp_path / "grid.yaml"
    grid.write_text("methods: [bc-exp]\noverrides:\n  bc-exp: {lr: 1e-3, batch_size: 1_000}\n")
    overrides = load_grid_file(grid).overrides
    spec = expand_grid(["bc-exp"], ["maze2d-umaze-sparse"], [0], get_profile("smoke"), overrides)[0]
    assert spec.config["lr"] == 1e-3 and spec.config["batch_size"] == 1000
    assert_one_line_error(*bench("run", "--set", "bc-exp.batch_size=2.5", "--out", str(tmp_path)),
                          "bc-exp.batch_size: expected int, got 2.5")


def test_duplicate_seeds_and_methods_run_once_with_a_note(umaze_smoke, tmp_path):
    out = tmp_path / "res"
    code, output = bench("run", "--methods", "bc-exp,bc-exp", "--envs", "maze2d-umaze-sparse", "--seeds", "0,0",
                         "--profile", "smoke", "--out", str(out), "--no-progress", "--workers", "1")
    assert code == 0, output
    assert "note: method bc-exp given more than once" in output and "note: seed 0 given more than once" in output
    assert "(n=1)" in output
    results = list(out.glob("runs/bc-exp/maze2d-umaze-sparse/*/result.json"))
    assert len(results) == 1
    steps = json.loads(results[0].read_text())["curve"]["step"]
    assert steps == sorted(set(steps))


def test_unwritable_out_is_one_line_before_any_training(umaze_smoke, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, output = bench("run", "--envs", "maze2d-umaze-sparse", "--seeds", "1", "--profile", "smoke",
                         "--out", str(blocker / "res"), "--no-progress", "--workers", "1")
    assert_one_line_error(code, output, f"--out {blocker / 'res'} is not writable", "pass a directory you can write to")
    results = tmp_path / "results"
    _write_fake_result(results)
    code, output = bench("report", "--results", str(results), "--out", str(blocker / "report"))
    assert_one_line_error(code, output, f"--out {blocker / 'report'} is not writable")


def _write_fake_result(root):
    from core.io import atomic_write_json
    atomic_write_json(root / "runs/bc-exp/maze2d-umaze-sparse/seed0-x/result.json",
                      {"run_key": "bc-exp/maze2d-umaze-sparse/seed0-x", "method": "bc-exp", "task": "maze2d-umaze-sparse",
                       "seed": 0, "profile": "smoke", "status": "done", "final_score": 50.0, "best_score": 60.0,
                       "curve": {"step": [0, 100], "score": [0.0, 50.0], "return": [0.0, 1.0]}})


class _Crash(Exception):
    pass


def test_a_grid_with_failed_runs_exits_non_zero(umaze_smoke, tmp_path, monkeypatch):
    from benchmark.cli import EXIT_RUNS_FAILED
    from methods import registry
    from methods.bc_exp import BCExp

    class Crashing(BCExp):
        name = "crash-test"

        def update(self, step):
            raise _Crash("boom")

    monkeypatch.setitem(registry._REGISTRY, "crash-test", Crashing)
    code, output = bench("run", "--methods", "crash-test,bc-exp", "--envs", "maze2d-umaze-sparse", "--seeds", "1",
                         "--profile", "smoke", "--out", str(tmp_path / "res"), "--no-progress", "--workers", "1")
    assert code == EXIT_RUNS_FAILED == 3, output
    assert "1 run(s) failed" in output and "(exit code 3)" in output


def test_report_prints_a_short_summary_and_the_paths(tmp_path):
    results = tmp_path / "results"
    _write_fake_result(results)
    code, output = bench("report", "--results", str(results), "--out", str(tmp_path / "rep"), "--reps", "100")
    assert code == 0, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) <= 8 and "## " not in output and "|" not in output, output
    assert "report (smoke profile): 1 complete variant(s): bc-exp" in output
    assert f"open {tmp_path / 'rep' / 'report.html'}" in output and "report.md" in output


def test_data_generation_prints_a_readable_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    code, output = bench("data", "generate", "--envs", "maze2d-umaze", "--profile", "smoke")
    assert code == 0, output
    assert "{" not in output and "returns of a random policy / this expert: sparse" in output, output
