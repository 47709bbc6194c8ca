"""What a method sees of a task's data: transitions without rewards, and the state normalizer."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass(frozen=True)
class Transitions:
    """Reward-free transitions with episode boundaries (``episode_starts``: first index of each episode)."""
    observations: np.ndarray       # (N, obs_dim) float32
    actions: np.ndarray            # (N, act_dim) float32
    next_observations: np.ndarray  # (N, obs_dim) float32
    terminals: np.ndarray          # (N,) bool: true environment termination
    timeouts: np.ndarray           # (N,) bool: cut by a time limit or the end of the data
    episode_starts: np.ndarray     # (num_episodes,) int64

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_starts)

    def episode_bounds(self) -> list[tuple[int, int]]:
        ends = np.append(self.episode_starts[1:], len(self))
        return list(zip(self.episode_starts.tolist(), ends.tolist()))

    def first_episodes(self, n: int) -> "Transitions":
        """The first ``n`` episodes in file order (the paper's D^E)."""
        if n > self.num_episodes:
            raise ValueError(f"asked for {n} episodes, the dataset has {self.num_episodes}")
        end = len(self) if n == self.num_episodes else int(self.episode_starts[n])
        return self.select(np.arange(end), self.episode_starts[:n])

    def episodes(self, ids) -> "Transitions":
        """The episodes ``ids`` (indices in file order), in the order given."""
        bounds = self.episode_bounds()
        parts = [np.arange(*bounds[i]) for i in ids]
        starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
        return self.select(np.concatenate(parts), starts)

    def without_last(self) -> "Transitions":
        """Drop every episode's final transition (SRA's data handling: no done flag reaches a Q target)."""
        ends = np.append(self.episode_starts[1:], len(self)) - 1
        keep = np.setdiff1d(np.arange(len(self)), ends)
        lengths = np.diff(np.append(self.episode_starts, len(self))) - 1
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
        return self.select(keep, starts[lengths > 0])

    def select(self, index: np.ndarray, episode_starts: np.ndarray) -> "Transitions":
        arrays = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "episode_starts"}
        return Transitions(**arrays, episode_starts=np.asarray(episode_starts, np.int64))

    @staticmethod
    def concat(*parts: "Transitions") -> "Transitions":
        offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
        arrays = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
                  for f in fields(Transitions) if f.name != "episode_starts"}
        starts = np.concatenate([p.episode_starts + o for p, o in zip(parts, offsets)])
        return Transitions(**arrays, episode_starts=starts)


@dataclass(frozen=True)
class Normalizer:
    """z-score state normalization: (s - mean) / (std + eps), statistics over D^E u D^S."""
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, observations: np.ndarray, eps: float = 1e-3) -> "Normalizer":
        return cls(observations.mean(0).astype(np.float32), (observations.std(0) + eps).astype(np.float32))

    def __call__(self, obs):
        if isinstance(obs, torch.Tensor):
            mean, std = self._on(obs.device)
            return (obs - mean) / std
        return ((obs - self.mean) / self.std).astype(np.float32)

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """mean and std as tensors on ``device``, copied once: a host-to-GPU copy per call would stall every
        model step and rollout on a device sync."""
        cache = self.__dict__.setdefault("_tensors", {})  # frozen dataclass: a private per-device cache
        if device not in cache:
            cache[device] = (torch.as_tensor(self.mean, device=device), torch.as_tensor(self.std, device=device))
        return cache[device]

    def __getstate__(self) -> dict:  # pickles (to Ray workers, checkpoints) carry the arrays, not the cache
        return {k: v for k, v in self.__dict__.items() if k != "_tensors"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


@dataclass(frozen=True)
class ImitationData:
    """D^E (few expert episodes) and D^S (large, unlabeled): no rewards, by construction."""
    expert: Transitions
    supplementary: Transitions
    normalizer: Normalizer

    @classmethod
    def build(cls, expert: Transitions, supplementary: Transitions) -> "ImitationData":
        both = np.concatenate([expert.observations, supplementary.observations])
        return cls(expert, supplementary, Normalizer.fit(both))

    def union(self) -> Transitions:
        """D^E u D^S."""
        return Transitions.concat(self.expert, self.supplementary)


def synthetic_episodes(rng: np.random.Generator, weights: np.ndarray, count: int, horizon: int,
                       expert: bool) -> Transitions:
    """``count`` random-state episodes; expert actions are tanh(s W), the others uniform in [-1, 1]."""
    n = count * horizon
    obs = rng.normal(size=(n + 1, weights.shape[0])).astype(np.float32)
    act = np.tanh(obs[:-1] @ weights) if expert else rng.uniform(-1, 1, (n, weights.shape[1]))
    timeouts = np.zeros(n, bool)
    timeouts[horizon - 1::horizon] = True
    return Transitions(obs[:-1], act.astype(np.float32), obs[1:], np.zeros(n, bool), timeouts,
                       np.arange(0, n, horizon, dtype=np.int64))


def synthetic_data(obs_dim: int = 4, act_dim: int = 2, expert_episodes: int = 5, supplementary_episodes: int = 20,
                   horizon: int = 20, seed: int = 0) -> ImitationData:
    """Small random data for the shared method tester: expert actions are a fixed linear map of states."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(obs_dim, act_dim)) / np.sqrt(obs_dim)
    return ImitationData.build(synthetic_episodes(rng, weights, expert_episodes, horizon, True),
                               synthetic_episodes(rng, weights, supplementary_episodes, horizon, False))
