"""Deep Graph Infomax's objective (Veličković, Fedus, Hamilton, Liò, Bengio, Hjelm; ICLR 2019, arXiv 1809.10341)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import check_embeddings


def _check_batch(batch: Tensor | None, n: int, name: str) -> Tensor | None:
    if batch is None:
        return None
    if not isinstance(batch, Tensor) or batch.shape != (n,) or batch.is_floating_point() or batch.dtype == torch.bool:
        shape = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
        raise ValueError(f"{name} must be an integer tensor of shape ({n},) (the graph of each node), got {shape}")
    if n and int(batch.min()) < 0:
        raise ValueError(f"{name} must hold graph ids >= 0, got {int(batch.min())}")
    return batch.long()


def dgi_readout(h: Tensor, batch: Tensor | None = None, num_graphs: int | None = None) -> Tensor:
    r"""DGI's readout ``s = R(H) = sigma(1/N sum_i h_i)`` per graph, shape ``(G, D)``.

    Args:
        h: (N, D) node embeddings.
        batch: (N,) graph of each node (``None``: one graph).
        num_graphs: G (default ``max(batch) + 1``).

    Raises:
        ValueError: bad shapes or a graph without nodes.
    """
    check_embeddings(h, "h")
    batch = _check_batch(batch, h.shape[0], "batch")
    if batch is None:
        return torch.sigmoid(h.mean(0, keepdim=True))
    g = int(batch.max()) + 1 if num_graphs is None else int(num_graphs)
    count = torch.zeros(g, dtype=h.dtype, device=h.device).index_add_(0, batch, torch.ones_like(batch, dtype=h.dtype))
    if bool((count == 0).any()):
        raise ValueError(f"batch: every graph needs at least one node; empty graphs {(count == 0).nonzero()[:, 0]}")
    total = torch.zeros(g, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, batch, h)
    return torch.sigmoid(total / count[:, None])


def dgi_scores(h: Tensor, summary: Tensor, weight: Tensor, bias: Tensor | None = None,
               batch: Tensor | None = None) -> Tensor:
    r"""Logits of DGI's bilinear discriminator, ``h_i^T W s_{g(i)} + b``, shape ``(N,)``
    (so ``D(h_i, s) = sigmoid(logit_i)``); ``summary`` (G, D) or (D,), ``weight`` (D, D)."""
    check_embeddings(h, "h")
    d = h.shape[1]
    if not isinstance(summary, Tensor) or summary.shape[-1] != d or summary.ndim not in (1, 2):
        shape = tuple(summary.shape) if isinstance(summary, Tensor) else type(summary).__name__
        raise ValueError(f"summary must have shape (G, {d}) or ({d},), got {shape}")
    if not isinstance(weight, Tensor) or weight.shape != (d, d):
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"weight must have shape ({d}, {d}), got {shape}")
    if bias is not None and (not isinstance(bias, Tensor) or bias.numel() != 1):
        raise ValueError(f"bias must be a one-element tensor or None, got {bias!r}")
    summary = summary.reshape(-1, d)
    batch = _check_batch(batch, h.shape[0], "batch")
    if batch is None:
        if summary.shape[0] != 1:
            raise ValueError(f"batch is needed to pair nodes with one of the {summary.shape[0]} summaries")
        batch = torch.zeros(h.shape[0], dtype=torch.long, device=h.device)
    elif h.shape[0] and int(batch.max()) >= summary.shape[0]:
        raise ValueError(f"batch: graph id {int(batch.max())} has no summary (summary has {summary.shape[0]} rows)")
    logits = ((h @ weight) * summary[batch]).sum(1)
    return logits + bias.reshape(()) if bias is not None else logits


def dgi_loss(h: Tensor, h_corrupt: Tensor, summary: Tensor, weight: Tensor, bias: Tensor | None = None,
             batch: Tensor | None = None, batch_corrupt: Tensor | None = None) -> Tensor:
    r"""DGI's objective (the paper's Eq. 1, as a loss to minimise): the binary cross-entropy of the bilinear
    discriminator ``D(h, s) = sigmoid(h^T W s + b)`` between the N patch embeddings ``h_i`` of the graph
    (positives) and the M embeddings ``h~_j`` of its corruption (negatives), each paired with its graph's
    summary ``s = sigmoid(mean_i h_i)`` (:func:`dgi_readout`)::

        L = -1/(N + M) * ( sum_{i=1}^{N} log D(h_i, s) + sum_{j=1}^{M} log(1 - D(h~_j, s)) )

    Minimising L maximises Eq. 1, a Jensen-Shannon-type lower bound on the mutual information between
    patches and the summary. Computed from the logits with ``logsigmoid`` (stable for large scores).

    Args:
        h: (N, D) node embeddings of the real graph(s); h_corrupt: (M, D) of the corrupted one(s).
        summary: (G, D) one summary per graph, or (D,) for one graph.
        weight: (D, D) bilinear W; bias: optional one-element b (``nn.Bilinear``'s).
        batch, batch_corrupt: (N,), (M,) graph of each node (``None``: one graph); ``batch_corrupt``
            defaults to ``batch``.

    Returns:
        Scalar tensor (log 2 when every score is 0).

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, graph ids without a summary.
    """
    check_embeddings(h_corrupt, "h_corrupt")
    if h_corrupt.shape[1] != h.shape[1]:
        raise ValueError(f"h_corrupt must have D = {h.shape[1]} columns like h, got {tuple(h_corrupt.shape)}")
    pos = dgi_scores(h, summary, weight, bias, batch)
    neg = dgi_scores(h_corrupt, summary, weight, bias, batch if batch_corrupt is None else batch_corrupt)
    return -(F.logsigmoid(pos).sum() + F.logsigmoid(-neg).sum()) / (pos.shape[0] + neg.shape[0])
