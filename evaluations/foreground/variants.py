"""Background variants of a labelled, masked image set: the ImageNet-9 test sets, built from any data with masks.

Xiao, Engstrom, Ilyas & Madry, "Noise or Signal: The Role of Image Backgrounds in Object Recognition"
(ICLR 2021; ``MadryLab/backgrounds_challenge``) measure how much a classifier relies on the background with
variants of each test image x_i (foreground mask m_i, label y_i):

* ``original``   -- x_i unchanged.
* ``only_fg``    -- m_i * x_i: the foreground on black.
* ``no_fg``      -- (1 - m_i) * x_i: the foreground blacked out, its silhouette left.
* ``only_bg``    -- Only-BG-T: the foreground's bounding box filled with background texture tiled from the same
  image (tiling rule below). When the box covers the whole image there is no background to tile and the box
  is filled with black instead (their Only-BG-B). An image with an empty mask is left unchanged.
* ``mixed_same`` / ``mixed_rand`` / ``mixed_next`` -- the foreground of image i kept pixel for pixel on the
  ``only_bg`` background of another image j:  m_i * x_i + (1 - m_i) * only_bg_j, with j drawn (seeded) from

  - mixed_same: the images of the same class, j != i (j = i only when i is alone in its class);
  - mixed_rand: all images other than i, uniformly (so the class of j is random, weighted by class size);
  - mixed_next: the images of class (y_i + 1) mod C, C = ``num_classes`` (default max label + 1); when that
    class has no images, the next class that has some, (y_i + 2) mod C, ... .

The **BG-Gap** = acc(mixed_same) - acc(mixed_rand) (:func:`evaluations.foreground.bg_gap`) is the accuracy a
model gains from a background that agrees with the class, rather than one that does not.

**Tiling rule (Only-BG-T).** Let the box be rows [r0, r1] x columns [c0, c1] (inclusive) of the mask's
nonzero pixels. Outside the box lie four full-width/full-height strips: top (rows < r0), bottom (rows > r1),
left (columns < c0) and right (columns > c1). The strip with the largest area is the texture source (ties:
top, bottom, left, right in that order); it is repeated periodically across the box, starting at the box
edge: with the top strip (height h = r0) box pixel (r, c) takes pixel ((r - r0) mod h, c); with the bottom
strip (height h = H - 1 - r1) it takes (r1 + 1 + (r - r0) mod h, c); the left and right strips do the same
along columns, (r, (c - c0) mod w) and (r, c1 + 1 + (c - c0) mod w). Every source pixel lies outside the box
and so outside the mask: no foreground pixel can leak into the filled box.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validate import as_labels, check_int

__all__ = ["VARIANT_NAMES", "variants", "as_images", "as_masks"]

VARIANT_NAMES: tuple[str, ...] = (
    "original",
    "only_fg",
    "no_fg",
    "only_bg",
    "mixed_same",
    "mixed_rand",
    "mixed_next",
)
_RANGE_TOL = 1e-6


def _tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        if x.dtype == object or x.dtype.kind not in "biuf":
            raise ValueError(f"{name}: expected a numeric array, got dtype {x.dtype}")
        return torch.from_numpy(np.ascontiguousarray(x))
    raise ValueError(f"{name}: expected a torch tensor or numpy array, got {type(x).__name__}")


def as_images(images: Any, name: str = "images") -> torch.Tensor:
    """Validate float (N, 3, H, W) images in [0, 1] (tensor or numpy) and return a floating tensor."""
    t = _tensor(images, name)
    if t.dim() != 4 or t.shape[1] != 3:
        raise ValueError(f"{name}: expected float images of shape (N, 3, H, W), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[2] == 0 or t.shape[3] == 0:
        raise ValueError(f"{name}: expected at least one non-empty image, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"{name}: expected floating-point images in [0, 1], got dtype {t.dtype}; use x.float() / 255")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: expected finite values, found {int((~torch.isfinite(t)).sum())} NaN/inf entries")
    lo, hi = float(t.min()), float(t.max())
    if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
        raise ValueError(f"{name}: expected values in [0, 1], got range [{lo:g}, {hi:g}]")
    return t


def as_masks(masks: Any, images: torch.Tensor, name: str = "masks") -> torch.Tensor:
    """Validate foreground masks matching ``images`` and return a bool (N, H, W) tensor.

    Accepts bool or 0/1 numeric masks of shape (N, H, W) or (N, 1, H, W).
    """
    t = _tensor(masks, name)
    n, _, h, w = images.shape
    if t.dim() == 4 and t.shape[1] == 1:
        t = t[:, 0]
    if tuple(t.shape) != (n, h, w):
        raise ValueError(
            f"{name}: expected shape (N, H, W) = {(n, h, w)} to match images of shape {tuple(images.shape)}, "
            f"got {tuple(t.shape)}"
        )
    if t.dtype != torch.bool:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: expected a boolean (or 0/1) mask, found NaN/inf entries")
        if not bool(((t == 0) | (t == 1)).all()):
            raise ValueError(f"{name}: expected a boolean (or 0/1) mask, got other values (dtype {t.dtype})")
        t = t != 0
    return t.to(images.device)


def _bounding_boxes(masks: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per image: (has_fg, r0, r1, c0, c1), inclusive box of the mask's True pixels."""
    n, h, w = masks.shape
    rows = masks.any(dim=2)  # (N, H)
    cols = masks.any(dim=1)  # (N, W)
    has = rows.any(dim=1)
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    r0 = torch.where(rows, ar_h, h).amin(1)
    r1 = torch.where(rows, ar_h, -1).amax(1)
    c0 = torch.where(cols, ar_w, w).amin(1)
    c1 = torch.where(cols, ar_w, -1).amax(1)
    return has, r0, r1, c0, c1


