"""A method's file is its whole declaration: budgets per profile, its own run length, task defaults resolved before
the run (so result.json holds concrete values), discovery in-tree or by entry point."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import methods as methods_package
from benchmark.config import method_config, parse_set_options
from benchmark.grid import expand_grid
from benchmark.profiles import PROFILES, get_profile
from core.errors import BenchError
from envs.tasks import TaskSpec, get_task
from methods import registry
from methods.base import FAMILIES
from methods.bc_exp import BCExp
from methods.registry import available, get_method

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@pytest.fixture
def fresh_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_loaded", False)


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return next(b for b in blocks if "@register" in b)


def bench(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


# ------------------------------------------------------------------------------------------- end to end
def test_readme_example_as_an_entry_point_plugin_runs_and_reports(umaze_smoke, tmp_path):
    """The README's example, installed as a throw-away distribution (a *.dist-info with entry_points.txt on
    sys.path: what pip leaves), runs through ``bench run --profile smoke`` and ``bench report``; its result
    stores the task default (maze2d lr) and the smoke budget (batch size) as concrete values."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "my_bc.py").write_text(readme_example())
    dist = plugin / "my_bc-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-bc\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[bench.methods]\nmy-bc = my_bc:MyBC\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)])}
    results, report = tmp_path / "results", tmp_path / "report"

    run = bench("run", "--methods", "my-bc", "--envs", umaze_smoke.name, "--profile", "smoke", "--seeds", "0,",
                "--workers", "1", "--no-progress", "--device", "cpu", "--out", str(results), env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    [path] = results.glob("runs/my-bc/**/result.json")
    result = json.loads(path.read_text())
    assert result["status"] == "done"
    assert result["config"] == {"lr": 1e-3, "batch_size": 64}  # task default (maze2d), smoke budget
    assert result["settings"]["num_steps"] == get_profile("smoke").num_steps

    shown = bench("report", "--results", str(results), "--out", str(report), env=env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "my-bc" in "".join(p.read_text() for p in report.rglob("*.md"))


class RunLength(BCExp):
    """BC-exp that reports the run length it was built with."""
    name = "run-length"

    def result_info(self) -> dict:
        return {"num_steps": self.num_steps}


def test_the_runner_hands_the_method_its_run_length(umaze_smoke, tmp_path, fresh_registry):
    from benchmark.runner import RunOptions, run_one
    registry.register(RunLength)
    spec = expand_grid(["run-length"], [umaze_smoke.name], [0], get_profile("smoke"))[0]
    result = run_one(spec, RunOptions(root=tmp_path, device="cpu", show_progress=False))
    assert result["method_info"] == {"num_steps": get_profile("smoke").num_steps} == {"num_steps": 300}


# ------------------------------------------------------------------------------------------- resolution
def test_config_layers_defaults_then_task_then_budget_then_user():
    large = get_task("maze2d-large-sparse")
    sra = get_method("sra")
    config = method_config(sra, large, "smoke", {"round_every": 7})
    assert config.model_ratio == 0.5 and config.horizon == 5 and config.learner_lr == 1e-3  # task defaults
    assert config.warmup_steps == 100  # the smoke budget beats the task's 50k
    assert config.round_every == 7  # the user beats both
    assert config.goal_quantile == sra.Config().goal_quantile  # untouched: the Config default
    # ROMI's large maze ratio differs from SRA's on purpose (each its paper's)
    assert method_config(get_method("romi"), large, "smoke").model_ratio == 0.3
    hopper = get_task("hopper-medium")
    assert method_config(sra, hopper, "paper").model_ratio == 0.5
    assert method_config(sra, get_task("walker2d-medium"), "paper").reverse_policy == "cvae"


def test_stored_configs_hold_concrete_task_defaults():
    """No field the task decides is left None in a run's config (it used to be filled inside the run)."""
    tasks = ["maze2d-umaze-sparse", "maze2d-large-dense", "hopper-medium", "walker2d-medium"]
    for spec in expand_grid(["sra", "sra-awac", "sra-sacn", "romi", "uds-awac", "uds-sacn"], tasks, [0],
                            get_profile("paper")):
        cls = get_method(spec.method)
        for key, value in cls.task_defaults(get_task(spec.task)).items():
            stored = spec.config[key]
            assert stored is not None and (stored == value if not isinstance(value, dict) else
                                           all(stored[k] == v for k, v in value.items())), (spec.run_key, key)
    awac = expand_grid(["uds-awac"], ["hopper-medium"], [0], get_profile("quick"))[0]
    assert awac.config["learner"]["awac_lambda"] == pytest.approx(1 / 3)
    sacn = expand_grid(["uds-sacn"], ["hopper-medium"], [0], get_profile("quick"))[0]
    assert sacn.config["learner"]["num_critics"] == 500
    smoke = expand_grid(["uds-sacn"], ["hopper-medium"], [0], get_profile("smoke"))[0]
    assert smoke.config["learner"]["num_critics"] == 5  # the smoke budget beats the task's 500


def test_task_defaults_of_an_unknown_task_kind_are_an_error():
    pixels = TaskSpec(name="pixels-reach", family="pixels", env_id="none", dataset_prefix="bench/pixels",
                      max_episode_steps=10, obs_dim=3, act_dim=2)
    for name in ("sra", "romi", "uds-awac", "sra-sacn"):
        with pytest.raises(BenchError, match=f"{name} keeps per-task defaults for maze2d and locomotion tasks only"):
            get_method(name).task_defaults(pixels)
    assert get_method("uds").task_defaults(pixels) == {}  # IQL has nothing per task
    maze = TaskSpec(name="maze2d-open-sparse", family="maze2d", env_id="none", dataset_prefix="bench/open",
                    max_episode_steps=10, obs_dim=4, act_dim=2, maze_map="open")
    for name in ("sra", "romi"):
        with pytest.raises(BenchError, match=f"set {name}.model_ratio"):
            get_method(name).task_defaults(maze)


def test_run_length_is_the_methods_own_where_it_declares_one():
    paper = get_profile("paper")
    specs = expand_grid(["sra", "sra-noaug", "sra-awac", "uds"], ["maze2d-umaze-sparse", "hopper-medium"], [0], paper)
    steps = {(s.method, s.task): s.settings["num_steps"] for s in specs}
    for method in ("sra", "sra-noaug", "sra-awac"):
        assert steps[method, "maze2d-umaze-sparse"] == 200_000 and steps[method, "hopper-medium"] == 500_000
    assert steps["uds", "hopper-medium"] == paper.num_steps == 1_000_000
    for spec in specs:
        assert "num_steps" not in spec.config  # the run length is a setting, not a hyper-parameter
    quick = expand_grid(["sra"], ["hopper-medium"], [0], get_profile("quick"))[0]
    assert quick.settings["num_steps"] == get_profile("quick").num_steps


def test_num_steps_cannot_be_set_as_a_hyper_parameter():
    with pytest.raises(BenchError, match="sra.num_steps is the run length, set by the profile"):
        expand_grid(["sra"], ["maze2d-umaze-sparse"], [0], get_profile("smoke"), {"sra": {"num_steps": 5}})
    with pytest.raises(BenchError, match="num_steps is the run length, set by the profile"):
        parse_set_options(["num_steps=5"], ["sra", "uds"])


# ------------------------------------------------------------------------------------------- declarations
@pytest.mark.parametrize("name", sorted(available()))
def test_budgets_and_run_steps_name_real_profiles_and_resolve(name):
    cls = get_method(name)
    assert set(cls.budgets) <= set(PROFILES), f"{name}.budgets names unknown profiles"
    assert set(cls.run_steps) <= set(PROFILES), f"{name}.run_steps names unknown profiles"
    assert all(set(by_family) <= set(FAMILIES) for by_family in cls.run_steps.values())
    for profile in PROFILES:
        for task in ("maze2d-medium-sparse", "halfcheetah-medium"):
            method_config(cls, get_task(task), profile)  # every key of the budget is a real hyper-parameter


def test_profiles_hold_only_profile_wide_settings():
    assert set(get_profile("smoke").settings()) == {"name", "data", "num_steps", "eval_every", "eval_episodes",
                                                    "log_every", "expert_episodes"}


def test_sra_variants_inherit_sras_declarations():
    sra = get_method("sra")
    for name in ("sra-noaug", "sra-iql", "sra-awac", "sra-td3bc"):
        assert get_method(name).budgets == sra.budgets and get_method(name).run_steps == sra.run_steps
    sacn = get_method("sra-sacn").budgets
    assert sacn["quick"] == sra.budgets["quick"]
    assert sacn["smoke"] == {**sra.budgets["smoke"], "learner": {"num_critics": 5, "hidden_dims": [64, 64, 64]}}


# ------------------------------------------------------------------------------------------- discovery
def test_a_module_saved_in_the_methods_package_is_registered(tmp_path, monkeypatch, fresh_registry):
    """Discovery imports every module of ``methods`` (no list to edit); subpackages hold building blocks."""
    (tmp_path / "my_new_method.py").write_text(textwrap.dedent('''
        from methods.bc_exp import BCExp
        from methods.registry import register

        @register
        class MyNew(BCExp):
            name = "my-new"
            description = "saved in methods/"
    '''))
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "__init__.py").write_text("raise RuntimeError('a subpackage is not imported')\n")
    monkeypatch.setattr(methods_package, "__path__", [*methods_package.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "methods.my_new_method", raising=False)
    assert available()["my-new"].description == "saved in methods/"
    assert {"methods.bc_exp", "methods.sra_variants", "methods.clare"} <= {c.__module__ for c in available().values()}
    assert not hasattr(registry, "BUILTIN_MODULES")
