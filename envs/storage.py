"""Dataset storage: this suite's Minari datasets (their ids per task, kind and data scale, where they live,
whether a write finished), writing episodes as one, and loading one back as flat arrays, with one-line errors
naming the fix.

Every dataset records where it came from in its metadata (``bench_source``: generated | minari | imported-d4rl)
and is complete once its last key (``bench_complete``) is written. Maze2d datasets are generated in
``envs/maze_datasets.py``, locomotion ones in ``envs/locomotion.py``, fetched or imported ones in
``envs/external.py``; ``envs/datasets.py`` says which generator builds a task's datasets.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import BenchError
from envs.tasks import TASKS, TaskSpec
from envs.validate import Arrays, DatasetDamaged, check

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
# Gymnasium's goal and radius); locomotion v1: episode starts from a named seed stream (v0: seed * 100003 + ...).
# A version bump keeps datasets of an older recipe from being read as new ones.
DATA_VERSION = {"maze2d": 1, "locomotion": 1}


def named_dataset_id(task: TaskSpec, name: str, scale: str) -> str:
    return f"{task.dataset_prefix}/{name}{DATA_SCALES[scale].suffix}-v{DATA_VERSION[task.family]}"


def datasets_root() -> Path:
    from minari.storage.datasets_root_dir import get_dataset_path
    return get_dataset_path()


def dataset_path(ds_id: str) -> Path:
    return datasets_root() / ds_id


@dataclass
class Episode:
    """One episode as generators produce it, before it is written."""
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


def write_dataset(ds_id: str, task: TaskSpec, episodes: list[Episode], reference: dict, extra: dict,
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
