"""DACL (Verma, Luong, Kawaguchi, Pham, Le, ICML 2021, "Towards Domain-Agnostic Contrastive Learning",
arXiv 2011.04419).

Positive pairs without domain knowledge: each view of a sample x is a mixup of x with another sample x̃
of the batch, x⁺ = λ·x + (1 − λ)·x̃ with λ ~ U(α, 1) (so x stays the dominant component), drawn
independently per sample and per view (λ and partner). The two mixup views then go through SimCLR's
pipeline, z = g(f(x⁺)), and NT-Xent over the 2N embeddings (``causalcl.losses.info_nce``)::

    x⁺¹_i = λ¹_i x_i + (1 − λ¹_i) x_{π¹(i)},  x⁺²_i = λ²_i x_i + (1 − λ²_i) x_{π²(i)},  λ ~ U(α, 1)
    ℓ_i = −log( exp(sim(z_i, z_p(i))/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) ),   L = 1/2N Σ_i ℓ_i

The partner π(i) = (i + o_i) mod B with o_i uniform in {1, …, B − 1}: always another sample of the batch
(a random permutation would mix some samples with themselves). Mixing is done in ``make_views`` (on the
whole batch, with the step's generator), so under DDP the views are those of one process.

Pixel augmentations — ``pixel_augment``: ``False`` (default) is the paper's DACL: the mixup is the only
transformation, applied to the raw images (the method of the paper's title; the MetAug seed's table does not
say which variant its DACL row is).
``True`` applies the Trainer's augmentation to each view first and mixes the augmented views (the paper's
"SimCLR + DACL" combination for images). Under ``--views interventional`` the counterfactual views are
mixed likewise.

Defaults: α = 0.9 (the paper's value for images), τ = 0.5 and projector feature_dim → 512 → 128 (this
package's SimCLR; the paper uses SimCLR's settings for the contrastive part).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..distributed import gather
from ..losses import info_nce
from ..losses._common import check_real, check_temperature
from ..models.heads import MLPHead
from .base import Method

if TYPE_CHECKING:
    from ..data.interventional import InterventionalViews


def _as_float(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise ValueError(f"images: expected float or uint8 images, got {images.dtype}")
    return images


def mixup_positive(images: torch.Tensor, alpha: float = 0.9,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One DACL view of a batch: ``λ_i·x_i + (1 − λ_i)·x_{π(i)}``, λ_i ~ U(α, 1), π(i) another sample.

    Args:
        images: (B, C, H, W) float (or uint8, scaled to [0, 1]) batch, B >= 2.
        alpha: α in [0, 1], the lower end of λ's range.
        generator: random source (on the images' device), or ``None`` for the global one.

    Returns:
        ``(view, lam, partner)``: the mixed batch, λ (B,) and the partner index π (B,).
    """
    alpha = check_real(alpha, "alpha", low=0.0, high=1.0)
    if images.dim() < 2 or images.shape[0] < 2:
        raise ValueError(f"images: expected a batch of at least 2 samples, got shape {tuple(images.shape)}")
    x = _as_float(images)
    b, device = x.shape[0], x.device
    lam = alpha + (1.0 - alpha) * torch.rand(b, generator=generator, device=device, dtype=x.dtype)
    offset = torch.randint(1, b, (b,), generator=generator, device=device)
    partner = (torch.arange(b, device=device) + offset) % b
    shape = (b,) + (1,) * (x.dim() - 1)
    return lam.view(shape) * x + (1.0 - lam.view(shape)) * x[partner], lam, partner


class DACL(Method):
    """DACL: mixup positives and SimCLR's NT-Xent.

    Args:
        backbone: the encoder f.
        alpha: α in [0, 1]: the mixing coefficient λ is drawn from U(α, 1).
        pixel_augment: also apply the Trainer's pixel augmentation to each view before mixing.
        temperature: τ of NT-Xent.
        projector: hidden and output widths of g after the backbone width.
    """

    name = "dacl"

    def __init__(self, backbone: nn.Module, *, alpha: float = 0.9, pixel_augment: bool = False,
                 temperature: float = 0.5, projector: Sequence[int] = (512, 128)) -> None:
        super().__init__(backbone)
        self.alpha = check_real(alpha, "alpha", low=0.0, high=1.0)
        if not isinstance(pixel_augment, bool):
            raise ValueError(f"pixel_augment: expected a bool, got {pixel_augment!r}")
        self.pixel_augment = pixel_augment
        self.temperature = check_temperature(temperature)
        if len(projector) < 1 or any(int(w) <= 0 for w in projector):
            raise ValueError(f"projector: expected positive widths ending with the output width, got {list(projector)}")
        self.projector = MLPHead([self.feature_dim, *projector])

    def mix(self, views: list[torch.Tensor], generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Each view mixed with its own draw of λ and partners."""
        return [mixup_positive(v, self.alpha, generator)[0] for v in views]

    def make_views(self, augment: Callable[..., torch.Tensor], images: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        if self.pixel_augment:
            views = [augment(images, generator) for _ in range(self.num_views)]
        else:
            views = [_as_float(images)] * self.num_views
        return self.mix(views, generator)

    def make_interventional_views(self, views: InterventionalViews, images: torch.Tensor, indices: torch.Tensor,
                                  generator: torch.Generator) -> list[torch.Tensor]:
        return self.mix(super().make_interventional_views(views, images, indices, generator), generator)

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, 2)
        z1, z2 = self.projector(self.backbone(torch.cat(list(views[:2])))).chunk(2)
        loss = info_nce(gather(z1), gather(z2), self.temperature)
        return {"loss": loss, "embeddings": [z1, z2]}
