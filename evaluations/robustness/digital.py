"""Digital corruptions: contrast, elastic_transform, pixelate, jpeg_compression and the extra saturate.

Hendrycks & Dietterich (ICLR 2019), parameters in ``params``. Deviations are listed per function.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from ._ops import reflect_gaussian_matrix
from .params import ELASTIC_IMAGENET_SCALE

__all__ = ["contrast", "elastic_transform", "jpeg_compression", "pixelate", "saturate"]


def contrast(x: np.ndarray, c: float, rngs: list[np.random.Generator]) -> np.ndarray:
    """``(x - mean) * c + mean`` with the per-image, per-channel mean."""
    mean = x.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
    x -= mean
    x *= np.float32(c)
    x += mean
    return x


def saturate(x: np.ndarray, p: tuple[float, float], rngs: list[np.random.Generator]) -> np.ndarray:
    """HSV: ``S <- clip(S * a + b, 0, 1)`` with hue and value unchanged (extra corruption).

    Closed form of the ``skimage`` rgb2hsv -> hsv2rgb round trip: each channel is ``V (1 - S alpha_c)`` with
    ``alpha_c = (max - x_c) / (max - min)`` fixed by the hue, so the result is ``V (1 - S' alpha_c)``. Grey
    pixels have hue 0 (red) in skimage, so where ``b > 0`` they turn reddish (``alpha = (0, 1, 1)``) exactly as
    in the original. Equal to the round trip up to float rounding.
    """
    a, b = float(p[0]), float(p[1])
    v = x.max(axis=1, keepdims=True)
    delta = v - x.min(axis=1, keepdims=True)
    s = np.divide(delta, v, out=np.zeros_like(v), where=v > 0)
    s_new = np.clip(s * np.float32(a) + np.float32(b), 0.0, 1.0)
    alpha = np.divide(v - x, delta, out=np.zeros_like(x), where=delta > 0)
    grey = np.broadcast_to(delta <= 0, x.shape)
    red_hue = np.broadcast_to(np.array([0.0, 1.0, 1.0], dtype=np.float32)[None, :, None, None], x.shape)
    np.copyto(alpha, red_hue, where=grey)
    return v * (1.0 - s_new * alpha)


def pixelate(rgb: np.ndarray, f: float, rng: np.random.Generator) -> np.ndarray:
    """Pillow BOX downscale of an 8-bit (H, W, 3) image to ``(int(W f), int(H f))``, then nearest-neighbour
    upscale back (OpenCV ``INTER_NEAREST_EXACT``, which equals Pillow's NEAREST: ``imagecorruptions``).

    ``make_imagenet_c.py`` upscales with Pillow's BOX filter, which picks the same pixels as NEAREST except on
    single tie rows/columns at some odd sizes (checked identical at 224 and 32 px). Float input is rounded to
    8 bit first, as ImageNet-C's pipeline is 8-bit throughout.
    """
    h, w, _ = rgb.shape
    small = np.asarray(Image.fromarray(rgb).resize((max(1, int(w * f)), max(1, int(h * f))), Image.Resampling.BOX))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)


def jpeg_compression(rgb: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """Encode and decode an 8-bit (H, W, 3) RGB image as JPEG at ``quality`` with libjpeg via OpenCV (IJG
    tables, 4:2:0 chroma, baseline: the same decoded pixels as Pillow's defaults used by ImageNet-C; checked
    equal on photographs). The result is not re-saved."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid 8-bit image
        raise RuntimeError("OpenCV failed to JPEG-encode an image")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def elastic_transform(x: np.ndarray, p: tuple[float, float, float], rngs: list[np.random.Generator], *,
                      preset: str) -> np.ndarray:
    """ImageNet-C's elastic transform: a random affine warp, then a smoothed random displacement field.

    Parameters ``(alpha, sigma, jitter)`` are fractions of the image side ``S = min(H, W)``: ``S * 244/224 * k``
    for the ImageNet preset (= the original's ``244 * k`` px at 224), ``S * k`` for CIFAR (= ``32 * k`` at 32).
    Per image: the three points ``centre + (s, s)``, ``centre + (s, -s)``, ``centre - s`` (``s = S // 3``) move by
    U(-jitter, jitter); ``cv2.warpAffine`` with that affine (bilinear, reflect-101 border); then
    ``dx, dy = alpha * gaussian(U(-1, 1), sigma, mode="reflect", truncate=3)`` and bilinear resampling at
    ``(y + dy, x + dx)`` with a reflect border (``map_coordinates(order=1, mode="reflect")``), here via
    ``cv2.remap``. (``imagecorruptions`` uses another parametrisation without the affine step; we follow
    ``make_imagenet_c.py`` / ``make_cifar_c.py``, research §1.2 and §1.5.)
    """
    n, c, h, w = x.shape
    side = min(h, w)
    k = side * (ELASTIC_IMAGENET_SCALE if preset == "imagenet" else 1.0)
    alpha, sigma, jitter = k * p[0], k * p[1], k * p[2]
    cx, cy, s = w // 2, h // 2, side // 3
    pts1 = np.float32([[cx + s, cy + s], [cx + s, cy - s], [cx - s, cy - s]])
    fields = np.empty((n, 2, h, w), dtype=np.float32)
    for i, rng in enumerate(rngs):
        pts2 = (pts1 + rng.uniform(-jitter, jitter, size=(3, 2))).astype(np.float32)
        m = cv2.getAffineTransform(pts1, pts2)
        for ch in range(c):
            x[i, ch] = cv2.warpAffine(x[i, ch], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        fields[i] = rng.uniform(-1.0, 1.0, size=(2, h, w))
    gh = reflect_gaussian_matrix(h, float(sigma), 3.0)
    gw = reflect_gaussian_matrix(w, float(sigma), 3.0)
    fields = np.matmul(np.matmul(gh, fields), gw.T) * np.float32(alpha)
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty_like(x)
    for i in range(n):
        map_x = grid_x + fields[i, 0]
        map_y = grid_y + fields[i, 1]
        m1, m2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        for ch in range(c):
            cv2.remap(x[i, ch], m1, m2, cv2.INTER_LINEAR, dst=out[i, ch], borderMode=cv2.BORDER_REFLECT)
    return out
