"""Our IQL update (fast linear paths, batched twin critics, one backward for three losses, fused Adam, foreach
Polyak) against a plain one written from the maths with ``nn.Linear``, stock Adam and CORL's step order
(V step, then Q step, then actor step): same parameters in, same parameters out, within float32 tolerance."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from methods import nets
from methods.learners.iql import IQL, IQLConfig

from helpers import learner_batch

OBS, ACT, BATCH = 5, 3, 64
CONFIG = IQLConfig(hidden_dims=(32, 32), weight_decay=5e-3, bc_weight=0.5, tau=0.5)  # targets move visibly


def _plain_mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, out_dim))


def _copy_linear_layers(plain: nn.Sequential, ours: nn.Sequential) -> None:
    with torch.no_grad():
        for p, o in zip((m for m in plain if isinstance(m, nn.Linear)), (m for m in ours if isinstance(m, nn.Linear))):
            p.weight.copy_(o.weight)
            p.bias.copy_(o.bias)


def _copy_ensemble_member(plain: nn.Sequential, ours: nn.Sequential, k: int) -> None:
    """Member k of an ensemble_mlp (weights (N, in, out), biases (N, 1, out)) into nn.Linear layers."""
    with torch.no_grad():
        ensemble = [m for m in ours if isinstance(m, nets.EnsembleLinear)]
        for p, o in zip((m for m in plain if isinstance(m, nn.Linear)), ensemble):
            p.weight.copy_(o.weight[k].t())
            p.bias.copy_(o.bias[k, 0])


class PlainIQL:
    """IQL as the papers write it, one net per module, three Adam optimizers stepped one after another."""

    def __init__(self, ours: IQL):
        c = self.config = ours.config
        self.actor = _plain_mlp(OBS, 2 * ACT)
        self.q = [_plain_mlp(OBS + ACT, 1) for _ in range(2)]
        self.q_target = [_plain_mlp(OBS + ACT, 1) for _ in range(2)]
        self.value = _plain_mlp(OBS, 1)
        _copy_linear_layers(self.actor, ours.actor.trunk)
        _copy_linear_layers(self.value, ours.value.net)
        for k in range(2):
            _copy_ensemble_member(self.q[k], ours.critic.net, k)
            _copy_ensemble_member(self.q_target[k], ours.critic_target.net, k)

        def adam(params, lr):
            return torch.optim.Adam(params, lr=lr, weight_decay=c.weight_decay, foreach=False)
        self.v_opt = adam(self.value.parameters(), c.value_lr)
        self.q_opt = adam([p for q in self.q for p in q.parameters()], c.critic_lr)
        self.pi_opt = adam(self.actor.parameters(), c.actor_lr)

    def log_prob(self, obs, act):
        mu, log_std = self.actor(obs).chunk(2, -1)
        mu, log_std = mu.clamp(-9, 9), log_std.clamp(-5, 2)
        u = torch.atanh(act)
        gaussian = torch.distributions.Normal(mu, log_std.exp()).log_prob(u).sum(-1)
        return gaussian - torch.log1p(-act.pow(2)).sum(-1)

    def update(self, batch):
        c = self.config
        obs, act = batch["obs"], batch["act"]
        sa = torch.cat([obs, act], -1)
        with torch.no_grad():
            target_q = torch.min(self.q_target[0](sa), self.q_target[1](sa)).squeeze(-1)
            next_v = self.value(batch["next_obs"]).squeeze(-1)
        diff = target_q - self.value(obs).squeeze(-1)
        v_loss = (torch.where(diff > 0, c.expectile, 1 - c.expectile) * diff ** 2).mean()
        self.v_opt.zero_grad()
        v_loss.backward()
        self.v_opt.step()

        target = batch["reward"] + c.gamma * (1 - batch["done"]) * next_v
        q_loss = sum(((q(sa).squeeze(-1) - target) ** 2).mean() for q in self.q) / 2
        self.q_opt.zero_grad()
        q_loss.backward()
        self.q_opt.step()

        weights = torch.exp(c.temperature * diff.detach()).clamp(max=c.max_weight)
        log_prob = self.log_prob(obs, act)
        expert = batch["expert"]
        pi_loss = -(weights * log_prob).mean() - c.bc_weight * (expert * log_prob).sum() / expert.sum()
        self.pi_opt.zero_grad()
        pi_loss.backward()
        self.pi_opt.step()
        with torch.no_grad():
            for target_net, net in zip(self.q_target, self.q):
                for tp, p in zip(target_net.parameters(), net.parameters()):
                    tp.copy_((1 - c.tau) * tp + c.tau * p)


def _batch(seed: int) -> dict[str, torch.Tensor]:
    return learner_batch(seed, OBS, ACT, BATCH)


@pytest.mark.parametrize("path", ["stock", "onednn", "compiled"])
def test_our_iql_update_equals_a_plain_nn_linear_iql(path):
    """Eager (stock or oneDNN matmuls) and compiled (methods/compiled_step.py: one graph, Adam written out);
    the actor's lr changes half way, as a schedule would change it."""
    if path == "onednn" and not nets.onednn_available():
        pytest.skip("oneDNN's fused linear is not available here")
    with nets.use_onednn(path == "onednn"):
        torch.manual_seed(0)
        ours = IQL(OBS, ACT, CONFIG, torch.device("cpu"))
        plain = PlainIQL(ours)
        if path == "compiled":
            assert ours.compile_update()
        before = [p.detach().clone() for p in ours.actor.trunk.parameters()]
        for step in range(5):
            if step == 3:
                for optimizer in (ours.actor_optimizer, plain.pi_opt):
                    optimizer.param_groups[0]["lr"] = CONFIG.actor_lr / 10
            ours.update(_batch(step))
            plain.update(_batch(step))
    pairs = {"actor": (ours.actor.trunk, plain.actor), "value": (ours.value.net, plain.value)}
    for name, (mine, theirs) in pairs.items():
        for a, b in zip(mine.parameters(), theirs.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    for k in range(2):
        for net, plain_nets in ((ours.critic.net, plain.q), (ours.critic_target.net, plain.q_target)):
            ensemble = [m for m in net if isinstance(m, nets.EnsembleLinear)]
            for layer, linear in zip(ensemble, (m for m in plain_nets[k] if isinstance(m, nn.Linear))):
                torch.testing.assert_close(layer.weight[k].t(), linear.weight, rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(layer.bias[k, 0], linear.bias, rtol=1e-4, atol=1e-5)
    # the comparison can fail: the updates moved the parameters by far more than its tolerance
    moved = max((a - b).abs().max().item() for a, b in zip(ours.actor.trunk.parameters(), before))
    assert moved > 10 * 1e-5


def test_a_compiled_iql_follows_its_lr_schedule_as_the_eager_one():
    """The compiled update reads each step's lr from the optimizers (a cosine schedule here), and torch's
    scheduler sees the optimizers as stepped (no warning of a scheduler step before the optimizer's)."""
    import warnings

    from methods.learners.schedules import CosineDecay
    learners = []
    for compiled in (False, True):
        torch.manual_seed(0)
        learner = IQL(OBS, ACT, CONFIG, torch.device("cpu"))
        learner.use_schedules([CosineDecay(4)])
        assert not compiled or learner.compile_update()
        learners.append(learner)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(3):
            for learner in learners:
                learner.update(_batch(step))
    assert not [w for w in caught if "lr_scheduler" in str(w.message)], [str(w.message) for w in caught]
    eager, compiled = learners
    assert compiled.actor_optimizer.param_groups[0]["lr"] == eager.actor_optimizer.param_groups[0]["lr"] < CONFIG.actor_lr
    for a, b in zip(eager.actor.parameters(), compiled.actor.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
