"""Batched SimCLR augmentation: determinism, shapes, range, flip, blur and colour ops vs references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from causalcl.data import SimCLRAugment
from causalcl.data.augment import gaussian_blur, rgb_to_grayscale, yiq_hue_matrix


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(16, 3, 32, 32, generator=_gen(123))


def test_same_seed_same_output_and_different_seed_differs(images):
    aug = SimCLRAugment(32, blur_p=0.5)
    a = aug(images, _gen(0))
    b = aug(images, _gen(0))
    c = aug(images, _gen(1))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    v1, v2 = aug.views(images, 2, _gen(0))
    assert torch.equal(v1, a) and not torch.allclose(v1, v2)


def test_shape_range_and_resize(images):
    out = SimCLRAugment(24, blur_p=1.0)(images, _gen(0))
    assert out.shape == (16, 3, 24, 24) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    rect = torch.rand(4, 3, 20, 40)
    assert SimCLRAugment(16)(rect, _gen(0)).shape == (4, 3, 16, 16)
    u8 = (images * 255).to(torch.uint8)
    assert SimCLRAugment(32)(u8, _gen(0)).shape == (16, 3, 32, 32)
    with pytest.raises(ValueError, match="3, H, W"):
        SimCLRAugment(32)(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="scale"):
        SimCLRAugment(32, scale=(0.5, 0.2))


def _identity_cfg(**kw):
    base = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)
    return SimCLRAugment(32, **{**base, **kw})


def test_identity_and_flip_only(images):
    torch.testing.assert_close(_identity_cfg()(images, _gen(0)), images, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        _identity_cfg(flip_p=1.0)(images, _gen(0)), torch.flip(images, dims=[3]), atol=1e-5, rtol=0
    )


def test_crop_is_a_zoom(images):
    # a small crop of a horizontal ramp has a smaller horizontal range than the full image
    ramp = torch.linspace(0, 1, 32).expand(8, 3, 32, 32).contiguous()
    out = _identity_cfg(scale=(0.25, 0.25))(ramp, _gen(0))
    span = out[:, 0, 0, -1] - out[:, 0, 0, 0]
    torch.testing.assert_close(span, torch.full((8,), 15.5 / 31), atol=0.03, rtol=0)


def test_batched_blur_equals_per_image_reference(images):
    sigma = torch.linspace(0.3, 2.0, images.shape[0])
    k = 5
    out = gaussian_blur(images, sigma, k)
    for i in range(images.shape[0]):
        t = torch.arange(k, dtype=torch.float32) - k // 2
        g = torch.exp(-(t**2) / (2 * sigma[i] ** 2))
        g = g / g.sum()
        kernel2d = (g[:, None] * g[None, :]).expand(3, 1, k, k)
        ref = F.conv2d(F.pad(images[i : i + 1], (2, 2, 2, 2), mode="reflect"), kernel2d, groups=3)
        torch.testing.assert_close(out[i : i + 1], ref, atol=1e-5, rtol=1e-5)


def test_grayscale_and_hue_ops(images):
    gray = _identity_cfg(grayscale_p=1.0)(images, _gen(0))
    torch.testing.assert_close(gray[:, 0], gray[:, 2])
    torch.testing.assert_close(gray[:, :1], rgb_to_grayscale(images), atol=1e-5, rtol=0)
    m = yiq_hue_matrix(torch.tensor([0.0, 1.0, 0.25]))
    torch.testing.assert_close(m[0], torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(m[1], torch.eye(3), atol=1e-5, rtol=0)
    grey_pixel = torch.full((3, 1), 0.5)  # hue rotation leaves greys alone
    torch.testing.assert_close(m[2] @ grey_pixel, grey_pixel, atol=1e-5, rtol=0)


def test_jitter_only_changes_colours_per_sample(images):
    aug = _identity_cfg(jitter_p=1.0)
    out = aug(images, _gen(5))
    assert not torch.allclose(out, images)
    assert out.min() >= 0 and out.max() <= 1
    # brightness only: each image is a scaled (and clamped) copy of its input
    x = images * 0.5
    bright = _identity_cfg(jitter_p=1.0, jitter=(0.4, 0.0, 0.0, 0.0))(x, _gen(5)).flatten(1)
    factor = (bright * x.flatten(1)).sum(1) / (x.flatten(1) ** 2).sum(1)  # least-squares gain per image
    torch.testing.assert_close(bright, factor[:, None] * x.flatten(1), atol=1e-4, rtol=0)
    assert ((factor - 1).abs() <= 0.4 + 1e-4).all() and factor.std() > 0.05
