"""The task registry: which environment, evaluation goal, datasets and score normalization each task uses.

A task is (environment, evaluation protocol, datasets). The six maze2d tasks share one map per size:
sparse and dense differ only in the evaluation reward, so they read the same datasets. The eight
locomotion tasks share one expert dataset per robot; ``-medium`` and ``-medium-expert`` differ in D^S
(the medium dataset, or medium + expert as D4RL), so they train apart.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import BenchError
from core.tasks import MazeLayout, TaskInfo
from envs.d4rl_maze import REFERENCE as D4RL_MAZE_REFERENCE


@dataclass(frozen=True, kw_only=True)
class TaskSpec(TaskInfo):
    """A task as the suite runs it: what a method may know (TaskInfo, which methods are typed against) plus
    how its environment, datasets and score normalization are made."""
    env_id: str                  # Gymnasium id used for evaluation
    dataset_prefix: str          # Minari namespace/env part, e.g. "bench/maze2d-umaze"
    env_kwargs: dict = field(default_factory=dict)
    goal_cell: tuple[int, int] | None = None  # maze2d only: fixed evaluation goal (row, col)
    supplementary_dataset: str = "supplementary"  # D^S's dataset name under dataset_prefix ("medium", ...)
    reference: tuple[float, float] | None = None  # D4RL's (random, expert) returns: what a score of 0 / 100 means

    @property
    def training_key(self) -> str:
        """Tasks with equal keys train identically (same datasets, dynamics, starts and goal); only the
        evaluation reward differs, so one training run can be scored on all of them (sparse and dense)."""
        return (f"{self.dataset_prefix}|{self.supplementary_dataset}|{self.max_episode_steps}|{self.goal_cell}|"
                f"{sorted(self.env_kwargs.items())}")

    @property
    def group(self) -> str:
        """Map name without the reward variant: tasks of one group share datasets."""
        return self.dataset_prefix.split("/", 1)[1]

    def fixed_reference(self) -> dict[str, float] | None:
        """{"min", "max"}: D4RL's random and expert returns for this task (None for a task without them)."""
        return None if self.reference is None else {"min": float(self.reference[0]), "max": float(self.reference[1])}


# D4RL's maze2d goals ('G' in its maze strings), which Gymnasium-Robotics' maps share cell for cell.
MAZE_SPECS = {
    "umaze": ("PointMaze_UMaze", 300, (1, 1)),
    "medium": ("PointMaze_Medium", 600, (6, 6)),
    "large": ("PointMaze_Large", 800, (7, 9)),
}
# Gymnasium-Robotics' maps ("#" = wall), which D4RL's maze strings match cell for cell
# (tests/envs/test_d4rl_maze.py checks them against the envs).
MAZE_LAYOUTS = {
    "umaze": MazeLayout(("#####",
                         "#...#",
                         "###.#",
                         "#...#",
                         "#####")),
    "medium": MazeLayout(("########",
                          "#..##..#",
                          "#..#...#",
                          "##...###",
                          "#..#...#",
                          "#.#..#.#",
                          "#...#..#",
                          "########")),
    "large": MazeLayout(("############",
                         "#....#.....#",
                         "#.##.#.#.#.#",
                         "#......#...#",
                         "#.####.###.#",
                         "#..#.#.....#",
                         "##.#.#.#.###",
                         "#..#...#...#",
                         "############")),
}


def _maze_tasks() -> dict[str, TaskSpec]:
    tasks = {}
    for size, (gym_name, horizon, goal) in MAZE_SPECS.items():
        for reward_type in ("sparse", "dense"):
            name = f"maze2d-{size}-{reward_type}"
            tasks[name] = TaskSpec(
                name=name, family="maze2d",
                env_id=f"{gym_name}{'Dense' if reward_type == 'dense' else ''}-v3",
                dataset_prefix=f"bench/maze2d-{size}", max_episode_steps=horizon,
                obs_dim=4, act_dim=2, reward_type=reward_type,
                env_kwargs={"continuing_task": True, "reset_target": False},
                maze_map=size, maze=MAZE_LAYOUTS[size], goal_cell=goal,
                reference=D4RL_MAZE_REFERENCE[(size, reward_type)])
    return tasks


