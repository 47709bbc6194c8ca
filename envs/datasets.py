"""Datasets: generate maze2d data offline, store it as Minari datasets, load it back as flat arrays.

Per maze map and data scale there are two Minari datasets (sparse and dense tasks share them):
``bench/maze2d-<map>/expert[-<scale>]-v0`` (noise-free planner episodes to the fixed evaluation goal)
and ``bench/maze2d-<map>/supplementary[-<scale>]-v0`` (D4RL-style continuing collection toward random
goals with Gaussian action noise). Reference returns (random policy = min, planner = max) for both
reward types are measured on the evaluation env and stored in the expert dataset's metadata.
Locomotion datasets (``bench/<robot>/{expert,medium,medium-expert}[-<scale>]-v0``) are built in
``envs/locomotion.py``, fetched or imported in ``envs/external.py``; every dataset records where it came
from in its metadata (``bench_source``: generated | minari | imported-d4rl).
"""
from __future__ import annotations

import contextlib
import io
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from envs import BenchError
from envs.tasks import TASKS, TaskSpec
from envs.validate import Arrays, DatasetDamaged, check

ACTION_NOISE_STD = 0.5  # D4RL's maze2d generator: a + N(0, 0.5^2), then clipped
COMPLETE_KEY = "bench_complete"  # written last: a dataset without it is partial
KINDS = ("expert", "supplementary")
SOURCES = ("generated", "minari", "imported-d4rl")  # metadata["bench_source"]


@dataclass(frozen=True)
class DataScale:
    """How much data a profile generates. ``suffix`` tags the dataset ids ("" for the paper's sizes)."""
    name: str
    supplementary_steps: dict[str, int]  # per maze map
    expert_episodes: int
    reference_episodes: int
    locomotion_steps: int = 0  # per locomotion dataset (expert and medium; medium-expert is both)

    @property
    def suffix(self) -> str:
        return "" if self.name == "paper" else f"-{self.name}"


DATA_SCALES = {
    "smoke": DataScale("smoke", {"umaze": 3_000, "medium": 4_800, "large": 6_400}, 10, 5, locomotion_steps=5_000),
    "quick": DataScale("quick", {"umaze": 100_000, "medium": 200_000, "large": 400_000}, 100, 100,
                       locomotion_steps=100_000),
    "paper": DataScale("paper", {"umaze": 1_000_000, "medium": 2_000_000, "large": 4_000_000}, 100, 100,
                       locomotion_steps=1_000_000),  # D4RL's 1M per locomotion dataset
}


def dataset_name(task: TaskSpec, kind: str) -> str:
    """The dataset a task reads for ``kind`` ("expert" | "supplementary"): D^S is "medium" on hopper-medium."""
    return task.supplementary_dataset if kind == "supplementary" else kind


def dataset_id(task: TaskSpec, kind: str, scale: str) -> str:
    return named_dataset_id(task, dataset_name(task, kind), scale)


def named_dataset_id(task: TaskSpec, name: str, scale: str) -> str:
    return f"{task.dataset_prefix}/{name}{DATA_SCALES[scale].suffix}-v0"


def datasets_root() -> Path:
    from minari.storage.datasets_root_dir import get_dataset_path
    return get_dataset_path()


def dataset_path(ds_id: str) -> Path:
    return datasets_root() / ds_id


# ----------------------------------------------------------------------------------------- generation
@dataclass
class Episode:
    observations: np.ndarray  # (T + 1, obs_dim)
    actions: np.ndarray       # (T, act_dim)
    rewards: np.ndarray       # (T,) sparse reward w.r.t. the task's evaluation goal
    dense_rewards: np.ndarray  # (T,)
    terminations: np.ndarray
    truncations: np.ndarray

    def buffer(self, episode_id: int):
        from minari.data_collector import EpisodeBuffer
        return EpisodeBuffer(id=episode_id, observations=self.observations, actions=self.actions,
                             rewards=self.rewards, terminations=self.terminations, truncations=self.truncations)


