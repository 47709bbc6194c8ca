"""Named random streams: every consumer of a run's seed draws from its own stream.

The run seed itself seeds torch's global generator (network initialization, in the runner). Everything else that
draws random numbers — batch samplers, rollout starts, dynamics-model initialization and shuffles, data
generation — asks for ``stream_seed(seed, "<what it is for>")``: a child of ``np.random.SeedSequence`` keyed by
the stream's name. Streams of one seed are independent of each other and of the global generator (two
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
