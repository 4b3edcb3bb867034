"""Procedural texture families, rendered for a whole batch at once (torch, no per-image loop).

Each family maps image coordinates ``(x, y) in [0,1]^2`` and per-sample parameters (frequency in
cycles per image, orientation, two phases, an integer seed for the noise lattices) to an intensity
in ``[0, 1]``. Frequencies are relative to the image, so a texture looks the same at any resolution.
Families: stripes, checker, dots, noise, waves, grid, gradient, blotches.

The random families use *value noise*: a hash of integer lattice coordinates and the sample's
seed gives a value per lattice point, interpolated with the smoothstep ``3t^2 - 2t^3`` (Perlin 1985,
"An image synthesizer"); so no per-image random array has to be stored.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "TEXTURE_FAMILIES",
    "sample_texture_params",
    "render_textures",
    "value_noise",
    "pixel_grid",
    "hsv_to_rgb",
]

TEXTURE_FAMILIES = ("stripes", "checker", "dots", "noise", "waves", "grid", "gradient", "blotches")
_MASK31 = 0x7FFFFFFF


def sample_texture_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Exogenous texture noise for ``n`` samples: ``tex_freq`` (cycles/image, 2.5..5.5),
    ``tex_angle`` (radians, [0, pi)), ``tex_phase`` ``(n, 2)`` in [0,1), ``tex_seed`` (int)."""
    return {
        "tex_freq": rng.uniform(2.5, 5.5, n),
        "tex_angle": rng.uniform(0.0, math.pi, n),
        "tex_phase": rng.random((n, 2)),
        "tex_seed": rng.integers(0, 2**30, n, dtype=np.int64),
    }


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB for arrays of equal shape (hue wraps mod 1); returns ``(*shape, 3)``."""
    h = np.mod(np.asarray(h, dtype=np.float64), 1.0)
    s = np.asarray(s, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    k = np.mod(np.stack([5.0, 3.0, 1.0]).reshape((1,) * h.ndim + (3,)) + h[..., None] * 6.0, 6.0)
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def pixel_grid(size: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates ``x, y`` of a ``size x size`` image in [0,1], each ``(1, size, size)``."""
    c = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    y, x = torch.meshgrid(c, c, indexing="ij")
    return x[None], y[None]


def _hash01(ix: Tensor, iy: Tensor, seed: Tensor) -> Tensor:
    """Integer hash of lattice points to [0,1) (31-bit arithmetic, no int64 overflow)."""
    h = (ix * 73856093 + iy * 19349663 + seed * 83492791) & _MASK31
    h = ((h ^ (h >> 13)) * 1274126) & _MASK31
    h = ((h ^ (h >> 15)) * 668265) & _MASK31
    h = h ^ (h >> 16)
    return h.float() / float(_MASK31 + 1)


def value_noise(x: Tensor, y: Tensor, seed: Tensor) -> Tensor:
    """Smooth value noise at lattice coordinates ``x, y`` (one lattice cell per unit) for per-sample
    integer ``seed``; ``x, y`` broadcast to ``(B, H, W)`` and ``seed`` to ``(B, 1, 1)``. Values in [0,1].

    Lattice values are hashed once per sample on the small lattice that covers its coordinates and
    gathered per pixel, which is much cheaper than hashing four corners at every pixel.
    """
    x, y = torch.broadcast_tensors(x + 4096.0, y + 4096.0)
    b = x.shape[0]
    seed = torch.as_tensor(seed, device=x.device).long().reshape(-1, 1, 1).expand(b, 1, 1)
    x0, y0 = torch.floor(x), torch.floor(y)
    tx, ty = x - x0, y - y0
    tx = tx * tx * (3 - 2 * tx)
    ty = ty * ty * (3 - 2 * ty)
    ix, iy = x0.long(), y0.long()
    bx = ix.amin(dim=(1, 2), keepdim=True)
    by = iy.amin(dim=(1, 2), keepdim=True)
    ix, iy = ix - bx, iy - by
    side = int(max(int(ix.max()), int(iy.max()))) + 2
    g = torch.arange(side, device=x.device)
    lattice = _hash01(bx + g.view(1, 1, side), by + g.view(1, side, 1), seed).reshape(b, side * side)
    idx = (iy * side + ix).reshape(b, -1)

    def at(offset: int) -> Tensor:
        return torch.gather(lattice, 1, idx + offset).view_as(tx)

    v00, v10, v01, v11 = at(0), at(1), at(side), at(side + 1)
    top = v00 + (v10 - v00) * tx
    bot = v01 + (v11 - v01) * tx
    return top + (bot - top) * ty


