"""Dynamics-model ensembles, forward or reverse, deterministic or Gaussian, batched over members.

One block serves SRA (reverse, 7 deterministic 2x1024 members, SGD, no holdout), ROMI (reverse Gaussian,
7 members / 5 elites, holdout early stopping) and MILO/CLARE (forward Gaussian with elites).
Inputs are (normalized s_in, raw a); the target is the raw state change s_out - s_in, where
forward: s_in = s, s_out = s'  and  reverse: s_in = s', s_out = s.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from methods.data import Normalizer, Transitions
from methods.nets import ensemble_mlp


@dataclass(frozen=True)
class DynamicsConfig:
    num_members: int = 7
    num_elites: int | None = None    # members used for prediction, best on holdout (None: all)
    hidden_dims: tuple[int, ...] = (1024, 1024)
    gaussian: bool = False           # predict a diagonal Gaussian (NLL loss) instead of the mean (MSE)
    optimizer: str = "sgd"           # sgd (Nesterov, momentum 0.9: SRA's) | adam (ROMI/MOPO's)
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0           # max grad norm (0: off)
    batch_size: int = 256
    epochs: int = 20                 # passes over the training data ...
    max_steps: int = 0               # ... capped at this many gradient steps (0: no cap; profiles set it)
    holdout_ratio: float = 0.0       # held-out share for early stopping and elite selection (0: none)
    patience: int = 5                # epochs without holdout improvement before stopping


def model_loss(mean: torch.Tensor, log_var: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
    """Per-member loss summed over members: MSE, or Gaussian NLL (up to a constant) when log_var is given."""
    if log_var is None:
        return (mean - target).pow(2).mean(dim=(1, 2)).sum()
    return (((mean - target).pow(2) * torch.exp(-log_var)) + log_var).mean(dim=(1, 2)).sum()


class DynamicsEnsemble(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, config: DynamicsConfig, normalizer: Normalizer,
                 direction: str = "reverse"):
        super().__init__()
        if direction not in ("forward", "reverse"):
            raise ValueError(f"direction must be 'forward' or 'reverse', got {direction!r}")
        self.config, self.normalizer, self.direction, self.obs_dim = config, normalizer, direction, obs_dim
        out = 2 * obs_dim if config.gaussian else obs_dim
        self.net = ensemble_mlp(obs_dim + act_dim, out, config.num_members, config.hidden_dims)
        self.register_buffer("elites", torch.arange(config.num_elites or config.num_members))
        self.max_log_var = nn.Parameter(torch.full((obs_dim,), 0.5), requires_grad=config.gaussian)
        self.min_log_var = nn.Parameter(torch.full((obs_dim,), -10.0), requires_grad=config.gaussian)

    def forward(self, obs_in: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log_var) of the state change for every member, shape (N, B, obs_dim); raw obs_in."""
        out = self.net(torch.cat([self.normalizer(obs_in), act], dim=-1))
        if not self.config.gaussian:
            return out, None
        mean, log_var = out.chunk(2, dim=-1)
        log_var = self.max_log_var - nn.functional.softplus(self.max_log_var - log_var)  # soft clamp (PETS)
        return mean, self.min_log_var + nn.functional.softplus(log_var - self.min_log_var)

    def _pairs(self, data: Transitions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s_in, s_out = ((data.observations, data.next_observations) if self.direction == "forward"
                       else (data.next_observations, data.observations))
        return s_in, data.actions, (s_out - s_in).astype(np.float32)

    def fit(self, data: Transitions, seed: int, progress: Callable = lambda x, **_: x) -> dict[str, float]:
        """Train every member on ``data`` (each on its own shuffles); pick elites on the holdout if any."""
        c, device = self.config, self.max_log_var.device
        gen = torch.Generator(device="cpu").manual_seed(seed)
        s_in, act, target = (torch.as_tensor(x, device=device) for x in self._pairs(data))
        order = torch.randperm(len(act), generator=gen).to(device)
        n_hold = int(len(act) * c.holdout_ratio)
        hold, train = order[:n_hold], order[n_hold:]
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = (torch.optim.SGD(params, lr=c.lr, momentum=0.9, nesterov=True, weight_decay=c.weight_decay)
                     if c.optimizer == "sgd" else torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay))
        steps_per_epoch = max(1, len(train) // c.batch_size)
        total = steps_per_epoch * c.epochs if not c.max_steps else min(c.max_steps, steps_per_epoch * c.epochs)
        best, stale, loss = np.full(c.num_members, np.inf), 0, torch.zeros(())
        for step in progress(range(total), desc=f"{self.direction} model", total=total):
            # each member draws its own minibatch: (N, B) indices
            idx = train[torch.randint(len(train), (c.num_members, c.batch_size), generator=gen).to(device)]
            mean, log_var = self(s_in[idx], act[idx])
            loss = model_loss(mean, log_var, target[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if c.grad_clip:
                nn.utils.clip_grad_norm_(params, c.grad_clip)
            optimizer.step()
            if n_hold and (step + 1) % steps_per_epoch == 0:
                errors = self.holdout_errors(s_in[hold], act[hold], target[hold])
                improved = errors < best * (1 - 1e-4)  # relative improvement (errors are >= 0)
                best = np.where(improved, errors, best)
                stale = 0 if improved.any() else stale + 1
                if stale >= c.patience:
                    break
        if n_hold:
            self.elites.copy_(torch.as_tensor(np.argsort(best)[: len(self.elites)], device=device))
        return {"model/train_loss": float(loss.detach()) / c.num_members,
                "model/holdout_mse": float(np.mean(best[self.elites.cpu().numpy()])) if n_hold else float("nan")}

    @torch.no_grad()
    def holdout_errors(self, s_in, act, target, chunk: int = 65536) -> np.ndarray:
        sq = torch.zeros(self.config.num_members, device=s_in.device)
        for start in range(0, len(act), chunk):
            mean, _ = self(s_in[start:start + chunk], act[start:start + chunk])
            sq += (mean - target[start:start + chunk]).pow(2).mean(-1).sum(-1)
        return (sq / max(len(act), 1)).cpu().numpy()

    @torch.no_grad()
    def step(self, obs_in: torch.Tensor, act: torch.Tensor, generator: torch.Generator | None = None,
             sample: bool = False) -> torch.Tensor:
        """The predicted other end of a transition (raw states).

        ``sample=False``: mean change over the elites (SRA). ``sample=True``: per row, a random elite and
        a draw from its Gaussian (ROMI/MOPO-style rollouts)."""
        mean, log_var = self(obs_in, act)
        mean = mean[self.elites]
        if not sample:
            return obs_in + mean.mean(0)
        rows = torch.arange(len(act), device=act.device)
        pick = torch.randint(len(self.elites), (len(act),), generator=generator, device=act.device)
        delta = mean[pick, rows]
        if log_var is not None:
            std = torch.exp(0.5 * log_var[self.elites][pick, rows])
            delta = delta + std * torch.randn(delta.shape, generator=generator, device=act.device)
        return obs_in + delta