def rollout_episodes(task: TaskSpec, policy: Callable[[np.ndarray], np.ndarray], num_episodes: int,
                     seed: int, progress: Callable[[int], None] | None = None) -> list[Episode]:
    """Episodes on the evaluation env (random start cell, fixed goal) under ``policy``."""
    from envs.maze import make_maze_env, maze_rewards, reset_to_goal
    env = make_maze_env(task)
    episodes = []
    for i in range(num_episodes):
        obs = reset_to_goal(env, task, seed=seed + i)
        goal = env.unwrapped.goal.copy()
        observations, actions = [obs], []
        for _ in range(task.max_episode_steps):
            action = policy(obs)
            step_obs, _, terminated, truncated, _ = env.step(action)
            obs = step_obs["observation"].copy()
            observations.append(obs)
            actions.append(action)
        observations = np.asarray(observations)
        sparse, dense = maze_rewards(observations[1:, :2], goal)
        T = len(actions)
        episodes.append(Episode(observations, np.asarray(actions, np.float32), sparse, dense,
                                np.zeros(T, bool), _time_limit_flags(T)))
        if progress:
            progress(T)
    env.close()
    return episodes


def supplementary_episodes(task: TaskSpec, num_steps: int, seed: int,
                           progress: Callable[[int], None] | None = None) -> list[Episode]:
    """D4RL-style continuing collection: noisy planner toward random goal cells, re-sampled on arrival.

    The point is never reset; the stream is cut into time-limit chunks (truncations) as D4RL did.
    Rewards are relabelled w.r.t. the task's fixed evaluation goal (methods never see them).
    """
    from envs.maze import GOAL_RADIUS, MazeGrid, PlannerExpert, make_maze_env, maze_rewards, reset_to_goal, set_goal
    env = make_maze_env(task)
    grid = MazeGrid.from_env(env)
    rng = np.random.default_rng(seed)
    expert = PlannerExpert(grid)
    eval_goal = grid.cell_to_xy(task.goal_cell)
    free = grid.free_cells

    def new_goal():
        goal = grid.cell_to_xy(free[rng.integers(len(free))]) + rng.uniform(-0.25, 0.25, 2)
        set_goal(env, goal)
        expert.set_goal(goal)
        return goal

    obs = reset_to_goal(env, task, seed=seed)
    goal = new_goal()
    episodes, done_steps = [], 0
    while done_steps < num_steps:
        T = min(task.max_episode_steps, num_steps - done_steps)
        observations, actions = [obs], []
        for _ in range(T):
            action = np.clip(expert.act(obs) + ACTION_NOISE_STD * rng.standard_normal(2), -1, 1).astype(np.float32)
            step_obs, *_ = env.step(action)
            obs = step_obs["observation"].copy()
            observations.append(obs)
            actions.append(action)
            if np.linalg.norm(obs[:2] - goal) <= GOAL_RADIUS:
                goal = new_goal()
        observations = np.asarray(observations)
        sparse, dense = maze_rewards(observations[1:, :2], eval_goal)
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


def _mean_returns(episodes: list[Episode]) -> dict[str, float]:
    return {"sparse": float(np.mean([e.rewards.sum() for e in episodes])),
            "dense": float(np.mean([e.dense_rewards.sum() for e in episodes]))}


def maze_reference(task: TaskSpec, expert_episodes: list[Episode], random_episodes: int, seed: int,
                   progress: Callable[[int], None] | None = None) -> dict[str, dict[str, float]]:
    """{"sparse"|"dense": {"min", "max"}}: mean returns of a uniform-random policy over ``random_episodes``
    evaluation episodes (min) and of ``expert_episodes`` (max), stored with a maze map's datasets."""
    random_eps = rollout_episodes(task, random_policy(task, seed), random_episodes, seed=seed * 100_003 + 50_000,
                                  progress=progress)
    low, high = _mean_returns(random_eps), _mean_returns(expert_episodes)
    return {rt: {"min": low[rt], "max": high[rt]} for rt in ("sparse", "dense")}


