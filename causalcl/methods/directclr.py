"""DirectCLR (Jing, Vincent, LeCun, Tian; "Understanding Dimensional Collapse in Contrastive
Self-supervised Learning", ICLR 2022, arXiv 2110.09348).

No projector: the loss acts directly on a sub-vector of the representation r = f(x), its first d0
dimensions z = r[:, :d0]. The paper's analysis shows that a projector makes the representation
low-rank in the directions it does not use; training the first d0 dimensions directly lets the
gradient through the backbone shape the whole representation. The loss is InfoNCE with τ = 0.1:

* ``negatives="cross_view"`` (default, the official ``facebookresearch/directclr`` code): with unit
  rows u_i = z¹_i/‖z¹_i‖, v_k = z²_k/‖z²_k‖, the N×N logits u·vᵀ/τ, cross-entropy with the diagonal
  as targets, symmetrised: L = ½ CE(z¹ → z²) + ½ CE(z² → z¹) (``causalcl.losses.cross_view_info_nce``);
* ``negatives="all"``: SimCLR's NT-Xent over the 2N embeddings with 2N − 2 negatives per anchor
  (``causalcl.losses.info_nce``).

Dimensions ≥ d0 never enter the loss; they still change through the shared backbone weights.

Defaults: d0 = 32 for the 128-d ``convnet_small`` (a quarter of the width); the paper uses d0 = 360
of ResNet-50's 2048 dimensions on ImageNet (about 70 of ResNet-18's 512 at the same ratio);
τ = 0.1. ``"embeddings"`` are the two views' first d0 dimensions (un-normalised).
"""

from __future__ import annotations

import torch
from torch import nn

from ..distributed import gather
from ..losses import cross_view_info_nce, info_nce
from ..losses._common import check_temperature
from .base import Method

NEGATIVES = {"cross_view": cross_view_info_nce, "all": info_nce}


class DirectCLR(Method):
    """InfoNCE on the first ``d0`` dimensions of the backbone representation, without projector.

    Args:
        backbone: the encoder f.
        d0: number of leading representation dimensions the loss sees, 1 <= d0 <= feature_dim.
        temperature: τ of the InfoNCE loss.
        negatives: ``"cross_view"`` (N×N cross-view logits, official) or ``"all"`` (SimCLR's 2N − 2).
    """

    name = "directclr"

    def __init__(self, backbone: nn.Module, *, d0: int = 32, temperature: float = 0.1,
                 negatives: str = "cross_view") -> None:
        super().__init__(backbone)
        if isinstance(d0, bool) or not isinstance(d0, int) or not 1 <= d0 <= self.feature_dim:
            raise ValueError(f"d0: expected an integer in [1, feature_dim = {self.feature_dim}], got {d0!r}")
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives: expected one of {sorted(NEGATIVES)}, got {negatives!r}")
        self.d0 = d0
        self.temperature = check_temperature(temperature)
        self.negatives = negatives
        self.loss_fn = NEGATIVES[negatives]

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, 2)
        r = self.backbone(torch.cat(list(views[:2])))  # one backbone pass over both views
        z1, z2 = r[:, : self.d0].chunk(2)
        loss = self.loss_fn(gather(z1), gather(z2), temperature=self.temperature)
        return {"loss": loss, "embeddings": [z1, z2]}
