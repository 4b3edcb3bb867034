"""Blur corruptions: defocus_blur, glass_blur, motion_blur, zoom_blur and the extra gaussian_blur.

Hendrycks & Dietterich (ICLR 2019), parameters in ``params``; size-generic forms follow ``imagecorruptions``
(research/evaluations.md §1.3). Deviations from the originals are listed per function.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ._ops import clipped_zoom_matrix, gaussian_planes, motion_blur_planes, motion_taps, warp_planes

__all__ = ["defocus_blur", "disk_kernel", "gaussian_blur", "glass_blur", "motion_blur", "zoom_blur"]


def gaussian_blur(x: np.ndarray, sigma: float, rngs: list[np.random.Generator]) -> np.ndarray:
    """``skimage.filters.gaussian(x, sigma)``: truncate 4, edge-replicating ("nearest") border (extra corruption)."""
    return gaussian_planes(x, float(sigma))


@lru_cache(maxsize=16)
def _glass_grid(nh: int, nw: int, r0: int, c0: int, width: int) -> tuple[np.ndarray, ...]:
    """Cached index grids of the interior: flat image index, interior index, and the in-bounds limits of
    ``dy`` (per row) and ``dx`` (per column) for the neighbour to be interior (clipped to int8)."""
    rows = np.arange(nh, dtype=np.int32)[:, None]
    cols = np.arange(nw, dtype=np.int32)[None, :]
    flat = ((rows + r0) * width + (cols + c0)).astype(np.int32)
    interior = (rows * nw + cols).astype(np.int32)
    dy_max = np.minimum(nh - 1 - rows, 127).astype(np.int8)  # row + dy <= last interior row
    dx_min = np.maximum(-cols, -128).astype(np.int8)
    dx_max = np.minimum(nw - 1 - cols, 127).astype(np.int8)
    return flat, interior, dy_max, dx_min, dx_max


def _glass_sources(dy: np.ndarray, dx: np.ndarray, r0: int, c0: int, width: int) -> np.ndarray:
    """Flat source index, in the image at the start of the sweep, of every interior pixel after one
    sequential sweep of the original loop (see :func:`glass_blur`).

    Pixel ``p`` copies ``q = p + (dy, dx)``. If ``q`` is an interior pixel the sweep has already visited
    (a later row, or the same row and a later column: the loop runs bottom-right to top-left), ``p`` gets
    ``q``'s *new* value, so sources are followed along such chains (pointer jumping: log-many gathers).
    """
    nh, nw = dy.shape
    flat, interior, dy_max, dx_min, dx_max = _glass_grid(nh, nw, r0, c0, width)
    dy = dy.astype(np.int8, copy=False)
    dx = dx.astype(np.int8, copy=False)
    ahead = (dy > 0) | ((dy == 0) & (dx > 0))
    visited = ahead & (dy <= dy_max) & (dx >= dx_min) & (dx <= dx_max)
    dy32, dx32 = dy.astype(np.int32), dx.astype(np.int32)
    # ptr >= 0: interior index of the visited neighbour; ptr < 0: -1 - flat index of a start-of-sweep value
    ptr = np.where(visited, interior + dy32 * nw + dx32, -1 - (flat + dy32 * width + dx32)).ravel()
    active = np.flatnonzero(visited)
    while active.size:
        nxt = np.take(ptr, np.take(ptr, active))
        ptr[active] = nxt
        active = active[nxt >= 0]
    return -1 - ptr


def _displacements(rng: np.random.Generator, delta: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform int8 draws from ``-delta .. delta - 1``: the low bits of random bytes when ``2 delta`` is a power of
    two (exactly uniform, a third of the time of ``Generator.integers``), else ``Generator.integers``."""
    span = 2 * delta
    if span & (span - 1) == 0 and span <= 256:
        raw = np.frombuffer(rng.bytes(int(np.prod(shape))), dtype=np.uint8).reshape(shape)
        return ((raw & np.uint8(span - 1)).view(np.int8) - np.int8(delta)).astype(np.int8, copy=False)
    return rng.integers(-delta, delta, size=shape, dtype=np.int8)


