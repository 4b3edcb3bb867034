"""RotNet's pretext loss: cross-entropy of the predicted rotation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import NonFiniteEmbeddingError, value_checks_deferred


def rotation_loss(logits: Tensor, rotations: Tensor) -> Tensor:
    r"""RotNet loss (Gidaris, Singh, Komodakis, ICLR 2018, "Unsupervised Representation Learning by
    Predicting Image Rotations", arXiv 1803.07728): the classifier's cross-entropy on the rotation index.

    Image j, rotated by ``r_j * 90`` degrees, gets scores ``logits[j]`` over the C rotation classes (C = 4:
    0, 90, 180, 270 degrees)::

        l_j = -log( exp(logits[j, r_j]) / sum_{c=1}^{C} exp(logits[j, c]) ),    L = 1/M sum_j l_j

    Args:
        logits: (M, C) scores, M >= 1, C >= 2, floating point.
        rotations: (M,) integer class of each row, in [0, C).

    Returns:
        Scalar tensor: the mean of l_j over the M rotated images.

    Raises:
        ValueError: bad shapes or dtypes, non-finite logits, or a class outside [0, C).
    """
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] < 1 or logits.shape[1] < 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a tensor of shape (M, C) with M >= 1 and C >= 2, got {shape}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must have a floating-point dtype, got {logits.dtype}")
    if not value_checks_deferred() and not bool(torch.isfinite(logits).all()):
        raise NonFiniteEmbeddingError("logits contains NaN or infinite values")
    if not isinstance(rotations, Tensor) or rotations.shape != logits.shape[:1]:
        shape = tuple(rotations.shape) if isinstance(rotations, Tensor) else type(rotations).__name__
        raise ValueError(f"rotations must be a tensor of shape ({logits.shape[0]},), got {shape}")
    if rotations.dtype.is_floating_point or rotations.dtype == torch.bool or rotations.is_complex():
        raise ValueError(f"rotations must have an integer dtype, got {rotations.dtype}")
    if rotations.device != logits.device:
        raise ValueError(f"rotations must be on the same device as logits, got {rotations.device} vs {logits.device}")
    if not value_checks_deferred() and bool(((rotations < 0) | (rotations >= logits.shape[1])).any()):
        raise ValueError(f"rotations must lie in [0, {logits.shape[1]}), got values in "
                         f"[{int(rotations.min())}, {int(rotations.max())}]")
    return F.cross_entropy(logits, rotations.long())
