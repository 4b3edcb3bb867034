"""SimSiam (Chen & He, CVPR 2021, "Exploring Simple Siamese Representation Learning", arXiv 2011.10566).

One network (backbone f, projector g) encodes both views, z = g(f(x)); a bottleneck predictor h
maps z to p = h(z). With D(p, z) = −cos(p, z) and a stop-gradient on the target,

    L = ½·D(p¹, sg(z²)) + ½·D(p², sg(z¹))      (``causalcl.losses.negative_cosine``; L ∈ [−1, 1]).

No negatives, no momentum encoder: the stop-gradient alone prevents collapse. The projector is the
paper's: Linear-BN-ReLU on every hidden layer and BatchNorm (no affine) on the output; the predictor
is Linear-BN-ReLU-Linear with a bottleneck hidden width (paper: 2048 → 512 → 2048, hidden = out/4).
Both views pass through the network in one batch. Under DDP the loss is the global-batch mean
(predictions gathered with gradients, targets without).

BatchNorm in the projector: the paper has it after every layer, the output one included (without affine
parameters there, as the official code); ``projector_bn=False`` drops it from the hidden layers and
``projector_output_bn=False`` from the output (the paper's Table 3 ablates both; some reimplementations
omit the output BN).

Defaults, small for ``convnet_small`` / CIFAR-scale runs: projector feature_dim → 512 → 512 → 512
(three layers, as the paper's baseline and solo-learn's CIFAR recipe; ``assets/configs/simsiam_cifar10.yaml``
has 2048-wide ones), predictor 512 → 128 → 512. Not implemented: the paper's fixed (non-decayed) learning
rate for the predictor, which it reports as slightly better but not required.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..distributed import gather, gather_no_grad
from ..losses import negative_cosine
from ..models.heads import MLPHead
from .base import Method


class SimSiam(Method):
    """SimSiam: symmetric negative cosine between predictions and stop-gradient projections.

    Args:
        backbone: the encoder f.
        projector: hidden and output widths of g after the backbone width (BN on the output).
        predictor_hidden: hidden width of the predictor h (default: projector output // 4).
        projector_bn: BatchNorm on the projector's hidden layers.
        projector_output_bn: BatchNorm (no affine) on the projector's output.
    """

    name = "simsiam"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        projector: Sequence[int] = (512, 512, 512),
        predictor_hidden: int | None = None,
        projector_bn: bool = True,
        projector_output_bn: bool = True,
    ) -> None:
        super().__init__(backbone)
        if len(projector) < 1:
            raise ValueError("projector: expected at least the output width, got an empty list")
        out = int(projector[-1])
        hidden = max(out // 4, 1) if predictor_hidden is None else predictor_hidden
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden <= 0:
            raise ValueError(f"predictor_hidden: expected a positive int, got {predictor_hidden!r}")
        self.projector = MLPHead([self.feature_dim, *projector], last_bn=bool(projector_output_bn),
                                 hidden_bn=bool(projector_bn))
        self.predictor = MLPHead([out, hidden, out])

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, 2)
        z = self.projector(self.backbone(torch.cat(list(views[:2]))))
        p1, p2 = self.predictor(z).chunk(2)
        z1, z2 = z.chunk(2)
        loss = 0.5 * (negative_cosine(gather(p1), gather_no_grad(z2)) + negative_cosine(gather(p2), gather_no_grad(z1)))
        return {"loss": loss, "embeddings": [z1, z2]}
