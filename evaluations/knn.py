"""Weighted k-nearest-neighbour classification on frozen features.

The protocol of InstDisc (Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination", CVPR 2018) as used by the MoCo CIFAR-10 demo: features are L2-normalised, the similarity of
a query q to a train feature x is the cosine s = <q, x> / (||q|| ||x||), the k most similar train features
vote for their class with weight exp(s / T), and the class with the largest summed weight wins::

    score_c(q) = sum_{j in topk(q)} exp(s_j / T) * [y_j == c],      prediction = argmax_c score_c(q)

Defaults k = 200, T = 0.1 (the CIFAR setting of InstDisc and the MoCo demo).

Implementation: the queries are processed in chunks; per chunk there is one float matmul against the
normalised train bank, a top-k (pruned by group maxima, see ``_topk_pruned``), and a ``scatter_add_`` of the
weights into a (chunk, C) score matrix. Memory is O(chunk * n_train) for the similarity block, reused
across chunks. The weights are computed as exp((s_j - s_max) / T), i.e. rescaled by the per-query constant
exp(-s_max / T), which leaves the argmax unchanged and cannot overflow for small T.

Ties: when two classes have exactly the same score the lowest class index wins (``torch.argmax`` returns the
first maximum), which is also what scikit-learn's ``weighted_mode`` does. Zero-norm features have cosine
similarity 0 to everything (they are left at zero by the normalisation, as in scikit-learn).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ._validate import as_features, as_labels, check_int, check_positive_float, check_same_dim

__all__ = ["knn_predict", "knn_accuracy"]

# Size of one (chunk x n_train) float32 similarity block. 2**24 elements = 64 MiB: big enough for an
# efficient matmul, small enough that topk works on cache-friendly rows and memory stays low.
_BLOCK_ELEMENTS = 1 << 24
# Votes are cast for several chunks at once, with (block, k) and (block, C) buffers of about this size.
_VOTE_ELEMENTS = 1 << 20
# Candidate pruning before the top-k: columns are split into G = n // L interleaved groups of L = _GROUP.
_GROUP = 16


def _chunk_rows(n_train: int, n_test: int) -> int:
    return max(16, min(n_test, _BLOCK_ELEMENTS // max(n_train, 1)))


def _topk_pruned(sim: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise top-k values (descending) and column indices of ``sim``, with the same values as torch.topk.

    Pruning: split the n columns into G = n // L groups of L (group g = columns g, g + G, g + 2G, ...) and
    take each group's maximum. Every top-k element lies in one of the k groups with the largest maxima: an
    element outside them is beaten by those k group maxima. So the top-k of the k * L elements of those
    groups (plus the n - G * L leftover columns) is the top-k of the row. This reads the row once (a
    vectorised max over L strided slices) instead of sorting it, and sorts only k * L candidates. Among
    exactly equal values the chosen indices may differ from torch.topk's; the values never do.
    """
    b, n = sim.shape
    group = _GROUP
    n_groups = n // group
    if n_groups < 2 * k:  # pruning would not pay: plain top-k
        return torch.topk(sim, k, dim=1)
    body = sim[:, : n_groups * group].unflatten(1, (group, n_groups))  # (b, L, G) view, no copy
    best_groups = torch.topk(body.amax(dim=1), k, dim=1, sorted=False).indices  # (b, k)
    cand = torch.gather(body, 2, best_groups.unsqueeze(1).expand(b, group, k)).view(b, group * k)
    # column of candidate (l, j): l * G + best_groups[j]
    offsets = torch.arange(0, group * n_groups, n_groups, device=sim.device).view(1, group, 1)
    cand_cols = (best_groups.unsqueeze(1) + offsets).view(b, group * k)
    if n > n_groups * group:  # leftover columns are always candidates
        cand = torch.cat([cand, sim[:, n_groups * group :]], dim=1)
        tail_cols = torch.arange(n_groups * group, n, device=sim.device).expand(b, -1)
        cand_cols = torch.cat([cand_cols, tail_cols], dim=1)
    values, pos = torch.topk(cand, k, dim=1)
    return values, cand_cols.gather(1, pos)


