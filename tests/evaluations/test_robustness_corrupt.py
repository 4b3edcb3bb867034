"""corrupt(): determinism, per-image seeding, types and ranges, severity growth, and exact operator checks."""

from __future__ import annotations

import io
from functools import lru_cache

import cv2
import numpy as np
import pytest
import skimage as sk
import torch
from PIL import Image
from skimage import data

from evaluations.robustness import CORRUPTIONS, corrupt
from evaluations.robustness.blur import _glass_sources


@lru_cache(maxsize=8)
def natural_uint8(size: int, n: int) -> np.ndarray:
    """``n`` centre crops of skimage's bundled photographs resized to ``size``: uint8 (n, size, size, 3)."""
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    out = []
    for i in range(n):
        p = photos[i % len(photos)]
        h, w = p.shape[:2]
        m = min(h, w)
        p = p[(h - m) // 2: (h - m) // 2 + m, (w - m) // 2: (w - m) // 2 + m]
        out.append(cv2.resize(p, (size, size), interpolation=cv2.INTER_AREA))
    arr = np.stack(out)
    arr.setflags(write=False)
    return arr


def natural_float(size: int, n: int) -> torch.Tensor:
    return torch.from_numpy(natural_uint8(size, n).copy()).permute(0, 3, 1, 2).float().div(255.0).contiguous()

RANDOM = {
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur", "snow",
    "frost", "fog", "elastic_transform", "spatter",
}  # fmt: skip
DETERMINISTIC = set(CORRUPTIONS) - RANDOM


def test_corruption_list():
    assert len(CORRUPTIONS) == 19 and len(set(CORRUPTIONS)) == 19
    assert CORRUPTIONS[:4] == ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur")
    assert CORRUPTIONS[14] == "jpeg_compression"
    assert CORRUPTIONS[15:] == ("speckle_noise", "gaussian_blur", "spatter", "saturate")


@pytest.mark.parametrize("size", [32, 64])
def test_same_seed_identical_and_input_untouched(size):
    x = natural_float(size, 2)
    before = x.clone()
    for name in CORRUPTIONS:
        a = corrupt(x, name, 3, seed=7)
        b = corrupt(x, name, 3, seed=7)
        assert torch.equal(a, b), name
    assert torch.equal(x, before)


def test_different_seed_changes_random_corruptions_only():
    x = natural_float(32, 2)
    for name in CORRUPTIONS:
        a, b = corrupt(x, name, 4, seed=0), corrupt(x, name, 4, seed=1)
        if name in RANDOM:
            assert not torch.equal(a, b), name
        else:
            assert torch.equal(a, b), name


@pytest.mark.parametrize("size", [32, 64])
def test_per_image_seeding_subset_reproducible(size):
    x = natural_float(size, 4)
    for name in CORRUPTIONS:
        full = corrupt(x, name, 5, seed=3)
        part = corrupt(x[1:3], name, 5, seed=3, index_offset=1)
        torch.testing.assert_close(part, full[1:3], atol=2e-6, rtol=0, msg=name)
        if name in RANDOM:  # image 0 of the subset is not seeded as image 0 of the set
            assert not torch.equal(corrupt(x[1:3], name, 5, seed=3), full[1:3]), name


def test_float_tensor_type_shape_range():
    x = natural_float(32, 3).to(torch.float64)
    for name in CORRUPTIONS:
        y = corrupt(x, name, 5)
        assert isinstance(y, torch.Tensor) and y.dtype == torch.float64 and y.shape == x.shape, name
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0 and bool(torch.isfinite(y).all()), name
        assert not torch.equal(y, x), name


def test_uint8_batch_and_single_image():
    batch = natural_uint8(32, 2)
    for name in CORRUPTIONS:
        y = corrupt(batch, name, 2)
        assert isinstance(y, np.ndarray) and y.dtype == np.uint8 and y.shape == batch.shape, name
        single = corrupt(batch[1], name, 2, index_offset=1)
        assert single.shape == batch[1].shape and single.dtype == np.uint8
        assert np.abs(single.astype(int) - y[1]).max() <= 1, name


def test_uint8_and_float_agree():
    u8 = natural_uint8(32, 2)
    x = torch.from_numpy(u8.copy()).permute(0, 3, 1, 2).float() / 255
    for name in CORRUPTIONS:
        a = corrupt(u8, name, 3).astype(np.float64)
        b = corrupt(x, name, 3).permute(0, 2, 3, 1).numpy() * 255
        # same draws in the same layout: equal up to the final 8-bit rounding (and 8-bit steps inside a few)
        assert np.mean(np.abs(a - b) > 1.01) < 0.02, name


# Severity growth: mean |x - corrupt(x)| must not decrease with severity, except where the original tables are
# not ordered by this distance (research/evaluations.md §1.2, §1.5; AlexNet's own ImageNet-C errors are
# non-monotone for snow and elastic_transform):
#   elastic_transform: ImageNet severities 1-2 are large affine jitters (0.1 / 0.2 of the side), 3-5 small;
#     CIFAR severity 1 has the largest affine jitter and no displacement field.
#   saturate: severities 1-2 desaturate (x0.3, x0.1), 3-5 oversaturate.
#   spatter: severities 1-3 are water, 4-5 mud (different operations).
#   snow (ImageNet): severity 3 thresholds the flakes at 0.9 vs 0.5 at severity 2.
# Loose (a 15 % dip allowed, 25 % for the random texture layers fog and frost, whose distance depends on the
# draw — frost's built-in substitute, used when imagecorruptions-imaug is not installed, dips ~20 % at ImageNet
# severity 3 on two 64-px images — and severity 5 above severity 1): glass_blur (CIFAR sigmas .05 .25 .4 .25
# .4; ImageNet severities 1/2 and 3/4 trade sigma against displacement) and motion_blur (CIFAR severities 3 and 4
# differ only in a kernel tail of weight < 1e-4).
EXEMPT = {"elastic_transform", "saturate", "spatter"}
LOOSE = {"fog", "frost", "glass_blur", "motion_blur"}


@pytest.mark.parametrize(("size", "preset"), [(32, "cifar"), (64, "imagenet")])
def test_severity_growth(size, preset):
    x = natural_float(size, 4 if size == 32 else 2)
    for name in CORRUPTIONS:
        d = [float((corrupt(x, name, s, preset=preset) - x).abs().mean()) for s in range(1, 6)]
        assert min(d) > 0, name
        if name in EXEMPT or (name == "snow" and preset == "imagenet"):
            continue
        tol = (0.25 if name in ("fog", "frost") else 0.15) if name in LOOSE else 0.0
        for s in range(4):
            assert d[s + 1] >= d[s] * (1 - tol), (name, d)
        assert d[4] > d[0], (name, d)


def _sequential_glass(img, dy, dx, delta):
    """The original's loop, written out: bottom-right to top-left, copy the neighbour (views -> copy)."""
    x = img.copy()
    h, w = x.shape
    for r in range(h - delta, delta, -1):
        for c in range(w - delta, delta, -1):
            x[r, c] = x[r + dy[r - delta - 1, c - delta - 1], c + dx[r - delta - 1, c - delta - 1]]
    return x


@pytest.mark.parametrize("delta", [1, 2, 3, 4])
def test_glass_sources_equal_the_sequential_loop(delta):
    rng = np.random.default_rng(delta)
    h, w = 19, 23
    img = rng.random((h, w))
    nh, nw = h - 2 * delta, w - 2 * delta
    dy = rng.integers(-delta, delta, (nh, nw))
    dx = rng.integers(-delta, delta, (nh, nw))
    src = _glass_sources(dy, dx, delta + 1, delta + 1, w)
    ours = img.copy()
    ours[delta + 1: h - delta + 1, delta + 1: w - delta + 1] = img.ravel()[src].reshape(nh, nw)
    np.testing.assert_array_equal(ours, _sequential_glass(img, dy, dx, delta))


def _hsv_roundtrip(u8, channel, fn):
    out = []
    for im in u8.astype(np.float64) / 255:
        hsv = sk.color.rgb2hsv(im)
        hsv[..., channel] = fn(hsv[..., channel])
        out.append(np.clip(sk.color.hsv2rgb(hsv), 0, 1))
    return np.stack(out) * 255


def test_brightness_and_saturate_equal_the_skimage_hsv_round_trip():
    u8 = natural_uint8(64, 2)
    for sev, c in enumerate([0.1, 0.2, 0.3, 0.4, 0.5], start=1):
        ref = _hsv_roundtrip(u8, 2, lambda v, c=c: np.clip(v + c, 0, 1))
        assert np.abs(corrupt(u8, "brightness", sev, preset="imagenet") - ref).max() <= 0.5 + 1e-6
    for sev, (a, b) in enumerate([(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)], start=1):
        ref = _hsv_roundtrip(u8, 1, lambda s, a=a, b=b: np.clip(s * a + b, 0, 1))
        assert np.abs(corrupt(u8, "saturate", sev, preset="imagenet") - ref).max() <= 0.5 + 1e-6


def test_grey_pixels_turn_red_under_saturate_shift_as_in_skimage():
    grey = np.full((1, 32, 32, 3), 128, dtype=np.uint8)
    out = corrupt(grey, "saturate", 5, preset="imagenet")  # S' = 0.2 with hue 0
    assert out[0, 0, 0].tolist() == [128, 102, 102]


def test_jpeg_and_pixelate_equal_pillow_on_uint8():
    u8 = natural_uint8(64, 2)
    for sev, q in ((1, 25), (5, 7)):
        out = corrupt(u8, "jpeg_compression", sev, preset="imagenet")
        for i in range(2):
            buf = io.BytesIO()
            Image.fromarray(u8[i]).save(buf, "JPEG", quality=q)
            np.testing.assert_array_equal(out[i], np.asarray(Image.open(buf)))
    for sev, f in ((1, 0.6), (5, 0.25)):
        out = corrupt(u8, "pixelate", sev, preset="imagenet")
        small = (int(64 * f), int(64 * f))
        for i in range(2):
            ref = Image.fromarray(u8[i]).resize(small, Image.Resampling.BOX).resize((64, 64), Image.Resampling.BOX)
            np.testing.assert_array_equal(out[i], np.asarray(ref))


def test_gaussian_noise_statistics():
    x = torch.full((2, 3, 64, 64), 0.5)
    y = corrupt(x, "gaussian_noise", 3, preset="imagenet")  # sigma 0.18, little clipping at 0.5
    assert abs(float((y - x).std()) - 0.18) < 0.01
    y = corrupt(x, "gaussian_noise", 3, preset="cifar")  # sigma 0.08
    assert abs(float((y - x).std()) - 0.08) < 0.005


def test_contrast_formula():
    x = natural_float(32, 2)
    mean = x.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(corrupt(x, "contrast", 2, preset="cifar"), ((x - mean) * 0.5 + mean).clamp(0, 1),
                               atol=1e-6, rtol=0)


def test_auto_preset_switches_at_64px():
    x = torch.full((1, 3, 64, 64), 0.5)
    assert torch.equal(corrupt(x, "brightness", 1), corrupt(x, "brightness", 1, preset="imagenet"))
    y = torch.full((1, 3, 63, 63), 0.5)
    assert torch.equal(corrupt(y, "brightness", 1), corrupt(y, "brightness", 1, preset="cifar"))
    assert not torch.equal(corrupt(y, "brightness", 1, preset="imagenet"), corrupt(y, "brightness", 1))


def test_procedural_frost_substitute(monkeypatch):
    from evaluations.robustness import _textures

    monkeypatch.setattr(_textures, "_frost_dir", lambda: None)
    _textures._raw_photos.cache_clear()
    _textures.frost_photos.cache_clear()
    try:
        assert _textures.frost_source() == "procedural"
        tex = _textures.procedural_frost(2, 64, 96)
        assert tex.shape == (3, 64, 96) and tex.dtype == np.float32 and 0 <= tex.min() and tex.max() <= 1
        np.testing.assert_array_equal(tex, _textures.procedural_frost(2, 64, 96))
        for size in (32, 64):
            x = natural_float(size, 2)
            y = corrupt(x, "frost", 3)
            assert torch.equal(y, corrupt(x, "frost", 3)) and float((y - x).abs().mean()) > 0.05
    finally:
        _textures._raw_photos.cache_clear()
        _textures.frost_photos.cache_clear()


def _pillow_pixelate(plane_or_rgb: np.ndarray, f: float, mode: str | None = None) -> np.ndarray:
    h, w = plane_or_rgb.shape[:2]
    img = Image.fromarray(plane_or_rgb, mode=mode) if mode else Image.fromarray(plane_or_rgb)
    small = img.resize((max(1, int(w * f)), max(1, int(h * f))), Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.BOX))


