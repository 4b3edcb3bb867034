"""Deep InfoMax, local (Hjelm, Fedorov, Lavoie-Marchildon, Grewal, Bachman, Trischler, Bengio; ICLR 2019,
"Learning deep representations by mutual information estimation and maximization", arXiv 1808.06670).

One pass of the backbone gives both features: a forward hook on ``backbone.last_conv`` (every causalcl
backbone exposes its last convolutional block, whose output it global-average-pools into its features) keeps the
local feature map C (B, C, h, w), and the backbone's output is the global feature y (B, D). A 1×1-conv local
encoder maps each of the L = h·w local vectors and a global MLP maps y into one score space of width d, and the
critic is their dot product (the paper's "encode-and-dot-product"), u_ijl = g(y_i) · l(C_j)_l. The loss maximises
a lower bound on the mutual information between the global feature and each local feature of the same image,
against the local features of the other images of the (global) batch (``causalcl.losses.dim_loss``)::

    jsd (default):  L = 1/(N(N−1)L) Σ_{i≠j,l} (sp(u_ijl) − log 2) − 1/(NL) Σ_{i,l} (log 2 − sp(−u_iil))
    infonce:        L = 1/(NL) Σ_{i,l} −log( e^{u_iil} / (e^{u_iil} + Σ_{j≠i,l'} e^{u_ijl'}) )

Defaults and why: the JSD estimator (the paper's main choice and the official ``measure='JSD', mode='fd'``; it
found InfoNCE often as good or better but more dependent on many negatives, ``estimator="infonce"``); local and
global heads as the official ``MI1x1ConvNet`` (1×1 conv → BN → ReLU → 1×1 conv, plus a linear shortcut initialised
near the identity, then layer norm over the channels) with widths C → 512 → 512 (the official: 2048 → 2048,
``mi_units``; narrowed for the CPU default); only the local term (the paper's DIM(L): β = 1, α = 0); the
prior-matching term (γ = 0.1, an adversarial discriminator) is not implemented. Difference from the paper's
encoder: its global feature Y comes from further conv and dense layers after the local map; here it is the
backbone's pooled output (the evaluated representation) and the global MLP sits between it and the score.
One view per image (``num_views = 1``: DIM contrasts parts of one image, not views); with ``--views
interventional`` that view is a counterfactual do(style = s').
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ..distributed import gather
from ..losses import dim_loss
from ..losses.dim import DIM_ESTIMATORS
from .base import Method


class _Residual(nn.Module):
    """x → LayerNorm(nonlinear(x) + shortcut(x)) over the channels, the shortcut initialised close to the
    identity when out ≥ in (weights U(−0.01, 0.01), ones on its diagonal), as the official ``MI1x1ConvNet``."""

    def __init__(self, nonlinear: nn.Module, shortcut: nn.Conv2d | nn.Linear, out: int) -> None:
        super().__init__()
        self.nonlinear, self.shortcut, self.norm = nonlinear, shortcut, nn.LayerNorm(out)
        weight = shortcut.weight.data.view(shortcut.weight.shape[0], -1)
        if weight.shape[0] >= weight.shape[1]:
            nn.init.uniform_(weight, -0.01, 0.01)
            weight.fill_diagonal_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.nonlinear(x) + self.shortcut(x)
        if h.dim() == 4:
            return self.norm(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.norm(h)


def local_encoder(in_dim: int, hidden: int, out: int) -> nn.Module:
    """1×1 convs in → hidden (BN, ReLU) → out, plus a linear 1×1 shortcut in → out, then layer norm."""
    return _Residual(nn.Sequential(nn.Conv2d(in_dim, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
                                   nn.Conv2d(hidden, out, 1)), nn.Conv2d(in_dim, out, 1, bias=False), out)


def global_encoder(in_dim: int, hidden: int, out: int) -> nn.Module:
    """MLP in → hidden (BN, ReLU) → out, plus a linear shortcut in → out, then layer norm (the official code
    runs the same 1×1-conv net on the global vector as a 1×1 map: the same function)."""
    return _Residual(nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                                   nn.Linear(hidden, out)), nn.Linear(in_dim, out, bias=False), out)


@contextmanager
def capture_output(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect ``module``'s outputs of the forward passes inside the ``with`` block (a temporary hook)."""
    outputs: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    try:
        yield outputs
    finally:
        handle.remove()


class DIM(Method):
    """Local Deep InfoMax (global–local mutual information).

    Args:
        backbone: the encoder; must expose ``last_conv`` whose (B, feature_dim, h, w) output it pools.
        estimator: ``"jsd"`` (default, the paper's) or ``"infonce"``.
        projector: hidden and output widths of the local 1×1-conv encoder and of the global MLP (the
            output width is the score space).
    """

    name = "dim"
    num_views = 1

    def __init__(self, backbone: nn.Module, *, estimator: str = "jsd", projector: Sequence[int] = (512, 512)) -> None:
        super().__init__(backbone)
        if not isinstance(getattr(backbone, "last_conv", None), nn.Module):
            raise ValueError("backbone: DIM needs the local feature map; expected a module with a 'last_conv' "
                             "submodule (see causalcl.models)")
        if estimator not in DIM_ESTIMATORS:
            raise ValueError(f"estimator: expected one of {DIM_ESTIMATORS}, got {estimator!r}")
        widths = list(projector)
        if len(widths) != 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"projector: expected two positive widths (hidden, output), got {widths}")
        self.estimator = estimator
        self.local_head = local_encoder(self.feature_dim, *widths)
        self.global_head = global_encoder(self.feature_dim, *widths)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(local map (B, C, h, w), global feature (B, D)) of one backbone pass."""
        with capture_output(self.backbone.last_conv) as maps:
            y = self.backbone(x)
        if len(maps) != 1 or maps[0].dim() != 4 or maps[0].shape[1] != self.feature_dim:
            got = [tuple(m.shape) for m in maps]
            raise ValueError(f"backbone: expected last_conv to output one (B, {self.feature_dim}, h, w) map per "
                             f"forward, got {got}")
        return maps[0], y

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, 1)
        fmap, y = self.features(views[0])
        local = self.local_head(fmap).flatten(2).transpose(1, 2)  # (B, h·w, d)
        glob = self.global_head(y)  # (B, d)
        loss = dim_loss(gather(local), gather(glob), self.estimator)  # negatives: the global batch
        return {"loss": loss}
