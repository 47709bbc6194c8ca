"""Behaviour policies for reverse rollouts: a CVAE p(a | s) (BCQ-style) and the uniform policy.

SRA/ROMI condition on the *next* state s' to propose the action that led into it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from methods.nets import adam, gradient_step, mlp


@dataclass(frozen=True)
class CVAEConfig:
    hidden_dims: tuple[int, ...] = (750, 750)
    latent_factor: int = 2       # latent dim = latent_factor * |A|
    kl_weight: float = 0.5
    lr: float = 1e-3
    batch_size: int = 256
    num_steps: int = 200_000     # SRA 2e5 (ROMI 5e5 at batch 100)
    latent_clip: float = 0.5     # sampling draws z ~ N(0, I) clipped to +-this


class CVAE(nn.Module):
    def __init__(self, cond_dim: int, act_dim: int, config: CVAEConfig):
        super().__init__()
        self.config, self.latent_dim = config, config.latent_factor * act_dim
        self.encoder = mlp(cond_dim + act_dim, 2 * self.latent_dim, config.hidden_dims)
        self.decoder = mlp(cond_dim + self.latent_dim, act_dim, config.hidden_dims)

    def loss(self, cond: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        mu, log_std = self.encoder(torch.cat([cond, act], -1)).chunk(2, -1)
        log_std = log_std.clamp(-4, 15)
        z = mu + log_std.exp() * torch.randn_like(mu)
        recon = torch.tanh(self.decoder(torch.cat([cond, z], -1)))
        kl = -0.5 * (1 + 2 * log_std - mu.pow(2) - (2 * log_std).exp()).mean()
        return (recon - act).pow(2).mean() + self.config.kl_weight * kl

    def fit(self, cond: torch.Tensor, act: torch.Tensor, generator: torch.Generator,
            progress: Callable = lambda x, **_: x) -> float:
        optimizer = adam(self.parameters(), self.config.lr)
        loss = torch.zeros(())
        for _ in progress(range(self.config.num_steps), desc="reverse policy (CVAE)", total=self.config.num_steps):
            idx = torch.randint(len(act), (self.config.batch_size,), generator=generator, device=act.device)
            loss = self.loss(cond[idx], act[idx])
            gradient_step(optimizer, loss)
        return float(loss.detach())

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator | None = None, chunk: int = 65536) -> torch.Tensor:
        """Actions for each row of ``cond``; decoded ``chunk`` rows at a time (SRA's paper-budget rounds sample
        over a million), with every latent drawn up front so the chunking does not change the numbers."""
        z = torch.randn((len(cond), self.latent_dim), generator=generator, device=cond.device)
        z = z.clamp(-self.config.latent_clip, self.config.latent_clip)
        return torch.cat([torch.tanh(self.decoder(torch.cat([c, zc], -1)))
                          for c, zc in zip(cond.split(chunk), z.split(chunk))])


def uniform_actions(count: int, act_dim: int, generator: torch.Generator, device) -> torch.Tensor:
    """U(-1, 1)^|A|: SRA's and ROMI's reverse policy on maze2d and hopper."""
    return torch.rand((count, act_dim), generator=generator, device=device) * 2 - 1
