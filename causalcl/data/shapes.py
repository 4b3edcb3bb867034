"""SCM-Shapes: coloured shapes on confounded procedural textures (DESIGN §4.1).

The SCM (all noise uniform on [0,1) unless stated)::

    cls        := floor(K u)                                   content, the label (K = 8 shapes)
    scale      := 0.10 + 0.20 u                                content, area covered (fraction of image)
    rotation   := 2 pi u                                       content
    pos_x      := R + (1 - 2R) u,  R = extent(cls, scale)      content (the whole shape stays inside)
    pos_y      := R + (1 - 2R) u                               content
    fg_hue     := u                                            style
    bg_hue     := u                                            style (independent of fg_hue)
    brightness := 0.55 + 0.45 u                                style (global gain)
    bg_texture := cls mod T  if u1 < rho  else floor(T u2)     style, confounded by cls (T = 8)

``train`` uses this model; ``probe`` and ``test`` use ``do(bg_texture ~ Uniform{0..T-1})``.

Rendering (batched, torch): the texture family of ``bg_texture`` is rendered at 2x and
average-pooled, coloured between a dark and a light shade of ``bg_hue``; the shape is rasterised at
``supersample``x (default 2, each sub-pixel box-filtered from the shape's signed distance) and
average-pooled into a coverage map ``alpha``; ``image = brightness * (alpha * fg + (1 - alpha) * bg)``;
``mask = alpha >= 0.5``. The renderer's own exogenous noise (texture frequency, orientation, phases,
seed; colour saturation and value) is stored per sample, so :meth:`intervene` re-renders exactly the
same scene under ``do(...)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..causal.scm import SCM, uniform_choice
from .base import SCMImageDataset
from .textures import TEXTURE_FAMILIES, hsv_to_rgb, pixel_grid, render_textures, sample_texture_params

__all__ = [
    "ShapesDataset",
    "SHAPE_NAMES",
    "SHAPE_SYMMETRY",
    "background_layer",
    "composite",
    "foreground_rgb",
    "sample_scene_noise",
    "shape_coverage",
    "shape_inside",
    "shape_radius",
]

SHAPE_NAMES = ("disc", "square", "triangle", "cross", "ring", "star", "diamond", "crescent")
#: order of each shape's rotational symmetry (it looks the same every 2π/order; 0: every angle, a disc's or a
#: ring's rotation is invisible) — the identifiability read-out takes the rotation modulo it
SHAPE_SYMMETRY = {0: 0, 1: 4, 2: 3, 3: 4, 4: 0, 5: 5, 6: 2, 7: 1}
SCALE_RANGE = (0.10, 0.30)
DEFAULT_SIZES = {"train": 10_000, "probe": 2_000, "test": 2_000}
_STAR_INNER = 0.5


def _box(u: Tensor, v: Tensor, bx: float, by: float) -> Tensor:
    qx, qy = u.abs() - bx, v.abs() - by
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0)


def _polygon(u: Tensor, v: Tensor, sides: int, apothem: float, offset: float) -> Tensor:
    d = None
    for k in range(sides):
        phi = offset + 2 * math.pi * k / sides
        proj = u * math.cos(phi) + v * math.sin(phi)
        d = proj if d is None else torch.maximum(d, proj)
    return d - apothem


def shape_sdf(k: int, u: Tensor, v: Tensor) -> Tensor:
    """Signed distance (negative inside) to shape ``k`` in local coordinates (unit = shape radius; the
    shape fits in the unit disc; image ``y`` points down so the triangle points up).

    Exact for disc, ring, square, cross and crescent edges; for the polygons (triangle, star, diamond)
    it is the distance to the nearest edge line, exact near edges, which is all anti-aliasing needs.
    """
    if k == 0:  # disc
        return torch.sqrt(u * u + v * v) - 1.0
    if k == 1:  # square
        return _box(u, v, 0.72, 0.72)
    if k == 2:  # equilateral triangle, circumradius 1
        return _polygon(u, v, 3, 0.5, math.pi / 2)
    if k == 3:  # plus-shaped cross
        return torch.minimum(_box(u, v, 0.3, 0.95), _box(u, v, 0.95, 0.3))
    if k == 4:  # ring
        return (torch.sqrt(u * u + v * v) - 0.775).abs() - 0.225
    if k == 5:  # five-pointed star: fold into one sector, distance to the outer-inner vertex edge
        phi = torch.atan2(v, u) + math.pi / 2
        a = (torch.remainder(phi, 2 * math.pi / 5) - math.pi / 5).abs()
        r = torch.sqrt(u * u + v * v)
        px, py = r * torch.cos(a), r * torch.sin(a)
        dx, dy = _STAR_INNER * math.cos(math.pi / 5) - 1.0, _STAR_INNER * math.sin(math.pi / 5)
        return (dy * (px - 1.0) - dx * py) / math.hypot(dx, dy)
    if k == 6:  # diamond (rhombus, half-axes 0.6 and 1)
        return (u.abs() / 0.6 + v.abs() - 1.0) / math.hypot(1 / 0.6, 1.0)
    if k == 7:  # crescent: unit disc minus a disc of radius 0.8 centred at (0.5, 0)
        return torch.maximum(torch.sqrt(u * u + v * v) - 1.0, 0.8 - torch.sqrt((u - 0.5) ** 2 + v * v))
    raise ValueError(f"unknown shape {k}; shapes: {SHAPE_NAMES}")


def shape_inside(k: int, u: Tensor, v: Tensor) -> Tensor:
    """Inside test of shape ``k`` in local coordinates (``shape_sdf <= 0``)."""
    return shape_sdf(k, u, v) <= 0


def _shape_stats(res: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Area and extent (max radius) of each shape in local units, measured on a fine grid."""
    c = (torch.arange(res, dtype=torch.float32) + 0.5) / res * 2.2 - 1.1
    v, u = torch.meshgrid(c, c, indexing="ij")
    r = torch.sqrt(u * u + v * v)
    areas, extents = [], []
    for k in range(len(SHAPE_NAMES)):
        inside = shape_inside(k, u, v)
        areas.append(float(inside.float().mean()) * 2.2**2)
        extents.append(float(r[inside].max()))
    return np.array(areas), np.array(extents)


