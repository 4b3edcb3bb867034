"""``corrupt``: the 19 ImageNet-C / CIFAR-10-C corruptions on batches, seeded per image.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
ICLR 2019. The ImageNet-C parameters (``params.IMAGENET``) apply to images of at least 64 px, the CIFAR-10-C
ones (``params.CIFAR``) below (``preset="auto"``). Sizes other than 224 / 32 px use the ``imagecorruptions``
generalisations (research/evaluations.md §1.3). Corrupted images are *not* JPEG re-saved (ImageNet-C's files
are, at quality 85), and the random streams differ from the originals, which use the unseeded global numpy
generator: results generated here are "synthetic corruptions", never "ImageNet-C". Each corruption function
documents its deviations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

from .._validate import check_int
from ._batch import check_name, check_severity, image_rngs, per_image_uint8, resolve_preset, tensor_restorer, to_planes
from .blur import defocus_blur, gaussian_blur, glass_blur, motion_blur, zoom_blur
from .digital import contrast, elastic_transform, jpeg_compression, pixelate, pixelate_planes, saturate
from .noise import gaussian_noise, impulse_noise, shot_noise, speckle_noise
from .params import CIFAR, CORRUPTIONS, IMAGENET
from .weather import brightness, fog, frost, snow, spatter

__all__ = ["CORRUPTIONS", "corrupt", "corruption_params"]

T = TypeVar("T")

_FUNCS: dict[str, Callable[..., np.ndarray]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "spatter": spatter,
    "saturate": saturate,
}
_NEEDS_PRESET = {"frost", "elastic_transform"}
_CHUNK_BYTES = 4 << 20  # images are corrupted in chunks of about this many bytes of float32 planes
_EIGHT_BIT = {"pixelate", "jpeg_compression"}  # on 8-bit images: run per uint8 (H, W, 3) image (pixelate: uint8 input)


def corruption_params(name: str, severity: int, preset: str) -> Any:
    """The parameter entry of ``name`` at ``severity`` for ``preset`` ("imagenet" or "cifar")."""
    check_name(name)
    sev = check_severity(severity)
    if preset not in ("imagenet", "cifar"):
        raise ValueError(f"preset: expected 'imagenet' or 'cifar', got {preset!r}")
    return (IMAGENET if preset == "imagenet" else CIFAR)[name][sev - 1]


def corrupt(images: T, name: str, severity: int, *, preset: str = "auto", seed: int = 0,
            index_offset: int = 0) -> T:
    """Apply corruption ``name`` at ``severity`` (1-5) to a batch of images.

    Args:
        images: float torch tensor (N, 3, H, W) in [0, 1], or uint8 numpy array (N, H, W, 3) or (H, W, 3).
            Sides of at least 16 px.
        name: one of :data:`CORRUPTIONS` (the 15 benchmark corruptions in ImageNet-C order, then
            speckle_noise, gaussian_blur, spatter, saturate).
        severity: 1..5.
        preset: ``"imagenet"`` (ImageNet-C parameters), ``"cifar"`` (CIFAR-10-C parameters) or ``"auto"``
            (``"cifar"`` when the shorter side is below 64 px).
        seed: non-negative integer. Image ``i`` draws from a generator seeded with
            ``(seed, index_offset + i, name, severity)``, so any subset is reproducible.
        index_offset: global index of ``images[0]``: ``corrupt(x[a:b], ..., index_offset=a)`` equals
            ``corrupt(x, ...)[a:b]`` (up to float rounding of batched filters).

    Returns:
        The corrupted images, clipped to [0, 1] (uint8: rounded to 0..255), with the input's type, shape,
        dtype and device. The input is not modified. Work is done in float32 on the CPU, except
        jpeg_compression, which is defined on 8-bit images (float input is rounded to 8 bit), and pixelate on
        uint8 input, which runs Pillow's 8-bit resize as ImageNet-C did (float input is pixelated in float with
        Pillow's exact BOX geometry, without the 8-bit rounding: within about 1/255 of the 8-bit result).

    Raises:
        ValueError: unknown corruption (the message lists the valid names), severity outside 1..5, unknown
            preset, wrong channel count or layout, float values outside [0, 1] or not finite, negative seed,
            images smaller than 16 px.
    """
    check_name(name)
    sev = check_severity(severity)
    seed = check_int(seed, "seed", low=0)
    index_offset = check_int(index_offset, "index_offset", low=0)
    fn = _FUNCS[name]
    if name == "pixelate" and isinstance(images, torch.Tensor):  # float input: pixelate in float
        planes, _ = to_planes(images, copy=False)
        f = corruption_params(name, sev, resolve_preset(preset, planes.shape[2], planes.shape[3]))
        return tensor_restorer(images)(torch.from_numpy(pixelate_planes(planes, f)))  # window means: in [0, 1]
    if name in _EIGHT_BIT:
        def make(h: int, w: int) -> Callable[[np.ndarray, int], np.ndarray]:
            params = corruption_params(name, sev, resolve_preset(preset, h, w))
            return lambda rgb, i: fn(rgb, params, None)

        return per_image_uint8(images, make)
    planes, restore = to_planes(images)
    n, _, h, w = planes.shape
    resolved = resolve_preset(preset, h, w)
    params = corruption_params(name, sev, resolved)
    rngs = image_rngs(seed, name, sev, n, index_offset)
    kwargs = {"preset": resolved} if name in _NEEDS_PRESET else {}
    step = max(1, _CHUNK_BYTES // (planes[0].nbytes))
    for start in range(0, n, step):  # chunks that stay in cache; images are independent, so results are too
        chunk = planes[start: start + step]
        res = fn(chunk, params, rngs[start: start + step], **kwargs)
        if not np.shares_memory(res, chunk):
            chunk[...] = res
    return restore(planes)
