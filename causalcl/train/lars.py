"""LARS (You, Gitman, Ginsburg 2017, arXiv 1708.03888), as used by SimCLR/BYOL/Barlow Twins.

For each parameter w with gradient g: g ← g + wd·w; trust ratio η‖w‖ / ‖g‖ (1 when either norm
is zero); the momentum buffer accumulates lr · trust · g, and w ← w − buffer. Biases and 1-D
(BatchNorm) parameters are excluded from weight decay and adaptation, as in the SimCLR/BYOL code.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class LARS(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[torch.nn.Parameter] | Iterable[dict],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        trust_coefficient: float = 1e-3,
        exclude_1d: bool = True,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"lr: expected a positive float, got {lr}")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                    "trust_coefficient": trust_coefficient, "exclude_1d": exclude_1d}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if not (group["exclude_1d"] and p.ndim <= 1):
                    grad = grad.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(grad)
                    trust = torch.where((w_norm > 0) & (g_norm > 0),
                                        group["trust_coefficient"] * w_norm / g_norm, torch.ones_like(w_norm))
                    grad = grad * trust
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(grad, alpha=group["lr"])
                p.sub_(buf)
        return loss