SHAPE_AREA, SHAPE_EXTENT = _shape_stats()


def shape_radius(cls: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Local unit length (image units) so that shape ``cls`` covers ``scale`` of the image area."""
    return np.sqrt(np.asarray(scale) / SHAPE_AREA[np.asarray(cls, dtype=np.int64)])


def _uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n)


class ShapesDataset(SCMImageDataset):
    """SCM-Shapes; see the module docstring for the model and the renderer.

    Args:
        split: ``train`` (confounded, ``rho``), ``probe`` or ``test`` (``do(bg_texture ~ uniform)``).
        root: cache directory (default ``$CAUSALCL_CACHE`` or ``~/.cache/causalcl``).
        n: number of samples (default 10,000 / 2,000 / 2,000).
        image_size: side in pixels (>= 16, default 32).
        seed: base seed; samples are deterministic per (seed, split, index).
        rho: strength of the ``cls -> bg_texture`` edge in ``train`` (probability of the class's texture).
        supersample: rasterisation factor of the shape (anti-aliasing; default 2).
        cache: read/write the rendered arrays on disk.
    """

    name = "shapes"
    #: which SCM variables are content (what the class is about) and which are style
    latent_roles = {"cls": "content", "scale": "content", "rotation": "content", "pos_x": "content",
                    "pos_y": "content", "fg_hue": "style", "bg_hue": "style", "brightness": "style",
                    "bg_texture": "style"}
    #: the latents that wrap around (hues; angles), name -> period
    latent_periods = {"rotation": 2 * math.pi, "fg_hue": 1.0, "bg_hue": 1.0}
    #: the rotation is identifiable only up to the shape's symmetry
    latent_symmetries = {"rotation": ("cls", SHAPE_SYMMETRY)}

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        n: int | None = None,
        image_size: int = 32,
        seed: int = 0,
        rho: float = 0.9,
        supersample: int = 2,
        cache: bool = True,
    ) -> None:
        if int(image_size) != image_size or image_size < 16:
            raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho must lie in [0, 1], got {rho!r}")
        if int(supersample) != supersample or supersample < 1:
            raise ValueError(f"supersample must be a positive integer, got {supersample!r}")
        self.size, self.rho, self.supersample = int(image_size), float(rho), int(supersample)
        self.num_textures = len(TEXTURE_FAMILIES)
        self.texture_names = list(TEXTURE_FAMILIES)
        n = DEFAULT_SIZES.get(split, 0) if n is None else n
        self._generate(split, n, seed, SHAPE_NAMES, cache, root)

    # ------------------------------------------------------------------ model
    def build_scm(self) -> SCM:
        k, t, rho = len(SHAPE_NAMES), self.num_textures, self.rho
        lo, hi = SCALE_RANGE

        def position(p: dict[str, np.ndarray], u: np.ndarray) -> np.ndarray:
            r = np.minimum(0.5, SHAPE_EXTENT[p["cls"]] * shape_radius(p["cls"], p["scale"]))
            return r + (1.0 - 2.0 * r) * u

        def texture(p: dict[str, np.ndarray], u: np.ndarray) -> np.ndarray:
            own = p["cls"] % t
            other = np.minimum((u[:, 1] * t).astype(np.int64), t - 1)
            return np.where(u[:, 0] < rho, own, other)

        return (
            SCM()
            .add("cls", mechanism=lambda p, u: np.minimum((u * k).astype(np.int64), k - 1), noise=_uniform)
            .add("scale", mechanism=lambda p, u: lo + (hi - lo) * u, noise=_uniform)
            .add("rotation", mechanism=lambda p, u: 2 * math.pi * u, noise=_uniform)
            .add("pos_x", parents=["cls", "scale"], mechanism=position, noise=_uniform)
            .add("pos_y", parents=["cls", "scale"], mechanism=position, noise=_uniform)
            .add("fg_hue", noise=_uniform)
            .add("bg_hue", noise=_uniform)
            .add("brightness", mechanism=lambda p, u: 0.55 + 0.45 * u, noise=_uniform)
            .add("bg_texture", parents=["cls"], mechanism=texture, noise=lambda rng, n: rng.random((n, 2)))
        )

    def split_scm(self, scm: SCM, split: str) -> SCM:
        return scm if split == "train" else scm.do(bg_texture=uniform_choice(self.num_textures))

    def sample_render_noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return sample_scene_noise(rng, n)

    def generation_params(self) -> dict[str, Any]:
        return {"image_size": self.size, "rho": self.rho, "supersample": self.supersample}

    # ------------------------------------------------------------------ renderer
    def render(
        self, values: Mapping[str, np.ndarray], render_noise: Mapping[str, np.ndarray]
    ) -> tuple[Tensor, Tensor]:
        bg = background_layer(values, render_noise, self.size, self.num_textures)
        fg_t = foreground_rgb(values, render_noise)
        alpha = self.coverage(values["cls"], values["scale"], values["pos_x"], values["pos_y"], values["rotation"])
        gain = torch.from_numpy(np.asarray(values["brightness"], dtype=np.float32)).view(-1, 1, 1, 1)
        return composite(bg, fg_t, alpha, gain)

    def coverage(
        self, cls: np.ndarray, scale: np.ndarray, pos_x: np.ndarray, pos_y: np.ndarray, rotation: np.ndarray
    ) -> Tensor:
        """Fraction of each output pixel covered by the shape, float ``(B, S, S)`` (:func:`shape_coverage`)."""
        return shape_coverage(cls, scale, pos_x, pos_y, rotation, self.size, self.supersample)


# ---------------------------------------------------------------------- rendering helpers
# Shared with ``moving_shapes`` (one clip = T frames of the same scene): each takes per-sample arrays.


def sample_scene_noise(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The renderer's exogenous noise of ``n`` scenes: texture parameters and colour saturation/value."""
    return {
        **sample_texture_params(rng, n),
        "fg_sat": rng.uniform(0.65, 1.0, n),
        "fg_val": rng.uniform(0.7, 1.0, n),
        "bg_sat": rng.uniform(0.3, 0.85, n),
        "bg_val_lo": rng.uniform(0.05, 0.35, n),
        "bg_val_hi": rng.uniform(0.6, 0.95, n),
        "bg_hue_shift": rng.uniform(-0.08, 0.08, n),
    }


def background_layer(
    values: Mapping[str, np.ndarray], render_noise: Mapping[str, np.ndarray], size: int, num_textures: int
) -> Tensor:
    """The coloured procedural background, float ``(B, 3, S, S)`` in [0, 1].

    The texture family ``values["bg_texture"]`` is rendered at 2x with the stored texture noise
    (``tex_freq``, ``tex_angle``, ``tex_phase``, ``tex_seed``) and average-pooled, then coloured between
    a dark shade (``bg_hue``, ``bg_sat``, ``bg_val_lo``) and a light one (``bg_hue + bg_hue_shift``,
    ``0.7 bg_sat``, ``bg_val_hi``).
    """
    tex_params = {
        k: torch.from_numpy(np.asarray(render_noise[k])) for k in ("tex_freq", "tex_angle", "tex_phase", "tex_seed")
    }
    family = torch.from_numpy(np.asarray(values["bg_texture"], dtype=np.int64) % num_textures)
    tex = F.avg_pool2d(render_textures(family, tex_params, 2 * size)[:, None], 2)  # (B,1,S,S)
    rn = render_noise
    bg_hue = values["bg_hue"]
    lo = hsv_to_rgb(bg_hue, rn["bg_sat"], rn["bg_val_lo"])
    hi = hsv_to_rgb(bg_hue + rn["bg_hue_shift"], 0.7 * rn["bg_sat"], rn["bg_val_hi"])
    lo_t, hi_t = (torch.from_numpy(c.astype(np.float32))[:, :, None, None] for c in (lo, hi))
    return lo_t + (hi_t - lo_t) * tex


def foreground_rgb(values: Mapping[str, np.ndarray], render_noise: Mapping[str, np.ndarray]) -> Tensor:
    """The object's colour from ``fg_hue`` and the stored ``fg_sat``/``fg_val``, float ``(B, 3, 1, 1)``."""
    fg = hsv_to_rgb(values["fg_hue"], render_noise["fg_sat"], render_noise["fg_val"])
    return torch.from_numpy(fg.astype(np.float32))[:, :, None, None]


def composite(bg: Tensor, fg: Tensor, alpha: Tensor, gain: Tensor) -> tuple[Tensor, Tensor]:
    """``image = gain * (alpha * fg + (1 - alpha) * bg)`` clamped to [0, 1], and ``mask = alpha >= 0.5``.

    Shapes ``bg (B,3,S,S)``, ``fg (B,3,1,1)``, ``alpha (B,S,S)``, ``gain (B,1,1,1)``.
    """
    img = (bg + (fg - bg) * alpha[:, None]) * gain
    return img.clamp_(0, 1), alpha >= 0.5


def shape_coverage(
    cls: np.ndarray,
    scale: np.ndarray,
    pos_x: np.ndarray,
    pos_y: np.ndarray,
    rotation: np.ndarray,
    size: int,
    supersample: int = 2,
) -> Tensor:
    """Fraction of each output pixel covered by shape ``cls`` (area fraction ``scale``, centre ``(pos_x, pos_y)``
    in image units, angle ``rotation``), float ``(B, size, size)``.

    Evaluated on a ``supersample``-times finer grid where each sub-pixel's coverage is the
    box-filtered signed distance ``clamp(0.5 - sdf / subpixel, 0, 1)``, then average-pooled.
    """
    cls = np.asarray(cls, dtype=np.int64)
    ss = supersample
    big = size * ss
    x, y = pixel_grid(big)
    out = torch.empty(len(cls), big, big)
    radius = shape_radius(cls, scale)

    def col(a: np.ndarray, sel: np.ndarray) -> Tensor:
        return torch.from_numpy(np.asarray(a, dtype=np.float32)[sel]).view(-1, 1, 1)

    for k in np.unique(cls).tolist():
        sel = np.nonzero(cls == k)[0]
        th, r = col(rotation, sel), col(radius, sel)
        dx, dy = x - col(pos_x, sel), y - col(pos_y, sel)
        c, s_ = torch.cos(th) / r, torch.sin(th) / r
        u = c * dx + s_ * dy
        v = c * dy - s_ * dx
        sd_pixels = shape_sdf(int(k), u, v).mul_(r * big)
        out[torch.from_numpy(sel)] = sd_pixels.neg_().add_(0.5).clamp_(0, 1)
    return F.avg_pool2d(out[:, None], ss)[:, 0] if ss > 1 else out
