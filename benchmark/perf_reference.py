"""A plain single-file IQL in the style of CORL's ``algorithms/offline/iql.py`` (tinkoff-ai/CORL).

It exists only as the speed baseline for ``bench perf``: nothing trains with it and nothing else imports it.
It mirrors CORL's structure and per-step work, with the same sizes as our IQL (2x256 ReLU, expectile 0.7,
beta 3, advantage weights clamped at 100, tau 0.005, batch 256 chosen by the caller):

* ``TwinQ``: two independent MLPs over cat(s, a); the minimum of the two is Q.
* ``ValueFunction``: one MLP.
* ``GaussianPolicy``: MLP mean with a tanh output, a state-independent ``log_std`` parameter (clamped to
  [-20, 2]) and a ``torch.distributions.Normal``.
* three ``torch.optim.Adam`` with default settings (no fused/foreach choice), cosine LR schedule on the actor.
* every loss goes into a log dict through ``.item()`` each step, as CORL does for wandb.
* soft update as a Python loop over parameters.
* ``ReplayBuffer``: the dataset as tensors on the device, batches by ``np.random.randint`` and indexing.

No artificial slowdowns: the work per update is what CORL's ``ImplicitQLearning.train`` does.
"""
from __future__ import annotations

import copy
from typing import Dict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal
from torch.optim.lr_scheduler import CosineAnnealingLR

EXP_ADV_MAX = 100.0
LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    for target_param, source_param in zip(target.parameters(), source.parameters()):
        target_param.data.copy_((1 - tau) * target_param.data + tau * source_param.data)


def asymmetric_l2_loss(u: torch.Tensor, tau: float) -> torch.Tensor:
    return torch.mean(torch.abs(tau - (u < 0).float()) * u ** 2)


class ReplayBuffer:
    """CORL's ``ReplayBuffer`` once loaded: five tensors on the device, rewards and dones as (N, 1)."""

    def __init__(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_states: np.ndarray,
                 dones: np.ndarray, device: torch.device | str = "cpu"):
        def tensor(data: np.ndarray) -> torch.Tensor:
            return torch.tensor(data, dtype=torch.float32, device=device)
        self._states, self._actions = tensor(states), tensor(actions)
        self._rewards, self._dones = tensor(rewards[..., None]), tensor(dones[..., None])
        self._next_states = tensor(next_states)
        self._size = self._pointer = len(states)

    def sample(self, batch_size: int) -> list[torch.Tensor]:
        indices = np.random.randint(0, min(self._size, self._pointer), size=batch_size)
        return [self._states[indices], self._actions[indices], self._rewards[indices], self._next_states[indices],
                self._dones[indices]]


class Squeeze(nn.Module):
    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(dim=self.dim)


class MLP(nn.Module):
    def __init__(self, dims, output_activation_fn=None, squeeze_output: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(len(dims) - 2):
            layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
        layers.append(nn.Linear(dims[-2], dims[-1]))
        if output_activation_fn is not None:
            layers.append(output_activation_fn())
        if squeeze_output:
            layers.append(Squeeze(-1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GaussianPolicy(nn.Module):
    def __init__(self, state_dim: int, act_dim: int, hidden_dim: int = 256, n_hidden: int = 2):
        super().__init__()
        self.net = MLP([state_dim, *([hidden_dim] * n_hidden), act_dim], output_activation_fn=nn.Tanh)
        self.log_std = nn.Parameter(torch.zeros(act_dim, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> Normal:
        mean = self.net(obs)
        std = torch.exp(self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX))
        return Normal(mean, std)


class TwinQ(nn.Module):
    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int = 256, n_hidden: int = 2):
        super().__init__()
        dims = [state_dim + action_dim, *([hidden_dim] * n_hidden), 1]
        self.q1 = MLP(dims, squeeze_output=True)
        self.q2 = MLP(dims, squeeze_output=True)

    def both(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sa = torch.cat([state, action], 1)
        return self.q1(sa), self.q2(sa)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.min(*self.both(state, action))


class ValueFunction(nn.Module):
    def __init__(self, state_dim: int, hidden_dim: int = 256, n_hidden: int = 2):
        super().__init__()
        self.v = MLP([state_dim, *([hidden_dim] * n_hidden), 1], squeeze_output=True)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.v(state)


class ReferenceIQL:
    """CORL's ``ImplicitQLearning``: V, then Q (and its target), then the actor, one batch per ``train``."""

    def __init__(self, state_dim: int, action_dim: int, device: torch.device | str = "cpu", max_steps: int = 1_000_000,
                 iql_tau: float = 0.7, beta: float = 3.0, discount: float = 0.99, tau: float = 0.005,
                 lr: float = 3e-4):
        self.qf = TwinQ(state_dim, action_dim).to(device)
        self.q_target = copy.deepcopy(self.qf).requires_grad_(False).to(device)
        self.vf = ValueFunction(state_dim).to(device)
        self.actor = GaussianPolicy(state_dim, action_dim).to(device)
        self.v_optimizer = torch.optim.Adam(self.vf.parameters(), lr=lr)
        self.q_optimizer = torch.optim.Adam(self.qf.parameters(), lr=lr)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=lr)
        self.actor_lr_schedule = CosineAnnealingLR(self.actor_optimizer, max_steps)
        self.iql_tau, self.beta, self.discount, self.tau = iql_tau, beta, discount, tau
        self.total_it = 0

    def _update_v(self, observations, actions, log_dict) -> torch.Tensor:
        with torch.no_grad():
            target_q = self.q_target(observations, actions)
        v = self.vf(observations)
        adv = target_q - v
        v_loss = asymmetric_l2_loss(adv, self.iql_tau)
        log_dict["value_loss"] = v_loss.item()
        self.v_optimizer.zero_grad()
        v_loss.backward()
        self.v_optimizer.step()
        return adv

    def _update_q(self, next_v, observations, actions, rewards, terminals, log_dict) -> None:
        targets = rewards + (1.0 - terminals.float()) * self.discount * next_v.detach()
        qs = self.qf.both(observations, actions)
        q_loss = sum(F.mse_loss(q, targets) for q in qs) / len(qs)
        log_dict["q_loss"] = q_loss.item()
        self.q_optimizer.zero_grad()
        q_loss.backward()
        self.q_optimizer.step()
        soft_update(self.q_target, self.qf, self.tau)

    def _update_policy(self, adv, observations, actions, log_dict) -> None:
        exp_adv = torch.exp(self.beta * adv.detach()).clamp(max=EXP_ADV_MAX)
        policy_out = self.actor(observations)
        bc_losses = -policy_out.log_prob(actions).sum(-1, keepdim=False)
        policy_loss = torch.mean(exp_adv * bc_losses)
        log_dict["actor_loss"] = policy_loss.item()
        self.actor_optimizer.zero_grad()
        policy_loss.backward()
        self.actor_optimizer.step()
        self.actor_lr_schedule.step()

    def train(self, batch: list[torch.Tensor]) -> Dict[str, float]:
        """``batch`` = [states, actions, rewards (B, 1), next_states, dones (B, 1)], as CORL's replay buffer."""
        self.total_it += 1
        observations, actions, rewards, next_observations, dones = batch
        log_dict: Dict[str, float] = {}
        with torch.no_grad():
            next_v = self.vf(next_observations)
        adv = self._update_v(observations, actions, log_dict)
        rewards = rewards.squeeze(dim=-1)
        dones = dones.squeeze(dim=-1)
        self._update_q(next_v, observations, actions, rewards, dones, log_dict)
        self._update_policy(adv, observations, actions, log_dict)
        return log_dict
