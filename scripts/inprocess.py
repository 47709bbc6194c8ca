"""A method built as a run would build it, for diagnostic scripts that train or inspect it in-process."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from benchmark.config import parse_set_options, resolve_config
from benchmark.grid import expand_grid
from benchmark.profiles import Profile, get_profile
from benchmark.runner import load_imitation_data, seed_everything
from envs.tasks import TaskSpec, get_task
from methods.base import Method
from methods.registry import get_method


@dataclass
class InProcessRun:
    method: Method
    task: TaskSpec
    profile: Profile
    num_steps: int  # the run's length (the method's own at some profiles: SRA at paper)


def add_run_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    """--task (default ``task``), --profile, --seed, --set and --threads, as `bench run` reads them; --method is the
    script's (its choices differ)."""
    parser.add_argument("--task", default=task)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="METHOD.KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; the model cache keys on it, so match the runs' (1 at --workers 2 here)")


def build_run(args: argparse.Namespace) -> InProcessRun:
    """The method of ``args.method`` on ``args.task`` with the run's config, data and seeding, before pretraining."""
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    profile, task, cls = get_profile(args.profile), get_task(args.task), get_method(args.method)
    spec = expand_grid([args.method], [args.task], [args.seed], profile,
                       parse_set_options(args.overrides, [args.method]))[0]
    data = load_imitation_data(task, profile.data, profile.expert_episodes)
    seed_everything(args.seed)
    num_steps = spec.settings["num_steps"]
    method = cls(task, data, resolve_config(cls, spec.config), args.seed, torch.device("cpu"), num_steps)
    return InProcessRun(method, task, profile, num_steps)
