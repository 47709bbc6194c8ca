"""BC-exp: behaviour cloning on the few expert episodes D^E only (the paper's lower baseline).

Deterministic tanh-MLP with MSE (default) or a tanh-Gaussian policy with NLL; Adam 3e-4 with weight decay 5e-3,
batch 256, states z-scored with D^E u D^S statistics as for every method. The weight decay is the official SRA
code's (its DeterministicBC: ``torch.optim.Adam(..., weight_decay=0.005)``): plain Adam's coupled L2 (the decay
term is added to the gradient before Adam's moments), not AdamW's decoupled decay.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from methods.base import Method, act_numpy
from methods.nets import DeterministicActor, TanhGaussianActor, adam, gradient_step
from methods.registry import register
from methods.sampling import UniformSampler


@dataclass(frozen=True)
class Config:
    policy: Literal["deterministic", "gaussian"] = "deterministic"        # deterministic (MSE) | gaussian (tanh-Gaussian NLL)
    hidden_dims: tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    weight_decay: float = 5e-3  # Adam's coupled L2, as the official SRA code's BC; 0 turns it off
    batch_size: int = 256


def bc_loss(actor: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    if isinstance(actor, TanhGaussianActor):
        return -actor.log_prob(obs, act).mean()
    return ((actor(obs) - act) ** 2).sum(-1).mean()


@register
class BCExp(Method):
    name = "bc-exp"
    description = "Behaviour cloning on the expert episodes only"
    Config = Config

    def __init__(self, task, data, config: Config, seed, device, num_steps):
        super().__init__(task, data, config, seed, device, num_steps)
        if config.policy not in ("deterministic", "gaussian"):
            raise ValueError(f"bc-exp policy must be 'deterministic' or 'gaussian', got {config.policy!r}")
        actor_cls = TanhGaussianActor if config.policy == "gaussian" else DeterministicActor
        self.actor = actor_cls(task.obs_dim, task.act_dim, config.hidden_dims).to(self.device)
        self.optimizer = adam(self.actor.parameters(), config.lr, config.weight_decay)
        self.sampler = UniformSampler(data.expert, data.normalizer, config.batch_size, seed, self.device)

    def update(self, step: int) -> dict[str, float]:
        batch = self.sampler.sample()
        loss = bc_loss(self.actor, batch["obs"], batch["act"])
        gradient_step(self.optimizer, loss)
        return {"loss/actor": loss.detach()}

    def act(self, obs):
        return act_numpy(self.actor, self.data.normalizer, obs, self.device)

    def parts(self) -> dict:
        return {"actor": self.actor, "optimizer": self.optimizer, "sampler": self.sampler}
