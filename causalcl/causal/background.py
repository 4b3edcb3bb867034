"""Background swap: the style intervention do(background = b′) on images with foreground masks (DESIGN §5.3a).

On data whose style is the background (the SCM datasets' ``bg_texture``; Waterbirds' or ImageNet-9's
scenes), the intervention that ReLIC's invariance penalty should compare is "same object, another
background". Given a batch ``x`` ``(B, C, H, W)`` and its foreground masks ``m`` ``(B, H, W)``, each
sample i chosen with probability p becomes

    x′_i = m_i ⊙ x_i + (1 − m_i) ⊙ b′_i

the object, cut out by its mask, pasted on a new background b′_i:

* ``source="batch"``: b′_i is the background of another image of the batch, the donor d(i). The donors
  are one random cycle through a random permutation of the batch (d(π_k) = π_{k+1 mod B}), so every
  sample gets a donor other than itself (for B ≥ 2) and every background is donated exactly once.
  Where the donor's own object covered its image (m_{d(i)}, dilated by one pixel so that the object's
  anti-aliased rim, which is below the mask threshold, counts as object), the donor has no background
  to give; those pixels are filled according to ``fill``:

  - ``"shift"`` (default): the donor's own background, circularly shifted: each hole pixel takes the
    donor's pixel at offset (½H, 0), (0, ½W), (½H, ½W), then ±¼ offsets, the first of these offsets
    that lands on the donor's background (pixels no offset reaches get its mean background colour).
    The hole is filled with real background texture of the same scene, so the donor object's
    silhouette shows only as a seam (a phase jump of the texture), not as a flat patch;
  - ``"mean"``: the donor's mean background colour (per channel, over its background pixels; 0.5 grey
    for a donor without background pixels): the silhouette shows as a flat patch;
  - ``"texture"``: a procedural texture (as for ``source="texture"``): the silhouette shows as a
    patch of another texture;
  - ``"donor"``: the donor's pixels as they are, i.e. the donor's object (a second object, of another
    class) shows through, which is why it is not the default.

  No fill short of a true inpainting hides the silhouette completely where the recipient's object
  does not cover it.
* ``source="texture"``: b′_i is a procedural texture from ``causalcl.data.textures`` (family uniform
  over ``TEXTURE_FAMILIES``, frequency U(2.5, 5.5) cycles per image, orientation U(0, π), random
  phases and noise seed), coloured between two random RGB colours c₀ + (c₁ − c₀)·t.

Masks are bool (hard cut-out: foreground pixels are copied exactly) or float in [0, 1] (alpha
compositing with the formula above). Everything is batched (no per-image loop), drawn from the given
``torch.Generator`` (on its device, in a fixed order: selection, donors, textures), computed on the
images' device, and keeps their dtype.

``BackgroundSwap`` holds the settings (source, p, fill); ``.bind(masks)`` makes the per-batch
``StyleIntervention`` (named ``"background_swap"`` for ``source="batch"``, ``"texture_swap"`` for
``source="texture"``) that ReLIC's intervention set and the ``augment.background_swap_p`` augmentation
use (``causalcl.build.build_view_fn``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .style import StyleIntervention

__all__ = [
    "BACKGROUND_SOURCES",
    "DONOR_FILLS",
    "MASK_INTERVENTIONS",
    "BackgroundSwap",
    "background_swap",
    "background_swap_intervention",
    "procedural_backgrounds",
]

BACKGROUND_SOURCES = ("batch", "texture")
DONOR_FILLS = ("shift", "mean", "texture", "donor")
#: ``fill="shift"``: the offsets (as fractions of (H, W)) tried in turn for each pixel of the donor's object
_FILL_SHIFTS = ((0.0, 0.5), (0.5, 0.0), (0.5, 0.5), (0.0, 0.25), (0.25, 0.0), (0.0, -0.25), (-0.25, 0.0),
                (0.25, 0.25), (-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25))
#: intervention name -> background source; the names ReLIC's ``interventions`` option accepts besides "augment"
MASK_INTERVENTIONS = {"background_swap": "batch", "texture_swap": "texture"}


def _rand(generator: torch.Generator | None, device: torch.device, *shape: int) -> Tensor:
    """U[0, 1) numbers drawn on the generator's device, moved to ``device``."""
    src = generator.device if generator is not None else device
    return torch.rand(*shape, generator=generator, device=src).to(device)


