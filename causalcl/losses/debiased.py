"""Debiased contrastive loss (Chuang et al. 2020) and its hard-negative extension HCL (Robinson et al.)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._common import check_pair, check_real, check_tau_plus, check_temperature, positives_and_negatives


def _debiased_from_logits(
    l_pos: Tensor, l_neg: Tensor, t: float, tau_plus: float, beta: float | None, detach_weights: bool
) -> Tensor:
    """Mean of -log(pos / (pos + Ng)) from logits l_pos (2N,) = s_pos/t and l_neg (2N, M) = s_neg/t.

    Evaluated in log space (a per-anchor shift m cancels out), so no exp(s/t) can overflow; in exact
    arithmetic this equals the official code's plain ``exp`` formula.
    """
    m_neg = l_neg.shape[1]
    if beta is None:  # plain debiased: reweight = sum_k neg_k
        log_rw = torch.logsumexp(l_neg, dim=1)
    else:  # HCL: reweight = sum_k imp_k neg_k / mean_k imp_k = M * sum_k softmax(beta l_neg)_k neg_k
        log_w = torch.log_softmax(beta * l_neg, dim=1)
        if detach_weights:
            log_w = log_w.detach()
        log_rw = math.log(m_neg) + torch.logsumexp(l_neg + log_w, dim=1)
    shift = torch.maximum(l_pos, log_rw).detach()
    ng = (torch.exp(log_rw - shift) - tau_plus * m_neg * torch.exp(l_pos - shift)) / (1.0 - tau_plus)
    tiny = torch.finfo(ng.dtype).tiny
    # Ng clamped at min M * e^{-1/t}, done on log Ng (log is monotone, so the clamp is the same).
    log_ng = (torch.log(ng.clamp_min(tiny)) + shift).clamp_min(math.log(m_neg) - 1.0 / t)
    return (torch.logaddexp(log_ng, l_pos) - l_pos).mean()


def debiased_info_nce(z1: Tensor, z2: Tensor, temperature: float = 0.5, tau_plus: float = 0.1) -> Tensor:
    r"""Debiased contrastive loss (Chuang, Robinson, Yen-Chen, Torralba, Jegelka, NeurIPS 2020,
    "Debiased Contrastive Learning"), in the form of the official code (chingyaoc/DCL).

    Rows of z1, z2 are L2-normalised inside. Each of the 2N anchors has one positive (its other view)
    and M = 2N - 2 negatives (all other embeddings of both views). With pos = exp(s_pos / t) and
    neg_k = exp(s_k / t) over the M negatives::

        Ng  = max( (-tau_plus * M * pos + sum_k neg_k) / (1 - tau_plus),  M * exp(-1/t) )
        l_i = -log( pos / (pos + Ng) ),      L = 1/(2N) sum_i l_i

    i.e. :math:`N_g = \max\{\frac{1}{1-\tau^+}(\sum_k e^{s_k/t} - \tau^+ M e^{s^+/t}), M e^{-1/t}\}`.

    Choices where the paper is ambiguous (all as in the official code): the positive-sample estimate
    uses M = 1 positive, the pair's own; the clamp floor is M e^{-1/t} (the minimum of a sum of M
    terms e^{s/t}, s >= -1); the clamp has zero gradient when active. The value is computed in log
    space (stable for small t, equal to the plain formula otherwise). tau_plus = 0 gives ``info_nce``.

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2.
        temperature: t > 0 (default 0.5, official code).
        tau_plus: class prior tau+ in [0, 1) (default 0.1; the README also uses 0.05).

    Returns:
        Scalar tensor: mean over the 2N anchors.

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, temperature <= 0, tau_plus outside [0, 1).
    """
    check_pair(z1, z2)
    t = check_temperature(temperature)
    tp = check_tau_plus(tau_plus)
    pos, neg = positives_and_negatives(z1, z2)
    return _debiased_from_logits(pos / t, neg / t, t, tp, None, False)


def hard_info_nce(
    z1: Tensor,
    z2: Tensor,
    temperature: float = 0.5,
    tau_plus: float = 0.1,
    beta: float = 1.0,
    detach_weights: bool = False,
) -> Tensor:
    r"""Hard-negative contrastive loss HCL (Robinson, Chuang, Sra, Jegelka, ICLR 2021, "Contrastive
    Learning with Hard Negative Samples"), in the form of the official code (joshr17/HCL).

    Same set-up as :func:`debiased_info_nce` (L2-normalised rows, 2N anchors, M = 2N - 2 negatives,
    pos = exp(s_pos / t), neg_k = exp(s_k / t)), with the negatives importance-weighted::

        imp_k    = exp(beta * s_k / t)                      # beta multiplies the *scaled* similarity
        reweight = sum_k imp_k * neg_k / mean_k imp_k        # = M * E_{q_beta}[neg]
        Ng  = max( (-tau_plus * M * pos + reweight) / (1 - tau_plus),  M * exp(-1/t) )
        l_i = -log( pos / (pos + Ng) ),      L = 1/(2N) sum_i l_i

    Choices: as in the official code, beta scales s/t (not s), and the importance weights are NOT
    detached (``detach_weights=True`` stops their gradient). beta = 0 gives ``debiased_info_nce``.
    Computed in log space (the weights are a softmax of beta * s / t), equal to the plain formula.

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2.
        temperature: t > 0 (default 0.5).
        tau_plus: class prior tau+ in [0, 1) (default 0.1).
        beta: concentration beta >= 0 (default 1.0; the README's best on STL-10).
        detach_weights: stop the gradient through the importance weights (default False).

    Returns:
        Scalar tensor: mean over the 2N anchors.

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, temperature <= 0, tau_plus outside [0, 1),
            beta < 0.
    """
    check_pair(z1, z2)
    t = check_temperature(temperature)
    tp = check_tau_plus(tau_plus)
    b = check_real(beta, "beta", low=0.0)
    pos, neg = positives_and_negatives(z1, z2)
    return _debiased_from_logits(pos / t, neg / t, t, tp, b, bool(detach_weights))
