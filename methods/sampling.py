"""Batch sampling from transitions held as tensors on the learner's device.

Indices come from one ``torch.Generator`` on the data's device, so sampling needs no host round trip
and its state is part of the checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.seeding import stream_seed
from methods.data import Normalizer, Transitions


class TensorBatch(dict):
    """A batch: name -> tensor (obs, act, next_obs, done[, reward])."""


class TransitionTensors:
    """One set of transitions on ``device``, observations normalized once, optionally with a reward (a constant,
    or an array with one reward per transition)."""

    def __init__(self, data: Transitions, normalizer: Normalizer, device: torch.device,
                 reward: float | np.ndarray | None = None, expert: bool = False):
        def tensor(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x, dtype=torch.float32, device=device)

        self.obs = tensor(normalizer(data.observations))
        self.act = tensor(data.actions)
        self.next_obs = tensor(normalizer(data.next_observations))
        self.done = tensor(data.terminals)
        self.reward, self.expert, self.size = reward, float(expert), len(data)
        if isinstance(reward, np.ndarray):
            if reward.shape != (len(data),):
                raise ValueError(f"per-transition rewards have shape {reward.shape}, expected ({len(data)},)")
            self.reward = tensor(reward)

    def sample(self, count: int, generator: torch.Generator) -> TensorBatch:
        idx = torch.randint(self.size, (count,), generator=generator, device=self.obs.device)
        batch = TensorBatch(obs=self.obs[idx], act=self.act[idx], next_obs=self.next_obs[idx], done=self.done[idx])
        if self.reward is not None:
            batch["reward"] = (self.reward[idx] if isinstance(self.reward, torch.Tensor)
                               else torch.full((count,), self.reward, device=self.obs.device))
            batch["expert"] = torch.full((count,), self.expert, device=self.obs.device)
        return batch


@dataclass(frozen=True)
class Source:
    """A mixture component: its transitions, the reward its label gives, and its share of each batch."""
    data: Transitions
    count: int
    reward: float | np.ndarray | None = None  # a constant, or one reward per transition
    expert: bool = False  # rows are flagged in batch["expert"] (e.g. for a BC term on the expert half)


class MixtureSampler:
    """Each batch = ``count`` transitions from every source (fixed proportions), rewards attached by label.

    E.g. UDS: {"expert": Source(D^E, 256, 1.0), "supplementary": Source(D^S, 256, 0.0)}."""

    def __init__(self, sources: dict[str, Source], normalizer: Normalizer, seed: int, device: torch.device,
                 stream: str = "batches"):
        """Batches draw from ``stream`` of the run ``seed`` (a second sampler of one run names its own)."""
        self.normalizer, self.device = normalizer, torch.device(device)
        self.counts = {name: s.count for name, s in sources.items()}
        self.tensors = {name: TransitionTensors(s.data, normalizer, self.device, s.reward, s.expert)
                        for name, s in sources.items()}
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(stream_seed(seed, stream))

    @property
    def batch_size(self) -> int:
        return sum(self.counts.values())

    def replace(self, name: str, source: Source) -> None:
        """Swap one component's data (e.g. a new round of augmented transitions)."""
        self.counts[name] = source.count
        self.tensors[name] = TransitionTensors(source.data, self.normalizer, self.device, source.reward, source.expert)

    def sample(self) -> TensorBatch:
        parts = [self.tensors[name].sample(count, self.generator) for name, count in self.counts.items() if count]
        if len(parts) == 1:
            return parts[0]
        return TensorBatch({key: torch.cat([p[key] for p in parts]) for key in parts[0]})

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class UniformSampler(MixtureSampler):
    """Uniform minibatches (with replacement) from one set of transitions, no rewards."""

    def __init__(self, data: Transitions, normalizer: Normalizer, batch_size: int, seed: int, device: torch.device,
                 stream: str = "batches"):
        super().__init__({"data": Source(data, batch_size)}, normalizer, seed, device, stream)


def random_rows(pool: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` rows of ``pool`` drawn uniformly with replacement from ``generator`` (on the pool's device)."""
    return pool[torch.randint(len(pool), (count,), generator=generator, device=pool.device)]


class RolloutBuffer:
    """A fixed-capacity ring buffer of model transitions on ``device``; the oldest rows are overwritten first.
    ``fields`` name each column and its width (0: a scalar per row); ``obs`` and ``next_obs`` are normalized on
    the way in. Its rows are part of ``state_dict``."""

    def __init__(self, capacity: int, fields: dict[str, int], normalizer: Normalizer, device: torch.device):
        self.capacity, self.normalizer, self.device = capacity, normalizer, torch.device(device)
        self.data = {k: torch.zeros((capacity, d) if d else (capacity,), device=self.device) for k, d in fields.items()}
        self.size, self.position = 0, 0

    def __len__(self) -> int:
        return self.size

    def add(self, **rows: torch.Tensor) -> None:
        """Append rows (one tensor per field, raw observations); only the newest ``capacity`` are kept."""
        rows = {k: (self.normalizer(v) if k in ("obs", "next_obs") else v)[-self.capacity:] for k, v in rows.items()}
        rows = {k: v.to(self.device, torch.float32) for k, v in rows.items()}
        count = len(next(iter(rows.values())))
        index = (self.position + torch.arange(count, device=self.device)) % self.capacity
        for k, column in self.data.items():
            column[index] = rows[k]
        self.position = (self.position + count) % self.capacity
        self.size = min(self.capacity, self.size + count)

    def sample(self, count: int, generator: torch.Generator) -> TensorBatch:
        idx = torch.randint(self.size, (count,), generator=generator, device=self.device)
        return TensorBatch({k: v[idx] for k, v in self.data.items()})

    def state_dict(self) -> dict:
        return {"size": self.size, "position": self.position,
                "data": {k: v[:self.size].cpu().clone() for k, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.position = state["size"], state["position"]
        for k, v in state["data"].items():
            self.data[k][:self.size] = v.to(self.device)
