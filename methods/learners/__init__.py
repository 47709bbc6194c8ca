"""Offline RL learners (IQL, TD3+BC, AWAC, SAC-N): each takes batches (obs, act, reward, next_obs, done),
returns scalars from ``update`` and acts deterministically. Methods (UDS, SRA, OTIL, ...) wrap them."""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from envs.tasks import TaskSpec
from methods.learners.awac import AWAC, AWACConfig
from methods.learners.iql import IQL, IQLConfig
from methods.learners.sacn import SACN, SACNConfig
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


def for_task(config: Any, task: TaskSpec) -> Any:
    """Fill the per-task defaults a config leaves as None."""
    if isinstance(config, AWACConfig) and config.awac_lambda is None:
        return dataclasses.replace(config, awac_lambda=AWAC_LAMBDA.get(task.family, AWAC_LAMBDA["locomotion"]))
    if isinstance(config, SACNConfig) and config.num_critics is None:
        key = task.family if task.family == "maze2d" else task.name.split("-")[0]
        return dataclasses.replace(config, num_critics=SACN_CRITICS.get(key, 10))
    return config


def build_learner(config: Any, task: TaskSpec, device: torch.device | str):
    """The learner a config describes (its class picks the algorithm), with per-task defaults filled."""
    for cls, config_cls in LEARNERS.values():
        if isinstance(config, config_cls):
            return cls(task.obs_dim, task.act_dim, for_task(config, task), torch.device(device))
    raise TypeError(f"not a learner config: {type(config).__name__}; valid: "
                    f"{', '.join(c.__name__ for _, c in LEARNERS.values())}")
