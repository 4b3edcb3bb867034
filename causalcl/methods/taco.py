"""TaCo: temporal-aware contrastive learning for video (Bai, Fan, Misra, Venkatesh, Lu, Zhou, Yu, Chandra,
Yuille; "Can Temporal Information Help with Contrastive Self-Supervised Learning?", arXiv 2011.13046, 2020;
presented in the SSL talk of the seeds, its Figure 2).

Three modules. (1) Temporal augmentation: from each clip x, M augmented clips x_m = a_m(x; c_m), one per
temporal augmentation a_m with a parameter class c_m drawn per clip (``causalcl.data.temporal``: spatial
warping, playback-speed change standing in for optical-flow scaling, temporal shift, reverse, shuffle).
(2) Contrastive learning: each augmentation has its own projection head g_m; the original clip and its
m-th augmentation form a positive pair in that head's space, every other clip of the batch is a negative
(NT-Xent), and the losses are summed over the pairs. (3) Temporal pretext tasks: each augmentation has its
own task head q_m that predicts c_m from f(x_m)::

    L = Σ_m NT-Xent(g_m(f(x)), g_m(f(x_m)); τ) + λ Σ_m CE(q_m(f(x_m)), c_m)        (causalcl.losses.taco_loss)

The original and every augmented clip also get their own draw of the image augmentation (crop, flip,
colour), the same for all frames of a clip (``clip_consistent``). All augmentations run batched on the
clips' device, seeded by the step's generator.

Views (``make_views``): ``[x, x_1, ..., x_M, classes]`` with clips float ``(B, T, 3, H, W)`` and ``classes`` long
``(B, M)`` (the pretext targets travel with the views, row by row, so a DDP slice keeps them aligned).
Under ``--views interventional``: x is one counterfactual clip do(style = s'), the x_m are augmentations of a
second one (two renders per step).

Defaults: all five augmentations, τ = 0.5 (the embedded data's SimCLR value), λ = 1 (the two terms added),
projection heads feature_dim → 512 → 128, task heads feature_dim → 128 → k_m, warp strength 0.1, speeds
(0.5, 1, 2), 4 shifts. Backbone: a video backbone mapping (B, T, 3, H, W) to (B, D), e.g. ``video_small``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..data.temporal import TEMPORAL_AUGMENTATIONS, build_temporal_augmentations, clip_consistent
from ..distributed import gather
from ..losses import taco_terms
from ..losses._common import check_real, check_temperature
from ..models.heads import MLPHead
from .base import Method

if TYPE_CHECKING:
    from ..data.interventional import InterventionalViews


class TaCo(Method):
    """TaCo on clips; see the module docstring.

    Args:
        backbone: a video encoder f, ``(B, T, 3, H, W) -> (B, D)`` with ``feature_dim``.
        augmentations: names from ``causalcl.data.temporal.TEMPORAL_AUGMENTATIONS``.
        temperature: τ of NT-Xent.
        pretext_weight: λ of the pretext cross-entropies.
        projector: hidden and output widths of each projection head g_m after the backbone width.
        pretext_hidden: hidden width of each task head q_m.
        warp_strength, speeds, shifts: parameters of ``warp``, ``speed`` and ``shift``.

    Raises:
        ValueError: a bad argument, named.
    """

    name = "taco"
    input_kind = "video"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        augmentations: Sequence[str] = TEMPORAL_AUGMENTATIONS,
        temperature: float = 0.5,
        pretext_weight: float = 1.0,
        projector: Sequence[int] = (512, 128),
        pretext_hidden: int = 128,
        warp_strength: float = 0.1,
        speeds: Sequence[float] = (0.5, 1.0, 2.0),
        shifts: int = 4,
    ) -> None:
        super().__init__(backbone)
        self.temperature = check_temperature(temperature)
        self.pretext_weight = check_real(pretext_weight, "pretext_weight", low=0.0)
        if isinstance(pretext_hidden, bool) or int(pretext_hidden) != pretext_hidden or pretext_hidden < 1:
            raise ValueError(f"pretext_hidden: expected a positive integer, got {pretext_hidden!r}")
        self.augmentations = build_temporal_augmentations(augmentations, warp_strength, speeds, shifts)
        self.num_views = len(self.augmentations) + 1
        d = self.feature_dim
        self.projectors = nn.ModuleList(MLPHead([d, *projector]) for _ in self.augmentations)
        self.task_heads = nn.ModuleList(MLPHead([d, int(pretext_hidden), a.num_classes]) for a in self.augmentations)

    # ------------------------------------------------------------------ views
    def augment_clips(self, original: torch.Tensor, source: torch.Tensor, generator: torch.Generator | None,
                      augment: Callable[..., torch.Tensor] | None = None) -> list[torch.Tensor]:
        """``[x, x_1..x_M, classes]`` from clips ``original`` (x) and ``source`` (what the x_m augment): each
        clip through its own frame-consistent draw of ``augment`` (if given), then a_m with a random class."""
        x = clip_consistent(augment, original, generator)
        views, classes = [x], []
        for aug in self.augmentations:
            c = aug.sample_classes(source.shape[0], generator, source.device)
            views.append(aug(clip_consistent(augment, source, generator), c, generator))
            classes.append(c)
        return [*views, torch.stack(classes, dim=1)]

    def make_views(self, augment: Callable[..., torch.Tensor] | None, images: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        return self.augment_clips(images, images, generator, augment)

    def make_interventional_views(self, views: InterventionalViews, images: torch.Tensor, indices: torch.Tensor,
                                  generator: torch.Generator) -> list[torch.Tensor]:
        first, second = views(images, indices, generator, 2)
        return self.augment_clips(first, second, generator)

    # ------------------------------------------------------------------ loss
    def check_clip_views(self, views: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Split and validate ``[x, x_1..x_M, classes]``; ``ValueError`` naming ``views`` otherwise."""
        m = len(self.augmentations)
        if not isinstance(views, list | tuple) or len(views) != m + 2:
            raise ValueError(f"views: expected [x, x_1..x_{m}, classes] ({m + 2} entries; make_views builds them), "
                             f"got {len(views) if isinstance(views, list | tuple) else type(views).__name__}")
        clips, classes = list(views[:-1]), views[-1]
        shape = clips[0].shape
        if len(shape) != 5 or shape[2] != 3 or any(v.shape != shape for v in clips):
            got = [tuple(v.shape) for v in clips]
            raise ValueError(f"views: expected clips of one shape (B, T, 3, H, W), got {got}")
        if classes.shape != (shape[0], m) or classes.is_floating_point():
            raise ValueError(f"views: the last entry must be the pretext classes, long ({shape[0]}, {m}), "
                             f"got {tuple(classes.shape)} {classes.dtype}")
        return clips, classes

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        clips, classes = self.check_clip_views(views)
        n = clips[0].shape[0]
        h = self.backbone(torch.cat(clips)).split(n)  # one backbone pass over the M + 1 clip batches
        anchors, positives, logits, local = [], [], [], []
        for m, (proj, task) in enumerate(zip(self.projectors, self.task_heads, strict=True)):
            z0, zm = proj(torch.cat([h[0], h[m + 1]])).chunk(2)
            anchors.append(gather(z0))  # negatives from the global batch under DDP
            positives.append(gather(zm))
            logits.append(task(h[m + 1]))
            local.append((z0, zm))
        targets = list(classes.long().unbind(1))
        contrast, pretext = taco_terms(anchors, positives, logits, targets, self.temperature)
        with torch.no_grad():
            accuracy = torch.stack([(lg.argmax(1) == t).float().mean() for lg, t in zip(logits, targets, strict=True)])
        return {"loss": contrast + self.pretext_weight * pretext, "contrastive": contrast.detach(),
                "pretext": pretext.detach(), "pretext_accuracy": accuracy.mean(), "embeddings": list(local[0])}
