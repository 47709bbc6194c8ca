"""MILO (Chang, Uehara, Sreenivas, Kidambi, Sun; "Mitigating Covariate Shift in Imitation Learning via Offline Data
With Partial Coverage", NeurIPS 2021; official code jdchang1/milo), with SAC in the model as the SRA authors ran it.

A forward dynamics ensemble trained on D^E u D^S is the simulator. The cost is the MMD witness over random Fourier
features phi(s, a) (512 dims, Gaussian kernel whose bandwidth is the 0.2 quantile of distances between data
pairs): c(s, a) = clip(phi(s, a) . w, -1, 0), w = mean phi(the policy's model rollouts) - mean phi(D^E) scaled to
unit norm, refit after every rollout. The reward is r = -(1 - lambda_b) c(s, a) - lambda_b u(s, a), u the
ensemble's disagreement (largest distance between two elites' predicted next states) over its maximum on
D^E u D^S, clipped to 1 (lambda_b = 0.1). The policy starts from BC on D^E u D^S, then SAC (twin critics, plus
a BC regularizer 5 x NLL of expert (s, a), the SRA authors' NLL + 0.2 x SAC loss, and a fixed entropy temperature
0.01) trains on model rollouts from expert states; rewards are computed when a batch is drawn (the MMD part with
the current w, the disagreement part stored with each transition: the model is fixed). Methods never see dataset rewards. ``expert_start_fraction``
< 1 starts that share of rollouts from D^S states instead (w is still fit on the expert-started ones).

Deviations from the official code: SAC on short rollouts (h 5, 5000 starts every 250 updates, a 100k replay
buffer) instead of TRPO on full model episodes (SAC, h 5 and 5000 expert starts are the SRA authors' choice;
our refresh every 250 updates (theirs: 20) and 100k buffer (theirs: 1e6) are ours);
w has unit norm (the IPM witness over the RKHS unit ball: SAC, unlike TRPO with whitened advantages, needs
rewards on a fixed scale; unnormalized, the cost spans ~0.01 across the data and shrinks with the MMD);
the bandwidth comes from pairs of D^E u D^S rows (``bandwidth_data="expert"``: the official expert pairs; on
maze2d the expert parks at the goal, most expert pairs coincide and that quantile is ~1e-6); the shared
Gaussian ensemble (7 members, 5 elites, also CLARE's, so both share one cached model) instead of 4
deterministic 2x1024 MLPs trained on D^S only, rollouts sampling a random elite plus its noise; features of
z-scored states; Gaussian RFF frequencies N(0, 1/bw^2) (the random features of a Gaussian kernel; the official
code draws them uniform on [0, 1/bw]); the BC warm start trains the SAC actor by NLL (official: 1-3 epochs at
batch 64 on the offline data, then a fixed log-std reset); ``bc_data="expert"`` warm-starts on D^E only (an
option, not the official recipe: on maze2d the union's BC is a poor start, its D^S driving to other goals);
SAC's temperature is fixed at 0.01 (the SRA authors' SAC tunes it from 1; official MILO has no entropy bonus: TRPO
with 0.1 x log-likelihood next to whitened advantages). Tuned from 1 towards entropy -|A|, the temperature undoes
the warm start within ~500 updates: the warm-started policy's entropy is ~-10, the entropy term widens it and pulls
its mean to 0 (maze2d medium quick, seed 0: greedy action error on D^E 0.06 -> 0.47 after 500 updates, score
47 -> -1.9; as much without the Q term). A BC weight that holds the entropy down makes the temperature climb without
bound instead, the soft Q values with it (bc_weight 1: -1.9 from 2k on; bc_weight 5: 1 -> 2.3 in 3k updates).
With 0.1 x NLL and the fixed temperature, the Q term drifts the policy off (19 to 68 at 2k-12k, then 3). Fixed 0.01 with bc_weight 5, quick
profile, seed 0, union warm start: medium-sparse 98.2, umaze-sparse 84.6 (bc_weight 1: 77.9 on medium).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

from core.seeding import stream_seed
from methods.base import Method, act_numpy
from methods.dynamics import (GAUSSIAN, GAUSSIAN_QUICK, GAUSSIAN_SMOKE, DynamicsConfig, DynamicsEnsemble,
                              ReportsModelFit, rollout)
from methods.learners import SACNConfig, build_learner
from methods.nets import adam, gradient_step
from methods.registry import register
from methods.sampling import RolloutBuffer, UniformSampler, random_rows


@dataclass(frozen=True)
class Config:
    feature_dim: int = 512              # random Fourier features of (s, a)
    bandwidth_quantile: float = 0.2     # kernel bandwidth = this quantile of distances between pairs of ...
    bandwidth_data: Literal["union", "expert"] = "union"       # ... D^E u D^S rows (union) or D^E rows (expert: official)
    bandwidth_pairs: int = 100_000      # pairs drawn to estimate it
    lambda_b: float = 0.1               # weight of the disagreement penalty (1 - lambda_b weighs the MMD cost)
    rollout_batch: int = 5000           # start states per model rollout ...
    expert_start_fraction: float = 1.0  # ... this share from D^E (official: all), the rest from D^S
    horizon: int = 5                    # model steps per rollout
    rollout_every: int = 250            # learner updates between rollouts (w is refit after each)
    buffer_size: int = 100_000          # newest model transitions kept for SAC
    batch_size: int = 256               # model transitions per SAC update
    bc_steps: int = 20_000              # BC warm start updates (NLL of the SAC actor) ...
    bc_data: Literal["union", "expert"] = "union"              # ... on D^E u D^S (union: official, the offline data) or D^E (expert)
    bc_batch_size: int = 256            # warm start batches, and expert rows per SAC update for learner.bc_weight
    bc_lr: float = 1e-3
    model: DynamicsConfig = field(default_factory=lambda: GAUSSIAN)
    # twin-critic SAC; bc_weight: NLL of expert (s, a) against the SAC loss, 5 = the SRA authors' NLL + 0.2 x SAC loss;
    # temperature fixed at init_alpha (alpha_lr 0: tuned from 1 it erases the BC warm start)
    learner: SACNConfig = field(default_factory=lambda: SACNConfig(num_critics=2, hidden_dims=(256, 256),
                                                                   bc_weight=5.0, init_alpha=0.01, alpha_lr=0.0))


class RFFCost:
    """The MMD witness over random Fourier features: phi(x) = sqrt(2 / D) cos(x W + b),
    cost(x) = clip(phi(x) . w, -1, 0)."""

    def __init__(self, expert_sa: torch.Tensor, bandwidth_sa: torch.Tensor, config: Config, generator: torch.Generator):
        device, dim = expert_sa.device, expert_sa.shape[1]
        pairs = torch.randint(len(bandwidth_sa), (2, config.bandwidth_pairs), generator=generator, device=device)
        distances = (bandwidth_sa[pairs[0]] - bandwidth_sa[pairs[1]]).norm(dim=-1)
        self.bandwidth = float(torch.quantile(distances, config.bandwidth_quantile)) + 1e-8
        self.W = torch.randn((dim, config.feature_dim), generator=generator, device=device) / self.bandwidth
        self.b = torch.rand(config.feature_dim, generator=generator, device=device) * 2 * math.pi
        self.expert_mean = self.features(expert_sa).mean(0)
        self.w = torch.zeros_like(self.expert_mean)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return math.sqrt(2 / len(self.b)) * torch.cos(x @ self.W + self.b)

    def fit(self, policy_sa: torch.Tensor) -> float:
        """w = the unit-norm witness (mean phi(policy) - mean phi(expert)) / MMD; returns the MMD estimate."""
        diff = self.features(policy_sa).mean(0) - self.expert_mean
        mmd = diff.norm()
        self.w = diff / mmd.clamp(min=1e-8)
        return float(mmd)

    def cost(self, x: torch.Tensor) -> torch.Tensor:
        return (self.features(x) @ self.w).clamp(-1.0, 0.0)

    def state_dict(self) -> dict:
        return {"bandwidth": self.bandwidth, "W": self.W, "b": self.b, "expert_mean": self.expert_mean, "w": self.w}

    def load_state_dict(self, state: dict) -> None:
        self.bandwidth = state["bandwidth"]
        self.W, self.b, self.expert_mean, self.w = (state[k].to(self.W.device) for k in ("W", "b", "expert_mean", "w"))


def bc_warm_start(actor, sampler: UniformSampler, steps: int, lr: float) -> float:
    """``steps`` of maximum likelihood on the sampler's (s, a); returns the last NLL."""
    optimizer, loss = adam(actor.parameters(), lr), torch.zeros(())
    for _ in range(steps):
        batch = sampler.sample()
        loss = -actor.log_prob(batch["obs"], batch["act"]).mean()
        gradient_step(optimizer, loss)
    return float(loss.detach())


