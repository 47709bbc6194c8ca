"""A learner's whole update as one compiled graph (opt-in: ``bench run --compile``, ``bench perf --compile``).

Eager PyTorch pays a fixed cost per op (dispatch, the autograd engine, ``Optimizer.step``'s Python), and at the
benchmark's sizes (batch 256, 256-wide MLPs, one CPU thread) that cost is a third of an IQL step. Here the
losses, their gradients (``torch.func.grad`` of the summed loss: the eager path's one backward), Adam on every
optimizer and the Polyak target update are traced into one ``torch.compile`` graph: the matmuls stay library
calls, everything between them becomes a few generated loops. An update whose steps depend on each other runs
as stages in that one graph (SAC-N: the actor and temperature step, then the critics' step on the new actor).
Used by IQL, SAC-N, AWAC and TD3+BC (their ``compile_update``; TD3+BC has two graphs, critic-only steps and
full ones, stepping the critics' optimizer in turn) and by DemoDICE's own update.

The maths is the eager update's: Adam as ``torch.optim.Adam`` writes it (coupled L2 weight decay, bias
corrections, eps outside the square root), reading and writing the optimizers' own state tensors (``exp_avg``,
``exp_avg_sq``, ``step``) and their ``param_groups``' current lr, so checkpoints, lr schedules and resuming
are shared with the eager path. Numbers equal the eager update's within float32 rounding, not bit for bit
(tests/methods/test_iql_plain_reference.py checks both against a plain ``nn.Linear`` IQL,
tests/methods/test_compiled_step.py compiled SAC-N, AWAC and TD3+BC against eager, test_demodice.py DemoDICE);
the same seed on the same machine gives the same numbers.
"""
from __future__ import annotations

import inspect
import math
import time
import weakref
from typing import Callable, Sequence

import torch
from torch import nn

# One graph per learner shape and batch layout; a grid worker meets several (tasks, methods), more than
# Dynamo's default 8, past which it would run the update eagerly. (``recompile_limit``: torch >= 2.8.)
_RECOMPILE_LIMIT = {"recompile_limit": 64} if "recompile_limit" in inspect.signature(torch.compile).parameters else {}
Losses = Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, torch.Tensor]]]
Stage = tuple[Losses, Sequence[torch.optim.Optimizer]]  # losses, and the optimizers that step on their total


class CompiledUpdate:
    """``stages``: (losses, optimizers) pairs, ``losses(batch) -> (total, logs)`` reading the parameters of
    ``nets``. One call = for each stage in turn, one gradient step of its ``total`` on its optimizers (a later
    stage sees the parameters the earlier ones stepped: SAC's critic loss samples from the new actor), then
    ``target <- (1 - tau) target + tau source`` for each (target, source) pair. Returns every stage's ``logs``
    (detached). A stage's gradients are taken with respect to its optimizers' parameters only: a loss that reads
    another net (the actor's through the critic) sends it no gradient, as ``nets.no_param_grad`` does eagerly.
    Random ops in a loss use the global RNG (inductor's own generator, seeded from it: deterministic per seed,
    not the eager path's numbers unless ``torch._inductor.config.fallback_random`` is set).

    Supports ``torch.optim.Adam`` without amsgrad/maximize (every learner here); other optimizers are refused
    at construction. The optimizers' param groups are read at each call (``load_state_dict`` replaces them).
    Compiles on the first call (~20 s for IQL on one CPU thread, ~3 s from ``torch.compile``'s on-disk cache of an
    earlier run); ``compile_s`` holds that call's wall time (compilation and one step), so run timings can report
    the one-off cost apart from the per-step one. A later recompilation (new shapes) is not counted there."""

    def __init__(self, stages: Sequence[Stage], nets: dict[str, nn.Module],
                 targets: Sequence[tuple[nn.Module, nn.Module]] = (), tau: float = 0.0):
        self.losses = [losses for losses, _ in stages]
        self.optimizers, self.tau = tuple(optimizer for _, optimizers in stages for optimizer in optimizers), tau
        if len({id(optimizer) for optimizer in self.optimizers}) < len(self.optimizers):
            raise ValueError("an optimizer appears in more than one stage of CompiledUpdate")
        self.nets = nn.ModuleDict(nets)  # shares the modules: functional_call swaps their parameters ...
        self.nets.forward = lambda stage, batch: self.losses[stage](batch)  # ... and calls this
        names = {id(p): name for name, p in self.nets.named_parameters()}
        for optimizer in self.optimizers:
            _check_adam(optimizer)
            missing = sum(id(p) not in names for group in optimizer.param_groups for p in group["params"])
            if missing:
                raise ValueError(f"an optimizer holds {missing} parameters of no net given to CompiledUpdate")
        groups = [group for _, group in self._groups()]
        self.group_names = [[names[id(p)] for p in group["params"]] for group in groups]
        stage_of = [stage for stage, (_, optimizers) in enumerate(stages) for optimizer in optimizers
                    for _ in optimizer.param_groups]
        self.stage_groups = [[i for i, s in enumerate(stage_of) if s == stage] for stage in range(len(stages))]
        # per group, Adam's step size lr / (1 - beta1^t) and sqrt(1 - beta2^t) as tensors filled before each call:
        # lr schedules then cost no recompilation, and the generated loops do not recompute powers per element
        self.scalars = [torch.zeros(2, device=group["params"][0].device) for group in groups]
        self.targets = [(list(target.parameters()), list(source.parameters())) for target, source in targets]
        self._step = torch.compile(self._update, dynamic=False, **_RECOMPILE_LIMIT)
        self.compile_s = 0.0
        self._compiled_once = False

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pairs = self._groups()
        state = [_adam_state(optimizer, group) for optimizer, group in pairs]
        groups = [group for _, group in pairs]
        for i, (group, scalars) in enumerate(zip(groups, self.scalars, strict=True)):
            t = _next_step(state[i][0][0])
            beta1, beta2 = group["betas"]
            scalars.copy_(torch.tensor([group["lr"] / (1 - beta1 ** t), math.sqrt(1 - beta2 ** t)]))
        # the other hyper-parameters as constants (the graph is rebuilt if one changes); not the group dicts,
        # whose every value, the lr included, the compiled graph would otherwise be specialized on
        hyper = [(*group["betas"], group["eps"], group["weight_decay"]) for group in groups]
        if self._compiled_once:
            return self._step(batch, state, hyper)
        start = time.perf_counter()
        logs = self._step(batch, state, hyper)
        self.compile_s, self._compiled_once = time.perf_counter() - start, True
        for optimizer in self.optimizers:  # they stepped: what their wrapped ``step`` would record, so that lr
            optimizer._opt_called = True   # schedulers do not warn of a scheduler step before any optimizer step
        return logs

    def _groups(self) -> list[tuple[torch.optim.Optimizer, dict]]:
        """(optimizer, param group) for every group, read afresh (``load_state_dict`` replaces the groups)."""
        return [(optimizer, group) for optimizer in self.optimizers for group in optimizer.param_groups]

    @torch.no_grad()
    def _update(self, batch: dict[str, torch.Tensor], state: list[list[list[torch.Tensor]]],
                hyper: list[tuple[float, float, float, float]]) -> dict[str, torch.Tensor]:
        params = dict(self.nets.named_parameters())
        logs = {}
        for stage, groups in enumerate(self.stage_groups):
            trainable = {name: params[name].detach() for i in groups for name in self.group_names[i]}

            def total_loss(p: dict[str, torch.Tensor], stage: int = stage):
                return torch.func.functional_call(self.nets, p, (stage, batch), strict=False, tie_weights=False)

            grads, stage_logs = torch.func.grad(total_loss, has_aux=True)(trainable)
            logs.update(stage_logs)
            for i in groups:
                beta1, beta2, eps, weight_decay = hyper[i]
                step_size, bias_correction2_sqrt = self.scalars[i].unbind()
                for name, (step, exp_avg, exp_avg_sq) in zip(self.group_names[i], state[i]):
                    _adam(params[name], grads[name], step, exp_avg, exp_avg_sq, step_size, bias_correction2_sqrt,
                          beta1, beta2, eps, weight_decay)
        for target, source in self.targets:
            torch._foreach_lerp_(target, source, self.tau)
        return logs


