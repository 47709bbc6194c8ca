"""Dynamics-model ensembles, forward or reverse, deterministic or Gaussian, batched over members, and
model rollouts batched over states and members.

One block serves SRA (reverse, 7 deterministic 2x1024 members, SGD, no holdout), ROMI (reverse Gaussian,
7 members / 5 elites, holdout early stopping) and MILO/CLARE (forward Gaussian with elites: ``GAUSSIAN``).
Inputs are (normalized s_in, raw a); the target is the raw state change s_out - s_in, where
forward: s_in = s, s_out = s'  and  reverse: s_in = s', s_out = s.
``fit_cached`` trains from an initialization seeded by the run seed (never the global RNG), so a trained
model is a function of (data, seed, config, direction) and can be shared through ``methods.model_cache``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from methods import model_cache
from methods.data import Normalizer, Transitions
from methods.nets import EnsembleLinear, ensemble_mlp

ACTIVATIONS = {"relu": nn.ReLU, "swish": nn.SiLU}
INIT_SEED_OFFSET = 7919  # the members' initialization draws from seed + this (training shuffles from seed)
INDEX_BLOCK = 500        # fit's minibatch indices are drawn this many steps at a time


@dataclass(frozen=True)
class DynamicsConfig:
    num_members: int = 7
    num_elites: int | None = None    # members used for prediction, best on holdout (None: all)
    hidden_dims: tuple[int, ...] = (1024, 1024)
    activation: str = "relu"         # relu | swish (MOPO/ROMI/CLARE's)
    gaussian: bool = False           # predict a diagonal Gaussian (NLL loss) instead of the mean (MSE)
    optimizer: str = "sgd"           # sgd (Nesterov, momentum 0.9: SRA's) | adam (ROMI/MOPO's)
    lr: float = 1e-4
    weight_decay: float | tuple[float, ...] = 0.0  # one value for every parameter, or one per layer's weights
    grad_clip: float = 1.0           # max grad norm (0: off)
    batch_size: int = 256
    epochs: int = 20                 # passes over the training data ...
    max_steps: int = 0               # ... capped at this many gradient steps (0: no cap; profiles set it)
    holdout_ratio: float = 0.0       # held-out share for early stopping and elite selection (0: none)
    patience: int = 5                # epochs without holdout improvement before stopping


# MOPO's ensemble as ROMI uses it (reverse) and MILO/CLARE share it here (forward): 7 Gaussian members, 5 elites,
# 4x200 swish, per-layer L2 2.5e-5..1e-4, Adam 1e-3, holdout 0.2 with early stopping after 5 stale epochs.
GAUSSIAN = DynamicsConfig(num_members=7, num_elites=5, hidden_dims=(200, 200, 200, 200), activation="swish",
                          gaussian=True, optimizer="adam", lr=1e-3,
                          weight_decay=(2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4), grad_clip=0.0, epochs=1000,
                          holdout_ratio=0.2, patience=5)


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
        self.config, self.normalizer, self.direction = config, normalizer, direction
        self.obs_dim, self.act_dim = obs_dim, act_dim
        out = 2 * obs_dim if config.gaussian else obs_dim
        self.net = ensemble_mlp(obs_dim + act_dim, out, config.num_members, config.hidden_dims,
                                ACTIVATIONS[config.activation])
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

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Re-initialize every member (nn.Linear's default per member) from a generator seeded by ``seed``:
        the same numbers on any device, and the global RNG untouched."""
        gen = torch.Generator(device="cpu").manual_seed(seed + INIT_SEED_OFFSET)
        for layer in self.net:
            if isinstance(layer, EnsembleLinear):
                bound = 1 / np.sqrt(layer.weight.shape[1])
                for p in (layer.weight, layer.bias):
                    p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=gen))
        self.max_log_var.fill_(0.5)
        self.min_log_var.fill_(-10.0)

    def fit_cached(self, data: Transitions, seed: int, progress: Callable = lambda x, **_: x) -> dict[str, float]:
        """``fit`` from an initialization seeded by ``seed``, or its result loaded from the model cache (the same
        numbers either way; see ``methods.model_cache``)."""
        self.reset_parameters(seed)

        def key() -> dict:
            arrays = [*self._pairs(data), self.normalizer.mean, self.normalizer.std]
            return {"kind": "dynamics", "direction": self.direction, "dims": [self.obs_dim, self.act_dim],
                    "config": asdict(self.config), "seed": seed, "data": model_cache.fingerprint(*arrays)}

        return model_cache.cached_fit(self, key, lambda: self.fit(data, seed, progress))

    def _optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if isinstance(c.weight_decay, tuple):  # per layer, on weights only (MOPO)
            layers = [m for m in self.net if isinstance(m, EnsembleLinear)]
            if len(c.weight_decay) != len(layers):
                raise ValueError(f"weight_decay has {len(c.weight_decay)} values for {len(layers)} layers")
            decayed = {id(m.weight) for m in layers}
            groups = [{"params": [m.weight], "weight_decay": wd} for m, wd in zip(layers, c.weight_decay)]
            groups.append({"params": [p for p in self.parameters() if p.requires_grad and id(p) not in decayed],
                           "weight_decay": 0.0})
        else:
            groups = [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": c.weight_decay}]
        if c.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=c.lr, momentum=0.9, nesterov=True)
        return torch.optim.Adam(groups, lr=c.lr)

    def planned_steps(self, num_pairs: int) -> tuple[int, int]:
        """(gradient steps per epoch, steps of a full ``fit``) on ``num_pairs`` transitions; early stopping on
        the holdout may end a fit sooner."""
        c = self.config
        per_epoch = max(1, (num_pairs - int(num_pairs * c.holdout_ratio)) // c.batch_size)
        return per_epoch, per_epoch * c.epochs if not c.max_steps else min(c.max_steps, per_epoch * c.epochs)

    def fit(self, data: Transitions, seed: int, progress: Callable = lambda x, **_: x) -> dict[str, float]:
        """Train every member on ``data`` (each on its own shuffles); pick elites on the holdout if any."""
        c, device = self.config, self.max_log_var.device
        gen = torch.Generator(device="cpu").manual_seed(seed)
        s_in, act, target = (torch.as_tensor(x, device=device) for x in self._pairs(data))
        order = torch.randperm(len(act), generator=gen).to(device)
        n_hold = int(len(act) * c.holdout_ratio)
        hold, train = order[:n_hold], order[n_hold:]
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self._optimizer()
        steps_per_epoch, total = self.planned_steps(len(act))
        best, stale, loss, step = np.full(c.num_members, np.inf), 0, torch.zeros(()), -1
        errors, errors_step = None, None
        for step in progress(range(total), desc=f"{self.direction} model", total=total):
            # each member draws its own minibatch: (N, B) indices, drawn INDEX_BLOCK steps at a time (the same
            # numbers as a draw per step) so a GPU does not wait on a host copy every step
            if step % INDEX_BLOCK == 0:
                block = torch.randint(len(train), (min(INDEX_BLOCK, total - step), c.num_members, c.batch_size),
                                      generator=gen).to(device)
            idx = train[block[step % INDEX_BLOCK]]
            mean, log_var = self(s_in[idx], act[idx])
            loss = model_loss(mean, log_var, target[idx])
            if c.gaussian:  # keep the learned log-variance bounds tight (PETS/MOPO)
                loss = loss + 0.01 * (self.max_log_var.sum() - self.min_log_var.sum())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if c.grad_clip:
                nn.utils.clip_grad_norm_(params, c.grad_clip)
            optimizer.step()
            if n_hold and (step + 1) % steps_per_epoch == 0:
                errors, errors_step = self.holdout_errors(s_in[hold], act[hold], target[hold]), step
                improved = errors < best * (1 - 1e-4)  # relative improvement (errors are >= 0)
                best = np.where(improved, errors, best)
                stale = 0 if improved.any() else stale + 1
                if stale >= c.patience:
                    break
        if not n_hold:
            return {"model/train_loss": float(loss.detach()) / c.num_members, "model/holdout_mse": float("nan")}
        if errors_step != step:  # the final weights pick the elites (already scored if the fit ended an epoch)
            errors = self.holdout_errors(s_in[hold], act[hold], target[hold])
        self.elites.copy_(torch.as_tensor(np.argsort(errors, kind="stable")[: len(self.elites)], device=device))
        return {"model/train_loss": float(loss.detach()) / c.num_members,
                "model/holdout_mse": float(np.mean(errors[self.elites.cpu().numpy()])), "model/steps": float(step + 1)}

    @torch.no_grad()
    def holdout_errors(self, s_in, act, target, chunk: int = 65536) -> np.ndarray:
        sq = torch.zeros(self.config.num_members, device=s_in.device)
        for start in range(0, len(act), chunk):
            mean, _ = self(s_in[start:start + chunk], act[start:start + chunk])
            sq += (mean - target[start:start + chunk]).pow(2).mean(-1).sum(-1)
        return (sq / max(len(act), 1)).cpu().numpy()

    @torch.no_grad()
    def step(self, obs_in: torch.Tensor, act: torch.Tensor, generator: torch.Generator | None = None,
             sample: bool = False, chunk: int = 65536) -> torch.Tensor:
        """The predicted other end of a transition (raw states), ``chunk`` rows at a time: SRA's paper-budget
        rounds step over a million candidates, and 7 members x 1024 hidden units x 1M rows is 29 GB a layer.

        ``sample=False``: mean change over the elites (SRA). ``sample=True``: per row, a random elite and
        a draw from its Gaussian (ROMI/MOPO-style rollouts)."""
        return torch.cat([self.predict(o, a, generator, sample)[0] for o, a in zip(obs_in.split(chunk),
                                                                                   act.split(chunk))])

    @torch.no_grad()
    def predict(self, obs_in: torch.Tensor, act: torch.Tensor, generator: torch.Generator | None = None,
                sample: bool = False, stats: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``step``, plus with ``stats`` the elites' uncertainty about each row: ``disagreement`` = the largest
        distance between two elites' mean predictions (MILO), ``aleatoric`` = the largest norm of an elite's
        predicted std (CLARE; 0 for deterministic members)."""
        mean, log_var = self(obs_in, act)
        mean = mean[self.elites]
        info = {}
        if stats:
            info["disagreement"] = (mean[:, None] - mean[None]).norm(dim=-1).amax(dim=(0, 1))
            info["aleatoric"] = (torch.exp(0.5 * log_var[self.elites]).norm(dim=-1).amax(0) if log_var is not None
                                 else torch.zeros(len(act), device=act.device))
        if not sample:
            return obs_in + mean.mean(0), info
        rows = torch.arange(len(act), device=act.device)
        pick = torch.randint(len(self.elites), (len(act),), generator=generator, device=act.device)
        delta = mean[pick, rows]
        if log_var is not None:
            std = torch.exp(0.5 * log_var[self.elites][pick, rows])
            delta = delta + std * torch.randn(delta.shape, generator=generator, device=act.device)
        return obs_in + delta, info

    @torch.no_grad()
    def uncertainty(self, obs: np.ndarray, act: np.ndarray, kind: str, chunk: int = 16384) -> torch.Tensor:
        """``predict``'s ``disagreement`` or ``aleatoric`` for whole datasets (raw s_in, raw a), in chunks."""
        device = self.max_log_var.device
        return torch.cat([self.predict(torch.as_tensor(obs[i:i + chunk], device=device),
                                       torch.as_tensor(act[i:i + chunk], device=device), stats=True)[1][kind]
                          for i in range(0, len(act), chunk)])


@torch.no_grad()
def rollout(model: DynamicsEnsemble, policy: Callable[[torch.Tensor], torch.Tensor], starts: torch.Tensor,
            horizon: int, generator: torch.Generator, terminal: Callable | None = None,
            chunk: int = 16384) -> dict[str, torch.Tensor]:
    """``horizon`` model steps from the raw states ``starts``, batched over states (``chunk`` at a time) and
    members: ``policy(raw states) -> actions``, then per row a random elite and its Gaussian noise.

    Forward models step s -> s'; a row whose s' is ``terminal`` ends there (done = 1). Reverse models step
    s' -> s (the policy proposes the action that led into s'); a row whose predicted s is terminal is dropped.
    Returns the transitions of all steps, in transition order (obs = s, next_obs = s', raw), with ``done``,
    ``step`` (0 = the step taken from ``starts``) and the model's ``disagreement`` / ``aleatoric`` per row."""
    parts: list[dict[str, torch.Tensor]] = []
    for pool in starts.split(chunk):
        for t in range(horizon):
            if not len(pool):
                break
            act = policy(pool)
            pred, info = model.predict(pool, act, generator, sample=True, stats=True)
            ended = terminal(pred) if terminal is not None else torch.zeros(len(pred), dtype=torch.bool,
                                                                              device=pred.device)
            if model.direction == "forward":
                part = {"obs": pool, "act": act, "next_obs": pred, "done": ended.float()}
            else:
                live = ~ended
                part = {"obs": pred[live], "act": act[live], "next_obs": pool[live],
                        "done": torch.zeros(int(live.sum()), device=pred.device)}
                info = {k: v[live] for k, v in info.items()}
            part.update(info, step=torch.full((len(part["act"]),), t, device=pred.device))
            parts.append(part)
            pool = pred[~ended]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def termination_fn(task) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Which (raw) states end an episode, for model rollouts: MOPO's health checks on the Gymnasium v5
    observations (hopper, walker2d, ant); None where nothing terminates (maze2d, halfcheetah)."""
    env = task.name.split("-")[0]
    if env == "hopper":
        return lambda s: ~(torch.isfinite(s).all(-1) & (s[:, 1:].abs() < 100).all(-1) & (s[:, 0] > 0.7)
                           & (s[:, 1].abs() < 0.2))
    if env == "walker2d":
        return lambda s: ~((s[:, 0] > 0.8) & (s[:, 0] < 2.0) & (s[:, 1] > -1.0) & (s[:, 1] < 1.0))
    if env == "ant":
        return lambda s: ~(torch.isfinite(s).all(-1) & (s[:, 0] >= 0.2) & (s[:, 0] <= 1.0))
    return None
