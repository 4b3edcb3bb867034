"""The ``Method`` base class shared by every self-supervised method."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
from torch import nn


class Method(nn.Module, metaclass=ABCMeta):
    """A self-supervised method: a backbone plus the heads and targets its loss needs.

    Subclasses implement ``forward(views) -> dict`` returning at least ``"loss"`` (a scalar tensor
    to minimise) and any other scalar terms to log. The Trainer calls ``on_step_end(step,
    total_steps)`` after each optimiser step (EMA targets and queues update there).

    Args:
        backbone: maps images (B, 3, H, W) to features (B, D) and exposes ``feature_dim``.
    """

    #: name under which the method is registered in ``causalcl.methods.METHODS``
    name: str = ""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        if not hasattr(backbone, "feature_dim"):
            raise ValueError("backbone: expected a module with a 'feature_dim' attribute (see causalcl.models)")
        self.backbone = backbone
        self.feature_dim = int(backbone.feature_dim)

    @property
    def encoder(self) -> nn.Module:
        """The network whose features are evaluated (the backbone, without heads)."""
        return self.backbone

    @abstractmethod
    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Compute the loss (key ``"loss"``) and the logged terms from a list of view batches."""

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Hook after each optimiser step; methods without EMA targets or queues need nothing here."""

    @staticmethod
    def check_views(views: list[torch.Tensor], n: int = 2) -> None:
        """Validate that ``views`` holds at least ``n`` image batches of one shape."""
        if not isinstance(views, list | tuple) or len(views) < n:
            raise ValueError(f"views: expected a list of at least {n} image batches, got {type(views).__name__}")
        shape = views[0].shape
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"views: expected image batches of shape (B, 3, H, W), got {tuple(shape)}")
        if any(v.shape != shape for v in views):
            raise ValueError(f"views: all views must have the same shape, got {[tuple(v.shape) for v in views]}")
