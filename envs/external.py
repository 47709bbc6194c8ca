"""Data from elsewhere, converted to this suite's Minari datasets (labelled by source).

- ``fetch_locomotion``: Minari's remote ``mujoco/<robot>/{expert,medium}-v0`` (Gymnasium v5 envs, D4RL's
  recipe; needs network and ``pip install -e '.[fetch]'``). Offline it fails in seconds: a TCP connect to
  the remote (or the HTTPS proxy) with a short timeout comes first, so nothing hangs.
- ``import_d4rl``: a D4RL file (``observations``, ``actions``, ``rewards``, ``terminals``, ``timeouts``;
  ``next_observations`` if present), HDF5 as D4RL ships them or ``.npz`` as the official SRA code does, for
  one task and kind, shape-checked against the task's env.

Episodes are split after every terminal or timeout; data ending mid-episode end in a truncation. Ant:
D4RL-v2 rows (111) and Minari-v5 rows (105) keep their first 27 columns, the task's qpos[2:] + qvel
observation (envs/tasks.py says why). Without ``next_observations`` an episode's final observation is
unknown: a timeout's last transition is dropped (D4RL's ``qlearning_dataset`` does the same) and a
terminal's next observation repeats its observation (the done flag masks it in every Q target).

Maze2d files are in D4RL's frame (envs/d4rl_maze.py): observations and actions are converted to
Gymnasium's; a point inside a wall (a file for another maze: it replays fine in open corridors) or a replay
of the first episodes in the task's env that leaves the file's positions (another frame, perturbed data)
refuses the file; the rewards are recomputed with D4RL's geometry from the converted next positions (the
file's own rewards are not stored).
"""
from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
import urllib.parse
from pathlib import Path

import numpy as np

from core.errors import BenchError
from envs.storage import (DATA_SCALES, KINDS, Episode, dataset_id, dataset_name, dataset_source, dataset_status,
                           named_dataset_id, write_dataset)
from envs.tasks import TaskSpec

REMOTE_IDS = {"expert": "mujoco/{robot}/expert-v0", "medium": "mujoco/{robot}/medium-v0"}
REMOTE_HOSTS = {"hf": "huggingface.co", "gcp": "storage.googleapis.com"}
CONNECT_TIMEOUT_S = 3.0
D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
# columns kept from wider observation layouts of the same robot: {robot: {width: columns}}
COMPATIBLE_WIDTHS = {"ant": {105: 27, 111: 27}}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK"  # .npz archives are zip files
# maze2d replay check: the first REPLAY_EPISODES episodes, REPLAY_STEPS actions each, must land within
# REPLAY_TOLERANCE of the file's positions (a float32 file written by this suite's env replays to ~5e-7)
REPLAY_EPISODES, REPLAY_STEPS, REPLAY_TOLERANCE = 3, 50, 0.05
WALL_TOLERANCE = 0.05  # how deep inside a wall cell a maze2d position may lie (the point's radius keeps it out)
REFERENCE_SEED = 0  # maze_reference's seed for an imported maze2d expert dataset


# ------------------------------------------------------------------------------------------ helpers
def fit_observations(obs: np.ndarray, task: TaskSpec, origin: str) -> np.ndarray:
    width = obs.shape[-1]
    if width == task.obs_dim:
        return obs
    if COMPATIBLE_WIDTHS.get(task.group, {}).get(width) == task.obs_dim:
        return obs[..., :task.obs_dim]
    known = sorted({task.obs_dim, *COMPATIBLE_WIDTHS.get(task.group, {})})
    raise BenchError(f"{origin}: observations have width {width}, {task.name} ({task.env_id}) takes "
                     f"{' or '.join(map(str, known))}; is this file for another environment?")


