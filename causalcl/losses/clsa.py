"""CLSA's distributional divergence loss: the weak view's distribution over a queue supervises the strong view's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import (
    NonFiniteEmbeddingError,
    check_embeddings,
    check_pair,
    check_temperature,
    normalize,
    value_checks_deferred,
)


def clsa_ddm_loss(q_weak: Tensor, q_strong: Tensor, k: Tensor, queue: Tensor, temperature: float = 0.2) -> Tensor:
    r"""Distributional divergence minimisation L_D of CLSA (Wang, Qi, "Contrastive Learning with Stronger
    Augmentations", TPAMI 2022, arXiv 2104.07713, eq. 5-7).

    With unit rows q'_i (weak query), q''_i (strong query of the same image), k_i (the weak key of the
    momentum encoder, the positive) and the K keys n_j of the queue, the conditional distributions over the
    1 + K candidates {k_i, n_1..n_K} are::

        p(. | q) = softmax([q.k_i, q.n_1, ..., q.n_K] / tau)
        L_D      = -1/N * sum_i sum_c p_c(. | q'_i) log p_c(. | q''_i)

    The weak distribution is a target: ``q_weak`` is detached inside, as the official code (``labels0 =
    logits.clone().detach()``); ``k`` and ``queue`` are detached too. Rows are L2-normalised inside.
    Evaluated in float32 or wider, outside autocast.

    Args:
        q_weak: (N, D) online projections of the weak view (no gradient).
        q_strong: (N, D) online projections of the strong view (gradients flow).
        k: (N, D) positive keys (momentum encoder on the weak key view).
        queue: (K, D) negative keys, K >= 1.
        temperature: tau > 0 of both distributions (default 0.2, the official ``clsa_t``).

    Returns:
        Scalar tensor: the mean cross-entropy over the N anchors.
    """
    check_pair(q_weak, q_strong)
    check_embeddings(k, "k")
    if k.shape != q_weak.shape or k.device != q_weak.device:
        raise ValueError(f"k must have the shape and device of q_weak {tuple(q_weak.shape)}, got {tuple(k.shape)} "
                         f"on {k.device}")
    if not isinstance(queue, Tensor) or queue.dim() != 2 or queue.shape[0] < 1 or queue.shape[1] != q_weak.shape[1]:
        shape = tuple(queue.shape) if isinstance(queue, Tensor) else type(queue).__name__
        raise ValueError(f"queue must be a tensor of shape (K, {q_weak.shape[1]}) with K >= 1, got {shape}")
    if not queue.is_floating_point():
        raise ValueError(f"queue must have a floating-point dtype, got {queue.dtype}")
    if queue.device != q_weak.device:
        raise ValueError(f"queue must be on the device of q_weak ({q_weak.device}), got {queue.device}")
    if not value_checks_deferred() and not bool(torch.isfinite(queue).all()):
        raise NonFiniteEmbeddingError("queue contains NaN or infinite values")
    t = check_temperature(temperature)
    dtype = torch.promote_types(q_strong.dtype, torch.float32)
    with torch.autocast(q_strong.device.type, enabled=False):
        kn = normalize(k.detach().to(dtype))
        negatives = normalize(queue.detach().to(dtype))

        def logits(q: Tensor) -> Tensor:  # (N, 1 + K): [q.k_i | q.n_j] / tau
            return torch.cat([(q * kn).sum(dim=1, keepdim=True), q @ negatives.T], dim=1) / t

        with torch.no_grad():
            target = F.softmax(logits(normalize(q_weak.detach().to(dtype))), dim=1)
        return -(target * F.log_softmax(logits(normalize(q_strong.to(dtype))), dim=1)).sum(dim=1).mean()
