"""Eager vs compiled learner updates (``bench run --compile``), timed in alternating rounds in one process.

``bench perf --compile`` and ``bench perf`` are two invocations, which a shared VM can move apart by 20%; here both
learners are built side by side and timed round by round (sample a batch + update, 1 thread), so drift hits both.

    python scripts/compiled_ab.py --learner sacn --critics 2 --updates 60 --rounds 10
    python scripts/compiled_ab.py --learner awac --updates 40
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmark.perf import _ours, _with_sampling, our_sampler, synthetic_dataset, synthetic_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learner", default="iql", help="iql, sacn, awac, td3bc")
    parser.add_argument("--critics", type=int, default=None, help="SAC-N's critic count")
    parser.add_argument("--updates", type=int, default=60, help="updates per timed round")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    device, task = torch.device("cpu"), synthetic_task(17, 6)
    sampler = our_sampler(synthetic_dataset(17, 6), 256, device)
    steps = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        steps["compiled" if compiled else "eager"] = _with_sampling(
            _ours(args.learner, args.critics, task, device, compiled), sampler.sample)
    for step in steps.values():  # the compiled one compiles here
        for _ in range(5):
            step()
    ms: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.updates):
                step()
            ms[name].append((time.perf_counter() - start) / args.updates * 1e3)
    for name, times in ms.items():
        print(f"{name:<9} best {min(times):7.2f} ms  median {statistics.median(times):7.2f} ms")
    print(f"speed-up  best {min(ms['eager']) / min(ms['compiled']):.2f}x  "
          f"median {statistics.median(ms['eager']) / statistics.median(ms['compiled']):.2f}x")


if __name__ == "__main__":
    main()
