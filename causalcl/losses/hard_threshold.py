"""Hard contrastive loss of Wang & Liu (CVPR 2021): only the hardest negatives in the denominator."""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor

from ._common import check_pair, check_real, check_temperature, positives_and_negatives


def hard_threshold_info_nce(
    z1: Tensor,
    z2: Tensor,
    temperature: float = 0.2,
    top_k: int | None = None,
    threshold: float | None = None,
) -> Tensor:
    r"""Hard contrastive loss (Wang & Liu, CVPR 2021, "Understanding the Behaviour of Contrastive
    Loss"): the InfoNCE denominator keeps only each anchor's hardest negatives.

    Rows of z1, z2 are L2-normalised inside; each of the 2N anchors i has its other view p(i) as
    positive and the 2N - 2 other embeddings as candidate negatives. With K_i the kept negatives::

        l_i = -log( exp(s_{i,p(i)}/tau) / (exp(s_{i,p(i)}/tau) + sum_{k in K_i} exp(s_{ik}/tau)) )
        L   = 1/(2N) sum_i l_i

    The paper keeps negatives above a per-anchor threshold s_alpha^(i) and gives no code, so the
    threshold is an option (set at most one):
      - ``top_k=k``: K_i = the k most similar negatives of anchor i (1 <= k <= 2N - 2);
      - ``threshold=c``: K_i = negatives with cosine similarity s_ik >= c (absolute, in [-1, 1]); an
        anchor with none kept gets l_i = 0;
      - neither: ``top_k = max(1, (2N - 2) // 4)``, the hardest quarter (our default, not the paper's).
    Gradients flow only through the kept negatives (the selection itself is not differentiated).

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2.
        temperature: tau > 0 (default 0.2).
        top_k: number of hardest negatives kept per anchor, or None.
        threshold: absolute cosine threshold, or None.

    Returns:
        Scalar tensor: mean over the 2N anchors.

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, temperature <= 0, both top_k and threshold
            set, top_k not an int in [1, 2N - 2], threshold outside [-1, 1].
    """
    check_pair(z1, z2)
    t = check_temperature(temperature)
    n_neg = 2 * z1.shape[0] - 2
    if top_k is not None and threshold is not None:
        raise ValueError("top_k and threshold are exclusive: set at most one of them (top_k, threshold)")
    if threshold is None:
        k = max(1, n_neg // 4) if top_k is None else top_k
        if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= n_neg:
            raise ValueError(f"top_k must be an int in [1, 2N - 2 = {n_neg}], got {top_k!r}")
    else:
        c = check_real(threshold, "threshold", low=-1.0, high=1.0)
    pos, neg = positives_and_negatives(z1, z2)
    l_pos = pos / t
    if threshold is None:
        kept = torch.topk(neg / t, int(k), dim=1).values
    else:
        kept = (neg / t).masked_fill(neg < c, float("-inf"))
    return (torch.logsumexp(torch.cat([l_pos.unsqueeze(1), kept], dim=1), dim=1) - l_pos).mean()
