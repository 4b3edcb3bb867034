"""Barlow Twins: the redundancy-reduction loss on the cross-correlation of the two views.

Zbontar, Jing, Misra, LeCun, Deny; ICML 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
Reduction", arXiv 2103.03230.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import check_pair, check_real


def _standardize(z: Tensor, eps: float) -> Tensor:
    """Each column centred by its batch mean and divided by sqrt(biased batch variance + eps) — what
    ``BatchNorm1d(affine=False)`` does in training mode, which is how the official code standardises."""
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


def cross_correlation(z1: Tensor, z2: Tensor, eps: float = 1e-5) -> Tensor:
    r"""The (D, D) cross-correlation matrix of the batch-standardised views.

    ``C_ij = (1/N) Σ_b ẑ1_bi ẑ2_bj`` with ``ẑ_bi = (z_bi − μ_i) / sqrt(σ_i² + eps)``, μ and σ² the
    batch mean and the biased (1/N) batch variance of column i (``BatchNorm1d`` without affine, eps
    1e-5, as in the official code). Half-precision inputs are computed in float32 with autocast off.

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2; row b of each comes from sample b.
        eps: added to the variance, >= 0 (a constant column then gives 0, not NaN, when eps > 0).

    Returns:
        (D, D) tensor C in the computation dtype (float32 at least).
    """
    check_pair(z1, z2)
    eps = check_real(eps, "eps", low=0.0)
    if z1.dtype in (torch.float16, torch.bfloat16):
        z1, z2 = z1.float(), z2.float()
    with torch.autocast(z1.device.type, enabled=False):
        return _standardize(z1, eps).T @ _standardize(z2, eps) / z1.shape[0]


def barlow_twins_terms(z1: Tensor, z2: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """The two parts of the loss: invariance ``Σ_i (1 − C_ii)²`` and redundancy ``Σ_{i≠j} C_ij²``.

    ``C`` is :func:`cross_correlation` ``(z1, z2, eps)``; returns the pair of scalar tensors (on, off).
    """
    c = cross_correlation(z1, z2, eps)
    diag = torch.diagonal(c)
    on = (1.0 - diag).pow(2).sum()
    eye = torch.eye(c.shape[0], dtype=torch.bool, device=c.device)
    off = c.masked_fill(eye, 0.0).pow(2).sum()
    return on, off


def barlow_twins_loss(z1: Tensor, z2: Tensor, lambd: float = 5e-3, *, scale_loss: float = 1.0,
                      eps: float = 1e-5) -> Tensor:
    r"""Barlow Twins loss (Zbontar et al., ICML 2021, arXiv 2103.03230)::

        L = scale_loss · ( Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij² )

    with C the (D, D) cross-correlation of the batch-standardised views (:func:`cross_correlation`).
    It is a sum over the D embedding dimensions, not a mean over samples, as in the paper; swapping
    the views transposes C and leaves L unchanged.

    Defaults: λ = 5e-3 (the paper's 0.0051 rounded as in the issue), ``scale_loss`` = 1 (the current
    official code has no scale; its first release multiplied by 1/32 = 0.024 with λ = 3.9e-3, and
    solo-learn's CIFAR recipe uses 0.1 with λ = 0.0051), eps = 1e-5 (``BatchNorm1d``'s).

    Args:
        z1, z2: (N, D) projections of the two views (the global batch under DDP), N >= 2.
        lambd: λ >= 0, the weight of the redundancy-reduction (off-diagonal) term.
        scale_loss: > 0, a factor on the whole loss (an effective learning-rate scale).
        eps: >= 0, added to the batch variance when standardising.

    Returns:
        Scalar tensor.

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs (``NonFiniteEmbeddingError``) or bad options.
    """
    lambd = check_real(lambd, "lambd", low=0.0)
    scale_loss = check_real(scale_loss, "scale_loss", low=0.0, low_open=True)
    on, off = barlow_twins_terms(z1, z2, eps)
    return scale_loss * (on + lambd * off)
