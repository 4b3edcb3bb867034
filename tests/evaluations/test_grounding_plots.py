"""CAM overlay plots: a Figure with one column per image, bad inputs refused."""

from __future__ import annotations

import io

import pytest
import torch
from matplotlib.figure import Figure

from evaluations.grounding import plot_cam_overlays


def _data(n: int = 5, size: int = 16):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=g)
    cams = torch.rand(n, size, size, generator=g)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    masks[:, 4:10, 5:12] = True
    return images, cams, masks


def test_returns_a_figure_with_the_grid():
    images, cams, masks = _data()
    fig = plot_cam_overlays(images, cams, masks, titles=[f"img {i}" for i in range(5)], max_images=4)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 4
    assert fig.axes[0].get_title() == "img 0"
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
    no_masks = plot_cam_overlays((images - 0.5) * 4, cams)  # normalised images are rescaled for display
    assert len(no_masks.axes) == 2 * 5


def test_bad_inputs():
    images, cams, masks = _data()
    with pytest.raises(ValueError, match="masks"):
        plot_cam_overlays(images, cams, masks[:, :8])
    with pytest.raises(ValueError, match="titles"):
        plot_cam_overlays(images, cams, titles=["a"])
    with pytest.raises(ValueError, match="images"):
        plot_cam_overlays(images[:3], cams)
    with pytest.raises(ValueError, match="cams"):
        plot_cam_overlays(images, cams[:, :8, :8])
    with pytest.raises(ValueError, match="max_images"):
        plot_cam_overlays(images, cams, max_images=0)
