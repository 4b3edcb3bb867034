"""The ``Method`` base class shared by every self-supervised method."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Iterator

import torch
from torch import nn


class Method(nn.Module, metaclass=ABCMeta):
    """A self-supervised method: a backbone plus the heads and targets its loss needs.

    Subclasses implement ``forward(views) -> dict`` returning at least ``"loss"`` (a scalar tensor
    to minimise) and any other scalar terms to log; non-scalar entries (e.g. ``"embeddings"``, the
    per-view online projections that wrappers such as ICL-MSR read) are not logged. ``forward``
    must not change state (queues, EMA targets): a wrapper may call it again with looked-ahead
    weights. The hooks the Trainer calls, in order, per step:

    1. ``make_views(augment, images, generator)``: the list of views (``num_views`` augmentations
       by default; multi-crop and leave-one-out methods override it);
    2. ``forward(views)``, backward, one step of the Trainer's optimiser over ``optim_parameters()``;
    3. ``meta_step(views, lr)``: bilevel methods (ICL-MSR, MetAug) update their meta-learners here
       with an optimiser of their own and return the terms to log;
    4. ``on_step_end(step, total_steps)``: EMA targets and queues update here.

    Args:
        backbone: maps images (B, 3, H, W) to features (B, D) and exposes ``feature_dim``.
    """

    #: name under which the method is registered in ``causalcl.methods.METHODS``
    name: str = ""
    #: number of augmented views ``make_views`` draws per image
    num_views: int = 2
    #: whether ``--views interventional`` may replace ``make_views`` (None: only if it is not overridden)
    supports_interventional_views: bool | None = None

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

    def make_views(self, augment: Callable[..., torch.Tensor], images: torch.Tensor,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """The views of one batch: ``num_views`` independent draws of ``augment(images, generator)``."""
        return [augment(images, generator) for _ in range(self.num_views)]

    def optim_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters the Trainer's optimiser updates (all trainable ones unless a method keeps
        meta-learners to itself)."""
        return (p for p in self.parameters() if p.requires_grad)

    def meta_step(self, views: list[torch.Tensor], lr: float) -> dict[str, float]:
        """Hook after the Trainer's optimiser step for bilevel methods; returns terms to log.

        ``lr`` is the current learning rate of the Trainer's optimiser (the lookahead step size α
        of ICL-MSR and MetAug by default)."""
        return {}

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
