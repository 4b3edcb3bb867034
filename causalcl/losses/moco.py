"""MoCo's InfoNCE over one positive key and a queue of negative keys."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import NonFiniteEmbeddingError, check_embeddings, check_temperature, normalize, value_checks_deferred


def info_nce_queue(q: Tensor, k: Tensor, queue: Tensor, temperature: float = 0.2) -> Tensor:
    r"""InfoNCE of MoCo (He, Fan, Wu, Xie, Girshick, CVPR 2020, arXiv 1911.05722; MoCo v2: Chen, Fan,
    Girshick, He, arXiv 2003.04297): each query is contrasted with its own key and a queue of keys.

    Queries, keys and queue rows are L2-normalised inside; keys and queue are detached (they come
    from the momentum encoder and are never back-propagated)::

        l_i = -log( exp(q_i.k_i / tau) / ( exp(q_i.k_i / tau) + sum_{j=1}^{K} exp(q_i.n_j / tau) ) )
        L   = 1/N * sum_i l_i

    i.e. cross entropy over the (N, 1 + K) logits [q.k | q.queue^T] / tau with target 0.

    Args:
        q: (N, D) queries (online projections), N >= 2.
        k: (N, D) positive keys; row i is the key of query i.
        queue: (K, D) negative keys, K >= 1 (cast to the dtype of ``q``).
        temperature: tau > 0 (default 0.2, MoCo v2).

    Returns:
        Scalar tensor: the mean of l_i over the N queries.

    Raises:
        ValueError: bad shapes/dtypes/devices, non-finite inputs or temperature <= 0.
    """
    check_queue_inputs(q, k, queue)
    t = check_temperature(temperature)
    qn = normalize(q)
    kn = normalize(k.detach())
    negatives = normalize(queue.detach().to(q.dtype))
    positive = (qn * kn).sum(dim=1, keepdim=True)
    logits = torch.cat([positive, qn @ negatives.T], dim=1) / t
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


def check_queue_inputs(q: Tensor, k: Tensor, queue: Tensor) -> None:
    """``ValueError`` naming the argument unless q, k are finite floating (N, D) tensors of one shape, dtype and
    device, and ``queue`` a finite floating (K, D) tensor, K >= 1, on that device (``NonFiniteEmbeddingError``
    for NaN/inf)."""
    check_embeddings(q, "q")
    check_embeddings(k, "k")
    if k.shape != q.shape:
        raise ValueError(f"k must have the same shape as q, got {tuple(k.shape)} vs {tuple(q.shape)}")
    if k.dtype != q.dtype:
        raise ValueError(f"k must have the same dtype as q, got {k.dtype} vs {q.dtype}")
    if k.device != q.device:
        raise ValueError(f"k must be on the same device as q, got {k.device} vs {q.device}")
    if not isinstance(queue, Tensor) or queue.dim() != 2 or queue.shape[0] < 1 or queue.shape[1] != q.shape[1]:
        shape = tuple(queue.shape) if isinstance(queue, Tensor) else type(queue).__name__
        raise ValueError(f"queue must be a tensor of shape (K, {q.shape[1]}) with K >= 1, got {shape}")
    if not queue.is_floating_point():
        raise ValueError(f"queue must have a floating-point dtype, got {queue.dtype}")
    if queue.device != q.device:
        raise ValueError(f"queue must be on the same device as q, got {queue.device} vs {q.device}")
    if not value_checks_deferred() and not bool(torch.isfinite(queue).all()):
        raise NonFiniteEmbeddingError("queue contains NaN or infinite values")
