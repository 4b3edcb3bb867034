"""Batched RandAugment on the device: CLSA's strong augmentation (and any method's).

CLSA (Wang & Qi, arXiv 2104.07713) makes its strong views as the weak (MoCo v2) pipeline followed by
``RandAugment(n=5, m=10)`` over FixMatch's pool of 14 PIL operations (its ``data_processing/RandAugment.py``):
n operations drawn with replacement, each applied with probability 1/2 at a magnitude v drawn uniformly from
{1, ..., m - 1} and scaled to the operation's range (v * max / 10 + bias); signed operations flip the sign with
probability 1/2. This module applies the same pool to a batch of float images in [0, 1], each image with its
own draws, as tensor ops (per operation, on the rows that drew it):

========== ================================ ========== ================================
AutoContrast per-channel min-max stretch     Brightness x * f, f in [0.05, 0.95)
Color      blend with the luma, f as above   Contrast   blend with the mean luma, f as above
Equalize   per-channel histogram (PIL's)     Identity
Posterize  keep 4-7 bits                     Rotate     +-[0, 30) degrees about the centre
Sharpness  blend with PIL's smooth filter     ShearX/Y   +-[0, 0.3) about the top-left corner
Solarize   invert above 256 - v*25.6 (/255)  TranslateX/Y +-[0, 0.3) of the side
========== ================================ ========== ================================

Geometric operations sample bilinearly and fill with black (PIL's default); pixel operations quantise nothing
except Posterize, Solarize and Equalize, which act on the 8-bit levels round(255 x) as PIL does. Every random
number comes from the given ``torch.Generator`` (on its device), in a fixed order.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .augment import rgb_to_grayscale

__all__ = ["OPS", "RandAugment"]

#: (name, max, bias) of FixMatch's pool, as CLSA's code; None: the operation has no magnitude
OPS: tuple[tuple[str, float | None, float], ...] = (
    ("autocontrast", None, 0), ("brightness", 0.9, 0.05), ("color", 0.9, 0.05), ("contrast", 0.9, 0.05),
    ("equalize", None, 0), ("identity", None, 0), ("posterize", 4, 4), ("rotate", 30, 0),
    ("sharpness", 0.9, 0.05), ("shear_x", 0.3, 0), ("shear_y", 0.3, 0), ("solarize", 256, 0),
    ("translate_x", 0.3, 0), ("translate_y", 0.3, 0))
_INT_OPS = ("posterize", "rotate", "solarize")
_SIGNED = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
_GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")


def _rand(gen: torch.Generator | None, device: torch.device, *shape: int) -> Tensor:
    src = gen.device if gen is not None else device
    return torch.rand(*shape, generator=gen, device=src).to(device)


def _blend(x: Tensor, degenerate: Tensor, f: Tensor) -> Tensor:
    """PIL's ImageEnhance: degenerate + f (x - degenerate), clipped."""
    return (degenerate + f.view(-1, 1, 1, 1) * (x - degenerate)).clamp(0, 1)


def _levels(x: Tensor) -> Tensor:
    return (x * 255).round().clamp(0, 255).long()


