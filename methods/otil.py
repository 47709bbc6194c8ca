"""OTIL / OTR (Luo, Jiang, Cohen, Grefenstette, Deisenroth, ICLR 2023, "Optimal Transport for Offline Imitation
Learning"): label every unlabelled trajectory with optimal-transport rewards against the expert demos, then IQL.

As the official code (ethanluoyc/optimal_transport_reward: otr/agents/otil/rewarder.py, otr/train_offline.py):
- per (trajectory, demo): entropic OT by Sinkhorn, epsilon 0.01 (absolute), 100 iterations, threshold 1e-9;
  cost = cosine distance 1 - cos(o_t, o'_j) between observations (ott's ``Cosine``), uniform weights;
- step t pays c_t = sum_j P_tj C_tj / a_t (its mass's transport cost) and gets r_t = alpha exp(-beta c_t / obs_dim),
  alpha = beta = 5 (official: weights 1/1000 and beta x 1000 / obs_dim on sum_j P_tj C_tj, the same thing);
- the demo with the highest total squashed reward gives the rewards (``aggregate_top_k``, k = 1);
- rewards x 1000 / (max - min trajectory return) (IQL's locomotion scaling, as the official code does);
- IQL 3e-4, expectile 0.7, temperature 3, actor lr cosine-decayed over the run; uniform batches of 256;
- IQL's policy is Kostrikov's original (otr/agents/iql/networks.py): N(tanh(mu(s)), sigma) with one
  state-independent log-std per action dim in [-5, 2] (``nets.GaussianActor``), not the tanh-Gaussian of our
  other IQL methods, whose atanh of saturated data actions (maze2d's expert pushes at +-1) pays them up to ~15
  nats a dimension; ``policy="tanh_gaussian"`` gives that one.
Deviations:
- D^E is not part of D^S here (the official code picks its demos out of the offline dataset), so we train on
  D^E u D^S with D^E relabelled like D^S (each demo then matches itself), which keeps that set-up;
- the cost is on z-scored observations (as the other methods); ``normalize_obs=False`` gives the official raw ones;
- balanced OT over each trajectory's own length instead of padding to 1000 steps of weight 1/1000 (the same
  for full-length trajectories, and defined for any length);
- the IQL update is ours (CORL's step order: the actor's advantage uses V before its step, where the official
  update steps V, then the actor with the new V, then Q; the twin critics' MSEs averaged, not summed; PyTorch's
  default init, not orthogonal);
- POT's ``ot.sinkhorn`` (Sinkhorn-Knopp, float64, torch backend on the CPU) one problem at a time: on CPU it
  beat POT's batched ``ot.solve_batch`` ~15x in our measurements (ott: log-domain, vmapped over demos).
The rewards are part of ``state_dict`` (a resumed run never redoes them) and cached in-process by a hash of
the data and the OT settings, so the seeds of one task run in one process share them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from methods.base import Method, act_numpy
from methods.learners import IQLConfig, build_learner
from methods.learners.schedules import CosineDecay
from methods.nets import GaussianActor, TanhGaussianActor
from methods.registry import register
from methods.sampling import MixtureSampler, Source


@dataclass(frozen=True)
class Config:
    epsilon: float = 0.01          # Sinkhorn entropic regularization (absolute; the cosine cost lies in [0, 2])
    max_iterations: int = 100      # Sinkhorn iterations (official, with ott)
    threshold: float = 1e-9        # Sinkhorn stops early once its marginal error is below this
    alpha: float = 5.0             # squashing r = alpha * exp(-beta * cost / obs_dim)
    beta: float = 5.0
    normalize_obs: bool = True     # cost on z-scored observations; False: raw ones (official)
    include_expert: bool = True    # train on D^E u D^S, D^E relabelled too; False: D^S only
    return_range: float = 1000.0   # rewards x this / (max - min trajectory return) (official); 0: unscaled
    batch_size: int = 256          # uniform batches over the relabelled data (official)
    lr_schedule: bool = True       # the actor lr decays by a cosine over the run (official)
    policy: Literal["gaussian", "tanh_gaussian"] = "gaussian"  # IQL's actor: N(tanh(mu), sigma) (official) | tanh(N)
    learner: IQLConfig = field(default_factory=IQLConfig)


def f64(x) -> torch.Tensor:
    """The OT runs in float64 torch on the CPU: it obeys torch's thread count (numpy's multi-threaded OpenBLAS
    ran 60x slower on a loaded 2-core machine) and gives the same rewards whatever the run's device."""
    return torch.as_tensor(x, dtype=torch.float64)


def cosine_cost(x, y) -> torch.Tensor:
    """C_ij = 1 - cos(x_i, y_j), with ott's 1e-8 ridge (zero vectors cost 1)."""
    x, y = f64(x), f64(y)
    return 1.0 - (x @ y.T) / (x.norm(dim=1)[:, None] * y.norm(dim=1)[None, :] + 1e-8)


