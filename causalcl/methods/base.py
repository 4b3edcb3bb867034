"""The ``Method`` base class shared by every self-supervised method."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from ..data.interventional import InterventionalViews


class Method(nn.Module, metaclass=ABCMeta):
    """A self-supervised method: a backbone plus the heads and targets its loss needs.

    Subclasses implement ``forward(views) -> dict`` returning at least ``"loss"`` (a scalar tensor
    to minimise) and any other scalar terms to log; non-scalar entries (e.g. ``"embeddings"``, the
    per-view online projections that wrappers such as ICL-MSR read) are not logged. ``forward``
    must not change state (queues, EMA targets): a wrapper may call it again with looked-ahead
    weights. The hooks the Trainer calls, in order, per step:

    1. ``make_views(augment, images, generator)``: the list of views (``num_views`` augmentations
       by default; multi-crop and leave-one-out methods override it), or under ``--views
       interventional`` ``make_interventional_views`` (``num_views`` true counterfactuals by default;
       refused with ``interventional_refusal``'s reason, see ``interventional_refusal(method)``);
    2. ``forward(views)`` and backward;
    3. ``meta_step(views, lr, log_terms=...)``: bilevel methods (ICL-MSR, MetAug) update their meta-learners
       here with an optimiser of their own and return the terms to log; it runs before the optimiser step,
       so the parameters are those ``forward`` saw and ``p.grad`` holds their gradient (unclipped);
    4. one step of the Trainer's optimiser over ``optim_parameters()``;
    5. ``on_step_end(step, total_steps)``: EMA targets and queues update here.

    Methods with a memory bank indexed by training item (NPID, PIRL) also get, from the Trainer,
    ``bind_dataset(num_items)`` once when it is built (before a checkpoint is restored) and, with every
    batch of views, ``set_batch_indices(indices)``: the dataset indices of this process's rows.

    Args:
        backbone: maps images (B, 3, H, W) to features (B, D) and exposes ``feature_dim``.
    """

    #: name under which the method is registered in ``causalcl.methods.METHODS``
    name: str = ""
    #: number of augmented views ``make_views`` draws per image
    num_views: int = 2
    #: what the method trains on: ``"image"`` batches (B, 3, H, W), ``"video"`` clips (B, T, 3, H, W) (TaCo) or
    #: ``"graph"`` batches (``causalcl.data.scm_graph.GraphBatch``: DGI); the dataset and backbone must match
    input_kind: str = "image"
    #: ``--views interventional`` (true counterfactuals do(style = s') of the SCM datasets): ``None`` when the
    #: method takes them -- ``make_interventional_views`` then makes its views -- else the one-line reason why
    #: it cannot (a class attribute, or set in ``__init__`` when it depends on an option, as SwAV's small crops)
    interventional_refusal: str | None = None

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

    def make_interventional_views(self, views: InterventionalViews, images: torch.Tensor, indices: torch.Tensor,
                                  generator: torch.Generator) -> list[torch.Tensor]:
        """The views of one batch under ``--views interventional``, in place of ``make_views``: by default
        ``num_views`` counterfactuals, each under an independent draw of do(style = s'). A wrapper that keeps
        the method whose views it uses in ``self.base`` (ICL-MSR; MetAug with ``base="cmc"``) takes that
        method's views, as its ``make_views`` does; LooC renders leave-one-out views instead."""
        base = getattr(self, "base", None)
        if isinstance(base, Method):
            return base.make_interventional_views(views, images, indices, generator)
        return views(images, indices, generator, self.num_views)

    def optim_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters the Trainer's optimiser updates (all trainable ones unless a method keeps
        meta-learners to itself)."""
        return (p for p in self.parameters() if p.requires_grad)

    def meta_step(self, views: list[torch.Tensor], lr: float, *,
                  log_terms: bool = True) -> dict[str, torch.Tensor | float]:
        """Hook between the Trainer's backward and its optimiser step for bilevel methods; returns terms
        to log, best as 0-dim device tensors (the Trainer reads them at its logging steps only; a Python float
        costs a host synchronisation per step on a GPU). ``lr`` is the current learning rate of the Trainer's
        optimiser (for information; ICL-MSR and MetAug have a lookahead step size of their own).
        ``log_terms=False`` (the Trainer's steps that it will not log) lets a method skip work whose only use
        is a logged term; the update itself must not depend on it."""
        return {}

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Hook after each optimiser step; methods without EMA targets or queues need nothing here."""

    def bind_dataset(self, num_items: int) -> None:
        """Hook the Trainer calls once, when it is built and before it restores a checkpoint, with the number
        of training items; memory-bank methods (NPID, PIRL) size their bank by it. Nothing by default."""

    def set_batch_indices(self, indices: torch.Tensor) -> None:
        """Hook the Trainer calls with every batch of views it makes (``Trainer.views_for_step``): the dataset
        indices (long, on the method's device) of this process's rows of the views, in their order. Memory-bank
        methods (NPID, PIRL) read and update their bank at them; nothing by default."""

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


def interventional_refusal(method: Method) -> str | None:
    """Why ``method`` cannot take ``--views interventional``, in one line naming it, or ``None`` when it can.

    A wrapper whose views are its base method's (``self.base``: ICL-MSR, MetAug with ``base="cmc"``)
    is refused when its base is."""
    if method.interventional_refusal is not None:
        return f"method {method.name!r} cannot take interventional views: {method.interventional_refusal}"
    base = getattr(method, "base", None)
    if isinstance(base, Method) and base.interventional_refusal is not None:
        return (f"method {method.name!r} cannot take interventional views through its base {base.name!r}: "
                f"{base.interventional_refusal}")
    return None