def _episodes_from_flat(obs, actions, rewards, terminals, timeouts, next_obs):
    """Split flat D4RL arrays into Episode objects (see the module docstring for the rules)."""
    n = len(actions)
    ends = np.flatnonzero(terminals | timeouts)
    if not len(ends) or ends[-1] != n - 1:
        ends = np.append(ends, n - 1)  # the data end mid-episode: a truncation
    episodes, start = [], 0
    for end in ends.tolist():
        terminal = bool(terminals[end])
        if next_obs is not None:
            last_obs, stop = next_obs[end], end + 1
        elif terminal:
            last_obs, stop = obs[end], end + 1
        else:  # a timeout without its next observation: drop that transition
            last_obs, stop = obs[end], end
        if stop > start:
            T = stop - start
            term, trunc = np.zeros(T, bool), np.zeros(T, bool)
            (term if terminal else trunc)[-1] = True
            episodes.append(Episode(np.concatenate([obs[start:stop], last_obs[None]]).astype(np.float64),
                                    actions[start:stop].astype(np.float32), rewards[start:stop],
                                    rewards[start:stop], term, trunc))
        start = end + 1
    return episodes


def _write(task: TaskSpec, ds_id: str, episodes, name: str, extra: dict, description: str,
           reference: dict | None = None) -> None:
    """``reference``: {reward type: {"min", "max"}} stored as ``bench_reference`` (locomotion default: D4RL's;
    maze2d: the own-expert scale, on the expert dataset only). Minari's reference scores are always D4RL's."""
    if reference is None and task.family == "locomotion":
        reference = {task.reward_type: task.fixed_reference()}
    metadata = {"bench_kind": "expert" if name == "expert" else "supplementary", "bench_dataset": name,
                "bench_mean_return": float(np.mean([e.rewards.sum() for e in episodes])), **extra}
    if reference is not None:
        metadata["bench_reference"] = reference
    write_dataset(ds_id, task, episodes, {task.reward_type: task.fixed_reference()}, metadata,
                  description, algorithm_name=extra["bench_source"])


def _require_locomotion(task: TaskSpec, what: str) -> None:
    if task.family != "locomotion":
        raise BenchError(f"{what} covers the locomotion tasks; {task.name} is {task.family}: build its data with "
                         f"`bench data generate --envs {task.group}`, or import D4RL's maze2d file with "
                         f"`bench data import FILE --task {task.name} --kind ...`")


# -------------------------------------------------------------------------------------------- fetch
def remote_endpoint() -> tuple[str, int]:
    """Where a download connects first: the HTTPS proxy if one is set, else Minari's remote host."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        parsed = urllib.parse.urlparse(proxy if "://" in proxy else f"http://{proxy}")
        return parsed.hostname or proxy, parsed.port or 8080
    remote = os.environ.get("MINARI_REMOTE", "hf://farama-minari")
    return REMOTE_HOSTS.get(remote.split("://", 1)[0], "huggingface.co"), 443


def check_online(robots: list[str], timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a one-line BenchError within ~``timeout`` s when the remote cannot be reached (DNS included)."""
    host, port = remote_endpoint()
    outcome: list[BaseException | None] = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(e)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if not outcome or outcome[0] is not None:
        why = "timed out" if not outcome else (getattr(outcome[0], "strerror", None) or str(outcome[0]))
        raise BenchError(f"cannot reach Minari's remote ({host}:{port}: {why}); offline, build the datasets "
                         f"locally with `bench data generate --envs {','.join(robots)}` (or `bench data import`)")


