"""OTIL: optimal-transport rewards (ordering, squashing, demo choice, scaling, caching, resume) and learning."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import benchmark.profiles as profiles
from benchmark.grid import expand_grid
from benchmark.runner import RunOptions, run_one
from methods import nets, otil
from methods.data import synthetic_data
from methods.otil import OTIL, Config, ot_rewards, squash, trajectory_rewards, transport_costs

from helpers import toy_task

CONFIG = Config()
TASK = toy_task()


def curve(T: int = 100, phase: float = 0.0) -> np.ndarray:
    """A smooth 4-d trajectory (a loop), like an expert demo."""
    t = np.linspace(0, 2 * np.pi, T) + phase
    return np.stack([np.cos(t), np.sin(t), np.cos(2 * t), 0.5 * np.sin(t)], 1).astype(np.float32)


def rewards(x: np.ndarray, demos: list[np.ndarray]) -> np.ndarray:
    return trajectory_rewards(x, demos, CONFIG).numpy()


def total(x: np.ndarray, demo: np.ndarray) -> float:
    return float(rewards(x, [demo]).sum())


def test_trajectories_closer_to_the_demo_earn_more():
    rng = np.random.default_rng(0)
    expert = curve()
    near = expert + 0.05 * rng.normal(size=expert.shape).astype(np.float32)
    far = -expert[:, [1, 0, 3, 2]]  # another loop, pointing elsewhere
    assert total(expert, expert) > total(near, expert) > total(far, expert)
    # a demo matched against itself pays almost nothing: rewards close to alpha (official unit test)
    assert rewards(expert, [expert]).min() > 0.95 * CONFIG.alpha


def test_rewards_are_per_step():
    """Steps that follow the demo earn more than the steps of the same trajectory that leave it."""
    expert = curve()
    half = np.concatenate([expert[:50], -expert[50:, [1, 0, 3, 2]]])
    r = rewards(half, [expert])
    assert r.shape == (100,) and r[:50].mean() > r[50:].mean() + 1.0
    costs = transport_costs(half, expert, CONFIG).numpy()
    assert np.all(costs >= -1e-9) and np.all(costs <= 2 + 1e-9)  # cosine cost, mean per unit of mass


def test_squash_is_decreasing_and_bounded_by_alpha():
    cost = np.linspace(0, 2, 50)
    r = squash(cost, alpha=5.0, beta=5.0, obs_dim=4).numpy()
    assert r[0] == pytest.approx(5.0) and np.all(np.diff(r) < 0) and np.all(r > 0)
    assert squash(np.array([1.0]), 5.0, 5.0, obs_dim=17)[0] > r[np.searchsorted(cost, 1.0)]  # beta / obs_dim


def test_the_best_matching_demo_gives_the_rewards():
    expert, other = curve(), -curve()[:, [1, 0, 3, 2]]
    x = expert[::-1].copy()  # OT ignores time order: the same states as the expert's
    np.testing.assert_allclose(rewards(x, [other, expert]), rewards(x, [expert]))


def test_rewards_of_a_dataset_are_scaled_to_the_return_range():
    rng = np.random.default_rng(1)
    demos = [curve(), curve(phase=0.3)]
    episodes = [curve() + s * rng.normal(size=(100, 4)) for s in (0.0, 0.3, 1.0)]
    obs = np.concatenate(episodes).astype(np.float32)
    bounds = [(0, 100), (100, 200), (200, 300)]
    r = ot_rewards(obs, bounds, demos, CONFIG, lambda it, **kw: it)
    returns = [r[s:e].sum() for s, e in bounds]
    assert r.dtype == np.float32 and returns[0] > returns[1] > returns[2]
    assert max(returns) - min(returns) == pytest.approx(CONFIG.return_range, rel=1e-4)


def _build(seed=0, data=None):
    return OTIL(TASK, data or synthetic_data(), Config(), seed, torch.device("cpu"), num_steps=1_000_000)


def test_relabelling_is_cached_and_a_resumed_run_never_redoes_it(monkeypatch):
    otil._CACHE.clear()
    calls = []
    real = otil.ot_rewards
    monkeypatch.setattr(otil, "ot_rewards", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    data = synthetic_data()
    first = _build(0, data)
    first.pretrain(lambda it, **kw: it)
    _build(1, data).pretrain(lambda it, **kw: it)  # another seed, same data: from the cache
    assert len(calls) == 1 and len(first.rewards) == len(data.expert) + len(data.supplementary)
    first.update(0)
    state = first.state_dict()
    otil._CACHE.clear()
    resumed = _build(2, data)  # the runner's resume: no pretrain, only the state dict
    resumed.load_state_dict(state)
    assert len(calls) == 1
    np.testing.assert_array_equal(resumed.rewards, first.rewards)
    assert resumed.timer.seconds == first.timer.seconds and first.timer.seconds["ot_rewards"] > 0  # method/ot_rewards
    a, b = first.update(1), resumed.update(1)
    assert {k: float(v) for k, v in a.items()} == {k: float(v) for k, v in b.items()}


def test_the_policy_is_the_official_gaussian_unless_asked_otherwise():
    data = synthetic_data()
    assert isinstance(_build(0, data).learner.actor, nets.GaussianActor)
    tanh = OTIL(TASK, data, Config(policy="tanh_gaussian"), 0, torch.device("cpu"), num_steps=10)
    assert isinstance(tanh.learner.actor, nets.TanhGaussianActor)


def test_update_before_relabelling_fails_clearly():
    with pytest.raises(RuntimeError, match="pretrain"):
        _build().update(0)


@pytest.mark.slow  # long (a training to a quality bar, or a process pool): `pytest -m slow`
def test_otil_beats_random_on_umaze_smoke(umaze_random_score, umaze_smoke, tmp_path, monkeypatch):
    """Smoke data (3k D^S steps), 600 updates, one evaluation of 10 episodes at the end, 3 seeds.
    Calibration (measured, official Gaussian policy, D4RL scale): final scores 71.0 / 15.2 / 50.5 against a random
    policy at 1.3."""
    smoke = dataclasses.replace(profiles.PROFILES["smoke"], num_steps=600, eval_every=600, eval_episodes=10)
    monkeypatch.setitem(profiles.PROFILES, "smoke", smoke)
    random_score = umaze_random_score(smoke.eval_episodes)
    options = RunOptions(root=tmp_path, device="cpu", show_progress=False)
    scores = []
    for spec in expand_grid(["otil"], [umaze_smoke.name], [0, 1, 2], smoke):
        result = run_one(spec, options)
        assert result["status"] == "done" and result["phase_times_s"].get("method/ot_rewards") is not None
        scores.append(result["final_score"])
    assert min(scores) > random_score + 5
    assert np.mean(scores) > random_score + 20