def glass_blur(x: np.ndarray, p: tuple[float, int, int], rngs: list[np.random.Generator]) -> np.ndarray:
    """Blur (sigma) -> quantise to 8 bit (truncating, as ``np.uint8``) -> local pixel moves -> blur (sigma).

    The original loops ``iterations`` times over the interior rows ``H - delta .. delta + 1`` and columns
    ``W - delta .. delta + 1`` (bottom-right to top-left) and, for each pixel, draws ``dy, dx`` in
    ``[-delta, delta - 1]`` (numpy's exclusive upper bound) and "swaps" it with ``(h + dy, w + dx)``; because the
    swap assigns numpy views it actually *copies* the neighbour into ``(h, w)`` (research §1.2).

    Vectorised with the same result as that sequential loop for the same draws: the displacements of a sweep
    are drawn at once, and a pixel whose neighbour the loop had already overwritten follows that neighbour's
    own source (:func:`_glass_sources`). Only the random stream differs from the original.
    """
    sigma, delta, iterations = float(p[0]), int(p[1]), int(p[2])
    x = gaussian_planes(x, sigma)
    np.floor(x * np.float32(255.0), out=x)
    x *= np.float32(1.0 / 255.0)
    n, c, h, w = x.shape
    r0, r1 = delta + 1, h - delta + 1  # interior rows delta+1 .. h-delta
    c0, c1 = delta + 1, w - delta + 1
    if r1 > r0 and c1 > c0:
        for i, rng in enumerate(rngs):
            d = _displacements(rng, delta, (iterations, 2, r1 - r0, c1 - c0))
            flat = x[i].reshape(c, h * w)
            for it in range(iterations):
                src = _glass_sources(d[it, 0], d[it, 1], r0, c0, w)
                x[i, :, r0:r1, c0:c1] = np.take(flat, src, axis=1).reshape(c, r1 - r0, c1 - c0)
    return gaussian_planes(x, sigma)


@lru_cache(maxsize=16)
def disk_kernel(radius: float, alias_sigma: float) -> np.ndarray:
    """ImageNet-C's anti-aliased disk: the pixels with ``X^2 + Y^2 <= r^2`` on a grid of half-width
    ``max(8, r)``, normalised, then blurred with a Gaussian (3x3 for r <= 8, else 5x5) of sigma ``alias_sigma``.
    All-zero border rows/columns are cropped (exactly the same filter, fewer multiplications)."""
    half = 8 if radius <= 8 else int(radius)
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    disk /= disk.sum()
    ksize = (3, 3) if radius <= 8 else (5, 5)
    kernel = cv2.GaussianBlur(disk, ksize, sigmaX=alias_sigma)
    nz = np.nonzero(np.abs(kernel).sum(axis=0) > 0)[0]
    crop = int(min(nz.min(), kernel.shape[0] - 1 - nz.max())) if nz.size else 0
    if crop > 0:
        kernel = kernel[crop:-crop, crop:-crop]
    return np.ascontiguousarray(kernel)


def defocus_blur(x: np.ndarray, p: tuple[float, float], rngs: list[np.random.Generator]) -> np.ndarray:
    """Convolve every channel with :func:`disk_kernel` (``cv2.filter2D``, reflect-101 border, as the original)."""
    kernel = disk_kernel(float(p[0]), float(p[1]))
    flat = x.reshape(-1, *x.shape[-2:])
    out = np.empty_like(flat)
    for i in range(flat.shape[0]):
        cv2.filter2D(flat[i], -1, kernel, dst=out[i], borderType=cv2.BORDER_REFLECT_101)
    return out.reshape(x.shape)


def motion_blur(x: np.ndarray, p: tuple[float, float], rngs: list[np.random.Generator]) -> np.ndarray:
    """Linear motion blur (radius, sigma) at an angle drawn per image from U(-45, 45) degrees.

    ImageNet-C used ImageMagick's MotionBlur; like ``imagecorruptions`` this uses the numpy shift-and-sum
    kernel (:func:`._ops.motion_taps`), so outputs are not bit-identical to the released ImageNet-C files.
    """
    radius, sigma = int(p[0]), float(p[1])
    h, w = x.shape[-2:]
    for i, rng in enumerate(rngs):
        angle = float(rng.uniform(-45.0, 45.0))
        x[i] = motion_blur_planes(x[i], motion_taps(radius, sigma, angle, h, w))
    return x


def zoom_blur(x: np.ndarray, p: tuple[float, float], rngs: list[np.random.Generator]) -> np.ndarray:
    """Mean of the image and its centre zooms by ``arange(1, stop, step)`` (the factor 1 included, as in the
    original, so the unzoomed image counts twice).

    Each zoom is ``clipped_zoom`` (:func:`._ops.clipped_zoom_matrix`): scipy ``zoom(order=1)`` geometry with
    the central trim of ``make_imagenet_c.py`` (``imagecorruptions`` keeps the top-left corner instead; they
    differ by at most one pixel of shift). Bilinear sampling by ``cv2.warpAffine`` (its 1/32-pixel coordinate
    grid is the only numerical difference from scipy).
    """
    zooms = np.arange(1.0, float(p[0]), float(p[1]))
    h, w = x.shape[-2:]
    out = x.copy()
    for z in zooms:
        if abs(z - 1.0) < 1e-12:
            out += x
        else:
            warp_planes(x, clipped_zoom_matrix(h, w, float(z)), out=out, accumulate=True)
    out *= np.float32(1.0 / (len(zooms) + 1))
    return out
