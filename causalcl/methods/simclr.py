"""SimCLR (Chen, Kornblith, Norouzi, Hinton; ICML 2020, arXiv 2002.05709).

Two augmented views x¹, x² of each of N images pass through the backbone f and a projector g:
z = g(f(x)). The default loss is NT-Xent over the 2N embeddings,

    ℓ_i = −log( exp(sim(z_i, z_p(i))/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) ),   L = 1/2N Σ_i ℓ_i,

with 2N−2 negatives per anchor and cosine similarity. ``loss=`` swaps in any loss of the SimCLR
family from ``causalcl.losses`` (debiased, hard, dcl, dclw, hard_threshold, align_uniform,
triplet) with ``loss_options`` passed through.

Defaults: τ = 0.5 (the paper's CIFAR value; 0.5 also worked best on the embedded ``shapes`` data),
projector feature_dim → 512 → 128 with BN + ReLU on the hidden layer.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..distributed import gather
from ..losses import get_simclr_loss
from ..models.heads import MLPHead
from .base import Method


class SimCLR(Method):
    """SimCLR with a selectable contrastive loss.

    Args:
        backbone: the encoder f.
        temperature: τ of the loss (ignored by losses without a temperature, e.g. ``triplet``).
        loss: one of ``causalcl.losses.SIMCLR_LOSSES``.
        loss_options: extra keyword arguments of that loss (e.g. ``{"tau_plus": 0.1}``).
        projector: hidden and output widths of g after the backbone width.
    """

    name = "simclr"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        temperature: float = 0.5,
        loss: str = "infonce",
        loss_options: dict[str, Any] | None = None,
        projector: Sequence[int] = (512, 128),
    ) -> None:
        super().__init__(backbone)
        if temperature <= 0:
            raise ValueError(f"temperature: expected a positive float, got {temperature}")
        self.loss_fn = get_simclr_loss(loss)
        self.loss_name = loss
        options = dict(loss_options or {})
        accepted = inspect.signature(self.loss_fn).parameters
        if "temperature" in accepted:
            options.setdefault("temperature", temperature)
        unknown = [key for key in options if key not in accepted]
        if unknown:
            valid = list(accepted)[2:]
            raise ValueError(f"loss_options: {unknown} are not parameters of loss {loss!r}; valid: {valid}")
        self.loss_options = options
        self.projector = MLPHead([self.feature_dim, *projector])

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, 2)
        batch = torch.cat(list(views[:2]))  # one backbone pass over both views
        z = self.projector(self.backbone(batch))
        z1, z2 = z.chunk(2)
        loss = self.loss_fn(gather(z1), gather(z2), **self.loss_options)  # the global batch under DDP
        return {"loss": loss, "embeddings": [z1, z2]}
