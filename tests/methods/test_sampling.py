"""Samplers (methods/sampling.py) beyond the mixture sampler (tested with the learners): the ring buffer of model
rollouts and the uniform sampler."""
from __future__ import annotations

import numpy as np
import torch

from methods.data import Normalizer, Transitions
from methods.sampling import RolloutBuffer, UniformSampler

from helpers import roundtrip

NORMALIZER = Normalizer(np.array([1.0, -2.0], np.float32), np.array([2.0, 4.0], np.float32))


def rows(start: int, count: int) -> dict[str, torch.Tensor]:
    """Rows numbered start..start+count-1: the number is in every field, so a sampled row says where it came from."""
    i = torch.arange(start, start + count, dtype=torch.float32)
    obs = torch.stack([i, -i], 1)
    return {"obs": obs, "act": i[:, None] / 100, "next_obs": obs + 1, "reward": i}


def buffer(capacity: int = 5) -> RolloutBuffer:
    return RolloutBuffer(capacity, {"obs": 2, "act": 1, "next_obs": 2, "reward": 0}, NORMALIZER, torch.device("cpu"))


def sampled_numbers(buf: RolloutBuffer, count: int = 500, seed: int = 0) -> set[int]:
    return set(buf.sample(count, torch.Generator().manual_seed(seed))["reward"].long().tolist())


def test_rollout_buffer_keeps_the_newest_rows_and_samples_only_filled_ones():
    buf = buffer(capacity=5)
    buf.add(**rows(0, 3))
    assert len(buf) == 3 and sampled_numbers(buf) == {0, 1, 2}  # never the unfilled (zero) rows
    buf.add(**rows(3, 4))  # 7 rows into 5 slots: 0 and 1 are overwritten
    assert len(buf) == 5 and sampled_numbers(buf) == {2, 3, 4, 5, 6}
    buf.add(**rows(7, 12))  # more rows than the capacity at once: the newest 5
    assert len(buf) == 5 and sampled_numbers(buf) == {14, 15, 16, 17, 18}


def test_rollout_buffer_normalizes_observations_and_keeps_rows_aligned():
    buf = buffer()
    buf.add(**rows(0, 4))
    batch = buf.sample(64, torch.Generator().manual_seed(0))
    raw = rows(0, 4)
    idx = batch["reward"].long()
    mean, std = torch.as_tensor(NORMALIZER.mean), torch.as_tensor(NORMALIZER.std)
    torch.testing.assert_close(batch["obs"], (raw["obs"][idx] - mean) / std)
    torch.testing.assert_close(batch["next_obs"], (raw["next_obs"][idx] - mean) / std)
    torch.testing.assert_close(batch["act"], raw["act"][idx])
    assert batch["reward"].shape == (64,)


def test_rollout_buffer_resumes_from_its_state_dict():
    for added in (3, 9):  # part full, and wrapped around
        original = buffer(capacity=5)
        original.add(**rows(0, added))
        restored = buffer(capacity=5)
        restored.load_state_dict(roundtrip(original.state_dict()))
        assert len(restored) == len(original)
        for seed in range(3):
            a, b = (buf.sample(32, torch.Generator().manual_seed(seed)) for buf in (original, restored))
            assert all(torch.equal(a[k], b[k]) for k in a)
        for buf in (original, restored):  # the next rows overwrite the same slots in both
            buf.add(**rows(100, 2))
        assert sampled_numbers(restored) == sampled_numbers(original)


def test_uniform_sampler_draws_every_row_about_equally_often():
    n = 20
    obs = np.stack([np.arange(n), np.zeros(n)], 1).astype(np.float32)
    data = Transitions(obs, np.zeros((n, 2), np.float32), obs, np.zeros(n, bool), np.zeros(n, bool), np.array([0]))
    sampler = UniformSampler(data, Normalizer(np.zeros(2, np.float32), np.ones(2, np.float32)), 1000, 0, "cpu")
    counts = np.bincount(np.concatenate([sampler.sample()["obs"][:, 0].long().numpy() for _ in range(20)]),
                         minlength=n)
    assert counts.sum() == 20_000 and set(sampler.sample()) == {"obs", "act", "next_obs", "done"}
    assert counts.min() > 800 and counts.max() < 1200  # 1000 expected each; binomial sd ~31