def knn_predict(
    train_x: Any,
    train_y: Any,
    test_x: Any,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
) -> torch.Tensor:
    """Predict test labels by similarity-weighted kNN voting (InstDisc / MoCo-demo protocol).

    Args:
        train_x: (n_train, d) train features (tensor or numpy array), finite.
        train_y: (n_train,) integer labels in [0, num_classes).
        test_x: (n_test, d) query features.
        k: number of neighbours, 1 <= k <= n_train.
        temperature: T > 0 in the weight exp(cos / T).
        num_classes: number of classes C, to check the labels against; defaults to ``max(train_y) + 1``. Only
            the classes present in ``train_y`` can be predicted, so memory does not depend on C.

    Returns:
        (n_test,) ``torch.long`` predictions on the CPU. Ties go to the lowest class index.
    """
    tx = as_features(train_x, "train_x")
    dtype = tx.dtype if tx.dtype in (torch.float32, torch.float64) else torch.float32
    tx = tx.to(dtype)
    qx = as_features(test_x, "test_x", dtype=dtype, device=tx.device)
    check_same_dim(tx, qx, "train_x", "test_x")
    n_train = tx.shape[0]
    if num_classes is not None:
        num_classes = check_int(num_classes, "num_classes", low=1)
    ty = as_labels(train_y, "train_y", n=n_train, num_classes=num_classes, device=tx.device)
    k = check_int(k, "k", low=1)
    if k > n_train:
        raise ValueError(f"k: expected k <= n_train = {n_train} (the number of rows of train_x), got k={k}")
    temperature = check_positive_float(temperature, "temperature")
    # votes go to the classes present in train_y only (sorted, so ties still go to the lowest label): the score
    # buffers are (block, classes present), whatever the label values (a label 1e9 must not allocate 1e9 columns)
    classes, ty = torch.unique(ty, sorted=True, return_inverse=True)
    n_classes = int(classes.numel())

    bank = F.normalize(tx, dim=1)  # (n_train, d), one copy of the bank
    bank_t = bank.t()  # a view: BLAS reads the transposed operand without copying
    n_test = qx.shape[0]
    chunk = _chunk_rows(n_train, n_test)
    # Votes are cast per block of several chunks: fewer small ops, and their (block, k) and (block, C)
    # buffers stay within about _VOTE_ELEMENTS elements.
    block = chunk * max(1, _VOTE_ELEMENTS // (chunk * max(k, n_classes)))
    preds = torch.empty(n_test, dtype=torch.long)
    sim_buf = torch.empty(chunk, n_train, dtype=dtype, device=tx.device)
    inv_t = 1.0 / temperature
    with torch.inference_mode():
        for block_start in range(0, n_test, block):
            block_end = min(n_test, block_start + block)
            top_sim = torch.empty(block_end - block_start, k, dtype=dtype, device=tx.device)
            top_idx = torch.empty(block_end - block_start, k, dtype=torch.long, device=tx.device)
            for start in range(block_start, block_end, chunk):
                q = F.normalize(qx[start : min(start + chunk, block_end)], dim=1)
                b = q.shape[0]
                sim = torch.mm(q, bank_t, out=sim_buf[:b])
                rows = slice(start - block_start, start - block_start + b)
                top_sim[rows], top_idx[rows] = _topk_pruned(sim, k)
            # exp((s - s_max) / T): a per-query rescaling of all class scores, so the argmax is unchanged.
            weights = torch.sub(top_sim, top_sim[:, :1]).mul_(inv_t).exp_()
            scores = torch.zeros(block_end - block_start, n_classes, dtype=dtype, device=tx.device)
            scores.scatter_add_(1, ty[top_idx], weights)
            preds[block_start:block_end] = scores.argmax(dim=1).cpu()
    return classes.cpu()[preds]


def knn_accuracy(
    train_x: Any,
    train_y: Any,
    test_x: Any,
    test_y: Any,
    *,
    k: int = 200,
    temperature: float = 0.1,
) -> float:
    """Top-1 accuracy (a fraction in [0, 1]) of :func:`knn_predict` against ``test_y``.

    The number of classes is ``max(max(train_y), max(test_y)) + 1``; a test class that never occurs in the
    train set can never be predicted and counts as an error.
    """
    n_test = as_features(test_x, "test_x").shape[0]
    ty = as_labels(train_y, "train_y")
    qy = as_labels(test_y, "test_y", n=n_test)
    n_classes = max(int(ty.max()), int(qy.max())) + 1
    pred = knn_predict(train_x, ty, test_x, k=k, temperature=temperature, num_classes=n_classes)
    return float((pred == qy.cpu()).double().mean())
