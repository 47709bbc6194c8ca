"""Maze2d datasets, generated offline and stored as Minari datasets (``envs/storage.py``).

Per maze map and data scale there are two Minari datasets (sparse and dense tasks share them):
``bench/maze2d-<map>/expert[-<scale>]-v1`` (noise-free episodes of D4RL's waypoint controller from D4RL's
resets to D4RL's target) and ``bench/maze2d-<map>/supplementary[-<scale>]-v1`` (D4RL's continuing
collection toward random targets with Gaussian action noise); ``--maze-expert planner`` uses the grid
planner instead. Rewards follow D4RL's geometry (``envs/maze.py``). Scores use D4RL's reference returns;
the mean returns of a random policy and of the data's own expert are stored in the expert dataset's
metadata for the secondary "% of our expert" scale.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from core.errors import BenchError
from envs.storage import DATA_SCALES, KINDS, Episode, dataset_id, dataset_status, write_dataset
from envs.tasks import TaskSpec

ACTION_NOISE_STD = 0.5  # D4RL's maze2d generator: a + N(0, 0.5^2), then clipped

# An episode policy: called at an episode start (or a goal change) with the observation and the target, it
# returns the per-step policy obs -> action for what follows.
EpisodePolicy = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]
MAZE_EXPERTS = ("waypoint", "planner")  # D4RL's waypoint controller (default) | this suite's grid planner


def maze_expert(task: TaskSpec, kind: str, rng: np.random.Generator) -> tuple[EpisodePolicy, Callable[[], bool]]:
    """(episode policy, "target reached?") of a maze expert: ``waypoint`` re-plans (and re-jitters its
    waypoints) at every call, as the official SRA data were made; ``planner`` is deterministic."""
    from envs import d4rl_maze
    from envs.maze import MazeGrid, PlannerExpert, maze_grid
    grid: MazeGrid = maze_grid(task)
    if kind == "waypoint":
        expert = d4rl_maze.GymWaypointExpert(grid.walls, rng)

        def start(obs, target):
            expert.set_goal(target, obs)
            return expert.act
        return start, lambda: expert.solved
    if kind == "planner":
        planner, seen = PlannerExpert(grid), {}

        def act(obs):
            seen["obs"] = obs
            return planner.act(obs)

        def start_planner(obs, target):
            planner.set_goal(target)
            seen.pop("obs", None)
            return act
        # reached: the last observation acted on lies within D4RL's radius of the target
        return start_planner, lambda: "obs" in seen and bool(
            np.linalg.norm(seen["obs"][:2] - planner.goal) <= d4rl_maze.GOAL_RADIUS)
    raise BenchError(f"unknown maze expert {kind!r}; valid: {', '.join(MAZE_EXPERTS)}")


def rollout_episodes(task: TaskSpec, policy: EpisodePolicy, num_episodes: int, rng: np.random.Generator,
                     progress: Callable[[int], None] | None = None) -> list[Episode]:
    """Episodes on the evaluation env (D4RL's resets and target) under ``policy``."""
    from envs.maze import make_maze_env, maze_rewards, reset_to_goal
    env = make_maze_env(task)
    episodes = []
    for _ in range(num_episodes):
        obs = reset_to_goal(env, task, rng)
        target = env.unwrapped.goal.copy()
        act = policy(obs, target)
        observations, actions = [obs], []
        for _ in range(task.max_episode_steps):
            action = act(obs)
            step_obs, _, terminated, truncated, _ = env.step(action)
            obs = step_obs["observation"].copy()
            observations.append(obs)
            actions.append(action)
        observations = np.asarray(observations)
        sparse, dense = maze_rewards(observations[1:, :2], target)
        T = len(actions)
        episodes.append(Episode(observations, np.asarray(actions, np.float32), sparse, dense,
                                np.zeros(T, bool), _time_limit_flags(T)))
        if progress:
            progress(T)
    env.close()
    return episodes


def supplementary_episodes(task: TaskSpec, num_steps: int, rng: np.random.Generator, expert: str = "waypoint",
                           progress: Callable[[int], None] | None = None) -> list[Episode]:
    """D4RL's maze2d collection: the expert with action noise N(0, 0.5^2) toward random targets (any free cell's
    D4RL point +- 0.1), a new target on arrival and at every time limit; the point is reset only at the start,
    and the stream is cut into time-limit chunks (truncations) as D4RL did.
    Rewards are relabelled w.r.t. the task's fixed evaluation target (methods never see them)."""
    from envs import d4rl_maze
    from envs.maze import MazeGrid, evaluation_target, make_maze_env, maze_rewards, reset_to_goal, set_goal
    env = make_maze_env(task)
    grid = MazeGrid.from_env(env)
    frame = d4rl_maze.Frame(*grid.walls.shape)
    policy, reached = maze_expert(task, expert, rng)
    eval_target = evaluation_target(grid, task)
    free = grid.free_cells

    def new_target(obs):
        target = frame.position_to_gym(free[rng.integers(len(free))] + rng.uniform(-0.1, 0.1, 2))
        set_goal(env, target)
        return target, policy(obs, target)

    obs = reset_to_goal(env, task, rng)
    episodes, done_steps = [], 0
    while done_steps < num_steps:
        target, act = new_target(obs)
        T = min(task.max_episode_steps, num_steps - done_steps)
        observations, actions = [obs], []
        for _ in range(T):
            action = np.clip(act(obs) + ACTION_NOISE_STD * rng.standard_normal(2), -1, 1).astype(np.float32)
            arrived = reached()
            step_obs, *_ = env.step(action)
            obs = step_obs["observation"].copy()
            observations.append(obs)
            actions.append(action)
            if arrived:
                target, act = new_target(obs)
        observations = np.asarray(observations)
        sparse, dense = maze_rewards(observations[1:, :2], eval_target)
        episodes.append(Episode(observations, np.asarray(actions), sparse, dense,
                                np.zeros(T, bool), _time_limit_flags(T)))
        done_steps += T
        if progress:
            progress(T)
    env.close()
    return episodes


def _time_limit_flags(length: int) -> np.ndarray:
    flags = np.zeros(length, bool)
    flags[-1] = True
    return flags


def random_policy(task: TaskSpec, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    low, high = task.action_bounds()
    return lambda obs: rng.uniform(low, high).astype(np.float32)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for each part of a maze map's data, all from the one generation seed."""
    names = ("expert", "random-actions", "random-starts", "supplementary")
    return dict(zip(names, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(names)))))


