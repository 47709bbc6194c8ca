"""Do SRA's augmented maze2d transitions obey the maze's physics?

    PYTHONPATH=. python scripts/augmentation_physics.py --task maze2d-medium-sparse --profile quick

Fits SRA's reverse model as a run would (through $BENCH_MODEL_CACHE if set), runs one augmentation round, then
sets the real env to each sampled predicted predecessor, steps it with the transition's action and prints how far
it lands from the state the transition claims to reach, per reverse step, beside how far that step moves; the same
for real D^S transitions (exactly 0 when the env replays the data)."""
from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmark.config import resolve_config
from benchmark.grid import expand_grid
from benchmark.profiles import get_profile
from benchmark.runner import load_imitation_data
from envs.maze import make_maze_env
from envs.tasks import get_task
from methods.registry import get_method


def landing_errors(point, obs, act, next_obs) -> np.ndarray:
    """|state reached by stepping the env from obs with act - next_obs| per transition: (n, 4) = x, y, vx, vy."""
    errors = []
    for s, a, s2 in zip(obs, act, next_obs):
        point.set_state(s[:2].astype(np.float64), s[2:].astype(np.float64))
        reached, *_ = point.step(a.astype(np.float64))
        errors.append(np.abs(reached[:4] - s2))
    return np.array(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="maze2d-medium-sparse")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, default=300, help="transitions checked per reverse step")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    profile, task, cls = get_profile(args.profile), get_task(args.task), get_method("sra")
    config = resolve_config(cls, expand_grid(["sra"], [args.task], [args.seed], profile)[0].config)
    data = load_imitation_data(task, profile.data, profile.expert_episodes)
    torch.manual_seed(args.seed)
    method = cls(task, data, config, args.seed, torch.device("cpu"), profile.num_steps)
    fit = method.pretrain(lambda iterable, **_: iterable)
    print(f"model: one-step error {fit['model/one_step_mse']:.2e} (no change {fit['model/no_change_mse']:.2e})")
    method.augmentation_round()
    aug, horizon = method.augmented, config.horizon
    env = make_maze_env(task)
    env.reset(seed=args.seed)
    point, rng = env.unwrapped.point_env, np.random.default_rng(args.seed)
    keep = len(aug) // horizon
    print("reverse step | landing error, median pos / vel | p90 pos / vel | the step's own move, median pos / vel")
    for step in range(horizon):
        idx = step * keep + rng.choice(keep, min(args.sample, keep), replace=False)
        err = landing_errors(point, aug.observations[idx], aug.actions[idx], aug.next_observations[idx])
        move = np.abs(aug.next_observations[idx] - aug.observations[idx])
        print(f"{step:>12} | {np.median(err[:, :2]):.4f} / {np.median(err[:, 2:]):.4f} | "
              f"{np.percentile(err[:, :2], 90):.4f} / {np.percentile(err[:, 2:], 90):.4f} | "
              f"{np.median(move[:, :2]):.4f} / {np.median(move[:, 2:]):.4f}")
    sup = data.supplementary
    idx = rng.choice(len(sup), min(args.sample, len(sup)), replace=False)
    err = landing_errors(point, sup.observations[idx], sup.actions[idx], sup.next_observations[idx])
    print(f"real D^S transitions: median landing error {np.median(err[:, :2]):.5f} / {np.median(err[:, 2:]):.5f}")


if __name__ == "__main__":
    main()
