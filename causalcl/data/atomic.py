"""Atomic augmentations with explicit per-sample parameters, as parametric ``StyleIntervention``s.

LooC (Xiao, Wang, Efros, Darrell; ICLR 2021, arXiv 2008.05659) needs views that share the
parameter of one augmentation with the query and redraw the others, so every atomic augmentation
is split into ``sample(n, generator, device) -> a`` and ``apply(images, a)``:

* ``color_jitter_intervention``: a = (n, 6) rows ``[on, brightness, contrast, saturation, hue, gray]``.
  With ``on = 1`` (probability ``p``) the image gets brightness ×b, contrast c, saturation s
  (factors ~ U[1−j, 1+j]) and a hue shift h ~ U[−j_h, j_h] (a YIQ chroma rotation, as
  ``SimCLRAugment``), in this fixed order, clamped to [0, 1] after each op; then grayscale when
  ``gray = 1`` (probability ``grayscale_p``). The fixed order (torchvision draws a random one)
  keeps the parameter a plain vector.
* ``rotation_intervention``: a = (n, 1) quarter turns k ∈ {angles / 90}; ``torch.rot90`` by k
  (square images only), exact and lossless.

Every random number comes from the given ``torch.Generator`` (drawn on its device).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..causal.style import StyleIntervention
from .augment import rgb_to_grayscale, yiq_hue_matrix

__all__ = ["ATOMIC_AUGMENTATIONS", "apply_color_jitter", "apply_rotation", "color_jitter_intervention",
           "rotation_intervention"]


def _rand(gen: torch.Generator | None, device: torch.device, *shape: int) -> Tensor:
    src = gen.device if gen is not None else device
    return torch.rand(*shape, generator=gen, device=src).to(device)


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images: expected a float tensor of shape (B, 3, H, W), got {shape}")


def apply_color_jitter(images: Tensor, a: Tensor) -> Tensor:
    """Colour jitter with explicit parameters ``a`` (B, 6) = [on, b, c, s, h, gray] (module docstring)."""
    _check_images(images)
    if a.dim() != 2 or a.shape != (images.shape[0], 6):
        raise ValueError(f"a: expected colour parameters of shape ({images.shape[0]}, 6), got {tuple(a.shape)}")
    a = a.to(images.device)
    on, b, c, s, h, gray = (a[:, i].to(images.dtype).view(-1, 1, 1, 1) for i in range(6))
    x = (images * b).clamp(0, 1)
    mean = rgb_to_grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    x = (c * x + (1 - c) * mean).clamp(0, 1)
    x = (s * x + (1 - s) * rgb_to_grayscale(x)).clamp(0, 1)
    n, ch, hh, ww = x.shape
    m = yiq_hue_matrix(a[:, 4]).to(x.dtype)
    x = torch.bmm(m, x.reshape(n, ch, hh * ww)).view(n, ch, hh, ww).clamp(0, 1)
    x = torch.where(on > 0.5, x, images)
    return torch.where(gray > 0.5, rgb_to_grayscale(x).expand_as(x), x)


def apply_rotation(images: Tensor, a: Tensor) -> Tensor:
    """Rotate image i by ``a[i, 0]`` quarter turns (``torch.rot90`` in the (H, W) plane); square images."""
    _check_images(images)
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"images: rotation needs square images, got {images.shape[2]}x{images.shape[3]}")
    if a.dim() != 2 or a.shape != (images.shape[0], 1):
        raise ValueError(f"a: expected quarter turns of shape ({images.shape[0]}, 1), got {tuple(a.shape)}")
    k = (a[:, 0].to(images.device).round().long() % 4).view(-1, 1, 1, 1)
    out = images.clone()
    for turns in range(1, 4):  # whole-batch turns selected per image: no boolean indexing, no host sync
        out = torch.where(k == turns, torch.rot90(images, turns, dims=(2, 3)), out)
    return out


def color_jitter_intervention(strength: Sequence[float] = (0.4, 0.4, 0.4, 0.1), p: float = 0.8,
                              grayscale_p: float = 0.2) -> StyleIntervention:
    """The colour atomic augmentation: jitter (b, c, s, h strengths) with probability ``p``, then
    grayscale with probability ``grayscale_p`` (MoCo v2 / SimCLR's settings by default)."""
    j = tuple(float(v) for v in strength)
    if len(j) != 4 or min(j) < 0 or j[3] > 0.5:
        raise ValueError(f"strength: expected 4 non-negative strengths (brightness, contrast, saturation, hue "
                         f"<= 0.5), got {strength}")
    for name, value in (("p", p), ("grayscale_p", grayscale_p)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: expected a probability in [0, 1], got {value}")

    bounds = torch.tensor([[0.0, max(0.0, 1 - j[0]), max(0.0, 1 - j[1]), max(0.0, 1 - j[2]), -j[3], 0.0],
                           [0.0, 1 + j[0], 1 + j[1], 1 + j[2], j[3], 0.0]])
    on_device: dict[torch.device, Tensor] = {}  # copied to a device once, not per batch (a host sync on a GPU)

    def sample(n: int, gen: torch.Generator | None, device: torch.device) -> Tensor:
        u = _rand(gen, device, n, 6)
        lo, hi = on_device.setdefault(torch.device(device), bounds.to(device))
        a = lo + (hi - lo) * u
        a[:, 0] = (u[:, 0] < p).float()
        a[:, 5] = (u[:, 5] < grayscale_p).float()
        return a

    return StyleIntervention("color", sample=sample, apply=apply_color_jitter,
                             parameters={"strength": j, "p": float(p), "grayscale_p": float(grayscale_p)})


def rotation_intervention(angles: Sequence[int] = (0, 90, 180, 270)) -> StyleIntervention:
    """The rotation atomic augmentation: a uniform choice among ``angles`` (multiples of 90 degrees)."""
    angles = tuple(int(v) for v in angles)
    if not angles or any(v % 90 for v in angles):
        raise ValueError(f"angles: expected a non-empty list of multiples of 90 degrees, got {angles}")
    turns = torch.tensor([(v // 90) % 4 for v in angles], dtype=torch.float32)
    on_device: dict[torch.device, Tensor] = {}  # copied to a device once, not per batch

    def sample(n: int, gen: torch.Generator | None, device: torch.device) -> Tensor:
        idx = (_rand(gen, device, n) * len(angles)).long().clamp_(max=len(angles) - 1)
        return on_device.setdefault(torch.device(device), turns.to(device))[idx].unsqueeze(1)

    return StyleIntervention("rotation", sample=sample, apply=apply_rotation, parameters={"angles": angles})


#: the atomic augmentations by name (LooC's ``augmentations=`` option)
ATOMIC_AUGMENTATIONS = {"color": color_jitter_intervention, "rotation": rotation_intervention}
