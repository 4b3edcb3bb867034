"""Alignment and uniformity of embeddings on the unit hypersphere.

Wang & Isola, "Understanding Contrastive Representation Learning through Alignment and Uniformity on the
Hypersphere", ICML 2020. With f(x) the L2-normalised embedding:

* alignment  = E_{(x, y) positive pairs} ||f(x) - f(y)||_2^alpha                  (lower is better, alpha = 2)
* uniformity = log E_{x, y i.i.d.} exp(-t ||f(x) - f(y)||_2^2)                    (lower is better, t = 2)

Uniformity is estimated over all distinct pairs i < j of the sample (``torch.pdist`` convention, i = j
excluded). It is computed in row blocks with a log-sum-exp, in float64, so memory stays O(block * N).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ._validate import as_features, check_positive_float

__all__ = ["alignment", "uniformity"]

_BLOCK_ELEMENTS = 1 << 22


def _unit_rows(z: Any, name: str, min_rows: int = 1) -> torch.Tensor:
    x = as_features(z, name, dtype=torch.float64, min_rows=min_rows)
    norms = x.norm(dim=1, keepdim=True)
    zero = (norms == 0).flatten()
    if bool(zero.any()):
        first = int(torch.nonzero(zero)[0])
        raise ValueError(f"{name}: row {first} has zero norm and cannot be L2-normalised")
    return x / norms


def alignment(z1: Any, z2: Any, *, alpha: float = 2) -> float:
    """Mean ||x_i - y_i||_2^alpha over row pairs of L2-normalised z1, z2 (same shape (N, d))."""
    x = _unit_rows(z1, "z1")
    y = _unit_rows(z2, "z2")
    if x.shape != y.shape:
        raise ValueError(
            f"z2: expected the same shape as z1 {tuple(x.shape)} (row i of z1 pairs with row i of z2), "
            f"got {tuple(y.shape)}"
        )
    alpha = check_positive_float(alpha, "alpha")
    y = y.to(x.device)
    return float((x - y).norm(dim=1).pow(alpha).mean())


def uniformity(z: Any, *, t: float = 2) -> float:
    """log of the mean of exp(-t ||x_i - x_j||^2) over pairs i < j of L2-normalised rows of z (N >= 2)."""
    x = _unit_rows(z, "z", min_rows=2)
    t = check_positive_float(t, "t")
    n = x.shape[0]
    block = max(1, _BLOCK_ELEMENTS // n)
    parts = []
    for start in range(0, n - 1, block):
        rows = x[start : start + block]  # rows i in [start, start + b)
        sq = (2.0 - 2.0 * rows @ x[start + 1 :].t()).clamp_min_(0.0)  # columns j in [start + 1, n)
        i = torch.arange(start, start + rows.shape[0], device=x.device).unsqueeze(1)
        j = torch.arange(start + 1, n, device=x.device).unsqueeze(0)
        logits = (-t * sq).masked_fill_(j <= i, float("-inf"))  # keep only j > i
        parts.append(torch.logsumexp(logits.flatten(), dim=0))
    n_pairs = n * (n - 1) / 2
    return float(torch.logsumexp(torch.stack(parts), dim=0)) - math.log(n_pairs)
