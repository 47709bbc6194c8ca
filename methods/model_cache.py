"""The on-disk model cache: a trained module (a dynamics ensemble) shared by every run that would train the same one.

Set ``BENCH_MODEL_CACHE=/some/dir`` to enable it (unset: no cache, every run trains its own). A module is stored under
a stable hash of everything its trained weights depend on: the caller's key (kind, direction, dims, the full model
config, the seed, a fingerprint of the training arrays) plus the cache format version, the device type and the
torch thread count (floating-point reductions may differ across them). Files are written atomically, so a reader
sees a whole file or none; two runs that miss at the same time both train and write the same bytes.

The caller must make training a function of the key alone (an initialization and shuffles seeded from the seed,
no global RNG): then a cache hit gives bit-identical weights, and the rest of the run the same numbers, as fresh
training (tested in tests/methods/test_model_based.py).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from core.io import atomic_write_bytes

ENV_VAR = "BENCH_MODEL_CACHE"
VERSION = 3  # bump when training code changes what a key produces (2: per-epoch permutations, best epoch, per-member
# clip; 3: initialization and shuffles from named seed streams)


def cache_dir() -> Path | None:
    path = os.environ.get(ENV_VAR)
    return Path(path) if path else None


def fingerprint(*arrays: np.ndarray) -> str:
    """A content hash of arrays (shape, dtype and bytes, in order)."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def cache_path(module: nn.Module, key: dict) -> Path | None:
    root = cache_dir()
    if root is None:
        return None
    device = next(module.parameters()).device
    # what can change the trained numbers: the CPU thread count (reduction order), or the GPU model
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else torch.get_num_threads()
    full = {**key, "version": VERSION, "device": device.type, "threads" if device.type == "cpu" else "gpu": hardware}
    digest = hashlib.sha256(json.dumps(full, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return root / f"{key.get('kind', 'model')}-{digest}.pt"


def cached_fit(module: nn.Module, key: Callable[[], dict], fit: Callable[[], dict]) -> dict:
    """Load ``module``'s trained state from the cache, or run ``fit()`` (which trains ``module`` in place and
    returns its info) and store the result. ``key`` is only evaluated when the cache is enabled. Returns the
    fit info, with ``model/cache_hit`` 1.0 or 0.0."""
    path = cache_path(module, key()) if cache_dir() is not None else None
    if path is not None and path.exists():
        try:
            stored = torch.load(path, map_location=next(module.parameters()).device, weights_only=False)
            module.load_state_dict(stored["state"])
            return {**stored["info"], "model/cache_hit": 1.0}
        except Exception as e:  # unreadable or stale: train again and overwrite it
            warnings.warn(f"model cache file {path} is unreadable ({type(e).__name__}); training again")
    info = fit()
    if path is not None:
        buffer = io.BytesIO()
        torch.save({"state": {k: v.cpu() for k, v in module.state_dict().items()}, "info": info}, buffer)
        atomic_write_bytes(path, buffer.getvalue())
    return {**info, "model/cache_hit": 0.0}
