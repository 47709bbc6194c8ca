"""Tasks, datasets (generate / load) and evaluation."""


class BenchError(Exception):
    """A user mistake (unknown name, missing data, bad file): the CLI prints it as one line."""
