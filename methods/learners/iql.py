"""IQL (Kostrikov et al. 2021): expectile value V, twin Q toward r + gamma V(s'), advantage-weighted actor.

CORL defaults; the tanh-Gaussian actor (state-dependent log-std in [-5, 2]) is SRA's choice, deterministic
action tanh(mu)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.compiled_step import CompiledUpdate
from methods.learners.base import LearnerBase, bc_log_likelihood, ensemble_td_loss
from methods.nets import (EnsembleCritic, GaussianActor, TanhGaussianActor, ValueFunction, adam, frozen_copy,
                         gradient_step, soft_update)


@dataclass(frozen=True)
class IQLConfig:
    hidden_dims: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    weight_decay: float = 0.0       # coupled L2 on every net (SRA: 5e-3)
    gamma: float = 0.99
    tau: float = 0.005              # target-Q Polyak rate
    expectile: float = 0.7
    temperature: float = 3.0        # beta in exp(beta * advantage)
    max_weight: float = 100.0       # advantage weights are clamped here
    bc_weight: float = 0.0          # + this x NLL of the BC rows (learners.base.bc_log_likelihood; SRA: 1)


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """Asymmetric L2: |tau - 1(diff < 0)| diff^2, diff = Q - V."""
    weight = torch.where(diff > 0, expectile, 1 - expectile)
    return (weight * diff.pow(2)).mean()


def value_loss(value: ValueFunction, target_q: torch.Tensor, obs: torch.Tensor, expectile: float):
    advantage = target_q - value(obs)
    return expectile_loss(advantage, expectile), advantage.detach()


def critic_loss(critic: EnsembleCritic, obs, act, reward, done, next_v, gamma: float) -> torch.Tensor:
    """The twin critics' MSEs to r + gamma (1 - d) V(s'), averaged (CORL's and SRA's official IQL: a sum would
    double the gradient and so halve the coupled weight decay's relative weight)."""
    target = reward + gamma * (1 - done) * next_v
    return ensemble_td_loss(critic(obs, act), target, reduction="mean")


def actor_loss(actor: TanhGaussianActor | GaussianActor, batch, advantage, temperature: float, max_weight: float,
               bc_weight: float = 0.0):
    """Advantage-weighted NLL; with ``bc_weight``, plus that times the NLL of the BC rows."""
    weights = torch.exp(temperature * advantage).clamp(max=max_weight)
    log_prob = actor.log_prob(batch["obs"], batch["act"])
    loss = -(weights * log_prob).mean()
    if bc_weight:
        loss = loss - bc_weight * bc_log_likelihood(actor, batch, log_prob)
    return loss


class IQL(LearnerBase):
    """``actor_cls`` picks the policy: ``TanhGaussianActor`` (default; SRA's) or ``GaussianActor`` (Kostrikov's
    original, OTR's)."""

    def __init__(self, obs_dim: int, act_dim: int, config: IQLConfig, device: torch.device,
                 actor_cls: type[TanhGaussianActor] | type[GaussianActor] = TanhGaussianActor):
        self.config, self.num_updates = config, 0
        hidden = config.hidden_dims
        self.actor = actor_cls(obs_dim, act_dim, hidden).to(device)
        self.critic = EnsembleCritic(obs_dim, act_dim, 2, hidden).to(device)
        self.critic_target = frozen_copy(self.critic)
        self.value = ValueFunction(obs_dim, hidden).to(device)
        wd = config.weight_decay
        self.actor_optimizer = adam(self.actor.parameters(), config.actor_lr, wd)
        self.critic_optimizer = adam(self.critic.parameters(), config.critic_lr, wd)
        self.value_optimizer = adam(self.value.parameters(), config.value_lr, wd)

    def parts(self):
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target, "value": self.value,
                "actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer,
                "value_optimizer": self.value_optimizer}

    def losses(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The value, critic and actor losses, summed (each reads only its own net's parameters: target Q, V(s')
        and the advantage come from before any step), and what to log."""
        c = self.config
        obs, act = batch["obs"], batch["act"]
        with torch.no_grad():
            target_q = self.critic_target(obs, act).min(0).values
            next_v = self.value(batch["next_obs"])
        loss_v, advantage = value_loss(self.value, target_q, obs, c.expectile)
        loss_q = critic_loss(self.critic, obs, act, batch["reward"], batch["done"], next_v, c.gamma)
        loss_pi = actor_loss(self.actor, batch, advantage, c.temperature, c.max_weight, c.bc_weight)
        return loss_v + loss_q + loss_pi, {"loss/value": loss_v.detach(), "loss/critic": loss_q.detach(),
                                           "loss/actor": loss_pi.detach(), "advantage": advantage.mean()}

    def update(self, batch) -> dict[str, torch.Tensor]:
        if self._compiled is not None:
            logs = self._compiled(batch)
        else:
            # one backward of the sum and three steps = CORL's V step, then Q step, then actor step
            total, logs = self.losses(batch)
            gradient_step((self.value_optimizer, self.critic_optimizer, self.actor_optimizer), total)
            soft_update(self.critic_target, self.critic, self.config.tau)
        self.num_updates += 1
        self.after_update()
        return logs

    def compile_update(self) -> bool:
        """From now on, each update runs as one compiled graph (methods/compiled_step.py)."""
        self._compiled = CompiledUpdate(  # one stage: the three losses read the same parameters
            [(self.losses, (self.value_optimizer, self.critic_optimizer, self.actor_optimizer))],
            {"actor": self.actor, "critic": self.critic, "value": self.value},
            [(self.critic_target, self.critic)], self.config.tau)
        return True
