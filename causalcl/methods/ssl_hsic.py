"""SSL-HSIC (Li, Pogodin, Sutherland, Gretton; NeurIPS 2021, "Self-Supervised Learning with Kernel Dependence
Maximization", arXiv 2106.08320; official JAX code github.com/deepmind/ssl_hsic).

M views of each of B images pass through the backbone f and a projector g, z = g(f(x)). Y is the identity of
the image (its views share it). The loss maximises the kernel dependence between Z and Y and penalises the
dependence of Z on itself (``causalcl.losses.ssl_hsic_terms``), with n = BM L2-normalised embeddings and their
Gram matrix K::

    HSIC(Z, Y) = 1/(BM(M−1)) Σ_i Σ_{p≠l} k(z_i^p, z_i^l) − 1/n² Σ_{a,b} k(z_a, z_b)
    HSIC(Z, Z) = tr(KHKH) / n²
    L          = −HSIC(Z, Y) + γ · sqrt(HSIC(Z, Z))

HSIC(Z, Y) is the paper's estimator for the identity kernel on Y (unbiased in its positive-pair mean) with the
scale Δl/N = 1 of the official code; HSIC(Z, Z) is the biased V-statistic, as the official code
(``zz_estimator="unbiased"``: Song et al.'s unbiased estimator). Under DDP the embeddings of every rank are
gathered (with gradients) first, so K is that of the global batch.

Defaults and why: γ = 3 (the official config's ``regul_weight``); Gaussian kernel with the median-heuristic
bandwidth σ (the median pairwise distance of the batch's normalised embeddings, recomputed each step, no
gradient); ``bandwidth=<float>`` fixes σ, ``kernel="imq"`` is the official code's inverse multiquadric
c / sqrt(‖z − z'‖² + c²) (exact here, with c fixed or by the median heuristic; the official code approximates it by
512 random Fourier features and learns c by maximising the kernel's gradient norm). Projector feature_dim → 512 →
128 with BN + ReLU on the hidden layer (SimCLR's, for the CPU default; the official: 4096 → 256). M = 2 views.
Not implemented: the official ImageNet recipe's BYOL-style predictor and EMA target network, whose predictions and
target projections (four sets of embeddings) enter the same loss; this is the loss of the paper's Section 3 on the
online projections of the views.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..distributed import gather
from ..losses import ssl_hsic_terms
from ..losses._common import check_real
from ..losses.hsic import HSIC_ESTIMATORS, KERNELS
from ..models.heads import MLPHead
from .base import Method


class SSLHSIC(Method):
    """SSL-HSIC: −HSIC(Z, Y) + γ·sqrt(HSIC(Z, Z)) with Y the image identity.

    Args:
        backbone: the encoder f.
        gamma: γ ≥ 0, weight of sqrt(HSIC(Z, Z)).
        kernel: kernel on Z, one of ``causalcl.losses.hsic.KERNELS`` (gaussian, imq, linear).
        bandwidth: σ (Gaussian) or c (IMQ), a positive float, or ``"median"`` (median heuristic per batch).
        zz_estimator: ``"biased"`` (default, the official code) or ``"unbiased"`` estimator of HSIC(Z, Z).
        projector: hidden and output widths of g after the backbone width.
        num_views: M ≥ 2 augmented views per image.
    """

    name = "ssl_hsic"

    def __init__(self, backbone: nn.Module, *, gamma: float = 3.0, kernel: str = "gaussian",
                 bandwidth: float | str = "median", zz_estimator: str = "biased",
                 projector: Sequence[int] = (512, 128), num_views: int = 2) -> None:
        super().__init__(backbone)
        self.gamma = check_real(gamma, "gamma", low=0.0)
        if kernel not in KERNELS:
            raise ValueError(f"kernel: expected one of {KERNELS}, got {kernel!r}")
        if isinstance(bandwidth, str):
            if bandwidth != "median":
                raise ValueError(f"bandwidth: expected a positive float or 'median', got {bandwidth!r}")
        else:
            bandwidth = check_real(bandwidth, "bandwidth", low=0.0, low_open=True)
        if zz_estimator not in HSIC_ESTIMATORS:
            raise ValueError(f"zz_estimator: expected one of {HSIC_ESTIMATORS}, got {zz_estimator!r}")
        if isinstance(num_views, bool) or not isinstance(num_views, int) or num_views < 2:
            raise ValueError(f"num_views: expected an integer >= 2, got {num_views!r}")
        if len(projector) < 1:
            raise ValueError("projector: expected at least the output width, got an empty list")
        self.kernel, self.bandwidth, self.zz_estimator, self.num_views = kernel, bandwidth, zz_estimator, num_views
        self.projector = MLPHead([self.feature_dim, *projector])

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, self.num_views)
        z = self.projector(self.backbone(torch.cat(list(views[: self.num_views]))))  # one pass over all views
        chunks = list(z.chunk(self.num_views))
        loss, hsic_zy, hsic_zz = ssl_hsic_terms([gather(c) for c in chunks], self.gamma, kernel=self.kernel,
                                                bandwidth=self.bandwidth, zz_estimator=self.zz_estimator)
        return {"loss": loss, "hsic_zy": hsic_zy.detach(), "hsic_zz": hsic_zz.detach(), "embeddings": chunks}
