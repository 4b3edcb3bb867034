"""CSV training log (``train_log.csv``): one row per logged step, one column per loss term."""

from __future__ import annotations

import csv
from pathlib import Path


class CSVLog:
    """Appends rows ``step, loss, <terms…>, lr``; on resume, rows after the checkpoint step are dropped."""

    def __init__(self, path: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.columns: list[str] | None = None
        if resume_step is not None and self.path.is_file():
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or [])
                rows = [row for row in reader if int(row["step"]) <= resume_step]
            self._rewrite(rows)
        elif self.path.exists():
            self.path.unlink()

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns or ["step"])
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict[str, float]) -> None:
        if self.columns is None:
            self.columns = ["step", "loss", *sorted(k for k in row if k not in ("step", "loss", "lr")), "lr"]
            self._rewrite([])
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore").writerow(row)


def read_log(path: str | Path) -> dict[str, list[float]]:
    """Read ``train_log.csv`` into columns of floats."""
    with Path(path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    return {key: [float(r[key]) for r in rows if r.get(key) not in (None, "")] for key in rows[0]}


class TensorBoardLog:
    """Mirrors the CSV rows to TensorBoard scalars under ``<out>/tensorboard``."""

    def __init__(self, path: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ValueError("train.tensorboard: TensorBoard is not installed; "
                             "pip install 'causalcl[tensorboard]'") from exc
        self.writer = SummaryWriter(str(path))

    def write(self, row: dict[str, float]) -> None:
        step = int(row["step"])
        for key, value in row.items():
            if key != "step" and isinstance(value, int | float):
                self.writer.add_scalar(f"train/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
