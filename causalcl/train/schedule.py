"""Learning-rate schedule: linear warmup then cosine decay to zero."""

from __future__ import annotations

import math

import torch


class WarmupCosine:
    """lr(step) = base · step/warmup for step < warmup, then base · ½(1 + cos(π·(step−warmup)/(total−warmup))).

    Stateless apart from the step counter, which ``state_dict`` saves so a resumed run continues
    on the same curve.

    Extending (or shortening) a run on resume — ``--resume --steps N`` — calls :meth:`replan`: from the step
    where the run stands on, the lr follows the warm-up + cosine curve *planned for N steps from the start*
    (same base lr, same warm-up length, capped at N − 1). The steps already taken keep the lr they had, so the
    lr jumps at the resume step from the old curve to the new one (a finished 6-step run resumed to 10 goes
    from lr 0 to base · ½(1 + cos(π·(6 − w)/(10 − w))) at step 7) and then decays to 0 at step N; the run is
    not identical to one planned for N steps from the start, whose first steps would have had a higher lr.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0) -> None:
        if total_steps <= 0:
            raise ValueError(f"total_steps: expected a positive int, got {total_steps}")
        self.optimizer = optimizer
        self.total_steps = int(total_steps)
        self.warmup_steps = max(0, min(int(warmup_steps), self.total_steps - 1))
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.step_count = 0
        self._apply()

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * f

    def replan(self, total_steps: int, warmup_steps: int) -> None:
        """Continue from the current step on the curve planned for ``total_steps`` (see the class docstring)."""
        if total_steps < self.step_count:
            raise ValueError(f"total_steps: {total_steps} is fewer than the {self.step_count} steps already taken")
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, min(int(warmup_steps), self.total_steps - 1))
        self._apply()

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, object]:
        return {"step_count": self.step_count, "base_lrs": list(self.base_lrs),
                "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.step_count = int(state["step_count"])  # type: ignore[arg-type]
        self.base_lrs = [float(x) for x in state["base_lrs"]]  # type: ignore[union-attr]
        self.total_steps = int(state["total_steps"])  # type: ignore[arg-type]
        self.warmup_steps = int(state["warmup_steps"])  # type: ignore[arg-type]
        self._apply()
