"""Network blocks (methods/nets.py) other than the fast linear path (test_fast_linear.py): ensembles are independent
members, the tanh-Gaussian log-probability is the change-of-variables density, the Gaussian actor's is a plain
Normal around tanh(mu), soft updates interpolate."""
from __future__ import annotations

import pytest
import torch
from torch import distributions as D

from methods import nets


def member_as_mlp(ensemble: torch.nn.Sequential, k: int) -> torch.nn.Sequential:
    """Member ``k`` of an ``ensemble_mlp`` copied into a plain ``mlp``."""
    widths = [layer.weight.shape[2] for layer in ensemble if isinstance(layer, nets.EnsembleLinear)]
    plain = nets.mlp(ensemble[0].weight.shape[1], widths[-1], widths[:-1])
    linears = [layer for layer in plain if isinstance(layer, torch.nn.Linear)]
    with torch.no_grad():
        for mine, theirs in zip(linears, (layer for layer in ensemble if isinstance(layer, nets.EnsembleLinear))):
            mine.weight.copy_(theirs.weight[k].t()), mine.bias.copy_(theirs.bias[k, 0])
    return plain


def test_ensemble_members_are_independent_mlps():
    torch.manual_seed(0)
    ensemble = nets.ensemble_mlp(5, 3, num_members=4, hidden=(16, 8))
    shared, per_member = torch.randn(10, 5), torch.randn(4, 10, 5)
    for x in (shared, per_member):
        out = nets.ensemble_forward(ensemble, x)
        assert out.shape == (4, 10, 3)
        torch.testing.assert_close(out, ensemble(x))  # the per-member fast path and the batched matmul agree
        for k in range(4):
            torch.testing.assert_close(out[k], member_as_mlp(ensemble, k)(x if x.dim() == 2 else x[k]))
    assert not torch.allclose(out[0], out[1])  # members are initialized apart
    nets.ensemble_forward(ensemble, shared)[0].sum().backward()  # member 0's output: no gradient to the others
    for layer in (m for m in ensemble if isinstance(m, nets.EnsembleLinear)):
        assert layer.weight.grad[0].abs().sum() > 0 and layer.weight.grad[1:].abs().sum() == 0


def test_ensemble_critic_gives_one_q_per_member():
    critic = nets.EnsembleCritic(3, 2, num_critics=5, hidden=(8,))
    assert critic(torch.randn(7, 3), torch.randn(7, 2)).shape == (5, 7)


def test_tanh_gaussian_log_prob_is_the_transformed_density():
    torch.manual_seed(0)
    mu, log_std = torch.randn(64, 3), torch.randn(64, 3).clamp(-2, 1)
    reference = D.TransformedDistribution(D.Normal(mu, log_std.exp()), [D.TanhTransform()])
    action = reference.sample().clamp(-0.999, 0.999)
    torch.testing.assert_close(nets.tanh_gaussian_log_prob(mu, log_std, action),
                               reference.log_prob(action).sum(-1), rtol=1e-4, atol=1e-3)


def test_gaussian_actor_is_a_normal_around_the_squashed_mean_with_one_std_per_dim():
    torch.manual_seed(0)
    actor = nets.GaussianActor(4, 2, hidden=(16,))
    with torch.no_grad():
        actor.log_std.copy_(torch.tensor([-0.5, -9.0]))  # the second is clamped to log_std_min = -5
    obs, action = torch.randn(32, 4), torch.rand(32, 2) * 2 - 1
    action[:4] = 1.0  # saturated data actions: no atanh, a finite ordinary density
    mean = torch.tanh(actor.trunk(obs))
    reference = D.Normal(mean, torch.tensor([-0.5, -5.0]).exp())
    torch.testing.assert_close(actor.log_prob(obs, action), reference.log_prob(action).sum(-1))
    torch.testing.assert_close(actor.act(obs), mean)
    assert actor.act(obs).abs().max() < 1


def test_actor_samples_carry_their_own_log_prob_and_stay_in_bounds():
    # seeded: unseeded, the init and obs came from whatever state earlier tests left the global RNG in, and a
    # draw with |u| > ~9 saturates tanh to exactly 1.0 in float32 (a flaky failure under pytest-xdist)
    torch.manual_seed(0)
    actor = nets.TanhGaussianActor(4, 2, hidden=(16,))
    obs = torch.randn(256, 4)
    action, log_prob = actor.sample(obs, torch.Generator().manual_seed(0))
    assert action.abs().max() < 1 and actor.act(obs).abs().max() < 1
    torch.testing.assert_close(log_prob, actor.log_prob(obs, action), rtol=1e-3, atol=1e-3)
    again, _ = actor.sample(obs, torch.Generator().manual_seed(0))
    assert torch.equal(action, again)  # the generator decides the noise


@pytest.mark.parametrize("tau", [0.0, 0.005, 1.0])
def test_soft_update_interpolates_towards_the_source(tau):
    source, target = nets.mlp(3, 2, (4,)), nets.mlp(3, 2, (4,))
    frozen = nets.frozen_copy(target)
    assert not any(p.requires_grad for p in frozen.parameters())
    before = [p.clone() for p in target.parameters()]
    nets.soft_update(target, source, tau)
    for old, new, src in zip(before, target.parameters(), source.parameters()):
        torch.testing.assert_close(new, (1 - tau) * old + tau * src)
