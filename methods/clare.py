"""CLARE (Yue, Wang, Zhang; "CLARE: Conservative Model-Based Reward Learning for Offline Inverse Reinforcement
Learning", ICLR 2023; official code shaunyue/clare).

A forward dynamics ensemble (7 members, 5 elites) is the simulator. Each (s, a) of D^E u D^S gets a weight from the
model's uncertainty u(s, a) (the largest norm of an elite's predicted std, over its maximum on the data): rows the
model knows (u < 0.5) get one positive weight (N / N_E) x (number of unknown expert rows) / (number of known rows),
expert rows it does not know get -N / N_E, the rest 0 (the official "CLARE regularization" form), and
Z = 1 + mean weight. The reward r(s, a) (4x256 swish) minimizes
    Z E_rollouts[r] - E_{D^E u D^S}[weight r] - E_{D^E}[r] + Z mean(r^2 over the rollout and data rows)
and alternates with SAC in the model: every 20 updates the policy rolls out 5000 expert states for 5 steps (a
random elite and its noise per step; each rollout's first step is not kept, as in the official code) into a
25k buffer, the rows carrying r(s, a) at that time; SAC (twin critics) trains on them with a BC regularizer,
0.25 x NLL of expert (s, a). The reward takes 5 Adam steps (batches of 5000 from a replay of rollout rows, from the
weighted data and from D^E) after 400 updates, then every 10k (the official 20-epoch first iteration, then 500).

As in the official code, the critic regresses the immediate reward: its target r + gamma * done * V(s') (a mask
that reads ``done`` where SAC has 1 - done) is r alone, ``done`` being 0 in model data; we get the same with
``learner.gamma = 0`` (``--set clare.learner.gamma=0.99`` bootstraps instead: on maze2d-umaze quick, seed 0, it
scored -1.5 at the end against 7.0, peaking at 38 against 71).

Deviations from the official code: the shared Gaussian ensemble (4x200 swish, MOPO's per-layer decay, also
MILO's, so both share one cached model) instead of 4x256 with one decay of 7.5e-5; z-scored states as inputs;
the shared SAC networks (ReLU, tanh-Gaussian actor with clamped log-std) instead of swish ones; the schedule
runs on for the profile's learner steps instead of stopping after 10 iterations.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from core.seeding import stream_seed
from methods.base import Method, act_numpy
from methods.dynamics import (GAUSSIAN, GAUSSIAN_QUICK, GAUSSIAN_SMOKE, DynamicsConfig, DynamicsEnsemble,
                              ReportsModelFit, rollout)
from methods.learners import SACNConfig, build_learner
from methods.nets import adam, gradient_step, mlp
from methods.registry import register
from methods.sampling import RolloutBuffer, random_rows


@dataclass(frozen=True)
class Config:
    uncertainty: Literal["aleatoric", "disagreement"] = "aleatoric"       # aleatoric (largest std norm of an elite) | disagreement (between elites)
    threshold: float = 0.5               # rows whose normalized uncertainty is below this count as known
    reward_hidden_dims: tuple[int, ...] = (256, 256, 256, 256)
    reward_lr: float = 5e-5
    reward_weight_decay: float = 1e-5
    regularizer_weight: float = 1.0      # weight of Z x mean r^2
    reward_batch_size: int = 5000        # rows per term per reward step
    reward_steps: int = 5                # Adam steps per reward update
    first_reward_update: int = 400       # learner updates before the first reward update ...
    reward_every: int = 10_000           # ... then one every this many
    replay_samples: int = 25_000         # rollout rows copied into the reward's replay at each reward update
    replay_size: int = 1_200_000
    rollout_batch: int = 5000            # expert start states per rollout
    horizon: int = 5                     # model steps per rollout
    rollout_every: int = 20              # learner updates between rollouts
    buffer_size: int = 25_000            # newest rollout rows kept for SAC
    batch_size: int = 256                # rollout rows per SAC update
    bc_batch_size: int = 256             # expert rows per SAC update for the BC regularizer
    model: DynamicsConfig = field(default_factory=lambda: GAUSSIAN)
    # twin-critic SAC + BC 0.25; gamma 0: the official critic target is the reward alone (see the docstring)
    learner: SACNConfig = field(default_factory=lambda: SACNConfig(num_critics=2, hidden_dims=(256, 256), gamma=0.0,
                                                                   bc_weight=0.25))


def data_weights(u: torch.Tensor, expert: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row weights of D^E u D^S from uncertainties in [0, 1] (``expert`` flags the D^E rows), and Z."""
    n, n_expert = len(u), expert.sum()
    known, unknown_expert = u < threshold, expert & (u > threshold)
    positive = (n / n_expert) * unknown_expert.sum() / known.sum().clamp(min=1)
    weights = torch.where(known, positive, torch.zeros_like(u))
    weights[unknown_expert] = -n / n_expert
    return weights, 1 + weights.mean()


