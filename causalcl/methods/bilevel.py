"""What the bilevel methods (ICL-MSR, MetAug) share: checkpointing of their own meta-optimiser.

A bilevel method steps its meta-learner in ``meta_step`` with an optimiser it owns
(``self.meta_optimizer``, ``None`` when the method has no meta-learner). Its state travels in the
method's ``state_dict`` under ``_extra_state``, so ``--resume`` continues the meta-learner exactly.
"""

from __future__ import annotations

from typing import Any

import torch


class MetaOptimizerState:
    """Mixin for an ``nn.Module`` with a ``meta_optimizer`` attribute: saves and restores its state."""

    meta_optimizer: torch.optim.Optimizer | None

    def get_extra_state(self) -> dict[str, Any]:
        return {"meta_optimizer": self.meta_optimizer.state_dict()} if self.meta_optimizer is not None else {}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if self.meta_optimizer is not None and state.get("meta_optimizer"):
            self.meta_optimizer.load_state_dict(state["meta_optimizer"])
