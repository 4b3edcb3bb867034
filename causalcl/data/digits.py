"""Digits-on-Textures: real handwritten digits on real CC0 textures and photos (DESIGN §4.2).

Foreground: the 1,797 handwritten digits of ``sklearn.datasets.load_digits`` (8x8, values 0..16),
upsampled bilinearly to ``glyph_size`` (default ``round(22/32 * image_size)``), alpha
``a = clamp((x/16 - 0.25) / 0.5, 0, 1)``, mask ``x/16 >= 0.5`` (i.e. ``a >= 0.5``), filled with a
colour of hue ``fg_hue``. Background: a crop of one of ten images that ship inside scikit-image
(CC0 / public domain; no download): brick, grass, gravel, coffee, chelsea, astronaut, rocket,
hubble_deep_field, camera, moon. Each source is resized so that its shorter side is ``3 *
image_size``; grey sources are tinted with hue ``bg_hue``, colour ones are hue-rotated by
``2 pi bg_hue`` in YIQ space.

The SCM (noise uniform on [0,1))::

    cls       := floor(10 u)                                      content, the label
    glyph     := pool_split[cls][floor(|pool| u)]                 content (index into load_digits)
    pos_x     := u,  pos_y := u                                   content (offset in the free canvas)
    fg_hue    := u,  bg_hue := u,  brightness := 0.55 + 0.45 u    style
    bg_source := cls if u1 < rho else floor(10 u2)                style, confounded by cls
    crop_x    := u,  crop_y := u                                  style (crop offset in the source)

``probe`` and ``test`` use ``do(bg_source ~ Uniform{0..9})``.

Glyph split (fixed, independent of ``seed``): per class, a permutation with seed 0 assigns 60% of
the glyphs to ``train`` and 20% each to ``probe`` and ``test`` (1,078 / 359 / 360 glyphs), so no
handwritten glyph is shared between splits; within a split each glyph appears several times with
different positions, colours and backgrounds. Background crops are NOT split: all splits crop the
same ten source images (the background is the style variable, not the content).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..causal.scm import SCM, uniform_choice
from .base import SCMImageDataset
from .textures import hsv_to_rgb

__all__ = ["DigitsDataset", "BACKGROUND_SOURCES", "glyph_split"]

BACKGROUND_SOURCES = (
    "brick",
    "grass",
    "gravel",
    "coffee",
    "chelsea",
    "astronaut",
    "rocket",
    "hubble_deep_field",
    "camera",
    "moon",
)
DEFAULT_SIZES = {"train": 10_000, "probe": 2_000, "test": 2_000}
SPLIT_FRACTIONS = {"train": (0.0, 0.6), "probe": (0.6, 0.8), "test": (0.8, 1.0)}
# YIQ (NTSC) colour space: hue rotation = rotation of the (I, Q) plane.
_RGB2YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = np.linalg.inv(_RGB2YIQ)


@functools.lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


def glyph_split(split: str) -> list[np.ndarray]:
    """Per class, the indices (into ``load_digits``) of the glyphs used by ``split``."""
    _, target = _load_digits()
    lo, hi = SPLIT_FRACTIONS[split]
    rng = np.random.default_rng(0)
    pools = []
    for c in range(10):
        idx = rng.permutation(np.nonzero(target == c)[0])
        pools.append(np.sort(idx[int(round(lo * len(idx))) : int(round(hi * len(idx)))]))
    return pools


@functools.lru_cache(maxsize=4)
def _backgrounds(size: int) -> tuple[tuple[Tensor, ...], tuple[bool, ...]]:
    """The ten sources as float tensors ``(3, h, w)`` in [0,1], shorter side ``3 * size``."""
    import skimage.data

    out, grey = [], []
    for name in BACKGROUND_SOURCES:
        img = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
        is_grey = img.ndim == 2
        t = torch.from_numpy(img[None] if is_grey else img[..., :3].transpose(2, 0, 1).copy())
        h, w = t.shape[1:]
        f = 3 * size / min(h, w)
        t = F.interpolate(
            t[None],
            size=(max(size, round(h * f)), max(size, round(w * f))),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )[0].clamp(0, 1)
        out.append(t.expand(3, -1, -1).contiguous() if is_grey else t)
        grey.append(is_grey)
    return tuple(out), tuple(grey)


@functools.lru_cache(maxsize=4)
def _glyph_alpha(glyph_size: int) -> tuple[Tensor, Tensor]:
    """All 1,797 glyphs upsampled: alpha and mask, each ``(1797, g, g)``."""
    images, _ = _load_digits()
    up = F.interpolate(
        torch.from_numpy(images)[:, None], size=(glyph_size, glyph_size), mode="bilinear", align_corners=False
    )[:, 0]
    return ((up - 0.25) / 0.5).clamp(0, 1), up >= 0.5


def _u(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n)


class DigitsDataset(SCMImageDataset):
    """Digits-on-Textures; see the module docstring for the model, renderer and glyph split.

    Args:
        split: ``train`` (confounded, ``rho``), ``probe`` or ``test`` (``do(bg_source ~ uniform)``).
        root: cache directory (default ``$CAUSALCL_CACHE`` or ``~/.cache/causalcl``).
        n: number of samples (default 10,000 / 2,000 / 2,000).
        image_size: side in pixels (>= 16, default 32).
        seed: base seed; samples are deterministic per (seed, split, index).
        rho: strength of the ``cls -> bg_source`` edge in ``train``.
        glyph_size: side of the upsampled digit (default ``round(22/32 * image_size)``).
        cache: read/write the rendered arrays on disk.
    """

    name = "digits"
    #: which SCM variables are content (what the class is about) and which are style
    latent_roles = {"cls": "content", "glyph": "content", "pos_x": "content", "pos_y": "content",
                    "fg_hue": "style", "bg_hue": "style", "brightness": "style", "bg_source": "style",
                    "crop_x": "style", "crop_y": "style"}
    #: the latents that wrap around (hues; angles), name -> period
    latent_periods = {"fg_hue": 1.0, "bg_hue": 1.0}

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        n: int | None = None,
        image_size: int = 32,
        seed: int = 0,
        rho: float = 0.9,
        glyph_size: int | None = None,
        cache: bool = True,
    ) -> None:
        if int(image_size) != image_size or image_size < 16:
            raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho must lie in [0, 1], got {rho!r}")
        glyph_size = round(22 / 32 * image_size) if glyph_size is None else glyph_size
        if not 4 <= glyph_size <= image_size:
            raise ValueError(f"glyph_size must lie in [4, image_size={image_size}], got {glyph_size}")
        self.size, self.rho, self.glyph_size = int(image_size), float(rho), int(glyph_size)
        self.source_names = list(BACKGROUND_SOURCES)
        self._pool_split = split if split in SPLIT_FRACTIONS else "train"
        n = DEFAULT_SIZES.get(split, 0) if n is None else n
        self._generate(split, n, seed, [str(d) for d in range(10)], cache, root)

    # ------------------------------------------------------------------ model
    def build_scm(self) -> SCM:
        pools = glyph_split(self._pool_split)
        lengths = np.array([len(p) for p in pools])
        table = np.full((10, lengths.max()), -1, dtype=np.int64)
        for c, p in enumerate(pools):
            table[c, : len(p)] = p
        nsrc, rho = len(BACKGROUND_SOURCES), self.rho

        def glyph(p: dict[str, np.ndarray], u: np.ndarray) -> np.ndarray:
            c = p["cls"]
            return table[c, np.minimum((u * lengths[c]).astype(np.int64), lengths[c] - 1)]

        def source(p: dict[str, np.ndarray], u: np.ndarray) -> np.ndarray:
            other = np.minimum((u[:, 1] * nsrc).astype(np.int64), nsrc - 1)
            return np.where(u[:, 0] < rho, p["cls"] % nsrc, other)

        return (
            SCM()
            .add("cls", mechanism=lambda p, u: np.minimum((u * 10).astype(np.int64), 9), noise=_u)
            .add("glyph", parents=["cls"], mechanism=glyph, noise=_u)
            .add("pos_x", noise=_u)
            .add("pos_y", noise=_u)
            .add("fg_hue", noise=_u)
            .add("bg_hue", noise=_u)
            .add("brightness", mechanism=lambda p, u: 0.55 + 0.45 * u, noise=_u)
            .add("bg_source", parents=["cls"], mechanism=source, noise=lambda rng, n: rng.random((n, 2)))
            .add("crop_x", noise=_u)
            .add("crop_y", noise=_u)
        )

    def split_scm(self, scm: SCM, split: str) -> SCM:
        return scm if split == "train" else scm.do(bg_source=uniform_choice(len(BACKGROUND_SOURCES)))

    def sample_render_noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return {
            "fg_sat": rng.uniform(0.65, 1.0, n),
            "fg_val": rng.uniform(0.75, 1.0, n),
            "bg_sat": rng.uniform(0.3, 0.8, n),
        }

    def generation_params(self) -> dict[str, Any]:
        import skimage
        import sklearn

        return {
            "image_size": self.size,
            "rho": self.rho,
            "glyph_size": self.glyph_size,
            "pool": self._pool_split,
            "sklearn": sklearn.__version__,
            "skimage": skimage.__version__,
        }

    # ------------------------------------------------------------------ renderer
    def render(
        self, values: Mapping[str, np.ndarray], render_noise: Mapping[str, np.ndarray]
    ) -> tuple[Tensor, Tensor]:
        s, g = self.size, self.glyph_size
        b = len(values["cls"])
        bg = self._background(values, render_noise)

        alpha_all, mask_all = _glyph_alpha(g)
        glyph = torch.from_numpy(np.asarray(values["glyph"], dtype=np.int64))
        ox = torch.from_numpy(np.rint(np.asarray(values["pos_x"]) * (s - g)).astype(np.int64))
        oy = torch.from_numpy(np.rint(np.asarray(values["pos_y"]) * (s - g)).astype(np.int64))
        ar = torch.arange(g)
        bi = torch.arange(b).view(-1, 1, 1)
        rows = (oy.view(-1, 1) + ar).view(b, g, 1)
        cols = (ox.view(-1, 1) + ar).view(b, 1, g)
        alpha = torch.zeros(b, s, s)
        mask = torch.zeros(b, s, s, dtype=torch.bool)
        alpha[bi, rows, cols] = alpha_all[glyph]
        mask[bi, rows, cols] = mask_all[glyph]

        fg = hsv_to_rgb(values["fg_hue"], render_noise["fg_sat"], render_noise["fg_val"])
        fg_t = torch.from_numpy(fg.astype(np.float32))[:, :, None, None]
        gain = torch.from_numpy(np.asarray(values["brightness"], dtype=np.float32)).view(-1, 1, 1, 1)
        img = (bg + (fg_t - bg) * alpha[:, None]) * gain
        return img.clamp_(0, 1), mask

    def _background(self, values: Mapping[str, np.ndarray], render_noise: Mapping[str, np.ndarray]) -> Tensor:
        s = self.size
        sources, grey = _backgrounds(s)
        src_idx = np.asarray(values["bg_source"], dtype=np.int64)
        out = torch.empty(len(src_idx), 3, s, s)
        ar = torch.arange(s)
        for k in np.unique(src_idx).tolist():
            sel = np.nonzero(src_idx == k)[0]
            src = sources[k]
            h, w = src.shape[1:]
            oy = torch.from_numpy(np.floor(np.asarray(values["crop_y"])[sel] * (h - s + 1)).astype(np.int64))
            ox = torch.from_numpy(np.floor(np.asarray(values["crop_x"])[sel] * (w - s + 1)).astype(np.int64))
            rows = (oy.view(-1, 1) + ar).clamp(max=h - 1)[:, :, None]
            cols = (ox.view(-1, 1) + ar).clamp(max=w - 1)[:, None, :]
            crop = src[:, rows, cols].permute(1, 0, 2, 3)  # (k, 3, s, s)
            hue = np.asarray(values["bg_hue"])[sel]
            if grey[k]:
                tint = hsv_to_rgb(hue, render_noise["bg_sat"][sel], np.ones(len(sel)))
                crop = crop * torch.from_numpy(tint.astype(np.float32))[:, :, None, None]
            else:
                theta = 2 * np.pi * hue
                c, si = np.cos(theta), np.sin(theta)
                rot = np.zeros((len(sel), 3, 3))
                rot[:, 0, 0] = 1
                rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -si, si, c
                m = torch.from_numpy((_YIQ2RGB @ rot @ _RGB2YIQ).astype(np.float32))
                crop = torch.einsum("kij,kjhw->kihw", m, crop).clamp(0, 1)
            out[torch.from_numpy(sel)] = crop
        return out
