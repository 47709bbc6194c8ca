"""Dynamics-model ensembles, forward or reverse, deterministic or Gaussian, batched over members, and
model rollouts batched over states and members.

One block serves SRA (reverse, 7 deterministic 2x1024 members, SGD, no holdout), ROMI (reverse Gaussian,
7 members / 5 elites, holdout early stopping) and MILO/CLARE (forward Gaussian with elites: ``GAUSSIAN``).
Inputs are (normalized s_in, raw a); the target is the state change s_out - s_in, where
forward: s_in = s, s_out = s'  and  reverse: s_in = s', s_out = s. With ``normalize_targets`` (SRA's official
code z-scores its buffers before building the model) the target is norm(s_out) - norm(s_in) = (s_out - s_in) / std
and ``step``/``predict`` scale the prediction back to raw units; otherwise (MOPO/ROMI) it is the raw change.
Without a holdout (SRA), each epoch is one permutation of the training pairs per member and every member keeps
the weights of its epoch with the lowest mean training loss (what SRA's official ``train_model`` means to do;
it saves ``state_dict()`` without a copy, so in effect it keeps the last epoch: docs/methods.md); gradients are
clipped per member (the official members are separate networks with separate clips).
``fit_cached`` trains from an initialization seeded by the run seed (never the global RNG), so a trained
model is a function of (data, seed, config, direction) and can be shared through ``methods.model_cache``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from core.seeding import stream_seed
from methods import model_cache
from methods.base import task_kind
from methods.data import Normalizer, Transitions
from methods.nets import EnsembleLinear, ensemble_mlp, gradient_step

ACTIVATIONS = {"relu": nn.ReLU, "swish": nn.SiLU}
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
    normalize_targets: bool = True   # predict the change in z-scored units (SRA's); False: raw change (MOPO's)
    validation_ratio: float = 0.05   # without a holdout: held out only to report the one-step error (not used
                                     # for stopping or elites; 0: report on the training pairs)


# MOPO's ensemble as ROMI uses it (reverse) and MILO/CLARE share it here (forward): 7 Gaussian members, 5 elites,
# 4x200 swish, per-layer L2 2.5e-5..1e-4, Adam 1e-3, holdout 0.2 with early stopping after 5 stale epochs.
GAUSSIAN = DynamicsConfig(num_members=7, num_elites=5, hidden_dims=(200, 200, 200, 200), activation="swish",
                          gaussian=True, optimizer="adam", lr=1e-3,
                          weight_decay=(2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4), grad_clip=0.0, epochs=1000,
                          holdout_ratio=0.2, patience=5, normalize_targets=False)
# GAUSSIAN's budgets (a method's ``budgets[profile]["model"]``). ROMI, MILO and CLARE use the same ones, so with
# BENCH_MODEL_CACHE set MILO and CLARE share one trained forward model per (task, seed). quick: the 4x200
# ensemble for at most 4k steps (early stopping on umaze; ~3 epochs on large).
GAUSSIAN_SMOKE = {"hidden_dims": [64, 64], "weight_decay": [2.5e-5, 5e-5, 1e-4], "max_steps": 100}
GAUSSIAN_QUICK = {"max_steps": 4_000}


def model_loss(mean: torch.Tensor, log_var: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
    """Per-member losses, shape (N,): MSE, or Gaussian NLL (up to a constant) when log_var is given."""
    if log_var is None:
        return (mean - target).pow(2).mean(dim=(1, 2))
    return (((mean - target).pow(2) * torch.exp(-log_var)) + log_var).mean(dim=(1, 2))


def clip_grad_norm_per_member(params: list[torch.Tensor], num_members: int, max_norm: float) -> None:
    """Scale each member's gradients to norm <= max_norm; parameters whose first axis is not the member axis
    (the Gaussian log-variance bounds) are clipped on their own."""
    ens = [p for p in params if p.grad is not None and p.dim() >= 2 and p.shape[0] == num_members]
    if ens:
        norms = torch.stack([p.grad.pow(2).flatten(1).sum(1) for p in ens]).sum(0).sqrt()
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for p in ens:
            p.grad.mul_(scale.view(-1, *([1] * (p.dim() - 1))))
    rest = [p for p in params if p.grad is not None and not any(p is q for q in ens)]
    if rest:
        nn.utils.clip_grad_norm_(rest, max_norm)


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
        return s_in, data.actions, ((s_out - s_in) / self._target_scale_np()).astype(np.float32)

    def _target_scale_np(self) -> np.ndarray:
        return self.normalizer.std if self.config.normalize_targets else np.ones_like(self.normalizer.std)

    def target_scale(self, device: torch.device) -> torch.Tensor:
        """Multiplies a predicted change into raw units (the normalizer's std, or 1 for raw targets)."""
        return self.normalizer._on(device)[1] if self.config.normalize_targets else torch.ones((), device=device)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Re-initialize every member (nn.Linear's default per member) from a generator seeded by ``seed``:
        the same numbers on any device, and the global RNG untouched."""
        gen = torch.Generator(device="cpu").manual_seed(stream_seed(seed, "dynamics init"))
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

    def _split(self, num_pairs: int) -> tuple[int, int]:
        """(held-out pairs for early stopping/elites, held-out pairs only for reporting the one-step error)."""
        c = self.config
        n_hold = int(num_pairs * c.holdout_ratio)
        return n_hold, 0 if n_hold else int(num_pairs * c.validation_ratio)

    def planned_steps(self, num_pairs: int) -> tuple[int, int]:
        """(gradient steps per epoch, steps of a full ``fit``) on ``num_pairs`` transitions; early stopping on
        the holdout may end a fit sooner."""
        c = self.config
        per_epoch = max(1, (num_pairs - sum(self._split(num_pairs))) // c.batch_size)
        return per_epoch, per_epoch * c.epochs if not c.max_steps else min(c.max_steps, per_epoch * c.epochs)

    def fit(self, data: Transitions, seed: int, progress: Callable = lambda x, **_: x) -> dict[str, float]:
        """Train every member on ``data``, each on its own permutation per epoch. With a holdout: early stopping
        and elites on it. Without: each member keeps its best epoch by mean training loss (SRA's official intent;
        its code keeps the last epoch, see the module docstring)."""
        c, device = self.config, self.max_log_var.device
        gen = torch.Generator(device="cpu").manual_seed(stream_seed(seed, "dynamics shuffles"))
        s_in, act, target = (torch.as_tensor(x, device=device) for x in self._pairs(data))
        order = torch.randperm(len(act), generator=gen).to(device)
        n_hold, n_val = self._split(len(act))
        hold, val, train = order[:n_hold], order[n_hold:n_hold + n_val], order[n_hold + n_val:]
        params = [p for p in self.parameters() if p.requires_grad]
        members = [p for p in params if p.dim() >= 2 and p.shape[0] == c.num_members]
        optimizer = self._optimizer()
        clip = (lambda: clip_grad_norm_per_member(params, c.num_members, c.grad_clip)) if c.grad_clip else None
        steps_per_epoch, total = self.planned_steps(len(act))
        best, stale, loss, step = np.full(c.num_members, np.inf), 0, torch.zeros(c.num_members), -1
        errors, errors_step = None, None
        keep_best = not n_hold
        epoch_loss, best_loss = torch.zeros(c.num_members, device=device), torch.full((c.num_members,), np.inf)
        best_params = [p.detach().clone() for p in members] if keep_best else []

        def end_epoch(batches: int) -> None:  # each member keeps its weights if this epoch's mean loss is its best
            mean = (epoch_loss / batches).cpu()
            better = mean < best_loss
            best_loss[better] = mean[better]
            with torch.no_grad():
                for saved, p in zip(best_params, members):
                    saved[better.to(device)] = p[better.to(device)]
            epoch_loss.zero_()

        for step in progress(range(total), desc=f"{self.direction} model", total=total):
            i = step % steps_per_epoch
            if i == 0:  # a fresh permutation per member: (N, epoch_pairs)
                perm = torch.stack([torch.randperm(len(train), generator=gen) for _ in range(c.num_members)])
                perm = train[perm[:, :steps_per_epoch * c.batch_size].to(device)]
            idx = perm[:, i * c.batch_size:(i + 1) * c.batch_size]
            mean, log_var = self(s_in[idx], act[idx])
            loss = model_loss(mean, log_var, target[idx])
            total_loss = loss.sum()
            if c.gaussian:  # keep the learned log-variance bounds tight (PETS/MOPO)
                total_loss = total_loss + 0.01 * (self.max_log_var.sum() - self.min_log_var.sum())
            gradient_step(optimizer, total_loss, clip)
            if keep_best:
                epoch_loss += loss.detach()
                if i + 1 == steps_per_epoch or step + 1 == total:
                    end_epoch(i + 1)
            if n_hold and (step + 1) % steps_per_epoch == 0:
                errors, errors_step = self.holdout_errors(s_in[hold], act[hold], target[hold]), step
                improved = errors < best * (1 - 1e-4)  # relative improvement (errors are >= 0)
                best = np.where(improved, errors, best)
                stale = 0 if improved.any() else stale + 1
                if stale >= c.patience:
                    break
        info = {"model/train_loss": float(loss.detach().mean()), "model/steps": float(step + 1)}
        if keep_best and best_params:
            with torch.no_grad():
                for saved, p in zip(best_params, members):
                    p.copy_(saved)
            info["model/train_loss"] = float(best_loss.mean())
        if n_hold:
            if errors_step != step:  # the final weights pick the elites (already scored if the fit ended an epoch)
                errors = self.holdout_errors(s_in[hold], act[hold], target[hold])
            self.elites.copy_(torch.as_tensor(np.argsort(errors, kind="stable")[: len(self.elites)], device=device))
            info["model/holdout_mse"] = float(np.mean(errors[self.elites.cpu().numpy()]))
        check = hold if n_hold else (val if n_val else train)
        info.update(self.one_step_errors(s_in[check], act[check], target[check]))
        return info

    @torch.no_grad()
    def one_step_errors(self, s_in: torch.Tensor, act: torch.Tensor, target: torch.Tensor,
                        chunk: int = 65536) -> dict[str, float]:
        """Mean squared one-step error of the prediction used in rollouts (the elites' mean), in z-scored state
        units, beside the error of predicting "no change" (the reverse model must beat it to be of any use)."""
        scale = self.target_scale(s_in.device) / self.normalizer._on(s_in.device)[1]  # target units -> z-scored
        sq, base = 0.0, 0.0
        for start in range(0, len(act), chunk):
            mean, _ = self(s_in[start:start + chunk], act[start:start + chunk])
            t = target[start:start + chunk] * scale
            sq += float(((mean[self.elites].mean(0) * scale - t).pow(2)).mean(-1).sum())
            base += float(t.pow(2).mean(-1).sum())
        n = max(len(act), 1)
        return {"model/one_step_mse": sq / n, "model/no_change_mse": base / n}

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
        scale = self.target_scale(obs_in.device)
        if not sample:
            return obs_in + mean.mean(0) * scale, info
        rows = torch.arange(len(act), device=act.device)
        pick = torch.randint(len(self.elites), (len(act),), generator=generator, device=act.device)
        delta = mean[pick, rows]
        if log_var is not None:
            std = torch.exp(0.5 * log_var[self.elites][pick, rows])
            delta = delta + std * torch.randn(delta.shape, generator=generator, device=act.device)
        return obs_in + delta * scale, info

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


class ReportsModelFit:
    """For a Method that fits a dynamics model (``self.model_info``, from ``DynamicsEnsemble.fit_cached``): the
    runner stores ``result_info()`` in result.json, so the fit (one-step holdout error beside predicting
    "no change", cache hit) is kept with every result."""

    model_info: dict[str, float]

    def result_info(self) -> dict:
        return {"model": dict(self.model_info)}


def reverse_rollout_defaults(task, method: str) -> dict[str, object]:
    """SRA's and ROMI's reverse rollouts per task (the SRA paper): horizon 5 with uniform actions on maze2d and
    hopper, else horizon 1 with a CVAE reverse policy."""
    short = task_kind(task, method) in ("maze2d", "hopper")
    return {"horizon": 5 if short else 1, "reverse_policy": "uniform" if short else "cvae"}
