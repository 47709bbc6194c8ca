"""CUDA checks, skipped where torch sees no GPU (as on CI): every registered method trains and evaluates on the
GPU, and killed runs resume there to the uninterrupted numbers. On a GPU machine: `pytest -m cuda tests/benchmark/test_cuda.py`
(``benchmark/gpu_check.sh run`` does it)."""
from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from benchmark.grid import expand_grid
from benchmark.profiles import get_profile
from benchmark.runner import RunOptions, SimulatedKill, run_one
from methods.registry import available

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
SMOKE = get_profile("smoke")


def spec(method: str):
    return expand_grid([method], ["maze2d-umaze-sparse"], [0], SMOKE)[0]


def options(root, **kw) -> RunOptions:
    return RunOptions(root=root, device="cuda", show_progress=False, **kw)


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.skipif(
    m == "otil" and importlib.util.find_spec("ot") is None, reason="OTIL needs POT")) for m in sorted(available())])
def test_every_method_trains_and_evaluates_on_the_gpu(method, umaze_smoke, tmp_path):
    result = run_one(spec(method), options(tmp_path))
    assert result["status"] == "done", result.get("error")
    assert result["settings"]["device"].startswith("cuda") and math.isfinite(result["final_score"])


@pytest.mark.parametrize("method", ["sra", "milo", "uds"])
def test_kill_and_resume_on_the_gpu_equals_uninterrupted(method, umaze_smoke, tmp_path):
    straight = run_one(spec(method), options(tmp_path / "a"))
    with pytest.raises(SimulatedKill):  # after the step-200 checkpoint (and SRA's augmentation rounds)
        run_one(spec(method), options(tmp_path / "b", stop_after_step=250))
    resumed = run_one(spec(method), options(tmp_path / "b"))
    assert resumed["curve"] == straight["curve"]
