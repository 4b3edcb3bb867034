"""ReSSL (Zheng, You, Wang, Qian, Zhang, Wang, Xu; NeurIPS 2021, arXiv 2107.09282).

A student (backbone f + projector g) and a teacher (an EMA copy of both, θ_t ← m·θ_t + (1 − m)·θ_s)
embed two views of each image; a FIFO queue Q holds K past teacher embeddings. With unit
embeddings s_i = g(f(x¹_i)) and t_i = g_t(f_t(x²_i)), the relation of each embedding to the queue
is a softmax, sharp for the teacher (τ_t < τ_s), and the student matches the teacher's relation:

    p^t_ik = softmax_k(t_i·q_k / τ_t),   p^s_ik = softmax_k(s_i·q_k / τ_s),
    L = −1/N Σ_i Σ_k p^t_ik log p^s_ik          (``causalcl.losses.ressl_loss``; = KL up to a constant)

The teacher gets no gradient; after the optimiser step ``on_step_end`` updates the teacher by EMA
and enqueues the teacher embeddings of the step (stashed by ``forward``, which changes no state).

Views. The paper feeds the teacher a *weak* augmentation (random resized crop + flip only) and the
student the usual strong one. ``weak_teacher_view=True`` (default) does this when the configured
augmentation is a ``SimCLRAugment``-like object: view 2 is drawn from a copy of it with colour
jitter, grayscale and blur switched off; any other augmentation callable is used as is for both
views. ``weak_teacher_view=False`` draws both views from the same augmentation. The student embeds
both views in one backbone pass (so ``"embeddings"`` holds its projections of both, as wrappers
such as ICL-MSR need; the official code runs the student on the strong view only — its batch
norm statistics therefore differ); ``symmetric=True`` adds the swapped term (student on view 2
vs teacher on view 1) and averages the two. Only the teacher embeddings of view 2 are enqueued.

Momentum schedule: ``momentum_schedule="cosine"`` (default) raises m over training, m_k = 1 − (1 − m_base)
(cos(πk/K) + 1)/2 from ``momentum`` = m_base to 1 (BYOL's schedule, ``momentum.cosine_momentum``; k the index
of the step just taken, from 0, K the total steps), as solo-learn's ReSSL (0.99 → 1.0); ``"constant"`` keeps
m = ``momentum``, as the official ReSSL code (0.99 on CIFAR). The logged ``momentum`` is the m of the latest
update (m_base before any).

Defaults (the paper's CIFAR-scale recipe where known): τ_s = 0.1, τ_t = 0.04, m_base = 0.99 on the cosine
schedule, queue K = 4096; projector feature_dim → 512 → 128 without batch norm (the official projector,
Linear → ReLU → Linear, has none, nor has solo-learn's; ``projector_bn=True`` adds it on the hidden layers;
ImageNet uses 2048 → 4096 → 512 with K = 131072, m = 0.999).
The queue size must be a multiple of the global batch to keep the FIFO aligned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather
from ..losses import ressl_loss
from ..losses._common import check_real, check_temperature
from ..models.heads import MLPHead
from .base import Method
from .momentum import MOMENTUM_SCHEDULES, FeatureQueue, ema_update_, frozen_copy, scheduled_momentum

#: augmentation attributes switched off for the weak (teacher) view
WEAK_OFF = ("jitter_p", "grayscale_p", "blur_p")


def weak_augment(augment: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A copy of ``augment`` with colour jitter, grayscale and blur off (crop and flip kept).

    Returns ``augment`` itself when it lacks any of those probabilities (not a ``SimCLRAugment``).
    """
    if not all(hasattr(augment, name) for name in WEAK_OFF):
        return augment
    weak = copy.copy(augment)
    for name in WEAK_OFF:
        setattr(weak, name, 0.0)
    return weak


