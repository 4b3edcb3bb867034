"""Batched temporal augmentations of clips ``(B, T, C, H, W)`` (TaCo's, issue 16), on the clips' device.

Each augmentation has ``k`` parameter classes (class 0 leaves the clip unchanged, except for ``speed``
where it is the slowest factor) and maps ``(clips, classes, generator) -> clips`` with one class per clip,
so a pretext head can be trained to predict the class (TaCo's temporal pretext task):

* ``warp`` (k = 2) -- spatial warping, TaCo's "spatial local disturbance": a smooth random displacement
  field (a 4 × 4 grid of N(0, strength²) offsets in normalised coordinates, bilinearly upsampled) moves
  local regions while the global layout stays; one field per clip, the same for all its frames.
* ``speed`` (k = len(factors), default factors 0.5, 1, 2) -- playback speed change: frame ``t`` of the
  output shows time ``c + φ (t - c)``, ``c = (T-1)/2``, clamped to the clip and linearly interpolated
  between frames. This stands in for TaCo's optical-flow scaling ``Î(x, y, t+1) = I(x + φV_x, y + φV_y, t)``:
  it scales the apparent motion by φ without estimating the flow (fractional times blend two frames).
* ``shift`` (k = shifts, default 4) -- temporal shift ``x̂_t = x_{(t + τ) mod T}`` with ``τ = round(c·T/k)``
  (TaCo's ``x̂_i = x_{i+τ}`` on a clip that has no frames beyond its end, hence circular).
* ``reverse`` (k = 2) -- the frames in reverse order.
* ``shuffle`` (k = 2) -- the frames in a random order other than the identity.

:func:`clip_consistent` applies an image augmentation (e.g. ``SimCLRAugment``) with the same random
parameters to every frame of a clip, so crops and colour jitter do not flicker.

All random numbers come from the given ``torch.Generator`` (drawn on its device, in a fixed order).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["TEMPORAL_AUGMENTATIONS", "TemporalAugmentation", "build_temporal_augmentations", "check_clips",
           "clip_consistent", "reverse", "shift", "shuffle", "spatial_warp", "speed"]


def check_clips(clips: object, name: str = "clips") -> Tensor:
    """``clips`` if it is a floating tensor ``(B, T, C, H, W)`` with ``T >= 2``, else ``ValueError`` naming ``name``."""
    if not isinstance(clips, Tensor) or clips.ndim != 5 or not clips.is_floating_point() or clips.shape[1] < 2:
        shape = tuple(clips.shape) if isinstance(clips, Tensor) else type(clips).__name__
        raise ValueError(f"{name}: expected float clips of shape (B, T >= 2, C, H, W), got {shape}")
    return clips


def _rand(generator: torch.Generator | None, device: torch.device, *shape: int) -> Tensor:
    src = generator.device if generator is not None else device
    return torch.rand(*shape, generator=generator, device=src).to(device)


def _randn(generator: torch.Generator | None, device: torch.device, *shape: int) -> Tensor:
    src = generator.device if generator is not None else device
    return torch.randn(*shape, generator=generator, device=src).to(device)


def _gather_frames(clips: Tensor, index: Tensor) -> Tensor:
    """``out[b, t] = clips[b, index[b, t]]`` for a long ``(B, T)`` index."""
    b, t = index.shape
    return clips.gather(1, index.view(b, t, 1, 1, 1).expand(b, t, *clips.shape[2:]))


def reverse(clips: Tensor, classes: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Class 1: the frames in reverse order; class 0: unchanged."""
    return torch.where(classes.view(-1, 1, 1, 1, 1).bool(), clips.flip(1), clips)


