"""benchmark.api: the CLI's commands from Python, with the CLI's defaults, messages through logging."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from benchmark import api
from core.errors import BenchError
from core.io import atomic_write_json


def test_a_smoke_grid_and_its_report_from_python_with_the_clis_defaults(umaze_smoke, tmp_path, monkeypatch, caplog):
    """No `out` given: results/ and report/ in the working directory, as `bench run` / `bench report`; MILO's
    forward model goes to the model cache under the results directory, and the variable is gone afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BENCH_MODEL_CACHE", raising=False)
    with caplog.at_level(logging.INFO, logger="benchmark"):
        outcome = api.run(methods=["milo"], envs="maze2d-umaze-sparse", seeds=1, profile="smoke", workers=1,
                          progress=False)
    assert [r["run_key"].split("/")[:2] for r in outcome.summary.done] == [["milo", "maze2d-umaze-sparse"]]
    assert outcome.grid.profile.name == "smoke" and outcome.grid.seeds == [0] and not outcome.summary.failed
    assert len(list((tmp_path / "results" / "model-cache").glob("*.pt"))) == 1
    assert "BENCH_MODEL_CACHE" not in os.environ
    assert any(r.name == "benchmark.api" and "1 runs: 0 done earlier" in r.getMessage() for r in caplog.records)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="benchmark"):
        summary = api.report(reps=100)
    assert summary.out_dir == Path("report") and summary.complete == ["milo"]
    assert (tmp_path / "report" / "report.html").is_file() and (tmp_path / "report" / "per_task.csv").is_file()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("benchmark.report")] == [
        "bootstrapping 1 complete variant(s) with 100 reps"]


def test_defaults_are_the_clis(monkeypatch, tmp_path):
    from envs.tasks import resolve_tasks
    grid = api.resolve_grid()
    assert grid.methods == ["bc-exp"] and grid.tasks == resolve_tasks("maze2d") and grid.seeds == [0, 1, 2, 3]
    assert grid.profile.name == "quick" and {s.settings.get("expert_draw", "first") for s in grid.specs} == {"first"}
    from click.testing import CliRunner

    from benchmark.cli import main
    calls = []
    monkeypatch.setattr(api, "report", lambda *args, **kwargs: calls.append((args, kwargs)) or _summary(tmp_path))
    assert CliRunner().invoke(main, ["report"]).exit_code == 0
    (results, out), kwargs = calls[0]
    assert list(results) == [api.DEFAULT_RESULTS] and out == api.DEFAULT_REPORT == "report" and kwargs["reps"] is None


def _summary(tmp_path):
    from benchmark.report import ReportSummary
    return ReportSummary(tmp_path, "quick", [], "", [], {}, [], [])


def _write_fake_result(root: Path) -> None:
    atomic_write_json(root / "runs/bc-exp/maze2d-umaze-sparse/seed0-x/result.json",
                      {"run_key": "bc-exp/maze2d-umaze-sparse/seed0-x", "method": "bc-exp",
                       "task": "maze2d-umaze-sparse", "seed": 0, "profile": "smoke", "status": "done",
                       "final_score": 50.0, "best_score": 60.0,
                       "curve": {"step": [0, 100], "score": [0.0, 50.0], "return": [0.0, 1.0]}})


def test_report_messages_go_through_logging_not_print(tmp_path, caplog, capsys):
    root = tmp_path / "results"
    _write_fake_result(root)
    corrupt = root / "runs/bc-exp/maze2d-large-sparse/seed0-y/result.json"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text("{not json")
    with caplog.at_level(logging.INFO, logger="benchmark.report"):
        summary = api.report(root, tmp_path / "report", reps=100)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "corrupt result file" in warnings[0] and summary.warnings == warnings
    assert any(r.levelno == logging.INFO and r.getMessage().startswith("bootstrapping") for r in caplog.records)
    assert capsys.readouterr().out == ""  # nothing printed: a notebook decides what it shows
    assert "corrupt result file" in (tmp_path / "report" / "report.md").read_text()


def test_user_errors_are_bench_errors(tmp_path):
    with pytest.raises(BenchError, match="no results under"):
        api.report(tmp_path / "none", tmp_path / "report")
    with pytest.raises(BenchError, match="methods is empty"):
        api.resolve_grid(methods=[])
    with pytest.raises(BenchError, match="unknown method 'nope'"):
        api.resolve_grid(methods="bc-exp,nope")
    with pytest.raises(BenchError, match="only apply to --executor ray"):
        api.make_executor(address="auto")


def test_cli_shows_the_librarys_log_messages(tmp_path):
    """The CLI's handler prints the loggers' messages as plain lines (no level or logger prefix)."""
    from click.testing import CliRunner

    from benchmark.cli import main
    root = tmp_path / "results"
    _write_fake_result(root)
    result = CliRunner().invoke(main, ["report", "--results", str(root), "--out", str(tmp_path / "r"), "--reps", "100"])
    assert result.exit_code == 0, result.output
    assert "bootstrapping 1 complete variant(s) with 100 reps" in result.stderr.splitlines()
    assert "bootstrapping" not in result.stdout