# Gymnasium MuJoCo v5 robots: (env id, obs dim, act dim, env kwargs, D4RL reference returns (random, expert)).
# Ant: the 27-d qpos[2:] + qvel observation (contact forces left out). D4RL's ant-v2 data carry 84 contact-force
# columns after those 27, all zero (mujoco-py 2.0 never filled cfrc_ext); v5's default 105-d observation adds 78
# real ones. Keeping the 27 shared columns makes generated, Minari (v5) and D4RL (v2) ant data one task.
LOCOMOTION_SPECS = {
    "hopper": ("Hopper-v5", 11, 3, {}, (-20.272305, 3234.3)),
    "halfcheetah": ("HalfCheetah-v5", 17, 6, {}, (-280.178953, 12135.0)),
    "walker2d": ("Walker2d-v5", 17, 6, {}, (1.629008, 4592.3)),
    "ant": ("Ant-v5", 27, 8, {"include_cfrc_ext_in_observation": False}, (-325.6, 3879.7)),
}
LOCOMOTION_HORIZON = 1000
LOCOMOTION_DATASETS = ("medium", "medium-expert")  # D^S per task; D^E is always the expert dataset


# Which (raw) states end an episode, for model rollouts: MOPO's health checks on the Gymnasium v5 observations
# (tensor methods only, so the registry loads without torch).
def hopper_terminal(s):
    return ~(s.isfinite().all(-1) & (s[:, 1:].abs() < 100).all(-1) & (s[:, 0] > 0.7) & (s[:, 1].abs() < 0.2))


def walker2d_terminal(s):
    return ~((s[:, 0] > 0.8) & (s[:, 0] < 2.0) & (s[:, 1] > -1.0) & (s[:, 1] < 1.0))


def ant_terminal(s):
    return ~(s.isfinite().all(-1) & (s[:, 0] >= 0.2) & (s[:, 0] <= 1.0))


TERMINATIONS = {"hopper": hopper_terminal, "walker2d": walker2d_terminal, "ant": ant_terminal}  # halfcheetah: none


def _locomotion_tasks() -> dict[str, TaskSpec]:
    tasks = {}
    for robot, (env_id, obs_dim, act_dim, kwargs, reference) in LOCOMOTION_SPECS.items():
        for supplementary in LOCOMOTION_DATASETS:
            name = f"{robot}-{supplementary}"
            tasks[name] = TaskSpec(
                name=name, family="locomotion", env_id=env_id, dataset_prefix=f"bench/{robot}",
                max_episode_steps=LOCOMOTION_HORIZON, obs_dim=obs_dim, act_dim=act_dim, reward_type="env",
                env_kwargs=dict(kwargs), supplementary_dataset=supplementary, reference=reference,
                termination=TERMINATIONS.get(robot))
    return tasks


TASKS: dict[str, TaskSpec] = {**_maze_tasks(), **_locomotion_tasks()}

# Family and group aliases usable wherever a task list is expected (`--envs maze2d`, `--envs hopper`).
ALIASES: dict[str, list[str]] = {"maze2d": [t for t in TASKS if t.startswith("maze2d-")]}
for _size in MAZE_SPECS:
    ALIASES[f"maze2d-{_size}"] = [f"maze2d-{_size}-sparse", f"maze2d-{_size}-dense"]
ALIASES["locomotion"] = [t for t, spec in TASKS.items() if spec.family == "locomotion"]
for _robot in LOCOMOTION_SPECS:
    ALIASES[_robot] = [f"{_robot}-{d}" for d in LOCOMOTION_DATASETS]


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise BenchError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)} "
                         f"(aliases: {', '.join(ALIASES)})") from None


def resolve_tasks(names: str | list[str]) -> list[str]:
    """Expand a comma-separated list of task names and aliases, keeping order, without duplicates."""
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        expanded = ALIASES.get(name, [name])
        for task in expanded:
            get_task(task)  # validates
            if task not in out:
                out.append(task)
    if not out:
        raise BenchError("no tasks given; pass --envs with task names or aliases, e.g. --envs maze2d")
    return out


def task_order(names) -> list[str]:
    """``names`` in the registry's order (maze2d umaze -> medium -> large, then locomotion); unknown ones last."""
    position = {name: i for i, name in enumerate(TASKS)}
    return sorted(set(names), key=lambda name: (position.get(name, len(position)), name))
