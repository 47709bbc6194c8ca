"""DWBC (Xu et al. 2022, "Discriminator-weighted offline imitation learning from suboptimal demonstrations").

A discriminator d(s, a, log pi(a|s)) is trained by positive-unlabeled learning (expert = positive, D^S =
unlabeled, class prior eta); the policy is trained by BC whose per-transition weights come from d:

    L_d  = eta E_e[-log d + log(1 - d)] + E_o[-log(1 - d)]                     (d clipped to [0.1, 0.9])
    L_pi = alpha E_e[-log pi] - E_e[-log pi (eta / (d (1 - d)) + 1)] + E_o[-log pi (1 / (1 - d) - 1)]

with d treated as a constant in L_pi and d_o < 0.5 set to 0 (no weight on transitions judged non-expert).
L_pi, the clip and the 0.5 cut follow the official code (ryanxhr/DWBC, algos/DWBC.py) term for term;
L_d is its ``pu_learning`` branch (the SRA authors' copy divides it by eta: same minimizer). The
discriminator sees log pi per action dimension, detached, as in the official code, and the unlabeled set
is D^S (the official D_o holds no D_e transitions; ``unlabeled="union"`` gives D^E u D^S, the SRA paper's set).
Hyper-parameters are the SRA authors' DWBC (sh-jj/SRA-KDD-2024): alpha 7.5, lr 1e-4, weight decay 5e-3 on
the policy only. That copy also updates d only every 100 steps (``discriminator_every``; default 1 as the
official code) and feeds d a log pi clipped to [-20, 10] and rescaled to [0, 1] (not done here).

Deviations, all from composing shared blocks: the discriminator is a plain 2x256 MLP on the concatenated
(s, a, log pi) (official: (s, a) and log pi through two 128-wide branches, then 256), PyTorch's default
init (official: orthogonal; the SRA copy: default), and the policy is the shared tanh-Gaussian actor (the same
distribution as the official Actor: mean clipped to +-9, log-std to [-5, 2], data actions to +-(1 - 1e-7) before atanh).
One 512-row forward pass serves both halves of the batch (the same math as two passes of 256).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from methods.base import Method, act_numpy
from methods.nets import TanhGaussianActor, adam, gradient_step, mlp, tanh_gaussian_log_prob
from methods.registry import register
from methods.sampling import MixtureSampler, Source


@dataclass(frozen=True)
class Config:
    alpha: float = 7.5                     # weight of the plain BC term on D^E (SRA's DWBC; official script 10)
    eta: float = 0.5                       # PU class prior: share of expert-like transitions in the unlabeled data
    d_min: float = 0.1                     # discriminator outputs are clipped to [d_min, d_max]
    d_max: float = 0.9
    unlabeled_threshold: float = 0.5       # unlabeled transitions with d below this get BC weight 0
    unlabeled: Literal["supplementary", "union"] = "supplementary"       # unlabeled set: supplementary (official: D_o excludes D_e) | union
    discriminator_every: int = 1           # update d every this many steps (SRA authors' copy: 100)
    hidden_dims: tuple[int, ...] = (256, 256)  # policy and discriminator MLPs
    lr: float = 1e-4                       # Adam, policy and discriminator
    weight_decay: float = 5e-3             # coupled L2 on the policy only, as the official code
    expert_batch_size: int = 256
    unlabeled_batch_size: int = 256


def log_prob_per_dim(actor: TanhGaussianActor, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """log pi(a_i | s) for every action dimension, shape (B, act_dim), tanh Jacobian included."""
    mu, log_std = actor(obs)
    # the shared log-prob sums over the last axis: a trailing singleton axis keeps the dimensions apart
    return tanh_gaussian_log_prob(mu.unsqueeze(-1), log_std.unsqueeze(-1), act.unsqueeze(-1))


def discriminate(discriminator: torch.nn.Module, obs, act, log_pi, d_min: float, d_max: float) -> torch.Tensor:
    """d(s, a, log pi) in [d_min, d_max], shape (B,); log pi enters detached."""
    logits = discriminator(torch.cat([obs, act, log_pi.detach()], dim=-1)).squeeze(-1)
    return torch.sigmoid(logits).clamp(d_min, d_max)


def discriminator_loss(d_expert: torch.Tensor, d_unlabeled: torch.Tensor, eta: float) -> torch.Tensor:
    """Positive-unlabeled loss: eta E_e[-log d + log(1 - d)] + E_o[-log(1 - d)]."""
    expert = -torch.log(d_expert) + torch.log(1 - d_expert)
    return eta * expert.mean() - torch.log(1 - d_unlabeled).mean()


def policy_loss(log_pi_expert, log_pi_unlabeled, d_expert, d_unlabeled, alpha: float, eta: float,
                threshold: float) -> torch.Tensor:
    """alpha BC on D^E, minus the d-weighted expert correction, plus d-weighted BC on the unlabeled data."""
    d_expert, d_unlabeled = d_expert.detach(), d_unlabeled.detach()
    d_unlabeled = torch.where(d_unlabeled < threshold, torch.zeros_like(d_unlabeled), d_unlabeled)
    nll_expert, nll_unlabeled = -log_pi_expert, -log_pi_unlabeled
    correction_expert = nll_expert * (eta / (d_expert * (1 - d_expert)) + 1)
    weighted_unlabeled = nll_unlabeled * (1 / (1 - d_unlabeled) - 1)
    return alpha * nll_expert.mean() - correction_expert.mean() + weighted_unlabeled.mean()


@register
class DWBC(Method):
    name = "dwbc"
    description = "Discriminator-weighted BC: a PU discriminator on (s, a, log pi) weights BC on D^E and D^S"
    Config = Config

    def __init__(self, task, data, config: Config, seed, device, num_steps):
        super().__init__(task, data, config, seed, device, num_steps)
        if config.unlabeled not in ("supplementary", "union"):
            raise ValueError(f"dwbc unlabeled must be 'supplementary' or 'union', got {config.unlabeled!r}")
        obs_dim, act_dim, hidden = task.obs_dim, task.act_dim, config.hidden_dims
        self.actor = TanhGaussianActor(obs_dim, act_dim, hidden).to(self.device)
        self.discriminator = mlp(obs_dim + 2 * act_dim, 1, hidden).to(self.device)
        self.actor_optimizer = adam(self.actor.parameters(), config.lr, config.weight_decay)
        self.discriminator_optimizer = adam(self.discriminator.parameters(), config.lr)
        unlabeled = data.supplementary if config.unlabeled == "supplementary" else data.union()
        self.sampler = MixtureSampler(
            {"expert": Source(data.expert, config.expert_batch_size),
             "unlabeled": Source(unlabeled, config.unlabeled_batch_size)},
            data.normalizer, seed, self.device)

    def update(self, step: int) -> dict[str, torch.Tensor]:
        c = self.config
        batch = self.sampler.sample()  # expert rows first, then unlabeled rows
        log_pi = log_prob_per_dim(self.actor, batch["obs"], batch["act"])
        d = discriminate(self.discriminator, batch["obs"], batch["act"], log_pi, c.d_min, c.d_max)
        n = c.expert_batch_size
        loss_d = discriminator_loss(d[:n], d[n:], c.eta)
        if (step + 1) % c.discriminator_every == 0:
            gradient_step(self.discriminator_optimizer, loss_d)
        log_pi = log_pi.sum(-1)
        loss_pi = policy_loss(log_pi[:n], log_pi[n:], d[:n], d[n:], c.alpha, c.eta, c.unlabeled_threshold)
        gradient_step(self.actor_optimizer, loss_pi)
        return {"loss/discriminator": loss_d.detach(), "loss/actor": loss_pi.detach(),
                "d/expert": d[:n].detach().mean(), "d/unlabeled": d[n:].detach().mean()}

    @torch.no_grad()
    def discriminator_scores(self, obs, act) -> torch.Tensor:
        """d(s, a, log pi(a|s)) for raw observations and actions (diagnostics, tests)."""
        obs_t = self.data.normalizer(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        act_t = torch.as_tensor(act, dtype=torch.float32, device=self.device)
        log_pi = log_prob_per_dim(self.actor, obs_t, act_t)
        return discriminate(self.discriminator, obs_t, act_t, log_pi, self.config.d_min, self.config.d_max)

    def act(self, obs):
        return act_numpy(self.actor, self.data.normalizer, obs, self.device)

    def parts(self) -> dict:
        return {"actor": self.actor, "discriminator": self.discriminator, "actor_optimizer": self.actor_optimizer,
                "discriminator_optimizer": self.discriminator_optimizer, "sampler": self.sampler}
