"""Textures for the weather corruptions: the diamond-square plasma fractal (fog) and the frost images.

Frost: ImageNet-C blends crops of frost photographs. They ship inside the optional ``imagecorruptions-imaug``
wheel (Apache-2.0; install the ``bench`` extra). When it is installed, :func:`frost_photos` reads frost1-5
from it (``np.random.randint(5)`` in both reference codebases never picks frost6, so neither do we). Without
it, a documented procedural substitute is used (:func:`procedural_frost`): plasma-fractal "ice" plus thin
random crystal strokes, coloured to the mean and spread of the real photos. Results with the substitute are
*not* comparable to ImageNet-C frost numbers; :func:`frost_source` says which one is active.
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

__all__ = ["frost_photos", "frost_source", "plasma_fractal", "procedural_frost"]

# Per-channel mean and standard deviation (RGB, [0, 1]) of frost1-5, averaged over the five photos; measured
# once from the imagecorruptions-imaug 1.1.5 files and used only to colour the procedural substitute.
_FROST_MEAN = np.array([0.571, 0.656, 0.702], dtype=np.float32)
_FROST_STD = np.array([0.112, 0.107, 0.107], dtype=np.float32)
_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")


def plasma_fractal(uniforms: np.ndarray, wibble_decay: float) -> np.ndarray:
    """Diamond-square height maps in [0, 1] for a batch: ``uniforms`` (N, M, M) in [-1, 1), M a power of two.

    Same recursion as ImageNet-C's ``plasma_fractal`` (start wibble 100, divided by ``wibble_decay`` per level,
    each new point = mean of its 4 neighbours / 4-sum + ``wibble * U(-wibble, wibble)``), vectorised over the
    batch. Every cell is written exactly once, so cell ``(r, c)`` takes its random term from ``uniforms[:, r, c]``
    (scaled by ``wibble^2``): each image's map depends only on its own draws.
    """
    n, m, _ = uniforms.shape
    a = np.zeros((n, m, m), dtype=np.float32)
    uniforms = uniforms.astype(np.float32, copy=False)
    step = m
    wibble = 100.0
    while step >= 2:
        half = step // 2
        corner = a[:, 0:m:step, 0:m:step]
        sq = corner + np.roll(corner, -1, axis=1)
        sq = sq + np.roll(sq, -1, axis=2)
        w2 = np.float32(wibble**2)
        a[:, half:m:step, half:m:step] = sq * np.float32(0.25) + w2 * uniforms[:, half:m:step, half:m:step]
        dr = a[:, half:m:step, half:m:step]
        ul = a[:, 0:m:step, 0:m:step]
        lt = dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=2)
        a[:, 0:m:step, half:m:step] = lt * np.float32(0.25) + w2 * uniforms[:, 0:m:step, half:m:step]
        tt = dr + np.roll(dr, 1, axis=2) + ul + np.roll(ul, -1, axis=1)
        a[:, half:m:step, 0:m:step] = tt * np.float32(0.25) + w2 * uniforms[:, half:m:step, 0:m:step]
        step //= 2
        wibble /= wibble_decay
    a -= a.min(axis=(1, 2), keepdims=True)
    a /= np.maximum(a.max(axis=(1, 2), keepdims=True), np.float32(1e-12))
    return a


def _frost_dir() -> Path | None:
    spec = importlib.util.find_spec("imagecorruptions")  # locates the package without importing it (numba)
    if spec is None or spec.origin is None:
        return None
    d = Path(spec.origin).parent / "frost"
    return d if all((d / f).is_file() for f in _FROST_FILES) else None


def frost_source() -> str:
    """``"imagecorruptions"`` when the ImageNet-C frost photographs are available, else ``"procedural"``."""
    return "imagecorruptions" if _frost_dir() is not None else "procedural"


def procedural_frost(index: int, height: int = 336, width: int = 512) -> np.ndarray:
    """Deterministic frost-like texture ``index`` (0-4) as float32 (3, H, W) RGB in [0, 1].

    Substitute for the photographs when ``imagecorruptions-imaug`` is absent: a plasma fractal (decay 1.6) for
    the cloudy ice, plus a few hundred thin bright strokes (random position, angle, length) for the crystals,
    blurred lightly, standardised, then coloured with the photos' per-channel mean and spread.
    """
    rng = np.random.default_rng([0xF2057, index])
    m = 1 << max(1, math.ceil(math.log2(max(height, width))))
    base = plasma_fractal(rng.uniform(-1.0, 1.0, size=(1, m, m)), 1.6)[0, :height, :width]
    strokes = np.zeros((height, width), dtype=np.float32)
    n_strokes = int(0.0006 * height * width)
    for _ in range(n_strokes):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        ang = rng.uniform(0, 2 * math.pi)
        length = rng.exponential(0.04 * max(height, width))
        x1, y1 = x0 + length * math.cos(ang), y0 + length * math.sin(ang)
        cv2.line(strokes, (int(x0), int(y0)), (int(x1), int(y1)), float(rng.uniform(0.3, 1.0)), 1, cv2.LINE_AA)
    strokes = cv2.GaussianBlur(strokes, (0, 0), 0.8)
    tex = 0.6 * base + 0.4 * strokes / max(float(strokes.max()), 1e-6)
    tex = (tex - tex.mean()) / max(float(tex.std()), 1e-6)
    out = _FROST_MEAN[:, None, None] + _FROST_STD[:, None, None] * tex[None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@lru_cache(maxsize=1)
def _raw_photos() -> tuple[np.ndarray, ...]:
    d = _frost_dir()
    if d is None:
        return tuple(procedural_frost(k) for k in range(5))
    photos = []
    for f in _FROST_FILES:
        bgr = cv2.imread(str(d / f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"could not read the frost image {d / f}")
        photos.append(np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1), dtype=np.float32) / 255.0)
    return tuple(photos)


@lru_cache(maxsize=8)
def frost_photos(preset: str, height: int, width: int, cifar_scale: float) -> tuple[np.ndarray, ...]:
    """The five frost textures, (3, Hf, Wf) float32, sized so that a random (height, width) crop fits.

    ``cifar`` preset: first shrunk by ``cifar_scale`` (``make_cifar_c.py``: ``cv2.resize(fx=fy=0.2)``, bilinear).
    Then, as ``make_imagenet_c.py``, used at native size when it covers the image with room for the crop;
    otherwise enlarged (bicubic) to cover it times 1.1, the ``imagecorruptions`` rule for other sizes.
    """
    out = []
    for photo in _raw_photos():
        img = photo.transpose(1, 2, 0)
        if preset == "cifar":
            img = cv2.resize(img, (0, 0), fx=cifar_scale, fy=cifar_scale, interpolation=cv2.INTER_LINEAR)
        hf, wf = img.shape[:2]
        if hf <= height or wf <= width:
            scale = 1.1 * max(height / hf, width / wf, 1.0)
            size = (int(math.ceil(wf * scale)), int(math.ceil(hf * scale)))
            img = np.clip(cv2.resize(img, size, interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
        out.append(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))
    return tuple(out)
