"""Alignment and uniformity on the hypersphere (Wang & Isola, ICML 2020)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._common import check_embeddings, check_pair, check_real, normalize


def alignment(z1: Tensor, z2: Tensor, alpha: float = 2) -> Tensor:
    r"""Alignment loss (Wang & Isola, ICML 2020, "Understanding Contrastive Representation Learning
    through Alignment and Uniformity on the Hypersphere"; ssnl/align_uniform).

    ``L_align = 1/N sum_i ||x_i - y_i||_2^alpha``, i.e. :math:`\frac1N\sum_i\|x_i-y_i\|_2^\alpha`, with
    x_i, y_i the L2-normalised rows i of z1 and z2 (normalised inside). Mean over the N positive pairs.
    For alpha = 2 it is computed as the squared distance directly (smooth where x_i = y_i).

    Args:
        z1, z2: (N, D) embeddings of the two views, N >= 2.
        alpha: exponent alpha > 0 (default 2).

    Returns:
        Scalar tensor in [0, 2^alpha].

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, alpha <= 0.
    """
    check_pair(z1, z2)
    return _alignment(z1, z2, check_real(alpha, "alpha", low=0.0, low_open=True))


def _alignment(z1: Tensor, z2: Tensor, a: float) -> Tensor:
    diff = normalize(z1) - normalize(z2)
    if a == 2.0:
        return diff.pow(2).sum(dim=1).mean()
    return torch.linalg.vector_norm(diff, ord=2, dim=1).pow(a).mean()


def uniformity(z: Tensor, t: float = 2) -> Tensor:
    r"""Uniformity loss (Wang & Isola, ICML 2020).

    ``L_unif = log( 1/P sum_{i<j} exp(-t ||x_i - x_j||_2^2) )`` over the P = N(N-1)/2 pairs i < j
    (i = j excluded, as ``torch.pdist`` in the official code), x_i the L2-normalised rows of z
    (normalised inside). Computed from one Gram matrix, ||x_i - x_j||^2 = 2 - 2 x_i.x_j, and a
    log-sum-exp over its strict upper triangle.

    Args:
        z: (N, D) embeddings, N >= 2.
        t: t > 0 (default 2; the ImageNet MoCo variant uses 3).

    Returns:
        Scalar tensor in [-4t, 0].

    Raises:
        ValueError: bad shape/dtype, non-finite input, t <= 0.
    """
    check_embeddings(z, "z")
    return _uniformity(z, check_real(t, "t", low=0.0, low_open=True))


def _uniformity(z: Tensor, tt: float) -> Tensor:
    x = normalize(z)
    n = x.shape[0]
    sq_dist = (2.0 - 2.0 * (x @ x.T)).clamp_min(0.0)
    upper = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(diagonal=1)  # pairs i < j
    logits = (-tt * sq_dist).masked_fill(~upper, float("-inf"))
    return torch.logsumexp(logits.flatten(), dim=0) - math.log(n * (n - 1) / 2)


def align_uniform(
    z1: Tensor,
    z2: Tensor,
    alpha: float = 2,
    t: float = 2,
    align_weight: float = 1.0,
    unif_weight: float = 1.0,
) -> Tensor:
    """Wang & Isola's combined objective, used as a SimCLR loss option::

        L = align_weight * alignment(z1, z2, alpha)
            + unif_weight * (uniformity(z1, t) + uniformity(z2, t)) / 2

    Uniformity is averaged over the two views, as in the official STL-10 code (weights 1 / 1 there).
    Rows are L2-normalised inside. Shapes as in :func:`alignment`; errors name the bad argument
    (align_weight / unif_weight must be finite reals).
    """
    check_pair(z1, z2)
    wa = check_real(align_weight, "align_weight")
    wu = check_real(unif_weight, "unif_weight")
    a = check_real(alpha, "alpha", low=0.0, low_open=True)
    tt = check_real(t, "t", low=0.0, low_open=True)
    return wa * _alignment(z1, z2, a) + wu * (_uniformity(z1, tt) + _uniformity(z2, tt)) / 2
