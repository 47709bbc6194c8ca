"""Batch sampling from transitions held as tensors on the learner's device."""
from __future__ import annotations

import numpy as np
import torch

from methods.data import Normalizer, Transitions


class TensorBatch(dict):
    """A batch: name -> tensor (obs, act, next_obs, done, ...)."""


class UniformSampler:
    """Uniform minibatches (with replacement) from one set of transitions, observations normalized once.

    Indices come from a ``torch.Generator`` on the data's device, so sampling needs no host round trip
    and its state is part of the checkpoint.
    """

    def __init__(self, data: Transitions, normalizer: Normalizer, batch_size: int, seed: int, device: torch.device):
        def tensor(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x, dtype=torch.float32, device=device)

        self.obs = tensor(normalizer(data.observations))
        self.act = tensor(data.actions)
        self.next_obs = tensor(normalizer(data.next_observations))
        self.done = tensor(data.terminals)
        self.batch_size, self.size = batch_size, len(data)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def sample(self) -> TensorBatch:
        idx = torch.randint(self.size, (self.batch_size,), generator=self.generator, device=self.obs.device)
        return TensorBatch(obs=self.obs[idx], act=self.act[idx], next_obs=self.next_obs[idx], done=self.done[idx])

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
