"""Offline RL learners (IQL, TD3+BC, AWAC, SAC-N): each takes batches (obs, act, reward, next_obs, done),
returns scalars from ``update`` and acts deterministically. Methods (UDS, SRA, OTIL, ...) wrap them; what a method
adds goes through two shared hooks: a behaviour-cloning term on rows it puts in the batch (every config's
``bc_weight``: ``base.bc_log_likelihood``) and lr schedules it passes in (``schedules``)."""
from __future__ import annotations

from typing import Any, Sequence

import torch

from core.tasks import TaskInfo
from methods.base import task_kind
from methods.learners.awac import AWAC, AWACConfig
from methods.learners.base import LearnerBase
from methods.learners.iql import IQL, IQLConfig
from methods.learners.sacn import SACN, SACNConfig
from methods.learners.schedules import Schedule
from methods.learners.td3bc import TD3BC, TD3BCConfig

LEARNERS: dict[str, tuple[type, type]] = {
    "iql": (IQL, IQLConfig),
    "td3bc": (TD3BC, TD3BCConfig),
    "awac": (AWAC, AWACConfig),
    "sacn": (SACN, SACNConfig),
}
# AWAC's lambda and SAC-N's critic count depend on the task (CORL's per-dataset table).
AWAC_LAMBDA = {"maze2d": 0.1, "locomotion": 1 / 3}
SACN_CRITICS = {"maze2d": 25, "hopper": 500, "halfcheetah": 10, "walker2d": 20, "ant": 10}
SACN_OTHER_ROBOT = 10  # a robot outside CORL's table: CORL's default critic count


def learner_task_defaults(config: Any, task: TaskInfo, method: str) -> dict[str, Any]:
    """The per-task values a learner config leaves as None (AWAC's lambda, SAC-N's critic count), as overrides;
    a method's ``task_defaults`` puts them under its ``learner`` group. ``method`` names it in errors."""
    if isinstance(config, AWACConfig) and config.awac_lambda is None:
        return {"awac_lambda": AWAC_LAMBDA["maze2d" if task_kind(task, method) == "maze2d" else "locomotion"]}
    if isinstance(config, SACNConfig) and config.num_critics is None:
        return {"num_critics": SACN_CRITICS.get(task_kind(task, method), SACN_OTHER_ROBOT)}
    return {}


def build_learner(config: Any, task: TaskInfo, device: torch.device | str, schedules: Sequence[Schedule] = (),
                  **options: Any):
    """The learner a config describes (its class picks the algorithm), running the method's lr ``schedules``
    (``methods.learners.schedules``) after each update; per-task values must be resolved
    (``learner_task_defaults``, through the method's ``task_defaults``). ``options`` go to the learner's
    constructor (e.g. IQL's ``actor_cls``)."""
    for cls, config_cls in LEARNERS.values():
        if isinstance(config, config_cls):
            learner = cls(task.obs_dim, task.act_dim, config, torch.device(device), **options)
            learner.use_schedules(schedules)
            return learner
    raise TypeError(f"not a learner config: {type(config).__name__}; valid: "
                    f"{', '.join(c.__name__ for _, c in LEARNERS.values())}")


def compile_method(method) -> bool:
    """Switch a method's updates to compiled graphs (``bench run --compile``, methods/compiled_step.py): its own
    (``Method.compile_update``: methods with their own losses) or else each learner's among its ``parts()``
    (``LearnerBase.compile_update``). False where there is neither (the updates stay eager)."""
    if method.compile_update():
        return True
    return any([part.compile_update() for part in method.parts().values() if isinstance(part, LearnerBase)])


def compile_seconds(method) -> float:
    """Seconds a method's compiled updates (its own and its learners') have spent compiling so far."""
    return method.compile_s + sum(part.compile_s for part in method.parts().values() if isinstance(part, LearnerBase))
