"""ICL-MSR's backdoor-adjusted contrastive loss L_msr and the uniformity L_uni of its strata.

Qiang, Li, Zheng, Su, Xiong, "Interventional Contrastive Learning with Meta Semantic Regularizer",
ICML 2022, arXiv 2206.14702 (no official code; the formulas follow DESIGN §5.3 and the seed slides).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import (
    NonFiniteEmbeddingError,
    check_embeddings,
    check_pair,
    check_real,
    check_temperature,
    negative_index,
    normalize,
    value_checks_deferred,
)

#: which embeddings of the other samples are negatives in P(Y | X, a_t)
MSR_NEGATIVES = ("both_views", "other_view")


def _check_strata(strata: Tensor, z: Tensor) -> None:
    if not isinstance(strata, Tensor) or strata.dim() != 2 or strata.shape[0] < 1:
        got = tuple(strata.shape) if isinstance(strata, Tensor) else type(strata).__name__
        raise ValueError(f"strata must be a tensor of shape (n, D) with n >= 1, got {got}")
    if strata.shape[1] != z.shape[1]:
        raise ValueError(f"strata must have D = {z.shape[1]} columns like z1, got shape {tuple(strata.shape)}")
    if strata.dtype != z.dtype or strata.device != z.device:
        raise ValueError(f"strata must match z1 in dtype and device, got {strata.dtype} on {strata.device} "
                         f"vs {z.dtype} on {z.device}")
    if not value_checks_deferred() and not bool(torch.isfinite(strata).all()):
        raise NonFiniteEmbeddingError("strata contains NaN or infinite values")


def msr_log_conditionals(z1: Tensor, z2: Tensor, strata: Tensor, temperature: float = 0.5,
                         negatives: str = "both_views") -> Tensor:
    r"""log P(Y | X, a_t) for every anchor and stratum, shape (2N, n).

    Anchor ``u`` = z_i^j (row i of view j, anchors ordered ``cat([z1, z2])``), its positive z_i^{3−j}
    reweighted element-wise by the stratum a_t, and the negatives z_k^l, k ≠ i::

        log P(Y | X, a_t) = s_t/τ − log( exp(s_t/τ) + Σ_{k≠i} Σ_l exp(sim(z_i^j, z_k^l)/τ) ),
        s_t = sim(z_i^j, a_t ⊙ z_i^{3−j}),

    sim the cosine similarity. ``negatives="both_views"`` (default, DESIGN §5.3) sums l over both
    views (2N − 2 negatives, as SimCLR); ``"other_view"`` keeps only l = 3 − j (N − 1 negatives, the
    literal "l ≠ j" of the seed slide). Vectorised over strata: s_t = ((û ⊙ p) · a_t) / ‖a_t ⊙ p‖ with
    û the unit anchor and p the positive, so no (2N, n, D) tensor is built.
    """
    check_pair(z1, z2)
    _check_strata(strata, z1)
    t = check_temperature(temperature)
    if negatives not in MSR_NEGATIVES:
        raise ValueError(f"negatives must be one of {list(MSR_NEGATIVES)}, got {negatives!r}")
    n = z1.shape[0]
    u = torch.cat([normalize(z1), normalize(z2)])  # unit anchors (2N, D)
    p = torch.cat([z2, z1])  # each anchor's positive, un-normalised (2N, D)
    dot = (u * p) @ strata.T  # û · (a_t ⊙ p), (2N, n)
    norm = ((p * p) @ (strata * strata).T).clamp_min(0.0).sqrt().clamp_min(1e-12)  # ‖a_t ⊙ p‖
    pos = dot / norm / t
    sim = u @ u.T / t
    if negatives == "both_views":
        neg = sim.gather(1, negative_index(n, sim.device))  # (2N, 2N − 2)
    else:
        cross = torch.cat([sim[:n, n:], sim[n:, :n]])  # anchor vs the other view, (2N, N)
        off = ~torch.eye(n, dtype=torch.bool, device=sim.device)
        neg = cross[off.repeat(2, 1)].view(2 * n, n - 1)
    neg_lse = torch.logsumexp(neg, dim=1, keepdim=True)  # (2N, 1)
    return pos - torch.logaddexp(pos, neg_lse)


def msr_loss(z1: Tensor, z2: Tensor, strata: Tensor, temperature: float = 0.5, negatives: str = "both_views",
             adjustment=None) -> Tensor:
    r"""ICL-MSR's meta-semantic-regularizer loss (Qiang et al., ICML 2022, arXiv 2206.14702).

    With P(Y | X, a_t) from :func:`msr_log_conditionals` and the backdoor adjustment over the n strata
    A_s = {a_t} (uniform prior P(a_t) = 1/n unless ``adjustment`` carries another one)::

        P(Y | do(X)) = Σ_t P(Y | X, a_t) P(a_t)
        L_msr = 1/(2N) Σ_i Σ_j −log P(Y | do(X_i^{3−j}))

    i.e. the log of the average over strata (as on the seed slide), computed in log space
    (log-sum-exp). The paper writes Σ_i Σ_j; like every loss of this library we return the mean over
    the 2N anchors (the sum is 2N times it).

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2 (L2-normalised inside).
        strata: (n, D) stratum weight vectors a_t (ICL-MSR's A_s), applied element-wise to the positive.
        temperature: τ > 0 (default 0.5, SimCLR's).
        negatives: ``"both_views"`` (default) or ``"other_view"``, see :func:`msr_log_conditionals`.
        adjustment: a ``causalcl.causal.BackdoorAdjustment`` (default: uniform prior over the strata).

    Returns:
        Scalar tensor, the mean of −log P(Y | do(X)) over the 2N anchors.

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, τ <= 0, unknown ``negatives``.
    """
    log_cond = msr_log_conditionals(z1, z2, strata, temperature, negatives)
    if adjustment is None:
        from ..causal import BackdoorAdjustment

        adjustment = BackdoorAdjustment()
    return -adjustment.log_prob(log_cond).mean()


def uniformity_of_strata(strata: Tensor, t: float = 2.0, include_diagonal: bool = True) -> Tensor:
    r"""ICL-MSR's uniformity of the strata (Qiang et al., ICML 2022, arXiv 2206.14702)::

        L_uni = log Σ_{a_i, a_j ∈ A_s} G_t(a_i, a_j),   G_t(a_i, a_j) = exp(2t · a_iᵀ a_j − 2t),

    on unit-norm a_t (rows L2-normalised inside; for unit vectors 2t·a_iᵀa_j − 2t = −t‖a_i − a_j‖², the
    Gaussian potential of Wang & Isola). The sum runs over all ordered pairs, i = j included
    (``include_diagonal=True``, the literal formula; each diagonal term is exp(0) = 1); set it to
    False for Σ_{i≠j}. A log of a sum, not of a mean: it differs from Wang & Isola's log-mean by the
    constant log(#pairs), which changes no gradient.

    Args:
        strata: (n, D) stratum vectors, n >= 1 (n >= 2 without the diagonal).
        t: t > 0 (default 2, Wang & Isola's).
        include_diagonal: keep the i = j terms.

    Returns:
        Scalar tensor.
    """
    if isinstance(strata, Tensor) and strata.dim() == 2 and strata.shape[0] == 1 and include_diagonal:
        strata_checked = strata.expand(2, -1)  # one stratum is valid here (a single diagonal term)
    else:
        strata_checked = strata
    check_embeddings(strata_checked, "strata")
    tt = check_real(t, "t", low=0.0, low_open=True)
    x = normalize(strata)
    logits = 2.0 * tt * (x @ x.T) - 2.0 * tt
    if not include_diagonal:
        logits = logits.masked_fill(torch.eye(x.shape[0], dtype=torch.bool, device=x.device), float("-inf"))
    return torch.logsumexp(logits.flatten(), dim=0)


__all__ = ["MSR_NEGATIVES", "msr_log_conditionals", "msr_loss", "uniformity_of_strata"]
