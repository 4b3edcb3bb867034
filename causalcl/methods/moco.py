"""MoCo v2 (He, Fan, Wu, Xie, Girshick, CVPR 2020, arXiv 1911.05722; Chen, Fan, Girshick, He,
"Improved Baselines with Momentum Contrastive Learning", arXiv 2003.04297).

A query encoder (backbone f_q + MLP projector g_q) and a key encoder (f_k, g_k), an EMA copy of it
updated after every optimiser step, θ_k ← m·θ_k + (1 − m)·θ_q. With L2-normalised queries q = g_q(f_q(x¹)),
keys k = g_k(f_k(x²)) and a FIFO queue {n_j} of the keys of previous steps, the loss is

    ℓ_i = −log( exp(q_i·k_i/τ) / (exp(q_i·k_i/τ) + Σ_j exp(q_i·n_j/τ)) ),   L = 1/N Σ_i ℓ_i

(``causalcl.losses.info_nce_queue``). ``loss=`` swaps in any loss of the SimCLR family with the queue as
negatives (``causalcl.losses.variants.queue_variant_loss``; ``loss_options`` passed through, τ the method's
``temperature``): with s⁺_i = q_i·k_i, s_ij = q_i·n_j over the K queue keys (M = K negatives),

    debiased   ℓ_i = −log( e^{s⁺/τ} / (e^{s⁺/τ} + Ng_i) ),
               Ng_i = max{ (Σ_j e^{s_ij/τ} − τ⁺·K·e^{s⁺/τ}) / (1 − τ⁺),  K·e^{−1/τ} }
    hard       the same with Σ_j e^{s_ij/τ} → K·Σ_j w_ij e^{s_ij/τ},  w_ij = softmax_j(β·s_ij/τ)   (HCL)
    dcl, dclw  ℓ_i = −w_i·s⁺/τ + log Σ_j e^{s_ij/τ}  (w_i = 1, or 2 − N·softmax_i(s⁺_i/σ) over the batch)
    hard_threshold  InfoNCE over the top_k (default K // 4) most similar queue keys, or those above a threshold
    triplet    max(0, max_j s_ij − s⁺ + margin)  ("hardest"; "all": mean over the K keys)
    align_uniform   ‖q_i − k_i‖^α + log mean e^{−t·d} over d = ‖q_i − n_j‖² (and ‖q_i − q_l‖², i < l)

i.e. the SimCLR forms with the queue in place of the 2N − 2 in-batch negatives, each averaged over the N
queries (then over the two directions). With ``symmetric=True`` (default) both views serve as queries,
L = ½[ℓ(q¹, k²) + ℓ(q², k¹)], and the keys of both views are enqueued (2N per step), as solo-learn's
CIFAR MoCo v2+ does (it keeps one queue per view; here one queue holds both). ``symmetric=False`` is
the paper: queries from view 1, keys from view 2, N keys enqueued per step.

Step order: ``forward`` computes the keys with the current key encoder and stashes them (detached);
it changes neither the queue nor the key encoder. ``on_step_end`` applies the EMA update and then
enqueues the stashed keys; this is the official order (EMA update before the next keys are computed,
enqueue after the loss). Both views pass through each encoder in one batch.

Distributed: the loss is computed on the global batch (queries gathered with gradients, keys
without); every rank enqueues the keys of all ranks, so the queues stay identical. Shuffle-BN is not
implemented: under DDP the Trainer converts BatchNorm to SyncBN, whose statistics are over the
global batch; in one process the key encoder's BatchNorm uses the statistics of the local batch.

Momentum schedule: ``momentum_schedule="cosine"`` (default) raises m over training as BYOL does,
m_k = 1 − (1 − m_base)(cos(πk/K) + 1)/2 from ``momentum`` = m_base to 1 (``momentum.cosine_momentum``; k the
index of the step just taken, from 0, K the total steps), as solo-learn's MoCo v2+ (which stops at 0.999 on
CIFAR); ``"constant"`` keeps m = ``momentum`` throughout, as the MoCo papers (0.999). The logged ``momentum``
is the m of the latest update (m_base before any).

Defaults (for short CPU/CIFAR-scale runs): τ = 0.2 (MoCo v2), momentum m_base = 0.99 on the cosine schedule
(the paper's constant 0.999 is for long ImageNet runs), loss ``infonce``, queue of 4096 keys (the
paper: 65536; keep the size a multiple of the keys enqueued per step), projector feature_dim → 512
→ 128 with BatchNorm on the hidden layer (MoCo v2+; ``projector_bn=False`` is the paper's fc-ReLU-fc).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather, gather_no_grad
from ..losses.variants import queue_variant_loss, variant_options
from ..models.heads import MLPHead
from .base import Method
from .momentum import MOMENTUM_SCHEDULES, FeatureQueue, ema_update_, frozen_copy, scheduled_momentum


class MoCo(Method):
    """MoCo v2 with a momentum key encoder and a queue of negative keys.

    Args:
        backbone: the query encoder f_q (its EMA copy becomes f_k).
        temperature: τ of the InfoNCE loss.
        momentum: EMA rate m of the key encoder, in [0, 1] (the base rate of the cosine schedule).
        momentum_schedule: ``"cosine"`` (m rises from ``momentum`` to 1, as BYOL) or ``"constant"``.
        queue_size: number K of negative keys kept.
        projector: hidden and output widths of the projector after the backbone width.
        projector_bn: BatchNorm on the projector's hidden layers (MoCo v2+); False is MoCo v2.
        symmetric: both views as queries (the loss is the mean of the two directions).
        loss: one of ``causalcl.losses.SIMCLR_LOSSES``' names, on the queue's negatives.
        loss_options: extra keyword arguments of that loss (e.g. ``{"tau_plus": 0.1, "beta": 1.0}``).
    """

    name = "moco"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        temperature: float = 0.2,
        momentum: float = 0.99,
        queue_size: int = 4096,
        projector: Sequence[int] = (512, 128),
        projector_bn: bool = True,
        symmetric: bool = True,
        momentum_schedule: str = "cosine",
        loss: str = "infonce",
        loss_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(backbone)
        if not temperature > 0:
            raise ValueError(f"temperature: expected a positive float, got {temperature}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1], got {momentum}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size <= 0:
            raise ValueError(f"queue_size: expected a positive int, got {queue_size!r}")
        if len(projector) < 1:
            raise ValueError("projector: expected at least the output width, got an empty list")
        if momentum_schedule not in MOMENTUM_SCHEDULES:
            raise ValueError(f"momentum_schedule: expected one of {MOMENTUM_SCHEDULES}, got {momentum_schedule!r}")
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.momentum_schedule = momentum_schedule
        self.current_momentum = self.momentum  # m of the latest EMA update (logged)
        self.loss_name = loss
        self.loss_options = variant_options(loss, loss_options, self.temperature, layout="queue")
        self.symmetric = bool(symmetric)
        self.projector = MLPHead([self.feature_dim, *projector], hidden_bn=projector_bn)
        self.key_backbone = frozen_copy(self.backbone)
        self.key_projector = frozen_copy(self.projector)
        self.queue = FeatureQueue(queue_size, int(projector[-1]))
        self._pending_keys: torch.Tensor | None = None  # keys of the last forward, enqueued in on_step_end

    @torch.no_grad()
    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """Key-encoder projections of ``x`` (not normalised, no gradients)."""
        return self.key_projector(self.key_backbone(x))

    def forward(self, views: list[torch.Tensor], targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``targets``: the keys of an earlier call on the same views and key encoder (returned as
        ``"targets"``: of ``cat(views[:2])`` when symmetric, else of ``views[1]``), so a wrapper's second
        forward skips the key encoder."""
        self.check_views(views, 2)
        q1, q2 = self.projector(self.backbone(torch.cat(list(views[:2])))).chunk(2)
        queue = self.queue()
        if targets is None:
            targets = self.keys(torch.cat(list(views[:2])) if self.symmetric else views[1])
        if self.symmetric:
            k1, k2 = targets.chunk(2)
            loss = 0.5 * (self.contrast(gather(q1), gather_no_grad(k2), queue)
                          + self.contrast(gather(q2), gather_no_grad(k1), queue))
            new_keys = torch.cat([k1, k2])
        else:
            k2 = targets
            loss = self.contrast(gather(q1), gather_no_grad(k2), queue)
            new_keys = k2
        self._pending_keys = F.normalize(new_keys.detach(), dim=1)
        return {"loss": loss, "momentum": torch.tensor(self.current_momentum), "embeddings": [q1, q2],
                "targets": targets}

    def contrast(self, q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor) -> torch.Tensor:
        """The configured loss of queries ``q`` with keys ``k`` and the queue's negatives."""
        return queue_variant_loss(q, k, queue, self.loss_name, **self.loss_options)

    def momentum_at(self, step: int, total_steps: int) -> float:
        """The EMA rate of the update after optimiser step ``step`` (1-based) of ``total_steps``."""
        return scheduled_momentum(self.momentum, self.momentum_schedule, step, total_steps)

    def on_step_end(self, step: int, total_steps: int) -> None:
        """EMA update of the key encoder, then the keys of the last forward enter the queue."""
        self.current_momentum = self.momentum_at(step, total_steps)
        ema_update_(self.key_backbone, self.backbone, self.current_momentum)
        ema_update_(self.key_projector, self.projector, self.current_momentum)
        if self._pending_keys is not None:
            self.queue.enqueue(self._pending_keys)
            self._pending_keys = None
