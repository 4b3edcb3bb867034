"""NNCLR's loss: nearest neighbours from a support set as positives, cross-view InfoNCE on predictions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import NonFiniteEmbeddingError, check_embeddings, check_temperature, normalize, value_checks_deferred


def _check_support(support: object, z: Tensor) -> None:
    if not isinstance(support, Tensor) or support.dim() != 2 or support.shape[1] != z.shape[1]:
        shape = tuple(support.shape) if isinstance(support, Tensor) else type(support).__name__
        raise ValueError(f"support must be a tensor of shape (K, {z.shape[1]}) with K >= 0, got {shape}")
    if not support.is_floating_point():
        raise ValueError(f"support must have a floating-point dtype, got {support.dtype}")
    if support.device != z.device:
        raise ValueError(f"support must be on the same device as z, got {support.device} vs {z.device}")
    if not value_checks_deferred() and not bool(torch.isfinite(support).all()):
        raise NonFiniteEmbeddingError("support contains NaN or infinite values")


def nearest_neighbours(z: Tensor, support: Tensor) -> Tensor:
    r"""NN(z, Q) of NNCLR: for each row of ``z``, the row of the support set Q closest to it.

    Rows of ``z`` and ``support`` are L2-normalised, so the nearest neighbour in Euclidean distance is the
    row of highest cosine similarity (ties: the first such row)::

        NN(z_i, Q) = argmin_{q in Q} || z_i - q ||_2 = argmax_{q in Q} z_i . q      (unit vectors)

    The result is detached: no gradient flows through the look-up (the support set is a memory of past
    embeddings). An empty support set (K = 0, the first step of a run) returns the normalised ``z`` itself,
    detached (NNCLR's "no support set" ablation).

    Args:
        z: (N, D) query embeddings (projections), N >= 2.
        support: (K, D) support set, K >= 0 (cast to the dtype of ``z``).

    Returns:
        (N, D) tensor: the unit-norm nearest neighbour of each row of ``z``.

    Raises:
        ValueError: bad shapes, dtypes or devices, or non-finite inputs.
    """
    check_embeddings(z, "z")
    _check_support(support, z)
    zn = normalize(z.detach())
    if support.shape[0] == 0:
        return zn
    q = normalize(support.detach().to(z.dtype))
    return q[(zn @ q.T).argmax(dim=1)]


def _cross_view_nll(anchors: Tensor, p: Tensor, t: float) -> Tensor:
    logits = anchors @ normalize(p).T / t
    return F.cross_entropy(logits, torch.arange(p.shape[0], device=p.device))


def nnclr_loss(z1: Tensor, z2: Tensor, p1: Tensor, p2: Tensor, support: Tensor, temperature: float = 0.1) -> Tensor:
    r"""NNCLR loss (Dwibedi, Aytar, Tompson, Sermanet, Zisserman, ICCV 2021, "With a Little Help from My
    Friends: Nearest-Neighbor Contrastive Learning of Visual Representations", arXiv 2104.14548).

    Each sample's positive is the nearest neighbour of its projection in the support set Q
    (``nearest_neighbours``, detached), contrasted with the predictions of the other view; the negatives
    are the other samples' predictions of that view. With unit vectors (normalised inside)::

        l(z, p^+)_i = -log( exp(NN(z_i, Q) . p^+_i / tau) / sum_{k=1}^{N} exp(NN(z_i, Q) . p^+_k / tau) )
        L = 1/2 [ 1/N sum_i l(z^1, p^2)_i + 1/N sum_i l(z^2, p^1)_i ]

    i.e. the official pseudo-code's ``L(NN1, p2)/2 + L(NN2, p1)/2`` with ``logits = nn @ p.T / tau`` and
    ``labels = range(N)`` (as solo-learn). Gradients reach only p1 and p2 (the look-up is detached, so
    ``z1``, ``z2`` and ``support`` receive none).

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2 (queries of the look-up).
        p1, p2: (N, D) predictions of the two views (predictor outputs).
        support: (K, D) support set (a FIFO of past projections), K >= 0; empty: each z is its own neighbour.
        temperature: tau > 0 (default 0.1, the paper's).

    Returns:
        Scalar tensor: the mean over the 2N anchors (N per direction).

    Raises:
        ValueError: bad shapes, dtypes or devices, non-finite inputs, or temperature <= 0.
    """
    for name, x in (("z1", z1), ("z2", z2), ("p1", p1), ("p2", p2)):
        check_embeddings(x, name)
        if x.shape != z1.shape:
            raise ValueError(f"{name} must have the same shape as z1, got {tuple(x.shape)} vs {tuple(z1.shape)}")
        if x.dtype != z1.dtype or x.device != z1.device:
            raise ValueError(f"{name} must have the dtype and device of z1, got {x.dtype} on {x.device}")
    t = check_temperature(temperature)
    nn1, nn2 = nearest_neighbours(z1, support), nearest_neighbours(z2, support)
    return 0.5 * (_cross_view_nll(nn1, p2, t) + _cross_view_nll(nn2, p1, t))