def _equalize(x: Tensor) -> Tensor:
    """PIL's ``ImageOps.equalize`` per channel: lut[i] = (cdf_before(i) + step // 2) // step,
    step = (n - h_last) // 255."""
    b, c, h, w = x.shape
    q = _levels(x).view(b * c, h * w)
    hist = torch.zeros(b * c, 256, dtype=torch.long, device=x.device).scatter_add_(1, q, torch.ones_like(q))
    last = 255 - torch.argmax((hist.flip(1) > 0).long(), dim=1)  # the last non-empty level
    step = (h * w - hist.gather(1, last[:, None])) // 255  # (B*C, 1)
    before = hist.cumsum(1) - hist
    lut = ((before + step // 2) // step.clamp(min=1)).clamp(max=255)
    out = lut.gather(1, q).to(x.dtype) / 255
    return torch.where(step > 0, out, x.view(b * c, h * w)).view(b, c, h, w)


def _sharpness(x: Tensor, f: Tensor) -> Tensor:
    """PIL's ImageEnhance.Sharpness: blend with the SMOOTH filter (1 1 1 / 1 5 1 / 1 1 1) / 13, border kept."""
    kernel = torch.ones(3, 3, dtype=x.dtype, device=x.device)
    kernel[1, 1] = 5
    c = x.shape[1]
    smooth = F.conv2d(x, (kernel / 13).expand(c, 1, 3, 3), groups=c)
    degenerate = x.clone()
    degenerate[:, :, 1:-1, 1:-1] = smooth
    return _blend(x, degenerate, f)


def _affine(x: Tensor, name: str, v: Tensor) -> Tensor:
    """Geometric operations as one ``grid_sample``: output pixel -> input pixel, PIL's conventions."""
    b, _, h, w = x.shape
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    if name == "rotate":  # about the centre, counter-clockwise on screen for v > 0
        a = v * math.pi / 180
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a), -torch.sin(a) * h / w
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a) * w / h, torch.cos(a)
    elif name == "shear_x":  # x_in = x + v y (pixels, from the top-left corner)
        theta[:, 0, 1] = v * h / w
        theta[:, 0, 2] = v * h / w
    elif name == "shear_y":
        theta[:, 1, 0] = v * w / h
        theta[:, 1, 2] = v * w / h
    elif name == "translate_x":  # x_in = x + v W
        theta[:, 0, 2] = 2 * v
    else:  # translate_y
        theta[:, 1, 2] = 2 * v
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def apply_op(x: Tensor, name: str, v: Tensor) -> Tensor:
    """Operation ``name`` on every image of ``x`` (B, 3, H, W) with magnitudes ``v`` (B,) (signed, scaled)."""
    if name == "identity":
        return x
    if name == "autocontrast":
        lo = x.amin(dim=(2, 3), keepdim=True)
        hi = x.amax(dim=(2, 3), keepdim=True)
        return torch.where(hi > lo, (x - lo) / (hi - lo).clamp(min=1e-12), x)
    if name == "brightness":
        return _blend(x, torch.zeros_like(x), v)
    if name == "color":
        return _blend(x, rgb_to_grayscale(x).expand_as(x), v)
    if name == "contrast":
        return _blend(x, rgb_to_grayscale(x).mean(dim=(1, 2, 3), keepdim=True).expand_as(x), v)
    if name == "sharpness":
        return _sharpness(x, v)
    if name == "equalize":
        return _equalize(x)
    if name == "posterize":  # keep the top v bits of each 8-bit level
        mask = (256 - 2 ** (8 - v.long())).view(-1, 1, 1, 1)
        return (_levels(x) & mask).to(x.dtype) / 255
    if name == "solarize":  # PIL: invert the levels >= threshold = 256 - v
        threshold = (256 - v).view(-1, 1, 1, 1)
        return torch.where(_levels(x) >= threshold, 1 - x, x)
    return _affine(x, name, v)


class RandAugment:
    """RandAugment(n, m) over FixMatch's pool, batched (see the module docstring).

    Args:
        n: operations drawn per image (with replacement), each applied with probability ``p``.
        m: magnitude bound: v ~ U{1, ..., m - 1} on the 0-10 scale, as CLSA's code (``randint(1, m)``).
        p: probability of applying each drawn operation (0.5 in CLSA's code).
    """

    def __init__(self, n: int = 5, m: int = 10, p: float = 0.5) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n: expected a non-negative int, got {n!r}")
        if isinstance(m, bool) or not isinstance(m, int) or not 2 <= m <= 10:
            raise ValueError(f"m: expected an int magnitude bound in [2, 10], got {m!r}")
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
        self.n, self.m, self.p = n, m, float(p)

    def __repr__(self) -> str:
        return f"RandAugment(n={self.n}, m={self.m}, p={self.p})"

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"images: expected a float tensor of shape (B, 3, H, W), got {tuple(images.shape)}")
        x, b, device = images, images.shape[0], images.device
        for _ in range(self.n):
            op = torch.floor(_rand(generator, device, b) * len(OPS)).long().clamp(max=len(OPS) - 1)
            level = 1 + torch.floor(_rand(generator, device, b) * (self.m - 1))  # U{1, ..., m - 1}
            sign = torch.where(_rand(generator, device, b) < 0.5, -1.0, 1.0)
            apply = _rand(generator, device, b) < self.p
            out = x.clone()
            for k, (name, top, bias) in enumerate(OPS):
                rows = (apply & (op == k)).nonzero(as_tuple=True)[0]
                if not rows.numel():
                    continue
                v = level[rows] * (top or 0) / 10
                v = (torch.floor(v) if name in _INT_OPS else v) + bias
                if name in _SIGNED:
                    v = v * sign[rows]
                out[rows] = apply_op(x[rows], name, v.to(x.dtype))
            x = out
        return x.clamp(0, 1)
