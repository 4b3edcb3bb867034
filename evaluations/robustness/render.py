"""Synthetic rendition shift with OpenCV's non-photorealistic rendering filters (research/evaluations.md §2).

ImageNet-R (Hendrycks et al., "The Many Faces of Robustness", ICCV 2021) measures robustness to renditions
(art, cartoons, sketches, ...). Without those images, edge-aware Domain-Transform filters (Gastal & Oliveira,
SIGGRAPH 2011) give a deterministic, user-defined rendition axis:

=================  ==========================================================================================
style              OpenCV call (``strength`` scales sigma_s and sigma_r; sigma_s capped at 200, sigma_r at 1)
=================  ==========================================================================================
stylization        ``cv2.stylization(img, sigma_s=60 s, sigma_r=0.45 s)`` (watercolour look)
pencil             ``cv2.pencilSketch(img, sigma_s=60 s, sigma_r=0.07 s, shade_factor=0.02)``; the grey sketch,
                   repeated on the three channels
cartoon            2 passes of ``cv2.bilateralFilter(d=9, sigmaColor=75 s, sigmaSpace=75 s)``, masked by the
                   edges of ``adaptiveThreshold(medianBlur(gray, 7), 255, MEAN_C, BINARY, 9, 2)``
edge_preserving    ``cv2.edgePreservingFilter(img, flags=RECURS_FILTER, sigma_s=60 s, sigma_r=0.4 s)``
=================  ==========================================================================================

The filters work on 8-bit images: float input is rounded to 8 bit first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import cv2
import numpy as np

from .._validate import check_positive_float
from ._batch import to_planes

__all__ = ["RENDITIONS", "render"]

T = TypeVar("T")

RENDITIONS: tuple[str, ...] = ("stylization", "pencil", "cartoon", "edge_preserving")


def _sig(sigma_s: float, sigma_r: float, strength: float) -> tuple[float, float]:
    return min(200.0, sigma_s * strength), min(1.0, sigma_r * strength)


def _stylization(img: np.ndarray, strength: float) -> np.ndarray:
    s, r = _sig(60.0, 0.45, strength)
    return cv2.stylization(img[..., ::-1].copy(), sigma_s=s, sigma_r=r)[..., ::-1]  # OpenCV expects BGR


def _pencil(img: np.ndarray, strength: float) -> np.ndarray:
    s, r = _sig(60.0, 0.07, strength)
    gray, _ = cv2.pencilSketch(img[..., ::-1].copy(), sigma_s=s, sigma_r=r, shade_factor=0.02)  # BGR in
    return np.repeat(gray[..., None], 3, axis=2)


def _cartoon(img: np.ndarray, strength: float) -> np.ndarray:
    colour = img
    for _ in range(2):
        colour = cv2.bilateralFilter(colour, 9, 75.0 * strength, 75.0 * strength)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    edges = cv2.adaptiveThreshold(cv2.medianBlur(gray, 7), 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 2)
    return cv2.bitwise_and(colour, colour, mask=edges)


def _edge_preserving(img: np.ndarray, strength: float) -> np.ndarray:
    s, r = _sig(60.0, 0.4, strength)
    return cv2.edgePreservingFilter(img, flags=cv2.RECURS_FILTER, sigma_s=s, sigma_r=r)


_STYLES: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "stylization": _stylization,
    "pencil": _pencil,
    "cartoon": _cartoon,
    "edge_preserving": _edge_preserving,
}


def render(images: T, style: str, *, strength: float = 1.0) -> T:
    """Render ``images`` in ``style`` (one of :data:`RENDITIONS`); deterministic.

    Args:
        images: float torch tensor (N, 3, H, W) in [0, 1], or uint8 numpy array (N, H, W, 3) / (H, W, 3).
        style: ``"stylization"``, ``"pencil"``, ``"cartoon"`` or ``"edge_preserving"`` (table in the module doc).
        strength: > 0, multiplies the filters' sigma_s and sigma_r (1.0 = OpenCV's defaults).

    Returns:
        The rendered images with the input's type, shape, dtype and device.
    """
    if not isinstance(style, str) or style not in _STYLES:
        raise ValueError(f"style: unknown rendition {style!r}; valid styles are: {', '.join(RENDITIONS)}")
    strength = check_positive_float(strength, "strength")
    planes, restore = to_planes(images)
    u8 = np.rint(planes * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)
    fn = _STYLES[style]
    out = np.empty_like(planes)
    for i in range(u8.shape[0]):
        res = fn(np.ascontiguousarray(u8[i]), strength)
        out[i] = res.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    return restore(out)