def _check_options(source: str, p: float, fill: str) -> float:
    if source not in BACKGROUND_SOURCES:
        raise ValueError(f"source: expected one of {BACKGROUND_SOURCES}, got {source!r}")
    if fill not in DONOR_FILLS:
        raise ValueError(f"fill: expected one of {DONOR_FILLS}, got {fill!r}")
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
    return float(p)


def _check_inputs(images: Any, masks: Any, generator: Any) -> Tensor:
    """Validate ``images``/``masks``/``generator``; returns the masks on the images' device."""
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        what = f"{images.dtype} tensor of shape {tuple(images.shape)}" if isinstance(images, Tensor) else \
            type(images).__name__
        raise ValueError(f"images: expected a float (B, C, H, W) tensor in [0, 1], got a {what}")
    if not isinstance(masks, Tensor):
        raise ValueError(f"masks: expected a bool or float (B, H, W) tensor, got {type(masks).__name__}")
    b, _, h, w = images.shape
    if masks.shape != (b, h, w):
        raise ValueError(f"masks: expected shape {(b, h, w)} (one (H, W) mask per image), got {tuple(masks.shape)}")
    if masks.dtype != torch.bool and not masks.is_floating_point():
        raise ValueError(f"masks: expected bool (hard) or float in [0, 1] (alpha) masks, got {masks.dtype}")
    if masks.is_floating_point() and masks.numel() and not bool(((masks >= 0) & (masks <= 1)).all()):
        raise ValueError("masks: float masks are alpha mattes and must lie in [0, 1]")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    return masks.to(images.device)


def procedural_backgrounds(n: int, height: int, width: int, generator: torch.Generator | None = None, *,
                           channels: int = 3, device: torch.device | str = "cpu",
                           dtype: torch.dtype = torch.float32) -> Tensor:
    """``n`` random two-colour procedural textures ``(n, channels, height, width)`` in [0, 1].

    b = c₀ + (c₁ − c₀)·t, t = ``render_textures`` intensity of a family drawn uniformly from
    ``TEXTURE_FAMILIES`` with frequency U(2.5, 5.5), orientation U(0, π), phases U[0, 1)², a random
    noise seed, and colours c₀, c₁ ~ U[0, 1]^channels. Rendered square at max(height, width) (the
    textures' frequencies are relative to that side) and cropped. All draws from ``generator``.
    """
    from ..data.textures import TEXTURE_FAMILIES, render_textures  # lazy: keeps causal below data

    device = torch.device(device)
    src = generator.device if generator is not None else device
    family = torch.randint(len(TEXTURE_FAMILIES), (n,), generator=generator, device=src).to(device)
    u = _rand(generator, device, n, 4)
    seed = torch.randint(2**30, (n,), generator=generator, device=src).to(device)
    colours = _rand(generator, device, n, 2, channels)
    params = {"tex_freq": 2.5 + 3.0 * u[:, 0], "tex_angle": math.pi * u[:, 1], "tex_phase": u[:, 2:4],
              "tex_seed": seed}
    side = max(int(height), int(width))
    t = render_textures(family, params, side)[:, None, :height, :width]  # (n, 1, H, W) float32
    c0, c1 = colours[:, 0, :, None, None], colours[:, 1, :, None, None]
    return (c0 + (c1 - c0) * t).to(dtype)


