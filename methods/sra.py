"""SRA: Self-paced Reverse Augmentation (Shao, Shi, Guo, Li; "Offline Imitation Learning with Model-based
Reverse Augmentation", KDD 2024). Official code: sh-jj/SRA-KDD-2024; we follow it except where noted below.

A reverse dynamics model and a reverse behaviour policy generate short trajectories that *end* in goal
states (expert states, plus supplementary states the current policy is already confident about), so the
learner sees how to get back to the expert's states from states the data never visited. Rounds of
augmentation start after a warm-up; each keeps the least-confident generated states (self-paced
resampling, p ∝ 1 / (exp(Conf) + 1e-5)). Rewards: expert 1, supplementary 0, augmented 0; the learner
is IQL + BC on the expert half (or TD3+BC / AWAC / SAC-N for Table 4), with the official IQL's lr schedules passed
in (the actor's cosine over 500k updates; on maze2d every lr drops to the actor's / 10 at half the run).

As the official code: the reverse model predicts the *normalized* change norm(s) - norm(s') and
``step`` scales it back; goals come in chunks of ``goal_chunk`` (2000), each drawn afresh from the 90/7/3 mixture
(expert / accumulated D^S goals / newest selection) until a reverse step has its >= 2K candidates; the
accumulated goals are a list (a state selected in several rounds counts several times).

Deviations: round 1 uses the expanded goal set (the official code uses expert goals only there, by a
bug); the maze2d schedule (warm-up 50k, a round every 20k, 200k steps) is our documented choice, since
the released maze script cannot run; 5% of the model's pairs are held out to *report* its one-step error
(``model.validation_ratio``; the official trains on all); the quick profile trains the model with Adam 1e-3
(the official SGD 1e-4 is no better than "no change" after quick's 3k steps; docs/results.md), and quick's first
round comes at 7.5k of its 20k updates, after the learner's initial climb (see ``budgets``). Ablations:
``direction="forward"``, ``goal_expansion=False``, ``resampling="uniform"``, ``horizon``; ``augment=False`` is ``sra-noaug``, the
like-for-like control (SRA's learner, batches and data handling, no augmentation rounds).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from core.seeding import stream_rng, stream_seed
from methods.base import Method, act_numpy, maze_value, task_kind
from methods.cvae import CVAE, CVAEConfig, uniform_actions
from methods.data import Transitions
from methods.dynamics import DynamicsConfig, DynamicsEnsemble, ReportsModelFit, reverse_rollout_defaults
from methods.learners import IQLConfig, build_learner, learner_task_defaults
from methods.learners.schedules import CosineDecay, LRDrop, Schedule
from methods.nets import TanhGaussianActor, adam, gradient_step
from methods.registry import register
from methods.sampling import MixtureSampler, Source, random_rows

CHUNK = 65_536  # states per forward pass when scoring whole datasets


@dataclass(frozen=True)
class Config:
    warmup_steps: int | None = None      # None: per task (task_defaults): maze2d 50k, locomotion 200k
    round_every: int | None = None       # None: maze2d 20k, locomotion 50k
    augmentation_budget: int = 4_000_000  # augmented transitions over all rounds (B = budget // rounds)
    pool_cap: int = 4_000_000            # cumulative augmented pool keeps the newest this many
    horizon: int | None = None           # h' reverse steps; None: 5 (maze2d, hopper) or 1
    reverse_policy: str | None = None    # uniform | cvae; None: uniform (maze2d, hopper) or cvae
    model_ratio: float | None = None     # share of augmented data in the mixture half; None: per task
    direction: str = "reverse"           # ablation: "forward" rolls a forward model out of the goals
    goal_expansion: bool = True          # ablation: False = expert states only as goals
    resampling: str = "confidence"       # ablation: "uniform" keeps generated states uniformly
    goal_quantile: float = 0.8           # D^S states above this quantile of expert Conf become goals
    goal_cap_factor: int = 10            # at most this many x |D^E| new goals per round
    goal_chunk: int = 2000               # goals are drawn in chunks of this many: 90% expert, 7% accumulated, 3% newest
    candidate_factor: int = 2            # generate this many x K candidates per reverse step
    augment: bool = True                 # False: no model, no rounds (sra-noaug, the control)
    drop_last: bool = True               # drop each episode's final transition (official data handling)
    expert_batch_size: int = 256
    mixture_batch_size: int = 256
    learner_lr: float | None = None      # IQL only: all lrs; None: maze2d 1e-3, locomotion 1e-4
    lr_schedule_steps: int = 500_000     # IQL only: the actor lr decays by a cosine over this many updates (0: off)
    lr_drop: bool | None = None          # IQL only: at half the run all lrs -> actor lr / 10 (the cosine goes on
                                         # from there); None: maze2d
    model: DynamicsConfig = field(default_factory=DynamicsConfig)
    cvae: CVAEConfig = field(default_factory=CVAEConfig)
    # IQL + BC: the BC term on the expert half of each batch (its rows are flagged expert)
    learner: IQLConfig = field(default_factory=lambda: IQLConfig(weight_decay=5e-3, bc_weight=1.0))


# The model ratio r per maze size or robot (the SRA paper). The large maze's 0.5 differs from ROMI's 0.3 on purpose:
# each is its own paper's setting (methods/romi.py).
MAZE_RATIO = {"umaze": 0.7, "medium": 0.5, "large": 0.5}
ROBOT_RATIO = {"hopper": 0.5}
OTHER_ROBOT_RATIO = 0.1  # the paper's "others" (halfcheetah, walker2d, ant, and any other robot)


@torch.no_grad()
def confidence(actor, obs_norm: torch.Tensor) -> torch.Tensor:
    """Conf_pi(s) = log pi(tanh(mu(s)) | s): the policy's log-likelihood of its own mean action."""
    return torch.cat([actor.log_prob(chunk, actor.act(chunk)) for chunk in obs_norm.split(CHUNK)])


