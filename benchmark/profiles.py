"""Budget profiles: one name fixes every step count (data sizes, learner steps, evaluation) of a run."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from core.errors import BenchError


@dataclass(frozen=True)
class Profile:
    """Profile-wide settings. What a profile gives one method (smaller models, SRA's own run length) is declared
    in the method's file: its ``budgets`` and ``run_steps`` (methods/base.py)."""
    name: str
    description: str
    data: str               # data scale (envs.storage.DATA_SCALES): dataset sizes this profile trains on
    num_steps: int          # learner updates per run (unless the method has its own: ``Method.run_steps``)
    eval_every: int         # evaluate (and checkpoint) every this many updates, and at the end
    eval_episodes: int      # deterministic evaluation episodes per evaluation
    log_every: int          # training scalars are synced, checked for NaN and logged this often
    expert_episodes: int = 5  # D^E = the first this many expert episodes (the paper's protocol; grid.EXPERT_DRAWS)

    def settings(self) -> dict[str, Any]:
        """The run settings the runner owns (stored with every result)."""
        return {k: v for k, v in asdict(self).items() if k != "description"}


PROFILES: dict[str, Profile] = {p.name: p for p in [
    Profile("smoke", "seconds per run: CI and wiring checks, scores mean nothing (SAC-N shrunk)",
            data="smoke", num_steps=300, eval_every=100, eval_episodes=2, log_every=20),
    Profile("quick", "minutes per run on a laptop CPU: the embedded default",
            data="quick", num_steps=20_000, eval_every=2_000, eval_episodes=30, log_every=200),
    Profile("paper", "the paper's budgets: 1M learner steps, 30 evaluation episodes every 5k steps",
            data="paper", num_steps=1_000_000, eval_every=5_000, eval_episodes=30, log_every=1_000),
]}
DEFAULT_PROFILE = "quick"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise BenchError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}") from None
