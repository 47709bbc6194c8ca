"""What every learner shares: the state-dict plumbing over one list of parts, the schedules a method passes in,
the behaviour-cloning regularizer, and acting."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from methods.learners.schedules import Schedule
from methods.state import load_part, part_state


class LearnerBase:
    """Subclasses list every network and optimizer once in ``parts()``; checkpoints cannot miss one. Each
    ``update`` ends with ``after_update()``, which runs the schedules."""

    actor: nn.Module
    num_updates: int
    schedules: tuple[Schedule, ...] = ()
    _compiled = None  # set by compile_update

    def compile_update(self) -> bool:
        """Run each later update as one compiled graph (methods/compiled_step.py) where this learner has that
        path; False (and nothing changes) where it has not."""
        return False

    @property
    def compile_s(self) -> float:
        """Seconds its compiled update spent compiling (the first call's wall time); 0 where it runs eagerly."""
        return self._compiled.compile_s if self._compiled is not None else 0.0

    def parts(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {name: part for name, part in self.parts().items() if isinstance(part, torch.optim.Optimizer)}

    def use_schedules(self, schedules: Sequence[Schedule]) -> None:
        """Bind the method's schedules to this learner's optimizers (before the first update)."""
        for schedule in schedules:
            schedule.bind(self.optimizers())
        self.schedules = tuple(schedules)

    def after_update(self) -> None:
        for schedule in self.schedules:
            schedule.after_update(self.num_updates)

    def state_dict(self) -> dict:
        state = {name: part_state(part) for name, part in self.parts().items()}
        state["schedules"] = [schedule.state_dict() for schedule in self.schedules]
        state["num_updates"] = self.num_updates
        return state

    def load_state_dict(self, state: dict) -> None:
        for name, part in self.parts().items():
            load_part(part, state[name], name)
        if len(state["schedules"]) != len(self.schedules):
            raise ValueError(f"the state holds {len(state['schedules'])} schedules, this learner has "
                             f"{len(self.schedules)}")
        for schedule, schedule_state in zip(self.schedules, state["schedules"]):
            schedule.load_state_dict(schedule_state)
        self.num_updates = state["num_updates"]

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action for normalized observations."""
        return self.actor.act(obs)


def row_log_likelihood(actor: nn.Module, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Per row, the actor's log-likelihood of ``act`` (a deterministic actor: ``squared_error_log_likelihood``)."""
    if hasattr(actor, "log_prob"):
        return actor.log_prob(obs, act)
    return squared_error_log_likelihood(actor(obs), act)


def squared_error_log_likelihood(pred: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """A deterministic actor's per-row stand-in for a log-likelihood: minus the mean squared error over action
    dimensions (a fixed-variance Gaussian's, up to scale and a constant)."""
    return -(pred - act).pow(2).mean(-1)


def bc_log_likelihood(actor: nn.Module, batch: dict[str, torch.Tensor],
                      batch_log_likelihood: torch.Tensor | None = None) -> torch.Tensor:
    """The behaviour-cloning regularizer, one concept for every learner: each actor loss subtracts its config's
    ``bc_weight`` times this mean log-likelihood of the BC rows. The method says where those rows are by what it
    puts in the batch:

    - separate rows ``batch["bc_obs"]``, ``batch["bc_act"]`` when present (CLARE, MILO: their batches are model
      rollouts);
    - else the batch's own rows flagged in ``batch["expert"]`` (SRA: the expert half), averaged over the flagged
      rows; ``batch_log_likelihood``, the actor's ``row_log_likelihood`` of the batch's (obs, act) when the actor
      loss has it already, is reused (one forward pass, one graph).
    """
    if "bc_obs" in batch:
        return row_log_likelihood(actor, batch["bc_obs"], batch["bc_act"]).mean()
    if "expert" not in batch:
        raise KeyError("bc_weight > 0 needs BC rows in the batch: bc_obs/bc_act, or a mask batch['expert']")
    expert = batch["expert"]
    if batch_log_likelihood is None:
        batch_log_likelihood = row_log_likelihood(actor, batch["obs"], batch["act"])
    return (expert * batch_log_likelihood).sum() / expert.sum().clamp(min=1.0)


def ensemble_td_loss(q: torch.Tensor, target: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Squared TD error of every ensemble member, (N, B) vs (B,): batch mean, then summed over members (CORL's
    TD3+BC, AWAC, SAC-N) or averaged (``reduction="mean"``: CORL's and SRA's official IQL)."""
    per_member = (q - target).pow(2).mean(1)
    return per_member.mean() if reduction == "mean" else per_member.sum()
