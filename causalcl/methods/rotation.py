"""RotNet (Gidaris, Singh, Komodakis, ICLR 2018, "Unsupervised Representation Learning by Predicting
Image Rotations", arXiv 1803.07728): the pretext-task baseline.

Each image x is rotated by r·90°, r ∈ {0, 1, 2, 3}; a head c on the backbone's features predicts r, and the
loss is the cross-entropy of that 4-way prediction (``causalcl.losses.rotation_loss``)::

    L = 1/M Σ_j −log softmax(c(f(rot(x_j, r_j))))[r_j]

``rotations="all"`` (default, the paper's best setting): every image of the batch appears under all four
rotations in the same batch (M = 4B), built on the device with ``torch.rot90`` (one call per angle on the
whole batch) and passed through the backbone in one batch. ``"one"``: each image under one rotation,
r = (its index in the global batch) mod 4 — the batch is a random sample, so the assignment is random
with respect to the images, and it is the same under DDP (M = B, a quarter of the backbone cost).
Rotations turn counter-clockwise (``torch.rot90`` from the height axis towards the width axis); images
must be square.

There are no positive pairs: one view per image (``num_views = 1``; the Trainer's augmentation is applied
once — RotNet itself used only crops and flips). The logits are gathered over ranks with gradients, so the
loss is the global-batch mean under DDP.

Defaults: head feature_dim → 512 → 4 with BN + ReLU on the hidden layer (``head=()`` is a linear head).
RotNet's classifier is the last blocks of its network; an MLP head plays that part here, so the backbone's
pooled features are not the rotation logits' last linear layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..distributed import gather, gather_no_grad, rank
from ..losses import rotation_loss
from ..models.heads import MLPHead
from .base import Method

ROTATION_MODES = ("all", "one")


def rotate_all(x: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) → (4B, C, S, S): the batch rotated by 0°, 90°, 180° and 270°, in that order of blocks."""
    return torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])


def rotate_by(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Image j of ``x`` (B, C, S, S) rotated by ``rotations[j]``·90°, one ``rot90`` per angle."""
    out = x.clone()
    for k in range(1, 4):
        sel = (rotations == k).nonzero(as_tuple=True)[0]
        if sel.numel():
            out[sel] = torch.rot90(x[sel], k, dims=(2, 3))
    return out


class Rotation(Method):
    """RotNet: predict which of four rotations was applied to each image.

    Args:
        backbone: the encoder f.
        head: hidden widths of the rotation classifier after the backbone width (``()``: linear).
        rotations: ``"all"`` (each image under the four rotations) or ``"one"`` (one rotation per image).
    """

    name = "rotation"
    num_views = 1

    def __init__(self, backbone: nn.Module, *, head: Sequence[int] = (512,), rotations: str = "all") -> None:
        super().__init__(backbone)
        if any(isinstance(w, bool) or int(w) <= 0 for w in head):
            raise ValueError(f"head: expected positive hidden widths, got {list(head)}")
        if rotations not in ROTATION_MODES:
            raise ValueError(f"rotations: expected one of {list(ROTATION_MODES)}, got {rotations!r}")
        self.rotations = rotations
        self.head = MLPHead([self.feature_dim, *(int(w) for w in head), 4])

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        self.check_views(views, 1)
        x = views[0]
        if x.shape[2] != x.shape[3]:
            raise ValueError(f"views: rotation needs square images, got {x.shape[2]}×{x.shape[3]}")
        b = x.shape[0]
        if self.rotations == "all":
            labels = torch.arange(4, device=x.device).repeat_interleave(b)
            batch = rotate_all(x)
        else:
            labels = (torch.arange(b, device=x.device) + rank() * b) % 4
            batch = rotate_by(x, labels)
        logits, labels = gather(self.head(self.backbone(batch))), gather_no_grad(labels)
        loss = rotation_loss(logits, labels)
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        return {"loss": loss, "rotation_accuracy": accuracy}
