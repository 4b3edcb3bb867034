"""TaCo's objective: contrastive losses summed over the (original, temporally augmented) pairs plus the
pretext cross-entropies (Bai, Fan, Misra, Venkatesh, Lu, Zhou, Yu, Chandra, Yuille; "Can Temporal
Information Help with Contrastive Self-Supervised Learning?", arXiv 2011.13046, 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import check_embeddings, check_real
from .infonce import info_nce


def _check_pretext(logits: Sequence[Tensor], targets: Sequence[Tensor], n: int) -> None:
    if not isinstance(logits, Sequence) or not isinstance(targets, Sequence) or len(logits) != len(targets):
        raise ValueError("pretext_logits and pretext_targets must be sequences of the same length (one per task), "
                         f"got {type(logits).__name__} and {type(targets).__name__}")
    for m, (lg, tg) in enumerate(zip(logits, targets, strict=True)):
        check_embeddings(lg, f"pretext_logits[{m}]")
        if lg.shape[0] != n:
            raise ValueError(f"pretext_logits[{m}] must have N = {n} rows (one per sample), got {tuple(lg.shape)}")
        if not isinstance(tg, Tensor) or tg.shape != (n,) or tg.is_floating_point() or tg.dtype == torch.bool:
            shape = tuple(tg.shape) if isinstance(tg, Tensor) else type(tg).__name__
            raise ValueError(f"pretext_targets[{m}] must be an integer tensor of shape ({n},), got {shape}")
        if tg.numel() and (int(tg.min()) < 0 or int(tg.max()) >= lg.shape[1]):
            raise ValueError(f"pretext_targets[{m}] must lie in [0, {lg.shape[1]}) (the classes of pretext_logits"
                             f"[{m}]), got [{int(tg.min())}, {int(tg.max())}]")


def taco_terms(
    anchors: Sequence[Tensor],
    positives: Sequence[Tensor],
    pretext_logits: Sequence[Tensor] = (),
    pretext_targets: Sequence[Tensor] = (),
    temperature: float = 0.5,
) -> tuple[Tensor, Tensor]:
    r"""The two terms of TaCo's loss: ``(L_contrast, L_pretext)``.

    For each temporal augmentation m = 1..M with its own projection head g_m, the original clip's
    projection ``anchors[m] = g_m(f(x))`` and the augmented clip's ``positives[m] = g_m(f(a_m(x)))`` form
    positive pairs row by row; every other embedding of the pair is a negative (SimCLR's NT-Xent,
    :func:`causalcl.losses.info_nce`, 2N - 2 negatives, mean over the 2N anchors). The pretext head of
    augmentation m predicts its parameter class ``pretext_targets[m]`` from ``pretext_logits[m]``::

        L_contrast = sum_m NT-Xent(anchors[m], positives[m]; tau)
        L_pretext  = sum_m 1/N sum_i -log softmax(pretext_logits[m][i])[pretext_targets[m][i]]

    Args:
        anchors, positives: M >= 1 pairs of (N, D_m) projections.
        pretext_logits: (N, C_m) logits of each pretext task (may be empty).
        pretext_targets: (N,) integer classes in [0, C_m).
        temperature: tau > 0 of NT-Xent (default 0.5).

    Returns:
        Two scalar tensors (the pretext term is 0 when there is no task).

    Raises:
        ValueError: mismatched lists, bad shapes/dtypes, non-finite inputs, targets outside [0, C_m), tau <= 0.
    """
    if not isinstance(anchors, Sequence) or not isinstance(positives, Sequence) or not anchors \
            or len(anchors) != len(positives):
        raise ValueError("anchors and positives must be non-empty sequences of the same length (one pair per "
                         f"augmentation), got {type(anchors).__name__} and {type(positives).__name__}")
    check_embeddings(anchors[0], "anchors[0]")
    n = anchors[0].shape[0]
    for m, (a, p) in enumerate(zip(anchors, positives, strict=True)):
        check_embeddings(a, f"anchors[{m}]")
        check_embeddings(p, f"positives[{m}]")
        if a.shape[0] != n or p.shape != a.shape:
            raise ValueError(f"positives[{m}] must have the shape of anchors[{m}], with N = {n} rows; got "
                             f"{tuple(p.shape)} and {tuple(a.shape)}")
    _check_pretext(pretext_logits, pretext_targets, n)
    contrast = sum(info_nce(a, p, temperature=temperature) for a, p in zip(anchors, positives, strict=True))
    pretext = sum((F.cross_entropy(lg, tg.long()) for lg, tg in zip(pretext_logits, pretext_targets, strict=True)),
                  anchors[0].new_zeros(()))
    return contrast, pretext


def taco_loss(
    anchors: Sequence[Tensor],
    positives: Sequence[Tensor],
    pretext_logits: Sequence[Tensor] = (),
    pretext_targets: Sequence[Tensor] = (),
    temperature: float = 0.5,
    pretext_weight: float = 1.0,
) -> Tensor:
    r"""TaCo's loss ``L = L_contrast + lambda * L_pretext`` (see :func:`taco_terms` for the two terms):
    NT-Xent summed over the M (original, temporally augmented) pairs, each through its own head, plus the
    summed cross-entropies of the pretext heads that predict each augmentation.

    Args:
        anchors, positives, pretext_logits, pretext_targets, temperature: as in :func:`taco_terms`.
        pretext_weight: lambda >= 0 (default 1: the two terms added, as in the paper).

    Returns:
        Scalar tensor.

    Raises:
        ValueError: as :func:`taco_terms`, or pretext_weight < 0.
    """
    lam = check_real(pretext_weight, "pretext_weight", low=0.0)
    contrast, pretext = taco_terms(anchors, positives, pretext_logits, pretext_targets, temperature)
    return contrast + lam * pretext
