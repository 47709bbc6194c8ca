"""Locomotion data from elsewhere, converted to this suite's Minari datasets (labelled by source).

- ``fetch_locomotion``: Minari's remote ``mujoco/<robot>/{expert,medium}-v0`` (Gymnasium v5 envs, D4RL's
  recipe; needs network and ``pip install -e '.[fetch]'``). Offline it fails in seconds: a TCP connect to
  the remote (or the HTTPS proxy) with a short timeout comes first, so nothing hangs.
- ``import_d4rl``: a D4RL HDF5 file (``observations``, ``actions``, ``rewards``, ``terminals``, ``timeouts``;
  ``next_observations`` if present) for one task and kind, shape-checked against the task's env.

Episodes are split after every terminal or timeout; data ending mid-episode end in a truncation. Ant:
D4RL-v2 rows (111) and Minari-v5 rows (105) keep their first 27 columns, the task's qpos[2:] + qvel
observation (envs/tasks.py says why). Without ``next_observations`` an episode's final observation is
unknown: a timeout's last transition is dropped (D4RL's ``qlearning_dataset`` does the same) and a
terminal's next observation repeats its observation (the done flag masks it in every Q target).
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

from envs import BenchError
from envs.tasks import TaskSpec

REMOTE_IDS = {"expert": "mujoco/{robot}/expert-v0", "medium": "mujoco/{robot}/medium-v0"}
REMOTE_HOSTS = {"hf": "huggingface.co", "gcp": "storage.googleapis.com"}
CONNECT_TIMEOUT_S = 3.0
D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
# columns kept from wider observation layouts of the same robot: {robot: {width: columns}}
COMPATIBLE_WIDTHS = {"ant": {105: 27, 111: 27}}


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
    from envs.datasets import Episode
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


def _write(task: TaskSpec, ds_id: str, episodes, name: str, extra: dict, description: str) -> None:
    from envs.datasets import _write_dataset
    reference = {task.reward_type: task.fixed_reference()}
    _write_dataset(ds_id, task, episodes, reference,
                   {"bench_reference": reference, "bench_kind": "expert" if name == "expert" else "supplementary",
                    "bench_dataset": name, "bench_mean_return": float(np.mean([e.rewards.sum() for e in episodes])),
                    **extra}, description, algorithm_name=extra["bench_source"])


def _require_locomotion(task: TaskSpec, what: str) -> None:
    if task.family != "locomotion":
        raise BenchError(f"{what} covers the locomotion tasks; {task.name} is {task.family}: D4RL's maze2d data come "
                         f"from mujoco-py maze2d, not this suite's PointMaze, so build them with "
                         f"`bench data generate --envs {task.group}`")


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
    from envs.datasets import dataset_status, named_dataset_id
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
        from envs.datasets import Episode
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
def read_d4rl(path: str | Path, task: TaskSpec) -> dict[str, np.ndarray | None]:
    """The D4RL arrays of ``path``, validated against ``task``; one-line BenchErrors otherwise."""
    import h5py
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in D4RL_KEYS if k not in f]
            if missing:
                raise BenchError(f"{path} lacks D4RL key(s) {', '.join(missing)} (has: {', '.join(sorted(f.keys()))}); "
                                 f"expected {', '.join(D4RL_KEYS)} [+ next_observations]")
            arrays = {k: np.asarray(f[k]) for k in (*D4RL_KEYS, "next_observations") if k in f}
    except BenchError:
        raise
    except Exception as e:  # h5py raises OSError/KeyError/... on damaged files
        raise BenchError(f"{path} is not a readable HDF5 file ({type(e).__name__}: {e}); corrupt or truncated?") from None
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


def import_d4rl(path: str | Path, task: TaskSpec, kind: str, scale: str, force: bool = False, log=print) -> str:
    """Store a D4RL HDF5 file as ``task``'s ``kind`` dataset (expert | supplementary) at ``scale``'s id,
    labelled ``imported-d4rl``; return the dataset id."""
    from envs.datasets import KINDS, dataset_id, dataset_name, dataset_source, dataset_status
    _require_locomotion(task, "bench data import")
    if kind not in KINDS:
        raise BenchError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    ds_id = dataset_id(task, kind, scale)
    if not force and dataset_status(ds_id) == "ok":
        raise BenchError(f"dataset {ds_id} exists already (source {dataset_source(ds_id)}); pass --force to replace it")
    a = read_d4rl(path, task)
    episodes = _episodes_from_flat(a["observations"], a["actions"].astype(np.float32),
                                   a["rewards"].astype(np.float64), a["terminals"].astype(bool),
                                   a["timeouts"].astype(bool), a.get("next_observations"))
    if not episodes:
        raise BenchError(f"{path}: no complete transition to import")
    name = dataset_name(task, kind)
    _write(task, ds_id, episodes, name,
           {"bench_source": "imported-d4rl", "bench_scale": scale, "bench_import_file": Path(path).name,
            "bench_next_obs": "file" if "next_observations" in a else "reconstructed"},
           f"Imported from the D4RL HDF5 file {Path(path).name} for {task.env_id}.")
    log(f"{task.name}: imported {path} as {ds_id} ({len(episodes)} episodes, "
        f"{sum(len(e.actions) for e in episodes)} steps)")
    return ds_id
