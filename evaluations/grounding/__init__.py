"""CAM grounding: where in the image a model (or a frozen encoder) looks, scored against object masks.

::

    grad_cam(model, images, target_layer, targets=None, *, positive_views=None, probe=None, batch_size=64)
        -> Tensor (N, H, W), >= 0      # captum LayerGradCam (ReLU) + bilinear upsampling
    pointing_game(cams, masks, *, tolerance=0) -> float
    energy_in_mask(cams, masks) -> float
    iou_at(cams, masks, *, threshold=0.5) -> float
    mask_area_baseline(masks) -> float
    grounding_metrics(cams, masks, *, threshold=0.5, tolerance=0) -> dict   # every metric beside its baseline
    plot_cam_overlays(images, cams, masks=None, *, titles=None, max_images=8) -> matplotlib Figure

Targets of ``grad_cam``: class indices of a classifier, the class logit of a linear probe on an encoder's
features (``probe=``; Grad-CAM then equals the classic CAM), or ``"similarity"`` (cosine to the positive view,
CAST). Always read a metric beside its mask-area baseline: a uniform map scores the mask area.
"""

from __future__ import annotations

from .cam import grad_cam
from .metrics import energy_in_mask, grounding_metrics, iou_at, mask_area_baseline, pointing_game
from .plots import plot_cam_overlays

__all__ = [
    "energy_in_mask",
    "grad_cam",
    "grounding_metrics",
    "iou_at",
    "mask_area_baseline",
    "plot_cam_overlays",
    "pointing_game",
]