# id(step tensor) -> (a weak reference to it, the step count last written through a compiled update): shared by
# every CompiledUpdate, since two may step one optimizer in turn (TD3+BC's critic-only and full updates)
_STEP_COUNTS: dict[int, tuple[weakref.ref, int]] = {}


def _next_step(step: torch.Tensor) -> int:
    """The step a param group is about to take (its parameters step together; ``step`` is its first one's), counted
    here: the step tensor is read only when it is new (first call, a loaded checkpoint), so no device sync per
    call. Adam's eager ``step()`` on the same optimizer between compiled calls would go unseen: not done here."""
    key = id(step)
    known = _STEP_COUNTS.get(key)
    if known is not None and known[0]() is step:
        ref, t = known[0], known[1] + 1
    else:
        ref, t = weakref.ref(step, lambda _: _STEP_COUNTS.pop(key, None)), int(step.item()) + 1
    _STEP_COUNTS[key] = (ref, t)
    return t


def _adam_state(optimizer: torch.optim.Optimizer, group: dict) -> list[list[torch.Tensor]]:
    """Per parameter of the group: [step, exp_avg, exp_avg_sq] from the optimizer's state, created as
    ``torch.optim.Adam`` creates them on its first step (so checkpoints move between the two paths)."""
    state = []
    for p in group["params"]:
        s = optimizer.state[p]
        if not s:
            s["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            s["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            s["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state.append([s["step"], s["exp_avg"], s["exp_avg_sq"]])
    return state


def _adam(p: torch.Tensor, grad: torch.Tensor, step: torch.Tensor, exp_avg: torch.Tensor,
          exp_avg_sq: torch.Tensor, step_size: torch.Tensor, bias_correction2_sqrt: torch.Tensor, beta1: float,
          beta2: float, eps: float, weight_decay: float) -> None:
    """One ``torch.optim.Adam`` step of one parameter (amsgrad off), in place; ``step_size`` = lr / (1 -
    beta1^t) and ``bias_correction2_sqrt`` = sqrt(1 - beta2^t) for the step t being taken."""
    if weight_decay:
        grad = grad + weight_decay * p
    step.add_(1)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    p.sub_(step_size * exp_avg / (exp_avg_sq.sqrt() / bias_correction2_sqrt + eps))


def _check_adam(optimizer: torch.optim.Optimizer) -> None:
    if type(optimizer) is not torch.optim.Adam:
        raise TypeError(f"CompiledUpdate runs Adam only, not {type(optimizer).__name__}")
    for group in optimizer.param_groups:
        if group.get("amsgrad") or group.get("maximize") or group.get("differentiable"):
            raise ValueError("CompiledUpdate runs plain Adam: amsgrad, maximize and differentiable must be off")
