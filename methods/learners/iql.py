"""IQL (Kostrikov et al. 2021): expectile value V, twin Q toward r + gamma V(s'), advantage-weighted actor.

CORL defaults; the tanh-Gaussian actor (state-dependent log-std in [-5, 2]) is SRA's choice, deterministic
action tanh(mu)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.learners.base import LearnerBase, ensemble_td_loss, step
from methods.nets import EnsembleCritic, TanhGaussianActor, ValueFunction, adam, frozen_copy, soft_update


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
    lr_schedule_steps: int = 0      # cosine decay of the actor lr over this many updates (0: constant)
    expert_bc_weight: float = 0.0   # SRA's IQL + BC: + this x mean NLL on the batch rows flagged expert
    lr_drop_at: int = 0             # SRA on maze2d: at this update every lr becomes the actor's lr / 10 (0: off);
                                    # the actor's cosine schedule then keeps decaying from there (chainable)


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


def actor_loss(actor: TanhGaussianActor, obs, act, advantage, temperature: float, max_weight: float,
               expert=None, expert_bc_weight: float = 0.0):
    """Advantage-weighted NLL; with ``expert_bc_weight``, plus that times the plain NLL of the expert rows."""
    weights = torch.exp(temperature * advantage).clamp(max=max_weight)
    log_prob = actor.log_prob(obs, act)
    loss = -(weights * log_prob).mean()
    if expert_bc_weight:
        loss = loss - expert_bc_weight * (expert * log_prob).sum() / expert.sum().clamp(min=1.0)
    return loss


class IQL(LearnerBase):
    def __init__(self, obs_dim: int, act_dim: int, config: IQLConfig, device: torch.device):
        self.config, self.num_updates = config, 0
        hidden = config.hidden_dims
        self.actor = TanhGaussianActor(obs_dim, act_dim, hidden).to(device)
        self.critic = EnsembleCritic(obs_dim, act_dim, 2, hidden).to(device)
        self.critic_target = frozen_copy(self.critic)
        self.value = ValueFunction(obs_dim, hidden).to(device)
        wd = config.weight_decay
        self.actor_optimizer = adam(self.actor.parameters(), config.actor_lr, wd)
        self.critic_optimizer = adam(self.critic.parameters(), config.critic_lr, wd)
        self.value_optimizer = adam(self.value.parameters(), config.value_lr, wd)
        self.actor_schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(self.actor_optimizer, config.lr_schedule_steps)
                               if config.lr_schedule_steps else None)

    def parts(self):
        parts = {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target, "value": self.value,
                 "actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer,
                 "value_optimizer": self.value_optimizer}
        if self.actor_schedule:
            parts["actor_schedule"] = self.actor_schedule
        return parts

    def _drop_learning_rates(self) -> None:
        """Every lr becomes the actor's current lr / 10 (SRA, maze2d). The actor's cosine schedule goes on from the
        dropped value: torch's CosineAnnealingLR steps recursively from the current lr (the official code sets
        the lrs by hand and keeps stepping its scheduler)."""
        lr = self.actor_optimizer.param_groups[0]["lr"] / 10
        for optimizer in (self.actor_optimizer, self.critic_optimizer, self.value_optimizer):
            for group in optimizer.param_groups:
                group["lr"] = lr

    def update(self, batch) -> dict[str, torch.Tensor]:
        c = self.config
        obs, act = batch["obs"], batch["act"]
        with torch.no_grad():
            target_q = self.critic_target(obs, act).min(0).values
            next_v = self.value(batch["next_obs"])
        loss_v, advantage = value_loss(self.value, target_q, obs, c.expectile)
        step(self.value_optimizer, loss_v)
        loss_q = critic_loss(self.critic, obs, act, batch["reward"], batch["done"], next_v, c.gamma)
        step(self.critic_optimizer, loss_q)
        loss_pi = actor_loss(self.actor, obs, act, advantage, c.temperature, c.max_weight,
                             batch.get("expert"), c.expert_bc_weight)
        step(self.actor_optimizer, loss_pi)
        if self.actor_schedule:
            self.actor_schedule.step()
        if c.lr_drop_at and self.num_updates + 1 == c.lr_drop_at:
            self._drop_learning_rates()
        soft_update(self.critic_target, self.critic, c.tau)
        self.num_updates += 1
        return {"loss/value": loss_v.detach(), "loss/critic": loss_q.detach(), "loss/actor": loss_pi.detach(),
                "advantage": advantage.mean()}