def _dilate(masks: Tensor) -> Tensor:
    """The masks grown by one pixel (3 × 3 max filter; bool stays bool, alpha stays alpha)."""
    grown = F.max_pool2d(masks[:, None].to(torch.float32), kernel_size=3, stride=1, padding=1)[:, 0]
    return grown > 0.5 if masks.dtype == torch.bool else grown.to(masks.dtype)


def _mean_background(images: Tensor, masks: Tensor) -> Tensor:
    """Per-image, per-channel mean over background pixels ``(B, C, 1, 1)``; 0.5 where there are none."""
    weight = (1.0 - masks.to(images.dtype))[:, None]  # (B, 1, H, W): 1 on background
    total = weight.sum(dim=(2, 3), keepdim=True)
    mean = (images * weight).sum(dim=(2, 3), keepdim=True) / total.clamp_min(1e-12)
    return torch.where(total > 0, mean, torch.full_like(mean, 0.5))


def _shift_fill(images: Tensor, masks: Tensor) -> Tensor:
    """Each image with its object region filled from its own background, circularly shifted (``fill="shift"``).

    For the offsets of ``_FILL_SHIFTS`` in turn, a still-unfilled object pixel takes the pixel at that
    offset if it is background there (mask < ½); pixels no offset reaches get the mean background colour.
    """
    h, w = images.shape[-2:]
    hole = masks >= 0.5 if masks.is_floating_point() else masks
    filled = _mean_background(images, masks).expand_as(images).clone()
    todo = hole.clone()
    for fy, fx in _FILL_SHIFTS:
        shift = (round(fy * h), round(fx * w))
        if shift == (0, 0):
            continue
        source_bg = ~hole.roll(shift, dims=(1, 2))
        take = todo & source_bg
        filled = torch.where(take[:, None], images.roll(shift, dims=(2, 3)), filled)
        todo = todo & ~take
    return filled


def _composite(fg: Tensor, bg: Tensor, masks: Tensor) -> Tensor:
    """m ⊙ fg + (1 − m) ⊙ bg; exact copies (``torch.where``) for bool masks."""
    if masks.dtype == torch.bool:
        return torch.where(masks[:, None], fg, bg)
    alpha = masks[:, None].to(fg.dtype)
    return fg * alpha + bg * (1.0 - alpha)


def background_swap(images: Tensor, masks: Tensor, generator: torch.Generator | None = None, *,
                    source: str = "batch", p: float = 1.0, fill: str = "shift",
                    return_draw: bool = False) -> Tensor | tuple[Tensor, Tensor, Tensor]:
    """do(background = b′): each image's object pasted on a new background (see the module docstring).

    Args:
        images: float ``(B, C, H, W)`` in [0, 1] (any float dtype, any device).
        masks: foreground masks ``(B, H, W)``, bool (cut-out) or float in [0, 1] (alpha); moved to the
            images' device.
        generator: the source of every random draw (selection, donors, textures); ``None`` uses torch's
            global generator.
        source: ``"batch"`` (another image's background) or ``"texture"`` (a procedural texture).
        p: probability that a sample is swapped (independently per sample); samples not chosen are
            returned unchanged. ``p = 0`` returns a copy and draws nothing.
        fill: ``source="batch"`` only: what fills the donor's object region: ``"shift"`` (the donor's
            background shifted onto it), ``"mean"`` (its mean background colour), ``"texture"`` or
            ``"donor"`` (its pixels as they are).
        return_draw: also return ``swapped`` (bool ``(B,)``) and ``donors`` (long ``(B,)``: the donor of
            each sample for ``source="batch"``, its own index for ``"texture"``), both on the images' device.

    Returns:
        The swapped images, same shape, dtype and device as ``images`` (plus the draw if asked).

    Raises:
        ValueError: a non-float or non-4-D ``images``; ``masks`` of another shape, an integer dtype or
            float values outside [0, 1]; a bad ``source``/``fill``/``p``/``generator``.
    """
    p = _check_options(source, p, fill)
    masks = _check_inputs(images, masks, generator)
    b, c, h, w = images.shape
    device = images.device
    index = torch.arange(b, device=device)
    if p == 0.0 or b == 0:
        out = images.clone()
        return (out, torch.zeros(b, dtype=torch.bool, device=device), index) if return_draw else out
    swapped = _rand(generator, device, b) < p
    if source == "batch":
        src = generator.device if generator is not None else device
        perm = torch.randperm(b, generator=generator, device=src).to(device)
        donors = torch.empty_like(index)
        donors[perm] = perm.roll(-1)  # one cycle: d(π_k) = π_{k+1 mod B}, no fixed point for B ≥ 2
        background = images[donors]
        if fill != "donor":
            donor_masks = _dilate(masks[donors])
            if fill == "texture":
                hole = procedural_backgrounds(b, h, w, generator, channels=c, device=device, dtype=images.dtype)
            elif fill == "mean":
                hole = _mean_background(background, donor_masks).expand_as(background)
            else:
                hole = _shift_fill(background, donor_masks)
            background = _composite(hole, background, donor_masks)
    else:
        donors = index
        background = procedural_backgrounds(b, h, w, generator, channels=c, device=device, dtype=images.dtype)
    out = torch.where(swapped[:, None, None, None], _composite(images, background, masks), images)
    return (out, swapped, donors) if return_draw else out


