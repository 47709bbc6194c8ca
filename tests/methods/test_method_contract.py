"""The shared method tester: every registered method (now and later) must pass it on synthetic data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.config import resolve_config
from benchmark.profiles import get_profile
from methods.data import synthetic_data
from methods.registry import available

from helpers import roundtrip, toy_task

TASK = toy_task()
STEPS = 5


def build(name: str, seed: int = 0):
    """The method with the smoke profile's budgets (e.g. SRA's tiny dynamics model), as CI runs it."""
    cls = available()[name]
    config = resolve_config(cls, get_profile("smoke").method_overrides.get(name, {}))
    torch.manual_seed(seed)
    method = cls(TASK, synthetic_data(), config, seed, torch.device("cpu"))
    method.pretrain(lambda iterable=None, **kw: iterable if iterable is not None else range(kw.get("total", 0)))
    return method


def run_updates(method, start: int, count: int) -> list[dict]:
    return [{k: float(v) for k, v in method.update(step).items()} for step in range(start, start + count)]


@pytest.fixture(params=sorted(available()))
def method_name(request):
    return request.param


def test_updates_return_finite_scalars(method_name):
    method = build(method_name)
    for metrics in run_updates(method, 0, STEPS):
        assert metrics, "update must return at least one scalar to log"
        assert all(math.isfinite(v) for v in metrics.values()), metrics


def test_actions_have_the_right_shape_and_bounds(method_name):
    method = build(method_name)
    run_updates(method, 0, STEPS)
    obs = np.random.default_rng(1).normal(size=(7, TASK.obs_dim)).astype(np.float32) * 5
    actions = method.act(obs)
    low, high = TASK.action_bounds()
    assert actions.shape == (7, TASK.act_dim)
    assert np.all(np.isfinite(actions)) and np.all(actions >= low) and np.all(actions <= high)
    np.testing.assert_array_equal(actions, method.act(obs)), "act must be deterministic"


def test_state_dict_round_trip_gives_identical_actions(method_name):
    method = build(method_name)
    run_updates(method, 0, STEPS)
    clone = build(method_name, seed=1)  # different init: everything must come from the state dict
    clone.load_state_dict(roundtrip(method.state_dict()))
    obs = synthetic_data().expert.observations[:16]
    np.testing.assert_array_equal(method.act(obs), clone.act(obs))


def test_resume_equals_uninterrupted(method_name):
    """What the runner does on resume: fresh instance, load the state dict, restore the global RNG."""
    straight = build(method_name)
    expected = run_updates(straight, 0, 2 * STEPS)

    first = build(method_name)
    run_updates(first, 0, STEPS)
    state, rng = roundtrip(first.state_dict()), torch.get_rng_state()
    del first
    resumed = build(method_name, seed=1)
    resumed.load_state_dict(state)
    torch.set_rng_state(rng)
    assert run_updates(resumed, STEPS, STEPS) == expected[STEPS:]
    obs = synthetic_data().expert.observations[:16]
    np.testing.assert_array_equal(resumed.act(obs), straight.act(obs))