def _sharp(z: Tensor, k: float = 3.0) -> Tensor:
    """Map a wave in [-1, 1] to [0, 1] with crisper transitions (scaled tanh)."""
    return 0.5 + 0.5 * torch.tanh(k * z) / math.tanh(k)


def _smoothstep(e0: float, e1: float, v: Tensor) -> Tensor:
    t = ((v - e0) / (e1 - e0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _family(
    fid: int, u: Tensor, v: Tensor, x: Tensor, y: Tensor, f: Tensor, p0: Tensor, p1: Tensor, seed: Tensor
) -> Tensor:
    two_pi = 2 * math.pi
    if fid == 0:  # stripes
        return _sharp(torch.sin(two_pi * (f * u + p0)))
    if fid == 1:  # checker
        return _sharp(torch.sin(two_pi * (0.8 * f * u + p0)) * torch.sin(two_pi * (0.8 * f * v + p1)), 6.0)
    if fid == 2:  # dots on a lattice
        du = torch.frac(0.9 * f * u + p0 + 64) - 0.5
        dv = torch.frac(0.9 * f * v + p1 + 64) - 0.5
        return 1 - _smoothstep(0.2, 0.32, torch.sqrt(du * du + dv * dv))
    if fid == 3:  # fractal value noise (two octaves)
        s = seed
        c = 1.6 * f
        return 0.65 * value_noise(c * x + 17 * p0, c * y + 17 * p1, s) + 0.35 * value_noise(
            2 * c * x, 2 * c * y, s + 7919
        )
    if fid == 4:  # waves: stripes bent by a transverse sine
        return _sharp(torch.sin(two_pi * (f * u + 0.35 * torch.sin(two_pi * (0.5 * f * v + p1)) + p0)))
    if fid == 5:  # grid of lines
        gu = (torch.frac(0.8 * f * u + p0 + 64) - 0.5).abs()
        gv = (torch.frac(0.8 * f * v + p1 + 64) - 0.5).abs()
        return _smoothstep(0.3, 0.38, torch.maximum(gu, gv))
    if fid == 6:  # gradient: one slow oscillation across the image
        return 0.5 + 0.5 * torch.sin(two_pi * ((0.15 * f + 0.1) * u + p0))
    if fid == 7:  # blotches: thresholded low-frequency value noise
        c = 0.8 * f
        return _smoothstep(0.42, 0.58, value_noise(c * x + 17 * p0, c * y + 17 * p1, seed))
    raise ValueError(f"unknown texture family {fid}; families: {TEXTURE_FAMILIES}")


def render_textures(family: Tensor, params: dict[str, Tensor], size: int) -> Tensor:
    """Render one texture per sample.

    Args:
        family: long ``(B,)`` family indices into :data:`TEXTURE_FAMILIES`.
        params: ``tex_freq``, ``tex_angle`` ``(B,)``; ``tex_phase`` ``(B, 2)``; ``tex_seed`` long ``(B,)``.
        size: output side in pixels.

    Returns:
        float ``(B, size, size)`` in [0, 1].
    """
    family = family.long()
    b = family.shape[0]
    device = family.device
    x, y = pixel_grid(size, device)
    out = torch.empty(b, size, size, device=device)
    for fid in torch.unique(family).tolist():
        sel = (family == fid).nonzero(as_tuple=True)[0]
        f = params["tex_freq"][sel].float().view(-1, 1, 1)
        a = params["tex_angle"][sel].float().view(-1, 1, 1)
        ph = params["tex_phase"][sel].float()
        p0, p1 = ph[:, 0].view(-1, 1, 1), ph[:, 1].view(-1, 1, 1)
        seed = params["tex_seed"][sel].long().view(-1, 1, 1)
        ca, sa = torch.cos(a), torch.sin(a)
        u = ca * x + sa * y
        v = -sa * x + ca * y
        out[sel] = _family(int(fid), u, v, x, y, f, p0, p1, seed).clamp(0, 1)
    return out
