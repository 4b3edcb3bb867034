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

from ._common import check_embeddings, check_real, check_tau_plus, check_temperature


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


def _loo_logsumexp(x: Tensor) -> Tensor:
    """(N, K) → (N, K): ``log Σ_{j≠k} exp(x[:, j])`` for every k, from prefix and suffix log-cumsum-exps
    (no subtraction, so no cancellation when one term dominates). Needs K >= 2."""
    pre = torch.logcumsumexp(x, dim=1)
    suf = torch.logcumsumexp(x.flip(1), dim=1).flip(1)
    ninf = x.new_full((x.shape[0], 1), float("-inf"))
    return torch.logaddexp(torch.cat([ninf, pre[:, :-1]], dim=1), torch.cat([suf[:, 1:], ninf], dim=1))


def prototype_log_probs(scores: Tensor, temperature: float = 0.1, beta: float | None = None, tau_plus: float = 0.0,
                        detach_weights: bool = False) -> Tensor:
    r"""Log-probabilities of SwAV's prediction over K prototypes, optionally with hard-negative (HCL) or
    debiased reweighting of the other prototypes ("SwAV + Hard" of MetAug's table; our reading, see below).

    SwAV predicts code k of a sample from another crop with p[k] = softmax(s/τ)[k] = e^{s_k/τ} /
    (e^{s_k/τ} + Σ_{j≠k} e^{s_j/τ}): an InfoNCE term whose positive is prototype k and whose M = K − 1
    negatives are the other prototypes — the only negatives SwAV's loss has. Applying Robinson et al.'s
    hard-negative sampling (ICLR 2021, the "Hard" of MetAug's "SwAV + Hard" row) to them gives, with
    l_j = s_j/τ::

        w_kj     = e^{β l_j} / Σ_{i≠k} e^{β l_i}                   (j ≠ k; importance weights of the negatives)
        reweight = M · Σ_{j≠k} w_kj e^{l_j}
        Ng_k     = max( (reweight − τ⁺·M·e^{l_k}) / (1 − τ⁺),  M·e^{−1/τ} )
        log p̃[k] = l_k − log( e^{l_k} + Ng_k )

    ``beta=None`` and ``tau_plus=0`` give ``log_softmax(s/τ)`` exactly (the plain SwAV path); ``beta=None``
    with τ⁺ > 0 is the debiased estimator (Chuang et al.) over prototypes; β = 0 equals ``beta=None``. As in
    HCL's code β multiplies s/τ and the weights keep their gradient unless ``detach_weights``. The p̃ are not
    normalised over k (neither are HCL's per-anchor terms). Cost O(N·K): the leave-one-out sums over j ≠ k come
    from prefix/suffix log-cumsum-exps.

    Args:
        scores: (N, K) prototype scores z Cᵀ of one crop, K >= 2 when reweighting.
        temperature: τ > 0.
        beta: HCL concentration β >= 0, or None (no importance weights).
        tau_plus: class prior τ⁺ in [0, 1).
        detach_weights: stop the gradient through the importance weights.

    Returns:
        (N, K) tensor of log p̃ (float32 at least).
    """
    check_embeddings(scores, "scores")
    t = check_temperature(temperature)
    tp = check_tau_plus(tau_plus)
    b = None if beta is None else check_real(beta, "beta", low=0.0)
    if (b is not None or tp > 0.0) and scores.shape[1] < 2:
        raise ValueError(f"scores: hard / debiased reweighting needs K >= 2 prototypes, got K = {scores.shape[1]}")
    s = scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores
    with torch.autocast(s.device.type, enabled=False):
        return _log_probs(s / t, t, b, tp, bool(detach_weights))


def _log_probs(logits: Tensor, t: float, beta: float | None, tau_plus: float, detach_weights: bool) -> Tensor:
    """:func:`prototype_log_probs` from checked arguments, ``logits`` = scores / τ."""
    if beta is None and tau_plus == 0.0:
        return F.log_softmax(logits, dim=1)
    m = logits.shape[1] - 1
    if beta is None:
        log_rw = _loo_logsumexp(logits)
    else:
        w_logits = beta * (logits.detach() if detach_weights else logits)
        log_rw = math.log(m) + _loo_logsumexp(logits + w_logits) - _loo_logsumexp(w_logits)
    shift = torch.maximum(logits, log_rw).detach()
    ng = (torch.exp(log_rw - shift) - tau_plus * m * torch.exp(logits - shift)) / (1.0 - tau_plus)
    log_ng = (torch.log(ng.clamp_min(torch.finfo(ng.dtype).tiny)) + shift).clamp_min(math.log(m) - 1.0 / t)
    return logits - torch.logaddexp(log_ng, logits)