def generate_maze_datasets(task: TaskSpec, scale: str, seed: int = 0, force: bool = False,
                           progress_factory=None, log=print) -> list[str]:
    """Build the expert and supplementary datasets of ``task``'s map at ``scale``; return their ids.

    Existing complete datasets are kept unless ``force``; partial ones are rebuilt.
    """
    from envs.maze import MazeGrid, PlannerExpert, make_maze_env
    data = DATA_SCALES[scale]
    ids = {kind: dataset_id(task, kind, scale) for kind in KINDS}
    if not force and all(dataset_status(i) == "ok" for i in ids.values()):
        log(f"{task.group}: datasets already present ({', '.join(ids.values())}); --force rebuilds them")
        return list(ids.values())
    env = make_maze_env(task)
    grid = MazeGrid.from_env(env)
    env.close()
    expert = PlannerExpert(grid)
    expert.set_goal(grid.cell_to_xy(task.goal_cell))
    horizon = task.max_episode_steps
    total = (data.expert_episodes + data.reference_episodes) * horizon + data.supplementary_steps[task.maze_map]
    bar = progress_factory(total=total, desc=f"generate {task.group} ({scale})") if progress_factory else None
    update = bar.update if bar else None
    expert_eps = rollout_episodes(task, expert.act, data.expert_episodes, seed=seed * 100_003 + 1, progress=update)
    reference = maze_reference(task, expert_eps, data.reference_episodes, seed, progress=update)
    supp_eps = supplementary_episodes(task, data.supplementary_steps[task.maze_map], seed=seed, progress=update)
    if bar:
        bar.close()
    common = {"bench_source": "generated", "bench_seed": seed, "bench_scale": scale, "bench_reference": reference,
              "bench_reference_episodes": data.reference_episodes}
    _write_dataset(ids["expert"], task, expert_eps, reference, {**common, "bench_kind": "expert"},
                   "Noise-free grid-planner episodes from random start cells to the fixed evaluation goal.")
    _write_dataset(ids["supplementary"], task, supp_eps, reference, {**common, "bench_kind": "supplementary"},
                   "D4RL-style noisy planner (action noise N(0, 0.5)) driving to random goals, continuing.")
    log(f"{task.group}: wrote {ids['expert']} ({len(expert_eps)} episodes) and {ids['supplementary']} "
        f"({sum(len(e.actions) for e in supp_eps)} steps); reference returns (random - planner): sparse "
        f"{reference['sparse']['min']:.1f} - {reference['sparse']['max']:.1f}, dense {reference['dense']['min']:.1f} - "
        f"{reference['dense']['max']:.1f}")
    return list(ids.values())


def _write_dataset(ds_id: str, task: TaskSpec, episodes: list[Episode], reference: dict, extra: dict,
                   description: str, algorithm_name: str = "bench-grid-planner") -> None:
    import gymnasium as gym
    import minari
    if any(np.asarray(e.observations).ndim != 2 or np.asarray(e.observations).shape[-1] != task.obs_dim
           for e in episodes):
        raise DatasetDamaged(f"dataset {ds_id}: observations do not have width {task.obs_dim}; not written")
    check(flat_arrays(episodes), task, ds_id, "not written (nothing was replaced)")
    path = dataset_path(ds_id)
    if path.exists():
        shutil.rmtree(path)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (task.obs_dim,), np.float64)
    act_space = gym.spaces.Box(task.action_low, task.action_high, (task.act_dim,), np.float32)
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minari warns that no env spec is attached: by design
        ds = minari.create_dataset_from_buffers(
            dataset_id=ds_id, buffer=[e.buffer(i) for i, e in enumerate(episodes)], observation_space=obs_space,
            action_space=act_space, algorithm_name=algorithm_name, author={"sra-bench"},
            ref_min_score=reference[task.reward_type]["min"], ref_max_score=reference[task.reward_type]["max"],
            description=description)
    ds.storage.update_metadata({**extra, COMPLETE_KEY: True})