def transport_costs(x, y, config: Config) -> torch.Tensor:
    """Per-step cost of trajectory x against demo y: c_t = sum_j P_tj C_tj / a_t, P the entropic OT plan
    between uniform weights a over x's steps and b over y's."""
    import ot  # POT: imported here, so the rest of the suite loads without it (e.g. a bare GPU image)
    cost = cosine_cost(x, y)
    a, b = (torch.full((n,), 1.0 / n, dtype=torch.float64) for n in (len(x), len(y)))
    plan = ot.sinkhorn(a, b, cost, config.epsilon, numItermax=config.max_iterations,
                       stopThr=config.threshold, warn=False)
    return len(x) * (plan * cost).sum(1)


def squash(cost, alpha: float, beta: float, obs_dim: int) -> torch.Tensor:
    """r = alpha exp(-beta cost / obs_dim): in (0, alpha], decreasing in the cost."""
    return alpha * torch.exp(-beta / obs_dim * f64(cost))


def trajectory_rewards(x, demos, config: Config) -> torch.Tensor:
    """Squashed OT rewards against the best-matching demo (highest total reward)."""
    per_demo = [squash(transport_costs(x, y, config), config.alpha, config.beta, x.shape[1]) for y in demos]
    return per_demo[int(np.argmax([float(r.sum()) for r in per_demo]))]


def ot_rewards(observations: np.ndarray, bounds: list[tuple[int, int]], demos: list[np.ndarray], config: Config,
               progress) -> np.ndarray:
    """One reward per transition of ``observations`` (episodes at ``bounds``), scaled by the return range."""
    obs, demos = f64(observations), [f64(d) for d in demos]
    rewards = torch.empty(len(obs), dtype=torch.float64)
    for start, end in progress(bounds, desc="OT rewards", total=len(bounds)):
        rewards[start:end] = trajectory_rewards(obs[start:end], demos, config)
    returns = np.array([float(rewards[start:end].sum()) for start, end in bounds])
    if config.return_range and np.ptp(returns) > 0:
        rewards *= config.return_range / np.ptp(returns)
    return rewards.numpy().astype(np.float32)


def cache_key(observations: np.ndarray, bounds, demos: list[np.ndarray], config: Config) -> str:
    """Content hash of everything the rewards depend on (data, episode bounds, demos, OT settings)."""
    h = hashlib.blake2b(digest_size=16)
    settings = [getattr(config, name) for name in ("epsilon", "max_iterations", "threshold", "alpha", "beta",
                                                    "normalize_obs", "include_expert", "return_range")]
    h.update(repr((observations.shape, [d.shape for d in demos], settings)).encode())
    for array in (observations, np.asarray(bounds, np.int64), *demos):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


POLICIES = {"gaussian": GaussianActor, "tanh_gaussian": TanhGaussianActor}  # Config.policy -> IQL's actor
_CACHE: dict[str, np.ndarray] = {}  # in-process relabelling cache: cache_key -> rewards
_CACHE_SIZE = 4


@register
class OTIL(Method):
    name = "otil"
    description = "Optimal-transport rewards against the expert demos (Sinkhorn, cosine cost), then IQL"
    Config = Config

    budgets = {"smoke": {}}  # the OT relabelling scales with the data, and smoke's data is small: nothing to shrink
    state_values = ("rewards",)  # a resumed run never redoes the relabelling
    phases = ("ot_rewards",)

    def __init__(self, task, data, config, seed, device, num_steps):
        super().__init__(task, data, config, seed, device, num_steps)
        self.learner = build_learner(config.learner, task, self.device,
                                     [CosineDecay(num_steps)] if config.lr_schedule else [],
                                     actor_cls=POLICIES[config.policy])
        self.rewards: np.ndarray | None = None
        self.sampler: MixtureSampler | None = None

    def parts(self) -> dict:
        return {"learner": self.learner, "sampler": self.sampler}

    def training_data(self):
        return self.data.union() if self.config.include_expert else self.data.supplementary

    def pretrain(self, progress):
        with self.timer("ot_rewards"):
            data, prepare = self.training_data(), self.data.normalizer if self.config.normalize_obs else np.asarray
            observations = prepare(data.observations)
            demos = [prepare(self.data.expert.observations[s:e]) for s, e in self.data.expert.episode_bounds()]
            key = cache_key(observations, data.episode_bounds(), demos, self.config)
            if key not in _CACHE:
                _CACHE[key] = ot_rewards(observations, data.episode_bounds(), demos, self.config, progress)
                while len(_CACHE) > _CACHE_SIZE:
                    _CACHE.pop(next(iter(_CACHE)))
            self.use_rewards(_CACHE[key].copy())

    def use_rewards(self, rewards: np.ndarray) -> None:
        """Train on the relabelled data from now on (a fresh sampler seeded by the run's seed)."""
        self.rewards = rewards
        source = Source(self.training_data(), self.config.batch_size, rewards)
        self.sampler = MixtureSampler({"data": source}, self.data.normalizer, self.seed, self.device)

    def update(self, step):
        if self.sampler is None:
            raise RuntimeError("otil: pretrain() (the OT relabelling) must run before update()")
        return self.learner.update(self.sampler.sample())

    def act(self, obs):
        return act_numpy(self.learner, self.data.normalizer, obs, self.device)

    def load_state_dict(self, state):
        self.use_rewards(np.asarray(state["rewards"]))  # builds the sampler whose state is loaded next
        super().load_state_dict(state)