def fetch_locomotion(task: TaskSpec, scale: str, force: bool = False, log=print) -> list[str]:
    """Download ``mujoco/<robot>/{expert,medium}-v0`` and store them (and medium + expert) as this suite's
    ``bench/<robot>/...`` datasets at ``scale``'s ids, labelled ``minari``. Remote data keep their size."""
    import minari
    _require_locomotion(task, "bench data fetch")
    robot = task.group
    ids = {name: named_dataset_id(task, name, scale) for name in ("expert", "medium", "medium-expert")}
    if not force and all(dataset_status(i) == "ok" for i in ids.values()):
        log(f"{robot}: datasets already present ({', '.join(ids.values())}); --force replaces them")
        return list(ids.values())
    check_online([robot])
    episodes = {}
    for level, pattern in REMOTE_IDS.items():
        remote_id = pattern.format(robot=robot)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                minari.download_dataset(remote_id)
                remote = minari.load_dataset(remote_id)
                raw = list(remote.iterate_episodes())
        except ImportError as e:
            raise BenchError(f"fetching needs Minari's Hugging Face client ({e}); `pip install -e '.[fetch]'`") from None
        except Exception as e:
            raise BenchError(f"could not fetch {remote_id} ({type(e).__name__}: {e}); offline, use "
                             f"`bench data generate --envs {robot}`") from None
        episodes[level] = [Episode(fit_observations(np.asarray(e.observations), task, remote_id),
                                   np.asarray(e.actions, np.float32), np.asarray(e.rewards, np.float64),
                                   np.asarray(e.rewards, np.float64), np.asarray(e.terminations, bool),
                                   np.asarray(e.truncations, bool)) for e in raw]
    contents = {"expert": ["expert"], "medium": ["medium"], "medium-expert": ["medium", "expert"]}
    for name, levels in contents.items():
        remote_ids = [REMOTE_IDS[lv].format(robot=robot) for lv in levels]
        _write(task, ids[name], [e for lv in levels for e in episodes[lv]], name,
               {"bench_source": "minari", "bench_scale": scale, "bench_remote": remote_ids},
               f"Minari's {' + '.join(remote_ids)}, converted for {task.env_id}.")
    log(f"{robot}: wrote {', '.join(ids.values())} from Minari's remote")
    return list(ids.values())


# ------------------------------------------------------------------------------------------- import
def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """D4RL's keys (and ``next_observations`` if present) from an HDF5 file or an .npz archive."""
    with path.open("rb") as f:
        head = f.read(8)
    suffix = path.suffix.lower()
    if head == HDF5_SIGNATURE or (suffix in (".hdf5", ".h5", ".hdf") and not head.startswith(ZIP_SIGNATURE)):
        import h5py
        kind, opener = "HDF5 file", lambda: h5py.File(path, "r")
    elif head.startswith(ZIP_SIGNATURE) or suffix == ".npz":
        kind, opener = ".npz archive", lambda: np.load(path, allow_pickle=False)
    else:
        raise BenchError(f"{path} is neither an HDF5 file nor an .npz archive; pass D4RL's HDF5 file or the official "
                         f"SRA data's .npz (keys {', '.join(D4RL_KEYS)})")
    try:
        with opener() as f:
            missing = [k for k in D4RL_KEYS if k not in f]
            if missing:
                raise BenchError(f"{path} lacks D4RL key(s) {', '.join(missing)} (has: {', '.join(sorted(f.keys()))}); "
                                 f"expected {', '.join(D4RL_KEYS)} [+ next_observations]")
            return {k: np.asarray(f[k]) for k in (*D4RL_KEYS, "next_observations") if k in f}
    except BenchError:
        raise
    except Exception as e:  # h5py/zipfile raise OSError/KeyError/BadZipFile/... on damaged files
        raise BenchError(f"{path} is not a readable {kind} ({type(e).__name__}: {e}); corrupt or truncated?") from None