class ReSSL(Method):
    """Relational self-supervised learning with an EMA teacher and a queue of teacher embeddings.

    Args:
        backbone: the encoder f.
        tau_s: student temperature τ_s.
        tau_t: teacher temperature τ_t (sharper, τ_t < τ_s in the paper).
        momentum: EMA momentum m of the teacher (the base rate of the cosine schedule).
        momentum_schedule: ``"cosine"`` (m rises from ``momentum`` to 1) or ``"constant"``.
        queue_size: K, the number of teacher embeddings kept (a multiple of the global batch).
        projector: hidden and output widths of g after the backbone width.
        projector_bn: batch norm on the projector's hidden layers (off in the official code).
        weak_teacher_view: draw the teacher's view with the weak augmentation (see module docstring).
        symmetric: also apply the loss with the roles of the two views swapped, and average.
    """

    name = "ressl"
    interventional_refusal = None  # takes them: the counterfactual pair replaces the strong (student) / weak views

    def __init__(
        self,
        backbone: nn.Module,
        *,
        tau_s: float = 0.1,
        tau_t: float = 0.04,
        momentum: float = 0.99,
        queue_size: int = 4096,
        projector: Sequence[int] = (512, 128),
        projector_bn: bool = False,
        weak_teacher_view: bool = True,
        symmetric: bool = False,
        momentum_schedule: str = "cosine",
    ) -> None:
        super().__init__(backbone)
        self.tau_s = check_temperature(tau_s, "tau_s")
        self.tau_t = check_temperature(tau_t, "tau_t")
        self.momentum = check_real(momentum, "momentum", low=0.0, high=1.0)
        if momentum_schedule not in MOMENTUM_SCHEDULES:
            raise ValueError(f"momentum_schedule: expected one of {MOMENTUM_SCHEDULES}, got {momentum_schedule!r}")
        self.momentum_schedule = momentum_schedule
        self.current_momentum = self.momentum  # m of the latest EMA update (logged)
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 2:
            raise ValueError(f"queue_size: expected an integer >= 2, got {queue_size!r}")
        self.weak_teacher_view = bool(weak_teacher_view)
        self.symmetric = bool(symmetric)
        self.projector = MLPHead([self.feature_dim, *projector], hidden_bn=projector_bn)
        self.teacher_backbone = frozen_copy(self.backbone)
        self.teacher_projector = frozen_copy(self.projector)
        self.queue = FeatureQueue(queue_size, self.projector.widths[-1])
        self._pending_keys: torch.Tensor | None = None  # teacher keys of the last forward (not state)

    def make_views(self, augment: Callable[..., torch.Tensor], images: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """[strong view (student), teacher view]; the latter weak when ``weak_teacher_view``."""
        teacher_aug = weak_augment(augment) if self.weak_teacher_view else augment
        return [augment(images, generator), teacher_aug(images, generator)]

    @torch.no_grad()
    def teacher(self, x: torch.Tensor) -> torch.Tensor:
        """Unit teacher embeddings of a batch of images (no gradient)."""
        return F.normalize(self.teacher_projector(self.teacher_backbone(x)), dim=1)

    def forward(self, views: list[torch.Tensor], targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``targets``: the teacher embeddings of an earlier call on the same views and teacher (returned as
        ``"targets"``: of ``cat(views[:2])`` when symmetric, else of ``views[1]``), so a wrapper's second
        forward skips the teacher."""
        self.check_views(views, 2)
        z = self.projector(self.backbone(torch.cat(list(views[:2]))))
        z1, z2 = z.chunk(2)
        queue = self.queue()
        if targets is None:
            targets = self.teacher(torch.cat(list(views[:2])) if self.symmetric else views[1])
        if self.symmetric:
            t1, t2 = targets.chunk(2)
            loss = 0.5 * (ressl_loss(gather(z1), gather(t2), queue, self.tau_s, self.tau_t)
                          + ressl_loss(gather(z2), gather(t1), queue, self.tau_s, self.tau_t))
        else:
            t2 = targets
            loss = ressl_loss(gather(z1), gather(t2), queue, self.tau_s, self.tau_t)
        self._pending_keys = t2.detach()
        return {"loss": loss, "momentum": torch.tensor(self.current_momentum), "embeddings": [z1, z2],
                "targets": targets}

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int) -> None:
        """EMA update of the teacher, then enqueue the teacher keys of the step's forward."""
        self.current_momentum = scheduled_momentum(self.momentum, self.momentum_schedule, step, total_steps)
        ema_update_(self.teacher_backbone, self.backbone, self.current_momentum)
        ema_update_(self.teacher_projector, self.projector, self.current_momentum)
        if self._pending_keys is not None:
            self.queue.enqueue(self._pending_keys)
            self._pending_keys = None
