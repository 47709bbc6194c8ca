"""Do SRA's augmented (or ROMI's imagined) maze2d transitions obey the maze's physics?

    PYTHONPATH=. python scripts/augmentation_physics.py --task maze2d-medium-sparse --profile quick
    PYTHONPATH=. python scripts/augmentation_physics.py --method romi --task maze2d-large-sparse --profile quick

Fits the method's reverse model as a run would (through $BENCH_MODEL_CACHE if set) and generates its data (SRA:
one augmentation round; ROMI: its imagined buffer), then sets the real env to each sampled predicted predecessor,
steps it with the transition's action and prints how far it lands from the state the transition claims to reach
(SRA: per reverse step), beside how far that step moves; the same for real D^S transitions (exactly 0 when the env
replays the data). For ROMI, which samples each step from a random elite's Gaussian, also the share of rows on which
each elite's predicted position std is above 0.05 (a variance head still at its cap)."""
from __future__ import annotations

import argparse

import numpy as np
import torch

from envs.maze import make_maze_env
from methods.data import Transitions
from scripts.inprocess import add_run_arguments, build_run


JUMP = 0.05  # a position error this large is a jump: one step moves ~0.01 (cells are 1 wide)
HEADER = ("landing error, median pos / vel | p90 pos / vel | share with pos error > 0.05 | "
          "the step's own move, median pos / vel")


def landing_errors(point, obs, act, next_obs) -> np.ndarray:
    """|state reached by stepping the env from obs with act - next_obs| per transition: (n, 4) = x, y, vx, vy."""
    errors = []
    for s, a, s2 in zip(obs, act, next_obs):
        point.set_state(s[:2].astype(np.float64), s[2:].astype(np.float64))
        reached, *_ = point.step(a.astype(np.float64))
        errors.append(np.abs(reached[:4] - s2))
    return np.array(errors)


def summary(err: np.ndarray, move: np.ndarray) -> str:
    """One table row from ``landing_errors`` and the transitions' own |next_obs - obs|."""
    return (f"{np.median(err[:, :2]):.4f} / {np.median(err[:, 2:]):.4f} | "
            f"{np.percentile(err[:, :2], 90):.4f} / {np.percentile(err[:, 2:], 90):.4f} | "
            f"{(err[:, :2].max(1) > JUMP).mean():.3f} | {np.median(move[:, :2]):.4f} / {np.median(move[:, 2:]):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("sra", "romi"), default="sra")
    parser.add_argument("--sample", type=int, default=300, help="transitions checked (SRA: per reverse step)")
    add_run_arguments(parser, task="maze2d-medium-sparse")
    args = parser.parse_args()
    run = build_run(args)
    method, task = run.method, run.task
    fit = method.pretrain(lambda iterable, **_: iterable)  # ROMI: fits and imagines
    print(f"model: one-step error {fit['model/one_step_mse']:.2e} (no change {fit['model/no_change_mse']:.2e})")
    env = make_maze_env(task)
    env.reset(seed=args.seed)
    point, rng = env.unwrapped.point_env, np.random.default_rng(args.seed)

    def check(rows: Transitions) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.choice(len(rows), min(args.sample, len(rows)), replace=False)
        err = landing_errors(point, rows.observations[idx], rows.actions[idx], rows.next_observations[idx])
        return err, np.abs(rows.next_observations[idx] - rows.observations[idx])

    if args.method == "romi":  # one table: ROMI's buffer interleaves its reverse steps chunk by chunk
        imagined = method.imagined
        print(f"imagined transitions: {HEADER}\n{len(imagined):>20} | {summary(*check(imagined))}")
        idx = rng.choice(len(imagined), min(args.sample, len(imagined)), replace=False)
        with torch.no_grad():
            _, log_var = method.model(torch.as_tensor(imagined.next_observations[idx]),
                                      torch.as_tensor(imagined.actions[idx]))
        std = torch.exp(0.5 * log_var[method.model.elites]).numpy()
        print("per elite, share of these rows with predicted position std > 0.05:",
              " ".join(f"{x:.3f}" for x in (std[..., :2].max(-1) > JUMP).mean(1)))
    else:
        method.augmentation_round()
        aug, horizon = method.augmented, method.config.horizon
        keep = len(aug) // horizon
        print(f"reverse step | {HEADER}")
        for step in range(horizon):
            err, move = check(aug.select(step * keep + np.arange(keep), np.zeros(0, np.int64)))
            print(f"{step:>12} | {summary(err, move)}")
    err, _ = check(method.data.supplementary)
    print(f"real D^S transitions: median landing error {np.median(err[:, :2]):.5f} / {np.median(err[:, 2:]):.5f}")


if __name__ == "__main__":
    main()
