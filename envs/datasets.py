"""Datasets: generate maze2d data offline, store it as Minari datasets, load it back as flat arrays.

Per maze map and data scale there are two Minari datasets (sparse and dense tasks share them):
``bench/maze2d-<map>/expert[-<scale>]-v1`` (noise-free episodes of D4RL's waypoint controller from D4RL's
resets to D4RL's target) and ``bench/maze2d-<map>/supplementary[-<scale>]-v1`` (D4RL's continuing
collection toward random targets with Gaussian action noise); ``--maze-expert planner`` uses the grid
planner instead. Rewards follow D4RL's geometry (``envs/maze.py``). Scores use D4RL's reference returns;
the mean returns of a random policy and of the data's own expert are stored in the expert dataset's
metadata for the secondary "% of our expert" scale.
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

from core.errors import BenchError
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


# maze2d data v1: D4RL's resets, target and reward geometry, D4RL's waypoint controller (v0: the grid planner,
# Gymnasium's goal and radius); a version bump keeps datasets of an older recipe from being read as new ones
DATA_VERSION = {"maze2d": 1, "locomotion": 0}


def named_dataset_id(task: TaskSpec, name: str, scale: str) -> str:
    return f"{task.dataset_prefix}/{name}{DATA_SCALES[scale].suffix}-v{DATA_VERSION[task.family]}"


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
    _write_dataset(ids["expert"], task, expert_eps, d4rl, {**common, "bench_kind": "expert"},
                   f"Noise-free episodes of {who} from D4RL's resets to D4RL's target of the map.",
                   algorithm_name=f"bench-maze-{expert}")
    _write_dataset(ids["supplementary"], task, supp_eps, d4rl, {**common, "bench_kind": "supplementary"},
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


def _write_dataset(ds_id: str, task: TaskSpec, episodes: list[Episode], reference: dict, extra: dict,
                   description: str, algorithm_name: str = "bench-maze-waypoint") -> None:
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
                      log=print, policies_dir=None, maze_expert: str = "waypoint") -> list[str]:
    """Build the datasets of ``task``'s group (a maze map, or a robot's expert/medium/medium-expert)."""
    if task.family == "locomotion":
        from envs.locomotion import generate_locomotion_datasets
        return generate_locomotion_datasets(task, scale, seed=seed, force=force, progress_factory=progress_factory,
                                            log=log, policies_dir=policies_dir)
    return generate_maze_datasets(task, scale, seed=seed, force=force, progress_factory=progress_factory, log=log,
                                  expert=maze_expert)


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
    equal data. tests/benchmark/test_reproducibility.py pins the smoke datasets' fingerprints."""
    import hashlib
    digest = hashlib.sha256()
    for name in ("observations", "actions", "next_observations", "terminals", "timeouts", "episode_starts", "rewards"):
        array = np.ascontiguousarray(getattr(flat, name))
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def reference_returns(task: TaskSpec, scale: str) -> dict[str, float]:
    """{"min", "max"} returns that scores are normalized with: D4RL's random and expert returns for every
    task (maze2d: D4RL's maze2d-v1 figures, rewards computed under D4RL's geometry), whatever the data source."""
    return task.fixed_reference()


def own_expert_reference(task: TaskSpec, scale: str) -> dict[str, float] | None:
    """{"min", "max"}: a uniform-random policy's and the data's own expert's mean returns, stored with a maze
    map's expert dataset; the secondary "% of our expert" scale. None for locomotion (its scale is D4RL's)."""
    if task.family != "maze2d":
        return None
    from minari.dataset.minari_storage import MinariStorage
    meta = MinariStorage.read_raw_metadata(dataset_path(dataset_id(task, "expert", scale)) / "data")
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
