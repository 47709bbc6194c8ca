"""Bad input gives a one-line error naming the problem and the fix; never a traceback."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from benchmark.cli import main


def bench(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def assert_one_line_error(code: int, output: str, *fragments: str):
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
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
    (["run", "--executor", "ray", "--device", "cuda"], ["needs --gpus-per-run"]),
    (["data", "generate", "--envs", "maze2d-tiny"], ["unknown task"]),
])
def test_bad_input_is_one_clear_line(args, fragments, tmp_path):
    assert_one_line_error(*bench(*args, *(["--out", str(tmp_path)] if args[0] == "run" else [])), *fragments)


def test_missing_dataset_names_the_command_that_builds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "empty"))
    code, output = bench("run", "--envs", "maze2d-large-dense", "--profile", "smoke", "--out", str(tmp_path))
    assert_one_line_error(code, output, "bench/maze2d-large/expert-smoke-v0",
                          "bench data generate --envs maze2d-large --profile smoke", "--generate-missing")


def test_config_file_errors(tmp_path):
    bad = tmp_path / "grid.yaml"
    bad.write_text("methods: [bc-exp]\nlearning_rate: 3\n")
    assert_one_line_error(*bench("run", "--config", str(bad)), "unknown keys ['learning_rate']")
    bad.write_text("methods: [bc-exp\n")
    assert_one_line_error(*bench("run", "--config", str(bad)), "not valid YAML")
    assert_one_line_error(*bench("run", "--config", str(tmp_path / "none.toml")), "not found")


def test_config_file_drives_a_run(umaze_smoke, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["bc-exp"]\nenvs = ["maze2d-umaze-sparse"]\nseeds = 1\nprofile = "smoke"\n'
                    '[overrides.bc-exp]\nlr = 0.001\n')
    code, output = bench("run", "--config", str(grid), "--out", str(tmp_path / "res"), "--no-progress", "--workers", "1")
    assert code == 0, output
    assert "bc-exp[lr=0.001]" in output and "maze2d-umaze-sparse" in output
    results = list((tmp_path / "res").glob("runs/bc-exp/maze2d-umaze-sparse/seed0-*/result.json"))
    assert len(results) == 1


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
