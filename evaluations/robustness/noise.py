"""Noise corruptions: gaussian_noise, shot_noise, impulse_noise and the extra speckle_noise.

Hendrycks & Dietterich (ICLR 2019). Each image draws from its own generator (see ``_batch.image_rngs``; normal
draws through ``_batch.standard_normal``), in the (3, H, W) layout, so float-tensor and uint8 inputs of the same
pixels get the same noise. Parameters per severity: ``params.IMAGENET`` / ``params.CIFAR``.
"""

from __future__ import annotations

import numpy as np

from ._batch import standard_normal
from ._poisson import poisson_tables, sample_unit_rates

__all__ = ["gaussian_noise", "impulse_noise", "shot_noise", "speckle_noise"]


def gaussian_noise(x: np.ndarray, sigma: float, rngs: list[np.random.Generator]) -> np.ndarray:
    """``clip(x + N(0, sigma^2))`` per pixel and channel."""
    for i, rng in enumerate(rngs):
        x[i] += standard_normal(rng, x.shape[1:], scale=sigma)
    return x


def shot_noise(x: np.ndarray, lam: float, rngs: list[np.random.Generator]) -> np.ndarray:
    """Poisson (photon) noise ``Poisson(x * lam) / lam``.

    Exact Poisson draws by table inversion (``_poisson.sample_unit_rates``, several times faster than
    ``Generator.poisson``), in blocks of about 64k values so the work stays in cache; each image draws from its
    own generator."""
    tables = poisson_tables(float(lam))
    scale = np.float32(1.0 / lam)
    step = max(1, (1 << 16) // x[0].size)
    for start in range(0, x.shape[0], step):
        block = x[start: start + step]
        np.multiply(sample_unit_rates(block, tables, rngs[start: start + step]), scale, out=block, casting="unsafe")
    return x


def impulse_noise(x: np.ndarray, amount: float, rngs: list[np.random.Generator]) -> np.ndarray:
    """Salt-and-pepper noise as ``skimage.util.random_noise(mode="s&p", amount=amount)``.

    Each value (pixel *and* channel independently, as skimage does) is replaced with probability ``amount``,
    by 0 or 1 with equal odds. One uniform draw decides both (``u < amount / 2`` -> 0, ``< amount`` -> 1), which
    has skimage's distribution but not its random stream.
    """
    half = np.float32(amount / 2.0)
    for i, rng in enumerate(rngs):
        u = rng.random(x.shape[1:], dtype=np.float32)
        xi = x[i]
        xi[u < half] = 0.0
        xi[(u >= half) & (u < np.float32(amount))] = 1.0
    return x


def speckle_noise(x: np.ndarray, sigma: float, rngs: list[np.random.Generator]) -> np.ndarray:
    """Multiplicative noise ``x + x * N(0, sigma^2)`` (extra corruption)."""
    for i, rng in enumerate(rngs):
        x[i] += x[i] * standard_normal(rng, x.shape[1:], scale=sigma)
    return x