def read_d4rl(path: str | Path, task: TaskSpec) -> dict[str, np.ndarray | None]:
    """The D4RL arrays of ``path`` (HDF5 or .npz), validated against ``task``; one-line BenchErrors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no such file")
    arrays = _read_arrays(path)
    obs, actions = arrays["observations"], arrays["actions"]
    n = len(actions)
    if obs.ndim != 2 or actions.ndim != 2 or n == 0:
        raise BenchError(f"{path}: observations {obs.shape} and actions {actions.shape} must be non-empty 2-d arrays")
    for key in ("observations", "rewards", "terminals", "timeouts", "next_observations"):
        if key in arrays and len(arrays[key]) != n:
            raise BenchError(f"{path}: {key} has {len(arrays[key])} rows, actions have {n}")
    for key in ("rewards", "terminals", "timeouts"):
        arrays[key] = arrays[key].reshape(n, -1)[:, 0] if arrays[key].ndim == 2 and arrays[key].shape[1] == 1 else arrays[key]
        if arrays[key].ndim != 1:
            raise BenchError(f"{path}: {key} should be 1-d, has shape {arrays[key].shape}")
    if actions.shape[1] != task.act_dim:
        raise BenchError(f"{path}: actions have width {actions.shape[1]}, {task.name} ({task.env_id}) takes "
                         f"{task.act_dim}; is this file for another environment?")
    arrays["observations"] = fit_observations(obs, task, str(path))
    if "next_observations" in arrays:
        arrays["next_observations"] = fit_observations(arrays["next_observations"], task, str(path))
    for key in ("observations", "actions", "rewards", "next_observations"):
        if key in arrays and not np.isfinite(arrays[key]).all():
            raise BenchError(f"{path}: {key} hold NaN or inf values")
    low, high = task.action_bounds()
    if (actions < low - 1e-6).any() or (actions > high + 1e-6).any():
        raise BenchError(f"{path}: actions leave {task.env_id}'s bounds [{task.action_low}, {task.action_high}] "
                         f"(min {actions.min():.3g}, max {actions.max():.3g})")
    return arrays


def maze_episodes(arrays: dict, task: TaskSpec, env) -> list:
    """A maze2d file's arrays (D4RL's frame) as episodes in Gymnasium's frame, rewarded with D4RL's geometry
    around the task's goal (sparse in ``rewards``, dense in ``dense_rewards``) from each next position."""
    from envs import d4rl_maze as dm
    from envs.maze import MazeGrid
    walls = MazeGrid.from_env(env).walls
    frame = dm.Frame(*walls.shape)
    target = frame.cell_point(task.goal_cell)
    n = len(arrays["actions"])
    episodes = _episodes_from_flat(frame.observation_to_gym(arrays["observations"]),
                                   frame.vector_to_gym(arrays["actions"]).astype(np.float32), np.zeros(n),
                                   arrays["terminals"].astype(bool), arrays["timeouts"].astype(bool),
                                   None if arrays.get("next_observations") is None
                                   else frame.observation_to_gym(arrays["next_observations"]))
    for e in episodes:
        e.rewards, e.dense_rewards = dm.rewards(e.observations[1:, :2], target)
    return episodes


def check_in_maze(episodes: list, walls: np.ndarray, task: TaskSpec, origin: str) -> None:
    """Refuse positions inside a wall cell (by more than WALL_TOLERANCE) or off the map: a file for another maze
    replays fine in open corridors, but its points cross this map's walls."""
    rows, cols = walls.shape
    for i, e in enumerate(episodes):
        x, y = cols / 2 + e.observations[:, 0], rows / 2 - e.observations[:, 1]  # column, row coordinates
        col, row = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        fx, fy = x - col, y - row
        depth = np.minimum.reduce([fx, 1 - fx, fy, 1 - fy])
        in_wall = ~inside | (walls[np.clip(row, 0, rows - 1), np.clip(col, 0, cols - 1)] & (depth > WALL_TOLERANCE))
        if in_wall.any():
            step = int(np.argmax(in_wall))
            position = np.round(e.observations[step, :2], 3).tolist()
            raise BenchError(f"{origin}: episode {i}, step {step}: the point at {position} (Gymnasium frame) lies "
                             f"inside a wall of the maze2d-{task.maze_map} map or off it; is it a maze2d-{task.maze_map} "
                             f"file in D4RL's frame?")


