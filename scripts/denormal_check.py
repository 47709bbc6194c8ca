"""Updates/s of a run resumed from its checkpoint, with and without flushing subnormal floats to zero.

    PYTHONPATH=. python scripts/denormal_check.py --run results/runs/sra/maze2d-umaze-sparse/seed0-<key>

Runs flush subnormals since 2026-12-05 (benchmark/runner.py): on an Intel Xeon (Sapphire Rapids) a quick SRA
maze2d run resumed at step ~6k made 4.9 updates/s without flushing and 62.9 with it (docs/results.md).
Needs a checkpoint.pt (a run stopped mid-way: kill it, or use --stop-after-step in tests)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmark.config import resolve_config
from benchmark.profiles import get_profile
from benchmark.runner import load_imitation_data
from envs.tasks import get_task
from methods.registry import get_method


def updates_per_s(run: Path, flush: bool, updates: int) -> float:
    torch.set_flush_denormal(flush)
    stored = json.loads((run / "config.json").read_text())
    profile, task = get_profile(stored["profile"]), get_task(stored["task"])
    cls = get_method(stored["method"])
    method = cls(task, load_imitation_data(task, profile.data, profile.expert_episodes),
                 resolve_config(cls, stored["config"]), stored["seed"], torch.device("cpu"),
                 stored["settings"]["num_steps"])
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    method.load_state_dict(checkpoint["method"])
    start = time.perf_counter()
    for i in range(updates):
        method.update(checkpoint["step"] + i)
    return updates / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run directory holding checkpoint.pt")
    parser.add_argument("--updates", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for flush in (False, True):
        print(f"flush subnormals {str(flush):5}: {updates_per_s(args.run, flush, args.updates):7.1f} updates/s")


if __name__ == "__main__":
    main()
