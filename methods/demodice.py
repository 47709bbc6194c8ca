"""DemoDICE (Kim et al., ICLR 2022, "DemoDICE: Offline Imitation Learning with Supplementary Imperfect
Demonstrations"), following the official TF2 code (geon-hyeong/imitation-dice, demodice.py, with the
defaults of config/default_config.py that lfd_mujoco.py reads).

Per update, on 512 expert, 512 union (D^E u D^S) and 512 initial-state samples (first states of the
union's episodes), three simultaneous steps from the same parameters:
1. discriminator c(s, a), expert (label 1) vs union (label 0), BCE + 0.1 x (||grad cost|| - 1)^2 on
   interpolates expert<->union and union<->shuffled union; reward R = -log(1/(D + eps) - 1 + eps) with
   eps = 1e-3, i.e. log D/(1 - D) clipped to about [-6.9, 13.8];
2. nu(s): (1 - gamma) E_init[nu(s0)] + (1 + alpha) log E_union[exp(e / (1 + alpha))] with the advantage
   e = R + gamma nu(s') - nu(s), + 1e-4 x ||grad nu||^2 on union states and expert<->union interpolates;
3. actor: weighted BC on the union, w = exp(e / (1 + alpha)) / batch mean (no clipping), tanh-Gaussian NLL.
As the official code (absorbing states off): no terminal masking in e.

Deviations: states z-scored over D^E u D^S (as all methods here; official: D^S); PyTorch default init with output
biases (official: he_normal, no output bias; nu's bias gets zero gradient anyway); log-MEAN-exp in the nu
loss (official log-sum-exp: same gradient, loss offset by (1 + alpha) log 512); the tanh Jacobian of the actor's
log-prob is taken at the clipped action (official TanhActor: log(1 - a^2 + eps) at the raw action, which differs
only for saturated actions, by a constant without parameters: same gradients). The clip itself matches: data
actions to +-(1 - 2^-23) in float32 before atanh, mean clipped to +-7, log-std to [-5, 2].
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from core.seeding import stream_seed
from methods.base import Method, act_numpy
from methods.compiled_step import CompiledUpdate
from methods.data import Transitions
from methods.nets import TanhGaussianActor, ValueFunction, adam, gradient_step, mlp
from methods.registry import register
from methods.sampling import MixtureSampler, Source

REWARD_EPS = 1e-3                                # official EPS2: keeps log D/(1-D) finite
GRAD_EPS = float(np.finfo(np.float32).eps)       # official EPS, added to input gradients before the norm
NOISE = ("mix_sa", "perm", "mix_s")              # the penalties' interpolation weights and union shuffle


@dataclass(frozen=True)
class Config:
    hidden_dims: tuple[int, ...] = (256, 256)   # discriminator, nu and actor MLPs
    critic_lr: float = 3e-4                     # discriminator and nu (official critic_lr)
    actor_lr: float = 3e-4
    batch_size: int = 512                       # expert, union and initial-state samples per update, each
    gamma: float = 0.99
    alpha: float = 0.1                          # KL(d || d^U) weight; the code uses 1 + alpha (official default 0.1)
    discriminator_penalty: float = 0.1          # gradient-penalty coefficient on the cost (grad_reg_coeffs[0])
    value_penalty: float = 1e-4                 # gradient-penalty coefficient on nu (grad_reg_coeffs[1])
    mean_clip: float = 7.0                      # actor pre-tanh mean clipped to +-7 (official TanhActor)


# ------------------------------------------------------------------------------------------------ losses
def input_gradient(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """d sum(fn(x)) / dx, kept in the graph so a penalty on it trains fn (``torch.func.grad`` in a compiled
    update, where ``torch.autograd.grad`` does not trace: the same derivative)."""
    if torch.compiler.is_compiling():
        return torch.func.grad(lambda inputs: fn(inputs).sum())(x) + GRAD_EPS
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    return grad + GRAD_EPS


def reward_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """R = log D/(1 - D), D = sigmoid(logits), in the official clipped form -log(1/(D + eps) - 1 + eps)."""
    return -torch.log(1 / (torch.sigmoid(logits) + REWARD_EPS) - 1 + REWARD_EPS)


def discriminator_loss(disc: nn.Sequential, expert_sa: torch.Tensor, union_sa: torch.Tensor,
                       mix: torch.Tensor, perm: torch.Tensor, penalty: float):
    """BCE (expert 1, union 0) + penalty x E[(||grad_x cost(x)|| - 1)^2], cost = -R; returns union logits."""
    expert_logits, union_logits = disc(expert_sa).squeeze(-1), disc(union_sa).squeeze(-1)
    bce = F.softplus(-expert_logits).mean() + F.softplus(union_logits).mean()
    mixed = torch.cat([mix * expert_sa + (1 - mix) * union_sa, mix * union_sa[perm] + (1 - mix) * union_sa])
    grad = input_gradient(lambda x: -reward_from_logits(disc(x).squeeze(-1)), mixed)
    return bce + penalty * (grad.norm(dim=-1) - 1).pow(2).mean(), union_logits.detach()


def value_loss(nu: ValueFunction, init_obs: torch.Tensor, expert: dict, union: dict, reward: torch.Tensor,
               gamma: float, alpha: float, mix: torch.Tensor, penalty: float):
    """(1 - gamma) E[nu(s0)] + (1 + alpha) log E_union[exp(e / (1 + alpha))] + penalty x E||grad nu||^2."""
    advantage = reward + gamma * nu(union["next_obs"]) - nu(union["obs"])
    log_mean_exp = torch.logsumexp(advantage / (1 + alpha), 0) - math.log(len(advantage))
    loss = (1 - gamma) * nu(init_obs).mean() + (1 + alpha) * log_mean_exp
    states = torch.cat([union["obs"], mix * expert["obs"] + (1 - mix) * union["obs"],
                        mix * expert["next_obs"] + (1 - mix) * union["next_obs"]])
    grad = input_gradient(nu, states)
    return loss + penalty * grad.pow(2).sum(-1).mean(), advantage.detach()


def bc_weights(advantage: torch.Tensor, alpha: float) -> torch.Tensor:
    """exp(e / (1 + alpha)) divided by its batch mean (a softmax x N: same numbers, no overflow)."""
    return torch.softmax(advantage / (1 + alpha), 0) * len(advantage)


def actor_loss(actor: TanhGaussianActor, obs: torch.Tensor, act: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return -(weights * actor.log_prob(obs, act)).mean()


# ------------------------------------------------------------------------------------------------ method
@register
class DemoDICE(Method):
    name = "demodice"
    description = "DICE: discriminator reward, nu by log-sum-exp over the union, advantage-weighted BC"
    Config = Config

    def __init__(self, task, data, config: Config, seed, device, num_steps):
        super().__init__(task, data, config, seed, device, num_steps)
        obs_dim, act_dim, hidden = task.obs_dim, task.act_dim, config.hidden_dims
        self.discriminator = mlp(obs_dim + act_dim, 1, hidden).to(self.device)
        self.value = ValueFunction(obs_dim, hidden).to(self.device)
        self.actor = TanhGaussianActor(obs_dim, act_dim, hidden, mean_clip=config.mean_clip).to(self.device)
        self.discriminator_optimizer = adam(self.discriminator.parameters(), config.critic_lr)
        self.value_optimizer = adam(self.value.parameters(), config.critic_lr)
        self.actor_optimizer = adam(self.actor.parameters(), config.actor_lr)
        union = data.union()
        initial = union.select(union.episode_starts, np.arange(union.num_episodes))
        n = config.batch_size
        self.sampler = MixtureSampler({"expert": Source(data.expert, n), "union": Source(union, n),
                                       "initial": Source(initial, n)}, data.normalizer, seed, self.device)
        self.noise = torch.Generator(device=self.device)  # gradient-penalty interpolation weights
        self.noise.manual_seed(stream_seed(seed, "gradient penalty"))

    def parts(self) -> dict:
        return {"discriminator": self.discriminator, "value": self.value, "actor": self.actor,
                "discriminator_optimizer": self.discriminator_optimizer, "value_optimizer": self.value_optimizer,
                "actor_optimizer": self.actor_optimizer, "sampler": self.sampler, "noise": self.noise}

    def update(self, step: int) -> dict[str, torch.Tensor]:
        n, batch = self.config.batch_size, self.sampler.sample()
        noise = dict(generator=self.noise, device=self.device)
        inputs = {**batch, **dict(zip(NOISE, (torch.rand(n, 1, **noise), torch.randperm(n, **noise),
                                                torch.rand(n, 1, **noise))))}
        if self._compiled is not None:
            return self._compiled(inputs)
        loss_d, loss_v, loss_pi, logs = self._losses(inputs)
        gradient_step(self.discriminator_optimizer, loss_d)  # the three graphs share no parameters:
        gradient_step(self.value_optimizer, loss_v)          # stepping in turn = the official simultaneous step
        gradient_step(self.actor_optimizer, loss_pi)
        return logs

    def losses(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The three losses, summed (they share no parameters: one gradient of the sum = the three steps)."""
        loss_d, loss_v, loss_pi, logs = self._losses(inputs)
        return loss_d + loss_v + loss_pi, logs

    def compile_update(self) -> bool:
        """From now on, each update (after sampling the batch and the penalty's noise) runs as one compiled graph
        (methods/compiled_step.py); the input-gradient penalties through ``torch.func.grad``."""
        self._compiled = CompiledUpdate(
            [(self.losses, (self.discriminator_optimizer, self.value_optimizer, self.actor_optimizer))],
            {"discriminator": self.discriminator, "value": self.value, "actor": self.actor})
        return True

    def _losses(self, inputs: dict[str, torch.Tensor]):
        """Discriminator, nu and actor losses from one batch (expert, union, initial rows) and the penalties'
        interpolation noise (``mix_sa``, ``perm``, ``mix_s``), and what to log."""
        c, n = self.config, self.config.batch_size
        # the sampler's sources, in order: expert, union, initial states
        expert, union, initial = ({k: v[i * n:(i + 1) * n] for k, v in inputs.items() if k not in NOISE}
                                  for i in range(3))
        mix_sa, perm, mix_s = (inputs[k] for k in NOISE)
        expert_sa = torch.cat([expert["obs"], expert["act"]], -1)
        union_sa = torch.cat([union["obs"], union["act"]], -1)
        loss_d, union_logits = discriminator_loss(self.discriminator, expert_sa, union_sa, mix_sa, perm,
                                                  c.discriminator_penalty)
        reward = reward_from_logits(union_logits)
        loss_v, advantage = value_loss(self.value, initial["obs"], expert, union, reward, c.gamma, c.alpha,
                                       mix_s, c.value_penalty)
        weights = bc_weights(advantage, c.alpha)
        loss_pi = actor_loss(self.actor, union["obs"], union["act"], weights)
        return loss_d, loss_v, loss_pi, {
            "loss/discriminator": loss_d.detach(), "loss/value": loss_v.detach(), "loss/actor": loss_pi.detach(),
            "reward": reward.mean(), "advantage": advantage.mean(), "weight_max": weights.max()}

    @torch.no_grad()
    def advantage(self, transitions: Transitions) -> np.ndarray:
        """e(s, a, s') = R(s, a) + gamma nu(s') - nu(s) per transition; the BC weight is exp(e / (1 + alpha))."""
        def tensor(x):
            return torch.as_tensor(x, dtype=torch.float32, device=self.device)
        obs = tensor(self.data.normalizer(transitions.observations))
        next_obs = tensor(self.data.normalizer(transitions.next_observations))
        reward = reward_from_logits(self.discriminator(torch.cat([obs, tensor(transitions.actions)], -1)).squeeze(-1))
        return (reward + self.config.gamma * self.value(next_obs) - self.value(obs)).cpu().numpy()

    def act(self, obs):
        return act_numpy(self.actor, self.data.normalizer, obs, self.device)
