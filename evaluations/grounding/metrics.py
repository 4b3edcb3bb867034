"""How well saliency maps land on the object: pointing game, energy in mask, IoU, each beside its baseline.

All metrics take ``cams`` ``(N, H, W)`` (non-negative, finite; e.g. the output of :func:`grad_cam`) and binary
``masks`` ``(N, H, W)`` (True/1 = object) at the same resolution; ``(N, 1, H, W)`` is accepted for both.
Each metric is a mean over images, so that a uniform map scores exactly :func:`mask_area_baseline`:

- **pointing game** (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016 / IJCV
  2018): a hit when the map's maximum lies inside the mask, dilated by ``tolerance`` pixels (Euclidean
  disk). The original used 15 px at 224 px; the default here is 0 because the embedded data are 32 px, where
  15 px is half the image. When several pixels share the maximum, the hit counts the fraction of them
  inside the (dilated) mask, i.e. the expected hit under random tie-breaking; so an all-zero or uniform
  map scores the (dilated) mask area. Averaged over images, not per class as in the original.
- **energy in mask** (the energy-based pointing game of Wang et al., "Score-CAM: Score-Weighted Visual
  Explanations for Convolutional Neural Networks", CVPR-W 2020, with masks instead of boxes):
  ``sum(cam * mask) / sum(cam)``; an all-zero map is treated as uniform and scores the mask area.
- **IoU** of ``{cam_n >= threshold}`` with the mask, ``cam_n`` the map min-max normalised per image to
  ``[0, 1]``; a constant map normalises to all ones (the full image, IoU = mask area).

Baselines: a uniform map scores the mask area fraction on energy and IoU, and the (dilated) mask area in
expectation on the pointing game; :func:`grounding_metrics` reports every metric beside its baseline.

Images with an empty mask have no object to point to: they are left out of every metric and baseline (and
counted as ``n_empty_masks``); if every mask is empty, ``ValueError``. Negative or NaN values in ``cams`` are
refused (apply ``.clamp(min=0)`` to signed maps first).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._validate import as_features, check_int, check_positive_float

__all__ = [
    "energy_in_mask",
    "grounding_metrics",
    "iou_at",
    "mask_area_baseline",
    "pointing_game",
]


def _as_maps(x: Any, name: str) -> torch.Tensor:
    """(N, H, W) or (N, 1, H, W) -> float64 (N, H, W), finite."""
    ndim = x.dim() if isinstance(x, torch.Tensor) else np.ndim(x)
    if ndim not in (3, 4):
        raise ValueError(f"{name}: expected maps of shape (N, H, W) or (N, 1, H, W), got {ndim} dimension(s)")
    t = as_features(x, name, ndim=ndim, dtype=torch.float64)
    if ndim == 4:
        if t.shape[1] != 1:
            raise ValueError(f"{name}: expected maps of shape (N, H, W) or (N, 1, H, W), got {tuple(t.shape)}")
        t = t[:, 0]
    if t.numel() == 0:
        raise ValueError(f"{name}: expected non-empty maps, got shape {tuple(t.shape)}")
    return t


def _check_cams(cams: Any) -> torch.Tensor:
    c = _as_maps(cams, "cams")
    lo = float(c.min())
    if lo < 0:
        raise ValueError(f"cams: expected non-negative maps, found a minimum of {lo:g} (apply .clamp(min=0) first)")
    return c.cpu()


def _check_masks(masks: Any, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    m = _as_maps(masks, "masks").cpu()
    if shape is not None and tuple(m.shape) != shape:
        raise ValueError(f"masks: expected shape {shape} to match cams, got {tuple(m.shape)}")
    if not bool(((m == 0) | (m == 1)).all()):
        raise ValueError("masks: expected binary masks (bool, or 0/1 values)")
    return m.bool()


def _prepare(cams: Any, masks: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated (cams, masks) restricted to the images whose mask is not empty."""
    c = _check_cams(cams)
    m = _check_masks(masks, tuple(c.shape))
    keep = m.flatten(1).any(dim=1)
    if not bool(keep.any()):
        raise ValueError("masks: every mask is empty; the grounding metrics need at least one object pixel")
    return c[keep], m[keep]


def _dilate(masks: torch.Tensor, tolerance: int) -> torch.Tensor:
    """Pixels within Euclidean distance ``tolerance`` of the mask (a disk structuring element)."""
    if tolerance == 0:
        return masks
    r = torch.arange(-tolerance, tolerance + 1, dtype=torch.float64)
    disk = ((r[:, None] ** 2 + r[None, :] ** 2) <= tolerance**2).to(torch.float64)
    hits = F.conv2d(masks[:, None].to(torch.float64), disk[None, None], padding=tolerance)
    return hits[:, 0] > 0.5


