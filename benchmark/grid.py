"""Grid expansion: (methods x tasks x seeds) under one profile -> run specs with stable run keys."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmark.config import Overrides, config_dict, method_config, stable_hash
from benchmark.precision import DEFAULT_PRECISION, PRECISIONS
from benchmark.profiles import Profile
from benchmark.validation import validate_config
from core.errors import BenchError
from envs.tasks import get_task
from methods.registry import get_method


# How D^E is drawn from the expert dataset (a run setting, stored in ``settings`` when not the default):
EXPERT_DRAWS = {
    "first": "the first expert_episodes episodes in file order (the paper's protocol)",
    "seeded": "expert_episodes distinct episodes drawn per run seed (numpy SeedSequence of the seed)",
}
DEFAULT_EXPERT_DRAW = "first"


def check_expert_draw(value: str) -> str:
    if value not in EXPERT_DRAWS:
        raise BenchError(f"unknown expert draw {value!r}; valid draws: {', '.join(EXPERT_DRAWS)}")
    return value


@dataclass(frozen=True)
class RunSpec:
    method: str
    task: str
    seed: int
    profile: str
    overrides: dict[str, Any]   # what the user set for this method (CLI / grid file)
    config: dict[str, Any]      # the resolved method Config (JSON view)
    settings: dict[str, Any]    # the runner's settings from the profile

    @property
    def config_hash(self) -> str:
        return stable_hash({"method": self.method, "config": self.config, "settings": self.settings})

    @property
    def run_key(self) -> str:
        """``method/task/seed<k>-<hash>``: stable across re-runs, different for any config change."""
        return f"{self.method}/{self.task}/seed{self.seed}-{self.config_hash}"

    @property
    def variant(self) -> str:
        """The label tables use: the method name, plus the user's overrides when there are any."""
        if not self.overrides:
            return self.method
        return f"{self.method}[{','.join(f'{k}={v}' for k, v in sorted(self.overrides.items()))}]"


def unique(values: list, what: str, note=None) -> list:
    """``values`` without repeats (first occurrence kept); ``note`` hears which were dropped. A repeated seed
    would train once and store its evaluations twice under the one run key."""
    out = list(dict.fromkeys(values))
    if len(out) < len(values) and note is not None:
        repeated = [v for v in out if values.count(v) > 1]
        note(f"note: {what} {', '.join(map(str, repeated))} given more than once; each runs once")
    return out


def expand_grid(methods: list[str], tasks: list[str], seeds: list[int], profile: Profile,
                overrides: Overrides | None = None, note=None, expert_draw: str = DEFAULT_EXPERT_DRAW,
                precision: str = DEFAULT_PRECISION, compile: bool = False) -> list[RunSpec]:
    """Validate every name, override and Config value up front, then list the runs (method-major order);
    repeated methods, tasks or seeds are dropped (``note`` hears about it). ``expert_draw``: see EXPERT_DRAWS;
    ``precision``: see benchmark/precision.py; ``compile``: learner updates as one compiled graph
    (methods/compiled_step.py)."""
    overrides = overrides or {}
    if precision not in PRECISIONS:
        raise BenchError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    # defaults are left out of the settings, so the run keys of runs from before a setting stay the same
    choices = {**({} if check_expert_draw(expert_draw) == DEFAULT_EXPERT_DRAW else {"expert_draw": expert_draw}),
               **({} if precision == DEFAULT_PRECISION else {"precision": precision}),
               **({"compile": True} if compile else {})}
    methods, tasks, seeds = unique(methods, "method", note), unique(tasks, "task", note), unique(seeds, "seed", note)
    for method in overrides:
        if method not in methods:
            get_method(method)  # unknown names still error; overrides for unselected methods are ignored
    for task in tasks:
        get_task(task)
    specs = []
    for method in methods:
        cls = get_method(method)
        user = overrides.get(method, {})
        if "num_steps" in user:
            raise BenchError(f"{method}.num_steps is the run length, set by the profile; pick another --profile")
        for task in tasks:
            spec_task = get_task(task)
            resolved = method_config(cls, spec_task, profile.name, user)
            validate_config(resolved, method)
            config = config_dict(resolved)
            settings = {**profile.settings(), "num_steps": run_steps(cls, profile, spec_task.family), **choices,
                        **_data_version(spec_task)}
            for seed in seeds:
                specs.append(RunSpec(method, task, seed, profile.name, dict(user), config, settings))
    return specs


def run_steps(method_cls: type, profile: Profile, family: str) -> int:
    """A run's learner updates: the method's own for this profile and task family (``Method.run_steps``: SRA's
    200k / 500k at paper), else the profile's. The runner's setting, passed to the method as ``num_steps``."""
    return method_cls.run_steps.get(profile.name, {}).get(family, profile.num_steps)


def _data_version(task) -> dict[str, int]:
    """The task's data and evaluation recipe version, in the settings (and so the run key) once it is past 0:
    maze2d v1 is D4RL's data, scale and evaluation; a v0 result must not count as done for a v1 grid."""
    from envs.storage import DATA_VERSION
    version = DATA_VERSION[task.family]
    return {"data_version": version} if version else {}

