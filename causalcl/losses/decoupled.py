"""Decoupled contrastive loss DCL and its weighted variant DCLW (Yeh et al. 2022)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import check_pair, check_temperature, positives_and_negatives


def decoupled_info_nce(
    z1: Tensor, z2: Tensor, temperature: float = 0.1, weight_sigma: float | None = None
) -> Tensor:
    r"""Decoupled contrastive loss DCL / DCLW (Yeh, Hong, Hsu, Liu, Chen, LeCun, ECCV 2022,
    "Decoupled Contrastive Learning").

    Rows of z1, z2 are L2-normalised inside. For each of the 2N anchors i (positive p(i), its other
    view), the positive is removed from the denominator::

        l_i = -w_i * s_{i,p(i)} / tau + log sum_{k not in {i, p(i)}} exp(s_{ik} / tau)
        L   = 1/(2N) sum_i l_i

    i.e. :math:`\ell_i = -w_i s_{i,p(i)}/\tau + \log\sum_{k\notin\{i,p(i)\}} e^{s_{ik}/\tau}`.

    ``weight_sigma=None`` (DCL): w_i = 1. A float sigma (DCLW) uses the von Mises-Fisher weight
    ``w_i = 2 - exp(s_i / sigma) / mean_j exp(s_j / sigma) = 2 - N * softmax_j(s_j / sigma)_i``, with
    s_j the cosine similarity of pair j and the mean over the N pairs (both anchors of a pair share
    the weight; the weights average to 1).

    Choices where the paper/implementations disagree (there is no official code):
      - one log-sum-exp over the union of the 2N - 2 negatives, same-view and cross-view (what
        lightly's ``DCLLoss`` computes, measured);
      - the DCLW weight carries the factor N (mean, not sum, over pairs); the raminnakhli
        reimplementation omits it, which makes w ~= 2 and effectively constant;
      - the DCLW weights are detached (no gradient), as in lightly's newer versions;
      - the two directions are averaged (mean over 2N anchors), not summed.

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2.
        temperature: tau > 0 (default 0.1, lightly's default).
        weight_sigma: None for DCL, or sigma > 0 for DCLW (the paper uses 0.5).

    Returns:
        Scalar tensor: mean over the 2N anchors (can be negative: the positive term is not bounded).

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, temperature <= 0, weight_sigma <= 0.
    """
    check_pair(z1, z2)
    t = check_temperature(temperature)
    sigma = None if weight_sigma is None else check_temperature(weight_sigma, "weight_sigma")
    n = z1.shape[0]
    pos, neg = positives_and_negatives(z1, z2)
    pos_term = pos / t
    if sigma is not None:
        w = (2.0 - n * torch.softmax(pos[:n].detach() / sigma, dim=0)).repeat(2)
        pos_term = w * pos_term
    return (torch.logsumexp(neg / t, dim=1) - pos_term).mean()


def decoupled_weighted_info_nce(
    z1: Tensor, z2: Tensor, temperature: float = 0.1, weight_sigma: float = 0.5
) -> Tensor:
    """DCLW: :func:`decoupled_info_nce` with the von Mises-Fisher positive weight, sigma 0.5 by default.

    Same shapes, formula, choices and errors as :func:`decoupled_info_nce`; ``weight_sigma`` must be
    a float > 0 here.
    """
    if weight_sigma is None:
        raise ValueError("weight_sigma must be a float > 0 for DCLW, got None (use decoupled_info_nce)")
    return decoupled_info_nce(z1, z2, temperature=temperature, weight_sigma=weight_sigma)
