"""Negative-free "regression" losses of BYOL and SimSiam: a prediction p regresses a stop-gradient target z.

Both are functions of one core, the mean cosine similarity of matching rows,

    c(p, z) = 1/N * sum_i <p_i / ||p_i||, z_i / ||z_i||>,

so ``negative_cosine = -c`` (SimSiam's D) and ``byol_loss = 2 - 2c`` (BYOL's normalised MSE,
``||p_hat - z_hat||^2 = 2 - 2 cos``) differ only by an affine map and share their gradients up to the
factor 2. The target is detached inside (``stop_gradient=True``, the default), as both papers do.
"""

from __future__ import annotations

from torch import Tensor

from ._common import check_embeddings, normalize


def _mean_cosine(p: Tensor, z: Tensor, stop_gradient: bool) -> Tensor:
    """Mean over rows of cos(p_i, z_i) after validating the pair; ``z`` detached when ``stop_gradient``."""
    check_embeddings(p, "p")
    check_embeddings(z, "z")
    if z.shape != p.shape:
        raise ValueError(f"z must have the same shape as p, got {tuple(z.shape)} vs {tuple(p.shape)}")
    if z.dtype != p.dtype:
        raise ValueError(f"z must have the same dtype as p, got {z.dtype} vs {p.dtype}")
    if z.device != p.device:
        raise ValueError(f"z must be on the same device as p, got {z.device} vs {p.device}")
    if not isinstance(stop_gradient, bool):
        raise ValueError(f"stop_gradient must be a bool, got {stop_gradient!r}")
    if stop_gradient:
        z = z.detach()
    return (normalize(p) * normalize(z)).sum(dim=1).mean()


def negative_cosine(p: Tensor, z: Tensor, *, stop_gradient: bool = True) -> Tensor:
    r"""SimSiam's D (Chen & He, CVPR 2021, "Exploring Simple Siamese Representation Learning",
    arXiv 2011.10566): the negative cosine similarity of a prediction and a stop-gradient target::

        D(p, z) = -1/N * sum_i  <p_i, sg(z_i)> / (||p_i|| * ||z_i||)

    SimSiam's loss is ``0.5 * D(p1, z2) + 0.5 * D(p2, z1)`` (the method symmetrises).

    Args:
        p: (N, D) predictions (gradients flow into them), N >= 2.
        z: (N, D) targets; row i of ``z`` is the target of row i of ``p``.
        stop_gradient: detach ``z`` (default True, the paper's sg; False is the collapsing ablation).

    Returns:
        Scalar tensor in [-1, 1]: the mean over the N rows.

    Raises:
        ValueError: bad shapes/dtypes/devices or non-finite inputs (``NonFiniteEmbeddingError``).
    """
    return -_mean_cosine(p, z, stop_gradient)


def byol_loss(p: Tensor, z: Tensor, *, stop_gradient: bool = True) -> Tensor:
    r"""BYOL's regression loss (Grill et al., NeurIPS 2020, "Bootstrap Your Own Latent",
    arXiv 2006.07733): the squared distance of the L2-normalised prediction and target::

        L(p, z) = 1/N * sum_i || p_i/||p_i|| - sg(z_i)/||z_i|| ||^2 = 2 - 2/N * sum_i cos(p_i, sg(z_i))

    BYOL's total loss is ``L(p1, z2') + L(p2, z1')`` with z' from the EMA target network (the
    method symmetrises). Equal to ``2 + 2 * negative_cosine(p, z)``.

    Args:
        p: (N, D) online predictions, N >= 2.
        z: (N, D) target projections; row i of ``z`` is the target of row i of ``p``.
        stop_gradient: detach ``z`` (default True).

    Returns:
        Scalar tensor in [0, 4]: the mean over the N rows.

    Raises:
        ValueError: bad shapes/dtypes/devices or non-finite inputs (``NonFiniteEmbeddingError``).
    """
    return 2.0 - 2.0 * _mean_cosine(p, z, stop_gradient)
