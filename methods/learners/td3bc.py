"""TD3+BC (Fujimoto & Gu 2021): TD3 with the actor loss -lambda Q(s, pi(s)) + (pi(s) - a)^2,
lambda = alpha / mean|Q|. CORL defaults."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.compiled_step import CompiledUpdate
from methods.learners.base import (LearnerBase, bc_log_likelihood, ensemble_td_loss,
                                   squared_error_log_likelihood)
from methods.nets import (DeterministicActor, EnsembleCritic, adam, frozen_copy, gradient_step, no_param_grad,
                         soft_update)


@dataclass(frozen=True)
class TD3BCConfig:
    hidden_dims: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    alpha: float = 2.5          # BC strength: lambda = alpha / mean |Q|
    policy_noise: float = 0.2   # target policy smoothing noise ...
    noise_clip: float = 0.5     # ... clipped here
    policy_delay: int = 2       # actor and targets update every this many critic updates
    bc_weight: float = 0.0      # + this x squared error on the BC rows (learners.base.bc_log_likelihood), besides
                                # TD3+BC's own term on every row


def critic_loss(critic, critic_target, actor_target, batch, gamma, policy_noise, noise_clip) -> torch.Tensor:
    with torch.no_grad():
        next_action = actor_target(batch["next_obs"])
        noise = (torch.randn_like(next_action) * policy_noise).clamp(-noise_clip, noise_clip)
        next_action = (next_action + noise).clamp(-1.0, 1.0)
        next_q = critic_target(batch["next_obs"], next_action).min(0).values
        target = batch["reward"] + gamma * (1 - batch["done"]) * next_q
    return ensemble_td_loss(critic(batch["obs"], batch["act"]), target)


def actor_loss(actor, critic, batch, alpha, bc_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """-lambda Q(s, pi(s)) + (pi(s) - a)^2 (and that squared error); with ``bc_weight``, plus that times the
    squared error on the BC rows."""
    obs, act = batch["obs"], batch["act"]
    pi = actor(obs)
    with no_param_grad(critic):  # the gradient goes through Q to the action, not into Q's weights
        q = critic(obs, pi)[0]
    lam = alpha / q.abs().mean().detach()
    bc = (pi - act).pow(2).mean()
    loss = -lam * q.mean() + bc
    if bc_weight:
        loss = loss - bc_weight * bc_log_likelihood(actor, batch, squared_error_log_likelihood(pi, act))
    return loss, bc.detach()


class TD3BC(LearnerBase):
    def __init__(self, obs_dim: int, act_dim: int, config: TD3BCConfig, device: torch.device):
        self.config, self.num_updates = config, 0
        self.actor = DeterministicActor(obs_dim, act_dim, config.hidden_dims).to(device)
        self.actor_target = frozen_copy(self.actor)
        self.critic = EnsembleCritic(obs_dim, act_dim, 2, config.hidden_dims).to(device)
        self.critic_target = frozen_copy(self.critic)
        self.actor_optimizer = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optimizer = adam(self.critic.parameters(), config.critic_lr)
        self._last_actor = {"loss/actor": torch.zeros((), device=device), "bc": torch.zeros((), device=device)}

    def parts(self):
        return {"actor": self.actor, "actor_target": self.actor_target, "critic": self.critic,
                "critic_target": self.critic_target, "actor_optimizer": self.actor_optimizer,
                "critic_optimizer": self.critic_optimizer}

    def state_dict(self) -> dict:  # the actor's last metrics are reported on critic-only steps: resume them too
        return {**super().state_dict(), "last_actor": {k: v.detach().clone() for k, v in self._last_actor.items()}}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        device = next(self.actor.parameters()).device
        self._last_actor = {k: v.to(device) for k, v in state["last_actor"].items()}

    def update(self, batch) -> dict[str, torch.Tensor]:
        if self._compiled is not None:
            return self._compiled_update(batch)
        loss_q, logs = self.critic_losses(batch)
        gradient_step(self.critic_optimizer, loss_q)
        self.num_updates += 1
        if self.num_updates % self.config.policy_delay == 0:  # the actor's step, on the new critics
            loss_pi, self._last_actor = self.actor_losses(batch)
            gradient_step(self.actor_optimizer, loss_pi)
            soft_update(self.critic_target, self.critic, self.config.tau)
            soft_update(self.actor_target, self.actor, self.config.tau)
        self.after_update()
        return {**logs, **self._last_actor}

    def critic_losses(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        loss_q = critic_loss(self.critic, self.critic_target, self.actor_target, batch, c.gamma, c.policy_noise,
                             c.noise_clip)
        return loss_q, {"loss/critic": loss_q.detach()}

    def actor_losses(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The actor's loss on the critics just stepped."""
        loss_pi, bc = actor_loss(self.actor, self.critic, batch, self.config.alpha, self.config.bc_weight)
        return loss_pi, {"loss/actor": loss_pi.detach(), "bc": bc}

    def compile_update(self) -> bool:
        """From now on, each update runs as one compiled graph (methods/compiled_step.py): two graphs, as the
        eager update has two kinds of step: the critics' alone, and every ``policy_delay``-th the critics', then
        the actor's on the new critics, then both target updates."""
        nets = {"actor": self.actor, "critic": self.critic}
        self._compiled_critic = CompiledUpdate([(self.critic_losses, (self.critic_optimizer,))], nets)
        self._compiled = CompiledUpdate([(self.critic_losses, (self.critic_optimizer,)),
                                         (self.actor_losses, (self.actor_optimizer,))], nets,
                                        [(self.critic_target, self.critic), (self.actor_target, self.actor)],
                                        self.config.tau)
        return True

    @property
    def compile_s(self) -> float:
        return self._compiled.compile_s + self._compiled_critic.compile_s if self._compiled is not None else 0.0

    def _compiled_update(self, batch) -> dict[str, torch.Tensor]:
        self.num_updates += 1
        if self.num_updates % self.config.policy_delay == 0:
            logs = self._compiled(batch)
            self._last_actor = {"loss/actor": logs["loss/actor"], "bc": logs["bc"]}
        else:
            logs = self._compiled_critic(batch)
        self.after_update()
        return {"loss/critic": logs["loss/critic"], **self._last_actor}