def replay_errors(episodes: list, env, num_episodes: int = REPLAY_EPISODES,
                  num_steps: int = REPLAY_STEPS) -> list[np.ndarray]:
    """For each of the first ``num_episodes`` episodes, the distance between the position the env reaches
    after each of its first ``num_steps`` actions (from the episode's first state) and the episode's own."""
    errors = []
    for e in episodes[:num_episodes]:
        env.reset(seed=0)
        env.unwrapped.point_env.set_state(e.observations[0, :2], e.observations[0, 2:4])
        steps = min(num_steps, len(e.actions))
        reached = np.array([env.step(a)[0]["observation"][:2] for a in e.actions[:steps]])
        errors.append(np.linalg.norm(reached - e.observations[1:steps + 1, :2], axis=-1))
    return errors


def check_replay(episodes: list, env, task: TaskSpec, origin: str) -> float:
    """Raise a one-line BenchError when a replayed episode diverges from the file; return the largest error."""
    errors = replay_errors(episodes, env)
    for i, error in enumerate(errors):
        if (bad := np.flatnonzero(error > REPLAY_TOLERANCE)).size:
            step = int(bad[0])
            raise BenchError(f"{origin}: episode {i} does not replay in {task.env_id}: after step {step} the point is "
                             f"{error[step]:.3g} from the file's position (tolerance {REPLAY_TOLERANCE} over the first "
                             f"{REPLAY_STEPS} steps); is it a maze2d-{task.maze_map} file in D4RL's frame?")
    return float(max(error.max(initial=0.0) for error in errors))


def import_d4rl(path: str | Path, task: TaskSpec, kind: str, scale: str, force: bool = False, log=print,
                progress_factory=None) -> str:
    """Store a D4RL file (HDF5 or the official SRA .npz) as ``task``'s ``kind`` dataset (expert | supplementary)
    at ``scale``'s id, labelled ``imported-d4rl``; return the dataset id. Maze2d files are converted from D4RL's
    frame, replay-checked and rewarded as the module docstring says; their expert dataset gets the map's
    reference returns (``maze_reference``: random episodes on the evaluation env vs the imported episodes)."""
    if kind not in KINDS:
        raise BenchError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    ds_id = dataset_id(task, kind, scale)
    if not force and dataset_status(ds_id) == "ok":
        raise BenchError(f"dataset {ds_id} exists already (source {dataset_source(ds_id)}); pass --force to replace it")
    a = read_d4rl(path, task)
    extra = {"bench_source": "imported-d4rl", "bench_scale": scale, "bench_import_file": Path(path).name,
             "bench_next_obs": "file" if "next_observations" in a else "reconstructed"}
    reference = None
    if task.family == "maze2d":
        from envs.maze import MazeGrid, make_maze_env
        env = make_maze_env(task)
        try:
            episodes = maze_episodes(a, task, env)
            if not episodes:
                raise BenchError(f"{path}: no complete transition to import")
            check_in_maze(episodes, MazeGrid.from_env(env).walls, task, str(path))
            extra.update(bench_frame="d4rl", bench_replay_error=check_replay(episodes, env, task, str(path)))
        finally:
            env.close()
        if kind == "expert":
            from envs.maze_datasets import maze_reference
            count = DATA_SCALES[scale].reference_episodes
            bar = (progress_factory(total=count * task.max_episode_steps, desc=f"reference returns {task.group}")
                   if progress_factory else None)
            reference = maze_reference(task, episodes, count, REFERENCE_SEED, progress=bar.update if bar else None)
            if bar:
                bar.close()
            extra.update(bench_reference_episodes=count, bench_seed=REFERENCE_SEED)
    else:
        episodes = _episodes_from_flat(a["observations"], a["actions"].astype(np.float32),
                                       a["rewards"].astype(np.float64), a["terminals"].astype(bool),
                                       a["timeouts"].astype(bool), a.get("next_observations"))
        if not episodes:
            raise BenchError(f"{path}: no complete transition to import")
    name = dataset_name(task, kind)
    _write(task, ds_id, episodes, name, extra, f"Imported from the D4RL file {Path(path).name} for {task.env_id}.",
           reference)
    log(f"{task.name}: imported {path} as {ds_id} ({len(episodes)} episodes, "
        f"{sum(len(e.actions) for e in episodes)} steps)")
    return ds_id
