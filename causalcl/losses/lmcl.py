"""Large-margin contrastive learning (LMCL): a contrastive loss plus the distance polarization regularizer."""

from __future__ import annotations

from torch import Tensor

from ._common import check_pair, check_real, check_tau_plus, check_temperature, self_mask, similarity_matrix
from .debiased import debiased_info_nce
from .infonce import info_nce


def _check_deltas(delta_plus: float, delta_minus: float) -> tuple[float, float]:
    lo = check_real(delta_plus, "delta_plus", low=0.0, high=1.0, high_open=True)
    hi = check_real(delta_minus, "delta_minus", low=0.0, high=1.0, low_open=True)
    if not lo < hi:
        raise ValueError(f"delta_minus must be > delta_plus, got delta_plus={lo}, delta_minus={hi}")
    return lo, hi


def distance_polarization(z1: Tensor, z2: Tensor, delta_plus: float = 0.25, delta_minus: float = 0.5) -> Tensor:
    r"""Distance polarization regularizer of LMCL (Chen, Niu, Gong, Li, Yang, Sugiyama, ICML 2021,
    "Large-Margin Contrastive Learning with Distance Polarization Regularizer").

    The 2N embeddings ``cat([z1, z2])`` are L2-normalised; their pairwise distances are scaled to [0, 1],
    ``d_ik = ||u_i - u_k||^2 / 4 = (1 - cos(u_i, u_k)) / 2``. A polarized distance matrix has every entry in
    ``[0, delta_plus]`` (intra-cluster pairs) or ``[delta_minus, 1]`` (inter-cluster pairs), with the margin
    ``delta_minus - delta_plus`` between them. The regularizer is the squared distance of each entry to that
    set, in units of the half-margin h = (delta_minus - delta_plus) / 2, averaged over the 2N(2N - 1) ordered
    pairs i != k::

        R = 1/(2N(2N-1)) sum_{i != k} ( min([d_ik - delta_plus]_+, [delta_minus - d_ik]_+) / h )^2

    so a pair inside the gap is moved to the nearer boundary (pulled together if closer to ``delta_plus``,
    pushed apart if closer to ``delta_minus``) and pairs already polarized contribute nothing. R lies in
    [0, 1]: 1 when every pair sits in the middle of the gap, whatever the bounds. Label-free: positive pairs
    are pairs like any other.

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2.
        delta_plus: upper bound of intra-cluster distances, in [0, 1) (default 0.25: cosine >= 0.5).
        delta_minus: lower bound of inter-cluster distances, in (delta_plus, 1] (default 0.5: cosine <= 0).

    Returns:
        Scalar tensor in [0, 1].

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs, or bounds outside 0 <= delta_plus < delta_minus <= 1.
    """
    check_pair(z1, z2)
    lo, hi = _check_deltas(delta_plus, delta_minus)
    n = z1.shape[0]
    d = (1.0 - similarity_matrix(z1, z2)) / 2.0
    gap = ((d - lo).clamp_min(0.0)).minimum((hi - d).clamp_min(0.0)) * (2.0 / (hi - lo))
    gap = gap.masked_fill(self_mask(n, d.device), 0.0)
    return gap.square().sum() / (2 * n * (2 * n - 1))


def lmcl_loss(z1: Tensor, z2: Tensor, temperature: float = 0.5, tau_plus: float = 0.1, delta_plus: float = 0.25,
              delta_minus: float = 0.5, weight: float = 1.5) -> Tensor:
    r"""LMCL objective (Chen, Niu, Gong, Li, Yang, Sugiyama, ICML 2021): the debiased contrastive loss plus
    ``weight`` times the distance polarization regularizer::

        L = L_debiased(z1, z2; tau, tau_plus) + lambda * R(z1, z2; delta_plus, delta_minus)

    ``L_debiased`` is ``debiased_info_nce`` (Chuang et al.'s unbiased objective that LMCL extends; ``tau_plus
    = 0`` gives SimCLR's ``info_nce``), R is ``distance_polarization``. Both are means over the 2N anchors /
    ordered pairs of ``cat([z1, z2])``, rows L2-normalised inside.

    Args:
        z1, z2: (N, D) projections of the two views, N >= 2.
        temperature: tau > 0 of the contrastive term (default 0.5, as SimCLR and DCL).
        tau_plus: class prior tau+ in [0, 1) of the debiased term (default 0.1; 0 = plain InfoNCE).
        delta_plus, delta_minus: the polarization bounds, 0 <= delta_plus < delta_minus <= 1.
        weight: lambda >= 0, the weight of R (default 1.5, measured: see ``causalcl.methods.lmcl``).

    Returns:
        Scalar tensor.

    Raises:
        ValueError: bad shapes/dtypes, non-finite inputs or any option out of range (named).
    """
    t = check_temperature(temperature)
    tp = check_tau_plus(tau_plus)
    lam = check_real(weight, "weight", low=0.0)
    contrastive = info_nce(z1, z2, t) if tp == 0.0 else debiased_info_nce(z1, z2, t, tp)
    return contrastive + lam * distance_polarization(z1, z2, delta_plus, delta_minus)
