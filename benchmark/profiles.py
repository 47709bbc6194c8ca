"""Budget profiles: one name fixes every step count (data sizes, learner steps, evaluation) of a run."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from envs import BenchError


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    data: str               # data scale (envs.datasets.DATA_SCALES): dataset sizes this profile trains on
    num_steps: int          # learner updates per run
    eval_every: int         # evaluate (and checkpoint) every this many updates, and at the end
    eval_episodes: int      # deterministic evaluation episodes per evaluation
    log_every: int          # training scalars are synced, checked for NaN and logged this often
    expert_episodes: int = 5  # D^E = the first this many expert episodes (the paper's protocol; grid.EXPERT_DRAWS)
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-method phase budgets
    method_steps: dict[str, dict[str, int]] = field(default_factory=dict)  # method -> family -> num_steps

    def steps_for(self, method: str, family: str) -> int:
        """Learner updates of one run: the profile's, unless the method has its own budget (SRA's 200k/500k)."""
        return self.method_steps.get(method, {}).get(family, self.num_steps)

    def settings(self) -> dict[str, Any]:
        """The run settings the runner owns (stored with every result)."""
        return {k: v for k, v in asdict(self).items() if k not in ("description", "method_overrides", "method_steps")}


# SAC-N's 25 critics cost ~0.3 s per update on one CPU core; smoke shrinks them to keep runs seconds-long.
_SMOKE_SACN = {"learner": {"num_critics": 5, "hidden_dims": [64, 64, 64]}}
SRA_METHODS = ("sra", "sra-iql", "sra-td3bc", "sra-awac", "sra-sacn")  # sra-noaug: no phases, SRA's run length
# SRA's phases per profile: schedule (warm-up, round spacing), augmentation budget, model training budget.
_SRA = {
    "smoke": {"warmup_steps": 100, "round_every": 100, "augmentation_budget": 2_000,
              "model": {"hidden_dims": [64, 64], "max_steps": 50}, "cvae": {"num_steps": 50}},
    # quick: 2x256 reverse models for at most 3k steps (2x1024 for 20 epochs is hours on a CPU), with Adam 1e-3:
    # SGD 1e-4 learns too little in 3k steps (umaze: one-step error on expert states 0.89 x "no change"; Adam
    # 1e-3: 0.02 x; scripts/model_error.py, docs/results.md)
    "quick": {"warmup_steps": 5_000, "round_every": 2_500, "augmentation_budget": 300_000,
              "model": {"hidden_dims": [256, 256], "max_steps": 3_000, "optimizer": "adam", "lr": 1e-3},
              "cvae": {"num_steps": 5_000}},
    "paper": {},  # the Config defaults: the paper's and the official code's budgets
}


def _sra(profile: str) -> dict[str, dict[str, Any]]:
    overrides = {m: dict(_SRA[profile]) for m in SRA_METHODS}
    if profile == "smoke":
        overrides["sra-sacn"]["learner"] = _SMOKE_SACN["learner"]
    return overrides


# ROMI / MILO / CLARE: model budgets, rollouts and (CLARE) reward schedule per profile. MILO and CLARE get the same
# forward model settings, so with BENCH_MODEL_CACHE set they share one trained model per (task, seed).
_SMOKE_MODEL = {"hidden_dims": [64, 64], "weight_decay": [2.5e-5, 5e-5, 1e-4], "max_steps": 100}
_SMOKE_SAC = {"hidden_dims": [64, 64]}
# quick: MOPO's 4x200 ensemble for at most 4k steps (early stopping on umaze; ~3 epochs on large)
_QUICK_MODEL = {"max_steps": 4_000}
_MODEL_BASED = {
    "smoke": {
        "romi": {"rollout_budget": 2_000, "model": _SMOKE_MODEL, "cvae": {"num_steps": 50}},
        "milo": {"model": _SMOKE_MODEL, "learner": _SMOKE_SAC, "rollout_batch": 200, "rollout_every": 50,
                 "buffer_size": 5_000, "bc_steps": 300, "bandwidth_pairs": 10_000},
        "clare": {"model": _SMOKE_MODEL, "learner": _SMOKE_SAC, "reward_hidden_dims": [64, 64],
                  "rollout_batch": 200, "rollout_every": 20, "first_reward_update": 20, "reward_every": 100,
                  "reward_batch_size": 256, "replay_samples": 1_000, "replay_size": 20_000},
    },
    "quick": {
        "romi": {"rollout_budget": 300_000, "model": _QUICK_MODEL, "cvae": {"num_steps": 5_000}},
        "milo": {"model": _QUICK_MODEL, "rollout_batch": 2_000, "bc_steps": 5_000},
        # 2k starts every 50 updates (official: 5k every 20); ~10 reward updates in 20k steps (official: 10)
        "clare": {"model": _QUICK_MODEL, "rollout_batch": 2_000, "rollout_every": 50, "reward_every": 2_000},
    },
    "paper": {},  # the Config defaults: the papers' and the official codes' budgets
}

PROFILES: dict[str, Profile] = {p.name: p for p in [
    Profile("smoke", "seconds per run: CI and wiring checks, scores mean nothing (SAC-N shrunk)",
            data="smoke", num_steps=300, eval_every=100, eval_episodes=2, log_every=20,
            method_overrides={"uds-sacn": _SMOKE_SACN, **_sra("smoke"), **_MODEL_BASED["smoke"]}),
    Profile("quick", "minutes per run on a laptop CPU: the embedded default",
            data="quick", num_steps=20_000, eval_every=2_000, eval_episodes=30, log_every=200,
            method_overrides={**_sra("quick"), **_MODEL_BASED["quick"]}),
    Profile("paper", "the paper's budgets: 1M learner steps, 30 evaluation episodes every 5k steps",
            data="paper", num_steps=1_000_000, eval_every=5_000, eval_episodes=30, log_every=1_000,
            method_steps={m: {"maze2d": 200_000, "locomotion": 500_000} for m in (*SRA_METHODS, "sra-noaug")}),
]}
DEFAULT_PROFILE = "quick"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise BenchError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}") from None
