"""What every learner shares: the state-dict plumbing over one list of parts, and acting."""
from __future__ import annotations

import torch
from torch import nn


class LearnerBase:
    """Subclasses list every network and optimizer once in ``parts()``; checkpoints cannot miss one."""

    actor: nn.Module

    def parts(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        state = {name: part.state_dict() for name, part in self.parts().items()}
        state["num_updates"] = self.num_updates
        return state

    def load_state_dict(self, state: dict) -> None:
        for name, part in self.parts().items():
            part.load_state_dict(state[name])
        self.num_updates = state["num_updates"]

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action for normalized observations."""
        return self.actor.act(obs)


def step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def ensemble_td_loss(q: torch.Tensor, target: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Squared TD error of every ensemble member, (N, B) vs (B,): batch mean, then summed over members (CORL's
    TD3+BC, AWAC, SAC-N) or averaged (``reduction="mean"``: CORL's and SRA's official IQL)."""
    per_member = (q - target).pow(2).mean(1)
    return per_member.mean() if reduction == "mean" else per_member.sum()
