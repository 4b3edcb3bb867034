"""LooC's loss: one MoCo-style InfoNCE per embedding space with leave-one-out positives."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import NonFiniteEmbeddingError, check_temperature, value_checks_deferred


def _check(x: object, name: str, dims: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != dims or not x.is_floating_point() or x.shape[0] < 1:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a non-empty floating tensor with {dims} dimensions, got {shape}")
    if not value_checks_deferred() and not bool(torch.isfinite(x).all()):
        raise NonFiniteEmbeddingError(f"{name} contains NaN or infinite values")


def looc_space_loss(q: Tensor, keys: Tensor, queue: Tensor | None, positive: int | None,
                    temperature: float = 0.07) -> Tensor:
    r"""InfoNCE of one LooC embedding space (Xiao, Wang, Efros, Darrell, "What Should Not Be
    Contrastive in Contrastive Learning", ICLR 2021, arXiv 2008.05659).

    ``q`` (B, D) are the query embeddings, ``keys`` (K, B, D) the embeddings of the K = n + 1 key
    views k_0..k_n of the same images, ``queue`` (Q, D) the space's memory of other images' keys.
    Everything is L2-normalised inside; s_j = q_b·k_{j,b}/τ, s_u = q_b·u/τ for u in the queue.

    * ``positive=None`` (the all-invariant space Z_0): every key is a positive; each positive gets
      its own MoCo InfoNCE against the queue and they are averaged (research/methods.md §4: "several
      positives in Z_0 are averaged")::

          ℓ_b = 1/K Σ_j −log( e^{s_j} / (e^{s_j} + Σ_u e^{s_u}) )

    * ``positive=i`` (the space Z_i, variant to augmentation i): only k_i, which shares q's
      parameter of augmentation i, is positive; the other keys of the same image (k_0 and k_j,
      j ≠ i: they differ from q in augmentation i) are negatives beside the queue::

          ℓ_b = −log( e^{s_i} / (Σ_j e^{s_j} + Σ_u e^{s_u}) )

    Returns the mean of ℓ_b over the B queries. ``queue=None`` means no queue negatives (then
    the Z_0 loss is identically 0).
    """
    _check(q, "q", 2)
    _check(keys, "keys", 3)
    if keys.shape[1:] != q.shape:
        raise ValueError(f"keys: expected shape (K, {q.shape[0]}, {q.shape[1]}), got {tuple(keys.shape)}")
    t = check_temperature(temperature)
    k = keys.shape[0]
    if positive is not None and not 0 <= positive < k:
        raise ValueError(f"positive: expected None or a key index in [0, {k}), got {positive}")
    qn = F.normalize(q, dim=1)
    s_keys = torch.einsum("bd,kbd->bk", qn, F.normalize(keys, dim=2)) / t  # (B, K)
    if queue is not None:
        if queue.dim() != 2 or queue.shape[1] != q.shape[1]:
            raise ValueError(f"queue: expected shape (Q, {q.shape[1]}), got {tuple(queue.shape)}")
        s_queue = qn @ F.normalize(queue.to(q.dtype), dim=1).T / t  # (B, Q)
    else:
        s_queue = s_keys.new_empty(q.shape[0], 0)
    if positive is None:
        neg = torch.logsumexp(s_queue, dim=1, keepdim=True).expand(-1, k)  # (B, K)
        denom = torch.logaddexp(s_keys, neg) if s_queue.shape[1] else s_keys
        return (denom - s_keys).mean()
    logits = torch.cat([s_keys, s_queue], dim=1)
    return (torch.logsumexp(logits, dim=1) - s_keys[:, positive]).mean()


def looc_loss(queries: Sequence[Tensor], keys: Sequence[Tensor], queues: Sequence[Tensor | None] | None = None,
              temperature: float = 0.07) -> Tensor:
    """LooC's loss, the mean over the n + 1 embedding spaces: ``1/(n+1) Σ_{s=0..n} L_{Z_s}``.

    Args:
        queries: n + 1 tensors (B, D): the query embedded in Z_0 (all-invariant), Z_1..Z_n.
        keys: n + 1 tensors (n + 1, B, D): the keys k_0..k_n embedded in each space.
        queues: n + 1 queues (Q, D) (or ``None`` entries / ``None``: no queue negatives).
        temperature: τ (default 0.07, MoCo's and LooC's value).

    Space 0 uses ``positive=None`` and space s ≥ 1 ``positive=s`` of ``looc_space_loss``.
    """
    n_spaces = len(queries)
    if n_spaces < 2 or len(keys) != n_spaces:
        raise ValueError(f"keys: expected one key tensor per space (n + 1 >= 2 spaces), got {len(keys)} keys for "
                         f"{n_spaces} queries")
    queues = [None] * n_spaces if queues is None else list(queues)
    if len(queues) != n_spaces:
        raise ValueError(f"queues: expected {n_spaces} queues (one per space), got {len(queues)}")
    for s, kk in enumerate(keys):
        if kk.dim() != 3 or kk.shape[0] != n_spaces:
            raise ValueError(f"keys: space {s} needs the {n_spaces} key views k_0..k_n, got shape {tuple(kk.shape)}")
    terms = [looc_space_loss(queries[s], keys[s], queues[s], None if s == 0 else s, temperature)
             for s in range(n_spaces)]
    return torch.stack(terms).mean()
