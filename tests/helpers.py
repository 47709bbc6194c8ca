"""Helpers the test files share (fixtures live in conftest.py). Importable as ``helpers`` from any test
file: pytest puts tests/ on sys.path for the top-level conftest.py (rootdir-based ``prepend`` import mode)."""
from __future__ import annotations

import io

import torch

from envs.tasks import TaskSpec


def toy_task(obs_dim: int = 4, act_dim: int = 2, name: str = "toy", family: str = "synthetic",
             horizon: int = 20) -> TaskSpec:
    """A task without an environment or datasets, for methods and learners trained on synthetic data. The
    family and name pick per-task defaults (e.g. AWAC's lambda is maze2d's for ``family="maze2d"``)."""
    return TaskSpec(name=name, family=family, env_id="none", dataset_prefix=f"bench/{name}",
                    max_episode_steps=horizon, obs_dim=obs_dim, act_dim=act_dim)


def roundtrip(state: dict) -> dict:
    """A state dict through bytes, as a checkpoint file would carry it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)
