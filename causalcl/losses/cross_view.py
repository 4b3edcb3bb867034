"""Cross-view InfoNCE: each anchor of one view against the N embeddings of the other view."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import check_pair, check_temperature, normalize


def cross_view_info_nce(z1: Tensor, z2: Tensor, temperature: float = 0.1) -> Tensor:
    r"""Symmetric InfoNCE with cross-view candidates only (an N x N logit matrix).

    Used by DirectCLR (Jing, Vincent, LeCun, Tian, ICLR 2022, arXiv 2110.09348; the official
    ``facebookresearch/directclr`` loss) and by CMC for two views (Tian, Krishnan, Isola, ECCV 2020,
    arXiv 1906.05849: the "full graph" of 2 views is L(V1 -> V2) + L(V2 -> V1), here in its
    in-batch softmax form). With unit rows u_i = z1_i/||z1_i||, v_k = z2_k/||z2_k||::

        l^{1->2}_i = -log( exp(u_i.v_i / tau) / sum_{k=1..N} exp(u_i.v_k / tau) )
        l^{2->1}_i = -log( exp(v_i.u_i / tau) / sum_{k=1..N} exp(v_i.u_k / tau) )
        L = 1/(2N) * sum_i ( l^{1->2}_i + l^{2->1}_i )

    Unlike SimCLR's NT-Xent (``info_nce``, 2N - 2 negatives from both views), the candidates of an
    anchor are only the N embeddings of the other view (N - 1 negatives); the same-view similarities
    never enter. The mean of the two directions is half of CMC's sum (a constant factor).

    Args:
        z1, z2: (N, D) embeddings of the two views, N >= 2; row i of each is a positive pair.
        temperature: tau > 0 (default 0.1, DirectCLR's value; CMC used 0.07).

    Returns:
        Scalar tensor: the mean of the 2N cross-entropies.

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, or temperature <= 0.
    """
    check_pair(z1, z2)
    t = check_temperature(temperature)
    logits = normalize(z1) @ normalize(z2).T / t
    target = torch.arange(z1.shape[0], device=z1.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
