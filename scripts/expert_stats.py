"""A maze expert's episodes from D4RL's resets: mean sparse return (D4RL's geometry) and steps to first reach
the goal, to compare with the official SRA expert data (umaze 226.9 / 74 steps, medium 420.4 / 181; issue 18).

    PYTHONPATH=. python scripts/expert_stats.py --maze umaze medium --expert waypoint --episodes 200
"""
from __future__ import annotations

import argparse

import numpy as np

from envs.maze_datasets import MAZE_EXPERTS, maze_expert, rollout_episodes
from envs.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maze", nargs="+", default=["umaze", "medium", "large"])
    parser.add_argument("--expert", choices=MAZE_EXPERTS, default="waypoint")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for size in args.maze:
        task = get_task(f"maze2d-{size}-sparse")
        rng = np.random.default_rng(args.seed)
        policy, _ = maze_expert(task, args.expert, rng)
        episodes = rollout_episodes(task, policy, args.episodes, rng)
        returns = np.array([e.rewards.sum() for e in episodes])
        first = np.array([np.argmax(e.rewards > 0) + 1 if e.rewards.any() else np.nan for e in episodes])
        print(f"{size}: {args.expert} expert, {args.episodes} episodes: sparse return {returns.mean():.1f} "
              f"± {returns.std(ddof=1) / np.sqrt(len(returns)):.1f} (SE), steps to the goal {np.nanmean(first):.1f}, "
              f"never reached {int(np.isnan(first).sum())}")


if __name__ == "__main__":
    main()
