"""The batched RandAugment (CLSA's strong augmentation): each operation against PIL, draws, determinism."""

from __future__ import annotations

import numpy as np
import PIL.Image
import PIL.ImageEnhance
import PIL.ImageOps
import pytest
import torch

from causalcl.data.randaugment import OPS, RandAugment, apply_op


def _image(seed: int = 0, size: int = 16) -> torch.Tensor:
    """8-bit levels in [0, 1]: a smooth gradient plus noise, so histograms and extremes are non-trivial."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0.1, 0.8, size).view(1, 1, size).expand(3, size, size)
    x = (ramp + 0.15 * torch.rand(3, size, size, generator=g)).clamp(0, 1)
    return (x * 255).round() / 255


def _pil(x: torch.Tensor) -> PIL.Image.Image:
    return PIL.Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def _tensor(img: PIL.Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).astype(np.float32) / 255).permute(2, 0, 1)


PIL_OPS = [
    ("autocontrast", 0.0, lambda im, v: PIL.ImageOps.autocontrast(im), 1.01 / 255),
    ("equalize", 0.0, lambda im, v: PIL.ImageOps.equalize(im), 0.0),
    ("posterize", 5.0, lambda im, v: PIL.ImageOps.posterize(im, int(v)), 0.0),
    ("solarize", 128.0, lambda im, v: PIL.ImageOps.solarize(im, 256 - int(v)), 1e-6),
    ("brightness", 0.6, lambda im, v: PIL.ImageEnhance.Brightness(im).enhance(v), 1.01 / 255),
    ("color", 0.3, lambda im, v: PIL.ImageEnhance.Color(im).enhance(v), 2.01 / 255),
    ("contrast", 0.4, lambda im, v: PIL.ImageEnhance.Contrast(im).enhance(v), 2.01 / 255),
    ("sharpness", 0.2, lambda im, v: PIL.ImageEnhance.Sharpness(im).enhance(v), 2.01 / 255),
    ("translate_x", 0.25, lambda im, v: im.transform(im.size, PIL.Image.AFFINE, (1, 0, v * im.size[0], 0, 1, 0)),
     1e-6),
    ("translate_y", -0.25, lambda im, v: im.transform(im.size, PIL.Image.AFFINE, (1, 0, 0, 0, 1, v * im.size[1])),
     1e-6),
]


@pytest.mark.parametrize("name,v,reference,atol", PIL_OPS, ids=[p[0] for p in PIL_OPS])
def test_operation_matches_pil(name, v, reference, atol) -> None:
    x = _image(1)
    got = apply_op(x[None], name, torch.tensor([v]))[0]
    want = _tensor(reference(_pil(x), v))
    torch.testing.assert_close(got, want, atol=atol, rtol=0)


def test_shear_and_rotate_move_pixels_as_pil() -> None:
    """Shear about the top-left corner: the first row stays, lower rows shift by v*y; rotation by 90 degrees is
    exact on a square grid (PIL rotates counter-clockwise for a positive angle)."""
    x = _image(2)
    sheared = apply_op(x[None], "shear_x", torch.tensor([0.25]))[0]
    want = _tensor(_pil(x).transform((16, 16), PIL.Image.AFFINE, (1, 0.25, 0, 0, 1, 0), PIL.Image.BILINEAR))
    # pixel centres: PIL samples at (x + 0.5) + v (y + 0.5); bilinear on both sides, so only the rims differ
    torch.testing.assert_close(sheared[:, :, :8], want[:, :, :8], atol=0.06, rtol=0)
    turned = apply_op(x[None], "rotate", torch.tensor([90.0]))[0]
    torch.testing.assert_close(turned, _tensor(_pil(x).rotate(90)), atol=1e-5, rtol=0)


def test_identity_and_no_operations_leave_images_unchanged() -> None:
    x = torch.rand(5, 3, 8, 8)
    assert torch.equal(apply_op(x, "identity", torch.zeros(5)), x)
    torch.testing.assert_close(RandAugment(n=0)(x, torch.Generator().manual_seed(0)), x)
    torch.testing.assert_close(RandAugment(n=4, p=0.0)(x, torch.Generator().manual_seed(0)), x)


def test_seeded_batched_and_per_image() -> None:
    x = torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    aug = RandAugment(n=5, m=10)
    a = aug(x, torch.Generator().manual_seed(4))
    b = aug(x, torch.Generator().manual_seed(4))
    c = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    changed = (a - x).abs().flatten(1).amax(1) > 1e-6
    assert 0.5 < changed.float().mean() < 1.0  # 5 draws at p = 1/2, some identity/no-ops: most, not all


def test_pool_is_fixmatch_s() -> None:
    assert [name for name, _, _ in OPS] == ["autocontrast", "brightness", "color", "contrast", "equalize",
                                            "identity", "posterize", "rotate", "sharpness", "shear_x", "shear_y",
                                            "solarize", "translate_x", "translate_y"]


@pytest.mark.parametrize("kwargs,name", [({"n": -1}, "n"), ({"m": 1}, "m"), ({"m": 11}, "m"), ({"p": 1.5}, "p")])
def test_bad_arguments(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        RandAugment(**kwargs)
    with pytest.raises(ValueError, match="images"):
        RandAugment()(torch.rand(2, 1, 8, 8))
