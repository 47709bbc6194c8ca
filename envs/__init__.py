"""Tasks, datasets (generate / load) and evaluation."""
