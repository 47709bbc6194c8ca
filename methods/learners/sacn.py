"""SAC-N (An et al. 2021): SAC with N critics (one batched ensemble), the minimum over all N in the target
and the actor loss, automatic entropy tuning. CORL defaults (3x256)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from methods.compiled_step import CompiledUpdate
from methods.learners.base import LearnerBase, bc_log_likelihood, ensemble_td_loss
from methods.nets import (EnsembleCritic, TanhGaussianActor, adam, frozen_copy, gradient_step, no_param_grad,
                         soft_update)


@dataclass(frozen=True)
class SACNConfig:
    hidden_dims: tuple[int, ...] = (256, 256, 256)
    num_critics: int | None = None  # None: per task (maze2d 25; hopper 500, halfcheetah 10, walker2d 20, ant 10)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    bc_weight: float = 0.0          # + this x NLL of the BC rows (learners.base.bc_log_likelihood; CLARE 0.25, MILO 5)
    init_alpha: float = 1.0         # entropy temperature at the start (CORL: 1); alpha_lr = 0 keeps it there


# The smoke budget of a method whose learner is SAC-N (its ``budgets["smoke"]["learner"]``): 25 critics cost
# ~0.3 s per update on one CPU core; smoke shrinks them to keep runs seconds-long.
SMOKE_BUDGET = {"num_critics": 5, "hidden_dims": [64, 64, 64]}


def critic_loss(critic, critic_target, actor, log_alpha, batch, gamma) -> torch.Tensor:
    with torch.no_grad():
        next_action, next_log_prob = actor.sample(batch["next_obs"])
        next_q = critic_target(batch["next_obs"], next_action).min(0).values - log_alpha.exp() * next_log_prob
        target = batch["reward"] + gamma * (1 - batch["done"]) * next_q
    return ensemble_td_loss(critic(batch["obs"], batch["act"]), target)


def actor_and_alpha_loss(actor, critic, log_alpha, batch, target_entropy, bc_weight: float = 0.0):
    """SAC's actor loss (with ``bc_weight``, plus that times the NLL of the BC rows), the temperature's loss, and the
    policy's entropy estimate."""
    obs = batch["obs"]
    action, log_prob = actor.sample(obs)
    with no_param_grad(critic):  # the gradient goes through Q to the action, not into Q's weights
        q = critic(obs, action).min(0).values
    actor_loss = (log_alpha.exp().detach() * log_prob - q).mean()
    if bc_weight:
        actor_loss = actor_loss - bc_weight * bc_log_likelihood(actor, batch)
    alpha_loss = -(log_alpha * (log_prob.detach() + target_entropy)).mean()
    return actor_loss, alpha_loss, -log_prob.detach().mean()


class Temperature(torch.nn.Module):
    """SAC's entropy temperature, alpha = exp(log_alpha): a module so that a compiled update can swap it."""

    def __init__(self, init_alpha: float, device: torch.device):
        super().__init__()
        self.log_alpha = torch.nn.Parameter(torch.full((), math.log(init_alpha), device=device))


class SACN(LearnerBase):
    def __init__(self, obs_dim: int, act_dim: int, config: SACNConfig, device: torch.device):
        if config.num_critics is None:
            raise ValueError("SACNConfig.num_critics must be resolved (per task) before building the learner "
                             "(a method's task_defaults: methods.learners.learner_task_defaults)")
        self.config, self.num_updates = config, 0
        self.actor = TanhGaussianActor(obs_dim, act_dim, config.hidden_dims).to(device)
        self.critic = EnsembleCritic(obs_dim, act_dim, config.num_critics, config.hidden_dims).to(device)
        self.critic_target = frozen_copy(self.critic)
        self.temperature = Temperature(config.init_alpha, device)
        self.target_entropy = -float(act_dim)
        self.actor_optimizer = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optimizer = adam(self.critic.parameters(), config.critic_lr)
        self.alpha_optimizer = adam([self.log_alpha], config.alpha_lr)

    @property
    def log_alpha(self) -> torch.nn.Parameter:
        return self.temperature.log_alpha

    def parts(self):
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target,
                "actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer,
                "alpha_optimizer": self.alpha_optimizer}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "log_alpha": self.log_alpha.detach().clone()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])

    def actor_losses(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The actor's and the temperature's losses, summed (they share no parameters), and what to log."""
        loss_pi, loss_alpha, entropy = actor_and_alpha_loss(self.actor, self.critic, self.log_alpha, batch,
                                                            self.target_entropy, self.config.bc_weight)
        return loss_pi + loss_alpha, {"loss/actor": loss_pi.detach(), "loss/alpha": loss_alpha.detach(),
                                      "entropy": entropy}

    def critic_losses(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The critics' TD loss, on the actor and temperature just stepped, and what to log."""
        loss_q = critic_loss(self.critic, self.critic_target, self.actor, self.log_alpha, batch, self.config.gamma)
        return loss_q, {"loss/critic": loss_q.detach(), "alpha": self.log_alpha.detach().exp()}

    def update(self, batch) -> dict[str, torch.Tensor]:
        if self._compiled is not None:
            logs = self._compiled(batch)
        else:  # CORL's order: actor and temperature steps, then the critics' step on the new actor
            total, actor_logs = self.actor_losses(batch)
            gradient_step((self.actor_optimizer, self.alpha_optimizer), total)  # no shared parameters
            loss_q, logs = self.critic_losses(batch)
            gradient_step(self.critic_optimizer, loss_q)
            soft_update(self.critic_target, self.critic, self.config.tau)
            logs = {**actor_logs, **logs}
        self.num_updates += 1
        self.after_update()
        return logs

    def compile_update(self) -> bool:
        """From now on, each update runs as one compiled graph (methods/compiled_step.py): the actor and
        temperature stage, then the critic stage, as the eager update orders them."""
        self._compiled = CompiledUpdate(
            [(self.actor_losses, (self.actor_optimizer, self.alpha_optimizer)),
             (self.critic_losses, (self.critic_optimizer,))],
            {"actor": self.actor, "critic": self.critic, "temperature": self.temperature},
            [(self.critic_target, self.critic)], self.config.tau)
        return True
