"""Learning-rate schedules a method passes to its learner (``build_learner(..., schedules)``), so learner configs
hold only their algorithm's hyper-parameters. The learner binds each to its optimizers (by part name, e.g.
``actor_optimizer``) before its first update, calls them in the given order after every update, and checkpoints
them with its other parts: a resumed run continues the same lr sequence."""
from __future__ import annotations

import torch


class Schedule:
    """Changes some of a learner's learning rates as updates go by."""

    optimizers: dict[str, torch.optim.Optimizer]

    def bind(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        self.optimizers = optimizers

    def after_update(self, num_updates: int) -> None:
        """Called after each update, ``num_updates`` counting it."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class CosineDecay(Schedule):
    """One optimizer's lr decays by a cosine to 0 over ``steps`` updates (CORL's and SRA's actor schedule).

    torch's chainable CosineAnnealingLR: each step rescales the *current* lr, so after another schedule sets it
    (``LRDrop``) the decay goes on from there, as SRA's official code (it sets the lrs by hand and keeps stepping
    its scheduler). It counts learner updates, also where the optimizer skips some (TD3+BC's delayed actor: torch
    then warns that the scheduler stepped first)."""

    def __init__(self, steps: int, optimizer: str = "actor_optimizer"):
        if steps < 1:
            raise ValueError(f"CosineDecay needs steps >= 1, got {steps}")
        self.steps, self.optimizer = steps, optimizer

    def bind(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        super().bind(optimizers)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizers[self.optimizer], self.steps)

    def after_update(self, num_updates: int) -> None:
        self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


class LRDrop(Schedule):
    """After update ``at`` every optimizer's lr becomes the ``reference`` optimizer's current lr / ``factor``
    (SRA on maze2d). No state of its own: the lrs are part of the optimizers' state."""

    def __init__(self, at: int, factor: float = 10, reference: str = "actor_optimizer"):
        self.at, self.factor, self.reference = at, factor, reference

    def after_update(self, num_updates: int) -> None:
        if num_updates != self.at:
            return
        lr = self.optimizers[self.reference].param_groups[0]["lr"] / self.factor
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr
