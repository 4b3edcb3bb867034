"""Interventional views: true counterfactual pairs do(style = s') on the SCM datasets."""

from __future__ import annotations

import pytest
import torch

from causalcl.build import build_augment, build_view_fn
from causalcl.data import ShapesDataset
from causalcl.data.interventional import InterventionalViews
from causalcl.methods import METHODS
from causalcl.models import build_backbone
from causalcl.train.config import Config


@pytest.fixture(scope="module")
def shapes() -> ShapesDataset:
    return ShapesDataset("train", n=200, cache=False)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_default_variables_are_the_style_latents(shapes):
    views = InterventionalViews(shapes)
    assert set(views.variables) == {k for k, r in shapes.latent_roles.items() if r == "style"}


def test_views_keep_content_and_change_style(shapes):
    views = InterventionalViews(shapes, ["bg_texture", "bg_hue"])
    idx = torch.arange(32)
    images, _ = shapes.get_batch(idx)
    v1, v2 = views(images, idx, _gen(), 2)
    assert v1.shape == v2.shape == images.shape
    # the foreground (content) pixels of both counterfactuals equal the factual ones: only the background moved
    # (interior of the mask: edge pixels blend the shape with the background)
    mask = shapes.masks[idx].unsqueeze(1).float()
    interior = -torch.nn.functional.max_pool2d(-mask, 3, 1, 1)
    fg = interior.bool().expand_as(images)
    bg = (mask == 0).expand_as(images)
    for view in (v1, v2):  # (thin parts of a shape are partly transparent even inside the eroded mask)
        assert ((view[fg] - images[fg]).abs() > 1 / 255).float().mean() < 0.01
    assert (v1[bg] - v2[bg]).abs().mean() > 0.02  # backgrounds differ between the two views


def test_assignments_follow_the_marginal_of_other_items(shapes):
    views = InterventionalViews(shapes, ["bg_texture"])
    drawn = views.assignments(4000, _gen(3))["bg_texture"]
    values = set(shapes.latents["bg_texture"].tolist())
    assert set(drawn.tolist()) <= values
    # independent of the sample's class: the drawn texture for class-0 rows spreads over several textures
    assert len(set(drawn[:200].tolist())) > 3


def test_same_generator_same_views(shapes):
    views = InterventionalViews(shapes)
    idx = torch.arange(8)
    images, _ = shapes.get_batch(idx)
    a = views(images, idx, _gen(7), 2)
    b = views(images, idx, _gen(7), 2)
    c = views(images, idx, _gen(8), 2)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_bad_inputs(shapes):
    with pytest.raises(ValueError, match="SCM dataset"):
        InterventionalViews(object())
    with pytest.raises(ValueError, match="not latents"):
        InterventionalViews(shapes, ["nope"])
    with pytest.raises(ValueError, match="content variables"):
        InterventionalViews(shapes, ["cls"])


def test_build_view_fn_interventional(shapes):
    config = Config()
    config.set("augment.views", "interventional")
    method = METHODS["simclr"](build_backbone("convnet_small", channels_last=False), projector=(16, 8))
    fn = build_view_fn(method, build_augment(config, 32), config, shapes)
    idx = torch.arange(4)
    views = fn(shapes.get_batch(idx)[0], idx, _gen())
    assert len(views) == 2 and views[0].shape == (4, 3, 32, 32)
    config.set("augment.views", "pixels")
    with pytest.raises(ValueError, match="augment.views"):
        build_view_fn(method, build_augment(config, 32), config, shapes)
