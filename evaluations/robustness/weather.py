"""Weather corruptions: snow, frost, fog, brightness and the extra spatter.

Hendrycks & Dietterich (ICLR 2019), parameters in ``params``; size-generic forms after ``imagecorruptions``
(research/evaluations.md §1.3). Deviations are listed per function.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._batch import standard_normal
from ._ops import clipped_zoom_matrix, gaussian_planes, luma, motion_blur_planes, motion_taps, warp_planes
from ._textures import frost_photos, plasma_fractal
from .params import CIFAR_FROST_SCALE

__all__ = ["brightness", "fog", "frost", "snow", "spatter"]


def snow(x: np.ndarray, p: tuple, rngs: list[np.random.Generator]) -> np.ndarray:
    """Snow layer N(loc, scale) -> centre zoom -> zero below threshold -> clip -> motion blur (radius, sigma,
    angle U(-135, -45)) -> 8-bit rounding; image -> ``b x + (1 - b) max(x, 1.5 gray(x) + 0.5)``; add the layer
    and its 180-degree rotation; clip.

    As in ``imagecorruptions``: the motion blur is the shift-and-sum kernel (ImageNet-C used ImageMagick) and
    the layer is not quantised before the blur. ``gray`` is OpenCV's RGB->gray luma.
    """
    loc, scale, zoom, thr, radius, sigma, blend = p
    n, _, h, w = x.shape
    layer = np.empty((n, 1, h, w), dtype=np.float32)
    angles = []
    for i, rng in enumerate(rngs):
        layer[i, 0] = standard_normal(rng, (h, w), loc, scale)
        angles.append(float(rng.uniform(-135.0, -45.0)))
    if abs(zoom - 1.0) > 1e-12:
        layer = warp_planes(layer, clipped_zoom_matrix(h, w, float(zoom)))
    layer[layer < thr] = 0.0
    np.clip(layer, 0.0, 1.0, out=layer)
    for i in range(n):
        layer[i] = motion_blur_planes(layer[i], motion_taps(int(radius), float(sigma), angles[i], h, w))
    layer = np.rint(layer * 255.0) / np.float32(255.0)
    brightened = np.maximum(x, luma(x) * np.float32(1.5) + np.float32(0.5))
    x = np.float32(blend) * x + np.float32(1.0 - blend) * brightened
    x += layer
    x += layer[:, :, ::-1, ::-1]
    return x


def frost(x: np.ndarray, p: tuple[float, float], rngs: list[np.random.Generator], *, preset: str) -> np.ndarray:
    """``a x + b frost``: a random crop of one of the frost textures frost1-5 (see ``_textures``).

    Per image: texture index U{0..4}, then the crop's top and left offsets, uniform over the valid range
    (exclusive upper bound, as ``np.random.randint``).
    """
    a, b = float(p[0]), float(p[1])
    h, w = x.shape[-2:]
    photos = frost_photos(preset, h, w, CIFAR_FROST_SCALE)
    x *= np.float32(a)
    for i, rng in enumerate(rngs):
        k = int(rng.integers(len(photos)))
        ph = photos[k]
        top = int(rng.integers(0, max(1, ph.shape[1] - h)))
        left = int(rng.integers(0, max(1, ph.shape[2] - w)))
        x[i] += np.float32(b) * ph[:, top: top + h, left: left + w]
    return x


def fog(x: np.ndarray, p: tuple[float, float], rngs: list[np.random.Generator]) -> np.ndarray:
    """Add ``s * plasma`` (diamond-square fractal, map side ``next_pow2(max(H, W))`` as ``imagecorruptions``; 256
    at 224 px and 32 at 32 px, as the originals), then rescale by ``max / (max + s)`` with the image's
    maximum before the fog."""
    s, decay = float(p[0]), float(p[1])
    n, _, h, w = x.shape
    m = 1 << max(1, math.ceil(math.log2(max(h, w))))
    uniforms = np.stack([rng.random((m, m), dtype=np.float32) * np.float32(2.0) - np.float32(1.0) for rng in rngs])
    plasma = plasma_fractal(uniforms, decay)[:, None, :h, :w]
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    x += np.float32(s) * plasma
    x *= peak / (peak + np.float32(s))
    return x


def brightness(x: np.ndarray, c: float, rngs: list[np.random.Generator]) -> np.ndarray:
    """HSV: ``V <- clip(V + c, 0, 1)`` with hue and saturation unchanged.

    Closed form of the ``skimage`` rgb2hsv -> hsv2rgb round trip: every RGB channel is ``V * g(H, S)``, so the
    result is ``x * V' / V`` (and the grey ``V'`` where ``V = 0``); equal to the round trip up to float rounding.
    """
    v = x.max(axis=1, keepdims=True)
    v_new = np.clip(v + np.float32(c), 0.0, 1.0)
    ratio = np.divide(v_new, v, out=np.zeros_like(v), where=v > 0)
    out = x * ratio
    np.copyto(out, np.broadcast_to(v_new, out.shape), where=np.broadcast_to(v <= 0, out.shape))
    return out


_WATER = np.array([175.0, 238.0, 238.0], dtype=np.float32) / 255.0  # pale turquoise
_MUD = np.array([63.0, 42.0, 20.0], dtype=np.float32) / 255.0  # brown
_EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float32)


def _water_rims(liquid: np.ndarray) -> np.ndarray:
    """The water branch's rim map: Canny edges -> distance transform (truncated at 20) -> 3x3 box ->
    histogram equalisation -> emboss filter -> 3x3 box, all on 8-bit images as in the original."""
    lu8 = np.clip(liquid * 255.0, 0, 255).astype(np.uint8)
    dist = (255 - cv2.Canny(lu8, 50, 150)).astype(np.uint8)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    dist = cv2.filter2D(dist, cv2.CV_8U, _EMBOSS)
    return cv2.blur(dist, (3, 3)).astype(np.float32)


def spatter(x: np.ndarray, p: tuple, rngs: list[np.random.Generator]) -> np.ndarray:
    """Liquid layer N(loc, scale) -> Gaussian blur (sigma) -> zero below threshold; then (extra corruption):

    * water (``mud == 0``): ``x + m * (175, 238, 238)/255`` with ``m = layer * rims``, rims from
      :func:`_water_rims`, normalised by its maximum and scaled by ``intensity``;
    * mud (``mud == 1``): mask ``layer > threshold`` blurred with sigma ``intensity``, zero below 0.8, then
      ``x (1 - m) + m * (63, 42, 20)/255``.

    Deviation: the 8-bit conversion of the layer clips at 255 (the original's cast wraps around above 1).
    """
    loc, scale, sigma, thr, intensity, mud = p
    n, _, h, w = x.shape
    liquid = np.stack([standard_normal(rng, (h, w), loc, scale) for rng in rngs])
    liquid = gaussian_planes(liquid, float(sigma))
    liquid[liquid < thr] = 0.0
    if not mud:
        for i in range(n):
            m = liquid[i] * _water_rims(liquid[i])
            peak = float(m.max())
            m = m * np.float32(intensity / peak) if peak > 0 else np.zeros_like(m)
            x[i] += m[None] * _WATER[:, None, None]
        return x
    mask = gaussian_planes((liquid > thr).astype(np.float32), float(intensity))
    mask[mask < 0.8] = 0.0
    mask = mask[:, None]
    x *= 1.0 - mask
    x += mask * _MUD[None, :, None, None]
    return x
