"""CLSA: Contrastive Learning with Stronger Augmentations (Wang, Qi, TPAMI 2022, arXiv 2104.07713).

MoCo v2 (query encoder f_q + projector, EMA key encoder, queue of keys) with one or more strongly augmented
views per image. With unit online projections q'_i of a weak view, q''_i of each strong view, the key k_i of a
second weak view (key encoder) and the K queued keys n_j:

    L_C = -1/N sum_i log( exp(q'_i.k_i/tau) / (exp(q'_i.k_i/tau) + sum_j exp(q'_i.n_j/tau)) )   (MoCo's InfoNCE)
    L_D = -1/N sum_i sum_c p_c(. | q'_i) log p_c(. | q''_i),  p(. | q) = softmax([q.k_i, q.n_1..q.n_K] / tau_D)
    L   = L_C + beta * sum_{strong views} L_D

(``causalcl.losses.info_nce_queue``, ``causalcl.losses.clsa_ddm_loss``): the weak query's distribution over the
positive key and the queue, detached, supervises the strong query's; strong views never act as positives of
L_C, whose images are too distorted to be the same instance reliably. beta = 1 and tau_D = tau = 0.2 as the
official code (``--alpha 1 --clsa_t 0.2``), which sums L_D over the strong views. The official default is
asymmetric (``--sym 0``): queries from weak view 1, keys from weak view 2 (one key set enqueued per step).

Views (``make_views``): [weak query, weak key, strong_1, ..., strong_S] (``num_strong = S``, default 1:
CLSA-Single). Weak = the configured augmentation (MoCo v2's). Strong = the configured augmentation, drawn
independently, followed by the batched RandAugment(n=5, m=10) over FixMatch's 14-operation pool
(``causalcl.data.randaugment``), which is how the official code builds its strong views (its weak pipeline,
then ``RandAugment(n=aug_times=5, m=10)``), on the device instead of on PIL images. The official multi-crop
variant (strong views at 224/192/160/128/96 px) is not implemented; every view has the augmentation's size.
All query views go through f_q in one batch (BatchNorm statistics over the weak and strong views together;
the official code runs them one at a time).

Step order and DDP: as ``causalcl.methods.moco`` (EMA update then enqueue in ``on_step_end``; queries gathered
with gradients, keys without; the queue enqueues the keys of every rank).

Defaults for short CPU/CIFAR runs, as this project's MoCo so that CLSA - MoCo isolates the strong views and
L_D: tau 0.2, momentum 0.99 rising to 1 on the cosine schedule (the paper: constant 0.999 for 200 ImageNet
epochs; ``momentum_schedule="constant"``), queue 4096 (the paper: 65536),
projector feature_dim -> 512 -> 128 with BatchNorm on the hidden layer (``projector_bn=False``: the official
fc-ReLU-fc).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.randaugment import RandAugment
from ..distributed import gather, gather_no_grad
from ..losses import clsa_ddm_loss, info_nce_queue
from ..models.heads import MLPHead
from .base import Method
from .momentum import MOMENTUM_SCHEDULES, FeatureQueue, ema_update_, frozen_copy, scheduled_momentum

if TYPE_CHECKING:
    from ..data.interventional import InterventionalViews


def _positive_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name}: expected a positive float, got {value!r}")
    return float(value)


class CLSA(Method):
    """CLSA: MoCo v2 plus the distributional divergence of strong views.

    Args:
        backbone: the query encoder f_q (its EMA copy becomes f_k).
        temperature: tau of L_C.
        ddm_temperature: tau_D of both distributions of L_D.
        beta: weight of L_D (summed over the strong views).
        num_strong: strong views per image (1: CLSA-Single).
        strong_ops: operations RandAugment applies per strong view (n; 5 as the official code).
        strong_magnitude: RandAugment's magnitude bound (m, in [2, 10]; 10 as the official code).
        momentum: EMA rate of the key encoder, in [0, 1] (the base rate of the cosine schedule).
        momentum_schedule: ``"cosine"`` (m rises from ``momentum`` to 1, as this project's MoCo) or ``"constant"``.
        queue_size: number K of queued keys.
        projector: hidden and output widths of the projector after the backbone width.
        projector_bn: BatchNorm on the projector's hidden layers.
    """

    name = "clsa"

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.2, ddm_temperature: float = 0.2,
                 beta: float = 1.0, num_strong: int = 1, strong_ops: int = 5, strong_magnitude: int = 10,
                 momentum: float = 0.99, momentum_schedule: str = "cosine", queue_size: int = 4096,
                 projector: Sequence[int] = (512, 128), projector_bn: bool = True) -> None:
        super().__init__(backbone)
        self.temperature = _positive_float(temperature, "temperature")
        self.ddm_temperature = _positive_float(ddm_temperature, "ddm_temperature")
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not beta >= 0:
            raise ValueError(f"beta: expected a non-negative float, got {beta!r}")
        if isinstance(num_strong, bool) or not isinstance(num_strong, int) or num_strong < 1:
            raise ValueError(f"num_strong: expected a positive int, got {num_strong!r}")
        if isinstance(strong_ops, bool) or not isinstance(strong_ops, int) or strong_ops < 0:
            raise ValueError(f"strong_ops: expected a non-negative int, got {strong_ops!r}")
        if isinstance(strong_magnitude, bool) or not isinstance(strong_magnitude, int) \
                or not 2 <= strong_magnitude <= 10:
            raise ValueError(f"strong_magnitude: expected an int in [2, 10], got {strong_magnitude!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, int | float) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1], got {momentum!r}")
        if momentum_schedule not in MOMENTUM_SCHEDULES:
            raise ValueError(f"momentum_schedule: expected one of {MOMENTUM_SCHEDULES}, got {momentum_schedule!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size <= 0:
            raise ValueError(f"queue_size: expected a positive int, got {queue_size!r}")
        if len(projector) < 1:
            raise ValueError("projector: expected at least the output width, got an empty list")
        self.beta, self.num_strong, self.momentum = float(beta), num_strong, float(momentum)
        self.momentum_schedule, self.current_momentum = momentum_schedule, float(momentum)
        self.num_views = 2 + num_strong
        self.strong = RandAugment(strong_ops, strong_magnitude)
        self.projector = MLPHead([self.feature_dim, *projector], hidden_bn=projector_bn)
        self.key_backbone = frozen_copy(self.backbone)
        self.key_projector = frozen_copy(self.projector)
        self.queue = FeatureQueue(queue_size, int(projector[-1]))
        self._pending_keys: Tensor | None = None  # keys of the last forward, enqueued in on_step_end

    def make_views(self, augment: Callable[..., Tensor], images: Tensor,
                   generator: torch.Generator | None = None) -> list[Tensor]:
        """[weak query, weak key, strong_1, ..., strong_S]; strong = RandAugment(augment(x))."""
        weak = [augment(images, generator) for _ in range(2)]
        return weak + [self.strong(augment(images, generator), generator) for _ in range(self.num_strong)]

    def make_interventional_views(self, views: InterventionalViews, images: Tensor, indices: Tensor,
                                  generator: torch.Generator) -> list[Tensor]:
        """2 + S counterfactuals; RandAugment on the last S."""
        drawn = views(images, indices, generator, self.num_views)
        return drawn[:2] + [self.strong(v, generator) for v in drawn[2:]]

    @torch.no_grad()
    def keys(self, x: Tensor) -> Tensor:
        """Key-encoder projections of ``x`` (not normalised, no gradients)."""
        return self.key_projector(self.key_backbone(x))

    def forward(self, views: list[Tensor], targets: Tensor | None = None) -> dict[str, Tensor]:
        """``targets``: the keys of an earlier call on ``views[1]`` (returned as ``"targets"``)."""
        self.check_views(views, self.num_views)
        b = views[0].shape[0]
        queries = self.projector(self.backbone(torch.cat([views[0], *views[2:self.num_views]])))
        weak, strong = queries[:b], queries[b:].chunk(self.num_strong)
        if targets is None:
            targets = self.keys(views[1])
        queue, k = self.queue(), gather_no_grad(targets)
        q_weak = gather(weak)  # the global batch under DDP
        contrastive = info_nce_queue(q_weak, k, queue, self.temperature)
        ddm = sum(clsa_ddm_loss(q_weak, gather(s), k, queue, self.ddm_temperature) for s in strong)
        self._pending_keys = F.normalize(targets.detach(), dim=1)
        return {"loss": contrastive + self.beta * ddm, "contrastive_loss": contrastive.detach(),
                "ddm_loss": ddm.detach(), "momentum": torch.tensor(self.current_momentum),
                "embeddings": [weak, *strong], "targets": targets}

    def on_step_end(self, step: int, total_steps: int) -> None:
        """EMA update of the key encoder, then the keys of the last forward enter the queue."""
        self.current_momentum = scheduled_momentum(self.momentum, self.momentum_schedule, step, total_steps)
        ema_update_(self.key_backbone, self.backbone, self.current_momentum)
        ema_update_(self.key_projector, self.projector, self.current_momentum)
        if self._pending_keys is not None:
            self.queue.enqueue(self._pending_keys)
            self._pending_keys = None
