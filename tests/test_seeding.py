"""Named seed streams: stable across processes, distinct per name and seed, valid for every consumer."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from core.seeding import stream_rng, stream_seed


def test_streams_are_stable_across_processes():
    # hash() of a str changes per process (PYTHONHASHSEED); a stream must not
    code = "from core.seeding import stream_seed; print(stream_seed(3, 'batches'))"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": str(h), "PATH": ""}).stdout for h in (1, 2)}
    assert outputs == {f"{stream_seed(3, 'batches')}\n"}


def test_streams_differ_by_name_and_seed_and_from_the_global_generator():
    seeds = {stream_seed(s, n) for s in range(4) for n in ("batches", "rollouts", "dynamics init")}
    assert len(seeds) == 12
    torch.manual_seed(0)
    global_draw = torch.rand(8)
    stream_draw = torch.rand(8, generator=torch.Generator().manual_seed(stream_seed(0, "batches")))
    assert not torch.equal(global_draw, stream_draw)


def test_a_stream_seed_fits_every_consumer():
    seed = stream_seed(2**31, "x")
    assert 0 <= seed < 2**63
    torch.Generator().manual_seed(seed)
    assert stream_rng(2**31, "x").integers(10**9) == np.random.default_rng(seed).integers(10**9)
    with pytest.raises(ValueError, match="non-negative"):
        stream_seed(-1, "x")
