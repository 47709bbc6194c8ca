"""The package layers, as pyproject.toml's ``[tool.importlinter]`` contracts state them: benchmark > methods | envs
> core (methods and envs never import each other or benchmark; core imports none of them), and no import cycle
between the modules of one package. Imports inside functions count. A broken contract fails with the linter's
report, which names the offending import and its line."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "methods", "envs", "core")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the packages under ``root`` (first on the path, ahead of any installed copy)."""
    command = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", command, "--no-cache", "--no-logo"], cwd=root, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(root)}, timeout=300)


def test_the_package_layers_hold():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_forbidden_import_breaks_a_contract(tmp_path):
    """The contracts bite on this tree: a function-local import of envs from methods, and a cycle inside envs."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "methods" / "sra.py").open("a") as f:
        f.write("\n\ndef _grid(task):\n    from envs.maze import maze_grid\n    return maze_grid(task)\n")
    with (tmp_path / "envs" / "storage.py").open("a") as f:
        f.write("\n\ndef _generate(task, scale):\n    from envs.datasets import generate_datasets\n"
                "    return generate_datasets(task, scale)\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0, run.stdout
    assert "methods.sra -> envs.maze" in run.stdout and "BROKEN" in run.stdout, run.stdout
    assert "No cycles are allowed in envs" in run.stdout and ".storage -> .datasets" in run.stdout, run.stdout