@register
class MILO(ReportsModelFit, Method):
    name = "milo"
    description = "MMD cost on random features minus model disagreement, SAC in a learned model, BC warm start"
    Config = Config
    budgets = {"smoke": {"model": GAUSSIAN_SMOKE, "learner": {"hidden_dims": [64, 64]}, "rollout_batch": 200,
                         "rollout_every": 50, "buffer_size": 5_000, "bc_steps": 300, "bandwidth_pairs": 10_000},
               "quick": {"model": GAUSSIAN_QUICK, "rollout_batch": 2_000, "bc_steps": 5_000}}
    state_values = ("mmd", "max_disagreement", "model_info")
    phases = ("model", "bc", "rollouts")

    def __init__(self, task, data, config: Config, seed, device, num_steps):
        super().__init__(task, data, config, seed, device, num_steps)
        if config.bc_data not in ("union", "expert"):
            raise ValueError(f"milo.bc_data must be 'union' or 'expert', got {config.bc_data!r}")
        self.learner = build_learner(config.learner, task, self.device)
        self.model = DynamicsEnsemble(task.obs_dim, task.act_dim, config.model, data.normalizer, "forward")
        self.model.to(self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(stream_seed(seed, "rollouts"))
        sa = lambda d: torch.cat([data.normalizer(torch.as_tensor(d.observations, device=self.device)),  # noqa: E731
                                  torch.as_tensor(d.actions, device=self.device)], -1)
        self.expert_obs = torch.as_tensor(data.expert.observations, device=self.device)
        self.supplementary_obs = torch.as_tensor(data.supplementary.observations, device=self.device)
        self.expert_sa = expert_sa = sa(data.expert)
        self.cost = RFFCost(expert_sa, sa(data.union()) if config.bandwidth_data == "union" else expert_sa, config,
                            self.generator)
        self.buffer = RolloutBuffer(config.buffer_size, {"obs": task.obs_dim, "act": task.act_dim,
                                                         "next_obs": task.obs_dim, "done": 0, "reward": 0},
                                    data.normalizer, self.device)
        self.max_disagreement = torch.ones((), device=self.device)
        self.mmd, self.model_info = 0.0, {}

    def parts(self) -> dict:
        return {"learner": self.learner, "model": self.model, "cost": self.cost, "buffer": self.buffer,
                "generator": self.generator}

    def pretrain(self, progress) -> dict[str, float]:
        union = self.data.union()
        with self.timer("model"):
            self.model_info = self.model.fit_cached(union, self.seed, progress)
            disagreement = self.model.uncertainty(union.observations, union.actions, "disagreement")
            self.max_disagreement = disagreement.max().clamp(min=1e-8)
        with self.timer("bc"):
            warm = self.data.expert if self.config.bc_data == "expert" else union
            sampler = UniformSampler(warm, self.data.normalizer, self.config.bc_batch_size, self.seed, self.device,
                                     stream="warm-start batches")
            self.model_info["bc/nll"] = bc_warm_start(self.learner.actor, sampler, self.config.bc_steps,
                                                      self.config.bc_lr)
        return dict(self.model_info)

    @torch.no_grad()
    def collect(self) -> dict[str, torch.Tensor]:
        """One model rollout of the current (stochastic) policy into the buffer, from expert states and (for the
        critic's coverage) D^S states; w is refit on the rollouts from expert states."""
        c, norm = self.config, self.data.normalizer
        policy = lambda s: self.learner.actor.sample(norm(s), self.generator)[0]  # noqa: E731
        n_expert = round(c.rollout_batch * c.expert_start_fraction)
        outs = []
        for pool, n in ((self.expert_obs, n_expert), (self.supplementary_obs, c.rollout_batch - n_expert)):
            if n:
                outs.append(rollout(self.model, policy, random_rows(pool, n, self.generator), c.horizon,
                                    self.generator, self.task.termination))
        out = {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
        penalty = -c.lambda_b * (out["disagreement"] / self.max_disagreement).clamp(max=1.0)
        self.buffer.add(obs=out["obs"], act=out["act"], next_obs=out["next_obs"], done=out["done"], reward=penalty)
        self.mmd = self.cost.fit(torch.cat([norm(outs[0]["obs"]), outs[0]["act"]], -1))
        return out

    def rewards(self, obs_norm: torch.Tensor, act: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
        """r = -(1 - lambda_b) c(s, a) + the stored -lambda_b u(s, a)."""
        return -(1 - self.config.lambda_b) * self.cost.cost(torch.cat([obs_norm, act], -1)) + penalty

    def update(self, step: int) -> dict[str, float]:
        if step % self.config.rollout_every == 0:
            with self.timer("rollouts"):
                self.collect()
        batch = self.buffer.sample(self.config.batch_size, self.generator)
        batch["reward"] = self.rewards(batch["obs"], batch["act"], batch["reward"])
        if self.config.learner.bc_weight:
            expert = random_rows(self.expert_sa, self.config.bc_batch_size, self.generator)
            batch["bc_obs"], batch["bc_act"] = expert.split([self.task.obs_dim, self.task.act_dim], -1)
        return {**self.learner.update(batch), "milo/mmd": self.mmd, "milo/reward": batch["reward"].mean()}

    def act(self, obs):
        return act_numpy(self.learner, self.data.normalizer, obs, self.device)
