"""Input checks, conversion to the internal planar float layout, and per-image random generators.

Every corruption works on one internal layout: a C-contiguous float32 numpy array of shape (N, 3, H, W) with
values in [0, 1] ("planes"). :func:`to_planes` validates and converts the public input types (float torch
(N, 3, H, W) in [0, 1]; uint8 numpy (N, H, W, 3) or (H, W, 3)) and returns a function that converts the result
back to the input's type, shape, dtype and device.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import cv2
import numpy as np
import torch

from .._validate import check_int
from .params import CORRUPTIONS

__all__ = [
    "MIN_SIDE", "check_images", "check_name", "check_severity", "image_rngs", "per_image_uint8", "resolve_preset",
    "standard_normal", "tensor_restorer", "to_planes", "uniform",
]

MIN_SIDE = 16
"""Smallest accepted image side: below it the glass-blur and motion-blur neighbourhoods do not fit."""

_PRESETS = ("imagenet", "cifar", "auto")
_ONE_BITS = np.float32(1.0).view(np.uint32)  # float32 bits of 1.0: +0..1 are exactly the patterns up to it


def check_name(name: object) -> str:
    """Return ``name`` if it is one of :data:`CORRUPTIONS`, else raise ``ValueError`` listing the valid names."""
    if not isinstance(name, str) or name not in CORRUPTIONS:
        raise ValueError(f"name: unknown corruption {name!r}; valid names are: {', '.join(CORRUPTIONS)}")
    return name


def check_severity(severity: object) -> int:
    """Severity must be an integer in 1..5."""
    return check_int(severity, "severity", low=1, high=5)


def resolve_preset(preset: object, height: int, width: int) -> str:
    """``"auto"`` becomes ``"cifar"`` when the shorter side is below 64 px, else ``"imagenet"``."""
    if not isinstance(preset, str) or preset not in _PRESETS:
        raise ValueError(f"preset: expected one of {', '.join(map(repr, _PRESETS))}, got {preset!r}")
    if preset == "auto":
        return "cifar" if min(height, width) < 64 else "imagenet"
    return preset


def image_rngs(seed: int, name: str, severity: int, n: int, index_offset: int = 0) -> list[np.random.Generator]:
    """One generator per image: image ``i`` of the batch is seeded from ``(seed, index_offset + i, name, severity)``.

    Seeding per image makes any subset reproducible: corrupting ``images[a:b]`` with ``index_offset=a`` gives
    rows ``a:b`` of corrupting the whole set. The name enters through its CRC-32 (stable across processes,
    unlike ``hash``).
    """
    code = zlib.crc32(name.encode("ascii"))
    return [np.random.default_rng([seed, index_offset + i, code, severity]) for i in range(n)]


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...], loc: float = 0.0, scale: float = 1.0
                    ) -> np.ndarray:
    """Float32 draws from N(loc, scale^2) of ``shape``, deterministic in ``rng``: torch's vectorised Box-Muller
    sampler on a generator seeded from ``rng`` (about 3x faster than numpy's ziggurat on these sizes)."""
    generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    return torch.empty(shape, dtype=torch.float32).normal_(loc, scale, generator=generator).numpy()


def uniform(rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
    """Float32 draws from U(low, high) of ``shape``, deterministic in ``rng`` (numpy's float32 generator)."""
    out = rng.random(shape, dtype=np.float32)
    out *= np.float32(high - low)
    out += np.float32(low)
    return out


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"torch.Tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"numpy array of shape {x.shape} and dtype {x.dtype}"
    return type(x).__name__


def _check_side(h: int, w: int, name: str) -> None:
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{name}: images must be at least {MIN_SIDE}x{MIN_SIDE} px, got {h}x{w}")


def _check_tensor(images: torch.Tensor, name: str) -> torch.Tensor:
    """Float (N, 3, H, W) tensor, values finite and in [0, 1]; returns it as a contiguous float32 CPU tensor,
    which may share memory with the input."""
    t = images.detach()
    if not t.is_floating_point():
        raise ValueError(
            f"{name}: expected a float tensor (N, 3, H, W) in [0, 1] or a uint8 numpy array (N, H, W, 3), "
            f"got {_describe(t)}"
        )
    if t.dim() != 4:
        hint = " (add a batch dimension with images.unsqueeze(0))" if t.dim() == 3 else ""
        raise ValueError(f"{name}: expected a 4-D float tensor (N, 3, H, W){hint}, got {_describe(t)}")
    if t.shape[1] != 3:
        raise ValueError(f"{name}: expected 3 colour channels in dim 1 of (N, 3, H, W), got {_describe(t)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one image, got {_describe(t)}")
    _check_side(t.shape[2], t.shape[3], name)
    planes = t.to(device="cpu", dtype=torch.float32, memory_format=torch.contiguous_format)
    flat = planes.numpy()  # numpy's single-threaded reductions: torch's threaded ones stall on a busy CPU
    if flat.view(np.uint32).max() <= _ONE_BITS:  # one pass: as unsigned bits, [+0, 1] sorts below everything else
        return planes
    lo, hi = float(flat.min()), float(flat.max())  # NaN propagates into both; inf shows as out of range
    if lo != lo or hi != hi:
        bad = int(torch.isnan(planes).sum())
        raise ValueError(f"{name}: expected finite values, found {bad} NaN entries ({_describe(t)})")
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name}: float images must lie in [0, 1], found values in [{lo:.4g}, {hi:.4g}]")
    return planes


def check_images(images: torch.Tensor, name: str = "images", *, offset: int = 0, chunk: int = 1024) -> None:
    """Check every image of a float (N, 3, H, W) tensor (dtype, layout, channels, size, finite, in [0, 1]) in
    chunks of ``chunk`` images, so a large set needs no float32 copy of its own; the message of a bad value
    names the first bad image (its index plus ``offset``)."""
    if not isinstance(images, torch.Tensor):
        raise _bad_type(images, name)
    if images.dim() != 4 or images.shape[0] == 0:
        _check_tensor(images, name)  # raises the layout error
    for start in range(0, int(images.shape[0]), chunk):
        part = images[start:start + chunk]
        try:
            _check_tensor(part, name)
        except ValueError as exc:
            if not part.is_floating_point():
                raise
            flat = part.detach().to("cpu", torch.float32).flatten(1)
            bad = (~(torch.isfinite(flat) & (flat >= 0) & (flat <= 1))).any(dim=1).nonzero()
            where = f" (first at image {offset + start + int(bad[0, 0])})" if len(bad) else ""
            raise ValueError(f"{exc}{where}") from None


def _check_array(images: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """uint8 (N, H, W, 3) or (H, W, 3); returns the (N, H, W, 3) view and whether the input was a single image."""
    if images.dtype != np.uint8:
        raise ValueError(
            f"{name}: numpy images must be uint8 (N, H, W, 3) or (H, W, 3) in 0..255 (use a float tensor "
            f"(N, 3, H, W) for float data), got {_describe(images)}"
        )
    if images.ndim not in (3, 4):
        raise ValueError(f"{name}: expected a uint8 array (N, H, W, 3) or (H, W, 3), got {_describe(images)}")
    if images.shape[-1] != 3:
        raise ValueError(
            f"{name}: expected 3 colour channels in the last dim of (N, H, W, 3) / (H, W, 3), got {_describe(images)}"
        )
    single = images.ndim == 3
    batch = images[None] if single else images
    if batch.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one image, got {_describe(images)}")
    _check_side(batch.shape[1], batch.shape[2], name)
    return batch, single


def _bad_type(images: object, name: str) -> ValueError:
    return ValueError(
        f"{name}: expected a float torch tensor (N, 3, H, W) in [0, 1] or a uint8 numpy array (N, H, W, 3) / "
        f"(H, W, 3), got {_describe(images)}"
    )


def tensor_restorer(images: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function that moves a CPU float32 result to the dtype and device of ``images``."""
    dtype, device = images.dtype, images.device
    return lambda res: res.to(device=device, dtype=dtype)


def to_planes(images: object, name: str = "images", *, copy: bool = True
              ) -> tuple[np.ndarray, Callable[[np.ndarray], object]]:
    """Validate ``images`` and return ``(planes, restore)``.

    ``planes`` is a float32 (N, 3, H, W) array in [0, 1], a fresh one (never a view of the input) unless
    ``copy=False``, when it may share memory with a float32 CPU tensor (then only read it); ``restore(planes)``
    clips to [0, 1] and returns the input's type: a tensor of the input's dtype and device, or a uint8 array
    (values rounded to the nearest of 0..255) in the input's (N, H, W, 3) or (H, W, 3) layout.
    """
    if isinstance(images, torch.Tensor):
        planes = _check_tensor(images, name)
        array = planes.numpy()
        if copy and planes.data_ptr() == images.data_ptr():
            array = array.copy()  # numpy, single-threaded, like every other step here
        back = tensor_restorer(images)
        return array, lambda out: back(torch.from_numpy(np.clip(out, 0.0, 1.0, out=out)))
    if isinstance(images, np.ndarray):
        batch, single = _check_array(images, name)
        planes = batch.transpose(0, 3, 1, 2).astype(np.float32, order="C")
        planes *= np.float32(1.0 / 255.0)

        def restore_uint8(out: np.ndarray) -> np.ndarray:
            np.clip(out, 0.0, 1.0, out=out)
            res = np.empty((out.shape[0], out.shape[2], out.shape[3], 3), dtype=np.uint8)
            for i in range(out.shape[0]):  # OpenCV: fused scale + round-half-even + saturate, per plane
                res[i] = cv2.merge([cv2.convertScaleAbs(out[i, c], alpha=255.0) for c in range(3)])
            return res[0] if single else res

        return planes, restore_uint8
    raise _bad_type(images, name)


def per_image_uint8(images: object, make_fn: Callable[[int, int], Callable[[np.ndarray, int], np.ndarray]],
                    name: str = "images") -> object:
    """Apply ``fn = make_fn(H, W)``, ``fn(rgb, i) -> rgb``, to every image as a uint8 (H, W, 3) RGB array and
    return the input's type.

    For the corruptions defined on 8-bit images. Float tensors are rounded to 8 bit per image (OpenCV
    ``convertScaleAbs``, round-half-even) and the results come back as ``value / 255``; uint8 arrays are
    passed as they are (``fn`` must not modify its argument).
    """
    if isinstance(images, torch.Tensor):
        planes = _check_tensor(images, name).numpy()
        fn = make_fn(planes.shape[2], planes.shape[3])
        out = np.empty(planes.shape, dtype=np.float32)
        scale = np.float32(1.0 / 255.0)
        for i in range(planes.shape[0]):  # per image and plane: the conversions stay in cache
            rgb = cv2.merge([cv2.convertScaleAbs(planes[i, c], alpha=255.0) for c in range(3)])
            for c, chan in enumerate(cv2.split(fn(rgb, i))):
                np.multiply(chan, scale, out=out[i, c])
        return tensor_restorer(images)(torch.from_numpy(out))
    if isinstance(images, np.ndarray):
        batch, single = _check_array(images, name)
        fn = make_fn(batch.shape[1], batch.shape[2])
        res = np.empty(batch.shape, dtype=np.uint8)
        for i in range(batch.shape[0]):
            res[i] = fn(batch[i], i)
        return res[0] if single else res
    raise _bad_type(images, name)
