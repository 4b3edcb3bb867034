"""Instance discrimination against a memory bank: NPID's NCE and non-parametric softmax (PIRL's NCE too)."""

from __future__ import annotations

import math
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import (
    NonFiniteEmbeddingError,
    check_embeddings,
    check_real,
    check_temperature,
    normalize,
    value_checks_deferred,
)


def _check_rows(x: object, name: str, z: Tensor, shape: tuple[int, ...]) -> None:
    """``x`` is a finite float tensor on ``z``'s device whose shape matches ``shape`` (-1: any size >= 1)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != len(shape) or any(s != -1 and a != s for a, s in zip(x.shape, shape, strict=True)) or 0 in x.shape:
        want = ", ".join("K" if s == -1 else str(s) for s in shape)
        raise ValueError(f"{name} must have shape ({want}) with K >= 1, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a floating-point dtype, got {x.dtype}")
    if x.device != z.device:
        raise ValueError(f"{name} must be on the device of z ({z.device}), got {x.device}")
    if not value_checks_deferred() and not bool(torch.isfinite(x).all()):
        raise NonFiniteEmbeddingError(f"{name} contains NaN or infinite values")


def _check_num_items(num_items: object) -> int:
    if isinstance(num_items, bool) or not isinstance(num_items, Integral) or num_items < 1:
        raise ValueError(f"num_items must be a positive int (the size n of the memory bank), got {num_items!r}")
    return int(num_items)


def _scores(z: Tensor, positive: Tensor, negatives: Tensor) -> tuple[Tensor, Tensor]:
    """Cosines of each unit anchor with its positive, (N,), and its negatives, (N, m); float32 or wider."""
    dtype = torch.promote_types(z.dtype, torch.float32)
    zn = normalize(z.to(dtype))
    pos = (zn * normalize(positive.detach().to(dtype))).sum(dim=1)
    neg = negatives.detach().to(dtype)
    if neg.dim() == 2:  # shared by every anchor
        return pos, zn @ normalize(neg).T
    return pos, torch.einsum("nd,nmd->nm", zn, F.normalize(neg, dim=2))


def _check_bank_inputs(z: Tensor, positive: Tensor, negatives: Tensor) -> None:
    check_embeddings(z, "z")
    _check_rows(positive, "positive", z, tuple(z.shape))
    if isinstance(negatives, Tensor) and negatives.dim() == 3:
        _check_rows(negatives, "negatives", z, (z.shape[0], -1, z.shape[1]))
    else:
        _check_rows(negatives, "negatives", z, (-1, z.shape[1]))


def instance_nce(z: Tensor, positive: Tensor, negatives: Tensor, *, num_items: int, normalizer: float,
                 temperature: float = 0.07) -> Tensor:
    r"""NCE of NPID (Wu, Xiong, Yu, Lin, CVPR 2018, "Unsupervised Feature Learning via Non-Parametric Instance
    Discrimination", arXiv 1805.01978, eq. 5-7), also PIRL's L_NCE (Misra, van der Maaten, CVPR 2020).

    Each anchor f_i (row of ``z``) is scored against its own memory-bank entry v_i (``positive``) and m noise
    entries v_k drawn uniformly from the n-entry bank (``negatives``). With the model distribution
    P(k | f) = exp(v_k.f / tau) / Z, the uniform noise P_n = 1/n and h(k, f) = P(k|f) / (P(k|f) + m/n)::

        L = -1/N * sum_i [ log h(i, f_i) + sum_{k=1}^{m} log(1 - h(k_ik, f_i)) ]

    evaluated stably as log h = s - logaddexp(s, log(m/n)) with s = v.f/tau - log Z (the reference code adds
    float32 eps inside the ratios instead). Rows are L2-normalised inside (a no-op for a unit bank); the bank
    entries are targets, detached. Evaluated in float32 or wider, outside autocast.

    Args:
        z: (N, D) anchor features (gradients flow).
        positive: (N, D) the memory-bank entry of each anchor's own item.
        negatives: (m, D) noise entries shared by every anchor, or (N, m, D) one set per anchor.
        num_items: n, the number of bank entries (training items) the noise is drawn from.
        normalizer: Z > 0, the constant of P(k|f) (NPID estimates it once, see ``instance_nce_normalizer``).
        temperature: tau > 0 (default 0.07, the paper's).

    Returns:
        Scalar tensor: the mean over the N anchors.
    """
    _check_bank_inputs(z, positive, negatives)
    n = _check_num_items(num_items)
    log_z = math.log(check_real(normalizer, "normalizer", low=0.0, low_open=True))
    t = check_temperature(temperature)
    with torch.autocast(z.device.type, enabled=False):
        pos, neg = _scores(z, positive, negatives)
        log_noise = math.log(neg.shape[1] / n)  # log(m P_n)
        s_pos, s_neg = pos / t - log_z, neg / t - log_z
        log_h = s_pos - torch.logaddexp(s_pos, torch.full_like(s_pos, log_noise))
        log_not_h = log_noise - torch.logaddexp(s_neg, torch.full_like(s_neg, log_noise))
        return -(log_h + log_not_h.sum(dim=1)).mean()


@torch.no_grad()
def instance_nce_normalizer(z: Tensor, positive: Tensor, negatives: Tensor, *, num_items: int,
                            temperature: float = 0.07) -> Tensor:
    r"""NPID's Monte-Carlo estimate of the normalising constant, Z ~ n * mean exp(v.f / tau), the mean taken over
    the positive and noise scores of every anchor (the N x (1 + m) entries, as lemniscate's and VISSL's code).
    Arguments as ``instance_nce``; returns a detached scalar tensor."""
    _check_bank_inputs(z, positive, negatives)
    n = _check_num_items(num_items)
    t = check_temperature(temperature)
    with torch.autocast(z.device.type, enabled=False):
        pos, neg = _scores(z, positive, negatives)
        total = torch.exp(pos / t).sum() + torch.exp(neg / t).sum()
        return n * total / (pos.numel() + neg.numel())


def instance_softmax(z: Tensor, bank: Tensor, targets: Tensor, temperature: float = 0.07) -> Tensor:
    r"""NPID's non-parametric softmax (eq. 2): each anchor f_i against the whole memory bank {v_j}_{j=1..n}::

        P(i | f) = exp(v_i.f / tau) / sum_j exp(v_j.f / tau),      L = -1/N * sum_i log P(t_i | f_i)

    with t_i the item index of anchor i (its own bank entry is the positive). Rows are L2-normalised inside;
    the bank is detached. Evaluated in float32 or wider, outside autocast.

    Args:
        z: (N, D) anchor features.
        bank: (n, D) memory bank, n >= 2.
        targets: (N,) integer item indices in [0, n).
        temperature: tau > 0 (default 0.07).
    """
    check_embeddings(z, "z")
    _check_rows(bank, "bank", z, (-1, z.shape[1]))
    if bank.shape[0] < 2:
        raise ValueError(f"bank needs at least 2 entries, got {bank.shape[0]}")
    if not isinstance(targets, Tensor) or targets.shape != (z.shape[0],) or targets.is_floating_point() \
            or targets.dtype == torch.bool:
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"targets must be an integer tensor of shape ({z.shape[0]},), got {shape}")
    if targets.device != z.device:
        raise ValueError(f"targets must be on the device of z ({z.device}), got {targets.device}")
    if not value_checks_deferred() and bool(((targets < 0) | (targets >= bank.shape[0])).any()):
        raise ValueError(f"targets must lie in [0, {bank.shape[0]}) (the bank's rows)")
    t = check_temperature(temperature)
    dtype = torch.promote_types(z.dtype, torch.float32)
    with torch.autocast(z.device.type, enabled=False):
        logits = normalize(z.to(dtype)) @ normalize(bank.detach().to(dtype)).T / t
        return F.cross_entropy(logits, targets.long())
