"""Barlow Twins (Zbontar, Jing, Misra, LeCun, Deny; ICML 2021, arXiv 2103.03230).

Two views pass through the backbone f and a projector g, z = g(f(x)). Each embedding dimension is
standardised over the batch (mean 0, biased std 1, eps 1e-5: ``BatchNorm1d`` without affine, as in
the official code) and the (D, D) cross-correlation of the two views is pushed to the identity::

    C_ij = (1/N) Σ_b ẑ¹_bi ẑ²_bj,      L = scale_loss · ( Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij² )

(``causalcl.losses.barlow_twins_loss``). Under DDP the method gathers z¹, z² from every rank with
the differentiable ``causalcl.distributed.gather`` before the loss, so the batch statistics and C are
those of the global batch with gradients through them (the official code's SyncBN + all-reduce of C).

Defaults: λ = 5e-3; ``scale_loss`` = 1 (the current official code; solo-learn's CIFAR recipe uses
0.1, see ``assets/configs/barlow_twins_cifar10.yaml``); projector feature_dim → 512 → 512 → 512
(BN + ReLU on the hidden layers): the paper's three layers of 8192 shrunk for the 128-d
``convnet_small`` CPU default — the paper reports accuracy still rising with the projector width, so
use 2048 or more on a GPU. Logged terms: ``on_diag`` = Σ (1 − C_ii)², ``off_diag`` = Σ_{i≠j} C_ij².
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..distributed import gather
from ..losses import barlow_twins_terms
from ..losses._common import check_real
from ..models.heads import MLPHead
from .base import Method


class BarlowTwins(Method):
    """Barlow Twins.

    Args:
        backbone: the encoder f.
        lambd: λ >= 0, weight of the off-diagonal (redundancy-reduction) term.
        scale_loss: > 0, factor on the whole loss.
        eps: >= 0, added to the batch variance when standardising.
        projector: hidden and output widths of g after the backbone width.
    """

    name = "barlow_twins"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        lambd: float = 5e-3,
        scale_loss: float = 1.0,
        eps: float = 1e-5,
        projector: Sequence[int] = (512, 512, 512),
    ) -> None:
        super().__init__(backbone)
        self.lambd = check_real(lambd, "lambd", low=0.0)
        self.scale_loss = check_real(scale_loss, "scale_loss", low=0.0, low_open=True)
        self.eps = check_real(eps, "eps", low=0.0)
        self.projector = MLPHead([self.feature_dim, *projector])

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, 2)
        z = self.projector(self.backbone(torch.cat(list(views[:2]))))  # one backbone pass over both views
        z1, z2 = z.chunk(2)
        on, off = barlow_twins_terms(gather(z1), gather(z2), self.eps)  # global-batch statistics under DDP
        loss = self.scale_loss * (on + self.lambd * off)
        return {"loss": loss, "on_diag": on.detach(), "off_diag": off.detach(), "embeddings": [z1, z2]}
