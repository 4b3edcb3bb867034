"""Moving-SCM-Shapes: clips of a coloured shape moving over a confounded procedural texture (issue 16).

The video counterpart of ``shapes`` (DESIGN §4.1): one SCM sample is one clip of ``T`` frames (default
8 × 32 px) of a static background and an object that moves along a trajectory. All noise is uniform on
[0, 1) unless stated; ``K = 8`` shapes, ``M = 3`` motions, ``T_x = 8`` texture families::

    cls        := floor(K u)                                 content, the label (shape)
    motion     := floor(M u)                                 content: 0 linear, 1 circular, 2 bouncing
    scale      := 0.10 + 0.10 u                              content, area covered (fraction of the frame)
    rotation   := 2 pi u                                     content (constant over the clip)
    direction  := 2 pi u                                     content: heading (linear, bouncing) / phase (circular)
    pos_x      := u                                          content: where the trajectory sits in the free room
    pos_y      := u                                          content
    fg_hue     := u                                          style
    bg_hue     := u                                          style
    brightness := 0.55 + 0.45 u                              style (global gain)
    speed      := 0.15 + 0.20 u                              style: distance travelled over the clip (image widths)
    bg_texture := cls mod T_x  if u1 < rho  else floor(T_x u2)   style, confounded by cls

``train`` uses this model; ``probe`` and ``test`` use ``do(bg_texture ~ Uniform{0..T_x-1})``. Every
variable is a root except ``bg_texture``, so ``do(v = a)`` changes the latent ``v`` alone.

Trajectories (τ = t / (T - 1) in [0, 1], frame t = 0..T-1; the motion over the clip does not depend on T,
more frames sample it more finely), offsets from an anchor point in image units::

    linear    d(τ) = speed τ (cos φ, sin φ)
    circular  d(τ) = r (cos(φ + speed τ / r), sin(φ + speed τ / r)),  r = 0.12    (arc length = speed)
    bouncing  d_x(τ) = speed τ cos φ,  d_y(τ) = -4 h f (1 - f),  f = frac(speed τ / 0.15 + φ / 2π),  h = 0.18
              (a ball hopping on a floor: 1 to 2.3 hops per clip, faster when ``speed`` is larger)

with φ = ``direction``. The anchor puts the box around the trajectory inside the frame, the object's
extent e included (plus a margin of 0.02): ``anchor_x = e - min d_x + (1 - 2e - span_x) pos_x`` (likewise
in y), so that the object stays fully visible in every frame for every value in the ranges above
(the worst case leaves ``1 - 2 (0.257 + 0.02) - 0.35 > 0`` of room).

Rendering reuses ``shapes``' helpers: the background (texture, colours) is drawn once per clip
(:func:`~causalcl.data.shapes.background_layer`), the object per frame
(:func:`~causalcl.data.shapes.shape_coverage`, supersampled), composited with ``brightness`` and
thresholded at coverage 0.5 for the per-frame masks. The renderer's exogenous noise (texture
parameters, colour saturation and value) is stored per clip, so :meth:`intervene` re-renders the same
clip under ``do(...)``: ``ds.intervene(i, speed=0.3)`` moves the same object over the same background,
only faster.

Items: ``image`` float ``(T, 3, H, W)`` in [0, 1], ``mask`` bool ``(T, H, W)``, ``label`` (``cls``, or
``motion`` with ``label="motion"``), ``latents``. Stored as uint8 ``(N, T, 3, H, W)``; ``get_batch``
returns float ``(B, T, 3, H, W)``. :meth:`MovingShapesDataset.frames` gives the frames as a plain image
dataset (per-frame probes, foreground/background variants frame by frame, SimCLR on frames).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..causal.scm import SCM, uniform_choice
from .base import SCMImageDataset, TensorImageDataset
from .shapes import (
    SHAPE_EXTENT,
    SHAPE_NAMES,
    SHAPE_SYMMETRY,
    background_layer,
    composite,
    foreground_rgb,
    sample_scene_noise,
    shape_coverage,
    shape_radius,
)
from .textures import TEXTURE_FAMILIES

__all__ = ["MovingShapesDataset", "MOTION_NAMES", "trajectories"]

MOTION_NAMES = ("linear", "circular", "bouncing")
#: the object's area as a fraction of the frame. At (0.04, 0.08) (the first version) the shape was not learnable
#: at 32 px: a supervised convnet_small on 8000 unconfounded frames, 300 steps, scored 14.8 % per clip on ``test``
#: (chance 12.5 %); at (0.10, 0.20) the same run scores 38.5 % (``benchmarks/moving_shapes_supervised.py``).
SCALE_RANGE = (0.10, 0.20)
SPEED_RANGE = (0.15, 0.35)
ORBIT_RADIUS = 0.12
HOP_HEIGHT = 0.18
HOP_LENGTH = 0.15
MARGIN = 0.02  # gap kept between the object's extent and the frame's edge
DEFAULT_SIZES = {"train": 4_000, "probe": 1_000, "test": 1_000}
LABELS = ("cls", "motion")


def _uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n)


def trajectories(values: Mapping[str, np.ndarray], frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Object centres ``(x, y)``, each ``(B, T)`` in image units, of the clips with latents ``values``
    (``cls``, ``motion``, ``scale``, ``direction``, ``speed``, ``pos_x``, ``pos_y``); see the module docstring."""
    motion = np.asarray(values["motion"], dtype=np.int64)[:, None]
    phi = np.asarray(values["direction"], dtype=np.float64)[:, None]
    speed = np.asarray(values["speed"], dtype=np.float64)[:, None]
    tau = np.linspace(0.0, 1.0, frames)[None, :]
    # linear
    lx, ly = speed * tau * np.cos(phi), speed * tau * np.sin(phi)
    # circular: arc length speed over the clip
    angle = phi + speed * tau / ORBIT_RADIUS
    cx, cy = ORBIT_RADIUS * np.cos(angle), ORBIT_RADIUS * np.sin(angle)
    # bouncing: drift plus parabolic hops on a floor (y points down, so a hop is negative)
    f = np.mod(speed * tau / HOP_LENGTH + phi / (2 * math.pi), 1.0)
    bx, by = speed * tau * np.cos(phi), -4.0 * HOP_HEIGHT * f * (1.0 - f)
    dx = np.select([motion == 0, motion == 1], [lx, cx], bx)
    dy = np.select([motion == 0, motion == 1], [ly, cy], by)
    cls = np.asarray(values["cls"], dtype=np.int64)
    extent = (SHAPE_EXTENT[cls] * shape_radius(cls, values["scale"]))[:, None] + MARGIN

    def place(d: np.ndarray, pos: np.ndarray) -> np.ndarray:
        lo, hi = d.min(1, keepdims=True), d.max(1, keepdims=True)
        room = np.maximum(0.0, 1.0 - 2.0 * extent - (hi - lo))
        return d + extent - lo + room * np.asarray(pos, dtype=np.float64)[:, None]

    return place(dx, values["pos_x"]), place(dy, values["pos_y"])


