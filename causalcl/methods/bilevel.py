"""What the bilevel methods (ICL-MSR, MetAug) share: checkpointing of their own meta-optimiser, and
the cross-rank mean of their meta-gradients under DDP.

A bilevel method steps its meta-learner in ``meta_step`` with an optimiser it owns
(``self.meta_optimizer``, ``None`` when the method has no meta-learner). Its state travels in the
method's ``state_dict`` under ``_extra_state``, so ``--resume`` continues the meta-learner exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..distributed import all_reduce_sum, world_size


def global_mean_grads(grads: Sequence[Tensor | None]) -> list[Tensor | None]:
    """Under DDP, every rank's gradient of the global-batch loss averaged over ranks: the one-process gradient
    (each rank's loss is the global one, and a gather's backward gives a rank its samples' share times the
    number of ranks). Differentiable (``all_reduce_sum``), so a lookahead built on it stays exact to second
    order. In one process the gradients are returned unchanged."""
    n = world_size()
    if n == 1:
        return list(grads)
    return [None if g is None else all_reduce_sum(g) / n for g in grads]


class MetaOptimizerState:
    """Mixin for an ``nn.Module`` with a ``meta_optimizer`` attribute: saves and restores its state."""

    meta_optimizer: torch.optim.Optimizer | None

    def get_extra_state(self) -> dict[str, Any]:
        return {"meta_optimizer": self.meta_optimizer.state_dict()} if self.meta_optimizer is not None else {}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if self.meta_optimizer is not None and state.get("meta_optimizer"):
            self.meta_optimizer.load_state_dict(state["meta_optimizer"])
