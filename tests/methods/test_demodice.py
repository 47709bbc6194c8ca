"""DemoDICE: its weights find the expert-like transitions, its losses' pieces, and it beats random on umaze."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from benchmark.grid import expand_grid
from benchmark.profiles import PROFILES
from benchmark.runner import RunOptions, run_one
from methods.data import ImitationData, Transitions, synthetic_episodes
from methods.demodice import Config, DemoDICE, bc_weights, discriminator_loss, reward_from_logits
from methods.nets import mlp

from helpers import toy_task

TASK = toy_task()


def toy_data(seed: int = 0, horizon: int = 20) -> tuple[ImitationData, np.ndarray]:
    """D^E: 5 episodes with a = tanh(s W); D^S: 20 such episodes then 20 with uniform random actions.
    Returns the data and the expert-like mask over D^S."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(TASK.obs_dim, TASK.act_dim)) / np.sqrt(TASK.obs_dim)

    def episodes(n: int, expert_like: bool) -> Transitions:
        return synthetic_episodes(rng, weights, n, horizon, expert_like)

    supplementary = Transitions.concat(episodes(20, True), episodes(20, False))
    mask = np.arange(len(supplementary)) < 20 * horizon
    return ImitationData.build(episodes(5, True), supplementary), mask


def test_weights_rank_expert_like_transitions_above_random():
    """Measured (seeds 0-3, 800 updates): AUC 0.86-0.93, mean weight 1.35-1.44 vs 0.56-0.65."""
    data, expert_like = toy_data()
    torch.manual_seed(0)
    method = DemoDICE(TASK, data, Config(hidden_dims=(64, 64), batch_size=128), 0, torch.device("cpu"),
                       num_steps=800)
    for step in range(800):
        method.update(step)
    advantage = method.advantage(data.supplementary)
    auc = (advantage[expert_like][:, None] > advantage[~expert_like][None]).mean()
    weights = bc_weights(torch.as_tensor(advantage), method.config.alpha).numpy()  # mean 1 over D^S
    assert auc > 0.8
    assert weights[expert_like].mean() > 1.6 * weights[~expert_like].mean()


def test_reward_is_the_clipped_discriminator_logit_and_weights_average_one():
    logits = torch.tensor([-30.0, -2.0, 0.0, 2.0, 30.0])
    reward = reward_from_logits(logits)
    torch.testing.assert_close(reward[1:4], logits[1:4], atol=0.01, rtol=0.0)  # log D/(1-D) = logit
    assert -7.0 < reward[0] < -6.8 and 13.7 < reward[-1] < 13.9           # clipped by eps = 1e-3
    advantage = torch.tensor([-50.0, 0.0, 1.0, 80.0])
    weights = bc_weights(advantage, 0.1)
    torch.testing.assert_close(weights.mean(), torch.tensor(1.0))
    torch.testing.assert_close(weights[2] / weights[1], torch.exp(torch.tensor(1 / 1.1)))


def test_gradient_penalty_reaches_every_layer():
    """The penalty is a double backward: every weight of the discriminator must get its gradient."""
    torch.manual_seed(0)
    disc = mlp(6, 1, (32, 32))
    expert, union = torch.randn(64, 6), torch.randn(64, 6)
    mix, perm = torch.rand(64, 1), torch.randperm(64)
    grads = []
    for penalty in (0.0, 1.0):
        disc.zero_grad()
        discriminator_loss(disc, expert, union, mix, perm, penalty)[0].backward()
        grads.append([p.grad.clone() for p in disc.parameters()])
    penalty_grads = [with_gp - without for without, with_gp in zip(*grads)]
    weight_grads = penalty_grads[0::2]  # weights; the output bias has no input gradient to penalize
    assert all(g.abs().max() > 1e-6 for g in weight_grads)


@pytest.mark.slow  # long (a training to a quality bar, or a process pool): `pytest -m slow`
def test_demodice_beats_random_on_umaze_smoke(umaze_random_score, umaze_smoke, tmp_path, monkeypatch):
    """300 smoke updates are too few for the NLL actor: 600 updates at batch 256 with actor lr 1e-3.
    Measured final scores (seeds 0-4): 55, 87, 83, 23, 45; random: -20."""
    profile = dataclasses.replace(PROFILES["smoke"], num_steps=600, eval_every=300)
    monkeypatch.setitem(PROFILES, "smoke", profile)
    spec = expand_grid(["demodice"], [umaze_smoke.name], [0], profile,
                       {"demodice": {"batch_size": 256, "actor_lr": 1e-3}})[0]
    result = run_one(spec, RunOptions(root=tmp_path, device="cpu", show_progress=False))
    random_score = umaze_random_score(profile.eval_episodes)
    assert result["status"] == "done"
    assert result["final_score"] > random_score + 25


def test_compiled_update_equals_the_eager_one():
    """``bench run --compile``: DemoDICE's three losses and steps as one graph, its input-gradient penalties through
    ``torch.func.grad`` (eager: ``torch.autograd.grad`` with ``create_graph``). Same parameters after 10 updates on
    the same batches and noise. Adam's eps is raised to 1 in both: nu's output bias has a zero gradient in exact
    maths (see the module docstring), and Adam would otherwise turn the two paths' different rounding of it into
    full lr-sized steps of either sign."""
    data, _ = toy_data()
    methods = []
    for compiled in (False, True):
        torch.manual_seed(0)  # the nets' initial weights
        method = DemoDICE(TASK, data, Config(hidden_dims=(32, 32), batch_size=64), 0, torch.device("cpu"), 100)
        for optimizer in (method.discriminator_optimizer, method.value_optimizer, method.actor_optimizer):
            optimizer.param_groups[0]["eps"] = 1.0
        assert not compiled or method.compile_update()
        methods.append(method)
    logs = [[method.update(step) for step in range(10)] for method in methods]
    for key in logs[0][-1]:
        torch.testing.assert_close(logs[1][-1][key], logs[0][-1][key], rtol=1e-4, atol=1e-5, msg=key)
    eager, compiled = ({f"{name}.{k}": p for name in ("discriminator", "value", "actor")
                        for k, p in getattr(method, name).named_parameters()} for method in methods)
    for name, p in eager.items():
        torch.testing.assert_close(compiled[name], p, rtol=1e-4, atol=1e-6, msg=name)
    assert methods[1].compile_s > 0
