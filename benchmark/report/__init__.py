"""``bench report``: per-task tables, the paper comparison and rliable statistics from the results store.

Data contract (rliable's): ``{variant: array(runs, tasks)}`` of normalized scores on the 0-100 scale,
built only from *done* runs of one budget profile. A variant enters the aggregate statistics only if
its matrix is a full rectangle (every task, the same seeds on every task); anything else is named
with the reason, never averaged silently.

Conventions:
- SE = sample std (ddof=1) / sqrt(n). With n = 1 std and SE are undefined: NaN in the CSVs, "—" in tables.
- "last" (the final evaluation) is the headline; "best" (best evaluation over training) is optimistic
  and labelled so. Aggregate statistics use "last".
- 95% stratified-bootstrap percentile CIs with ``BOOTSTRAP_REPS`` replications, one seeded rliable call
  per variant (per pair), so a variant's CIs do not depend on the others.
- Probability of improvement: rliable's definition (Mann-Whitney U / (n_x n_y) per task, averaged
  over tasks), vectorized in ``improvement_probability``.
- Learning curves: per (variant, task), the step grid most seeds share; seeds on another grid are
  skipped and named.

Modules by concern: ``load`` (results store -> score matrices), ``stats`` (rliable aggregates, mean ± SE),
``paper`` (the paper's tables beside ours), ``tables`` (display strings), ``render`` (Markdown, LaTeX, HTML)
and ``document`` (the report's sections, figures and files). Messages go to the ``benchmark.report`` loggers.
"""
from benchmark.report.document import (ReportData, ReportSummary, _provenance, build_figures, build_sections,
                                       compute, table_markdown, write_report)
from benchmark.report.load import (Loaded, ReportError, ResultsDirs, expert_draw_line, expert_draws,
                                   incomplete_reasons, load_results, score_matrices, scores_frame, variant_of)
from benchmark.report.paper import (DEFAULT_PAPER_DIR, LEARNERS, PAPER_ALIASES, _paper_index, load_paper, paper_entry,
                                    paper_table, per_task_table, same_scale_tasks, table4_pairs, win_tie_loss,
                                    win_tie_loss_detail)
from benchmark.report.render import Section, render_html, render_latex, render_markdown, tex_escape
from benchmark.report.stats import (BOOTSTRAP_REPS, GAMMA, METRICS, aggregate_estimates, curve_frame,
                                    improvement_estimates, improvement_probability, performance_profiles)
from benchmark.report.tables import (aggregate_table, coverage_table, improvement_table, model_error_table,
                                     own_expert_table, score_table)