def _pointing_hits(cams: torch.Tensor, masks: torch.Tensor, tolerance: int) -> torch.Tensor:
    target = _dilate(masks, tolerance).flatten(1)
    flat = cams.flatten(1)
    at_max = flat == flat.max(dim=1, keepdim=True).values
    return (at_max & target).sum(dim=1).double() / at_max.sum(dim=1).double()


def _energy(cams: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    flat, m = cams.flatten(1), masks.flatten(1).double()
    total = flat.sum(dim=1)
    inside = (flat * m).sum(dim=1)
    area = m.mean(dim=1)
    return torch.where(total > 0, inside / total.clamp_min(torch.finfo(torch.float64).tiny), area)


def _iou(cams: torch.Tensor, masks: torch.Tensor, threshold: float) -> torch.Tensor:
    flat, m = cams.flatten(1), masks.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - lo
    norm = torch.where(span > 0, (flat - lo) / span.clamp_min(torch.finfo(torch.float64).tiny), torch.ones_like(flat))
    region = norm >= threshold
    inter = (region & m).sum(dim=1).double()
    union = (region | m).sum(dim=1).double()
    return inter / union


def _check_threshold(threshold: float) -> float:
    t = check_positive_float(threshold, "threshold", allow_zero=True)
    if t > 1:
        raise ValueError(f"threshold: expected a value in [0, 1] (maps are min-max normalised), got {t}")
    return t


def pointing_game(cams: Any, masks: Any, *, tolerance: int = 0) -> float:
    """Fraction of images whose map maximum lies in the mask dilated by ``tolerance`` px (ties: expected hit)."""
    tolerance = check_int(tolerance, "tolerance", low=0)
    c, m = _prepare(cams, masks)
    return float(_pointing_hits(c, m, tolerance).mean())


def energy_in_mask(cams: Any, masks: Any) -> float:
    """Mean over images of ``sum(cam * mask) / sum(cam)``; an all-zero map counts as uniform (= mask area)."""
    c, m = _prepare(cams, masks)
    return float(_energy(c, m).mean())


def iou_at(cams: Any, masks: Any, *, threshold: float = 0.5) -> float:
    """Mean IoU of ``{min-max normalised cam >= threshold}`` with the mask."""
    threshold = _check_threshold(threshold)
    c, m = _prepare(cams, masks)
    return float(_iou(c, m, threshold).mean())


def mask_area_baseline(masks: Any) -> float:
    """Mean mask area fraction (empty masks left out): a uniform map's energy and IoU, and its expected
    pointing-game score at ``tolerance=0``."""
    m = _check_masks(masks)
    keep = m.flatten(1).any(dim=1)
    if not bool(keep.any()):
        raise ValueError("masks: every mask is empty; the grounding metrics need at least one object pixel")
    return float(m[keep].flatten(1).double().mean(dim=1).mean())


def grounding_metrics(cams: Any, masks: Any, *, threshold: float = 0.5, tolerance: int = 0) -> dict[str, float | int]:
    """Every metric beside its uniform-map baseline.

    Keys: ``pointing_game``, ``pointing_game_baseline`` (mean area of the dilated masks), ``energy_in_mask``,
    ``energy_baseline`` (mean mask area), ``iou``, ``iou_baseline`` (IoU of the full map = mean mask area),
    ``mask_area``, ``threshold``, ``tolerance``, ``n_images`` (images scored) and ``n_empty_masks`` (left out).
    """
    threshold = _check_threshold(threshold)
    tolerance = check_int(tolerance, "tolerance", low=0)
    c_all = _check_cams(cams)
    n_all = c_all.shape[0]
    c, m = _prepare(c_all, masks)
    area = float(m.flatten(1).double().mean(dim=1).mean())
    result: dict[str, float | int] = {
        "pointing_game": float(_pointing_hits(c, m, tolerance).mean()),
        "pointing_game_baseline": float(_dilate(m, tolerance).flatten(1).double().mean(dim=1).mean()),
        "energy_in_mask": float(_energy(c, m).mean()),
        "energy_baseline": area,
        "iou": float(_iou(c, m, threshold).mean()),
        "iou_baseline": area,
        "mask_area": area,
        "threshold": threshold,
        "tolerance": tolerance,
        "n_images": int(c.shape[0]),
        "n_empty_masks": int(n_all - c.shape[0]),
    }
    return result
