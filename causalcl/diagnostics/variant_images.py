"""The arrays the foreground/background diagnostics work on (images or clips, masks, labels), for still images
(``foreground``) and clips (``foreground_clips``) alike."""

from __future__ import annotations

from typing import Any

import torch

from .context import Context, confounded_subset


def split_arrays(dataset: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A whole split as (images float in [0, 1], masks, labels)."""
    images, labels = dataset.get_batch(torch.arange(len(dataset)))
    return images, dataset.masks, labels


def variant_images(ctx: Context) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """Images for the background variants. With environments (embedded SCM data) they come from the confounded
    training environment — items no probe was fit on — so that, as in natural data (ImageNet-9), a same-class
    background carries the class's texture; the unconfounded test split would make mixed_same and mixed_rand
    indistinguishable. Otherwise (or when the training split has too few spare items) the test split."""
    splits = ctx.splits
    idx = torch.zeros(0, dtype=torch.long)
    if splits.has_environments:
        free = torch.ones(len(splits.train), dtype=torch.bool)
        free[confounded_subset(len(splits.train), len(splits.probe), ctx.seed)] = False
        idx = free.nonzero().flatten()[: len(splits.test)]
    if idx.numel() < 2 * len(splits.test.class_names):  # no environments, or a train split too small to spare
        return (*split_arrays(splits.test), "test")
    images, labels = splits.train.get_batch(idx)
    return images, splits.train.masks[idx], labels, "train (confounded environment, items no probe was fit on)"
