"""Training logs behind a tiny protocol: CSV (always), TensorBoard (optional)."""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Protocol


def progress_bar(*args, **kwargs):
    """tqdm, redrawn at most every 30 s when stderr is not a terminal (nohup, batch jobs) so logs stay readable."""
    from tqdm.auto import tqdm
    kwargs.setdefault("mininterval", 0.1 if sys.stderr.isatty() else 30.0)
    return tqdm(*args, **kwargs)


class Logger(Protocol):
    def log(self, step: int, scalars: dict[str, float]) -> None: ...
    def close(self) -> None: ...


class CSVLogger:
    """Long format ``step,key,value``: any set of keys, and resuming can cut rows after a checkpoint."""

    def __init__(self, path: Path, resume_from_step: int | None = None):
        self.path = Path(path)
        if resume_from_step is not None and self.path.exists():
            self._truncate_after(resume_from_step)
        fresh = resume_from_step is None or not self.path.exists()
        self._file = self.path.open("w" if fresh else "a", newline="")
        self._writer = csv.writer(self._file)
        if fresh:
            self._writer.writerow(["step", "key", "value"])

    def _truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step``: they belong to updates the resumed run will redo."""
        with self.path.open(newline="") as f:
            rows = [r for r in csv.reader(f)]
        kept = rows[:1] + [r for r in rows[1:] if len(r) == 3 and r[0].isdigit() and int(r[0]) <= step]
        with self.path.open("w", newline="") as f:
            csv.writer(f).writerows(kept)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        self._writer.writerows([step, key, f"{value:.6g}"] for key, value in scalars.items())
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardLogger:
    def __init__(self, log_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            from core.errors import BenchError
            raise BenchError("--tensorboard needs the tensorboard package: pip install -e '.[tensorboard]'") from None
        self._writer = SummaryWriter(str(log_dir))

    def log(self, step: int, scalars: dict[str, float]) -> None:
        for key, value in scalars.items():
            self._writer.add_scalar(key, value, step)

    def close(self) -> None:
        self._writer.close()


class MultiLogger:
    def __init__(self, *loggers: Logger):
        self.loggers = loggers

    def log(self, step: int, scalars: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.log(step, scalars)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()
