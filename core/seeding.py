"""Named random streams: every consumer of a run's seed draws from its own stream.

The run seed itself seeds torch's global generator (network initialization, in the runner). The methods' other
draws — batch samplers, model rollouts, dynamics-model initialization and shuffles, gradient-penalty noise — and
locomotion's episode starts ask for ``stream_seed(seed, "<what it is for>")``: a child of ``np.random.SeedSequence``
keyed by the stream's name. Older consumers predate the names and keep their own streams, since renaming them
would change existing data and scores: maze2d data generation spawns children of ``SeedSequence(dataset seed)``
(envs/maze_datasets.py), locomotion's action noise draws from ``default_rng([seed, level])``, and evaluation starts
from ``default_rng([evaluation seed, run seed, episode])`` (maze2d) or ``env.reset(seed=evaluation seed + episode)``
(locomotion; envs/evaluation.py). Streams of one seed are independent of each other and of the global generator (two
``torch.Generator``s seeded with equal integers would draw the same numbers), and adding a stream never shifts
another. Names are hashed with CRC-32, not ``hash()``, so a seed means the same numbers in every process.
"""
from __future__ import annotations

import zlib

import numpy as np


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit integer seed for ``stream`` of run ``seed`` (valid for ``torch.Generator.manual_seed``,
    ``np.random.default_rng`` and ``env.reset(seed=...)``)."""
    if seed < 0:
        raise ValueError(f"seeds are non-negative integers, got {seed}")
    sequence = np.random.SeedSequence([seed, zlib.crc32(stream.encode())])
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """A numpy generator for ``stream`` of run ``seed``."""
    return np.random.default_rng(stream_seed(seed, stream))
