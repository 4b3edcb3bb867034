"""Plain progress lines for logs: what a run prints when its output is not a terminal.

A tqdm bar is invisible when stdout/stderr go to a file or a pipe (``causalcl … | tee log``). The Trainer then
prints, on stdout, one line when training starts, one line each time at least ``PLAIN_EVERY_S`` seconds (10 s)
have passed since the last line — never more often (``every_s`` below 1 s is honoured only when it is 0, which
tests use to get a line per step) — and one line at the end::

    train simclr: step 120/450 (27%) loss 5.1234 lr 1.2e-03 812 img/s ETA 1m05s

``say`` prints one line of the main job (diagnostics, probe fits) on stdout, flushed at once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

#: seconds between two plain progress lines of a training run (see the module docstring)
PLAIN_EVERY_S = 10.0


def say(message: str) -> None:
    """One progress line of the main job on stdout, flushed (so a pipe or ``tee`` shows it at once)."""
    print(message, flush=True)


def plain_wanted() -> bool:
    """True when stdout is not a terminal: the log lines replace the progress bar a reader would not see."""
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return True


def duration(seconds: float) -> str:
    """``65`` → ``1m05s``; ``3725`` → ``1h02m``; ``7.2`` → ``7s``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class PlainProgress:
    """Prints the plain training lines described in the module docstring.

    Args:
        desc: what is trained (``train simclr``, ``2×2 protocol pre-training …``).
        total: the run's last step; ``initial``: the step it starts from (a resumed run).
        batch_size: images per step (for img/s).
        every_s: seconds between lines; ``None`` = ``PLAIN_EVERY_S`` read at construction (tests set it to 0).
        write: where a line goes (default :func:`say`).
    """

    def __init__(self, desc: str, total: int, initial: int, batch_size: int, every_s: float | None = None,
                 write: Callable[[str], None] = say) -> None:
        every = PLAIN_EVERY_S if every_s is None else float(every_s)
        self.every_s = every if every <= 0 else max(1.0, every)
        self.desc, self.total, self.initial, self.batch_size, self.write = desc, total, initial, batch_size, write
        self.start = self.last = time.perf_counter()
        self.write(f"{desc}: {total - initial} step(s) to go (from step {initial} of {total}), batch {batch_size}")

    def due(self) -> bool:
        """Whether the next :meth:`line` should be printed now."""
        return time.perf_counter() - self.last >= self.every_s

    def line(self, step: int, loss: float | None, lr: float) -> None:
        """Print the line for ``step`` (``loss`` None: not read at this step)."""
        now = time.perf_counter()
        self.last = now
        done, elapsed = step - self.initial, now - self.start
        rate = done / elapsed if elapsed > 0 and done > 0 else 0.0
        eta = duration((self.total - step) / rate) if rate > 0 else "?"
        parts = [f"{self.desc}: step {step}/{self.total} ({100 * step / max(1, self.total):.0f}%)"]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        parts += [f"lr {lr:.1e}", f"{rate * self.batch_size:.0f} img/s", f"ETA {eta}"]
        self.write(" ".join(parts))

    def close(self, step: int, loss: float | None, lr: float, stopped_early: bool) -> None:
        """The last line: where training ended and how long it took."""
        self.line(step, loss, lr)
        how = "stopped early by the time limit" if stopped_early else "done"
        self.write(f"{self.desc}: {how} at step {step}/{self.total} in {duration(time.perf_counter() - self.start)}")
