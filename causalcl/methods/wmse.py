"""W-MSE (Ermolov, Siarohin, Sangineto, Sebe; ICML 2021, arXiv 2007.06346).

Two views give embeddings z_v = g(f(x_v)). The batch is split at random into sub-batches of about
``w_size`` samples; inside each, every view is whitened with the inverse Cholesky factor of its
covariance (x̄ ↦ x̄ L⁻ᵀ, Σ = L Lᵀ), and the whitened vectors w of the two views are pulled together
with the normalised MSE (the official code's ``norm_mse_loss``)::

    L = (1/N) Σ_n ‖ w¹_n/‖w¹_n‖ − w²_n/‖w²_n‖ ‖² = 2 − 2 · mean_n cos(w¹_n, w²_n)

averaged over ``w_iter`` draws of sub-batches (``causalcl.losses.wmse_loss``). Whitening scatters the
embeddings on the unit sphere, which replaces the negatives of contrastive losses.

Decisions:
* Under DDP z¹, z² are gathered (``causalcl.distributed.gather``, differentiable) before the split,
  so the sub-batches and their covariances are drawn from the global batch with gradients through
  the statistics. The permutations come from a ``torch.Generator`` seeded with the optimiser step
  count (and ``seed``), so every rank draws the same sub-batches, ``forward`` changes no state, and a
  resumed run redraws the same ones (the step count is saved in the state dict).
* Both whitened views carry gradient, as the paper and the official code (``norm_mse_loss(x0, x1)``).
  solo-learn's ``wmse_loss_func`` defaults to ``simplified=True``, ``2 − 2·cos(z1, z2.detach())``: the same
  value, but the second view gets no gradient (half the signal, a BYOL-like asymmetry); its "same result"
  holds for the loss, not for the training.
* A batch that is not a multiple of ``w_size`` is split into ``N // w_size`` near-equal sub-batches
  (the official code requires a multiple); each sub-batch must hold more samples than the embedding
  dimension unless ``eps`` > 0 (a clear ``ValueError`` says so).

Defaults: embedding 64-d (the paper's CIFAR value), projector feature_dim → 512 → 64 (BN + ReLU;
the paper's hidden width is 1024), ``w_size`` = 128, ``w_iter`` = 1, ``eps`` = 0, normalised MSE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..distributed import gather
from ..losses import wmse_loss
from ..losses._common import check_real
from ..models.heads import MLPHead
from .base import Method


class WMSE(Method):
    """W-MSE with Cholesky whitening of random sub-batches.

    Args:
        backbone: the encoder f.
        projector: hidden and output widths of g after the backbone width (the last is the embedding).
        w_size: sub-batch size for whitening (>= 2).
        w_iter: whitening iterations per step (>= 1), each with fresh sub-batches.
        eps: shrinkage of the covariance towards the identity, in [0, 1].
        normalize: normalised MSE (default) or plain MSE of the whitened embeddings.
        seed: offset of the per-step seed of the sub-batch permutations.
    """

    name = "wmse"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        projector: Sequence[int] = (512, 64),
        w_size: int = 128,
        w_iter: int = 1,
        eps: float = 0.0,
        normalize: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(backbone)
        for key, value, low in (("w_size", w_size, 2), ("w_iter", w_iter, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key}: expected an integer >= {low}, got {value!r}")
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize: expected a bool, got {normalize!r}")
        self.w_size, self.w_iter, self.seed = w_size, w_iter, seed
        self.eps = check_real(eps, "eps", low=0.0, high=1.0)
        self.normalize = normalize
        self.steps_done = 0  # optimiser steps taken so far (saved through get_extra_state)
        self.projector = MLPHead([self.feature_dim, *projector])

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, 2)
        z = self.projector(self.backbone(torch.cat(list(views[:2]))))  # one backbone pass over both views
        z1, z2 = z.chunk(2)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.steps_done)
        loss = wmse_loss(gather(z1), gather(z2), w_size=self.w_size, w_iter=self.w_iter, eps=self.eps,
                         normalize=self.normalize, generator=generator)
        return {"loss": loss, "embeddings": [z1, z2]}

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.steps_done = int(step)

    def get_extra_state(self) -> Any:
        return {"steps_done": self.steps_done}

    def set_extra_state(self, state: Any) -> None:
        self.steps_done = int(state["steps_done"])
