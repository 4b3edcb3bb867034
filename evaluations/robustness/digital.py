"""Digital corruptions: contrast, elastic_transform, pixelate, jpeg_compression and the extra saturate.

Hendrycks & Dietterich (ICLR 2019), parameters in ``params``. Deviations are listed per function.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

from ._batch import uniform
from ._ops import gaussian_planes, reflect_gaussian_matrix
from .params import ELASTIC_IMAGENET_SCALE

__all__ = ["contrast", "elastic_transform", "jpeg_compression", "pixelate", "pixelate_planes", "saturate",
           "smooth_reflect"]


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
    """Pillow BOX downscale of an 8-bit (H, W, 3) image to ``(int(W f), int(H f))``, then Pillow's BOX upscale
    back (``make_imagenet_c.py``), which copies the pixel under each output centre: done by OpenCV's
    ``INTER_NEAREST_EXACT`` where that picks the same pixels (224 and 32 px among others; not at some sizes such
    as 299 px, where the pixels come from ``np.take`` of Pillow's own choice). The uint8 path of ``corrupt``;
    float input goes to :func:`pixelate_planes`.
    """
    h, w, _ = rgb.shape
    small = np.asarray(Image.fromarray(rgb).resize((max(1, int(w * f)), max(1, int(h * f))), Image.Resampling.BOX))
    hs, ws = small.shape[:2]
    if _opencv_nearest_is_pillow_box(hs, ws, h, w):
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
    return np.ascontiguousarray(small[pillow_box_windows(hs, h)[0]][:, pillow_box_windows(ws, w)[0]])


@lru_cache(maxsize=32)
def _opencv_nearest_is_pillow_box(hs: int, ws: int, h: int, w: int) -> bool:
    """Whether OpenCV's ``INTER_NEAREST_EXACT`` upscale (hs, ws) -> (h, w) copies the same source pixels as
    Pillow's BOX upscale (checked on index ramps)."""
    ramp_r = np.repeat(np.arange(hs, dtype=np.float32)[:, None], ws, axis=1)
    ramp_c = np.repeat(np.arange(ws, dtype=np.float32)[None, :], hs, axis=0)
    return bool(
        np.array_equal(cv2.resize(ramp_r, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)[:, 0],
                       pillow_box_windows(hs, h)[0])
        and np.array_equal(cv2.resize(ramp_c, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)[0],
                           pillow_box_windows(ws, w)[0]))


@lru_cache(maxsize=64)
def pillow_box_windows(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``(first, count)`` of the input pixels that Pillow's BOX filter averages for each output pixel along one
    axis, from Pillow's own arithmetic (``precompute_coeffs`` in ``Resample.c``, double precision): scale
    ``s = size_in / size_out``, support ``max(s, 1) / 2``, centre ``(i + 0.5) s``, and input pixel ``x`` taken when
    ``(x - centre + 0.5) / max(s, 1)`` lies in (-0.5, 0.5]. Downscaling gives back-to-back windows, except that
    Pillow's rounding skips an input pixel now and then (299 -> 224 skips pixel 149); upscaling gives one pixel
    each (the pixel under the centre)."""
    scale = size_in / size_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    first = np.empty(size_out, dtype=np.intp)
    count = np.empty(size_out, dtype=np.intp)
    for i in range(size_out):
        centre = (i + 0.5) * scale
        xmin = max(int(centre - support + 0.5), 0)
        xmax = min(int(centre + support + 0.5), size_in)
        t = (np.arange(xmin, xmax) - centre + 0.5) / filterscale
        taken = np.flatnonzero((t > -0.5) & (t <= 0.5)) + xmin
        if taken.size == 0 or np.any(np.diff(taken) != 1):  # pragma: no cover - Pillow's box is never empty
            raise AssertionError(f"BOX window {i} of {size_in}->{size_out} is not a contiguous run: {taken}")
        first[i], count[i] = taken[0], taken.size
    return first, count


def _window_taps(first: np.ndarray, count: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The windows as taps: tap ``t`` takes pixel ``first + t`` of every window with weight 1 where ``t < count``
    (else it repeats the window's last pixel with weight 0); tap 0 needs no weights."""
    last = first + count - 1
    return [(np.minimum(first + t, last), None if t == 0 else (t < count).astype(np.float32))
            for t in range(int(count.max()))]


class _PixelatePlan:
    """Cached geometry of a float pixelate of (h, w) planes by ``f``: the taps of Pillow's BOX windows of the
    downscale (rows, columns), the window areas, and the upscale source rows / columns."""

    def __init__(self, h: int, w: int, f: float) -> None:
        hs, ws = max(1, int(h * f)), max(1, int(w * f))
        fr, cr = pillow_box_windows(h, hs)
        fc, cc = pillow_box_windows(w, ws)
        self.row_taps, self.col_taps = _window_taps(fr, cr), _window_taps(fc, cc)
        self.area = (cr[:, None] * cc[None, :]).astype(np.float32)
        self.up_rows, self.up_cols = pillow_box_windows(hs, h)[0], pillow_box_windows(ws, w)[0]
        self.opencv_upscale = _opencv_nearest_is_pillow_box(hs, ws, h, w)


@lru_cache(maxsize=32)
def _pixelate_plan(h: int, w: int, f: float) -> _PixelatePlan:
    return _PixelatePlan(h, w, f)


def _window_sums(x: np.ndarray, taps: list[tuple[np.ndarray, np.ndarray | None]], axis: int) -> np.ndarray:
    total = np.take(x, taps[0][0], axis=axis)
    for index, weight in taps[1:]:
        tap = np.take(x, index, axis=axis)
        if not weight.all():  # some windows are shorter than this tap: their repeated last pixel weighs 0
            shape = [1] * x.ndim
            shape[axis] = weight.size
            tap *= weight.reshape(shape)
        total += tap
    return total


def pixelate_planes(x: np.ndarray, f: float) -> np.ndarray:
    """Float pixelate of planes (N, C, H, W): Pillow's BOX downscale to ``(int(W f), int(H f))`` and BOX upscale
    back, in float, with Pillow's exact window geometry (:func:`pillow_box_windows`, including the sizes where
    its rounding skips a pixel): the same numbers as Pillow's float ``"F"`` mode up to float rounding.

    Window sums over rows, then columns (a few gathered rows / columns each), divided by the window area; the
    upscale copies the pixel under each output centre (OpenCV ``INTER_NEAREST_EXACT`` where it picks the same
    pixels as Pillow, else ``np.take``). Blocks of about 64k values at a time, to stay in cache.
    The 8-bit path (:func:`pixelate`, Pillow on uint8 as ImageNet-C) also rounds to 8 bit after each resize
    pass; this float path does not round, so on the same pixels the two differ by at most about 1/255.
    Returns a new float32 array.
    """
    h, w = x.shape[2:]
    plan = _pixelate_plan(h, w, float(f))
    out = np.empty(x.shape, dtype=np.float32)
    step = max(1, (1 << 16) // x[0].size)
    for start in range(0, x.shape[0], step):
        block = x[start: start + step]
        small = _window_sums(_window_sums(block, plan.row_taps, 2), plan.col_taps, 3)
        small /= plan.area
        if plan.opencv_upscale:
            for index in np.ndindex(small.shape[:2]):
                cv2.resize(small[index], (w, h), dst=out[start + index[0], index[1]],
                           interpolation=cv2.INTER_NEAREST_EXACT)
        else:
            np.take(np.take(small, plan.up_cols, axis=3), plan.up_rows, axis=2, out=out[start: start + step])
    return out


def jpeg_compression(rgb: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """Encode and decode an 8-bit (H, W, 3) RGB image as JPEG at ``quality`` with libjpeg via OpenCV (IJG
    tables, 4:2:0 chroma, baseline: the same decoded pixels as Pillow's defaults used by ImageNet-C; checked
    equal on photographs). The result is not re-saved."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid 8-bit image
        raise RuntimeError("OpenCV failed to JPEG-encode an image")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def smooth_reflect(fields: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(f, sigma, mode="reflect", truncate)`` of every (H, W) plane of ``fields``
    (N, C, H, W), float32.

    :func:`._ops.gaussian_planes` with ``BORDER_REFLECT`` (scipy's ``"reflect"``) when the kernel radius is shorter
    than both sides; otherwise (ImageNet-C's severities 1-2 smooth with sigma up to 171 px at
    224 px, a kernel far longer than the image, which reflects many times) products with the dense matrices of
    :func:`._ops.reflect_gaussian_matrix`.
    """
    h, w = fields.shape[-2:]
    radius = int(truncate * sigma + 0.5)
    if radius >= min(h, w) or sigma <= 0 or radius == 0:
        gh = reflect_gaussian_matrix(h, sigma, truncate)
        gw = reflect_gaussian_matrix(w, sigma, truncate)
        return np.matmul(np.matmul(gh, fields), gw.T)
    return gaussian_planes(fields, sigma, truncate=truncate, border=cv2.BORDER_REFLECT)


def elastic_transform(x: np.ndarray, p: tuple[float, float, float], rngs: list[np.random.Generator], *,
                      preset: str) -> np.ndarray:
    """ImageNet-C's elastic transform: a random affine warp, then a smoothed random displacement field.

    Parameters ``(alpha, sigma, jitter)`` are fractions of the image side ``S = min(H, W)``: ``S * 244/224 * k``
    for the ImageNet preset (= the original's ``244 * k`` px at 224), ``S * k`` for CIFAR (= ``32 * k`` at 32).
    Per image: the three points ``centre + (s, s)``, ``centre + (s, -s)``, ``centre - s`` (``s = S // 3``) move by
    U(-jitter, jitter); ``cv2.warpAffine`` with that affine (bilinear, reflect-101 border); then
    ``dx, dy = alpha * gaussian(U(-1, 1), sigma, mode="reflect", truncate=3)`` (:func:`smooth_reflect`) and
    bilinear resampling at
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
        fields[i] = uniform(rng, (2, h, w), -1.0, 1.0)
    fields = smooth_reflect(fields, float(sigma), 3.0)
    fields *= np.float32(alpha)
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty_like(x)
    for i in range(n):
        map_x = grid_x + fields[i, 0]
        map_y = grid_y + fields[i, 1]
        m1, m2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        for ch in range(c):
            cv2.remap(x[i, ch], m1, m2, cv2.INTER_LINEAR, dst=out[i, ch], borderMode=cv2.BORDER_REFLECT)
    return out
