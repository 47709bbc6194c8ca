"""ROMI as an imitation baseline (Wang, Li, Jiang, Zhang, Chen, Tian; "Offline Reinforcement Learning with Reverse
Model-based Imagination", NeurIPS 2021; official code wenzhe-li/romi), as the SRA paper uses it as a baseline.

A Gaussian reverse dynamics ensemble (MOPO's: 7 members, 5 elites picked on a 20% holdout, 4x200 swish) and a
reverse behaviour policy (uniform U(-1, 1)^|A| on maze2d and hopper, a CVAE p(a | s') elsewhere) imagine, once
before training, h-step trajectories that *end* in expert states; each step uses a random elite plus its
Gaussian noise, and a termination check drops predecessors that could not have been visited (hopper, walker2d,
ant; none on maze2d). Labels as UDS: expert 1, supplementary 0, imagined 0; IQL trains on 256 expert + 256
mixture rows, the mixture being D^S (1 - r) and imagined transitions (r; maze2d umaze 0.7, medium 0.5, large
0.3; locomotion 0.1). What separates it from SRA: no goal expansion, no self-paced resampling, no rounds.

Deviations from the official code: the model predicts s - s' only (it also predicts rewards there, which an
imitation method never sees); inputs are z-scored states and raw actions (MOPO scales both); the ensemble keeps
its final weights after early stopping (MOPO restores each member's best epoch); the imagined buffer (4e6) is
generated in one seeded, batched pass (official: rollout batches of 1000) and regenerated, not checkpointed, on
resume (it is a function of the model, the reverse policy and the seed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from core.seeding import stream_seed
from methods.base import Method, act_numpy, maze_value, task_kind
from methods.cvae import CVAE, CVAEConfig, uniform_actions
from methods.data import Transitions
from methods.dynamics import (GAUSSIAN, GAUSSIAN_QUICK, GAUSSIAN_SMOKE, DynamicsConfig, DynamicsEnsemble,
                              ReportsModelFit, reverse_rollout_defaults, rollout)
from methods.learners import IQLConfig, build_learner
from methods.registry import register
from methods.sampling import MixtureSampler, Source, random_rows


@dataclass(frozen=True)
class Config:
    horizon: int | None = None            # reverse steps per imagined trajectory; None: 5 (maze2d, hopper) or 1
    reverse_policy: Literal["uniform", "cvae"] | None = None     # uniform | cvae; None: uniform (maze2d, hopper) or cvae
    model_ratio: float | None = None      # imagined share of the mixture half; None: per task (task_defaults)
    rollout_budget: int = 4_000_000       # imagined transitions, generated once before training (ROMI's buffer)
    expert_batch_size: int = 256          # expert rows per batch (reward 1)
    mixture_batch_size: int = 256         # D^S and imagined rows per batch (reward 0)
    model: DynamicsConfig = field(default_factory=lambda: GAUSSIAN)
    cvae: CVAEConfig = field(default_factory=lambda: CVAEConfig(num_steps=500_000, batch_size=100))
    learner: IQLConfig = field(default_factory=IQLConfig)


# The model ratio r per maze size (the SRA paper's ROMI settings; locomotion 0.1). The large maze's 0.3 differs
# from SRA's 0.5 on purpose: each is its own paper's setting (methods/sra.py).
MAZE_RATIO = {"umaze": 0.7, "medium": 0.5, "large": 0.3}
LOCOMOTION_RATIO = 0.1


@register
class ROMI(ReportsModelFit, Method):
    name = "romi"
    description = "Reverse model imagination from expert states once, UDS labels (1/0/0), IQL"
    Config = Config
    budgets = {"smoke": {"rollout_budget": 2_000, "model": GAUSSIAN_SMOKE, "cvae": {"num_steps": 50}},
               "quick": {"rollout_budget": 300_000, "model": GAUSSIAN_QUICK, "cvae": {"num_steps": 5_000}}}
    # the imagined buffer is not saved: load_state_dict regenerates it from the model, the policy and the seed
    state_values = ("imagination_seed", "model_info")
    phases = ("model", "reverse_policy", "imagination")

    @classmethod
    def task_defaults(cls, task) -> dict:
        """ROMI's per-task horizon, reverse policy and model ratio (the SRA paper's ROMI settings)."""
        maze = task_kind(task, cls.name) == "maze2d"
        ratio = maze_value(MAZE_RATIO, task, cls.name, "model_ratio") if maze else LOCOMOTION_RATIO
        return {**reverse_rollout_defaults(task, cls.name), "model_ratio": ratio}

    def __init__(self, task, data, config: Config, seed, device, num_steps):
        super().__init__(task, data, config, seed, device, num_steps)
        self.learner = build_learner(config.learner, task, self.device)
        self.imagined_count = round(config.mixture_batch_size * config.model_ratio)
        self.sampler = MixtureSampler(
            {"expert": Source(data.expert, config.expert_batch_size, 1.0),
             "supplementary": Source(data.supplementary, config.mixture_batch_size - self.imagined_count, 0.0)},
            data.normalizer, seed, self.device)
        self.model = DynamicsEnsemble(task.obs_dim, task.act_dim, config.model, data.normalizer, "reverse")
        self.model.to(self.device)
        self.cvae = (CVAE(task.obs_dim, task.act_dim, config.cvae).to(self.device)
                     if config.reverse_policy == "cvae" else None)
        self.imagination_seed = seed
        self.model_info: dict[str, float] = {}

    def parts(self) -> dict:
        return {"learner": self.learner, "sampler": self.sampler, "model": self.model, "cvae": self.cvae}

    # ------------------------------------------------------------------------------------ pretrain
    def pretrain(self, progress) -> dict[str, float]:
        with self.timer("model"):
            union = self.data.union()
            self.model_info = self.model.fit_cached(union, self.seed, progress)
        if self.cvae is not None:
            with self.timer("reverse_policy"):
                generator = torch.Generator(device=self.device).manual_seed(stream_seed(self.seed, "reverse policy"))
                cond = self.data.normalizer(torch.as_tensor(union.next_observations, device=self.device))
                self.cvae.fit(cond, torch.as_tensor(union.actions, device=self.device), generator, progress)
        with self.timer("imagination"):
            self._imagine(self.imagination_seed)
        return dict(self.model_info)

    def imagine(self, seed: int) -> Transitions:
        """``rollout_budget`` reverse transitions: ``budget // h`` expert states (drawn with replacement) as the
        last states, h reverse steps back from each."""
        h = self.config.horizon
        generator = torch.Generator(device=self.device).manual_seed(stream_seed(seed, "imagination"))
        expert = torch.as_tensor(self.data.expert.observations, device=self.device)
        starts = random_rows(expert, max(1, self.config.rollout_budget // h), generator)
        if self.cvae is not None:
            policy = lambda s: self.cvae.sample(self.data.normalizer(s), generator)  # noqa: E731
        else:
            policy = lambda s: uniform_actions(len(s), self.task.act_dim, generator, self.device)  # noqa: E731
        out = rollout(self.model, policy, starts, h, generator, self.task.termination)
        n = len(out["act"])
        obs, act, next_obs = (out[k].cpu().numpy() for k in ("obs", "act", "next_obs"))
        return Transitions(obs, act, next_obs, np.zeros(n, bool), np.zeros(n, bool), np.zeros(0, np.int64))

    def _imagine(self, seed: int) -> None:
        self.imagined = self.imagine(seed)
        self.sampler.replace("imagined", Source(self.imagined, self.imagined_count, 0.0))

    # ---------------------------------------------------------------------------------- interface
    def update(self, step: int) -> dict[str, float]:
        return self.learner.update(self.sampler.sample())

    def act(self, obs):
        return act_numpy(self.learner, self.data.normalizer, obs, self.device)

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._imagine(self.imagination_seed)  # the same transitions as before: same model, policy and seed
