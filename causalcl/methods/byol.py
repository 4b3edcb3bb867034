"""BYOL (Grill, Strub, Altché, Tallec, Richemond, et al., NeurIPS 2020, "Bootstrap Your Own Latent",
arXiv 2006.07733).

An online network (backbone f_θ, projector g_θ, predictor q_θ) predicts the projection of the other
view made by a target network (f_ξ, g_ξ), an EMA copy of the online backbone and projector. With
p = q_θ(g_θ(f_θ(x))) and z' = g_ξ(f_ξ(x)), and hats denoting L2 normalisation,

    L = ‖p̂¹ − sg(ẑ'²)‖² + ‖p̂² − sg(ẑ'¹)‖²  = (2 − 2cos(p¹, z'²)) + (2 − 2cos(p², z'¹)),

each term averaged over the batch (``causalcl.losses.byol_loss``); the two directions are summed, as
in the paper (so L ∈ [0, 8]). After every optimiser step the target moves, ξ ← τ·ξ + (1 − τ)·θ, with
the cosine schedule τ_k = 1 − (1 − τ_base)(cos(πk/K) + 1)/2 from τ_base to 1
(``momentum.cosine_momentum``); k is the index of the step just taken (0 for the first update, as in
the official code), K the total number of steps. BatchNorm running statistics of the target are copied
from the online network. The logged ``momentum`` is the τ of the latest update (τ_base before any).

``forward`` does not change the target; ``on_step_end`` updates it. Both views pass through each
network in one batch. Under DDP the loss is the global-batch mean (predictions gathered with
gradients, targets without).

Defaults, small for ``convnet_small`` / CIFAR-scale runs: τ_base = 0.99 (the paper's CIFAR/short-run
value; 0.996 on ImageNet), projector feature_dim → 512 → 128 and predictor 128 → 512 → 128, both with
BatchNorm + ReLU on the hidden layer (the paper: 4096 → 256 for both; ``predictor_hidden`` sets the
predictor's hidden width, its output is always the projector's).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..distributed import gather, gather_no_grad
from ..losses import byol_loss
from ..models.heads import MLPHead
from .base import Method
from .momentum import cosine_momentum, ema_update_, frozen_copy


class BYOL(Method):
    """BYOL with a predictor and an EMA target on a cosine momentum schedule.

    Args:
        backbone: the online encoder f_θ (its EMA copy becomes f_ξ).
        base_momentum: τ_base, the EMA rate at the first step, in [0, 1]; it rises to 1.
        projector: hidden and output widths of g after the backbone width.
        predictor_hidden: hidden width of the predictor q (its input and output width is the
            projector output).
    """

    name = "byol"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        base_momentum: float = 0.99,
        projector: Sequence[int] = (512, 128),
        predictor_hidden: int = 512,
    ) -> None:
        super().__init__(backbone)
        if not 0.0 <= base_momentum <= 1.0:
            raise ValueError(f"base_momentum: expected a value in [0, 1], got {base_momentum}")
        if len(projector) < 1:
            raise ValueError("projector: expected at least the output width, got an empty list")
        if isinstance(predictor_hidden, bool) or not isinstance(predictor_hidden, int) or predictor_hidden <= 0:
            raise ValueError(f"predictor_hidden: expected a positive int, got {predictor_hidden!r}")
        self.base_momentum = float(base_momentum)
        self.projector = MLPHead([self.feature_dim, *projector])
        out = int(projector[-1])
        self.predictor = MLPHead([out, predictor_hidden, out])
        self.target_backbone = frozen_copy(self.backbone)
        self.target_projector = frozen_copy(self.projector)
        self.register_buffer("tau", torch.tensor(self.base_momentum))

    def forward(self, views: list[torch.Tensor], targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``targets``: the target network's projections of ``cat(views[:2])`` from an earlier call on the same
        views and target weights (returned as ``"targets"``), so a wrapper's second forward skips that network."""
        self.check_views(views, 2)
        x = torch.cat(list(views[:2]))
        z = self.projector(self.backbone(x))
        p1, p2 = self.predictor(z).chunk(2)
        if targets is None:
            with torch.no_grad():
                targets = self.target_projector(self.target_backbone(x))
        t1, t2 = targets.chunk(2)
        loss = byol_loss(gather(p1), gather_no_grad(t2)) + byol_loss(gather(p2), gather_no_grad(t1))
        z1, z2 = z.chunk(2)
        return {"loss": loss, "momentum": self.tau.detach().clone(), "embeddings": [z1, z2], "targets": targets}

    def on_step_end(self, step: int, total_steps: int) -> None:
        """ξ ← τ·ξ + (1 − τ)·θ with τ = cosine_momentum(τ_base, step − 1, total_steps)."""
        tau = cosine_momentum(self.base_momentum, step - 1, total_steps)
        ema_update_(self.target_backbone, self.backbone, tau)
        ema_update_(self.target_projector, self.projector, tau)
        self.tau.fill_(tau)