# -------------------------------------------------------------------------------------------- loading
def dataset_status(ds_id: str) -> str:
    """"ok", "missing" or "partial" (a generation that did not finish)."""
    path = dataset_path(ds_id)
    if not (path / "data").exists():
        return "missing"
    try:
        from minari.dataset.minari_storage import MinariStorage
        return "ok" if MinariStorage.read_raw_metadata(path / "data").get(COMPLETE_KEY) else "partial"
    except Exception:
        return "partial"


def generate_command(task: TaskSpec, scale: str) -> str:
    profile = "" if scale == "quick" else f" --profile {scale}"
    return f"bench data generate --envs {task.group}{profile}"


def generate_datasets(task: TaskSpec, scale: str, seed: int = 0, force: bool = False, progress_factory=None,
                      log=print, policies_dir=None) -> list[str]:
    """Build the datasets of ``task``'s group (a maze map, or a robot's expert/medium/medium-expert)."""
    if task.family == "locomotion":
        from envs.locomotion import generate_locomotion_datasets
        return generate_locomotion_datasets(task, scale, seed=seed, force=force, progress_factory=progress_factory,
                                            log=log, policies_dir=policies_dir)
    return generate_maze_datasets(task, scale, seed=seed, force=force, progress_factory=progress_factory, log=log)


def dataset_source(ds_id: str) -> str:
    """Where a dataset came from (metadata ``bench_source``): generated | minari | imported-d4rl."""
    from minari.dataset.minari_storage import MinariStorage
    try:
        return str(MinariStorage.read_raw_metadata(dataset_path(ds_id) / "data").get("bench_source", "unknown"))
    except Exception:
        return "unknown"


@dataclass
class FlatDataset:
    """A dataset as flat per-transition arrays plus episode boundaries."""
    observations: np.ndarray       # (N, obs_dim) float32
    actions: np.ndarray            # (N, act_dim) float32
    next_observations: np.ndarray  # (N, obs_dim)
    terminals: np.ndarray          # (N,) bool
    timeouts: np.ndarray           # (N,) bool: episode cut by a time limit (or end of data)
    episode_starts: np.ndarray     # (num_episodes,) index of each episode's first transition
    rewards: np.ndarray            # (N,) kept for reports/oracles; never handed to methods
    metadata: dict


def load_flat(ds_id: str, task: TaskSpec, scale: str) -> FlatDataset:
    """Load a dataset, with a one-line error naming the fix when it is missing, partial or corrupt."""
    status = dataset_status(ds_id)
    fix = generate_command(task, scale)
    if status == "missing":
        other = (f"; or `bench data fetch --envs {task.group}` (network) or `bench data import FILE.hdf5 --task "
                 f"{task.name} --kind ...`" if task.family == "locomotion" else "")
        raise BenchError(f"dataset {ds_id} not found under {datasets_root()}; build it with `{fix}` "
                         f"(or pass --generate-missing){other}")
    if status == "partial":
        raise BenchError(f"dataset {ds_id} at {dataset_path(ds_id)} is incomplete (an interrupted generation?); "
                         f"rebuild it with `{fix} --force`")
    import minari
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            ds = minari.load_dataset(ds_id)
            episodes = list(ds.iterate_episodes())
        metadata = ds.storage.metadata
    except Exception as e:  # h5py/minari raise many kinds on a damaged file
        raise BenchError(f"dataset {ds_id} at {dataset_path(ds_id)} is corrupt ({type(e).__name__}: {e}); "
                         f"rebuild it with `{fix} --force`") from None
    obs = [e.observations for e in episodes]
    if any(o.ndim != 2 or o.shape[-1] != task.obs_dim for o in obs):
        raise DatasetDamaged(f"dataset {ds_id} has observations of shape {obs[0].shape}, task {task.name} "
                             f"expects width {task.obs_dim}; rebuild it with `{fix} --force`")
    flat = FlatDataset(**vars(flat_arrays(episodes, np.float32)),
                       rewards=np.concatenate([e.rewards for e in episodes]).astype(np.float32), metadata=metadata)
    rebuild = f"rebuild it with `{fix} --force`" + (" (or fetch / import it again with --force)"
                                                    if task.family == "locomotion" else "")
    check(flat, task, ds_id, rebuild)
    return flat


