"""CLI, budget profiles, grids, runner, executors, results store and report."""
