"""SimCLR's NT-Xent (normalised temperature-scaled cross entropy)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ._common import check_pair, check_temperature, positive_index, self_mask, similarity_matrix


def info_nce(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    r"""NT-Xent loss of SimCLR (Chen, Kornblith, Norouzi, Hinton, ICML 2020, "A Simple Framework
    for Contrastive Learning of Visual Representations").

    The 2N embeddings ``cat([z1, z2])`` are L2-normalised inside, so ``s_ik`` is a cosine similarity.
    Anchor i's positive p(i) is the other view of the same sample; its 2N - 2 negatives are every
    other embedding of both views (itself excluded)::

        l_i = -log( exp(s_{i,p(i)} / tau) / sum_{k != i} exp(s_{ik} / tau) )
        L   = 1/(2N) * sum_{i=1}^{2N} l_i

    i.e. :math:`\ell_i = -\log \frac{e^{s_{i,p(i)}/\tau}}{\sum_{k \ne i} e^{s_{ik}/\tau}}`
    (the denominator holds the positive and the 2N - 2 negatives).

    Computed with one (2N x 2N) matmul, the diagonal masked to -inf and ``F.cross_entropy``.

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2; row i of z1 and of z2 is a positive pair.
        temperature: tau > 0 (default 0.5, SimCLR's CIFAR setting).

    Returns:
        Scalar tensor: the mean of l_i over the 2N anchors.

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, or temperature <= 0.
    """
    check_pair(z1, z2)
    t = check_temperature(temperature)
    n = z1.shape[0]
    logits = similarity_matrix(z1, z2) / t
    logits = logits.masked_fill(self_mask(n, logits.device), float("-inf"))
    return F.cross_entropy(logits, positive_index(n, logits.device))
