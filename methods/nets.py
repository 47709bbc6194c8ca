"""Shared networks: MLP, deterministic and tanh-Gaussian actors, and the optimizer factory."""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from torch import nn

ACTION_CLIP = 1.0 - 1e-7  # actions are clipped inside log-probs so atanh stays finite


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256), activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), activation()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class DeterministicActor(nn.Module):
    """a = tanh(MLP(s)): actions inside (-1, 1)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.net = mlp(obs_dim, act_dim, hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)


class TanhGaussianActor(nn.Module):
    """a = tanh(u), u ~ N(mu(s), sigma(s)); state-dependent log-std clamped to [log_std_min, log_std_max]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 log_std_min: float = -5.0, log_std_max: float = 2.0, mean_clip: float = 9.0):
        super().__init__()
        self.trunk = mlp(obs_dim, 2 * act_dim, hidden)
        self.log_std_min, self.log_std_max, self.mean_clip = log_std_min, log_std_max, mean_clip

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.trunk(obs).chunk(2, dim=-1)
        return mu.clamp(-self.mean_clip, self.mean_clip), log_std.clamp(self.log_std_min, self.log_std_max)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(a | s) summed over action dims, tanh Jacobian included."""
        mu, log_std = self(obs)
        return tanh_gaussian_log_prob(mu, log_std, action)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized sample and its log-probability."""
        mu, log_std = self(obs)
        u = mu + log_std.exp() * torch.randn_like(mu)
        log_prob = _gaussian_log_prob(mu, log_std, u) - _tanh_log_det(u)
        return torch.tanh(u), log_prob

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(obs)[0])


def _gaussian_log_prob(mu: torch.Tensor, log_std: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return (-0.5 * ((u - mu) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def _tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """log |d tanh(u) / du| summed over dims, in the numerically stable form."""
    return (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)


def tanh_gaussian_log_prob(mu: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    u = torch.atanh(action.clamp(-ACTION_CLIP, ACTION_CLIP))
    return _gaussian_log_prob(mu, log_std, u) - _tanh_log_det(u)


def adam(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel for all parameters; ~10% faster per update on CPU here)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)


class EnsembleLinear(nn.Module):
    """N independent linear layers applied as one batched matmul: (N, B, in) -> (N, B, out).

    A 2-d input (B, in) is shared by all members (broadcast, no copy)."""

    def __init__(self, in_dim: int, out_dim: int, num_members: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_dim))
        bound = 1 / math.sqrt(in_dim)  # nn.Linear's default init, per member
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return torch.matmul(x, self.weight) + self.bias
        return torch.baddbmm(self.bias, x, self.weight)


def ensemble_mlp(in_dim: int, out_dim: int, num_members: int, hidden: Sequence[int] = (256, 256),
                 activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [EnsembleLinear(in_dim, width, num_members), activation()]
        in_dim = width
    layers.append(EnsembleLinear(in_dim, out_dim, num_members))
    return nn.Sequential(*layers)


class EnsembleCritic(nn.Module):
    """N Q-functions Q_k(s, a) as one batched module (twin critics: N = 2; SAC-N: N = 10..500)."""

    def __init__(self, obs_dim: int, act_dim: int, num_critics: int = 2, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.num_critics = num_critics
        self.net = ensemble_mlp(obs_dim + act_dim, 1, num_critics, hidden)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q values, shape (N, B)."""
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


class ValueFunction(nn.Module):
    def __init__(self, obs_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.net = mlp(obs_dim, 1, hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A target network: a copy that takes no gradients."""
    import copy
    return copy.deepcopy(module).requires_grad_(False)


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau source, in one multi-tensor kernel."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)