def shuffle(clips: Tensor, classes: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Class 1: the frames in a random order that is not the identity (a random permutation, rolled by one
    frame when it happens to be the identity); class 0: unchanged."""
    b, t = clips.shape[:2]
    perm = torch.argsort(_rand(generator, clips.device, b, t), dim=1)
    ident = torch.arange(t, device=clips.device).expand(b, t)
    perm = torch.where((perm == ident).all(1, keepdim=True), ident.roll(1, dims=1), perm)
    return _gather_frames(clips, torch.where(classes.view(-1, 1).bool(), perm, ident))


def shift(clips: Tensor, classes: Tensor, generator: torch.Generator | None = None, shifts: int = 4) -> Tensor:
    """Class c of ``shifts``: ``x̂_t = x_{(t + τ_c) mod T}``, ``τ_c = round(c T / shifts)`` (class 0: unchanged).

    Raises:
        ValueError: ``shifts`` larger than ``T`` (two classes would be the same shift).
    """
    b, t = clips.shape[:2]
    if shifts > t:
        raise ValueError(f"shifts: {shifts} classes need at least as many frames, got T = {t}")
    amount = torch.round(classes.to(clips.device).double() * t / shifts).long()
    index = (torch.arange(t, device=clips.device)[None, :] + amount[:, None]) % t
    return _gather_frames(clips, index)


def speed(clips: Tensor, classes: Tensor, generator: torch.Generator | None = None,
          factors: Sequence[float] = (0.5, 1.0, 2.0)) -> Tensor:
    """Class c: playback at ``factors[c]`` times the speed about the clip's middle, ``s(t) = m + φ (t - m)``,
    ``m = (T-1)/2``, clamped to ``[0, T-1]`` and linearly interpolated between frames."""
    b, t = clips.shape[:2]
    phi = torch.as_tensor(list(factors), dtype=clips.dtype, device=clips.device)[classes.to(clips.device).long()]
    mid = (t - 1) / 2
    s = (mid + phi[:, None] * (torch.arange(t, device=clips.device, dtype=clips.dtype)[None, :] - mid)).clamp(0, t - 1)
    lo = s.floor().long().clamp(max=t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    w = (s - lo.to(s.dtype)).view(b, t, 1, 1, 1)
    return _gather_frames(clips, lo) * (1 - w) + _gather_frames(clips, hi) * w


def spatial_warp(clips: Tensor, classes: Tensor, generator: torch.Generator | None = None,
                 strength: float = 0.1, grid: int = 4) -> Tensor:
    """Class 1: a smooth random displacement field (``grid × grid`` offsets ~ N(0, strength²) in normalised
    coordinates, upsampled bilinearly), the same for every frame of the clip; class 0: unchanged."""
    b, t, c, h, w = clips.shape
    offsets = _randn(generator, clips.device, b, 2, grid, grid) * strength
    field = F.interpolate(offsets.to(clips.dtype), size=(h, w), mode="bilinear", align_corners=True)
    field = field * classes.to(clips.device).view(-1, 1, 1, 1).to(clips.dtype)  # class 0: no displacement
    theta = torch.eye(2, 3, dtype=clips.dtype, device=clips.device).expand(b, 2, 3)
    base = F.affine_grid(theta, [b, c, h, w], align_corners=False)
    sample = (base + field.permute(0, 2, 3, 1)).repeat_interleave(t, 0)
    out = F.grid_sample(clips.reshape(b * t, c, h, w), sample, mode="bilinear", padding_mode="border",
                        align_corners=False)
    return torch.where(classes.view(-1, 1, 1, 1, 1).bool(), out.view(b, t, c, h, w), clips)


class TemporalAugmentation:
    """One named temporal augmentation: ``num_classes`` and ``apply(clips, classes, generator)``."""

    def __init__(self, name: str, num_classes: int, fn: Callable[..., Tensor], **options: object) -> None:
        self.name, self.num_classes, self.fn, self.options = name, int(num_classes), fn, options

    def sample_classes(self, n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """One uniformly drawn class per clip, long ``(n,)``."""
        return torch.minimum((_rand(generator, device, n) * self.num_classes).long(),
                             torch.tensor(self.num_classes - 1, device=device))

    def __call__(self, clips: Tensor, classes: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.fn(check_clips(clips), classes, generator, **self.options)

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"TemporalAugmentation({self.name!r}, classes={self.num_classes}{opts})"


def _build(name: str, warp_strength: float, speeds: Sequence[float], shifts: int) -> TemporalAugmentation:
    if name == "warp":
        return TemporalAugmentation("warp", 2, spatial_warp, strength=float(warp_strength))
    if name == "speed":
        return TemporalAugmentation("speed", len(speeds), speed, factors=tuple(float(s) for s in speeds))
    if name == "shift":
        return TemporalAugmentation("shift", shifts, shift, shifts=int(shifts))
    if name == "reverse":
        return TemporalAugmentation("reverse", 2, reverse)
    return TemporalAugmentation("shuffle", 2, shuffle)


#: the augmentations :func:`build_temporal_augmentations` knows (TaCo's set), in their default order
TEMPORAL_AUGMENTATIONS = ("warp", "speed", "shift", "reverse", "shuffle")


def build_temporal_augmentations(names: Sequence[str], warp_strength: float = 0.1,
                                 speeds: Sequence[float] = (0.5, 1.0, 2.0), shifts: int = 4
                                 ) -> list[TemporalAugmentation]:
    """The named augmentations, validated.

    Raises:
        ValueError: an unknown or repeated name, no name, ``warp_strength <= 0``, fewer than two distinct
            positive ``speeds``, or ``shifts < 2``.
    """
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in TEMPORAL_AUGMENTATIONS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"augmentations: expected distinct names from {list(TEMPORAL_AUGMENTATIONS)}, got {names}")
    if not isinstance(warp_strength, int | float) or not 0 < warp_strength < math.inf:
        raise ValueError(f"warp_strength: expected a positive number, got {warp_strength!r}")
    speeds = [float(s) for s in speeds]
    if len(speeds) < 2 or min(speeds) <= 0 or len(set(speeds)) != len(speeds):
        raise ValueError(f"speeds: expected at least two distinct positive factors, got {speeds}")
    if isinstance(shifts, bool) or int(shifts) != shifts or shifts < 2:
        raise ValueError(f"shifts: expected an integer >= 2, got {shifts!r}")
    return [_build(n, warp_strength, speeds, int(shifts)) for n in names]


def clip_consistent(augment: Callable[[Tensor, torch.Generator], Tensor] | None, clips: Tensor,
                    generator: torch.Generator | None) -> Tensor:
    """``augment`` (an image augmentation ``(images (B, C, H, W), generator) -> images``) applied to every frame of
    ``clips`` with the same random parameters per clip: the generator's state is replayed for each frame, so an
    augmentation whose random draws do not depend on the pixels (``SimCLRAugment``) crops, flips and jitters the
    frames of a clip alike. The generator ends as after one call. ``augment=None`` returns ``clips``.
    """
    check_clips(clips)
    if augment is None:
        return clips
    if generator is None:
        generator = torch.Generator(device=clips.device).manual_seed(int(torch.randint(2**62, (1,))))
    state = generator.get_state()
    frames = []
    for t in range(clips.shape[1]):
        generator.set_state(state)
        frames.append(augment(clips[:, t], generator))
    return torch.stack(frames, dim=1)
