"""SwAV: Sinkhorn-Knopp codes and the swapped-prediction loss.

Caron, Misra, Mairal, Goyal, Bojanowski, Joulin; NeurIPS 2020, "Unsupervised Learning of Visual
Features by Contrasting Cluster Assignments", arXiv 2006.09882.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import check_embeddings, check_real, check_temperature


def _check_iterations(iterations: object) -> int:
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"sinkhorn_iterations must be an integer >= 1, got {iterations!r}")
    return iterations


@torch.no_grad()
def sinkhorn_knopp(scores: Tensor, epsilon: float = 0.05, iterations: int = 3) -> Tensor:
    r"""Soft cluster assignments (codes) Q of a batch by the Sinkhorn-Knopp algorithm (SwAV, Alg. 1).

    With B samples and K prototypes, start from ``P = exp(scores / ε)`` normalised to total mass 1,
    then alternate ``iterations`` times (each iteration both steps, prototype step first, as in the
    official code):

        P_bk ← P_bk / (K · Σ_b' P_b'k)      (every prototype (column) gets mass 1/K)
        P_bk ← P_bk / (B · Σ_k' P_bk')      (every sample (row) gets mass 1/B)

    and return ``Q = B · P``. Convention: the returned Q is (B, K) and each ROW sums to 1 exactly (a
    distribution over prototypes per sample, the cross-entropy target); each column sums to about
    B/K — exactly in the limit of many iterations (equipartition), approximately after the default 3.
    The iterations run in the log domain (each normalisation a ``logsumexp``): the same numbers as
    the official multiplicative form, without its overflow (``exp(s/ε)``) or its 0/0 when a whole
    prototype column underflows at small ε. No gradient flows (codes are targets).

    Args:
        scores: (B, K) prototype scores of one view (cosine similarities in SwAV), B >= 2, K >= 1,
            the whole (global) batch: the equipartition constraint is over exactly these rows.
        epsilon: ε > 0, the entropic regularisation (0.05 in the paper).
        iterations: >= 1 Sinkhorn iterations (3 in the paper).

    Returns:
        (B, K) tensor Q, float32 at least, rows summing to 1.
    """
    check_embeddings(scores, "scores")
    eps = check_temperature(epsilon, "epsilon")
    iterations = _check_iterations(iterations)
    s = scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores
    b, k = s.shape
    log_p = s / eps
    log_p = log_p - torch.logsumexp(log_p.flatten(), dim=0)
    for _ in range(iterations):
        log_p = log_p - torch.logsumexp(log_p, dim=0, keepdim=True) - math.log(k)
        log_p = log_p - torch.logsumexp(log_p, dim=1, keepdim=True) - math.log(b)
    return torch.exp(log_p + math.log(b))


def swav_loss(scores: Sequence[Tensor], *, temperature: float = 0.1, epsilon: float = 0.05,
              sinkhorn_iterations: int = 3, assign_crops: Sequence[int] = (0, 1)) -> Tensor:
    r"""SwAV's swapped-prediction loss over V crops (Caron et al., NeurIPS 2020, arXiv 2006.09882).

    ``scores[v]`` is the (N, K) matrix ``z_v Cᵀ`` of crop v (normalised embeddings × normalised
    prototypes). For each crop s in ``assign_crops`` the codes ``q_s = sinkhorn_knopp(scores[s])``
    (no gradient) are predicted from every other crop t ≠ s through ``p_t = softmax(scores[t] / τ)``::

        ℓ(s, t) = −(1/N) Σ_n Σ_k q_s[n, k] · log p_t[n, k]
        L = 1/|S| Σ_{s∈S} 1/(V − 1) Σ_{t≠s} ℓ(s, t)

    With two crops this is the paper's ℓ(z_t, q_s) + ℓ(z_s, q_t), averaged (halved) as in the
    official code. Only the large crops are assigned codes in multi-crop (``assign_crops`` = (0, 1)).

    Args:
        scores: V >= 2 tensors of one shape (N, K), N >= 2 (the global batch under DDP).
        temperature: τ > 0 of the prediction softmax (0.1).
        epsilon: ε > 0 of Sinkhorn-Knopp (0.05).
        sinkhorn_iterations: >= 1 (3).
        assign_crops: distinct indices of the crops that get codes (default the first two).

    Returns:
        Scalar tensor (computed in float32 at least).

    Raises:
        ValueError: bad shapes, non-finite scores (``NonFiniteEmbeddingError``) or bad options.
    """
    if not isinstance(scores, list | tuple) or len(scores) < 2:
        raise ValueError(f"scores: expected a list of at least 2 (N, K) tensors, got {type(scores).__name__}")
    for v, s in enumerate(scores):
        check_embeddings(s, f"scores[{v}]")
    if any(s.shape != scores[0].shape for s in scores):
        raise ValueError(f"scores: all crops must have the same shape, got {[tuple(s.shape) for s in scores]}")
    t = check_temperature(temperature)
    check_real(epsilon, "epsilon", low=0.0, low_open=True)
    _check_iterations(sinkhorn_iterations)
    crops = list(assign_crops)
    if not crops or len(set(crops)) != len(crops) or any(
            isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(scores) for c in crops):
        raise ValueError(f"assign_crops: expected distinct crop indices in [0, {len(scores)}), got {assign_crops}")
    logits = [s.float() if s.dtype in (torch.float16, torch.bfloat16) else s for s in scores]
    with torch.autocast(logits[0].device.type, enabled=False):
        log_p = [F.log_softmax(s / t, dim=1) for s in logits]
        total = logits[0].new_zeros(())
        for s in crops:
            q = sinkhorn_knopp(logits[s].detach(), epsilon, sinkhorn_iterations)
            sub = sum(-(q * log_p[v]).sum(dim=1).mean() for v in range(len(scores)) if v != s)
            total = total + sub / (len(scores) - 1)
    return total / len(crops)
