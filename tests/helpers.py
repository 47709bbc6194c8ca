"""Helpers the test files share (fixtures live in conftest.py). Importable as ``helpers`` from any test
file: pytest puts tests/ on sys.path for the top-level conftest.py (rootdir-based ``prepend`` import mode)."""
from __future__ import annotations

import io

import numpy as np
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


def assert_same_state(a, b, where: str = "state") -> None:
    """Two state dicts hold the same keys and bit-identical tensors, arrays and values (nested)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (where, sorted(a), sorted(b))
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def learner_batch(seed: int, obs_dim: int, act_dim: int, size: int = 64) -> dict[str, torch.Tensor]:
    """A random learner batch (observations, actions in (-0.95, 0.95), next observations, rewards, 10% done,
    half BC rows), the same for the same seed."""
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(size, obs_dim, generator=g),
            "act": torch.rand(size, act_dim, generator=g) * 1.9 - 0.95,
            "next_obs": torch.randn(size, obs_dim, generator=g), "reward": torch.randn(size, generator=g),
            "done": (torch.rand(size, generator=g) < 0.1).float(),
            "expert": (torch.rand(size, generator=g) < 0.5).float()}
