"""Triplet margin loss on cosine distance, with the SimCLR batch's negatives."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ._common import check_pair, check_real, positives_and_negatives


def triplet(
    z1: Tensor, z2: Tensor, margin: float = 0.5, negatives: Literal["hardest", "all"] = "hardest"
) -> Tensor:
    r"""Triplet margin loss (Schroff, Kalenichenko, Philbin, CVPR 2015, "FaceNet"; Weinberger & Saul,
    JMLR 2009) on the cosine distance d(x, y) = 1 - cos(x, y) of L2-normalised rows.

    Both directions: each of the 2N embeddings is an anchor a; its positive is the other view of the
    same sample, its 2N - 2 negatives are the other samples' embeddings of both views (z2_j and z1_j,
    j != i), the same sets as SimCLR. Since d_ap - d_an = s_an - s_ap::

        "hardest": l_a = max(0, d_ap - min_n d_an + margin)          (batch-hard mining)
        "all":     l_a = 1/(2N-2) sum_n max(0, d_ap - d_an + margin)
        L = 1/(2N) sum_a l_a

    Choice: the default is "hardest" (batch-hard: the most similar negative per anchor; "all"
    averages over every negative, most of which stop contributing once beyond the margin).
    Averaging over both directions makes the loss symmetric in z1, z2.

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2.
        margin: margin >= 0 on the cosine distance (default 0.5; distances lie in [0, 2]).
        negatives: "hardest" (default) or "all".

    Returns:
        Scalar tensor: mean over the 2N anchors.

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, margin < 0, unknown ``negatives``.
    """
    check_pair(z1, z2)
    m = check_real(margin, "margin", low=0.0)
    if negatives not in ("hardest", "all"):
        raise ValueError(f"negatives must be 'hardest' or 'all', got {negatives!r}")
    pos, neg = positives_and_negatives(z1, z2)
    if negatives == "hardest":
        return torch.relu(neg.max(dim=1).values - pos + m).mean()
    return torch.relu(neg - pos.unsqueeze(1) + m).mean()
