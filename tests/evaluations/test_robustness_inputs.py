"""Every bad input of corrupt() / render() gets a ValueError naming the problem (DESIGN §9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluations.robustness import CORRUPTIONS, corrupt, render

X = torch.full((2, 3, 32, 32), 0.5)


def test_unknown_corruption_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        corrupt(X, "gaussian_nosie", 1)
    msg = str(err.value)
    assert "gaussian_nosie" in msg and all(name in msg for name in CORRUPTIONS)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(X, None, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("severity", [0, 6, -1, 2.0, True, "3", None])
def test_severity_outside_1_to_5(severity):
    with pytest.raises(ValueError, match="severity"):
        corrupt(X, "contrast", severity)


@pytest.mark.parametrize(
    "images",
    [
        torch.full((2, 1, 32, 32), 0.5),
        torch.full((2, 4, 32, 32), 0.5),
        np.zeros((2, 32, 32, 4), dtype=np.uint8),
        np.zeros((32, 32, 1), dtype=np.uint8),
    ],
)
def test_wrong_channel_count(images):
    with pytest.raises(ValueError, match="3 colour channels"):
        corrupt(images, "contrast", 1)


def test_float_outside_unit_interval_and_nan():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt(X * 2.5, "contrast", 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt(X - 0.6, "contrast", 1)
    bad = X.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        corrupt(bad, "gaussian_noise", 1)
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt(bad, "gaussian_noise", 1)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.zeros((2, 3, 32, 32), dtype=torch.uint8), "float tensor"),
        (np.zeros((2, 32, 32, 3), dtype=np.float32), "uint8"),
        (torch.full((3, 32, 32), 0.5), "unsqueeze"),
        (torch.full((0, 3, 32, 32), 0.5), "at least one image"),
        (torch.full((1, 3, 8, 32), 0.5), "at least 16"),
        ([[0.5]], "float torch tensor"),
        (np.zeros((2, 2, 32, 32, 3), dtype=np.uint8), "uint8 array"),
    ],
)
def test_wrong_type_layout_or_size(images, match):
    with pytest.raises(ValueError, match=match):
        corrupt(images, "contrast", 1)


def test_bad_preset_seed_and_offset():
    with pytest.raises(ValueError, match="preset"):
        corrupt(X, "contrast", 1, preset="tiny")
    with pytest.raises(ValueError, match="seed"):
        corrupt(X, "contrast", 1, seed=-1)
    with pytest.raises(ValueError, match="index_offset"):
        corrupt(X, "contrast", 1, index_offset=-2)


def test_eight_bit_corruptions_validate_too():
    for name in ("jpeg_compression", "pixelate"):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            corrupt(X * 3, name, 1)
        with pytest.raises(ValueError, match="3 colour channels"):
            corrupt(np.zeros((32, 32, 2), dtype=np.uint8), name, 1)


def test_render_bad_inputs():
    with pytest.raises(ValueError, match="stylization"):
        render(X, "watercolour")
    with pytest.raises(ValueError, match="strength"):
        render(X, "pencil", strength=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        render(X + 1, "pencil")