def _mean_returns(episodes: list[Episode]) -> dict[str, float]:
    return {"sparse": float(np.mean([e.rewards.sum() for e in episodes])),
            "dense": float(np.mean([e.dense_rewards.sum() for e in episodes]))}


def maze_reference(task: TaskSpec, expert_episodes: list[Episode], random_episodes: int, seed: int,
                   progress: Callable[[int], None] | None = None) -> dict[str, dict[str, float]]:
    """{"sparse"|"dense": {"min", "max"}}: mean returns of a uniform-random policy over ``random_episodes``
    evaluation episodes (min) and of ``expert_episodes`` (max), stored with a maze map's datasets."""
    streams = _streams(seed)
    act = random_policy(task, int(streams["random-actions"].integers(2**31)))
    random_eps = rollout_episodes(task, lambda obs, target: act, random_episodes, streams["random-starts"],
                                  progress=progress)
    low, high = _mean_returns(random_eps), _mean_returns(expert_episodes)
    return {rt: {"min": low[rt], "max": high[rt]} for rt in ("sparse", "dense")}


def generate_maze_datasets(task: TaskSpec, scale: str, seed: int = 0, force: bool = False,
                           progress_factory=None, log=print, expert: str = "waypoint") -> list[str]:
    """Build the expert and supplementary datasets of ``task``'s map at ``scale`` with the ``expert``
    (``MAZE_EXPERTS``); return their ids. Existing complete datasets are kept unless ``force``; partial ones
    are rebuilt."""
    data = DATA_SCALES[scale]
    ids = {kind: dataset_id(task, kind, scale) for kind in KINDS}
    if not force and all(dataset_status(i) == "ok" for i in ids.values()):
        log(f"{task.group}: datasets already present ({', '.join(ids.values())}); --force rebuilds them")
        return list(ids.values())
    if expert not in MAZE_EXPERTS:
        raise BenchError(f"unknown maze expert {expert!r}; valid: {', '.join(MAZE_EXPERTS)}")
    streams = _streams(seed)
    horizon = task.max_episode_steps
    total = (data.expert_episodes + data.reference_episodes) * horizon + data.supplementary_steps[task.maze_map]
    bar = progress_factory(total=total, desc=f"generate {task.group} ({scale})") if progress_factory else None
    update = bar.update if bar else None
    policy, _ = maze_expert(task, expert, streams["expert"])
    expert_eps = rollout_episodes(task, policy, data.expert_episodes, streams["expert"], progress=update)
    reference = maze_reference(task, expert_eps, data.reference_episodes, seed, progress=update)
    supp_eps = supplementary_episodes(task, data.supplementary_steps[task.maze_map], streams["supplementary"],
                                      expert=expert, progress=update)
    if bar:
        bar.close()
    d4rl = {task.reward_type: task.fixed_reference()}
    common = {"bench_source": "generated", "bench_seed": seed, "bench_scale": scale, "bench_reference": reference,
              "bench_reference_episodes": data.reference_episodes, "bench_expert": expert}
    who = "D4RL's waypoint controller" if expert == "waypoint" else "the grid planner"
    write_dataset(ids["expert"], task, expert_eps, d4rl, {**common, "bench_kind": "expert"},
                  f"Noise-free episodes of {who} from D4RL's resets to D4RL's target of the map.",
                  algorithm_name=f"bench-maze-{expert}")
    write_dataset(ids["supplementary"], task, supp_eps, d4rl, {**common, "bench_kind": "supplementary"},
                  f"D4RL's recipe: {who} with action noise N(0, 0.5^2) driving to random targets, continuing.",
                  algorithm_name=f"bench-maze-{expert}")
    log(f"{task.group}: wrote {ids['expert']} ({len(expert_eps)} episodes, {expert} expert) and "
        f"{ids['supplementary']} ({sum(len(e.actions) for e in supp_eps)} steps); D4RL-geometry returns of a random "
        f"policy / this expert: sparse {reference['sparse']['min']:.1f} / {reference['sparse']['max']:.1f}, dense "
        f"{reference['dense']['min']:.1f} / {reference['dense']['max']:.1f} (D4RL's reference: sparse "
        f"{' / '.join(f'{v:g}' for v in _d4rl_pair(task, 'sparse'))}, dense "
        f"{' / '.join(f'{v:g}' for v in _d4rl_pair(task, 'dense'))})")
    return list(ids.values())


def _d4rl_pair(task: TaskSpec, reward_type: str) -> tuple[float, float]:
    from envs.d4rl_maze import REFERENCE
    return REFERENCE[(task.maze_map, reward_type)]


