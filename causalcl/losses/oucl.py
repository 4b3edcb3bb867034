"""MetAug's optimization-driven unified contrastive loss (OUCL) and margin-injected regulariser R_σ.

Li, Qiang, Zheng, Su, Xiong, ICML 2022, "MetAug: Contrastive Learning via Meta Feature Augmentation"
(arXiv 2203.05119). Scores are the official code's shifted cosine d = (cos + 1)/2 in [0, 1].

* ``pair_scores(z1, z2)``: per sample i of a view pair, its positive d(z1_i, z2_i) (N, 1) and its
  2(N - 1) cross-view negatives d(z1_i, z2_k), d(z1_k, z2_i), k != i (N, 2N - 2).
* ``oucl_from_scores(pos, neg)``: the pairwise soft-plus form over any pooled score sets.
* ``oucl(z1, z2)``: the two together.
* ``margin_injection(pos, neg, pos_aug, neg_aug)``: R_σ of the seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import check_pair, check_real, normalize, value_checks_deferred


def _check_scores(pos: object, neg: object, names: tuple[str, str] = ("pos", "neg")) -> None:
    for x, name in ((pos, names[0]), (neg, names[1])):
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[0] < 1 or x.shape[1] < 1:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a tensor of shape (anchors, count) with both >= 1, got {shape}")
        if not x.is_floating_point():
            raise ValueError(f"{name} must have a floating-point dtype, got {x.dtype}")
        if not value_checks_deferred() and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    if pos.shape[0] != neg.shape[0]:  # type: ignore[union-attr]
        raise ValueError(f"{names[1]} must have as many anchors (rows) as {names[0]}, "
                         f"got {neg.shape[0]} vs {pos.shape[0]}")  # type: ignore[union-attr]


def pair_scores(z1: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
    """Shifted-cosine scores d = (cos + 1)/2 of each sample's positive and cross-view negatives.

    Sample i pools both directed view pairs (1→2 and 2→1), as the official code pools all directed
    pairs of its views: the positive d(z1_i, z2_i) (one value, as the cosine is symmetric) and the
    negatives d(z1_i, z2_k) and d(z1_k, z2_i) for every k != i (same-view pairs are not contrasted,
    as in CMC). Rows are L2-normalised inside.

    Returns:
        ``pos`` (N, 1) and ``neg`` (N, 2N - 2), negatives of row i in increasing k, row block first.
    """
    check_pair(z1, z2)
    n = z1.shape[0]
    d = (normalize(z1) @ normalize(z2).T + 1.0) / 2.0  # d[i, k] = d(z1_i, z2_k)
    j = torch.arange(n - 1, device=d.device).unsqueeze(0)
    others = j + (j >= torch.arange(n, device=d.device).unsqueeze(1)).long()  # row i: every k != i
    neg = torch.cat([d.gather(1, others), d.T.gather(1, others)], dim=1)
    return d.diagonal().unsqueeze(1), neg


def oucl_from_scores(
    pos: Tensor,
    neg: Tensor,
    *,
    gamma: float = 16.0,
    margins: bool = False,
    adaptive: bool = False,
    m: float = 0.25,
    beta: float = 1.0,
) -> Tensor:
    r"""OUCL over pooled score sets: for anchor a with positives s_p (P) and negatives s_n (Q)::

        L_a = (1/γ) log(1 + Σ_p Σ_n exp(γ[a_n (s_n − Δ_n) − a_p (s_p − Δ_p)]))
            = (1/γ) softplus(LSE_n[γ a_n (s_n − Δ_n)] + LSE_p[−γ a_p (s_p − Δ_p)]),   L = mean_a L_a

    the seed's :math:`\frac1\beta\log\{1+\sum\sum\exp[\beta(\Gamma^-(d^--\gamma^-)-\Gamma^+(d^+-\gamma^+))]\}`
    with the scale β → ``gamma``, the weights Γ± → a_n, a_p and the margins γ± → Δ_n, Δ_p.

    * ``margins``: Δ_p = 1 − m, Δ_n = m (Circle-loss margins); off: Δ = 0.
    * ``adaptive``: a_p = [(1 − s_p)/β + m]_+ and a_n = [s_n/β + m]_+ (β = ``beta``), detached as in
      Circle loss: a similarity far from its optimum (1 + m for positives, −m for negatives) gets a
      larger weight; off: a = 1. The official code computes these weights and then overwrites them
      with 1, so there ``alpha_enable`` does nothing; here they are applied.

    Defaults (official code): γ = 16, m = 0.25, β = 1, margins and adaptive weights off. With them off
    and the shifted cosine d = (cos+1)/2 this is (1/γ)·log(1 + Σ exp((cos_n − cos_p)/0.125)). The
    official code scales by 16/γ instead of 1/γ (×16 at the default); this is the paper's 1/γ.

    Args:
        pos: (A, P) positive scores per anchor; neg: (A, Q) negative scores per anchor.

    Returns:
        Scalar tensor: mean of L_a over the A anchors.

    Raises:
        ValueError: bad shapes/dtypes, non-finite scores, γ <= 0, β <= 0 or m < 0.
    """
    _check_scores(pos, neg)
    g = check_real(gamma, "gamma", low=0.0, low_open=True)
    mm = check_real(m, "m", low=0.0)
    b = check_real(beta, "beta", low=0.0, low_open=True)
    delta_p, delta_n = (1.0 - mm, mm) if margins else (0.0, 0.0)
    if adaptive:
        a_p = ((1.0 - pos.detach()) / b + mm).clamp_min(0.0)
        a_n = (neg.detach() / b + mm).clamp_min(0.0)
    else:
        a_p = a_n = 1.0
    logit_p = -g * a_p * (pos - delta_p)
    logit_n = g * a_n * (neg - delta_n)
    return (F.softplus(torch.logsumexp(logit_n, dim=1) + torch.logsumexp(logit_p, dim=1)) / g).mean()


def oucl(
    z1: Tensor,
    z2: Tensor,
    *,
    gamma: float = 16.0,
    margins: bool = False,
    adaptive: bool = False,
    m: float = 0.25,
    beta: float = 1.0,
) -> Tensor:
    """OUCL of MetAug on two views: ``oucl_from_scores(*pair_scores(z1, z2), ...)``.

    Each of the N samples is one anchor with 1 positive and 2N − 2 cross-view negatives in shifted
    cosine d = (cos + 1)/2 (see ``pair_scores``); options as in ``oucl_from_scores`` (defaults γ = 16,
    margins and adaptive weights off, m = 0.25, β = 1). Returns the mean over the N samples.
    """
    pos, neg = pair_scores(z1, z2)
    return oucl_from_scores(pos, neg, gamma=gamma, margins=margins, adaptive=adaptive, m=m, beta=beta)


def margin_injection(pos: Tensor, neg: Tensor, pos_aug: Tensor, neg_aug: Tensor, *, pos_weight: float = 1.0) -> Tensor:
    r"""MetAug's margin-injected regulariser R_σ (seed formula), per anchor a::

        σ⁺_a = min[min_p d(z⁺), max_n d(z⁻)],   σ⁻_a = max[min_p d(z⁺), max_n d(z⁻)]   (original scores)
        R = w⁺·mean_{a,p̂}[d(ẑ⁺) − σ⁺_a]_+ + mean_{a,n̂}[σ⁻_a − d(ẑ⁻)]_+                 (augmented scores)

    It keeps augmented features hard (anti-collapsed): augmented positives no more similar than
    σ⁺, augmented negatives no less similar than σ⁻. σ is not detached (as in the official code).
    The seed weighs both hinges equally (``pos_weight`` w⁺ = 1, the default); the official code
    multiplies the positive hinge by 1e-4.

    Args:
        pos, neg: (A, P), (A, Q) original scores of each anchor (give σ±).
        pos_aug, neg_aug: (A, P̂), (A, Q̂) scores of the augmented positives and negatives.
        pos_weight: w⁺ >= 0.

    Returns:
        Scalar tensor R_σ.

    Raises:
        ValueError: bad shapes/dtypes, non-finite scores, mismatched anchor counts, w⁺ < 0.
    """
    _check_scores(pos, neg)
    _check_scores(pos_aug, neg_aug, ("pos_aug", "neg_aug"))
    if pos_aug.shape[0] != pos.shape[0]:
        raise ValueError(f"pos_aug must have as many anchors as pos, got {pos_aug.shape[0]} vs {pos.shape[0]}")
    w = check_real(pos_weight, "pos_weight", low=0.0)
    hardest_pos = pos.min(dim=1, keepdim=True).values
    hardest_neg = neg.max(dim=1, keepdim=True).values
    sigma_pos = torch.minimum(hardest_pos, hardest_neg)
    sigma_neg = torch.maximum(hardest_pos, hardest_neg)
    return w * (pos_aug - sigma_pos).clamp_min(0.0).mean() + (sigma_neg - neg_aug).clamp_min(0.0).mean()
