"""The shared method tester: every registered method (now and later) must pass it on synthetic data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.config import method_config
from benchmark.profiles import get_profile
from methods.base import Method
from methods.data import synthetic_data
from methods.registry import available

from helpers import assert_same_state, roundtrip, toy_task

# A locomotion task of an unknown robot: every method has per-task defaults for it (the "other robot" ones).
TASK = toy_task(name="synthetic", family="locomotion")
STEPS = 5
SMOKE = get_profile("smoke")
# A smoke run's pretraining, counted in the iterations its loops report through ``progress`` (model steps, CVAE
# steps, OT problems): at most this many, a few times the smoke learner loop (300 updates); full-size phases
# are 10^4-10^6 (e.g. SRA's CVAE: 200k steps).
SMOKE_PRETRAIN_ITERATIONS = 1_000


def construct(name: str, seed: int = 0):
    """The method as a smoke run builds it (the method's smoke budget, e.g. SRA's tiny dynamics model), before
    pretraining: what the runner resumes from a checkpoint."""
    cls = available()[name]
    config = method_config(cls, TASK, "smoke")
    torch.manual_seed(seed)
    return cls(TASK, synthetic_data(), config, seed, torch.device("cpu"), SMOKE.num_steps)


def build(name: str, seed: int = 0, progress=None):
    """``construct``, pretrained; what the pretraining returns must be scalars (the runner logs them) or None."""
    method = construct(name, seed)
    metrics = method.pretrain(progress or (lambda iterable=None, **kw: iterable if iterable is not None else
                                           range(kw.get("total", 0))))
    assert metrics is None or all(math.isfinite(float(v)) for v in metrics.values()), (name, metrics)
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


def test_state_dict_forgets_nothing(method_name):
    """What a fresh, never pretrained instance loads, it saves again unchanged: no part or value is saved but
    not restored (or restored from elsewhere)."""
    method = build(method_name)
    run_updates(method, 0, STEPS)
    state = roundtrip(method.state_dict())
    fresh = construct(method_name, seed=1)
    fresh.load_state_dict(state)
    assert_same_state(roundtrip(fresh.state_dict()), state)


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


def test_heavy_phases_declare_a_smoke_budget(method_name):
    """A method with phases before the learner loop says what the smoke profile does with them (``budgets``;
    ``{"smoke": {}}`` when there is nothing to shrink), so CI never runs them full-size by omission."""
    cls = available()[method_name]
    if cls.pretrain is not Method.pretrain:
        assert "smoke" in cls.budgets, f"{method_name} has a pretrain but no budgets['smoke']"


def test_smoke_pretraining_is_short(method_name):
    """What the smoke budget leaves of the pretraining is small: its loops report at most
    SMOKE_PRETRAIN_ITERATIONS iterations through ``progress`` (the runner's progress bars)."""
    counted = []

    def progress(iterable=None, total=None, **_):
        counted.append(total if total is not None else len(iterable))
        return iterable if iterable is not None else range(total)

    build(method_name, progress=progress)
    assert sum(counted) <= SMOKE_PRETRAIN_ITERATIONS, (method_name, counted)