def flat_arrays(episodes, dtype=None) -> Arrays:
    """Episodes (Minari's or ours: observations with one row more than actions) as flat transitions."""
    obs = [np.asarray(e.observations) for e in episodes]
    lengths = np.array([len(e.actions) for e in episodes])
    cast = (lambda a: a.astype(dtype)) if dtype is not None else (lambda a: a)
    return Arrays(observations=cast(np.concatenate([o[:-1] for o in obs])),
                  actions=cast(np.concatenate([np.asarray(e.actions) for e in episodes])),
                  next_observations=cast(np.concatenate([o[1:] for o in obs])),
                  terminals=np.concatenate([e.terminations for e in episodes]).astype(bool),
                  timeouts=np.concatenate([e.truncations for e in episodes]).astype(bool),
                  episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64))


def fingerprint(flat: FlatDataset) -> str:
    """sha256 of a loaded dataset's arrays (values, dtypes and shapes; metadata aside): equal fingerprints,
    equal data. tests/test_reproducibility.py pins the smoke datasets' fingerprints."""
    import hashlib
    digest = hashlib.sha256()
    for name in ("observations", "actions", "next_observations", "terminals", "timeouts", "episode_starts", "rewards"):
        array = np.ascontiguousarray(getattr(flat, name))
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def reference_returns(task: TaskSpec, scale: str) -> dict[str, float]:
    """{"min", "max"} returns: the task's fixed ones (locomotion: D4RL's random and expert returns, whatever
    the data source), else those for the task's reward type stored with its expert dataset (maze2d)."""
    if (fixed := task.fixed_reference()) is not None:
        return fixed
    from minari.dataset.minari_storage import MinariStorage
    ds_id = dataset_id(task, "expert", scale)
    meta = MinariStorage.read_raw_metadata(dataset_path(ds_id) / "data")
    return meta["bench_reference"][task.reward_type]


def known_datasets() -> dict[str, tuple[TaskSpec, str]]:
    """Every dataset id a task can read -> (a task reading it, its scale)."""
    out = {}
    for task in TASKS.values():
        names = {dataset_name(task, kind) for kind in KINDS}
        for scale in DATA_SCALES:
            for name in names:
                out.setdefault(named_dataset_id(task, name, scale), (task, scale))
    return out


def verify_dataset(ds_id: str) -> str | None:
    """Why the dataset cannot be used (missing, partial, corrupt or damaged content), or None if it is fine."""
    if ds_id not in (known := known_datasets()):
        return f"{ds_id} is no dataset of a registered task"
    task, scale = known[ds_id]
    try:
        load_flat(ds_id, task, scale)
    except BenchError as e:
        return str(e)
    return None


def list_datasets(verify: bool = True) -> list[dict]:
    """Every bench dataset on disk: id, status (ok | partial | damaged, with ``problem``), episodes, steps, source.
    ``verify`` loads each complete dataset and checks its content (envs/validate.py)."""
    root = datasets_root() / "bench"
    rows = []
    for meta_file in sorted(root.glob("*/*/data/metadata.json")):
        ds_id = str(meta_file.parent.parent.relative_to(datasets_root()))
        row = {"id": ds_id, "status": dataset_status(ds_id)}
        if verify and row["status"] == "ok" and (problem := verify_dataset(ds_id)):
            row.update(status="damaged", problem=problem)
        with contextlib.suppress(Exception):
            from minari.dataset.minari_storage import MinariStorage
            meta = MinariStorage.read_raw_metadata(meta_file.parent)
            row.update(episodes=meta.get("total_episodes"), steps=meta.get("total_steps"),
                       source=meta.get("bench_source", "?"), scale=meta.get("bench_scale", "?"))
        rows.append(row)
    return rows


def tasks_of_group(group: str) -> list[TaskSpec]:
    return [t for t in TASKS.values() if t.group == group]
