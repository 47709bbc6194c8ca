"""The one error type the CLI reports as a plain line (no traceback): a user mistake, never a bug."""


class BenchError(Exception):
    """A user mistake (unknown name, missing data, bad file): the CLI prints it as one line."""