def swav_loss(scores: Sequence[Tensor], *, temperature: float = 0.1, epsilon: float = 0.05,
              sinkhorn_iterations: int = 3, assign_crops: Sequence[int] = (0, 1),
              queue_scores: Sequence[Tensor | None] | None = None, beta: float | None = None, tau_plus: float = 0.0,
              detach_weights: bool = False) -> Tensor:
    r"""SwAV's swapped-prediction loss over V crops (Caron et al., NeurIPS 2020, arXiv 2006.09882).

    ``scores[v]`` is the (N, K) matrix ``z_v Cᵀ`` of crop v (normalised embeddings × normalised
    prototypes). For each crop s in ``assign_crops`` the codes ``q_s = sinkhorn_knopp(scores[s])``
    (no gradient) are predicted from every other crop t ≠ s through ``p_t = softmax(scores[t] / τ)``::

        ℓ(s, t) = −(1/N) Σ_n Σ_k q_s[n, k] · log p_t[n, k]
        L = 1/|S| Σ_{s∈S} 1/(V − 1) Σ_{t≠s} ℓ(s, t)

    With two crops this is the paper's ℓ(z_t, q_s) + ℓ(z_s, q_t), averaged (halved) as in the
    official code. Only the large crops are assigned codes in multi-crop (``assign_crops`` = (0, 1)).

    Queue (the paper's, for batches small against K): ``queue_scores[i]`` (L, K), the scores of L stored
    embeddings of crop ``assign_crops[i]`` under the current prototypes, joins that crop's rows in
    Sinkhorn-Knopp, q_s = sinkhorn_knopp(cat(queue_scores[i], scores[s]))[−N:]: the equipartition is over
    the L + N rows, the codes of the batch rows are kept; the queue rows take no part in the loss.

    ``beta`` / ``tau_plus`` / ``detach_weights`` replace log p_t by :func:`prototype_log_probs`' hard-negative
    (HCL) or debiased reweighting over the other prototypes ("SwAV + Hard"); the defaults are plain SwAV.

    Args:
        scores: V >= 2 tensors of one shape (N, K), N >= 2 (the global batch under DDP).
        temperature: τ > 0 of the prediction softmax (0.1).
        epsilon: ε > 0 of Sinkhorn-Knopp (0.05).
        sinkhorn_iterations: >= 1 (3).
        assign_crops: distinct indices of the crops that get codes (default the first two).
        queue_scores: None, or one (L, K) tensor or None per entry of ``assign_crops`` (no gradient).
        beta: HCL's β >= 0 over the prototypes, or None.
        tau_plus: debiasing prior τ⁺ in [0, 1).
        detach_weights: stop the gradient through HCL's importance weights.

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
    tp = check_tau_plus(tau_plus)
    b = None if beta is None else check_real(beta, "beta", low=0.0)
    if (b is not None or tp > 0.0) and scores[0].shape[1] < 2:
        raise ValueError(f"scores: hard / debiased reweighting needs K >= 2 prototypes, got K = {scores[0].shape[1]}")
    crops = list(assign_crops)
    if not crops or len(set(crops)) != len(crops) or any(
            isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(scores) for c in crops):
        raise ValueError(f"assign_crops: expected distinct crop indices in [0, {len(scores)}), got {assign_crops}")
    queues = list(queue_scores) if queue_scores is not None else [None] * len(crops)
    if len(queues) != len(crops):
        raise ValueError(f"queue_scores: expected one entry per assigned crop ({len(crops)}), got {len(queues)}")
    for i, qs in enumerate(queues):
        if qs is not None:
            check_embeddings(qs, f"queue_scores[{i}]")
            if qs.shape[1] != scores[0].shape[1]:
                raise ValueError(f"queue_scores[{i}]: expected K = {scores[0].shape[1]} columns, got {tuple(qs.shape)}")
    n = scores[0].shape[0]
    logits = [s.float() if s.dtype in (torch.float16, torch.bfloat16) else s for s in scores]
    with torch.autocast(logits[0].device.type, enabled=False):
        log_p = [_log_probs(s / t, t, b, tp, bool(detach_weights)) for s in logits]
        total = logits[0].new_zeros(())
        for s, qs in zip(crops, queues, strict=True):
            rows = logits[s].detach()
            if qs is not None:
                rows = torch.cat([qs.detach().to(rows.dtype), rows])
            q = sinkhorn_knopp(rows, epsilon, sinkhorn_iterations)[-n:]
            sub = sum(-(q * log_p[v]).sum(dim=1).mean() for v in range(len(scores)) if v != s)
            total = total + sub / (len(scores) - 1)
    return total / len(crops)
