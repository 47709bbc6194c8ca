"""AWAC (Nair et al. 2020): twin Q with the policy's next action in the target, actor by weighted
likelihood with weights exp(A / lambda), A = Q(s, a) - Q(s, pi(s)). CORL defaults (3x256)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.compiled_step import CompiledUpdate
from methods.learners.base import LearnerBase, bc_log_likelihood, ensemble_td_loss
from methods.nets import EnsembleCritic, TanhGaussianActor, adam, frozen_copy, gradient_step, soft_update


@dataclass(frozen=True)
class AWACConfig:
    hidden_dims: tuple[int, ...] = (256, 256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    awac_lambda: float | None = None  # temperature; None: per family (maze2d 0.1, locomotion 0.333)
    max_weight: float = 100.0
    bc_weight: float = 0.0            # + this x NLL of the BC rows (learners.base.bc_log_likelihood)


def critic_loss(critic, critic_target, actor, batch, gamma) -> torch.Tensor:
    with torch.no_grad():
        next_action, _ = actor.sample(batch["next_obs"])
        next_q = critic_target(batch["next_obs"], next_action).min(0).values
        target = batch["reward"] + gamma * (1 - batch["done"]) * next_q
    return ensemble_td_loss(critic(batch["obs"], batch["act"]), target)


def actor_loss(actor, critic, batch, awac_lambda, max_weight, bc_weight: float = 0.0):
    """Advantage-weighted NLL (and the mean advantage); with ``bc_weight``, plus that times the NLL of the BC rows."""
    obs, act = batch["obs"], batch["act"]
    with torch.no_grad():
        pi, _ = actor.sample(obs)
        advantage = critic(obs, act).min(0).values - critic(obs, pi).min(0).values
        weights = torch.exp(advantage / awac_lambda).clamp(max=max_weight)
    log_prob = actor.log_prob(obs, act)
    loss = -(weights * log_prob).mean()
    if bc_weight:
        loss = loss - bc_weight * bc_log_likelihood(actor, batch, log_prob)
    return loss, advantage.mean()


class AWAC(LearnerBase):
    def __init__(self, obs_dim: int, act_dim: int, config: AWACConfig, device: torch.device):
        if config.awac_lambda is None:
            raise ValueError("AWACConfig.awac_lambda must be resolved (per family) before building the learner "
                             "(a method's task_defaults: methods.learners.learner_task_defaults)")
        self.config, self.num_updates = config, 0
        self.actor = TanhGaussianActor(obs_dim, act_dim, config.hidden_dims).to(device)
        self.critic = EnsembleCritic(obs_dim, act_dim, 2, config.hidden_dims).to(device)
        self.critic_target = frozen_copy(self.critic)
        self.actor_optimizer = adam(self.actor.parameters(), config.actor_lr)
        self.critic_optimizer = adam(self.critic.parameters(), config.critic_lr)

    def parts(self):
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target,
                "actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}

    def critic_losses(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss_q = critic_loss(self.critic, self.critic_target, self.actor, batch, self.config.gamma)
        return loss_q, {"loss/critic": loss_q.detach()}

    def actor_losses(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The actor's loss, its advantages from the critics just stepped."""
        c = self.config
        loss_pi, advantage = actor_loss(self.actor, self.critic, batch, c.awac_lambda, c.max_weight, c.bc_weight)
        return loss_pi, {"loss/actor": loss_pi.detach(), "advantage": advantage}

    def update(self, batch) -> dict[str, torch.Tensor]:
        if self._compiled is not None:
            logs = self._compiled(batch)
        else:  # CORL's order: the critics' step, then the actor's on the new critics
            loss_q, logs = self.critic_losses(batch)
            gradient_step(self.critic_optimizer, loss_q)
            loss_pi, actor_logs = self.actor_losses(batch)
            gradient_step(self.actor_optimizer, loss_pi)
            soft_update(self.critic_target, self.critic, self.config.tau)
            logs = {**logs, **actor_logs}
        self.num_updates += 1
        self.after_update()
        return logs

    def compile_update(self) -> bool:
        """From now on, each update runs as one compiled graph (methods/compiled_step.py): the critic stage,
        then the actor stage, as the eager update orders them."""
        self._compiled = CompiledUpdate([(self.critic_losses, (self.critic_optimizer,)),
                                         (self.actor_losses, (self.actor_optimizer,))],
                                        {"actor": self.actor, "critic": self.critic},
                                        [(self.critic_target, self.critic)], self.config.tau)
        return True