@pytest.mark.parametrize("h, w", [(224, 224), (32, 32), (299, 299), (37, 91), (64, 48)])
def test_float_pixelate_equals_pillow_float_mode(h, w):
    """The float path computes Pillow's BOX down + BOX up in float ("F" mode), including the sizes where
    Pillow's rounding skips an input pixel (299 px) and where OpenCV's nearest picks other pixels."""
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    for sev in (1, 3, 5):
        f = [0.6, 0.5, 0.4, 0.3, 0.25][sev - 1]
        out = corrupt(x, "pixelate", sev, preset="imagenet")
        ref = np.stack([np.stack([_pillow_pixelate(x[i, c].numpy(), f, "F") for c in range(3)]) for i in range(2)])
        np.testing.assert_allclose(out.numpy(), ref, atol=2e-6)


def test_uint8_pixelate_equals_pillow_where_opencv_nearest_differs():
    u8 = natural_uint8(299, 2)
    for sev, f in ((2, 0.5), (5, 0.25)):
        out = corrupt(u8, "pixelate", sev, preset="imagenet")
        for i in range(2):
            np.testing.assert_array_equal(out[i], _pillow_pixelate(u8[i], f))


def test_float_and_uint8_pixelate_agree_within_8bit_rounding():
    u8 = natural_uint8(224, 2)
    x = torch.from_numpy(u8.copy()).permute(0, 3, 1, 2).float().div(255.0)
    a = corrupt(x, "pixelate", 3).permute(0, 2, 3, 1).numpy() * 255.0
    b = corrupt(u8, "pixelate", 3).astype(np.float32)
    assert np.abs(a - b).max() <= 1.0 + 1e-3


@pytest.mark.parametrize("shape, sigma", [((2, 2, 40, 56), 2.44), ((1, 2, 32, 32), 0.32), ((1, 2, 24, 30), 9.0),
                                          ((1, 1, 20, 20), 40.0)])
def test_elastic_smoothing_equals_scipy_reflect_gaussian(shape, sigma):
    """Separable filter (short kernels) and dense reflect matrices (kernels longer than the image) both equal
    scipy.ndimage.gaussian_filter(mode="reflect", truncate=3) on every plane."""
    from scipy.ndimage import gaussian_filter

    from evaluations.robustness.digital import smooth_reflect

    fields = np.random.default_rng(0).uniform(-1, 1, size=shape).astype(np.float32)
    out = smooth_reflect(fields, sigma, 3.0)
    for index in np.ndindex(shape[:2]):
        ref = gaussian_filter(fields[index].astype(np.float64), sigma, mode="reflect", truncate=3.0)
        np.testing.assert_allclose(out[index], ref, atol=2e-6)