class BackgroundSwap:
    """The settings of a background swap; ``bind(masks)`` makes the ``StyleIntervention`` of one batch.

    Args:
        source: ``"batch"`` or ``"texture"`` (see ``background_swap``).
        p: probability of swapping each sample.
        fill: what fills the donor's object region (``source="batch"``).

    Example:
        >>> swap = BackgroundSwap("batch")
        >>> x, m = torch.rand(4, 3, 8, 8), torch.zeros(4, 8, 8, dtype=torch.bool)
        >>> swap.bind(m)(x, torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3, 8, 8])
    """

    def __init__(self, source: str = "batch", p: float = 1.0, fill: str = "shift") -> None:
        self.p = _check_options(source, p, fill)
        self.source, self.fill = source, fill

    @classmethod
    def from_name(cls, name: str, p: float = 1.0, fill: str = "shift") -> BackgroundSwap:
        """The swap of an intervention name of ``MASK_INTERVENTIONS`` (``"background_swap"``, ``"texture_swap"``)."""
        if name not in MASK_INTERVENTIONS:
            raise ValueError(f"name: expected one of {list(MASK_INTERVENTIONS)}, got {name!r}")
        return cls(MASK_INTERVENTIONS[name], p=p, fill=fill)

    @property
    def name(self) -> str:
        """``"background_swap"`` (batch donors) or ``"texture_swap"`` (procedural textures)."""
        return next(k for k, v in MASK_INTERVENTIONS.items() if v == self.source)

    def __call__(self, images: Tensor, masks: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return background_swap(images, masks, generator, source=self.source, p=self.p, fill=self.fill)

    def bind(self, masks: Tensor) -> StyleIntervention:
        """An opaque ``StyleIntervention`` do(background = b′) for the batch whose masks are ``masks``:
        calling it with that batch's images (and a generator) draws one swap."""

        def augment(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
            return self(images, masks, generator)

        return StyleIntervention(self.name, augment, parameters={"source": self.source, "p": self.p,
                                                                  "fill": self.fill})

    def __repr__(self) -> str:
        return f"BackgroundSwap(source={self.source!r}, p={self.p}, fill={self.fill!r})"


def background_swap_intervention(masks: Tensor, *, source: str = "batch", p: float = 1.0,
                                 fill: str = "shift") -> StyleIntervention:
    """``BackgroundSwap(source, p, fill).bind(masks)``: the StyleIntervention do(background = b′) of one batch."""
    return BackgroundSwap(source, p, fill).bind(masks)