def reward_loss(reward: nn.Module, model_sa, data_sa, data_weight, expert_sa, z, regularizer_weight: float):
    """Z E_model[r] - E_data[w r] - E_expert[r] + lambda Z mean(r^2 over model and data rows)."""
    r_model, r_data, r_expert = (reward(x).squeeze(-1) for x in (model_sa, data_sa, expert_sa))
    penalty = torch.cat([r_model, r_data]).pow(2).mean()
    return z * r_model.mean() - (data_weight * r_data).mean() - r_expert.mean() + regularizer_weight * z * penalty


@register
class CLARE(ReportsModelFit, Method):
    name = "clare"
    description = "Conservative model-based reward learning (uncertainty-weighted data), SAC + BC in the model"
    Config = Config
    # quick: 2k starts every 50 updates (official: 5k every 20); ~10 reward updates in 20k steps (official: 10)
    budgets = {"smoke": {"model": GAUSSIAN_SMOKE, "learner": {"hidden_dims": [64, 64]}, "reward_hidden_dims": [64, 64],
                         "rollout_batch": 200, "rollout_every": 20, "first_reward_update": 20, "reward_every": 100,
                         "reward_batch_size": 256, "replay_samples": 1_000, "replay_size": 20_000},
               "quick": {"model": GAUSSIAN_QUICK, "rollout_batch": 2_000, "rollout_every": 50, "reward_every": 2_000}}
    state_values = ("data_weight", "z", "model_info")
    phases = ("model", "rollouts", "reward")

    def __init__(self, task, data, config: Config, seed, device, num_steps):
        super().__init__(task, data, config, seed, device, num_steps)
        if config.first_reward_update < 1:
            raise ValueError("first_reward_update must be >= 1: the reward learns from rollouts made before it")
        obs_dim, act_dim, norm = task.obs_dim, task.act_dim, data.normalizer
        self.learner = build_learner(config.learner, task, self.device)
        self.model = DynamicsEnsemble(obs_dim, act_dim, config.model, norm, "forward").to(self.device)
        self.reward = mlp(obs_dim + act_dim, 1, config.reward_hidden_dims, nn.SiLU).to(self.device)
        self.reward_optimizer = adam(self.reward.parameters(), config.reward_lr, config.reward_weight_decay)
        self.generator = torch.Generator(device=self.device).manual_seed(stream_seed(seed, "rollouts"))
        tensor = lambda x: torch.as_tensor(x, device=self.device)  # noqa: E731
        union = data.union()
        self.expert_obs = tensor(data.expert.observations)
        self.expert_sa = torch.cat([norm(self.expert_obs), tensor(data.expert.actions)], -1)
        self.data_sa = torch.cat([norm(tensor(union.observations)), tensor(union.actions)], -1)
        self.data_weight, self.z = torch.zeros(len(union), device=self.device), torch.ones((), device=self.device)
        self.buffer = RolloutBuffer(config.buffer_size, {"obs": obs_dim, "act": act_dim, "next_obs": obs_dim,
                                                         "done": 0, "reward": 0}, norm, self.device)
        self.replay = RolloutBuffer(config.replay_size, {"sa": obs_dim + act_dim}, norm, self.device)
        self.model_info: dict[str, float] = {}

    def parts(self) -> dict:
        return {"learner": self.learner, "model": self.model, "reward": self.reward,
                "reward_optimizer": self.reward_optimizer, "buffer": self.buffer, "replay": self.replay,
                "generator": self.generator}

    def pretrain(self, progress) -> dict[str, float]:
        with self.timer("model"):
            union = self.data.union()
            self.model_info = self.model.fit_cached(union, self.seed, progress)
            u = self.model.uncertainty(union.observations, union.actions, self.config.uncertainty)
            expert = torch.arange(len(union), device=self.device) < len(self.data.expert)
            u = u / u.max().clamp(min=1e-8)
            self.data_weight, self.z = data_weights(u, expert, self.config.threshold)
            known = float((u < self.config.threshold).float().mean())
            self.model_info.update({"clare/z": float(self.z), "clare/known": known})
        return dict(self.model_info)

    @torch.no_grad()
    def collect(self) -> None:
        """A model rollout of the current policy from expert states; rows carry the current reward."""
        c, norm = self.config, self.data.normalizer
        policy = lambda s: self.learner.actor.sample(norm(s), self.generator)[0]  # noqa: E731
        starts = random_rows(self.expert_obs, c.rollout_batch, self.generator)
        out = rollout(self.model, policy, starts, c.horizon, self.generator, self.task.termination)
        if c.horizon > 1:
            keep = torch.nonzero(out["step"] > 0).squeeze(1)  # one host sync, not one per field
            out = {k: v.index_select(0, keep) for k, v in out.items()}
        reward = self.reward(torch.cat([norm(out["obs"]), out["act"]], -1)).squeeze(-1)
        self.buffer.add(obs=out["obs"], act=out["act"], next_obs=out["next_obs"], done=out["done"], reward=reward)

    def reward_update(self) -> dict[str, torch.Tensor]:
        c = self.config
        rows = self.buffer.sample(c.replay_samples, self.generator)
        self.replay.add(sa=torch.cat([rows["obs"], rows["act"]], -1))
        loss = torch.zeros((), device=self.device)
        for _ in range(c.reward_steps):
            data_idx = torch.randint(len(self.data_sa), (c.reward_batch_size,), generator=self.generator,
                                     device=self.device)
            policy_sa = self.replay.sample(c.reward_batch_size, self.generator)["sa"]  # drawn before the expert rows
            expert = random_rows(self.expert_sa, c.reward_batch_size, self.generator)
            loss = reward_loss(self.reward, policy_sa, self.data_sa[data_idx], self.data_weight[data_idx], expert,
                               self.z, c.regularizer_weight)
            gradient_step(self.reward_optimizer, loss)
        return {"loss/reward": loss.detach()}

    def update(self, step: int) -> dict[str, float]:
        c, metrics = self.config, {}
        if step >= c.first_reward_update and (step - c.first_reward_update) % c.reward_every == 0:
            with self.timer("reward"):
                metrics = self.reward_update()
        if step % c.rollout_every == 0:
            with self.timer("rollouts"):
                self.collect()
        batch = self.buffer.sample(c.batch_size, self.generator)
        expert = random_rows(self.expert_sa, c.bc_batch_size, self.generator)
        batch["bc_obs"], batch["bc_act"] = expert.split([self.task.obs_dim, self.task.act_dim], -1)
        return {**self.learner.update(batch), **metrics, "clare/reward_model": batch["reward"].mean()}

    @torch.no_grad()
    def rewards(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The learned reward of raw (s, a)."""
        return self.reward(torch.cat([self.data.normalizer(obs), act], -1)).squeeze(-1)

    def act(self, obs):
        return act_numpy(self.learner, self.data.normalizer, obs, self.device)
