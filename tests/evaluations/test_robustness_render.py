"""render(): output type, shape, determinism and the strength knob."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluations.robustness import RENDITIONS, render


def _images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    base = torch.rand(2, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(base, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)


def test_renditions_tuple():
    assert RENDITIONS == ("stylization", "pencil", "cartoon", "edge_preserving")


@pytest.mark.parametrize("style", RENDITIONS)
def test_float_tensor_roundtrip_and_determinism(style):
    x = _images()
    y = render(x, style)
    assert isinstance(y, torch.Tensor) and y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert torch.equal(y, render(x, style))
    assert not torch.equal(y, x)


@pytest.mark.parametrize("style", RENDITIONS)
def test_uint8_inputs(style):
    u8 = (_images().permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    y = render(u8, style)
    assert y.dtype == np.uint8 and y.shape == u8.shape
    single = render(u8[0], style)
    assert single.shape == u8[0].shape
    np.testing.assert_array_equal(single, y[0])


def test_pencil_is_grey_and_strength_matters():
    x = _images()
    y = render(x, "pencil")
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    for style in ("stylization", "edge_preserving", "cartoon"):
        assert not torch.equal(render(x, style, strength=0.3), render(x, style, strength=2.0)), style