def _only_bg(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Only-BG-T with the tiling rule of the module docstring (vectorised over images)."""
    n, ch, h, w = images.shape
    has, r0, r1, c0, c1 = _bounding_boxes(masks)
    r0c, r1c, c0c, c1c = (torch.where(has, v, 0) for v in (r0, r1, c0, c1))
    # Strip sizes (rows or columns) and areas: top, bottom, left, right.
    sizes = torch.stack([r0c, h - 1 - r1c, c0c, w - 1 - c1c], dim=1)  # (N, 4)
    areas = sizes * torch.tensor([w, w, h, h], device=images.device)
    strip = areas.argmax(dim=1)  # first maximum on ties
    can_tile = has & (areas.amax(dim=1) > 0)

    rr = torch.arange(h, device=images.device).view(1, h, 1)
    cc = torch.arange(w, device=images.device).view(1, 1, w)
    size = sizes.gather(1, strip[:, None]).clamp_min(1).view(n, 1, 1)
    dr = torch.remainder(rr - r0c.view(n, 1, 1), size)
    dc = torch.remainder(cc - c0c.view(n, 1, 1), size)
    s = strip.view(n, 1, 1)
    src_r = torch.where(s == 0, dr, torch.where(s == 1, r1c.view(n, 1, 1) + 1 + dr, rr.expand(n, h, w)))
    src_c = torch.where(s == 2, dc, torch.where(s == 3, c1c.view(n, 1, 1) + 1 + dc, cc.expand(n, h, w)))
    src_r = src_r.expand(n, h, w)
    src_c = src_c.expand(n, h, w)

    flat_idx = (src_r * w + src_c).reshape(n, 1, h * w).expand(n, ch, h * w)
    tiled = images.reshape(n, ch, h * w).gather(2, flat_idx).reshape(n, ch, h, w)
    tiled = torch.where(can_tile.view(n, 1, 1, 1), tiled, torch.zeros_like(tiled))  # Only-BG-B fallback

    in_box = (
        (rr >= r0.view(n, 1, 1)) & (rr <= r1.view(n, 1, 1)) & (cc >= c0.view(n, 1, 1)) & (cc <= c1.view(n, 1, 1))
    ) & has.view(n, 1, 1)
    return torch.where(in_box[:, None], tiled, images)


def _class_tables(labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images sorted by class, each class's start offset in that order, and its count."""
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    return order, starts, counts


def _draw_indices(labels: torch.Tensor, num_classes: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The background image j for every image i, for mixed_same, mixed_rand and mixed_next (seeded)."""
    n = labels.shape[0]
    idx = torch.arange(n)
    order, starts, counts = _class_tables(labels, num_classes)
    rank = torch.empty(n, dtype=torch.long)
    rank[order] = torch.arange(n)  # position of image i in the class-sorted order

    # mixed_same: a uniform draw among the other n_c - 1 members of the class (i itself if it is alone).
    n_c = counts[labels]
    own = rank - starts[labels]  # position of i within its class block
    k = (torch.rand(n, generator=gen) * (n_c - 1).clamp_min(1)).long().clamp_max((n_c - 2).clamp_min(0))
    k = torch.where(k >= own, k + 1, k)
    k = torch.where(n_c > 1, k, own)
    same = order[starts[labels] + k]

    # mixed_rand: uniform over the other images.
    if n > 1:
        r = (torch.rand(n, generator=gen) * (n - 1)).long().clamp_max(n - 2)
        rand = torch.where(r >= idx, r + 1, r)
    else:
        rand = idx.clone()

    # mixed_next: class (y + 1) mod C, or the next class after it that has images.
    present = counts > 0
    target = (labels + 1) % num_classes
    for _ in range(num_classes):  # at most C steps; all images are updated together
        missing = ~present[target]
        if not bool(missing.any()):
            break
        target = torch.where(missing, (target + 1) % num_classes, target)
    n_t = counts[target]
    k = (torch.rand(n, generator=gen) * n_t).long().clamp_max(n_t - 1)
    nxt = order[starts[target] + k]
    return {"mixed_same": same, "mixed_rand": rand, "mixed_next": nxt}


def variants(
    images: Any,
    masks: Any,
    labels: Any,
    *,
    seed: int = 0,
    num_classes: int | None = None,
    return_indices: bool = False,
) -> dict[str, torch.Tensor] | tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Build the ImageNet-9 background variants of ``images`` (see the module docstring for the semantics).

    Args:
        images: float (N, 3, H, W) in [0, 1], torch tensor or numpy array.
        masks: foreground masks, bool (or 0/1) (N, H, W) or (N, 1, H, W); True = foreground.
        labels: integer class labels (N,), in [0, num_classes).
        seed: seeds the choice of the background images of the mixed variants (CPU generator).
        num_classes: C for mixed_next's (y + 1) mod C; default max(labels) + 1.
        return_indices: also return ``{"mixed_same", "mixed_rand", "mixed_next"} -> (N,) long`` tensors, the
            index j of the image whose ``only_bg`` background each composite uses.

    Returns:
        dict variant name -> (N, 3, H, W) tensor in the images' dtype and device (``original`` is the input
        itself, not a copy), in the order of :data:`VARIANT_NAMES`; with ``return_indices`` the tuple
        ``(variants, indices)``.
    """
    x = as_images(images)
    m = as_masks(masks, x)
    n = x.shape[0]
    y = as_labels(labels, "labels", n=n).cpu()
    seed = check_int(seed, "seed")
    if num_classes is None:
        num_classes = int(y.max()) + 1
    num_classes = check_int(num_classes, "num_classes", low=1)
    y = as_labels(y, "labels", n=n, num_classes=num_classes)

    mf = m[:, None].to(x.dtype)
    only_bg = _only_bg(x, m)
    gen = torch.Generator().manual_seed(seed)
    indices = _draw_indices(y, num_classes, gen)
    fg = x * mf
    out: dict[str, torch.Tensor] = {
        "original": x,
        "only_fg": fg,
        "no_fg": x * (1 - mf),
        "only_bg": only_bg,
    }
    for name, j in indices.items():
        # torch.where keeps the foreground pixels bit for bit (no arithmetic on them).
        out[name] = torch.where(m[:, None], x, only_bg[j.to(x.device)])
    return (out, indices) if return_indices else out
