"""benchmark.report: numbers checked against hand-computed values on synthetic result files."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rliable import metrics

from benchmark import report
from benchmark.report import ReportError, write_report
from core.io import atomic_write_json

REPS = 200
T1, T2 = "maze2d-umaze-sparse", "maze2d-medium-sparse"
STEPS = [0, 1000, 2000]


def write_run(root: Path, method: str, task: str, seed: int, last: float, best: float | None = None, *,
              profile: str = "quick", status: str = "done", error: str | None = None,
              steps: list[int] = STEPS, variant: str | None = None, expert_draw: str | None = None,
              d4rl_protocol: bool = False, trained_with: list[str] | None = None) -> str:
    """One synthetic result.json in the store layout; returns its run key. Without ``expert_draw`` its ``data``
    is as written before that field existed."""
    run_key = f"{method}/{task}/seed{seed}-{'1a2b3c4d' if expert_draw is None else expert_draw}"
    best = last if best is None else best
    result = {
        "schema": 1, "run_key": run_key, "method": method, "variant": variant or method, "task": task,
        "family": task.split("-")[0], "seed": seed, "profile": profile, "status": status, "error": error,
        "failed_step": 1234 if status == "failed" else None, "config": {}, "overrides": {},
        "settings": {"num_steps": 2000, "eval_every": 1000, "eval_episodes": 10, "device": "cpu"},
        "data": {"source": "generated", "expert": f"bench/{task}/expert-quick-v0",
                 "supplementary": f"bench/{task}/supplementary-quick-v0"},
        "reference": {"min": 5.0, "max": 160.0}, "git_commit": "abc123",
        "curve": {"step": steps, "score": [0.0] * (len(steps) - 1) + [last], "return": [0.0] * len(steps)},
        "final_score": None if status == "failed" else last, "best_score": None if status == "failed" else best,
        "best_step": 2000, "wall_time_s": 1.0, "steps_per_s": 2000.0, "phase_times_s": {},
    }
    if expert_draw is not None:
        result["data"].update(expert_draw=expert_draw, expert_episodes=5)
    if trained_with:  # as the runner writes a twin of a shared training
        result["trained_with"] = trained_with
    if d4rl_protocol:  # as the runner writes maze2d results since data v1
        result["evaluation"] = {"protocol": "d4rl-maze2d", "episodes": 30}
        result.update(final_own_expert_pct=last / 2, best_own_expert_pct=best / 2)
    atomic_write_json(root / "runs" / run_key / "result.json", result)
    return run_key


def has_row(markdown: str, *cells: str) -> bool:
    """Whether a Markdown table row holds ``cells`` side by side (whatever the column padding)."""
    return re.search(r"\|\s*" + r"\s*\|\s*".join(map(re.escape, cells)) + r"\s*\|", markdown) is not None


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """bc-exp and sra complete (2 tasks x 3 seeds), milo short of a seed, one failed, one smoke run, one
    corrupt file, one curve on another step grid; report written once with profile quick."""
    root = tmp_path_factory.mktemp("results")
    for seed, (a, b, best) in enumerate([(10, 40, 15), (20, 40, 25), (30, 40, 50)]):
        steps = [0, 500, 1000, 2000] if seed == 2 else STEPS
        write_run(root, "bc-exp", T1, seed, a, best, steps=steps)
        write_run(root, "bc-exp", T2, seed, b)
    for seed, (a, b) in enumerate([(60, 60), (70, 65), (80, 70)]):
        write_run(root, "sra", T1, seed, a)
        write_run(root, "sra", T2, seed, b)
    for seed in range(3):
        write_run(root, "milo", T1, seed, 50.0)
    for seed in range(2):  # milo: one seed short on T2
        write_run(root, "milo", T2, seed, 50.0)
    failed_key = write_run(root, "dwbc", T1, 0, 0.0, status="failed",
                           error="update returned NaN in loss/actor at step 1234")
    write_run(root, "bc-exp", T1, 7, 999.0, profile="smoke")
    corrupt = root / "runs" / "bc-exp" / "maze2d-large-sparse" / "seed0-deadbeef" / "result.json"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text("{not json")
    out = root / "report"
    summary = write_report(root, out, profile="quick", reps=REPS, seed=0)
    return {"root": root, "out": out, "summary": summary, "failed_key": failed_key, "corrupt": corrupt,
            "per_task": pd.read_csv(out / "per_task.csv").set_index(["variant", "task"]),
            "aggregates": pd.read_csv(out / "aggregates.csv")}


def test_per_task_mean_std_se_by_hand(built):
    row = built["per_task"].loc[("bc-exp", T1)]
    # last 10, 20, 30: mean 20; std = sqrt((10^2 + 0 + 10^2) / (3 - 1)) = 10; SE = 10 / sqrt(3) = 5.7735
    assert row["n"] == 3 and row["mean"] == pytest.approx(20.0)
    assert row["std"] == pytest.approx(10.0) and row["se"] == pytest.approx(10 / math.sqrt(3))
    # best 15, 25, 50: mean 30; std = sqrt((15^2 + 5^2 + 20^2) / 2) = sqrt(325); SE = sqrt(325 / 3) = 10.408
    assert row["best_mean"] == pytest.approx(30.0) and row["best_se"] == pytest.approx(math.sqrt(325 / 3))
    sra = built["per_task"].loc[("sra", T2)]  # 60, 65, 70: std 5, SE 5 / sqrt(3)
    assert sra["mean"] == pytest.approx(65.0) and sra["se"] == pytest.approx(5 / math.sqrt(3))
    assert built["per_task"].loc[("bc-exp", T2), "se"] == 0.0  # 40, 40, 40
    md = built["summary"].markdown
    assert "20.0 ± 5.8" in md and "30.0 ± 10.4" in md  # last table, then best table
    assert md.index("Last evaluation (headline)") < md.index("Best over training (optimistic)")


def test_aggregates_by_hand(built):
    agg = built["aggregates"].set_index(["variant", "metric"])
    # bc-exp runs x tasks [[10, 40], [20, 40], [30, 40]]: IQM trims 25% of the 6 flattened scores
    # (1 each end) -> mean(20, 30, 40, 40) = 32.5; task means 20, 40 -> mean = median = 30; gap = 100 - 30
    expected = {"IQM": 32.5, "Mean": 30.0, "Median": 30.0, "Optimality gap": 70.0}
    for metric, value in expected.items():
        assert agg.loc[("bc-exp", metric), "point"] == pytest.approx(value)
    # sra [[60, 60], [70, 65], [80, 70]]: IQM mean(60, 65, 70, 70) = 66.25; task means 70, 65 -> 67.5
    assert agg.loc[("sra", "IQM"), "point"] == pytest.approx(66.25)
    assert agg.loc[("sra", "Optimality gap"), "point"] == pytest.approx(32.5)
    # sra beats bc-exp on every run of every task
    assert agg.loc[("sra,bc-exp", "P(X > Y)"), ["point", "lower", "upper"]].tolist() == [1.0, 1.0, 1.0]
    assert agg.loc[("bc-exp,sra", "P(X > Y)"), ["point", "lower", "upper"]].tolist() == [0.0, 0.0, 0.0]
    finite = built["aggregates"].dropna(subset=["point"])
    assert (finite["lower"] <= finite["point"] + 1e-9).all() and (finite["point"] <= finite["upper"] + 1e-9).all()
    assert set(built["aggregates"]["reps"]) == {REPS}


def test_iqm_and_optimality_gap_small_cases():
    # 4 runs x 1 task: IQM = mean of the middle two; the gap clips 140 to gamma = 100
    agg = report.aggregate_estimates({"a": np.array([[10.0], [20.0], [30.0], [140.0]])}, reps=REPS)
    points = dict(zip(agg["metric"], agg["point"]))
    assert points["IQM"] == pytest.approx(25.0)  # (20 + 30) / 2
    assert points["Mean"] == pytest.approx(50.0) and points["Median"] == pytest.approx(50.0)
    assert points["Optimality gap"] == pytest.approx(100 - (10 + 20 + 30 + 100) / 4)  # 60
    # IQM is over the flattened matrix, not per task: 1..8 -> trim 2 each end -> mean(3, 4, 5, 6) = 4.5
    agg = report.aggregate_estimates({"b": np.array([[1.0, 8, 3, 6], [5, 2, 7, 4]])}, reps=REPS)
    points = dict(zip(agg["metric"], agg["point"]))
    assert points["IQM"] == pytest.approx(4.5) and points["Median"] == pytest.approx(5.0)  # task means 3, 5, 5, 5


def test_bootstrap_is_deterministic_and_per_variant():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 100, (5, 3)), rng.uniform(0, 100, (5, 3))
    first = report.aggregate_estimates({"a": a}, reps=REPS, seed=3)
    again = report.aggregate_estimates({"a": a, "b": b}, reps=REPS, seed=3)
    pd.testing.assert_frame_equal(first, again[again["variant"] == "a"].reset_index(drop=True))
    other = report.aggregate_estimates({"a": a}, reps=REPS, seed=4)
    assert not np.allclose(first["lower"], other["lower"])
    poi = report.improvement_estimates({"a": a, "b": b}, reps=REPS, seed=3)
    pd.testing.assert_frame_equal(poi, report.improvement_estimates({"a": a, "b": b}, reps=REPS, seed=3))
    ab, ba = poi.set_index("pair").loc["a,b"], poi.set_index("pair").loc["b,a"]
    assert ab["point"] + ba["point"] == pytest.approx(1.0) and ab["lower"] == pytest.approx(1 - ba["upper"])


def test_improvement_probability_matches_rliable():
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, y = rng.integers(0, 5, (4, 3)).astype(float), rng.integers(0, 5, (3, 3)).astype(float)  # with ties
        assert report.improvement_probability(x, y) == pytest.approx(metrics.probability_of_improvement(x, y))


def test_incomplete_variant_is_excluded_and_named(built):
    summary = built["summary"]
    assert summary.complete == ["bc-exp", "sra"]
    # tasks in sorted order: maze2d-medium-sparse (T2, 2 seeds), maze2d-umaze-sparse (T1, 3 seeds)
    assert summary.incomplete == {"milo": f"seeds per task 2/3: fewer on {T2} (2)"}
    assert "milo" not in set(built["aggregates"]["variant"])
    md = summary.markdown
    incomplete = md[md.index("## Incomplete variants"):md.index("## Failed runs")]
    assert "milo" in incomplete and "seeds per task 2/3" in incomplete
    assert "50.0 ± 0.0 (n=2)" in md  # the short task shows its n


def test_incomplete_reasons():
    scores = pd.DataFrame([("a", "t1", 0), ("a", "t1", 1), ("a", "t2", 0), ("a", "t2", 2),  # seed sets differ
                           ("b", "t1", 0), ("c", "t1", 0), ("c", "t2", 0)],  # b misses t2; c complete
                          columns=["variant", "task", "seed"]).assign(last=1.0, best=1.0, profile="quick")
    reasons = report.incomplete_reasons(scores)
    assert reasons["a"].startswith("seed sets differ across tasks")
    assert reasons["b"] == "missing t2" and "c" not in reasons
    assert list(report.score_matrices(scores)) == ["c"]


def test_failed_runs_listed_not_tabled(built):
    md = built["summary"].markdown
    failed = md[md.index("## Failed runs"):]
    assert built["failed_key"] in failed and "update returned NaN in loss/actor at step 1234" in failed
    assert built["summary"].failed == [built["failed_key"]]
    scores = pd.read_csv(built["out"] / "scores.csv")
    assert "dwbc" not in set(scores["variant"]) and "dwbc" not in md[:md.index("## Failed runs")]
    assert len(scores) == 6 + 6 + 5 and set(scores["profile"]) == {"quick"} and 999 not in set(scores["last"])


def test_corrupt_result_is_set_aside_with_warning(built):
    corrupt = built["corrupt"]
    assert not corrupt.exists() and corrupt.with_name("result.json.corrupt-0").exists()
    assert any(str(corrupt) in w for w in built["summary"].warnings)
    assert "result.json.corrupt-0" in built["summary"].markdown


def test_curve_on_other_step_grid_is_skipped_and_named(built):
    assert any("bc-exp/maze2d-umaze-sparse/seed2-1a2b3c4d" in w and "step grid" in w
               for w in built["summary"].warnings)


def test_outputs_exist_and_html_is_self_contained(built):
    out = built["out"]
    for name in ["report.md", "report.html", "report.tex", "scores.csv", "per_task.csv", "aggregates.csv"]:
        assert (out / name).is_file(), name
    for stem in ["scores", "aggregates", "profiles", "curves"]:
        assert (out / "plots" / f"{stem}.png").is_file() and (out / "plots" / f"{stem}.svg").is_file()
    page = (out / "report.html").read_text()
    assert "data:image/png;base64" in page and 'src="plots/' not in page
    assert set(built["summary"].paths) >= {out / "report.md", out / "plots" / "curves.svg"}
    tex = (out / "report.tex").read_text()
    assert r"\begin{tabular}" in tex and r"maze2d-umaze-sparse" in tex and r"$\pm$" in tex
    assert f"{REPS} bootstrap reps" in built["summary"].markdown


def test_paper_column(built):
    row = built["per_task"].loc[("bc-exp", T1)]
    assert row["paper_mean"] == 100 and row["paper_pm"] == pytest.approx(11.6)
    assert row["diff"] == pytest.approx(20.0 - 100.0)
    assert built["per_task"].loc[("milo", T2), "paper_mean"] == pytest.approx(47.9)
    assert "(data v0) are on another scale: no difference is shown" in built["summary"].markdown
    assert "ours - paper" not in built["summary"].markdown  # these runs predate D4RL's protocol


def test_maze2d_on_d4rls_protocol_is_compared_with_the_paper_and_shown_on_our_experts_scale(tmp_path):
    root = tmp_path / "results"
    for seed in range(2):
        write_run(root, "bc-exp", T1, seed, 120.0 + seed, d4rl_protocol=True)
    summary = write_report(root, tmp_path / "out", reps=REPS)
    assert "ours - paper" in summary.markdown and has_row(summary.markdown, "20.5")  # 120.5 - the paper's 100
    assert "## Maze2d as % of our expert (secondary)" in summary.markdown and "60.2" in summary.markdown


def test_paper_aliases_and_missing_tables(tmp_path):
    index = report._paper_index(report.load_paper(report.DEFAULT_PAPER_DIR))
    assert report.paper_entry(index, "uds-iql", "maze2d-umaze-dense") == (62.3, 6.99)  # table 1 "uds"
    assert report.paper_entry(index, "sra", "ant-medium") == (88.9, 7.18)
    assert all(math.isnan(v) for v in report.paper_entry(index, "sra[model_ratio=0.3]", T1))
    root = tmp_path / "results"
    write_run(root, "bc-exp", T1, 0, 50.0)
    summary = write_report(root, tmp_path / "out", reps=REPS, paper_dir=tmp_path / "nowhere")
    assert "paper tables not found" in summary.markdown


def test_single_seed_bootstrap_collapses(tmp_path):
    root = tmp_path / "results"
    write_run(root, "bc-exp", T1, 0, 50.0)
    write_run(root, "bc-exp", T2, 0, 30.0)
    summary = write_report(root, tmp_path / "out", reps=REPS)
    agg = pd.read_csv(tmp_path / "out" / "aggregates.csv")
    assert np.allclose(agg["lower"], agg["point"]) and np.allclose(agg["upper"], agg["point"])
    assert "zero width" in summary.markdown and "50.0 ± —" in summary.markdown


def test_win_tie_loss():
    per_task = pd.DataFrame({"variant": ["sra-td3bc", "uds-td3bc", "sra-td3bc", "uds-td3bc"],
                             "task": [T1, T1, T2, T2], "mean": [90.0, 50.0, 52.0, 50.0], "se": [5.0, 5.0, 3.0, 3.0]})
    table = report.win_tie_loss(per_task, report.load_paper(report.DEFAULT_PAPER_DIR))
    # T1: 85 > 55 win; T2: [49, 55] overlaps [47, 53] tie. Paper: T1 145±7.27 vs 38.1±12.9 win,
    # T2 140±8.55 vs 22.4±9.64 win
    assert table.to_dict("records") == [{"learner": "td3bc", "pair": "sra-td3bc vs uds-td3bc", "tasks": 2,
                                         "ours W/T/L": "1/1/0", "paper W/T/L": "2/0/0"}]


def test_user_errors(built, tmp_path):
    with pytest.raises(ReportError, match="no results under .*bench run"):
        write_report(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no results under"):
        write_report(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ReportError, match="profiles quick, smoke: pass --profile NAME"):
        write_report(built["root"], tmp_path / "out", reps=REPS)
    with pytest.raises(ReportError, match="profiles present: quick, smoke"):
        write_report(built["root"], tmp_path / "out", profile="paper", reps=REPS)


def test_combines_results_directories_and_filters_variants(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for seed in range(2):
        write_run(old, "bc-exp", T1, seed, 40.0 + seed)
        write_run(old, "sra", T1, seed, 90.0)
        write_run(new, "dwbc", T1, seed, 20.0 + seed)
    summary = write_report([new, old], tmp_path / "out", reps=REPS, variants=["dwbc", "bc-exp"])
    per_task = pd.read_csv(tmp_path / "out" / "per_task.csv").set_index(["variant", "task"])
    assert sorted(per_task.index.get_level_values("variant")) == ["bc-exp", "dwbc"]
    assert per_task.loc[("bc-exp", T1), "mean"] == pytest.approx(40.5)
    assert summary.complete == ["bc-exp", "dwbc"]
    with pytest.raises(ReportError, match="no results for milo under .*present: bc-exp, dwbc, sra"):
        write_report([new, old], tmp_path / "out", reps=REPS, variants=["milo"])
    write_run(new, "sra", T1, 0, 10.0)  # the same run key in both directories
    with pytest.raises(ReportError, match="run sra/.*seed0.* is in both .*pass only one"):
        write_report([new, old], tmp_path / "out", reps=REPS)


def test_only_failed_runs_still_reports(tmp_path):
    root = tmp_path / "results"
    write_run(root, "dwbc", T1, 0, 0.0, status="failed", error="boom")
    summary = write_report(root, tmp_path / "out", reps=REPS)
    assert "no complete variant: no done runs" in summary.markdown and "boom" in summary.markdown


def test_tex_escape():
    assert report.tex_escape("sra[model_ratio=0.3] & 5% ± —") == r"sra[model\_ratio=0.3] \& 5\% $\pm$ --"


def test_done_run_without_score_is_left_out_with_warning(tmp_path):
    root = tmp_path / "results"
    write_run(root, "bc-exp", T1, 0, 50.0)
    key = write_run(root, "bc-exp", T1, 1, 50.0)
    result_path = root / "runs" / key / "result.json"
    broken = json.loads(result_path.read_text())
    broken["final_score"] = None
    atomic_write_json(result_path, broken)
    summary = write_report(root, tmp_path / "out", reps=REPS)
    assert any(key in w and "finite" in w for w in summary.warnings)
    assert len(pd.read_csv(tmp_path / "out" / "scores.csv")) == 1


def test_table4_prints_sra_over_uds_per_learner(tmp_path):
    for seed in range(2):
        write_run(tmp_path, "sra-awac", T1, seed, 90.0 + seed)
        write_run(tmp_path, "uds-awac", T1, seed, 40.0 + seed)
    text = report.table_markdown("paper-table4", tmp_path)
    assert has_row(text, "awac", "sra-awac vs uds-awac", "1", "1/0/0")
    assert has_row(text, "awac", T1, "90.5 ± 0.5", "40.5 ± 0.5", "W")
    with pytest.raises(ReportError, match="no SRA/UDS pairs"):
        write_run(tmp_path / "other", "bc-exp", T1, 0, 50.0)
        report.table_markdown("paper-table4", tmp_path / "other")


def test_runs_set_aside_as_corrupt_stay_missing_seeds_until_redone(tmp_path, caplog):
    """The first report sets a corrupt result aside (and warns); the second must not show n=1 as complete."""
    root = tmp_path / "results"
    for seed in range(2):
        write_run(root, "bc-exp", T1, seed, 40.0 + seed)
    corrupt = root / "runs" / f"bc-exp/{T1}/seed1-1a2b3c4d" / "result.json"
    atomic_write_json(corrupt.parent / "config.json", {"run_key": f"bc-exp/{T1}/seed1-1a2b3c4d", "method": "bc-exp",
                                                        "variant": "bc-exp", "task": T1, "seed": 1, "profile": "quick"})
    corrupt.write_text('{"truncated": ')
    for attempt in range(2):
        caplog.clear()
        with caplog.at_level("INFO", logger="benchmark.report"):
            summary = write_report(root, tmp_path / f"report{attempt}", reps=REPS)
        assert any("corrupt result file" in r.getMessage() and r.levelname == "WARNING"
                   for r in caplog.records) == (attempt == 0)
        assert summary.complete == [], attempt
        assert f"set aside as corrupt" in summary.incomplete["bc-exp"] and f"{T1} seed 1" in summary.incomplete["bc-exp"]
    write_run(root, "bc-exp", T1, 1, 41.0)  # redone
    assert write_report(root, tmp_path / "report2", reps=REPS).complete == ["bc-exp"]


def test_html_renders_markdown_orders_tasks_and_shares_y_axes(built):
    """Issue 15 item 14: no literal Markdown in the page; umaze -> medium -> large; one y scale per figure."""
    page = (built["out"] / "report.html").read_text()
    assert "<li>" in page and "<code>" in page
    text = page.split("<body>", 1)[1].split("<h2>Plots</h2>")[0]
    assert "`" not in text and "\n- " not in text
    md = built["summary"].markdown
    headline = md.split("## Last evaluation")[1].split("## Best")[0]
    assert headline.index(T1) < headline.index(T2)  # maze2d-umaze before maze2d-medium
    from benchmark import plots
    for fig in (plots.score_bars(pd.read_csv(built["out"] / "per_task.csv")),):
        limits = {ax.get_ylim() for ax in fig.axes if ax.get_visible()}
        assert len(limits) == 1, limits


def test_paper_difference_only_on_the_same_scale(tmp_path):
    root = tmp_path / "results"
    write_run(root, "bc-exp", T1, 0, 50.0)
    summary = write_report(root, tmp_path / "out", reps=REPS)
    assert "ours - paper" not in summary.markdown
    assert has_row(summary.markdown, "maze2d-umaze-sparse", "bc-exp", "50.0 ± —")
    run = root / "runs" / f"bc-exp/{T1}/seed0-1a2b3c4d" / "result.json"
    result = json.loads(run.read_text())
    result["data"]["source"] = "imported-d4rl"
    run.write_text(json.dumps(result))
    assert "ours - paper" in write_report(root, tmp_path / "out2", reps=REPS).markdown


def test_model_error_and_coverage_tables_average_over_seeds():
    runs = [{"method": "sra", "variant": "sra", "task": T1, "seed": s,
             "method_info": {"model": {"model/one_step_mse": 0.1 * (s + 1), "model/no_change_mse": 1.0},
                             "rounds": [{"aug/coverage_states": 0.5 + 0.1 * s, "aug/coverage_goals": 0.2},
                                        {"aug/coverage_states": 0.9, "aug/coverage_goals": 0.4}]}}
            for s in range(2)] + [{"method": "uds", "variant": "uds", "task": T1, "seed": 0}]
    errors = report.model_error_table(runs)
    assert errors.to_dict("records") == [{"variant": "sra", "task": T1, "model_mse": "0.15",
                                          "no_change_mse": "1", "ratio": "0.15"}]
    coverage = report.coverage_table(runs)
    assert list(coverage.columns) == ["variant", "task", "round 1", "round 2"]
    assert coverage.iloc[0]["round 1"] == "55% / 20%" and coverage.iloc[0]["round 2"] == "90% / 40%"


def test_report_says_which_expert_draw_the_results_used(built, tmp_path):
    assert "D^E: first expert episodes (paper protocol)." in built["summary"].markdown  # no field: "first"
    root = tmp_path / "results"
    for seed in range(2):
        write_run(root, "bc-exp", T1, seed, 40.0, expert_draw="first")
        write_run(root, "uds", T1, seed, 60.0, expert_draw="seeded")
    summary = write_report(root, tmp_path / "one", reps=REPS, variants=["bc-exp"])
    assert summary.expert_draw == "D^E: first 5 expert episodes (paper protocol)." and not summary.warnings
    summary = write_report(root, tmp_path / "mixed", reps=REPS)
    line = "D^E: MIXED draws, first 5 expert episodes (paper protocol) for bc-exp; 5 episodes drawn per seed for uds."
    assert line in summary.markdown and summary.expert_draw == line
    assert summary.warnings == [line]
    write_run(root, "bc-exp", T1, 0, 30.0, expert_draw="seeded")  # bc-exp seed 0 under both draws
    summary = write_report(root, tmp_path / "both", reps=REPS)
    assert "Under several draws (several runs per seed): bc-exp." in summary.warnings[0]
    assert "several runs of one seed" in summary.incomplete["bc-exp"]


def test_report_says_when_twin_tasks_share_a_training(built, tmp_path):
    assert "twin task" not in built["summary"].markdown
    root = tmp_path / "results"
    sparse, dense = "maze2d-umaze-sparse", "maze2d-umaze-dense"
    for seed in range(2):
        keys = [f"uds/{task}/seed{seed}-1a2b3c4d" for task in (sparse, dense)]
        write_run(root, "uds", sparse, seed, 60.0, trained_with=[keys[1]])
        write_run(root, "uds", dense, seed, 50.0, trained_with=[keys[0]])
        write_run(root, "bc-exp", sparse, seed, 40.0)  # trained alone
    summary = write_report(root, tmp_path / "report", reps=REPS)
    assert "4 of the 6 runs share their training with a twin task" in summary.markdown
    assert "2 trainings in all" not in summary.markdown and "4 trainings in all" in summary.markdown
