"""Every method's smoke curves, as one JSON, to check that a refactor leaves behaviour byte-identical.

    python scripts/smoke_curves.py OUT.json [--tasks maze2d-umaze-sparse,hopper-medium] [--methods all]

Runs ``bench run --profile smoke --seeds 0,`` for every registered method into a temporary results directory
(datasets generated there too, so it is independent of ``MINARI_DATASETS_PATH``) and writes, per
``method/task``, the evaluation curve, the final score and the method's logged info. Compare two such files
with ``diff`` or ``python scripts/smoke_curves.py --compare A.json B.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

KEEP = ("curve", "final_score", "best_score", "best_step", "config", "method_info")


def collect(results: Path) -> dict:
    out = {}
    for path in sorted(results.glob("runs/**/result.json")):
        result = json.loads(path.read_text())
        out[f"{result['method']}/{result['task']}/seed{result['seed']}"] = {k: result.get(k) for k in KEEP}
    return out


def compare(a: dict, b: dict, keys=("curve", "final_score", "best_score", "best_step")) -> int:
    differ = 0
    for run in sorted(set(a) | set(b)):
        if run not in a or run not in b:
            print(f"{run}: only in {'first' if run in a else 'second'}")
            differ += 1
            continue
        changed = [k for k in keys if a[run].get(k) != b[run].get(k)]
        if changed:
            print(f"{run}: {', '.join(changed)} differ")
            differ += 1
    print(f"{len(set(a) | set(b))} runs, {differ} differ")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?")
    parser.add_argument("--tasks", default="maze2d-umaze-sparse,hopper-medium")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = parser.parse_args()
    if args.compare:
        a, b = (json.loads(Path(p).read_text()) for p in args.compare)
        return compare(a, b)
    if args.methods == "all":
        from methods.registry import available
        args.methods = ",".join(available())
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MINARI_DATASETS_PATH": str(Path(tmp) / "data")}
        cmd = [sys.executable, "-m", "benchmark.cli", "run", "--methods", args.methods, "--envs", args.tasks,
               "--profile", "smoke", "--seeds", "0,", "--workers", "1", "--generate-missing", "--no-progress",
               "--out", str(Path(tmp) / "results")]
        subprocess.run(cmd, env=env, check=False)
        Path(args.out).write_text(json.dumps(collect(Path(tmp) / "results"), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
