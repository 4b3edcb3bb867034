"""ReLIC and ReLIC_T (Mitrovic, McWilliams, Walker, Buesing, Blundell, "Representation Learning via
Invariant Causal Mechanisms", ICLR 2021, arXiv 2010.07922).

Each view x^{a_l} is one draw of a ``StyleIntervention`` do(S = a_l) (the configured augmentation).
For the ordered pairs a_lk = (a_l, a_k), l ≠ k (``StyleIntervention.pairs``), the logit matrix
L_lk[i, j] = cos(g(f(x_i^{a_l})), g(h(x_j^{a_k})))/τ (N × N) and its row-softmax p^{do(a_lk)} give

    L = 1/|P| Σ_{a_lk} 1/N Σ_i −log p^{do(a_lk)}_{ii}
        + α · 1/(|P|(|P|−1)) Σ_{a_lk ≠ a_qt} 1/N Σ_i KL(p^{do(a_lk)}_i ‖ p^{do(a_qt)}_i)

(``causalcl.losses.relic_terms``); with two views, the InfoNCE of L₁₂ and L₂₁ plus α times the
symmetrised KL between p^{do(12)} and p^{do(21)}. More views (``num_views``) average over all
ordered pairs. The paper's sums are taken as means, which rescales α relative to the paper.

* ``relic``: h = f (one network; gradients flow through both sides of every logit).
* ``relic_t``: h is an EMA target copy of the backbone and projector (BYOL's architecture, which
  the paper follows "exactly" for ReLIC_T: the online side adds a predictor q, the target side is
  never differentiated). Target update in ``on_step_end`` with BYOL's cosine schedule τ_base → 1.

Stop-gradient (``kl_stop_gradient``): the KL is computed as ``sg[Σ p log p] − Σ p log q``
(``"entropy"``, default: the paper's implementation as reported in research/methods.md §3; it is
unverified, as ReLIC v1 released no pre-training code), so its gradient is the cross-entropy's and
reaches both distributions; ``"none"`` is the exact KL gradient, ``"target"`` detaches p
(the first argument) entirely.

Defaults (CPU / CIFAR-scale): τ = 0.5 (SimCLR's calibrated value on ``shapes``; the paper's is not
given), α = 1 (the reimplementation filipbasara0/relic; the paper sweeps it), projector
feature_dim → 512 → 128 with BatchNorm + ReLU; ``relic_t``: predictor 128 → 512 → 128, τ_base 0.99.
Under DDP the projections are gathered (with gradients; targets without) before the loss.
With ``--views interventional`` the ``num_views`` views are true counterfactuals do(style = s')
of the SCM datasets instead of augmentation draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..causal.style import StyleIntervention
from ..distributed import gather, gather_no_grad
from ..losses._common import check_real
from ..losses.relic import KL_STOP_GRADIENTS, relic_terms
from ..models.heads import MLPHead
from .base import Method
from .momentum import cosine_momentum, ema_update_, frozen_copy


class ReLIC(Method):
    """ReLIC: InfoNCE over ordered augmentation pairs + α·KL invariance penalty, h = f.

    Args:
        backbone: the encoder f.
        temperature: τ of the logits (cosine similarity / τ).
        alpha: α, the weight of the KL invariance penalty (≥ 0).
        num_views: V ≥ 2 views per image, each a draw of the augmentation read as ``do(S = a)``.
        kl_stop_gradient: ``"entropy"`` | ``"none"`` | ``"target"`` (see the module docstring).
        projector: hidden and output widths of the critic g after the backbone width.
    """

    name = "relic"
    #: ``--views interventional``: the counterfactuals are true do(S = a) draws, ReLIC's own reading
    supports_interventional_views = True

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.5, alpha: float = 1.0, num_views: int = 2,
                 kl_stop_gradient: str = "entropy", projector: Sequence[int] = (512, 128)) -> None:
        super().__init__(backbone)
        self.temperature = check_real(temperature, "temperature", low=0.0, low_open=True)
        self.alpha = check_real(alpha, "alpha", low=0.0)
        if isinstance(num_views, bool) or not isinstance(num_views, int) or num_views < 2:
            raise ValueError(f"num_views: expected an integer >= 2, got {num_views!r}")
        if kl_stop_gradient not in KL_STOP_GRADIENTS:
            raise ValueError(f"kl_stop_gradient: expected one of {KL_STOP_GRADIENTS}, got {kl_stop_gradient!r}")
        if len(projector) < 1:
            raise ValueError("projector: expected at least the output width, got an empty list")
        self.num_views = num_views
        self.kl_stop_gradient = kl_stop_gradient
        self.projector = MLPHead([self.feature_dim, *projector])

    def make_views(self, augment: Callable[..., torch.Tensor], images: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """``num_views`` draws of the augmentation read as a style intervention do(S = a)."""
        intervention = augment if isinstance(augment, StyleIntervention) else StyleIntervention("augment", augment)
        return [intervention(images, generator) for _ in range(self.num_views)]

    def online(self, x: torch.Tensor) -> torch.Tensor:
        """Online projections g(f(x)) (``relic_t`` adds its predictor)."""
        return self.projector(self.backbone(x))

    def targets(self, x: torch.Tensor, online: torch.Tensor) -> torch.Tensor:
        """h-side projections; h = f in ReLIC, so the online projections themselves."""
        return online

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, self.num_views)
        views = list(views[: self.num_views])
        x = torch.cat(views)  # one backbone pass over all views
        z = self.online(x)
        t = self.targets(x, z)
        online = [gather(v) for v in z.chunk(len(views))]
        target = [gather(v) if v.requires_grad else gather_no_grad(v) for v in t.chunk(len(views))]
        infonce, kl = relic_terms(online, target, self.temperature, self.kl_stop_gradient)
        loss = infonce + self.alpha * kl
        return {"loss": loss, "infonce": infonce.detach(), "kl": kl.detach(), "embeddings": list(z.chunk(len(views)))}


class ReLICT(ReLIC):
    """ReLIC_T: the h side is an EMA target network (BYOL architecture: online predictor).

    Args (besides ``ReLIC``'s):
        base_momentum: τ_base of the target's cosine EMA schedule (rises to 1), in [0, 1].
        predictor: hidden and output widths of the online predictor after the projector output
            (last width = projector output), or ``None`` for no predictor.
    """

    name = "relic_t"

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.5, alpha: float = 1.0, num_views: int = 2,
                 kl_stop_gradient: str = "entropy", projector: Sequence[int] = (512, 128),
                 predictor: Sequence[int] | None = (512, 128), base_momentum: float = 0.99) -> None:
        super().__init__(backbone, temperature=temperature, alpha=alpha, num_views=num_views,
                         kl_stop_gradient=kl_stop_gradient, projector=projector)
        if not 0.0 <= base_momentum <= 1.0:
            raise ValueError(f"base_momentum: expected a value in [0, 1], got {base_momentum}")
        if predictor is not None and (len(predictor) < 1 or int(predictor[-1]) != int(projector[-1])):
            raise ValueError(f"predictor: the output width must equal the projector output {projector[-1]}, "
                             f"got {predictor}")
        self.base_momentum = float(base_momentum)
        self.predictor = MLPHead([int(projector[-1]), *predictor]) if predictor is not None else nn.Identity()
        self.target_backbone = frozen_copy(self.backbone)
        self.target_projector = frozen_copy(self.projector)
        self.register_buffer("tau", torch.tensor(self.base_momentum))

    def online(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.projector(self.backbone(x)))

    @torch.no_grad()
    def targets(self, x: torch.Tensor, online: torch.Tensor) -> torch.Tensor:
        return self.target_projector(self.target_backbone(x))

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        out = super().forward(views)
        out["momentum"] = self.tau.detach().clone()
        return out

    def on_step_end(self, step: int, total_steps: int) -> None:
        """target ← τ·target + (1 − τ)·online, τ = cosine_momentum(τ_base, step − 1, total_steps)."""
        tau = cosine_momentum(self.base_momentum, step - 1, total_steps)
        ema_update_(self.target_backbone, self.backbone, tau)
        ema_update_(self.target_projector, self.projector, tau)
        self.tau.fill_(tau)
