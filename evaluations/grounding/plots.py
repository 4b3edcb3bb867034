"""Overlay plots of saliency maps on their images, with the object mask's outline.

One column per image; rows: the image, the map over the image (jet colour map, semi-transparent), and, when
``masks`` are given, the image with the mask's contour. The figure is a standalone
``matplotlib.figure.Figure`` (no pyplot state), ready for ``Report.add_plot`` or ``fig.savefig``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from .._validate import as_features, check_int
from .metrics import _as_maps, _check_masks

__all__ = ["plot_cam_overlays"]


def _display_images(images: Any, n: int) -> np.ndarray:
    """(N, C, H, W) with C in {1, 3} -> (N, H, W, 3) in [0, 1] (min-max per image when outside [0, 1])."""
    t = as_features(images, "images", ndim=4, dtype=torch.float64).cpu()
    if t.shape[1] not in (1, 3):
        raise ValueError(f"images: expected (N, 3, H, W) or (N, 1, H, W), got {tuple(t.shape)}")
    if t.shape[0] != n:
        raise ValueError(f"images: expected {n} images to match cams, got {t.shape[0]}")
    t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t
    if float(t.min()) < 0 or float(t.max()) > 1:
        flat = t.flatten(1)
        lo = flat.min(dim=1).values[:, None, None, None]
        span = (flat.max(dim=1).values[:, None, None, None] - lo).clamp_min(1e-12)
        t = (t - lo) / span
    return t.permute(0, 2, 3, 1).numpy()


def plot_cam_overlays(
    images: Any,
    cams: Any,
    masks: Any = None,
    *,
    titles: Sequence[str] | None = None,
    max_images: int = 8,
    alpha: float = 0.5,
) -> Figure:
    """A grid of the first ``max_images`` images, their CAM overlays and (optionally) their mask contours.

    Args:
        images: ``(N, 3, H, W)`` (or ``(N, 1, H, W)``) tensor or array; shown as is when in ``[0, 1]``, else
            min-max scaled per image.
        cams: ``(N, H, W)`` maps at the image resolution (e.g. from :func:`grad_cam`); each is min-max scaled
            per image for display.
        masks: optional binary ``(N, H, W)`` object masks, drawn as a white contour.
        titles: optional per-image column titles (at least as many as images shown).
        max_images: the number of images (columns) shown at most.
        alpha: opacity of the CAM over the image.
    """
    max_images = check_int(max_images, "max_images", low=1)
    c = _as_maps(cams, "cams").cpu()
    n, h, w = c.shape
    imgs = _display_images(images, n)
    if imgs.shape[1:3] != (h, w):
        raise ValueError(f"cams: expected maps of the image size {imgs.shape[1:3]}, got {(h, w)}")
    m = None if masks is None else _check_masks(masks, (n, h, w)).numpy()
    k = min(n, max_images)
    if titles is not None:
        titles = list(titles)
        if len(titles) < k:
            raise ValueError(f"titles: expected at least {k} titles (one per image shown), got {len(titles)}")

    flat = c[:k].flatten(1)
    lo = flat.min(dim=1).values[:, None, None]
    span = (flat.max(dim=1).values[:, None, None] - lo).clamp_min(1e-12)
    shown = ((c[:k] - lo) / span).numpy()

    rows = 3 if m is not None else 2
    fig = Figure(figsize=(1.7 * k + 0.6, 1.7 * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, k, squeeze=False))
    labels = ["image", "CAM", "mask"]
    for j in range(k):
        axes[0, j].imshow(imgs[j], interpolation="nearest")
        axes[1, j].imshow(imgs[j], interpolation="nearest")
        axes[1, j].imshow(shown[j], cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0, interpolation="bilinear")
        if m is not None:
            axes[2, j].imshow(imgs[j], interpolation="nearest")
            if m[j].any() and not m[j].all():
                axes[2, j].contour(m[j].astype(float), levels=[0.5], colors="white", linewidths=1.2)
        if titles is not None:
            axes[0, j].set_title(str(titles[j]), fontsize=8)
    for i in range(rows):
        for j in range(k):
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(labels[i], fontsize=8)
    return fig
