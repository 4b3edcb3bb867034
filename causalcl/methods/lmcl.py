"""LMCL: large-margin contrastive learning with a distance polarization regularizer (Chen, Niu, Gong, Li,
Yang, Sugiyama, ICML 2021, PMLR 139:1673–1683; "LMCL (Chen et al., 2021a)" in ICL-MSR's table, and the
base of its "ICL-MSR(LMCL + MSR)" row).

SimCLR's pipeline, z = g(f(x)) for two augmented views, with the loss (``causalcl.losses.lmcl_loss``)::

    d_ik = (1 − cos(z_i, z_k)) / 2 ∈ [0, 1]                           over the 2N embeddings
    R    = mean_{i≠k} (min([d_ik − δ⁺]_+, [δ⁻ − d_ik]_+) / h)²,  h = (δ⁻ − δ⁺)/2   (``distance_polarization``)
    L    = L_debiased(z¹, z²; τ, τ⁺) + λ·R

The contrastive term is the debiased (positive-unlabelled) objective of Chuang et al. that the paper
starts from (``tau_plus=0``: SimCLR's NT-Xent). R is the squared distance of the pairwise-distance matrix
to the polarized set {d ∈ [0, δ⁺] ∪ [δ⁻, 1]}: pairs in the gap are moved to the nearer side, so close
pairs (judged intra-cluster) are pulled together instead of being pushed apart like every other negative,
and a margin δ⁻ − δ⁺ opens between intra- and inter-cluster distances.

Our specification (the paper's text was not at hand; its abstract and ICL-MSR's citation fix the idea, the
exact form is ours): distances of L2-normalised projections scaled to [0, 1]; R averaged over the
2N(2N − 1) ordered pairs and measured in half-margins h, so R ∈ [0, 1] whatever δ⁺, δ⁻; positive pairs are
pairs like any other. Logged: ``contrastive``,
``polarization`` (R) and ``gap_fraction``, the share of pairs inside (δ⁺, δ⁻) — the quantity R acts on.

Usable as ICL-MSR's base (``--method icl_msr --set method.base=lmcl``): it returns ``"embeddings"`` [z¹, z²]
made by ``projector(backbone(cat(views)))`` and has the ``temperature`` that L_msr reads.

Defaults: τ = 0.5 and τ⁺ = 0.1 (SimCLR's CIFAR τ; Chuang et al.'s τ⁺), δ⁺ = 0.25 (cos ≥ 0.5) and δ⁻ = 0.5
(cos ≤ 0): intra-cluster pairs at least at cos 0.5, inter-cluster pairs at most orthogonal (the paper's values
were not at hand). λ = 1.5, measured on ``shapes`` (convnet_small, batch 128, AdamW 2e-3, the same seed and
batches in every run; gap_fraction / contrastive): λ = 0 → 0.33 / 4.18 at step 100 and 0.35 / 4.14 at step
150; λ = 0.16 → 0.34 / 4.17 and 0.34 / 4.12, no effect; λ = 1.56 → 0.29 / 4.23 at step 100 (0.28–0.29 at steps
25–100, against 0.31–0.33 without R): the regularizer visibly polarizes the distances, at a 1.5 % higher
contrastive loss. Projector feature_dim → 512 → 128 (this package's SimCLR).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..distributed import gather
from ..losses import debiased_info_nce, distance_polarization, info_nce
from ..losses._common import check_real, check_tau_plus, check_temperature, similarity_matrix
from ..losses.lmcl import _check_deltas
from ..models.heads import MLPHead
from .base import Method


class LMCL(Method):
    """LMCL: debiased InfoNCE plus λ times the distance polarization regularizer.

    Args:
        backbone: the encoder f.
        temperature: τ of the contrastive term.
        tau_plus: class prior τ⁺ of the debiased term, in [0, 1) (0: plain InfoNCE).
        delta_plus: upper bound of intra-cluster distances (d = (1 − cos)/2), in [0, 1).
        delta_minus: lower bound of inter-cluster distances, in (delta_plus, 1].
        lam: λ ≥ 0, the weight of the regularizer.
        projector: hidden and output widths of g after the backbone width.
    """

    name = "lmcl"

    def __init__(self, backbone: nn.Module, *, temperature: float = 0.5, tau_plus: float = 0.1,
                 delta_plus: float = 0.25, delta_minus: float = 0.5, lam: float = 1.5,
                 projector: Sequence[int] = (512, 128)) -> None:
        super().__init__(backbone)
        self.temperature = check_temperature(temperature)
        self.tau_plus = check_tau_plus(tau_plus)
        self.delta_plus, self.delta_minus = _check_deltas(delta_plus, delta_minus)
        self.lam = check_real(lam, "lam", low=0.0)
        if len(projector) < 1 or any(int(w) <= 0 for w in projector):
            raise ValueError(f"projector: expected positive widths ending with the output width, got {list(projector)}")
        self.projector = MLPHead([self.feature_dim, *projector])

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, 2)
        z1, z2 = self.projector(self.backbone(torch.cat(list(views[:2])))).chunk(2)
        g1, g2 = gather(z1), gather(z2)  # the global batch under DDP
        if self.tau_plus == 0.0:
            contrastive = info_nce(g1, g2, self.temperature)
        else:
            contrastive = debiased_info_nce(g1, g2, self.temperature, self.tau_plus)
        polarization = distance_polarization(g1, g2, self.delta_plus, self.delta_minus)
        with torch.no_grad():
            d = ((1.0 - similarity_matrix(g1, g2)) / 2.0).fill_diagonal_(0.0)  # d_ii = 0 is never in the gap
            inside = (d > self.delta_plus) & (d < self.delta_minus)
            gap_fraction = inside.sum().to(d.dtype) / (d.shape[0] * (d.shape[0] - 1))
        return {"loss": contrastive + self.lam * polarization, "contrastive": contrastive.detach(),
                "polarization": polarization.detach(), "gap_fraction": gap_fraction, "embeddings": [z1, z2]}