def select_goals(conf_supp: torch.Tensor, conf_expert: torch.Tensor, quantile: float, cap: int) -> torch.Tensor:
    """Indices of supplementary states more confident than the expert quantile, the top ``cap`` of them."""
    above = torch.nonzero(conf_supp > torch.quantile(conf_expert, quantile)).squeeze(-1)
    if len(above) > cap:
        above = above[conf_supp[above].topk(cap).indices]
    return above


def draw_goals(expert: torch.Tensor, accumulated: torch.Tensor, newest: torch.Tensor, count: int, chunk: int,
               generator: torch.Generator) -> torch.Tensor:
    """At least ``count`` goal states, in chunks of ``chunk`` each drawn afresh (with replacement) as 90% expert,
    7% accumulated D^S goals, 3% newest selection; an empty goal set gives its share to the expert states."""
    n_acc, n_new = int(0.07 * chunk), int(0.03 * chunk)
    chunks = -(-count // chunk)
    parts = [random_rows(expert, chunks * (chunk - n_acc - n_new), generator)]
    for pool, k in ((accumulated, n_acc), (newest, n_new)):
        parts.append(random_rows(pool if len(pool) else expert, chunks * k, generator))
    return torch.cat(parts)


def keep_probabilities(conf: torch.Tensor, mode: str) -> torch.Tensor:
    """Self-paced resampling: p ∝ 1 / (exp(Conf) + 1e-5), favouring states the policy is unsure about."""
    if mode == "uniform":
        return torch.ones_like(conf)
    return 1.0 / (torch.exp(conf.clamp(max=80.0)) + 1e-5)


@register
class SRA(ReportsModelFit, Method):
    name = "sra"
    description = "Self-paced reverse augmentation (the paper's method) with IQL + BC"
    Config = Config
    # SRA's phases per profile: schedule (warm-up, round spacing), augmentation budget, model training budget.
    # quick: 2x256 reverse models for at most 3k steps (2x1024 for 20 epochs is hours on a CPU), with Adam 1e-3:
    # SGD 1e-4 learns too little in 3k steps (umaze: one-step error on expert states 0.89 x "no change"; Adam
    # 1e-3: 0.02 x; scripts/model_error.py, docs/results.md). paper: the Config defaults (the paper's and the
    # official code's budgets). quick's first round comes at 7.5k, once the learner has made its initial climb (as
    # at paper: 50k on maze2d, 200k on locomotion): at 5k it met the learner mid-climb and cost SRA 15-20 points on
    # maze2d-medium against its own control (4 seeds, docs/results.md). The variants (methods/sra_variants.py)
    # inherit these.
    budgets = {
        "smoke": {"warmup_steps": 100, "round_every": 100, "augmentation_budget": 2_000,
                  "model": {"hidden_dims": [64, 64], "max_steps": 50}, "cvae": {"num_steps": 50}},
        "quick": {"warmup_steps": 7_500, "round_every": 2_500, "augmentation_budget": 300_000,
                  "model": {"hidden_dims": [256, 256], "max_steps": 3_000, "optimizer": "adam", "lr": 1e-3},
                  "cvae": {"num_steps": 5_000}},
    }
    run_steps = {"paper": {"maze2d": 200_000, "locomotion": 500_000}}  # official locomotion; maze2d: Deviations
    # the augmented pool is saved by state_dict below (with the newest round's size, to rebuild the mixture)
    state_values = ("goal_indices", "history", "goal_history", "rounds_info", "model_info")
    phases = ("model", "reverse_policy", "augmentation")

    @classmethod
    def task_defaults(cls, task) -> dict:
        """SRA's per-task horizon, reverse policy, model ratio, schedule and learner lr (maze2d's schedule: see
        Deviations), and the learner's own (AWAC's lambda, SAC-N's critics) for the variants."""
        kind = task_kind(task, cls.name)
        maze = kind == "maze2d"
        ratio = (maze_value(MAZE_RATIO, task, cls.name, "model_ratio") if maze
                 else ROBOT_RATIO.get(kind, OTHER_ROBOT_RATIO))
        defaults = {**reverse_rollout_defaults(task, cls.name), "model_ratio": ratio,
                    "warmup_steps": 50_000 if maze else 200_000, "round_every": 20_000 if maze else 50_000,
                    "learner_lr": 1e-3 if maze else 1e-4, "lr_drop": maze}
        if learner := learner_task_defaults(cls.Config().learner, task, cls.name):
            defaults["learner"] = learner
        return defaults

    def __init__(self, task, data, config: Config, seed, device, num_steps):
        super().__init__(task, data, config, seed, device, num_steps)
        self.expert = data.expert.without_last() if config.drop_last else data.expert
        self.supplementary = data.supplementary.without_last() if config.drop_last else data.supplementary
        self.learner = build_learner(self._learner_config(), task, self.device, self._schedules())
        # Conf_pi needs a likelihood. TD3+BC's deterministic actor has none, so its states are scored by a
        # tanh-Gaussian BC policy fitted on the expert half of every batch (our reading: the paper is silent).
        self.confidence_actor, self.confidence_optimizer = self.learner.actor, None
        if not hasattr(self.learner.actor, "log_prob"):
            self.confidence_actor = TanhGaussianActor(task.obs_dim, task.act_dim).to(self.device)
            self.confidence_optimizer = adam(self.confidence_actor.parameters(), 3e-4)
        self.sampler = MixtureSampler(
            {"expert": Source(self.expert, config.expert_batch_size, 1.0, expert=True),
             "supplementary": Source(self.supplementary, config.mixture_batch_size, 0.0)},
            data.normalizer, seed, self.device)
        self.model = (DynamicsEnsemble(task.obs_dim, task.act_dim, config.model, data.normalizer,
                                       config.direction).to(self.device) if config.augment else None)
        self.cvae = (CVAE(task.obs_dim, task.act_dim, config.cvae).to(self.device)
                     if config.reverse_policy == "cvae" and config.augment else None)
        self.generator = torch.Generator(device=self.device).manual_seed(stream_seed(seed, "rollouts"))
        self.round_steps = (list(range(config.warmup_steps, num_steps, config.round_every)) if config.augment
                            else [])
        self.goal_indices = torch.zeros(0, dtype=torch.long)   # accumulated supplementary goals (a list)
        self.augmented: Transitions | None = None              # cumulative pool
        self.history: list[np.ndarray] = []                    # a sample of each round's states, for plots
        self.goal_history: list[np.ndarray] = []               # a sample of each round's newest goals
        self.rounds_info: list[dict[str, float]] = []          # per round: sizes and maze coverage
        self.model_info: dict[str, float] = {}
        self.maze = task.maze if config.augment else None

    def parts(self) -> dict:
        confidence_policy = (None if self.confidence_optimizer is None else
                             {"actor": self.confidence_actor, "optimizer": self.confidence_optimizer})
        return {"learner": self.learner, "sampler": self.sampler, "model": self.model, "cvae": self.cvae,
                "generator": self.generator, "confidence_policy": confidence_policy}

    def _learner_config(self):
        c = self.config
        if not isinstance(c.learner, IQLConfig):
            return c.learner
        lr = c.learner_lr
        return dataclasses.replace(c.learner, actor_lr=lr, critic_lr=lr, value_lr=lr)

    def _schedules(self) -> list[Schedule]:
        """The official IQL's lr schedules (the Table 4 learners keep constant lrs): the actor's cosine, then
        (``lr_drop``) every lr -> the actor's / 10 at half the run."""
        c = self.config
        if not isinstance(c.learner, IQLConfig):
            return []
        schedules: list[Schedule] = [CosineDecay(c.lr_schedule_steps)] if c.lr_schedule_steps else []
        if c.lr_drop:
            schedules.append(LRDrop(self.num_steps // 2))
        return schedules

    # ------------------------------------------------------------------------------------ pretrain
    def pretrain(self, progress) -> dict[str, float]:
        if not self.config.augment:
            return {}
        with self.timer("model"):
            both = Transitions.concat(self.expert, self.supplementary)
            self.model_info = self.model.fit_cached(both, self.seed, progress)
        if self.cvae is not None:
            with self.timer("reverse_policy"):
                cond = self.data.normalizer(torch.as_tensor(both.next_observations, device=self.device))
                self.cvae.fit(cond, torch.as_tensor(both.actions, device=self.device), self.generator, progress)
        return dict(self.model_info)

    # -------------------------------------------------------------------------------- augmentation
    def _goal_sets(self, conf_expert: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(accumulated, newest) D^S goal states (raw) after this round's selection; empty without expansion."""
        c = self.config
        raw_supp = torch.as_tensor(self.supplementary.observations, device=self.device)
        if not c.goal_expansion:
            return raw_supp[:0], raw_supp[:0]
        conf_supp = confidence(self.confidence_actor, self.sampler.tensors["supplementary"].obs)  # normalized
        newest = select_goals(conf_supp, conf_expert, c.goal_quantile, c.goal_cap_factor * len(self.expert))
        self.goal_indices = torch.cat([self.goal_indices.to(self.device), newest])  # duplicates kept
        return raw_supp[self.goal_indices], raw_supp[newest]

    @torch.no_grad()
    def augmentation_round(self) -> dict[str, float]:
        """Goals -> h' model steps (backwards by default), keeping K least-confident states per step."""
        c, h = self.config, self.config.horizon
        norm, actor = self.data.normalizer, self.confidence_actor
        conf_expert = confidence(actor, self.sampler.tensors["expert"].obs)
        accumulated, newest = self._goal_sets(conf_expert)
        expert_obs = torch.as_tensor(self.expert.observations, device=self.device)
        keep = max(1, c.augmentation_budget // max(len(self.round_steps), 1) // h)
        steps, pool = [], None
        for t in range(h):
            starts = (draw_goals(expert_obs, accumulated, newest, c.candidate_factor * keep, c.goal_chunk,
                                 self.generator) if t == 0 else
                      random_rows(pool, c.candidate_factor * keep, self.generator))
            actions = (self.cvae.sample(norm(starts), self.generator) if self.cvae is not None
                       else uniform_actions(len(starts), self.task.act_dim, self.generator, self.device))
            ends = self.model.step(starts, actions)
            p = keep_probabilities(confidence(actor, norm(ends)), c.resampling)
            kept = torch.multinomial(p, keep, replacement=False, generator=self.generator)
            starts, actions, ends = starts[kept], actions[kept], ends[kept]
            before, after = (ends, starts) if c.direction == "reverse" else (starts, ends)
            steps.append((before, actions, after))
            pool = ends
        obs, act, next_obs = (torch.cat(parts).cpu().numpy() for parts in zip(*steps))
        new = Transitions(obs, act, next_obs, np.zeros(len(act), bool), np.zeros(len(act), bool),
                          np.zeros(0, np.int64))
        self.augmented = new if self.augmented is None else Transitions.concat(self.augmented, new)
        if len(self.augmented) > c.pool_cap:
            self.augmented = self.augmented.select(np.arange(len(self.augmented) - c.pool_cap, len(self.augmented)),
                                                   np.zeros(0, np.int64))
        self._mix(new)
        rng = stream_rng(self.seed, f"coverage sample {len(self.history)}")
        self.history.append(obs[rng.choice(len(obs), min(len(obs), 2000), replace=False)])
        goals = newest.cpu().numpy()
        self.goal_history.append(goals[rng.choice(len(goals), min(len(goals), 2000), replace=False)])
        info = {"aug/new": float(len(new)), "aug/pool": float(len(self.augmented)),
                "aug/goals": float(len(self.goal_indices)), "aug/newest_goals": float(len(newest))}
        if self.maze is not None:
            info.update({"aug/coverage_goals": self.maze.coverage(goals[:, :2]),
                         "aug/coverage_states": self.maze.coverage(obs[:, :2]),
                         "aug/coverage_pool": self.maze.coverage(self.augmented.observations[:, :2])})
        self.rounds_info.append(dict(info))  # a copy: update() adds the learner's scalars to info
        return info

    def _mix(self, newest: Transitions) -> None:
        """Mixture half: D^S (1 - r), cumulative pool 0.7 r, newest round 0.3 r."""
        n, r = self.config.mixture_batch_size, self.config.model_ratio
        n_pool = round(n * r * 0.7)
        n_new = round(n * r) - n_pool
        self.sampler.replace("supplementary", Source(self.supplementary, n - n_pool - n_new, 0.0))
        self.sampler.replace("augmented", Source(self.augmented, n_pool, 0.0))
        self.sampler.replace("newest", Source(newest, n_new, 0.0))

    # ---------------------------------------------------------------------------------- interface
    def update(self, step: int) -> dict[str, float]:
        metrics = {}
        if step in self.round_steps:
            with self.timer("augmentation"):
                metrics = self.augmentation_round()
        batch = self.sampler.sample()
        metrics.update(self.learner.update(batch))
        if self.confidence_optimizer is not None:
            n = self.config.expert_batch_size  # the expert source comes first in every batch (no mask: no sync)
            loss = -self.confidence_actor.log_prob(batch["obs"][:n], batch["act"][:n]).mean()
            gradient_step(self.confidence_optimizer, loss)
            metrics["loss/confidence_policy"] = loss.detach()
        return metrics

    def act(self, obs):
        return act_numpy(self.learner, self.data.normalizer, obs, self.device)

    def artifacts(self) -> dict[str, np.ndarray]:
        """Saved by the runner with the result: each round's augmented states and newest goals (`bench plot`)."""
        return {**{f"round_{i}": states for i, states in enumerate(self.history)},
                **{f"goals_{i}": goals for i, goals in enumerate(self.goal_history)}}

    def result_info(self) -> dict:
        """Stored in result.json: the model's one-step error beside "no change", and each round's coverage."""
        return {**super().result_info(), "rounds": [dict(r) for r in self.rounds_info]}

    def state_dict(self) -> dict:
        newest = self.sampler.tensors.get("newest")
        return {**super().state_dict(),
                "augmented": None if self.augmented is None else dataclasses.asdict(self.augmented),
                "newest_size": 0 if newest is None else newest.size}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if state["augmented"] is not None:  # rebuild the mixture: the pool, and its newest round as the last rows
            self.augmented = Transitions(**state["augmented"])
            size = state["newest_size"]
            self._mix(self.augmented.select(np.arange(len(self.augmented) - size, len(self.augmented)),
                                            np.zeros(0, np.int64)))