class MovingShapesDataset(SCMImageDataset):
    """Moving-SCM-Shapes; see the module docstring for the model, the trajectories and the renderer.

    Args:
        split: ``train`` (confounded, ``rho``), ``probe`` or ``test`` (``do(bg_texture ~ uniform)``).
        root: cache directory (default ``$CAUSALCL_CACHE`` or ``~/.cache/causalcl``).
        n: number of clips (default 4,000 / 1,000 / 1,000).
        image_size: frame side in pixels (>= 16, default 32).
        frames: frames per clip ``T`` (>= 2, default 8).
        seed: base seed; clips are deterministic per (seed, split, index).
        rho: strength of the ``cls -> bg_texture`` edge in ``train``.
        supersample: rasterisation factor of the shape (anti-aliasing; default 2).
        label: the label variable, ``"cls"`` (the shape, default) or ``"motion"``.
        cache: read/write the rendered arrays on disk.

    Raises:
        ValueError: a bad argument, named.
    """

    name = "moving_shapes"
    video = True
    render_batch = 128
    #: which SCM variables are content (what the clip is about) and which are style
    latent_roles = {"cls": "content", "motion": "content", "scale": "content", "rotation": "content",
                    "direction": "content", "pos_x": "content", "pos_y": "content", "fg_hue": "style",
                    "bg_hue": "style", "brightness": "style", "speed": "style", "bg_texture": "style"}
    #: the latents that wrap around (hues; angles), name -> period
    latent_periods = {"rotation": 2 * math.pi, "direction": 2 * math.pi, "fg_hue": 1.0,
                      "bg_hue": 1.0}
    #: the rotation is identifiable only up to the shape's symmetry
    latent_symmetries = {"rotation": ("cls", SHAPE_SYMMETRY)}

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        n: int | None = None,
        image_size: int = 32,
        frames: int = 8,
        seed: int = 0,
        rho: float = 0.9,
        supersample: int = 2,
        label: str = "cls",
        cache: bool = True,
    ) -> None:
        if isinstance(image_size, bool) or int(image_size) != image_size or image_size < 16:
            raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}")
        if isinstance(frames, bool) or int(frames) != frames or frames < 2:
            raise ValueError(f"frames must be an integer >= 2, got {frames!r}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho must lie in [0, 1], got {rho!r}")
        if isinstance(supersample, bool) or int(supersample) != supersample or supersample < 1:
            raise ValueError(f"supersample must be a positive integer, got {supersample!r}")
        if label not in LABELS:
            raise ValueError(f"label must be one of {list(LABELS)}, got {label!r}")
        self.size, self.frames, self.rho = int(image_size), int(frames), float(rho)
        self.supersample, self.label_var = int(supersample), label
        self.num_textures = len(TEXTURE_FAMILIES)
        self.texture_names = list(TEXTURE_FAMILIES)
        n = DEFAULT_SIZES.get(split, 0) if n is None else n
        self._generate(split, n, seed, SHAPE_NAMES if label == "cls" else MOTION_NAMES, cache, root)

    # ------------------------------------------------------------------ model
    def build_scm(self) -> SCM:
        k, m, t, rho = len(SHAPE_NAMES), len(MOTION_NAMES), self.num_textures, self.rho

        def choice(count: int):
            return lambda p, u: np.minimum((u * count).astype(np.int64), count - 1)

        def span(lo: float, hi: float):
            return lambda p, u: lo + (hi - lo) * u

        def texture(p: dict[str, np.ndarray], u: np.ndarray) -> np.ndarray:
            own = p["cls"] % t
            other = np.minimum((u[:, 1] * t).astype(np.int64), t - 1)
            return np.where(u[:, 0] < rho, own, other)

        return (
            SCM()
            .add("cls", mechanism=choice(k), noise=_uniform)
            .add("motion", mechanism=choice(m), noise=_uniform)
            .add("scale", mechanism=span(*SCALE_RANGE), noise=_uniform)
            .add("rotation", mechanism=span(0.0, 2 * math.pi), noise=_uniform)
            .add("direction", mechanism=span(0.0, 2 * math.pi), noise=_uniform)
            .add("pos_x", noise=_uniform)
            .add("pos_y", noise=_uniform)
            .add("fg_hue", noise=_uniform)
            .add("bg_hue", noise=_uniform)
            .add("brightness", mechanism=span(0.55, 1.0), noise=_uniform)
            .add("speed", mechanism=span(*SPEED_RANGE), noise=_uniform)
            .add("bg_texture", parents=["cls"], mechanism=texture, noise=lambda rng, n: rng.random((n, 2)))
        )

    def split_scm(self, scm: SCM, split: str) -> SCM:
        return scm if split == "train" else scm.do(bg_texture=uniform_choice(self.num_textures))

    def sample_render_noise(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        return sample_scene_noise(rng, n)

    def generation_params(self) -> dict[str, Any]:
        return {"image_size": self.size, "frames": self.frames, "rho": self.rho, "supersample": self.supersample,
                "label": self.label_var, "scale_range": list(SCALE_RANGE)}

    # ------------------------------------------------------------------ renderer
    def render(
        self, values: Mapping[str, np.ndarray], render_noise: Mapping[str, np.ndarray]
    ) -> tuple[Tensor, Tensor]:
        """Clips float ``(B, T, 3, S, S)`` in [0, 1] and masks bool ``(B, T, S, S)``."""
        s, t = self.size, self.frames
        cls = np.asarray(values["cls"], dtype=np.int64)
        b = len(cls)
        px, py = trajectories(values, t)
        alpha = shape_coverage(
            np.repeat(cls, t), np.repeat(values["scale"], t), px.reshape(-1), py.reshape(-1),
            np.repeat(values["rotation"], t), s, self.supersample,
        )  # (B*T, S, S)
        bg = background_layer(values, render_noise, s, self.num_textures)  # (B, 3, S, S), static over the clip
        fg = foreground_rgb(values, render_noise)
        gain = torch.from_numpy(np.asarray(values["brightness"], dtype=np.float32)).view(-1, 1, 1, 1)
        img, mask = composite(
            bg.repeat_interleave(t, 0), fg.repeat_interleave(t, 0), alpha, gain.repeat_interleave(t, 0)
        )
        return img.view(b, t, 3, s, s), mask.view(b, t, s, s)

    # ------------------------------------------------------------------ views
    def frames_dataset(self, frame: int | None = None) -> TensorImageDataset:
        """The frames as an image dataset: every frame of every clip (``frame=None``, ``N·T`` images, clip i's
        frames at rows ``i·T .. i·T+T-1``) or frame ``frame`` of each clip (``N`` images); labels, masks and
        latents follow their clip.

        Raises:
            ValueError: ``frame`` outside ``[-T, T)``.
        """
        t = self.frames
        if frame is None:
            images, masks = self.images.flatten(0, 1), self.masks.flatten(0, 1)
            labels = self.labels.repeat_interleave(t)
            latents = {k: v.repeat_interleave(t) for k, v in self.latents.items()}
        else:
            if isinstance(frame, bool) or int(frame) != frame or not -t <= frame < t:
                raise ValueError(f"frame must be an integer in [{-t}, {t}) or None, got {frame!r}")
            images, masks = self.images[:, frame], self.masks[:, frame]
            labels, latents = self.labels, dict(self.latents)
        return TensorImageDataset(images, labels, self.class_names, masks=masks, latents=latents, split=self.split)
