"""Where does an IQL-based method's actor look? Per batch source: values, advantages and advantage weights.

    PYTHONPATH=. python scripts/iql_sources.py --method sra --task maze2d-large-sparse --profile quick --every 2500
    PYTHONPATH=. python scripts/iql_sources.py --method sra-noaug --task maze2d-large-sparse --profile quick

Trains the method as a run would (same config, seed, data, model cache; no checkpoints, no evaluation between the
printed points, which draw from their own RNGs), and every ``--every`` updates takes the batch the update just
used and prints, per source of its ``MixtureSampler`` (expert, supplementary, and SRA's augmented pool and newest
round or ROMI's imagined rows): mean V(s), min target Q(s, a), advantage (and its std), how much Q tells actions
apart there (std of Q(s, a') over uniform actions a'), the actor's advantage weight
exp(beta A) (clamped as in the update) and the share of the batch's total weight, which is each source's share of
the actor's advantage-weighted pull; then how far the actor's deterministic action is from the expert's on the
expert rows, and the final score of ``--episodes`` evaluation episodes (the run's own evaluation starts; on maze2d
also split by how many cells each start is from the goal, with where those episodes end and how fast they move)."""
from __future__ import annotations

import argparse

import numpy as np
import torch

from envs.evaluation import EVAL_SEED, _reset, evaluate, normalized_score
from envs.maze import MazeGrid, make_maze_env
from envs.storage import reference_returns
from scripts.inprocess import add_run_arguments, build_run


ACTION_PROBES = 8  # uniform actions per state for the Q-spread column


@torch.no_grad()
def source_table(method, batch, counts: dict[str, int]) -> list[str]:
    """One line per source of ``batch`` (rows in the sampler's order)."""
    learner, c = method.learner, method.learner.config
    obs, act = batch["obs"], batch["act"]
    q = learner.critic_target(obs, act).min(0).values
    v = learner.value(obs)
    advantage = q - v
    weight = torch.exp(c.temperature * advantage).clamp(max=c.max_weight)
    # how much Q tells actions apart at each state: the std of min Q(s, a') over uniform actions a'
    uniform = torch.rand(ACTION_PROBES, *act.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    q_spread = torch.stack([learner.critic_target(obs, a).min(0).values for a in uniform]).std(0)
    lines, start = [], 0
    for name, count in counts.items():
        if not count:
            continue
        rows = slice(start, start + count)
        start += count
        lines.append(f"  {name:<13} n {count:>3}  V {v[rows].mean():7.2f}  Q {q[rows].mean():7.2f}  "
                     f"A {advantage[rows].mean():+7.3f} (std {advantage[rows].std():.3f})  "
                     f"Q spread over actions {q_spread[rows].mean():.3f}  w {weight[rows].mean():6.2f}  "
                     f"w share {weight[rows].sum() / weight.sum():5.1%}  "
                     f"at max {(weight[rows] >= c.max_weight).float().mean():5.1%}")
    expert_rows = slice(0, counts["expert"])
    gap = (learner.actor.act(obs[expert_rows]) - act[expert_rows]).abs().mean()
    lines.append(f"  actor vs expert action on expert rows: mean |a_pi - a_E| {gap:.3f} "
                 f"(|a_E| {act[expert_rows].abs().mean():.3f})")
    return lines


def maze_episodes(act, task, episodes: int, run_seed: int) -> dict[str, np.ndarray]:
    """The run's own evaluation starts, replayed one by one: per episode, cells from the goal at the start and at
    the end (shortest path), and the mean speed."""
    env = make_maze_env(task)
    grid = MazeGrid.from_env(env)
    distance = grid.distances_to(task.goal_cell)
    low, high = task.action_bounds()
    out = {"start": [], "end": [], "speed": []}
    for i in range(episodes):
        obs = _reset(env, task, EVAL_SEED, run_seed, i)
        out["start"].append(distance[grid.xy_to_cell(obs[:2])])
        speeds, done = [], False
        while not done:
            step_obs, _, terminated, truncated, _ = env.step(np.clip(act(obs[None])[0], low, high))
            obs, done = step_obs["observation"], terminated or truncated
            speeds.append(np.linalg.norm(obs[2:4]))
        out["end"].append(distance[grid.xy_to_cell(obs[:2])])
        out["speed"].append(np.mean(speeds))
    return {k: np.array(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="sra", help="an IQL-learner method with a MixtureSampler: sra, "
                        "sra-noaug, romi, uds")
    parser.add_argument("--every", type=int, default=2500, help="print every this many updates")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many updates (default: the run's "
                        "length; the lr schedules still follow the full run's)")
    parser.add_argument("--episodes", type=int, default=30, help="evaluation episodes at the end (0: none)")
    add_run_arguments(parser, task="maze2d-large-sparse")
    args = parser.parse_args()
    run = build_run(args)
    method, task, num_steps = run.method, run.task, run.num_steps
    method.pretrain(lambda iterable, **_: iterable)
    sample, last = method.sampler.sample, {}

    def keep_batch():
        last["batch"] = sample()
        return last["batch"]

    method.sampler.sample = keep_batch
    stop = min(args.steps or num_steps, num_steps)
    for step in range(stop):
        method.update(step)
        if (step + 1) % args.every == 0 or step + 1 == stop:
            print(f"step {step + 1}", flush=True)
            print("\n".join(source_table(method, last["batch"], dict(method.sampler.counts))), flush=True)
    if args.episodes:
        returns = evaluate(method.act, task, args.episodes, run_seed=args.seed)
        score = normalized_score(returns, reference_returns(task, run.profile.data))
        print(f"final score over {args.episodes} episodes: {np.mean(score):.1f}")
        if task.family == "maze2d":
            trace = maze_episodes(method.act, task, args.episodes, args.seed)
            for near, far in ((0, 3), (4, 8), (9, np.inf)):
                rows = (trace["start"] >= near) & (trace["start"] <= far)
                if rows.any():
                    print(f"  starts {near}-{far} cells from the goal: {rows.sum():>2} episodes, score "
                          f"{np.mean(score[rows]):6.1f}, at the end {np.mean(trace['end'][rows]):4.1f} cells from "
                          f"the goal (start {np.mean(trace['start'][rows]):4.1f}), mean speed "
                          f"{np.mean(trace['speed'][rows]):.2f}")


if __name__ == "__main__":
    main()
