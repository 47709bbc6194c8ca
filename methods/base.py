"""The method interface: the runner owns the loop, evaluation, logging, checkpoints and seeding;
a method owns learning."""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import torch

from envs.tasks import TaskSpec
from methods.data import ImitationData

Progress = Callable[..., Any]  # tqdm-like: progress(iterable, desc=..., total=...) -> iterable


class Method:
    """Subclass, set ``name``, ``description`` and ``Config`` (a dataclass, every field defaulted),
    implement ``update`` / ``act`` / ``state_dict`` / ``load_state_dict``; ``pretrain`` is optional."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type]

    def __init__(self, task: TaskSpec, data: ImitationData, config: Any, seed: int, device: torch.device):
        self.task, self.data, self.config, self.seed, self.device = task, data, config, seed, torch.device(device)

    def pretrain(self, progress: Progress) -> None:
        """Optional phases before the learner loop (dynamics models, CVAE, discriminators)."""

    def update(self, step: int) -> dict[str, float]:
        """One learner step; returns scalars to log (tensors are fine: the runner syncs them rarely)."""
        raise NotImplementedError

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions for a batch of raw (unnormalized) observations, shape (B, act_dim)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Everything needed to resume exactly: networks, optimizers, sampler RNGs, counters."""
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work (a no-op on CPU): call before reading a clock that times device work."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def act_numpy(actor: torch.nn.Module, normalizer, obs: np.ndarray, device: torch.device) -> np.ndarray:
    """Run ``actor.act`` on raw observations: normalize, batch on ``device``, return float32 numpy."""
    obs_t = torch.as_tensor(normalizer(np.asarray(obs, np.float32)), device=device)
    return actor.act(obs_t).cpu().numpy().astype(np.float32)
