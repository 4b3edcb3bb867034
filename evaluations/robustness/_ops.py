"""Shared image operators on planar float32 batches (N, C, H, W): Gaussian filters, the motion-blur kernel,
the centred "clipped zoom", Gaussian smoothing matrices with reflect borders, and luma.

Written from the operator definitions in Hendrycks & Dietterich (ICLR 2019, ``make_imagenet_c.py``) and the
size-generic ``imagecorruptions`` variants (research/evaluations.md §1.2-1.3); OpenCV does the per-plane work.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

__all__ = [
    "clipped_zoom_matrix",
    "gaussian_planes",
    "luma",
    "motion_taps",
    "motion_blur_planes",
    "reflect_gaussian_matrix",
    "warp_planes",
]


def gaussian_planes(x: np.ndarray, sigma: float, *, truncate: float = 4.0, border: int = cv2.BORDER_REPLICATE
                    ) -> np.ndarray:
    """Gaussian filter of every (H, W) plane of ``x`` (any leading dims), new array.

    Same kernel as ``scipy.ndimage.gaussian_filter`` / ``skimage.filters.gaussian``: the sampled Gaussian of
    radius ``int(truncate * sigma + 0.5)``, normalised. ``BORDER_REPLICATE`` is scipy's ``"nearest"`` mode
    (skimage's default), ``BORDER_REFLECT`` its ``"reflect"``.
    """
    radius = int(truncate * sigma + 0.5)
    if sigma <= 0 or radius == 0:
        return x.copy()
    k = 2 * radius + 1
    flat = x.reshape(-1, x.shape[-2], x.shape[-1])
    out = np.empty_like(flat)
    for i in range(flat.shape[0]):
        cv2.GaussianBlur(flat[i], (k, k), sigma, dst=out[i], sigmaY=sigma, borderType=border)
    return out.reshape(x.shape)


def luma(x: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of (N, 3, H, W) RGB planes as (N, 1, H, W), the weights of OpenCV's ``COLOR_RGB2GRAY``."""
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).astype(np.float32)


def motion_taps(radius: int, sigma: float, angle_deg: float, height: int, width: int
                ) -> list[tuple[int, int, float]]:
    """Taps ``(dy, dx, weight)`` of the shift-and-sum motion kernel of ``imagecorruptions``.

    Width ``2 * radius + 1``; weight ``i`` is a one-sided Gaussian ``exp(-i^2 / (2 sigma^2))`` normalised over the
    width; tap ``i`` shifts by ``-ceil(i * sin(angle) - 0.5)`` rows and ``-ceil(i * cos(angle) - 0.5)`` columns.
    As in the original, taps stop (without renormalising) once a shift reaches the image size.
    """
    width_k = 2 * int(radius) + 1
    w = np.exp(-(np.arange(width_k, dtype=np.float64) ** 2) / (2.0 * sigma**2))
    w /= w.sum()
    s, c = math.sin(math.radians(angle_deg)), math.cos(math.radians(angle_deg))
    taps = []
    for i in range(width_k):
        dy = -math.ceil(i * s - 0.5)
        dx = -math.ceil(i * c - 0.5)
        if abs(dy) >= height or abs(dx) >= width:
            break
        taps.append((dy, dx, float(w[i])))
    return taps


def motion_blur_planes(x: np.ndarray, taps: list[tuple[int, int, float]]) -> np.ndarray:
    """``out(y, x) = sum_i w_i * img(clamp(y - dy_i), clamp(x - dx_i))`` for (C, H, W) planes of one image.

    Edge replication equals the original's roll-then-fill-with-the-edge ``shift``. Taps that share a shift are
    merged; the sum runs over slices of one replicate-padded copy.
    """
    merged: dict[tuple[int, int], float] = {}
    for dy, dx, w in taps:
        merged[(dy, dx)] = merged.get((dy, dx), 0.0) + w
    pad = max(max(abs(dy), abs(dx)) for dy, dx in merged)
    h, w_ = x.shape[-2:]
    if pad == 0:
        return (x * np.float32(sum(merged.values()))).astype(np.float32)
    padded = np.stack([cv2.copyMakeBorder(p, pad, pad, pad, pad, cv2.BORDER_REPLICATE) for p in x])
    out = np.zeros_like(x)
    tmp = np.empty_like(x)
    for (dy, dx), wt in merged.items():
        np.multiply(padded[:, pad - dy: pad - dy + h, pad - dx: pad - dx + w_], np.float32(wt), out=tmp)
        out += tmp
    return out


def clipped_zoom_matrix(height: int, width: int, zoom: float) -> np.ndarray:
    """2x3 inverse affine map (output pixel -> source pixel) of ImageNet-C's ``clipped_zoom``.

    The centre ``ceil(side / zoom)`` pixels are zoomed by ``zoom`` with scipy's ``zoom(order=1)`` geometry
    (output size ``round(crop * zoom)``, corners mapped to corners) and the result is trimmed back to the
    image size around the centre, as ``make_imagenet_c.py`` does.
    """
    rows = []
    for side in (width, height):  # x (columns) first, as OpenCV expects
        crop = int(math.ceil(side / zoom))
        top = (side - crop) // 2
        out = int(round(crop * zoom))
        trim = (out - side) // 2
        scale = (crop - 1) / (out - 1) if out > 1 else 1.0
        rows.append((scale, top + trim * scale))
    (sx, tx), (sy, ty) = rows
    return np.array([[sx, 0.0, tx], [0.0, sy, ty]], dtype=np.float64)


def warp_planes(x: np.ndarray, matrix: np.ndarray, *, border: int = cv2.BORDER_REPLICATE,
                out: np.ndarray | None = None, accumulate: bool = False) -> np.ndarray:
    """Bilinear inverse-affine warp (``dst(p) = src(M p)``) of every (H, W) plane; optionally added into ``out``."""
    h, w = x.shape[-2:]
    flat = x.reshape(-1, h, w)
    res = np.zeros_like(flat) if out is None else out.reshape(-1, h, w)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for i in range(flat.shape[0]):
        if accumulate:
            res[i] += cv2.warpAffine(flat[i], matrix, (w, h), flags=flags, borderMode=border)
        else:
            cv2.warpAffine(flat[i], matrix, (w, h), dst=res[i], flags=flags, borderMode=border)
    return res.reshape(x.shape)


@lru_cache(maxsize=32)
def reflect_gaussian_matrix(n: int, sigma: float, truncate: float) -> np.ndarray:
    """(n, n) matrix G with ``G @ v`` = ``scipy.ndimage.gaussian_filter1d(v, sigma, mode="reflect", truncate)``.

    scipy's ``"reflect"`` extends ``a b c d`` as ``... c b a | a b c d | d c b a ...`` (period 2n), also when the
    kernel is longer than the signal (ImageNet-C's elastic transform smooths with sigma up to 171 px at 224).
    """
    g = np.zeros((n, n), dtype=np.float64)
    radius = int(truncate * sigma + 0.5)
    if sigma <= 0 or radius == 0:
        np.fill_diagonal(g, 1.0)
        return g.astype(np.float32)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    rows = np.arange(n)[:, None] + offsets[None, :]
    rows = np.mod(rows, 2 * n)
    rows = np.where(rows >= n, 2 * n - 1 - rows, rows)
    np.add.at(g, (np.repeat(np.arange(n), offsets.size), rows.ravel()), np.tile(kernel, n))
    return g.astype(np.float32)
